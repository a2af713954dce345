//! The contracts every read-model adapter passes, and the helpers to feed
//! read models by hand.
//!
//! An adapter's tests invoke [`conversation_store_contract!`],
//! [`user_store_contract!`] and [`analytics_store_contract!`] with a function
//! that makes a fresh, empty store (or `None` when the adapter's server is
//! not configured, which the function itself reports); each macro expands to
//! one test per rule. Each rule gets two fresh stores, `a` and `b`, for rules
//! that compare (e.g. "every event delivered twice" against "once").
//!
//! [`live_equals_replay`] is the end-to-end check: a generated log is
//! projected live by a [`Projector`] and then replayed into fresh stores, and
//! every query must answer the same.

use crate::analytics::{AnalyticsStore, Report};
use crate::conversations::{ConversationDetail, ConversationQuery, ConversationStore, InboxView};
use crate::event::{Fact, Opened, ReadModel};
use crate::runtime::{Projector, replay};
use crate::users::{TenantRecord, UserRecord, UserStore};
use jamuna_commands::handler::CommandHandler;
use jamuna_commands::{EventLog, Sealer};
use jamuna_domain::conversation::{Author, Channel, ConversationEvent, Feedback, HandoffReason, Source, Status, Tag};
use jamuna_domain::tenant::{TenantEvent, TenantSettings};
use jamuna_domain::user::{Role, UserEvent};
use jamuna_domain::{ArticleId, ClientMessageId, ConversationId, Personal, StreamId, TenantId, Timestamp, UserId};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub fn tenant(s: &str) -> TenantId {
    TenantId::parse(s).expect("a valid tenant id")
}
pub fn user(s: &str) -> UserId {
    UserId::parse(s).expect("a valid user id")
}
pub fn conv(s: &str) -> ConversationId {
    ConversationId::parse(s).expect("a valid conversation id")
}
pub fn tag(s: &str) -> Tag {
    Tag::parse(s).expect("a valid tag")
}

/// Writes a log by hand: positions, versions and (whole-second) times follow.
pub struct Script {
    position: u64,
    versions: HashMap<StreamId, u64>,
    pub now: Timestamp,
    pub events: Vec<Opened>,
}

impl Default for Script {
    fn default() -> Self {
        Self::new()
    }
}

impl Script {
    /// Starts on 2025-06-02 09:00 UTC.
    pub fn new() -> Self {
        Self {
            position: 0,
            versions: HashMap::new(),
            now: chrono::DateTime::from_timestamp(1_748_854_800, 0).expect("a valid time"),
            events: vec![],
        }
    }

    pub fn advance(&mut self, secs: i64) -> &mut Self {
        self.now += chrono::Duration::seconds(secs);
        self
    }

    pub fn push(&mut self, stream: StreamId, fact: Fact) -> u64 {
        self.position += 1;
        let v = self.versions.entry(stream.clone()).or_default();
        *v += 1;
        self.events.push(Opened { position: self.position, stream, version: *v, at: self.now, fact });
        *v
    }

    /// Appends a conversation event; returns its stream version.
    pub fn conversation(&mut self, t: &str, c: &str, e: ConversationEvent) -> u64 {
        self.push(StreamId::conversation(&tenant(t), &conv(c)), Fact::Conversation(e))
    }

    pub fn user(&mut self, t: &str, u: &str, e: UserEvent) -> u64 {
        self.push(StreamId::user(&tenant(t), &user(u)), Fact::User(e))
    }

    pub fn tenant(&mut self, t: &str, e: TenantEvent) -> u64 {
        self.push(StreamId::of_tenant(&tenant(t)), Fact::Tenant(e))
    }

    pub fn start(&mut self, t: &str, c: &str, customer: &str, channel: Channel) -> u64 {
        self.conversation(
            t,
            c,
            ConversationEvent::ConversationStarted { tenant: tenant(t), conversation_id: conv(c), customer: user(customer), channel },
        )
    }

