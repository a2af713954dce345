//! The event log on KurrentDB (formerly EventStoreDB), with the `kurrentdb` gRPC client.
//!
//! * **One KurrentDB stream per aggregate**: our `acme.conversation.c1` is
//!   the KurrentDB stream `jamuna-acme.conversation.c1` (the prefix is
//!   [`KurrentConfig::stream_prefix`]). Our stream version is KurrentDB's
//!   stream revision plus one (revisions start at 0, versions at 1).
//! * **Optimistic concurrency**: the expected version becomes KurrentDB's
//!   expected stream state ([`stream_state`]): `Any` → `Any`, `NoStream` and
//!   `Exact(0)` → `NoStream`, `Exact(v)` → `StreamRevision(v - 1)`. The
//!   server refuses a stale append; we answer [`LogError::Conflict`].
//! * **Idempotency**: our event id is the KurrentDB event id. A retry of an
//!   append that succeeded (same ids, same expectation) is recognised by
//!   reading the events stored after the expected version, and answered as a
//!   `duplicate` with the first append's place, as in the other adapters.
//! * **Atomicity**: all events of one command go in one `AppendToStream`
//!   call, which KurrentDB writes as one transaction.
//! * **Metadata**: the envelope's metadata (event id, tenant, occurred-at,
//!   causation, correlation, data subject) and the schema version are the
//!   event's JSON metadata ([`StoredMeta`]); the event type is the KurrentDB
//!   event type; the data is the event's JSON, as given.
//!
//! ## Global positions
//!
//! The port promises positions 1, 2, 3, … with no gaps, and callers rely on
//! it (a batch's events are at `first_position + i`, lag is `head -
//! checkpoint`). KurrentDB's own order of everything is `$all`, whose
//! positions are byte offsets in its transaction file (commit/prepare pairs),
//! not dense. KurrentDB has no atomic write across two streams (so no
//! position can be reserved in a sequence stream together with the events),
//! and no server-side counter.
//!
//! So the position is derived, not stored: **the position of an event is its
//! ordinal in `$all` filtered to our stream prefix** (the n-th of our events
//! in `$all` has position n). `$all` is one total order that every client
//! sees the same way, so every process derives the same positions. Each
//! [`KurrentLog`] keeps an index, ordinal → `$all` position, fed by one
//! catch-up subscription to the filtered `$all` (started at connect, from the
//! beginning, resubscribing from where it stopped after a failure):
//!
//! * `append` writes, reads back where its events landed in `$all`, and
//!   waits for the index to reach them to answer with their ordinals;
//! * `read_all(after)` reads `$all` from the `$all` position of ordinal
//!   `after` and numbers the events it gets from `after + 1` on, checking
//!   each against the index where the index has it;
//! * `head` asks the server for the last of our events in `$all` and waits
//!   for the index to reach it;
//! * `subscribe_all` pages through `read_all` and, at the head, waits for the
//!   index to grow (the index subscription is the live wake-up).
//!
//! What this costs and assumes, honestly:
//! * memory: 16 bytes per event in every process using the log (10 million
//!   events: 160 MB), and a scan of our whole `$all` at start;
//! * **our streams must never be deleted, truncated or scavenged away**
//!   (`$tb`, `$maxCount`, `$maxAge`, stream deletion): removing an event
//!   would renumber every later one. Jamuna's log is append-only (erasure is
//!   crypto-shredding), so nothing of ours does this; an operator must not.
//! * a position is known only once the index has seen it: an append answers
//!   after its events went through the subscription (one more round trip).

use super::{Appended, EventLog, ExpectedVersion, LogError, NewEvent, RecordedEvent, Subscription};
use async_trait::async_trait;
use jamuna_domain::envelope::Envelope;
use jamuna_domain::{EventMeta, StreamId};
use kurrentdb::{
    AppendToStreamOptions, Client, ClientSettings, CurrentRevision, EventData, Position, ReadAllOptions, ReadStreamOptions, StreamPosition,
    StreamState, SubscribeToAllOptions, SubscriptionEvent, SubscriptionFilter,
};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::watch;

