//! Refresh-token hashes in a MongoDB (or FerretDB) `refresh_tokens`
//! collection that every gateway replica shares. Redeeming is one
//! `findOneAndDelete`, so two replicas cannot both redeem the same token.

use super::{RefreshRecord, RefreshStore};
use crate::error::ApiError;
use async_trait::async_trait;
use jamuna_domain::{TenantId, UserId};
use mongodb::bson::{Binary, Document, doc, spec::BinarySubtype};
use mongodb::{Client, Collection};

pub const COLLECTION: &str = "refresh_tokens";

pub struct MongoRefreshStore {
    tokens: Collection<Document>,
}

fn id(hash: Vec<u8>) -> Binary {
    Binary { subtype: BinarySubtype::Generic, bytes: hash }
}

impl MongoRefreshStore {
    pub async fn connect(url: &str, database: &str) -> Result<Self, ApiError> {
        let client = Client::with_uri_str(url).await.map_err(|e| ApiError::Unavailable(Box::new(e)))?;
        let db = client.database(database);
        db.run_command(doc! {"ping": 1}).await.map_err(|e| ApiError::Unavailable(Box::new(e)))?;
        Ok(Self { tokens: db.collection(COLLECTION) })
    }
}

fn unavailable(e: mongodb::error::Error) -> ApiError {
    ApiError::Unavailable(Box::new(e))
}

#[async_trait]
impl RefreshStore for MongoRefreshStore {
    async fn insert(&self, hash: Vec<u8>, r: RefreshRecord) -> Result<(), ApiError> {
        let d =
            doc! {"_id": id(hash), "user_id": r.user, "tenant": r.tenant, "role": r.role, "visitor": r.visitor, "expires_at": r.expires_at};
        self.tokens.insert_one(d).await.map_err(unavailable)?;
        Ok(())
    }

    async fn take(&self, hash: Vec<u8>) -> Result<Option<RefreshRecord>, ApiError> {
        let Some(d) = self.tokens.find_one_and_delete(doc! {"_id": id(hash)}).await.map_err(unavailable)? else {
            return Ok(None);
        };
        let text = |k: &str| d.get_str(k).map(str::to_owned).map_err(ApiError::internal);
        Ok(Some(RefreshRecord {
            user: text("user_id")?,
            tenant: text("tenant")?,
            role: text("role")?,
            visitor: d.get_bool("visitor").map_err(ApiError::internal)?,
            expires_at: d.get_i64("expires_at").map_err(ApiError::internal)?,
        }))
    }

    async fn delete(&self, hash: Vec<u8>) -> Result<(), ApiError> {
        self.tokens.delete_one(doc! {"_id": id(hash)}).await.map_err(unavailable)?;
        Ok(())
    }

    async fn delete_user(&self, tenant: &TenantId, user: &UserId) -> Result<(), ApiError> {
        self.tokens.delete_many(doc! {"tenant": tenant.as_str(), "user_id": user.as_str()}).await.map_err(unavailable)?;
        Ok(())
    }
}