    pub fn say(&mut self, t: &str, c: &str, author: Author, text: &str) -> u64 {
        let id = ClientMessageId::parse(format!("m{}", self.position + 1)).ok();
        self.conversation(t, c, ConversationEvent::MessagePosted { author, text: Personal::plain(text), client_message_id: id })
    }

    pub fn answer(&mut self, t: &str, c: &str, in_reply_to: u64, text: &str, intent: &str) -> u64 {
        let sources = vec![Source {
            article_id: ArticleId::parse("kb-1").expect("valid"),
            title: "Cards".into(),
            passage: "Cards arrive in 5 days.".into(),
            score: 0.8125,
        }];
        self.conversation(
            t,
            c,
            ConversationEvent::BotAnswered {
                in_reply_to,
                text: Personal::plain(text),
                intent: Some(intent.into()),
                confidence: 0.875,
                sources,
            },
        )
    }

    pub fn register(&mut self, t: &str, u: &str, role: Role, email: Option<&str>) -> u64 {
        self.user(
            t,
            u,
            UserEvent::UserRegistered {
                tenant: tenant(t),
                user_id: user(u),
                role,
                name: Some(Personal::plain(format!("Name of {u}"))),
                email: email.map(Personal::plain),
                password_hash: Some(Personal::plain(format!("$argon2id$hash-of-{u}"))),
            },
        )
    }
}

/// Feeds `events` to a model in batches of `batch`, each with its checkpoint.
pub async fn feed(model: &dyn ReadModel, projection: &str, events: &[Opened], batch: usize) {
    for chunk in events.chunks(batch.max(1)) {
        let through = chunk.last().map(|e| e.position).unwrap_or(0);
        model.apply(projection, chunk.to_vec(), through).await.expect("apply a batch");
    }
}

/// Feeds every event twice: each one doubled in its batch, then the whole log again.
pub async fn feed_twice(model: &dyn ReadModel, projection: &str, events: &[Opened]) {
    for e in events {
        model.apply(projection, vec![e.clone(), e.clone()], e.position).await.expect("apply a doubled event");
    }
    feed(model, projection, events, 5).await;
    feed(model, projection, events, events.len()).await;
}

/// Everything a conversation store answers about a tenant: every detail, newest first.
pub async fn conversations_snapshot(store: &dyn ConversationStore, t: &TenantId) -> Vec<ConversationDetail> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.list(&ConversationQuery::inbox(t.clone()).limit(7).after(cursor)).await.expect("list");
        for s in &page.items {
            out.push(store.conversation(t, &s.id).await.expect("detail").expect("listed, so found"));
        }
        match page.next {
            Some(c) => cursor = Some(c),
            None => return out,
        }
    }
}

/// Everything a user store answers: tenants, and each tenant's users.
pub async fn users_snapshot(store: &dyn UserStore) -> (Vec<TenantRecord>, Vec<UserRecord>) {
    let tenants = store.tenants().await.expect("tenants");
    let mut users = Vec::new();
    for t in &tenants {
        let mut after: Option<UserId> = None;
        loop {
            let page = store.users(&t.id, None, after.as_ref(), 9).await.expect("users");
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            users.extend(page);
        }
    }
    (tenants, users)
}

fn ids(items: &[crate::conversations::ConversationSummary]) -> Vec<&str> {
    items.iter().map(|s| s.id.as_str()).collect()
}

