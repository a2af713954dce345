//! Background training: an admin asks for a new intent model (or adds an
//! example from the dashboard), and an AI worker trains it and records it.
//!
//! The request is an event, `IntentTrainingRequested`, in the tenant's
//! knowledge-base stream; the model's figures go back as
//! `IntentModelTrained` through `KnowledgeBaseCommand::CompleteIntentTraining`,
//! which the domain refuses once the request is completed. So:
//!
//! * **One replica trains a request.** The replica that holds the partition
//!   of the knowledge-base stream (`partition_of("<tenant>.knowledge_base.kb")`,
//!   so tenants spread over the replicas) trains it. Should two replicas
//!   both think they hold it during a hand-over, the second recording is
//!   refused (`no_training_requested`) and its model dropped.
//! * **A request is never lost.** Whether a request is pending is read from
//!   the knowledge base itself (the aggregate, loaded from the log), never
//!   from the worker's checkpoint: every worker reads the log from its start,
//!   so after a crash the pending request is seen again and trained. A
//!   replica that takes the partition over looks again too.
//! * **The examples may change meanwhile.** The model is then refused
//!   (`examples_changed`) and the worker trains again on the new examples.
//! * **Answering goes on.** The examples are embedded a chunk at a time
//!   through the shared embedder, between customers' messages, and the head
//!   is fitted on the blocking pool ([`learn::train_async`]); one training
//!   runs at a time in the process, and one per tenant.
//! * **A training that keeps failing is given up, and says so.** When the
//!   training itself fails (the encoder or the fit returns an error), the
//!   worker tries the same examples again after [`RETRY`], [`ATTEMPTS`]
//!   times in all, then records `IntentTrainingFailed` with the error
//!   (`KnowledgeBaseCommand::FailIntentTraining`): the request is no longer
//!   pending and the model state is `failed`, with the reason, until an
//!   admin asks again or the examples change. When the domain refuses the
//!   trained model itself (its figures not finite, its operating points out
//!   of range), the failure is recorded at once: the same examples train the
//!   same model ([`learn`] trains deterministically), so trying again would
//!   only be refused again. Should the examples have changed meanwhile
//!   (`examples_changed`), the worker trains the new ones instead; should the
//!   request be gone (`no_training_requested`), it stops.
//! * **The log being unavailable is not a training failure.** Loading the
//!   knowledge base, reading its examples or appending the outcome failing
//!   is retried every [`RETRY`] for as long as it takes, and nothing is
//!   recorded (nothing could be).
//!
//! The model is written to the [`ModelCache`] before it is recorded, so
//! every worker of the same data directory loads it when it reads the
//! event ([`crate::live`]) instead of training it again.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use jamuna_commands::handler::{CommandContext, CommandError, CommandHandler};
use jamuna_commands::{RecordedEvent, seal};
use jamuna_domain::knowledge_base::{
    KnowledgeBase, KnowledgeBaseCommand, KnowledgeBaseError, KnowledgeBaseEvent, LabelledExample, ModelState, examples_fingerprint,
    held_examples,
};
use jamuna_domain::{AggregateKind, StreamId, TenantId};
use jamuna_projections::work_share::{WorkShare, partition_of, partition_unit};
use tokio::sync::Semaphore;

use crate::embed::AsyncEmbedder;
use crate::intent::{Example, IntentError};
use crate::learn;
use crate::live::LiveIntents;

/// How long a training task waits before it looks at the knowledge base:
/// a replay of the log reaches the request's completion meanwhile.
const SETTLE: Duration = Duration::from_millis(300);
/// How long it waits after a failure (the log unavailable, the encoder failing).
pub const RETRY: Duration = Duration::from_secs(5);
/// How many times the same examples are trained, when training fails,
/// before the request is given up (`IntentTrainingFailed`).
pub const ATTEMPTS: u32 = 3;

/// How the retrainer trains a model on examples (in canonical order). The
/// product trains with [`learn::train_async`] through the worker's shared
/// encoder: [`AsyncEmbedder`] implements it so.
#[async_trait]
pub trait Train: Send + Sync {
    async fn train(&self, examples: Vec<Example>) -> Result<learn::Trained, IntentError>;
}

#[async_trait]
impl Train for AsyncEmbedder {
    async fn train(&self, examples: Vec<Example>) -> Result<learn::Trained, IntentError> {
        learn::train_async(self, examples).await
    }
}

/// The failed training attempts of one set of examples, in a tenant's task.
#[derive(Default)]
struct Attempts {
    /// The examples' fingerprint, and how many attempts of them failed.
    failed: Option<(String, u32)>,
}

impl Attempts {
    /// Counts a failed attempt of `fingerprint`; returns how many failed in a row.
    fn fail(&mut self, fingerprint: &str) -> u32 {
        match &mut self.failed {
            Some((fp, n)) if fp == fingerprint => {
                *n += 1;
                *n
            }
            _ => {
                self.failed = Some((fingerprint.to_owned(), 1));
                1
            }
        }
    }
}

