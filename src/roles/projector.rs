//! `jamuna projector [--projection NAME]`: keeps the read models up to date
//! from the log. On SIGTERM each projection finishes the batch it is
//! applying (its checkpoint is stored in the same write) and stops.
//!
//! Replicas share the projections: with Redis configured, each replica joins
//! the group of projectors running the same projections and runs those it
//! holds a lease on (see `jamuna_projections::work_share`); the others stand
//! by and take over within the lease TTL when it dies. Without Redis one
//! projector runs them all: a second one would not corrupt a read model
//! (every write is conditional on the position it was read at) but would do
//! the work twice.
//!
//! The projector also runs the notifier (`crate::notify`) when `smtp.url`
//! is set: one unit of work of its own group, held by one replica at a time.

use super::{Ready, jwt_secret, ops_router, serve_ops};
use crate::config::Config;
use crate::ports::{event_log, key_store, read_models, work_share, write_side};
use anyhow::{Result, bail};
use axum::response::IntoResponse;
use jamuna_commands::{EventLog, Sealer};
use jamuna_projections::work_share::WorkShare;
use jamuna_projections::{Projection, ProjectionHandle, Projector, ReadModels, RunState};
use std::sync::Arc;

#[derive(clap::Args)]
pub struct Args {
    /// Only this projection (users, conversations, analytics); all when absent.
    #[arg(long)]
    pub projection: Option<String>,
}

/// Starts the projections of `models` and `extra` (or only the one called
/// `only`), each only while its name is in `share`'s set when given.
pub fn start(
    models: &ReadModels,
    extra: Vec<Arc<dyn Projection>>,
    log: Arc<dyn EventLog>,
    sealer: &Sealer,
    only: Option<&str>,
    share: Option<&WorkShare>,
) -> Result<(Arc<Projector>, Vec<ProjectionHandle>)> {
    let mut projector = Projector::new(log);
    if let Some(share) = share {
        projector.share(share.held());
    }
    let handles: Vec<_> = models
        .projections(sealer)
        .into_iter()
        .chain(extra)
        .filter(|p| only.is_none_or(|n| n == p.name()))
        .map(|p| projector.add(p))
        .collect();
    if handles.is_empty() {
        bail!("no projection is called {:?}: use users, conversations or analytics", only.unwrap_or_default());
    }
    projector.start();
    Ok((Arc::new(projector), handles))
}

/// `GET /status/projections`: each projection's position, lag and state.
pub fn status_router(projector: Arc<Projector>) -> axum::Router {
    axum::Router::new().route(
        "/status/projections",
        axum::routing::get(move || {
            let projector = projector.clone();
            async move {
                match projector.status().await {
                    Ok(s) => axum::Json(serde_json::json!({"projections": s})).into_response(),
                    Err(e) => (axum::http::StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
                }
            }
        }),
    )
}

pub async fn run(args: Args, config: Config) -> Result<()> {
    super::data_dir(&config)?;
    jwt_secret(&config)?;
    let metrics = super::metrics()?;
    let log = event_log(&config).await?;
    let sealer = Sealer::new(key_store(&config).await?);
    let models = read_models(&config).await?;
    // Replicas running the same projections form one group and split them.
    let mut units: Vec<String> = models
        .projections(&sealer)
        .iter()
        .map(|p| p.name().to_owned())
        .filter(|n| args.projection.as_deref().is_none_or(|o| o == n))
        .collect();
    units.sort();
    let share = work_share(&config, &format!("projector:{}", units.join(",")), units).await?;
    let (projector, handles) = start(&models, vec![], log.clone(), &sealer, args.projection.as_deref(), Some(&share))?;
    // The notifier: one replica at a time, by a lease of its own.
    let notifier = match &config.smtp.url {
        Some(_) if args.projection.is_none() => {
            let notify_share = work_share(&config, "notifier", vec![crate::notify::UNIT.to_owned()]).await?;
            let write = write_side(&config).await?;
            crate::ports::notifier(&config, write.commands, models.users.clone(), Some(&notify_share)).await?.map(|n| (n, notify_share))
        }
        _ => None,
    };
    // The webhook deliverer, in the replica that holds its lease (see `super::webhooks`).
    let hooks = work_share(&config, "webhooks", vec![jamuna_webhooks::deliver::UNIT.into()]).await?;
    let commands = Arc::new(jamuna_commands::CommandHandler::new(log.clone(), sealer.clone()));
    let (stop_hooks, stop_rx) = tokio::sync::watch::channel(false);
    let deliverer = tokio::spawn(super::webhooks::deliverer(&config, commands).await?.run_until(stop_rx, Some(hooks.held())));
    // Ready while the log answers and no projection has failed.
    let ready: Ready = Arc::new(move || {
        let (log, handles) = (log.clone(), handles.clone());
        Box::pin(async move {
            log.head().await.map_err(|e| format!("the event log is unavailable: {e}"))?;
            for h in &handles {
                if let RunState::Failed { position, error } = h.progress().state {
                    return Err(format!("projection {} failed at position {position}: {error}", h.name()));
                }
            }
            Ok(())
        })
    });
    let router = ops_router(metrics, ready).merge(status_router(projector.clone()));
    serve_ops(&config, "projector", router, super::shutdown_signal()).await?;
    if let Some(((stop, task), notify_share)) = notifier {
        let _ = stop.send(true);
        let _ = task.await;
        notify_share.shutdown().await;
    }
    let _ = stop_hooks.send(true);
    let _ = deliverer.await;
    hooks.shutdown().await;
    projector.shutdown().await;
    share.shutdown().await;
    tracing::info!("projector stopped; checkpoints stored, projections released");
    Ok(())
}
