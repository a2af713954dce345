//! Refresh-token families in MongoDB (or FerretDB), shared by every gateway
//! replica: a `refresh_families` document per family (`_id` the family id;
//! its owner, `head` the hash of its newest token, its times), a
//! `refresh_used` document per token it used up (`_id` the hash, its
//! `family`, and when it may be forgotten), and a `refresh_revoked` document
//! per revoked family.
//!
//! Only inserts decide races, since an insert of a unique `_id` is atomic on
//! MongoDB and FerretDB alike, where a `findAndModify` or two concurrent
//! updates of one document are not on FerretDB (it rewrites the whole
//! document: one update is lost). Using a token up is claimed by inserting
//! its `refresh_used` document: of two replicas redeeming one token at once,
//! exactly one succeeds; the other gets a duplicate key, sees a reuse, and
//! revokes the family by inserting its `refresh_revoked` document, which
//! every rotation checks, so the winner's new token is refused too. Only a
//! rotation (after its claim) updates a family document.
//!
//! Tokens from before families (the `refresh_tokens` collection, owner
//! inline) are redeemed once, by a delete, into a new family.
//!
//! MongoDB's errors are sorted as the read models sort them
//! (`StoreError: From<mongodb::error::Error>`): the network, DNS and server
//! selection are `Unavailable` (503, retry); anything else, a bug included,
//! is `Internal` (500).

use super::{FamilyRecord, RefreshStore, Rotation};
use async_trait::async_trait;
use futures::TryStreamExt;
use jamuna_domain::{TenantId, UserId};
use jamuna_projections::StoreError;
use mongodb::bson::{Binary, Document, doc, spec::BinarySubtype};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::{Client, Collection};
use std::collections::BTreeSet;

/// Tokens from before families.
pub const LEGACY: &str = "refresh_tokens";
pub const FAMILIES: &str = "refresh_families";
pub const USED: &str = "refresh_used";
pub const REVOKED: &str = "refresh_revoked";

pub struct MongoRefreshStore {
    families: Collection<Document>,
    used: Collection<Document>,
    revoked: Collection<Document>,
    legacy: Collection<Document>,
}

fn id(hash: Vec<u8>) -> Binary {
    Binary { subtype: BinarySubtype::Generic, bytes: hash }
}

fn record(d: &Document, family: String) -> Result<FamilyRecord, StoreError> {
    let text = |k: &str| d.get_str(k).map(str::to_owned).map_err(StoreError::internal);
    Ok(FamilyRecord {
        family,
        user: text("user_id")?,
        tenant: text("tenant")?,
        role: text("role")?,
        visitor: d.get_bool("visitor").map_err(StoreError::internal)?,
        issued_at: d.get_i64("issued_at").unwrap_or_default(),
        expires_at: d.get_i64("expires_at").map_err(StoreError::internal)?,
    })
}

fn duplicate_key(e: &mongodb::error::Error) -> bool {
    matches!(&*e.kind, ErrorKind::Write(WriteFailure::WriteError(w)) if w.code == 11000)
}

impl MongoRefreshStore {
    pub async fn connect(url: &str, database: &str) -> Result<Self, StoreError> {
        let client = Client::with_uri_str(url).await?;
        let db = client.database(database);
        db.run_command(doc! {"ping": 1}).await?;
        let store = Self {
            families: db.collection(FAMILIES),
            used: db.collection(USED),
            revoked: db.collection(REVOKED),
            legacy: db.collection(LEGACY),
        };
        let index = |keys: Document| mongodb::IndexModel::builder().keys(keys).build();
        store.families.create_index(index(doc! {"head": 1})).await?;
        store.families.create_index(index(doc! {"tenant": 1, "user_id": 1})).await?;
        store.used.create_index(index(doc! {"family": 1})).await?;
        Ok(store)
    }

    /// Revokes a family for good. The marker outlives the family: it is kept
    /// for two lifetimes of a token (a rotation that won a race against the
    /// revocation may extend the family by one).
    async fn revoke(&self, family: &str) -> Result<(), StoreError> {
        let now = chrono::Utc::now().timestamp();
        let ttl = match self.families.find_one(doc! {"_id": family}).await? {
            Some(d) => d.get_i64("expires_at").unwrap_or(now) - d.get_i64("issued_at").unwrap_or(now),
            None => 0,
        };
        let until = now.saturating_add(ttl.max(0).saturating_mul(2));
        match self.revoked.insert_one(doc! {"_id": family, "expires_at": until}).await {
            Ok(_) => {}
            Err(e) if duplicate_key(&e) => {}
            Err(e) => return Err(e.into()),
        }
        self.used.delete_many(doc! {"family": family}).await?;
        Ok(())
    }

