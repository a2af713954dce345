//! Refresh tokens: long-lived, random, stored only as hashes, rotated on use.
//!
//! [`RefreshTokens`] makes, redeems and revokes them; where their hashes live
//! is a small port, [`RefreshStore`], with one adapter per mode: [`sqlite`]
//! (`<data_dir>/sessions.db`, the embedded mode, so a restart does not log
//! everyone out) and [`mongo`] (a `refresh_tokens` collection every gateway
//! replica shares, the distributed mode: a token issued by replica A can be
//! redeemed or revoked at replica B). The port's errors are the read models'
//! [`StoreError`]: unavailable (worth a retry) told apart from internal.

pub mod mongo;
pub mod sqlite;

use crate::auth::Caller;
use crate::error::ApiError;
use async_trait::async_trait;
use base64::Engine;
use jamuna_domain::user::Role;
use jamuna_domain::{TenantId, UserId};
use jamuna_projections::StoreError;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// What is stored for a token, under the SHA-256 of the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshRecord {
    pub user: String,
    pub tenant: String,
    pub role: String,
    pub visitor: bool,
    /// Unix seconds.
    pub expires_at: i64,
}

/// Where refresh-token hashes live.
#[async_trait]
pub trait RefreshStore: Send + Sync + 'static {
    async fn insert(&self, hash: Vec<u8>, record: RefreshRecord) -> Result<(), StoreError>;
    /// Removes the token and returns what it was (atomically: a token is
    /// redeemed at most once, even by two replicas at the same moment).
    async fn take(&self, hash: Vec<u8>) -> Result<Option<RefreshRecord>, StoreError>;
    async fn delete(&self, hash: Vec<u8>) -> Result<(), StoreError>;
    /// Removes every token of a user.
    async fn delete_user(&self, tenant: &TenantId, user: &UserId) -> Result<(), StoreError>;
}

pub struct RefreshTokens {
    store: Arc<dyn RefreshStore>,
    ttl: Duration,
}

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

impl RefreshTokens {
    pub fn new(store: Arc<dyn RefreshStore>, ttl: Duration) -> Self {
        Self { store, ttl }
    }

    /// Tokens in a SQLite file (the embedded mode).
    pub fn open(path: &Path, ttl: Duration) -> Result<Self, StoreError> {
        Ok(Self::new(Arc::new(sqlite::SqliteRefreshStore::open(path)?), ttl))
    }

    /// Tokens in the MongoDB database `database` at `url` (the distributed mode).
    pub async fn connect_mongo(url: &str, database: &str, ttl: Duration) -> Result<Self, StoreError> {
        Ok(Self::new(Arc::new(mongo::MongoRefreshStore::connect(url, database).await?), ttl))
    }

    /// A new refresh token for `caller`.
    pub async fn issue(&self, caller: &Caller) -> Result<String, ApiError> {
        let mut raw = [0u8; 32];
        rand::fill(&mut raw);
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        let record = RefreshRecord {
            user: caller.user.to_string(),
            tenant: caller.tenant.to_string(),
            role: role_str(caller.role).into(),
            visitor: caller.visitor,
            expires_at: chrono::Utc::now().timestamp() + self.ttl.as_secs() as i64,
        };
        self.store.insert(hash(&token), record).await?;
        Ok(token)
    }

    /// Uses up a refresh token: it is deleted (rotation) and its identity
    /// returned, if it was valid and unexpired.
    pub async fn redeem(&self, token: &str) -> Result<Caller, ApiError> {
        let now = chrono::Utc::now().timestamp();
        let invalid = || ApiError::Unauthorized("the refresh token is invalid or expired".into());
        let r = self.store.take(hash(token)).await?.ok_or_else(invalid)?;
        if r.expires_at < now {
            return Err(invalid());
        }
        Ok(Caller {
            user: UserId::parse(r.user).map_err(|_| invalid())?,
            tenant: TenantId::parse(r.tenant).map_err(|_| invalid())?,
            role: parse_role(&r.role).ok_or_else(invalid)?,
            visitor: r.visitor,
        })
    }

