//! The analytics read model in MongoDB: a document per tenant and day
//! (`analytics_daily`: the counters, the intents as `[{intent, count}]`, the
//! cited articles as `[{article, count}]`) and a
//! document of facts per conversation (`analytics_facts`).
//!
//! A batch folds the facts of the conversations it touches (read in one
//! `find`), then reads the days those facts count towards (one `find`), and
//! writes each collection back in one `insert` and one `update`
//! ([`Documents`]). Without transactions, it writes the day documents first, then the
//! facts, then the checkpoint: a day document applies an event only if its
//! position is below the event's, and the effect of an event is computed
//! from facts that are never written before the days they feed, so a batch
//! re-applied after a crash at any point counts nothing twice.

use super::{AnalyticsStore, ConversationFacts, Counters, RawAnalytics, apply};
use crate::error::{ProjectionError, StoreError};
use crate::event::{Fact, Interest, Opened, ReadModel};
use crate::mongo::{Documents, MongoReadDb, Write, from_doc, to_doc};
use async_trait::async_trait;
use chrono::NaiveDate;
use jamuna_domain::{AggregateKind, TenantId};
use mongodb::IndexModel;
use mongodb::bson::{Bson, Document, doc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

pub const DAILY: &str = "analytics_daily";
pub const FACTS: &str = "analytics_facts";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Intent {
    intent: String,
    count: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Citation {
    article: String,
    count: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Day {
    tenant: String,
    day: String,
    #[serde(flatten)]
    counters: Counters,
    intents: Vec<Intent>,
    #[serde(default)]
    citations: Vec<Citation>,
    position: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct FactsDoc {
    tenant: String,
    #[serde(rename = "startedDay")]
    started_day: String,
    #[serde(rename = "firstResponseMs")]
    first_response_ms: Option<i64>,
    #[serde(rename = "resolvedDay")]
    resolved_day: Option<String>,
    #[serde(rename = "resolutionMs")]
    resolution_ms: Option<i64>,
    facts: ConversationFacts,
    position: u64,
}

fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn parse_day(s: &str) -> Result<NaiveDate, StoreError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(StoreError::internal)
}

/// The analytics read model in a MongoDB database.
#[derive(Clone)]
pub struct MongoAnalytics {
    db: MongoReadDb,
    docs: Documents,
}

impl MongoAnalytics {
    pub async fn new(db: MongoReadDb) -> Result<Self, StoreError> {
        let s = Self { docs: Documents::new(db.clone()), db };
        s.indexes().await?;
        Ok(s)
    }

    async fn indexes(&self) -> Result<(), StoreError> {
        self.db.collection(DAILY).create_index(IndexModel::builder().keys(doc! {"tenant": 1, "day": 1}).build()).await?;
        for keys in [doc! {"tenant": 1, "startedDay": 1}, doc! {"tenant": 1, "resolvedDay": 1}] {
            self.db.collection(FACTS).create_index(IndexModel::builder().keys(keys).build()).await?;
        }
        Ok(())
    }

    async fn apply_batch(&self, projection: &str, events: Vec<Opened>, through: u64) -> Result<(), ProjectionError> {
        let mut applied = self.docs.applied(projection).await?;
        if through <= applied {
            return Ok(());
        }
        // Facts of the conversations in the batch: (facts, loaded position, changed).
        let mut facts: HashMap<String, (Option<ConversationFacts>, Option<i64>, bool)> = HashMap::new();
        let ids = events.iter().filter(|e| e.position > applied && matches!(e.fact, Fact::Conversation(_))).map(|e| e.stream.to_string());
        for d in self.docs.load(FACTS, ids).await? {
            let id = d.get_str("_id").map_err(StoreError::internal)?.to_owned();
            let f: FactsDoc = from_doc(d)?;
            facts.insert(id, (Some(f.facts), Some(f.position as i64), false));
        }
        // What each event adds to its day, in order: (position, day key, tenant, day, effect).
        let mut effects = Vec::new();
        for e in &events {
            if e.position <= applied {
                continue;
            }
            applied = e.position;
            let Fact::Conversation(event) = &e.fact else { continue };
            let slot = facts.entry(e.stream.to_string()).or_insert((None, None, false));
            let effect = apply(&mut slot.0, e, event)?;
            slot.2 = true;
            if let Some(d) = effect.day {
                effects.push((e.position, format!("{}/{}", e.tenant(), day(d)), e.tenant().to_string(), d, effect));
            }
        }
        let mut days: HashMap<String, (Day, Option<i64>, bool)> = HashMap::new();
        for d in self.docs.load(DAILY, effects.iter().map(|(_, key, ..)| key.clone())).await? {
            let id = d.get_str("_id").map_err(StoreError::internal)?.to_owned();
            let day: Day = from_doc(d)?;
            let loaded = Some(day.position as i64);
            days.insert(id, (day, loaded, false));
        }
        for (position, key, tenant, d, effect) in effects {
            let (doc, _, dirty) = days.entry(key).or_insert_with(|| {
                let empty = Day { tenant, day: day(d), counters: Counters::default(), intents: vec![], citations: vec![], position: 0 };
                (empty, None, false)
            });
            if doc.position >= position {
                continue;
            }
            doc.counters.add(&effect.counters);
            if let Some(i) = effect.intent {
                match doc.intents.iter_mut().find(|x| x.intent == i) {
                    Some(x) => x.count += 1,
                    None => doc.intents.push(Intent { intent: i, count: 1 }),
                }
            }
            for a in effect.cited {
                match doc.citations.iter_mut().find(|x| x.article == a) {
                    Some(x) => x.count += 1,
                    None => doc.citations.push(Citation { article: a, count: 1 }),
                }
            }
            doc.position = position;
            *dirty = true;
        }
        let mut writes = Vec::new();
        for (key, (d, loaded, dirty)) in days {
            if dirty {
                let mut doc = to_doc(&d)?;
                doc.insert("_id", &key);
                writes.push(Write { id: key, loaded, doc });
            }
        }
        self.docs.write(DAILY, writes).await?;
        let mut writes = Vec::new();
        for (key, (f, loaded, dirty)) in facts {
            let Some(f) = f.filter(|_| dirty) else { continue };
            if loaded.is_some_and(|p| p >= f.position as i64) {
                continue;
            }
            let Some(tenant) = key.split('.').next() else { continue };
            let stored = FactsDoc {
                tenant: tenant.to_owned(),
                started_day: day(f.started_day()),
                first_response_ms: f.first_response_ms,
                resolved_day: f.resolved_day.map(day),
                resolution_ms: f.resolution_ms,
                position: f.position,
                facts: f,
            };
            let mut doc = to_doc(&stored)?;
            doc.insert("_id", &key);
            writes.push(Write { id: key, loaded, doc });
        }
        self.docs.write(FACTS, writes).await?;
        self.docs.commit(projection, through).await?;
        Ok(())
    }
}

#[async_trait]
impl ReadModel for MongoAnalytics {
    fn interest(&self, kind: AggregateKind, event_type: &str) -> Interest {
        super::interest(kind, event_type)
    }

    async fn checkpoint(&self, projection: &str) -> Result<u64, StoreError> {
        self.db.checkpoint(projection).await
    }

    async fn apply(&self, projection: &str, events: Vec<Opened>, through: u64) -> Result<(), ProjectionError> {
        self.apply_batch(projection, events, through).await
    }

    async fn reset(&self, projection: &str) -> Result<(), StoreError> {
        self.docs.reset(projection, &[DAILY, FACTS]).await?;
        self.indexes().await
    }

    /// Drops the model and holds its documents in memory until the end
    /// (days written out before facts, as in a batch); the indexes are
    /// built then.
    async fn begin_rebuild(&self, projection: &str) -> Result<(), StoreError> {
        self.docs.begin_rebuild(projection, &[DAILY, FACTS]).await
    }

    async fn end_rebuild(&self, projection: &str) -> Result<(), StoreError> {
        self.docs.end_rebuild(projection).await?;
        self.indexes().await
    }
}

fn times(docs: Vec<Document>, day_field: &str, ms_field: &str) -> Result<Vec<(NaiveDate, i64)>, StoreError> {
    let mut out = Vec::new();
    for d in docs {
        if let (Ok(day), Some(ms)) = (d.get_str(day_field), d.get(ms_field).and_then(Bson::as_i64)) {
            out.push((parse_day(day)?, ms));
        }
    }
    Ok(out)
}

#[async_trait]
impl AnalyticsStore for MongoAnalytics {
    async fn raw(&self, tenant: &TenantId, from: NaiveDate, to: NaiveDate) -> Result<RawAnalytics, StoreError> {
        let (f, t) = (day(from), day(to));
        let mut out = RawAnalytics::default();
        for d in self.db.find_all(DAILY, doc! {"tenant": tenant.as_str(), "day": {"$gte": &f, "$lte": &t}}, doc! {"day": 1}, None).await? {
            let d: Day = from_doc(d)?;
            let date = parse_day(&d.day)?;
            out.days.push((date, d.counters));
            let intents: BTreeMap<String, u64> = d.intents.into_iter().map(|i| (i.intent, i.count)).collect();
            out.intents.extend(intents.into_iter().map(|(i, n)| (date, i, n)));
            out.citations.extend(d.citations.into_iter().map(|c| (date, c.article, c.count)));
        }
        let started =
            self.db.find_all(FACTS, doc! {"tenant": tenant.as_str(), "startedDay": {"$gte": &f, "$lte": &t}}, doc! {}, None).await?;
        out.first_responses = times(started, "startedDay", "firstResponseMs")?;
        let resolved =
            self.db.find_all(FACTS, doc! {"tenant": tenant.as_str(), "resolvedDay": {"$gte": &f, "$lte": &t}}, doc! {}, None).await?;
        out.resolutions = times(resolved, "resolvedDay", "resolutionMs")?;
        Ok(out)
    }
}
