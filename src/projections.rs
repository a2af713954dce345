//! `jamuna replay` and `jamuna projections status`: the read side, offline.

use crate::config::Config;
use crate::ports;
use anyhow::{Result, bail};
use jamuna_commands::Sealer;

#[derive(clap::Args)]
pub struct ReplayArgs {
    /// Only this projection (users, conversations, analytics, vectors, gaps); all when absent.
    #[arg(long)]
    projection: Option<String>,
}

#[derive(clap::Subcommand)]
pub enum ProjectionsCommand {
    /// Each projection's position, lag behind the log's head, and state.
    Status {
        /// A running server to ask (its live state); without it, the stored checkpoints are read.
        #[arg(long)]
        url: Option<String>,
    },
}

/// The read models and the key store the configuration names (SQLite in the
/// data directory, or MongoDB).
async fn open(config: &Config) -> Result<(jamuna_projections::ReadModels, Sealer)> {
    Ok((ports::read_models(config).await?, Sealer::new(ports::key_store(config).await?)))
}

/// Drops and rebuilds read models from the whole log. Stop `jamuna serve`
/// (or the `jamuna projector`) first: it would write to the same read models.
pub async fn replay(args: ReplayArgs, config: &Config) -> Result<()> {
    let log = ports::event_log(config).await?;
    let (models, sealer) = open(config).await?;
    let mut projections: Vec<_> =
        models.projections(&sealer).into_iter().filter(|p| args.projection.as_deref().is_none_or(|n| n == p.name())).collect();
    // The knowledge-base vectors and the content gaps embed again, so the model is loaded.
    let wants = |name: &str| args.projection.as_deref().is_none_or(|n| n == name);
    if wants(jamuna_projections::vectors::PROJECTION) || wants(jamuna_projections::gaps::PROJECTION) {
        let embedder = jamuna_ai_worker::AsyncEmbedder::new(std::sync::Arc::new(ports::embedder(&config.model_dir, &config.model)?));
        if wants(jamuna_projections::vectors::PROJECTION) {
            let vectors: std::sync::Arc<dyn jamuna_projections::Projection> = ports::vectors(config, &embedder).await?;
            projections.push(vectors);
        }
        if wants(jamuna_projections::gaps::PROJECTION) {
            projections.push(ports::gaps_projection(&models, &sealer, &embedder));
        }
    }
    if projections.is_empty() {
        bail!("no projection is called {:?}: use users, conversations, analytics, vectors or gaps", args.projection.unwrap_or_default());
    }
    for p in projections {
        let bar = indicatif::ProgressBar::new(log.head().await?);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{msg:>14} [{bar:40}] {pos}/{len} events ({per_sec}, eta {eta})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.set_message(p.name().to_string());
        let summary = jamuna_projections::replay(log.clone(), &*p, |progress| bar.set_position(progress.position)).await?;
        bar.finish_and_clear();
        println!("{summary}");
    }
    Ok(())
}

pub async fn run(command: ProjectionsCommand, config: &Config) -> Result<()> {
    let ProjectionsCommand::Status { url } = command;
    if let Some(url) = url {
        let body: serde_json::Value =
            reqwest::get(format!("{}/status/projections", url.trim_end_matches('/'))).await?.error_for_status()?.json().await?;
        println!("{:<14} {:>10} {:>10} {:>8}  state", "projection", "position", "head", "lag");
        for p in body["projections"].as_array().into_iter().flatten() {
            let state = match p["state"].as_str() {
                Some("failed") => format!("failed at {}: {}", p["at_position"], p["error"].as_str().unwrap_or_default()),
                Some(s) => s.replace('_', " "),
                None => "?".into(),
            };
            let n = |k: &str| p[k].as_u64().unwrap_or_default();
            println!("{:<14} {:>10} {:>10} {:>8}  {state}", p["name"].as_str().unwrap_or("?"), n("position"), n("head"), n("lag"));
        }
        return Ok(());
    }
    let log = ports::event_log(config).await?;
    let head = log.head().await?;
    let (models, sealer) = open(config).await?;
    println!("{:<14} {:>10} {:>10} {:>8}  state", "projection", "position", "head", "lag");
    for p in models.projections(&sealer) {
        let position = p.checkpoint().await?;
        println!(
            "{:<14} {:>10} {:>10} {:>8}  stored checkpoint (ask a running server with --url for its live state)",
            p.name(),
            position,
            head,
            head.saturating_sub(position)
        );
    }
    Ok(())
}
