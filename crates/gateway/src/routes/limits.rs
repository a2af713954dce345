//! What one client may do, and how fast: the limits that keep a public
//! server up.
//!
//! * Requests per minute per client (the user of a valid token, else the
//!   client's IP address): a fixed one-minute window, answered with `429`
//!   and `Retry-After` when exceeded ([`rate_limit`]).
//! * Sign-in attempts per account, in growing windows ([`LOGIN_TIERS`]): a
//!   guesser is slowed down to a few tries an hour, whatever the IP; a
//!   successful sign-in clears the count.
//! * New visitor identities per IP and per widget key (`POST /auth/visitor`).
//! * Sockets per user, per IP, and not yet authenticated per IP
//!   ([`crate::ws::limits`]).
//!
//! The client's IP is the peer's address, or, when the peer is one of the
//! trusted proxies (`JAMUNA_TRUSTED_PROXIES`), the rightmost address of
//! `X-Forwarded-For` that is not a trusted proxy ([`client_ip`]).
//!
//! The counting goes through the [`RateLimits`] port: in memory by default
//! (one process: `jamuna serve`), Redis when several gateway replicas must
//! share one count. If the store is unavailable the request is let through
//! (and counted in `jamuna_rate_limit_errors_total`): an outage of the
//! limiter must not become an outage of the service.

use crate::AppState;
use crate::error::ApiError;
use crate::ws::limits::Sockets;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use jamuna_projections::StoreError;
use jamuna_projections::sessions::{MemorySessions, RateLimits};
use sha2::{Digest, Sha256};
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// The window the per-minute limit is counted in.
const WINDOW: Duration = Duration::from_secs(60);
/// The window visitor identities are counted in.
const VISITOR_WINDOW: Duration = Duration::from_secs(60 * 60);

/// Sign-in attempts per account: at most `n` in each window. Each attempt
/// counts in every window, refused ones too, so hammering an account during
/// a lock-out moves it to the next, longer one: 5 a minute, 10 in 15
/// minutes, 20 an hour, 50 a day. A successful sign-in clears them all.
pub const LOGIN_TIERS: &[(u32, Duration)] = &[
    (5, Duration::from_secs(60)),
    (10, Duration::from_secs(15 * 60)),
    (20, Duration::from_secs(60 * 60)),
    (50, Duration::from_secs(24 * 60 * 60)),
];

/// What the limits are (the binary loads them; [`Default`] is the shipped
/// configuration).
#[derive(Debug, Clone)]
pub struct LimitsConfig {
    /// New visitor identities per client IP per hour.
    pub visitors_per_ip_per_hour: u32,
    /// New visitor identities per widget key (so per tenant) per hour.
    pub visitors_per_widget_key_per_hour: u32,
    /// Open sockets per user (in one gateway process).
    pub sockets_per_user: usize,
    /// Open sockets per client IP (in one gateway process).
    pub sockets_per_ip: usize,
    /// Sockets per client IP that have not authenticated yet.
    pub unauthenticated_sockets_per_ip: usize,
    /// The reverse proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<Cidr>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            visitors_per_ip_per_hour: 10,
            visitors_per_widget_key_per_hour: 1000,
            sockets_per_user: 8,
            sockets_per_ip: 64,
            unauthenticated_sockets_per_ip: 8,
            trusted_proxies: Vec::new(),
        }
    }
}

/// The gateway's limits, counted in a [`RateLimits`] store (sockets: in
/// this process).
pub struct Limiter {
    per_minute: u32,
    store: Arc<dyn RateLimits>,
    pub config: LimitsConfig,
    pub sockets: Sockets,
}

impl Limiter {
    /// `per_minute` requests per client, counted in this process's memory.
    pub fn new(per_minute: u32) -> Self {
        Self::with_store(per_minute, Arc::new(MemorySessions::new()))
    }

    /// `per_minute` requests per client, counted in `store` (e.g. Redis,
    /// shared by every gateway replica), and the default [`LimitsConfig`].
    pub fn with_store(per_minute: u32, store: Arc<dyn RateLimits>) -> Self {
        Self { per_minute, store, config: LimitsConfig::default(), sockets: Sockets::default() }
    }

    /// The same, with these limits.
    pub fn configured(self, config: LimitsConfig) -> Self {
        Self { config, ..self }
    }

    /// `Ok(Err(seconds to wait))` when `key` is over its limit.
    pub async fn check(&self, key: &str) -> Result<Result<(), u64>, StoreError> {
        Ok(self.store.hit(key, self.per_minute, WINDOW).await?.map_err(retry_after_secs))
    }

