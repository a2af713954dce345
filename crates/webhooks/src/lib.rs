//! # Jamuna's webhooks
//!
//! A tenant's admins subscribe HTTPS endpoints to event types
//! ([`jamuna_domain::webhook`]); the [`Deliverer`] follows the event log and
//! POSTs each subscribed event to each subscriber, signed:
//!
//! ```text
//! POST <url>
//! Content-Type: application/json
//! X-Jamuna-Delivery: dlv_<32 hex>          (the same on every attempt and after a restart)
//! X-Jamuna-Event: MessagePosted
//! X-Jamuna-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
//!
//! {"delivery_id": "...", "event_id": "...", "type": "MessagePosted", "tenant": "acme",
//!  "conversation_id": "c1", "occurred_at": "...", "data": {...}}
//! ```
//!
//! * [`sign`] — the signature, and how a receiver verifies it (reject a
//!   timestamp older than a few minutes: replay).
//! * [`payload`] — the body: the staff view of the event with its personal data
//!   opened at send time, so an erased user's reads `"[erased]"`.
//! * [`guard`] — where a delivery may go: the resolved addresses are checked
//!   at connection time (no loopback, private or link-local address unless the
//!   host is allowed), no redirects are followed, no proxy is used; [`http`]
//!   sends over exactly the addresses it checked.
//! * [`deliver`] — the consumer: a checkpoint, retries with exponential
//!   back-off ([`backoff`]), outcomes recorded as events on the webhook's
//!   deliveries stream. At least once: see [`deliver`] for the duplicates.
#![forbid(unsafe_code)]

pub mod backoff;
pub mod deliver;
pub mod guard;
pub mod http;
pub mod payload;
pub mod sign;

pub use deliver::{Checkpoints, Deliverer, DelivererConfig};
