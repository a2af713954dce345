//! The contract every conversations read-model adapter passes (SQLite,
//! MongoDB): the inbox, a conversation's detail, search, paging, erasure and
//! reset.
//!
//! An adapter's tests invoke [`conversation_store_contract!`](crate::conversation_store_contract)
//! with a function that makes a fresh, empty store (or `None` when the
//! adapter's server is not configured, which the function itself reports);
//! the macro expands to one test per rule. Each rule gets two fresh stores,
//! `a` and `b`, for rules that compare (e.g. "every event delivered twice"
//! against "once"). The log they are fed is written with the fixtures of
//! [`crate::testing`].

use super::{ConversationQuery, ConversationStore, InboxView, PROJECTION as P};
use crate::event::Fact;
use crate::testing::{Script, conv, conversations_snapshot, feed, feed_twice, inbox_script, tag, tenant, user};
use jamuna_domain::Personal;
use jamuna_domain::conversation::{Author, Channel, ConversationEvent, Feedback, Status};
use jamuna_domain::user::UserEvent;
use std::sync::Arc;

/// One test per rule of the conversation-store contract.
#[macro_export]
macro_rules! conversation_store_contract {
    ($make:path) => {
        $crate::store_contract!(@tests $make, conversations;
            a_conversation_reads_as_it_happened,
            every_event_twice_changes_nothing,
            inbox_views_and_filters,
            text_search_finds_words_in_messages,
            pages_are_stable_and_complete,
            erasure_replaces_the_customers_content,
            reset_drops_everything,
            mentions_list_the_notes_naming_a_user_newest_first,
            teams_filter_the_inbox_and_count_who_waits,
        );
    };
}

type S = Arc<dyn ConversationStore>;

async fn fed(s: &S, script: &Script) {
    feed(s.as_ref(), P, &script.events, 4).await;
}

pub async fn a_conversation_reads_as_it_happened(a: S, _b: S) {
    let script = inbox_script();
    fed(&a, &script).await;
    assert_eq!(a.checkpoint(P).await.expect("checkpoint"), script.events.len() as u64);
    let d = a.conversation(&tenant("acme"), &conv("c1")).await.expect("detail").expect("c1 exists");
    let t0 = script.events[0].at;
    let at = |s: i64| t0 + chrono::Duration::seconds(s);
    assert_eq!(d.summary.customer, user("u1"));
    assert_eq!((d.summary.status, d.summary.channel, d.summary.message_count, d.summary.version), (Status::Resolved, Channel::Web, 2, 5));
    assert_eq!((d.summary.created_at, d.summary.first_response_at, d.summary.resolved_at), (t0, Some(at(62)), Some(at(182))));
    assert_eq!(d.summary.updated_at, at(182));
    assert_eq!(d.summary.tags, vec![tag("cards")]);
    assert!(!d.summary.human_involved);
    assert_eq!(d.summary.last_message.as_ref().map(|m| m.text.as_str()), Some("Cards arrive within 5 working days."));
    assert_eq!(d.messages.len(), 2);
    assert_eq!(
        (d.messages[0].version, &d.messages[0].author, d.messages[0].text.as_str()),
        (2, &Author::Customer, "Where is my card? It has been two weeks")
    );
    assert_eq!(d.messages[0].client_message_id.as_ref().map(|c| c.as_str()), Some("m2"));
    let bot = d.messages[1].bot.as_ref().expect("a bot answer");
    assert_eq!((bot.in_reply_to, bot.intent.as_deref(), bot.confidence, bot.sources.len()), (2, Some("card_delivery"), 0.875, 1));
    assert_eq!(bot.sources[0].score, 0.8125);
    assert_eq!(d.messages[1].at, at(62));
    let c3 = a.conversation(&tenant("acme"), &conv("c3")).await.expect("detail").expect("c3 exists");
    assert_eq!((c3.summary.status, c3.summary.assignee.clone(), c3.summary.human_involved), (Status::Open, Some(user("a1")), true));
    assert!(matches!(c3.messages[1].author, Author::Agent { ref id } if id == &user("a1")));
    assert!(a.conversation(&tenant("globex"), &conv("c1")).await.expect("detail").is_none(), "tenants are separate");
}

