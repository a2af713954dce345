//! The tenants' intents as the worker follows the log: labelled examples,
//! the answer to each intent, and the trained model in use.
//!
//! Examples and answers are folded from `ExamplesAdded`, `ExamplesRemoved`
//! and `IntentAnswerSet`. On `IntentModelTrained` the examples held at that
//! point of the log are exactly those the model was trained on, so they are
//! kept aside and a background task loads that model from the
//! [`ModelCache`] or retrains it ([`learn::train_async`]) and installs it.
//! Until then the previous model (or none) keeps answering. Replaying a log
//! with many trainings only builds the newest: a task takes the latest
//! pending training when it starts.
//!
//! The rule that combines a recognised intent with the retrieval decision
//! is pure and lives with the other decision rules
//! ([`crate::decision::with_intent`]).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jamuna_domain::TenantId;
use jamuna_domain::knowledge_base::{KnowledgeBaseEvent, LabelledExample, TrainedModel, examples_fingerprint};

use crate::embed::AsyncEmbedder;
use crate::intent::{Example, IntentModel, Prediction};
use crate::learn::{self, ModelCache};

struct Pending {
    version: u64,
    trained: TrainedModel,
    examples: Vec<Example>,
}

#[derive(Default)]
struct TenantIntents {
    examples: HashSet<LabelledExample>,
    answers: HashMap<String, String>,
    model: Option<(u64, Arc<IntentModel>)>,
    pending: Option<Pending>,
    training: bool,
}

/// Every tenant's intents, shared by the worker (which feeds it events) and
/// the answerer (which asks it).
pub struct LiveIntents {
    embedder: AsyncEmbedder,
    cache: Mutex<Option<ModelCache>>,
    tenants: Mutex<HashMap<TenantId, TenantIntents>>,
}

impl LiveIntents {
    pub fn new(embedder: AsyncEmbedder) -> Self {
        Self { embedder, cache: Mutex::new(None), tenants: Mutex::new(HashMap::new()) }
    }

    /// Where trained models are cached (without one, every worker start retrains).
    pub fn set_cache(&self, cache: ModelCache) {
        *self.cache.lock().unwrap_or_else(|p| p.into_inner()) = Some(cache);
    }

    /// The encoder the models embed with.
    pub fn embedder(&self) -> &AsyncEmbedder {
        &self.embedder
    }

    /// Where trained models are cached, if anywhere.
    pub fn cache(&self) -> Option<ModelCache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn with<R>(&self, tenant: &TenantId, f: impl FnOnce(&mut TenantIntents) -> R) -> R {
        let mut t = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        f(t.entry(tenant.clone()).or_default())
    }

    /// Folds one knowledge-base event in. Must run inside a tokio runtime
    /// (a training is started on `IntentModelTrained`).
    pub fn apply(self: &Arc<Self>, tenant: &TenantId, event: &KnowledgeBaseEvent) {
        match event {
            KnowledgeBaseEvent::ExamplesAdded { examples } => self.with(tenant, |t| t.examples.extend(examples.iter().cloned())),
            KnowledgeBaseEvent::ExamplesRemoved { examples } => self.with(tenant, |t| {
                for e in examples {
                    t.examples.remove(e);
                }
            }),
            KnowledgeBaseEvent::IntentAnswerSet { intent, answer } => self.with(tenant, |t| {
                t.answers.insert(intent.clone(), answer.clone());
            }),
            KnowledgeBaseEvent::IntentModelTrained { version, trained } => {
                let start = self.with(tenant, |t| {
                    t.pending = Some(Pending { version: *version, trained: trained.clone(), examples: learn::canonical(&t.examples) });
                    !std::mem::replace(&mut t.training, true)
                });
                if start {
                    let this = Arc::clone(self);
                    let tenant = tenant.clone();
                    tokio::spawn(async move { this.train_pending(tenant).await });
                }
            }
            // A training asked for: crate::retrain trains it (on one replica).
            KnowledgeBaseEvent::ArticleAdded { .. }
            | KnowledgeBaseEvent::ArticleUpdated { .. }
            | KnowledgeBaseEvent::ArticleRemoved { .. }
            | KnowledgeBaseEvent::IntentTrainingRequested { .. } => {}
        }
    }

