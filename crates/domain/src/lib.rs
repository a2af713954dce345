//! # Jamuna's domain
//!
//! Everything Jamuna knows about customer support, as pure functions over data.
//! There is no I/O here, no async runtime and no clock: time is passed in.
//!
//! Each aggregate lives in its own module with the same shape:
//!
//! * `command.rs` — what someone asks for, in the imperative (`AssignAgent`);
//! * `event.rs` — what happened, in the past tense (`AgentAssigned`);
//! * `error.rs` — why a command was refused, naming a state (`AlreadyResolved`);
//! * `mod.rs` — the state, `decide(state, command, now) -> Result<Vec<Event>, Error>`
//!   and `apply(state, event)`.
//!
//! The [`Aggregate`] trait ties these together so that the write side
//! (`jamuna-commands`) can load, decide and append any aggregate the same way.
//!
//! Around the events sit the pieces every event shares: the [`envelope`]
//! (ids, versions, positions, tenant, causation), the [`upcast`] hook that
//! reads an older schema version as the current one, and [`Personal`] data,
//! which the write side encrypts with a per-user key before it reaches the log.
//! Every refusal has a stable name for clients to match on ([`ErrorCode`]).
#![forbid(unsafe_code)]

pub mod aggregate;
pub mod attachment;
pub mod canned_reply;
pub mod conversation;
pub mod email_claim;
pub mod envelope;
pub mod error_code;
pub mod ids;
pub mod knowledge_base;
pub mod personal;
pub mod team;
pub mod tenant;
pub mod text;
pub mod upcast;
pub mod user;
pub mod webhook;

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod testing;

pub use aggregate::{Aggregate, AggregateKind, DomainEvent};
pub use envelope::{EventMeta, StreamId};
pub use error_code::ErrorCode;
pub use ids::{ArticleId, AttachmentId, ClientMessageId, ConversationId, IdError, TeamId, TenantId, UserId};
pub use personal::Personal;
pub use text::{MessageText, TextError};

/// The moment a command is decided, passed in by the caller.
pub type Timestamp = chrono::DateTime<chrono::Utc>;
