//! Training a tenant's intent model from its labelled examples, the one way the
//! product does it: `jamuna kb train`, the live worker and `jamuna eval` all
//! call [`train`] (or [`train_async`], the same steps with the embedding done
//! through the worker's shared [`AsyncEmbedder`]).
//!
//! The examples are put in one canonical order first (sorted, duplicates
//! dropped), so the same set of examples always trains the same model,
//! whatever order the log or the file had them in.
//!
//! ## Where a trained model lives
//!
//! The log records *that* a model was trained (`IntentModelTrained`: its
//! version, the fingerprint of the examples, the figures), not the model
//! itself: with its kept example embeddings a model of 10,000 examples is
//! ~20 MB, far over one event. Each AI worker rebuilds the model from the log:
//! when it reads `IntentModelTrained` it holds exactly the examples the model
//! was trained on (the domain refuses the event if they changed meanwhile), so
//! it looks the model up in its [`ModelCache`] (a file per tenant, version and
//! fingerprint under the data directory) and, on a miss, retrains
//! deterministically and caches the result. `kb train` writes the cache of the
//! data directory it runs with, so an embedded `jamuna serve` on the same
//! directory loads the model at once; an AI worker on another machine retrains
//! once and then has its own cached copy. No shared file system is needed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use jamuna_domain::TenantId;
use jamuna_domain::knowledge_base::{LabelledExample, MAX_OPERATING_POINTS, OperatingPoint, TrainedModel};

use crate::embed::{AsyncEmbedder, Embedder};
use crate::intent::{Example, IntentError, IntentModel, TrainConfig};

/// Names the training method in `IntentModelTrained`, so a worker that would
/// train differently can tell. Version 3 chooses the threshold for a target
/// in-scope retention and records the trade-off curve.
pub const TRAINER: &str = "minilm-l6-v2/linear-head+knn+oos-distances/3";

/// Texts embedded per step (progress is reported after each).
const CHUNK: usize = 256;

