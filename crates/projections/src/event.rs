//! The events a read model sees, and the bridge from a read model to a
//! [`Projection`].
//!
//! The log hands out [`RecordedEvent`]s: JSON, possibly in an old schema,
//! with personal data sealed. A read model wants domain events. Each model
//! says per event type what it needs ([`Interest`]): nothing (the event only
//! moves its checkpoint), the decoded event, or the decoded event with its
//! personal data opened (which costs a key look-up and a decryption, so the
//! analytics model, which counts but never reads text, does not ask for it).
//!
//! [`ReadModelProjection`] does that decoding for any [`ReadModel`] and turns
//! a failure into [`ProjectionError::BadEvent`] for the event at fault.

use crate::error::{ProjectionError, StoreError};
use crate::runtime::Projection;
use async_trait::async_trait;
use jamuna_commands::seal::{self, SealError};
use jamuna_commands::{RecordedEvent, Sealer};
use jamuna_domain::conversation::ConversationEvent;
use jamuna_domain::knowledge_base::KnowledgeBaseEvent;
use jamuna_domain::tenant::TenantEvent;
use jamuna_domain::user::UserEvent;
use jamuna_domain::{AggregateKind, DomainEvent, Personal, StreamId, TenantId, Timestamp};
use std::sync::Arc;

/// What a read model needs of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interest {
    /// Nothing: the event only advances the checkpoint.
    Skip,
    /// The decoded event; its personal data stays sealed.
    Decode,
    /// The decoded event with its personal data opened (or erased).
    Open,
}

/// A domain event of any aggregate.
#[derive(Debug, Clone, PartialEq)]
pub enum Fact {
    Conversation(ConversationEvent),
    User(UserEvent),
    Tenant(TenantEvent),
    KnowledgeBase(KnowledgeBaseEvent),
}

/// An event as a read model sees it: its place in the log and the decoded event.
#[derive(Debug, Clone, PartialEq)]
pub struct Opened {
    pub position: u64,
    pub stream: StreamId,
    /// The stream version of the event.
    pub version: u64,
    pub at: Timestamp,
    pub fact: Fact,
}

impl Opened {
    pub fn tenant(&self) -> &TenantId {
        self.stream.tenant()
    }
}

/// The text of a personal value as a read model stores it, and whether it was
/// erased. A value still sealed means the model asked for [`Interest::Decode`]
/// but reads text: a bug, reported as a bad event.
pub fn personal_text(p: &Personal, position: u64) -> Result<(String, bool), ProjectionError> {
    match p {
        Personal::Plain(s) => Ok((s.clone(), false)),
        Personal::Erased => Ok((Personal::ERASED_TEXT.to_owned(), true)),
        Personal::Sealed(_) => Err(ProjectionError::bad_event(position, "personal data was not opened")),
    }
}

/// A read model that a [`ReadModelProjection`] can feed: a store that applies
/// decoded events together with its checkpoint, in one write.
#[async_trait]
pub trait ReadModel: Send + Sync + 'static {
    /// What the model needs of events of this type.
    fn interest(&self, kind: AggregateKind, event_type: &str) -> Interest;

    /// The position of the last event applied (0: none).
    async fn checkpoint(&self, projection: &str) -> Result<u64, StoreError>;

    /// Applies `events` (in log order) and stores `through` (at least the last
    /// event's position) as the checkpoint, in the same write. Events at or
    /// below the stored checkpoint change nothing.
    async fn apply(&self, projection: &str, events: Vec<Opened>, through: u64) -> Result<(), ProjectionError>;

    /// Drops everything: the model and its checkpoint.
    async fn reset(&self, projection: &str) -> Result<(), StoreError>;

    /// Drops everything before a replay, which may load in bulk; see
    /// [`Projection::begin_rebuild`]. By default [`ReadModel::reset`].
    async fn begin_rebuild(&self, projection: &str) -> Result<(), StoreError> {
        self.reset(projection).await
    }

    /// Finishes what [`ReadModel::begin_rebuild`] deferred.
    async fn end_rebuild(&self, _projection: &str) -> Result<(), StoreError> {
        Ok(())
    }
}

/// How many events [`ReadModelProjection`] opens while the previous ones are
/// written (see its `apply`).
pub const OPEN_CHUNK: usize = 2_048;

/// A [`Projection`] over any [`ReadModel`]: decodes (and opens) what the
/// model asks for and hands it over.
pub struct ReadModelProjection {
    name: String,
    sealer: Sealer,
    model: Arc<dyn ReadModel>,
}