pub async fn every_event_twice_changes_nothing(a: S, b: S) {
    let mut script = inbox_script();
    script.advance(60).user("acme", "u2", UserEvent::UserErased);
    fed(&a, &script).await;
    feed_twice(b.as_ref(), P, &script.events).await;
    for t in ["acme", "globex"] {
        assert_eq!(conversations_snapshot(a.as_ref(), &tenant(t)).await, conversations_snapshot(b.as_ref(), &tenant(t)).await);
    }
    assert_eq!(b.checkpoint(P).await.expect("checkpoint"), script.events.len() as u64);
}

pub async fn inbox_views_and_filters(a: S, _b: S) {
    let script = inbox_script();
    fed(&a, &script).await;
    let list = |q: ConversationQuery| {
        let a = a.clone();
        async move { a.list(&q).await.expect("list").items }
    };
    let inbox = || ConversationQuery::inbox(tenant("acme"));
    assert_eq!(ids(&list(inbox()).await), ["c4", "c3", "c2", "c1"], "newest activity first");
    assert_eq!(ids(&list(inbox().view(InboxView::Unassigned)).await), ["c4", "c2"]);
    assert_eq!(ids(&list(inbox().view(InboxView::Mine(user("a1")))).await), ["c3"]);
    assert!(list(inbox().view(InboxView::Mine(user("a2")))).await.is_empty());
    assert_eq!(ids(&list(inbox().view(InboxView::Pending)).await), ["c2"]);
    assert_eq!(ids(&list(inbox().view(InboxView::Resolved)).await), ["c1"]);
    assert_eq!(ids(&list(ConversationQuery::of_customer(tenant("acme"), user("u1"))).await), ["c3", "c1"]);
    assert_eq!(ids(&list(ConversationQuery::of_customer(tenant("globex"), user("u1"))).await), ["g1"]);
    assert_eq!(ids(&list(ConversationQuery { channel: Some(Channel::Mobile), ..inbox() }).await), ["c2"]);
    assert_eq!(ids(&list(ConversationQuery { tag: Some(tag("cards")), ..inbox() }).await), ["c1"]);
    assert_eq!(ids(&list(ConversationQuery { status: Some(Status::Open), ..inbox() }).await), ["c4", "c3"]);
    let c2_start = script.events.iter().find(|e| e.stream.id() == "c2").expect("c2").at;
    let c3_start = script.events.iter().find(|e| e.stream.id() == "c3").expect("c3").at;
    assert_eq!(ids(&list(ConversationQuery { created_from: Some(c2_start), ..inbox() }).await), ["c4", "c3", "c2"]);
    assert_eq!(ids(&list(ConversationQuery { created_from: Some(c2_start), created_to: Some(c3_start), ..inbox() }).await), ["c2"]);
    assert!(
        matches!(a.list(&ConversationQuery::default()).await, Err(crate::StoreError::Invalid(_))),
        "a query without a tenant is refused"
    );
    let globex_open = list(ConversationQuery::inbox(tenant("globex"))).await.iter().filter(|c| c.status != Status::Resolved).count() as u64;
    assert_eq!(
        a.open_count().await.expect("open count"),
        3 + globex_open,
        "every tenant's unresolved conversations: acme's c2, c3, c4 and globex's"
    );
}

