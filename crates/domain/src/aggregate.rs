//! What every aggregate and every event has in common.

use crate::{Personal, Timestamp, UserId};
use serde::{Serialize, de::DeserializeOwned};

/// The kinds of aggregate; each names a family of streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AggregateKind {
    Tenant,
    Conversation,
    User,
    KnowledgeBase,
    /// An e-mail address claimed by a user (see [`crate::email_claim`]).
    EmailClaim,
    /// A tenant's canned replies (see [`crate::canned_reply`]).
    CannedReplies,
    /// A tenant's teams of agents (see [`crate::team`]).
    Team,
    /// A tenant's webhook subscriptions (see [`crate::webhook`]).
    Webhooks,
    /// One webhook subscription's deliveries.
    WebhookDeliveries,
}

impl AggregateKind {
    pub const ALL: [AggregateKind; 9] = [
        Self::Tenant,
        Self::Conversation,
        Self::User,
        Self::KnowledgeBase,
        Self::EmailClaim,
        Self::CannedReplies,
        Self::Team,
        Self::Webhooks,
        Self::WebhookDeliveries,
    ];

    /// The name used in stream ids and NATS subjects.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tenant => "tenant",
            Self::Conversation => "conversation",
            Self::User => "user",
            Self::KnowledgeBase => "kb",
            Self::EmailClaim => "email",
            Self::CannedReplies => "canned",
            Self::Team => "team",
            Self::Webhooks => "webhooks",
            Self::WebhookDeliveries => "deliveries",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for AggregateKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event of one aggregate: serialised as JSON with a `type` tag.
pub trait DomainEvent: Serialize + DeserializeOwned + Clone + PartialEq + std::fmt::Debug + Send + Sync + 'static {
    /// The event's type, as in its `type` tag (`"MessagePosted"`).
    fn event_type(&self) -> &'static str;

    /// The schema version this code writes for the event's type. An older
    /// version in the log is upgraded by [`crate::upcast`] before it is read.
    fn schema_version(&self) -> u16 {
        crate::upcast::current_schema(self.event_type())
    }

    /// Every piece of personal data the event carries, so that the write side
    /// can seal it before appending and open it after reading.
    fn personal_fields_mut(&mut self) -> Vec<&mut Personal>;
}

/// A consistency boundary: its state is the fold of its events, and a
/// command is decided against that state alone.
///
/// ```
/// use jamuna_domain::{Aggregate, conversation::*, TenantId, UserId, ConversationId};
/// let now = chrono::Utc::now();
/// let mut state = Conversation::default();
/// let events = state.decide(&ConversationCommand::Start {
///     tenant: TenantId::parse("acme").unwrap(),
///     conversation_id: ConversationId::parse("c1").unwrap(),
///     customer: UserId::parse("u1").unwrap(),
///     channel: Channel::Web,
/// }, now).unwrap();
/// for e in &events { state.apply(e); }
/// assert_eq!(state.status(), Some(Status::Open));
/// ```
pub trait Aggregate: Default + Clone + PartialEq + std::fmt::Debug + Send + Sync + 'static {
    const KIND: AggregateKind;
    type Command: std::fmt::Debug + Send + Sync;
    type Event: DomainEvent;
    type Error: std::error::Error + Clone + PartialEq + Send + Sync + 'static;

    /// Decides what happens. An empty list means "nothing to do" (an
    /// idempotent retry), which is not an error.
    fn decide(&self, command: &Self::Command, now: Timestamp) -> Result<Vec<Self::Event>, Self::Error>;

    /// Folds one event into the state. Never fails: events are facts.
    fn apply(&mut self, event: &Self::Event);

    /// The person whose key seals the personal data of events in this
    /// aggregate (known once the aggregate has started).
    fn data_subject(&self, event: &Self::Event) -> Option<UserId>;

    /// The number of events applied so far (the stream version).
    fn version(&self) -> u64;
}
