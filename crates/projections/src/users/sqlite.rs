//! The users and tenants read model in SQLite: a row per user and per
//! tenant, the record as JSON beside the columns the look-ups use.
//!
//! An erase overwrites the record (name, e-mail and password hash gone) with
//! `secure_delete` on, then truncates the WAL ([`crate::sqlite::scrub`]), so
//! the old values stay neither in free space nor in the log of pages.

use super::{TenantRecord, UserRecord, UserStore, apply_tenant, apply_user, limit, user_id};
use crate::error::{ProjectionError, StoreError};
use crate::event::{Fact, Interest, Opened, ReadModel};
use crate::sqlite::{ReadDb, checkpoint, from_json, request_scrub, set_checkpoint, to_json};
use async_trait::async_trait;
use jamuna_domain::user::{Role, UserEvent};
use jamuna_domain::{AggregateKind, TenantId, UserId};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    tenant   TEXT    NOT NULL,
    id       TEXT    NOT NULL,
    role     TEXT    NOT NULL,
    email    TEXT,
    position INTEGER NOT NULL,
    record   TEXT    NOT NULL,  -- JSON UserRecord
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS users_by_email ON users (tenant, email, position);
CREATE TABLE IF NOT EXISTS tenants (
    id         TEXT    PRIMARY KEY,
    widget_key TEXT    NOT NULL,
    position   INTEGER NOT NULL,
    record     TEXT    NOT NULL  -- JSON TenantRecord
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tenants_by_widget_key ON tenants (widget_key);
";

const DROP: &str = "DROP TABLE IF EXISTS users; DROP TABLE IF EXISTS tenants;";

/// The users and tenants read model in a SQLite file.
#[derive(Clone)]
pub struct SqliteUsers {
    db: ReadDb,
}

impl SqliteUsers {
    /// Opens (or creates) the read model at `path`, e.g. `<data>/read/users.db`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Ok(Self { db: ReadDb::open(path, SCHEMA)? })
    }
}

fn role_str(r: Role) -> &'static str {
    match r {
        Role::Customer => "customer",
        Role::Agent => "agent",
        Role::Admin => "admin",
    }
}

fn load_user(c: &Connection, tenant: &str, id: &str) -> Result<Option<UserRecord>, StoreError> {
    let json: Option<String> = c
        .prepare_cached("SELECT record FROM users WHERE tenant = ?1 AND id = ?2")?
        .query_row(params![tenant, id], |r| r.get(0))
        .optional()?;
    json.map(|j| from_json(&j)).transpose()
}

fn load_tenant(c: &Connection, id: &str) -> Result<Option<TenantRecord>, StoreError> {
    let json: Option<String> = c.prepare_cached("SELECT record FROM tenants WHERE id = ?1")?.query_row([id], |r| r.get(0)).optional()?;
    json.map(|j| from_json(&j)).transpose()
}

fn apply_batch(c: &mut Connection, projection: &str, events: Vec<Opened>, through: u64) -> Result<(), ProjectionError> {
    let tx = c.transaction()?;
    let mut applied = checkpoint(&tx, projection)?;
    if through <= applied {
        return Ok(());
    }
    for e in &events {
        if e.position <= applied {
            continue;
        }
        applied = e.position;
        match &e.fact {
            Fact::User(event) => {
                if matches!(event, UserEvent::UserErased) {
                    request_scrub(&tx)?;
                }
                let id = user_id(e)?;
                let mut record = load_user(&tx, e.tenant().as_str(), id.as_str())?;
                if apply_user(&mut record, e, event)?
                    && let Some(r) = record
                {
                    tx.prepare_cached(
                        "INSERT INTO users (tenant, id, role, email, position, record) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                         ON CONFLICT (tenant, id) DO UPDATE SET role = excluded.role, email = excluded.email, position = excluded.position, record = excluded.record",
                    )?
                    .execute(params![r.tenant.as_str(), r.id.as_str(), role_str(r.role), r.email, r.position as i64, to_json(&r)?])?;
                }
            }
            Fact::Tenant(event) => {
                let mut record = load_tenant(&tx, e.tenant().as_str())?;
                if apply_tenant(&mut record, e, event)?
                    && let Some(r) = record
                {
                    tx.prepare_cached(
                        "INSERT INTO tenants (id, widget_key, position, record) VALUES (?1, ?2, ?3, ?4)
                         ON CONFLICT (id) DO UPDATE SET widget_key = excluded.widget_key, position = excluded.position, record = excluded.record",
                    )?
                    .execute(params![r.id.as_str(), r.widget_key, r.position as i64, to_json(&r)?])?;
                }
            }
            _ => {}
        }
    }
    set_checkpoint(&tx, projection, through)?;
    tx.commit()?;
    Ok(())
}

