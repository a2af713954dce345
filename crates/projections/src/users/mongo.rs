//! The users and tenants read model in MongoDB: a document per user
//! (`_id` is the user's stream id) and per tenant (`_id` is the tenant id),
//! each the record's own fields, with the position it reflects.

use super::{TenantRecord, UserRecord, UserStore, apply_tenant, apply_user, limit, user_id};
use crate::error::{ProjectionError, StoreError};
use crate::event::{Fact, Interest, Opened, ReadModel};
use crate::mongo::{MongoReadDb, from_doc, to_doc};
use async_trait::async_trait;
use jamuna_domain::user::Role;
use jamuna_domain::{AggregateKind, StreamId, TenantId, UserId};
use mongodb::IndexModel;
use mongodb::bson::{Document, doc};

pub const USERS: &str = "users";
pub const TENANTS: &str = "tenants";

/// The users and tenants read model in a MongoDB database.
#[derive(Clone)]
pub struct MongoUsers {
    db: MongoReadDb,
}

impl MongoUsers {
    pub async fn new(db: MongoReadDb) -> Result<Self, StoreError> {
        let s = Self { db };
        s.indexes().await?;
        Ok(s)
    }

    async fn indexes(&self) -> Result<(), StoreError> {
        self.db.collection(USERS).create_index(IndexModel::builder().keys(doc! {"tenant": 1, "email": 1}).build()).await?;
        self.db.collection(TENANTS).create_index(IndexModel::builder().keys(doc! {"widget_key": 1}).build()).await?;
        Ok(())
    }

    async fn one<T: serde::de::DeserializeOwned>(&self, collection: &str, filter: Document, sort: Document) -> Result<Option<T>, StoreError> {
        self.db.find_all(collection, filter, sort, Some(1)).await?.into_iter().next().map(from_doc).transpose()
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
        let mut applied = self.db.checkpoint(projection).await?;
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
                    let key = StreamId::user(e.tenant(), &user_id(e)?).to_string();
                    let mut record: Option<UserRecord> = self.one(USERS, doc! {"_id": &key}, doc! {}).await?;
                    let loaded = record.as_ref().map(|r| r.position as i64);
                    if apply_user(&mut record, e, event)?
                        && let Some(r) = record
                    {
                        let mut d = to_doc(&r)?;
                        d.insert("_id", &key);
                        self.db.save(USERS, &key, loaded, d).await?;
                    }
                }
                Fact::Tenant(event) => {
                    let key = e.tenant().to_string();
                    let mut record: Option<TenantRecord> = self.one(TENANTS, doc! {"_id": &key}, doc! {}).await?;
                    let loaded = record.as_ref().map(|r| r.position as i64);
                    if apply_tenant(&mut record, e, event)?
                        && let Some(r) = record
                    {
                        let mut d = to_doc(&r)?;
                        d.insert("_id", &key);
                        self.db.save(TENANTS, &key, loaded, d).await?;
                    }
                }
                _ => {}
            }
        }
        self.db.set_checkpoint(projection, through).await?;
        Ok(())
    }

    async fn reset(&self, projection: &str) -> Result<(), StoreError> {
        self.db.reset(projection, &[USERS, TENANTS]).await?;
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
