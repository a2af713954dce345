//! The users and tenants read model in MongoDB: a document per user
//! (`_id` is the user's stream id) and per tenant (`_id` is the tenant id),
//! each the record's own fields, with the position it reflects. A batch reads
//! the records it touches in one `find` per collection and writes them back
//! in one `insert` and one `update` each ([`Documents`]).

use super::{TenantRecord, UserRecord, UserStore, apply_tenant, apply_user, limit, user_id};
use crate::error::{ProjectionError, StoreError};
use crate::event::{Fact, Interest, Opened, ReadModel};
use crate::mongo::{Documents, MongoReadDb, Write, from_doc, to_doc};
use async_trait::async_trait;
use jamuna_domain::user::Role;
use jamuna_domain::{AggregateKind, StreamId, TenantId, UserId};
use mongodb::IndexModel;
use mongodb::bson::{Document, doc};
use std::collections::HashMap;

pub const USERS: &str = "users";
pub const TENANTS: &str = "tenants";

/// The users and tenants read model in a MongoDB database.
#[derive(Clone)]
pub struct MongoUsers {
    db: MongoReadDb,
    docs: Documents,
}

/// Records being folded, by `_id`: the record, the position it was read at
/// (`None`: not stored) and whether the batch changed it.
type Slots<T> = HashMap<String, (Option<T>, Option<i64>, bool)>;

impl MongoUsers {
    pub async fn new(db: MongoReadDb) -> Result<Self, StoreError> {
        let s = Self { docs: Documents::new(db.clone()), db };
        s.indexes().await?;
        Ok(s)
    }

    async fn indexes(&self) -> Result<(), StoreError> {
        self.db.collection(USERS).create_index(IndexModel::builder().keys(doc! {"tenant": 1, "email": 1}).build()).await?;
        self.db.collection(TENANTS).create_index(IndexModel::builder().keys(doc! {"widget_key": 1}).build()).await?;
        Ok(())
    }

    async fn one<T: serde::de::DeserializeOwned>(
        &self,
        collection: &str,
        filter: Document,
        sort: Document,
    ) -> Result<Option<T>, StoreError> {
        self.db.find_all(collection, filter, sort, Some(1)).await?.into_iter().next().map(from_doc).transpose()
    }

    /// The records of `collection` with these `_id`s, as slots.
    async fn load<T: serde::de::DeserializeOwned + Positioned>(&self, collection: &str, ids: Vec<String>) -> Result<Slots<T>, StoreError> {
        let mut slots = HashMap::new();
        for d in self.docs.load(collection, ids.iter().cloned()).await? {
            let id = d.get_str("_id").map_err(StoreError::internal)?.to_owned();
            let record: T = from_doc(d)?;
            let loaded = Some(record.position() as i64);
            slots.insert(id, (Some(record), loaded, false));
        }
        for id in ids {
            slots.entry(id).or_insert((None, None, false));
        }
        Ok(slots)
    }

    /// Writes the changed records of `slots` to `collection`.
    async fn write<T: serde::Serialize>(&self, collection: &str, slots: Slots<T>) -> Result<(), StoreError> {
        let mut writes = Vec::new();
        for (id, (record, loaded, changed)) in slots {
            if let (true, Some(r)) = (changed, record) {
                let mut doc = to_doc(&r)?;
                doc.insert("_id", &id);
                writes.push(Write { id, loaded, doc });
            }
        }
        self.docs.write(collection, writes).await
    }
}

/// A record that knows the log position it reflects.
trait Positioned {
    fn position(&self) -> u64;
}

impl Positioned for UserRecord {
    fn position(&self) -> u64 {
        self.position
    }
}

impl Positioned for TenantRecord {
    fn position(&self) -> u64 {
        self.position
    }
}

fn role_str(r: Role) -> &'static str {
    match r {
        Role::Customer => "customer",
        Role::Agent => "agent",
        Role::Admin => "admin",
    }
}

#[async_trait]
impl ReadModel for MongoUsers {
    fn interest(&self, kind: AggregateKind, event_type: &str) -> Interest {
        super::interest(kind, event_type)
    }

    async fn checkpoint(&self, projection: &str) -> Result<u64, StoreError> {
        self.db.checkpoint(projection).await
    }

