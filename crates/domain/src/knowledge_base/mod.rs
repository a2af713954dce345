//! A tenant's knowledge base: the articles the bot answers from, and the
//! labelled examples its intent model learns from.
//!
//! A tenant has one knowledge base (one stream). Re-importing an unchanged
//! article, example or answer produces no event, so an import can be run
//! again safely.
//!
//! The events, by kind:
//!
//! * articles — `ArticleAdded`, `ArticleUpdated`, `ArticleRemoved`;
//! * labelled examples (`text`, `intent`) — `ExamplesAdded` and
//!   `ExamplesRemoved`, each carrying a batch small enough for one event
//!   (at most [`MAX_BATCH_BYTES`] of JSON); a large import is several such
//!   events in one atomic append;
//! * `IntentAnswerSet` — the text the bot answers with when it recognises an
//!   intent;
//! * `IntentModelTrained` — a model was trained on the examples as they then
//!   were (pinned by their [`examples_fingerprint`]); the AI worker follows
//!   it by loading or retraining that model;
//! * `IntentTrainingRequested` — an admin asked for a new model (or added or
//!   removed one example from the dashboard, which asks for one too). The
//!   AI worker that holds the knowledge base's partition trains it in the
//!   background and completes the request with `IntentModelTrained`
//!   ([`KnowledgeBaseCommand::CompleteIntentTraining`], refused once the
//!   request is completed, so one request records one model);
//! * `IntentTrainingFailed` — the worker gave up on the pending request
//!   ([`KnowledgeBaseCommand::FailIntentTraining`]): it is no longer pending,
//!   and the model state is [`ModelState::Failed`] until a new request, a
//!   model, or a change of the examples.
//!
//! One labelled example at a time ([`KnowledgeBaseCommand::AddExample`]) must
//! name an intent the knowledge base knows (it has examples or an answer), or
//! bring the answer of a new intent: a typo in an intent name would otherwise
//! make a new intent with one example and no answer.
//!
//! One intent is reserved: [`OUT_OF_SCOPE_INTENT`], the tenant's examples of
//! questions the bot must hand to a person. It is known without examples and
//! takes no answer (refused with [`KnowledgeBaseError::ReservedIntent`]).

pub mod import;

use crate::{Aggregate, AggregateKind, ArticleId, DomainEvent, Personal, TenantId, Timestamp, UserId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

/// The largest article body, in bytes: an event stays well under 256 KiB.
pub const MAX_BODY_BYTES: usize = 200 * 1024;
pub const MAX_TITLE_CHARS: usize = 300;
/// The most JSON one `ExamplesAdded`/`ExamplesRemoved` event carries.
pub const MAX_BATCH_BYTES: usize = 192 * 1024;
/// The longest example text, in characters (the encoder reads far less).
pub const MAX_EXAMPLE_CHARS: usize = 2_000;
/// The longest intent name, in characters.
pub const MAX_INTENT_CHARS: usize = 100;
/// The longest intent answer, in characters (it is sent as a message).
pub const MAX_ANSWER_CHARS: usize = 4_000;
/// The most examples a knowledge base holds (training time grows with them).
pub const MAX_EXAMPLES: usize = 100_000;
/// The longest reason a failed training records, in characters.
pub const MAX_FAILURE_REASON_CHARS: usize = 500;
/// The reserved intent of questions the bot must hand to a person: a tenant's
/// examples of what is out of scope (Rasa's `out_of_scope`). It needs no answer;
/// when the intent model reads a message as this intent, the bot hands off.
pub const OUT_OF_SCOPE_INTENT: &str = "out_of_scope";

/// One labelled example: a customer message and the intent it expresses.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LabelledExample {
    pub text: String,
    pub intent: String,
}

/// What a training run measured, as `kb train` reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainedModel {
    /// The examples it was trained on, as [`examples_fingerprint`] names them.
    pub examples_fingerprint: String,
    pub examples: usize,
    pub intents: usize,
    /// Calibrated confidence below which the bot does not trust the intent.
    pub threshold: f32,
    /// Accuracy on held-out training examples without handoff.
    pub held_out_accuracy: f32,
    /// Held-out in-scope accuracy at the threshold (a handoff counts as wrong).
    pub in_scope_accuracy: f32,
    /// Held-out share of hidden (stand-in unknown) intents handed off.
    pub oos_recall: f32,
    pub seconds: f32,
    /// The training method and its version, so a worker retrains the same way.
    pub trainer: String,
    /// The held-out in-scope retention (share of answerable messages answered) the
    /// threshold was chosen for; `None` in events recorded before thresholds were
    /// chosen that way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<f32>,
    /// The held-out trade-off: what each threshold keeps, answers right and hands off
    /// (at most [`MAX_OPERATING_POINTS`], sorted by threshold). Empty in older events.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operating_points: Vec<OperatingPoint>,
}

/// The most operating points a [`TrainedModel`] records.
pub const MAX_OPERATING_POINTS: usize = 128;

/// One threshold of a trained model and what it gave on held-out training examples;
/// every share is between 0 and 1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OperatingPoint {
    pub threshold: f32,
    /// Share of held-out in-scope messages answered (not handed off).
    pub in_scope_retention: f32,
    /// Share of held-out in-scope messages answered with the right intent.
    pub in_scope_accuracy: f32,
    /// Share of held-out messages of unknown intents handed off.
    pub oos_recall: f32,
}

