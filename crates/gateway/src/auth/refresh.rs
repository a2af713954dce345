//! Refresh tokens: long-lived, random, stored only as hashes, rotated on use,
//! in *families* with reuse detection.
//!
//! A family is the chain of tokens that one sign-in (or one new visitor)
//! starts: redeeming its newest token rotates it (the token is marked used
//! and a new one becomes the newest). Redeeming a token that was already used
//! — a replay, so someone else holds a copy of the chain — revokes the whole
//! family: the newer token stops working too, and both the thief and the
//! owner must sign in again. The hashes of used tokens are kept, with their
//! family, until the family expires, so a replay is recognised for as long as
//! the chain could be used.
//!
//! [`RefreshTokens`] makes, rotates and revokes them; where they live is a
//! small port, [`RefreshStore`], with one adapter per mode: [`sqlite`]
//! (`<data_dir>/sessions.db`, the embedded mode, so a restart does not log
//! everyone out) and [`mongo`] (collections every gateway replica shares, the
//! distributed mode: a token issued by replica A can be redeemed or revoked
//! at replica B). A rotation is one atomic step on the family, so when two
//! replicas redeem one token at once, one rotates and the other sees a reuse.
//!
//! A family also records when it was last rotated (`issued_at`): for a
//! visitor, that is their last sign of life, which the idle-visitor sweep
//! ([`crate::visitors`]) reads. The port's errors are the read models'
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

/// What is stored for a family: whose it is and how long it lasts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyRecord {
    /// A random id, shared by every token of the chain.
    pub family: String,
    pub user: String,
    pub tenant: String,
    pub role: String,
    pub visitor: bool,
    /// When its newest token was made (Unix seconds): the last sign-in or refresh.
    pub issued_at: i64,
    /// When its newest token expires (Unix seconds); the used ones are kept until then.
    pub expires_at: i64,
}

/// What redeeming a token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// It was its family's newest token and unexpired: it is now used, and
    /// the new token the newest. The record is the family's, updated.
    Rotated(FamilyRecord),
    /// It had been used before: its family is revoked.
    Reused,
    /// Unknown, expired, or of a revoked family.
    Invalid,
}

/// Where refresh-token families live.
#[async_trait]
pub trait RefreshStore: Send + Sync + 'static {
    /// Starts a family whose newest token is `hash`.
    async fn start(&self, hash: Vec<u8>, family: FamilyRecord) -> Result<(), StoreError>;
    /// Redeems `old` for `new`, atomically (of two redemptions of one token,
    /// even at two replicas, one rotates and the other is a reuse): if `old`
    /// is the newest token of an unrevoked family that has not expired at
    /// `now`, it is marked used, `new` becomes the newest, and the family's
    /// `issued_at` becomes `now` and its `expires_at` `expires_at`. If `old`
    /// was used before, the family is revoked.
    async fn rotate(&self, old: Vec<u8>, new: Vec<u8>, now: i64, expires_at: i64) -> Result<Rotation, StoreError>;
    /// Revokes the family of `hash` (logout); unknown tokens are ignored.
    async fn revoke_family_of(&self, hash: Vec<u8>) -> Result<(), StoreError>;
    /// Removes every family of a user, and their tokens.
    async fn delete_user(&self, tenant: &TenantId, user: &UserId) -> Result<(), StoreError>;
    /// Visitors (tenant, user) none of whose families was issued or rotated
    /// at or after `before` (Unix seconds): revoked and expired ones count.
    async fn idle_visitors(&self, before: i64) -> Result<Vec<(String, String)>, StoreError>;
    /// Removes the families that expired before `now`, with their tokens;
    /// visitors' families only if `visitors` (else the idle sweep needs them
    /// and [`RefreshStore::delete_user`] removes them when it erases).
    async fn purge_expired(&self, now: i64, visitors: bool) -> Result<(), StoreError>;
}

pub struct RefreshTokens {
    store: Arc<dyn RefreshStore>,
    ttl: Duration,
}

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn random_token() -> String {
    let mut raw = [0u8; 32];
    rand::fill(&mut raw);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn invalid() -> ApiError {
    ApiError::Unauthorized("the refresh token is invalid or expired".into())
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

    fn expires_at(&self, now: i64) -> i64 {
        now.saturating_add(i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX))
    }

    /// The first refresh token of a new family for `caller` (a sign-in).
    pub async fn issue(&self, caller: &Caller) -> Result<String, ApiError> {
        let token = random_token();
        let now = chrono::Utc::now().timestamp();
        let family = FamilyRecord {
            family: uuid::Uuid::now_v7().simple().to_string(),
            user: caller.user.to_string(),
            tenant: caller.tenant.to_string(),
            role: role_str(caller.role).into(),
            visitor: caller.visitor,
            issued_at: now,
            expires_at: self.expires_at(now),
        };
        self.store.start(hash(&token), family).await?;
        Ok(token)
    }

    /// Uses up a refresh token: its identity and the next token of its
    /// family. A used token revokes its family (a replay), and answers 401
    /// like an unknown, expired or revoked one.
    pub async fn rotate(&self, token: &str) -> Result<(Caller, String), ApiError> {
        let next = random_token();
        let now = chrono::Utc::now().timestamp();
        match self.store.rotate(hash(token), hash(&next), now, self.expires_at(now)).await? {
            Rotation::Rotated(r) => Ok((caller_of(&r).ok_or_else(invalid)?, next)),
            Rotation::Reused => {
                tracing::warn!("a used refresh token was presented again: its family is revoked");
                Err(ApiError::Unauthorized("the refresh token was used before: this session is revoked, sign in again".into()))
            }
            Rotation::Invalid => Err(invalid()),
        }
    }

    /// Revokes the family of a token (logout); unknown tokens are ignored.
    pub async fn revoke(&self, token: &str) -> Result<(), ApiError> {
        Ok(self.store.revoke_family_of(hash(token)).await?)
    }

    /// Revokes every token of a user (role change, erasure).
    pub async fn revoke_all(&self, tenant: &TenantId, user: &UserId) -> Result<(), ApiError> {
        Ok(self.store.delete_user(tenant, user).await?)
    }

    /// Visitors whose last token was made before `before` (Unix seconds).
    pub async fn idle_visitors(&self, before: i64) -> Result<Vec<(TenantId, UserId)>, StoreError> {
        let rows = self.store.idle_visitors(before).await?;
        Ok(rows.into_iter().filter_map(|(t, u)| Some((TenantId::parse(t).ok()?, UserId::parse(u).ok()?))).collect())
    }

    /// Forgets the families that expired (see [`RefreshStore::purge_expired`]).
    pub async fn purge_expired(&self, visitors: bool) -> Result<(), StoreError> {
        self.store.purge_expired(chrono::Utc::now().timestamp(), visitors).await
    }
}

