//! Intent classification from labelled examples, with out-of-scope detection.
//!
//! A tenant gives examples (`text`, `intent`). Each text is embedded with the frozen
//! sentence encoder and a linear softmax head is trained on the embeddings. The head's
//! probabilities are blended with a vote of the nearest training examples (k-NN, cosine),
//! which adds about a point of accuracy on BANKING77; the blend names the most likely
//! intent. Whether to trust that answer uses four signals ([`Scores`]):
//!
//! - the blend's probability of its best intent (the head's part temperature-scaled);
//! - the similarity of the message to its nearest training example, and the mean
//!   similarity to its `knn_neighbours` nearest (Sun et al., ICML 2022);
//! - its Mahalanobis distance to the nearest intent, with one covariance shared by all
//!   intents and shrunk by Ledoit-Wolf (Podolskiy et al., AAAI 2021; [`distance`]).
//!
//! Messages about an intent nobody taught often look confident to a softmax head (it
//! must pick one of the intents it knows) but lie far from every example; the distances
//! see that. A small logistic model maps the four to the *confidence*: the probability that the
//! answer is right, counting an answer to an out-of-scope message as wrong. Everything is
//! fitted on the training examples alone:
//!
//! - several calibration rounds each hide a few whole intents (they play the messages the
//!   bot was never taught) and a stratified part of the other intents' examples, train a
//!   head on the rest, and score both kinds of held-out message;
//! - the temperature minimises the negative log-likelihood of held-out in-scope messages;
//!   the logistic model is fitted to whether each held-out answer was right;
//! - the held-out messages give the trade-off curve ([`OperatingPoint`]: per threshold,
//!   the share of in-scope messages kept, how many of them are answered right, and the
//!   share of unknown ones handed off); the threshold is the highest that keeps the
//!   target *in-scope retention* (95% by default, a tenant setting in the product:
//!   [`IntentModel::with_retention`]). Below it the bot hands the conversation to a human.
//!
//! **What the tenant says is out of scope.** Examples labelled with the reserved intent
//! [`OUT_OF_SCOPE_INTENT`] are the tenant's examples of questions for a person (Rasa's
//! `out_of_scope`). They are a class like any other for the head, the vote and the
//! distance; when it is a message's best intent, the prediction is a handoff
//! ([`Prediction::out_of_scope`]) whatever the confidence, and it is never offered among
//! the [`Prediction::top`] intents. Calibration counts their held-out examples as
//! out-of-scope messages, and a message read as the class as handed off.
//!
//! The final head and distance are fitted on every example, and every example's
//! embedding is kept for the nearest-neighbour signals. A trained [`IntentModel`] is plain data (serde), so
//! a tenant's model can be stored and loaded without retraining.
//!
//! The code is split by reason to change: this module holds the model and its
//! predictions (and the stored form); `train` fits a model to examples;
//! `calibrate` fits the confidence and chooses the handoff threshold; `solve` holds
//! the small numerical fits (logistic regression, Ledoit-Wolf, Cholesky); `distance`
//! the Mahalanobis distance.

mod calibrate;
mod distance;
mod solve;
mod train;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

pub use jamuna_domain::knowledge_base::OUT_OF_SCOPE_INTENT;

use crate::embed::{EmbedError, Embedder};
use crate::head::LinearHead;

pub use calibrate::{
    Calibration, DEFAULT_RETENTION, OperatingPoint, Scores, operating_points, point_for_retention, threshold_for_retention,
};
use distance::Mahalanobis;

/// One labelled example.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Example {
    pub text: String,
    pub intent: String,
}