    /// Counts a sign-in attempt for an account; `Err(ApiError::TooManyRequests)`
    /// when it is over one of the [`LOGIN_TIERS`] (the attempt must then not
    /// be checked at all, a right password included).
    pub async fn login_attempt(&self, tenant: &str, email: &str) -> Result<(), ApiError> {
        let account = account_key(tenant, email);
        let mut wait = None;
        for (i, (n, window)) in LOGIN_TIERS.iter().enumerate() {
            match self.store.hit(&format!("login:{i}:{account}"), *n, *window).await {
                Ok(Ok(())) => {}
                Ok(Err(w)) => wait = wait.max(Some(retry_after_secs(w))),
                Err(e) => store_failed(&e),
            }
        }
        match wait {
            None => Ok(()),
            Some(retry_after) => {
                metrics::counter!("jamuna_login_throttled_total").increment(1);
                Err(ApiError::TooManyRequests { retry_after })
            }
        }
    }

    /// A successful sign-in: the account's attempts are forgotten.
    pub async fn login_succeeded(&self, tenant: &str, email: &str) {
        let account = account_key(tenant, email);
        for i in 0..LOGIN_TIERS.len() {
            if let Err(e) = self.store.reset(&format!("login:{i}:{account}")).await {
                store_failed(&e);
            }
        }
    }

    /// Marks `id` used for `ttl`: `true` the first time, `false` after. A
    /// failing store refuses (an error), unlike the limits: this guards a
    /// credential's single use.
    pub async fn first_use(&self, id: &str, ttl: std::time::Duration) -> Result<bool, ApiError> {
        Ok(self.store.hit(&format!("once:{id}"), 1, ttl).await?.is_ok())
    }

    /// Counts one use of `key`, at most `limit` in `window`: `Ok(Err(seconds
    /// to wait))` when over.
    pub async fn count(&self, key: &str, limit: u32, window: Duration) -> Result<Result<(), u64>, StoreError> {
        Ok(self.store.hit(key, limit, window).await?.map_err(retry_after_secs))
    }

    /// Counts a new visitor identity for `ip` and `widget_key`.
    pub async fn visitor_minted(&self, ip: Option<IpAddr>, widget_key: &str) -> Result<(), ApiError> {
        let ip = ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
        let keys = [
            (format!("visitor:ip:{ip}"), self.config.visitors_per_ip_per_hour),
            (format!("visitor:key:{}", hex_digest(widget_key)), self.config.visitors_per_widget_key_per_hour),
        ];
        for (key, n) in keys {
            match self.store.hit(&key, n, VISITOR_WINDOW).await {
                Ok(Ok(())) => {}
                Ok(Err(w)) => {
                    metrics::counter!("jamuna_visitors_refused_total").increment(1);
                    return Err(ApiError::TooManyRequests { retry_after: retry_after_secs(w) });
                }
                Err(e) => store_failed(&e),
            }
        }
        Ok(())
    }
}

fn store_failed(e: &StoreError) {
    metrics::counter!("jamuna_rate_limit_errors_total").increment(1);
    tracing::warn!(error = %e, "the rate-limit store failed; letting the request through");
}

/// An account's key in the store: a digest, so the store never holds an
/// e-mail address (erasure has nothing to find there).
fn account_key(tenant: &str, email: &str) -> String {
    hex_digest(&format!("{}\n{}", tenant.trim(), email.trim().to_lowercase()))
}

fn hex_digest(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// Whole seconds, rounded up, at least one (what `Retry-After` carries).
fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

/// The client's IP address, put in the request's extensions by
/// [`rate_limit`] for the handlers that count by IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

/// An IP network, `10.0.0.0/8` or `2001:db8::/32` (a bare address is one host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0:?} is not an IP network (like 10.0.0.0/8 or fd00::/8)")]
pub struct NotACidr(String);

impl FromStr for Cidr {
    type Err = NotACidr;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || NotACidr(s.to_owned());
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let net = IpAddr::from_str(addr.trim()).map_err(|_| bad())?.to_canonical();
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p.trim().parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
        };
        Ok(Self { net, prefix })
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(u128::from(u32::from(net)), 32, self.prefix) == masked(u128::from(u32::from(ip)), 32, self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => masked(u128::from(net), 128, self.prefix) == masked(u128::from(ip), 128, self.prefix),
            _ => false,
        }
    }
}

