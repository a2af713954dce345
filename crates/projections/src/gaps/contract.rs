//! The contract every gaps-store adapter passes (SQLite, MongoDB): a
//! tenant's gaps grouped, counted and answered; the same groups whatever the
//! batches (and with every event twice); an erase leaves no word behind.
//!
//! An adapter's tests invoke [`gap_store_contract!`](crate::gap_store_contract)
//! with a function that makes a fresh, empty store (or `None` when its server
//! is not configured).

use super::{GapModel, GapStore, Group, PROJECTION as P, fake::BagOfWords};
use crate::event::{Opened, ReadModel};
use crate::testing::{Script, feed, feed_twice, tenant, user};
use jamuna_domain::conversation::{Author, Channel, ConversationEvent, Feedback, HandoffReason};
use jamuna_domain::user::UserEvent;
use std::sync::Arc;

/// One test per rule of the gaps-store contract.
#[macro_export]
macro_rules! gap_store_contract {
    ($make:path) => {
        $crate::store_contract!(@tests $make, gaps;
            gaps_are_grouped_counted_and_answered,
            any_batching_and_every_event_twice_give_the_same_groups,
            an_erased_customer_and_agent_leave_no_words,
        );
    };
}

type S = Arc<dyn GapStore>;

fn model(store: &S) -> GapModel {
    GapModel::new(store.clone(), Arc::new(BagOfWords))
}

/// Two customers whose cards did not arrive (one unsure handoff, one after a
/// clarifying question), an agent's reply; a 👎 on a password answer; and a
/// gap in another tenant.
pub fn script() -> Script {
    let mut s = Script::new();
    s.start("acme", "c1", "u1", Channel::Web);
    s.say("acme", "c1", Author::Customer, "my new card has not arrived yet");
    s.advance(5).conversation("acme", "c1", ConversationEvent::HandoffRequested { reason: HandoffReason::LowConfidence, why: None });
    s.advance(60).say("acme", "c1", Author::Agent { id: user("agent1") }, "Cards arrive within 5 working days.");
    s.say("acme", "c1", Author::Agent { id: user("agent1") }, "Anything else?");
    s.start("acme", "c2", "u2", Channel::Web);
    let q = s.say("acme", "c2", Author::Customer, "card not arrived");
    s.answer("acme", "c2", q, "Could you tell me a little more?", "clarify");
    s.say("acme", "c2", Author::Customer, "my new card has still not arrived");
    s.advance(5).conversation("acme", "c2", ConversationEvent::HandoffRequested { reason: HandoffReason::RepeatedFailure, why: None });
    s.start("acme", "c3", "u3", Channel::Mobile);
    let q = s.say("acme", "c3", Author::Customer, "how do I reset my password");
    let a = s.answer("acme", "c3", q, "Passwords are reset in Settings.", "password_reset");
    s.advance(5).conversation(
        "acme",
        "c3",
        ConversationEvent::FeedbackGiven { feedback: Feedback::Answer { answer_version: a, helpful: false } },
    );
    s.conversation("acme", "c3", ConversationEvent::HandoffRequested { reason: HandoffReason::NegativeFeedback, why: None });
    s.advance(30).say("acme", "c3", Author::Agent { id: user("agent2") }, "Open Settings, then Security.");
    s.conversation("acme", "c3", ConversationEvent::ConversationResolved { by: None });
    s.start("globex", "c9", "u9", Channel::Web);
    s.say("globex", "c9", Author::Customer, "where is my parcel");
    s.conversation("globex", "c9", ConversationEvent::HandoffRequested { reason: HandoffReason::LowConfidence, why: None });
    s
}

async fn groups(s: &S, t: &str) -> Vec<Group> {
    s.groups(&tenant(t), 50).await.expect("groups")
}

pub async fn gaps_are_grouped_counted_and_answered(a: S, _b: S) {
    feed(&model(&a), P, &script().events, 3).await;
    let g = groups(&a, "acme").await;
    assert_eq!(g.len(), 2, "{g:#?}");
    let card = &g[0];
    assert_eq!((card.count, card.reasons.low_confidence, card.reasons.repeated_failure, card.reasons.negative_feedback), (2, 1, 1, 0));
    assert_eq!(card.question, "my new card has not arrived yet");
    assert_eq!(card.examples.len(), 2);
    assert_eq!(card.examples[0].agent_reply.as_deref(), Some("Cards arrive within 5 working days."), "the first reply after the handoff");
    assert_eq!(card.examples[1].question, "my new card has still not arrived");
    assert_eq!(card.examples[1].agent_reply, None);
    let password = &g[1];
    assert_eq!((password.count, password.reasons.negative_feedback), (1, 1));
    assert_eq!(password.examples[0].bot_answer.as_deref(), Some("Passwords are reset in Settings."));
    assert_eq!(password.examples[0].agent_reply.as_deref(), Some("Open Settings, then Security."));
    assert_eq!(groups(&a, "globex").await.len(), 1, "tenants do not see each other's gaps");
    assert!(a.groups(&tenant("acme"), 0).await.is_err() && a.groups(&tenant("acme"), 201).await.is_err());
    assert_eq!(a.groups(&tenant("acme"), 1).await.expect("one").len(), 1);
}

pub async fn any_batching_and_every_event_twice_give_the_same_groups(a: S, b: S) {
    let events = script().events;
    feed(&model(&a), P, &events, 1).await;
    feed_twice(&model(&b), P, &events).await;
    assert_eq!(groups(&a, "acme").await, groups(&b, "acme").await);
    // A rebuild from zero gives the same groups again.
    let m = model(&a);
    m.begin_rebuild(P).await.expect("begin");
    feed(&m, P, &events, events.len()).await;
    m.end_rebuild(P).await.expect("end");
    assert_eq!(groups(&a, "acme").await, groups(&b, "acme").await);
}

/// Every text of a group, as stored.
pub fn words(g: &[Group]) -> String {
    serde_json::to_string(g).expect("json")
}

pub async fn an_erased_customer_and_agent_leave_no_words(a: S, _b: S) {
    let mut s = script();
    s.user("acme", "u1", UserEvent::UserErased);
    s.user("acme", "agent2", UserEvent::UserErased);
    let events: Vec<Opened> = s.events;
    let (before, after) = events.split_at(events.len() - 2);
    feed(&model(&a), P, before, 4).await;
    assert!(words(&groups(&a, "acme").await).contains("has not arrived yet"));
    feed(&model(&a), P, after, 1).await;
    let g = groups(&a, "acme").await;
    let all = words(&g);
    for gone in ["has not arrived yet", "Cards arrive within", "Open Settings"] {
        assert!(!all.contains(gone), "{gone} is left: {all}");
    }
    assert_eq!(g[0].count, 2, "counts stay");
    assert_eq!(g[0].question, "my new card has still not arrived", "the representative question is the next one not erased");
    assert!(all.contains("Passwords are reset in Settings."), "u3's words stay");
    let memos = a.memos_of(&tenant("acme"), &user("u1")).await.expect("memos");
    assert!(memos.iter().all(|m| m.last_question.is_none() && m.answers.is_empty()), "{memos:?}");
}