/// How to train an [`IntentModel`]. `Default` is what the product uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainConfig {
    /// Passes over the examples when fitting the head.
    pub epochs: usize,
    pub batch_size: usize,
    /// Peak AdamW learning rate (cosine-decayed to zero).
    pub learning_rate: f64,
    /// Decoupled weight decay (AdamW).
    pub weight_decay: f64,
    /// Probability mass spread uniformly over the classes in the training targets.
    pub label_smoothing: f64,
    /// Calibration rounds; 0 disables calibration (temperature 1, never hand off).
    pub calibration_rounds: usize,
    /// Share of intents hidden in each calibration round, to stand for unknown intents.
    pub unknown_intent_fraction: f64,
    /// Share of each known intent's examples held out in each calibration round.
    pub validation_fraction: f64,
    /// The share of held-out in-scope messages the threshold keeps (answers): the
    /// in-scope retention ([`threshold_for_retention`]).
    pub retention: f32,
    /// Nearest training examples that vote on the intent.
    pub knn_neighbours: usize,
    /// Softmax temperature of the vote over cosine similarities.
    pub knn_temperature: f32,
    /// Share of the vote in the blended probabilities (0 = head only).
    pub knn_weight: f32,
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 15,
            batch_size: 64,
            learning_rate: 0.01,
            weight_decay: 0.01,
            label_smoothing: 0.0,
            calibration_rounds: 4,
            unknown_intent_fraction: 0.2,
            validation_fraction: 0.2,
            retention: DEFAULT_RETENTION,
            knn_neighbours: 10,
            knn_temperature: 0.02,
            knn_weight: 0.5,
            seed: 42,
        }
    }
}

/// What the model says about one message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// The intent, or `None` when the message is out of scope: hand off to a human.
    pub intent: Option<String>,
    /// Calibrated probability that the best intent is the right answer (an answer to an
    /// out-of-scope message counts as wrong). The handoff threshold applies to it.
    pub confidence: f32,
    /// The best known intents with the head's probabilities among known intents, best
    /// first (at most 3). These sum to at most 1 and ignore the out-of-scope chance.
    pub top: Vec<(String, f32)>,
    /// What the confidence was computed from, for saying why the bot decided as it did
    /// ([`crate::decision`]); `None` when the message could not be scored (wrong dimension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
    /// The best intent is [`OUT_OF_SCOPE_INTENT`]: the message reads as one the tenant
    /// said to hand to a person. `intent` is then `None` whatever the confidence.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub out_of_scope: bool,
}

/// The per-feature values behind a [`Prediction`]'s confidence.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// The model's handoff threshold (the confidence under which the intent is `None`).
    pub threshold: f32,
    /// The blend's probability of its best intent (the logistic's `ln p` feature).
    pub head_probability: f32,
    /// Cosine similarity to the nearest training example.
    pub nearest: f32,
    /// Mean cosine similarity to the `knn_neighbours` nearest training examples.
    pub knn_mean: f32,
    /// The Mahalanobis score; `None` for a model stored before the distance existed.
    pub mahalanobis: Option<f32>,
    /// The confidence with the head's probability set to 1 and the distance features as
    /// they are: under the threshold, the distance features alone hand the message off.
    pub confidence_if_head_certain: f32,
}

/// Why training failed or a stored model was rejected.
#[derive(Debug, thiserror::Error)]
pub enum IntentError {
    #[error("no training examples")]
    NoExamples,
    #[error("need at least 2 intents to classify, found {found}")]
    TooFewIntents { found: usize },
    #[error("example {index} has an empty intent")]
    EmptyIntent { index: usize },
    #[error("embedding {index} has {found} dimensions, expected {expected}")]
    DimensionMismatch { index: usize, found: usize, expected: usize },
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error("training the classifier: {0}")]
    Train(#[from] candle_core::Error),
    #[error("invalid intent model: {0}")]
    InvalidModel(String),
}

/// A trained intent classifier with its handoff threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ModelRepr", into = "ModelRepr")]
pub struct IntentModel {
    intents: Vec<String>,
    head: LinearHead,
    /// Every training embedding, row-major, `head.dim` wide.
    exemplars: Exemplars,
    /// The intent (index) of each exemplar.
    exemplar_intents: Vec<u32>,
    threshold: f32,
    calibration: Calibration,
    /// The out-of-scope distance; `None` in models stored as version 1, whose confidence
    /// is computed without it.
    distance: Option<Mahalanobis>,
}

/// The index of [`OUT_OF_SCOPE_INTENT`] in `intents`, if the tenant gave examples of it.
fn out_of_scope_index(intents: &[String]) -> Option<usize> {
    intents.iter().position(|i| i == OUT_OF_SCOPE_INTENT)
}

