//! Webhooks: a tenant's subscriptions to its events, and what became of each
//! delivery.
//!
//! Two aggregates, neither of them the tenant's own:
//!
//! * [`Webhooks`] — the tenant's subscriptions (one stream per tenant, so the
//!   bound on their number is an invariant): registered (id, URL, event types,
//!   signing secret), changed, removed, secret rotated. The secret is
//!   [`Personal`] data whose subject is the subscription itself
//!   ([`secret_subject`]): the write side seals it with a key of its own in the
//!   key store, so the log never holds it in clear, and removing the webhook
//!   erases that key (the secret is crypto-shredded with it).
//! * [`Deliveries`] — one stream per subscription: each delivery's outcome
//!   (delivered after n attempts with a status, or failed with the last
//!   error), keyed by a delivery id that the deliverer derives from the
//!   subscription and the event, so it is the same across restarts.
//!
//! URL rules ([`check_url`]): `https` only; no user info; no loopback,
//! private, link-local, unspecified, multicast or shared addresses, and no
//! `localhost` — unless the host is in the allow-list the caller passes in
//! (the installation's `webhooks.allow_insecure_hosts`, for tests and local
//! setups), which also allows plain `http`. The deliverer checks the
//! *resolved* address again before it connects ([`forbidden_ip`]).

#[cfg(test)]
mod tests;

use crate::{Aggregate, AggregateKind, DomainEvent, Personal, Timestamp, UserId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The most subscriptions a tenant may have.
pub const MAX_WEBHOOKS: usize = 10;
/// The longest URL accepted, in bytes.
pub const MAX_URL_LEN: usize = 2048;
/// The shortest signing secret, in bytes.
pub const MIN_SECRET_LEN: usize = 24;
/// The longest error text a failed delivery keeps, in characters.
pub const MAX_ERROR_LEN: usize = 500;

/// The event types a webhook may subscribe to: what happens in conversations.
pub const EVENT_TYPES: &[&str] = &[
    "ConversationStarted",
    "MessagePosted",
    "BotAnswered",
    "HandoffRequested",
    "AgentAssigned",
    "ConversationResolved",
    "ConversationReopened",
    "FeedbackGiven",
    "TagsChanged",
];

/// The key-store subject that seals a subscription's secret.
pub fn secret_subject(webhook: &str) -> UserId {
    UserId::parse(format!("webhook-secret-{webhook}")).expect("a webhook id is a safe id of at most 40 characters")
}

/// A webhook's id: `wh` and 32 hex digits (made by the caller).
pub fn parse_webhook_id(s: &str) -> Result<String, WebhookError> {
    if s.len() == 34 && s.starts_with("wh") && s[2..].bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
        Ok(s.to_owned())
    } else {
        Err(WebhookError::UnknownWebhook)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum WebhooksCommand {
    Register { webhook: String, url: String, event_types: Vec<String>, secret: Personal, allowed_hosts: Vec<String> },
    Change { webhook: String, url: String, event_types: Vec<String>, allowed_hosts: Vec<String> },
    Remove { webhook: String },
    RotateSecret { webhook: String, secret: Personal },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum WebhooksEvent {
    WebhookRegistered { webhook: String, url: String, event_types: Vec<String>, secret: Personal },
    WebhookChanged { webhook: String, url: String, event_types: Vec<String> },
    WebhookRemoved { webhook: String },
    WebhookSecretRotated { webhook: String, secret: Personal },
}

impl DomainEvent for WebhooksEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::WebhookRegistered { .. } => "WebhookRegistered",
            Self::WebhookChanged { .. } => "WebhookChanged",
            Self::WebhookRemoved { .. } => "WebhookRemoved",
            Self::WebhookSecretRotated { .. } => "WebhookSecretRotated",
        }
    }

    /// The signing secret, sealed with the subscription's own key.
    fn personal_fields_mut(&mut self) -> Vec<&mut Personal> {
        match self {
            Self::WebhookRegistered { secret, .. } | Self::WebhookSecretRotated { secret, .. } => vec![secret],
            Self::WebhookChanged { .. } | Self::WebhookRemoved { .. } => vec![],
        }
    }
}

