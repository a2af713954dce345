//! The analytics read model: per tenant and day, what the dashboard charts.
//!
//! * conversations started, messages by author, bot answers, handoffs;
//! * resolutions, and the **bot containment rate**: the share of resolutions
//!   of conversations no human took part in (no handoff, no assignment, no
//!   agent message);
//! * **first response time** (from the first customer message to the first
//!   reply of the bot or an agent), by the day the conversation started, and
//!   **resolution time** (from the start to the first resolution), by the day
//!   of that resolution: median and 90th percentile (nearest rank);
//! * CSAT average and count, by the day it was given; bot answers per intent;
//! * citations: how many bot answers cited each knowledge-base article.
//!
//! The projection keeps counters per day plus a few facts per conversation
//! (which the times and the containment need); percentiles are computed when
//! a report is asked for, from the stored times, so any past range can be
//! recomputed by a replay and comes out the same. Analytics never reads
//! personal data: it decodes events without opening them.

#[cfg(feature = "testing")]
pub mod contract;
pub mod mongo;
pub mod sqlite;

use crate::error::{ProjectionError, StoreError};
use crate::event::{Interest, Opened, ReadModel, ReadModelProjection};
use crate::runtime::Projection;
use async_trait::async_trait;
use chrono::NaiveDate;
use jamuna_commands::Sealer;
use jamuna_domain::conversation::{Author, ConversationEvent, Feedback};
use jamuna_domain::{AggregateKind, TenantId, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The projection's name, and the key of its checkpoint.
pub const PROJECTION: &str = "analytics";
/// The longest range one report covers, in days.
pub const MAX_DAYS: i64 = 366;

/// What is counted per tenant and day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub conversations_started: u64,
    pub messages_customer: u64,
    pub messages_agent: u64,
    /// Bot messages, answers included.
    pub messages_bot: u64,
    pub bot_answers: u64,
    pub handoffs: u64,
    pub resolved: u64,
    pub resolved_without_human: u64,
    pub csat_sum: u64,
    pub csat_count: u64,
}

impl Counters {
    pub const FIELDS: [&'static str; 10] = [
        "conversations_started",
        "messages_customer",
        "messages_agent",
        "messages_bot",
        "bot_answers",
        "handoffs",
        "resolved",
        "resolved_without_human",
        "csat_sum",
        "csat_count",
    ];

    pub fn values(&self) -> [u64; 10] {
        [
            self.conversations_started,
            self.messages_customer,
            self.messages_agent,
            self.messages_bot,
            self.bot_answers,
            self.handoffs,
            self.resolved,
            self.resolved_without_human,
            self.csat_sum,
            self.csat_count,
        ]
    }

    pub fn from_values(v: [u64; 10]) -> Self {
        Self {
            conversations_started: v[0],
            messages_customer: v[1],
            messages_agent: v[2],
            messages_bot: v[3],
            bot_answers: v[4],
            handoffs: v[5],
            resolved: v[6],
            resolved_without_human: v[7],
            csat_sum: v[8],
            csat_count: v[9],
        }
    }

    pub fn add(&mut self, other: &Counters) {
        let (a, b) = (self.values(), other.values());
        *self = Self::from_values(std::array::from_fn(|i| a[i] + b[i]));
    }

    pub fn is_zero(&self) -> bool {
        self.values().iter().all(|v| *v == 0)
    }
}

/// What analytics remembers about one conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationFacts {
    pub started_at: Timestamp,
    pub first_customer_at: Option<Timestamp>,
    pub first_response_ms: Option<i64>,
    pub human_involved: bool,
    pub resolution_ms: Option<i64>,
    pub resolved_day: Option<NaiveDate>,
    pub position: u64,
}

impl ConversationFacts {
    pub fn started_day(&self) -> NaiveDate {
        self.started_at.date_naive()
    }
}

/// What one event adds to its day.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Effect {
    pub day: Option<NaiveDate>,
    pub counters: Counters,
    pub intent: Option<String>,
    /// The articles a bot answer cites, each once.
    pub cited: Vec<String>,
}

