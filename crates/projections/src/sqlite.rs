//! What the SQLite read models share: a database file of their own (never
//! the event log's), one writer connection, a pool of readers, and the
//! checkpoint table.
//!
//! Read models are rebuildable, so the file runs in WAL mode with
//! `synchronous=NORMAL`: a commit does not wait for an fsync (the WAL is
//! synced at checkpoints). A crash may lose the last commits, but never half
//! of one, and since each commit holds the change *and* its checkpoint, the
//! projector simply re-applies what was lost.
//!
//! Every connection runs with `secure_delete`: what a statement deletes or
//! overwrites is zeroed in the page, so erased personal data does not stay in
//! free space. After an erase, [`scrub`] checkpoints the WAL and truncates
//! it, so the old page images go too.
//!
//! Work runs on tokio's blocking pool; the writer is behind a mutex (one
//! projection writes to a file at a time, each read model has its own file).

use crate::error::StoreError;
use rusqlite::{Connection, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CHECKPOINTS: &str = "CREATE TABLE IF NOT EXISTS checkpoints (projection TEXT PRIMARY KEY, position INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS scrub_pending (id INTEGER PRIMARY KEY CHECK (id = 1));";

/// One read model's SQLite file.
#[derive(Clone)]
pub struct ReadDb {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    schema: &'static str,
    /// Run by [`scrub`] before the WAL is truncated.
    scrub: &'static str,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 128;

fn configure(c: &Connection) -> Result<(), StoreError> {
    c.busy_timeout(Duration::from_secs(10))?;
    // Every statement a read model runs stays prepared: rusqlite's default of 16 is
    // fewer than the conversations model alone uses, and a statement pushed out is
    // parsed and planned again on its next call.
    c.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // A prepared statement stays prepared when a new value is bound: without the
    // planner's stability guarantee, SQLite plans again at every bind of a `LIMIT ?`
    // (see `jamuna_commands::log::sqlite`, where that was 8% of the server's CPU).
    c.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    c.pragma_update(None, "cache_size", -32_000)?; // 32 MB
    c.pragma_update(None, "temp_store", "MEMORY")?;
    c.pragma_update(None, "secure_delete", true)?;
    Ok(())
}

/// Marks the file for a [`scrub`] once the erase in this transaction has
/// committed (in the same transaction, so a crash in between still scrubs:
/// [`ReadDb::open`] and every later batch finish the job).
pub fn request_scrub(c: &Connection) -> Result<(), StoreError> {
    c.prepare_cached("INSERT OR IGNORE INTO scrub_pending (id) VALUES (1)")?.execute([])?;
    Ok(())
}

/// If an erase asked for it ([`request_scrub`]): runs `before` (e.g. merging
/// a full-text index so deleted entries leave its blocks), then copies the
/// WAL into the database and truncates it, so neither the WAL nor free pages
/// keep the erased text. Outside a transaction; idempotent. A reader in the
/// way leaves the mark for the next batch (logged), never an error.
pub fn scrub(c: &Connection, before: &str) -> Result<bool, StoreError> {
    let pending: bool = c.query_row("SELECT EXISTS (SELECT 1 FROM scrub_pending)", [], |r| r.get(0))?;
    if !pending {
        return Ok(false);
    }
    c.execute_batch(before)?;
    let busy: i64 = c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
    if busy != 0 {
        tracing::warn!("a reader kept the write-ahead log from being truncated after an erase; trying again after the next batch");
        return Ok(false);
    }
    // What this leaves in the new WAL is the mark's own page, no text.
    c.execute("DELETE FROM scrub_pending", [])?;
    Ok(true)
}

impl ReadDb {
    /// Opens (or creates) the file at `path` with `schema` (idempotent DDL).
    pub fn open(path: impl AsRef<Path>, schema: &'static str) -> Result<Self, StoreError> {
        Self::open_scrubbed(path, schema, "")
    }

    /// [`open`](Self::open), with the SQL [`scrub`] runs after an erase
    /// (e.g. `INSERT INTO fts(fts) VALUES ('optimize')`); finishes a scrub a
    /// crash left pending.
    pub fn open_scrubbed(path: impl AsRef<Path>, schema: &'static str, scrub_sql: &'static str) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(StoreError::unavailable)?;
        }
        let c = Connection::open(&path)?;
        c.pragma_update(None, "journal_mode", "WAL")?;
        c.pragma_update(None, "synchronous", "NORMAL")?;
        configure(&c)?;
        c.execute_batch(CHECKPOINTS)?;
        c.execute_batch(schema)?;
        scrub(&c, scrub_sql)?;
        Ok(Self { inner: Arc::new(Inner { path, schema, scrub: scrub_sql, writer: Mutex::new(c), readers: Mutex::new(Vec::new()) }) })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` with the writer connection, on the blocking pool.
    pub async fn write<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut c = inner.writer.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut c)
        })
        .await
        .map_err(StoreError::internal)?
    }

    /// Applies a batch of events with `apply_batch` (which also stores the
    /// checkpoint, in its transaction) on the blocking pool, then [`scrub`]s
    /// if the batch erased someone: what every SQLite read model's
    /// `ReadModel::apply` does.
    pub async fn apply(
        &self,
        projection: &str,
        events: Vec<crate::Opened>,
        through: u64,
        apply_batch: fn(&mut Connection, &str, Vec<crate::Opened>, u64) -> Result<(), crate::ProjectionError>,
    ) -> Result<(), crate::ProjectionError> {
        let name = projection.to_owned();
        let db = self.clone();
        let scrub_sql = self.inner.scrub;
        tokio::task::spawn_blocking(move || {
            db.with_writer(|c| {
                apply_batch(c, &name, events, through)?;
                scrub(c, scrub_sql)?;
                Ok(())
            })
        })
        .await
        .map_err(|e| crate::ProjectionError::Store(StoreError::internal(e)))?
    }

    /// Runs `f` with the writer connection on this thread (call it on the
    /// blocking pool).
    pub fn with_writer<R>(&self, f: impl FnOnce(&mut Connection) -> R) -> R {
        let mut c = self.inner.writer.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut c)
    }

    /// Runs `f` with a reader connection, on the blocking pool.
    pub async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let idle = inner.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let c = match idle {
                Some(c) => c,
                None => {
                    let c = Connection::open(&inner.path)?;
                    configure(&c)?;
                    c.pragma_update(None, "query_only", true)?;
                    c
                }
            };
            let r = f(&c);
            inner.readers.lock().unwrap_or_else(|p| p.into_inner()).push(c);
            r
        })
        .await
        .map_err(StoreError::internal)?
    }

    /// The stored checkpoint of `projection`.
    pub async fn checkpoint(&self, projection: &str) -> Result<u64, StoreError> {
        let name = projection.to_owned();
        self.read(move |c| checkpoint(c, &name)).await
    }

    /// Drops the tables named in `drop` and the checkpoint, then recreates the schema.
    pub async fn reset(&self, projection: &str, drop: &'static str) -> Result<(), StoreError> {
        let name = projection.to_owned();
        let schema = self.inner.schema;
        self.write(move |c| {
            let tx = c.transaction()?;
            tx.execute_batch(drop)?;
            tx.execute("DELETE FROM checkpoints WHERE projection = ?1", [&name])?;
            tx.execute_batch(schema)?;
            tx.commit()?;
            Ok(())
        })
        .await?;
        // Give the space back: a rebuild writes everything again anyway.
        self.write(|c| Ok(c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")?)).await
    }
}

pub fn checkpoint(c: &Connection, projection: &str) -> Result<u64, StoreError> {
    let p: Option<i64> =
        c.prepare_cached("SELECT position FROM checkpoints WHERE projection = ?1")?.query_row([projection], |r| r.get(0)).optional()?;
    Ok(p.unwrap_or(0).max(0) as u64)
}

pub fn set_checkpoint(c: &Connection, projection: &str, position: u64) -> Result<(), StoreError> {
    c.prepare_cached("INSERT INTO checkpoints (projection, position) VALUES (?1, ?2) ON CONFLICT (projection) DO UPDATE SET position = excluded.position")?
        .execute(rusqlite::params![projection, position as i64])?;
    Ok(())
}

/// Serialises a value stored as JSON in a column.
pub fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(StoreError::internal)
}

/// Reads a value stored as JSON in a column.
pub fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(StoreError::internal)
}

/// Microseconds since the epoch: how timestamps are stored.
pub fn micros(t: &jamuna_domain::Timestamp) -> i64 {
    t.timestamp_micros()
}

pub fn from_micros(us: i64) -> Result<jamuna_domain::Timestamp, StoreError> {
    chrono::DateTime::from_timestamp_micros(us).ok_or_else(|| StoreError::Internal(format!("timestamp {us} out of range").into()))
}