pub async fn text_search_finds_words_in_messages(a: S, _b: S) {
    fed(&a, &inbox_script()).await;
    let search = |t: &str, text: &str| {
        let (a, q) = (a.clone(), ConversationQuery { text: Some(text.into()), ..ConversationQuery::inbox(tenant(t)) });
        async move { a.list(&q).await.expect("search").items.into_iter().map(|s| s.id.to_string()).collect::<Vec<_>>() }
    };
    assert_eq!(search("acme", "refund").await, ["c2"]);
    assert_eq!(search("acme", "REFUND 42").await, ["c2"]);
    assert_eq!(search("acme", "card").await, ["c1"], "a word matches the start of a word");
    assert_eq!(search("acme", "working days").await, ["c1"], "bot answers are searched too");
    assert_eq!(search("acme", "password").await, ["c3"]);
    assert!(search("acme", "zebra").await.is_empty());
    assert_eq!(search("globex", "refund").await, ["g1"]);
    assert!(search("acme", "\"; DROP TABLE messages; --").await.is_empty());
}

pub async fn pages_are_stable_and_complete(a: S, _b: S) {
    let mut script = Script::new();
    for n in 0..23 {
        // Pairs of conversations share a timestamp: the id breaks the tie.
        if n % 2 == 0 {
            script.advance(1);
        }
        script.start("acme", &format!("p{n:02}"), "u1", Channel::Web);
    }
    fed(&a, &script).await;
    let all = a.list(&ConversationQuery::inbox(tenant("acme")).limit(100)).await.expect("list").items;
    assert_eq!(all.len(), 23);
    let mut expected: Vec<_> = all.iter().map(|s| (std::cmp::Reverse(s.updated_at), std::cmp::Reverse(s.id.to_string()))).collect();
    expected.sort();
    assert_eq!(expected.iter().map(|e| e.1.0.clone()).collect::<Vec<_>>(), ids(&all));
    let mut paged = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = a.list(&ConversationQuery::inbox(tenant("acme")).limit(5).after(cursor)).await.expect("page");
        pages += 1;
        assert!(page.items.len() <= 5);
        paged.extend(page.items);
        match page.next {
            Some(c) => cursor = Some(crate::conversations::Cursor::parse(c.as_str()).expect("our own cursor")),
            None => break,
        }
    }
    assert_eq!(pages, 5);
    assert_eq!(ids(&paged), ids(&all));
    assert!(matches!(crate::conversations::Cursor::parse("garbage!"), Err(crate::StoreError::Invalid(_))));
}

pub async fn erasure_replaces_the_customers_content(a: S, b: S) {
    let mut script = inbox_script();
    script.advance(60).conversation(
        "acme",
        "c1",
        ConversationEvent::FeedbackGiven { feedback: Feedback::Csat { score: 4, comment: Some(Personal::plain("Fast, thanks")) } },
    );
    fed(&a, &script).await;
    script.advance(60).user("acme", "u1", UserEvent::UserErased);
    fed(&a, &script).await;
    for c in ["c1", "c3"] {
        let d = a.conversation(&tenant("acme"), &conv(c)).await.expect("detail").expect("exists");
        assert!(d.messages.iter().all(|m| m.erased && m.text == Personal::ERASED_TEXT), "{c}: {:?}", d.messages);
        assert_eq!(d.summary.last_message.map(|m| m.text), Some(Personal::ERASED_TEXT.to_owned()));
    }
    let c1 = a.conversation(&tenant("acme"), &conv("c1")).await.expect("detail").expect("exists");
    assert_eq!(c1.summary.csat.and_then(|c| c.comment), Some(Personal::ERASED_TEXT.to_owned()));
    let c2 = a.conversation(&tenant("acme"), &conv("c2")).await.expect("detail").expect("exists");
    assert!(c2.messages.iter().all(|m| !m.erased), "another customer's conversation is untouched");
    let g1 = a.conversation(&tenant("globex"), &conv("g1")).await.expect("detail").expect("exists");
    assert!(g1.messages.iter().all(|m| !m.erased), "the same user id in another tenant is another person");
    let found = a.list(&ConversationQuery { text: Some("card".into()), ..ConversationQuery::inbox(tenant("acme")) }).await.expect("search");
    assert!(found.items.is_empty(), "erased text is not searchable");

    // A replay after the erasure reads the customer's data as erased: the same result.
    let mut replayed = script.events.clone();
    for e in &mut replayed {
        if e.stream.tenant() == &tenant("acme")
            && ["c1", "c3"].contains(&e.stream.id())
            && let Fact::Conversation(ev) = &mut e.fact
        {
            use jamuna_domain::DomainEvent;
            for p in ev.personal_fields_mut() {
                *p = Personal::Erased;
            }
        }
    }
    feed(b.as_ref(), P, &replayed, 3).await;
    for t in ["acme", "globex"] {
        assert_eq!(conversations_snapshot(a.as_ref(), &tenant(t)).await, conversations_snapshot(b.as_ref(), &tenant(t)).await);
    }
}

