//! The roles Jamuna runs as, and the wiring they share.
//!
//! `jamuna serve` runs every role in one process; the distributed mode runs
//! one role per process: [`gateway`] (HTTP + WebSocket), [`projector`] (the
//! read models) and [`ai_worker`] (the bot). All of them take the same
//! configuration, and each port's adapter is chosen here, once, from a URL:
//!
//! | port | configuration | embedded (empty) | distributed |
//! |---|---|---|---|
//! | event log | `JAMUNA_EVENT_LOG` | SQLite `<data>/events.db` | `nats://…` (stream `JAMUNA_NATS_STREAM`) |
//! | read models | `JAMUNA_MONGODB_URL` | SQLite `<data>/read/` | MongoDB database `JAMUNA_MONGODB_DATABASE` |
//! | data keys | `JAMUNA_MONGODB_URL` | SQLite `<data>/keys.db` | MongoDB `keys` |
//! | refresh tokens | `JAMUNA_MONGODB_URL` | SQLite `<data>/sessions.db` | MongoDB `refresh_tokens` |
//! | AI-worker checkpoint | `JAMUNA_MONGODB_URL` | file `<data>/ai-worker.checkpoint` | MongoDB `checkpoints` (`ai-worker`) |
//! | sessions, presence, rate limits | `JAMUNA_REDIS_URL` | in memory | Redis |
//! | knowledge-base vectors | `JAMUNA_QDRANT_URL` | qdrant-edge `<data>/vectors` | Qdrant server |
//!
//! Every role serves `/healthz`, `/readyz` and `/metrics` (the gateway on its
//! API address, the others on a small listener of their own at
//! `JAMUNA_LISTEN`) and stops gracefully on SIGTERM or Ctrl-C.

pub mod ai_worker;
pub mod gateway;
pub mod projector;

use crate::config::Config;
use anyhow::{Context, Result, bail};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use jamuna_commands::keys::KeyStore;
use jamuna_commands::keys::mongo::MongoKeyStore;
use jamuna_commands::keys::sqlite::SqliteKeyStore;
use jamuna_commands::log::nats::{NatsConfig, NatsLog};
use jamuna_commands::log::{self, EventLog, LogUrl};
use jamuna_commands::{CommandHandler, Sealer};
use jamuna_gateway::auth::refresh::RefreshTokens;
use jamuna_projections::ReadModels;
use metrics_exporter_prometheus::PrometheusHandle;
use secrecy::SecretString;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// How long a refresh token lives.
const REFRESH_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// The event log the configuration names.
pub async fn event_log(config: &Config) -> Result<Arc<dyn EventLog>> {
    let url = config.event_log_url()?;
    // One process-wide TLS provider before any TLS connection (the kurrentdb crate adds a second one).
    jamuna_commands::tls::ensure_crypto_provider();
    let log: Arc<dyn EventLog> = match url {
        LogUrl::Nats(url) => {
            let nats = NatsConfig {
                stream_name: config.nats_stream.clone(),
                subject_prefix: config.nats_subject_prefix.clone(),
                ..NatsConfig::default()
            };
            Arc::new(NatsLog::connect(&url, nats).await.with_context(|| format!("cannot connect to the event log at {url}"))?)
        }
        other @ (LogUrl::Sqlite(_) | LogUrl::Kurrent(_)) => log::connect(&other).await.context("cannot open the event log")?,
    };
    Ok(log)
}

/// Where per-user data keys live.
pub async fn key_store(config: &Config) -> Result<Arc<dyn KeyStore>> {
    Ok(match config.mongodb() {
        Some(url) => Arc::new(
            MongoKeyStore::connect(url, &config.mongodb_database).await.with_context(|| format!("cannot open the key store at {url}"))?,
        ),
        None => Arc::new(SqliteKeyStore::open(config.data_dir.join("keys.db")).context("cannot open the key store")?),
    })
}

/// The read models.
pub async fn read_models(config: &Config) -> Result<ReadModels> {
    Ok(match config.mongodb() {
        Some(url) => ReadModels::connect_mongo(url, &config.mongodb_database)
            .await
            .with_context(|| format!("cannot open the read models at {url}"))?,
        None => ReadModels::open_sqlite(config.data_dir.join("read")).context("cannot open the read models")?,
    })
}

/// Where refresh tokens live.
pub async fn refresh_tokens(config: &Config) -> Result<RefreshTokens> {
    let r = match config.mongodb() {
        Some(url) => RefreshTokens::connect_mongo(url, &config.mongodb_database, REFRESH_TTL).await,
        None => RefreshTokens::open(&config.data_dir.join("sessions.db"), REFRESH_TTL),
    };
    r.map_err(|e| anyhow::anyhow!("cannot open the refresh-token store: {e}"))
}

