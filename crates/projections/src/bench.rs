//! A realistic log, and how fast the read models rebuild from it.
//!
//! [`generate`] drives the real command handler (so every event is decided by
//! the domain and sealed like in production) through a simulated support
//! day after day: tenants, agents, customers who open conversations, the bot
//! answering with intents, handoffs, agents stepping in, resolutions, CSAT,
//! tags, and a few customers erased at the end. Time is simulated (passed
//! into the commands), and the randomness is seeded, so a spec always gives
//! the same shape of log. [`replay_each`] times a rebuild of each read model
//! ([`replay_sqlite`]: the SQLite ones), and [`inbox_probes`] with
//! [`time_inbox`] the dashboard's inbox queries. Nothing here prints:
//! `jamuna bench replay` does.

use crate::analytics::sqlite::SqliteAnalytics;
use crate::conversations::sqlite::SqliteConversations;
use crate::runtime::{ReplayError, ReplayProgress, ReplaySummary, replay};
use crate::users::sqlite::SqliteUsers;
use crate::{analytics, conversations, users};
use futures::StreamExt;
use jamuna_commands::handler::{CommandContext, CommandError, CommandHandler};
use jamuna_commands::{EventLog, Sealer};
use jamuna_domain::conversation::*;
use jamuna_domain::tenant::{Tenant, TenantCommand, TenantSettings};
use jamuna_domain::user::{Email, Role, User, UserCommand};
use jamuna_domain::{Aggregate, ArticleId, ClientMessageId, ConversationId, MessageText, StreamId, TenantId, Timestamp, UserId};
use std::path::Path;
use std::sync::Arc;

/// The shape of a generated log.
#[derive(Debug, Clone)]
pub struct LogSpec {
    pub tenants: usize,
    pub agents_per_tenant: usize,
    pub conversations: usize,
    /// Over how many days the conversations start.
    pub days: u32,
    /// Commands in flight at once (the log commits them in groups).
    pub concurrency: usize,
    /// One customer in this many is erased at the end (0: none).
    pub erase_one_in: usize,
    pub seed: u64,
    /// The first day.
    pub start: Timestamp,
    /// Each customer writes 1 to this many messages (each answered by the
    /// bot or an agent): the main knob of events per conversation.
    pub rounds: u64,
}

impl Default for LogSpec {
    fn default() -> Self {
        Self {
            tenants: 2,
            agents_per_tenant: 3,
            conversations: 1_000,
            days: 14,
            concurrency: 64,
            erase_one_in: 50,
            seed: 7,
            start: chrono::DateTime::from_timestamp(1_748_736_000, 0).unwrap_or_default(), // 2025-06-01
            rounds: 3,
        }
    }
}