/// Where the log lives on the KurrentDB server.
#[derive(Debug, Clone)]
pub struct KurrentConfig {
    /// Our streams are `<prefix>-<stream id>`; `$all` is filtered to them.
    /// ASCII letters, digits and `_` only, so that one prefix can never be
    /// the start of another's `<prefix>-`.
    pub stream_prefix: String,
    /// How long an operation waits for the position index to catch up with
    /// the server before it answers [`LogError::Unavailable`].
    pub index_timeout: Duration,
}

impl Default for KurrentConfig {
    fn default() -> Self {
        Self { stream_prefix: "jamuna".into(), index_timeout: Duration::from_secs(30) }
    }
}

/// The event's KurrentDB metadata: the envelope's metadata and the schema.
#[derive(Debug, Serialize, Deserialize)]
struct StoredMeta {
    #[serde(flatten)]
    meta: EventMeta,
    schema: u16,
}

/// The JSON metadata stored with an event.
pub fn encode_metadata(meta: &EventMeta, schema: u16) -> Result<Vec<u8>, LogError> {
    serde_json::to_vec(&StoredMeta { meta: meta.clone(), schema }).map_err(LogError::internal)
}

/// The envelope metadata and schema back from stored metadata.
pub fn decode_metadata(bytes: &[u8]) -> Result<(EventMeta, u16), LogError> {
    let s: StoredMeta =
        serde_json::from_slice(bytes).map_err(|e| LogError::Internal(format!("event metadata is not Jamuna's: {e}").into()))?;
    Ok((s.meta, s.schema))
}

/// Our expected version as KurrentDB's expected stream state.
pub fn stream_state(expected: ExpectedVersion) -> StreamState {
    match expected {
        ExpectedVersion::Any => StreamState::Any,
        ExpectedVersion::NoStream | ExpectedVersion::Exact(0) => StreamState::NoStream,
        ExpectedVersion::Exact(v) => StreamState::StreamRevision(v - 1),
    }
}

/// KurrentDB's current revision as our version (0: no stream).
pub fn version_of(current: CurrentRevision) -> u64 {
    match current {
        CurrentRevision::NoStream => 0,
        CurrentRevision::Current(revision) => revision + 1,
    }
}

/// Checks a connection string the way the client will read it
/// (`kurrentdb://host:2113?tls=false`, `esdb://…`, `…+discover://…`).
pub fn parse_connection_string(url: &str) -> Result<ClientSettings, String> {
    // The parser's message can repeat the whole string, credentials included: keep only its kind.
    url.parse::<ClientSettings>().map_err(|e| {
        let text = e.to_string();
        if text.contains('@') { "the connection string is not valid".to_owned() } else { text }
    })
}

/// The ordinal (1-based) of `position` in a sorted index, if it is there.
pub fn ordinal_in(index: &[Position], position: Position) -> Option<u64> {
    index.binary_search(&position).ok().map(|i| i as u64 + 1)
}

fn map_err(e: kurrentdb::Error) -> LogError {
    use kurrentdb::Error as K;
    match e {
        K::ServerError(_)
        | K::NotLeaderException(_)
        | K::ConnectionClosed
        | K::GrpcConnectionError(_)
        | K::DeadlineExceeded
        | K::AccessDenied
        | K::Grpc { .. } => LogError::unavailable(e),
        other => LogError::internal(other),
    }
}

/// Ordinal → `$all` position of our events, fed by one subscription.
struct Index {
    positions: RwLock<Vec<Position>>,
    /// How many events the index holds; subscribers wait on it.
    count: watch::Sender<u64>,
}

impl Index {
    fn get(&self, ordinal: u64) -> Option<Position> {
        let positions = self.positions.read().unwrap_or_else(|p| p.into_inner());
        ordinal.checked_sub(1).and_then(|i| positions.get(i as usize).copied())
    }

    fn last(&self) -> Option<Position> {
        self.positions.read().unwrap_or_else(|p| p.into_inner()).last().copied()
    }

    fn push(&self, position: Position) {
        let n = {
            let mut positions = self.positions.write().unwrap_or_else(|p| p.into_inner());
            if positions.last().is_some_and(|last| *last >= position) {
                return; // seen already (a resubscription starts at or before the last one)
            }
            positions.push(position);
            positions.len() as u64
        };
        self.count.send_replace(n);
    }

