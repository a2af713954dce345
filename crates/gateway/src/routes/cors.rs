//! Cross-origin requests: the chat widget runs in a tenant's own pages (say
//! `https://shop.example.com`) and calls this server's `/api/v1` from there,
//! so the browser asks first (a CORS preflight) and then checks the answer's
//! `Access-Control-Allow-Origin`.
//!
//! The API authenticates with bearer tokens only (no cookies), so a page of
//! another origin can act only with a token it already holds; what a
//! tenant's *allowed origins* (`TenantSettings::allowed_origins`, the same
//! list the WebSocket checks) decide is which sites may embed that tenant's
//! chat:
//!
//! - A preflight to `/api/v1/…` is answered here (`204`), for any origin: it
//!   carries no tenant to check against, and it grants nothing by itself.
//! - A request from another origin that carries a valid access token is
//!   refused (`403`) unless the token's tenant lists that origin; the
//!   visitor route does the same with the widget key's tenant
//!   ([`super::auth`]), and the socket with the first frame's.
//! - What passes gets `Access-Control-Allow-Origin: <origin>` (never `*`,
//!   never credentials) and `Vary: Origin`.
//!
//! Requests from the server's own pages (the dashboard, the demo page: the
//! public origin, or the host the request went to) and from non-browser
//! clients (no `Origin`) are not touched ([`crate::foreign_origin`]). Paths outside
//! `/api/v1` (the seed API, `/docs`, the static files) get no CORS headers.

use crate::AppState;
use crate::error::ApiError;
use axum::extract::{Request, State};
use axum::http::header::{self, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Methods and request headers the API accepts from other origins.
const ALLOW_METHODS: &str = "GET, POST, PUT, PATCH, DELETE";
const ALLOW_HEADERS: &str = "authorization, content-type, traceparent, tracestate";
/// Headers a cross-origin page may read (rate-limit back-off, the trace id).
const EXPOSE_HEADERS: &str = "retry-after, traceparent";
/// How long a browser may reuse a preflight's answer, in seconds.
const MAX_AGE: &str = "600";

/// The middleware (see the module doc).
pub async fn cors(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let origin = match crate::foreign_origin(req.headers(), &state.config.public_origin) {
        Some(o) if req.uri().path().starts_with("/api/v1/") => o,
        _ => return next.run(req).await,
    };
    // Not text: refused below by every tenant, and not echoed.
    let Ok(echo) = HeaderValue::from_str(&origin) else { return next.run(req).await };
    if req.method() == Method::OPTIONS && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD) {
        let mut response = StatusCode::NO_CONTENT.into_response();
        let h = response.headers_mut();
        allow(h, echo);
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(ALLOW_METHODS));
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static(ALLOW_HEADERS));
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(MAX_AGE));
        return response;
    }
    // An invalid token is the handler's to refuse (401); a valid one binds
    // the request to its tenant's allowed origins.
    if let Some(token) = crate::auth::bearer_header(req.headers())
        && let Ok(verified) = state.tokens.verify(token)
        && !state.origin_allowed(&verified.caller.tenant, Some(&origin)).await
    {
        return ApiError::Forbidden("this page's origin is not one of the tenant's allowed origins".into()).into_response();
    }
    let mut response = next.run(req).await;
    allow(response.headers_mut(), echo);
    response
}

fn allow(h: &mut axum::http::HeaderMap, origin: HeaderValue) {
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSE_HEADERS));
    h.append(header::VARY, HeaderValue::from_static("Origin"));
}
