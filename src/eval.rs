//! `jamuna eval --train TRAIN.csv --test TEST.csv [--oos-label oos]`: trains
//! intent classification exactly as the product does, scores the test set,
//! prints a per-intent report and, as its last line, one JSON object.

use crate::config::Config;
use anyhow::{Context, Result};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    train: PathBuf,
    #[arg(long)]
    test: PathBuf,
    /// Test rows with this category are out of scope: the right outcome is a handoff.
    #[arg(long)]
    oos_label: Option<String>,
}

pub async fn run(args: Args, config: &Config) -> Result<()> {
    let dir = config.model_dir.clone();
    let report = tokio::task::spawn_blocking(move || {
        let embedder = crate::ports::embedder(&dir)?;
        jamuna_ai_worker::eval::run(&embedder, &args.train, &args.test, args.oos_label.as_deref()).context("evaluation failed")
    })
    .await??;
    println!("{report}");
    println!("{}", report.summary_json());
    Ok(())
}