pub async fn reset_drops_everything(a: S, _b: S) {
    let script = inbox_script();
    fed(&a, &script).await;
    a.reset(P).await.expect("reset");
    assert_eq!(a.checkpoint(P).await.expect("checkpoint"), 0);
    assert!(a.list(&ConversationQuery::inbox(tenant("acme"))).await.expect("list").items.is_empty());
    assert!(a.conversation(&tenant("acme"), &conv("c1")).await.expect("detail").is_none());
    fed(&a, &script).await;
    assert_eq!(a.list(&ConversationQuery::inbox(tenant("acme"))).await.expect("list").items.len(), 4, "rebuilt");
}

/// Conversations given to a team are listed by team; those waiting for a
/// human (pending, nobody assigned) are counted per team; an unassigned
/// conversation a human was asked for waits again; every event twice counts once.
pub async fn teams_filter_the_inbox_and_count_who_waits(a: S, b: S) {
    use jamuna_domain::TeamId;
    let billing = || Some(TeamId::parse("billing").unwrap());
    let mut script = inbox_script();
    script.advance(60).conversation("acme", "c2", ConversationEvent::TeamAssigned { team: billing() });
    script.advance(60).conversation("acme", "c3", ConversationEvent::TeamAssigned { team: billing() });
    script.advance(60).conversation("acme", "c3", ConversationEvent::AgentUnassigned { by: Some(user("a1")) });
    script.advance(60).start("acme", "c5", "u4", Channel::Web);
    script.advance(60).conversation(
        "acme",
        "c5",
        ConversationEvent::HandoffRequested { reason: jamuna_domain::conversation::HandoffReason::CustomerAsked, why: None },
    );
    script.advance(60).conversation("acme", "c4", ConversationEvent::TeamAssigned { team: billing() });
    script.advance(60).conversation("acme", "c4", ConversationEvent::TeamAssigned { team: None });
    script.advance(60).conversation(
        "globex",
        "g1",
        ConversationEvent::HandoffRequested { reason: jamuna_domain::conversation::HandoffReason::CustomerAsked, why: None },
    );
    script.advance(60).conversation("globex", "g1", ConversationEvent::TeamAssigned { team: billing() });
    fed(&a, &script).await;
    feed_twice(b.as_ref(), P, &script.events).await;
    for s in [&a, &b] {
        let q = ConversationQuery { team: billing(), ..ConversationQuery::inbox(tenant("acme")) };
        assert_eq!(ids(&s.list(&q).await.expect("list").items), ["c3", "c2"], "billing's conversations, not globex's");
        let c3 = s.conversation(&tenant("acme"), &conv("c3")).await.expect("detail").expect("c3");
        assert_eq!((c3.summary.status, c3.summary.assignee.clone(), c3.summary.team.clone()), (Status::Pending, None, billing()));
        assert_eq!(s.waiting_by_team(&tenant("acme")).await.expect("counts"), vec![(None, 1), (billing(), 2)]);
        assert_eq!(s.waiting_by_team(&tenant("globex")).await.expect("counts"), vec![(billing(), 1)]);
        assert!(s.waiting_by_team(&tenant("initech")).await.expect("counts").is_empty());
    }
}

fn ids(items: &[crate::conversations::ConversationSummary]) -> Vec<&str> {
    items.iter().map(|s| s.id.as_str()).collect()
}

