//! Sessions, presence and rate limits in this process's memory: the
//! embedded default (`jamuna serve`). Nothing survives a restart, which is
//! fine for state that expires anyway.
//!
//! Expiry follows this process's monotonic clock (like Redis's TTLs follow
//! the server's), not the `now` a caller passes to
//! [`touch`](SessionStore::touch), which is only recorded as `lastActive`.
//! Expired entries are dropped lazily when read and swept when a map grows.

use super::{DEFAULT_SESSION_TTL, Leases, PresenceStore, RateLimits, SessionContext, SessionRecord, SessionStore};
use crate::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use jamuna_domain::{ConversationId, TenantId, UserId};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Above this many entries a map is swept of expired ones before it grows.
const SWEEP_ABOVE: usize = 100_000;

struct Session {
    tenant: TenantId,
    record: SessionRecord,
    expires: Instant,
}

struct Window {
    start: Instant,
    window: Duration,
    hits: u32,
}

/// Sessions, presence and rate limits in memory; implements all three ports.
pub struct MemorySessions {
    ttl: Duration,
    sessions: Mutex<HashMap<ConversationId, Session>>,
    presence: Mutex<HashMap<TenantId, HashMap<UserId, Instant>>>,
    /// Conversations with their customer on them, until the instant.
    customers: Mutex<HashMap<(TenantId, ConversationId), Instant>>,
    windows: Mutex<HashMap<String, Window>>,
    /// Per group: members with their expiry, and leases (unit -> holder, expiry).
    groups: Mutex<HashMap<String, Group>>,
}

#[derive(Default)]
struct Group {
    members: HashMap<String, Instant>,
    leases: HashMap<String, (String, Instant)>,
}

impl Default for MemorySessions {
    fn default() -> Self {
        Self::new()
    }
}

impl MemorySessions {
    /// Sessions live [`DEFAULT_SESSION_TTL`] after their last touch.
    pub fn new() -> Self {
        Self::with_ttl(DEFAULT_SESSION_TTL)
    }

    /// Sessions live `ttl` after their last touch.
    pub fn with_ttl(ttl: Duration) -> Self {
        Self {
            ttl,
            sessions: Mutex::default(),
            presence: Mutex::default(),
            customers: Mutex::default(),
            windows: Mutex::default(),
            groups: Mutex::default(),
        }
    }
}

/// A panic elsewhere while holding the lock leaves plain data behind: keep using it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[async_trait]
impl SessionStore for MemorySessions {
    async fn touch(&self, tenant: &TenantId, session: &ConversationId, user: &UserId, now: DateTime<Utc>) -> Result<(), StoreError> {
        let at = Instant::now();
        let mut sessions = lock(&self.sessions);
        if sessions.len() > SWEEP_ABOVE {
            sessions.retain(|_, s| s.expires > at);
        }
        let expires = at + self.ttl;
        match sessions.get_mut(session) {
            Some(s) if s.expires > at => {
                if &s.tenant != tenant {
                    return Err(StoreError::Conflict(format!("session {session} belongs to another tenant")));
                }
                s.record.user_id = user.clone();
                s.record.last_active = now;
                s.expires = expires;
            }
            _ => {
                let record = SessionRecord { user_id: user.clone(), last_active: now, context: SessionContext::default() };
                sessions.insert(session.clone(), Session { tenant: tenant.clone(), record, expires });
            }
        }
        Ok(())
    }

    async fn get(&self, tenant: &TenantId, session: &ConversationId) -> Result<Option<SessionRecord>, StoreError> {
        let sessions = lock(&self.sessions);
        Ok(sessions.get(session).filter(|s| &s.tenant == tenant && s.expires > Instant::now()).map(|s| s.record.clone()))
    }

    async fn set_context(&self, tenant: &TenantId, session: &ConversationId, context: &SessionContext) -> Result<(), StoreError> {
        let mut sessions = lock(&self.sessions);
        match sessions.get_mut(session) {
            Some(s) if &s.tenant == tenant && s.expires > Instant::now() => {
                s.record.context = context.clone();
                Ok(())
            }
            _ => Err(StoreError::Invalid(format!("no session {session}: touch it before setting its context"))),
        }
    }

    async fn forget_user(&self, tenant: &TenantId, user: &UserId) -> Result<u64, StoreError> {
        let mut sessions = lock(&self.sessions);
        let before = sessions.len();
        sessions.retain(|_, s| !(&s.tenant == tenant && &s.record.user_id == user));
        Ok((before - sessions.len()) as u64)
    }
}

