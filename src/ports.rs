//! One constructor per port: each picks its adapter from the [`Config`],
//! once, for every command and role (`serve`, `gateway`, `projector`,
//! `ai-worker`, `events tail`, `kb`, `replay`, `projections status`, `eval`,
//! `bench answer`). A URL selects the distributed adapter; without one the
//! embedded adapter keeps its files under the data directory:
//!
//! | port | configuration | embedded (off) | distributed |
//! |---|---|---|---|
//! | event log | `event_log.url` | SQLite `<data>/events.db` | `nats://…` (stream `nats.stream`) |
//! | read models | `mongodb.url` | SQLite `<data>/read/` | MongoDB database `mongodb.database` |
//! | data keys | `mongodb.url` | SQLite `<data>/keys.db` | MongoDB `keys` |
//! | refresh tokens | `mongodb.url` | SQLite `<data>/sessions.db` | MongoDB `refresh_tokens` |
//! | AI-worker checkpoint | `mongodb.url` | file `<data>/ai-worker.checkpoint` | MongoDB `checkpoints` (`ai-worker`) |
//! | sessions, presence, rate limits, leases | `redis.url` | in memory (no leases) | Redis |
//! | notification e-mail | `smtp.url` | off | an SMTP relay |
//! | knowledge-base vectors | `qdrant.url` | qdrant-edge `<data>/vectors` | Qdrant server |
//! | content gaps (projection in the AI worker) | `mongodb.url` | SQLite `<data>/read/gaps.db` | MongoDB `gap_tenants`, `gap_memos` |
//! | blobs (attachments) | `blobs.url` | files under `<data>/blobs` | `s3://bucket` (`blobs.s3_endpoint`, `blobs.s3_region`, credentials `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`) |
//!
//! The TLS provider these clients share is installed once, in `main`.

use crate::config::Config;
use anyhow::{Context, Result};
use jamuna_ai_worker::worker::{Checkpoint, CheckpointStore};
use jamuna_ai_worker::{AsyncEmbedder, Embedder};
use jamuna_commands::keys::KeyStore;
use jamuna_commands::keys::mongo::MongoKeyStore;
use jamuna_commands::keys::sqlite::SqliteKeyStore;
use jamuna_commands::log::nats::{NatsConfig, NatsLog};
use jamuna_commands::log::{self, EventLog, LogUrl};
use jamuna_commands::{CommandHandler, Sealer};
use jamuna_gateway::auth::refresh::RefreshTokens;
use jamuna_projections::ReadModels;
use jamuna_projections::mongo::MongoReadDb;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How long a refresh token lives.
const REFRESH_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// The stream and subjects of a NATS event log, as configured.
pub fn nats_config(config: &Config) -> NatsConfig {
    NatsConfig { stream_name: config.nats.stream.clone(), subject_prefix: config.nats.subject_prefix.clone(), ..NatsConfig::default() }
}

/// The event log the configuration names.
pub async fn event_log(config: &Config) -> Result<Arc<dyn EventLog>> {
    let log: Arc<dyn EventLog> = match config.event_log_url()? {
        LogUrl::Nats(url) => Arc::new(
            NatsLog::connect(&url, nats_config(config)).await.with_context(|| format!("cannot connect to the event log at {url}"))?,
        ),
        other @ (LogUrl::Sqlite(_) | LogUrl::Kurrent(_)) => log::connect(&other).await.context("cannot open the event log")?,
    };
    Ok(log)
}

/// Where per-user data keys live.
pub async fn key_store(config: &Config) -> Result<Arc<dyn KeyStore>> {
    Ok(match &config.mongodb.url {
        Some(url) => Arc::new(
            MongoKeyStore::connect(url, &config.mongodb.database).await.with_context(|| format!("cannot open the key store at {url}"))?,
        ),
        None => Arc::new(SqliteKeyStore::open(config.data_dir.join("keys.db")).context("cannot open the key store")?),
    })
}

/// The read models.
pub async fn read_models(config: &Config) -> Result<ReadModels> {
    Ok(match &config.mongodb.url {
        Some(url) => ReadModels::connect_mongo(url, &config.mongodb.database)
            .await
            .with_context(|| format!("cannot open the read models at {url}"))?,
        None => ReadModels::open_sqlite(config.data_dir.join("read")).context("cannot open the read models")?,
    })
}

/// Where refresh tokens live.
pub async fn refresh_tokens(config: &Config) -> Result<RefreshTokens> {
    let r = match &config.mongodb.url {
        Some(url) => RefreshTokens::connect_mongo(url, &config.mongodb.database, REFRESH_TTL).await,
        None => RefreshTokens::open(&config.data_dir.join("sessions.db"), REFRESH_TTL),
    };
    r.map_err(|e| anyhow::anyhow!("cannot open the refresh-token store: {e}"))
}