impl WebhooksEvent {
    pub fn webhook(&self) -> &str {
        match self {
            Self::WebhookRegistered { webhook, .. }
            | Self::WebhookChanged { webhook, .. }
            | Self::WebhookRemoved { webhook }
            | Self::WebhookSecretRotated { webhook, .. } => webhook,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("a tenant has at most {MAX_WEBHOOKS} webhooks")]
    TooManyWebhooks,
    #[error("the webhook is already registered")]
    AlreadyRegistered,
    #[error("no such webhook")]
    UnknownWebhook,
    #[error("a webhook URL has at most {MAX_URL_LEN} bytes")]
    UrlTooLong,
    #[error("a webhook URL is https://host[:port][/path]")]
    InvalidUrl,
    #[error("a webhook URL must use https")]
    InsecureUrl,
    #[error("a webhook may not point at a loopback, private or link-local address")]
    ForbiddenHost,
    #[error("a webhook subscribes to at least one event type")]
    NoEventTypes,
    #[error("{0:?} is not an event type a webhook can subscribe to")]
    UnknownEventType(String),
    #[error("a signing secret has at least {MIN_SECRET_LEN} bytes")]
    InvalidSecret,
}

impl crate::ErrorCode for WebhookError {
    fn code(&self) -> &'static str {
        match self {
            Self::TooManyWebhooks => "too_many_webhooks",
            Self::AlreadyRegistered => "already_registered",
            Self::UnknownWebhook => "unknown_webhook",
            Self::UrlTooLong => "url_too_long",
            Self::InvalidUrl => "invalid_url",
            Self::InsecureUrl => "insecure_url",
            Self::ForbiddenHost => "forbidden_host",
            Self::NoEventTypes => "no_event_types",
            Self::UnknownEventType(_) => "unknown_event_type",
            Self::InvalidSecret => "invalid_secret",
        }
    }
}

/// An address a webhook may never reach (unless its host is allowed by name):
/// loopback, private (RFC 1918, unique-local), link-local (the cloud metadata
/// service at 169.254.169.254), carrier-grade NAT, unspecified, broadcast,
/// multicast, documentation, and IPv4 mapped into IPv6 the same way.
pub fn forbidden_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_v4(v4);
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link-local
                || (first == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
                || v6 == Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0)
        }
    }
}

fn forbidden_v4(v4: Ipv4Addr) -> bool {
    let [a, b, ..] = v4.octets();
    v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || v4.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240
}

