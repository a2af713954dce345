//! Tuning aid: trains the intent head with several configurations and prints what each
//! one's own calibration measured on held-out *training* rows.
//!
//! ```text
//! cargo run --release -p jamuna-ai-worker --example tune_head -- DATA.csv [EMBEDDINGS_CACHE]
//! ```
//!
//! DATA.csv is split exactly as `eval_holdout` splits it (10 whole intents and 10% of the
//! rest held out, seed 7) and only the training part is used, so choosing
//! `TrainConfig::default` from these figures never looks at the test rows.

use std::path::PathBuf;
use std::time::Instant;

use jamuna_ai_worker::{Embedder, IntentModel, TrainConfig, eval};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let data = PathBuf::from(args.next().ok_or("usage: tune_head DATA.csv [CACHE]")?);
    let cache = args.next().map(PathBuf::from);
    let examples = eval::split_holdout(&eval::read_examples(&data)?, 0.1, 10, "oos", 7).train;
    let embeddings = match cache.as_ref().filter(|c| c.exists()) {
        Some(c) => serde_json::from_slice::<Vec<Vec<f32>>>(&std::fs::read(c)?)?,
        None => {
            let model_dir = std::env::var_os("JAMUNA_MODEL_DIR").map_or_else(|| PathBuf::from("models/all-MiniLM-L6-v2"), PathBuf::from);
            let embedder = Embedder::load(&model_dir)?;
            let t = Instant::now();
            let texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
            let e = embedder.embed(&texts)?;
            println!("embedded {} rows in {:.1}s", e.len(), t.elapsed().as_secs_f64());
            if let Some(c) = &cache {
                std::fs::write(c, serde_json::to_vec(&e)?)?;
            }
            e
        }
    };
    let intents: Vec<&str> = examples.iter().map(|e| e.intent.as_str()).collect();
    if let Some(c) = &cache {
        std::fs::write(c.with_extension("labels"), intents.join("\n"))?;
    }
    if std::env::var_os("TUNE_ONLY_CACHE").is_some() {
        return Ok(());
    }
    let base = TrainConfig::default();
    let grid: Vec<(&str, TrainConfig)> = vec![
        ("default", base.clone()),
        ("lr 0.003", TrainConfig { learning_rate: 0.003, ..base.clone() }),
        ("lr 0.03", TrainConfig { learning_rate: 0.03, ..base.clone() }),
        ("epochs 60", TrainConfig { epochs: 60, ..base.clone() }),
        ("epochs 15", TrainConfig { epochs: 15, ..base.clone() }),
        ("wd 0.1", TrainConfig { weight_decay: 0.1, ..base.clone() }),
        ("wd 0", TrainConfig { weight_decay: 0.0, ..base.clone() }),
        ("smooth 0.1", TrainConfig { label_smoothing: 0.1, ..base.clone() }),
    ];
    for (name, config) in grid {
        let t = Instant::now();
        let m = IntentModel::train_on_embeddings(&embeddings, &intents, &config)?;
        let c = m.calibration();
        println!(
            "{name:>12}: closed {:.4}  in-scope {:.4}  oos recall {:.4}  thr {:.3}  T {:.3}  ECE {:.4}  ({:.1}s)",
            c.closed_accuracy,
            c.in_scope_accuracy,
            c.oos_recall,
            c.threshold,
            c.temperature,
            c.expected_calibration_error,
            t.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