    /// Revokes one token (logout); unknown tokens are ignored.
    pub async fn revoke(&self, token: &str) -> Result<(), ApiError> {
        Ok(self.store.delete(hash(token)).await?)
    }

    /// Revokes every token of a user (role change, erasure).
    pub async fn revoke_all(&self, tenant: &TenantId, user: &UserId) -> Result<(), ApiError> {
        Ok(self.store.delete_user(tenant, user).await?)
    }
}

fn role_str(r: Role) -> &'static str {
    match r {
        Role::Customer => "customer",
        Role::Agent => "agent",
        Role::Admin => "admin",
    }
}

fn parse_role(s: &str) -> Option<Role> {
    match s {
        "customer" => Some(Role::Customer),
        "agent" => Some(Role::Agent),
        "admin" => Some(Role::Admin),
        _ => None,
    }
}

/// What every [`RefreshStore`] must do, run by each adapter's test. `a` and
/// `b` are two handles on the same fresh storage (two replicas).
#[doc(hidden)]
pub async fn contract(a: Arc<dyn RefreshStore>, b: Arc<dyn RefreshStore>) {
    let (a, b) = (RefreshTokens::new(a, Duration::from_secs(3600)), RefreshTokens::new(b, Duration::from_secs(3600)));
    let who =
        Caller { user: UserId::parse("u").expect("id"), tenant: TenantId::parse("t").expect("id"), role: Role::Customer, visitor: true };
    let t = a.issue(&who).await.expect("issue");
    assert_eq!(b.redeem(&t).await.expect("redeem at the other replica"), who);
    assert!(a.redeem(&t).await.is_err(), "a used token is gone");
    let t2 = a.issue(&who).await.expect("issue");
    b.revoke(&t2).await.expect("revoke");
    assert!(a.redeem(&t2).await.is_err());
    let t3 = a.issue(&who).await.expect("issue");
    let other = Caller { user: UserId::parse("v").expect("id"), ..who.clone() };
    let t4 = a.issue(&other).await.expect("issue");
    b.revoke_all(&who.tenant, &who.user).await.expect("revoke all");
    assert!(a.redeem(&t3).await.is_err());
    assert_eq!(a.redeem(&t4).await.expect("another user's token stays"), other);
    assert!(a.redeem("not-a-token").await.is_err());
    let expired = RefreshTokens::new(a.store.clone(), Duration::ZERO);
    let t5 = expired.issue(&who).await.expect("issue");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(a.redeem(&t5).await.is_err(), "an expired token is refused");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sqlite_keeps_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn RefreshStore> = Arc::new(sqlite::SqliteRefreshStore::open(&dir.path().join("s.db")).unwrap());
        contract(store.clone(), store).await;
    }

    #[tokio::test]
    async fn mongo_keeps_the_contract_across_two_connections() {
        let Ok(url) = std::env::var("JAMUNA_TEST_MONGODB_URL") else {
            assert!(
                std::env::var("JAMUNA_REQUIRE_SERVICES").as_deref() != Ok("1"),
                "JAMUNA_TEST_MONGODB_URL is not set, but make test requires MongoDB/FerretDB"
            );
            eprintln!("NOT RUN: the MongoDB refresh-token test needs JAMUNA_TEST_MONGODB_URL (make test starts FerretDB and sets it)");
            return;
        };
        let db = format!("refresh_{}", uuid::Uuid::now_v7().simple());
        let a: Arc<dyn RefreshStore> = Arc::new(mongo::MongoRefreshStore::connect(&url, &db).await.unwrap());
        let b: Arc<dyn RefreshStore> = Arc::new(mongo::MongoRefreshStore::connect(&url, &db).await.unwrap());
        contract(a, b).await;
    }
}
