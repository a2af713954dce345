//! `jamuna eval --train TRAIN.csv --test TEST.csv [--oos-label oos] [--val VAL.csv]
//! [--seeds N] [--retention R]`: trains intent classification exactly as the product does, scores
//! the test set, prints a per-intent report (of the product's seed) and the figures
//! over the seeds, and, as its last line, one JSON object
//! ([`jamuna_ai_worker::eval::EvalRuns::summary_json`]).

use crate::config::Config;
use anyhow::{Context, Result};
use jamuna_ai_worker::eval::EvalOptions;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    train: PathBuf,
    #[arg(long)]
    test: PathBuf,
    /// Test (and validation) rows with this category are out of scope: the right outcome is a handoff.
    #[arg(long)]
    oos_label: Option<String>,
    /// Choose the handoff threshold on this labelled file (the highest that answers
    /// `--retention` of its in-scope rows) instead of on training's held-out examples.
    #[arg(long)]
    val: Option<PathBuf>,
    /// The in-scope retention the threshold keeps, as a tenant's `handoff_retention` sets
    /// it for the live bot (0.95 by default).
    #[arg(long, default_value_t = jamuna_ai_worker::intent::DEFAULT_RETENTION, value_parser = retention)]
    retention: f32,
    /// Train this many times, with the product's seed and the next ones; figures are
    /// reported as mean and spread. Training is deterministic for one seed.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=100))]
    seeds: u64,
}

pub async fn run(args: Args, config: &Config) -> Result<()> {
    let dir = config.model_dir.clone();
    let model = config.model.clone();
    let options = EvalOptions { oos_label: args.oos_label, val: args.val, seeds: args.seeds as usize, retention: args.retention };
    let report = tokio::task::spawn_blocking(move || {
        let embedder = crate::ports::embedder(&dir, &model)?;
        jamuna_ai_worker::eval::run_with(&embedder, &args.train, &args.test, &options).context("evaluation failed")
    })
    .await??;
    println!("{report}");
    println!("{}", report.summary_json());
    Ok(())
}

/// A share above 0, at most 1 (the tenants' setting is narrower: 0.80 to 0.995).
fn retention(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(r) if r > 0.0 && r <= 1.0 => Ok(r),
        _ => Err(format!("{s:?} is not a share of in-scope messages (0 < R <= 1)")),
    }
}
