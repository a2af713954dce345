//! Where a delivery may go, checked when it is sent (not only when the URL
//! was registered: a name may resolve elsewhere by then — DNS rebinding).
//!
//! * An IP literal host is checked by [`check_target`] before the request.
//! * A name is resolved by [`GuardedResolver`], which the HTTP client uses
//!   for every connection: it drops forbidden addresses
//!   ([`jamuna_domain::webhook::forbidden_ip`]) and fails when none is left,
//!   so the client connects only to an address that was checked.
//!
//! Hosts in the allow-list (`webhooks.allow_insecure_hosts`) skip both, and
//! may use plain `http`.

use jamuna_domain::webhook::forbidden_ip;
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Why a target is refused at send time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    #[error("not a URL")]
    NotAUrl,
    #[error("only https is allowed")]
    Insecure,
    #[error("the address {0} is loopback, private or link-local")]
    Forbidden(IpAddr),
    #[error("{0} resolves only to loopback, private or link-local addresses")]
    ForbiddenName(String),
}

fn allowed(allow: &[String], host: &str) -> bool {
    allow.iter().any(|h| h.eq_ignore_ascii_case(host.trim_start_matches('[').trim_end_matches(']')))
}

/// Checks the scheme and an IP-literal host of `url` (names are checked by the resolver).
pub fn check_target(url: &str, allow: &[String]) -> Result<Url, GuardError> {
    let parsed = Url::parse(url).map_err(|_| GuardError::NotAUrl)?;
    // The parser normalises every IPv4 spelling (`127.1`, `2130706433`) to dotted form.
    let name = parsed.host_str().ok_or(GuardError::NotAUrl)?.to_owned();
    if allowed(allow, &name) {
        return Ok(parsed);
    }
    if parsed.scheme() != "https" {
        return Err(GuardError::Insecure);
    }
    match name.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().ok() {
        Some(ip) if forbidden_ip(ip) => Err(GuardError::Forbidden(ip)),
        _ => Ok(parsed),
    }
}

/// A resolver that never hands the client a forbidden address.
#[derive(Clone)]
pub struct GuardedResolver {
    allow: Arc<Vec<String>>,
}

impl GuardedResolver {
    pub fn new(allow: Arc<Vec<String>>) -> Self {
        Self { allow }
    }

    /// The addresses `host` may be reached at.
    pub async fn lookup(&self, host: &str) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, 0)).await?.collect();
        if allowed(&self.allow, host) {
            return Ok(addrs);
        }
        let ok: Vec<SocketAddr> = addrs.into_iter().filter(|a| !forbidden_ip(a.ip())).collect();
        if ok.is_empty() {
            return Err(Box::new(GuardError::ForbiddenName(host.to_owned())));
        }
        Ok(ok)
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let this = self.clone();
        Box::pin(async move {
            let addrs = this.lookup(name.as_str()).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_literals_are_checked_in_every_spelling() {
        for url in
            ["https://169.254.169.254/", "https://127.1/", "https://2130706433/", "https://0x7f.0.0.1/", "https://[::ffff:10.0.0.1]/"]
        {
            assert!(matches!(check_target(url, &[]), Err(GuardError::Forbidden(_))), "{url}");
        }
        assert_eq!(check_target("http://hooks.example.com/", &[]), Err(GuardError::Insecure));
        assert!(check_target("https://8.8.8.8/", &[]).is_ok());
        assert!(check_target("http://127.0.0.1:9/", &["127.0.0.1".into()]).is_ok());
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused_unless_allowed() {
        let guarded = GuardedResolver::new(Arc::new(vec![]));
        let err = guarded.lookup("localhost").await.expect_err("localhost is loopback");
        assert!(err.to_string().contains("localhost"), "{err}");
        let allowed = GuardedResolver::new(Arc::new(vec!["localhost".into()]));
        assert!(allowed.lookup("localhost").await.expect("allowed").iter().all(|a| a.ip().is_loopback()));
    }
}