    async fn is_revoked(&self, family: &str) -> Result<bool, StoreError> {
        Ok(self.revoked.find_one(doc! {"_id": family}).await?.is_some())
    }

    /// A token from before families: used up into a new family headed by `new`.
    async fn rotate_legacy(&self, old: Vec<u8>, new: Vec<u8>, now: i64, expires_at: i64) -> Result<Rotation, StoreError> {
        let Some(d) = self.legacy.find_one(doc! {"_id": id(old.clone())}).await? else {
            return Ok(Rotation::Invalid);
        };
        if self.legacy.delete_one(doc! {"_id": id(old)}).await?.deleted_count == 0 {
            return Ok(Rotation::Invalid);
        }
        let rec = record(&d, uuid::Uuid::now_v7().simple().to_string())?;
        if rec.expires_at < now {
            return Ok(Rotation::Invalid);
        }
        let rec = FamilyRecord { issued_at: now, expires_at, ..rec };
        self.start(new, rec.clone()).await?;
        Ok(Rotation::Rotated(rec))
    }
}

#[async_trait]
impl RefreshStore for MongoRefreshStore {
    async fn start(&self, hash: Vec<u8>, f: FamilyRecord) -> Result<(), StoreError> {
        let d = doc! {
            "_id": &f.family, "user_id": f.user, "tenant": f.tenant, "role": f.role, "visitor": f.visitor,
            "head": id(hash), "issued_at": f.issued_at, "expires_at": f.expires_at,
        };
        self.families.insert_one(d).await?;
        Ok(())
    }

    async fn rotate(&self, old: Vec<u8>, new: Vec<u8>, now: i64, expires_at: i64) -> Result<Rotation, StoreError> {
        let Some(d) = self.families.find_one(doc! {"head": id(old.clone())}).await? else {
            // Not a newest token: a used one (a replay), or unknown.
            let Some(used) = self.used.find_one(doc! {"_id": id(old.clone())}).await? else {
                return self.rotate_legacy(old, new, now, expires_at).await;
            };
            let family = used.get_str("family").map_err(StoreError::internal)?;
            self.revoke(family).await?;
            return Ok(Rotation::Reused);
        };
        let family = d.get_str("_id").map_err(StoreError::internal)?.to_owned();
        let rec = record(&d, family.clone())?;
        if rec.expires_at < now || self.is_revoked(&family).await? {
            return Ok(Rotation::Invalid);
        }
        // The claim: of two redemptions, one inserts, the other is a reuse.
        match self.used.insert_one(doc! {"_id": id(old), "family": &family, "expires_at": expires_at}).await {
            Ok(_) => {}
            Err(e) if duplicate_key(&e) => {
                self.revoke(&family).await?;
                return Ok(Rotation::Reused);
            }
            Err(e) => return Err(e.into()),
        }
        self.families
            .update_one(doc! {"_id": &family}, doc! {"$set": {"head": id(new), "issued_at": now, "expires_at": expires_at}})
            .await?;
        // The used tokens are kept as long as the family lasts.
        self.used.update_many(doc! {"family": &family}, doc! {"$set": {"expires_at": expires_at}}).await?;
        Ok(Rotation::Rotated(FamilyRecord { issued_at: now, expires_at, ..rec }))
    }

    async fn revoke_family_of(&self, hash: Vec<u8>) -> Result<(), StoreError> {
        if let Some(d) = self.families.find_one(doc! {"head": id(hash.clone())}).await? {
            return self.revoke(d.get_str("_id").map_err(StoreError::internal)?).await;
        }
        if let Some(d) = self.used.find_one(doc! {"_id": id(hash.clone())}).await? {
            return self.revoke(d.get_str("family").map_err(StoreError::internal)?).await;
        }
        self.legacy.delete_one(doc! {"_id": id(hash)}).await?;
        Ok(())
    }

