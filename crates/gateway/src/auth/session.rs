//! Sessions that end: every access token carries its user's *session
//! version* (`sv`), and a token is good only while that is still the user's
//! current one.
//!
//! A user's session version is the stream version of their last event that
//! ends sessions (a role change, erasure, or "sign out everywhere": see
//! [`jamuna_domain::user::ends_sessions`]); 0 until there is one. The event
//! log is the authority (it is never behind, unlike the read models), read
//! once per user and kept in a [`SessionCache`]; each replica's push hub
//! follows the log and raises the cached version when such an event comes
//! (see [`crate::ws::hub`]), so a demotion on one replica voids the token on
//! every replica within the hub's lag — and at once on the replica that made
//! the change, which [`SessionCache::forget`]s the user.
//!
//! A token for a tenant that does not exist, or for a user with no events, is
//! refused too: signing a token is not enough to create either.

use super::Caller;
use crate::error::ApiError;
use jamuna_commands::EventLog;
use jamuna_domain::user::ends_sessions;
use jamuna_domain::{StreamId, TenantId, UserId};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// Where a user's sessions stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UserSession {
    /// Tokens with a lower `sv` are void.
    pub version: u64,
    pub erased: bool,
}

impl UserSession {
    /// Folds a user stream's events (type and stream version, in order).
    pub fn fold<'a>(events: impl IntoIterator<Item = (&'a str, u64)>) -> Self {
        let mut s = Self::default();
        for (event_type, version) in events {
            s.observe(event_type, version);
        }
        s
    }

    /// One more event of the user's stream (in any order: versions only rise).
    pub fn observe(&mut self, event_type: &str, version: u64) {
        if ends_sessions(event_type) {
            self.version = self.version.max(version);
        }
        self.erased |= event_type == "UserErased";
    }

    fn merge(&mut self, other: UserSession) {
        self.version = self.version.max(other.version);
        self.erased |= other.erased;
    }
}

/// At most this many users and tenants are cached; past it the cache starts over.
const CACHE_LIMIT: usize = 100_000;

/// The session versions and tenants seen, per replica.
#[derive(Default)]
pub struct SessionCache {
    users: Mutex<HashMap<(TenantId, UserId), UserSession>>,
    tenants: Mutex<HashSet<TenantId>>,
}

impl SessionCache {
    fn users(&self) -> std::sync::MutexGuard<'_, HashMap<(TenantId, UserId), UserSession>> {
        self.users.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn tenants(&self) -> std::sync::MutexGuard<'_, HashSet<TenantId>> {
        self.tenants.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An event of a user's stream, as the hub sees it in the log.
    pub fn observe(&self, tenant: &TenantId, user: &UserId, event_type: &str, version: u64) {
        let mut users = self.users();
        if users.len() >= CACHE_LIMIT {
            users.clear();
        }
        users.entry((tenant.clone(), user.clone())).or_default().observe(event_type, version);
    }

    /// Drops what is known of a user: the next check reads the log.
    pub fn forget(&self, tenant: &TenantId, user: &UserId) {
        self.users().remove(&(tenant.clone(), user.clone()));
    }

    /// The user's session as of the log now, from the cache if known.
    pub async fn current(&self, log: &dyn EventLog, tenant: &TenantId, user: &UserId) -> Result<Option<UserSession>, ApiError> {
        if let Some(s) = self.users().get(&(tenant.clone(), user.clone())) {
            return Ok(Some(*s));
        }
        let events = log.read_stream(&StreamId::user(tenant, user), 0).await?;
        if events.is_empty() {
            return Ok(None);
        }
        let read = UserSession::fold(events.iter().map(|e| (e.event_type.as_str(), e.version)));
        let mut users = self.users();
        if users.len() >= CACHE_LIMIT {
            users.clear();
        }
        // The hub may have seen a newer event while the log was read: keep the newest.
        let entry = users.entry((tenant.clone(), user.clone())).or_default();
        entry.merge(read);
        Ok(Some(*entry))
    }

    /// Does the tenant exist (has its stream any event)? Only a yes is cached: tenants are never deleted.
    pub async fn tenant_exists(&self, log: &dyn EventLog, tenant: &TenantId) -> Result<bool, ApiError> {
        if self.tenants().contains(tenant) {
            return Ok(true);
        }
        let exists = !log.read_stream(&StreamId::of_tenant(tenant), 0).await?.is_empty();
        if exists {
            let mut tenants = self.tenants();
            if tenants.len() >= CACHE_LIMIT {
                tenants.clear();
            }
            tenants.insert(tenant.clone());
        }
        Ok(exists)
    }

    /// Is a token of `caller` with session version `sv` still good?
    pub async fn check(&self, log: &dyn EventLog, caller: &Caller, sv: u64) -> Result<(), ApiError> {
        let void = |why: &str| Err(ApiError::Unauthorized(why.into()));
        if !self.tenant_exists(log, &caller.tenant).await? {
            return void("the token's tenant does not exist");
        }
        match self.current(log, &caller.tenant, &caller.user).await? {
            None => void("the token's user does not exist"),
            Some(s) if s.erased => void("the user has been erased"),
            Some(s) if sv < s.version => void("the session has ended (role changed or signed out): sign in again"),
            Some(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_version_is_that_of_the_last_ending_event() {
        assert_eq!(UserSession::fold([("UserRegistered", 1)]), UserSession { version: 0, erased: false });
        let s = UserSession::fold([("UserRegistered", 1), ("UserRoleChanged", 2), ("UserSessionsRevoked", 3)]);
        assert_eq!(s, UserSession { version: 3, erased: false });
        let s = UserSession::fold([("UserRegistered", 1), ("UserErased", 2)]);
        assert_eq!(s, UserSession { version: 2, erased: true });
    }

    #[test]
    fn the_cache_keeps_the_newest_of_what_it_saw() {
        let cache = SessionCache::default();
        let (t, u) = (TenantId::parse("acme").unwrap(), UserId::parse("u1").unwrap());
        cache.observe(&t, &u, "UserRoleChanged", 4);
        cache.observe(&t, &u, "UserRoleChanged", 2);
        assert_eq!(cache.users().get(&(t.clone(), u.clone())).copied(), Some(UserSession { version: 4, erased: false }));
        cache.forget(&t, &u);
        assert!(cache.users().is_empty());
    }
}