    fn ordinal(&self, position: Position) -> Option<u64> {
        ordinal_in(&self.positions.read().unwrap_or_else(|p| p.into_inner()), position)
    }
}

struct Inner {
    client: Client,
    config: KurrentConfig,
    /// `<prefix>-`: the start of every stream name of ours.
    name_prefix: String,
    index: Index,
}

/// The event log on a KurrentDB server (or cluster).
pub struct KurrentLog {
    inner: Arc<Inner>,
    indexer: tokio::task::JoinHandle<()>,
}

impl Drop for KurrentLog {
    fn drop(&mut self) {
        self.indexer.abort();
    }
}

impl KurrentLog {
    /// Connects, starts the position index and waits until it has caught up.
    pub async fn connect(url: &str, config: KurrentConfig) -> Result<Self, LogError> {
        if config.stream_prefix.is_empty() || !config.stream_prefix.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(LogError::Invalid(format!(
                "the KurrentDB stream prefix {:?} must be ASCII letters, digits or _",
                config.stream_prefix
            )));
        }
        crate::tls::ensure_crypto_provider();
        let settings =
            parse_connection_string(url).map_err(|e| LogError::Unavailable(format!("bad KurrentDB connection string: {e}").into()))?;
        let client = Client::new(settings).map_err(|e| LogError::Unavailable(format!("cannot create the KurrentDB client: {e}").into()))?;
        let name_prefix = format!("{}-", config.stream_prefix);
        let inner = Arc::new(Inner {
            client,
            config,
            name_prefix,
            index: Index { positions: RwLock::new(Vec::new()), count: watch::Sender::new(0) },
        });
        let indexer = tokio::spawn(run_index(inner.clone()));
        let log = Self { inner, indexer };
        // Fails (Unavailable) if the server cannot be reached; returns once the index has caught up.
        let timeout = log.inner.config.index_timeout;
        tokio::time::timeout(timeout, log.inner.head())
            .await
            .map_err(|_| LogError::Unavailable(format!("KurrentDB did not answer within {timeout:?}").into()))??;
        Ok(log)
    }
}

