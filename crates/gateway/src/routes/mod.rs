//! HTTP routes, one module per resource, each exposing `router()`.

pub mod analytics;
pub mod attachments;
pub mod auth;
pub mod canned;
pub mod conversations;
pub mod cors;
pub mod customers;
pub mod docs;
pub mod headers;
pub mod health;
pub mod json;
pub mod kb;
pub mod limits;
pub mod notes;
pub mod schema;
pub mod seed;
pub mod teams;
pub mod tenants;
pub mod users;
pub mod webhooks;

use crate::AppState;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use std::time::Instant;
use tower_http::limit::RequestBodyLimitLayer;

/// The whole HTTP surface of the gateway.
pub fn router(state: AppState) -> Router {
    router_with(state, Router::new())
}

/// The gateway's HTTP surface and `extra` routes (e.g. `jamuna serve`'s
/// `/status/projections`), all behind the same middleware: rate limit,
/// body limit, request metrics, security headers (on the static files too).
pub fn router_with(state: AppState, extra: Router) -> Router {
    let api = Router::new()
        .merge(auth::router())
        .merge(conversations::router())
        .merge(users::router())
        .merge(tenants::router())
        .merge(customers::router())
        .merge(teams::router())
        .merge(kb::router())
        .merge(analytics::router())
        .merge(canned::router())
        .merge(notes::router())
        .merge(webhooks::router())
        .route("/api/v1/ws", axum::routing::get(crate::ws_upgrade));
    let health = if state.config.metrics_on_api { health::router().merge(health::metrics_router()) } else { health::router() };
    let mut app = Router::new()
        .merge(health)
        .merge(seed::router())
        .merge(docs::router())
        .merge(api)
        .with_state(state.clone())
        .merge(extra)
        .layer(middleware::from_fn_with_state(state.clone(), cors::cors))
        .layer(middleware::from_fn_with_state(state.clone(), limits::rate_limit))
        .layer(RequestBodyLimitLayer::new(state.config.max_body_bytes))
        // Uploads have a limit of their own (`attachments.max_bytes`, enforced by the handler).
        .merge(
            attachments::router()
                .with_state(state.clone())
                .layer(middleware::from_fn_with_state(state.clone(), cors::cors))
                .layer(middleware::from_fn_with_state(state.clone(), limits::rate_limit)),
        )
        .layer(middleware::from_fn(track));
    if let Some(dir) = &state.config.static_dir {
        app = app.fallback_service(tower_http::services::ServeDir::new(dir).append_index_html_on_directories(true));
    }
    let headers = std::sync::Arc::new(headers::SecurityHeaders::new(state.config.static_dir.as_deref()));
    app.layer(middleware::from_fn_with_state(headers, headers::security_headers))
}

/// Request duration by route and status, for `/metrics`.
async fn track(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let start = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!("jamuna_http_request_duration_seconds", "route" => route.clone(), "method" => method, "status" => status.clone())
        .record(start.elapsed().as_secs_f64());
    if response.status().is_server_error() {
        metrics::counter!("jamuna_http_errors_total", "route" => route, "status" => status).increment(1);
    }
    response
}

/// Used by handlers that need the state without extracting anything else.
pub type St = State<AppState>;
