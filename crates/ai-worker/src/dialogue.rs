//! Multi-turn: what the bot remembers of a conversation between messages.
//!
//! The session store (`jamuna_projections::sessions`, in memory or Redis,
//! keyed by conversation) keeps a [`SessionContext`]: the last intent, the
//! last question, and a clarifying question still open. With it:
//!
//! - **Follow-ups**: a short message that leans on what came before ("and how
//!   long does that take?", "what about for a card?") is also read together
//!   with the previous question; the reading that answers with more
//!   confidence wins, so a follow-up that alone would be handed off is
//!   answered in context.
//! - **One clarifying question**: when a tenant with a trained intent model
//!   would hand off for low confidence, the bot first asks the customer to
//!   say more (recorded as intent `clarify`); the reply is read together with
//!   the unclear message, and if the bot is still unsure, it hands off with
//!   reason `repeated_failure` (two low-confidence turns in a row).
//!
//! The decision's why ([`crate::decision`]) says so: basis `context` when the
//! reading in context won, `clarify` for the clarifying question (each with
//! the scores of the reading it came from).
//!
//! Requests for a human and small talk are never reinterpreted, and small
//! talk leaves the context as it was ("thanks" does not become the question).
//!
//! When a user is erased (`UserErased` in the log), the worker forgets their
//! sessions ([`Answerer::forget_user`]), so `last_question` does not outlive
//! the erase; a message answered before the erase is handled first (the
//! worker follows the log in order), so its context is not written back.

use std::sync::Arc;

use jamuna_domain::conversation::{Basis, HandoffReason};
use jamuna_domain::knowledge_base::KnowledgeBaseEvent;
use jamuna_domain::{ConversationId, TenantId, UserId};
use jamuna_projections::sessions::{SessionContext, SessionStore};

use crate::answer::{Answerer, Read};
use crate::decision::{Decision, SMALL_TALK};
use crate::embed::EmbedError;
use crate::learn::ModelCache;
use crate::live::LiveIntents;

/// What the bot asks when it is not sure, once, before handing off.
pub const CLARIFY: &str = "I'm not sure I understood. Could you tell me a little more about what you need?";

/// The intent a clarifying question is recorded with.
pub const CLARIFY_INTENT: &str = "clarify";

/// How often forgetting an erased user's sessions is tried.
const FORGET_ATTEMPTS: u32 = 5;

/// The most of the previous question kept as context, in characters.
const MAX_CONTEXT_CHARS: usize = 300;

const OPENERS: &[&str] = &[
    "and ",
    "and,",
    "what about",
    "how about",
    "also",
    "but ",
    "so ",
    "then ",
    "what if",
    "ok and",
    "okay and",
    "same for",
    "is that",
    "does that",
    "can i also",
];
const REFERRING: &[&str] = &["that", "it", "this", "those", "these", "them", "there", "one", "same"];

/// Whether `text` reads like a follow-up to a previous question: short, and
/// opening with a connective, pointing back ("that", "it"), or very short.
pub fn is_follow_up(text: &str) -> bool {
    let lower = text.trim().to_lowercase();
    let words: Vec<&str> = lower.split(|c: char| !c.is_alphanumeric() && c != '\'').filter(|w| !w.is_empty()).collect();
    if words.is_empty() || words.len() > 12 {
        return false;
    }
    words.len() <= 4 || OPENERS.iter().any(|o| lower.starts_with(o)) || words.iter().any(|w| REFERRING.contains(w))
}

/// The follow-up read together with the question before it.
pub fn in_context(previous: &str, text: &str) -> String {
    let previous = previous.trim();
    let skip = previous.chars().count().saturating_sub(MAX_CONTEXT_CHARS);
    let kept: String = previous.chars().skip(skip).collect();
    format!("{kept} {}", text.trim())
}

