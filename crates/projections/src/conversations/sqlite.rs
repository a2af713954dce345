//! The conversations read model in SQLite: a row per conversation (indexed
//! columns for the inbox filters, the whole summary as JSON), a row per
//! message, and an FTS5 index over message text kept in step by triggers
//! (erased text leaves the index).
//!
//! Erasure leaves no plaintext behind: the text index runs with FTS5's
//! `secure-delete` (a deleted entry is removed from the index blocks, not
//! only marked), the file with `secure_delete` (overwritten rows are zeroed),
//! and after an erase the index is merged and the WAL checkpointed and
//! truncated ([`crate::sqlite::scrub`]).
//!
//! The mentions of private notes are rows of their own (`mentions`): who,
//! which note (conversation, version, position), by whom, when; never the
//! note's text.
//!
//! A batch of events is one transaction: the summaries it touches are loaded
//! once, folded in memory and written once, together with the checkpoint.
//!
//! A replay loads in bulk: [`ReadModel::begin_rebuild`] drops the FTS
//! triggers and leaves a row in `fts_deferred`; [`ReadModel::end_rebuild`]
//! indexes every message's text in one statement and puts the triggers back.
//! If the process dies in between, the next [`SqliteConversations::open`]
//! sees the row and finishes the job, so a search never misses a message.

use super::{
    BotAnswer, ConversationDetail, ConversationQuery, ConversationStore, ConversationSummary, InboxView, MAX_MENTIONS_PAGE, Mention,
    Message, Page, apply, channel_str, conversation_id, erase, status_str,
};
use crate::error::{ProjectionError, StoreError};
use crate::event::{Fact, Interest, Opened, ReadModel};
use crate::sqlite::{ReadDb, checkpoint, from_json, from_micros, micros, request_scrub, set_checkpoint, to_json};
use async_trait::async_trait;
use jamuna_domain::conversation::Author;
use jamuna_domain::user::UserEvent;
use jamuna_domain::{AggregateKind, ClientMessageId, ConversationId, Personal, TeamId, TenantId, UserId};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::Path;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS conversations (
    tenant     TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    customer   TEXT    NOT NULL,
    channel    TEXT    NOT NULL,
    status     TEXT    NOT NULL,
    assignee   TEXT,
    tags       TEXT    NOT NULL,   -- JSON array
    created_us INTEGER NOT NULL,
    updated_us INTEGER NOT NULL,
    position   INTEGER NOT NULL,
    summary    TEXT    NOT NULL,   -- JSON ConversationSummary
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS conversations_by_update   ON conversations (tenant, updated_us DESC, id DESC);
CREATE INDEX IF NOT EXISTS conversations_by_customer ON conversations (tenant, customer);
CREATE INDEX IF NOT EXISTS conversations_by_assignee ON conversations (tenant, assignee);
CREATE TABLE IF NOT EXISTS messages (
    seq             INTEGER PRIMARY KEY,
    tenant          TEXT    NOT NULL,
    conversation_id TEXT    NOT NULL,
    version         INTEGER NOT NULL,
    text            TEXT    NOT NULL,
    erased          INTEGER NOT NULL,
    body            TEXT    NOT NULL,  -- JSON: everything but the text
    UNIQUE (tenant, conversation_id, version)
);
CREATE VIRTUAL TABLE IF NOT EXISTS messages_fts USING fts5(text, content='messages', content_rowid='seq', tokenize='unicode61 remove_diacritics 2');
INSERT INTO messages_fts (messages_fts, rank) VALUES ('secure-delete', 1);
CREATE TRIGGER IF NOT EXISTS messages_fts_insert AFTER INSERT ON messages WHEN new.erased = 0 BEGIN
    INSERT INTO messages_fts (rowid, text) VALUES (new.seq, new.text);
END;
CREATE TRIGGER IF NOT EXISTS messages_fts_update AFTER UPDATE OF text, erased ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text) SELECT 'delete', old.seq, old.text WHERE old.erased = 0;
    INSERT INTO messages_fts (rowid, text) SELECT new.seq, new.text WHERE new.erased = 0;
