//! Requests per minute per client (the user of a valid token, else the
//! peer's IP address): a fixed one-minute window, answered with `429` and
//! `Retry-After` when exceeded.
//!
//! The counting goes through the [`RateLimits`] port: in memory by default
//! (one process: `jamuna serve`), Redis when several gateway replicas must
//! share one count. If the store is unavailable the request is let through
//! (and counted in `jamuna_rate_limit_errors_total`): an outage of the
//! limiter must not become an outage of the service.

use crate::AppState;
use crate::error::ApiError;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use jamuna_projections::StoreError;
use jamuna_projections::sessions::{MemorySessions, RateLimits};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The window the per-minute limit is counted in.
const WINDOW: Duration = Duration::from_secs(60);

/// The gateway's limit, counted in a [`RateLimits`] store.
pub struct Limiter {
    per_minute: u32,
    store: Arc<dyn RateLimits>,
}

impl Limiter {
    /// `per_minute` requests per client, counted in this process's memory.
    pub fn new(per_minute: u32) -> Self {
        Self::with_store(per_minute, Arc::new(MemorySessions::new()))
    }

    /// `per_minute` requests per client, counted in `store` (e.g. Redis,
    /// shared by every gateway replica).
    pub fn with_store(per_minute: u32, store: Arc<dyn RateLimits>) -> Self {
        Self { per_minute, store }
    }

    /// `Ok(Err(seconds to wait))` when `key` is over its limit.
    pub async fn check(&self, key: &str) -> Result<Result<(), u64>, StoreError> {
        Ok(self.store.hit(key, self.per_minute, WINDOW).await?.map_err(retry_after_secs))
    }
}

/// Whole seconds, rounded up, at least one (what `Retry-After` carries).
fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
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
    match state.limiter.check(&key).await {
        Ok(Ok(())) => {}
        Ok(Err(retry_after)) => {
            metrics::counter!("jamuna_http_rate_limited_total").increment(1);
            return ApiError::TooManyRequests { retry_after }.into_response();
        }
        Err(e) => {
            metrics::counter!("jamuna_rate_limit_errors_total").increment(1);
            tracing::warn!(error = %e, "the rate-limit store failed; letting the request through");
        }
    }
    next.run(Request::from_parts(parts, body)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_window_allows_its_quota_then_refuses() {
        let l = Limiter::new(3);
        for _ in 0..3 {
            assert_eq!(l.check("a").await.expect("memory never fails"), Ok(()));
        }
        let wait = l.check("a").await.expect("memory never fails").expect_err("over the quota");
        assert!((1..=60).contains(&wait), "{wait}");
        assert_eq!(l.check("b").await.expect("memory never fails"), Ok(()), "clients are counted apart");
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(59_001)), 60);
        assert_eq!(retry_after_secs(Duration::from_secs(7)), 7);
    }

    struct Down;
    #[async_trait::async_trait]
    impl RateLimits for Down {
        async fn hit(&self, _: &str, _: u32, _: Duration) -> Result<Result<(), Duration>, StoreError> {
            Err(StoreError::unavailable(std::io::Error::other("redis is down")))
        }
    }

    #[tokio::test]
    async fn a_failing_store_is_reported_to_the_caller() {
        let l = Limiter::with_store(1, Arc::new(Down));
        assert!(l.check("a").await.is_err_and(|e| e.is_transient()));
    }
}