/// Sessions, presence and rate limits: one store for all three ports.
#[derive(Clone)]
pub struct Sessions {
    pub sessions: Arc<dyn jamuna_projections::sessions::SessionStore>,
    pub presence: Arc<dyn jamuna_projections::sessions::PresenceStore>,
    pub rate_limits: Arc<dyn jamuna_projections::sessions::RateLimits>,
    /// Leases for replicas sharing work: only when shared (Redis).
    pub leases: Option<Arc<dyn jamuna_projections::sessions::Leases>>,
}

/// Sessions, presence and rate limits: Redis when `JAMUNA_REDIS_URL` is set
/// (shared by the replicas), else in this process's memory.
pub async fn sessions(config: &Config) -> Result<Sessions> {
    use jamuna_projections::sessions::{DEFAULT_SESSION_TTL, MemorySessions, RedisSessions};
    Ok(match config.redis() {
        Some(url) => {
            let r = Arc::new(
                RedisSessions::connect(url, DEFAULT_SESSION_TTL)
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot open the session store at {url}: {e}"))?,
            );
            Sessions { sessions: r.clone(), presence: r.clone(), rate_limits: r.clone(), leases: Some(r) }
        }
        None => {
            let m = Arc::new(MemorySessions::new());
            Sessions { sessions: m.clone(), presence: m.clone(), rate_limits: m, leases: None }
        }
    })
}

/// This process's share of `group`'s `units`: split by leases with the
/// other replicas when Redis is configured, else all of them (this process is
/// the only one: a second replica would do the same work again). Replicas
/// are in one group when they follow the same stream into the same database
/// (`JAMUNA_NATS_STREAM`, `JAMUNA_MONGODB_DATABASE`): two installations may
/// share a Redis server.
pub async fn work_share(config: &Config, role: &str, units: Vec<String>) -> Result<jamuna_projections::work_share::WorkShare> {
    use jamuna_projections::work_share::{WorkShare, WorkShareConfig};
    let group = &format!("{}/{}/{role}", config.nats_stream, config.mongodb_database);
    let Some(leases) = sessions(config).await?.leases else {
        tracing::info!(role, "no JAMUNA_REDIS_URL: this process does all of the {role}'s work; run one replica");
        return Ok(WorkShare::everything(units));
    };
    let member = format!("{}-{}-{:04x}", hostname(), std::process::id(), rand::random::<u16>());
    tracing::info!(group, member, "sharing the {role}'s work with its other replicas through Redis");
    Ok(WorkShare::start(leases, group, member, units, WorkShareConfig::with_ttl(std::time::Duration::from_millis(config.lease_ttl_ms))))
}

/// This machine's name (a pod's name in Kubernetes), for member ids.
fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into())
}

/// The write side: the log, the sealer over the key store, the command handler.
pub struct WriteSide {
    pub log: Arc<dyn EventLog>,
    pub sealer: Sealer,
    pub commands: Arc<CommandHandler>,
}

pub async fn write_side(config: &Config) -> Result<WriteSide> {
    let log = event_log(config).await?;
    let sealer = Sealer::new(key_store(config).await?);
    let commands = Arc::new(CommandHandler::new(log.clone(), sealer.clone()));
    Ok(WriteSide { log, sealer, commands })
}

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

/// Serves `router` on `config.listen` until shutdown; prints the address.
pub async fn serve_ops(
    config: &Config,
    role: &str,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(&config.listen).await.with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    println!("{role}: health and metrics on http://{addr}");
    tracing::info!(%addr, role, "jamuna {role} is up");
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await?;
    Ok(())
}

/// The knowledge-base vectors, with the projection that fills them with
/// passages embedded by `embedder`: the Qdrant server when `qdrant_url` is
/// set, else qdrant-edge in-process under `<data_dir>/vectors`.
pub async fn open_vectors(
    config: &Config,
    embedder: &jamuna_ai_worker::AsyncEmbedder,
) -> Result<Arc<jamuna_projections::vectors::VectorProjection>> {
    use jamuna_projections::vectors::{VectorIndex, VectorProjection, edge::EdgeVectors, qdrant::QdrantVectors};
    let dimension = embedder.embedder().dim();
    let index: Arc<dyn VectorIndex> = match config.qdrant() {
        Some(url) => Arc::new(
            QdrantVectors::connect(url, &config.qdrant_collection, dimension)
                .await
                .with_context(|| format!("cannot open the vector index at {url}"))?,
        ),
        None => {
            let dir = config.data_dir.join("vectors");
            Arc::new(
                EdgeVectors::open(&dir, dimension).await.with_context(|| format!("cannot open the vector index in {}", dir.display()))?,
            )
        }
    };
    let encoder = Arc::new(jamuna_ai_worker::encoder::ChunkEncoder::new(embedder.clone()));
    Ok(Arc::new(VectorProjection::new(index, encoder).context("the vector index does not fit the model")?))
}
