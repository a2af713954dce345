//! Command handling: load, decide, append, retry.
//!
//! ```text
//! load  — the aggregate's state: the cached one first (no read at all), or
//!         the cached one brought up to date with one read of the stream's tail
//! decide — the domain's pure `decide(state, command, now)`
//! seal  — personal data is encrypted with the data subject's key
//! append — with the version the decision was made at; if another writer got
//!         there first the log answers Conflict, and we go round again
//! ```
//!
//! Within one process, commands on one stream take turns (a striped lock),
//! so they never conflict with each other; conflicts come only from other
//! processes, and are retried with a jittered back-off.
//!
//! The cache holds the states of recently used streams (bounded, oldest
//! evicted first). It is only a shortcut: a decision made on a stale cached
//! state (another process appended) fails its append's version check and is
//! made again on the state read from the log; a refusal or a no-op decided on
//! cached state is confirmed against the log before it is answered.

use crate::log::{Appended, EventLog, ExpectedVersion, LogError, NewEvent};
use crate::seal::{self, SealError, Sealer};
use jamuna_domain::envelope::Envelope;
use jamuna_domain::upcast::DecodeError;
use jamuna_domain::{Aggregate, DomainEvent, EventMeta, StreamId, TenantId, Timestamp};
use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// How many times a command is decided again after a conflict.
pub const MAX_ATTEMPTS: usize = 10;
/// Commands on one stream run one at a time in a process (striped locks), so
/// conflicts come only from other processes.
const LOCK_STRIPES: usize = 1024;
/// How many aggregate states the cache keeps.
pub const CACHE_CAPACITY: usize = 20_000;

/// Why a command did not go through.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: std::error::Error + 'static> {
    /// The domain refused it: a business answer, e.g. `AlreadyResolved`.
    #[error(transparent)]
    Rejected(E),
    /// Other writers kept winning the race; try again later.
    #[error("stream {0} is too busy: the command conflicted {MAX_ATTEMPTS} times")]
    Conflict(String),
    #[error(transparent)]
    Log(LogError),
    #[error(transparent)]
    Seal(#[from] SealError),
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// Who and what a command is for, beyond the command itself.
#[derive(Debug, Clone)]
pub struct CommandContext {
    pub tenant: TenantId,
    pub now: Timestamp,
    /// The request (or the event's correlation) this command belongs to.
    pub correlation_id: uuid::Uuid,
    /// The event that caused this command, if one did (e.g. the customer
    /// message a bot answer replies to).
    pub causation_id: Option<uuid::Uuid>,
}

impl CommandContext {
    /// A context for a command that starts a new chain of causes.
    pub fn new(tenant: TenantId, now: Timestamp) -> Self {
        Self { tenant, now, correlation_id: uuid::Uuid::now_v7(), causation_id: None }
    }
}

/// What a command did.
#[derive(Debug)]
pub struct Executed<A: Aggregate> {
    /// The state after the command.
    pub state: Arc<A>,
    /// The new events (plain, not sealed), in their envelopes. Empty when the
    /// command changed nothing (an idempotent retry).
    pub events: Vec<Envelope<A::Event>>,
    /// Where they were appended; `None` when there were none.
    pub appended: Option<Appended>,
}

impl<A: Aggregate> Executed<A> {
    /// The stream version after the command.
    pub fn version(&self) -> u64 {
        self.state.version()
    }
}

/// Loads, decides and appends commands for any aggregate.
pub struct CommandHandler {
    log: Arc<dyn EventLog>,
    sealer: Sealer,
    cache: Mutex<Cache>,
    locks: Vec<tokio::sync::Mutex<()>>,
}

#[derive(Default)]
struct Cache {
    states: HashMap<StreamId, Box<dyn Any + Send + Sync>>,
    order: VecDeque<StreamId>,
}

impl Cache {
    /// Takes the cached state out (the stream's lock is held, so nobody else
    /// in this process needs it meanwhile); cloned only if a caller still
    /// holds the last [`Executed::state`].
    fn take<A: Aggregate>(&mut self, stream: &StreamId) -> Option<A> {
        let entry = self.states.get_mut(stream)?;
        let arc = entry.downcast_mut::<Arc<A>>()?;
        let arc = std::mem::replace(arc, Arc::new(A::default()));
        Some(Arc::try_unwrap(arc).unwrap_or_else(|shared| (*shared).clone()))
    }

    fn put<A: Aggregate>(&mut self, stream: &StreamId, state: Arc<A>) {
        if self.states.insert(stream.clone(), Box::new(state)).is_none() {
            self.order.push_back(stream.clone());
            while self.order.len() > CACHE_CAPACITY {
                if let Some(old) = self.order.pop_front() {
                    self.states.remove(&old);
                }
            }
        }
    }
}

fn stripe(stream: &StreamId) -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    stream.hash(&mut h);
    (h.finish() as usize) % LOCK_STRIPES
}