END;
CREATE TRIGGER IF NOT EXISTS messages_fts_delete AFTER DELETE ON messages WHEN old.erased = 0 BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.seq, old.text);
END;
CREATE TABLE IF NOT EXISTS fts_deferred (projection TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS mentions (
    tenant          TEXT    NOT NULL,
    user_id         TEXT    NOT NULL,
    position        INTEGER NOT NULL,
    conversation_id TEXT    NOT NULL,
    version         INTEGER NOT NULL,
    author          TEXT    NOT NULL,
    at_us           INTEGER NOT NULL,
    PRIMARY KEY (tenant, user_id, position)
) WITHOUT ROWID;
";

/// Bulk loading: messages go in without the FTS triggers.
const DEFER_FTS: &str = "
DROP TRIGGER IF EXISTS messages_fts_insert;
DROP TRIGGER IF EXISTS messages_fts_update;
DROP TRIGGER IF EXISTS messages_fts_delete;
";

/// Indexes every live message's text at once (what the triggers would have
/// done row by row: erased text is not indexed).
const FILL_FTS: &str = "
INSERT INTO messages_fts (messages_fts) VALUES ('delete-all');
INSERT INTO messages_fts (rowid, text) SELECT seq, text FROM messages WHERE erased = 0;
";

/// After an erase: one merged index, without the erased entries' blocks.
const SCRUB: &str = "INSERT INTO messages_fts (messages_fts) VALUES ('optimize');";

const DROP: &str = "
DROP TRIGGER IF EXISTS messages_fts_insert;
DROP TRIGGER IF EXISTS messages_fts_update;
DROP TRIGGER IF EXISTS messages_fts_delete;
DROP TABLE IF EXISTS messages_fts;
DROP TABLE IF EXISTS messages;
DROP TABLE IF EXISTS conversations;
DROP TABLE IF EXISTS fts_deferred;
DROP TABLE IF EXISTS mentions;
";

/// A message row's JSON: everything but the text, which has its own column.
#[derive(Serialize, Deserialize)]
struct Body {
    author: Author,
    at: jamuna_domain::Timestamp,
    client_message_id: Option<ClientMessageId>,
    bot: Option<BotAnswer>,
}

/// The conversations read model in a SQLite file.
#[derive(Clone)]
pub struct SqliteConversations {
    db: ReadDb,
}

impl SqliteConversations {
    /// Opens (or creates) the read model at `path`, e.g. `<data>/read/conversations.db`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let db = ReadDb::open_scrubbed(path, SCHEMA, SCRUB)?;
        db.with_writer(finish_deferred_fts)?;
        Ok(Self { db })
    }
}

/// If a bulk load left the text index behind, fills it and puts the triggers
/// back (the schema's DDL is idempotent), in one transaction.
fn finish_deferred_fts(c: &mut Connection) -> Result<(), StoreError> {
    let tx = c.transaction()?;
    let deferred: bool = tx.query_row("SELECT EXISTS (SELECT 1 FROM fts_deferred)", [], |r| r.get(0))?;
    if deferred {
        tx.execute_batch(FILL_FTS)?;
        tx.execute_batch(SCHEMA)?;
        tx.execute("DELETE FROM fts_deferred", [])?;
    }
    tx.commit()?;
    Ok(())
}

type Key = (TenantId, ConversationId);

fn load(c: &Connection, key: &Key) -> Result<Option<ConversationSummary>, StoreError> {
    let json: Option<String> = c
        .prepare_cached("SELECT summary FROM conversations WHERE tenant = ?1 AND id = ?2")?
        .query_row(params![key.0.as_str(), key.1.as_str()], |r| r.get(0))
        .optional()?;
    json.map(|j| from_json(&j)).transpose()
}

