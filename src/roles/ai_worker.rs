//! `jamuna ai-worker`: follows the log and answers customers (or hands them
//! to a human). On SIGTERM it finishes the message in hand, stores its
//! checkpoints, releases its partitions and stops.
//!
//! Replicas split the conversations' partitions between them by leases in
//! Redis (see `jamuna_projections::work_share`), so each message is decided
//! by one worker; without Redis one worker does all of it.

use super::{Ready, jwt_secret, ops_router, serve_ops};
use crate::config::Config;
use crate::ports::{self, write_side};
use anyhow::{Context, Result};
use jamuna_ai_worker::AsyncEmbedder;
use jamuna_ai_worker::answer::{AnswerConfig, Answerer};
use jamuna_ai_worker::worker::{Worker, partition_units};
use jamuna_commands::CommandHandler;
use std::sync::Arc;

/// The answerer: the embedding model and the knowledge-base index.
pub async fn answerer(config: &Config) -> Result<Arc<Answerer>> {
    let embedder = AsyncEmbedder::new(Arc::new(ports::embedder(&config.model_dir, config.model.threads())?));
    let vectors = ports::vectors(config, &embedder).await?;
    let answerer = Answerer::new(embedder, vectors, AnswerConfig::default()).await.context("cannot start the answerer")?;
    // Trained intent models are cached in the data directory (`kb train` writes there too);
    // conversations' context lives in Redis when configured, else in this process.
    let sessions = ports::sessions(config).await?.sessions;
    Ok(Arc::new(answerer.with_model_cache(jamuna_ai_worker::learn::ModelCache::in_data_dir(&config.data_dir)).with_sessions(sessions)))
}

/// The worker, ready to run, with its share of the partitions.
pub async fn worker(config: &Config, commands: Arc<CommandHandler>) -> Result<Worker> {
    let share = Arc::new(ports::work_share(config, "ai-worker", partition_units()).await?);
    Ok(Worker { commands, answerer: answerer(config).await?, checkpoint: ports::checkpoint(config).await?, share })
}

pub async fn run(config: Config) -> Result<()> {
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