/// The host of a URL (lower case, IPv6 without brackets), or why there is none.
pub fn url_host(url: &str) -> Result<(String, bool), WebhookError> {
    let (scheme, rest) = url.split_once("://").ok_or(WebhookError::InvalidUrl)?;
    let https = match scheme {
        "https" => true,
        "http" => false,
        _ => return Err(WebhookError::InvalidUrl),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') || url.chars().any(|c| c.is_whitespace() || c.is_control() || c == '\\') {
        return Err(WebhookError::InvalidUrl);
    }
    let host = if let Some(v6) = authority.strip_prefix('[') {
        let (host, port) = v6.split_once(']').ok_or(WebhookError::InvalidUrl)?;
        if !(port.is_empty() || port.strip_prefix(':').is_some_and(valid_port)) {
            return Err(WebhookError::InvalidUrl);
        }
        host.parse::<Ipv6Addr>().map_err(|_| WebhookError::InvalidUrl)?;
        host
    } else {
        let (host, port) = authority.split_once(':').unwrap_or((authority, ""));
        if authority.contains(':') && !valid_port(port) {
            return Err(WebhookError::InvalidUrl);
        }
        host
    };
    let host = host.to_ascii_lowercase();
    let name_ok = host.contains(':')
        || (!host.is_empty()
            && host.split('.').all(|l| !l.is_empty() && l.len() <= 63)
            && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'));
    if !name_ok || host.len() > 253 {
        return Err(WebhookError::InvalidUrl);
    }
    Ok((host, https))
}

fn valid_port(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok_and(|n| n > 0)
}

/// Checks a webhook URL; hosts in `allowed_hosts` may use `http` and any address.
pub fn check_url(url: &str, allowed_hosts: &[String]) -> Result<(), WebhookError> {
    if url.len() > MAX_URL_LEN {
        return Err(WebhookError::UrlTooLong);
    }
    let (host, https) = url_host(url)?;
    if allowed_hosts.iter().any(|h| h.eq_ignore_ascii_case(&host)) {
        return Ok(());
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        if forbidden_ip(ip) {
            return Err(WebhookError::ForbiddenHost);
        }
        return if https { Ok(()) } else { Err(WebhookError::InsecureUrl) };
    }
    // A host whose last label is a number is read as an IPv4 address by URL
    // parsers (`https://2130706433/` is 127.0.0.1): only the dotted form is taken.
    let last = host.rsplit('.').next().unwrap_or_default();
    if last.bytes().all(|b| b.is_ascii_digit()) || (last.starts_with("0x") && last[2..].bytes().all(|b| b.is_ascii_hexdigit())) {
        return Err(WebhookError::ForbiddenHost);
    }
    if host == "localhost" || host.ends_with(".localhost") {
        return Err(WebhookError::ForbiddenHost);
    }
    if !https {
        return Err(WebhookError::InsecureUrl);
    }
    Ok(())
}

fn check_event_types(types: &[String]) -> Result<Vec<String>, WebhookError> {
    if types.is_empty() {
        return Err(WebhookError::NoEventTypes);
    }
    let mut out: Vec<String> = Vec::new();
    for t in types {
        if !EVENT_TYPES.contains(&t.as_str()) {
            return Err(WebhookError::UnknownEventType(t.clone()));
        }
        if !out.contains(t) {
            out.push(t.clone());
        }
    }
    out.sort();
    Ok(out)
}

fn check_secret(secret: &Personal) -> Result<(), WebhookError> {
    match secret {
        Personal::Plain(s) if s.len() >= MIN_SECRET_LEN => Ok(()),
        _ => Err(WebhookError::InvalidSecret),
    }
}

/// One subscription, as the aggregate knows it (no secret: deciding never needs it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subscription {
    pub url: String,
    pub event_types: Vec<String>,
}

/// A tenant's webhooks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Webhooks {
    version: u64,
    subscriptions: BTreeMap<String, Subscription>,
    removed: std::collections::BTreeSet<String>,
}

impl Webhooks {
    pub fn subscriptions(&self) -> &BTreeMap<String, Subscription> {
        &self.subscriptions
    }
}

impl Aggregate for Webhooks {
    const KIND: AggregateKind = AggregateKind::Webhooks;
    type Command = WebhooksCommand;
    type Event = WebhooksEvent;
    type Error = WebhookError;

    fn decide(&self, command: &WebhooksCommand, _now: Timestamp) -> Result<Vec<WebhooksEvent>, WebhookError> {
        use WebhooksCommand as C;
        use WebhooksEvent as E;
        match command {
            C::Register { webhook, url, event_types, secret, allowed_hosts } => {
                parse_webhook_id(webhook)?;
                if self.subscriptions.contains_key(webhook) || self.removed.contains(webhook) {
                    return Err(WebhookError::AlreadyRegistered);
                }
                if self.subscriptions.len() >= MAX_WEBHOOKS {
                    return Err(WebhookError::TooManyWebhooks);
                }
                check_url(url, allowed_hosts)?;
                let event_types = check_event_types(event_types)?;
                check_secret(secret)?;
                Ok(vec![E::WebhookRegistered { webhook: webhook.clone(), url: url.clone(), event_types, secret: secret.clone() }])
            }
            C::Change { webhook, url, event_types, allowed_hosts } => {
                let current = self.subscriptions.get(webhook).ok_or(WebhookError::UnknownWebhook)?;
                check_url(url, allowed_hosts)?;
                let event_types = check_event_types(event_types)?;
                if current.url == *url && current.event_types == event_types {
                    return Ok(vec![]);
                }
                Ok(vec![E::WebhookChanged { webhook: webhook.clone(), url: url.clone(), event_types }])
            }
            C::Remove { webhook } => {
                if self.removed.contains(webhook) {
                    return Ok(vec![]);
                }
                if !self.subscriptions.contains_key(webhook) {
                    return Err(WebhookError::UnknownWebhook);
                }
                Ok(vec![E::WebhookRemoved { webhook: webhook.clone() }])
            }
            C::RotateSecret { webhook, secret } => {
                if !self.subscriptions.contains_key(webhook) {
                    return Err(WebhookError::UnknownWebhook);
                }
                check_secret(secret)?;
                Ok(vec![E::WebhookSecretRotated { webhook: webhook.clone(), secret: secret.clone() }])
            }
        }
    }