/// A small inbox: four conversations in `acme`, one in `globex`.
pub fn inbox_script() -> Script {
    let mut s = Script::new();
    s.start("acme", "c1", "u1", Channel::Web);
    let q = s.advance(60).say("acme", "c1", Author::Customer, "Where is my card? It has been two weeks");
    s.advance(2).answer("acme", "c1", q, "Cards arrive within 5 working days.", "card_delivery");
    s.advance(60).conversation("acme", "c1", ConversationEvent::TagsChanged { added: vec![tag("cards")], removed: vec![] });
    s.advance(60).conversation("acme", "c1", ConversationEvent::ConversationResolved { by: None });
    s.advance(60).start("acme", "c2", "u2", Channel::Mobile);
    s.advance(60).say("acme", "c2", Author::Customer, "I need a refund for order 42");
    s.advance(60).conversation("acme", "c2", ConversationEvent::HandoffRequested { reason: HandoffReason::CustomerAsked });
    s.advance(60).start("acme", "c3", "u1", Channel::Web);
    s.advance(60).say("acme", "c3", Author::Customer, "Password reset please");
    s.advance(60).conversation("acme", "c3", ConversationEvent::HandoffRequested { reason: HandoffReason::LowConfidence });
    s.advance(60).conversation("acme", "c3", ConversationEvent::AgentAssigned { agent: user("a1") });
    s.advance(60).say("acme", "c3", Author::Agent { id: user("a1") }, "Looking into it");
    s.advance(60).start("acme", "c4", "u3", Channel::Api);
    s.advance(60).start("globex", "g1", "u1", Channel::Web);
    s.advance(60).say("globex", "g1", Author::Customer, "refund at globex");
    s
}

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
        );
    };
}

/// One test per rule of the user-store contract.
#[macro_export]
macro_rules! user_store_contract {
    ($make:path) => {
        $crate::store_contract!(@tests $make, users;
            login_finds_users_by_email,
            erased_users_lose_their_personal_data,
            tenants_by_id_and_widget_key,
            users_are_listed_by_role_in_pages,
            every_user_event_twice_changes_nothing,
        );
    };
}

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

#[doc(hidden)]
#[macro_export]
macro_rules! store_contract {
    (@tests $make:path, $suite:ident; $($rule:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $rule() {
                let Some(a) = $make().await else { return };
                let Some(b) = $make().await else { return };
                $crate::testing::$suite::$rule(std::sync::Arc::new(a), std::sync::Arc::new(b)).await;
            }
        )*
    };
}

/// The conversation-store contract's rules.
pub mod conversations {
    use super::*;
    use crate::conversations::PROJECTION as P;

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
        assert_eq!(
            (d.summary.status, d.summary.channel, d.summary.message_count, d.summary.version),
            (Status::Resolved, Channel::Web, 2, 5)
        );
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
        let globex_open =
            list(ConversationQuery::inbox(tenant("globex"))).await.iter().filter(|c| c.status != Status::Resolved).count() as u64;
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
        let found =
            a.list(&ConversationQuery { text: Some("card".into()), ..ConversationQuery::inbox(tenant("acme")) }).await.expect("search");
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
}

fn people_script() -> Script {
    let mut s = Script::new();
    let settings = TenantSettings { allowed_origins: vec!["https://shop.example.com".into()], self_signup: true };
    s.tenant(
        "acme",
        TenantEvent::TenantCreated {
            tenant: tenant("acme"),
            name: "Acme".into(),
            widget_key: "wk_acme_0123456789abcdefghij".into(),
            settings,
        },
    );
    s.tenant(
        "globex",
        TenantEvent::TenantCreated {
            tenant: tenant("globex"),
            name: "Globex".into(),
            widget_key: "wk_globex_0123456789abcdefgh".into(),
            settings: TenantSettings { allowed_origins: vec![], self_signup: false },
        },
    );
    s.advance(10).register("acme", "admin1", Role::Admin, Some("boss@acme.example"));
    s.advance(10).register("acme", "ada", Role::Agent, Some("Ada@Example.com"));
    s.advance(10).register("acme", "cust1", Role::Customer, Some("c1@example.org"));
    s.advance(10).register("acme", "visitor", Role::Customer, None);
    s.advance(10).register("globex", "ada", Role::Agent, Some("ada@example.com"));
    s.advance(10).user("acme", "cust1", UserEvent::UserRoleChanged { from: Role::Customer, to: Role::Agent });
    s
}

/// The user-store contract's rules.
pub mod users {
    use super::*;
    use crate::users::PROJECTION as P;

    type S = Arc<dyn UserStore>;