/// A decision the context must not change: a request for a human, small talk.
fn stands(d: &Decision) -> bool {
    match d {
        Decision::Handoff { reason, .. } => *reason == HandoffReason::CustomerAsked,
        Decision::Answer { intent: Some(i), sources, .. } => sources.is_empty() && SMALL_TALK.contains(&i.as_str()),
        Decision::Answer { .. } => false,
    }
}

/// A low-confidence handoff after the clarifying question: `RepeatedFailure`.
fn mark_repeated_failure(d: &mut Decision) {
    if let Decision::Handoff { reason, .. } = d
        && *reason == HandoffReason::LowConfidence
    {
        *reason = HandoffReason::RepeatedFailure;
    }
}

/// Whether the reading in context is better than the message alone.
fn better(in_context: &Decision, alone: &Decision) -> bool {
    match (in_context, alone) {
        (Decision::Answer { .. }, Decision::Handoff { .. }) => true,
        (Decision::Answer { confidence: a, .. }, Decision::Answer { confidence: b, .. }) => a > b,
        _ => false,
    }
}

impl Answerer {
    /// Keeps each conversation's context in `store` between messages.
    pub fn with_sessions(mut self, store: Arc<dyn SessionStore>) -> Self {
        self.sessions = Some(store);
        self
    }

    /// The user was erased: forgets every session of theirs (the last
    /// question included), retrying a store that is briefly unavailable.
    /// What cannot be forgotten now still expires with the session's TTL.
    pub async fn forget_user(&self, tenant: &TenantId, user: &UserId) {
        let Some(store) = &self.sessions else { return };
        for attempt in 1..=FORGET_ATTEMPTS {
            match store.forget_user(tenant, user).await {
                Ok(n) => {
                    tracing::info!(sessions = n, "an erased user's sessions are forgotten");
                    return;
                }
                Err(e) if attempt < FORGET_ATTEMPTS && e.is_transient() => {
                    tracing::warn!(error = %e, attempt, "cannot forget an erased user's sessions yet; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(500 * u64::from(attempt))).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot forget an erased user's sessions; they expire with their TTL");
                    return;
                }
            }
        }
    }

    /// Caches trained intent models in `cache` (see [`crate::learn`]).
    pub fn with_model_cache(self, cache: ModelCache) -> Self {
        self.intents.set_cache(cache);
        self
    }

    /// The tenants' intents (examples, answers, models).
    pub fn intents(&self) -> &Arc<LiveIntents> {
        &self.intents
    }

    /// Folds a knowledge-base event about examples, answers or models in.
    pub fn learn(&self, tenant: &TenantId, event: &KnowledgeBaseEvent) {
        self.intents.apply(tenant, event);
    }

    /// The version of `tenant`'s intent model in use (0: none yet).
    pub fn intent_model_version(&self, tenant: &TenantId) -> u64 {
        self.intents.model_version(tenant)
    }

    /// Decides about a customer's message in the context the session store
    /// keeps for the conversation, and updates that context. Without a store,
    /// or when it fails, the message is read alone (the failure is logged).
    pub async fn decide_in_session(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        customer: &UserId,
        text: &str,
    ) -> Result<Decision, EmbedError> {
        self.decide_in_session_embedded(tenant, conversation, customer, text, None).await
    }

