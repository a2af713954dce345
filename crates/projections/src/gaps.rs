//! # Content gaps: what the bot could not answer, grouped by meaning
//!
//! The read model an admin works through to teach the bot: per tenant, the
//! customer questions that ended in a handoff because the bot was unsure
//! (`low_confidence`, or `repeated_failure` after its clarifying question;
//! not `out_of_scope`, the questions the admin's examples send to a person),
//! and the bot answers a customer gave a 👎 (`negative_feedback`, with the
//! answer), each with the first reply an agent wrote in that conversation
//! afterwards — what a new article or a labelled example can be made of.
//!
//! **Grouping.** Each question is embedded by a [`TextEncoder`] (the AI
//! worker's model, behind a port like the vectors' `PassageEncoder`) and
//! joins the group whose centroid (the sum of its questions' unit vectors)
//! is closest, if the cosine is at least [`SIMILARITY`]; else it starts a
//! group of its own, whose id (`g<position>`) is the log position of the
//! event that started it. The assignment is greedy and made once, in log
//! order, so a replay from position 0 rebuilds the same groups.
//!
//! **Bounds.** Counts (per group and per reason) are exact. A group keeps
//! its [`MAX_EXAMPLES`] newest examples; a tenant keeps at most
//! [`MAX_GROUPS`] groups: a new group beyond that evicts the smallest
//! (fewest questions; of those, the one whose last question is oldest). A
//! conversation's memo (its last customer question and the last
//! [`MAX_ANSWERS`] bot answers, which a later 👎 or handoff refers to) is
//! emptied when the conversation is resolved.
//!
//! **Personal data.** Questions, bot answers and agent replies are personal
//! data (sealed in the log with the customer's key), so the model opens
//! them. On `UserErased` the erased customer's questions, answers and
//! agent replies in their conversations, and the replies an erased agent
//! wrote, become [`Personal::ERASED_TEXT`]; their conversation memos are
//! emptied, and the SQLite file is scrubbed (see [`crate::sqlite`]). Counts
//! and centroids stay (a centroid is a sum of vectors, no text). A replay
//! after an erase cannot read the erased customer's questions at all: they
//! are then not counted, where the live model counted them and scrubbed
//! their text — the one way a replay differs from the live model.
//!
//! **Documents.** A tenant's groups are one document ([`TenantGaps`]),
//! each open conversation one memo ([`ConversationMemo`]); both carry the
//! position of the last event that changed them, and the fold skips events
//! at or below it, so an adapter without transactions (MongoDB) writes the
//! tenants' documents first, then the memos, then the checkpoint, and a
//! batch re-applied after a crash at any point counts nothing twice.

#[cfg(feature = "testing")]
pub mod contract;
pub mod mongo;
pub mod sqlite;

use crate::error::{ProjectionError, StoreError};
use crate::event::{Fact, Interest, Opened, ReadModel, ReadModelProjection, personal_text};
use crate::runtime::Projection;
use crate::vectors::EncodeError;
use async_trait::async_trait;
use jamuna_commands::Sealer;
use jamuna_domain::conversation::{Author, ConversationEvent, Feedback, HandoffReason};
use jamuna_domain::user::UserEvent;
use jamuna_domain::{AggregateKind, ConversationId, Personal, TenantId, Timestamp, UserId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// The projection's name: its checkpoint's key and what `replay --projection` takes.
pub const PROJECTION: &str = "gaps";
/// The least cosine between a question and a group's centroid for the
/// question to join the group. Measured on BANKING77 questions (README,
/// "Content gaps").
pub const SIMILARITY: f32 = 0.65;
/// The examples a group keeps (its newest).
pub const MAX_EXAMPLES: usize = 5;
/// The groups a tenant keeps.
pub const MAX_GROUPS: usize = 100;
/// The bot answers a conversation's memo keeps (its newest).
pub const MAX_ANSWERS: usize = 5;
/// The most groups one query returns.
pub const MAX_LIMIT: usize = 200;

/// Why a question is a gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GapReason {
    LowConfidence,
    RepeatedFailure,
    NegativeFeedback,
}