/// The stored form, validated on load. Exemplars (and the distance's matrices) are
/// little-endian f32, base64.
#[derive(Serialize, Deserialize)]
struct ModelRepr {
    version: u32,
    intents: Vec<String>,
    head: LinearHead,
    exemplars: String,
    exemplar_intents: Vec<u32>,
    threshold: f32,
    calibration: Calibration,
    /// Since version 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    distance: Option<DistanceRepr>,
}

#[derive(Serialize, Deserialize)]
struct DistanceRepr {
    whitening: String,
    means: String,
    shrinkage: f32,
}

/// Version 2 adds the Mahalanobis distance; version 1 models still load (without it).
const MODEL_VERSION: u32 = 2;

fn encode_f32(v: &[f32]) -> String {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn decode_f32(s: &str, what: &str) -> Result<Vec<f32>, IntentError> {
    let bytes =
        base64::engine::general_purpose::STANDARD.decode(s.as_bytes()).map_err(|e| IntentError::InvalidModel(format!("{what}: {e}")))?;
    if !bytes.len().is_multiple_of(4) {
        return Err(IntentError::InvalidModel(format!("{what}: not a whole number of f32s")));
    }
    Ok(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
}

impl TryFrom<ModelRepr> for IntentModel {
    type Error = IntentError;
    fn try_from(r: ModelRepr) -> Result<Self, IntentError> {
        let invalid = |m: &str| Err(IntentError::InvalidModel(m.to_owned()));
        if !(1..=MODEL_VERSION).contains(&r.version) {
            return Err(IntentError::InvalidModel(format!("version {} (this build reads 1 to {MODEL_VERSION})", r.version)));
        }
        if !r.head.is_consistent() || r.head.classes != r.intents.len() {
            return invalid("weights do not match the intents");
        }
        let exemplars = decode_f32(&r.exemplars, "exemplars")?;
        if r.head.dim == 0 || !exemplars.len().is_multiple_of(r.head.dim) {
            return invalid("exemplars do not match the embedding dimension");
        }
        if exemplars.len() / r.head.dim != r.exemplar_intents.len() || r.exemplar_intents.iter().any(|&c| c as usize >= r.intents.len()) {
            return invalid("exemplar intents do not match the exemplars");
        }
        let c = &r.calibration;
        let finite = r.threshold.is_finite() && c.temperature.is_finite() && c.temperature > 0.0;
        if !finite || !c.weights.iter().chain(c.distance_weights.iter().flatten()).all(|w| w.is_finite()) {
            return invalid("threshold, temperature or weights are not finite");
        }
        let distance = match r.distance {
            Some(d) => {
                let m = Mahalanobis {
                    dim: r.head.dim,
                    whitening: decode_f32(&d.whitening, "whitening")?,
                    means: decode_f32(&d.means, "means")?,
                    shrinkage: d.shrinkage,
                };
                if !m.is_consistent(r.head.dim) {
                    return invalid("the distance does not match the embedding dimension");
                }
                Some(m)
            }
            None => None,
        };
        let exemplars = Exemplars::new(exemplars, r.head.dim).map_err(|e| IntentError::InvalidModel(format!("exemplars: {e}")))?;
        Ok(Self {
            intents: r.intents,
            head: r.head,
            exemplars,
            exemplar_intents: r.exemplar_intents,
            threshold: r.threshold,
            calibration: r.calibration,
            distance,
        })
    }
}

impl From<IntentModel> for ModelRepr {
    fn from(m: IntentModel) -> Self {
        Self {
            version: if m.distance.is_some() { MODEL_VERSION } else { 1 },
            intents: m.intents,
            head: m.head,
            exemplars: m.exemplars.with_values(encode_f32),
            exemplar_intents: m.exemplar_intents,
            threshold: m.threshold,
            calibration: m.calibration,
            distance: m.distance.map(|d| DistanceRepr {
                whitening: encode_f32(&d.whitening),
                means: encode_f32(&d.means),
                shrinkage: d.shrinkage,
            }),
        }
    }
}

impl IntentModel {
    /// Classifies one embedding. An embedding of the wrong dimension is out of scope.
    pub fn predict(&self, embedding: &[f32]) -> Prediction {
        if embedding.len() != self.head.dim {
            return Prediction { intent: None, confidence: 0.0, top: Vec::new(), evidence: None, out_of_scope: false };
        }
        // Every exemplar is read: in lanes, with the CPU's widest vectors.
        let sims: Vec<f32> = self.exemplars.with_values(|values| {
            crate::simd::vectorized(|| values.chunks_exact(self.head.dim).map(|e| crate::simd::dot(e, embedding)).collect())
        });
        let neighbours = self.label(top_k(&sims, self.calibration.knn_neighbours.max(1)));
        self.decide(embedding, &neighbours)
    }

    /// Classifies many embeddings at once (the nearest-example search is batched).
    pub fn predict_many(&self, embeddings: &[Vec<f32>]) -> Result<Vec<Prediction>, IntentError> {
        let dim = self.head.dim;
        let (ok, bad): (Vec<usize>, Vec<usize>) = (0..embeddings.len()).partition(|&i| embeddings[i].len() == dim);
        let queries: Vec<&[f32]> = ok.iter().map(|&i| embeddings[i].as_slice()).collect();
        let found = neighbours(&queries, &self.exemplars, self.calibration.knn_neighbours.max(1))?;
        let mut out: Vec<Option<Prediction>> = vec![None; embeddings.len()];
        for (&i, n) in ok.iter().zip(found) {
            out[i] = Some(self.decide(&embeddings[i], &self.label(n)));
        }
        for i in bad {
            out[i] = Some(self.predict(&embeddings[i]));
        }
        Ok(out.into_iter().flatten().collect())
    }

    /// Replaces exemplar indices by their intents.
    fn label(&self, neighbours: Vec<(f32, usize)>) -> Vec<(f32, usize)> {
        neighbours.into_iter().map(|(s, i)| (s, self.exemplar_intents[i] as usize)).collect()
    }

    /// `neighbours` are (similarity, intent), most similar first.
    fn decide(&self, embedding: &[f32], neighbours: &[(f32, usize)]) -> Prediction {
        let probs = self.calibration.blend(&self.head.logits(embedding), neighbours);
        let scores = Scores::new(&probs, neighbours, self.distance.as_ref().map(|d| d.score(embedding)));
        let confidence = self.calibration.confidence(&scores);
        let mut ranked: Vec<(usize, f32)> = probs.into_iter().enumerate().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        let best = ranked.first().copied().unwrap_or((0, 0.0));
        let reserved = out_of_scope_index(&self.intents);
        let out_of_scope = reserved == Some(best.0);
        let intent = (confidence >= self.threshold && !out_of_scope).then(|| self.intents[best.0].clone());
        let top = ranked.into_iter().filter(|(i, _)| reserved != Some(*i)).take(3).map(|(i, p)| (self.intents[i].clone(), p)).collect();
        let evidence = Evidence {
            threshold: self.threshold,
            head_probability: scores.best_probability,
            nearest: scores.nearest,
            knn_mean: scores.knn_mean,
            mahalanobis: scores.mahalanobis,
            confidence_if_head_certain: self.calibration.confidence(&Scores { best_probability: 1.0, ..scores }),
        };
        Prediction { intent, confidence, top, evidence: Some(evidence), out_of_scope }
    }

    /// The scores the confidence of each embedding (all of the model's dimension) is
    /// computed from, for measuring how well each separates unknown intents.
    pub fn scores_many(&self, embeddings: &[Vec<f32>]) -> Result<Vec<Scores>, IntentError> {
        let dim = self.head.dim;
        if let Some(index) = embeddings.iter().position(|e| e.len() != dim) {
            return Err(IntentError::DimensionMismatch { index, found: embeddings[index].len(), expected: dim });
        }
        let queries: Vec<&[f32]> = embeddings.iter().map(Vec::as_slice).collect();
        let found = neighbours(&queries, &self.exemplars, self.calibration.knn_neighbours.max(1))?;
        Ok(queries
            .iter()
            .zip(found)
            .map(|(q, n)| {
                let n = self.label(n);
                Scores::new(&self.calibration.blend(&self.head.logits(q), &n), &n, self.distance.as_ref().map(|d| d.score(q)))
            })
            .collect())
    }

    /// Embeds and classifies `texts`, in order.
    pub fn classify<S: AsRef<str>>(&self, embedder: &Embedder, texts: &[S]) -> Result<Vec<Prediction>, IntentError> {
        self.predict_many(&embedder.embed(texts)?)
    }

    /// The intents this model knows, sorted.
    pub fn intents(&self) -> &[String] {
        &self.intents
    }

    /// The confidence below which a message is out of scope.
    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// Overrides the handoff threshold ([`Calibration::curve`] shows the trade-off).
    pub fn with_threshold(mut self, threshold: f32) -> Self {
        self.threshold = threshold.clamp(0.0, 1.0);
        self
    }

    /// The threshold that keeps `retention` of the held-out in-scope messages
    /// ([`threshold_for_retention`] on [`Calibration::curve`]); `None` for a model whose
    /// curve has no retention figures (stored before they were measured), whose
    /// threshold then stays as trained.
    pub fn threshold_for(&self, retention: f32) -> Option<f32> {
        let c = &self.calibration;
        // A model calibrated without unknown intents has no curve: it never hands off.
        if c.curve.is_empty() {
            return Some(0.0);
        }
        c.curve.iter().any(|p| p.in_scope_retention.is_some()).then(|| threshold_for_retention(&c.curve, retention))
    }

    /// This model with the threshold for `retention` ([`Self::threshold_for`]): how the
    /// live bot applies a tenant's `handoff_retention`, and `jamuna eval --retention`.
    pub fn with_retention(self, retention: f32) -> Self {
        match self.threshold_for(retention) {
            Some(t) => self.with_threshold(t),
            None => self,
        }
    }

    /// What calibration fitted and measured.
    pub fn calibration(&self) -> &Calibration {
        &self.calibration
    }
}
/// Every training embedding as one `(n, dim)` matrix, held once and never copied: the
/// one-message search reads its values in place, and the batched search
/// ([`IntentModel::predict_many`]) multiplies a batch's queries by it in one product.
#[derive(Clone)]
struct Exemplars(candle_core::Tensor);

impl Exemplars {
    /// `values`, row-major, `dim` wide.
    fn new(values: Vec<f32>, dim: usize) -> candle_core::Result<Self> {
        let rows = values.len() / dim.max(1);
        Ok(Self(candle_core::Tensor::from_vec(values, (rows, dim), &candle_core::Device::Cpu)?))
    }

    /// Calls `f` with the values, row-major.
    fn with_values<R>(&self, f: impl FnOnce(&[f32]) -> R) -> R {
        let (storage, layout) = self.0.storage_and_layout();
        match (&*storage, layout.contiguous_offsets()) {
            (candle_core::Storage::Cpu(cpu), Some((start, end))) => match cpu.as_slice::<f32>() {
                Ok(all) => f(&all[start..end]),
                Err(_) => f(&[]),
            },
            // Built by `new` only: contiguous f32 on the CPU.
            _ => f(&[]),
        }
    }
}

impl PartialEq for Exemplars {
    fn eq(&self, other: &Self) -> bool {
        self.0.dims() == other.0.dims() && self.with_values(|a| other.with_values(|b| a == b))
    }
}

impl std::fmt::Debug for Exemplars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Exemplars{:?}", self.0.dims())
    }
}