fn save(c: &Connection, s: &ConversationSummary) -> Result<(), StoreError> {
    c.prepare_cached(
        "INSERT INTO conversations (tenant, id, customer, channel, status, assignee, tags, created_us, updated_us, position, summary)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (tenant, id) DO UPDATE SET customer = excluded.customer, channel = excluded.channel, status = excluded.status,
            assignee = excluded.assignee, tags = excluded.tags, updated_us = excluded.updated_us, position = excluded.position, summary = excluded.summary",
    )?
    .execute(params![
        s.tenant.as_str(),
        s.id.as_str(),
        s.customer.as_str(),
        channel_str(s.channel),
        status_str(s.status),
        s.assignee.as_ref().map(|a| a.as_str()),
        to_json(&s.tags)?,
        micros(&s.created_at),
        micros(&s.updated_at),
        s.position as i64,
        to_json(s)?,
    ])?;
    Ok(())
}

fn insert_message(c: &Connection, key: &Key, m: &Message) -> Result<(), StoreError> {
    let body = Body { author: m.author.clone(), at: m.at, client_message_id: m.client_message_id.clone(), bot: m.bot.clone() };
    c.prepare_cached("INSERT INTO messages (tenant, conversation_id, version, text, erased, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?
        .execute(params![key.0.as_str(), key.1.as_str(), m.version as i64, m.text, m.erased, to_json(&body)?,])?;
    Ok(())
}

fn insert_mention(c: &Connection, m: &Mention) -> Result<(), StoreError> {
    c.prepare_cached(
        "INSERT OR IGNORE INTO mentions (tenant, user_id, position, conversation_id, version, author, at_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        m.tenant.as_str(),
        m.user.as_str(),
        m.position as i64,
        m.conversation_id.as_str(),
        m.version as i64,
        m.author.as_str(),
        micros(&m.at),
    ])?;
    Ok(())
}

fn mentions(c: &Connection, tenant: &TenantId, user: &UserId, before: Option<u64>, limit: usize) -> Result<Vec<Mention>, StoreError> {
    let before = before.map_or(i64::MAX, |b| b.min(i64::MAX as u64) as i64);
    let limit = limit.clamp(1, MAX_MENTIONS_PAGE) as i64;
    let mut stmt = c.prepare_cached(
        "SELECT position, conversation_id, version, author, at_us FROM mentions
         WHERE tenant = ?1 AND user_id = ?2 AND position < ?3 ORDER BY position DESC LIMIT ?4",
    )?;
    let rows = stmt.query_map(params![tenant.as_str(), user.as_str(), before, limit], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get::<_, String>(3)?, r.get::<_, i64>(4)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (position, conversation, version, author, at) = row?;
        out.push(Mention {
            tenant: tenant.clone(),
            user: user.clone(),
            conversation_id: ConversationId::parse(conversation).map_err(StoreError::internal)?,
            version: version.max(0) as u64,
            author: UserId::parse(author).map_err(StoreError::internal)?,
            at: from_micros(at)?,
            position: position.max(0) as u64,
        });
    }
    Ok(out)
}

