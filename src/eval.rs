//! `jamuna eval --train TRAIN.csv --test TEST.csv [--oos-label oos] [--val VAL.csv]
//! [--seeds N]`: trains intent classification exactly as the product does, scores
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
    /// Choose the handoff threshold on this labelled file (maximising in-scope accuracy +
    /// out-of-scope recall; 95% in-scope retention if it has no out-of-scope rows) instead of
    /// the threshold training's calibration chose.
    #[arg(long)]
    val: Option<PathBuf>,
    /// Train this many times, with the product's seed and the next ones; figures are
    /// reported as mean and spread. Training is deterministic for one seed.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=100))]
    seeds: u64,
}

pub async fn run(args: Args, config: &Config) -> Result<()> {
    let dir = config.model_dir.clone();
    let threads = config.model.threads();
    let options = EvalOptions { oos_label: args.oos_label, val: args.val, seeds: args.seeds as usize };
    let report = tokio::task::spawn_blocking(move || {
        let embedder = crate::ports::embedder(&dir, threads)?;
        jamuna_ai_worker::eval::run_with(&embedder, &args.train, &args.test, &options).context("evaluation failed")
    })
    .await??;
    println!("{report}");
    println!("{}", report.summary_json());
    Ok(())
}
