//! `jamuna ai-worker`: follows the log and answers customers (or hands them
//! to a human). On SIGTERM it finishes the message in hand, stores its
//! checkpoints, releases its partitions and stops.
//!
//! Replicas split the conversations' partitions between them by leases in
//! Redis (see `jamuna_projections::work_share`), so each message is decided
//! by one worker; without Redis one worker does all of it.
//!
//! The worker's process also runs the router (see [`router`]), which gives
//! conversations waiting for a human to online agents.
//!
//! The worker also runs the content-gaps projection ([`gaps`]): it embeds
//! customers' questions with the model this role loads anyway.

use super::{Ready, jwt_secret, ops_router, serve_ops};
use crate::config::Config;
use crate::ports::{self, write_side};
use anyhow::{Context, Result};
use jamuna_ai_worker::AsyncEmbedder;
use jamuna_ai_worker::answer::{AnswerConfig, Answerer};
use jamuna_ai_worker::router::{Router, tenant_units};
use jamuna_ai_worker::worker::{Worker, partition_units};
use jamuna_commands::{CommandHandler, EventLog, Sealer};
use jamuna_projections::work_share::WorkShare;
use jamuna_projections::{Projector, ReadModels};
use std::sync::Arc;

/// The embedding model, loaded once for the answerer and the gaps projection.
pub fn embedder(config: &Config) -> Result<AsyncEmbedder> {
    Ok(AsyncEmbedder::new(Arc::new(ports::embedder(&config.model_dir, &config.model)?)))
}

/// The answerer: the embedding model and the knowledge-base index.
pub async fn answerer(config: &Config, embedder: AsyncEmbedder) -> Result<Arc<Answerer>> {
    let vectors = ports::vectors(config, &embedder).await?;
    let answerer = Answerer::new(embedder, vectors, AnswerConfig::default()).await.context("cannot start the answerer")?;
    // Trained intent models are cached in the data directory (`kb train` writes there too);
    // conversations' context lives in Redis when configured, else in this process.
    let sessions = ports::sessions(config).await?.sessions;
    Ok(Arc::new(answerer.with_model_cache(jamuna_ai_worker::learn::ModelCache::in_data_dir(&config.data_dir)).with_sessions(sessions)))
}

/// The worker, ready to run, with its share of the partitions.
pub async fn worker(config: &Config, commands: Arc<CommandHandler>) -> Result<Worker> {
    worker_with(config, commands, embedder(config)?).await
}

/// The worker with a model already loaded.
pub async fn worker_with(config: &Config, commands: Arc<CommandHandler>, embedder: AsyncEmbedder) -> Result<Worker> {
    let share = Arc::new(ports::work_share(config, "ai-worker", partition_units()).await?);
    Ok(Worker { commands, answerer: answerer(config, embedder).await?, checkpoint: ports::checkpoint(config).await?, share })
}

/// The content-gaps projection (`jamuna_projections::gaps`), following the
/// log in this process: it embeds questions, so it runs where the model is.
/// Replicas share it by a lease like the projector's projections (one runs
/// it, the others stand by).
pub async fn gaps(
    config: &Config,
    models: &ReadModels,
    log: Arc<dyn EventLog>,
    sealer: &Sealer,
    embedder: &AsyncEmbedder,
) -> Result<(Projector, WorkShare)> {
    let name = jamuna_projections::gaps::PROJECTION.to_owned();
    let share = ports::work_share(config, "ai-worker-gaps", vec![name]).await?;
    let mut projector = Projector::new(log);
    projector.share(share.held());
    projector.add(ports::gaps_projection(models, sealer, embedder));
    projector.start();
    Ok((projector, share))
}

/// The router (`jamuna_ai_worker::router`): it runs in the AI worker's
/// process, which already follows the log, sends commands and shares
/// partitioned work by leases — no new deployment. Replicas split the
/// tenants' partitions (group `router`).
pub async fn router(config: &Config, commands: Arc<CommandHandler>) -> Result<Router> {
    let share = Arc::new(ports::work_share(config, "router", tenant_units()).await?);
    let presence = ports::sessions(config).await?.presence;
    Ok(Router { commands, presence, share, config: config.router.config() })
}

pub async fn run(config: Config) -> Result<()> {
    super::data_dir(&config)?;
    jwt_secret(&config)?;
    let metrics = super::metrics()?;
    let write = write_side(&config).await?;
    let embedder = embedder(&config)?;
    let worker = worker_with(&config, write.commands.clone(), embedder.clone()).await?;
    let models = ports::read_models(&config).await?;
    let (gaps, gaps_share) = gaps(&config, &models, write.log.clone(), &write.sealer, &embedder).await?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let router = router(&config, write.commands.clone()).await?;
    let router = tokio::spawn(router.run_until(write.log.clone(), stop_rx.clone()));
    let task = tokio::spawn(worker.run_until(write.log.clone(), stop_rx));
    let log = write.log.clone();
    let ready: Ready = Arc::new(move || {
        let log = log.clone();
        Box::pin(async move { log.head().await.map(|_| ()).map_err(|e| format!("the event log is unavailable: {e}")) })
    });
    serve_ops(&config, "ai-worker", ops_router(metrics, ready), super::shutdown_signal()).await?;
    let _ = stop_tx.send(true);
    task.await.context("the ai-worker task failed")?;
    router.await.context("the router task failed")?;
    gaps.shutdown().await;
    gaps_share.shutdown().await;
    tracing::info!("ai-worker stopped");
    Ok(())
}
