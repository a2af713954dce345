//! The event log: the port every adapter implements.
//!
//! A log is a sequence of events with a **global position** (1, 2, 3, … with
//! no gaps), partitioned into **streams**, one per aggregate, each with its
//! own **version** (1, 2, 3, …). Appends say which version they expect the
//! stream to be at, so two writers racing on one conversation cannot both
//! win: the loser gets [`LogError::Conflict`], reloads and decides again.
//!
//! Readers follow the log from a position they stored (their checkpoint):
//! [`EventLog::subscribe_all`] first delivers everything after it, then every
//! new append as it happens, in global order.

#[cfg(feature = "kurrent")]
pub mod kurrent;
pub mod nats;
pub mod sqlite;

use async_trait::async_trait;
use jamuna_domain::envelope::Envelope;
use jamuna_domain::{EventMeta, StreamId};
use serde_json::value::RawValue;
use tokio::sync::mpsc;

/// A stored event, its data still as JSON (sealed, and in the schema it was
/// written with): see [`crate::Sealer::open`] to get a domain event.
pub type RecordedEvent = Envelope<Box<RawValue>>;

/// An event about to be appended.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub meta: EventMeta,
    pub event_type: String,
    pub schema: u16,
    pub data: Box<RawValue>,
}

/// The largest event data the log accepts, in bytes.
pub const MAX_EVENT_BYTES: usize = 512 * 1024;

/// What the writer expects of the stream it appends to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// Whatever the stream holds; the events go at its end.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream's last event must be this version.
    Exact(u64),
}

impl ExpectedVersion {
    /// Does a stream currently at `actual` (0: no stream) satisfy this?
    pub fn admits(self, actual: u64) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual == 0,
            ExpectedVersion::Exact(v) => v == actual,
        }
    }
}

/// Where an append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Global position of the first and the last event appended.
    pub first_position: u64,
    pub last_position: u64,
    /// The stream's version after the append (its last event's version).
    pub version: u64,
    /// True when these event ids were stored before: nothing new was written,
    /// and the positions are those of the first time.
    pub duplicate: bool,
}

/// What can go wrong with the log. Callers match on [`LogError::Conflict`].
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("stream {stream} is at version {actual}, the append expected {expected:?}")]
    Conflict { stream: String, expected: ExpectedVersion, actual: u64 },
    #[error("invalid append: {0}")]
    Invalid(String),
    #[error("the event log is unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("event log failure: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The stored event at `position` does not decode (its envelope: stream,
    /// ids, metadata or JSON); resubscribing from before it meets it again.
    /// A consumer that may lose events (the push hub) skips past it; one
    /// that must not (a projection) stops there.
    #[error("corrupt event at position {position}: {reason}")]
    Corrupt { position: u64, reason: String },
}

impl LogError {
    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        LogError::Internal(Box::new(e))
    }
    pub fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        LogError::Unavailable(Box::new(e))
    }
    pub fn is_conflict(&self) -> bool {
        matches!(self, LogError::Conflict { .. })
    }
}

/// The event-log port.
#[async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// Appends `events` (all of one command) to `stream`, atomically: all or
    /// none. With an expected version (`NoStream` or `Exact`) it is
    /// idempotent: a retry of an append that succeeded (same event ids, same
    /// expectation) writes nothing and answers with the first append's place,
    /// marked `duplicate`.
    async fn append(&self, stream: &StreamId, expected: ExpectedVersion, events: Vec<NewEvent>) -> Result<Appended, LogError>;

    /// The events of one stream with a version above `after_version`, in order.
    async fn read_stream(&self, stream: &StreamId, after_version: u64) -> Result<Vec<RecordedEvent>, LogError>;

    /// Up to `limit` events of the whole log with a position above
    /// `after_position`, in order.
    async fn read_all(&self, after_position: u64, limit: usize) -> Result<Vec<RecordedEvent>, LogError>;

    /// The position of the last event in the log (0 for an empty log).
    async fn head(&self) -> Result<u64, LogError>;

    /// Every event after `after_position`, then every new one, in order.
    async fn subscribe_all(&self, after_position: u64) -> Result<Subscription, LogError>;
}