impl CommandHandler {
    pub fn new(log: Arc<dyn EventLog>, sealer: Sealer) -> Self {
        let locks = (0..LOCK_STRIPES).map(|_| tokio::sync::Mutex::new(())).collect();
        Self { log, sealer, cache: Mutex::new(Cache::default()), locks }
    }

    pub fn log(&self) -> &Arc<dyn EventLog> {
        &self.log
    }

    pub fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current state of an aggregate.
    pub async fn load<A: Aggregate>(&self, stream: &StreamId) -> Result<Arc<A>, CommandError<A::Error>> {
        let _serialised = self.locks[stripe(stream)].lock().await;
        let state = Arc::new(self.load_owned::<A>(stream).await?);
        self.cache().put(stream, state.clone());
        Ok(state)
    }

    /// The cached state brought up to date, taken out of the cache: the
    /// caller puts it back. Call with the stream's lock held.
    async fn load_owned<A: Aggregate>(&self, stream: &StreamId) -> Result<A, CommandError<A::Error>> {
        let mut state: A = self.cache().take(stream).unwrap_or_default();
        for recorded in self.log.read_stream(stream, state.version()).await.map_err(CommandError::Log)? {
            state.apply(&seal::decode::<A::Event>(&recorded)?);
        }
        Ok(state)
    }

    /// Decides `command` against the aggregate in `stream` and appends the
    /// outcome, retrying on conflicts.
    pub async fn execute<A: Aggregate>(
        &self,
        stream: &StreamId,
        command: &A::Command,
        ctx: &CommandContext,
    ) -> Result<Executed<A>, CommandError<A::Error>> {
        if stream.kind() != A::KIND || stream.tenant() != &ctx.tenant {
            return Err(CommandError::Log(LogError::Invalid(format!("stream {stream} is not a {} of tenant {}", A::KIND, ctx.tenant))));
        }
        // A span per command, in the command's trace (its correlation id): a
        // child of the caller's span when that is in the same trace (the
        // gateway's request, the AI worker's handling of an event).
        let span = tracing::info_span!("command", trace_id = %ctx.correlation_id.simple(), aggregate = %A::KIND, stream = %stream);
        tracing::Instrument::instrument(self.execute_traced(stream, command, ctx), span).await
    }

