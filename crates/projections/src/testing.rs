//! What the read models' tests share: a log written by hand ([`Script`]),
//! feeding it to a model ([`feed`], [`feed_twice`]), what each store answers
//! ([`conversations_snapshot`], [`users_snapshot`], [`snapshot`]), and
//! [`live_equals_replay`].
//!
//! Each read model's contract sits beside it, in `contract.rs`:
//! [`crate::conversations::contract`], [`crate::users::contract`] and
//! [`crate::analytics::contract`] (and [`crate::sessions::contract`],
//! [`crate::vectors::contract`]). An adapter's tests invoke
//! [`conversation_store_contract!`](crate::conversation_store_contract),
//! [`user_store_contract!`](crate::user_store_contract) and
//! [`analytics_store_contract!`](crate::analytics_store_contract).
//!
//! [`live_equals_replay`] is the end-to-end check: a generated log is
//! projected live by a [`Projector`] and then replayed into fresh stores, and
//! every query must answer the same.

use crate::analytics::{AnalyticsStore, Report};
use crate::conversations::{ConversationDetail, ConversationQuery, ConversationStore};
use crate::event::{Fact, Opened, ReadModel};
use crate::runtime::{Projector, replay};
use crate::users::{TenantRecord, UserRecord, UserStore};
use jamuna_commands::handler::CommandHandler;
use jamuna_commands::{EventLog, Sealer};
use jamuna_domain::conversation::{Author, Channel, ConversationEvent, HandoffReason, Source, Tag};
use jamuna_domain::tenant::TenantEvent;
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
        self.conversation(
            t,
            c,
            ConversationEvent::MessagePosted { author, text: Personal::plain(text), client_message_id: id, attachments: vec![] },
        )
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
                why: None,
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
    s.advance(60).conversation("acme", "c2", ConversationEvent::HandoffRequested { reason: HandoffReason::CustomerAsked, why: None });
    s.advance(60).start("acme", "c3", "u1", Channel::Web);
    s.advance(60).say("acme", "c3", Author::Customer, "Password reset please");
    s.advance(60).conversation("acme", "c3", ConversationEvent::HandoffRequested { reason: HandoffReason::LowConfidence, why: None });
    s.advance(60).conversation("acme", "c3", ConversationEvent::AgentAssigned { agent: user("a1") });
    s.advance(60).say("acme", "c3", Author::Agent { id: user("a1") }, "Looking into it");
    s.advance(60).start("acme", "c4", "u3", Channel::Api);
    s.advance(60).start("globex", "g1", "u1", Channel::Web);
    s.advance(60).say("globex", "g1", Author::Customer, "refund at globex");
    s
}

/// The tests of one contract: `$suite` is the read model's module, whose
/// `contract` holds the rules.
#[doc(hidden)]
#[macro_export]
macro_rules! store_contract {
    (@tests $make:path, $suite:ident; $($rule:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $rule() {
                let Some(a) = $make().await else { return };
                let Some(b) = $make().await else { return };
                $crate::$suite::contract::$rule(std::sync::Arc::new(a), std::sync::Arc::new(b)).await;
            }
        )*
    };
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