/// Follows our part of `$all` into the index, forever.
async fn run_index(inner: Arc<Inner>) {
    loop {
        let from = match inner.index.last() {
            Some(p) => StreamPosition::Position(p),
            None => StreamPosition::Start,
        };
        let options = SubscribeToAllOptions::default().position(from).filter(inner.filter());
        let mut sub = inner.client.subscribe_to_all(&options).await;
        loop {
            match sub.next_subscription_event().await {
                Ok(SubscriptionEvent::EventAppeared(e)) => {
                    let Some(event) = e.event.as_ref() else { continue };
                    if inner.is_ours(event.stream_id(), &event.event_type) {
                        inner.index.push(event.position);
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "the KurrentDB position index lost its subscription; resubscribing");
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

impl Inner {
    fn stream_name(&self, stream: &StreamId) -> String {
        format!("{}{stream}", self.name_prefix)
    }

    fn filter(&self) -> SubscriptionFilter {
        SubscriptionFilter::on_stream_name().add_prefix(&self.name_prefix)
    }

    /// Ours: in a stream with our prefix, and not a system event (`$…`).
    fn is_ours(&self, stream_name: &str, event_type: &str) -> bool {
        stream_name.starts_with(&self.name_prefix) && !event_type.starts_with('$')
    }

    /// Waits until the index holds at least `count` events.
    async fn wait_len(&self, count: u64) -> Result<(), LogError> {
        let mut rx = self.index.count.subscribe();
        let timeout = self.config.index_timeout;
        match tokio::time::timeout(timeout, rx.wait_for(|n| *n >= count)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(LogError::Unavailable("the KurrentDB position index stopped".into())),
            Err(_) => {
                Err(LogError::Unavailable(format!("the KurrentDB position index did not reach {count} events within {timeout:?}").into()))
            }
        }
    }

    /// Waits until the index has reached `position` and gives its ordinal.
    async fn ordinal_of(&self, position: Position) -> Result<u64, LogError> {
        let mut rx = self.index.count.subscribe();
        let timeout = self.config.index_timeout;
        let reached = rx.wait_for(|_| self.index.last().is_some_and(|last| last >= position));
        match tokio::time::timeout(timeout, reached).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => return Err(LogError::Unavailable("the KurrentDB position index stopped".into())),
            Err(_) => {
                return Err(LogError::Unavailable(
                    format!("the KurrentDB position index did not reach {position} within {timeout:?}").into(),
                ));
            }
        }
        self.index
            .ordinal(position)
            .ok_or_else(|| LogError::Internal(format!("the event at $all position {position} is not in the position index").into()))
    }

    /// The stream's current version (0: no stream).
    async fn version(&self, name: &str) -> Result<u64, LogError> {
        let options = ReadStreamOptions::default().position(StreamPosition::End).max_count(1);
        let mut read = match self.client.read_stream(name, &options).await {
            Ok(r) => r,
            Err(kurrentdb::Error::ResourceNotFound) => return Ok(0),
            Err(e) => return Err(map_err(e)),
        };
        match read.next().await {
            Ok(Some(e)) => Ok(e.get_original_event().revision + 1),
            Ok(None) | Err(kurrentdb::Error::ResourceNotFound) => Ok(0),
            Err(e) => Err(map_err(e)),
        }
    }

    /// Up to `max` raw events of a stream with a version above `after_version`.
    async fn raw_stream(&self, name: &str, after_version: u64, max: usize) -> Result<Vec<kurrentdb::RecordedEvent>, LogError> {
        let options = ReadStreamOptions::default().position(StreamPosition::Position(after_version)).forwards().max_count(max);
        let mut read = match self.client.read_stream(name, &options).await {
            Ok(r) => r,
            Err(kurrentdb::Error::ResourceNotFound) => return Ok(vec![]),
            Err(e) => return Err(map_err(e)),
        };
        let mut out = Vec::new();
        loop {
            match read.next().await {
                Ok(Some(e)) => {
                    if let Some(event) = e.event {
                        out.push(event);
                    }
                }
                Ok(None) | Err(kurrentdb::Error::ResourceNotFound) => return Ok(out),
                Err(e) => return Err(map_err(e)),
            }
        }
    }

    /// Where the `n` events after `after_version` of a stream are, checked
    /// against the ids we appended.
    async fn placed(&self, name: &str, after_version: u64, ids: &[uuid::Uuid], duplicate: bool) -> Result<Appended, LogError> {
        let stored = self.raw_stream(name, after_version, ids.len()).await?;
        if stored.len() != ids.len() || stored.iter().zip(ids).any(|(e, id)| e.id != *id) {
            return Err(LogError::Internal(
                format!("the events after version {after_version} of {name} are not the ones just appended").into(),
            ));
        }
        let mut ordinals = Vec::with_capacity(stored.len());
        for e in &stored {
            ordinals.push(self.ordinal_of(e.position).await?);
        }
        let first = ordinals[0];
        if ordinals.iter().enumerate().any(|(i, o)| *o != first + i as u64) {
            return Err(LogError::Internal(format!("the events of one append to {name} are not together in $all: {ordinals:?}").into()));
        }
        Ok(Appended {
            first_position: first,
            last_position: first + ids.len() as u64 - 1,
            version: after_version + ids.len() as u64,
            duplicate,
        })
    }

    /// Are the events right after `base` the ones with these ids (a retry)?
    async fn is_retry(&self, name: &str, base: u64, ids: &[uuid::Uuid]) -> Result<bool, LogError> {
        let stored = self.raw_stream(name, base, ids.len()).await?;
        Ok(stored.len() == ids.len() && stored.iter().zip(ids).all(|(e, id)| e.id == *id))
    }

    /// The answer to an append whose expectation the stream (at `actual`) does not meet.
    async fn refused(
        &self,
        stream: &StreamId,
        name: &str,
        expected: ExpectedVersion,
        actual: u64,
        ids: &[uuid::Uuid],
    ) -> Result<Appended, LogError> {
        let base = match expected {
            ExpectedVersion::NoStream => Some(0),
            ExpectedVersion::Exact(v) => Some(v),
            ExpectedVersion::Any => None,
        };
        if let Some(v) = base
            && actual >= v + ids.len() as u64
            && self.is_retry(name, v, ids).await?
        {
            return self.placed(name, v, ids, true).await;
        }
        Err(LogError::Conflict { stream: stream.to_string(), expected, actual })
    }

    fn decode(&self, e: &kurrentdb::RecordedEvent, position: u64) -> Result<RecordedEvent, LogError> {
        decode(&self.name_prefix, e.stream_id(), e.revision, &e.event_type, &e.custom_metadata, &e.data, position)
    }

    /// The last of our events in `$all`, and its ordinal once indexed.
    async fn head(&self) -> Result<u64, LogError> {
        let options = ReadAllOptions::default().position(StreamPosition::End).filter(self.filter()).max_count(16);
        let mut read = self.client.read_all(&options).await.map_err(map_err)?;
        loop {
            match read.next().await.map_err(map_err)? {
                None => return Ok(0),
                Some(e) => {
                    let Some(event) = e.event.as_ref() else { continue };
                    if self.is_ours(event.stream_id(), &event.event_type) {
                        return self.ordinal_of(event.position).await;
                    }
                }
            }
        }
    }

    async fn read_all(&self, after_position: u64, limit: usize) -> Result<Vec<RecordedEvent>, LogError> {
        if limit == 0 {
            return Ok(vec![]);
        }
        // Start at the event whose ordinal is `after_position` (skipped: both
        // an inclusive and an exclusive start are handled).
        let from = if after_position == 0 {
            None
        } else {
            self.wait_len(after_position).await?;
            Some(
                self.index
                    .get(after_position)
                    .ok_or_else(|| LogError::Internal(format!("position {after_position} is not in the index").into()))?,
            )
        };
        let options = ReadAllOptions::default()
            .position(from.map_or(StreamPosition::Start, StreamPosition::Position))
            .forwards()
            .filter(self.filter())
            .max_count(limit + 1);
        let mut read = self.client.read_all(&options).await.map_err(map_err)?;
        let mut out = Vec::new();
        let mut ordinal = after_position;
        while out.len() < limit {
            let Some(e) = read.next().await.map_err(map_err)? else { break };
            let Some(event) = e.event.as_ref() else { continue };
            if from.is_some_and(|f| event.position <= f) || !self.is_ours(event.stream_id(), &event.event_type) {
                continue;
            }
            ordinal += 1;
            if let Some(indexed) = self.index.get(ordinal)
                && indexed != event.position
            {
                return Err(LogError::Internal(
                    format!("$all and the position index disagree at position {ordinal}: {} vs {indexed}", event.position).into(),
                ));
            }
            out.push(self.decode(event, ordinal)?);
        }
        Ok(out)
    }
}

/// A stored KurrentDB event as our envelope, at the given position.
pub fn decode(
    name_prefix: &str,
    stream_name: &str,
    revision: u64,
    event_type: &str,
    metadata: &[u8],
    data: &[u8],
    position: u64,
) -> Result<RecordedEvent, LogError> {
    let corrupt = |what: String| LogError::Internal(format!("corrupt event {stream_name}@{revision}: {what}").into());
    let id = stream_name.strip_prefix(name_prefix).ok_or_else(|| corrupt("not one of our streams".into()))?;
    let stream = StreamId::parse(id).map_err(|e| corrupt(e.to_string()))?;
    let (meta, schema) = decode_metadata(metadata).map_err(|e| corrupt(e.to_string()))?;
    let text = std::str::from_utf8(data).map_err(|e| corrupt(e.to_string()))?;
    let data = RawValue::from_string(text.to_owned()).map_err(|e| corrupt(e.to_string()))?;
    Ok(Envelope { position, stream, version: revision + 1, meta, event_type: event_type.to_owned(), schema, data })
}

#[async_trait]
impl EventLog for KurrentLog {
    async fn append(&self, stream: &StreamId, expected: ExpectedVersion, events: Vec<NewEvent>) -> Result<Appended, LogError> {
        super::validate(stream, &events)?;
        if let Some(e) = events.iter().find(|e| e.event_type.starts_with('$') || e.event_type.is_empty()) {
            return Err(LogError::Invalid(format!("event type {:?}: KurrentDB reserves types starting with $", e.event_type)));
        }
        let inner = &self.inner;
        let name = inner.stream_name(stream);
        let ids: Vec<uuid::Uuid> = events.iter().map(|e| e.meta.event_id).collect();
        let actual = inner.version(&name).await?;
        if !expected.admits(actual) {
            return inner.refused(stream, &name, expected, actual, &ids).await;
        }
        let mut data = Vec::with_capacity(events.len());
        for e in events {
            let metadata = encode_metadata(&e.meta, e.schema)?;
            let event = EventData::json(&e.event_type, &e.data).map_err(LogError::internal)?.id(e.meta.event_id).metadata(metadata.into());
            data.push(event);
        }
        let options = AppendToStreamOptions::default().stream_state(stream_state(expected));
        match inner.client.append_to_stream(name.as_str(), &options, data).await {
            Ok(written) => {
                let version = written.next_expected_version + 1;
                let after = version.checked_sub(ids.len() as u64).ok_or_else(|| {
                    LogError::Internal(
                        format!("KurrentDB says {name} is at version {version} after an append of {} events", ids.len()).into(),
                    )
                })?;
                // The server answers a retry it recognises with the first write's revisions.
                inner.placed(&name, after, &ids, after < actual).await
            }
            Err(kurrentdb::Error::WrongExpectedVersion { current, .. }) => {
                inner.refused(stream, &name, expected, version_of(current), &ids).await
            }
            Err(e) => Err(map_err(e)),
        }
    }

    async fn read_stream(&self, stream: &StreamId, after_version: u64) -> Result<Vec<RecordedEvent>, LogError> {
        let inner = &self.inner;
        let stored = inner.raw_stream(&inner.stream_name(stream), after_version, usize::MAX).await?;
        let mut out = Vec::with_capacity(stored.len());
        for e in &stored {
            out.push(inner.decode(e, inner.ordinal_of(e.position).await?)?);
        }
        Ok(out)
    }

    async fn read_all(&self, after_position: u64, limit: usize) -> Result<Vec<RecordedEvent>, LogError> {
        self.inner.read_all(after_position, limit).await
    }

    async fn head(&self) -> Result<u64, LogError> {
        self.inner.head().await
    }

    async fn subscribe_all(&self, after_position: u64) -> Result<Subscription, LogError> {
        let inner = self.inner.clone();
        Ok(Subscription::spawn(move |tx| async move {
            const PAGE: usize = 512;
            let mut after = after_position;
            let mut count = inner.index.count.subscribe();
            loop {
                let page = match inner.read_all(after, PAGE).await {
                    Ok(page) => page,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                };
                if page.is_empty() {
                    // At the head: wait for the index to see a new event.
                    if count.wait_for(|n| *n > after).await.is_err() {
                        let _ = tx.send(Err(LogError::Unavailable("the KurrentDB position index stopped".into()))).await;
                        return;
                    }
                    continue;
                }
                for e in page {
                    after = e.position;
                    if tx.send(Ok(e)).await.is_err() {
                        return;
                    }
                }
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jamuna_domain::{AggregateKind, TenantId, UserId};

    fn meta() -> EventMeta {
        let id = uuid::Uuid::now_v7();
        EventMeta {
            event_id: id,
            tenant: TenantId::parse("acme").expect("tenant"),
            occurred_at: chrono::Utc::now(),
            causation_id: Some(uuid::Uuid::now_v7()),
            correlation_id: id,
            subject: Some(UserId::parse("u-1").expect("user")),
        }
    }

    #[test]
    fn metadata_round_trips_with_the_schema() {
        let m = meta();
        let bytes = encode_metadata(&m, 3).expect("encode");
        let json: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(json["schema"], 3);
        assert_eq!(json["event_id"], m.event_id.to_string());
        assert_eq!(decode_metadata(&bytes).expect("decode"), (m, 3));
        assert!(matches!(decode_metadata(b"{\"foo\": 1}"), Err(LogError::Internal(_))));
        assert!(matches!(decode_metadata(b"not json"), Err(LogError::Internal(_))));
    }

    #[test]
    fn expected_versions_map_to_stream_states() {
        assert_eq!(stream_state(ExpectedVersion::Any), StreamState::Any);
        assert_eq!(stream_state(ExpectedVersion::NoStream), StreamState::NoStream);
        assert_eq!(stream_state(ExpectedVersion::Exact(0)), StreamState::NoStream);
        assert_eq!(stream_state(ExpectedVersion::Exact(1)), StreamState::StreamRevision(0));
        assert_eq!(stream_state(ExpectedVersion::Exact(42)), StreamState::StreamRevision(41));
        assert_eq!(version_of(CurrentRevision::NoStream), 0);
        assert_eq!(version_of(CurrentRevision::Current(0)), 1);
        assert_eq!(version_of(CurrentRevision::Current(9)), 10);
    }

    #[test]
    fn positions_are_ordinals_in_the_filtered_all() {
        let p = |commit, prepare| Position { commit, prepare };
        // A batch shares a commit position, with its own prepare positions.
        let index = vec![p(100, 100), p(250, 180), p(250, 250), p(900, 900)];
        assert_eq!(ordinal_in(&index, p(100, 100)), Some(1));
        assert_eq!(ordinal_in(&index, p(250, 180)), Some(2));
        assert_eq!(ordinal_in(&index, p(250, 250)), Some(3));
        assert_eq!(ordinal_in(&index, p(900, 900)), Some(4));
        assert_eq!(ordinal_in(&index, p(500, 500)), None, "a position that is not one of ours has no ordinal");
        assert_eq!(ordinal_in(&[], p(1, 1)), None);
    }

    #[test]
    fn the_index_grows_in_order_and_ignores_replays() {
        let index = Index { positions: RwLock::new(Vec::new()), count: watch::Sender::new(0) };
        let p = |c| Position { commit: c, prepare: c };
        index.push(p(10));
        index.push(p(20));
        index.push(p(20)); // a resubscription from the last position may deliver it again
        index.push(p(5));
        index.push(p(30));
        assert_eq!(*index.count.borrow(), 3);
        assert_eq!((index.get(1), index.get(3), index.get(4), index.get(0)), (Some(p(10)), Some(p(30)), None, None));
        assert_eq!(index.ordinal(p(20)), Some(2));
    }

    #[test]
    fn stored_events_decode_to_envelopes() {
        let m = meta();
        let metadata = encode_metadata(&m, 2).expect("encode");
        let data = br#"{"type":"MessagePosted","text":"h\u00e9llo \ud83d\udc4b"}"#;
        let e = decode("jamuna-", "jamuna-acme.conversation.c-1", 4, "MessagePosted", &metadata, data, 17).expect("decode");
        assert_eq!(e.stream, StreamId::new(TenantId::parse("acme").expect("tenant"), AggregateKind::Conversation, "c-1").expect("stream"));
        assert_eq!((e.position, e.version, e.schema, e.event_type.as_str()), (17, 5, 2, "MessagePosted"));
        assert_eq!(e.meta, m);
        assert_eq!(e.data.get(), std::str::from_utf8(data).expect("utf8"));
        assert!(decode("jamuna-", "other-acme.conversation.c1", 0, "X", &metadata, data, 1).is_err(), "not our prefix");
        assert!(decode("jamuna-", "jamuna-acme.conversation.c1", 0, "X", &metadata, b"\xff", 1).is_err(), "not UTF-8");
        assert!(decode("jamuna-", "jamuna-acme.conversation.c1", 0, "X", b"{}", data, 1).is_err(), "no metadata");
    }

    #[test]
    fn connection_strings_are_checked_without_echoing_credentials() {
        assert!(parse_connection_string("kurrentdb://localhost:2113?tls=false").is_ok());
        assert!(parse_connection_string("esdb://admin:changeit@localhost:2113?tls=false").is_ok());
        assert!(parse_connection_string("esdb+discover://cluster.example:2113").is_ok());
        let bad = parse_connection_string("esdb://admin:s3cret@localhost:notaport").expect_err("a bad port");
        assert!(!bad.contains("s3cret"), "{bad}");
        assert!(parse_connection_string("http://localhost:2113").is_err());
    }
}
