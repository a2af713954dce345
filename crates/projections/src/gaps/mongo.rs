//! The gaps read model in MongoDB: a document per tenant (`gap_tenants`, its
//! groups) and a memo per conversation (`gap_memos`), read and written a
//! batch at a time through [`Documents`]. Without transactions the tenants'
//! documents are written first, then the memos, then the checkpoint; every
//! document carries the position of the last event that changed it and the
//! fold skips events at or below it (see [`super`]), so a batch re-applied
//! after a crash counts nothing twice.

use super::{ConversationMemo, GapStore, GapWrites, TenantGaps};
use crate::error::StoreError;
use crate::mongo::{Documents, MongoReadDb, Write, from_doc, to_doc};
use async_trait::async_trait;
use jamuna_domain::{ConversationId, TenantId, UserId};
use mongodb::IndexModel;
use mongodb::bson::{Document, doc};

pub const TENANTS: &str = "gap_tenants";
pub const MEMOS: &str = "gap_memos";

/// The gaps read model in a MongoDB database.
#[derive(Clone)]
pub struct MongoGaps {
    db: MongoReadDb,
    docs: Documents,
}

impl MongoGaps {
    pub async fn new(db: MongoReadDb) -> Result<Self, StoreError> {
        let s = Self { docs: Documents::new(db.clone()), db };
        s.indexes().await?;
        Ok(s)
    }

    async fn indexes(&self) -> Result<(), StoreError> {
        self.db.collection(MEMOS).create_index(IndexModel::builder().keys(doc! {"tenant": 1, "customer": 1}).build()).await?;
        Ok(())
    }
}

fn memo_id(tenant: &TenantId, id: &ConversationId) -> String {
    format!("{tenant}/{id}")
}

fn memo(d: Document) -> Result<ConversationMemo, StoreError> {
    let mut m: ConversationMemo = from_doc(d)?;
    m.loaded = Some(m.position);
    Ok(m)
}

#[async_trait]
impl GapStore for MongoGaps {
    async fn checkpoint(&self, projection: &str) -> Result<u64, StoreError> {
        self.docs.applied(projection).await
    }

    async fn tenants(&self, tenants: Vec<TenantId>) -> Result<Vec<TenantGaps>, StoreError> {
        let mut out = Vec::new();
        for d in self.docs.load(TENANTS, tenants.iter().map(ToString::to_string)).await? {
            let mut t: TenantGaps = from_doc(d)?;
            t.loaded = Some(t.position);
            out.push(t);
        }
        Ok(out)
    }

    async fn memos(&self, keys: Vec<(TenantId, ConversationId)>) -> Result<Vec<ConversationMemo>, StoreError> {
        self.docs.load(MEMOS, keys.iter().map(|(t, c)| memo_id(t, c))).await?.into_iter().map(memo).collect()
    }

    async fn memos_of(&self, tenant: &TenantId, customer: &UserId) -> Result<Vec<ConversationMemo>, StoreError> {
        self.docs.load_where(MEMOS, &[("tenant", tenant.as_str()), ("customer", customer.as_str())]).await?.into_iter().map(memo).collect()
    }

    async fn write(&self, projection: &str, writes: GapWrites, through: u64) -> Result<(), StoreError> {
        if through <= self.docs.applied(projection).await? {
            return Ok(());
        }
        let mut tenants = Vec::new();
        for t in &writes.tenants {
            let mut d = to_doc(t)?;
            d.insert("_id", t.tenant.as_str());
            tenants.push(Write { id: t.tenant.to_string(), loaded: t.loaded.map(|p| p as i64), doc: d });
        }
        self.docs.write(TENANTS, tenants).await?;
        let mut memos = Vec::new();
        for m in &writes.memos {
            let id = memo_id(&m.tenant, &m.conversation_id);
            let mut d = to_doc(m)?;
            d.insert("_id", &id);
            memos.push(Write { id, loaded: m.loaded.map(|p| p as i64), doc: d });
        }
        self.docs.write(MEMOS, memos).await?;
        self.docs.commit(projection, through).await
    }

    async fn reset(&self, projection: &str) -> Result<(), StoreError> {
        self.docs.reset(projection, &[TENANTS, MEMOS]).await?;
        self.indexes().await
    }

    async fn begin_rebuild(&self, projection: &str) -> Result<(), StoreError> {
        self.docs.begin_rebuild(projection, &[TENANTS, MEMOS]).await
    }

    async fn end_rebuild(&self, projection: &str) -> Result<(), StoreError> {
        self.docs.end_rebuild(projection).await?;
        self.indexes().await
    }
}
