//! The distributed event log: one NATS JetStream stream.
//!
//! * One stream (`JAMUNA_EVENTS`, file storage) holds every event; each
//!   aggregate has its own subject, `events.<tenant>.<kind>.<id>`.
//! * The **global position is the stream sequence**; the stream version is
//!   carried in the message (payload and `Jamuna-Version` header).
//! * **Optimistic concurrency**: an append reads the stream's last message
//!   (a direct get by subject), checks the expected version, and publishes
//!   with `Nats-Expected-Last-Subject-Sequence` set to that message's
//!   sequence, so a writer that raced in between makes the server refuse
//!   the append; we answer [`LogError::Conflict`].
//! * **Idempotency**: single events carry `Nats-Msg-Id` = event id (the
//!   server's duplicate window). A retry that finds the stream already past
//!   its expected version compares the event stored at that version with its
//!   own id, so a retry after the window is recognised too.
//! * **Atomic multi-event appends** use JetStream atomic batches (server
//!   2.12+, `allow_atomic` on the stream): all events of one command are
//!   stored, with consecutive sequences, or none are.
//! * **Durability**: an acknowledged publish is on disk only if the server
//!   fsyncs before acknowledging; run it with `jetstream { sync_interval:
//!   always }` (see `infra/nats/nats.conf`). The default interval (2 min)
//!   loses acknowledged writes on power loss, as the Jepsen analysis of NATS
//!   2.12 showed.
//! * **Subscriptions** are ordered consumers starting at a sequence: they
//!   deliver the stored events, then live ones, and recover from gaps.

use super::{Appended, EventLog, ExpectedVersion, LogError, NewEvent, RecordedEvent, Subscription};
use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer, context::PublishErrorKind, message::PublishMessage, stream};
use async_trait::async_trait;
use futures::StreamExt;
use jamuna_domain::envelope::Envelope;
use jamuna_domain::{EventMeta, StreamId};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::time::Duration;

/// Where the log lives on the NATS server.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    pub stream_name: String,
    pub subject_prefix: String,
    pub replicas: usize,
    /// How long the server remembers message ids for deduplication.
    pub duplicate_window: Duration,
}

impl Default for NatsConfig {
    fn default() -> Self {
        Self {
            stream_name: "JAMUNA_EVENTS".into(),
            subject_prefix: "events".into(),
            replicas: 1,
            duplicate_window: Duration::from_secs(600),
        }
    }
}

#[cfg(test)]
mod fuzz;

const VERSION_HEADER: &str = "Jamuna-Version";
/// The most messages one batched direct get asks for.
const DIRECT_BATCH: usize = 1000;

/// The message payload: everything but the position (the sequence) and the
/// stream (the subject).
#[derive(Serialize, Deserialize)]
struct Stored {
    version: u64,
    meta: EventMeta,
    #[serde(rename = "type")]
    event_type: String,
    schema: u16,
    data: Box<RawValue>,
}

pub struct NatsLog {
    client: async_nats::Client,
    js: jetstream::Context,
    config: NatsConfig,
    decoder: Decoder,
}

impl NatsLog {
    /// Connects and creates (or checks) the stream.
    pub async fn connect(url: &str, config: NatsConfig) -> Result<Self, LogError> {
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .name("jamuna")
            .connect(url)
            .await
            .map_err(LogError::unavailable)?;
        let js = jetstream::new(client.clone());
        js.get_or_create_stream(stream::Config {
            name: config.stream_name.clone(),
            subjects: vec![format!("{}.>", config.subject_prefix)],
            storage: stream::StorageType::File,
            num_replicas: config.replicas,
            duplicate_window: config.duplicate_window,
            allow_direct: true,
            allow_atomic_publish: true,
            ..Default::default()
        })
        .await
        .map_err(LogError::unavailable)?;
        let decoder = Decoder { subject_prefix: config.subject_prefix.clone() };
        Ok(Self { client, js, config, decoder })
    }

    /// Deletes the whole stream and every event in it (benchmarks and tests).
    pub async fn delete_stream(&self) -> Result<(), LogError> {
        self.js.delete_stream(&self.config.stream_name).await.map_err(LogError::unavailable)?;
        Ok(())
    }

    fn subject(&self, stream: &StreamId) -> String {
        format!("{}.{stream}", self.config.subject_prefix)
    }

    async fn stream(&self) -> Result<stream::Stream, LogError> {
        self.js.get_stream(&self.config.stream_name).await.map_err(LogError::unavailable)
    }

    /// The sequence and version of the stream's last event (0, 0 if none).
    async fn last_of(&self, subject: &str) -> Result<(u64, u64), LogError> {
        let stream = self.js.get_stream_no_info(&self.config.stream_name).await.map_err(LogError::unavailable)?;
        match stream.direct_get_last_for_subject(subject).await {
            Ok(m) => {
                let version = m
                    .headers
                    .get(VERSION_HEADER)
                    .and_then(|v| v.as_str().parse().ok())
                    .ok_or_else(|| LogError::Internal(format!("message {} has no {VERSION_HEADER} header", m.sequence).into()))?;
                Ok((m.sequence, version))
            }
            Err(e) if e.kind() == stream::DirectGetErrorKind::NotFound => Ok((0, 0)),
            Err(e) => Err(LogError::unavailable(e)),
        }
    }

