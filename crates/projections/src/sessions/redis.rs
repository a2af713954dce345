//! Sessions, presence and rate limits in Redis: the distributed adapter,
//! shared by every gateway and AI-worker process.
//!
//! The layout follows the seed:
//!
//! * `session:{sessionId}` — a hash with `userId`, `lastActive` (RFC 3339),
//!   `context` (the [`SessionContext`] as JSON) and `tenant`, expiring `ttl`
//!   after the last touch. A read from another tenant finds nothing, and a
//!   touch from another tenant is refused ([`StoreError::Conflict`]).
//!   An erased user's sessions are found with `SCAN` (erasure is rare; no
//!   index to keep in step) and deleted one by one, each only if it is still
//!   theirs ([`FORGET`]).
//! * `presence:{tenant}` — a sorted set of user ids scored by the time (Redis
//!   server milliseconds) their presence expires; the set itself expires with
//!   its last member.
//! * `customers:{tenant}` — the same for conversations whose customer has
//!   them open (a sorted set of conversation ids scored by their expiry);
//! * `ratelimit:{key}` — a fixed-window counter: `INCR`, and `PEXPIRE` on the
//!   first hit of a window.
//! * `work:{group}:members` — a sorted set of the group's members scored by
//!   the time their membership expires (like presence), and
//!   `work:{group}:lease:{unit}` — the holder of a lease, expiring with it.
//!
//! [`RedisSessions::within`] puts the first four under an installation's
//! namespace (`{namespace}:session:…`), as `jamuna` does.
//!
//! Every write that reads first is one Lua script, so it is atomic and takes
//! one round trip; time comes from the Redis server (`TIME`), so processes
//! with skewed clocks agree on who is online.

use super::{Leases, PresenceStore, RateLimits, SessionContext, SessionRecord, SessionStore};
use crate::StoreError;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use jamuna_domain::{ConversationId, TenantId, UserId};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Script};
use std::sync::LazyLock;
use std::time::Duration;

/// Sets who and when, creates the session (with an empty context) if it is
/// new, refreshes the TTL. Returns 0 if the session belongs to another tenant.
static TOUCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local t = redis.call('HGET', KEYS[1], 'tenant')
if t and t ~= ARGV[1] then return 0 end
if not t then redis.call('HSET', KEYS[1], 'tenant', ARGV[1], 'context', ARGV[5]) end
redis.call('HSET', KEYS[1], 'userId', ARGV[2], 'lastActive', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
",
    )
});

/// Replaces the context of a live session of this tenant; 0 if there is none.
static SET_CONTEXT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HGET', KEYS[1], 'tenant') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'context', ARGV[2])
return 1
",
    )
});

/// Deletes a session if it belongs to tenant ARGV[1] and user ARGV[2]; 1 if it did.
static FORGET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local f = redis.call('HMGET', KEYS[1], 'tenant', 'userId')
if f[1] == ARGV[1] and f[2] == ARGV[2] then return redis.call('DEL', KEYS[1]) end
return 0
",
    )
});

/// The Redis server's clock in milliseconds, as a Lua snippet.
const SERVER_NOW: &str = "local time = redis.call('TIME')\nlocal now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)\n";

/// Scores `ARGV[1]` in the sorted set `KEYS[1]` with its expiry (`ARGV[2]`
/// ms from now), drops the expired, and keeps the set alive as long as its
/// longest-lived member, as a Lua snippet after [`SERVER_NOW`].
const BEAT: &str = "local ttl = tonumber(ARGV[2])\nredis.call('ZADD', KEYS[1], now + ttl, ARGV[1])\nredis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)\nif redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end\n";

/// A user's heartbeat ([`BEAT`]).
static HEARTBEAT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{SERVER_NOW}{BEAT}
return 1
"
    ))
});

/// The members whose expiry is still ahead, sorted by id.
static ONLINE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{SERVER_NOW}
local users = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
table.sort(users)
return users
"
    ))
});

/// A member's heartbeat ([`BEAT`]); returns the live members sorted.
static MEMBERS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r"{SERVER_NOW}{BEAT}
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
table.sort(members)
return members
"
    ))
});

/// Takes or renews a lease: 1 if ARGV[1] holds it now, 0 if another does.
static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
",
    )
});

/// Deletes a lease if ARGV[1] holds it.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
",
    )
});

/// Counts a hit; returns the count and the milliseconds left in the window.
static HIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local n = redis.call('INCR', KEYS[1])
local left = redis.call('PTTL', KEYS[1])
if n == 1 or left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  left = tonumber(ARGV[1])
end
return {n, left}
",
    )
});

