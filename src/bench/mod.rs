//! `jamuna bench …`: benchmarks that print figures. Tests never time things;
//! these do, on the machine they run on.

mod answer;
mod append;
mod chat;
mod embed;
mod replay;
mod ws;

use crate::config::Config;
use anyhow::Result;

#[derive(clap::Subcommand)]
pub enum BenchCommand {
    /// Commands/s and append latency of the event log, per adapter.
    Append(append::Args),
    /// Many WebSockets against a real server: RSS, messages/s, ack and push latency.
    Ws(ws::Args),
    /// Rebuild of every read model per adapter (events/s) and inbox query latency
    /// (SQLite, and MongoDB when --mongodb-url or JAMUNA_MONGODB_URL is set).
    Replay(replay::Args),
    /// The encoder: sentences/s in batches of 64, single-sentence latency.
    Embed(embed::Args),
    /// The bot end to end (embedded mode): customer message appended → answer appended.
    Answer(answer::Args),
    /// Embedded and distributed side by side: answers/s and send → bot answer pushed, p50/p99.
    Chat(chat::Args),
}

pub async fn run(command: BenchCommand, config: &Config) -> Result<()> {
    match command {
        BenchCommand::Append(args) => append::run(args).await,
        BenchCommand::Ws(args) => ws::run(args, &config.model_dir).await,
        BenchCommand::Replay(args) => replay::run(args, config.mongodb.url.as_deref()).await,
        BenchCommand::Embed(args) => embed::run(args, &config.model_dir, &config.model).await,
        BenchCommand::Answer(args) => answer::run(args, config).await,
        BenchCommand::Chat(args) => chat::run(args, config).await,
    }
}

/// Latencies in microseconds, reported as p50/p99 in milliseconds.
pub struct Latencies(hdrhistogram::Histogram<u64>);

impl Latencies {
    pub fn new() -> Self {
        Self(hdrhistogram::Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds"))
    }
    pub fn record(&mut self, d: std::time::Duration) {
        let _ = self.0.record((d.as_micros() as u64).clamp(1, 60_000_000));
    }
    pub fn add(&mut self, other: &Latencies) {
        let _ = self.0.add(&other.0);
    }
    pub fn count(&self) -> u64 {
        self.0.len()
    }
    pub fn ms(&self, q: f64) -> f64 {
        self.0.value_at_quantile(q) as f64 / 1000.0
    }
}
