//! How many sockets one client may hold open: per user, per IP, and per IP
//! before authenticating. Counted in this process (each gateway replica
//! holds its own sockets, so its own count); a socket holds a [`Permit`]
//! for each count it is in, and dropping the permit frees the place.

use crate::auth::Caller;
use crate::routes::limits::Limiter;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// The close code of a socket over its user's cap (like HTTP's 429).
pub const CLOSE_TOO_MANY_SOCKETS: u16 = 4029;

/// Why a socket was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TooMany {
    FromThisIp,
    Unauthenticated,
    ForThisUser,
}

impl TooMany {
    pub fn message(self) -> &'static str {
        match self {
            TooMany::FromThisIp => "too many sockets from this address",
            TooMany::Unauthenticated => "too many unauthenticated sockets from this address",
            TooMany::ForThisUser => "too many sockets for this user",
        }
    }
}

impl From<TooMany> for crate::error::ApiError {
    /// Refused at the upgrade: `429`; a place frees when a socket closes.
    fn from(_: TooMany) -> Self {
        crate::error::ApiError::TooManyRequests { retry_after: 5 }
    }
}

/// The places one socket holds: one among its IP's sockets, one among its
/// IP's unauthenticated sockets until it authenticates, then one among its
/// user's. Dropped with the socket.
pub struct SocketPermits {
    _ip: Option<Permit>,
    unauthenticated: Option<Permit>,
    user: Option<Permit>,
}

impl SocketPermits {
    /// Places for a new, unauthenticated socket from `ip` (unknown: no IP caps).
    pub fn open(limiter: &Limiter, ip: Option<IpAddr>) -> Result<Self, TooMany> {
        let (ip_permit, unauthenticated) = match ip {
            None => (None, None),
            Some(ip) => {
                let c = &limiter.config;
                let p = limiter.sockets.acquire(Sockets::ip_key(ip), c.sockets_per_ip).ok_or(TooMany::FromThisIp)?;
                let u = limiter
                    .sockets
                    .acquire(Sockets::unauthenticated_key(ip), c.unauthenticated_sockets_per_ip)
                    .ok_or(TooMany::Unauthenticated)?;
                (Some(p), Some(u))
            }
        };
        Ok(Self { _ip: ip_permit, unauthenticated, user: None })
    }

    /// The socket authenticated as `caller`: it leaves the unauthenticated
    /// count and takes a place among the user's sockets (again: no-op).
    pub fn authenticated(&mut self, limiter: &Limiter, caller: &Caller) -> Result<(), TooMany> {
        if self.user.is_none() {
            let key = Sockets::user_key(&caller.tenant, &caller.user);
            self.user = Some(limiter.sockets.acquire(key, limiter.config.sockets_per_user).ok_or(TooMany::ForThisUser)?);
        }
        self.unauthenticated = None;
        Ok(())
    }
}

/// The open sockets by key (`user:…`, `ip:…`, `unauth:…`).
#[derive(Default)]
pub struct Sockets {
    open: Arc<Mutex<HashMap<String, usize>>>,
}

/// A place in one count, freed on drop.
#[must_use = "the place is freed when the permit is dropped"]
pub struct Permit {
    open: Arc<Mutex<HashMap<String, usize>>>,
    key: String,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

impl Sockets {
    /// A place for one more socket under `key`, if fewer than `max` are open.
    pub fn acquire(&self, key: String, max: usize) -> Option<Permit> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let n = open.entry(key.clone()).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Permit { open: self.open.clone(), key })
    }

    /// How many are open under `key`.
    pub fn open(&self, key: &str) -> usize {
        self.open.lock().unwrap_or_else(PoisonError::into_inner).get(key).copied().unwrap_or(0)
    }

    pub fn ip_key(ip: IpAddr) -> String {
        format!("ip:{ip}")
    }

    pub fn unauthenticated_key(ip: IpAddr) -> String {
        format!("unauth:{ip}")
    }

    pub fn user_key(tenant: &jamuna_domain::TenantId, user: &jamuna_domain::UserId) -> String {
        format!("user:{tenant}:{user}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_counted_per_key_and_freed_on_drop() {
        let s = Sockets::default();
        let a1 = s.acquire("a".into(), 2).expect("first");
        let a2 = s.acquire("a".into(), 2).expect("second");
        assert!(s.acquire("a".into(), 2).is_none(), "a third is refused");
        let b = s.acquire("b".into(), 2).expect("another key");
        drop(a1);
        assert_eq!(s.open("a"), 1);
        let a3 = s.acquire("a".into(), 2).expect("a place was freed");
        drop((a2, a3, b));
        assert_eq!((s.open("a"), s.open("b")), (0, 0));
        assert!(s.open.lock().unwrap().is_empty(), "no key is kept for nothing");
    }
}