/// A catch-up subscription: stored events first, then live ones.
///
/// Back-pressure: the feeding task waits while the subscriber is
/// [`Subscription::CAPACITY`] events behind, so a slow reader never makes the
/// process buffer the whole log. Dropping the subscription stops the feed.
pub struct Subscription {
    rx: mpsc::Receiver<Result<RecordedEvent, LogError>>,
    feeder: tokio::task::JoinHandle<()>,
}

impl Subscription {
    pub const CAPACITY: usize = 1024;

    /// A subscription fed by `feed`, which sends into the given sender until
    /// it fails or the receiver is gone.
    pub(crate) fn spawn<F, Fut>(feed: F) -> Self
    where
        F: FnOnce(mpsc::Sender<Result<RecordedEvent, LogError>>) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(Self::CAPACITY);
        let feeder = tokio::spawn(feed(tx));
        Self { rx, feeder }
    }

    /// The next event; `None` only if the feed has stopped after an error
    /// was delivered. An error ends the subscription: resubscribe from the
    /// last position you processed.
    pub async fn next(&mut self) -> Option<Result<RecordedEvent, LogError>> {
        self.rx.recv().await
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.feeder.abort();
    }
}

/// Which log a URL names: `sqlite:///path/to/events.db`, `sqlite::memory:`
/// is not offered (the log must be durable), `nats://host:port`, or a
/// KurrentDB connection string (`kurrentdb://host:2113?tls=false`,
/// `esdb://…`, and their `+discover` forms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogUrl {
    Sqlite(std::path::PathBuf),
    Nats(String),
    Kurrent(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogUrlError {
    #[error("unsupported event log URL {0:?}: use sqlite:///path/to/events.db, nats://host:port or kurrentdb://host:2113")]
    Scheme(String),
    #[error("bad KurrentDB connection string: {0}")]
    Kurrent(String),
    #[error("{0:?} names a KurrentDB log, but this jamuna was built without it: rebuild with `--features kurrent`")]
    NotBuilt(String),
    #[error(
        "the event log URL {0:?} has no path: use sqlite:///path/to/events.db (three slashes for an absolute path, sqlite://relative/path otherwise)"
    )]
    NoPath(String),
}

impl LogUrl {
    pub fn parse(url: &str) -> Result<Self, LogUrlError> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(LogUrlError::NoPath(url.into()));
            }
            return Ok(LogUrl::Sqlite(path.into()));
        }
        if url.starts_with("nats://") || url.starts_with("tls://") {
            let rest = url.split_once("://").map(|(_, r)| r).unwrap_or_default();
            if rest.is_empty() {
                return Err(LogUrlError::Scheme(url.into()));
            }
            return Ok(LogUrl::Nats(url.into()));
        }
        if ["kurrentdb://", "kurrentdb+discover://", "esdb://", "esdb+discover://"].iter().any(|p| url.starts_with(p)) {
            #[cfg(feature = "kurrent")]
            {
                kurrent::parse_connection_string(url).map_err(LogUrlError::Kurrent)?;
                return Ok(LogUrl::Kurrent(url.into()));
            }
            #[cfg(not(feature = "kurrent"))]
            return Err(LogUrlError::NotBuilt(url.into()));
        }
        Err(LogUrlError::Scheme(url.into()))
    }
}

