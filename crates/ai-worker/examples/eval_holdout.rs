//! Honest held-out evaluation of intent classification, plus the embedding benchmark.
//!
//! ```text
//! cargo run --release -p jamuna-ai-worker --example eval_holdout -- DATA.csv [OOS_INTENTS] [SEED]
//! ```
//!
//! Splits DATA.csv (`text,category`) with `eval::split_holdout`: 10% of each intent's
//! rows, plus every row of OOS_INTENTS whole intents (default 10) relabelled `oos`, go to
//! the test set; trains on the rest exactly as the product does; prints the per-intent
//! report, the summary JSON, and the embedding benchmark. The model directory is
//! `$JAMUNA_MODEL_DIR` or `models/all-MiniLM-L6-v2`.

use std::path::PathBuf;
use std::time::Instant;

use jamuna_ai_worker::{Embedder, bench_embed, eval};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let data = PathBuf::from(args.next().ok_or("usage: eval_holdout DATA.csv [OOS_INTENTS] [SEED]")?);
    let oos_intents: usize = args.next().map_or(Ok(10), |s| s.parse())?;
    let seed: u64 = args.next().map_or(Ok(7), |s| s.parse())?;
    let model_dir = std::env::var_os("JAMUNA_MODEL_DIR").map_or_else(|| PathBuf::from("models/all-MiniLM-L6-v2"), PathBuf::from);

    let t = Instant::now();
    let embedder = Embedder::load(&model_dir)?;
    println!("model loaded in {:.2}s", t.elapsed().as_secs_f64());

    let examples = eval::read_examples(&data)?;
    let split = eval::split_holdout(&examples, 0.1, oos_intents, "oos", seed);
    println!(
        "{} rows: train {}, test {} ({} out of scope from intents {:?})",
        examples.len(),
        split.train.len(),
        split.test.len(),
        split.test.iter().filter(|e| e.intent == "oos").count(),
        split.oos_intents
    );
    let dir = std::env::temp_dir().join(format!("jamuna-eval-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (train_csv, test_csv) = (dir.join("train.csv"), dir.join("test.csv"));
    eval::write_examples(&train_csv, &split.train)?;
    eval::write_examples(&test_csv, &split.test)?;

    let report = eval::run(&embedder, &train_csv, &test_csv, Some("oos"))?;
    println!("{report}");
    println!("calibration: {:?}", report.calibration);
    println!("{}", report.summary_json());
    std::fs::remove_dir_all(&dir)?;

    // The same texts, mixed lengths, in file order.
    let sentences: Vec<&str> = split.test.iter().map(|e| e.text.as_str()).collect();
    println!("{}", bench_embed(&embedder, &sentences)?);
    let long = jamuna_ai_worker::bench::mixed_sentences(512);
    println!("synthetic mixed lengths: {}", bench_embed(&embedder, &long)?);
    Ok(())
}
