//! # Jamuna's read side
//!
//! The event log is the truth; everything the dashboard, the widget and the
//! API *read* is a **projection** of it: a read model that a projector builds
//! by folding events, in log order, into tables (SQLite) or documents
//! (MongoDB) shaped for the queries that will be asked.
//!
//! * [`runtime`] — the [`Projection`] trait, the [`Projector`] that follows
//!   the log with a catch-up subscription from each projection's checkpoint,
//!   its status (position, lag, failure), [`runtime::replay`] (drop and rebuild
//!   from position 0) and `wait_for` (read-your-writes for the gateway).
//! * [`event`] — the events a read model sees: decoded, upcast and, where the
//!   model needs it, with personal data opened ([`event::Opened`]).
//! * [`conversations`], [`users`], [`analytics`] — one module per read model:
//!   a pure fold, the port (a store trait with its queries), and one file per
//!   adapter (`sqlite.rs`, `mongo.rs`).
//! * [`gaps`] — the content gaps: questions the bot could not answer (and
//!   👎 answers), grouped by meaning with the AI worker's model, which is why
//!   its projection runs in the AI worker rather than the projector.
//! * [`read_models`] — all three opened from a data directory (SQLite) or a
//!   MongoDB URL, with their projections ([`ReadModels`]).
//! * [`sessions`] — sessions, presence and rate limits (in memory / Redis):
//!   short-lived state that expires rather than being replayed.
//! * [`vectors`] — the knowledge-base passages, embedded, for retrieval
//!   (qdrant-edge in-process / a Qdrant server), and the projection that
//!   keeps them in step with the articles.
//! * [`work_share`] — replicas of a role splitting their units of work
//!   (projections, conversation partitions) by leases in [`sessions::Leases`].
//! * `bench` (the `bench` feature) — a realistic log generator and replay
//!   timings for `jamuna bench replay`.
//!
//! **Idempotence.** Every read model stores the position it last applied in
//! the same write as the change (one SQLite transaction; in MongoDB each
//! document carries the position it reflects and is only replaced on that
//! condition), so an event delivered twice changes nothing.
//!
//! **Personal data.** Read models hold opened personal data (message text,
//! names, e-mail). When a user is erased, their content in every read model is
//! replaced by [`jamuna_domain::Personal::ERASED_TEXT`] (or dropped), which is
//! exactly what a replay produces, since their key is gone by then.
#![forbid(unsafe_code)]

pub mod analytics;
#[cfg(feature = "bench")]
pub mod bench;
pub mod conversations;
pub mod error;
pub mod event;
pub mod gaps;
pub mod mongo;
pub mod read_models;
pub mod runtime;
pub mod sessions;
pub mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;
pub mod users;
pub mod vectors;
pub mod work_share;

pub use error::{ProjectionError, StoreError};
pub use event::{Fact, Interest, Opened, ReadModel, ReadModelProjection};
pub use read_models::ReadModels;
pub use runtime::{
    Progress, Projection, ProjectionHandle, ProjectionStatus, Projector, ProjectorConfig, ReplayError, ReplayProgress, ReplaySummary,
    RunState, StatusState, WaitError, replay,
};