    fn encode(e: NewEvent, version: u64) -> Result<bytes::Bytes, LogError> {
        let stored = Stored { version, meta: e.meta, event_type: e.event_type, schema: e.schema, data: e.data };
        serde_json::to_vec(&stored).map(Into::into).map_err(LogError::internal)
    }

    /// Up to `max` events on subjects matching `filter`, from sequence
    /// `from`, in one batched direct get (server 2.11+): no consumer is made.
    async fn direct_batch(&self, filter: &str, from: u64, max: usize) -> Result<Vec<RecordedEvent>, LogError> {
        let inbox = self.client.new_inbox();
        let mut replies = self.client.subscribe(inbox.clone()).await.map_err(LogError::unavailable)?;
        let request = serde_json::json!({"seq": from, "next_by_subj": filter, "batch": max.min(DIRECT_BATCH)});
        let subject = format!("$JS.API.DIRECT.GET.{}", self.config.stream_name);
        self.client
            .publish_with_reply(subject, inbox, serde_json::to_vec(&request).map_err(LogError::internal)?.into())
            .await
            .map_err(LogError::unavailable)?;
        let mut out = Vec::new();
        loop {
            let m = tokio::time::timeout(Duration::from_secs(10), replies.next())
                .await
                .map_err(|_| LogError::Unavailable("timed out reading the event log".into()))?
                .ok_or_else(|| LogError::Unavailable("the connection to NATS closed".into()))?;
            if let Some(status) = m.status {
                // 204: end of the batch; 404: nothing (more) to read.
                return match status.as_u16() {
                    204 | 404 => Ok(out),
                    _ => Err(LogError::Unavailable(format!("direct get failed: {status} {}", m.description.unwrap_or_default()).into())),
                };
            }
            let headers = m.headers.as_ref().ok_or_else(|| LogError::Internal("a direct get reply without headers".into()))?;
            let seq = headers
                .get("Nats-Sequence")
                .and_then(|v| v.as_str().parse().ok())
                .ok_or_else(|| LogError::Internal("a direct get reply without Nats-Sequence".into()))?;
            let subj = headers
                .get("Nats-Subject")
                .map(|v| v.as_str().to_owned())
                .ok_or_else(|| LogError::Internal("a direct get reply without Nats-Subject".into()))?;
            out.push(self.decoder.decode(&subj, seq, &m.payload)?);
        }
    }

    /// Is the event at `version` of this stream the one with `event_id`?
    async fn stored_at(&self, stream: &StreamId, version: u64, event_id: uuid::Uuid) -> Result<Option<RecordedEvent>, LogError> {
        let events = self.read_stream(stream, version - 1).await?;
        Ok(events.into_iter().next().filter(|e| e.meta.event_id == event_id))
    }
}

#[async_trait]
impl EventLog for NatsLog {
    async fn append(&self, stream: &StreamId, expected: ExpectedVersion, events: Vec<NewEvent>) -> Result<Appended, LogError> {
        super::validate(stream, &events)?;
        let subject = self.subject(stream);
        let n = events.len() as u64;
        let (last_seq, actual) = self.last_of(&subject).await?;
        if !expected.admits(actual) {
            // A retry of an append that already succeeded is not a conflict.
            let base = match expected {
                ExpectedVersion::NoStream => Some(0),
                ExpectedVersion::Exact(v) => Some(v),
                ExpectedVersion::Any => None,
            };
            if let Some(v) = base
                && actual > v
                && let Some(first) = self.stored_at(stream, v + 1, events[0].meta.event_id).await?
            {
                return Ok(Appended {
                    first_position: first.position,
                    last_position: first.position + n - 1,
                    version: v + n,
                    duplicate: true,
                });
            }
            return Err(LogError::Conflict { stream: stream.to_string(), expected, actual });
        }
        let conflict = || LogError::Conflict { stream: stream.to_string(), expected, actual: actual + 1 };

        if n == 1 {
            let e = events.into_iter().next().ok_or_else(|| LogError::Invalid("no event".into()))?;
            let id = e.meta.event_id.to_string();
            let msg = PublishMessage::build()
                .payload(Self::encode(e, actual + 1)?)
                .message_id(id)
                .expected_last_subject_sequence(last_seq)
                .header(VERSION_HEADER, (actual + 1).to_string().as_str());
            let ack = match self.js.send_publish(subject, msg).await {
                Ok(f) => f.await,
                Err(e) => Err(e),
            };
            return match ack {
                Ok(ack) => {
                    let version = if ack.duplicate {
                        self.read_stream(stream, 0)
                            .await?
                            .into_iter()
                            .find(|e| e.position == ack.sequence)
                            .map(|e| e.version)
                            .unwrap_or(actual + 1)
                    } else {
                        actual + 1
                    };
                    Ok(Appended { first_position: ack.sequence, last_position: ack.sequence, version, duplicate: ack.duplicate })
                }
                Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => Err(conflict()),
                Err(e) => Err(LogError::unavailable(e)),
            };
        }

        // An atomic batch: intermediate messages are staged by the server and
        // stored with the commit, or dropped with it.
        let batch_id = uuid::Uuid::now_v7().simple().to_string();
        let mut version = actual;
        let mut commit = None;
        for (i, e) in events.into_iter().enumerate() {
            version += 1;
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Batch-Id", batch_id.as_str());
            headers.insert("Nats-Batch-Sequence", (i + 1).to_string().as_str());
            headers.insert(VERSION_HEADER, version.to_string().as_str());
            if i == 0 {
                headers.insert("Nats-Expected-Last-Subject-Sequence", last_seq.to_string().as_str());
            }
            let payload = Self::encode(e, version)?;
            if version == actual + n {
                headers.insert("Nats-Batch-Commit", "1");
                commit = Some((headers, payload));
            } else {
                self.client.publish_with_headers(subject.clone(), headers, payload).await.map_err(LogError::unavailable)?;
            }
        }
        let (headers, payload) = commit.ok_or_else(|| LogError::Invalid("empty batch".into()))?;
        let ack = match self.js.send_publish(subject, PublishMessage::build().headers(headers).payload(payload)).await {
            Ok(f) => f.await,
            Err(e) => Err(e),
        };
        match ack {
            Ok(ack) => {
                Ok(Appended { first_position: ack.sequence + 1 - n, last_position: ack.sequence, version: actual + n, duplicate: false })
            }
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => Err(conflict()),
            Err(e) => Err(LogError::unavailable(e)),
        }
    }