/// How many questions of a group came for each reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reasons {
    pub low_confidence: u64,
    pub repeated_failure: u64,
    pub negative_feedback: u64,
}

impl Reasons {
    fn count(&mut self, r: GapReason) {
        match r {
            GapReason::LowConfidence => self.low_confidence += 1,
            GapReason::RepeatedFailure => self.repeated_failure += 1,
            GapReason::NegativeFeedback => self.negative_feedback += 1,
        }
    }
}

/// One question of a group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    pub conversation_id: ConversationId,
    /// Whose question it is (for erasure; never shown).
    pub customer: UserId,
    pub question: String,
    /// The bot's answer a 👎 was given on.
    pub bot_answer: Option<String>,
    /// The first agent reply in the conversation after the gap.
    pub agent_reply: Option<String>,
    /// Who wrote `agent_reply` (for erasure; never shown).
    pub agent: Option<UserId>,
    /// No agent has replied yet.
    pub awaiting_reply: bool,
    pub reason: GapReason,
    pub at: Timestamp,
    pub position: u64,
}

/// Questions that mean much the same.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// `g<position>`: the log position of its first question.
    pub id: String,
    pub count: u64,
    pub reasons: Reasons,
    /// The group's first question (while its author is not erased).
    pub question: String,
    pub question_by: Option<UserId>,
    pub last_at: Timestamp,
    pub last_position: u64,
    /// The sum of its questions' unit vectors.
    pub sum: Vec<f32>,
    /// Its newest examples, oldest first.
    pub examples: Vec<Example>,
}

/// A tenant's groups: one document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantGaps {
    pub tenant: TenantId,
    pub groups: Vec<Group>,
    /// The last event that changed the document.
    pub position: u64,
    /// The position it was stored at when read (`None`: new).
    #[serde(skip)]
    pub loaded: Option<u64>,
}

/// A bot answer a later 👎 may refer to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answered {
    /// The stream version of the `BotAnswered` event.
    pub version: u64,
    pub question: Option<String>,
    pub answer: String,
}

/// What the model remembers of an open conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationMemo {
    pub tenant: TenantId,
    pub conversation_id: ConversationId,
    pub customer: UserId,
    pub last_question: Option<String>,
    pub answers: Vec<Answered>,
    /// A gap of this conversation waits for an agent's reply.
    pub awaiting_reply: bool,
    pub position: u64,
    #[serde(skip)]
    pub loaded: Option<u64>,
}

/// What a batch writes: tenants' documents first, then memos.
#[derive(Debug, Clone, Default)]
pub struct GapWrites {
    pub tenants: Vec<TenantGaps>,
    pub memos: Vec<ConversationMemo>,
    /// Someone was erased: scrub the store after the write.
    pub erased: bool,
}

/// Embeds a customer's question: the AI worker's model, behind a port.
#[async_trait]
pub trait TextEncoder: Send + Sync + 'static {
    /// The question's vector (any length; it is normalised here).
    async fn encode(&self, text: &str) -> Result<Vec<f32>, EncodeError>;
}

