//! `jamuna`: the command-line program that wires Jamuna's crates together.
#![forbid(unsafe_code)]

mod bench;
mod config;
mod eval;
mod events;
mod kb;
mod notify;
mod ports;
mod projections;
mod roles;
mod serve;
mod telemetry;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "jamuna", version, about = "Jamuna: an event-sourced customer-support chat platform")]
pub(crate) struct Cli {
    /// One flag per configuration key, and `--config FILE`.
    #[command(flatten)]
    pub(crate) flags: config::Flags,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Read the event log.
    #[command(subcommand)]
    Events(events::EventsCommand),
    /// The knowledge base.
    #[command(subcommand)]
    Kb(kb::KbCommand),
    /// Train intent classification as the product does and score a test set.
    Eval(eval::Args),
    /// Drop and rebuild read models from the event log (stop `serve` first).
    Replay(projections::ReplayArgs),
    /// The read models' projections.
    #[command(subcommand)]
    Projections(projections::ProjectionsCommand),
    /// Run Jamuna in one process (the embedded mode).
    Serve,
    /// The distributed mode's HTTP and WebSocket API (no projectors, no AI worker).
    Gateway,
    /// The distributed mode's projections into the read models.
    Projector(roles::projector::Args),
    /// The distributed mode's AI worker.
    #[command(name = "ai-worker")]
    AiWorker,
    /// Measure Jamuna's parts and print the figures.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let telemetry = init_tracing(&cli.command)?;
    // One TLS provider for every client (NATS, MongoDB, KurrentDB), before any connects.
    jamuna_commands::tls::ensure_crypto_provider();
    let config = config::Config::load(&cli.flags)?;
    let outcome = match cli.command {
        Command::Events(c) => events::run(c, &config).await,
        Command::Bench(c) => bench::run(c, &config).await,
        Command::Serve => serve::run(config).await,
        Command::Gateway => roles::gateway::run(config).await,
        Command::Projector(args) => roles::projector::run(args, config).await,
        Command::AiWorker => roles::ai_worker::run(config).await,
        Command::Kb(c) => kb::run(c, &config).await,
        Command::Replay(args) => projections::replay(args, &config).await,
        Command::Projections(c) => projections::run(c, &config).await,
        Command::Eval(args) => eval::run(args, &config).await,
    };
    if let Some(t) = telemetry {
        // Export the spans still buffered (the exporter's client blocks).
        let _ = tokio::task::spawn_blocking(move || t.shutdown()).await;
    }
    outcome
}

/// Logs to stderr (filtered by `JAMUNA_LOG`), and traces over OTLP when
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is set (see [`telemetry`]), under the
/// role's service name unless `OTEL_SERVICE_NAME` names one.
fn init_tracing(command: &Command) -> Result<Option<telemetry::Telemetry>> {
    use tracing_subscriber::prelude::*;
    let service = match command {
        Command::Gateway => "jamuna-gateway",
        Command::Projector(_) => "jamuna-projector",
        Command::AiWorker => "jamuna-ai-worker",
        _ => "jamuna",
    };
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(tracing_subscriber::EnvFilter::try_from_env("JAMUNA_LOG").unwrap_or_else(|_| "info,qdrant_edge=error".into()));
    let (telemetry, otlp) = telemetry::Telemetry::from_env(service)?.unzip();
    // Traces take the info-level spans whatever JAMUNA_LOG says.
    let otlp = otlp.map(|l| l.with_filter(tracing_subscriber::filter::LevelFilter::INFO));
    tracing_subscriber::registry().with(fmt).with(otlp).init();
    Ok(telemetry)
}