#[async_trait]
impl PresenceStore for MemorySessions {
    async fn heartbeat(&self, tenant: &TenantId, user: &UserId, ttl: Duration) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut presence = lock(&self.presence);
        let users = presence.entry(tenant.clone()).or_default();
        if users.len() > SWEEP_ABOVE {
            users.retain(|_, until| *until > now);
        }
        users.insert(user.clone(), now + ttl);
        Ok(())
    }

    async fn leave(&self, tenant: &TenantId, user: &UserId) -> Result<(), StoreError> {
        if let Some(users) = lock(&self.presence).get_mut(tenant) {
            users.remove(user);
        }
        Ok(())
    }

    async fn online(&self, tenant: &TenantId) -> Result<Vec<UserId>, StoreError> {
        let now = Instant::now();
        let mut presence = lock(&self.presence);
        let Some(users) = presence.get_mut(tenant) else { return Ok(vec![]) };
        users.retain(|_, until| *until > now);
        let mut online: Vec<UserId> = users.keys().cloned().collect();
        online.sort();
        Ok(online)
    }

    async fn customer_here(&self, tenant: &TenantId, conversation: &ConversationId, ttl: Duration) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut customers = lock(&self.customers);
        if customers.len() > SWEEP_ABOVE {
            customers.retain(|_, until| *until > now);
        }
        customers.insert((tenant.clone(), conversation.clone()), now + ttl);
        Ok(())
    }

    async fn customer_left(&self, tenant: &TenantId, conversation: &ConversationId) -> Result<(), StoreError> {
        lock(&self.customers).remove(&(tenant.clone(), conversation.clone()));
        Ok(())
    }

    async fn customer_present(&self, tenant: &TenantId, conversation: &ConversationId) -> Result<bool, StoreError> {
        let until = lock(&self.customers).get(&(tenant.clone(), conversation.clone())).copied();
        Ok(until.is_some_and(|u| u > Instant::now()))
    }
}

#[async_trait]
impl RateLimits for MemorySessions {
    async fn hit(&self, key: &str, limit: u32, window: Duration) -> Result<Result<(), Duration>, StoreError> {
        let now = Instant::now();
        let mut windows = lock(&self.windows);
        if windows.len() > SWEEP_ABOVE {
            windows.retain(|_, w| now.duration_since(w.start) < w.window);
        }
        let w = windows.entry(key.to_owned()).or_insert(Window { start: now, window, hits: 0 });
        if now.duration_since(w.start) >= w.window {
            *w = Window { start: now, window, hits: 0 };
        }
        w.hits = w.hits.saturating_add(1);
        if w.hits > limit {
            return Ok(Err(w.window.saturating_sub(now.duration_since(w.start))));
        }
        Ok(Ok(()))
    }

    async fn reset(&self, key: &str) -> Result<(), StoreError> {
        lock(&self.windows).remove(key);
        Ok(())
    }
}

#[async_trait]
impl Leases for MemorySessions {
    async fn members(&self, group: &str, member: &str, ttl: Duration) -> Result<Vec<String>, StoreError> {
        let now = Instant::now();
        let mut groups = lock(&self.groups);
        let g = groups.entry(group.to_owned()).or_default();
        g.members.insert(member.to_owned(), now + ttl);
        g.members.retain(|_, expires| *expires > now);
        let mut alive: Vec<String> = g.members.keys().cloned().collect();
        alive.sort();
        Ok(alive)
    }

    async fn acquire(&self, group: &str, unit: &str, member: &str, ttl: Duration) -> Result<bool, StoreError> {
        let now = Instant::now();
        let mut groups = lock(&self.groups);
        let g = groups.entry(group.to_owned()).or_default();
        match g.leases.get(unit) {
            Some((holder, expires)) if holder != member && *expires > now => Ok(false),
            _ => {
                g.leases.insert(unit.to_owned(), (member.to_owned(), now + ttl));
                Ok(true)
            }
        }
    }

    async fn release(&self, group: &str, unit: &str, member: &str) -> Result<(), StoreError> {
        let mut groups = lock(&self.groups);
        if let Some(g) = groups.get_mut(group)
            && g.leases.get(unit).is_some_and(|(holder, _)| holder == member)
        {
            g.leases.remove(unit);
        }
        Ok(())
    }

    async fn leave_group(&self, group: &str, member: &str) -> Result<(), StoreError> {
        if let Some(g) = lock(&self.groups).get_mut(group) {
            g.members.remove(member);
        }
        Ok(())
    }
}