    async fn apply(&self, projection: &str, events: Vec<Opened>, through: u64) -> Result<(), ProjectionError> {
        let mut applied = self.docs.applied(projection).await?;
        if through <= applied {
            return Ok(());
        }
        // Each event once, in order, past the checkpoint.
        let mut fresh = Vec::with_capacity(events.len());
        for e in &events {
            if e.position > applied {
                applied = e.position;
                fresh.push(e);
            }
        }
        // The `_id` of each event's record, read in one go.
        let mut keys = Vec::with_capacity(fresh.len());
        let (mut user_ids, mut tenant_ids) = (Vec::new(), Vec::new());
        for e in &fresh {
            let key = match &e.fact {
                Fact::User(_) => {
                    let key = StreamId::user(e.tenant(), &user_id(e)?).to_string();
                    user_ids.push(key.clone());
                    Some(key)
                }
                Fact::Tenant(_) => {
                    let key = e.tenant().to_string();
                    tenant_ids.push(key.clone());
                    Some(key)
                }
                _ => None,
            };
            keys.push(key);
        }
        let mut users: Slots<UserRecord> = self.load(USERS, user_ids).await?;
        let mut tenants: Slots<TenantRecord> = self.load(TENANTS, tenant_ids).await?;
        for (e, key) in fresh.into_iter().zip(keys) {
            match (&e.fact, key) {
                (Fact::User(event), Some(key)) => {
                    let (record, _, changed) = users.entry(key).or_insert((None, None, false));
                    *changed |= apply_user(record, e, event)?;
                }
                (Fact::Tenant(event), Some(key)) => {
                    let (record, _, changed) = tenants.entry(key).or_insert((None, None, false));
                    *changed |= apply_tenant(record, e, event)?;
                }
                _ => {}
            }
        }
        self.write(USERS, users).await?;
        self.write(TENANTS, tenants).await?;
        self.docs.commit(projection, through).await?;
        Ok(())
    }

    async fn reset(&self, projection: &str) -> Result<(), StoreError> {
        self.docs.reset(projection, &[USERS, TENANTS]).await?;
        self.indexes().await
    }

    /// Drops the model and holds its records in memory until the end; the
    /// indexes are built then.
    async fn begin_rebuild(&self, projection: &str) -> Result<(), StoreError> {
        self.docs.begin_rebuild(projection, &[USERS, TENANTS]).await
    }

    async fn end_rebuild(&self, projection: &str) -> Result<(), StoreError> {
        self.docs.end_rebuild(projection).await?;
        self.indexes().await
    }
}

#[async_trait]
impl UserStore for MongoUsers {
    async fn user(&self, tenant: &TenantId, id: &UserId) -> Result<Option<UserRecord>, StoreError> {
        self.one(USERS, doc! {"_id": StreamId::user(tenant, id).to_string()}, doc! {}).await
    }

    async fn find_by_email(&self, tenant: &TenantId, email: &str) -> Result<Option<UserRecord>, StoreError> {
        self.one(USERS, doc! {"tenant": tenant.as_str(), "email": email.trim().to_lowercase()}, doc! {"position": 1}).await
    }

    async fn users(&self, tenant: &TenantId, role: Option<Role>, after: Option<&UserId>, n: usize) -> Result<Vec<UserRecord>, StoreError> {
        let mut filter = doc! {"tenant": tenant.as_str()};
        if let Some(r) = role {
            filter.insert("role", role_str(r));
        }
        if let Some(a) = after {
            filter.insert("id", doc! {"$gt": a.as_str()});
        }
        self.db.find_all(USERS, filter, doc! {"id": 1}, Some(limit(n) as i64)).await?.into_iter().map(from_doc).collect()
    }

    async fn tenant(&self, id: &TenantId) -> Result<Option<TenantRecord>, StoreError> {
        self.one(TENANTS, doc! {"_id": id.as_str()}, doc! {}).await
    }

    async fn find_tenant_by_widget_key(&self, widget_key: &str) -> Result<Option<TenantRecord>, StoreError> {
        self.one(TENANTS, doc! {"widget_key": widget_key}, doc! {}).await
    }

    async fn tenants(&self) -> Result<Vec<TenantRecord>, StoreError> {
        self.db.find_all(TENANTS, doc! {}, doc! {"_id": 1}, None).await?.into_iter().map(from_doc).collect()
    }
}
