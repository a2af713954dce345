//! Liveness, readiness and Prometheus metrics (the process's own CPU,
//! memory and file descriptors among them).

use crate::AppState;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;

/// `/healthz` and `/readyz`.
pub fn router() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz))
}

/// `/metrics`: on the API's listener, or alone on `JAMUNA_METRICS_LISTEN`'s
/// (where the open internet cannot reach it).
pub fn metrics_router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics_text))
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "health", operation_id = "healthz",
    responses((status = 200, description = "`ok`", body = String, content_type = "text/plain")))]
async fn healthz() -> &'static str {
    "ok"
}

/// Ready when the event log answers.
#[utoipa::path(get, path = "/readyz", tag = "health", operation_id = "readyz",
    responses(
        (status = 200, description = "`ready`", body = String, content_type = "text/plain"),
        (status = 503, description = "The event log is unavailable", body = String, content_type = "text/plain"),
    ))]
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.commands.log().head().await {
        Ok(_) => (StatusCode::OK, "ready"),
        Err(e) => {
            tracing::warn!(error = %e, "not ready: the event log does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "the event log is unavailable")
        }
    }
}

/// Prometheus metrics (text exposition format).
#[utoipa::path(get, path = "/metrics", tag = "health", operation_id = "metrics",
    responses((status = 200, description = "The metrics", body = String, content_type = "text/plain; version=0.0.4")))]
async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    process_metrics();
    // The gauge is the read model's count at scrape time (replicas agree: query it with max()).
    if let Ok(n) = state.conversations.open_count().await {
        metrics::gauge!("jamuna_conversations_active").set(n as f64);
    }
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}

/// Records the process metrics as Prometheus names them (`process_cpu_seconds_total`,
/// `process_resident_memory_bytes`, `process_open_fds`, …), read from /proc at
/// each scrape. `process_cpu_seconds_total` is recorded as a gauge holding the
/// running total (the `metrics` facade has no float counters); Prometheus's
/// `rate()` reads it the same way.
pub fn process_metrics() {
    #[cfg(target_os = "linux")]
    {
        // /proc/self/stat: fields after the command name; utime and stime are
        // the 14th and 15th fields, in clock ticks (100 per second on Linux).
        if let Ok(stat) = std::fs::read_to_string("/proc/self/stat")
            && let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r)
        {
            let f: Vec<&str> = rest.split_whitespace().collect();
            let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
            if let (Some(u), Some(s)) = (num(11), num(12)) {
                metrics::gauge!("process_cpu_seconds_total").set((u + s) / 100.0);
            }
            if let Some(threads) = num(17) {
                metrics::gauge!("process_threads").set(threads);
            }
            if let Some(vsize) = num(20) {
                metrics::gauge!("process_virtual_memory_bytes").set(vsize);
            }
            if let Some(rss_pages) = num(21) {
                metrics::gauge!("process_resident_memory_bytes").set(rss_pages * 4096.0);
            }
            if let (Some(start), Ok(uptime)) = (num(19), std::fs::read_to_string("/proc/uptime"))
                && let Some(up) = uptime.split_whitespace().next().and_then(|v| v.parse::<f64>().ok())
                && let Ok(now) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)
            {
                metrics::gauge!("process_start_time_seconds").set(now.as_secs_f64() - up + start / 100.0);
            }
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            metrics::gauge!("process_open_fds").set(dir.count() as f64);
        }
        if let Ok(limits) = std::fs::read_to_string("/proc/self/limits")
            && let Some(line) = limits.lines().find(|l| l.starts_with("Max open files"))
            && let Some(soft) = line.split_whitespace().nth(3).and_then(|v| v.parse::<f64>().ok())
        {
            metrics::gauge!("process_max_fds").set(soft);
        }
    }
}
