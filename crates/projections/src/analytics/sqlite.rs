//! The analytics read model in SQLite: a counters row per tenant and day, a
//! row per tenant, day and intent (and per cited article), and a row of facts per conversation (with
//! the first response and resolution times the percentiles are taken from).

use super::{AnalyticsStore, ConversationFacts, Counters, RawAnalytics, apply};
use crate::conversations::conversation_id;
use crate::error::{ProjectionError, StoreError};
use crate::event::{Fact, Interest, Opened, ReadModel};
use crate::sqlite::{ReadDb, checkpoint, from_json, set_checkpoint, to_json};
use async_trait::async_trait;
use chrono::NaiveDate;
use jamuna_domain::{AggregateKind, ConversationId, TenantId};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::Path;
use std::sync::LazyLock;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS daily (
    tenant                 TEXT    NOT NULL,
    day                    TEXT    NOT NULL,
    conversations_started  INTEGER NOT NULL,
    messages_customer      INTEGER NOT NULL,
    messages_agent         INTEGER NOT NULL,
    messages_bot           INTEGER NOT NULL,
    bot_answers            INTEGER NOT NULL,
    handoffs               INTEGER NOT NULL,
    resolved               INTEGER NOT NULL,
    resolved_without_human INTEGER NOT NULL,
    csat_sum               INTEGER NOT NULL,
    csat_count             INTEGER NOT NULL,
    PRIMARY KEY (tenant, day)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS intents (
    tenant TEXT    NOT NULL,
    day    TEXT    NOT NULL,
    intent TEXT    NOT NULL,
    count  INTEGER NOT NULL,
    PRIMARY KEY (tenant, day, intent)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS citations (
    tenant  TEXT    NOT NULL,
    day     TEXT    NOT NULL,
    article TEXT    NOT NULL,
    count   INTEGER NOT NULL,
    PRIMARY KEY (tenant, day, article)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS facts (
    tenant            TEXT NOT NULL,
    id                TEXT NOT NULL,
    started_day       TEXT NOT NULL,
    first_response_ms INTEGER,
    resolved_day      TEXT,
    resolution_ms     INTEGER,
    facts             TEXT NOT NULL,  -- JSON ConversationFacts
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS facts_by_start      ON facts (tenant, started_day);
CREATE INDEX IF NOT EXISTS facts_by_resolution ON facts (tenant, resolved_day);
";

const DROP: &str = "DROP TABLE IF EXISTS daily; DROP TABLE IF EXISTS intents; DROP TABLE IF EXISTS citations; DROP TABLE IF EXISTS facts;";

static UPSERT_DAILY: LazyLock<String> = LazyLock::new(|| {
    let cols = Counters::FIELDS.join(", ");
    let marks: Vec<String> = (3..3 + Counters::FIELDS.len()).map(|i| format!("?{i}")).collect();
    let adds: Vec<String> = Counters::FIELDS.iter().map(|f| format!("{f} = {f} + excluded.{f}")).collect();
    format!(
        "INSERT INTO daily (tenant, day, {cols}) VALUES (?1, ?2, {}) ON CONFLICT (tenant, day) DO UPDATE SET {}",
        marks.join(", "),
        adds.join(", ")
    )
});

static SELECT_DAILY: LazyLock<String> =
    LazyLock::new(|| format!("SELECT day, {} FROM daily WHERE tenant = ?1 AND day BETWEEN ?2 AND ?3", Counters::FIELDS.join(", ")));

/// The analytics read model in a SQLite file.
#[derive(Clone)]
pub struct SqliteAnalytics {
    db: ReadDb,
}

impl SqliteAnalytics {
    /// Opens (or creates) the read model at `path`, e.g. `<data>/read/analytics.db`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Ok(Self { db: ReadDb::open(path, SCHEMA)? })
    }
}

type Key = (TenantId, ConversationId);

fn load(c: &Connection, key: &Key) -> Result<Option<ConversationFacts>, StoreError> {
    let json: Option<String> = c
        .prepare_cached("SELECT facts FROM facts WHERE tenant = ?1 AND id = ?2")?
        .query_row(params![key.0.as_str(), key.1.as_str()], |r| r.get(0))
        .optional()?;
    json.map(|j| from_json(&j)).transpose()
}

fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn parse_day(s: &str) -> Result<NaiveDate, StoreError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(StoreError::internal)
}

fn apply_batch(c: &mut Connection, projection: &str, events: Vec<Opened>, through: u64) -> Result<(), ProjectionError> {
    let tx = c.transaction()?;
    let mut applied = checkpoint(&tx, projection)?;
    if through <= applied {
        return Ok(());
    }
    let mut facts: HashMap<Key, Option<ConversationFacts>> = HashMap::new();
    let mut days: HashMap<(TenantId, NaiveDate), Counters> = HashMap::new();
    let mut intents: HashMap<(TenantId, NaiveDate, String), u64> = HashMap::new();
    let mut citations: HashMap<(TenantId, NaiveDate, String), u64> = HashMap::new();
    for e in &events {
        if e.position <= applied {
            continue;
        }
        applied = e.position;
        let Fact::Conversation(event) = &e.fact else { continue };
        let key = (e.tenant().clone(), conversation_id(e)?);
        let slot = match facts.entry(key) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => {
                let f = load(&tx, v.key())?;
                v.insert(f)
            }
        };
        let effect = apply(slot, e, event)?;
        if let Some(d) = effect.day {
            days.entry((e.tenant().clone(), d)).or_default().add(&effect.counters);
            if let Some(i) = effect.intent {
                *intents.entry((e.tenant().clone(), d, i)).or_default() += 1;
            }
            for a in effect.cited {
                *citations.entry((e.tenant().clone(), d, a)).or_default() += 1;
            }
        }
    }
    let mut upsert_day = tx.prepare_cached(&UPSERT_DAILY)?;
    for ((t, d), c) in &days {
        let mut args: Vec<rusqlite::types::Value> = vec![t.to_string().into(), day(*d).into()];
        args.extend(c.values().iter().map(|v| rusqlite::types::Value::Integer(*v as i64)));
        upsert_day.execute(rusqlite::params_from_iter(args))?;
    }
    let mut upsert = tx.prepare_cached(
        "INSERT INTO intents (tenant, day, intent, count) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (tenant, day, intent) DO UPDATE SET count = count + excluded.count",
    )?;
    for ((t, d, i), n) in &intents {
        upsert.execute(params![t.as_str(), day(*d), i, *n as i64])?;
    }
    let mut cite = tx.prepare_cached(
        "INSERT INTO citations (tenant, day, article, count) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (tenant, day, article) DO UPDATE SET count = count + excluded.count",
    )?;
    for ((t, d, a), n) in &citations {
        cite.execute(params![t.as_str(), day(*d), a, *n as i64])?;
    }
    let mut save = tx.prepare_cached(
        "INSERT INTO facts (tenant, id, started_day, first_response_ms, resolved_day, resolution_ms, facts) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (tenant, id) DO UPDATE SET first_response_ms = excluded.first_response_ms, resolved_day = excluded.resolved_day,
            resolution_ms = excluded.resolution_ms, facts = excluded.facts",
    )?;
    for ((t, id), f) in &facts {
        if let Some(f) = f {
            save.execute(params![
                t.as_str(),
                id.as_str(),
                day(f.started_day()),
                f.first_response_ms,
                f.resolved_day.map(day),
                f.resolution_ms,
                to_json(f)?
            ])?;
        }
    }
    drop((upsert_day, upsert, cite, save));
    set_checkpoint(&tx, projection, through)?;
    tx.commit()?;
    Ok(())
}

fn raw(c: &Connection, tenant: &str, from: NaiveDate, to: NaiveDate) -> Result<RawAnalytics, StoreError> {
    let (f, t) = (day(from), day(to));
    let mut out = RawAnalytics::default();
    let mut stmt = c.prepare_cached(&SELECT_DAILY)?;
    let rows = stmt.query_map(params![tenant, f, t], |r| {
        let d: String = r.get(0)?;
        let mut v = [0u64; 10];
        for (i, slot) in v.iter_mut().enumerate() {
            *slot = r.get::<_, i64>(i + 1)?.max(0) as u64;
        }
        Ok((d, v))
    })?;
    for row in rows {
        let (d, v) = row?;
        out.days.push((parse_day(&d)?, Counters::from_values(v)));
    }
    let keyed = |sql: &str| -> Result<Vec<(NaiveDate, String, u64)>, StoreError> {
        let mut stmt = c.prepare_cached(sql)?;
        let rows = stmt.query_map(params![tenant, f, t], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)))?;
        let mut v = Vec::new();
        for row in rows {
            let (d, k, n) = row?;
            v.push((parse_day(&d)?, k, n.max(0) as u64));
        }
        Ok(v)
    };
    out.intents = keyed("SELECT day, intent, count FROM intents WHERE tenant = ?1 AND day BETWEEN ?2 AND ?3")?;
    out.citations = keyed("SELECT day, article, count FROM citations WHERE tenant = ?1 AND day BETWEEN ?2 AND ?3")?;
    let times = |sql: &str| -> Result<Vec<(NaiveDate, i64)>, StoreError> {
        let mut stmt = c.prepare_cached(sql)?;
        let rows = stmt.query_map(params![tenant, f, t], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        let mut v = Vec::new();
        for row in rows {
            let (d, ms) = row?;
            v.push((parse_day(&d)?, ms));
        }
        Ok(v)
    };
    out.first_responses = times(
        "SELECT started_day, first_response_ms FROM facts WHERE tenant = ?1 AND started_day BETWEEN ?2 AND ?3 AND first_response_ms IS NOT NULL",
    )?;
    out.resolutions = times(
        "SELECT resolved_day, resolution_ms FROM facts WHERE tenant = ?1 AND resolved_day BETWEEN ?2 AND ?3 AND resolution_ms IS NOT NULL",
    )?;
    Ok(out)
}

#[async_trait]
impl ReadModel for SqliteAnalytics {
    fn interest(&self, kind: AggregateKind, event_type: &str) -> Interest {
        super::interest(kind, event_type)
    }

    async fn checkpoint(&self, projection: &str) -> Result<u64, StoreError> {
        self.db.checkpoint(projection).await
    }

    async fn apply(&self, projection: &str, events: Vec<Opened>, through: u64) -> Result<(), ProjectionError> {
        self.db.apply(projection, events, through, apply_batch).await
    }

    async fn reset(&self, projection: &str) -> Result<(), StoreError> {
        self.db.reset(projection, DROP).await
    }
}

#[async_trait]
impl AnalyticsStore for SqliteAnalytics {
    async fn raw(&self, tenant: &TenantId, from: NaiveDate, to: NaiveDate) -> Result<RawAnalytics, StoreError> {
        let t = tenant.to_string();
        self.db.read(move |c| raw(c, &t, from, to)).await
    }
}
