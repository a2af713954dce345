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
//! How readily the bot hands off is the tenant's `handoff_retention`
//! (`TenantCreated` / `TenantSettingsChanged`, folded in by
//! [`LiveIntents::set_retention`]): the model in use gets the threshold that
//! keeps that share of its held-out in-scope messages
//! ([`IntentModel::with_retention`]), when the setting changes and whenever a
//! new model is installed. Until a tenant's settings are seen, a model keeps
//! the threshold it was trained with (the default retention).
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
    /// The tenant's handoff retention, once its settings were seen.
    retention: Option<f32>,
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
            // A training asked for (crate::retrain trains it, on one replica) or
            // given up on: the model in use stays.
            KnowledgeBaseEvent::ArticleAdded { .. }
            | KnowledgeBaseEvent::ArticleUpdated { .. }
            | KnowledgeBaseEvent::ArticleRemoved { .. }
            | KnowledgeBaseEvent::IntentTrainingRequested { .. }
            | KnowledgeBaseEvent::IntentTrainingFailed { .. } => {}
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

    /// Puts `model` in use for `tenant`, unless a newer version already is,
    /// with the threshold for the tenant's handoff retention.
    pub fn install(&self, tenant: &TenantId, version: u64, model: Arc<IntentModel>) {
        self.with(tenant, |t| {
            if t.model.as_ref().is_none_or(|(v, _)| *v <= version) {
                t.model = Some((version, at_retention(model, t.retention)));
            }
        });
    }

    /// Folds a change of `tenant`'s handoff retention in: the model in use
    /// (and every one installed later) hands off below the threshold for it.
    pub fn set_retention(&self, tenant: &TenantId, retention: f32) {
        self.with(tenant, |t| {
            if t.retention == Some(retention) {
                return;
            }
            t.retention = Some(retention);
            if let Some((version, model)) = t.model.take() {
                t.model = Some((version, at_retention(model, Some(retention))));
            }
        });
    }

    /// The threshold the bot applies to `tenant`'s intent model (`None`: no model).
    pub fn threshold(&self, tenant: &TenantId) -> Option<f32> {
        self.model(tenant).map(|m| m.threshold())
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

    /// [`LiveIntents::predict`] for many embedded messages at once, in order: each
    /// tenant's messages go through its model together, so the nearest-example search
    /// reads the tenant's examples once for all of them (one matrix product) instead
    /// of once a message.
    pub fn predict_all(&self, reads: &[(TenantId, Vec<f32>)]) -> Vec<Option<(Prediction, Option<String>)>> {
        let mut out: Vec<Option<(Prediction, Option<String>)>> = vec![None; reads.len()];
        let mut tenants: Vec<&TenantId> = reads.iter().map(|(t, _)| t).collect();
        tenants.sort();
        tenants.dedup();
        for tenant in tenants {
            let Some(model) = self.model(tenant) else { continue };
            let at: Vec<usize> = (0..reads.len()).filter(|&i| &reads[i].0 == tenant).collect();
            let queries: Vec<Vec<f32>> = at.iter().map(|&i| reads[i].1.clone()).collect();
            let predictions = match model.predict_many(&queries) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, "the batched intent prediction failed; predicting one by one");
                    queries.iter().map(|q| model.predict(q)).collect()
                }
            };
            for (i, prediction) in at.into_iter().zip(predictions) {
                let answer = prediction.intent.as_ref().and_then(|intent| self.with(tenant, |t| t.answers.get(intent).cloned()));
                out[i] = Some((prediction, answer));
            }
        }
        out
    }

    /// How many examples `tenant` has.
    pub fn examples(&self, tenant: &TenantId) -> usize {
        self.with(tenant, |t| t.examples.len())
    }
}

/// `model` with the threshold for `retention` (as trained without one). The
/// model is copied only when it is shared and its threshold changes.
fn at_retention(model: Arc<IntentModel>, retention: Option<f32>) -> Arc<IntentModel> {
    match retention.and_then(|r| model.threshold_for(r)) {
        Some(t) if t != model.threshold() => Arc::new(Arc::unwrap_or_clone(model).with_threshold(t)),
        _ => model,
    }
}
