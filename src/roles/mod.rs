//! The roles Jamuna runs as, and what they share besides their ports.
//!
//! `jamuna serve` runs every role in one process; the distributed mode runs
//! one role per process: [`gateway`] (HTTP + WebSocket), [`projector`] (the
//! read models) and [`ai_worker`] (the bot). All of them take the same
//! [`Config`] and open their ports through [`crate::ports`].
//!
//! Every role serves `/healthz`, `/readyz` and `/metrics` (the gateway on its
//! API address, the others on a small listener of their own at
//! `http.listen`) and stops gracefully on SIGTERM or Ctrl-C.

pub mod ai_worker;
pub mod gateway;
pub mod projector;
pub mod webhooks;

use crate::config::Config;
use anyhow::{Context, Result, bail};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use metrics_exporter_prometheus::PrometheusHandle;
use secrecy::SecretString;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// Creates the data directory (the embedded adapters and dev files live there).
pub fn data_dir(config: &Config) -> Result<()> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| format!("cannot create the data directory {}", config.data_dir.display()))
}

/// The signing secret: JAMUNA_JWT_SECRET, or in dev mode one generated once
/// and kept in the data directory. Outside dev mode there is no default.
pub fn jwt_secret(config: &Config) -> Result<SecretString> {
    if let Some(s) = &config.jwt_secret {
        return Ok(s.clone());
    }
    if !config.dev {
        bail!(
            "JAMUNA_JWT_SECRET is not set. Set it to at least 32 random bytes (e.g. `openssl rand -base64 48`), or run with --dev for a local trial."
        );
    }
    let path = config.data_dir.join("dev-jwt-secret");
    if let Ok(s) = std::fs::read_to_string(&path)
        && s.trim().len() >= 32
    {
        return Ok(SecretString::from(s.trim().to_string()));
    }
    let s = random_token(48);
    std::fs::write(&path, &s).context("cannot store the dev JWT secret")?;
    Ok(SecretString::from(s))
}

pub fn random_token(bytes: usize) -> String {
    use base64::Engine;
    let mut b = vec![0u8; bytes];
    rand::fill(b.as_mut_slice());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// The Prometheus recorder of this process, with the process metrics
/// (`process_*`) refreshed at every scrape.
pub fn metrics() -> Result<PrometheusHandle> {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    // Buckets, not summaries: histogram_quantile() over replicas needs them.
    const SECONDS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS)
        .context("cannot set the histogram buckets")?
        .install_recorder()
        .context("cannot install the metrics recorder")
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return ctrl_c.await.unwrap_or(()),
        };
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// A readiness check: `Ok` when the role can do its work.
pub type Ready = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// `/healthz`, `/readyz` and `/metrics` for a role without the API.
pub fn ops_router(metrics: PrometheusHandle, ready: Ready) -> axum::Router {
    axum::Router::new()
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .route(
            "/readyz",
            axum::routing::get(move || {
                let ready = ready.clone();
                async move {
                    match ready().await {
                        Ok(()) => (StatusCode::OK, "ready".to_string()),
                        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e),
                    }
                }
            }),
        )
        .route(
            "/metrics",
            axum::routing::get(move || {
                let metrics = metrics.clone();
                async move {
                    jamuna_gateway::routes::health::process_metrics();
                    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], metrics.render()).into_response()
                }
            }),
        )
}

/// Serves `router` on `config.http.listen` until shutdown; prints the address.
pub async fn serve_ops(
    config: &Config,
    role: &str,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let listener =
        tokio::net::TcpListener::bind(&config.http.listen).await.with_context(|| format!("cannot listen on {}", config.http.listen))?;
    let addr = listener.local_addr()?;
    println!("{role}: health and metrics on http://{addr}");
    tracing::info!(%addr, role, "jamuna {role} is up");
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await?;
    Ok(())
}
