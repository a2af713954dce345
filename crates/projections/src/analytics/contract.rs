//! The contract every analytics read-model adapter passes (SQLite,
//! MongoDB): a day of support counted by hand, and idempotence.
//!
//! An adapter's tests invoke [`analytics_store_contract!`](crate::analytics_store_contract)
//! with a function that makes a fresh, empty store (or `None` when the
//! adapter's server is not configured, which the function itself reports);
//! the macro expands to one test per rule, each given two fresh stores.

use super::{AnalyticsStore, PROJECTION as P, Report};
use crate::testing::{Script, feed, feed_twice, tenant, user};
use jamuna_domain::Personal;
use jamuna_domain::conversation::{Author, Channel, ConversationEvent, Feedback, HandoffReason};
use std::sync::Arc;

/// One test per rule of the analytics-store contract.
#[macro_export]
macro_rules! analytics_store_contract {
    ($make:path) => {
        $crate::store_contract!(@tests $make, analytics;
            a_day_is_counted,
            every_analytics_event_twice_changes_nothing,
        );
    };
}

type S = Arc<dyn AnalyticsStore>;

async fn report(s: &S, t: &str, days: i64) -> Report {
    let from = Script::new().now.date_naive();
    s.report(&tenant(t), from, from + chrono::Duration::days(days)).await.expect("report")
}

pub async fn a_day_is_counted(a: S, _b: S) {
    feed(a.as_ref(), P, &day_script().events, 4).await;
    let r = report(&a, "acme", 2).await;
    assert_eq!(r.days.len(), 3);
    let d = &r.days[0].stats;
    let c = d.counters;
    assert_eq!((c.conversations_started, c.messages_customer, c.messages_agent, c.messages_bot, c.bot_answers), (3, 4, 1, 3, 3));
    assert_eq!((c.handoffs, c.resolved, c.resolved_without_human, c.csat_count, c.csat_sum), (1, 2, 1, 2, 7));
    assert_eq!(d.containment_rate, Some(0.5));
    assert_eq!(d.csat_average, Some(3.5));
    let first = d.first_response.expect("first responses");
    assert_eq!((first.count, first.median_ms, first.p90_ms), (3, 4_000, 60_000));
    let res = d.resolution.expect("resolutions");
    assert_eq!((res.count, res.median_ms, res.p90_ms), (2, 100_000, 300_000));
    assert_eq!(d.intents.get("card_delivery"), Some(&2));
    assert_eq!(d.intents.get("refund"), Some(&1));
    assert_eq!(d.citations.get("kb-1"), Some(&3), "every bot answer cites kb-1 once");
    assert_eq!(d.citations.len(), 1);
    assert!(r.days[1].stats.counters.is_zero(), "the next day: nothing in acme");
    assert_eq!(r.total, r.days[0].stats);
    let g = report(&a, "globex", 2).await;
    assert_eq!((g.days[0].stats.counters.conversations_started, g.days[1].stats.counters.conversations_started), (0, 1));
    assert!(matches!(a.report(&tenant("acme"), r.to, r.from).await, Err(crate::StoreError::Invalid(_))));
}

pub async fn every_analytics_event_twice_changes_nothing(a: S, b: S) {
    let script = day_script();
    feed(a.as_ref(), P, &script.events, 4).await;
    feed_twice(b.as_ref(), P, &script.events).await;
    for t in ["acme", "globex"] {
        assert_eq!(report(&a, t, 3).await, report(&b, t, 3).await);
    }
}

/// A day of support in `acme` with figures worked out by hand.
fn day_script() -> Script {
    let mut s = Script::new();
    // k1: the bot answers after 4 s and resolves: contained. Resolution after 100 s.
    s.start("acme", "k1", "u1", Channel::Web);
    let q = s.advance(10).say("acme", "k1", Author::Customer, "card?");
    s.advance(4).answer("acme", "k1", q, "5 days", "card_delivery");
    s.advance(86).conversation("acme", "k1", ConversationEvent::ConversationResolved { by: None });
    s.advance(5).conversation("acme", "k1", ConversationEvent::FeedbackGiven { feedback: Feedback::Csat { score: 5, comment: None } });
    // k2: a handoff, an agent answers 60 s after the question, resolved after 300 s.
    s.start("acme", "k2", "u2", Channel::Web);
    s.advance(20).say("acme", "k2", Author::Customer, "refund!");
    s.advance(10).conversation("acme", "k2", ConversationEvent::HandoffRequested { reason: HandoffReason::CustomerAsked, why: None });
    s.advance(50).say("acme", "k2", Author::Agent { id: user("a1") }, "done");
    s.advance(220).conversation("acme", "k2", ConversationEvent::ConversationResolved { by: Some(user("a1")) });
    s.advance(5).conversation(
        "acme",
        "k2",
        ConversationEvent::FeedbackGiven { feedback: Feedback::Csat { score: 2, comment: Some(Personal::plain("slow")) } },
    );
    // k3: two bot answers, one a refund; never resolved.
    s.start("acme", "k3", "u3", Channel::Mobile);
    let q = s.advance(30).say("acme", "k3", Author::Customer, "refund?");
    s.advance(2).answer("acme", "k3", q, "policy", "refund");
    let q = s.advance(30).say("acme", "k3", Author::Customer, "and cards?");
    s.advance(2).answer("acme", "k3", q, "5 days", "card_delivery");
    // The next day, in another tenant: not in acme's figures.
    s.advance(86_400).start("globex", "k4", "u1", Channel::Web);
    s
}
