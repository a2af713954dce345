//! # Jamuna's write side
//!
//! Commands change the world by appending events to the **event log**, and
//! the log is also the bus: every reader (projections, the AI worker, the
//! gateway's push) follows it with a catch-up subscription. This crate holds:
//!
//! * [`log`] — the event-log port ([`EventLog`]) and its adapters: SQLite for
//!   the embedded mode, NATS JetStream for the distributed one. Both pass the
//!   same contract suite ([`testing::contract`], behind the `testing` feature).
//! * [`keys`] and [`seal`] — personal data in events is sealed with a
//!   per-user key kept outside the log; erasing the user deletes the key.
//! * [`blobs`] and [`attachments`] — the blob-store port (files under the
//!   data directory, or an S3-compatible store) and uploads kept in it,
//!   sealed with the conversation's customer's key.
//! * [`handler`] — command handling: load the aggregate, decide, append with
//!   the expected version, retry on a conflict.
#![forbid(unsafe_code)]

pub mod attachments;
pub mod blobs;
pub mod handler;
pub mod keys;
pub mod log;
pub mod seal;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;

pub use handler::{CommandError, CommandHandler, Executed};
pub use keys::{KeyStore, KeyStoreError};
pub use log::{Appended, EventLog, ExpectedVersion, LogError, NewEvent, RecordedEvent, Subscription};
pub use seal::{SealError, Sealer};