/// The worker's checkpoints in the `checkpoints` collection the read models
/// use, so a worker restarted anywhere continues where the last one stopped.
struct MongoCheckpoint(MongoReadDb);

#[async_trait::async_trait]
impl CheckpointStore for MongoCheckpoint {
    async fn load(&self, key: &str) -> std::io::Result<u64> {
        self.0.checkpoint(key).await.map_err(std::io::Error::other)
    }
    async fn store(&self, key: &str, position: u64) -> std::io::Result<()> {
        self.0.set_checkpoint(key, position).await.map_err(std::io::Error::other)
    }
}

/// Where the AI worker's checkpoint lives.
pub async fn checkpoint(config: &Config) -> Result<Arc<dyn CheckpointStore>> {
    Ok(match &config.mongodb.url {
        Some(url) => Arc::new(MongoCheckpoint(
            MongoReadDb::connect(url, &config.mongodb.database)
                .await
                .with_context(|| format!("cannot open the checkpoint store at {url}"))?,
        )),
        None => Arc::new(Checkpoint::in_dir(config.data_dir.clone())),
    })
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

/// What tells one installation from another sharing its Redis: its log's
/// stream and its read models' database.
fn installation(config: &Config) -> String {
    format!("{}/{}", config.nats.stream, config.mongodb.database)
}

/// Sessions, presence and rate limits: Redis when `redis.url` is set
/// (shared by the replicas), else in this process's memory â one store for
/// the whole process, so that in `jamuna serve` the router and the notifier
/// see the presence the gateway records.
pub async fn sessions(config: &Config) -> Result<Sessions> {
    use jamuna_projections::sessions::{DEFAULT_SESSION_TTL, MemorySessions, RedisSessions};
    Ok(match &config.redis.url {
        Some(url) => {
            let r = Arc::new(
                RedisSessions::connect(url, DEFAULT_SESSION_TTL)
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot open the session store at {url}: {e}"))?
                    .within(&installation(config)),
            );
            Sessions { sessions: r.clone(), presence: r.clone(), rate_limits: r.clone(), leases: Some(r) }
        }
        None => {
            // One store per process: in `serve` the gateway marks which
            // customers are on a conversation and the notifier reads it.
            static MEMORY: std::sync::OnceLock<Arc<MemorySessions>> = std::sync::OnceLock::new();
            let m = MEMORY.get_or_init(|| Arc::new(MemorySessions::new())).clone();
            Sessions { sessions: m.clone(), presence: m.clone(), rate_limits: m, leases: None }
        }
    })
}

/// This process's share of `group`'s `units`: split by leases with the
/// other replicas when Redis is configured, else all of them (this process is
/// the only one: a second replica would do the same work again). Replicas
/// are in one group when they follow the same stream into the same database
/// (`nats.stream`, `mongodb.database`): two installations may share a Redis
/// server.
pub async fn work_share(config: &Config, role: &str, units: Vec<String>) -> Result<jamuna_projections::work_share::WorkShare> {
    use jamuna_projections::work_share::{WorkShare, WorkShareConfig};
    let group = &format!("{}/{role}", installation(config));
    let Some(leases) = sessions(config).await?.leases else {
        tracing::info!(role, "no JAMUNA_REDIS_URL: this process does all of the {role}'s work; run one replica");
        return Ok(WorkShare::everything(units));
    };
    let member = format!("{}-{}-{:04x}", hostname(), std::process::id(), rand::random::<u16>());
    tracing::info!(group, member, "sharing the {role}'s work with its other replicas through Redis");
    Ok(WorkShare::start(leases, group, member, units, WorkShareConfig::with_ttl(Duration::from_millis(config.redis.lease_ttl_ms))))
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

/// The blob store `blobs.url` names: files under `<data_dir>/blobs` by
/// default, or an S3-compatible bucket.
pub fn blob_store(config: &Config) -> Result<Arc<dyn jamuna_commands::blobs::BlobStore>> {
    use jamuna_commands::blobs::{BlobUrl, fs::FsBlobs, s3::S3Blobs, s3::S3Config};
    use secrecy::ExposeSecret;
    Ok(match config.blob_url()? {
        BlobUrl::Dir(dir) => Arc::new(FsBlobs::open(&dir).with_context(|| format!("cannot open the blob store in {}", dir.display()))?),
        BlobUrl::S3 { bucket } => {
            let Some((access_key_id, secret)) = &config.s3_credentials else {
                anyhow::bail!(
                    "blobs.url is s3://{bucket}: set {} and {}",
                    crate::config::S3_ACCESS_KEY_ENV,
                    crate::config::S3_SECRET_KEY_ENV
                );
            };
            let region = config.blobs.s3_region.clone();
            let Some(endpoint) = config.blobs.s3_endpoint.clone() else {
                anyhow::bail!(
                    "blobs.url is s3://{bucket}: set blobs.s3_endpoint to an http:// S3-compatible endpoint (AWS S3 over https is not built yet)"
                );
            };
            Arc::new(
                S3Blobs::new(S3Config {
                    endpoint,
                    bucket,
                    region,
                    access_key_id: access_key_id.clone(),
                    secret_access_key: secret.expose_secret().to_owned(),
                })
                .context("cannot make the S3 client")?,
            )
        }
    })
}

/// The notifier ([`crate::notify`]), started in this process, while it
/// holds the notifier's unit of `share` (or always, without one); `None`
/// when `smtp.url` is off. Stop it by sending `true` and awaiting the task.
pub async fn notifier(
    config: &Config,
    commands: Arc<CommandHandler>,
    users: Arc<dyn jamuna_projections::users::UserStore>,
    share: Option<&jamuna_projections::work_share::WorkShare>,
) -> Result<Option<(tokio::sync::watch::Sender<bool>, tokio::task::JoinHandle<()>)>> {
    use crate::notify::{Notifier, Settings, UNIT, smtp};
    let Some(url) = &config.smtp.url else {
        tracing::info!("no JAMUNA_SMTP_URL: no notification e-mails");
        return Ok(None);
    };
    let mailer = smtp::Smtp::new(smtp::SmtpConfig::parse(url, &config.smtp.from, config.smtp_credentials.clone())?);
    let notifier = Notifier {
        commands,
        presence: sessions(config).await?.presence,
        addresses: crate::notify::addresses(users),
        mailer: Arc::new(mailer),
        checkpoint: checkpoint(config).await?,
        settings: Settings {
            unanswered_after: config.notify.unanswered_after(),
            origin: config.http.public_origin.clone().unwrap_or_else(|| format!("http://{}", config.http.listen)),
        },
    };
    // Alone, this process holds the unit for good (the sender lives as long as the task).
    let (alone, held) = tokio::sync::watch::channel([UNIT.to_owned()].into_iter().collect());
    let held = share.map_or(held, |s| s.held());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move {
        let _alone = alone;
        notifier.run_until(held, stopped).await
    });
    Ok(Some((stop, task)))
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

/// The embedding model in `model_dir`, as `model` says (threads and precision; blocking:
/// seconds on first load).
pub fn embedder(model_dir: &Path, model: &crate::config::ModelConfig) -> Result<Embedder> {
    Embedder::load_with(model_dir, model.threads(), model.precision()?)
        .with_context(|| format!("cannot load the embedding model from {} (run scripts/fetch-model.sh)", model_dir.display()))
}

/// The AI worker's model as the gaps model's [`TextEncoder`]: a customer's
/// question, embedded as the bot embeds messages.
struct QuestionEncoder(AsyncEmbedder);

#[async_trait::async_trait]
impl jamuna_projections::gaps::TextEncoder for QuestionEncoder {
    async fn encode(&self, text: &str) -> Result<Vec<f32>, jamuna_projections::vectors::EncodeError> {
        let v = self.0.embed(vec![text.to_owned()]).await.map_err(|e| jamuna_projections::vectors::EncodeError(Box::new(e)))?;
        v.into_iter().next().ok_or_else(|| jamuna_projections::vectors::EncodeError("the model returned no vector".into()))
    }
}

/// The content-gaps projection of `models`, its questions embedded by `embedder`.
pub fn gaps_projection(models: &ReadModels, sealer: &Sealer, embedder: &AsyncEmbedder) -> Arc<dyn jamuna_projections::Projection> {
    models.gaps_projection(sealer, Arc::new(QuestionEncoder(embedder.clone())))
}

/// The knowledge-base vectors, with the projection that fills them with
/// passages embedded by `embedder`: the Qdrant server when `qdrant.url` is
/// set, else qdrant-edge in-process under `<data_dir>/vectors`.
pub async fn vectors(config: &Config, embedder: &AsyncEmbedder) -> Result<Arc<jamuna_projections::vectors::VectorProjection>> {
    use jamuna_projections::vectors::{VectorIndex, VectorProjection, edge::EdgeVectors, qdrant::QdrantVectors};
    let dimension = embedder.embedder().dim();
    let index: Arc<dyn VectorIndex> = match &config.qdrant.url {
        Some(url) => Arc::new(
            QdrantVectors::connect(url, &config.qdrant.collection, dimension)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `jamuna events tail` once read `JAMUNA_EVENTS` whatever the
    /// configuration said; every command now takes its log from here.
    #[test]
    fn the_nats_log_uses_the_configured_stream() {
        let mut config = Config::defaults().unwrap();
        config.nats.stream = "X".into();
        config.nats.subject_prefix = "x".into();
        let nats = nats_config(&config);
        assert_eq!((nats.stream_name.as_str(), nats.subject_prefix.as_str()), ("X", "x"));
        assert_eq!(nats_config(&Config::defaults().unwrap()).stream_name, "JAMUNA_EVENTS");
    }
}