/// Opens the log a URL names.
pub async fn connect(url: &LogUrl) -> Result<std::sync::Arc<dyn EventLog>, LogError> {
    // Before any TLS connection (see the function's docs).
    crate::tls::ensure_crypto_provider();
    Ok(match url {
        LogUrl::Sqlite(path) => std::sync::Arc::new(sqlite::SqliteLog::open(path).await?),
        LogUrl::Nats(url) => std::sync::Arc::new(nats::NatsLog::connect(url, nats::NatsConfig::default()).await?),
        #[cfg(feature = "kurrent")]
        LogUrl::Kurrent(url) => std::sync::Arc::new(kurrent::KurrentLog::connect(url, kurrent::KurrentConfig::default()).await?),
        #[cfg(not(feature = "kurrent"))]
        LogUrl::Kurrent(url) => return Err(LogError::Unavailable(LogUrlError::NotBuilt(url.clone()).to_string().into())),
    })
}

/// Checks what every adapter refuses the same way.
pub(crate) fn validate(stream: &StreamId, events: &[NewEvent]) -> Result<(), LogError> {
    if events.is_empty() {
        return Err(LogError::Invalid("an append needs at least one event".into()));
    }
    for e in events {
        if &e.meta.tenant != stream.tenant() {
            return Err(LogError::Invalid(format!(
                "event {} belongs to tenant {}, not to the stream's tenant {}",
                e.meta.event_id,
                e.meta.tenant,
                stream.tenant()
            )));
        }
        if e.data.get().len() > MAX_EVENT_BYTES {
            return Err(LogError::Invalid(format!(
                "event {} is {} bytes, the limit is {MAX_EVENT_BYTES}",
                e.meta.event_id,
                e.data.get().len()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_an_adapter_or_say_why_not() {
        assert_eq!(LogUrl::parse("sqlite:///var/lib/jamuna/events.db"), Ok(LogUrl::Sqlite("/var/lib/jamuna/events.db".into())));
        assert_eq!(LogUrl::parse("sqlite://data/events.db"), Ok(LogUrl::Sqlite("data/events.db".into())));
        assert_eq!(LogUrl::parse("nats://127.0.0.1:4222"), Ok(LogUrl::Nats("nats://127.0.0.1:4222".into())));
        assert!(matches!(LogUrl::parse("postgres://x"), Err(LogUrlError::Scheme(_))));
        assert!(matches!(LogUrl::parse("sqlite://"), Err(LogUrlError::NoPath(_))));
        assert!(matches!(LogUrl::parse("nats://"), Err(LogUrlError::Scheme(_))));
        assert!(matches!(LogUrl::parse("kurrent://db:2113"), Err(LogUrlError::Scheme(_))));
    }

    #[cfg(not(feature = "kurrent"))]
    #[test]
    fn a_kurrentdb_url_says_the_adapter_is_not_built() {
        let e = LogUrl::parse("kurrentdb://127.0.0.1:2113?tls=false").expect_err("not built");
        assert!(matches!(e, LogUrlError::NotBuilt(_)));
        assert!(e.to_string().contains("--features kurrent"), "{e}");
    }

    #[cfg(feature = "kurrent")]
    #[test]
    fn kurrentdb_urls_are_checked() {
        assert_eq!(
            LogUrl::parse("kurrentdb://127.0.0.1:2113?tls=false"),
            Ok(LogUrl::Kurrent("kurrentdb://127.0.0.1:2113?tls=false".into()))
        );
        assert_eq!(LogUrl::parse("esdb://admin:changeit@db:2113"), Ok(LogUrl::Kurrent("esdb://admin:changeit@db:2113".into())));
        assert!(matches!(LogUrl::parse("esdb+discover://cluster.example:2113"), Ok(LogUrl::Kurrent(_))));
        assert!(matches!(LogUrl::parse("kurrentdb://db:notaport"), Err(LogUrlError::Kurrent(_))));
    }

    #[test]
    fn expected_versions() {
        assert!(ExpectedVersion::Any.admits(7));
        assert!(ExpectedVersion::NoStream.admits(0));
        assert!(!ExpectedVersion::NoStream.admits(1));
        assert!(ExpectedVersion::Exact(3).admits(3));
        assert!(!ExpectedVersion::Exact(3).admits(2));
    }
}