/// The gaps read model's store (SQLite or MongoDB): documents in, documents out.
#[async_trait]
pub trait GapStore: Send + Sync + 'static {
    /// The last position applied (0: none).
    async fn checkpoint(&self, projection: &str) -> Result<u64, StoreError>;
    /// These tenants' documents (those that exist), `loaded` set.
    async fn tenants(&self, tenants: Vec<TenantId>) -> Result<Vec<TenantGaps>, StoreError>;
    /// These conversations' memos (those that exist), `loaded` set.
    async fn memos(&self, keys: Vec<(TenantId, ConversationId)>) -> Result<Vec<ConversationMemo>, StoreError>;
    /// The memos of a customer's conversations.
    async fn memos_of(&self, tenant: &TenantId, customer: &UserId) -> Result<Vec<ConversationMemo>, StoreError>;
    /// Writes the tenants' documents, then the memos, then `through` as the checkpoint.
    async fn write(&self, projection: &str, writes: GapWrites, through: u64) -> Result<(), StoreError>;
    /// Drops everything and the checkpoint.
    async fn reset(&self, projection: &str) -> Result<(), StoreError>;
    async fn begin_rebuild(&self, projection: &str) -> Result<(), StoreError> {
        self.reset(projection).await
    }
    async fn end_rebuild(&self, _projection: &str) -> Result<(), StoreError> {
        Ok(())
    }

    /// A tenant's groups, most frequent first (then most recent), at most `limit` ([`MAX_LIMIT`]).
    async fn groups(&self, tenant: &TenantId, limit: usize) -> Result<Vec<Group>, StoreError> {
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(StoreError::Invalid(format!("limit is 1 to {MAX_LIMIT}")));
        }
        let mut groups = self.tenants(vec![tenant.clone()]).await?.into_iter().next().map(|t| t.groups).unwrap_or_default();
        groups.sort_by(|a, b| b.count.cmp(&a.count).then(b.last_position.cmp(&a.last_position)).then(a.id.cmp(&b.id)));
        groups.truncate(limit);
        Ok(groups)
    }
}

/// The unit vector of `v` (zero stays zero).
fn unit(v: &[f32]) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 { v.iter().map(|x| x / n).collect() } else { v.to_vec() }
}

/// The cosine between a unit vector and a group's centroid.
fn cosine_to(unit: &[f32], sum: &[f32]) -> f32 {
    if unit.len() != sum.len() {
        return -1.0;
    }
    let n = sum.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n == 0.0 {
        return -1.0;
    }
    unit.iter().zip(sum).map(|(a, b)| a * b).sum::<f32>() / n
}

/// A question to be added to a tenant's groups.
#[derive(Debug, Clone)]
pub struct Gap {
    pub example: Example,
}

impl TenantGaps {
    pub fn new(tenant: TenantId) -> Self {
        Self { tenant, groups: vec![], position: 0, loaded: None }
    }

