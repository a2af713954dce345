//! How far the bf16 products (AMX) move the embeddings from f32's.
//!
//! ```text
//! cargo run --release -p jamuna-ai-worker --example bf16_vs_f32 -- DATA.csv
//! ```
//!
//! Embeds every text of DATA.csv (a `text` column) with the encoder in f32 and with
//! the default precision (bf16 on AMX tiles where the CPU has them), in batches of 64,
//! and prints the cosine between the two embeddings of each sentence: the lowest, the
//! 0.1% and 1% quantiles, the mean, and how many fall under 0.995 and 0.999. The model
//! directory is `$JAMUNA_MODEL_DIR` or `models/all-MiniLM-L6-v2`.

use std::path::PathBuf;

use jamuna_ai_worker::embed::{cosine, default_threads};
use jamuna_ai_worker::{Embedder, Precision, eval};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data = PathBuf::from(std::env::args().nth(1).ok_or("usage: bf16_vs_f32 DATA.csv")?);
    let model_dir = std::env::var_os("JAMUNA_MODEL_DIR").map_or_else(|| PathBuf::from("models/all-MiniLM-L6-v2"), PathBuf::from);
    let f32s = Embedder::load_with(&model_dir, default_threads(), Precision::F32)?;
    let auto = Embedder::load_with(&model_dir, default_threads(), Precision::Auto)?;
    if auto.precision() == "f32" {
        println!("this CPU has no AMX bf16: the default precision is f32, nothing to compare");
        return Ok(());
    }
    let texts: Vec<String> = eval::read_examples(&data)?.into_iter().map(|e| e.text).collect();
    let mut cosines = Vec::with_capacity(texts.len());
    let mut worst = (1.0f32, String::new());
    for chunk in texts.chunks(64) {
        for ((a, b), text) in f32s.embed(chunk)?.iter().zip(auto.embed(chunk)?).zip(chunk) {
            let c = cosine(a, &b);
            if c < worst.0 {
                worst = (c, text.clone());
            }
            cosines.push(c);
        }
    }
    cosines.sort_by(f32::total_cmp);
    let at = |q: f64| cosines[((cosines.len() - 1) as f64 * q) as usize];
    let mean = cosines.iter().map(|&c| c as f64).sum::<f64>() / cosines.len() as f64;
    println!(
        "{} sentences, cosine between bf16 ({}) and f32 embeddings: min {:.5} ({:?}), 0.1% {:.5}, 1% {:.5}, median {:.5}, mean {:.5}; under 0.995: {}, under 0.999: {}",
        cosines.len(),
        auto.precision(),
        worst.0,
        worst.1,
        at(0.001),
        at(0.01),
        at(0.5),
        mean,
        cosines.iter().filter(|&&c| c < 0.995).count(),
        cosines.iter().filter(|&&c| c < 0.999).count(),
    );
    Ok(())
}