fn records<T: serde::de::DeserializeOwned>(
    stmt: &mut rusqlite::Statement<'_>,
    params: impl rusqlite::Params,
) -> Result<Vec<T>, StoreError> {
    let rows = stmt.query_map(params, |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for row in rows {
        out.push(from_json(&row?)?);
    }
    Ok(out)
}

#[async_trait]
impl ReadModel for SqliteUsers {
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
impl UserStore for SqliteUsers {
    async fn user(&self, tenant: &TenantId, id: &UserId) -> Result<Option<UserRecord>, StoreError> {
        let (t, i) = (tenant.to_string(), id.to_string());
        self.db.read(move |c| load_user(c, &t, &i)).await
    }

    async fn find_by_email(&self, tenant: &TenantId, email: &str) -> Result<Option<UserRecord>, StoreError> {
        let (t, e) = (tenant.to_string(), email.trim().to_lowercase());
        self.db
            .read(move |c| {
                let mut stmt = c.prepare_cached("SELECT record FROM users WHERE tenant = ?1 AND email = ?2 ORDER BY position LIMIT 1")?;
                Ok(records::<UserRecord>(&mut stmt, params![t, e])?.into_iter().next())
            })
            .await
    }

    async fn users(&self, tenant: &TenantId, role: Option<Role>, after: Option<&UserId>, n: usize) -> Result<Vec<UserRecord>, StoreError> {
        let (t, role, after, n) =
            (tenant.to_string(), role.map(role_str), after.map(|a| a.to_string()).unwrap_or_default(), limit(n) as i64);
        self.db
            .read(move |c| {
                let mut stmt = c.prepare_cached(
                    "SELECT record FROM users WHERE tenant = ?1 AND (?2 IS NULL OR role = ?2) AND id > ?3 ORDER BY id LIMIT ?4",
                )?;
                records(&mut stmt, params![t, role, after, n])
            })
            .await
    }

    async fn tenant(&self, id: &TenantId) -> Result<Option<TenantRecord>, StoreError> {
        let id = id.to_string();
        self.db.read(move |c| load_tenant(c, &id)).await
    }

    async fn find_tenant_by_widget_key(&self, widget_key: &str) -> Result<Option<TenantRecord>, StoreError> {
        let key = widget_key.to_owned();
        self.db
            .read(move |c| {
                let mut stmt = c.prepare_cached("SELECT record FROM tenants WHERE widget_key = ?1 LIMIT 1")?;
                Ok(records::<TenantRecord>(&mut stmt, [key])?.into_iter().next())
            })
            .await
    }

    async fn tenants(&self) -> Result<Vec<TenantRecord>, StoreError> {
        self.db
            .read(|c| {
                let mut stmt = c.prepare_cached("SELECT record FROM tenants ORDER BY id")?;
                records(&mut stmt, [])
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jamuna_domain::{Personal, StreamId};

    /// An erased user's name, e-mail and password hash are in no byte of the
    /// database or its WAL.
    #[tokio::test]
    async fn an_erase_leaves_no_name_or_email_in_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteUsers::open(dir.path().join("users.db")).unwrap();
        let (t, u) = (TenantId::parse("acme").unwrap(), UserId::parse("u1").unwrap());
        let at = chrono::DateTime::from_timestamp(1_750_000_000, 0).unwrap();
        let ev = |position: u64, event| Opened { position, stream: StreamId::user(&t, &u), version: position, at, fact: Fact::User(event) };
        let registered = UserEvent::UserRegistered {
            tenant: t.clone(),
            user_id: u.clone(),
            role: Role::Customer,
            name: Some(Personal::plain("Wendeline Snorgrass")),
            email: Some(Personal::plain("wendeline@snorgrass.example")),
            password_hash: Some(Personal::plain("$argon2id$hashhashhash")),
        };
        db.apply("users", vec![ev(1, registered)], 1).await.unwrap();
        let words = ["Snorgrass", "snorgrass.example", "hashhashhash"];
        let on_disk = |word: &str| {
            std::fs::read_dir(dir.path())
                .unwrap()
                .flatten()
                .filter(|e| std::fs::read(e.path()).unwrap().windows(word.len()).any(|w| w == word.as_bytes()))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        };
        assert!(words.iter().all(|w| !on_disk(w).is_empty()), "on disk before the erase");
        db.apply("users", vec![ev(2, UserEvent::UserErased)], 2).await.unwrap();
        for w in words {
            assert_eq!(on_disk(w), Vec::<String>::new(), "{w} after the erase");
        }
        let r = db.user(&t, &u).await.unwrap().unwrap();
        assert!(r.erased && r.name.is_none() && r.email.is_none());
    }
}