/// Sessions, presence and rate limits in Redis; implements all three ports.
/// Cheap to clone: one multiplexed connection that reconnects by itself.
#[derive(Clone)]
pub struct RedisSessions {
    conn: ConnectionManager,
    ttl: Duration,
    /// Put before every key but the work groups' (which name their
    /// installation themselves): empty, or `{namespace}:`.
    prefix: String,
}

impl std::fmt::Debug for RedisSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSessions").field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

fn store_error(e: RedisError) -> StoreError {
    if e.is_io_error() || e.is_connection_refusal() || e.is_timeout() || e.is_connection_dropped() {
        StoreError::unavailable(e)
    } else {
        StoreError::internal(e)
    }
}

fn millis(d: Duration) -> Result<u64, StoreError> {
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    if ms == 0 {
        return Err(StoreError::Invalid(format!("a duration of {d:?} is shorter than Redis's millisecond resolution")));
    }
    Ok(ms)
}

/// Something we did not write sits under one of our keys.
fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::internal(std::io::Error::other(format!("unreadable {what} in Redis: {detail}")))
}

impl RedisSessions {
    /// Connects to `url` (`redis://host:port/db`); sessions live `ttl` after
    /// their last touch. Fails if the server cannot be reached now.
    pub async fn connect(url: &str, ttl: Duration) -> Result<Self, StoreError> {
        millis(ttl)?;
        let client = redis::Client::open(url).map_err(|e| StoreError::Invalid(format!("the Redis URL is not valid: {e}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(3);
        let conn = ConnectionManager::new_with_config(client, config).await.map_err(store_error)?;
        Ok(Self { conn, ttl, prefix: String::new() })
    }

    /// The same store with its keys under `namespace` (`{namespace}:session:…`,
    /// `{namespace}:presence:…`, `{namespace}:ratelimit:…`), so that two
    /// installations sharing one Redis neither see each other's staff online
    /// nor share rate-limit counts.
    pub fn within(mut self, namespace: &str) -> Self {
        self.prefix = if namespace.is_empty() { String::new() } else { format!("{namespace}:") };
        self
    }

    fn session_key(&self, session: &ConversationId) -> String {
        format!("{}session:{session}", self.prefix)
    }

    fn presence_key(&self, tenant: &TenantId) -> String {
        format!("{}presence:{tenant}", self.prefix)
    }

    fn customers_key(&self, tenant: &TenantId) -> String {
        format!("{}customers:{tenant}", self.prefix)
    }

    fn rate_key(&self, key: &str) -> String {
        format!("{}ratelimit:{key}", self.prefix)
    }

    /// How long a session lives after its last touch.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }
}

#[async_trait]
impl SessionStore for RedisSessions {
    async fn touch(&self, tenant: &TenantId, session: &ConversationId, user: &UserId, now: DateTime<Utc>) -> Result<(), StoreError> {
        let empty = serde_json::to_string(&SessionContext::default()).map_err(StoreError::internal)?;
        let ok: i64 = TOUCH
            .key(self.session_key(session))
            .arg(tenant.as_str())
            .arg(user.as_str())
            .arg(now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
            .arg(millis(self.ttl)?)
            .arg(empty)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(store_error)?;
        if ok == 0 {
            return Err(StoreError::Conflict(format!("session {session} belongs to another tenant")));
        }
        Ok(())
    }

    async fn get(&self, tenant: &TenantId, session: &ConversationId) -> Result<Option<SessionRecord>, StoreError> {
        let fields: Vec<Option<String>> = redis::cmd("HMGET")
            .arg(self.session_key(session))
            .arg(&["tenant", "userId", "lastActive", "context"])
            .query_async(&mut self.conn.clone())
            .await
            .map_err(store_error)?;
        let [Some(t), user, last_active, context] =
            <[Option<String>; 4]>::try_from(fields).map_err(|f| corrupt("HMGET reply", format!("{} fields", f.len())))?
        else {
            return Ok(None);
        };
        if t != tenant.as_str() {
            return Ok(None);
        }
        let user_id = UserId::parse(user.unwrap_or_default()).map_err(|e| corrupt("session userId", e))?;
        let last_active = DateTime::parse_from_rfc3339(last_active.as_deref().unwrap_or_default())
            .map_err(|e| corrupt("session lastActive", e))?
            .with_timezone(&Utc);
        let context = match context {
            Some(json) => serde_json::from_str(&json).map_err(|e| corrupt("session context", e))?,
            None => SessionContext::default(),
        };
        Ok(Some(SessionRecord { user_id, last_active, context }))
    }

    async fn set_context(&self, tenant: &TenantId, session: &ConversationId, context: &SessionContext) -> Result<(), StoreError> {
        let json = serde_json::to_string(context).map_err(StoreError::internal)?;
        let ok: i64 = SET_CONTEXT
            .key(self.session_key(session))
            .arg(tenant.as_str())
            .arg(json)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(store_error)?;
        if ok == 0 {
            return Err(StoreError::Invalid(format!("no session {session}: touch it before setting its context")));
        }
        Ok(())
    }

    async fn forget_user(&self, tenant: &TenantId, user: &UserId) -> Result<u64, StoreError> {
        let mut conn = self.conn.clone();
        let mut cursor: u64 = 0;
        let mut forgotten = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{}session:*", self.prefix))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .map_err(store_error)?;
            for key in keys {
                let gone: u64 =
                    FORGET.key(key).arg(tenant.as_str()).arg(user.as_str()).invoke_async(&mut conn).await.map_err(store_error)?;
                forgotten += gone;
            }
            if next == 0 {
                return Ok(forgotten);
            }
            cursor = next;
        }
    }
}

#[async_trait]
impl PresenceStore for RedisSessions {
    async fn heartbeat(&self, tenant: &TenantId, user: &UserId, ttl: Duration) -> Result<(), StoreError> {
        let _: i64 = HEARTBEAT
            .key(self.presence_key(tenant))
            .arg(user.as_str())
            .arg(millis(ttl)?)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn leave(&self, tenant: &TenantId, user: &UserId) -> Result<(), StoreError> {
        let _: i64 = redis::cmd("ZREM")
            .arg(self.presence_key(tenant))
            .arg(user.as_str())
            .query_async(&mut self.conn.clone())
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn online(&self, tenant: &TenantId) -> Result<Vec<UserId>, StoreError> {
        let users: Vec<String> = ONLINE.key(self.presence_key(tenant)).invoke_async(&mut self.conn.clone()).await.map_err(store_error)?;
        users.into_iter().map(|u| UserId::parse(u).map_err(|e| corrupt("presence member", e))).collect()
    }

    async fn customer_here(&self, tenant: &TenantId, conversation: &ConversationId, ttl: Duration) -> Result<(), StoreError> {
        let _: i64 = HEARTBEAT
            .key(self.customers_key(tenant))
            .arg(conversation.as_str())
            .arg(millis(ttl)?)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn customer_left(&self, tenant: &TenantId, conversation: &ConversationId) -> Result<(), StoreError> {
        let _: i64 = redis::cmd("ZREM")
            .arg(self.customers_key(tenant))
            .arg(conversation.as_str())
            .query_async(&mut self.conn.clone())
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn customer_present(&self, tenant: &TenantId, conversation: &ConversationId) -> Result<bool, StoreError> {
        let here: Vec<String> = ONLINE.key(self.customers_key(tenant)).invoke_async(&mut self.conn.clone()).await.map_err(store_error)?;
        Ok(here.iter().any(|c| c == conversation.as_str()))
    }
}

#[async_trait]
impl RateLimits for RedisSessions {
    async fn hit(&self, key: &str, limit: u32, window: Duration) -> Result<Result<(), Duration>, StoreError> {
        let (hits, left): (u64, u64) =
            HIT.key(self.rate_key(key)).arg(millis(window)?).invoke_async(&mut self.conn.clone()).await.map_err(store_error)?;
        if hits > u64::from(limit) {
            return Ok(Err(Duration::from_millis(left)));
        }
        Ok(Ok(()))
    }

    async fn reset(&self, key: &str) -> Result<(), StoreError> {
        redis::cmd("DEL").arg(self.rate_key(key)).query_async::<()>(&mut self.conn.clone()).await.map_err(store_error)
    }
}

fn members_key(group: &str) -> String {
    format!("work:{group}:members")
}

fn lease_key(group: &str, unit: &str) -> String {
    format!("work:{group}:lease:{unit}")
}

#[async_trait]
impl Leases for RedisSessions {
    async fn members(&self, group: &str, member: &str, ttl: Duration) -> Result<Vec<String>, StoreError> {
        MEMBERS.key(members_key(group)).arg(member).arg(millis(ttl)?).invoke_async(&mut self.conn.clone()).await.map_err(store_error)
    }

    async fn acquire(&self, group: &str, unit: &str, member: &str, ttl: Duration) -> Result<bool, StoreError> {
        let held: i64 = ACQUIRE
            .key(lease_key(group, unit))
            .arg(member)
            .arg(millis(ttl)?)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(store_error)?;
        Ok(held == 1)
    }

    async fn release(&self, group: &str, unit: &str, member: &str) -> Result<(), StoreError> {
        let _: i64 = RELEASE.key(lease_key(group, unit)).arg(member).invoke_async(&mut self.conn.clone()).await.map_err(store_error)?;
        Ok(())
    }

    async fn leave_group(&self, group: &str, member: &str) -> Result<(), StoreError> {
        let _: i64 =
            redis::cmd("ZREM").arg(members_key(group)).arg(member).query_async(&mut self.conn.clone()).await.map_err(store_error)?;
        Ok(())
    }
}