impl ReadModelProjection {
    pub fn new(name: impl Into<String>, sealer: Sealer, model: Arc<dyn ReadModel>) -> Self {
        Self { name: name.into(), sealer, model }
    }

    async fn open_all(&self, events: &[RecordedEvent]) -> Result<Vec<Opened>, ProjectionError> {
        let mut opened = Vec::with_capacity(events.len());
        for r in events {
            if let Some(o) = self.open(r).await? {
                opened.push(o);
            }
        }
        Ok(opened)
    }

    async fn open(&self, r: &RecordedEvent) -> Result<Option<Opened>, ProjectionError> {
        let kind = r.stream.kind();
        let interest = self.model.interest(kind, &r.event_type);
        if interest == Interest::Skip {
            return Ok(None);
        }
        let fact = match kind {
            AggregateKind::Conversation => Fact::Conversation(self.decode(r, interest).await?),
            AggregateKind::User => Fact::User(self.decode(r, interest).await?),
            AggregateKind::Tenant => Fact::Tenant(self.decode(r, interest).await?),
            AggregateKind::KnowledgeBase => Fact::KnowledgeBase(self.decode(r, interest).await?),
            // Address claims only keep an address to one user: no read model shows them.
            AggregateKind::EmailClaim => return Ok(None),
            // Canned replies are read by folding their one stream per tenant: no read model holds them.
            AggregateKind::CannedReplies => return Ok(None),
            // Teams are read from their one stream per tenant (`jamuna_domain::team`).
            AggregateKind::Team => return Ok(None),
            // Webhooks are read from their own streams (`jamuna_domain::webhook`).
            AggregateKind::Webhooks | AggregateKind::WebhookDeliveries => return Ok(None),
        };
        Ok(Some(Opened { position: r.position, stream: r.stream.clone(), version: r.version, at: r.meta.occurred_at, fact }))
    }

    async fn decode<E: DomainEvent>(&self, r: &RecordedEvent, interest: Interest) -> Result<E, ProjectionError> {
        if interest == Interest::Open {
            match self.sealer.open::<E>(r).await {
                Ok(e) => Ok(e.data),
                Err(SealError::Keys(e)) => Err(ProjectionError::Keys(e)),
                Err(e) => Err(ProjectionError::bad_event(r.position, format!("{} {}: {e}", r.event_type, r.meta.event_id))),
            }
        } else {
            seal::decode::<E>(r).map_err(|e| ProjectionError::bad_event(r.position, format!("{} {}: {e}", r.event_type, r.meta.event_id)))
        }
    }
}

#[async_trait]
impl Projection for ReadModelProjection {
    fn name(&self) -> &str {
        &self.name
    }

    async fn checkpoint(&self) -> Result<u64, ProjectionError> {
        Ok(self.model.checkpoint(&self.name).await?)
    }

    /// Opening (decode, key look-up, decryption) and the model's write
    /// overlap: a large batch is cut into chunks of [`OPEN_CHUNK`] events, and
    /// chunk k+1 is opened while chunk k is written (each chunk is one write
    /// with its own checkpoint, in order; a failure stops at its chunk).
    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        let Some(last) = events.last() else { return Ok(()) };
        let through = events.iter().map(|e| e.position).max().unwrap_or(last.position);
        let mut pending: Option<(Vec<Opened>, u64)> = None;
        for chunk in events.chunks(OPEN_CHUNK) {
            let chunk_through = chunk.iter().map(|e| e.position).max().unwrap_or(0);
            let opened = match pending.take() {
                Some((ready, ready_through)) => {
                    let (written, opened) = tokio::join!(self.model.apply(&self.name, ready, ready_through), self.open_all(chunk));
                    written?;
                    opened?
                }
                None => self.open_all(chunk).await?,
            };
            pending = Some((opened, chunk_through));
        }
        match pending {
            Some((ready, _)) => self.model.apply(&self.name, ready, through).await,
            None => Ok(()),
        }
    }

    async fn reset(&self) -> Result<(), ProjectionError> {
        Ok(self.model.reset(&self.name).await?)
    }

    async fn begin_rebuild(&self) -> Result<(), ProjectionError> {
        Ok(self.model.begin_rebuild(&self.name).await?)
    }

    async fn end_rebuild(&self) -> Result<(), ProjectionError> {
        Ok(self.model.end_rebuild(&self.name).await?)
    }
}