/// Folds a conversation event into the conversation's facts and says what it
/// adds to the day it happened. Facts that already reflect the event are
/// left alone (the effect is still computed, for the caller to skip).
pub fn apply(facts: &mut Option<ConversationFacts>, e: &Opened, event: &ConversationEvent) -> Result<Effect, ProjectionError> {
    use ConversationEvent as V;
    let mut c = Counters::default();
    let mut intent = None;
    let mut cited: Vec<String> = Vec::new();
    let ahead = facts.as_ref().is_some_and(|f| f.position >= e.position);
    if let V::ConversationStarted { .. } = event {
        c.conversations_started = 1;
        if !ahead {
            if facts.is_some() {
                return Err(ProjectionError::bad_event(e.position, format!("conversation {} started twice", e.stream)));
            }
            *facts = Some(ConversationFacts {
                started_at: e.at,
                first_customer_at: None,
                first_response_ms: None,
                human_involved: false,
                resolution_ms: None,
                resolved_day: None,
                position: e.position,
            });
        }
        return Ok(Effect { day: Some(e.at.date_naive()), counters: c, intent, cited });
    }
    let Some(current) = facts.as_ref() else {
        return Err(ProjectionError::bad_event(e.position, format!("an event of {} before the conversation started", e.stream)));
    };
    let mut f = current.clone();
    let reply = |f: &mut ConversationFacts| {
        if f.first_response_ms.is_none()
            && let Some(first) = f.first_customer_at
        {
            f.first_response_ms = Some((e.at - first).num_milliseconds().max(0));
        }
    };
    match event {
        V::ConversationStarted { .. } => {}
        V::MessagePosted { author, .. } => match author {
            Author::Customer => {
                c.messages_customer = 1;
                f.first_customer_at.get_or_insert(e.at);
            }
            Author::Agent { .. } => {
                c.messages_agent = 1;
                f.human_involved = true;
                reply(&mut f);
            }
            Author::Bot => {
                c.messages_bot = 1;
                reply(&mut f);
            }
        },
        V::BotAnswered { intent: i, sources, .. } => {
            c.messages_bot = 1;
            c.bot_answers = 1;
            intent = i.clone();
            for s in sources {
                let id = s.article_id.to_string();
                if !cited.contains(&id) {
                    cited.push(id);
                }
            }
            reply(&mut f);
        }
        V::HandoffRequested { .. } => {
            c.handoffs = 1;
            f.human_involved = true;
        }
        V::AgentAssigned { .. } => f.human_involved = true,
        V::ConversationResolved { .. } => {
            c.resolved = 1;
            if !f.human_involved {
                c.resolved_without_human = 1;
            }
            if f.resolution_ms.is_none() {
                f.resolution_ms = Some((e.at - f.started_at).num_milliseconds().max(0));
                f.resolved_day = Some(e.at.date_naive());
            }
        }
        // A private note is staff talking among themselves: no reply to the customer.
        V::ConversationReopened { .. }
        | V::TagsChanged { .. }
        | V::NoteAdded { .. }
        | V::NotificationSent { .. }
        | V::TeamAssigned { .. }
        | V::AgentUnassigned { .. } => {}
        V::FeedbackGiven { feedback } => {
            if let Feedback::Csat { score, .. } = feedback {
                c.csat_sum = u64::from(*score);
                c.csat_count = 1;
            }
        }
    }
    if !ahead {
        f.position = e.position;
        *facts = Some(f);
    }
    Ok(Effect { day: Some(e.at.date_naive()), counters: c, intent, cited })
}

/// The median and 90th percentile of a set of durations (nearest rank).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub median_ms: i64,
    pub p90_ms: i64,
}

impl Percentiles {
    pub fn of(values: &mut [i64]) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        values.sort_unstable();
        let n = values.len();
        let rank = |p: f64| values[((p * n as f64).ceil() as usize).clamp(1, n) - 1];
        Some(Self { count: n as u64, median_ms: rank(0.5), p90_ms: rank(0.9) })
    }
}

/// The figures of a day, or of a whole range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    #[serde(flatten)]
    pub counters: Counters,
    /// Resolutions without a human / resolutions.
    pub containment_rate: Option<f64>,
    pub csat_average: Option<f64>,
    pub first_response: Option<Percentiles>,
    pub resolution: Option<Percentiles>,
    pub intents: BTreeMap<String, u64>,
    /// Bot answers citing each article, by article id.
    pub citations: BTreeMap<String, u64>,
}