fn apply_batch(c: &mut Connection, projection: &str, events: Vec<Opened>, through: u64) -> Result<(), ProjectionError> {
    let tx = c.transaction()?;
    let mut applied = checkpoint(&tx, projection)?;
    if through <= applied {
        return Ok(());
    }
    let mut cache: HashMap<Key, Option<ConversationSummary>> = HashMap::new();
    for e in &events {
        if e.position <= applied {
            continue;
        }
        applied = e.position;
        match &e.fact {
            Fact::Conversation(event) => {
                let key = (e.tenant().clone(), conversation_id(e)?);
                let slot = match cache.entry(key) {
                    Entry::Occupied(o) => o.into_mut(),
                    Entry::Vacant(v) => {
                        let s = load(&tx, v.key())?;
                        v.insert(s)
                    }
                };
                if let Some(m) = apply(slot, e, event)? {
                    let key = (e.tenant().clone(), conversation_id(e)?);
                    insert_message(&tx, &key, &m)?;
                }
                for m in super::mentions(e, event)? {
                    insert_mention(&tx, &m)?;
                }
            }
            Fact::User(UserEvent::UserErased) => {
                request_scrub(&tx)?;
                let (tenant, customer) = (e.tenant().clone(), e.stream.id());
                let ids: Vec<String> = tx
                    .prepare_cached("SELECT id FROM conversations WHERE tenant = ?1 AND customer = ?2")?
                    .query_map(params![tenant.as_str(), customer], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                for id in ids {
                    let id = ConversationId::parse(id).map_err(StoreError::internal)?;
                    let key = (tenant.clone(), id);
                    if let Entry::Vacant(v) = cache.entry(key) {
                        let s = load(&tx, v.key())?;
                        v.insert(s);
                    }
                }
                let mut erase_messages = tx.prepare_cached(
                    "UPDATE messages SET text = ?3, erased = 1 WHERE tenant = ?1 AND conversation_id = ?2 AND erased = 0",
                )?;
                for ((t, id), s) in cache.iter_mut() {
                    if let Some(s) = s
                        && t == &tenant
                        && s.customer.as_str() == customer
                        && erase(s, e)
                    {
                        erase_messages.execute(params![t.as_str(), id.as_str(), Personal::ERASED_TEXT])?;
                    }
                }
            }
            _ => {}
        }
    }
    for s in cache.values().flatten() {
        save(&tx, s)?;
    }
    set_checkpoint(&tx, projection, through)?;
    tx.commit()?;
    Ok(())
}

/// An FTS5 query for one word: the word as a prefix, quoted.
fn fts_word(w: &str) -> String {
    format!("\"{}\"*", w.replace('"', "\"\""))
}

fn list(c: &Connection, q: &ConversationQuery) -> Result<Page<ConversationSummary>, StoreError> {
    let tenant = q.tenant()?.to_string();
    let mut sql = String::from("SELECT summary, updated_us, id FROM conversations WHERE tenant = ?");
    let mut args: Vec<Value> = vec![Value::Text(tenant.clone())];
    let mut arg = |sql: &mut String, clause: &str, v: Value| {
        sql.push_str(clause);
        args.push(v);
    };
    if let Some(customer) = &q.customer {
        arg(&mut sql, " AND customer = ?", Value::Text(customer.to_string()));
    }
    match &q.view {
        InboxView::All => {}
        InboxView::Unassigned => sql.push_str(" AND status <> 'resolved' AND assignee IS NULL"),
        InboxView::Mine(agent) => arg(&mut sql, " AND status <> 'resolved' AND assignee = ?", Value::Text(agent.to_string())),
        InboxView::Pending => sql.push_str(" AND status = 'pending'"),
        InboxView::Resolved => sql.push_str(" AND status = 'resolved'"),
    }
    if let Some(s) = q.status {
        arg(&mut sql, " AND status = ?", Value::Text(status_str(s).into()));
    }
    if let Some(team) = &q.team {
        arg(&mut sql, " AND json_extract(summary, '$.team') = ?", Value::Text(team.to_string()));
    }
    if let Some(ch) = q.channel {
        arg(&mut sql, " AND channel = ?", Value::Text(channel_str(ch).into()));
    }
    if let Some(tag) = &q.tag {
        arg(
            &mut sql,
            " AND EXISTS (SELECT 1 FROM json_each(conversations.tags) WHERE json_each.value = ?)",
            Value::Text(tag.as_str().into()),
        );
    }
    if let Some(from) = &q.created_from {
        arg(&mut sql, " AND created_us >= ?", Value::Integer(micros(from)));
    }
    if let Some(to) = &q.created_to {
        arg(&mut sql, " AND created_us < ?", Value::Integer(micros(to)));
    }
    for w in q.words() {
        sql.push_str(" AND id IN (SELECT m.conversation_id FROM messages_fts JOIN messages m ON m.seq = messages_fts.rowid WHERE messages_fts MATCH ? AND m.tenant = ?)");
        args.push(Value::Text(fts_word(&w)));
        args.push(Value::Text(tenant.clone()));
    }
    if let Some(cursor) = &q.cursor {
        let (us, id) = cursor.parts()?;
        sql.push_str(" AND (updated_us < ? OR (updated_us = ? AND id < ?))");
        args.extend([Value::Integer(us), Value::Integer(us), Value::Text(id)]);
    }
    let size = q.page_size();
    sql.push_str(" ORDER BY updated_us DESC, id DESC LIMIT ?");
    args.push(Value::Integer(size as i64 + 1));
    let mut stmt = c.prepare_cached(&sql)?;
    let rows =
        stmt.query_map(rusqlite::params_from_iter(args), |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?)))?;
    let mut items = Vec::new();
    let mut last = None;
    for row in rows {
        let (json, us, id) = row?;
        if items.len() == size {
            return Ok(Page { items, next: last.map(|(us, id): (i64, String)| super::Cursor::new(us, &id)) });
        }
        items.push(from_json(&json)?);
        last = Some((us, id));
    }
    Ok(Page { items, next: None })
}

