//! The envelope every stored event travels in.
//!
//! An event on its own says what happened; its envelope says where it sits
//! (stream and version, global position), whose it is (tenant), when it
//! happened, and why (causation and correlation ids, so that a bot answer
//! can be traced back to the customer message that caused it).

use crate::{AggregateKind, IdError, TenantId, Timestamp, UserId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One aggregate's stream of events: `<tenant>.<kind>.<id>`.
///
/// The same form is the tail of the stream's NATS subject, so every part is
/// a safe id (see [`crate::ids`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId {
    tenant: TenantId,
    kind: AggregateKind,
    id: String,
}

/// Why a string is not a stream id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamIdError {
    #[error("a stream id has the form <tenant>.<kind>.<id>, got {0:?}")]
    Shape(String),
    #[error("unknown aggregate kind {0:?}")]
    Kind(String),
    #[error(transparent)]
    Id(#[from] IdError),
}

impl StreamId {
    pub fn new(tenant: TenantId, kind: AggregateKind, id: impl std::fmt::Display) -> Result<Self, StreamIdError> {
        let id = id.to_string();
        // Reuse the id rules: the last part of the stream id is an id like any other.
        crate::UserId::parse(id.clone()).map_err(|e| match e {
            IdError::Empty { .. } => IdError::Empty { kind: "stream id" },
            IdError::TooLong { max, .. } => IdError::TooLong { kind: "stream id", max },
            IdError::InvalidCharacter { .. } => IdError::InvalidCharacter { kind: "stream id" },
        })?;
        Ok(Self { tenant, kind, id })
    }

    pub fn conversation(tenant: &TenantId, id: &crate::ConversationId) -> Self {
        Self { tenant: tenant.clone(), kind: AggregateKind::Conversation, id: id.to_string() }
    }

    pub fn user(tenant: &TenantId, id: &UserId) -> Self {
        Self { tenant: tenant.clone(), kind: AggregateKind::User, id: id.to_string() }
    }

    /// A tenant's own stream: its creation and settings.
    pub fn of_tenant(tenant: &TenantId) -> Self {
        Self { tenant: tenant.clone(), kind: AggregateKind::Tenant, id: tenant.to_string() }
    }

    /// A tenant has one knowledge base.
    pub fn knowledge_base(tenant: &TenantId) -> Self {
        Self { tenant: tenant.clone(), kind: AggregateKind::KnowledgeBase, id: "kb".into() }
    }

    /// A tenant's canned replies: one stream, `<tenant>.canned.replies`.
    pub fn canned_replies(tenant: &TenantId) -> Self {
        Self { tenant: tenant.clone(), kind: AggregateKind::CannedReplies, id: "replies".into() }
    }

    /// The claim of an e-mail address, named by a keyed hash of tenant and
    /// address (made by the caller, who holds the key): 64 hex digits.
    pub fn email_claim(tenant: &TenantId, digest: &[u8; 32]) -> Self {
        let id = digest.iter().map(|b| format!("{b:02x}")).collect();
        Self { tenant: tenant.clone(), kind: AggregateKind::EmailClaim, id }
    }

    /// A tenant's teams: one stream for all of them (see [`crate::team`]).
    pub fn teams(tenant: &TenantId) -> Self {
        Self { tenant: tenant.clone(), kind: AggregateKind::Team, id: "teams".into() }
    }

    /// A tenant's webhook subscriptions: one stream.
    pub fn webhooks(tenant: &TenantId) -> Self {
        Self { tenant: tenant.clone(), kind: AggregateKind::Webhooks, id: "webhooks".into() }
    }

    /// One webhook's deliveries (`webhook` is a webhook id, a safe id).
    pub fn webhook_deliveries(tenant: &TenantId, webhook: &str) -> Self {
        Self { tenant: tenant.clone(), kind: AggregateKind::WebhookDeliveries, id: webhook.to_owned() }
    }

