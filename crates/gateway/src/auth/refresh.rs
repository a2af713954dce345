//! Refresh tokens: long-lived, random, stored only as hashes, rotated on use.
//!
//! The embedded mode keeps them in SQLite (`<data_dir>/sessions.db`), so a
//! restart does not log everyone out.

use crate::auth::Caller;
use crate::error::ApiError;
use base64::Engine;
use jamuna_domain::user::Role;
use jamuna_domain::{TenantId, UserId};
use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct RefreshTokens {
    conn: Arc<Mutex<Connection>>,
    ttl: Duration,
}

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

impl RefreshTokens {
    pub fn open(path: &Path, ttl: Duration) -> Result<Self, ApiError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(ApiError::internal)?;
        }
        let conn = Connection::open(path).map_err(ApiError::internal)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
             CREATE TABLE IF NOT EXISTS refresh_tokens (
                hash       BLOB PRIMARY KEY,
                user_id    TEXT NOT NULL,
                tenant     TEXT NOT NULL,
                role       TEXT NOT NULL,
                visitor    INTEGER NOT NULL,
                expires_at INTEGER NOT NULL
             );
             CREATE INDEX IF NOT EXISTS refresh_by_user ON refresh_tokens (tenant, user_id);",
        )
        .map_err(ApiError::internal)?;
        Ok(Self { conn: Arc::new(Mutex::new(conn)), ttl })
    }

    async fn with<R: Send + 'static>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<R> + Send + 'static) -> Result<R, ApiError> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || f(&conn.lock().unwrap_or_else(|p| p.into_inner())))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)
    }

    /// A new refresh token for `caller`.
    pub async fn issue(&self, caller: &Caller) -> Result<String, ApiError> {
        let mut raw = [0u8; 32];
        rand::fill(&mut raw);
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        let (h, user, tenant, role, visitor) = (hash(&token), caller.user.to_string(), caller.tenant.to_string(), role_str(caller.role), caller.visitor);
        let expires = chrono::Utc::now().timestamp() + self.ttl.as_secs() as i64;
        self.with(move |c| {
            c.execute(
                "INSERT INTO refresh_tokens (hash, user_id, tenant, role, visitor, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![h, user, tenant, role, visitor, expires],
            )
        })
        .await?;
        Ok(token)
    }

    /// Uses up a refresh token: it is deleted (rotation) and its identity
    /// returned, if it was valid and unexpired.
    pub async fn redeem(&self, token: &str) -> Result<Caller, ApiError> {
        let h = hash(token);
        let now = chrono::Utc::now().timestamp();
        let row = self
            .with(move |c| {
                let row = c
                    .query_row("SELECT user_id, tenant, role, visitor, expires_at FROM refresh_tokens WHERE hash = ?1", [&h], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, bool>(3)?, r.get::<_, i64>(4)?))
                    })
                    .optional()?;
                c.execute("DELETE FROM refresh_tokens WHERE hash = ?1", [&h])?;
                Ok(row)
            })
            .await?;
        let invalid = || ApiError::Unauthorized("the refresh token is invalid or expired".into());
        let (user, tenant, role, visitor, expires) = row.ok_or_else(invalid)?;
        if expires < now {
            return Err(invalid());
        }
        Ok(Caller {
            user: UserId::parse(user).map_err(|_| invalid())?,
            tenant: TenantId::parse(tenant).map_err(|_| invalid())?,
            role: parse_role(&role).ok_or_else(invalid)?,
            visitor,
        })
    }

    /// Revokes one token (logout); unknown tokens are ignored.
    pub async fn revoke(&self, token: &str) -> Result<(), ApiError> {
        let h = hash(token);
        self.with(move |c| c.execute("DELETE FROM refresh_tokens WHERE hash = ?1", [&h])).await?;
        Ok(())
    }

    /// Revokes every token of a user (role change, erasure).
    pub async fn revoke_all(&self, tenant: &TenantId, user: &UserId) -> Result<(), ApiError> {
        let (t, u) = (tenant.to_string(), user.to_string());
        self.with(move |c| c.execute("DELETE FROM refresh_tokens WHERE tenant = ?1 AND user_id = ?2", [&t, &u])).await?;
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tokens_rotate_and_revoke() {
        let dir = tempfile::tempdir().unwrap();
        let store = RefreshTokens::open(&dir.path().join("s.db"), Duration::from_secs(3600)).unwrap();
        let who = Caller { user: UserId::parse("u").unwrap(), tenant: TenantId::parse("t").unwrap(), role: Role::Customer, visitor: true };
        let t = store.issue(&who).await.unwrap();
        assert_eq!(store.redeem(&t).await.unwrap(), who);
        assert!(store.redeem(&t).await.is_err(), "a used token is gone");
        let t2 = store.issue(&who).await.unwrap();
        store.revoke(&t2).await.unwrap();
        assert!(store.redeem(&t2).await.is_err());
        let t3 = store.issue(&who).await.unwrap();
        store.revoke_all(&who.tenant, &who.user).await.unwrap();
        assert!(store.redeem(&t3).await.is_err());
    }
}