/// The top `prefix` bits of a `width`-bit address.
fn masked(addr: u128, width: u8, prefix: u8) -> u128 {
    let host_bits = u32::from(width - prefix.min(width));
    addr.checked_shr(host_bits).unwrap_or(0)
}

/// A list of networks separated by commas or spaces (`JAMUNA_TRUSTED_PROXIES`).
pub fn parse_cidrs(list: &str) -> Result<Vec<Cidr>, NotACidr> {
    list.split(|c: char| c == ',' || c.is_whitespace()).filter(|s| !s.is_empty()).map(Cidr::from_str).collect()
}

/// The client's address: the peer, unless the peer is a trusted proxy; then
/// the rightmost address of `X-Forwarded-For` that is not a trusted proxy
/// (the ones left of it were written by the client and prove nothing). If
/// every hop is trusted, the leftmost one; an entry that is not an address
/// ends the walk at the last trusted hop.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Ok(ip) = IpAddr::from_str(hop) else { break };
        client = ip.to_canonical();
        if !is_trusted(client) {
            break;
        }
    }
    client
}

pub async fn rate_limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let ip = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ci| client_ip(ci.0.ip(), &parts.headers, &state.limiter.config.trusted_proxies));
    if let Some(ip) = ip {
        parts.extensions.insert(ClientIp(ip));
    }
    let path = parts.uri.path();
    if path == "/healthz" || path == "/readyz" {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let key = crate::auth::bearer(&parts)
        .and_then(|t| state.tokens.verify_access(t).ok())
        .map(|c| format!("user:{}:{}", c.tenant, c.user))
        .or_else(|| ip.map(|ip| format!("ip:{ip}")))
        .unwrap_or_else(|| "anonymous".into());
    match state.limiter.check(&key).await {
        Ok(Ok(())) => {}
        Ok(Err(retry_after)) => {
            metrics::counter!("jamuna_http_rate_limited_total").increment(1);
            return ApiError::TooManyRequests { retry_after }.into_response();
        }
        Err(e) => store_failed(&e),
    }
    next.run(Request::from_parts(parts, body)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_window_allows_its_quota_then_refuses() {
        let l = Limiter::new(3);
        for _ in 0..3 {
            assert_eq!(l.check("a").await.expect("memory never fails"), Ok(()));
        }
        let wait = l.check("a").await.expect("memory never fails").expect_err("over the quota");
        assert!((1..=60).contains(&wait), "{wait}");
        assert_eq!(l.check("b").await.expect("memory never fails"), Ok(()), "clients are counted apart");
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(59_001)), 60);
        assert_eq!(retry_after_secs(Duration::from_secs(7)), 7);
    }

    fn wait_of(r: Result<(), ApiError>) -> u64 {
        match r {
            Err(ApiError::TooManyRequests { retry_after }) => retry_after,
            other => panic!("not throttled: {other:?}"),
        }
    }

    #[tokio::test]
    async fn login_attempts_back_off_in_growing_windows_and_success_clears_them() {
        let l = Limiter::new(1000);
        for i in 0..5 {
            assert!(l.login_attempt("demo", "a@example.com").await.is_ok(), "attempt {i}");
        }
        let first = wait_of(l.login_attempt("demo", "A@Example.com ").await);
        assert!((1..=60).contains(&first), "the first lock-out is at most a minute: {first}");
        for _ in 0..4 {
            let _ = l.login_attempt("demo", "a@example.com").await;
        }
        let second = wait_of(l.login_attempt("demo", "a@example.com").await);
        assert!(second > 60 && second <= 15 * 60, "hammering moves to the 15-minute window: {second}");
        assert!(l.login_attempt("demo", "b@example.com").await.is_ok(), "accounts are counted apart");
        assert!(l.login_attempt("other", "a@example.com").await.is_ok(), "and tenants");
        l.login_succeeded("demo", "a@example.com").await;
        assert!(l.login_attempt("demo", "a@example.com").await.is_ok(), "success clears the count");
    }

    #[tokio::test]
    async fn visitors_are_counted_per_ip_and_per_widget_key() {
        let config = LimitsConfig { visitors_per_ip_per_hour: 2, visitors_per_widget_key_per_hour: 3, ..LimitsConfig::default() };
        let l = Limiter::new(1000).configured(config);
        let (a, b, c): (IpAddr, IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap(), "10.0.0.3".parse().unwrap());
        assert!(l.visitor_minted(Some(a), "wk").await.is_ok());
        assert!(l.visitor_minted(Some(a), "wk").await.is_ok());
        assert!(wait_of(l.visitor_minted(Some(a), "wk").await) > 0, "the third from one IP");
        assert!(l.visitor_minted(Some(b), "wk").await.is_ok(), "another IP");
        assert!(wait_of(l.visitor_minted(Some(c), "wk").await) > 0, "the fourth for one key, whatever the IP");
        assert!(l.visitor_minted(Some(c), "wk2").await.is_ok(), "another key");
    }

    struct Down;
    #[async_trait::async_trait]
    impl RateLimits for Down {
        async fn hit(&self, _: &str, _: u32, _: Duration) -> Result<Result<(), Duration>, StoreError> {
            Err(StoreError::unavailable(std::io::Error::other("redis is down")))
        }
        async fn reset(&self, _: &str) -> Result<(), StoreError> {
            Err(StoreError::unavailable(std::io::Error::other("redis is down")))
        }
    }

    #[tokio::test]
    async fn a_failing_store_is_reported_to_the_caller() {
        let l = Limiter::with_store(1, Arc::new(Down));
        assert!(l.check("a").await.is_err_and(|e| e.is_transient()));
        assert!(l.login_attempt("demo", "a@example.com").await.is_ok(), "sign-in goes on without the store");
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_parse_and_contain() {
        let list = parse_cidrs("10.0.0.0/8, 192.168.1.7 fd00::/8,::1").unwrap();
        assert_eq!(list.len(), 4);
        assert!(list[0].contains(ip("10.200.3.4")) && !list[0].contains(ip("11.0.0.1")));
        assert!(list[1].contains(ip("192.168.1.7")) && !list[1].contains(ip("192.168.1.8")));
        assert!(list[2].contains(ip("fd12::1")) && !list[2].contains(ip("fe80::1")));
        assert!(list[3].contains(ip("::1")));
        assert!(list[0].contains(ip("::ffff:10.1.2.3")), "IPv4-mapped IPv6 is IPv4");
        assert!(!list[0].contains(ip("::a00:1")), "families do not mix");
        assert!(parse_cidrs("0.0.0.0/0").unwrap()[0].contains(ip("8.8.8.8")));
        assert_eq!(parse_cidrs("").unwrap(), vec![]);
        for bad in ["10.0.0.0/33", "fd00::/129", "localhost", "10.0.0/8", "10.0.0.0/x"] {
            assert!(parse_cidrs(bad).is_err(), "{bad}");
        }
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_client_is_the_rightmost_untrusted_hop() {
        let trusted = parse_cidrs("10.0.0.0/8").unwrap();
        // An untrusted peer: its header is ignored.
        assert_eq!(client_ip(ip("203.0.113.9"), &xff(&["1.2.3.4"]), &trusted), ip("203.0.113.9"));
        assert_eq!(client_ip(ip("127.0.0.1"), &xff(&["1.2.3.4"]), &[]), ip("127.0.0.1"), "no trusted proxies: never");
        // Through one proxy: what the proxy saw.
        assert_eq!(client_ip(ip("10.0.0.2"), &xff(&["198.51.100.1"]), &trusted), ip("198.51.100.1"));
        // The client's own entries, left of it, are not believed.
        assert_eq!(client_ip(ip("10.0.0.2"), &xff(&["6.6.6.6, 198.51.100.1"]), &trusted), ip("198.51.100.1"));
        // Through two proxies, in one header or two.
        assert_eq!(client_ip(ip("10.0.0.2"), &xff(&["6.6.6.6, 198.51.100.1, 10.0.0.3"]), &trusted), ip("198.51.100.1"));
        assert_eq!(client_ip(ip("10.0.0.2"), &xff(&["6.6.6.6", "198.51.100.1, 10.0.0.3"]), &trusted), ip("198.51.100.1"));
        // No header, or only trusted hops: the leftmost trusted one.
        assert_eq!(client_ip(ip("10.0.0.2"), &HeaderMap::new(), &trusted), ip("10.0.0.2"));
        assert_eq!(client_ip(ip("10.0.0.2"), &xff(&["10.0.0.9, 10.0.0.3"]), &trusted), ip("10.0.0.9"));
        // Garbage ends the walk at the last trusted hop.
        assert_eq!(client_ip(ip("10.0.0.2"), &xff(&["1.1.1.1, unknown, 10.0.0.3"]), &trusted), ip("10.0.0.3"));
        assert_eq!(client_ip(ip("10.0.0.2"), &xff(&["::ffff:198.51.100.1"]), &trusted), ip("198.51.100.1"));
    }
}
