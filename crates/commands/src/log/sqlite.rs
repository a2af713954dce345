//! The embedded event log: one SQLite file in WAL mode.
//!
//! **Durability.** `synchronous=FULL` in WAL mode: a commit returns only after
//! the WAL has been fsynced, so an acknowledged append survives `kill -9` and
//! power loss. Speed comes from **group commit** instead of weaker
//! durability: one writer thread owns the write connection, takes every
//! append that is waiting (up to [`MAX_GROUP`]) and commits them in one
//! transaction, one fsync. Each append runs in its own savepoint, so a
//! conflicting append is rolled back alone and the others in its group still
//! commit.
//!
//! **Readers** use their own connections (WAL lets them read while the writer
//! writes) on tokio's blocking pool. Subscribers are woken in-process by the
//! writer after each commit; appends made by another process are noticed by
//! a slow re-check ([`EXTERNAL_WRITER_CHECK`]), which is off the hot path.

use super::{Appended, EventLog, ExpectedVersion, LogError, NewEvent, RecordedEvent, Subscription};
use async_trait::async_trait;
use jamuna_domain::envelope::Envelope;
use jamuna_domain::{EventMeta, StreamId, TenantId, UserId};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde_json::value::RawValue;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc as std_mpsc};
use std::time::Duration;
use tokio::sync::{oneshot, watch};

/// The most appends committed in one transaction.
pub const MAX_GROUP: usize = 512;
/// How often a caught-up subscriber looks for appends made by other processes.
pub const EXTERNAL_WRITER_CHECK: Duration = Duration::from_millis(250);
/// How often the WAL is checkpointed while appends arrive.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);
/// How many events a subscription reads per query while catching up.
const CATCH_UP_BATCH: usize = 512;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    position       INTEGER PRIMARY KEY,
    stream         TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    event_id       BLOB    NOT NULL,
    type           TEXT    NOT NULL,
    schema         INTEGER NOT NULL,
    tenant         TEXT    NOT NULL,
    occurred_at_us INTEGER NOT NULL,
    causation_id   BLOB,
    correlation_id BLOB    NOT NULL,
    subject        TEXT,
    data           TEXT    NOT NULL,
    UNIQUE (stream, version)
);
";

struct WriteRequest {
    stream: StreamId,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
    reply: oneshot::Sender<Result<Appended, LogError>>,
}

/// The SQLite event log. Cheap to share behind an `Arc`.
pub struct SqliteLog {
    writer: std_mpsc::SyncSender<WriteRequest>,
    readers: Arc<Readers>,
    head: watch::Sender<u64>,
}

impl SqliteLog {
    /// Opens (or creates) the log at `path`.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, LogError> {
        let path = path.as_ref().to_path_buf();
        tokio::task::spawn_blocking(move || Self::open_blocking(path)).await.map_err(LogError::internal)?
    }

    fn open_blocking(path: PathBuf) -> Result<Self, LogError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(LogError::unavailable)?;
        }
        let conn = Connection::open(&path).map_err(LogError::unavailable)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(LogError::internal)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(LogError::internal)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(LogError::internal)?;
        conn.execute_batch(SCHEMA).map_err(LogError::internal)?;
        let head: u64 = conn.query_row("SELECT COALESCE(MAX(position), 0) FROM events", [], |r| r.get(0)).map_err(LogError::internal)?;
        // Checkpoints run on their own thread, not in the writer's commits.
        conn.pragma_update(None, "wal_autocheckpoint", 0).map_err(LogError::internal)?;
        let checkpointer = Connection::open(&path).map_err(LogError::unavailable)?;
        checkpointer.busy_timeout(Duration::from_secs(10)).map_err(LogError::internal)?;
        let (head_tx, _) = watch::channel(head);
        let (tx, rx) = std_mpsc::sync_channel::<WriteRequest>(4 * MAX_GROUP);
        let notify = head_tx.clone();
        let watch_head = head_tx.subscribe();
        std::thread::Builder::new()
            .name("jamuna-log-writer".into())
            .spawn(move || writer_loop(conn, rx, notify))
            .map_err(LogError::internal)?;
        std::thread::Builder::new()
            .name("jamuna-log-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpointer, watch_head))
            .map_err(LogError::internal)?;
        Ok(Self { writer: tx, readers: Arc::new(Readers { path, idle: Mutex::new(Vec::new()) }), head: head_tx })
    }

    async fn read<R: Send + 'static>(&self, f: impl FnOnce(&Connection) -> Result<R, LogError> + Send + 'static) -> Result<R, LogError> {
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || readers.with(f)).await.map_err(LogError::internal)?
    }
}

