//! Refresh-token families in a SQLite file (the embedded mode): a
//! `refresh_families` row per family (its owner, newest token, whether it is
//! revoked, its times) and a `refresh_family_tokens` row per token it ever
//! had (hash → family), so a used token is recognised. One connection behind
//! a mutex and a transaction per operation make a rotation atomic.
//!
//! Installs from before families had one `refresh_tokens` table; opening the
//! file moves each of its tokens into a family of its own and drops it, so
//! nobody is signed out by the upgrade.
//!
//! SQLite's errors are sorted as the read models sort them (`StoreError:
//! From<rusqlite::Error>`): a busy or locked database is `Unavailable`.

use super::{FamilyRecord, RefreshStore, Rotation};
use async_trait::async_trait;
use jamuna_domain::{TenantId, UserId};
use jamuna_projections::StoreError;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::{Arc, Mutex};

pub struct SqliteRefreshStore {
    conn: Arc<Mutex<Connection>>,
}

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS refresh_families (
        family     TEXT PRIMARY KEY,
        user_id    TEXT NOT NULL,
        tenant     TEXT NOT NULL,
        role       TEXT NOT NULL,
        visitor    INTEGER NOT NULL,
        head       BLOB NOT NULL,
        revoked    INTEGER NOT NULL DEFAULT 0,
        issued_at  INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS refresh_families_by_user ON refresh_families (tenant, user_id);
    CREATE TABLE IF NOT EXISTS refresh_family_tokens (
        hash   BLOB PRIMARY KEY,
        family TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS refresh_family_tokens_by_family ON refresh_family_tokens (family);";

/// Moves the tokens of the table from before families into families of their own.
const MIGRATE_V1: &str = "
    INSERT OR IGNORE INTO refresh_families (family, user_id, tenant, role, visitor, head, issued_at, expires_at)
        SELECT lower(hex(hash)), user_id, tenant, role, visitor, hash, CAST(strftime('%s', 'now') AS INTEGER), expires_at
        FROM refresh_tokens;
    INSERT OR IGNORE INTO refresh_family_tokens (hash, family) SELECT hash, lower(hex(hash)) FROM refresh_tokens;
    DROP TABLE refresh_tokens;";

impl SqliteRefreshStore {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(StoreError::internal)?;
        }
        let mut conn = Connection::open(path)?;
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")?;
        let tx = conn.transaction()?;
        tx.execute_batch(SCHEMA)?;
        let legacy: bool =
            tx.query_row("SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'refresh_tokens')", [], |r| r.get(0))?;
        if legacy {
            tx.execute_batch(MIGRATE_V1)?;
        }
        tx.commit()?;
        Ok(Self { conn: Arc::new(Mutex::new(conn)) })
    }

    async fn with<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<R> + Send + 'static,
    ) -> Result<R, StoreError> {
        let conn = self.conn.clone();
        Ok(tokio::task::spawn_blocking(move || f(&mut conn.lock().unwrap_or_else(|p| p.into_inner())))
            .await
            .map_err(StoreError::internal)??)
    }
}

fn family_of(c: &Connection, hash: &[u8]) -> rusqlite::Result<Option<String>> {
    c.query_row("SELECT family FROM refresh_family_tokens WHERE hash = ?1", [hash], |r| r.get(0)).optional()
}

fn revoke(c: &Connection, family: &str) -> rusqlite::Result<()> {
    c.execute("UPDATE refresh_families SET revoked = 1 WHERE family = ?1", [family])?;
    c.execute("DELETE FROM refresh_family_tokens WHERE family = ?1", [family])?;
    Ok(())
}