impl TrainedModel {
    /// Finite measures (JSON has no NaN), shares between 0 and 1, a bounded curve.
    fn check(&self) -> Result<(), KnowledgeBaseError> {
        let t = self;
        if ![t.threshold, t.held_out_accuracy, t.in_scope_accuracy, t.oos_recall, t.seconds].iter().all(|f| f.is_finite()) {
            return Err(KnowledgeBaseError::NotFinite);
        }
        let share = |v: f32| (0.0..=1.0).contains(&v);
        let points_ok = t.operating_points.len() <= MAX_OPERATING_POINTS
            && t.operating_points
                .iter()
                .all(|p| [p.threshold, p.in_scope_retention, p.in_scope_accuracy, p.oos_recall].into_iter().all(share));
        if !t.retention.is_none_or(share) || !points_ok {
            return Err(KnowledgeBaseError::InvalidOperatingPoints);
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum KnowledgeBaseCommand {
    AddArticle {
        tenant: TenantId,
        article_id: ArticleId,
        title: String,
        body: String,
        source: Option<String>,
    },
    UpdateArticle {
        article_id: ArticleId,
        title: String,
        body: String,
    },
    RemoveArticle {
        article_id: ArticleId,
    },
    /// Adds new articles and updates changed ones, all in one append: an
    /// import is stored whole or not at all. Unchanged articles produce nothing.
    Import {
        tenant: TenantId,
        articles: Vec<import::Draft>,
    },
    /// Adds the examples not yet known and sets the answers that changed, in
    /// batches of events of one append. An answer for
    /// [`OUT_OF_SCOPE_INTENT`] refuses the whole import.
    ImportExamples {
        examples: Vec<LabelledExample>,
        answers: Vec<(String, String)>,
    },
    /// Removes the examples that are known (others are ignored).
    RemoveExamples {
        examples: Vec<LabelledExample>,
    },
    /// Refused for [`OUT_OF_SCOPE_INTENT`], which takes no answer.
    SetIntentAnswer {
        intent: String,
        answer: String,
    },
    /// Records a model trained on the examples named by the fingerprint;
    /// refused when the examples changed since.
    RecordIntentModel {
        trained: TrainedModel,
    },
    /// Adds one labelled example (nothing if it is known) and asks for a new
    /// model. The intent must be known, or `answer` must be given (it sets
    /// the intent's answer, as `SetIntentAnswer` would). [`OUT_OF_SCOPE_INTENT`]
    /// is always known and refuses an answer.
    AddExample {
        example: LabelledExample,
        answer: Option<String>,
    },
    /// Removes one known example and asks for a new model.
    RemoveExample {
        example: LabelledExample,
    },
    /// Asks for a model trained on the current examples (nothing if that is
    /// already asked for, or the latest model was trained on them).
    RequestIntentTraining,
    /// Completes the pending training request with the model trained for it,
    /// as [`KnowledgeBaseCommand::RecordIntentModel`] records one; refused
    /// when no request is pending (another worker completed it).
    CompleteIntentTraining {
        trained: TrainedModel,
    },
    /// Gives up on the pending training request: the examples named by the
    /// fingerprint (the current ones) could not be trained on, for `reason`
    /// (trimmed, control characters replaced, cut to
    /// [`MAX_FAILURE_REASON_CHARS`]). Refused when no request is pending, or
    /// the examples changed since (train those instead).
    FailIntentTraining {
        examples_fingerprint: String,
        reason: String,
    },
}

/// Where the tenant's intent model stands, as the knowledge base knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelState {
    /// No model was ever trained, and none is asked for.
    Untrained,
    /// A training is asked for and not yet recorded.
    Training,
    /// The latest model was trained on the current examples.
    Trained,
    /// The examples changed since the latest model, and no training is asked for.
    Stale,
    /// The training of the current examples failed, and no other is asked
    /// for ([`KnowledgeBase::training_failure`] says why).
    Failed,
}

/// Why the training of the current examples failed, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrainingFailure {
    pub reason: String,
    pub failed_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum KnowledgeBaseEvent {
    ArticleAdded {
        tenant: TenantId,
        article_id: ArticleId,
        title: String,
        body: String,
        source: Option<String>,
    },
    ArticleUpdated {
        article_id: ArticleId,
        title: String,
        body: String,
    },
    ArticleRemoved {
        article_id: ArticleId,
    },
    /// A batch of labelled examples (at most [`MAX_BATCH_BYTES`] of JSON).
    ExamplesAdded {
        examples: Vec<LabelledExample>,
    },
    ExamplesRemoved {
        examples: Vec<LabelledExample>,
    },
    /// When the bot recognises `intent`, it answers with `answer`.
    IntentAnswerSet {
        intent: String,
        answer: String,
    },
    /// Model `version` of the tenant was trained on the examples as they were
    /// at this point of the stream.
    IntentModelTrained {
        version: u64,
        trained: TrainedModel,
    },
    /// A model trained on the examples named by the fingerprint (those of this
    /// point of the stream) was asked for; an AI worker trains it.
    IntentTrainingRequested {
        examples_fingerprint: String,
        requested_at: Timestamp,
    },
    /// The pending training request was given up: the examples named by the
    /// fingerprint could not be trained on, for `reason`.
    IntentTrainingFailed {
        examples_fingerprint: String,
        reason: String,
        failed_at: Timestamp,
    },
}

impl DomainEvent for KnowledgeBaseEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::ArticleAdded { .. } => "ArticleAdded",
            Self::ArticleUpdated { .. } => "ArticleUpdated",
            Self::ArticleRemoved { .. } => "ArticleRemoved",
            Self::ExamplesAdded { .. } => "ExamplesAdded",
            Self::ExamplesRemoved { .. } => "ExamplesRemoved",
            Self::IntentAnswerSet { .. } => "IntentAnswerSet",
            Self::IntentModelTrained { .. } => "IntentModelTrained",
            Self::IntentTrainingRequested { .. } => "IntentTrainingRequested",
            Self::IntentTrainingFailed { .. } => "IntentTrainingFailed",
        }
    }

    /// Articles, examples and answers are the tenant's own content, written
    /// for training and publishing, not personal data.
    fn personal_fields_mut(&mut self) -> Vec<&mut Personal> {
        vec![]
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KnowledgeBaseError {
    #[error("article {0} already exists")]
    ArticleExists(ArticleId),
    #[error("there is no article {0}")]
    UnknownArticle(ArticleId),
    #[error("an article needs a title of 1 to {MAX_TITLE_CHARS} characters")]
    InvalidTitle,
    #[error("an article needs a body of at most {MAX_BODY_BYTES} bytes")]
    InvalidBody,
    #[error("an example needs a text of 1 to {MAX_EXAMPLE_CHARS} characters and an intent of 1 to {MAX_INTENT_CHARS}")]
    InvalidExample,
    #[error("an intent answer needs an intent and a text of 1 to {MAX_ANSWER_CHARS} characters")]
    InvalidAnswer,
    #[error("a knowledge base holds at most {MAX_EXAMPLES} examples")]
    TooManyExamples,
    #[error("there are no labelled examples to train on")]
    NoExamples,
    #[error("the examples changed while the model was trained; train again")]
    ExamplesChanged,
    /// A stored event holds finite numbers only: JSON has no NaN or infinity.
    #[error("a trained model's measures must be finite numbers")]
    NotFinite,
    #[error("there is no intent {0}: name a known intent, or give the new intent's answer")]
    UnknownIntent(String),
    #[error("there is no such example")]
    UnknownExample,
    /// Two intents make a classifier; [`OUT_OF_SCOPE_INTENT`] counts as one
    /// of them, since one intent and the examples to hand off is a real
    /// choice (answer it, or hand off).
    #[error("a model needs examples of at least 2 intents")]
    TooFewIntents,
    #[error("no training is pending")]
    NoTrainingRequested,
    #[error("a trained model's retention and operating points are shares between 0 and 1, at most {MAX_OPERATING_POINTS} points")]
    InvalidOperatingPoints,
    /// [`OUT_OF_SCOPE_INTENT`] takes examples, never an answer: the bot hands
    /// its questions to a person.
    #[error("the intent {OUT_OF_SCOPE_INTENT} is reserved for questions the bot hands to a person: it takes examples, not an answer")]
    ReservedIntent,
}

impl crate::ErrorCode for KnowledgeBaseError {
    fn code(&self) -> &'static str {
        match self {
            KnowledgeBaseError::ArticleExists(_) => "article_exists",
            KnowledgeBaseError::UnknownArticle(_) => "unknown_article",
            KnowledgeBaseError::InvalidTitle => "invalid_title",
            KnowledgeBaseError::InvalidBody => "invalid_body",
            KnowledgeBaseError::InvalidExample => "invalid_example",
            KnowledgeBaseError::InvalidAnswer => "invalid_answer",
            KnowledgeBaseError::TooManyExamples => "too_many_examples",
            KnowledgeBaseError::NoExamples => "no_examples",
            KnowledgeBaseError::ExamplesChanged => "examples_changed",
            KnowledgeBaseError::NotFinite => "not_finite",
            KnowledgeBaseError::UnknownIntent(_) => "unknown_intent",
            KnowledgeBaseError::UnknownExample => "unknown_example",
            KnowledgeBaseError::TooFewIntents => "too_few_intents",
            KnowledgeBaseError::NoTrainingRequested => "no_training_requested",
            KnowledgeBaseError::InvalidOperatingPoints => "invalid_operating_points",
            KnowledgeBaseError::ReservedIntent => "reserved_intent",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct KnowledgeBase {
    version: u64,
    /// Article → a fingerprint of its title and body, to spot unchanged updates.
    articles: HashMap<ArticleId, u64>,
    /// A stable hash of each example.
    examples: HashSet<u64>,
    /// Intent → a hash of its answer.
    answers: HashMap<String, u64>,
    /// The latest trained model's version (0: none).
    model_version: u64,
    /// Intent → how many examples it has (intents without examples are absent).
    intents: HashMap<String, usize>,
    /// The latest trained model's figures.
    trained: Option<TrainedModel>,
    /// The pending training request: the examples it names, and when.
    requested: Option<(String, Timestamp)>,
    /// The latest failed training (since the latest request or model): the
    /// examples it was of, and why.
    failed: Option<(String, TrainingFailure)>,
}

/// FNV-1a, 64 bits: stable across builds and machines (it names example sets in events).
fn fnv1a(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            h ^= 0x1f;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        for b in part.as_bytes() {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

fn example_hash(e: &LabelledExample) -> u64 {
    fnv1a(&[&e.intent, &e.text])
}

/// The examples a knowledge base holds after `events` (its stream, in log
/// order): those added and not removed since. The aggregate keeps only their
/// hashes; the worker that trains and the admins' list read the texts so.
pub fn held_examples(events: impl IntoIterator<Item = KnowledgeBaseEvent>) -> HashSet<LabelledExample> {
    let mut held = HashSet::new();
    for event in events {
        match event {
            KnowledgeBaseEvent::ExamplesAdded { examples } => held.extend(examples),
            KnowledgeBaseEvent::ExamplesRemoved { examples } => examples.iter().for_each(|e| {
                held.remove(e);
            }),
            _ => {}
        }
    }
    held
}

/// Names a set of examples, whatever their order: the same set, the same name.
pub fn examples_fingerprint<'a>(examples: impl IntoIterator<Item = &'a LabelledExample>) -> String {
    let hashes: HashSet<u64> = examples.into_iter().map(example_hash).collect();
    fingerprint_of(&hashes)
}

fn fingerprint_of(hashes: &HashSet<u64>) -> String {
    let sum = hashes.iter().fold(0u64, |s, &h| s.wrapping_add(h.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ h));
    format!("{}-{sum:016x}", hashes.len())
}

fn check_example(e: &LabelledExample) -> Result<(), KnowledgeBaseError> {
    let text = e.text.trim().chars().count();
    let intent = e.intent.trim().chars().count();
    let clean = e.intent == e.intent.trim() && e.text == e.text.trim() && !e.intent.chars().any(char::is_control);
    if text == 0 || text > MAX_EXAMPLE_CHARS || intent == 0 || intent > MAX_INTENT_CHARS || !clean {
        return Err(KnowledgeBaseError::InvalidExample);
    }
    Ok(())
}

fn check_answer(intent: &str, answer: &str) -> Result<(), KnowledgeBaseError> {
    if intent.trim() == OUT_OF_SCOPE_INTENT {
        return Err(KnowledgeBaseError::ReservedIntent);
    }
    let n = answer.trim().chars().count();
    if intent.trim().is_empty() || intent.chars().count() > MAX_INTENT_CHARS || n == 0 || n > MAX_ANSWER_CHARS {
        return Err(KnowledgeBaseError::InvalidAnswer);
    }
    Ok(())
}

/// Splits examples into batches of at most [`MAX_BATCH_BYTES`] of JSON each.
fn batches(examples: Vec<LabelledExample>) -> Vec<Vec<LabelledExample>> {
    let mut out: Vec<Vec<LabelledExample>> = Vec::new();
    let mut size = 0usize;
    for e in examples {
        // An example's JSON, a comma, and room for the event's envelope.
        let n = serde_json::to_string(&e).map_or(e.text.len() * 6 + e.intent.len() * 6 + 32, |s| s.len() + 1);
        if out.is_empty() || size + n > MAX_BATCH_BYTES - 1024 {
            out.push(Vec::new());
            size = 0;
        }
        size += n;
        if let Some(last) = out.last_mut() {
            last.push(e);
        }
    }
    out
}

/// A failure's reason as recorded: one trimmed line (control characters
/// become spaces) of at most [`MAX_FAILURE_REASON_CHARS`].
fn failure_reason(reason: &str) -> String {
    let line: String = reason.trim().chars().map(|c| if c.is_control() { ' ' } else { c }).take(MAX_FAILURE_REASON_CHARS).collect();
    line.trim_end().to_owned()
}

fn fingerprint(title: &str, body: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (title, body).hash(&mut h);
    h.finish()
}

fn check(title: &str, body: &str) -> Result<(), KnowledgeBaseError> {
    let n = title.trim().chars().count();
    if n == 0 || n > MAX_TITLE_CHARS {
        return Err(KnowledgeBaseError::InvalidTitle);
    }
    if body.trim().is_empty() || body.len() > MAX_BODY_BYTES {
        return Err(KnowledgeBaseError::InvalidBody);
    }
    Ok(())
}

impl KnowledgeBase {
    pub fn contains(&self, id: &ArticleId) -> bool {
        self.articles.contains_key(id)
    }
    pub fn len(&self) -> usize {
        self.articles.len()
    }
    pub fn is_empty(&self) -> bool {
        self.articles.is_empty()
    }
    /// How many labelled examples there are.
    pub fn examples(&self) -> usize {
        self.examples.len()
    }
    pub fn contains_example(&self, example: &LabelledExample) -> bool {
        self.examples.contains(&example_hash(example))
    }
    /// The current examples' [`examples_fingerprint`], from their hashes.
    pub fn examples_fingerprint(&self) -> String {
        fingerprint_of(&self.examples)
    }
    /// The latest trained model's version (0: none yet).
    pub fn model_version(&self) -> u64 {
        self.model_version
    }
    /// The intents known: those with examples or an answer, sorted.
    pub fn intents(&self) -> Vec<String> {
        let names: BTreeSet<&String> = self.intents.keys().chain(self.answers.keys()).collect();
        names.into_iter().cloned().collect()
    }
    /// An intent with examples or an answer, or the reserved
    /// [`OUT_OF_SCOPE_INTENT`] (known by definition).
    fn knows_intent(&self, intent: &str) -> bool {
        intent == OUT_OF_SCOPE_INTENT || self.intents.contains_key(intent) || self.answers.contains_key(intent)
    }
    /// The latest trained model's figures.
    pub fn trained(&self) -> Option<&TrainedModel> {
        self.trained.as_ref()
    }
    /// The pending training request, unless the examples were since cut
    /// below 2 intents (nothing can be trained on them then).
    /// [`OUT_OF_SCOPE_INTENT`] counts as an intent here, as everywhere
    /// ([`KnowledgeBaseError::TooFewIntents`]).
    fn pending(&self) -> Option<&(String, Timestamp)> {
        self.requested.as_ref().filter(|_| self.intents.len() >= 2)
    }
    /// When the pending training was asked for (`None`: none is pending).
    pub fn training_requested_at(&self) -> Option<Timestamp> {
        self.pending().map(|r| r.1)
    }
    pub fn model_state(&self) -> ModelState {
        let current = self.examples_fingerprint();
        match (self.pending(), &self.trained) {
            (Some(_), _) => ModelState::Training,
            (None, Some(t)) if t.examples_fingerprint == current => ModelState::Trained,
            (None, _) if self.failed.as_ref().is_some_and(|(fp, _)| *fp == current) => ModelState::Failed,
            (None, None) => ModelState::Untrained,
            (None, Some(_)) => ModelState::Stale,
        }
    }
    /// Why the training of the current examples failed, when the model state
    /// is [`ModelState::Failed`].
    pub fn training_failure(&self) -> Option<&TrainingFailure> {
        self.failed.as_ref().map(|(_, f)| f).filter(|_| self.model_state() == ModelState::Failed)
    }

    /// The request for a model of the examples as they will be after
    /// `added`/`removed`, when a model can be trained on them (examples of 2
    /// intents at least) and it is not already asked for.
    fn request_after(&self, added: &[LabelledExample], removed: &[LabelledExample], now: Timestamp) -> Option<KnowledgeBaseEvent> {
        let mut next = self.clone();
        if !added.is_empty() {
            next.apply(&KnowledgeBaseEvent::ExamplesAdded { examples: added.to_vec() });
        }
        if !removed.is_empty() {
            next.apply(&KnowledgeBaseEvent::ExamplesRemoved { examples: removed.to_vec() });
        }
        let fingerprint = next.examples_fingerprint();
        let pending = next.pending();
        let trained = next.trained.as_ref().is_some_and(|t| t.examples_fingerprint == fingerprint);
        if next.intents.len() < 2 || pending.is_some_and(|r| r.0 == fingerprint) || (pending.is_none() && trained) {
            return None;
        }
        Some(KnowledgeBaseEvent::IntentTrainingRequested { examples_fingerprint: fingerprint, requested_at: now })
    }

    fn record(&self, trained: &TrainedModel) -> Result<KnowledgeBaseEvent, KnowledgeBaseError> {
        trained.check()?;
        if self.examples.is_empty() {
            return Err(KnowledgeBaseError::NoExamples);
        }
        if trained.examples_fingerprint != self.examples_fingerprint() {
            return Err(KnowledgeBaseError::ExamplesChanged);
        }
        Ok(KnowledgeBaseEvent::IntentModelTrained { version: self.model_version + 1, trained: trained.clone() })
    }
}

impl Aggregate for KnowledgeBase {
    const KIND: AggregateKind = AggregateKind::KnowledgeBase;
    type Command = KnowledgeBaseCommand;
    type Event = KnowledgeBaseEvent;
    type Error = KnowledgeBaseError;

    fn decide(&self, command: &KnowledgeBaseCommand, now: Timestamp) -> Result<Vec<KnowledgeBaseEvent>, KnowledgeBaseError> {
        use KnowledgeBaseCommand as C;
        use KnowledgeBaseEvent as V;
        match command {
            C::AddArticle { tenant, article_id, title, body, source } => {
                check(title, body)?;
                if self.articles.contains_key(article_id) {
                    return Err(KnowledgeBaseError::ArticleExists(article_id.clone()));
                }
                Ok(vec![V::ArticleAdded {
                    tenant: tenant.clone(),
                    article_id: article_id.clone(),
                    title: title.trim().to_owned(),
                    body: body.clone(),
                    source: source.clone(),
                }])
            }
            C::UpdateArticle { article_id, title, body } => {
                check(title, body)?;
                let known = self.articles.get(article_id).ok_or_else(|| KnowledgeBaseError::UnknownArticle(article_id.clone()))?;
                if *known == fingerprint(title.trim(), body) {
                    return Ok(vec![]);
                }
                Ok(vec![V::ArticleUpdated { article_id: article_id.clone(), title: title.trim().to_owned(), body: body.clone() }])
            }
            C::RemoveArticle { article_id } => {
                if !self.articles.contains_key(article_id) {
                    return Err(KnowledgeBaseError::UnknownArticle(article_id.clone()));
                }
                Ok(vec![V::ArticleRemoved { article_id: article_id.clone() }])
            }
            C::Import { tenant, articles } => {
                let mut events = Vec::new();
                for d in articles {
                    check(&d.title, &d.body)?;
                    match self.articles.get(&d.id) {
                        None => events.push(V::ArticleAdded {
                            tenant: tenant.clone(),
                            article_id: d.id.clone(),
                            title: d.title.trim().to_owned(),
                            body: d.body.clone(),
                            source: d.source.clone(),
                        }),
                        Some(known) if *known != fingerprint(d.title.trim(), &d.body) => events.push(V::ArticleUpdated {
                            article_id: d.id.clone(),
                            title: d.title.trim().to_owned(),
                            body: d.body.clone(),
                        }),
                        Some(_) => {}
                    }
                }
                Ok(events)
            }
            C::ImportExamples { examples, answers } => {
                let mut seen = HashSet::new();
                let mut new = Vec::new();
                for e in examples {
                    check_example(e)?;
                    let h = example_hash(e);
                    if !self.examples.contains(&h) && seen.insert(h) {
                        new.push(e.clone());
                    }
                }
                if self.examples.len() + new.len() > MAX_EXAMPLES {
                    return Err(KnowledgeBaseError::TooManyExamples);
                }
                let mut events: Vec<V> = batches(new).into_iter().map(|examples| V::ExamplesAdded { examples }).collect();
                let mut set = HashMap::new();
                for (intent, answer) in answers {
                    check_answer(intent, answer)?;
                    set.insert(intent.trim(), answer.trim());
                }
                let mut set: Vec<(&str, &str)> = set.into_iter().collect();
                set.sort();
                for (intent, answer) in set {
                    if self.answers.get(intent) != Some(&fnv1a(&[answer])) {
                        events.push(V::IntentAnswerSet { intent: intent.to_owned(), answer: answer.to_owned() });
                    }
                }
                Ok(events)
            }
            C::RemoveExamples { examples } => {
                let mut seen = HashSet::new();
                let known: Vec<LabelledExample> = examples
                    .iter()
                    .filter(|e| {
                        let h = example_hash(e);
                        self.examples.contains(&h) && seen.insert(h)
                    })
                    .cloned()
                    .collect();
                Ok(batches(known).into_iter().map(|examples| V::ExamplesRemoved { examples }).collect())
            }
            C::SetIntentAnswer { intent, answer } => {
                check_answer(intent, answer)?;
                if self.answers.get(intent.trim()) == Some(&fnv1a(&[answer.trim()])) {
                    return Ok(vec![]);
                }
                Ok(vec![V::IntentAnswerSet { intent: intent.trim().to_owned(), answer: answer.trim().to_owned() }])
            }
            C::RecordIntentModel { trained } => Ok(vec![self.record(trained)?]),
            C::AddExample { example, answer } => {
                check_example(example)?;
                let mut events = Vec::new();
                match answer {
                    Some(answer) => {
                        check_answer(&example.intent, answer)?;
                        if self.answers.get(&example.intent) != Some(&fnv1a(&[answer.trim()])) {
                            events.push(V::IntentAnswerSet { intent: example.intent.clone(), answer: answer.trim().to_owned() });
                        }
                    }
                    None if !self.knows_intent(&example.intent) => return Err(KnowledgeBaseError::UnknownIntent(example.intent.clone())),
                    None => {}
                }
                if self.contains_example(example) {
                    return Ok(events);
                }
                if self.examples.len() >= MAX_EXAMPLES {
                    return Err(KnowledgeBaseError::TooManyExamples);
                }
                let added = vec![example.clone()];
                let request = self.request_after(&added, &[], now);
                events.push(V::ExamplesAdded { examples: added });
                events.extend(request);
                Ok(events)
            }
            C::RemoveExample { example } => {
                if !self.contains_example(example) {
                    return Err(KnowledgeBaseError::UnknownExample);
                }
                let removed = vec![example.clone()];
                let request = self.request_after(&[], &removed, now);
                Ok([V::ExamplesRemoved { examples: removed }].into_iter().chain(request).collect())
            }
            C::RequestIntentTraining => {
                if self.examples.is_empty() {
                    return Err(KnowledgeBaseError::NoExamples);
                }
                if self.intents.len() < 2 {
                    return Err(KnowledgeBaseError::TooFewIntents);
                }
                Ok(self.request_after(&[], &[], now).into_iter().collect())
            }
            C::CompleteIntentTraining { trained } => {
                if self.pending().is_none() {
                    return Err(KnowledgeBaseError::NoTrainingRequested);
                }
                Ok(vec![self.record(trained)?])
            }
            C::FailIntentTraining { examples_fingerprint, reason } => {
                if self.pending().is_none() {
                    return Err(KnowledgeBaseError::NoTrainingRequested);
                }
                // The worker trains the examples as they are (an import may
                // have changed them since the request), as a model is recorded.
                if *examples_fingerprint != self.examples_fingerprint() {
                    return Err(KnowledgeBaseError::ExamplesChanged);
                }
                Ok(vec![V::IntentTrainingFailed {
                    examples_fingerprint: examples_fingerprint.clone(),
                    reason: failure_reason(reason),
                    failed_at: now,
                }])
            }
        }
    }

    fn apply(&mut self, event: &KnowledgeBaseEvent) {
        self.version += 1;
        match event {
            KnowledgeBaseEvent::ArticleAdded { article_id, title, body, .. }
            | KnowledgeBaseEvent::ArticleUpdated { article_id, title, body } => {
                self.articles.insert(article_id.clone(), fingerprint(title, body));
            }
            KnowledgeBaseEvent::ArticleRemoved { article_id } => {
                self.articles.remove(article_id);
            }
            KnowledgeBaseEvent::ExamplesAdded { examples } => {
                for e in examples {
                    if self.examples.insert(example_hash(e)) {
                        *self.intents.entry(e.intent.clone()).or_default() += 1;
                    }
                }
            }
            KnowledgeBaseEvent::ExamplesRemoved { examples } => {
                for e in examples {
                    if self.examples.remove(&example_hash(e))
                        && let Some(n) = self.intents.get_mut(&e.intent)
                    {
                        *n -= 1;
                        if *n == 0 {
                            self.intents.remove(&e.intent);
                        }
                    }
                }
            }
            KnowledgeBaseEvent::IntentAnswerSet { intent, answer } => {
                self.answers.insert(intent.clone(), fnv1a(&[answer]));
            }
            KnowledgeBaseEvent::IntentModelTrained { version, trained } => {
                self.model_version = *version;
                self.trained = Some(trained.clone());
                self.requested = None;
                self.failed = None;
            }
            KnowledgeBaseEvent::IntentTrainingRequested { examples_fingerprint, requested_at } => {
                self.requested = Some((examples_fingerprint.clone(), *requested_at));
                self.failed = None;
            }
            KnowledgeBaseEvent::IntentTrainingFailed { examples_fingerprint, reason, failed_at } => {
                self.requested = None;
                self.failed = Some((examples_fingerprint.clone(), TrainingFailure { reason: reason.clone(), failed_at: *failed_at }));
            }
        }
    }

    fn data_subject(&self, _event: &KnowledgeBaseEvent) -> Option<UserId> {
        None
    }

    fn version(&self) -> u64 {
        self.version
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::given;

    fn id() -> ArticleId {
        ArticleId::parse("a1").unwrap()
    }
    fn added() -> KnowledgeBaseEvent {
        KnowledgeBaseEvent::ArticleAdded {
            tenant: TenantId::parse("acme").unwrap(),
            article_id: id(),
            title: "Card delivery".into(),
            body: "Cards arrive within 5 working days.".into(),
            source: None,
        }
    }
    fn add() -> KnowledgeBaseCommand {
        KnowledgeBaseCommand::AddArticle {
            tenant: TenantId::parse("acme").unwrap(),
            article_id: id(),
            title: " Card delivery ".into(),
            body: "Cards arrive within 5 working days.".into(),
            source: None,
        }
    }

    #[test]
    fn articles_are_added_once() {
        given::<KnowledgeBase>([]).when(add()).then(vec![added()]);
        given::<KnowledgeBase>([added()]).when(add()).then_err(KnowledgeBaseError::ArticleExists(id()));
    }

    #[test]
    fn an_unchanged_update_is_a_no_op() {
        let update =
            |body: &str| KnowledgeBaseCommand::UpdateArticle { article_id: id(), title: "Card delivery".into(), body: body.into() };
        given::<KnowledgeBase>([added()]).when(update("Cards arrive within 5 working days.")).then_nothing();
        given::<KnowledgeBase>([added()]).when(update("Cards arrive within 3 days.")).then(vec![KnowledgeBaseEvent::ArticleUpdated {
            article_id: id(),
            title: "Card delivery".into(),
            body: "Cards arrive within 3 days.".into(),
        }]);
        given::<KnowledgeBase>([]).when(update("x")).then_err(KnowledgeBaseError::UnknownArticle(id()));
    }

    #[test]
    fn removed_articles_are_gone() {
        let state = given::<KnowledgeBase>([added()])
            .when(KnowledgeBaseCommand::RemoveArticle { article_id: id() })
            .then(vec![KnowledgeBaseEvent::ArticleRemoved { article_id: id() }]);
        assert!(state.is_empty());
        given::<KnowledgeBase>([])
            .when(KnowledgeBaseCommand::RemoveArticle { article_id: id() })
            .then_err(KnowledgeBaseError::UnknownArticle(id()));
    }

    #[test]
    fn an_import_adds_new_updates_changed_and_skips_unchanged() {
        let draft = |id: &str, body: &str| import::Draft {
            id: ArticleId::parse(id).unwrap(),
            title: "Card delivery".into(),
            body: body.into(),
            source: None,
        };
        let tenant = TenantId::parse("acme").unwrap();
        given::<KnowledgeBase>([added()])
            .when(KnowledgeBaseCommand::Import {
                tenant: tenant.clone(),
                articles: vec![draft("a1", "Cards arrive within 5 working days."), draft("a1x", "New")],
            })
            .then(vec![KnowledgeBaseEvent::ArticleAdded {
                tenant: tenant.clone(),
                article_id: ArticleId::parse("a1x").unwrap(),
                title: "Card delivery".into(),
                body: "New".into(),
                source: None,
            }]);
        given::<KnowledgeBase>([added()])
            .when(KnowledgeBaseCommand::Import { tenant: tenant.clone(), articles: vec![draft("a1", "Changed")] })
            .then(vec![KnowledgeBaseEvent::ArticleUpdated { article_id: id(), title: "Card delivery".into(), body: "Changed".into() }]);
        given::<KnowledgeBase>([])
            .when(KnowledgeBaseCommand::Import { tenant, articles: vec![draft("a2", "ok"), draft("a3", " ")] })
            .then_err(KnowledgeBaseError::InvalidBody);
    }

    #[test]
    fn the_examples_held_are_those_added_and_not_removed_since() {
        let added = |e: Vec<LabelledExample>| KnowledgeBaseEvent::ExamplesAdded { examples: e };
        let removed = |e: Vec<LabelledExample>| KnowledgeBaseEvent::ExamplesRemoved { examples: e };
        let held = held_examples([
            added(vec![ex("where is my card", "card_arrival"), ex("I lost my card", "lost_card")]),
            removed(vec![ex("I lost my card", "lost_card"), ex("never added", "lost_card")]),
            added(vec![ex("I lost my card", "lost_card"), ex("new PIN", "change_pin")]),
            removed(vec![ex("new PIN", "change_pin")]),
        ]);
        assert_eq!(held, HashSet::from([ex("where is my card", "card_arrival"), ex("I lost my card", "lost_card")]));
    }

    fn ex(text: &str, intent: &str) -> LabelledExample {
        LabelledExample { text: text.into(), intent: intent.into() }
    }

    #[test]
    fn examples_are_added_once_and_answers_only_when_changed() {
        let import = |examples: Vec<LabelledExample>, answers: Vec<(&str, &str)>| KnowledgeBaseCommand::ImportExamples {
            examples,
            answers: answers.into_iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
        };
        let state = given::<KnowledgeBase>([])
            .when(import(
                vec![ex("where is my card", "card_arrival"), ex("where is my card", "card_arrival"), ex("lost it", "lost_card")],
                vec![("lost_card", " Freeze it. ")],
            ))
            .then(vec![
                KnowledgeBaseEvent::ExamplesAdded { examples: vec![ex("where is my card", "card_arrival"), ex("lost it", "lost_card")] },
                KnowledgeBaseEvent::IntentAnswerSet { intent: "lost_card".into(), answer: "Freeze it.".into() },
            ]);
        assert_eq!(state.examples(), 2);
        let known = [
            KnowledgeBaseEvent::ExamplesAdded { examples: vec![ex("where is my card", "card_arrival"), ex("lost it", "lost_card")] },
            KnowledgeBaseEvent::IntentAnswerSet { intent: "lost_card".into(), answer: "Freeze it.".into() },
        ];
        given::<KnowledgeBase>(known.clone())
            .when(import(vec![ex("lost it", "lost_card")], vec![("lost_card", "Freeze it.")]))
            .then_nothing();
        given::<KnowledgeBase>(known.clone())
            .when(import(vec![ex("lost it", "lost_card"), ex("new", "x")], vec![("lost_card", "Call us.")]))
            .then(vec![
                KnowledgeBaseEvent::ExamplesAdded { examples: vec![ex("new", "x")] },
                KnowledgeBaseEvent::IntentAnswerSet { intent: "lost_card".into(), answer: "Call us.".into() },
            ]);
        // One bad row refuses the whole import.
        given::<KnowledgeBase>([]).when(import(vec![ex("ok", "a"), ex("", "b")], vec![])).then_err(KnowledgeBaseError::InvalidExample);
        given::<KnowledgeBase>([]).when(import(vec![ex("ok", "a")], vec![("a", " ")])).then_err(KnowledgeBaseError::InvalidAnswer);
        let state = given::<KnowledgeBase>(known)
            .when(KnowledgeBaseCommand::RemoveExamples { examples: vec![ex("lost it", "lost_card"), ex("never added", "x")] })
            .then(vec![KnowledgeBaseEvent::ExamplesRemoved { examples: vec![ex("lost it", "lost_card")] }]);
        assert!(!state.contains_example(&ex("lost it", "lost_card")));
        assert!(state.contains_example(&ex("where is my card", "card_arrival")));
    }

    #[test]
    fn a_large_import_is_split_into_events_that_each_fit() {
        let examples: Vec<LabelledExample> = (0..10_000)
            .map(|i| ex(&format!("example number {i} about something or other, padded to a typical length"), &format!("intent_{}", i % 77)))
            .collect();
        let events = KnowledgeBase::default()
            .decide(&KnowledgeBaseCommand::ImportExamples { examples: examples.clone(), answers: vec![] }, crate::testing::now())
            .unwrap();
        assert!(events.len() > 1, "{} events", events.len());
        let mut total = 0;
        for e in &events {
            let json = serde_json::to_string(e).unwrap();
            assert!(json.len() <= MAX_BATCH_BYTES, "{} bytes", json.len());
            let KnowledgeBaseEvent::ExamplesAdded { examples } = e else { panic!("{e:?}") };
            total += examples.len();
        }
        assert_eq!(total, 10_000);
        let mut state = KnowledgeBase::default();
        events.iter().for_each(|e| state.apply(e));
        assert_eq!(state.examples_fingerprint(), examples_fingerprint(&examples));
    }

    #[test]
    fn a_trained_model_is_recorded_only_for_the_current_examples() {
        let known = [KnowledgeBaseEvent::ExamplesAdded { examples: vec![ex("a", "x"), ex("b", "y")] }];
        let trained = |fingerprint: String| TrainedModel {
            examples_fingerprint: fingerprint,
            examples: 2,
            intents: 2,
            threshold: 0.5,
            held_out_accuracy: 0.9,
            in_scope_accuracy: 0.8,
            oos_recall: 0.7,
            seconds: 1.0,
            trainer: "test".into(),
            retention: Some(0.95),
            operating_points: vec![OperatingPoint { threshold: 0.4, in_scope_retention: 0.95, in_scope_accuracy: 0.9, oos_recall: 0.6 }],
        };
        // Order does not matter to the fingerprint.
        let fp = examples_fingerprint(&[ex("b", "y"), ex("a", "x")]);
        let state = given::<KnowledgeBase>(known.clone())
            .when(KnowledgeBaseCommand::RecordIntentModel { trained: trained(fp.clone()) })
            .then(vec![KnowledgeBaseEvent::IntentModelTrained { version: 1, trained: trained(fp.clone()) }]);
        assert_eq!(state.model_version(), 1);
        let stale = examples_fingerprint(&[ex("a", "x")]);
        given::<KnowledgeBase>(known.clone())
            .when(KnowledgeBaseCommand::RecordIntentModel { trained: trained(stale) })
            .then_err(KnowledgeBaseError::ExamplesChanged);
        given::<KnowledgeBase>([])
            .when(KnowledgeBaseCommand::RecordIntentModel { trained: trained(fp.clone()) })
            .then_err(KnowledgeBaseError::NoExamples);
        // JSON has no NaN: a model measured as NaN would be stored as `null` and never read back.
        given::<KnowledgeBase>(known)
            .when(KnowledgeBaseCommand::RecordIntentModel { trained: TrainedModel { oos_recall: f32::NAN, ..trained(fp) } })
            .then_err(KnowledgeBaseError::NotFinite);
    }

    fn model(fingerprint: String) -> TrainedModel {
        TrainedModel {
            examples_fingerprint: fingerprint,
            examples: 3,
            intents: 2,
            threshold: 0.5,
            held_out_accuracy: 0.9,
            in_scope_accuracy: 0.8,
            oos_recall: 0.7,
            seconds: 1.0,
            trainer: "test".into(),
            retention: None,
            operating_points: vec![],
        }
    }

    fn two_intents() -> KnowledgeBaseEvent {
        KnowledgeBaseEvent::ExamplesAdded { examples: vec![ex("where is my card", "card_arrival"), ex("lost it", "lost_card")] }
    }

    fn requested(examples: &[LabelledExample]) -> KnowledgeBaseEvent {
        KnowledgeBaseEvent::IntentTrainingRequested {
            examples_fingerprint: examples_fingerprint(examples),
            requested_at: crate::testing::now(),
        }
    }

    #[test]
    fn adding_an_example_of_a_known_intent_asks_for_training() {
        let added = ex("my card is still not here", "card_arrival");
        let all = [ex("where is my card", "card_arrival"), ex("lost it", "lost_card"), added.clone()];
        let state = given::<KnowledgeBase>([two_intents()])
            .when(KnowledgeBaseCommand::AddExample { example: added.clone(), answer: None })
            .then(vec![KnowledgeBaseEvent::ExamplesAdded { examples: vec![added.clone()] }, requested(&all)]);
        assert_eq!(state.model_state(), ModelState::Training);
        assert_eq!(state.training_requested_at(), Some(crate::testing::now()));
        assert_eq!(state.intents(), ["card_arrival", "lost_card"]);
        // Adding it again changes nothing.
        given::<KnowledgeBase>([two_intents(), KnowledgeBaseEvent::ExamplesAdded { examples: vec![added.clone()] }])
            .when(KnowledgeBaseCommand::AddExample { example: added, answer: None })
            .then_nothing();
    }

    #[test]
    fn an_example_of_an_unknown_intent_needs_the_intents_answer() {
        let new = ex("can I pay with my watch", "wearables");
        given::<KnowledgeBase>([two_intents()])
            .when(KnowledgeBaseCommand::AddExample { example: new.clone(), answer: None })
            .then_err(KnowledgeBaseError::UnknownIntent("wearables".into()));
        let all = [ex("where is my card", "card_arrival"), ex("lost it", "lost_card"), new.clone()];
        let state = given::<KnowledgeBase>([two_intents()])
            .when(KnowledgeBaseCommand::AddExample { example: new.clone(), answer: Some(" Yes, with Apple Pay. ".into()) })
            .then(vec![
                KnowledgeBaseEvent::IntentAnswerSet { intent: "wearables".into(), answer: "Yes, with Apple Pay.".into() },
                KnowledgeBaseEvent::ExamplesAdded { examples: vec![new.clone()] },
                requested(&all),
            ]);
        assert_eq!(state.intents(), ["card_arrival", "lost_card", "wearables"]);
        // An intent that has only an answer is known.
        let answered = KnowledgeBaseEvent::IntentAnswerSet { intent: "wearables".into(), answer: "Yes.".into() };
        given::<KnowledgeBase>([two_intents(), answered])
            .when(KnowledgeBaseCommand::AddExample { example: new, answer: None })
            .then(vec![KnowledgeBaseEvent::ExamplesAdded { examples: vec![ex("can I pay with my watch", "wearables")] }, requested(&all)]);
        given::<KnowledgeBase>([two_intents()])
            .when(KnowledgeBaseCommand::AddExample { example: ex(" ", "card_arrival"), answer: None })
            .then_err(KnowledgeBaseError::InvalidExample);
        given::<KnowledgeBase>([two_intents()])
            .when(KnowledgeBaseCommand::AddExample { example: ex("x", "new"), answer: Some(" ".into()) })
            .then_err(KnowledgeBaseError::InvalidAnswer);
    }

    #[test]
    fn the_reserved_intent_is_known_and_takes_no_answer() {
        let oos = ex("can I get a mortgage", OUT_OF_SCOPE_INTENT);
        let all = [ex("where is my card", "card_arrival"), ex("lost it", "lost_card"), oos.clone()];
        let state = given::<KnowledgeBase>([two_intents()])
            .when(KnowledgeBaseCommand::AddExample { example: oos.clone(), answer: None })
            .then(vec![KnowledgeBaseEvent::ExamplesAdded { examples: vec![oos.clone()] }, requested(&all)]);
        assert_eq!(state.intents(), ["card_arrival", "lost_card", OUT_OF_SCOPE_INTENT]);
        given::<KnowledgeBase>([two_intents()])
            .when(KnowledgeBaseCommand::AddExample { example: oos, answer: Some("Ask a person.".into()) })
            .then_err(KnowledgeBaseError::ReservedIntent);
        given::<KnowledgeBase>([two_intents()])
            .when(KnowledgeBaseCommand::SetIntentAnswer { intent: format!(" {OUT_OF_SCOPE_INTENT} "), answer: "Ask a person.".into() })
            .then_err(KnowledgeBaseError::ReservedIntent);
        // An import of examples labelled with it is fine; an answer for it refuses the import.
        given::<KnowledgeBase>([])
            .when(KnowledgeBaseCommand::ImportExamples { examples: vec![ex("a mortgage?", OUT_OF_SCOPE_INTENT)], answers: vec![] })
            .then(vec![KnowledgeBaseEvent::ExamplesAdded { examples: vec![ex("a mortgage?", OUT_OF_SCOPE_INTENT)] }]);
        given::<KnowledgeBase>([])
            .when(KnowledgeBaseCommand::ImportExamples {
                examples: vec![ex("lost it", "lost_card")],
                answers: vec![("lost_card".into(), "Freeze it.".into()), (OUT_OF_SCOPE_INTENT.into(), "Ask a person.".into())],
            })
            .then_err(KnowledgeBaseError::ReservedIntent);
        assert_eq!(crate::ErrorCode::code(&KnowledgeBaseError::ReservedIntent), "reserved_intent");
    }

    #[test]
    fn one_intent_and_the_reserved_one_are_trained() {
        // Answer it or hand off: a real choice, so a model of it is asked for.
        let greeting = KnowledgeBaseEvent::ExamplesAdded { examples: vec![ex("hi", "greeting")] };
        let oos = ex("can I get a mortgage", OUT_OF_SCOPE_INTENT);
        let state = given::<KnowledgeBase>([greeting])
            .when(KnowledgeBaseCommand::AddExample { example: oos.clone(), answer: None })
            .then(vec![KnowledgeBaseEvent::ExamplesAdded { examples: vec![oos.clone()] }, requested(&[ex("hi", "greeting"), oos])]);
        assert_eq!(state.model_state(), ModelState::Training);
        // The reserved intent alone is one intent: nothing to train.
        let state = given::<KnowledgeBase>([])
            .when(KnowledgeBaseCommand::AddExample { example: ex("a mortgage?", OUT_OF_SCOPE_INTENT), answer: None })
            .then(vec![KnowledgeBaseEvent::ExamplesAdded { examples: vec![ex("a mortgage?", OUT_OF_SCOPE_INTENT)] }]);
        assert_eq!(state.model_state(), ModelState::Untrained);
    }

    #[test]
    fn a_first_intent_alone_is_not_trained() {
        let state = given::<KnowledgeBase>([])
            .when(KnowledgeBaseCommand::AddExample { example: ex("hi", "greeting"), answer: Some("Hello!".into()) })
            .then(vec![
                KnowledgeBaseEvent::IntentAnswerSet { intent: "greeting".into(), answer: "Hello!".into() },
                KnowledgeBaseEvent::ExamplesAdded { examples: vec![ex("hi", "greeting")] },
            ]);
        assert_eq!(state.model_state(), ModelState::Untrained);
        given::<KnowledgeBase>([KnowledgeBaseEvent::ExamplesAdded { examples: vec![ex("hi", "greeting")] }])
            .when(KnowledgeBaseCommand::RequestIntentTraining)
            .then_err(KnowledgeBaseError::TooFewIntents);
        given::<KnowledgeBase>([]).when(KnowledgeBaseCommand::RequestIntentTraining).then_err(KnowledgeBaseError::NoExamples);
    }

    #[test]
    fn removing_an_example_asks_for_training() {
        let rest = [ex("where is my card", "card_arrival"), ex("lost it", "lost_card")];
        let extra = ex("stolen", "lost_card");
        let known = [two_intents(), KnowledgeBaseEvent::ExamplesAdded { examples: vec![extra.clone()] }];
        given::<KnowledgeBase>(known.clone())
            .when(KnowledgeBaseCommand::RemoveExample { example: extra.clone() })
            .then(vec![KnowledgeBaseEvent::ExamplesRemoved { examples: vec![extra] }, requested(&rest)]);
        given::<KnowledgeBase>(known)
            .when(KnowledgeBaseCommand::RemoveExample { example: ex("never added", "lost_card") })
            .then_err(KnowledgeBaseError::UnknownExample);
        // Down to one intent: nothing to train, and a pending request no longer counts.
        let state = given::<KnowledgeBase>([two_intents(), requested(&rest)])
            .when(KnowledgeBaseCommand::RemoveExample { example: ex("lost it", "lost_card") })
            .then(vec![KnowledgeBaseEvent::ExamplesRemoved { examples: vec![ex("lost it", "lost_card")] }]);
        assert_eq!(state.model_state(), ModelState::Untrained);
        assert_eq!(state.training_requested_at(), None);
    }

    #[test]
    fn a_training_request_is_completed_once_by_the_model_of_the_current_examples() {
        let fp = examples_fingerprint(&[ex("where is my card", "card_arrival"), ex("lost it", "lost_card")]);
        let state = given::<KnowledgeBase>([two_intents()]).when(KnowledgeBaseCommand::RequestIntentTraining).then(vec![
            KnowledgeBaseEvent::IntentTrainingRequested { examples_fingerprint: fp.clone(), requested_at: crate::testing::now() },
        ]);
        assert_eq!(state.model_state(), ModelState::Training);
        let pending = [two_intents(), requested(&[ex("where is my card", "card_arrival"), ex("lost it", "lost_card")])];
        // Asking again while it is pending changes nothing.
        given::<KnowledgeBase>(pending.clone()).when(KnowledgeBaseCommand::RequestIntentTraining).then_nothing();
        given::<KnowledgeBase>(pending.clone())
            .when(KnowledgeBaseCommand::CompleteIntentTraining { trained: model("1-stale".into()) })
            .then_err(KnowledgeBaseError::ExamplesChanged);
        let state = given::<KnowledgeBase>(pending.clone())
            .when(KnowledgeBaseCommand::CompleteIntentTraining { trained: model(fp.clone()) })
            .then(vec![KnowledgeBaseEvent::IntentModelTrained { version: 1, trained: model(fp.clone()) }]);
        assert_eq!(state.model_state(), ModelState::Trained);
        assert_eq!(state.trained(), Some(&model(fp.clone())));
        assert_eq!(state.training_requested_at(), None);
        // Asking for a model of the examples the latest model was trained on changes nothing.
        given::<KnowledgeBase>([
            pending[0].clone(),
            pending[1].clone(),
            KnowledgeBaseEvent::IntentModelTrained { version: 1, trained: model(fp.clone()) },
        ])
        .when(KnowledgeBaseCommand::RequestIntentTraining)
        .then_nothing();
        // A second worker that trained the same request is refused.
        let done = KnowledgeBaseEvent::IntentModelTrained { version: 1, trained: model(fp.clone()) };
        given::<KnowledgeBase>([pending[0].clone(), pending[1].clone(), done.clone()])
            .when(KnowledgeBaseCommand::CompleteIntentTraining { trained: model(fp) })
            .then_err(KnowledgeBaseError::NoTrainingRequested);
        // New examples since the model (imported, so no request): stale, until asked again.
        let imported = KnowledgeBaseEvent::ExamplesAdded { examples: vec![ex("card?", "card_arrival")] };
        let mut stale = KnowledgeBase::default();
        [two_intents(), done, imported].iter().for_each(|e| stale.apply(e));
        assert_eq!(stale.model_state(), ModelState::Stale);
    }

    fn both() -> [LabelledExample; 2] {
        [ex("where is my card", "card_arrival"), ex("lost it", "lost_card")]
    }

    fn failed(examples: &[LabelledExample], reason: &str) -> KnowledgeBaseEvent {
        KnowledgeBaseEvent::IntentTrainingFailed {
            examples_fingerprint: examples_fingerprint(examples),
            reason: reason.into(),
            failed_at: crate::testing::now(),
        }
    }

    fn fail(examples: &[LabelledExample], reason: &str) -> KnowledgeBaseCommand {
        KnowledgeBaseCommand::FailIntentTraining { examples_fingerprint: examples_fingerprint(examples), reason: reason.into() }
    }

    #[test]
    fn a_pending_training_that_fails_is_recorded_with_its_reason() {
        let state = given::<KnowledgeBase>([two_intents(), requested(&both())])
            .when(fail(&both(), "  the encoder failed:\nmodel: out of memory\t "))
            .then(vec![failed(&both(), "the encoder failed: model: out of memory")]);
        assert_eq!(state.model_state(), ModelState::Failed);
        assert_eq!(
            state.training_failure(),
            Some(&TrainingFailure { reason: "the encoder failed: model: out of memory".into(), failed_at: crate::testing::now() })
        );
        assert_eq!(state.training_requested_at(), None);
        assert_eq!(serde_json::to_value(ModelState::Failed).unwrap(), "failed");
        // The reason is cut on a character boundary.
        let long = "é".repeat(MAX_FAILURE_REASON_CHARS + 10);
        given::<KnowledgeBase>([two_intents(), requested(&both())])
            .when(fail(&both(), &long))
            .then(vec![failed(&both(), &"é".repeat(MAX_FAILURE_REASON_CHARS))]);
    }

    #[test]
    fn a_training_is_failed_only_while_pending_and_for_the_current_examples() {
        given::<KnowledgeBase>([two_intents()]).when(fail(&both(), "x")).then_err(KnowledgeBaseError::NoTrainingRequested);
        let done = KnowledgeBaseEvent::IntentModelTrained { version: 1, trained: model(examples_fingerprint(&both())) };
        given::<KnowledgeBase>([two_intents(), requested(&both()), done])
            .when(fail(&both(), "x"))
            .then_err(KnowledgeBaseError::NoTrainingRequested);
        given::<KnowledgeBase>([two_intents(), requested(&both()), failed(&both(), "x")])
            .when(fail(&both(), "again"))
            .then_err(KnowledgeBaseError::NoTrainingRequested);
        // A failure of examples that changed since is refused: train the new ones.
        given::<KnowledgeBase>([two_intents(), requested(&both())])
            .when(fail(&[ex("lost it", "lost_card")], "x"))
            .then_err(KnowledgeBaseError::ExamplesChanged);
        let imported = ex("card?", "card_arrival");
        let now = [ex("where is my card", "card_arrival"), ex("lost it", "lost_card"), imported.clone()];
        let after_import = [two_intents(), requested(&both()), KnowledgeBaseEvent::ExamplesAdded { examples: vec![imported] }];
        given::<KnowledgeBase>(after_import.clone()).when(fail(&both(), "x")).then_err(KnowledgeBaseError::ExamplesChanged);
        // The worker trains the examples as they are now, which an import since the request changed.
        given::<KnowledgeBase>(after_import).when(fail(&now, "x")).then(vec![failed(&now, "x")]);
    }

    #[test]
    fn a_failed_training_is_asked_for_again() {
        let state = given::<KnowledgeBase>([two_intents(), requested(&both()), failed(&both(), "x")])
            .when(KnowledgeBaseCommand::RequestIntentTraining)
            .then(vec![requested(&both())]);
        assert_eq!(state.model_state(), ModelState::Training);
        assert_eq!(state.training_failure(), None);
        // Adding an example asks for a model of the new examples.
        let added = ex("my card is late", "card_arrival");
        let all = [ex("where is my card", "card_arrival"), ex("lost it", "lost_card"), added.clone()];
        given::<KnowledgeBase>([two_intents(), requested(&both()), failed(&both(), "x")])
            .when(KnowledgeBaseCommand::AddExample { example: added.clone(), answer: None })
            .then(vec![KnowledgeBaseEvent::ExamplesAdded { examples: vec![added] }, requested(&all)]);
    }

    #[test]
    fn a_failure_of_examples_changed_since_is_not_the_models_state() {
        let imported = KnowledgeBaseEvent::ExamplesAdded { examples: vec![ex("card?", "card_arrival")] };
        let mut state = KnowledgeBase::default();
        [two_intents(), requested(&both()), failed(&both(), "x"), imported].iter().for_each(|e| state.apply(e));
        assert_eq!(state.model_state(), ModelState::Untrained);
        assert_eq!(state.training_failure(), None);
        // With a model of older examples: failed, then stale once the examples change.
        let done = KnowledgeBaseEvent::IntentModelTrained { version: 1, trained: model(examples_fingerprint(&both())) };
        let three = [ex("where is my card", "card_arrival"), ex("lost it", "lost_card"), ex("card?", "card_arrival")];
        let mut state = KnowledgeBase::default();
        [two_intents(), done, KnowledgeBaseEvent::ExamplesAdded { examples: vec![ex("card?", "card_arrival")] }, requested(&three)]
            .iter()
            .chain(&[failed(&three, "x")])
            .for_each(|e| state.apply(e));
        assert_eq!(state.model_state(), ModelState::Failed);
        state.apply(&KnowledgeBaseEvent::ExamplesAdded { examples: vec![ex("card!!", "card_arrival")] });
        assert_eq!(state.model_state(), ModelState::Stale);
        assert_eq!(state.training_failure(), None);
    }

    #[test]
    fn a_model_trained_after_a_failure_clears_it() {
        let fp = examples_fingerprint(&both());
        let done = KnowledgeBaseEvent::IntentModelTrained { version: 1, trained: model(fp.clone()) };
        let state = given::<KnowledgeBase>([two_intents(), requested(&both()), failed(&both(), "x")])
            .when(KnowledgeBaseCommand::RecordIntentModel { trained: model(fp) })
            .then(vec![done.clone()]);
        assert_eq!(state.model_state(), ModelState::Trained);
        assert_eq!(state.training_failure(), None);
        // Back to examples that failed once, after a model of others: not failed any more.
        let more = KnowledgeBaseEvent::ExamplesAdded { examples: vec![ex("card?", "card_arrival")] };
        let mut state = KnowledgeBase::default();
        [two_intents(), requested(&both()), failed(&both(), "x"), more, done].iter().for_each(|e| state.apply(e));
        assert_eq!(state.model_state(), ModelState::Stale);
    }

    #[test]
    fn a_log_recorded_before_failures_still_loads_and_a_failure_round_trips() {
        let old = r#"{"type":"IntentTrainingRequested","examples_fingerprint":"2-ab","requested_at":"2024-05-01T10:00:00Z"}"#;
        assert!(matches!(serde_json::from_str(old).unwrap(), KnowledgeBaseEvent::IntentTrainingRequested { .. }));
        let event = failed(&both(), "the encoder failed");
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["type"], "IntentTrainingFailed");
        assert_eq!(serde_json::from_value::<KnowledgeBaseEvent>(json).unwrap(), event);
        assert_eq!(event.event_type(), "IntentTrainingFailed");
    }

    #[test]
    fn a_trained_models_retention_and_curve_are_shares_and_bounded() {
        let known = [KnowledgeBaseEvent::ExamplesAdded { examples: vec![ex("a", "x"), ex("b", "y")] }];
        let fp = examples_fingerprint(&[ex("a", "x"), ex("b", "y")]);
        let point = |v: f32| OperatingPoint { threshold: 0.5, in_scope_retention: v, in_scope_accuracy: 0.5, oos_recall: 0.5 };
        let trained = |retention: Option<f32>, operating_points: Vec<OperatingPoint>| TrainedModel {
            examples_fingerprint: fp.clone(),
            examples: 2,
            intents: 2,
            threshold: 0.5,
            held_out_accuracy: 0.9,
            in_scope_accuracy: 0.8,
            oos_recall: 0.7,
            seconds: 1.0,
            trainer: "test".into(),
            retention,
            operating_points,
        };
        for bad in [
            trained(Some(1.5), vec![]),
            trained(Some(f32::NAN), vec![]),
            trained(None, vec![point(f32::NAN)]),
            trained(None, vec![point(-0.1)]),
            trained(None, vec![point(0.5); MAX_OPERATING_POINTS + 1]),
        ] {
            given::<KnowledgeBase>(known.clone())
                .when(KnowledgeBaseCommand::RecordIntentModel { trained: bad })
                .then_err(KnowledgeBaseError::InvalidOperatingPoints);
        }
        let full = trained(Some(0.95), vec![point(1.0); MAX_OPERATING_POINTS]);
        given::<KnowledgeBase>(known)
            .when(KnowledgeBaseCommand::RecordIntentModel { trained: full.clone() })
            .then(vec![KnowledgeBaseEvent::IntentModelTrained { version: 1, trained: full }]);
    }

    #[test]
    fn a_model_recorded_before_retention_and_operating_points_still_loads() {
        let old = r#"{"type":"IntentModelTrained","version":3,"trained":{"examples_fingerprint":"2-ab","examples":2,"intents":2,
            "threshold":0.56,"held_out_accuracy":0.93,"in_scope_accuracy":0.78,"oos_recall":0.9,"seconds":12.5,
            "trainer":"minilm-l6-v2/linear-head+knn+oos-distances/2"}}"#;
        let KnowledgeBaseEvent::IntentModelTrained { trained, .. } = serde_json::from_str(old).unwrap() else { panic!("not a model") };
        assert_eq!(trained.retention, None);
        assert!(trained.operating_points.is_empty());
        assert_eq!(trained.threshold, 0.56);
    }

    #[test]
    fn titles_and_bodies_are_checked() {
        let add = |title: &str, body: String| KnowledgeBaseCommand::AddArticle {
            tenant: TenantId::parse("acme").unwrap(),
            article_id: id(),
            title: title.into(),
            body,
            source: None,
        };
        given::<KnowledgeBase>([]).when(add(" ", "b".into())).then_err(KnowledgeBaseError::InvalidTitle);
        given::<KnowledgeBase>([]).when(add("t", " ".into())).then_err(KnowledgeBaseError::InvalidBody);
        given::<KnowledgeBase>([]).when(add("t", "x".repeat(MAX_BODY_BYTES + 1))).then_err(KnowledgeBaseError::InvalidBody);
    }
}
