//! `jamuna serve`: the whole product in one process (the embedded mode) —
//! every role of the distributed mode (gateway, projector, AI worker) over
//! the adapters the configuration selects, by default the embedded ones (the
//! SQLite event log, read models and keys in the data directory), with the
//! web clients served as static files, and the notifier when `smtp.url` is set.

use crate::config::Config;
use crate::ports;
use crate::roles::{self, gateway, projector};
use anyhow::Result;
use jamuna_gateway::reads::{CatchUp, GatewayReads};
use std::sync::Arc;

pub async fn run(config: Config) -> Result<()> {
    roles::data_dir(&config)?;
    roles::jwt_secret(&config)?;
    let metrics = roles::metrics()?;
    let write = ports::write_side(&config).await?;

    // Read models, following the log; the content gaps too, whose questions
    // are embedded with the AI worker's model (loaded once, for both).
    let models = ports::read_models(&config).await?;
    let embedder = roles::ai_worker::embedder(&config)?;
    let gaps = ports::gaps_projection(&models, &write.sealer, &embedder);
    let (projector, handles) = projector::start(&models, vec![gaps], write.log.clone(), &write.sealer, None, None)?;
    // Read-your-writes waits for users and conversations (analytics and gaps may lag).
    let waited = |name: &str| name != jamuna_projections::analytics::PROJECTION && name != jamuna_projections::gaps::PROJECTION;
    let reads = Arc::new(GatewayReads {
        users: models.users.clone(),
        conversations: models.conversations.clone(),
        analytics: models.analytics.clone(),
        gaps: models.gaps.clone(),
        catch_up: CatchUp::Local(handles.into_iter().filter(|h| waited(h.name())).collect()),
    });

    // The AI worker, in-process.
    let worker = roles::ai_worker::worker_with(&config, write.commands.clone(), embedder).await?;
    let (stop_worker, stop_rx) = tokio::sync::watch::channel(false);
    let router = roles::ai_worker::router(&config, write.commands.clone()).await?;
    let router = tokio::spawn(router.run_until(write.log.clone(), stop_rx.clone()));
    let deliverer = roles::webhooks::deliverer(&config, write.commands.clone()).await?;
    let deliverer = tokio::spawn(deliverer.run_until(stop_rx.clone(), None));
    let worker = tokio::spawn(worker.run_until(write.log.clone(), stop_rx));

    // The notifier (e-mails), in-process, when an SMTP relay is configured.
    let notifier = ports::notifier(&config, write.commands.clone(), models.users.clone(), None).await?;

    // Projection status for `jamuna projections status` (positions and lag only).
    let status = projector::status_router(projector.clone());
    gateway::serve_api(&config, write, reads, metrics, status, roles::shutdown_signal()).await?;
    let _ = stop_worker.send(true);
    let _ = worker.await;
    if let Some((stop, task)) = notifier {
        let _ = stop.send(true);
        let _ = task.await;
    }
    let _ = router.await;
    let _ = deliverer.await;
    projector.shutdown().await;
    Ok(())
}