    /// Adds a question with its `vector` to the closest group (cosine at
    /// least [`SIMILARITY`]), or to a new one, evicting the smallest group
    /// when there are [`MAX_GROUPS`] already.
    pub fn add(&mut self, gap: Gap, vector: &[f32]) {
        let v = unit(vector);
        let e = gap.example;
        let best = self
            .groups
            .iter()
            .enumerate()
            .map(|(i, g)| (i, cosine_to(&v, &g.sum)))
            .filter(|(_, c)| *c >= SIMILARITY)
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)));
        let i = match best {
            Some((i, _)) => i,
            None => {
                if self.groups.len() >= MAX_GROUPS
                    && let Some((smallest, _)) = self
                        .groups
                        .iter()
                        .enumerate()
                        .min_by(|a, b| a.1.count.cmp(&b.1.count).then(a.1.last_position.cmp(&b.1.last_position)))
                {
                    self.groups.remove(smallest);
                }
                self.groups.push(Group {
                    id: format!("g{}", e.position),
                    count: 0,
                    reasons: Reasons::default(),
                    question: e.question.clone(),
                    question_by: Some(e.customer.clone()),
                    last_at: e.at,
                    last_position: e.position,
                    sum: vec![0.0; v.len()],
                    examples: vec![],
                });
                self.groups.len() - 1
            }
        };
        let g = &mut self.groups[i];
        g.count += 1;
        g.reasons.count(e.reason);
        g.last_at = e.at;
        g.last_position = e.position;
        for (s, x) in g.sum.iter_mut().zip(&v) {
            *s += x;
        }
        g.examples.push(e);
        if g.examples.len() > MAX_EXAMPLES {
            let drop = g.examples.len() - MAX_EXAMPLES;
            g.examples.drain(..drop);
        }
    }

    /// An agent wrote in a conversation: the first reply after each of its gaps.
    pub fn agent_replied(&mut self, conversation: &ConversationId, agent: &UserId, text: &str) -> bool {
        let mut changed = false;
        for e in self.groups.iter_mut().flat_map(|g| g.examples.iter_mut()) {
            if e.awaiting_reply && &e.conversation_id == conversation {
                e.awaiting_reply = false;
                e.agent_reply = Some(text.to_owned());
                e.agent = Some(agent.clone());
                changed = true;
            }
        }
        changed
    }

    /// A conversation was resolved: its gaps wait for no reply any more.
    pub fn closed(&mut self, conversation: &ConversationId) -> bool {
        let mut changed = false;
        for e in self.groups.iter_mut().flat_map(|g| g.examples.iter_mut()) {
            if e.awaiting_reply && &e.conversation_id == conversation {
                e.awaiting_reply = false;
                changed = true;
            }
        }
        changed
    }

    /// Replaces `user`'s words (as customer or as agent) with the erased text.
    pub fn erase(&mut self, user: &UserId) -> bool {
        let erased = || Personal::ERASED_TEXT.to_owned();
        let mut changed = false;
        for g in &mut self.groups {
            for e in &mut g.examples {
                if &e.customer == user && e.question != Personal::ERASED_TEXT {
                    e.question = erased();
                    e.bot_answer = e.bot_answer.as_ref().map(|_| erased());
                    e.agent_reply = e.agent_reply.as_ref().map(|_| erased());
                    changed = true;
                }
                if e.agent.as_ref() == Some(user) && e.agent_reply.as_deref().is_some_and(|r| r != Personal::ERASED_TEXT) {
                    e.agent_reply = Some(erased());
                    changed = true;
                }
            }
            if g.question_by.as_ref() == Some(user) {
                match g.examples.iter().find(|e| e.question != Personal::ERASED_TEXT) {
                    Some(e) => (g.question, g.question_by) = (e.question.clone(), Some(e.customer.clone())),
                    None => (g.question, g.question_by) = (erased(), None),
                }
                changed = true;
            }
        }
        changed
    }
}

impl ConversationMemo {
    fn erase(&mut self) {
        self.last_question = None;
        self.answers.clear();
    }
}

/// What the gaps model needs of an event.
pub fn interest(kind: AggregateKind, event_type: &str) -> Interest {
    match (kind, event_type) {
        (AggregateKind::Conversation, "MessagePosted" | "BotAnswered") => Interest::Open,
        (AggregateKind::Conversation, "ConversationStarted" | "HandoffRequested" | "FeedbackGiven" | "ConversationResolved") => {
            Interest::Decode
        }
        (AggregateKind::User, "UserErased") => Interest::Decode,
        _ => Interest::Skip,
    }
}

/// A batch's documents, folded in memory.
#[derive(Default)]
pub struct Fold {
    pub tenants: HashMap<TenantId, TenantGaps>,
    pub memos: HashMap<(TenantId, ConversationId), ConversationMemo>,
    dirty_tenants: HashSet<TenantId>,
    dirty_memos: HashSet<(TenantId, ConversationId)>,
    erased: bool,
}

/// Text a read model may store: `None` when it was erased.
fn text_of(p: &Personal, position: u64) -> Result<Option<String>, ProjectionError> {
    let (text, erased) = personal_text(p, position)?;
    Ok((!erased).then_some(text))
}

fn conversation_of(e: &Opened) -> Result<ConversationId, ProjectionError> {
    ConversationId::parse(e.stream.id()).map_err(|err| ProjectionError::bad_event(e.position, err))
}

impl Fold {
    /// Starts from stored documents.
    pub fn new(tenants: Vec<TenantGaps>, memos: Vec<ConversationMemo>) -> Self {
        Self {
            tenants: tenants.into_iter().map(|t| (t.tenant.clone(), t)).collect(),
            memos: memos.into_iter().map(|m| ((m.tenant.clone(), m.conversation_id.clone()), m)).collect(),
            ..Self::default()
        }
    }