    async fn read_stream(&self, stream: &StreamId, after_version: u64) -> Result<Vec<RecordedEvent>, LogError> {
        let subject = self.subject(stream);
        let (last_seq, version) = self.last_of(&subject).await?;
        if version <= after_version {
            return Ok(vec![]);
        }
        let mut events = Vec::new();
        let mut from = 1;
        while from <= last_seq {
            let page = self.direct_batch(&subject, from, DIRECT_BATCH).await?;
            let Some(last) = page.last() else { break };
            from = last.position + 1;
            events.extend(page.into_iter().filter(|e| e.version > after_version && e.position <= last_seq));
        }
        Ok(events)
    }

    async fn read_all(&self, after_position: u64, limit: usize) -> Result<Vec<RecordedEvent>, LogError> {
        let filter = format!("{}.>", self.config.subject_prefix);
        let mut events = Vec::new();
        let mut from = after_position + 1;
        while events.len() < limit {
            let page = self.direct_batch(&filter, from, limit - events.len()).await?;
            let Some(last) = page.last() else { break };
            from = last.position + 1;
            events.extend(page);
        }
        Ok(events)
    }

    async fn head(&self) -> Result<u64, LogError> {
        let info = self.stream().await?.get_info().await.map_err(LogError::unavailable)?;
        Ok(info.state.last_sequence)
    }

    async fn subscribe_all(&self, after_position: u64) -> Result<Subscription, LogError> {
        let consumer = self
            .stream()
            .await?
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: format!("{}.>", self.config.subject_prefix),
                deliver_policy: consumer::DeliverPolicy::ByStartSequence { start_sequence: after_position + 1 },
                ..Default::default()
            })
            .await
            .map_err(LogError::unavailable)?;
        let mut messages = consumer.messages().await.map_err(LogError::unavailable)?;
        let decoder = self.decoder.clone();
        Ok(Subscription::spawn(move |tx| async move {
            while let Some(m) = messages.next().await {
                let event = m.map_err(LogError::unavailable).and_then(|m| {
                    let seq = m.info().map_err(|e| LogError::Internal(e.to_string().into()))?.stream_sequence;
                    decoder.decode(m.subject.as_str(), seq, &m.payload)
                });
                let failed = event.is_err();
                if tx.send(event).await.is_err() || failed {
                    return;
                }
            }
        }))
    }
}

/// Turns stored messages back into events.
#[derive(Clone)]
struct Decoder {
    subject_prefix: String,
}

impl Decoder {
    fn decode(&self, subject: &str, sequence: u64, payload: &[u8]) -> Result<RecordedEvent, LogError> {
        let corrupt = |reason: String| LogError::Corrupt { position: sequence, reason };
        let stream_id = subject
            .strip_prefix(&self.subject_prefix)
            .and_then(|s| s.strip_prefix('.'))
            .ok_or_else(|| corrupt(format!("subject {subject}")))?;
        let stream = StreamId::parse(stream_id).map_err(|e| corrupt(e.to_string()))?;
        let s: Stored = serde_json::from_slice(payload).map_err(|e| corrupt(e.to_string()))?;
        Ok(Envelope {
            position: sequence,
            stream,
            version: s.version,
            meta: s.meta,
            event_type: s.event_type,
            schema: s.schema,
            data: s.data,
        })
    }
}