#[derive(Default)]
struct Tenant {
    /// A training task runs for the tenant.
    running: bool,
    /// Something happened since the task last looked: it looks again.
    dirty: bool,
}

/// Trains the intent models asked for, in the background.
pub struct Retrainer {
    commands: Arc<CommandHandler>,
    intents: Arc<LiveIntents>,
    share: Arc<WorkShare>,
    train: Arc<dyn Train>,
    /// How long to wait after a failure ([`RETRY`]).
    retry: Duration,
    tenants: Mutex<HashMap<TenantId, Tenant>>,
    /// Tenants whose request is pending, as far as the log was read.
    pending: Mutex<HashSet<TenantId>>,
    /// One training at a time in the process.
    cpu: Semaphore,
}

/// Whether a knowledge-base event changes what is pending: a request, a
/// model recorded or a training given up, or a change of the examples
/// (which may make a pending request trainable again).
fn concerns_training(event_type: &str) -> bool {
    matches!(event_type, "IntentTrainingRequested" | "IntentModelTrained" | "IntentTrainingFailed" | "ExamplesAdded" | "ExamplesRemoved")
}

impl Retrainer {
    /// A retrainer, following the partitions `share` gives this worker, that
    /// trains with [`learn::train_async`] through the encoder of `intents`.
    pub fn start(commands: Arc<CommandHandler>, intents: Arc<LiveIntents>, share: Arc<WorkShare>) -> Arc<Self> {
        let train = Arc::new(intents.embedder().clone());
        Self::start_with(commands, intents, share, train, RETRY)
    }