    /// Adds memos read later in the batch (an erased customer's), keeping those held.
    pub fn hold_memos(&mut self, memos: Vec<ConversationMemo>) {
        for m in memos {
            self.memos.entry((m.tenant.clone(), m.conversation_id.clone())).or_insert(m);
        }
    }

    fn tenant_mut(&mut self, tenant: &TenantId, position: u64) -> Option<&mut TenantGaps> {
        let t = self.tenants.entry(tenant.clone()).or_insert_with(|| TenantGaps::new(tenant.clone()));
        (t.position < position).then_some(t)
    }

    fn touch_tenant(&mut self, tenant: &TenantId, position: u64) {
        if let Some(t) = self.tenants.get_mut(tenant) {
            t.position = position;
        }
        self.dirty_tenants.insert(tenant.clone());
    }

    /// Applies one event; a question that becomes a gap is embedded by `encoder`.
    pub async fn apply(&mut self, e: &Opened, encoder: &dyn TextEncoder) -> Result<(), ProjectionError> {
        let tenant = e.tenant().clone();
        let p = e.position;
        match &e.fact {
            Fact::User(UserEvent::UserErased) => {
                let user = UserId::parse(e.stream.id()).map_err(|err| ProjectionError::bad_event(p, err))?;
                self.erased = true;
                for (key, m) in self.memos.iter_mut() {
                    if key.0 == tenant && m.customer == user && m.position < p {
                        m.erase();
                        m.position = p;
                        self.dirty_memos.insert(key.clone());
                    }
                }
                if let Some(t) = self.tenant_mut(&tenant, p)
                    && t.erase(&user)
                {
                    self.touch_tenant(&tenant, p);
                }
                Ok(())
            }
            Fact::Conversation(event) => self.conversation(e, &tenant, event, encoder).await,
            _ => Ok(()),
        }
    }

