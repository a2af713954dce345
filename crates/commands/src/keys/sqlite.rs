//! Keys in their own SQLite file, beside (never inside) the event log.
//!
//! `secure_delete` overwrites an erased key's bytes, and the WAL is
//! checkpointed and truncated after an erase, so the key does not linger in
//! free pages or in the write-ahead log.

use super::{DataKey, KeyStore, KeyStoreError};
use async_trait::async_trait;
use jamuna_domain::{TenantId, UserId};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

pub struct SqliteKeyStore {
    conn: Arc<Mutex<Connection>>,
    cache: Mutex<HashMap<(TenantId, UserId), DataKey>>,
}

fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> KeyStoreError {
    KeyStoreError::Unavailable(Box::new(e))
}

impl SqliteKeyStore {
    pub fn open(path: impl AsRef<Path>) -> Result<Self, KeyStoreError> {
        let path = path.as_ref();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(unavailable)?;
        }
        let conn = Connection::open(path).map_err(unavailable)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA secure_delete=ON;
             CREATE TABLE IF NOT EXISTS data_keys (
                tenant  TEXT NOT NULL,
                subject TEXT NOT NULL,
                key     BLOB,            -- NULL once erased
                PRIMARY KEY (tenant, subject)
             );",
        )
        .map_err(unavailable)?;
        Ok(Self { conn: Arc::new(Mutex::new(conn)), cache: Mutex::new(HashMap::new()) })
    }

    fn cached(&self, tenant: &TenantId, subject: &UserId) -> Option<DataKey> {
        self.cache.lock().ok()?.get(&(tenant.clone(), subject.clone())).cloned()
    }

    fn remember(&self, tenant: &TenantId, subject: &UserId, key: &DataKey) {
        if let Ok(mut c) = self.cache.lock() {
            c.insert((tenant.clone(), subject.clone()), key.clone());
        }
    }

    async fn blocking<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<R, KeyStoreError> + Send + 'static,
    ) -> Result<R, KeyStoreError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let c = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&c)
        })
        .await
        .map_err(unavailable)?
    }
}

/// `Some(Some(key))`: a key; `Some(None)`: erased; `None`: never made.
fn lookup(c: &Connection, tenant: &str, subject: &str) -> Result<Option<Option<DataKey>>, KeyStoreError> {
    let row: Option<Option<Vec<u8>>> = c
        .query_row("SELECT key FROM data_keys WHERE tenant = ?1 AND subject = ?2", params![tenant, subject], |r| r.get(0))
        .optional()
        .map_err(unavailable)?;
    Ok(row.map(|k| k.and_then(|bytes| <[u8; 32]>::try_from(bytes.as_slice()).ok()).map(DataKey)))
}

#[async_trait]
impl KeyStore for SqliteKeyStore {
    async fn key_for_sealing(&self, tenant: &TenantId, subject: &UserId) -> Result<DataKey, KeyStoreError> {
        if let Some(k) = self.cached(tenant, subject) {
            return Ok(k);
        }
        let (t, s) = (tenant.to_string(), subject.to_string());
        let who = subject.clone();
        let key = self
            .blocking(move |c| {
                match lookup(c, &t, &s)? {
                    Some(Some(k)) => return Ok(k),
                    Some(None) => return Err(KeyStoreError::Erased(who)),
                    None => {}
                }
                let k = DataKey::random();
                c.execute("INSERT INTO data_keys (tenant, subject, key) VALUES (?1, ?2, ?3)", params![t, s, k.0.as_slice()])
                    .map_err(unavailable)?;
                Ok(k)
            })
            .await?;
        self.remember(tenant, subject, &key);
        Ok(key)
    }

    async fn key_for_opening(&self, tenant: &TenantId, subject: &UserId) -> Result<Option<DataKey>, KeyStoreError> {
        if let Some(k) = self.cached(tenant, subject) {
            return Ok(Some(k));
        }
        let (t, s) = (tenant.to_string(), subject.to_string());
        let key = self.blocking(move |c| Ok(lookup(c, &t, &s)?.flatten())).await?;
        if let Some(k) = &key {
            self.remember(tenant, subject, k);
        }
        Ok(key)
    }

    async fn erase(&self, tenant: &TenantId, subject: &UserId) -> Result<(), KeyStoreError> {
        if let Ok(mut c) = self.cache.lock() {
            c.remove(&(tenant.clone(), subject.clone()));
        }
        let (t, s) = (tenant.to_string(), subject.to_string());
        self.blocking(move |c| {
            c.execute(
                "INSERT INTO data_keys (tenant, subject, key) VALUES (?1, ?2, NULL)
                 ON CONFLICT (tenant, subject) DO UPDATE SET key = NULL",
                params![t, s],
            )
            .map_err(unavailable)?;
            c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);").map_err(unavailable)?;
            Ok(())
        })
        .await
    }
}
