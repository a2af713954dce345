//! Refresh-token hashes in a SQLite file (the embedded mode). SQLite's
//! errors are sorted as the read models sort them (`StoreError:
//! From<rusqlite::Error>`): a busy or locked database is `Unavailable`.

use super::{RefreshRecord, RefreshStore};
use async_trait::async_trait;
use jamuna_domain::{TenantId, UserId};
use jamuna_projections::StoreError;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::{Arc, Mutex};

pub struct SqliteRefreshStore {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteRefreshStore {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(StoreError::internal)?;
        }
        let conn = Connection::open(path)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
             CREATE TABLE IF NOT EXISTS refresh_tokens (
                hash       BLOB PRIMARY KEY,
                user_id    TEXT NOT NULL,
                tenant     TEXT NOT NULL,
                role       TEXT NOT NULL,
                visitor    INTEGER NOT NULL,
                expires_at INTEGER NOT NULL
             );
             CREATE INDEX IF NOT EXISTS refresh_by_user ON refresh_tokens (tenant, user_id);",
        )?;
        Ok(Self { conn: Arc::new(Mutex::new(conn)) })
    }

    async fn with<R: Send + 'static>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static) -> Result<R, StoreError> {
        let conn = self.conn.clone();
        Ok(tokio::task::spawn_blocking(move || f(&conn.lock().unwrap_or_else(|p| p.into_inner())))
            .await
            .map_err(StoreError::internal)??)
    }
}

#[async_trait]
impl RefreshStore for SqliteRefreshStore {
    async fn insert(&self, hash: Vec<u8>, r: RefreshRecord) -> Result<(), StoreError> {
        self.with(move |c| {
            c.execute(
                "INSERT INTO refresh_tokens (hash, user_id, tenant, role, visitor, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![hash, r.user, r.tenant, r.role, r.visitor, r.expires_at],
            )
        })
        .await?;
        Ok(())
    }

    async fn take(&self, hash: Vec<u8>) -> Result<Option<RefreshRecord>, StoreError> {
        self.with(move |c| {
            let row = c
                .query_row("SELECT user_id, tenant, role, visitor, expires_at FROM refresh_tokens WHERE hash = ?1", [&hash], |r| {
                    Ok(RefreshRecord { user: r.get(0)?, tenant: r.get(1)?, role: r.get(2)?, visitor: r.get(3)?, expires_at: r.get(4)? })
                })
                .optional()?;
            c.execute("DELETE FROM refresh_tokens WHERE hash = ?1", [&hash])?;
            Ok(row)
        })
        .await
    }

    async fn delete(&self, hash: Vec<u8>) -> Result<(), StoreError> {
        self.with(move |c| c.execute("DELETE FROM refresh_tokens WHERE hash = ?1", [&hash])).await?;
        Ok(())
    }

    async fn delete_user(&self, tenant: &TenantId, user: &UserId) -> Result<(), StoreError> {
        let (t, u) = (tenant.to_string(), user.to_string());
        self.with(move |c| c.execute("DELETE FROM refresh_tokens WHERE tenant = ?1 AND user_id = ?2", [&t, &u])).await?;
        Ok(())
    }
}