/// What [`generate`] appended.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    pub tenants: Vec<TenantId>,
    /// Each tenant's agents (the first one is its admin), in tenant order.
    pub agents: Vec<Vec<UserId>>,
    pub conversations: usize,
    /// The head of the log afterwards.
    pub head: u64,
    pub first_day: chrono::NaiveDate,
    pub last_day: chrono::NaiveDate,
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("a generated command failed: {0}")]
    Command(String),
    #[error(transparent)]
    Log(#[from] jamuna_commands::LogError),
    #[error(transparent)]
    Keys(#[from] jamuna_commands::KeyStoreError),
    #[error(transparent)]
    Store(#[from] crate::StoreError),
    #[error(transparent)]
    Replay(#[from] ReplayError),
}

impl<E: std::error::Error + 'static> From<CommandError<E>> for BenchError {
    fn from(e: CommandError<E>) -> Self {
        BenchError::Command(e.to_string())
    }
}

/// A small seeded generator (SplitMix64): the same seed, the same log.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a>(&mut self, xs: &'a [&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

const QUESTIONS: [&str; 8] = [
    "Where is my card? I ordered it two weeks ago",
    "How do I reset my password",
    "I was charged twice for the same order, please refund",
    "Can I change the delivery address of my parcel",
    "The app crashes when I open the statements page",
    "What are your opening hours on public holidays",
    "I want to close my account",
    "Is there a fee for international transfers",
];
const INTENTS: [&str; 6] = ["card_delivery", "password_reset", "refund", "delivery_address", "app_issue", "opening_hours"];
const FOLLOW_UPS: [&str; 4] = ["That did not help", "Thanks, one more question", "Can I talk to a human please", "ok"];
const AGENT_LINES: [&str; 3] = ["Hi, I am looking into it now", "I have refunded the duplicate charge", "Your new card is on its way"];
const TAGS: [&str; 5] = ["billing", "cards", "vip", "bug", "feedback"];

fn id(prefix: &str, n: usize) -> String {
    format!("{prefix}{n:06}")
}

fn ctx(tenant: &TenantId, now: Timestamp) -> CommandContext {
    CommandContext::new(tenant.clone(), now)
}

async fn run<A: Aggregate>(h: &CommandHandler, stream: &StreamId, command: A::Command, now: Timestamp) -> Result<u64, BenchError> {
    let executed = h.execute::<A>(stream, &command, &ctx(stream.tenant(), now)).await?;
    Ok(executed.version())
}

fn text(s: &str) -> MessageText {
    MessageText::parse(s).unwrap_or_else(|_| MessageText::parse("…").unwrap_or_else(|_| unreachable!("a valid constant")))
}

/// Appends a realistic log through `handler` (see [`LogSpec`]).
pub async fn generate(handler: Arc<CommandHandler>, spec: &LogSpec) -> Result<Generated, BenchError> {
    let tenants: Vec<TenantId> = (0..spec.tenants.max(1))
        .map(|i| TenantId::parse(id("tenant", i)).map_err(|e| BenchError::Command(e.to_string())))
        .collect::<Result<_, _>>()?;
    let mut agents = Vec::new();
    for (i, t) in tenants.iter().enumerate() {
        let create = TenantCommand::Create {
            tenant: t.clone(),
            name: format!("Tenant {i}"),
            widget_key: format!("wk_{}_{:024}", t, i),
            settings: TenantSettings::new(vec!["https://shop.example.com".into()], true),
        };
        run::<Tenant>(&handler, &StreamId::of_tenant(t), create, spec.start).await?;
        let mut these = Vec::new();
        for a in 0..spec.agents_per_tenant.max(1) {
            let agent = UserId::parse(format!("{t}-agent{a}")).map_err(|e| BenchError::Command(e.to_string()))?;
            let register = UserCommand::Register {
                tenant: t.clone(),
                user_id: agent.clone(),
                role: if a == 0 { Role::Admin } else { Role::Agent },
                name: Some(format!("Agent {a}")),
                email: Email::parse(&format!("agent{a}@{t}.example.com")).ok(),
                password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".into()),
            };
            run::<User>(&handler, &StreamId::user(t, &agent), register, spec.start).await?;
            these.push(agent);
        }
        agents.push(these);
    }
    let day_ms = 86_400_000i64;
    let span_ms = day_ms * i64::from(spec.days.max(1));
    let step = span_ms / spec.conversations.max(1) as i64;
    let all = tenants.clone();
    let all_agents = agents.clone();
    let rounds = spec.rounds.max(1);
    let for_jobs = handler.clone();
    let jobs = (0..spec.conversations).map(move |n| {
        let handler = for_jobs.clone();
        let tenant_index = n % all.len();
        let tenant = all[tenant_index].clone();
        let agents = agents[tenant_index].clone();
        let start = spec.start + chrono::Duration::milliseconds(step * n as i64);
        let rng = Rng(spec.seed ^ (n as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
        let erase = spec.erase_one_in > 0 && n % spec.erase_one_in == spec.erase_one_in - 1;
        async move { conversation(&handler, n, tenant, &agents, start, rng, erase, rounds).await }
    });
    let mut results = futures::stream::iter(jobs).buffer_unordered(spec.concurrency.max(1));
    let mut last = spec.start;
    while let Some(r) = results.next().await {
        last = last.max(r?);
    }
    let head = handler.log().head().await?;
    Ok(Generated {
        tenants,
        agents: all_agents,
        conversations: spec.conversations,
        head,
        first_day: spec.start.date_naive(),
        last_day: last.date_naive(),
    })
}

/// One customer's conversation, start to finish; returns the time of its last event.
#[allow(clippy::too_many_arguments)]
async fn conversation(
    h: &CommandHandler,
    n: usize,
    tenant: TenantId,
    agents: &[UserId],
    start: Timestamp,
    mut rng: Rng,
    erase: bool,
    max_rounds: u64,
) -> Result<Timestamp, BenchError> {
    let bad = |e: jamuna_domain::IdError| BenchError::Command(e.to_string());
    let customer = UserId::parse(id("cust", n)).map_err(bad)?;
    let cid = ConversationId::parse(id("conv", n)).map_err(bad)?;
    let user_stream = StreamId::user(&tenant, &customer);
    let s = StreamId::conversation(&tenant, &cid);
    let mut now = start;
    fn tick(now: &mut Timestamp, rng: &mut Rng, max_s: u64) -> Timestamp {
        *now += chrono::Duration::milliseconds(500 + rng.below(max_s * 1000) as i64);
        *now
    }
    let register = UserCommand::Register {
        tenant: tenant.clone(),
        user_id: customer.clone(),
        role: Role::Customer,
        name: Some(format!("Customer {n}")),
        email: Email::parse(&format!("customer{n}@example.org")).ok(),
        password_hash: None,
    };
    run::<User>(h, &user_stream, register, now).await?;
    let channel = match rng.below(10) {
        0..=5 => Channel::Web,
        6..=8 => Channel::Mobile,
        _ => Channel::Api,
    };
    run::<Conversation>(
        h,
        &s,
        ConversationCommand::Start { tenant: tenant.clone(), conversation_id: cid, customer: customer.clone(), channel },
        now,
    )
    .await?;
    let mut human = false;
    let rounds = 1 + rng.below(max_rounds);
    for round in 0..rounds {
        let line = if round == 0 { rng.pick(&QUESTIONS) } else { rng.pick(&FOLLOW_UPS) };
        let post = ConversationCommand::PostMessage {
            author: Author::Customer,
            text: Some(text(line)),
            client_message_id: ClientMessageId::parse(format!("m{n}-{round}")).ok(),
            attachments: vec![],
        };
        let asked = run::<Conversation>(h, &s, post, tick(&mut now, &mut rng, 60)).await?;
        if human {
            let agent = agents[rng.below(agents.len() as u64) as usize].clone();
            let reply = ConversationCommand::PostMessage {
                author: Author::Agent { id: agent },
                text: Some(text(rng.pick(&AGENT_LINES))),
                client_message_id: None,
                attachments: vec![],
            };
            run::<Conversation>(h, &s, reply, tick(&mut now, &mut rng, 300)).await?;
            continue;
        }
        let confidence = 0.3 + (rng.below(70) as f32) / 100.0;
        if confidence < 0.45 || line.contains("human") {
            run::<Conversation>(
                h,
                &s,
                ConversationCommand::RequestHandoff { reason: HandoffReason::LowConfidence, why: None },
                tick(&mut now, &mut rng, 5),
            )
            .await?;
            let agent = agents[rng.below(agents.len() as u64) as usize].clone();
            let assign =
                ConversationCommand::AssignAgent { agent: Assignee { id: agent.clone(), tenant: tenant.clone(), role: Role::Agent } };
            run::<Conversation>(h, &s, assign, tick(&mut now, &mut rng, 600)).await?;
            let reply = ConversationCommand::PostMessage {
                author: Author::Agent { id: agent },
                text: Some(text(rng.pick(&AGENT_LINES))),
                client_message_id: None,
                attachments: vec![],
            };
            run::<Conversation>(h, &s, reply, tick(&mut now, &mut rng, 120)).await?;
            human = true;
            continue;
        }
        let intent = rng.pick(&INTENTS).to_owned();
        let answer = ConversationCommand::AnswerMessage {
            in_reply_to: asked,
            text: text(&format!("Here is what I found about {}: see the article.", intent.replace('_', " "))),
            intent: Some(intent.clone()),
            confidence,
            sources: vec![Source {
                article_id: ArticleId::parse(format!("kb-{intent}").replace('_', "-")).map_err(bad)?,
                title: intent.replace('_', " "),
                passage: "The relevant passage of the article.".into(),
                score: confidence,
            }],
            why: None,
        };
        run::<Conversation>(h, &s, answer, tick(&mut now, &mut rng, 3)).await?;
    }
    if rng.chance(30) {
        let add = vec![Tag::parse(rng.pick(&TAGS)).map_err(|e| BenchError::Command(e.to_string()))?];
        run::<Conversation>(h, &s, ConversationCommand::ChangeTags { add, remove: vec![] }, tick(&mut now, &mut rng, 60)).await?;
    }
    if rng.chance(75) {
        run::<Conversation>(h, &s, ConversationCommand::Resolve { by: None }, tick(&mut now, &mut rng, 900)).await?;
        if rng.chance(50) {
            let comment = rng.chance(40).then(|| jamuna_domain::Personal::plain("Quick and friendly"));
            let feedback = Feedback::Csat { score: 1 + rng.below(5) as u8, comment };
            run::<Conversation>(h, &s, ConversationCommand::GiveFeedback { feedback }, tick(&mut now, &mut rng, 60)).await?;
        }
    }
    if erase {
        run::<User>(h, &user_stream, UserCommand::Erase, tick(&mut now, &mut rng, 60)).await?;
        h.sealer().keys().erase(&tenant, &customer).await?;
    }
    Ok(now)
}

/// The three SQLite read models in `dir`, rebuilt from `log` one after the
/// other; `progress` hears from each replay.
pub async fn replay_sqlite(
    log: Arc<dyn EventLog>,
    sealer: Sealer,
    dir: &Path,
    progress: impl FnMut(&str, &ReplayProgress) + Send,
) -> Result<Vec<ReplaySummary>, BenchError> {
    let projections = [
        conversations::projection(Arc::new(SqliteConversations::open(dir.join("conversations.db"))?), sealer.clone()),
        users::projection(Arc::new(SqliteUsers::open(dir.join("users.db"))?), sealer.clone()),
        analytics::projection(Arc::new(SqliteAnalytics::open(dir.join("analytics.db"))?), sealer),
    ];
    replay_each(log, &projections, progress).await
}

/// Rebuilds each of `projections` from `log`, one after the other, from
/// position 0; `progress` hears from each replay.
pub async fn replay_each(
    log: Arc<dyn EventLog>,
    projections: &[Arc<dyn crate::Projection>],
    mut progress: impl FnMut(&str, &ReplayProgress) + Send,
) -> Result<Vec<ReplaySummary>, BenchError> {
    let mut out = Vec::new();
    for p in projections {
        let name = p.name().to_owned();
        out.push(replay(log.clone(), p.as_ref(), |r| progress(&name, r)).await?);
    }
    Ok(out)
}

/// One inbox query the dashboard asks, by name.
#[derive(Debug, Clone)]
pub struct InboxProbe {
    pub name: &'static str,
    pub query: conversations::ConversationQuery,
}

/// The inbox queries of the dashboard against a generated log: each view of
/// the first tenant's inbox (first page), a filter by tag, a page deep into
/// the list, and full-text searches.
pub async fn inbox_probes(store: &dyn conversations::ConversationStore, generated: &Generated) -> Result<Vec<InboxProbe>, BenchError> {
    use conversations::{ConversationQuery as Q, InboxView};
    let tenant = generated.tenants.first().cloned().ok_or_else(|| BenchError::Command("the log has no tenant".into()))?;
    let agent = generated
        .agents
        .first()
        .and_then(|a| a.get(1).or(a.first()))
        .cloned()
        .ok_or_else(|| BenchError::Command("the log has no agent".into()))?;
    let inbox = || Q::inbox(tenant.clone());
    // The cursor of the fifth page, so "deep page" starts 100 rows in.
    let mut cursor = None;
    for _ in 0..4 {
        cursor = store.list(&inbox().limit(25).after(cursor)).await?.next;
    }
    let tag = Tag::parse("billing").map_err(|e| BenchError::Command(e.to_string()))?;
    Ok(vec![
        InboxProbe { name: "all", query: inbox() },
        InboxProbe { name: "unassigned", query: inbox().view(InboxView::Unassigned) },
        InboxProbe { name: "mine", query: inbox().view(InboxView::Mine(agent)) },
        InboxProbe { name: "pending handoff", query: inbox().view(InboxView::Pending) },
        InboxProbe { name: "resolved", query: inbox().view(InboxView::Resolved) },
        InboxProbe { name: "tag filter", query: Q { tag: Some(tag), ..inbox() } },
        InboxProbe { name: "page 5", query: inbox().after(cursor) },
        InboxProbe { name: "search 'refund'", query: Q { text: Some("refund".into()), ..inbox() } },
        InboxProbe { name: "search 'card delivery'", query: Q { text: Some("card delivery".into()), ..inbox() } },
    ])
}

/// Runs each probe `rounds` times (after one warm-up) and returns each one's
/// latencies and how many conversations its first page held.
pub async fn time_inbox(
    store: &dyn conversations::ConversationStore,
    probes: &[InboxProbe],
    rounds: usize,
) -> Result<Vec<(&'static str, usize, Vec<std::time::Duration>)>, BenchError> {
    let mut out = Vec::new();
    for p in probes {
        let hits = store.list(&p.query).await?.items.len();
        let mut times = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let started = std::time::Instant::now();
            store.list(&p.query).await?;
            times.push(started.elapsed());
        }
        out.push((p.name, hits, times));
    }
    Ok(out)
}