/// A note by `author` naming `mentions`.
fn note(author: &str, text: &str, mentions: &[&str]) -> ConversationEvent {
    ConversationEvent::NoteAdded { author: user(author), text: Personal::plain(text), mentions: mentions.iter().map(|m| user(m)).collect() }
}

pub async fn mentions_list_the_notes_naming_a_user_newest_first(a: S, b: S) {
    let mut script = inbox_script();
    let before = {
        fed(&a, &script).await;
        a.conversation(&tenant("acme"), &conv("c2")).await.expect("detail").expect("c2")
    };
    let c2 = script.advance(10).conversation("acme", "c2", note("a1", "zanzibar refund is fine", &["a2", "a3", "a2"]));
    let c3 = script.advance(10).conversation("acme", "c3", note("a2", "zanzibar self", &["a2"]));
    script.advance(10).conversation("globex", "g1", note("a1", "zanzibar elsewhere", &["a2"]));
    let c1 = script.advance(10).conversation("acme", "c1", note("a3", "zanzibar on a resolved one", &["a2"]));
    fed(&a, &script).await;
    feed_twice(b.as_ref(), P, &script.events).await;

    let found = |s: S, t: &'static str, u: &'static str, before: Option<u64>, limit: usize| async move {
        s.mentions(&tenant(t), &user(u), before, limit).await.expect("mentions")
    };
    let all = found(a.clone(), "acme", "a2", None, 10).await;
    let seen: Vec<(&str, u64, &str)> = all.iter().map(|m| (m.conversation_id.as_str(), m.version, m.author.as_str())).collect();
    assert_eq!(seen, [("c1", c1, "a3"), ("c3", c3, "a2"), ("c2", c2, "a1")], "newest first, each note once");
    assert!(all.windows(2).all(|w| w[0].position > w[1].position && w[0].at >= w[1].at));
    assert!(all.iter().all(|m| m.user == user("a2") && m.tenant == tenant("acme")));
    assert_eq!(all, found(b.clone(), "acme", "a2", None, 10).await, "every event twice changes nothing");
    // Paged by the last position seen.
    let first = found(a.clone(), "acme", "a2", None, 2).await;
    assert_eq!(first, all[..2]);
    let rest = found(a.clone(), "acme", "a2", first.last().map(|m| m.position), 2).await;
    assert_eq!(rest, all[2..]);
    assert_eq!(found(a.clone(), "acme", "a3", None, 10).await.iter().map(|m| m.conversation_id.as_str()).collect::<Vec<_>>(), ["c2"]);
    assert!(found(a.clone(), "acme", "a1", None, 10).await.is_empty(), "the author is not mentioned");
    assert_eq!(found(a.clone(), "globex", "a2", None, 10).await.len(), 1, "tenants are separate");

    // A note is no message: not counted, not previewed, not searchable (a customer searches messages).
    let after = a.conversation(&tenant("acme"), &conv("c2")).await.expect("detail").expect("c2");
    assert_eq!((after.messages.len(), after.summary.message_count), (before.messages.len(), before.summary.message_count));
    assert_eq!(after.summary.last_message, before.summary.last_message);
    assert_eq!((after.summary.status, after.summary.human_involved), (before.summary.status, before.summary.human_involved));
    let q = ConversationQuery { text: Some("zanzibar".into()), ..ConversationQuery::inbox(tenant("acme")) };
    assert!(a.list(&q).await.expect("search").items.is_empty(), "a note's text is not in the read model");

    // The customer's erasure leaves the references (there is no text to scrub); a reset drops them, a replay rebuilds them.
    script.advance(60).user("acme", "u1", UserEvent::UserErased);
    fed(&a, &script).await;
    assert_eq!(found(a.clone(), "acme", "a2", None, 10).await, all);
    a.reset(P).await.expect("reset");
    assert!(found(a.clone(), "acme", "a2", None, 10).await.is_empty(), "reset drops the mentions");
    fed(&a, &script).await;
    assert_eq!(found(a.clone(), "acme", "a2", None, 10).await, all, "rebuilt by replay");
}