impl Stats {
    fn new(
        counters: Counters,
        first: &mut [i64],
        resolution: &mut [i64],
        intents: BTreeMap<String, u64>,
        citations: BTreeMap<String, u64>,
    ) -> Self {
        let ratio = |a: u64, b: u64| if b == 0 { None } else { Some(a as f64 / b as f64) };
        Self {
            containment_rate: ratio(counters.resolved_without_human, counters.resolved),
            csat_average: ratio(counters.csat_sum, counters.csat_count),
            counters,
            first_response: Percentiles::of(first),
            resolution: Percentiles::of(resolution),
            intents,
            citations,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DailyStats {
    pub day: NaiveDate,
    #[serde(flatten)]
    pub stats: Stats,
}

/// A tenant's figures for a range of days (both ends included), day by day
/// (every day, zeros included) and in total.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub tenant: TenantId,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub days: Vec<DailyStats>,
    pub total: Stats,
}

/// What a store reads for a report; [`build_report`] does the arithmetic.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawAnalytics {
    pub days: Vec<(NaiveDate, Counters)>,
    pub intents: Vec<(NaiveDate, String, u64)>,
    /// Citations per day and article id.
    pub citations: Vec<(NaiveDate, String, u64)>,
    /// First response times, by the day the conversation started.
    pub first_responses: Vec<(NaiveDate, i64)>,
    /// Resolution times, by the day of the first resolution.
    pub resolutions: Vec<(NaiveDate, i64)>,
}

pub fn build_report(tenant: TenantId, from: NaiveDate, to: NaiveDate, raw: RawAnalytics) -> Report {
    let mut counters: HashMap<NaiveDate, Counters> = HashMap::new();
    for (d, c) in raw.days {
        counters.entry(d).or_default().add(&c);
    }
    let by_day = |rows: Vec<(NaiveDate, String, u64)>| {
        let mut m: HashMap<NaiveDate, BTreeMap<String, u64>> = HashMap::new();
        for (d, k, n) in rows {
            *m.entry(d).or_default().entry(k).or_default() += n;
        }
        m
    };
    let (mut intents, mut citations) = (by_day(raw.intents), by_day(raw.citations));
    let group = |v: &[(NaiveDate, i64)]| {
        let mut m: HashMap<NaiveDate, Vec<i64>> = HashMap::new();
        for (d, ms) in v {
            m.entry(*d).or_default().push(*ms);
        }
        m
    };
    let (mut firsts, mut resolutions) = (group(&raw.first_responses), group(&raw.resolutions));
    let mut days = Vec::new();
    let mut total = Counters::default();
    let mut total_intents = BTreeMap::new();
    let mut total_citations = BTreeMap::new();
    for day in from.iter_days().take_while(|d| *d <= to) {
        let c = counters.get(&day).copied().unwrap_or_default();
        total.add(&c);
        let i = intents.remove(&day).unwrap_or_default();
        for (k, v) in &i {
            *total_intents.entry(k.clone()).or_default() += v;
        }
        let a = citations.remove(&day).unwrap_or_default();
        for (k, v) in &a {
            *total_citations.entry(k.clone()).or_default() += v;
        }
        let mut f = firsts.remove(&day).unwrap_or_default();
        let mut r = resolutions.remove(&day).unwrap_or_default();
        days.push(DailyStats { day, stats: Stats::new(c, &mut f, &mut r, i, a) });
    }
    let mut all_first: Vec<i64> = raw.first_responses.iter().filter(|(d, _)| (from..=to).contains(d)).map(|x| x.1).collect();
    let mut all_res: Vec<i64> = raw.resolutions.iter().filter(|(d, _)| (from..=to).contains(d)).map(|x| x.1).collect();
    let total = Stats::new(total, &mut all_first, &mut all_res, total_intents, total_citations);
    Report { tenant, from, to, days, total }
}

/// Checks a report's range.
pub fn check_range(from: NaiveDate, to: NaiveDate) -> Result<(), StoreError> {
    if to < from {
        return Err(StoreError::Invalid(format!("the range ends ({to}) before it starts ({from})")));
    }
    if (to - from).num_days() >= MAX_DAYS {
        return Err(StoreError::Invalid(format!("a report covers at most {MAX_DAYS} days")));
    }
    Ok(())
}

/// The analytics read model's port.
#[async_trait]
pub trait AnalyticsStore: ReadModel {
    /// The stored figures of a range, before the arithmetic.
    async fn raw(&self, tenant: &TenantId, from: NaiveDate, to: NaiveDate) -> Result<RawAnalytics, StoreError>;

