//! The contract every sessions adapter passes (memory, Redis): sessions,
//! presence and rate limits.
//!
//! An adapter's tests invoke [`session_store_contract!`](crate::session_store_contract)
//! with an async function that takes a session TTL and makes a store (or
//! `None` when the adapter's server is not configured, which the function
//! itself reports). Each rule gets a store with a long TTL and one with
//! [`SHORT_TTL`]. Ids are fresh UUIDs, so rules can share one Redis server.
//!
//! Expiry is checked only as "gone after the TTL has passed" (sleeping a
//! little longer than the TTL); nothing here asserts how fast anything is.

use super::{Leases, PresenceStore, RateLimits, SessionContext, SessionStore};
use crate::StoreError;
use jamuna_domain::{ConversationId, TenantId, UserId};
use std::sync::Arc;
use std::time::Duration;

/// The session TTL of the second store each rule gets.
pub const SHORT_TTL: Duration = Duration::from_millis(300);
/// The session TTL of the first store: long enough never to pass in a test.
pub const LONG_TTL: Duration = Duration::from_secs(600);

/// What a sessions adapter implements.
pub trait Sessions: SessionStore + PresenceStore + RateLimits + Leases {}
impl<T: SessionStore + PresenceStore + RateLimits + Leases> Sessions for T {}

/// One test per rule of the sessions contract. `$make` is an async fn
/// `(Duration) -> Option<impl Sessions>`.
#[macro_export]
macro_rules! session_store_contract {
    (@tests $make:path; $($rule:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $rule() {
                let Some(long) = $make($crate::sessions::contract::LONG_TTL).await else { return };
                let Some(short) = $make($crate::sessions::contract::SHORT_TTL).await else { return };
                $crate::sessions::contract::$rule(std::sync::Arc::new(long), std::sync::Arc::new(short)).await;
            }
        )*
    };
    ($make:path) => {
        $crate::session_store_contract!(@tests $make;
            a_touched_session_reads_back,
            a_touch_updates_who_and_when_and_keeps_the_context,
            context_round_trips,
            a_context_needs_a_session,
            an_erased_users_sessions_are_forgotten,
            another_tenant_sees_no_session,
            a_session_expires_after_its_ttl,
            a_touch_refreshes_the_ttl,
            presence_follows_heartbeats_and_leaving,
            presence_expires_after_its_ttl,
            presence_is_per_tenant,
            a_customer_is_present_until_they_leave_or_expire,
            a_customer_is_not_staff_presence,
            a_window_allows_its_limit_then_refuses,
            keys_are_counted_apart,
            a_new_window_starts_after_the_last,
            a_reset_starts_the_count_again,
            members_are_listed_sorted_until_they_leave_or_expire,
            a_lease_is_held_by_one_member_until_released,
            a_lease_is_renewed_by_its_holder_and_free_after_its_ttl,
            groups_are_apart,
        );
    };
}

fn fresh() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}
fn tenant() -> TenantId {
    TenantId::parse(format!("t{}", fresh())).expect("a valid tenant id")
}
fn user() -> UserId {
    UserId::parse(format!("u{}", fresh())).expect("a valid user id")
}
fn session() -> ConversationId {
    ConversationId::parse(format!("c{}", fresh())).expect("a valid conversation id")
}
/// A whole-microsecond time (what an adapter is required to keep).
fn at(secs: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_748_854_800 + secs, 123_456_000).expect("a valid time")
}
fn context() -> SessionContext {
    SessionContext {
        last_intent: Some("shipping_time".into()),
        last_question: Some("How long does shipping to Dhaka take?".into()),
        open_question: Some("Which city — Dhaka or Chattogram?".into()),
        turns: 3,
        entities: [("city".to_owned(), "Dhaka".to_owned()), ("order".to_owned(), "A-1009 «express»".to_owned())].into(),
    }
}