/// Read connections, opened on demand and kept for reuse.
struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    fn with<R>(&self, f: impl FnOnce(&Connection) -> Result<R, LogError>) -> Result<R, LogError> {
        let conn = self.idle.lock().map_err(|_| LogError::Invalid("reader pool poisoned".into()))?.pop();
        let conn = match conn {
            Some(c) => c,
            None => open_reader(&self.path)?,
        };
        let result = f(&conn);
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(conn);
        }
        result
    }
}

/// A connection for reading the log: read-only, and its cached statements
/// stay prepared whatever values are bound to them. Without the planner's
/// stability guarantee, binding the `LIMIT ?` of the reads below marks the
/// cached statement expired, and every read parsed and planned its SQL anew
/// (`sqlite3Reprepare`: 8% of the server's CPU at 50 customers).
fn open_reader(path: &Path) -> Result<Connection, LogError> {
    let c = Connection::open(path).map_err(LogError::unavailable)?;
    c.busy_timeout(Duration::from_secs(10)).map_err(LogError::internal)?;
    c.pragma_update(None, "query_only", true).map_err(LogError::internal)?;
    c.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true).map_err(LogError::internal)?;
    Ok(c)
}

fn writer_loop(mut conn: Connection, rx: std_mpsc::Receiver<WriteRequest>, head: watch::Sender<u64>) {
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(r) => group.push(r),
                Err(_) => break,
            }
        }
        match commit_group(&mut conn, &group) {
            Ok(results) => {
                if let Some(last) = results.iter().filter_map(|r| r.as_ref().ok()).filter(|a| !a.duplicate).map(|a| a.last_position).max() {
                    head.send_if_modified(|h| {
                        let newer = last > *h;
                        if newer {
                            *h = last;
                        }
                        newer
                    });
                }
                for (req, result) in group.into_iter().zip(results) {
                    let _ = req.reply.send(result);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "event log commit failed");
                let msg = e.to_string();
                for req in group {
                    let _ = req.reply.send(Err(LogError::Unavailable(msg.clone().into())));
                }
            }
        }
    }
}

/// Copies the WAL back into the database now and then (PASSIVE: never blocks
/// the writer or readers), so the writer's commits stay short. Ends when the
/// log is dropped.
fn checkpoint_loop(conn: Connection, head: watch::Receiver<u64>) {
    let mut last = *head.borrow();
    loop {
        std::thread::sleep(CHECKPOINT_EVERY);
        if head.has_changed().is_err() {
            return; // the writer is gone
        }
        let now = *head.borrow();
        if now != last {
            last = now;
            if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                tracing::warn!(error = %e, "event log checkpoint failed");
            }
        }
    }
}

/// One transaction for the whole group; a savepoint per append.
fn commit_group(conn: &mut Connection, group: &[WriteRequest]) -> rusqlite::Result<Vec<Result<Appended, LogError>>> {
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut results = Vec::with_capacity(group.len());
    for req in group {
        let sp = tx.savepoint()?;
        match append_one(&sp, req) {
            Ok(a) => {
                sp.commit()?;
                results.push(Ok(a));
            }
            Err(AppendFailure::Refused(e)) => results.push(Err(e)),
            Err(AppendFailure::Sqlite(e)) => return Err(e),
        }
    }
    tx.commit()?;
    Ok(results)
}