    /// Builds the newest pending model of `tenant`, then any that came meanwhile.
    async fn train_pending(self: Arc<Self>, tenant: TenantId) {
        // Let a replay of the log reach the newest training before starting.
        tokio::time::sleep(Duration::from_millis(300)).await;
        loop {
            let Some(p) = self.with(&tenant, |t| {
                let p = t.pending.take();
                if p.is_none() {
                    t.training = false;
                }
                p
            }) else {
                return;
            };
            if let Some(model) = self.load_or_train(&tenant, &p).await {
                self.install(&tenant, p.version, Arc::new(model));
            }
        }
    }

    async fn load_or_train(&self, tenant: &TenantId, p: &Pending) -> Option<IntentModel> {
        let fingerprint = &p.trained.examples_fingerprint;
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(model) = cache.as_ref().and_then(|c| c.load(tenant, p.version, fingerprint)) {
            tracing::info!(%tenant, version = p.version, "intent model loaded from the cache");
            return Some(model);
        }
        let held: Vec<LabelledExample> =
            p.examples.iter().map(|e| LabelledExample { text: e.text.clone(), intent: e.intent.clone() }).collect();
        if examples_fingerprint(&held) != *fingerprint {
            tracing::warn!(%tenant, version = p.version, "the examples differ from those the model was trained on; training on the examples held");
        }
        if p.trained.trainer != learn::TRAINER {
            tracing::warn!(%tenant, version = p.version, trainer = %p.trained.trainer, "the model was trained by another method; retraining with {}", learn::TRAINER);
        }
        tracing::info!(%tenant, version = p.version, examples = p.examples.len(), "training the intent model");
        match learn::train_async(&self.embedder, p.examples.clone()).await {
            Ok(trained) => {
                tracing::info!(%tenant, version = p.version, seconds = trained.seconds, "intent model trained");
                if let Some(c) = &cache
                    && let Err(e) = c.store(tenant, p.version, fingerprint, &trained.model)
                {
                    tracing::warn!(%tenant, error = %e, "cannot cache the intent model");
                }
                Some(trained.model)
            }
            Err(e) => {
                tracing::error!(%tenant, version = p.version, error = %e, "cannot train the intent model");
                None
            }
        }
    }

    /// Puts `model` in use for `tenant`, unless a newer version already is.
    pub fn install(&self, tenant: &TenantId, version: u64, model: Arc<IntentModel>) {
        self.with(tenant, |t| {
            if t.model.as_ref().is_none_or(|(v, _)| *v <= version) {
                t.model = Some((version, model));
            }
        });
    }

    /// The version of the model in use (0: none).
    pub fn model_version(&self, tenant: &TenantId) -> u64 {
        self.with(tenant, |t| t.model.as_ref().map_or(0, |m| m.0))
    }

    pub fn model(&self, tenant: &TenantId) -> Option<Arc<IntentModel>> {
        self.with(tenant, |t| t.model.as_ref().map(|m| Arc::clone(&m.1)))
    }

    /// The model's prediction for an embedded message, with the intent's
    /// answer if it has one; `None` without a model.
    pub fn predict(&self, tenant: &TenantId, query: &[f32]) -> Option<(Prediction, Option<String>)> {
        let model = self.model(tenant)?;
        // Outside the lock: the nearest-example search reads every example.
        let prediction = model.predict(query);
        let answer = prediction.intent.as_ref().and_then(|i| self.with(tenant, |t| t.answers.get(i).cloned()));
        Some((prediction, answer))
    }

    /// How many examples `tenant` has.
    pub fn examples(&self, tenant: &TenantId) -> usize {
        self.with(tenant, |t| t.examples.len())
    }
}
