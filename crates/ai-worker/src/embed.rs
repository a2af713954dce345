//! Sentence embeddings with a BERT encoder (all-MiniLM-L6-v2) running on CPU with candle.
//!
//! A sentence becomes a point on the unit sphere in 384 dimensions, placed so that
//! sentences with similar meaning lie close together: the cosine similarity of two
//! embeddings is their dot product. The recipe is the sentence-transformers one:
//!
//! 1. tokenize (WordPiece, lower-cased), truncated to [`MAX_TOKENS`];
//! 2. run the encoder; sentences are batched by token length so that each batch is padded
//!    only to its own longest member, and the attention mask hides the padding;
//! 3. mean-pool the last hidden states over the real tokens (attention mask);
//! 4. L2-normalise.
//!
//! The encoder itself is [`crate::bert`], our own forward pass (no padding, fused and
//! pre-transposed weights, vectorised GELU, bf16 products on AMX tiles where the CPU has
//! them) on a pool of a set number of threads ([`Embedder::load_with`]; config
//! `model.threads`, default every core, and `model.precision`, default `auto`).
//!
//! Embedding is CPU-bound: call [`Embedder::embed`] from a blocking context, or from
//! async code through [`AsyncEmbedder`], which runs it on tokio's blocking pool, never on
//! a runtime worker.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::Config;

use crate::bert::{Bert, Precision};
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

/// The directory name, under the models directory, that `scripts/fetch-model.sh` fills.
pub const MODEL_DIR_NAME: &str = "all-MiniLM-L6-v2";

/// Longest input, in tokens (including `[CLS]` and `[SEP]`), that the encoder sees.
///
/// BERT's position table allows 512, but all-MiniLM-L6-v2 was trained on sequences of at
/// most 128 tokens and its sentence-transformers configuration truncates at 256: past that
/// the positions are ones it never learnt to pool, and attention cost grows with the
/// square of the length. Longer texts (articles) are split into passages first
/// ([`crate::chunk`]), so 256 loses nothing in practice.
pub const MAX_TOKENS: usize = 256;

/// Most sentences per forward pass.
const MAX_BATCH: usize = 64;
/// Most tokens per forward pass (batch × longest member), which bounds memory: the
/// feed-forward layer holds tokens × 1,536 floats.
const MAX_BATCH_TOKENS: usize = 64 * 64;

/// Why the model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// A model file is missing: the model is fetched at build time, not at run time.
    #[error("model file {path} not found: run `make` or `scripts/fetch-model.sh` to fetch all-MiniLM-L6-v2")]
    ModelMissing { path: PathBuf },
    /// `config.json` could not be read or parsed.
    #[error("bad model config {path}: {message}")]
    Config { path: PathBuf, message: String },
    /// The tokenizer could not be loaded or failed on an input.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The tensor library failed (loading weights or running the model).
    #[error("model: {0}")]
    Candle(#[from] candle_core::Error),
    /// The blocking task running the model panicked or was cancelled.
    #[error("embedding task failed: {0}")]
    Task(String),
}

/// A loaded sentence encoder. Cheap to share behind an [`Arc`]; `embed` takes `&self`.
pub struct Embedder {
    model: Bert,
    tokenizer: Tokenizer,
    dim: usize,
    max_tokens: usize,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder").field("dim", &self.dim).field("max_tokens", &self.max_tokens).finish_non_exhaustive()
    }
}

impl Embedder {
    /// Loads `config.json`, `tokenizer.json` and `model.safetensors` from `dir` onto the CPU,
    /// to run on every core ([`default_threads`]) with [`Precision::Auto`].
    pub fn load(dir: &Path) -> Result<Self, EmbedError> {
        Self::load_with(dir, default_threads(), Precision::Auto)
    }

    /// [`Embedder::load`], running the encoder on `threads` threads (at least one) with
    /// its products in `precision`.
    pub fn load_with(dir: &Path, threads: usize, precision: Precision) -> Result<Self, EmbedError> {
        let file = |name: &str| -> Result<PathBuf, EmbedError> {
            let path = dir.join(name);
            if path.is_file() { Ok(path) } else { Err(EmbedError::ModelMissing { path }) }
        };
        let config_path = file("config.json")?;
        let tokenizer_path = file("tokenizer.json")?;
        let weights_path = file("model.safetensors")?;

        let config_err = |message: String| EmbedError::Config { path: config_path.clone(), message };
        let text = std::fs::read_to_string(&config_path).map_err(|e| config_err(e.to_string()))?;
        let config: Config = serde_json::from_str(&text).map_err(|e| config_err(e.to_string()))?;
        let max_tokens = MAX_TOKENS.min(config.max_position_embeddings);

        let mut tokenizer = Tokenizer::from_file(&tokenizer_path).map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        // The file pads every input to 128 tokens; we pad per batch instead.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;

        let device = Device::Cpu;
        // Safe loading (reads the file into memory) rather than mmap: `unsafe` is forbidden
        // in this crate, and the model is only 90 MB.
        let bytes = std::fs::read(&weights_path).map_err(|_| EmbedError::ModelMissing { path: weights_path.clone() })?;
        let vb = VarBuilder::from_buffered_safetensors(bytes, DType::F32, &device)?;
        let model = Bert::load(vb, &config, threads, precision)?;
        Ok(Self { model, tokenizer, dim: config.hidden_size, max_tokens })
    }

    /// Threads the encoder runs on.
    pub fn threads(&self) -> usize {
        self.model.threads()
    }