pub async fn a_touched_session_reads_back<S: Sessions>(s: Arc<S>, _: Arc<S>) {
    let (t, c, u) = (tenant(), session(), user());
    assert_eq!(s.get(&t, &c).await.expect("get"), None, "a session never touched is not there");
    s.touch(&t, &c, &u, at(0)).await.expect("touch");
    let got = s.get(&t, &c).await.expect("get").expect("the session");
    assert_eq!(got.user_id, u);
    assert_eq!(got.last_active, at(0));
    assert_eq!(got.context, SessionContext::default(), "a new session starts with an empty context");
}

pub async fn a_touch_updates_who_and_when_and_keeps_the_context<S: Sessions>(s: Arc<S>, _: Arc<S>) {
    let (t, c, u, v) = (tenant(), session(), user(), user());
    s.touch(&t, &c, &u, at(0)).await.expect("touch");
    s.set_context(&t, &c, &context()).await.expect("set context");
    s.touch(&t, &c, &v, at(90)).await.expect("touch again");
    let got = s.get(&t, &c).await.expect("get").expect("the session");
    assert_eq!((got.user_id, got.last_active), (v, at(90)));
    assert_eq!(got.context, context(), "a touch keeps what the bot remembered");
}

pub async fn context_round_trips<S: Sessions>(s: Arc<S>, _: Arc<S>) {
    let (t, c, u) = (tenant(), session(), user());
    s.touch(&t, &c, &u, at(0)).await.expect("touch");
    s.set_context(&t, &c, &context()).await.expect("set context");
    assert_eq!(s.get(&t, &c).await.expect("get").expect("the session").context, context());
    let next = SessionContext { last_intent: None, open_question: None, turns: 4, ..context() };
    s.set_context(&t, &c, &next).await.expect("replace the context");
    assert_eq!(s.get(&t, &c).await.expect("get").expect("the session").context, next, "set_context replaces, it does not merge");
}

pub async fn a_context_needs_a_session<S: Sessions>(s: Arc<S>, _: Arc<S>) {
    let (t, c) = (tenant(), session());
    let err = s.set_context(&t, &c, &context()).await.expect_err("no session to set a context on");
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert_eq!(s.get(&t, &c).await.expect("get"), None, "nothing was stored");
}

pub async fn another_tenant_sees_no_session<S: Sessions>(s: Arc<S>, _: Arc<S>) {
    let (t, other, c, u) = (tenant(), tenant(), session(), user());
    s.touch(&t, &c, &u, at(0)).await.expect("touch");
    s.set_context(&t, &c, &context()).await.expect("set context");
    assert_eq!(s.get(&other, &c).await.expect("get"), None, "another tenant reads nothing");
    let err = s.set_context(&other, &c, &SessionContext::default()).await.expect_err("another tenant cannot write the context");
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    let err = s.touch(&other, &c, &user(), at(5)).await.expect_err("another tenant cannot take the session over");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let got = s.get(&t, &c).await.expect("get").expect("the session");
    assert_eq!((got.user_id, got.last_active, got.context), (u, at(0), context()), "the owner's session is unchanged");
}

pub async fn a_session_expires_after_its_ttl<S: Sessions>(_: Arc<S>, short: Arc<S>) {
    let (t, c, u) = (tenant(), session(), user());
    short.touch(&t, &c, &u, at(0)).await.expect("touch");
    short.set_context(&t, &c, &context()).await.expect("set context");
    tokio::time::sleep(SHORT_TTL * 3).await;
    assert_eq!(short.get(&t, &c).await.expect("get"), None, "gone after its TTL");
    let err = short.set_context(&t, &c, &context()).await.expect_err("an expired session has no context to set");
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    short.touch(&t, &c, &u, at(60)).await.expect("touch anew");
    assert_eq!(
        short.get(&t, &c).await.expect("get").expect("a new session").context,
        SessionContext::default(),
        "a new session starts empty"
    );
}