    async fn delete_user(&self, tenant: &TenantId, user: &UserId) -> Result<(), StoreError> {
        let owner = doc! {"tenant": tenant.as_str(), "user_id": user.as_str()};
        let families: Vec<Document> = self.families.find(owner.clone()).projection(doc! {"_id": 1}).await?.try_collect().await?;
        let ids: Vec<String> = families.iter().filter_map(|d| d.get_str("_id").ok().map(str::to_owned)).collect();
        self.used.delete_many(doc! {"family": {"$in": &ids}}).await?;
        self.families.delete_many(owner.clone()).await?;
        self.legacy.delete_many(owner).await?;
        Ok(())
    }

    async fn idle_visitors(&self, before: i64) -> Result<Vec<(String, String)>, StoreError> {
        // Two finds rather than a `$group` with `$max`, which FerretDB lacks.
        let owners = |filter: Document| async move {
            let docs: Vec<Document> = self.families.find(filter).projection(doc! {"tenant": 1, "user_id": 1}).await?.try_collect().await?;
            docs.iter()
                .map(|d| {
                    let text = |k: &str| d.get_str(k).map(str::to_owned).map_err(StoreError::internal);
                    Ok((text("tenant")?, text("user_id")?))
                })
                .collect::<Result<BTreeSet<_>, StoreError>>()
        };
        let stale = owners(doc! {"visitor": true, "issued_at": {"$lt": before}}).await?;
        let active = owners(doc! {"visitor": true, "issued_at": {"$gte": before}}).await?;
        Ok(stale.difference(&active).cloned().collect())
    }

    async fn purge_expired(&self, now: i64, visitors: bool) -> Result<(), StoreError> {
        let mut expired = doc! {"expires_at": {"$lt": now}};
        if !visitors {
            expired.insert("visitor", false);
        }
        self.families.delete_many(expired).await?;
        // A used token's `expires_at` follows its family's (legacy tokens have their own).
        self.used.delete_many(doc! {"expires_at": {"$lt": now}}).await?;
        self.revoked.delete_many(doc! {"expires_at": {"$lt": now}}).await?;
        self.legacy.delete_many(doc! {"expires_at": {"$lt": now}}).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::refresh::RefreshTokens;
    use crate::error::ApiError;
    use axum::http::StatusCode;
    use jamuna_projections::StoreError;
    use std::sync::Arc;
    use std::time::Duration;

    /// A `refresh_tokens` document from before families keeps working, once.
    #[tokio::test]
    async fn tokens_from_before_families_still_redeem_once() {
        let Ok(url) = std::env::var("JAMUNA_TEST_MONGODB_URL") else {
            assert!(std::env::var("JAMUNA_REQUIRE_SERVICES").as_deref() != Ok("1"), "JAMUNA_TEST_MONGODB_URL is not set");
            eprintln!("NOT RUN: needs JAMUNA_TEST_MONGODB_URL (make test starts FerretDB and sets it)");
            return;
        };
        let db = format!("refresh_legacy_{}", uuid::Uuid::now_v7().simple());
        let store = MongoRefreshStore::connect(&url, &db).await.unwrap();
        let token = "an-old-token";
        let later = chrono::Utc::now().timestamp() + 3600;
        let old = doc! {"_id": id(super::super::hash(token)), "user_id": "u", "tenant": "t", "role": "agent", "visitor": false, "expires_at": later};
        store.legacy.insert_one(old).await.unwrap();

        let tokens = RefreshTokens::new(Arc::new(store), Duration::from_secs(60));
        let (caller, next) = tokens.rotate(token).await.expect("the old token redeems");
        assert_eq!((caller.user.as_str(), caller.tenant.as_str()), ("u", "t"));
        assert!(tokens.rotate(token).await.is_err(), "once");
        tokens.rotate(&next).await.expect("into a family of its own");
    }

    #[test]
    fn a_bug_is_internal_and_only_the_network_is_unavailable() {
        let bug = mongodb::error::Error::custom("a bug");
        assert_eq!(ApiError::from(StoreError::from(bug)).status(), StatusCode::INTERNAL_SERVER_ERROR);
        let down = mongodb::error::Error::from(std::io::Error::other("connection reset"));
        assert_eq!(ApiError::from(StoreError::from(down)).status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