    /// [`Retrainer::start`] training with `train`, and waiting `retry` after a
    /// failure: tests make training fail, and do not wait [`RETRY`].
    pub fn start_with(
        commands: Arc<CommandHandler>,
        intents: Arc<LiveIntents>,
        share: Arc<WorkShare>,
        train: Arc<dyn Train>,
        retry: Duration,
    ) -> Arc<Self> {
        let this = Arc::new(Self {
            commands,
            intents,
            share,
            train,
            retry,
            tenants: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashSet::new()),
            cpu: Semaphore::new(1),
        });
        tokio::spawn(Arc::clone(&this).follow_partitions());
        this
    }

    /// The partition whose holder trains `tenant`'s models.
    pub fn partition(tenant: &TenantId) -> u32 {
        partition_of(&StreamId::knowledge_base(tenant).to_string())
    }

    fn holds(&self, tenant: &TenantId) -> bool {
        self.share.held().borrow().contains(&partition_unit(Self::partition(tenant)))
    }

    /// Follows one event of the log (the worker hands it every one, in order).
    pub fn observe(self: &Arc<Self>, recorded: &RecordedEvent) {
        if recorded.stream.kind() != AggregateKind::KnowledgeBase || !concerns_training(&recorded.event_type) {
            return;
        }
        let tenant = recorded.stream.tenant().clone();
        {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            match recorded.event_type.as_str() {
                "IntentTrainingRequested" => {
                    pending.insert(tenant.clone());
                }
                "IntentModelTrained" | "IntentTrainingFailed" => {
                    pending.remove(&tenant);
                }
                _ if !pending.contains(&tenant) => return,
                _ => {}
            }
            if !pending.contains(&tenant) {
                return;
            }
        }
        self.kick(tenant);
    }

    /// Starts `tenant`'s training task, or tells the running one to look again.
    fn kick(self: &Arc<Self>, tenant: TenantId) {
        if !self.holds(&tenant) {
            return;
        }
        let start = {
            let mut tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
            let t = tenants.entry(tenant.clone()).or_default();
            t.dirty = true;
            !std::mem::replace(&mut t.running, true)
        };
        if start {
            tokio::spawn(Arc::clone(self).run(tenant));
        }
    }

    /// When the partitions held change, looks at the pending requests of
    /// the tenants whose partition this worker now holds.
    async fn follow_partitions(self: Arc<Self>) {
        let mut held = self.share.held();
        while held.changed().await.is_ok() {
            let pending: Vec<TenantId> = self.pending.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect();
            for tenant in pending {
                self.kick(tenant);
            }
        }
    }

    /// Trains `tenant`'s pending requests until none is left.
    async fn run(self: Arc<Self>, tenant: TenantId) {
        let mut attempts = Attempts::default();
        loop {
            tokio::time::sleep(SETTLE).await;
            self.tenants.lock().unwrap_or_else(|p| p.into_inner()).entry(tenant.clone()).or_default().dirty = false;
            let done = match self.train_once(&tenant, &mut attempts).await {
                Ok(done) => done,
                Err(e) => {
                    tracing::warn!(%tenant, error = %e, "cannot reach the knowledge base to train the requested intent model; retrying");
                    tokio::time::sleep(self.retry).await;
                    false
                }
            };
            let mut tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
            let t = tenants.entry(tenant.clone()).or_default();
            if done && !t.dirty {
                t.running = false;
                return;
            }
        }
    }

    /// Trains and records the model of `tenant`'s pending request, if there
    /// is one and it is this worker's, or records that its training failed.
    /// `Ok(true)`: nothing (more) to do now. `Err`: the log or the store
    /// failed (retried, not a training failure).
    async fn train_once(&self, tenant: &TenantId, attempts: &mut Attempts) -> Result<bool, String> {
        let stream = StreamId::knowledge_base(tenant);
        let kb = self.commands.load::<KnowledgeBase>(&stream).await.map_err(|e| e.to_string())?;
        if kb.model_state() != ModelState::Training || !self.holds(tenant) {
            return Ok(true);
        }
        let examples = self.examples(&stream).await?;
        let fingerprint = examples_fingerprint(&examples);
        let permit = self.cpu.acquire().await.map_err(|e| e.to_string())?;
        tracing::info!(%tenant, examples = examples.len(), "training the requested intent model");
        let trained = self.train.train(learn::canonical(&examples)).await;
        drop(permit);
        let trained = match trained {
            Ok(trained) => trained,
            Err(e) => return self.attempt_failed(tenant, &stream, fingerprint, e.to_string(), true, attempts).await,
        };
        let record = trained.record(fingerprint.clone());
        // Cached under the version it should get, so that the workers load it.
        let cache = self.intents.cache();
        let expected = kb.model_version() + 1;
        let cached = |version: u64| {
            if let Some(c) = &cache
                && let Err(e) = c.store(tenant, version, &fingerprint, &trained.model)
            {
                tracing::warn!(%tenant, error = %e, "cannot cache the intent model");
            }
        };
        cached(expected);
        let ctx = CommandContext::new(tenant.clone(), chrono::Utc::now());
        let command = KnowledgeBaseCommand::CompleteIntentTraining { trained: record };
        match self.commands.execute::<KnowledgeBase>(&stream, &command, &ctx).await {
            Ok(done) => {
                for e in &done.events {
                    if let KnowledgeBaseEvent::IntentModelTrained { version, .. } = &e.data {
                        if *version != expected {
                            cached(*version);
                        }
                        tracing::info!(%tenant, version, seconds = trained.seconds, "intent model trained and recorded");
                    }
                }
                // Another request may have come meanwhile: look again.
                Ok(false)
            }
            // The examples changed while it trained: train again.
            Err(CommandError::Rejected(KnowledgeBaseError::ExamplesChanged)) => Ok(false),
            // Another worker completed it, or the examples were cut below 2 intents.
            Err(CommandError::Rejected(e @ KnowledgeBaseError::NoTrainingRequested)) => {
                tracing::info!(%tenant, reason = %e, "the trained intent model is not recorded");
                Ok(true)
            }
            // The model itself is refused (not finite, operating points out of
            // range): the same examples would train it again, so no retry.
            Err(CommandError::Rejected(e)) => {
                let reason = format!("the trained model was refused: {e}");
                self.attempt_failed(tenant, &stream, fingerprint, reason, false, attempts).await
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// An attempt to train the examples named by `fingerprint` failed for
    /// `reason`. Until [`ATTEMPTS`] failed (when `retry`), waits and looks
    /// again; then records that the training failed.
    async fn attempt_failed(
        &self,
        tenant: &TenantId,
        stream: &StreamId,
        fingerprint: String,
        reason: String,
        retry: bool,
        attempts: &mut Attempts,
    ) -> Result<bool, String> {
        let failed = attempts.fail(&fingerprint);
        if retry && failed < ATTEMPTS {
            tracing::warn!(%tenant, attempt = failed, of = ATTEMPTS, error = %reason, "training the requested intent model failed; retrying");
            tokio::time::sleep(self.retry).await;
            return Ok(false);
        }
        tracing::warn!(%tenant, attempts = failed, error = %reason, "training the requested intent model failed; giving the request up");
        let ctx = CommandContext::new(tenant.clone(), chrono::Utc::now());
        let command = KnowledgeBaseCommand::FailIntentTraining { examples_fingerprint: fingerprint, reason };
        match self.commands.execute::<KnowledgeBase>(stream, &command, &ctx).await {
            Ok(_) => {
                attempts.failed = None;
                // Another request may have come meanwhile: look again.
                Ok(false)
            }
            // The examples changed while it trained: train the new ones.
            Err(CommandError::Rejected(KnowledgeBaseError::ExamplesChanged)) => Ok(false),
            // Completed by another worker, or cut below 2 intents, meanwhile.
            Err(CommandError::Rejected(e)) => {
                tracing::info!(%tenant, reason = %e, "the failed training is not recorded");
                Ok(true)
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// The examples as the log holds them now.
    async fn examples(&self, stream: &StreamId) -> Result<HashSet<LabelledExample>, String> {
        let recorded = self.commands.log().read_stream(stream, 0).await.map_err(|e| e.to_string())?;
        let events = recorded.iter().map(seal::decode::<KnowledgeBaseEvent>).collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())?;
        Ok(held_examples(events))
    }
}