pub async fn a_touch_refreshes_the_ttl<S: Sessions>(_: Arc<S>, short: Arc<S>) {
    let (t, c, u) = (tenant(), session(), user());
    short.touch(&t, &c, &u, at(0)).await.expect("touch");
    // Keep touching for twice the TTL: the session must outlive it.
    for i in 1..=10 {
        tokio::time::sleep(SHORT_TTL / 5).await;
        short.touch(&t, &c, &u, at(i)).await.expect("touch");
    }
    let got = short.get(&t, &c).await.expect("get").expect("a session kept alive by touches");
    assert_eq!(got.last_active, at(10));
}

pub async fn presence_follows_heartbeats_and_leaving<S: Sessions>(s: Arc<S>, _: Arc<S>) {
    let t = tenant();
    let (mut a, mut b) = (user(), user());
    if b < a {
        std::mem::swap(&mut a, &mut b);
    }
    assert_eq!(s.online(&t).await.expect("online"), Vec::<UserId>::new());
    s.heartbeat(&t, &b, LONG_TTL).await.expect("heartbeat");
    s.heartbeat(&t, &a, LONG_TTL).await.expect("heartbeat");
    s.heartbeat(&t, &a, LONG_TTL).await.expect("a second heartbeat");
    assert_eq!(s.online(&t).await.expect("online"), vec![a.clone(), b.clone()], "each user once, sorted by id");
    s.leave(&t, &a).await.expect("leave");
    assert_eq!(s.online(&t).await.expect("online"), vec![b.clone()]);
    s.leave(&t, &a).await.expect("leaving twice is fine");
}

pub async fn presence_expires_after_its_ttl<S: Sessions>(s: Arc<S>, _: Arc<S>) {
    let (t, brief, stays) = (tenant(), user(), user());
    s.heartbeat(&t, &brief, SHORT_TTL).await.expect("heartbeat");
    s.heartbeat(&t, &stays, LONG_TTL).await.expect("heartbeat");
    tokio::time::sleep(SHORT_TTL * 3).await;
    assert_eq!(s.online(&t).await.expect("online"), vec![stays], "the user without a heartbeat for a TTL is offline");
    s.heartbeat(&t, &brief, LONG_TTL).await.expect("back");
    assert!(s.online(&t).await.expect("online").contains(&brief), "a new heartbeat brings them back");
}

pub async fn presence_is_per_tenant<S: Sessions>(s: Arc<S>, _: Arc<S>) {
    let (t, other, u) = (tenant(), tenant(), user());
    s.heartbeat(&t, &u, LONG_TTL).await.expect("heartbeat");
    assert_eq!(s.online(&other).await.expect("online"), Vec::<UserId>::new());
    s.leave(&other, &u).await.expect("leave elsewhere");
    assert_eq!(s.online(&t).await.expect("online"), vec![u], "leaving another tenant changes nothing here");
}

pub async fn a_customer_is_present_until_they_leave_or_expire<S: Sessions>(s: Arc<S>, _: Arc<S>) {
    let (t, other, c, brief) = (tenant(), tenant(), session(), session());
    assert!(!s.customer_present(&t, &c).await.expect("present"));
    s.customer_here(&t, &c, LONG_TTL).await.expect("here");
    s.customer_here(&t, &brief, SHORT_TTL).await.expect("here");
    assert!(s.customer_present(&t, &c).await.expect("present"));
    assert!(!s.customer_present(&other, &c).await.expect("present"), "presence is per tenant");
    tokio::time::sleep(SHORT_TTL * 3).await;
    assert!(!s.customer_present(&t, &brief).await.expect("present"), "gone after a TTL without another call");
    assert!(s.customer_present(&t, &c).await.expect("present"));
    s.customer_left(&t, &c).await.expect("left");
    assert!(!s.customer_present(&t, &c).await.expect("present"));
    s.customer_left(&t, &c).await.expect("leaving twice is fine");
}

