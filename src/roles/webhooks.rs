//! The webhook deliverer, wired to this installation's ports: the event log
//! and key store of the write side, and the checkpoint store the AI worker
//! uses (a file in the data directory, or the read models' MongoDB).
//!
//! `jamuna serve` runs it in-process. In the distributed mode it runs in the
//! `projector` role: like a projection it folds the log from a checkpoint and
//! needs no model, and the projector is the role that is already replicated
//! with leases; its replicas hold one lease, `webhooks`, so one of them
//! delivers and another takes over (from the shared checkpoint) when it dies.

use crate::config::Config;
use anyhow::{Context, Result};
use jamuna_ai_worker::worker::CheckpointStore;
use jamuna_commands::CommandHandler;
use jamuna_webhooks::{Checkpoints, Deliverer, DelivererConfig};
use std::sync::Arc;

/// The AI worker's checkpoint store, under the deliverer's own key.
struct Shared(Arc<dyn CheckpointStore>);

#[async_trait::async_trait]
impl Checkpoints for Shared {
    async fn load(&self, key: &str) -> std::io::Result<u64> {
        self.0.load(key).await
    }
    async fn store(&self, key: &str, position: u64) -> std::io::Result<()> {
        self.0.store(key, position).await
    }
}

pub async fn deliverer(config: &Config, commands: Arc<CommandHandler>) -> Result<Deliverer> {
    let checkpoint = Arc::new(Shared(crate::ports::checkpoint(config).await?));
    let settings = DelivererConfig { allow_insecure_hosts: config.webhooks.allowed_hosts(), ..DelivererConfig::default() };
    Deliverer::new(commands, checkpoint, settings).context("cannot make the webhooks' HTTPS client")
}
