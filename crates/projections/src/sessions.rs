//! # Sessions, presence and rate limits
//!
//! Short-lived state that is *not* a projection of the log: it is never
//! replayed, it simply expires.
//!
//! * [`SessionStore`] — what the bot remembers of a conversation between
//!   turns (the session id is the conversation id): who the customer is,
//!   when they were last active, and a small [`SessionContext`] (the last
//!   intent, the last question, a clarifying question still open). A session
//!   lives for a TTL after its last [`touch`](SessionStore::touch).
//! * [`PresenceStore`] — which users (agents) of a tenant are online: a user
//!   stays online until `ttl` passes without another heartbeat; and, apart,
//!   which conversations have their customer on them (the notifier e-mails a
//!   reply only to a customer who is not).
//! * [`RateLimits`] — a fixed-window counter per key.
//! * [`Leases`] — which processes of a group are alive, and which of them
//!   holds each unit of work: how replicas of the projector and the AI
//!   worker share their work ([`crate::work_share`]).
//!
//! Two adapters: [`memory::MemorySessions`] (embedded `jamuna serve`, one
//! process) and [`redis::RedisSessions`] (distributed roles sharing one
//! Redis). Both implement all three traits and pass the same contract suite
//! (`session_store_contract!` in the `testing` feature).
//!
//! Everything is scoped by tenant: a session read from another tenant is not
//! found, and presence is kept per tenant.

use crate::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use jamuna_domain::{ConversationId, TenantId, UserId};
use serde::{Deserialize, Serialize};
use std::time::Duration;

pub mod memory;
pub mod redis;

#[cfg(feature = "testing")]
pub mod contract;

pub use memory::MemorySessions;
pub use redis::RedisSessions;

/// How long a session lives after its last touch unless configured otherwise.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// What the bot remembers of a conversation between turns (JSON in Redis `context`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionContext {
    pub last_intent: Option<String>,
    /// The customer's last question the bot saw, for follow-ups ("and how long does that take?").
    pub last_question: Option<String>,
    /// A clarifying question the bot asked and is waiting on.
    pub open_question: Option<String>,
    pub turns: u32,
    /// Free-form extra entities, for later use.
    pub entities: std::collections::BTreeMap<String, String>,
}

/// A session as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    pub user_id: UserId,
    pub last_active: DateTime<Utc>,
    pub context: SessionContext,
}

/// The bot's memory of conversations, with a TTL.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// The session of a conversation (session id = conversation id): sets userId and lastActive, refreshes the TTL.
    async fn touch(&self, tenant: &TenantId, session: &ConversationId, user: &UserId, now: DateTime<Utc>) -> Result<(), StoreError>;
    async fn get(&self, tenant: &TenantId, session: &ConversationId) -> Result<Option<SessionRecord>, StoreError>;
    /// Replaces the context of a session. A session that does not exist (never
    /// touched, or expired) is an [`StoreError::Invalid`]: touch it first.
    async fn set_context(&self, tenant: &TenantId, session: &ConversationId, context: &SessionContext) -> Result<(), StoreError>;
    /// Deletes every session of `user` in `tenant` (what the bot remembers of
    /// their conversations, `last_question` included): the user was erased.
    /// Returns how many went; idempotent.
    async fn forget_user(&self, tenant: &TenantId, user: &UserId) -> Result<u64, StoreError>;
}

/// Who is online, per tenant.
#[async_trait]
pub trait PresenceStore: Send + Sync {
    /// `user` is online until `ttl` passes without another heartbeat.
    async fn heartbeat(&self, tenant: &TenantId, user: &UserId, ttl: Duration) -> Result<(), StoreError>;
    async fn leave(&self, tenant: &TenantId, user: &UserId) -> Result<(), StoreError>;
    /// The users of `tenant` online now, sorted by id.
    async fn online(&self, tenant: &TenantId) -> Result<Vec<UserId>, StoreError>;
    /// The customer has `conversation` open (a socket of theirs follows it)
    /// until `ttl` passes without another call. Kept apart from the staff's
    /// presence: it is never in [`PresenceStore::online`].
    async fn customer_here(&self, tenant: &TenantId, conversation: &ConversationId, ttl: Duration) -> Result<(), StoreError>;
    /// The customer closed `conversation` (their last socket on it went).
    async fn customer_left(&self, tenant: &TenantId, conversation: &ConversationId) -> Result<(), StoreError>;
    /// Whether the customer has `conversation` open now.
    async fn customer_present(&self, tenant: &TenantId, conversation: &ConversationId) -> Result<bool, StoreError>;
}

/// Group membership and leases on units of work, for replicas sharing work
/// ([`crate::work_share::WorkShare`]). A lease is held by one member until it
/// releases it or `ttl` passes without a renewal; time is the store's clock
/// (Redis's server time), so members with skewed clocks agree.
///
/// A lease only keeps two replicas from doing the same work *at once* in the
/// normal case; it is not a fence: a member that stalls past its TTL may
/// still finish what it had started. What it writes must therefore be safe to
/// write twice — projections write conditionally on their checkpoint, and the
/// domain answers a message once.
#[async_trait]
pub trait Leases: Send + Sync {
    /// `member` of `group` is alive for `ttl` more; returns the members
    /// alive now (including `member`), sorted.
    async fn members(&self, group: &str, member: &str, ttl: Duration) -> Result<Vec<String>, StoreError>;
    /// Takes the lease on `unit` for `member` for `ttl` if it is free or
    /// already `member`'s (renewing it); `true` if `member` holds it now.
    async fn acquire(&self, group: &str, unit: &str, member: &str, ttl: Duration) -> Result<bool, StoreError>;
    /// Gives up the lease on `unit` if `member` holds it.
    async fn release(&self, group: &str, unit: &str, member: &str) -> Result<(), StoreError>;
    /// `member` leaves `group` at once rather than when its TTL passes.
    async fn leave_group(&self, group: &str, member: &str) -> Result<(), StoreError>;
}

/// Fixed-window rate limits.
#[async_trait]
pub trait RateLimits: Send + Sync {
    /// Counts one hit for `key`; `Ok(Err(retry_after))` when over `limit` hits per `window`.
    async fn hit(&self, key: &str, limit: u32, window: Duration) -> Result<Result<(), Duration>, StoreError>;
    /// Forgets `key`'s count: its next hit starts a new window (e.g. a
    /// successful login clears the account's failures).
    async fn reset(&self, key: &str) -> Result<(), StoreError>;
}