    async fn execute_traced<A: Aggregate>(
        &self,
        stream: &StreamId,
        command: &A::Command,
        ctx: &CommandContext,
    ) -> Result<Executed<A>, CommandError<A::Error>> {
        let _serialised = self.locks[stripe(stream)].lock().await;
        // The first try decides on the cached state without reading the log:
        // if another process appended meanwhile, the append's expected
        // version catches it and the next try reads the log. A refusal or a
        // no-op decided on cached state is checked against the log first.
        let mut from_cache = true;
        let mut conflicts = 0;
        loop {
            let cached = if from_cache { self.cache().take::<A>(stream) } else { None };
            let verified = cached.is_none();
            let state = match cached {
                Some(state) => state,
                None => self.load_owned::<A>(stream).await?,
            };
            match state.decide(command, ctx.now) {
                Ok(events) if !events.is_empty() => match self.append(stream, state, events, ctx).await? {
                    Some(executed) => return Ok(executed),
                    None => {
                        conflicts += 1;
                        if conflicts >= MAX_ATTEMPTS {
                            return Err(CommandError::Conflict(stream.to_string()));
                        }
                        // Another process won the race: back off a little, with jitter.
                        let ms = rand::random_range(0..(1u64 << conflicts.min(8)));
                        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                    }
                },
                decided => {
                    let state = Arc::new(state);
                    self.cache().put(stream, state.clone());
                    if !verified {
                        from_cache = false;
                        continue;
                    }
                    return match decided {
                        Ok(_) => Ok(Executed { state, events: vec![], appended: None }),
                        Err(e) => Err(CommandError::Rejected(e)),
                    };
                }
            }
            from_cache = false;
        }
    }

    /// Seals and appends `decided` at the state's version; `None` on a conflict.
    async fn append<A: Aggregate>(
        &self,
        stream: &StreamId,
        state: A,
        decided: Vec<A::Event>,
        ctx: &CommandContext,
    ) -> Result<Option<Executed<A>>, CommandError<A::Error>> {
        let base = state.version();
        let expected = if base == 0 { ExpectedVersion::NoStream } else { ExpectedVersion::Exact(base) };
        // Seal each event under the subject the state names for it. The state
        // moves forward as we go; on a failure it is dropped (not cached), so
        // the next command reads the log.
        let mut next = state;
        let mut new_events = Vec::with_capacity(decided.len());
        let mut metas = Vec::with_capacity(decided.len());
        for event in &decided {
            let meta = EventMeta {
                event_id: uuid::Uuid::now_v7(),
                tenant: ctx.tenant.clone(),
                occurred_at: ctx.now,
                causation_id: ctx.causation_id,
                correlation_id: ctx.correlation_id,
                subject: next.data_subject(event),
            };
            let mut sealed = event.clone();
            self.sealer.seal(&ctx.tenant, meta.subject.as_ref(), meta.event_id, &mut sealed).await?;
            let data = serde_json::value::to_raw_value(&sealed).map_err(|e| SealError::Encode(meta.event_id, e))?;
            new_events.push(NewEvent { meta: meta.clone(), event_type: sealed.event_type().into(), schema: sealed.schema_version(), data });
            metas.push(meta);
            next.apply(event);
        }
        // One `append` span per event, covering the log's append, whose span
        // id is derived from the event id (`EventMeta::span_id_hex`): whoever
        // consumes the event can continue the trace from the span that wrote it.
        let spans: Vec<tracing::Span> = metas
            .iter()
            .zip(&decided)
            .map(|(meta, event)| tracing::info_span!("append", span_id = %meta.span_id_hex(), event_type = event.event_type(), stream = %stream, event_id = %meta.event_id, outcome = tracing::field::Empty))
            .collect();
        let result = self.log.append(stream, expected, new_events).await;
        let outcome = match &result {
            Ok(_) => "appended",
            Err(e) if e.is_conflict() => "conflict",
            Err(_) => "error",
        };
        for span in &spans {
            span.record("outcome", outcome);
        }
        drop(spans);
        let appended = match result {
            Ok(appended) => appended,
            Err(e) if e.is_conflict() => return Ok(None),
            Err(e) => return Err(CommandError::Log(e)),
        };
        let next = Arc::new(next);
        self.cache().put(stream, next.clone());
        let events = decided
            .into_iter()
            .zip(metas)
            .enumerate()
            .map(|(i, (event, meta))| Envelope {
                position: appended.first_position + i as u64,
                stream: stream.clone(),
                version: base + 1 + i as u64,
                meta,
                event_type: event.event_type().into(),
                schema: event.schema_version(),
                data: event,
            })
            .collect();
        Ok(Some(Executed { state: next, events, appended: Some(appended) }))
    }
}