    /// What the encoder's products run in: `"bf16 (AMX)"` or `"f32"`.
    pub fn precision(&self) -> &'static str {
        if self.model.bf16() { "bf16 (AMX)" } else { "f32" }
    }

    /// Dimension of the embeddings (384 for all-MiniLM-L6-v2).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Longest input in tokens; longer inputs are truncated.
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// Number of tokens `text` becomes, before truncation, including `[CLS]` and `[SEP]`.
    pub fn count_tokens(&self, text: &str) -> Result<usize, EmbedError> {
        let mut tokenizer = self.tokenizer.clone();
        tokenizer.with_truncation(None).map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        let encoding = tokenizer.encode(text, true).map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        Ok(encoding.len())
    }

    /// Embeds `texts`, returning one unit-length vector per text, in the input order.
    ///
    /// Blocking and CPU-heavy; see [`AsyncEmbedder`] for async callers.
    pub fn embed<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let inputs: Vec<&str> = texts.iter().map(AsRef::as_ref).collect();
        let encodings = self.tokenizer.encode_batch(inputs, true).map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        let ids: Vec<&[u32]> = encodings.iter().map(|e| e.get_ids()).collect();

        let mut out: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        for batch in length_batches(&ids, MAX_BATCH, MAX_BATCH_TOKENS) {
            let members: Vec<&[u32]> = batch.iter().map(|&i| ids[i]).collect();
            let vectors = self.forward(&members)?;
            for (i, v) in batch.into_iter().zip(vectors) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    /// Embeds one text.
    pub fn embed_one(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        let mut v = self.embed(&[text])?;
        v.pop().ok_or_else(|| EmbedError::Task("no embedding returned".to_owned()))
    }

    /// Runs one batch through the encoder; returns pooled, normalised vectors.
    fn forward(&self, batch: &[&[u32]]) -> Result<Vec<Vec<f32>>, EmbedError> {
        Ok(self.model.embed(batch)?)
    }
}

/// Threads for the encoder when none are configured: every core this process may use.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Groups indices into batches of similar token length: sorted by length, cut when a batch
/// reaches `max_batch` members or `max_tokens` padded tokens.
fn length_batches(ids: &[&[u32]], max_batch: usize, max_tokens: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..ids.len()).collect();
    order.sort_by_key(|&i| ids[i].len());
    let mut batches = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    for i in order {
        // Sorted ascending, so this member is the batch's longest.
        let padded = (current.len() + 1) * ids[i].len();
        if !current.is_empty() && (current.len() == max_batch || padded > max_tokens) {
            batches.push(std::mem::take(&mut current));
        }
        current.push(i);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

/// An [`Embedder`] for async code: each call runs on tokio's blocking pool
/// (`spawn_blocking`), so runtime worker threads never do the matrix work.
///
/// One forward pass already uses every core (candle's kernels run on rayon's pool), so
/// running two at once only makes both slower: calls queue for a single permit, in
/// order, and a caller that wants throughput sends many texts per call instead.
/// Clones share the embedder and the queue. Must be called within a tokio runtime.
#[derive(Debug, Clone)]
pub struct AsyncEmbedder {
    inner: Arc<Embedder>,
    permit: Arc<tokio::sync::Semaphore>,
}

impl AsyncEmbedder {
    /// Wraps a loaded embedder.
    pub fn new(embedder: Arc<Embedder>) -> Self {
        Self { inner: embedder, permit: Arc::new(tokio::sync::Semaphore::new(1)) }
    }

    /// The shared blocking embedder.
    pub fn embedder(&self) -> &Arc<Embedder> {
        &self.inner
    }

    /// Embeds `texts` on the blocking pool; see [`Embedder::embed`].
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        let permit = Arc::clone(&self.permit).acquire_owned().await.map_err(|e| EmbedError::Task(e.to_string()))?;
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let result = inner.embed(&texts);
            drop(permit);
            result
        })
        .await
        .map_err(|e| EmbedError::Task(e.to_string()))?
    }
}

/// Cosine similarity of two unit vectors (their dot product).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    crate::simd::dot(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_group_by_length_and_respect_limits() {
        let lens = [5usize, 1, 9, 3, 7, 2, 8];
        let owned: Vec<Vec<u32>> = lens.iter().map(|&n| vec![1; n]).collect();
        let ids: Vec<&[u32]> = owned.iter().map(Vec::as_slice).collect();
        let batches = length_batches(&ids, 3, 20);
        // Every index exactly once.
        let mut all: Vec<usize> = batches.iter().flatten().copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..lens.len()).collect::<Vec<_>>());
        for b in &batches {
            assert!(b.len() <= 3);
            let longest = b.iter().map(|&i| lens[i]).max().unwrap();
            assert!(b.len() == 1 || b.len() * longest <= 20, "{b:?}");
        }
        // Lengths never decrease across batches.
        let flat: Vec<usize> = batches.iter().flatten().map(|&i| lens[i]).collect();
        assert!(flat.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn a_single_overlong_input_still_gets_a_batch() {
        let owned = [vec![1u32; 100]];
        let ids: Vec<&[u32]> = owned.iter().map(Vec::as_slice).collect();
        assert_eq!(length_batches(&ids, 64, 10), vec![vec![0]]);
    }

    #[test]
    fn missing_model_names_the_file_and_the_fix() {
        let dir = std::env::temp_dir().join("jamuna-no-model-here");
        let err = Embedder::load(&dir).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, EmbedError::ModelMissing { .. }));
        assert!(msg.contains("config.json") && msg.contains("fetch-model.sh"), "{msg}");
    }
}