    async fn conversation(
        &mut self,
        e: &Opened,
        tenant: &TenantId,
        event: &ConversationEvent,
        encoder: &dyn TextEncoder,
    ) -> Result<(), ProjectionError> {
        use ConversationEvent as V;
        let p = e.position;
        let id = conversation_of(e)?;
        let key = (tenant.clone(), id.clone());
        if let V::ConversationStarted { customer, .. } = event {
            if self.memos.get(&key).is_none_or(|m| m.position < p) {
                let loaded = self.memos.get(&key).and_then(|m| m.loaded);
                let memo = ConversationMemo {
                    tenant: tenant.clone(),
                    conversation_id: id,
                    customer: customer.clone(),
                    last_question: None,
                    answers: vec![],
                    awaiting_reply: false,
                    position: p,
                    loaded,
                };
                self.memos.insert(key.clone(), memo);
                self.dirty_memos.insert(key);
            }
            return Ok(());
        }
        // A conversation the model never saw start (or already ahead of this event).
        let Some(memo) = self.memos.get(&key).filter(|m| m.position < p) else { return Ok(()) };
        let mut memo = memo.clone();
        let mut gap: Option<(GapReason, String, Option<String>)> = None;
        let mut reply: Option<(UserId, String)> = None;
        let mut resolved = false;
        match event {
            V::MessagePosted { author: Author::Customer, text, .. } => memo.last_question = text_of(text, p)?,
            V::MessagePosted { author: Author::Agent { id: agent }, text, .. } if memo.awaiting_reply => {
                memo.awaiting_reply = false;
                reply = Some((agent.clone(), personal_text(text, p)?.0));
            }
            V::BotAnswered { text, .. } => {
                if let Some(answer) = text_of(text, p)? {
                    memo.answers.push(Answered { version: e.version, question: memo.last_question.clone(), answer });
                    if memo.answers.len() > MAX_ANSWERS {
                        memo.answers.remove(0);
                    }
                }
            }
            V::HandoffRequested { reason, .. } => {
                let reason = match reason {
                    HandoffReason::LowConfidence => Some(GapReason::LowConfidence),
                    HandoffReason::RepeatedFailure => Some(GapReason::RepeatedFailure),
                    // Someone asked for a person; a 👎 is counted from its
                    // feedback; and an out-of-scope question is one the
                    // admin already said goes to a person: none is a gap.
                    HandoffReason::CustomerAsked
                    | HandoffReason::AgentTookOver
                    | HandoffReason::NegativeFeedback
                    | HandoffReason::OutOfScope => None,
                };
                if let (Some(r), Some(q)) = (reason, memo.last_question.clone()) {
                    gap = Some((r, q, None));
                }
            }
            V::FeedbackGiven { feedback: Feedback::Answer { answer_version, helpful: false } } => {
                if let Some(a) = memo.answers.iter().find(|a| a.version == *answer_version)
                    && let Some(q) = a.question.clone()
                {
                    gap = Some((GapReason::NegativeFeedback, q, Some(a.answer.clone())));
                }
            }
            V::ConversationResolved { .. } => {
                resolved = memo.awaiting_reply;
                memo.erase();
                memo.awaiting_reply = false;
            }
            _ => {}
        }
        if gap.is_some() {
            memo.awaiting_reply = true;
        }
        let customer = memo.customer.clone();
        memo.position = p;
        self.dirty_memos.insert(key.clone());
        self.memos.insert(key.clone(), memo);
        if let Some((reason, question, bot_answer)) = gap {
            let vector = encoder.encode(&question).await.map_err(StoreError::unavailable)?;
            if let Some(t) = self.tenant_mut(tenant, p) {
                let example = Example {
                    conversation_id: key.1.clone(),
                    customer,
                    question,
                    bot_answer,
                    agent_reply: None,
                    agent: None,
                    awaiting_reply: true,
                    reason,
                    at: e.at,
                    position: p,
                };
                t.add(Gap { example }, &vector);
                self.touch_tenant(tenant, p);
            }
        } else if let Some((agent, text)) = reply {
            if let Some(t) = self.tenant_mut(tenant, p)
                && t.agent_replied(&key.1, &agent, &text)
            {
                self.touch_tenant(tenant, p);
            }
        } else if resolved
            && let Some(t) = self.tenant_mut(tenant, p)
            && t.closed(&key.1)
        {
            self.touch_tenant(tenant, p);
        }
        Ok(())
    }

    /// The documents the batch changed.
    pub fn writes(mut self) -> GapWrites {
        let tenants = self.dirty_tenants.iter().filter_map(|t| self.tenants.remove(t)).collect();
        let memos = self.dirty_memos.iter().filter_map(|k| self.memos.remove(k)).collect();
        GapWrites { tenants, memos, erased: self.erased }
    }
}

/// The gaps read model: a [`GapStore`] and the encoder its questions are embedded with.
pub struct GapModel {
    store: Arc<dyn GapStore>,
    encoder: Arc<dyn TextEncoder>,
}

impl GapModel {
    pub fn new(store: Arc<dyn GapStore>, encoder: Arc<dyn TextEncoder>) -> Self {
        Self { store, encoder }
    }
}

#[async_trait]
impl ReadModel for GapModel {
    fn interest(&self, kind: AggregateKind, event_type: &str) -> Interest {
        interest(kind, event_type)
    }

    async fn checkpoint(&self, projection: &str) -> Result<u64, StoreError> {
        self.store.checkpoint(projection).await
    }

