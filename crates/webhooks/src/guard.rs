//! Where a delivery may go, checked when it is sent (not only when the URL
//! was registered: a name may resolve elsewhere by then — DNS rebinding).
//!
//! [`resolve`] parses the URL, checks an IP-literal host, or resolves a name
//! and drops every forbidden address
//! ([`jamuna_domain::webhook::forbidden_ip`]), failing when none is left. The
//! client then connects only to the addresses it returned, so what is
//! checked is what is reached. Hosts in the allow-list
//! (`webhooks.allow_insecure_hosts`) skip the checks and may use plain `http`.

use jamuna_domain::webhook::forbidden_ip;
use std::net::{IpAddr, SocketAddr};
use url::Url;

/// Why a target is refused at send time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    #[error("not an http(s) URL with a host")]
    NotAUrl,
    #[error("only https is allowed")]
    Insecure,
    #[error("the address {0} is loopback, private or link-local")]
    Forbidden(IpAddr),
    #[error("{0} resolves only to loopback, private or link-local addresses")]
    ForbiddenName(String),
    #[error("{0} does not resolve: {1}")]
    Unresolved(String, String),
}

/// A checked target: the URL, its host name and the addresses it may be reached at.
#[derive(Debug, Clone)]
pub struct Target {
    pub url: Url,
    /// The host as in the URL, without IPv6 brackets (the TLS server name).
    pub host: String,
    pub https: bool,
    pub addrs: Vec<SocketAddr>,
}

fn allowed(allow: &[String], host: &str) -> bool {
    allow.iter().any(|h| h.eq_ignore_ascii_case(host))
}

/// Parses `url` and checks its scheme and IP-literal host: the part of the
/// check that needs no resolver.
pub fn check_target(url: &str, allow: &[String]) -> Result<(Url, String, Option<IpAddr>), GuardError> {
    let parsed = Url::parse(url).map_err(|_| GuardError::NotAUrl)?;
    // The parser normalises every IPv4 spelling (`127.1`, `2130706433`) to dotted form.
    let host = parsed.host_str().ok_or(GuardError::NotAUrl)?.trim_start_matches('[').trim_end_matches(']').to_owned();
    let literal = host.parse::<IpAddr>().ok();
    if !matches!(parsed.scheme(), "https" | "http") {
        return Err(GuardError::NotAUrl);
    }
    if allowed(allow, &host) {
        return Ok((parsed, host, literal));
    }
    if let Some(ip) = literal
        && forbidden_ip(ip)
    {
        return Err(GuardError::Forbidden(ip));
    }
    if parsed.scheme() != "https" {
        return Err(GuardError::Insecure);
    }
    Ok((parsed, host, literal))
}

/// Checks `url` and resolves its host to the addresses a delivery may use.
pub async fn resolve(url: &str, allow: &[String]) -> Result<Target, GuardError> {
    let (url, host, literal) = check_target(url, allow)?;
    let https = url.scheme() == "https";
    let port = url.port_or_known_default().ok_or(GuardError::NotAUrl)?;
    let addrs: Vec<SocketAddr> = match literal {
        Some(ip) => vec![SocketAddr::new(ip, port)],
        None => {
            let found =
                tokio::net::lookup_host((host.as_str(), port)).await.map_err(|e| GuardError::Unresolved(host.clone(), e.to_string()))?;
            let found: Vec<SocketAddr> = found.collect();
            if allowed(allow, &host) {
                found
            } else {
                let ok: Vec<SocketAddr> = found.into_iter().filter(|a| !forbidden_ip(a.ip())).collect();
                if ok.is_empty() {
                    return Err(GuardError::ForbiddenName(host));
                }
                ok
            }
        }
    };
    Ok(Target { url, host, https, addrs })
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
        assert_eq!(check_target("http://hooks.example.com/", &[]).err(), Some(GuardError::Insecure));
        assert_eq!(check_target("ftp://hooks.example.com/", &[]).err(), Some(GuardError::NotAUrl));
        assert!(check_target("https://8.8.8.8/", &[]).is_ok());
        assert!(check_target("http://127.0.0.1:9/", &["127.0.0.1".into()]).is_ok());
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused_unless_allowed() {
        let err = resolve("https://localhost:8443/hook", &[]).await.expect_err("localhost is loopback");
        assert_eq!(err, GuardError::ForbiddenName("localhost".into()));
        let allowed = resolve("http://localhost:8443/hook", &["localhost".into()]).await.expect("allowed");
        assert!(!allowed.addrs.is_empty() && allowed.addrs.iter().all(|a| a.ip().is_loopback() && a.port() == 8443));
        assert!(!allowed.https);
    }
}