/// For each query, the `k` exemplars with the largest dot product, as (similarity,
/// index), most similar first: one matrix product per 256 queries.
fn neighbours(queries: &[&[f32]], exemplars: &Exemplars, k: usize) -> candle_core::Result<Vec<Vec<(f32, usize)>>> {
    use candle_core::{Device, Tensor};
    let (rows, dim) = exemplars.0.dims2()?;
    if rows == 0 || queries.is_empty() {
        return Ok(vec![Vec::new(); queries.len()]);
    }
    let r = exemplars.0.t()?;
    let mut out = Vec::with_capacity(queries.len());
    for chunk in queries.chunks(256) {
        let q = Tensor::from_vec(chunk.concat(), (chunk.len(), dim), &Device::Cpu)?;
        out.extend(q.matmul(&r)?.to_vec2::<f32>()?.iter().map(|row| top_k(row, k)));
    }
    Ok(out)
}

/// The `k` largest values of `row` as (value, index), largest first.
fn top_k(row: &[f32], k: usize) -> Vec<(f32, usize)> {
    let mut all: Vec<(f32, usize)> = row.iter().copied().zip(0..).collect();
    let k = k.min(all.len());
    if k < all.len() {
        all.select_nth_unstable_by(k, |a, b| b.0.total_cmp(&a.0));
        all.truncate(k);
    }
    all.sort_by(|a, b| b.0.total_cmp(&a.0));
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    /// Synthetic embeddings: `classes` well-separated directions with small noise.
    pub(super) fn blobs(classes: usize, per_class: usize, dim: usize) -> (Vec<Vec<f32>>, Vec<String>) {
        let mut rng = StdRng::seed_from_u64(1);
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        for c in 0..classes {
            for _ in 0..per_class {
                let mut v: Vec<f32> =
                    (0..dim).map(|d| if d == c { 1.0 } else { 0.0 } + 0.15 * (rand::Rng::random::<f32>(&mut rng) - 0.5)).collect();
                let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                v.iter_mut().for_each(|x| *x /= n);
                xs.push(v);
                ys.push(format!("intent_{c}"));
            }
        }
        (xs, ys)
    }

    pub(super) fn quick() -> TrainConfig {
        TrainConfig { epochs: 20, batch_size: 16, ..TrainConfig::default() }
    }

    #[test]
    fn prediction_lists_top_intents_best_first() {
        let (xs, ys) = blobs(4, 10, 8);
        let model = IntentModel::train_on_embeddings(&xs, &ys, &quick()).unwrap();
        let p = model.predict(&xs[0]);
        assert_eq!(p.top.len(), 3);
        assert!(p.top.windows(2).all(|w| w[0].1 >= w[1].1));
        // The confidence also weighs the distance to the nearest example.
        assert!(p.confidence > 0.0 && p.confidence <= 1.0);
    }

    #[test]
    fn wrong_dimension_is_out_of_scope_not_a_panic() {
        let (xs, ys) = blobs(3, 6, 8);
        let model = IntentModel::train_on_embeddings(&xs, &ys, &quick()).unwrap();
        assert_eq!(model.predict(&[0.5; 3]).intent, None);
    }

    #[test]
    fn round_trips_through_json_and_rejects_tampered_models() {
        let (xs, ys) = blobs(3, 6, 8);
        let model = IntentModel::train_on_embeddings(&xs, &ys, &quick()).unwrap();
        let json = serde_json::to_string(&model).unwrap();
        let back: IntentModel = serde_json::from_str(&json).unwrap();
        assert_eq!(back, model);

        let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
        v["intents"].as_array_mut().unwrap().pop();
        let err = serde_json::from_value::<IntentModel>(v).unwrap_err();
        assert!(err.to_string().contains("do not match"), "{err}");
    }

    #[test]
    fn a_model_stored_as_version_1_still_loads_and_decides_without_the_distance() {
        let (xs, ys) = blobs(4, 10, 8);
        let model = IntentModel::train_on_embeddings(&xs, &ys, &quick()).unwrap();
        let mut v = serde_json::to_value(&model).unwrap();
        assert_eq!(v["version"], 2);
        // What version 1 wrote: no distance, no distance weights.
        v["version"] = 1.into();
        v.as_object_mut().unwrap().remove("distance");
        v["calibration"].as_object_mut().unwrap().remove("distance_weights");
        let old: IntentModel = serde_json::from_value(v).unwrap();
        // (Its threshold was chosen for the new confidence here, so only the confidence
        // is checked: it is the version-1 formula.)
        let p = old.predict(&xs[0]);
        let [a, b, c] = old.calibration().weights;
        let s = old.scores_many(&xs[..1]).unwrap()[0];
        assert_eq!(s.mahalanobis, None);
        let expected = 1.0 / (1.0 + (-(a * s.best_probability.ln() + b * s.nearest + c)).exp());
        assert!((p.confidence - expected).abs() < 1e-5);
        // It is stored again as version 1, and a version from the future is refused.
        assert_eq!(serde_json::to_value(&old).unwrap()["version"], 1);
        let mut future = serde_json::to_value(&model).unwrap();
        future["version"] = 3.into();
        assert!(serde_json::from_value::<IntentModel>(future).is_err());
    }

    #[test]
    fn the_distance_scores_an_unseen_direction_above_the_examples() {
        let (xs, ys) = blobs(5, 10, 12);
        let model = IntentModel::train_on_embeddings(&xs, &ys, &quick()).unwrap();
        let mut unseen = vec![0.0f32; 12];
        unseen[9] = 1.0;
        let s = model.scores_many(&[xs[0].clone(), unseen]).unwrap();
        assert!(s[1].mahalanobis.unwrap() > s[0].mahalanobis.unwrap());
        assert!(s[1].knn_mean < s[0].knn_mean);
        assert!(model.calibration().distance_weights.is_some());
    }

    #[test]
    fn a_prediction_carries_the_features_its_confidence_came_from() {
        let (xs, ys) = blobs(5, 10, 12);
        let model = IntentModel::train_on_embeddings(&xs, &ys, &quick()).unwrap();
        let mut unseen = vec![0.0f32; 12];
        unseen[9] = 1.0;
        for q in [xs[0].clone(), unseen] {
            let p = model.predict(&q);
            let e = p.evidence.expect("a scored message has evidence");
            let s = model.scores_many(std::slice::from_ref(&q)).unwrap()[0];
            // (The batched search multiplies matrices: equal up to rounding.)
            let close = |a: f32, b: f32| (a - b).abs() < 1e-5;
            assert!(
                close(e.head_probability, s.best_probability) && close(e.nearest, s.nearest) && close(e.knn_mean, s.knn_mean),
                "{e:?} {s:?}"
            );
            assert!(close(e.mahalanobis.unwrap(), s.mahalanobis.unwrap()));
            assert_eq!(e.threshold, model.threshold());
            assert_eq!(p.intent.is_some(), p.confidence >= e.threshold);
            // The confidence had the head been certain: ln 1 = 0, the rest as they are.
            let [_, b, c, d, bias] = model.calibration().distance_weights.unwrap();
            let z = b * e.nearest + c * e.knn_mean + d * e.mahalanobis.unwrap() + bias;
            assert!(close(e.confidence_if_head_certain, 1.0 / (1.0 + (-z).exp())));
        }
        assert_eq!(model.predict(&[0.5; 3]).evidence, None, "a message of the wrong dimension is not scored");
    }

    #[test]
    fn the_default_threshold_keeps_95_percent_and_a_retention_picks_another() {
        let (xs, ys) = blobs(6, 12, 16);
        let model = IntentModel::train_on_embeddings(&xs, &ys, &quick()).unwrap();
        let c = model.calibration();
        assert_eq!(c.retention, Some(DEFAULT_RETENTION));
        assert_eq!(model.threshold_for(DEFAULT_RETENTION), Some(model.threshold()));
        let kept = point_for_retention(&c.curve, DEFAULT_RETENTION).and_then(|p| p.in_scope_retention).unwrap();
        assert!(kept >= DEFAULT_RETENTION, "{kept}");
        // Keeping more never raises the threshold.
        let (low, high) = (model.clone().with_retention(0.80).threshold(), model.clone().with_retention(0.995).threshold());
        assert!(low >= model.threshold() && model.threshold() >= high, "{low} {} {high}", model.threshold());
        // A model whose curve has no retention figures (stored before) keeps its threshold.
        let mut v = serde_json::to_value(&model).unwrap();
        for p in v["calibration"]["curve"].as_array_mut().unwrap() {
            p.as_object_mut().unwrap().remove("in_scope_retention");
        }
        let old: IntentModel = serde_json::from_value(v).unwrap();
        assert_eq!(old.threshold_for(0.8), None);
        assert_eq!(old.with_retention(0.8).threshold(), model.threshold());
    }

    #[test]
    fn a_message_like_the_tenants_out_of_scope_examples_is_handed_off_and_never_offered() {
        // Five intents, the fifth the tenant's examples of questions for a person.
        let (xs, mut ys) = blobs(5, 10, 12);
        ys.iter_mut().filter(|y| *y == "intent_4").for_each(|y| *y = OUT_OF_SCOPE_INTENT.to_owned());
        let model = IntentModel::train_on_embeddings(&xs, &ys, &quick()).unwrap();
        let many = model.predict_many(&xs).unwrap();
        for (p, y) in many.iter().zip(&ys) {
            assert_eq!(p.out_of_scope, y == OUT_OF_SCOPE_INTENT, "{y}: {p:?}");
            if p.out_of_scope {
                // A handoff whatever the confidence, and never one of the intents offered.
                assert_eq!(p.intent, None);
                assert!(p.confidence >= model.threshold(), "as sure as any intent: {p:?}");
            }
            assert!(p.top.iter().all(|(i, _)| i != OUT_OF_SCOPE_INTENT), "{p:?}");
        }
        // Single predictions agree, and the flag survives the JSON of a prediction.
        assert!(model.predict(&xs[45]).out_of_scope);
        let json = serde_json::to_value(&many[45]).unwrap();
        assert_eq!(json["out_of_scope"], true);
        assert!(serde_json::to_value(&many[0]).unwrap().get("out_of_scope").is_none());
        // The stored model knows the class again when loaded.
        let back: IntentModel = serde_json::from_str(&serde_json::to_string(&model).unwrap()).unwrap();
        assert!(back.predict(&xs[45]).out_of_scope);
        // Without such examples nothing reads as out of scope.
        let (xs, ys) = blobs(5, 10, 12);
        let plain = IntentModel::train_on_embeddings(&xs, &ys, &quick()).unwrap();
        assert!(plain.predict_many(&xs).unwrap().iter().all(|p| !p.out_of_scope));
    }

    #[test]
    fn calibration_counts_the_out_of_scope_examples_as_out_of_scope_messages() {
        let (xs, ys) = blobs(6, 10, 12);
        let plain = IntentModel::train_on_embeddings(&xs, &ys, &quick()).unwrap();
        let mut marked = ys.clone();
        marked.iter_mut().filter(|y| *y == "intent_5").for_each(|y| *y = OUT_OF_SCOPE_INTENT.to_owned());
        let with = IntentModel::train_on_embeddings(&xs, &marked, &quick()).unwrap();
        // Their held-out examples leave the in-scope rows for the out-of-scope ones (each
        // round holds out 2 of the class's 10 examples when it does not hide it).
        let (p, w) = (plain.calibration(), with.calibration());
        assert_eq!(p.in_scope_rows + p.oos_rows, w.in_scope_rows + w.oos_rows);
        assert!(
            w.in_scope_rows < p.in_scope_rows && w.oos_rows > p.oos_rows,
            "{} {} / {} {}",
            p.in_scope_rows,
            p.oos_rows,
            w.in_scope_rows,
            w.oos_rows
        );
        // Read as the class, they are handed off at every threshold: all caught.
        assert_eq!(w.curve.first().map(|c| c.oos_recall), Some(1.0), "{:?}", w.curve.first());
    }

    #[test]
    fn batched_and_single_predictions_agree() {
        let (xs, ys) = blobs(5, 8, 12);
        let model = IntentModel::train_on_embeddings(&xs, &ys, &quick()).unwrap();
        let mut queries = xs.clone();
        queries.push(vec![0.1; 3]); // wrong dimension: out of scope either way
        let many = model.predict_many(&queries).unwrap();
        for (q, p) in queries.iter().zip(&many) {
            let one = model.predict(q);
            assert_eq!(one.intent, p.intent);
            assert!((one.confidence - p.confidence).abs() < 1e-5);
        }
    }
}
