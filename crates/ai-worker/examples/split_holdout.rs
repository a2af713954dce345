//! Writes the held-out protocol's files for `jamuna eval`.
//!
//! ```text
//! cargo run --release -p jamuna-ai-worker --example split_holdout -- DATA.csv OOS_INTENTS SEED OUT_DIR
//! ```
//!
//! Splits DATA.csv (`text,category`) with `eval::split_holdout` (10% of each intent's
//! rows, plus every row of OOS_INTENTS whole intents relabelled `oos`, go to the test
//! set; the same split as `eval_holdout` for the same arguments) and writes
//! `OUT_DIR/train.csv` and `OUT_DIR/test.csv`.

use std::path::PathBuf;

use jamuna_ai_worker::eval;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let usage = "usage: split_holdout DATA.csv OOS_INTENTS SEED OUT_DIR";
    let mut args = std::env::args().skip(1);
    let data = PathBuf::from(args.next().ok_or(usage)?);
    let oos_intents: usize = args.next().ok_or(usage)?.parse()?;
    let seed: u64 = args.next().ok_or(usage)?.parse()?;
    let out = PathBuf::from(args.next().ok_or(usage)?);
    let split = eval::split_holdout(&eval::read_examples(&data)?, 0.1, oos_intents, "oos", seed);
    std::fs::create_dir_all(&out)?;
    eval::write_examples(&out.join("train.csv"), &split.train)?;
    eval::write_examples(&out.join("test.csv"), &split.test)?;
    println!(
        "train {}, test {} ({} out of scope from intents {:?})",
        split.train.len(),
        split.test.len(),
        split.test.iter().filter(|e| e.intent == "oos").count(),
        split.oos_intents
    );
    Ok(())
}