    /// A tenant's report for `from..=to` (at most [`MAX_DAYS`] days).
    async fn report(&self, tenant: &TenantId, from: NaiveDate, to: NaiveDate) -> Result<Report, StoreError> {
        check_range(from, to)?;
        let raw = self.raw(tenant, from, to).await?;
        Ok(build_report(tenant.clone(), from, to, raw))
    }
}

/// The projection that keeps an [`AnalyticsStore`] up to date.
pub fn projection(store: Arc<dyn AnalyticsStore>, sealer: Sealer) -> Arc<dyn Projection> {
    Arc::new(ReadModelProjection::new(PROJECTION, sealer, store))
}

pub fn interest(kind: AggregateKind, _event_type: &str) -> Interest {
    match kind {
        AggregateKind::Conversation => Interest::Decode,
        _ => Interest::Skip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        assert_eq!(Percentiles::of(&mut []), None);
        assert_eq!(Percentiles::of(&mut [5]), Some(Percentiles { count: 1, median_ms: 5, p90_ms: 5 }));
        let mut v: Vec<i64> = (1..=10).rev().collect();
        assert_eq!(Percentiles::of(&mut v), Some(Percentiles { count: 10, median_ms: 5, p90_ms: 9 }));
    }

    #[test]
    fn reports_fill_every_day_and_sum_the_range() {
        let d = |n| NaiveDate::from_ymd_opt(2025, 6, n).unwrap();
        let c = Counters { resolved: 2, resolved_without_human: 1, csat_sum: 9, csat_count: 2, ..Counters::default() };
        let raw = RawAnalytics {
            days: vec![(d(2), c), (d(9), c)],
            intents: vec![(d(2), "refund".into(), 3)],
            citations: vec![(d(2), "kb-1".into(), 2), (d(3), "kb-1".into(), 1), (d(9), "kb-2".into(), 5)],
            first_responses: vec![(d(2), 1000), (d(3), 3000)],
            resolutions: vec![],
        };
        let r = build_report(TenantId::parse("acme").unwrap(), d(1), d(3), raw);
        assert_eq!(r.days.len(), 3);
        assert_eq!(r.days[1].stats.containment_rate, Some(0.5));
        assert_eq!(r.days[1].stats.csat_average, Some(4.5));
        assert_eq!(r.total.counters.resolved, 2, "day 9 is outside the range");
        assert_eq!(r.total.citations.get("kb-1"), Some(&3));
        assert_eq!(r.total.citations.get("kb-2"), None, "day 9 is outside the range");
        assert_eq!(r.total.first_response.map(|p| p.median_ms), Some(1000));
        assert_eq!(r.total.intents.get("refund"), Some(&3));
        assert!(check_range(d(3), d(1)).is_err());
    }

    #[test]
    fn first_response_time_ignores_private_notes() {
        use crate::event::Fact;
        use jamuna_domain::conversation::{Author, Channel};
        use jamuna_domain::{ConversationId, Personal, StreamId, UserId};
        let t0 = chrono::DateTime::from_timestamp(1_750_000_000, 0).unwrap();
        let (tenant, id) = (TenantId::parse("acme").unwrap(), ConversationId::parse("c1").unwrap());
        let stream = StreamId::conversation(&tenant, &id);
        let agent = UserId::parse("a1").unwrap();
        let events = [
            (
                0,
                ConversationEvent::ConversationStarted {
                    tenant: tenant.clone(),
                    conversation_id: id.clone(),
                    customer: UserId::parse("u1").unwrap(),
                    channel: Channel::Web,
                },
            ),
            (
                1,
                ConversationEvent::MessagePosted {
                    author: Author::Customer,
                    text: Personal::plain("hi"),
                    client_message_id: None,
                    attachments: vec![],
                },
            ),
            (5, ConversationEvent::NoteAdded { author: agent.clone(), text: Personal::plain("mine"), mentions: vec![agent.clone()] }),
            (
                61,
                ConversationEvent::MessagePosted {
                    author: Author::Agent { id: agent },
                    text: Personal::plain("hello"),
                    client_message_id: None,
                    attachments: vec![],
                },
            ),
        ];
        let mut facts = None;
        let mut noted = None;
        for (n, (s, event)) in events.iter().enumerate() {
            let position = n as u64 + 1;
            let e = Opened {
                position,
                stream: stream.clone(),
                version: position,
                at: t0 + chrono::Duration::seconds(*s),
                fact: Fact::Conversation(event.clone()),
            };
            let effect = apply(&mut facts, &e, event).unwrap();
            if matches!(event, ConversationEvent::NoteAdded { .. }) {
                noted = Some(effect.counters);
                let f = facts.as_ref().unwrap();
                assert_eq!((f.first_response_ms, f.human_involved), (None, false), "a note is no reply");
            }
        }
        assert!(noted.is_some_and(|c| c.is_zero()), "a note counts as no message");
        assert_eq!(facts.unwrap().first_response_ms, Some(60_000), "from the customer's message to the agent's, not to the note");
    }
}