enum AppendFailure {
    /// This append is refused; the rest of the group goes on.
    Refused(LogError),
    /// The database failed: the whole group fails.
    Sqlite(rusqlite::Error),
}

impl From<rusqlite::Error> for AppendFailure {
    fn from(e: rusqlite::Error) -> Self {
        AppendFailure::Sqlite(e)
    }
}

fn append_one(conn: &Connection, req: &WriteRequest) -> Result<Appended, AppendFailure> {
    let stream = req.stream.to_string();
    let actual: u64 =
        conn.prepare_cached("SELECT COALESCE(MAX(version), 0) FROM events WHERE stream = ?1")?.query_row([&stream], |r| r.get(0))?;
    // Idempotency: an append that finds its stream past the version it
    // expected may be a retry of one that succeeded: compare event ids.
    let base = match req.expected {
        ExpectedVersion::NoStream => Some(0),
        ExpectedVersion::Exact(v) => Some(v),
        ExpectedVersion::Any => None,
    };
    if let Some(v) = base
        && actual > v
    {
        let mut at = conn.prepare_cached("SELECT position, event_id FROM events WHERE stream = ?1 AND version = ?2")?;
        let stored: Option<(u64, Vec<u8>)> = at.query_row(params![stream, v + 1], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
        if let Some((first_position, id)) = stored
            && id == req.events[0].meta.event_id.as_bytes()
        {
            let n = req.events.len() as u64;
            let last: Option<(u64, Vec<u8>)> = at.query_row(params![stream, v + n], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
            let last_id = req.events[req.events.len() - 1].meta.event_id;
            return match last {
                Some((last_position, id)) if id == last_id.as_bytes() => {
                    Ok(Appended { first_position, last_position, version: v + n, duplicate: true })
                }
                _ => Err(AppendFailure::Refused(LogError::Invalid("a retried append does not match the stored one".into()))),
            };
        }
    }
    if !req.expected.admits(actual) {
        return Err(AppendFailure::Refused(LogError::Conflict { stream, expected: req.expected, actual }));
    }
    let mut insert = conn.prepare_cached(
        "INSERT INTO events (stream, version, event_id, type, schema, tenant, occurred_at_us, causation_id, correlation_id, subject, data)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    let mut first_position = 0;
    let mut version = actual;
    for e in &req.events {
        version += 1;
        insert.execute(params![
            stream,
            version,
            e.meta.event_id.as_bytes(),
            e.event_type,
            e.schema,
            e.meta.tenant.as_str(),
            e.meta.occurred_at.timestamp_micros(),
            e.meta.causation_id.as_ref().map(|c| c.as_bytes().to_vec()),
            e.meta.correlation_id.as_bytes(),
            e.meta.subject.as_ref().map(|s| s.as_str()),
            e.data.get(),
        ])?;
        if first_position == 0 {
            first_position = conn.last_insert_rowid() as u64;
        }
    }
    let last_position = conn.last_insert_rowid() as u64;
    Ok(Appended { first_position, last_position, version, duplicate: false })
}

const SELECT: &str = "SELECT position, stream, version, event_id, type, schema, tenant, occurred_at_us, causation_id, correlation_id, subject, data FROM events";

fn row_to_event(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<RecordedEvent, LogError>> {
    let stream: String = r.get(1)?;
    let event_id: Vec<u8> = r.get(3)?;
    let tenant: String = r.get(6)?;
    let occurred: i64 = r.get(7)?;
    let causation: Option<Vec<u8>> = r.get(8)?;
    let correlation: Vec<u8> = r.get(9)?;
    let subject: Option<String> = r.get(10)?;
    let data: String = r.get(11)?;
    let (position, version, event_type, schema) = (r.get(0)?, r.get(2)?, r.get(4)?, r.get(5)?);
    Ok((|| {
        let corrupt = |what: &str| LogError::Corrupt { position, reason: what.to_owned() };
        let uuid = |b: &[u8]| uuid::Uuid::from_slice(b).map_err(|_| corrupt("bad uuid"));
        Ok(Envelope {
            position,
            stream: StreamId::parse(&stream).map_err(|_| corrupt("bad stream id"))?,
            version,
            meta: EventMeta {
                event_id: uuid(&event_id)?,
                tenant: TenantId::parse(tenant).map_err(|_| corrupt("bad tenant"))?,
                occurred_at: chrono::DateTime::from_timestamp_micros(occurred).ok_or_else(|| corrupt("bad time"))?,
                causation_id: causation.as_deref().map(uuid).transpose()?,
                correlation_id: uuid(&correlation)?,
                subject: subject.map(UserId::parse).transpose().map_err(|_| corrupt("bad subject"))?,
            },
            event_type,
            schema,
            data: RawValue::from_string(data).map_err(|_| corrupt("bad JSON"))?,
        })
    })())
}

fn collect(stmt: &mut rusqlite::Statement<'_>, params: impl rusqlite::Params) -> Result<Vec<RecordedEvent>, LogError> {
    let rows = stmt.query_map(params, row_to_event).map_err(LogError::internal)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(row.map_err(LogError::internal)??);
    }
    Ok(out)
}

fn read_all_blocking(conn: &Connection, after: u64, limit: usize) -> Result<Vec<RecordedEvent>, LogError> {
    let mut stmt = conn.prepare_cached(&format!("{SELECT} WHERE position > ?1 ORDER BY position LIMIT ?2")).map_err(LogError::internal)?;
    collect(&mut stmt, params![after, limit as u64])
}

/// Like [`read_all_blocking`], but the events before a failing one come
/// with its error, so that a subscriber gets them and learns where it broke.
fn read_until_error(conn: &Connection, after: u64, limit: usize) -> (Vec<RecordedEvent>, Option<LogError>) {
    let mut stmt = match conn.prepare_cached(&format!("{SELECT} WHERE position > ?1 ORDER BY position LIMIT ?2")) {
        Ok(s) => s,
        Err(e) => return (Vec::new(), Some(LogError::internal(e))),
    };
    let rows = match stmt.query_map(params![after, limit as u64], row_to_event) {
        Ok(rows) => rows,
        Err(e) => return (Vec::new(), Some(LogError::internal(e))),
    };
    let mut out = Vec::new();
    for row in rows {
        match row.map_err(LogError::internal).and_then(|r| r) {
            Ok(e) => out.push(e),
            Err(e) => return (out, Some(e)),
        }
    }
    (out, None)
}

#[async_trait]
impl EventLog for SqliteLog {
    async fn append(&self, stream: &StreamId, expected: ExpectedVersion, events: Vec<NewEvent>) -> Result<Appended, LogError> {
        super::validate(stream, &events)?;
        let (reply, answer) = oneshot::channel();
        let req = WriteRequest { stream: stream.clone(), expected, events, reply };
        // A full queue means the writer is behind: wait (back-pressure) off the runtime.
        let writer = self.writer.clone();
        match writer.try_send(req) {
            Ok(()) => {}
            Err(std_mpsc::TrySendError::Full(req)) => {
                tokio::task::spawn_blocking(move || writer.send(req))
                    .await
                    .map_err(LogError::internal)?
                    .map_err(|_| LogError::Unavailable("the log writer has stopped".into()))?;
            }
            Err(std_mpsc::TrySendError::Disconnected(_)) => return Err(LogError::Unavailable("the log writer has stopped".into())),
        }
        answer.await.map_err(|_| LogError::Unavailable("the log writer has stopped".into()))?
    }

    async fn read_stream(&self, stream: &StreamId, after_version: u64) -> Result<Vec<RecordedEvent>, LogError> {
        let stream = stream.to_string();
        self.read(move |c| {
            let mut stmt =
                c.prepare_cached(&format!("{SELECT} WHERE stream = ?1 AND version > ?2 ORDER BY version")).map_err(LogError::internal)?;
            collect(&mut stmt, params![stream, after_version])
        })
        .await
    }

    async fn read_all(&self, after_position: u64, limit: usize) -> Result<Vec<RecordedEvent>, LogError> {
        self.read(move |c| read_all_blocking(c, after_position, limit)).await
    }

    async fn head(&self) -> Result<u64, LogError> {
        self.read(|c| {
            c.prepare_cached("SELECT COALESCE(MAX(position), 0) FROM events")
                .and_then(|mut s| s.query_row([], |r| r.get(0)))
                .map_err(LogError::internal)
        })
        .await
    }

    async fn subscribe_all(&self, after_position: u64) -> Result<Subscription, LogError> {
        let readers = self.readers.clone();
        let mut head = self.head.subscribe();
        Ok(Subscription::spawn(move |tx| async move {
            let mut position = after_position;
            loop {
                // Mark the head as seen *before* reading, so an append that
                // lands after the read still wakes us.
                head.borrow_and_update();
                let r = readers.clone();
                let (events, error) =
                    match tokio::task::spawn_blocking(move || r.with(|c| Ok(read_until_error(c, position, CATCH_UP_BATCH)))).await {
                        Ok(Ok(read)) => read,
                        Ok(Err(e)) => (Vec::new(), Some(e)),
                        Err(e) => (Vec::new(), Some(LogError::internal(e))),
                    };
                let idle = events.is_empty() && error.is_none();
                for e in events {
                    position = e.position;
                    if tx.send(Ok(e)).await.is_err() {
                        return;
                    }
                }
                if let Some(e) = error {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
                if idle {
                    tokio::select! {
                        changed = head.changed() => if changed.is_err() { return },
                        _ = tokio::time::sleep(EXTERNAL_WRITER_CHECK) => {}
                    }
                }
            }
        }))
    }
}

/// Writes a row at the end of the log whose envelope does not decode (a
/// stream id that is not one), as a damaged file or a foreign writer would:
/// for tests of what readers do with it. Answers its position.
pub fn append_undecodable(path: &Path) -> Result<u64, LogError> {
    let c = Connection::open(path).map_err(LogError::unavailable)?;
    c.busy_timeout(Duration::from_secs(10)).map_err(LogError::internal)?;
    c.execute(
        "INSERT INTO events (stream, version, event_id, type, schema, tenant, occurred_at_us, causation_id, correlation_id, subject, data)
         VALUES ('not a stream id', 1, x'00', 'Garbage', 1, 'acme', 0, NULL, x'00', NULL, '{}')",
        [],
    )
    .map_err(LogError::internal)?;
    Ok(c.last_insert_rowid() as u64)
}

/// Reads the stored bytes of an event as they are on disk, for tests that
/// check what the log really holds (e.g. that personal data is sealed).
pub fn raw_data_at(path: &Path, position: u64) -> Result<Option<String>, LogError> {
    let c = Connection::open(path).map_err(LogError::unavailable)?;
    c.query_row("SELECT data FROM events WHERE position = ?1", [position], |r| r.get(0)).optional().map_err(LogError::internal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::StatementStatus;

    /// A read binds a new position (and limit) each time; its cached
    /// statement must be reused as it is, not parsed and planned again.
    #[tokio::test]
    async fn reads_reuse_their_prepared_statement() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        SqliteLog::open(&path).await.unwrap();
        let c = open_reader(&path).unwrap();
        for (after, limit) in [(0, 10), (5, 512), (7, 3), (0, 512)] {
            let (events, error) = read_until_error(&c, after, limit);
            assert!(events.is_empty() && error.is_none());
        }
        let sql = format!("{SELECT} WHERE position > ?1 ORDER BY position LIMIT ?2");
        let stmt = c.prepare_cached(&sql).unwrap();
        assert_eq!(stmt.get_status(StatementStatus::RePrepare), 0, "the read was prepared again after a bind");
    }
}