    /// Reads a batch of messages (tenant, conversation, text) together, as
    /// [`Answerer::read_all`] does, and in the same forward pass each follow-up
    /// ([`is_follow_up`]) after its conversation's previous question, as
    /// [`Answerer::decide_in_context_embedded`] would read it: the 18% of
    /// BANKING77's questions that read like follow-ups each cost a forward pass
    /// and a pass over the exemplars of their own before. A follow-up whose
    /// previous question has changed by the time it is decided is read again then.
    pub async fn read_in_context(&self, messages: Vec<(TenantId, Option<ConversationId>, String)>) -> Result<Vec<Read>, EmbedError> {
        let previous: Vec<Option<String>> = futures::future::join_all(messages.iter().map(|(tenant, conversation, text)| async move {
            let (Some(store), Some(id)) = (&self.sessions, conversation) else { return None };
            if !is_follow_up(text) {
                return None;
            }
            let record = store.get(tenant, id).await.ok().flatten()?;
            record.context.last_question.filter(|p| !p.trim().is_empty())
        }))
        .await;
        let n = messages.len();
        let mut batch: Vec<(TenantId, String)> = Vec::with_capacity(n);
        let mut combined = Vec::new();
        for ((tenant, _, text), p) in messages.into_iter().zip(&previous) {
            if let Some(p) = p {
                combined.push((tenant.clone(), in_context(p, &text)));
            }
            batch.push((tenant, text));
        }
        batch.extend(combined);
        let mut reads = self.read_all(batch).await?;
        let mut follow_ups = reads.split_off(n.min(reads.len())).into_iter();
        for (read, p) in reads.iter_mut().zip(previous) {
            if let Some(p) = p {
                read.in_context = follow_ups.next().map(|r| (p, Box::new(r)));
            }
        }
        Ok(reads)
    }