    pub async fn login_finds_users_by_email(a: S, _b: S) {
        let script = people_script();
        feed(a.as_ref(), P, &script.events, 3).await;
        let ada = a.find_by_email(&tenant("acme"), " ADA@example.com ").await.expect("find").expect("ada is found");
        assert_eq!((ada.id.as_str(), ada.tenant.as_str(), ada.role), ("ada", "acme", Role::Agent));
        assert_eq!(ada.password_hash.as_deref(), Some("$argon2id$hash-of-ada"));
        assert_eq!((ada.name.as_deref(), ada.email.as_deref(), ada.erased), (Some("Name of ada"), Some("ada@example.com"), false));
        assert_eq!(ada.registered_at, script.events[3].at);
        let other = a.find_by_email(&tenant("globex"), "ada@example.com").await.expect("find").expect("found");
        assert_eq!(other.tenant.as_str(), "globex");
        assert!(a.find_by_email(&tenant("acme"), "nobody@example.com").await.expect("find").is_none());
        assert_eq!(a.user(&tenant("acme"), &user("cust1")).await.expect("user").map(|u| u.role), Some(Role::Agent));
        assert!(a.user(&tenant("globex"), &user("cust1")).await.expect("user").is_none());
    }

    pub async fn erased_users_lose_their_personal_data(a: S, b: S) {
        let mut script = people_script();
        script.advance(10).user("acme", "ada", UserEvent::UserErased);
        feed(a.as_ref(), P, &script.events, 4).await;
        let ada = a.user(&tenant("acme"), &user("ada")).await.expect("user").expect("still listed");
        assert!(ada.erased);
        assert_eq!((ada.name, ada.email, ada.password_hash), (None, None, None));
        assert!(a.find_by_email(&tenant("acme"), "ada@example.com").await.expect("find").is_none());
        assert!(a.find_by_email(&tenant("globex"), "ada@example.com").await.expect("find").is_some());
        // A replay once the key is gone reads the same.
        let mut replayed = script.events.clone();
        for e in &mut replayed {
            if e.stream == StreamId::user(&tenant("acme"), &user("ada"))
                && let Fact::User(UserEvent::UserRegistered { name, email, password_hash, .. }) = &mut e.fact
            {
                for p in [name, email, password_hash].into_iter().flatten() {
                    *p = Personal::Erased;
                }
            }
        }
        feed(b.as_ref(), P, &replayed, 2).await;
        assert_eq!(users_snapshot(a.as_ref()).await, users_snapshot(b.as_ref()).await);
    }

    pub async fn tenants_by_id_and_widget_key(a: S, _b: S) {
        let mut script = people_script();
        script.advance(10).tenant("acme", TenantEvent::WidgetKeyRotated { widget_key: "wk_acme_rotated_0123456789abc".into() });
        script.advance(10).tenant(
            "acme",
            TenantEvent::TenantSettingsChanged { settings: TenantSettings { allowed_origins: vec![], self_signup: false } },
        );
        feed(a.as_ref(), P, &script.events, 4).await;
        assert!(a.find_tenant_by_widget_key("wk_acme_0123456789abcdefghij").await.expect("find").is_none(), "the old key opens nothing");
        let acme = a.find_tenant_by_widget_key("wk_acme_rotated_0123456789abc").await.expect("find").expect("the new key works");
        assert_eq!((acme.id.as_str(), acme.name.as_str(), acme.version, acme.settings.self_signup), ("acme", "Acme", 3, false));
        assert_eq!(a.tenant(&tenant("globex")).await.expect("tenant").map(|t| t.name), Some("Globex".into()));
        assert!(a.tenant(&tenant("initech")).await.expect("tenant").is_none());
        assert_eq!(a.tenants().await.expect("tenants").iter().map(|t| t.id.to_string()).collect::<Vec<_>>(), ["acme", "globex"]);
    }

    pub async fn users_are_listed_by_role_in_pages(a: S, _b: S) {
        feed(a.as_ref(), P, &people_script().events, 100).await;
        let all = a.users(&tenant("acme"), None, None, 0).await.expect("users");
        assert_eq!(all.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(), ["ada", "admin1", "cust1", "visitor"]);
        let agents = a.users(&tenant("acme"), Some(Role::Agent), None, 0).await.expect("users");
        assert_eq!(agents.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(), ["ada", "cust1"]);
        let page = a.users(&tenant("acme"), None, Some(&user("admin1")), 1).await.expect("users");
        assert_eq!(page.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(), ["cust1"]);
    }

