//! `jamuna bench embed`: the encoder alone — sentences/s over batches of 64
//! mixed-length sentences, and the latency of one sentence (p50/p99).

use anyhow::{Context, Result};
use jamuna_ai_worker::bench_embed;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// Sentences to embed in the throughput measure.
    #[arg(long, default_value_t = 1024)]
    sentences: usize,
    /// Take the sentences from this CSV's `text` column (e.g. BANKING77) instead of
    /// the built-in mixed-length set.
    #[arg(long)]
    data: Option<PathBuf>,
}

pub async fn run(args: Args, model_dir: &Path, model: &crate::config::ModelConfig) -> Result<()> {
    let dir = model_dir.to_path_buf();
    let model = model.clone();
    let report = tokio::task::spawn_blocking(move || -> Result<_> {
        let embedder = crate::ports::embedder(&dir, &model)?;
        let sentences: Vec<String> = match &args.data {
            Some(path) => {
                let examples = jamuna_ai_worker::eval::read_examples(path).with_context(|| format!("cannot read {}", path.display()))?;
                examples.into_iter().map(|e| e.text).take(args.sentences).collect()
            }
            None => jamuna_ai_worker::bench::mixed_sentences(args.sentences),
        };
        println!(
            "embedding {} sentences with {} threads (model.threads), products in {} (model.precision {})",
            sentences.len(),
            embedder.threads(),
            embedder.precision(),
            model.precision
        );
        bench_embed(&embedder, &sentences).context("the benchmark failed")
    })
    .await??;
    println!("{report}");
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
