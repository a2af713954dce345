//! Integration tests of the AI worker against the real model (all-MiniLM-L6-v2).
//!
//! The model is found at `$JAMUNA_MODEL_DIR`, else `<workspace>/models/all-MiniLM-L6-v2`.
//! When it is missing these tests fail, by design, telling you to run
//! `scripts/fetch-model.sh`: a skipped model test would hide a broken setup.

mod answer;
mod embed;
mod eval;
mod intent;
mod retrain;
mod vectors;
mod worker;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use jamuna_ai_worker::Embedder;

/// The model directory these tests use.
pub fn model_dir() -> PathBuf {
    std::env::var_os("JAMUNA_MODEL_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models").join(jamuna_ai_worker::embed::MODEL_DIR_NAME),
        PathBuf::from,
    )
}

/// One embedder shared by every test of this binary (loading takes a moment).
pub fn embedder() -> &'static Embedder {
    shared()
}

/// The shared embedder, as the async worker holds it.
pub fn shared_embedder() -> Arc<Embedder> {
    Arc::clone(shared())
}

fn shared() -> &'static Arc<Embedder> {
    static EMBEDDER: OnceLock<Arc<Embedder>> = OnceLock::new();
    EMBEDDER.get_or_init(|| {
        let dir = model_dir();
        // f32: these tests pin the f32 arithmetic (sentence-transformers' reference);
        // `embed::bf16_embeddings_stay_within_0_995_of_f32` checks the bf16 products.
        match Embedder::load_with(&dir, jamuna_ai_worker::embed::default_threads(), jamuna_ai_worker::Precision::F32) {
            Ok(e) => Arc::new(e),
            Err(e) => panic!(
                "cannot load the model from {}: {e}\n\
                 run `scripts/fetch-model.sh` at the workspace root (or set JAMUNA_MODEL_DIR)",
                dir.display()
            ),
        }
    })
}

/// Path of a file under tests/fixtures.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}