    pub async fn every_user_event_twice_changes_nothing(a: S, b: S) {
        let mut script = people_script();
        script.advance(10).user("acme", "visitor", UserEvent::UserErased);
        feed(a.as_ref(), P, &script.events, 3).await;
        feed_twice(b.as_ref(), P, &script.events).await;
        assert_eq!(users_snapshot(a.as_ref()).await, users_snapshot(b.as_ref()).await);
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
    s.advance(10).conversation("acme", "k2", ConversationEvent::HandoffRequested { reason: HandoffReason::CustomerAsked });
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

/// The analytics-store contract's rules.
pub mod analytics {
    use super::*;
    use crate::analytics::PROJECTION as P;

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
}

/// The stores one check needs: the conversations, users and analytics models.
pub struct Stores {
    pub conversations: Arc<dyn ConversationStore>,
    pub users: Arc<dyn UserStore>,
    pub analytics: Arc<dyn AnalyticsStore>,
}

/// What every read model answers, for comparing two builds.
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    pub conversations: Vec<ConversationDetail>,
    pub users: (Vec<TenantRecord>, Vec<UserRecord>),
    pub reports: Vec<Report>,
}

pub async fn snapshot(stores: &Stores, generated: &crate::bench::Generated) -> Snapshot {
    let mut conversations = Vec::new();
    let mut reports = Vec::new();
    for t in &generated.tenants {
        conversations.extend(conversations_snapshot(stores.conversations.as_ref(), t).await);
        reports.push(stores.analytics.report(t, generated.first_day, generated.last_day).await.expect("report"));
    }
    Snapshot { conversations, users: users_snapshot(stores.users.as_ref()).await, reports }
}

/// Builds `live` with a running [`Projector`] while a realistic log (with
/// erasures) is written through `handler`, then rebuilds `replayed` from the
/// log with [`replay`]: every query must answer the same.
pub async fn live_equals_replay(handler: Arc<CommandHandler>, live: Stores, replayed: Stores) {
    let log: Arc<dyn EventLog> = handler.log().clone();
    let sealer: Sealer = handler.sealer().clone();
    let mut projector = Projector::new(log.clone());
    projector.add(crate::conversations::projection(live.conversations.clone(), sealer.clone()));
    projector.add(crate::users::projection(live.users.clone(), sealer.clone()));
    projector.add(crate::analytics::projection(live.analytics.clone(), sealer.clone()));
    projector.start();
    let spec = crate::bench::LogSpec { conversations: 80, days: 3, concurrency: 16, erase_one_in: 6, ..Default::default() };
    let generated = crate::bench::generate(handler.clone(), &spec).await.expect("generate a log");
    projector.wait_for(generated.head, Duration::from_secs(60)).await.expect("the live projections catch up");
    for s in projector.status().await.expect("status") {
        assert_eq!((s.position, s.lag), (generated.head, 0), "{s:?}");
    }
    projector.shutdown().await;
    let live_snapshot = snapshot(&live, &generated).await;
    let erased = live_snapshot.conversations.iter().filter(|c| c.messages.iter().any(|m| m.erased)).count();
    assert!(erased > 0 && erased < live_snapshot.conversations.len(), "some customers were erased: {erased}");
    assert!(live_snapshot.users.1.iter().any(|u| u.erased));

    for p in [
        crate::conversations::projection(replayed.conversations.clone(), sealer.clone()),
        crate::users::projection(replayed.users.clone(), sealer.clone()),
        crate::analytics::projection(replayed.analytics.clone(), sealer.clone()),
    ] {
        let summary = replay(log.clone(), p.as_ref(), |_| {}).await.expect("replay");
        assert_eq!((summary.events, summary.position), (generated.head, generated.head));
    }
    let replayed_snapshot = snapshot(&replayed, &generated).await;
    assert_eq!(live_snapshot.conversations.len(), spec.conversations);
    assert_eq!(live_snapshot, replayed_snapshot);
}