    async fn apply(&self, projection: &str, events: Vec<Opened>, through: u64) -> Result<(), ProjectionError> {
        let applied = self.store.checkpoint(projection).await?;
        if through <= applied {
            return Ok(());
        }
        let events: Vec<Opened> = events.into_iter().filter(|e| e.position > applied).collect();
        let needs_tenant = |e: &Opened| match &e.fact {
            Fact::User(UserEvent::UserErased) => true,
            Fact::Conversation(ConversationEvent::MessagePosted { author, .. }) => matches!(author, Author::Agent { .. }),
            Fact::Conversation(c) => {
                matches!(
                    c,
                    ConversationEvent::HandoffRequested { .. }
                        | ConversationEvent::FeedbackGiven { .. }
                        | ConversationEvent::ConversationResolved { .. }
                )
            }
            _ => false,
        };
        let tenants: Vec<TenantId> =
            events.iter().filter(|e| needs_tenant(e)).map(|e| e.tenant().clone()).collect::<HashSet<_>>().into_iter().collect();
        let mut keys = HashSet::new();
        for e in &events {
            if matches!(e.fact, Fact::Conversation(_)) {
                keys.insert((e.tenant().clone(), conversation_of(e)?));
            }
        }
        let mut fold = Fold::new(self.store.tenants(tenants).await?, self.store.memos(keys.into_iter().collect()).await?);
        for e in &events {
            if let Fact::User(UserEvent::UserErased) = &e.fact {
                let user = UserId::parse(e.stream.id()).map_err(|err| ProjectionError::bad_event(e.position, err))?;
                fold.hold_memos(self.store.memos_of(e.tenant(), &user).await?);
            }
            fold.apply(e, self.encoder.as_ref()).await?;
        }
        self.store.write(projection, fold.writes(), through).await?;
        Ok(())
    }

    async fn reset(&self, projection: &str) -> Result<(), StoreError> {
        self.store.reset(projection).await
    }

    async fn begin_rebuild(&self, projection: &str) -> Result<(), StoreError> {
        self.store.begin_rebuild(projection).await
    }

    async fn end_rebuild(&self, projection: &str) -> Result<(), StoreError> {
        self.store.end_rebuild(projection).await
    }
}

/// The projection that keeps a [`GapStore`] up to date; it runs where the model is (the AI worker).
pub fn projection(store: Arc<dyn GapStore>, encoder: Arc<dyn TextEncoder>, sealer: Sealer) -> Arc<dyn Projection> {
    Arc::new(ReadModelProjection::new(PROJECTION, sealer, Arc::new(GapModel::new(store, encoder))))
}

/// A group as the API shows it.
pub fn group_json(g: &Group) -> serde_json::Value {
    let examples: Vec<serde_json::Value> = g
        .examples
        .iter()
        .rev()
        .map(|e| {
            serde_json::json!({
                "conversation_id": e.conversation_id,
                "question": e.question,
                "bot_answer": e.bot_answer,
                "agent_reply": e.agent_reply,
                "reason": e.reason,
                "at": e.at,
            })
        })
        .collect();
    let reasons: BTreeMap<&str, u64> = [
        ("low_confidence", g.reasons.low_confidence),
        ("repeated_failure", g.reasons.repeated_failure),
        ("negative_feedback", g.reasons.negative_feedback),
    ]
    .into_iter()
    .collect();
    serde_json::json!({
        "id": g.id,
        "count": g.count,
        "reasons": reasons,
        "question": g.question,
        "last_at": g.last_at,
        "examples": examples,
    })
}

/// A stand-in for the model in tests: a bag of words, hashed.
#[cfg(any(test, feature = "testing"))]
pub mod fake {
    use super::{EncodeError, TextEncoder};
    use async_trait::async_trait;

    /// Each lower-case word adds 1 to one of 256 dimensions (FNV-1a hash), so
    /// questions sharing most of their words are close.
    pub struct BagOfWords;

    pub fn bag(text: &str) -> Vec<f32> {
        let mut v = vec![0.0; 256];
        for w in text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
            let h = w.to_lowercase().bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
            v[(h % 256) as usize] += 1.0;
        }
        v
    }

    #[async_trait]
    impl TextEncoder for BagOfWords {
        async fn encode(&self, text: &str) -> Result<Vec<f32>, EncodeError> {
            Ok(bag(text))
        }
    }
}

#[cfg(test)]
mod tests;