pub async fn a_customer_is_not_staff_presence<S: Sessions>(s: Arc<S>, _: Arc<S>) {
    let (t, c) = (tenant(), session());
    s.customer_here(&t, &c, LONG_TTL).await.expect("here");
    assert_eq!(s.online(&t).await.expect("online"), Vec::<UserId>::new(), "customers are not among the staff online");
}

pub async fn a_window_allows_its_limit_then_refuses<S: Sessions>(s: Arc<S>, _: Arc<S>) {
    let key = format!("user:{}", fresh());
    let window = Duration::from_secs(60);
    for i in 0..3 {
        assert_eq!(s.hit(&key, 3, window).await.expect("hit"), Ok(()), "hit {i} is within the limit");
    }
    let retry = s.hit(&key, 3, window).await.expect("hit").expect_err("the fourth hit is over the limit");
    assert!(retry > Duration::ZERO && retry <= window, "retry after {retry:?}");
    assert!(s.hit(&key, 3, window).await.expect("hit").is_err(), "still refused");
}

pub async fn keys_are_counted_apart<S: Sessions>(s: Arc<S>, _: Arc<S>) {
    let (a, b) = (format!("ip:{}", fresh()), format!("ip:{}", fresh()));
    let window = Duration::from_secs(60);
    assert_eq!(s.hit(&a, 1, window).await.expect("hit"), Ok(()));
    assert!(s.hit(&a, 1, window).await.expect("hit").is_err());
    assert_eq!(s.hit(&b, 1, window).await.expect("hit"), Ok(()), "another key has its own count");
}

pub async fn a_new_window_starts_after_the_last<S: Sessions>(s: Arc<S>, _: Arc<S>) {
    let key = format!("k:{}", fresh());
    assert_eq!(s.hit(&key, 1, SHORT_TTL).await.expect("hit"), Ok(()));
    assert!(s.hit(&key, 1, SHORT_TTL).await.expect("hit").is_err());
    tokio::time::sleep(SHORT_TTL * 3).await;
    assert_eq!(s.hit(&key, 1, SHORT_TTL).await.expect("hit"), Ok(()), "a new window counts from zero");
}

pub async fn a_reset_starts_the_count_again<S: Sessions>(s: Arc<S>, _: Arc<S>) {
    let (key, other) = (format!("login:{}", fresh()), format!("login:{}", fresh()));
    let window = Duration::from_secs(60);
    assert_eq!(s.hit(&key, 1, window).await.expect("hit"), Ok(()));
    assert_eq!(s.hit(&other, 1, window).await.expect("hit"), Ok(()));
    assert!(s.hit(&key, 1, window).await.expect("hit").is_err());
    s.reset(&key).await.expect("reset");
    assert_eq!(s.hit(&key, 1, window).await.expect("hit"), Ok(()), "the count starts again");
    assert!(s.hit(&other, 1, window).await.expect("hit").is_err(), "other keys keep their count");
    s.reset(&format!("never:{}", fresh())).await.expect("resetting an unknown key is fine");
}

fn group() -> String {
    format!("g{}", uuid::Uuid::now_v7().simple())
}

pub async fn members_are_listed_sorted_until_they_leave_or_expire<S: Sessions>(s: Arc<S>, _: Arc<S>) {
    let g = group();
    assert_eq!(s.members(&g, "b", LONG_TTL).await.expect("b"), ["b"]);
    assert_eq!(s.members(&g, "a", LONG_TTL).await.expect("a"), ["a", "b"]);
    s.members(&g, "c", SHORT_TTL).await.expect("c");
    s.leave_group(&g, "a").await.expect("leave");
    assert_eq!(s.members(&g, "b", LONG_TTL).await.expect("b again"), ["b", "c"]);
    tokio::time::sleep(SHORT_TTL + Duration::from_millis(150)).await;
    assert_eq!(s.members(&g, "b", LONG_TTL).await.expect("after c expired"), ["b"], "c expired without another heartbeat");
}