fn caller_of(r: &FamilyRecord) -> Option<Caller> {
    Some(Caller {
        user: UserId::parse(&r.user).ok()?,
        tenant: TenantId::parse(&r.tenant).ok()?,
        role: parse_role(&r.role)?,
        visitor: r.visitor,
    })
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
    let unauthorized = |r: Result<(Caller, String), ApiError>| matches!(r, Err(ApiError::Unauthorized(_)));

    // Rotation: at the other replica, then the next one here.
    let t = a.issue(&who).await.expect("issue");
    let (got, t_next) = b.rotate(&t).await.expect("redeem at the other replica");
    assert_eq!(got, who);
    let (_, t_third) = a.rotate(&t_next).await.expect("the next token of the chain redeems");

    // A replay revokes the family: the newest token stops working too.
    let other_family = a.issue(&who).await.expect("issue");
    assert!(unauthorized(b.rotate(&t).await), "a used token is refused");
    assert!(unauthorized(a.rotate(&t_third).await), "after a replay the family's newest token is refused");
    assert!(unauthorized(a.rotate(&t_next).await), "and so is every other token of it");
    let (_, other_next) = b.rotate(&other_family).await.expect("another family of the same user is untouched");

    // Two redemptions of one token at once: one rotates, the other is a reuse,
    // and the family ends revoked either way.
    let (r1, r2) = tokio::join!(a.rotate(&other_next), b.rotate(&other_next));
    let winner = match (r1, r2) {
        (Ok((_, w)), Err(_)) | (Err(_), Ok((_, w))) => Some(w),
        (Err(_), Err(_)) => None,
        (Ok(_), Ok(_)) => panic!("one token was redeemed twice"),
    };
    if let Some(w) = winner {
        assert!(unauthorized(a.rotate(&w).await), "the winner's token is revoked with its family");
    }

    // Logout revokes the token's family.
    let t2 = a.issue(&who).await.expect("issue");
    let (_, t2_next) = a.rotate(&t2).await.expect("rotate");
    b.revoke(&t2).await.expect("revoke through an old token");
    assert!(unauthorized(a.rotate(&t2_next).await), "logout with any token of the family ends it");
    b.revoke("not-a-token").await.expect("an unknown token is ignored");

    // Revoking a user removes their families, not another user's.
    let t3 = a.issue(&who).await.expect("issue");
    let other = Caller { user: UserId::parse("v").expect("id"), visitor: false, role: Role::Agent, ..who.clone() };
    let t4 = a.issue(&other).await.expect("issue");
    b.revoke_all(&who.tenant, &who.user).await.expect("revoke all");
    assert!(unauthorized(a.rotate(&t3).await));
    let (got, t4_next) = a.rotate(&t4).await.expect("another user's token stays");
    assert_eq!(got, other);
    assert!(unauthorized(a.rotate("not-a-token").await));

    // Idle visitors: only visitors, by their families' last issue.
    let now = chrono::Utc::now().timestamp();
    let visitor = Caller { user: UserId::parse("w").expect("id"), ..who.clone() };
    a.issue(&visitor).await.expect("issue");
    assert!(a.idle_visitors(now - 10).await.expect("idle").is_empty(), "a visitor active since is not idle");
    let idle = b.idle_visitors(now + 10).await.expect("idle");
    assert_eq!(idle, vec![(visitor.tenant.clone(), visitor.user.clone())], "only visitors, and only the ones left");

    // Expiry: an expired token is refused; purging keeps visitors' families unless asked.
    let expired = RefreshTokens::new(a.store.clone(), Duration::ZERO);
    let t5 = expired.issue(&who).await.expect("issue");
    let t6 = expired.issue(&other).await.expect("issue");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(unauthorized(a.rotate(&t5).await), "an expired token is refused");
    a.purge_expired(false).await.expect("purge");
    assert!(unauthorized(a.rotate(&t6).await));
    assert_eq!(b.idle_visitors(now + 10).await.expect("idle").len(), 2, "visitors' families outlive their expiry");
    a.purge_expired(true).await.expect("purge");
    assert_eq!(b.idle_visitors(now + 10).await.expect("idle"), vec![(visitor.tenant.clone(), visitor.user.clone())]);
    a.rotate(&t4_next).await.expect("an unexpired family survives the purge");
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
