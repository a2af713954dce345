//! `jamuna ai-worker`: follows the log and answers customers (or hands them
//! to a human). On SIGTERM it finishes the message in hand, stores its
//! checkpoints, releases its partitions and stops.
//!
//! Replicas split the conversations' partitions between them by leases in
//! Redis (see `jamuna_projections::work_share`), so each message is decided
//! by one worker; without Redis one worker does all of it.

use super::{Ready, jwt_secret, ops_router, serve_ops, write_side};
use crate::config::Config;
use anyhow::{Context, Result};
use jamuna_ai_worker::answer::{AnswerConfig, Answerer};
use jamuna_ai_worker::worker::{Checkpoint, CheckpointStore, Worker, partition_units};
use jamuna_ai_worker::{AsyncEmbedder, Embedder};
use jamuna_commands::CommandHandler;
use jamuna_projections::mongo::MongoReadDb;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct Args {
    /// Dev mode: no JAMUNA_JWT_SECRET needed [env: JAMUNA_DEV]
    #[arg(long)]
    pub dev: bool,
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

/// Where the worker's checkpoint lives.
pub async fn checkpoint(config: &Config) -> Result<Arc<dyn CheckpointStore>> {
    Ok(match config.mongodb() {
        Some(url) => Arc::new(MongoCheckpoint(
            MongoReadDb::connect(url, &config.mongodb_database)
                .await
                .with_context(|| format!("cannot open the checkpoint store at {url}"))?,
        )),
        None => Arc::new(Checkpoint::in_dir(config.data_dir.clone())),
    })
}

/// The answerer: the embedding model and the knowledge-base index.
pub async fn answerer(config: &Config) -> Result<Arc<Answerer>> {
    let embedder = Embedder::load(&config.model_dir)
        .with_context(|| format!("cannot load the embedding model from {} (run scripts/fetch-model.sh)", config.model_dir.display()))?;
    let embedder = AsyncEmbedder::new(Arc::new(embedder));
    let vectors = crate::roles::open_vectors(config, &embedder).await?;
    let answerer = Answerer::new(embedder, vectors, AnswerConfig::default()).await.context("cannot start the answerer")?;
    // Trained intent models are cached in the data directory (`kb train` writes there too);
    // conversations' context lives in Redis when configured, else in this process.
    let sessions = super::sessions(config).await?.sessions;
    Ok(Arc::new(answerer.with_model_cache(jamuna_ai_worker::learn::ModelCache::in_data_dir(&config.data_dir)).with_sessions(sessions)))
}

/// The worker, ready to run, with its share of the partitions.
pub async fn worker(config: &Config, commands: Arc<CommandHandler>) -> Result<Worker> {
    let share = Arc::new(super::work_share(config, "ai-worker", partition_units()).await?);
    Ok(Worker { commands, answerer: answerer(config).await?, checkpoint: checkpoint(config).await?, share })
}

pub async fn run(args: Args, mut config: Config) -> Result<()> {
    config.dev |= args.dev;
    super::data_dir(&config)?;
    jwt_secret(&config)?;
    let metrics = super::metrics()?;
    let write = write_side(&config).await?;
    let worker = worker(&config, write.commands.clone()).await?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(worker.run_until(write.log.clone(), stop_rx));
    let log = write.log.clone();
    let ready: Ready = Arc::new(move || {
        let log = log.clone();
        Box::pin(async move { log.head().await.map(|_| ()).map_err(|e| format!("the event log is unavailable: {e}")) })
    });
    serve_ops(&config, "ai-worker", ops_router(metrics, ready), super::shutdown_signal()).await?;
    let _ = stop_tx.send(true);
    task.await.context("the ai-worker task failed")?;
    tracing::info!("ai-worker stopped");
    Ok(())
}