#[async_trait]
impl RefreshStore for SqliteRefreshStore {
    async fn start(&self, hash: Vec<u8>, f: FamilyRecord) -> Result<(), StoreError> {
        self.with(move |c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO refresh_families (family, user_id, tenant, role, visitor, head, issued_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![f.family, f.user, f.tenant, f.role, f.visitor, hash, f.issued_at, f.expires_at],
            )?;
            tx.execute("INSERT INTO refresh_family_tokens (hash, family) VALUES (?1, ?2)", params![hash, f.family])?;
            tx.commit()
        })
        .await
    }

    async fn rotate(&self, old: Vec<u8>, new: Vec<u8>, now: i64, expires_at: i64) -> Result<Rotation, StoreError> {
        self.with(move |c| {
            let tx = c.transaction()?;
            let Some(family) = family_of(&tx, &old)? else { return Ok(Rotation::Invalid) };
            let row = tx
                .query_row(
                    "SELECT user_id, tenant, role, visitor, head, revoked, expires_at FROM refresh_families WHERE family = ?1",
                    [&family],
                    |r| {
                        let rec = FamilyRecord {
                            family: family.clone(),
                            user: r.get(0)?,
                            tenant: r.get(1)?,
                            role: r.get(2)?,
                            visitor: r.get(3)?,
                            issued_at: now,
                            expires_at: r.get(6)?,
                        };
                        Ok((rec, r.get::<_, Vec<u8>>(4)?, r.get::<_, bool>(5)?))
                    },
                )
                .optional()?;
            let outcome = match row {
                None => Rotation::Invalid,
                Some((_, _, true)) => Rotation::Invalid,
                Some((_, head, false)) if head != old => {
                    revoke(&tx, &family)?;
                    Rotation::Reused
                }
                Some((rec, _, false)) if rec.expires_at < now => Rotation::Invalid,
                Some((rec, _, false)) => {
                    tx.execute(
                        "UPDATE refresh_families SET head = ?2, issued_at = ?3, expires_at = ?4 WHERE family = ?1",
                        params![family, new, now, expires_at],
                    )?;
                    tx.execute("INSERT INTO refresh_family_tokens (hash, family) VALUES (?1, ?2)", params![new, family])?;
                    Rotation::Rotated(FamilyRecord { expires_at, ..rec })
                }
            };
            tx.commit()?;
            Ok(outcome)
        })
        .await
    }

    async fn revoke_family_of(&self, hash: Vec<u8>) -> Result<(), StoreError> {
        self.with(move |c| {
            let tx = c.transaction()?;
            if let Some(family) = family_of(&tx, &hash)? {
                revoke(&tx, &family)?;
            }
            tx.commit()
        })
        .await
    }

    async fn delete_user(&self, tenant: &TenantId, user: &UserId) -> Result<(), StoreError> {
        let (t, u) = (tenant.to_string(), user.to_string());
        self.with(move |c| {
            let tx = c.transaction()?;
            tx.execute(
                "DELETE FROM refresh_family_tokens WHERE family IN (SELECT family FROM refresh_families WHERE tenant = ?1 AND user_id = ?2)",
                [&t, &u],
            )?;
            tx.execute("DELETE FROM refresh_families WHERE tenant = ?1 AND user_id = ?2", [&t, &u])?;
            tx.commit()
        })
        .await
    }

    async fn idle_visitors(&self, before: i64) -> Result<Vec<(String, String)>, StoreError> {
        self.with(move |c| {
            let mut q = c.prepare(
                "SELECT tenant, user_id FROM refresh_families WHERE visitor = 1
                 GROUP BY tenant, user_id HAVING MAX(issued_at) < ?1 ORDER BY tenant, user_id",
            )?;
            q.query_map([before], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
        })
        .await
    }

    async fn purge_expired(&self, now: i64, visitors: bool) -> Result<(), StoreError> {
        self.with(move |c| {
            let tx = c.transaction()?;
            tx.execute("DELETE FROM refresh_families WHERE expires_at < ?1 AND (visitor = 0 OR ?2)", params![now, visitors])?;
            tx.execute(
                "DELETE FROM refresh_family_tokens WHERE family NOT IN (SELECT family FROM refresh_families)
                 OR family IN (SELECT family FROM refresh_families WHERE expires_at < ?1)",
                [now],
            )?;
            tx.commit()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::refresh::RefreshTokens;
    use std::time::Duration;

    /// A `sessions.db` from before families keeps its tokens working.
    #[tokio::test]
    async fn tokens_from_before_families_still_redeem_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessions.db");
        let old = Connection::open(&path).unwrap();
        old.execute_batch(
            "CREATE TABLE refresh_tokens (hash BLOB PRIMARY KEY, user_id TEXT NOT NULL, tenant TEXT NOT NULL,
                role TEXT NOT NULL, visitor INTEGER NOT NULL, expires_at INTEGER NOT NULL);",
        )
        .unwrap();
        let token = "an-old-token";
        let hash = super::super::hash(token);
        let later = chrono::Utc::now().timestamp() + 3600;
        old.execute("INSERT INTO refresh_tokens VALUES (?1, 'u', 't', 'agent', 0, ?2)", params![hash, later]).unwrap();
        drop(old);

        let tokens = RefreshTokens::new(Arc::new(SqliteRefreshStore::open(&path).unwrap()), Duration::from_secs(60));
        let (caller, next) = tokens.rotate(token).await.expect("the old token redeems");
        assert_eq!((caller.user.as_str(), caller.tenant.as_str()), ("u", "t"));
        assert!(tokens.rotate(token).await.is_err(), "once");
        assert!(tokens.rotate(&next).await.is_err(), "and its replay revoked the family it now has");
        drop(tokens);
        SqliteRefreshStore::open(&path).expect("opening a migrated file again");
    }
}
