//! Sessions, presence and rate limits: the in-memory adapter and the Redis
//! adapter (on the real server `make test` starts, found at
//! JAMUNA_TEST_REDIS_URL) pass the same contract.

use jamuna_projections::sessions::{MemorySessions, RedisSessions};
use std::time::Duration;

async fn memory(ttl: Duration) -> Option<MemorySessions> {
    Some(MemorySessions::with_ttl(ttl))
}

async fn redis(ttl: Duration) -> Option<RedisSessions> {
    let Ok(url) = std::env::var("JAMUNA_TEST_REDIS_URL") else {
        assert!(!crate::services_required(), "JAMUNA_TEST_REDIS_URL is not set, but make test requires a Redis server");
        eprintln!("NOT RUN: the Redis sessions tests need JAMUNA_TEST_REDIS_URL (make test starts redis-server and sets it)");
        return None;
    };
    Some(RedisSessions::connect(&url, ttl).await.expect("connect to Redis"))
}

mod memory_contract {
    jamuna_projections::session_store_contract!(super::memory);
}
mod redis_contract {
    jamuna_projections::session_store_contract!(super::redis);
}

#[tokio::test]
async fn a_bad_redis_url_is_a_clear_error() {
    let err = RedisSessions::connect("http://localhost:1/", Duration::from_secs(60)).await.expect_err("not a Redis URL");
    assert!(matches!(err, jamuna_projections::StoreError::Invalid(_)), "{err:?}");
}

#[tokio::test]
async fn an_unreachable_redis_is_unavailable() {
    // A port nothing listens on: bind one, then close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let err =
        RedisSessions::connect(&format!("redis://127.0.0.1:{port}/"), Duration::from_secs(60)).await.expect_err("nothing listens there");
    assert!(err.is_transient(), "{err:?}");
}

#[tokio::test]
async fn redis_sessions_have_the_seed_shape() {
    use jamuna_projections::sessions::{SessionContext, SessionStore};
    use jamuna_projections::testing::{conv, tenant, user};
    let ttl = Duration::from_secs(3600);
    let Some(store) = redis(ttl).await else { return };
    let url = std::env::var("JAMUNA_TEST_REDIS_URL").expect("set, since the store connected");
    let id = format!("c{}", uuid::Uuid::now_v7().simple());
    let (t, c, u) = (tenant("acme"), conv(&id), user("customer-1"));
    let now = chrono::DateTime::from_timestamp(1_748_854_800, 0).expect("a time");
    store.touch(&t, &c, &u, now).await.expect("touch");
    let context = SessionContext { last_intent: Some("refund".into()), turns: 2, ..Default::default() };
    store.set_context(&t, &c, &context).await.expect("set context");

    let mut raw = redis::Client::open(url.as_str()).expect("url").get_multiplexed_async_connection().await.expect("connect");
    let hash: std::collections::HashMap<String, String> =
        redis::cmd("HGETALL").arg(format!("session:{id}")).query_async(&mut raw).await.expect("HGETALL");
    assert_eq!(hash.get("userId").map(String::as_str), Some("customer-1"));
    assert_eq!(hash.get("tenant").map(String::as_str), Some("acme"));
    let last_active = chrono::DateTime::parse_from_rfc3339(&hash["lastActive"]).expect("lastActive is RFC 3339");
    assert_eq!(last_active, now);
    let json: serde_json::Value = serde_json::from_str(&hash["context"]).expect("context is JSON");
    assert_eq!(json["last_intent"], "refund");
    assert_eq!(json["turns"], 2);
    let pttl: i64 = redis::cmd("PTTL").arg(format!("session:{id}")).query_async(&mut raw).await.expect("PTTL");
    assert!(pttl > 0 && pttl <= 3_600_000, "the session expires within its TTL: {pttl} ms");
}

/// Two installations sharing one Redis (`within` their own namespace) see
/// neither each other's staff online nor each other's rate-limit counts nor
/// sessions.
#[tokio::test]
async fn installations_sharing_a_redis_are_kept_apart() {
    use jamuna_projections::sessions::{PresenceStore, RateLimits, SessionStore};
    use jamuna_projections::testing::{conv, tenant, user};
    let ttl = Duration::from_secs(3600);
    let (Some(a), Some(b)) = (redis(ttl).await, redis(ttl).await) else { return };
    let run = uuid::Uuid::now_v7().simple().to_string();
    let (a, b) = (a.within(&format!("a-{run}")), b.within(&format!("b-{run}")));
    let t = tenant("demo");

    a.heartbeat(&t, &user("admin-a"), Duration::from_secs(60)).await.expect("heartbeat");
    b.heartbeat(&t, &user("admin-b"), Duration::from_secs(60)).await.expect("heartbeat");
    assert_eq!(a.online(&t).await.expect("online"), vec![user("admin-a")]);
    assert_eq!(b.online(&t).await.expect("online"), vec![user("admin-b")]);

    let key = format!("ip:127.0.0.1:{run}");
    assert!(a.hit(&key, 1, Duration::from_secs(60)).await.expect("hit").is_ok());
    assert!(a.hit(&key, 1, Duration::from_secs(60)).await.expect("hit").is_err(), "a's second hit is over a's limit");
    assert!(b.hit(&key, 1, Duration::from_secs(60)).await.expect("hit").is_ok(), "b counts from zero");

    let c = conv(&format!("c{run}"));
    a.touch(&t, &c, &user("customer"), chrono::Utc::now()).await.expect("touch");
    assert!(a.get(&t, &c).await.expect("get").is_some());
    assert!(b.get(&t, &c).await.expect("get").is_none(), "b does not see a's session");
}