    fn apply(&mut self, event: &WebhooksEvent) {
        use WebhooksEvent as E;
        self.version += 1;
        match event {
            E::WebhookRegistered { webhook, url, event_types, .. } | E::WebhookChanged { webhook, url, event_types } => {
                self.subscriptions.insert(webhook.clone(), Subscription { url: url.clone(), event_types: event_types.clone() });
            }
            E::WebhookRemoved { webhook } => {
                self.subscriptions.remove(webhook);
                self.removed.insert(webhook.clone());
            }
            E::WebhookSecretRotated { .. } => {}
        }
    }

    /// Each subscription's secret is sealed with a key of its own.
    fn data_subject(&self, event: &WebhooksEvent) -> Option<UserId> {
        Some(secret_subject(event.webhook()))
    }

    fn version(&self) -> u64 {
        self.version
    }
}

/// How one delivery ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum DeliveriesEvent {
    /// The receiver answered 2xx.
    WebhookDelivered { delivery_id: String, event_id: uuid::Uuid, event_type: String, attempts: u32, status: u16 },
    /// Every attempt failed; `status` is the last response's, if there was one.
    WebhookDeliveryFailed {
        delivery_id: String,
        event_id: uuid::Uuid,
        event_type: String,
        attempts: u32,
        status: Option<u16>,
        error: String,
    },
}

impl DomainEvent for DeliveriesEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::WebhookDelivered { .. } => "WebhookDelivered",
            Self::WebhookDeliveryFailed { .. } => "WebhookDeliveryFailed",
        }
    }

    /// Ids, counts and the receiver's status: nothing about a person.
    fn personal_fields_mut(&mut self) -> Vec<&mut Personal> {
        vec![]
    }
}

impl DeliveriesEvent {
    pub fn delivery_id(&self) -> &str {
        match self {
            Self::WebhookDelivered { delivery_id, .. } | Self::WebhookDeliveryFailed { delivery_id, .. } => delivery_id,
        }
    }
}

/// Records a delivery's outcome; recording a delivered one again does nothing
/// (a deliverer restarted after sending, before recording, sends it again).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordDelivery(pub DeliveriesEvent);

/// One subscription's deliveries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Deliveries {
    version: u64,
    outcomes: BTreeMap<String, DeliveriesEvent>,
}

impl Deliveries {
    /// The last outcome of each delivery, by delivery id.
    pub fn outcomes(&self) -> &BTreeMap<String, DeliveriesEvent> {
        &self.outcomes
    }
    pub fn delivered(&self, delivery_id: &str) -> bool {
        matches!(self.outcomes.get(delivery_id), Some(DeliveriesEvent::WebhookDelivered { .. }))
    }
}

impl Aggregate for Deliveries {
    const KIND: AggregateKind = AggregateKind::WebhookDeliveries;
    type Command = RecordDelivery;
    type Event = DeliveriesEvent;
    type Error = WebhookError;

    fn decide(&self, RecordDelivery(outcome): &RecordDelivery, _now: Timestamp) -> Result<Vec<DeliveriesEvent>, WebhookError> {
        if self.delivered(outcome.delivery_id()) || self.outcomes.get(outcome.delivery_id()) == Some(outcome) {
            return Ok(vec![]);
        }
        let mut outcome = outcome.clone();
        if let DeliveriesEvent::WebhookDeliveryFailed { error, .. } = &mut outcome
            && error.chars().count() > MAX_ERROR_LEN
        {
            *error = error.chars().take(MAX_ERROR_LEN).collect();
        }
        Ok(vec![outcome])
    }

    fn apply(&mut self, event: &DeliveriesEvent) {
        self.version += 1;
        self.outcomes.insert(event.delivery_id().to_owned(), event.clone());
    }

    fn data_subject(&self, _event: &DeliveriesEvent) -> Option<UserId> {
        None
    }

    fn version(&self) -> u64 {
        self.version
    }
}