fn detail(c: &Connection, tenant: &TenantId, id: &ConversationId) -> Result<Option<ConversationDetail>, StoreError> {
    let Some(summary) = load(c, &(tenant.clone(), id.clone()))? else { return Ok(None) };
    let mut stmt =
        c.prepare_cached("SELECT version, text, erased, body FROM messages WHERE tenant = ?1 AND conversation_id = ?2 ORDER BY version")?;
    let rows = stmt.query_map(params![tenant.as_str(), id.as_str()], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, bool>(2)?, r.get::<_, String>(3)?))
    })?;
    let mut messages = Vec::new();
    for row in rows {
        let (version, text, erased, body) = row?;
        let b: Body = from_json(&body)?;
        messages.push(Message {
            version: version as u64,
            author: b.author,
            text,
            erased,
            at: b.at,
            client_message_id: b.client_message_id,
            bot: b.bot,
        });
    }
    Ok(Some(ConversationDetail { summary, messages }))
}

#[async_trait]
impl ReadModel for SqliteConversations {
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

    async fn begin_rebuild(&self, projection: &str) -> Result<(), StoreError> {
        self.db.reset(projection, DROP).await?;
        let name = projection.to_owned();
        self.db
            .write(move |c| {
                let tx = c.transaction()?;
                tx.execute_batch(DEFER_FTS)?;
                tx.execute("INSERT OR IGNORE INTO fts_deferred (projection) VALUES (?1)", [&name])?;
                tx.commit()?;
                Ok(())
            })
            .await
    }

    async fn end_rebuild(&self, _projection: &str) -> Result<(), StoreError> {
        self.db.write(finish_deferred_fts).await
    }
}

#[async_trait]
impl ConversationStore for SqliteConversations {
    async fn conversation(&self, tenant: &TenantId, id: &ConversationId) -> Result<Option<ConversationDetail>, StoreError> {
        let (tenant, id) = (tenant.clone(), id.clone());
        self.db.read(move |c| detail(c, &tenant, &id)).await
    }

    async fn list(&self, query: &ConversationQuery) -> Result<Page<ConversationSummary>, StoreError> {
        let q = query.clone();
        self.db.read(move |c| list(c, &q)).await
    }

    async fn mentions(&self, tenant: &TenantId, user: &UserId, before: Option<u64>, limit: usize) -> Result<Vec<Mention>, StoreError> {
        let (tenant, user) = (tenant.clone(), user.clone());
        self.db.read(move |c| mentions(c, &tenant, &user, before, limit)).await
    }

    async fn waiting_by_team(&self, tenant: &TenantId) -> Result<Vec<(Option<TeamId>, u64)>, StoreError> {
        let tenant = tenant.clone();
        self.db
            .read(move |c| {
                let mut stmt = c.prepare_cached(
                    "SELECT json_extract(summary, '$.team'), count(*) FROM conversations
                     WHERE tenant = ?1 AND status = 'pending' AND assignee IS NULL GROUP BY 1 ORDER BY 1",
                )?;
                let rows = stmt.query_map([tenant.as_str()], |r| Ok((r.get::<_, Option<String>>(0)?, r.get::<_, i64>(1)?)))?;
                let mut out = Vec::new();
                for row in rows {
                    let (team, n) = row?;
                    let team = team.map(TeamId::parse).transpose().map_err(StoreError::internal)?;
                    out.push((team, n.max(0) as u64));
                }
                Ok(out)
            })
            .await
    }