pub async fn an_erased_users_sessions_are_forgotten<S: Sessions>(s: Arc<S>, _: Arc<S>) {
    let (t, other_tenant, u, v) = (tenant(), tenant(), user(), user());
    let (c1, c2, theirs, elsewhere) = (session(), session(), session(), session());
    for c in [&c1, &c2] {
        s.touch(&t, c, &u, at(0)).await.expect("touch");
        s.set_context(&t, c, &context()).await.expect("set context");
    }
    s.touch(&t, &theirs, &v, at(0)).await.expect("another user's session");
    s.touch(&other_tenant, &elsewhere, &u, at(0)).await.expect("the same id in another tenant");
    assert_eq!(s.forget_user(&t, &u).await.expect("forget"), 2);
    for c in [&c1, &c2] {
        assert_eq!(s.get(&t, c).await.expect("get"), None, "the erased user's session and its last question are gone");
        assert!(s.set_context(&t, c, &context()).await.is_err(), "nothing to write the context back into");
    }
    assert!(s.get(&t, &theirs).await.expect("get").is_some(), "another user's session stays");
    assert!(s.get(&other_tenant, &elsewhere).await.expect("get").is_some(), "another tenant's session stays");
    assert_eq!(s.forget_user(&t, &u).await.expect("forget again"), 0, "idempotent");
}

pub async fn a_lease_is_held_by_one_member_until_released<S: Sessions>(s: Arc<S>, _: Arc<S>) {
    let g = group();
    assert!(s.acquire(&g, "unit-1", "a", LONG_TTL).await.expect("a takes it"));
    assert!(!s.acquire(&g, "unit-1", "b", LONG_TTL).await.expect("b asks"), "a holds it");
    assert!(s.acquire(&g, "unit-2", "b", LONG_TTL).await.expect("another unit is free"));
    s.release(&g, "unit-1", "b").await.expect("b cannot release what it does not hold");
    assert!(!s.acquire(&g, "unit-1", "b", LONG_TTL).await.expect("b asks again"), "a still holds it");
    s.release(&g, "unit-1", "a").await.expect("a releases");
    assert!(s.acquire(&g, "unit-1", "b", LONG_TTL).await.expect("b takes it"));
}

pub async fn a_lease_is_renewed_by_its_holder_and_free_after_its_ttl<S: Sessions>(s: Arc<S>, _: Arc<S>) {
    let g = group();
    assert!(s.acquire(&g, "u", "a", SHORT_TTL).await.expect("take"));
    tokio::time::sleep(SHORT_TTL / 2).await;
    assert!(s.acquire(&g, "u", "a", SHORT_TTL).await.expect("renew"), "the holder renews");
    tokio::time::sleep(SHORT_TTL / 2 + Duration::from_millis(50)).await;
    assert!(!s.acquire(&g, "u", "b", LONG_TTL).await.expect("b asks"), "renewed, so not yet expired");
    tokio::time::sleep(SHORT_TTL).await;
    assert!(s.acquire(&g, "u", "b", LONG_TTL).await.expect("b takes it"), "free once its TTL passed");
    assert!(!s.acquire(&g, "u", "a", LONG_TTL).await.expect("a asks"), "b holds it now");
}

pub async fn groups_are_apart<S: Sessions>(s: Arc<S>, _: Arc<S>) {
    let (g1, g2) = (group(), group());
    assert!(s.acquire(&g1, "u", "a", LONG_TTL).await.expect("g1"));
    assert!(s.acquire(&g2, "u", "b", LONG_TTL).await.expect("g2: the same unit name in another group"));
    s.members(&g1, "a", LONG_TTL).await.expect("a in g1");
    assert_eq!(s.members(&g2, "b", LONG_TTL).await.expect("b in g2"), ["b"]);
}
