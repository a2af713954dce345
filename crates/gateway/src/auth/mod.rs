//! Who is calling: passwords, tokens, and the extractor that turns an
//! `Authorization: Bearer …` header into a [`Caller`].
//!
//! * Passwords are hashed with argon2id (on the blocking pool: hashing is
//!   deliberately slow).
//! * Access tokens are short-lived JWTs (HS256, pinned), with `iss`, `aud`,
//!   `exp` and the tenant checked on every request.
//! * Refresh tokens are random, stored only as SHA-256 hashes, rotated on
//!   every use, and revoked on logout.
//! * Visitors of a tenant's website get the same kind of tokens for a
//!   customer identity of their own, scoped to their own conversations.

pub mod jwt;
pub mod password;
pub mod refresh;

use crate::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use jamuna_domain::user::Role;
use jamuna_domain::{TenantId, UserId};

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    pub user: UserId,
    pub tenant: TenantId,
    pub role: Role,
    /// An anonymous website visitor (a customer without an account).
    pub visitor: bool,
}

impl Caller {
    pub fn is_staff(&self) -> bool {
        self.role.is_staff()
    }

    pub fn require_staff(&self) -> Result<(), ApiError> {
        if self.is_staff() { Ok(()) } else { Err(ApiError::Forbidden("agents and admins only".into())) }
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.role == Role::Admin { Ok(()) } else { Err(ApiError::Forbidden("admins only".into())) }
    }
}

/// The bearer token of a request, if any.
pub fn bearer(parts: &Parts) -> Option<&str> {
    let h = parts.headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = h.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

impl FromRequestParts<crate::AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &crate::AppState) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or_else(|| ApiError::Unauthorized("a bearer token is required".into()))?;
        state.tokens.verify_access(token)
    }
}
