//! Who is calling: passwords, tokens, and the extractor that turns an
//! `Authorization: Bearer …` header into a [`Caller`].
//!
//! * Passwords are hashed with argon2id (on the blocking pool: hashing is
//!   deliberately slow).
//! * Access tokens are short-lived JWTs (HS256, pinned), with `iss`, `aud`,
//!   `exp` and the tenant checked on every request, and the user's session
//!   version checked against the log ([`session`]): a role change, erasure or
//!   "sign out everywhere" voids the tokens issued before it at once.
//! * Refresh tokens are random, stored only as SHA-256 hashes, rotated on
//!   every use, and revoked on logout.
//! * Visitors of a tenant's website get the same kind of tokens for a
//!   customer identity of their own, scoped to their own conversations.

pub mod jwt;
pub mod password;
pub mod refresh;
pub mod session;

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
    bearer_header(&parts.headers)
}

/// The bearer token in `headers`, if any.
pub fn bearer_header(headers: &axum::http::HeaderMap) -> Option<&str> {
    let h = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = h.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

impl FromRequestParts<crate::AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &crate::AppState) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or_else(|| ApiError::Unauthorized("a bearer token is required".into()))?;
        Ok(authenticate(state, token).await?.caller)
    }
}

/// Verifies an access token and that its session is still current: its
/// tenant and user exist, the user is not erased, and no role change or
/// sign-out came after it was issued.
pub async fn authenticate(state: &crate::AppState, token: &str) -> Result<jwt::Verified, ApiError> {
    let verified = state.tokens.verify(token)?;
    state.hub.sessions.check(state.commands.log().as_ref(), &verified.caller, verified.session).await?;
    Ok(verified)
}

/// The session version to put in a new token of `caller`.
pub async fn session_version(state: &crate::AppState, caller: &Caller) -> Result<u64, ApiError> {
    let log = state.commands.log();
    Ok(state.hub.sessions.current(log.as_ref(), &caller.tenant, &caller.user).await?.map(|s| s.version).unwrap_or_default())
}