    /// [`Answerer::decide_in_session`], with the message's reading when a batch
    /// computed it already.
    pub async fn decide_in_session_embedded(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        customer: &UserId,
        text: &str,
        read: Option<&Read>,
    ) -> Result<Decision, EmbedError> {
        let Some(store) = &self.sessions else {
            return Ok(self.decide_in_context_embedded(tenant, text, &SessionContext::default(), read).await?.0);
        };
        let now = chrono::Utc::now();
        let context = match store.touch(tenant, conversation, customer, now).await {
            Ok(()) => match store.get(tenant, conversation).await {
                Ok(record) => record.map(|r| r.context).unwrap_or_default(),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the session context; reading the message alone");
                    SessionContext::default()
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "cannot touch the session; reading the message alone");
                SessionContext::default()
            }
        };
        let (decision, next) = self.decide_in_context_embedded(tenant, text, &context, read).await?;
        if next != context
            && let Err(e) = store.set_context(tenant, conversation, &next).await
        {
            tracing::warn!(error = %e, "cannot store the session context");
        }
        Ok(decision)
    }

    /// The decision for `text` given the conversation's `context`, and the
    /// context to keep for the next message. Pure apart from the model.
    pub async fn decide_in_context(
        &self,
        tenant: &TenantId,
        text: &str,
        context: &SessionContext,
    ) -> Result<(Decision, SessionContext), EmbedError> {
        self.decide_in_context_embedded(tenant, text, context, None).await
    }

    /// [`Answerer::decide_in_context`], with the message's reading when a batch
    /// computed it already.
    pub async fn decide_in_context_embedded(
        &self,
        tenant: &TenantId,
        text: &str,
        context: &SessionContext,
        read: Option<&Read>,
    ) -> Result<(Decision, SessionContext), EmbedError> {
        let mut decision = self.decide_embedded(tenant, text, read).await?;
        let mut question = text.trim().to_owned();
        if let Some(previous) = context.last_question.as_deref().filter(|p| !p.trim().is_empty())
            && !stands(&decision)
            && is_follow_up(text)
        {
            let combined = in_context(previous, text);
            // Read in the batch already when the batch saw the same previous question.
            let read = match read.and_then(|r| r.in_context.as_ref()).filter(|(p, _)| p == previous) {
                Some((_, in_context)) => self.decide_embedded(tenant, &combined, Some(in_context)).await?,
                None => self.decide(tenant, &combined).await?,
            };
            if better(&read, &decision) {
                decision = read.because(Basis::Context);
                question = combined;
            }
        }
        let mut next = context.clone();
        next.turns = next.turns.saturating_add(1);
        if stands(&decision) {
            return Ok((decision, next));
        }
        let unsure = matches!(decision, Decision::Handoff { reason: HandoffReason::LowConfidence, .. });
        if unsure && context.open_question.is_none() && self.intents.model_version(tenant) > 0 {
            let confidence = match decision {
                Decision::Handoff { confidence, .. } | Decision::Answer { confidence, .. } => confidence,
            };
            next.open_question = Some(CLARIFY.to_owned());
            next.last_question = Some(question);
            let why = decision.why().clone().because(Basis::Clarify);
            let clarify =
                Decision::Answer { text: CLARIFY.to_owned(), intent: Some(CLARIFY_INTENT.to_owned()), confidence, sources: vec![], why };
            return Ok((clarify, next));
        }
        // The one clarifying question was asked and the bot is still unsure:
        // two low-confidence turns in a row.
        if unsure && context.open_question.is_some() {
            mark_repeated_failure(&mut decision);
        }
        next.open_question = None;
        next.last_question = Some(question);
        if let Decision::Answer { intent, .. } = &decision {
            next.last_intent = intent.clone().or(next.last_intent);
        }
        Ok((decision, next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follow_ups_are_short_and_lean_on_what_came_before() {
        assert!(is_follow_up("and how long does that take?"));
        assert!(is_follow_up("What about for a card?"));
        assert!(is_follow_up("abroad?"));
        assert!(!is_follow_up("My card was stolen yesterday and I need to block it right now please, urgently, help me out here"));
        assert!(!is_follow_up("How do I change the PIN of my new debit card"));
        assert!(!is_follow_up("   "));
    }

    #[test]
    fn context_keeps_the_end_of_a_long_previous_question() {
        assert_eq!(in_context(" How do I send money abroad? ", " and how long? "), "How do I send money abroad? and how long?");
        let long = "x".repeat(1000) + " end";
        let c = in_context(&long, "and?");
        assert!(c.ends_with(" end and?") && c.chars().count() == MAX_CONTEXT_CHARS + 5, "{}", c.len());
    }

    #[test]
    fn an_answer_in_context_beats_a_handoff_alone() {
        let why = |b| jamuna_domain::conversation::DecisionWhy::new(b, Default::default());
        let answer =
            |c: f32| Decision::Answer { text: "a".into(), intent: None, confidence: c, sources: vec![], why: why(Basis::Retrieval) };
        let low = Decision::Handoff { reason: HandoffReason::LowConfidence, confidence: 0.3, why: why(Basis::LowConfidence) };
        assert!(better(&answer(0.5), &low));
        assert!(better(&answer(0.7), &answer(0.6)));
        assert!(!better(&answer(0.5), &answer(0.6)));
        assert!(!better(&low, &answer(0.6)));
        assert!(stands(&Decision::Handoff { reason: HandoffReason::CustomerAsked, confidence: 1.0, why: why(Basis::CustomerAsked) }));
        assert!(!stands(&low));
    }

    #[test]
    fn a_second_low_confidence_turn_is_a_repeated_failure() {
        let why = |b| jamuna_domain::conversation::DecisionWhy::new(b, Default::default());
        let mut d = Decision::Handoff { reason: HandoffReason::LowConfidence, confidence: 0.3, why: why(Basis::LowConfidence) };
        mark_repeated_failure(&mut d);
        assert!(matches!(d, Decision::Handoff { reason: HandoffReason::RepeatedFailure, .. }), "{d:?}");
        let mut asked = Decision::Handoff { reason: HandoffReason::CustomerAsked, confidence: 1.0, why: why(Basis::CustomerAsked) };
        mark_repeated_failure(&mut asked);
        assert!(matches!(asked, Decision::Handoff { reason: HandoffReason::CustomerAsked, .. }), "{asked:?}");
        let mut answer = Decision::Answer { text: "a".into(), intent: None, confidence: 0.8, sources: vec![], why: why(Basis::Retrieval) };
        mark_repeated_failure(&mut answer);
        assert!(matches!(answer, Decision::Answer { .. }));
    }
}