/// The examples in the canonical training order: sorted by intent, then text,
/// without duplicates.
pub fn canonical<'a>(examples: impl IntoIterator<Item = &'a LabelledExample>) -> Vec<Example> {
    examples
        .into_iter()
        .map(|e| (e.intent.as_str(), e.text.as_str()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|(intent, text)| Example { text: text.to_owned(), intent: intent.to_owned() })
        .collect()
}

/// Sorts and deduplicates examples given as [`Example`]s (files read by `eval`).
pub fn canonical_examples(examples: &[Example]) -> Vec<Example> {
    examples
        .iter()
        .map(|e| (e.intent.as_str(), e.text.as_str()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|(intent, text)| Example { text: text.to_owned(), intent: intent.to_owned() })
        .collect()
}

/// What a training run produced and measured.
#[derive(Debug, Clone)]
pub struct Trained {
    pub model: IntentModel,
    pub examples: usize,
    pub seconds: f64,
}

impl Trained {
    /// The figures as the `IntentModelTrained` event records them.
    pub fn record(&self, examples_fingerprint: String) -> TrainedModel {
        let c = self.model.calibration();
        TrainedModel {
            examples_fingerprint,
            examples: self.examples,
            intents: self.model.intents().len(),
            threshold: self.model.threshold(),
            held_out_accuracy: c.closed_accuracy,
            in_scope_accuracy: c.in_scope_accuracy,
            oos_recall: c.oos_recall,
            seconds: self.seconds as f32,
            trainer: TRAINER.to_owned(),
            retention: c.retention,
            operating_points: c
                .curve
                .iter()
                .filter_map(|p| {
                    Some(OperatingPoint {
                        threshold: p.threshold,
                        in_scope_retention: p.in_scope_retention?,
                        in_scope_accuracy: p.in_scope_accuracy,
                        oos_recall: p.oos_recall,
                    })
                })
                .take(MAX_OPERATING_POINTS)
                .collect(),
        }
    }
}

/// Trains on `examples` (put in canonical order first) with the product's
/// [`TrainConfig::default`]. `progress(done, total)` follows the embedding,
/// which is most of the time; training the head follows it.
pub fn train(embedder: &Embedder, examples: &[Example], progress: &mut dyn FnMut(usize, usize)) -> Result<Trained, IntentError> {
    train_with(embedder, examples, &TrainConfig::default(), progress)
}

/// [`train`] with another [`TrainConfig`]; the product always uses the default,
/// `jamuna eval --seeds` varies only its seed.
pub fn train_with(
    embedder: &Embedder,
    examples: &[Example],
    config: &TrainConfig,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Trained, IntentError> {
    let start = Instant::now();
    let examples = canonical_examples(examples);
    let texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
    let mut embeddings = Vec::with_capacity(texts.len());
    progress(0, texts.len());
    for chunk in texts.chunks(CHUNK) {
        embeddings.extend(embedder.embed(chunk)?);
        progress(embeddings.len(), texts.len());
    }
    fit(embeddings, &examples, config, start)
}

/// [`train`] for the async worker: the embedding goes through `embedder` one
/// chunk at a time, so customers' messages are embedded in between, and the
/// head is fitted on the blocking pool.
pub async fn train_async(embedder: &AsyncEmbedder, examples: Vec<Example>) -> Result<Trained, IntentError> {
    let start = Instant::now();
    let examples = canonical_examples(&examples);
    let mut embeddings = Vec::with_capacity(examples.len());
    for chunk in examples.chunks(CHUNK) {
        embeddings.extend(embedder.embed(chunk.iter().map(|e| e.text.clone()).collect()).await?);
    }
    tokio::task::spawn_blocking(move || fit(embeddings, &examples, &TrainConfig::default(), start))
        .await
        .map_err(|e| IntentError::InvalidModel(format!("the training task failed: {e}")))?
}

fn fit(embeddings: Vec<Vec<f32>>, examples: &[Example], config: &TrainConfig, start: Instant) -> Result<Trained, IntentError> {
    let intents: Vec<&str> = examples.iter().map(|e| e.intent.as_str()).collect();
    let model = IntentModel::train_on_embeddings(&embeddings, &intents, config)?;
    Ok(Trained { model, examples: examples.len(), seconds: start.elapsed().as_secs_f64() })
}

/// Trained models on local disk, one JSON file per tenant, version and
/// examples fingerprint: `<dir>/<tenant>/v<version>-<fingerprint>.json`.
#[derive(Debug, Clone)]
pub struct ModelCache {
    dir: PathBuf,
}

impl ModelCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The cache inside a data directory (`<data_dir>/intent-models`), where
    /// `kb train` and the worker of the same directory meet.
    pub fn in_data_dir(data_dir: &Path) -> Self {
        Self::new(data_dir.join("intent-models"))
    }

    pub fn path(&self, tenant: &TenantId, version: u64, fingerprint: &str) -> PathBuf {
        let safe: String = fingerprint.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
        self.dir.join(tenant.as_str()).join(format!("v{version}-{safe}.json"))
    }

    /// The cached model, if there is one that reads back whole.
    pub fn load(&self, tenant: &TenantId, version: u64, fingerprint: &str) -> Option<IntentModel> {
        let path = self.path(tenant, version, fingerprint);
        let text = std::fs::read(&path).ok()?;
        match serde_json::from_slice(&text) {
            Ok(m) => Some(m),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring an unreadable cached intent model");
                None
            }
        }
    }

    /// Writes a temporary file and renames it, so a reader never sees half a model.
    pub fn store(&self, tenant: &TenantId, version: u64, fingerprint: &str, model: &IntentModel) -> std::io::Result<PathBuf> {
        let path = self.path(tenant, version, fingerprint);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let json = serde_json::to_vec(model).map_err(std::io::Error::other)?;
        std::fs::write(&tmp, json)?;
        std::fs::rename(&tmp, &path)?;
        Ok(path)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(text: &str, intent: &str) -> LabelledExample {
        LabelledExample { text: text.into(), intent: intent.into() }
    }

    #[test]
    fn canonical_order_ignores_input_order_and_duplicates() {
        let a = canonical(&[ex("b", "y"), ex("a", "x"), ex("b", "y"), ex("c", "x")]);
        let b = canonical(&[ex("c", "x"), ex("b", "y"), ex("a", "x")]);
        assert_eq!(a, b);
        assert_eq!(a.iter().map(|e| e.text.as_str()).collect::<Vec<_>>(), ["a", "c", "b"]);
    }

    #[test]
    fn the_cache_round_trips_and_ignores_damaged_files() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ModelCache::new(dir.path());
        let tenant = TenantId::parse("acme").unwrap();
        let xs: Vec<Vec<f32>> = (0..12)
            .map(|i| {
                let mut v = vec![0.0f32; 4];
                v[i % 3] = 1.0;
                v
            })
            .collect();
        let ys: Vec<String> = (0..12).map(|i| format!("i{}", i % 3)).collect();
        let model = IntentModel::train_on_embeddings(&xs, &ys, &TrainConfig { calibration_rounds: 0, ..TrainConfig::default() }).unwrap();
        assert!(cache.load(&tenant, 1, "3-ab").is_none());
        let path = cache.store(&tenant, 1, "3-ab", &model).unwrap();
        assert_eq!(cache.load(&tenant, 1, "3-ab"), Some(model));
        assert!(cache.load(&tenant, 2, "3-ab").is_none());
        std::fs::write(&path, b"{not json").unwrap();
        assert!(cache.load(&tenant, 1, "3-ab").is_none());
        // A fingerprint cannot climb out of the tenant's directory.
        assert!(cache.path(&tenant, 1, "../../x").starts_with(dir.path().join("acme")));
    }
}
