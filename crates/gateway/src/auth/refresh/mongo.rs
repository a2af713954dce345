//! Refresh-token hashes in a MongoDB (or FerretDB) `refresh_tokens`
//! collection that every gateway replica shares. Redeeming is one
//! `findOneAndDelete`, so two replicas cannot both redeem the same token.
//!
//! MongoDB's errors are sorted as the read models sort them
//! (`StoreError: From<mongodb::error::Error>`): the network, DNS and server
//! selection are `Unavailable` (503, retry); anything else, a bug included,
//! is `Internal` (500).

use super::{RefreshRecord, RefreshStore};
use async_trait::async_trait;
use jamuna_domain::{TenantId, UserId};
use jamuna_projections::StoreError;
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
    pub async fn connect(url: &str, database: &str) -> Result<Self, StoreError> {
        let client = Client::with_uri_str(url).await?;
        let db = client.database(database);
        db.run_command(doc! {"ping": 1}).await?;
        Ok(Self { tokens: db.collection(COLLECTION) })
    }
}

#[async_trait]
impl RefreshStore for MongoRefreshStore {
    async fn insert(&self, hash: Vec<u8>, r: RefreshRecord) -> Result<(), StoreError> {
        let d =
            doc! {"_id": id(hash), "user_id": r.user, "tenant": r.tenant, "role": r.role, "visitor": r.visitor, "expires_at": r.expires_at};
        self.tokens.insert_one(d).await?;
        Ok(())
    }

    async fn take(&self, hash: Vec<u8>) -> Result<Option<RefreshRecord>, StoreError> {
        let Some(d) = self.tokens.find_one_and_delete(doc! {"_id": id(hash)}).await? else {
            return Ok(None);
        };
        let text = |k: &str| d.get_str(k).map(str::to_owned).map_err(StoreError::internal);
        Ok(Some(RefreshRecord {
            user: text("user_id")?,
            tenant: text("tenant")?,
            role: text("role")?,
            visitor: d.get_bool("visitor").map_err(StoreError::internal)?,
            expires_at: d.get_i64("expires_at").map_err(StoreError::internal)?,
        }))
    }

    async fn delete(&self, hash: Vec<u8>) -> Result<(), StoreError> {
        self.tokens.delete_one(doc! {"_id": id(hash)}).await?;
        Ok(())
    }

    async fn delete_user(&self, tenant: &TenantId, user: &UserId) -> Result<(), StoreError> {
        self.tokens.delete_many(doc! {"tenant": tenant.as_str(), "user_id": user.as_str()}).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::error::ApiError;
    use axum::http::StatusCode;
    use jamuna_projections::StoreError;

    #[test]
    fn a_bug_is_internal_and_only_the_network_is_unavailable() {
        let bug = mongodb::error::Error::custom("a bug");
        assert_eq!(ApiError::from(StoreError::from(bug)).status(), StatusCode::INTERNAL_SERVER_ERROR);
        let down = mongodb::error::Error::from(std::io::Error::other("connection reset"));
        assert_eq!(ApiError::from(StoreError::from(down)).status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
