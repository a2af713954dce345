//! Requests per minute per client (the user of a valid token, else the
//! peer's IP address): a fixed one-minute window, answered with `429` and
//! `Retry-After` when exceeded.

use crate::AppState;
use crate::error::ApiError;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Limiter {
    per_minute: u32,
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

impl Limiter {
    pub fn new(per_minute: u32) -> Self {
        Self { per_minute, windows: Mutex::new(HashMap::new()) }
    }

    /// `Err(seconds to wait)` when `key` is over its limit.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        let now = Instant::now();
        let mut w = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if w.len() > 100_000 {
            w.retain(|_, (start, _)| now.duration_since(*start) < Duration::from_secs(60));
        }
        let entry = w.entry(key.to_owned()).or_insert((now, 0));
        if now.duration_since(entry.0) >= Duration::from_secs(60) {
            *entry = (now, 0);
        }
        entry.1 += 1;
        if entry.1 > self.per_minute {
            let left = 60u64.saturating_sub(now.duration_since(entry.0).as_secs()).max(1);
            return Err(left);
        }
        Ok(())
    }
}

pub async fn rate_limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if path == "/healthz" || path == "/readyz" || path == "/metrics" {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let key = crate::auth::bearer(&parts)
        .and_then(|t| state.tokens.verify_access(t).ok())
        .map(|c| format!("user:{}:{}", c.tenant, c.user))
        .or_else(|| parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ci| format!("ip:{}", ci.0.ip())))
        .unwrap_or_else(|| "anonymous".into());
    if let Err(retry_after) = state.limiter.check(&key) {
        metrics::counter!("jamuna_http_rate_limited_total").increment(1);
        return ApiError::TooManyRequests { retry_after }.into_response();
    }
    next.run(Request::from_parts(parts, body)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_allows_its_quota_then_refuses() {
        let l = Limiter::new(3);
        assert!(l.check("a").is_ok() && l.check("a").is_ok() && l.check("a").is_ok());
        let wait = l.check("a").unwrap_err();
        assert!((1..=60).contains(&wait));
        assert!(l.check("b").is_ok(), "clients are counted apart");
    }
}