    pub fn parse(s: &str) -> Result<Self, StreamIdError> {
        let mut parts = s.splitn(3, '.');
        let (Some(t), Some(k), Some(i)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(StreamIdError::Shape(s.to_owned()));
        };
        let kind = AggregateKind::parse(k).ok_or_else(|| StreamIdError::Kind(k.to_owned()))?;
        Self::new(TenantId::parse(t)?, kind, i)
    }

    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    pub fn kind(&self) -> AggregateKind {
        self.kind
    }
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.tenant, self.kind, self.id)
    }
}

impl Serialize for StreamId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for StreamId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// What the writer knows about an event besides the event itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMeta {
    /// UUID v7: unique, and ordered by creation time. Also the idempotency key
    /// of the append: the same event id is stored once.
    pub event_id: Uuid,
    pub tenant: TenantId,
    pub occurred_at: Timestamp,
    /// The event (or request) that caused this one.
    pub causation_id: Option<Uuid>,
    /// The conversation of causes this event belongs to (a request id at the edge).
    pub correlation_id: Uuid,
    /// Whose key seals the personal data in the event, if it has any.
    pub subject: Option<UserId>,
}

impl EventMeta {
    /// The trace this event belongs to, as 32 hex digits: its correlation id
    /// (the gateway makes the W3C trace id of a request its correlation id).
    pub fn trace_id_hex(&self) -> String {
        self.correlation_id.simple().to_string()
    }

    /// The id of the span that appended this event (a tracing span of the
    /// command handler), as 16 hex digits: the last 8 bytes of the event id,
    /// the random part of a UUID v7 (never all zero: they hold the variant
    /// bits). Derived, not stored, so a consumer of any event — old ones
    /// too — can name the span that wrote it as the parent of its own work.
    pub fn span_id_hex(&self) -> String {
        self.event_id.as_bytes()[8..].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A stored event: its place in the log, its metadata and the event.
///
/// The JSON form flattens everything into one object:
/// `{"position": 7, "stream": "acme.conversation.c1", "version": 3,
///   "event_id": "…", "tenant": "acme", "occurred_at": "…", …,
///   "type": "MessagePosted", "schema": 2, "data": {…}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<E> {
    /// Place in the whole log: gap-free, starting at 1.
    pub position: u64,
    pub stream: StreamId,
    /// Place in its stream: gap-free, starting at 1.
    pub version: u64,
    #[serde(flatten)]
    pub meta: EventMeta,
    #[serde(rename = "type")]
    pub event_type: String,
    /// The schema version the event was written with (before upcasting).
    pub schema: u16,
    pub data: E,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_round_trip_through_text() {
        let t = TenantId::parse("acme").unwrap();
        let s = StreamId::knowledge_base(&t);
        assert_eq!(s.to_string(), "acme.kb.kb");
        assert_eq!(StreamId::parse("acme.kb.kb").unwrap(), s);
        let claim = StreamId::email_claim(&t, &[0xab; 32]);
        assert_eq!(StreamId::parse(&claim.to_string()).unwrap(), claim);
        assert_eq!(claim.to_string(), format!("acme.email.{}", "ab".repeat(32)));
    }

    #[test]
    fn an_events_trace_and_span_ids_come_from_its_correlation_and_event_ids() {
        let meta = EventMeta {
            event_id: Uuid::parse_str("0190b6e2-7c4a-7d1e-9f3a-1b2c3d4e5f60").unwrap(),
            tenant: TenantId::parse("acme").unwrap(),
            occurred_at: chrono::DateTime::from_timestamp(0, 0).unwrap(),
            causation_id: None,
            correlation_id: Uuid::parse_str("4bf92f35-77b3-4da6-a3ce-929d0e0e4736").unwrap(),
            subject: None,
        };
        assert_eq!(meta.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(meta.span_id_hex(), "9f3a1b2c3d4e5f60");
    }

    #[test]
    fn refuses_bad_stream_ids() {
        assert!(matches!(StreamId::parse("acme.kb"), Err(StreamIdError::Shape(_))));
        assert!(matches!(StreamId::parse("acme.car.x"), Err(StreamIdError::Kind(_))));
        assert!(matches!(StreamId::parse("acme.user.a.b"), Err(StreamIdError::Id(_))));
    }
}
