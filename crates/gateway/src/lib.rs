//! # Jamuna's gateway
//!
//! The front door: the web widget, the mobile app and the dashboard talk only
//! to it. It authenticates callers, turns requests into commands for the
//! write side, answers queries from the read models, and pushes new events to
//! connected WebSockets.
//!
//! * [`auth`] — argon2id passwords, short-lived JWTs, rotating refresh tokens;
//! * [`routes`] — one module per resource, each with a `router()`;
//! * [`ws`] — the WebSocket protocol, sessions, and the push hub;
//! * [`service`] — what REST and WebSocket share;
//! * [`trace`] — W3C trace context per request and frame, carried into events;
//! * [`visitors`] — idle visitor identities expire (a periodic sweep);
//! * [`contact`] — who the customer is: signed identities, the pre-chat form;
//! * [`error`] — the one error type and its mapping to HTTP.
#![forbid(unsafe_code)]

pub mod auth;
pub mod contact;
pub mod directory;
pub mod error;
pub mod identity;
pub mod reads;
pub mod routes;
pub mod service;
pub mod trace;
pub mod view;
pub mod visitors;
pub mod ws;

use auth::jwt::Tokens;
use auth::refresh::RefreshTokens;
use directory::{AnalyticsQueries, ConversationQueries, Directory};
use jamuna_commands::CommandHandler;
use jamuna_domain::TenantId;
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;
use tokio::sync::watch;
use ws::hub::Hub;

/// What the gateway is configured with (the binary loads it).
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// The server's own origin (`http://localhost:8080`): always allowed.
    pub public_origin: String,
    /// Dev mode: the seed endpoints accept anonymous callers as visitors of
    /// the default tenant. Never in production.
    pub dev_mode: bool,
    /// The tenant the seed-compatible endpoints (`/auth/token`, `/chat`,
    /// `/ws/{client_id}`) use.
    pub default_tenant: Option<TenantId>,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// How long `POST /chat` waits for the bot.
    pub chat_timeout: std::time::Duration,
    /// Static files (the built web clients), if any.
    pub static_dir: Option<std::path::PathBuf>,
    /// `/metrics` on the API's listener (else on a listener of its own:
    /// [`routes::health::metrics_router`]).
    pub metrics_on_api: bool,
    /// Hosts webhooks may reach over http and at private addresses
    /// (`webhooks.allow_insecure_hosts`; tests and local setups).
    pub webhook_allowed_hosts: Vec<String>,
}

/// Everything a handler needs: one `Clone` struct of `Arc`s.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<GatewayConfig>,
    pub commands: Arc<CommandHandler>,
    pub directory: Arc<dyn Directory>,
    pub conversations: Arc<dyn ConversationQueries>,
    pub analytics: Arc<dyn AnalyticsQueries>,
    pub tokens: Arc<Tokens>,
    pub refresh: Arc<RefreshTokens>,
    pub hub: Arc<Hub>,
    /// Who of the staff is online (shared by the replicas in the distributed mode).
    pub presence: Arc<dyn ws::presence::PresenceStore>,
    pub limiter: Arc<routes::limits::Limiter>,
    /// Uploaded files, sealed in the blob store, and their limits.
    pub attachments: Arc<routes::attachments::Attachments>,
    pub metrics: PrometheusHandle,
    /// Flips to `true` when the server shuts down: sockets close with 1012.
    pub shutdown: watch::Receiver<bool>,
}

impl AppState {
    /// May a page from `origin` open a socket for `tenant`? Non-browser
    /// clients send no origin and are allowed; browsers must come from the
    /// server itself or from one of the tenant's allowed origins.
    pub async fn origin_allowed(&self, tenant: &TenantId, origin: Option<&str>) -> bool {
        let Some(origin) = origin else { return true };
        if origin == self.config.public_origin {
            return true;
        }
        match self.directory.tenant(tenant).await {
            Ok(Some(t)) => t.settings.allowed_origins.iter().any(|o| o == origin),
            _ => false,
        }
    }
}

/// The origin of the page that made a browser request from another site:
/// `None` for non-browser clients (no `Origin`) and for pages this server
/// served (the public origin, or the host the request was sent to, as a
/// browser on `http://localhost:8080` names it). An `Origin` that is not
/// text comes back mangled, so it matches no allowed origin.
pub fn foreign_origin(headers: &axum::http::HeaderMap, public_origin: &str) -> Option<String> {
    let origin = headers.get(axum::http::header::ORIGIN)?;
    let origin = String::from_utf8_lossy(origin.as_bytes());
    if origin == public_origin {
        return None;
    }
    let host = headers.get(axum::http::header::HOST).and_then(|h| h.to_str().ok());
    let served_here = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")).is_some_and(|o| Some(o) == host);
    (!served_here).then(|| origin.into_owned())
}