    async fn open_count(&self) -> Result<u64, StoreError> {
        self.db
            .read(|c| {
                Ok(c.prepare_cached("SELECT count(*) FROM conversations WHERE status <> 'resolved'")?
                    .query_row([], |r| r.get::<_, i64>(0))?
                    .max(0) as u64)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fts_words_are_quoted() {
        assert_eq!(fts_word("refund"), "\"refund\"*");
        assert_eq!(fts_word("a\"b"), "\"a\"\"b\"*");
    }

    use crate::event::ReadModel;
    use jamuna_domain::conversation::{Channel, ConversationEvent, Feedback};
    use jamuna_domain::{StreamId, UserId};

    fn on_disk(dir: &Path, word: &str) -> Vec<String> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let bytes = std::fs::read(entry.path()).unwrap();
            if bytes.windows(word.len()).any(|w| w == word.as_bytes()) {
                found.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        found
    }

    /// Erased text is gone from every byte of the database and its WAL: the
    /// rows are overwritten, the index entries removed and merged, free pages
    /// zeroed, the WAL truncated.
    #[tokio::test]
    async fn an_erase_leaves_no_text_in_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteConversations::open(dir.path().join("conversations.db")).unwrap();
        let t = TenantId::parse("acme").unwrap();
        let (c, u) = (ConversationId::parse("c1").unwrap(), UserId::parse("u1").unwrap());
        let at = chrono::DateTime::from_timestamp(1_750_000_000, 0).unwrap();
        let conv = |position: u64, event| Opened {
            position,
            stream: StreamId::conversation(&t, &c),
            version: position,
            at,
            fact: Fact::Conversation(event),
        };
        let mut events = vec![conv(
            1,
            ConversationEvent::ConversationStarted {
                tenant: t.clone(),
                conversation_id: c.clone(),
                customer: u.clone(),
                channel: Channel::Web,
            },
        )];
        // Enough messages, in batches, for the index to hold several segments.
        for p in 2..60 {
            let text = Personal::plain(format!("message {p} about the zorblatt fizzwhistle"));
            events.push(conv(
                p,
                ConversationEvent::MessagePosted { author: Author::Customer, text, client_message_id: None, attachments: vec![] },
            ));
        }
        events.push(conv(60, ConversationEvent::ConversationResolved { by: None }));
        let comment = Some(Personal::plain("the quillbrace was dreadful"));
        events.push(conv(61, ConversationEvent::FeedbackGiven { feedback: Feedback::Csat { score: 1, comment } }));
        for chunk in events.chunks(7) {
            let through = chunk.last().unwrap().position;
            db.apply("conversations", chunk.to_vec(), through).await.unwrap();
        }
        for word in ["zorblatt", "fizzwhistle", "quillbrace"] {
            assert!(!on_disk(dir.path(), word).is_empty(), "{word} is on disk before the erase");
        }
        let erased = Opened { position: 62, stream: StreamId::user(&t, &u), version: 2, at, fact: Fact::User(UserEvent::UserErased) };
        db.apply("conversations", vec![erased.clone()], 62).await.unwrap();
        for word in ["zorblatt", "fizzwhistle", "quillbrace"] {
            assert_eq!(on_disk(dir.path(), word), Vec::<String>::new(), "{word} after the erase");
        }
        let found = db.list(&ConversationQuery { text: Some("zorblatt".into()), ..ConversationQuery::inbox(t.clone()) }).await.unwrap();
        assert!(found.items.is_empty(), "erased text is not found");
        // Applying it again (a replay) changes nothing and fails nothing.
        db.apply("conversations", vec![erased], 62).await.unwrap();
    }

    #[test]
    fn times_survive_the_row() {
        let t = chrono::DateTime::from_timestamp_micros(1_750_000_000_123_456).unwrap();
        assert_eq!(from_micros(micros(&t)).unwrap(), t);
    }
}
