//! The gaps read model in SQLite (`<data>/read/gaps.db`): a row per tenant
//! holding its groups as JSON, and a row per conversation holding its memo.
//! A batch is one transaction with the checkpoint; after an erase the file
//! is scrubbed ([`crate::sqlite::scrub`]).

use super::{ConversationMemo, GapStore, GapWrites, TenantGaps};
use crate::error::StoreError;
use crate::sqlite::{ReadDb, checkpoint, from_json, request_scrub, scrub, set_checkpoint, to_json};
use async_trait::async_trait;
use jamuna_domain::{ConversationId, TenantId, UserId};
use rusqlite::{OptionalExtension, params};
use std::path::Path;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS gap_tenants (
    tenant   TEXT    PRIMARY KEY,
    position INTEGER NOT NULL,
    doc      TEXT    NOT NULL  -- JSON TenantGaps
);
CREATE TABLE IF NOT EXISTS gap_memos (
    tenant   TEXT    NOT NULL,
    id       TEXT    NOT NULL,
    customer TEXT    NOT NULL,
    position INTEGER NOT NULL,
    doc      TEXT    NOT NULL,  -- JSON ConversationMemo
    PRIMARY KEY (tenant, id)
);
CREATE INDEX IF NOT EXISTS gap_memos_by_customer ON gap_memos (tenant, customer);
";

const DROP: &str = "DROP TABLE IF EXISTS gap_tenants; DROP TABLE IF EXISTS gap_memos;";

/// The gaps read model in a SQLite file.
#[derive(Clone)]
pub struct SqliteGaps {
    db: ReadDb,
}

impl SqliteGaps {
    /// Opens (or creates) the read model at `path`, e.g. `<data>/read/gaps.db`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Ok(Self { db: ReadDb::open(path, SCHEMA)? })
    }

    /// Where the file is (tests scan it for erased words).
    pub fn path(&self) -> &Path {
        self.db.path()
    }
}

fn memo_rows(c: &rusqlite::Connection, sql: &str, args: &[&str]) -> Result<Vec<ConversationMemo>, StoreError> {
    let mut out = Vec::new();
    let mut stmt = c.prepare_cached(sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        let (doc, position) = row?;
        let mut m: ConversationMemo = from_json(&doc)?;
        m.loaded = Some(position.max(0) as u64);
        out.push(m);
    }
    Ok(out)
}

#[async_trait]
impl GapStore for SqliteGaps {
    async fn checkpoint(&self, projection: &str) -> Result<u64, StoreError> {
        self.db.checkpoint(projection).await
    }

    async fn tenants(&self, tenants: Vec<TenantId>) -> Result<Vec<TenantGaps>, StoreError> {
        self.db
            .read(move |c| {
                let mut out = Vec::new();
                let mut stmt = c.prepare_cached("SELECT doc, position FROM gap_tenants WHERE tenant = ?1")?;
                for t in tenants {
                    let row: Option<(String, i64)> = stmt.query_row([t.as_str()], |r| Ok((r.get(0)?, r.get(1)?))).optional()?;
                    if let Some((doc, position)) = row {
                        let mut g: TenantGaps = from_json(&doc)?;
                        g.loaded = Some(position.max(0) as u64);
                        out.push(g);
                    }
                }
                Ok(out)
            })
            .await
    }

    async fn memos(&self, keys: Vec<(TenantId, ConversationId)>) -> Result<Vec<ConversationMemo>, StoreError> {
        self.db
            .read(move |c| {
                let mut out = Vec::new();
                for (t, id) in keys {
                    out.extend(memo_rows(
                        c,
                        "SELECT doc, position FROM gap_memos WHERE tenant = ?1 AND id = ?2",
                        &[t.as_str(), id.as_str()],
                    )?);
                }
                Ok(out)
            })
            .await
    }

    async fn memos_of(&self, tenant: &TenantId, customer: &UserId) -> Result<Vec<ConversationMemo>, StoreError> {
        let (t, u) = (tenant.to_string(), customer.to_string());
        self.db.read(move |c| memo_rows(c, "SELECT doc, position FROM gap_memos WHERE tenant = ?1 AND customer = ?2", &[&t, &u])).await
    }

    async fn write(&self, projection: &str, writes: GapWrites, through: u64) -> Result<(), StoreError> {
        let name = projection.to_owned();
        self.db
            .write(move |c| {
                let tx = c.transaction()?;
                if through <= checkpoint(&tx, &name)? {
                    return Ok(());
                }
                for t in &writes.tenants {
                    tx.prepare_cached(
                        "INSERT INTO gap_tenants (tenant, position, doc) VALUES (?1, ?2, ?3)
                         ON CONFLICT (tenant) DO UPDATE SET position = excluded.position, doc = excluded.doc",
                    )?
                    .execute(params![t.tenant.as_str(), t.position as i64, to_json(t)?])?;
                }
                for m in &writes.memos {
                    tx.prepare_cached(
                        "INSERT INTO gap_memos (tenant, id, customer, position, doc) VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT (tenant, id) DO UPDATE SET position = excluded.position, doc = excluded.doc",
                    )?
                    .execute(params![
                        m.tenant.as_str(),
                        m.conversation_id.as_str(),
                        m.customer.as_str(),
                        m.position as i64,
                        to_json(m)?
                    ])?;
                }
                if writes.erased {
                    request_scrub(&tx)?;
                }
                set_checkpoint(&tx, &name, through)?;
                tx.commit()?;
                scrub(c, "")?;
                Ok(())
            })
            .await
    }

    async fn reset(&self, projection: &str) -> Result<(), StoreError> {
        self.db.reset(projection, DROP).await
    }
}