/// The whole HTTP surface, each request in its own trace context ([`trace`]).
pub fn router(state: AppState) -> axum::Router {
    router_with(state, axum::Router::new())
}

/// The same with `extra` routes behind the same middleware (trace context,
/// rate limit, metrics).
pub fn router_with(state: AppState, extra: axum::Router) -> axum::Router {
    routes::router_with(state, extra).layer(axum::middleware::from_fn(trace::middleware))
}

/// Per-socket read buffer: small, so ten thousand sockets stay cheap
/// (the 128 KiB default costs ~1.3 GB at 10k sockets).
pub const WS_READ_BUFFER: usize = 8 * 1024;
/// The largest frame a client may send.
pub const WS_MAX_MESSAGE: usize = 64 * 1024;

/// `GET /api/v1/ws`: the token comes in the first frame, never in the URL.
#[utoipa::path(get, path = "/api/v1/ws", tag = "websocket", operation_id = "openSocket",
    summary = "Open the live WebSocket",
    description = "A WebSocket upgrade. The first frame must be `auth` with an access token (a token in the URL would end up in proxy logs: `?token=` is refused). The frames, close codes and limits are described in the document's description.",
    responses(
        (status = 101, description = "Switching Protocols: send `auth` first; the server answers `ready`"),
        (status = 400, description = "Not a WebSocket handshake (no `Connection: upgrade`, `Upgrade: websocket`, `Sec-WebSocket-Version: 13` and `Sec-WebSocket-Key`): axum's plain-text rejection", content_type = "text/plain", body = String),
        (status = 401, description = "A token came in the URL (`?token=`): send it in the `auth` frame instead", body = error::ErrorBody),
        (status = 429, description = "Too many sockets from this address (or unauthenticated ones)", body = error::ErrorBody),
    ))]
async fn ws_upgrade(
    axum::extract::State(state): axum::extract::State<AppState>,
    axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>,
    headers: axum::http::HeaderMap,
    ip: Option<axum::Extension<routes::limits::ClientIp>>,
    upgrade: axum::extract::ws::WebSocketUpgrade,
) -> Result<axum::response::Response, error::ApiError> {
    if q.contains_key("token") {
        return Err(error::ApiError::Unauthorized("a token in the URL is refused: send it in the first frame (`auth`)".into()));
    }
    let permits = ws::limits::SocketPermits::open(&state.limiter, ip.map(|i| i.0.0))?;
    let origin = foreign_origin(&headers, &state.config.public_origin);
    Ok(upgrade
        .read_buffer_size(WS_READ_BUFFER)
        .max_message_size(WS_MAX_MESSAGE)
        .max_frame_size(WS_MAX_MESSAGE)
        .on_upgrade(move |socket| ws::session::run(socket, state, origin, permits)))
}

#[cfg(test)]
mod tests {
    use super::foreign_origin;
    use axum::http::{HeaderMap, HeaderValue, header};

    fn headers(origin: Option<&[u8]>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_str(host).expect("host"));
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_bytes(o).expect("origin"));
        }
        h
    }

    #[test]
    fn only_other_sites_are_foreign() {
        let public = "http://127.0.0.1:8080";
        assert_eq!(foreign_origin(&headers(None, "127.0.0.1:8080"), public), None, "no Origin: not a browser");
        assert_eq!(foreign_origin(&headers(Some(b"http://127.0.0.1:8080"), "127.0.0.1:8080"), public), None);
        assert_eq!(foreign_origin(&headers(Some(b"http://localhost:8080"), "localhost:8080"), public), None, "our page, by another name");
        assert_eq!(
            foreign_origin(&headers(Some(b"https://shop.example.com"), "127.0.0.1:8080"), public).as_deref(),
            Some("https://shop.example.com")
        );
        // The attacker's page names its own host, which is not the one asked.
        assert!(foreign_origin(&headers(Some(b"http://localhost:8080"), "127.0.0.1:8080"), public).is_some());
        assert!(foreign_origin(&headers(Some(b"http://127.0.0.1:8080.evil.net"), "127.0.0.1:8080"), public).is_some());
        // Not text: foreign, and it can match no allowed origin.
        let odd = foreign_origin(&headers(Some(b"https://\xffshop.example.com"), "127.0.0.1:8080"), public).expect("foreign");
        assert_ne!(odd, "https://shop.example.com");
    }
}
