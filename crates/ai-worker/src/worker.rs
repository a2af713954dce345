//! The worker: follows the event log and answers customers.
//!
//! It reads the log from the start, keeping every tenant's knowledge base
//! indexed as articles come and go, and from its checkpoint on, decides about
//! each customer message of a conversation that no human has taken over:
//! an `AnswerMessage` or a `RequestHandoff` command goes back through the
//! command handler. Both are idempotent in the domain (a message is answered
//! once, a handoff requested once), so after a crash the worker may see a
//! message again without answering twice.
//!
//! **Replicas.** Conversations fall into [`PARTITIONS`] partitions (a hash
//! of the conversation id); a worker answers the messages of the partitions
//! it holds ([`WorkShare`]: one process holds them all; replicas split them
//! by leases in Redis). Every replica still reads the whole log, because each
//! needs the knowledge base. Each partition has its own checkpoint: a worker
//! that takes a partition over answers what its last holder left after that
//! checkpoint, then goes on with the live log. A conversation's messages are
//! always answered by one worker, in order.
//!
//! **Batches.** The worker takes what has arrived in the log, up to
//! [`BATCH`] events, and answers the customer messages among them together
//! ([`Worker::answer_all`]): one embedding call for the batch's texts, the
//! answers appended concurrently so the log commits them as one group. A
//! conversation's messages in one batch are answered in order, each in the
//! context the one before left ([`waves`]). Nothing waits for a batch to
//! fill: at low load a batch is the one message that arrived. Only an event
//! that changes what the bot knows ([`splits_batch`]) ends a batch early;
//! the bot's own answers, which under load come between nearly every two
//! messages, do not (they did, and batches were of one or two messages). A
//! wave's messages are decided in tasks of their own, on every core. The
//! worker does not wait for a batch's answers to be appended before it reads
//! and embeds the next batch ([`Answers`]): the next wave is decided once
//! they are in. The log's commit and the encoder's forward pass overlap;
//! taking turns, they left a quarter of the two cores idle at 50 customers.
//!
//! **Where the time goes** (read from `/metrics`, or printed per level by
//! `jamuna bench chat`): `jamuna_ai_worker_wait_seconds` (a message's time in
//! the log before the worker takes it up), `jamuna_ai_worker_stage_seconds{stage}`
//! (`open`, `load`, `embed`, `decide_append` per wave; `decide`, `append` per
//! message), `jamuna_ai_worker_batch_messages` and
//! `jamuna_ai_worker_log_batch_events` (messages per batch, events per read).
//!
//! **Training.** Every knowledge-base event also goes to the
//! [`Retrainer`](crate::retrain::Retrainer), which trains the models admins
//! ask for in the background (see [`crate::retrain`]).
//!
//! **Following the log.** The worker follows it with the projector's loop,
//! [`follow_log`]: a change of partitions ([`LogConsumer::interrupted`]) is
//! dealt with between two batches; 1 s before
//! subscribing again after a failure, 200 ms after a subscription broke.
//! A stored event whose envelope does not decode ([`LogError::Corrupt`]) would
//! be met again at every resubscription and hold back every answer after it:
//! the worker logs it (error, with its position), counts it in
//! `jamuna_ai_worker_skipped_total{reason="undecodable"}` and goes on after it.
//! (It cannot tell whose message it was; the conversation's customer can
//! write again, and staff see the conversation in the inbox.)

use crate::answer::Answerer;
use crate::decision::Decision;
use jamuna_commands::handler::{CommandContext, CommandError, CommandHandler};
use jamuna_commands::{EventLog, LogError, RecordedEvent, seal};
use jamuna_domain::conversation::{Author, Conversation, ConversationCommand, ConversationError, ConversationEvent};
use jamuna_domain::knowledge_base::KnowledgeBaseEvent;
use jamuna_domain::tenant::TenantEvent;
use jamuna_domain::{AggregateKind, MessageText, TenantId};
use jamuna_projections::runtime::follow::{Backoff, Failure, LogConsumer, Next, RetryPolicy, follow_log};
use jamuna_projections::work_share::{PARTITIONS, WorkShare, partition_of, partition_unit};
use jamuna_projections::{Projection, ProjectionError};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where the worker remembers how far it answered: a file in the embedded
/// mode ([`Checkpoint`]), a shared database in the distributed mode (the
/// binary's MongoDB adapter), so a restarted worker on another machine
/// continues where the last one stopped.
#[async_trait::async_trait]
pub trait CheckpointStore: Send + Sync + 'static {
    /// The last position answered under `key` (0: none).
    async fn load(&self, key: &str) -> std::io::Result<u64>;
    async fn store(&self, key: &str, position: u64) -> std::io::Result<()>;
}

/// The checkpoint key of a partition.
pub fn checkpoint_key(partition: u32) -> String {
    format!("ai-worker.p{partition}")
}

/// The key of the one checkpoint workers kept before partitions: where a
/// partition without a checkpoint of its own starts.
pub const WHOLE_LOG_CHECKPOINT: &str = "ai-worker";

/// Checkpoints in files, `<dir>/<key>.checkpoint`.
pub struct Checkpoint {
    dir: PathBuf,
}

impl Checkpoint {
    pub fn in_dir(dir: PathBuf) -> Self {
        Self { dir }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.checkpoint"))
    }
}

#[async_trait::async_trait]
impl CheckpointStore for Checkpoint {
    async fn load(&self, key: &str) -> std::io::Result<u64> {
        match std::fs::read_to_string(self.path(key)) {
            Ok(s) => s.trim().parse().map_err(|e| std::io::Error::other(format!("{} is not a position: {e}", self.path(key).display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Written to a temporary file and renamed, so it is never half-written.
    async fn store(&self, key: &str, position: u64) -> std::io::Result<()> {
        let path = self.path(key);
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, position.to_string())?;
        std::fs::rename(tmp, path)
    }
}

/// Every partition, as units of work for a [`WorkShare`].
pub fn partition_units() -> Vec<String> {
    (0..PARTITIONS).map(partition_unit).collect()
}

pub struct Worker {
    pub commands: Arc<CommandHandler>,
    pub answerer: Arc<Answerer>,
    pub checkpoint: Arc<dyn CheckpointStore>,
    /// Which partitions this worker answers ([`partition_units`]); it
    /// releases them when it stops.
    pub share: Arc<WorkShare>,
}

/// A partition this worker holds.
struct Held {
    /// Messages after this position are this worker's to answer.
    from: u64,
    /// The position last stored as the partition's checkpoint.
    stored: u64,
}

impl Worker {
    /// Runs until the process stops; resubscribes after errors.
    pub async fn run(self, log: Arc<dyn EventLog>) {
        let (_keep, stop) = tokio::sync::watch::channel(false);
        self.run_until(log, stop).await
    }

    /// Runs until `stop` turns `true`: then it finishes the event in hand,
    /// stores its checkpoints, releases its partitions and returns.
    pub async fn run_until(self, log: Arc<dyn EventLog>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut answering = Answering {
            worker: &self,
            log: &log,
            partitions: self.share.held(),
            held: BTreeMap::new(),
            position: 0,
            last_store: Instant::now(),
            stop: stop.clone(),
            retrain: crate::retrain::Retrainer::start(self.commands.clone(), self.answerer.intents().clone(), self.share.clone()),
            answers: Answers::default(),
        };
        if !answering.rebalance().await {
            return self.share.shutdown().await;
        }
        // What has arrived, up to a bound: a rebalance comes between two batches.
        follow_log(log.as_ref(), &mut stop, BATCH, &mut Backoff::new(RETRY), &mut answering).await;
        answering.answers.settle().await;
        let Answering { mut held, position, .. } = answering;
        self.store_checkpoints(&mut held, position).await;
        tracing::info!(position, partitions = held.len(), "ai-worker stopped; checkpoints stored");
        self.share.shutdown().await;
    }

    /// Handles one event under a span that continues its trace: the event's
    /// correlation id is the trace id of the request that caused it (see the
    /// gateway's `trace`), and the span that appended it has an id derived
    /// from the event id (`EventMeta::span_id_hex`).
    async fn handle_traced(&self, recorded: &RecordedEvent, answer: bool) {
        let span = tracing::info_span!("ai_worker.handle", otel.kind = "consumer", trace_id = %recorded.meta.trace_id_hex(), parent_id = %recorded.meta.span_id_hex(), event_type = %recorded.event_type, position = recorded.position);
        tracing::Instrument::instrument(self.handle(recorded, answer), span).await;
    }

    /// Stores, for every partition held, that everything up to `position`
    /// has been answered (where that is news).
    async fn store_checkpoints(&self, held: &mut BTreeMap<u32, Held>, position: u64) {
        for (p, h) in held.iter_mut() {
            if position > h.stored.max(h.from) {
                match self.checkpoint.store(&checkpoint_key(*p), position).await {
                    Ok(()) => h.stored = position,
                    Err(e) => tracing::warn!(partition = p, error = %e, "ai-worker cannot store a checkpoint"),
                }
            }
        }
    }

    /// Follows a change in the partitions held: stores the checkpoints of
    /// those given up; answers, for those taken over, what was left between
    /// their checkpoint and `position`. False if asked to stop meanwhile.
    async fn rebalance(
        &self,
        log: &Arc<dyn EventLog>,
        partitions: &mut tokio::sync::watch::Receiver<BTreeSet<String>>,
        held: &mut BTreeMap<u32, Held>,
        position: u64,
        stop: &mut tokio::sync::watch::Receiver<bool>,
    ) -> bool {
        let wanted: BTreeSet<u32> = partitions.borrow_and_update().iter().filter_map(|u| u.strip_prefix('p')?.parse().ok()).collect();
        let mut given_up: BTreeMap<u32, Held> = held.extract_if(.., |p, _| !wanted.contains(p)).collect();
        if !given_up.is_empty() {
            self.store_checkpoints(&mut given_up, position).await;
            tracing::info!(partitions = ?given_up.keys().collect::<Vec<_>>(), "ai-worker handed partitions over");
        }
        for p in wanted {
            if held.contains_key(&p) {
                continue;
            }
            let Some(from) = self.load_checkpoint(p, stop).await else { return false };
            if from < position && !self.catch_up(log, p, from, position, stop).await {
                return false;
            }
            held.insert(p, Held { from: from.max(position), stored: from });
        }
        metrics::gauge!("jamuna_ai_worker_partitions").set(held.len() as f64);
        true
    }

    /// A partition's checkpoint, or the whole-log one of older versions when
    /// it has none; waits out an unavailable store. `None` if asked to stop.
    async fn load_checkpoint(&self, p: u32, stop: &mut tokio::sync::watch::Receiver<bool>) -> Option<u64> {
        loop {
            let loaded = match self.checkpoint.load(&checkpoint_key(p)).await {
                Ok(0) => self.checkpoint.load(WHOLE_LOG_CHECKPOINT).await,
                other => other,
            };
            match loaded {
                Ok(position) => return Some(position),
                Err(e) => {
                    tracing::warn!(partition = p, error = %e, "ai-worker cannot read a checkpoint; retrying");
                    if Backoff::new(RETRY).pause(stop).await {
                        return None;
                    }
                }
            }
        }
    }

    /// Answers the messages of partition `p` in `(after, up_to]`: what its
    /// previous holder had not answered when it stopped. False if asked to stop.
    async fn catch_up(
        &self,
        log: &Arc<dyn EventLog>,
        p: u32,
        mut after: u64,
        up_to: u64,
        stop: &mut tokio::sync::watch::Receiver<bool>,
    ) -> bool {
        tracing::info!(partition = p, after, up_to, "ai-worker catches up on a partition it took over");
        let mut limit = CATCH_UP_PAGE;
        while after < up_to {
            if *stop.borrow() {
                return false;
            }
            let page = match log.read_all(after, limit).await {
                Ok(page) => {
                    limit = CATCH_UP_PAGE;
                    page
                }
                // Read what precedes it, then go on after it.
                Err(LogError::Corrupt { position, reason }) if position > after => {
                    if position == after + 1 {
                        skip_undecodable(position, &reason);
                        after = position;
                    } else {
                        limit = usize::try_from(position - after - 1).unwrap_or(CATCH_UP_PAGE).min(CATCH_UP_PAGE);
                    }
                    continue;
                }
                Err(e) => {
                    tracing::warn!(partition = p, error = %e, "ai-worker cannot read the log to catch up; retrying");
                    if Backoff::new(RETRY).pause(stop).await {
                        return false;
                    }
                    continue;
                }
            };
            let Some(last) = page.last().map(|e| e.position) else { break };
            let messages: Vec<&RecordedEvent> = page
                .iter()
                .filter(|e| {
                    e.position <= up_to
                        && e.stream.kind() == AggregateKind::Conversation
                        && partition_of(e.stream.id()) == p
                        && e.event_type == "MessagePosted"
                })
                .collect();
            for batch in messages.chunks(BATCH) {
                self.answer_all(batch).await;
            }
            after = last;
        }
        true
    }

    async fn handle(&self, recorded: &RecordedEvent, answer: bool) {
        match recorded.stream.kind() {
            AggregateKind::KnowledgeBase => self.index(recorded).await,
            AggregateKind::Conversation if answer && recorded.event_type == "MessagePosted" => self.answer(recorded).await,
            AggregateKind::Tenant => {
                if let Ok(TenantEvent::TenantCreated { settings, .. } | TenantEvent::TenantSettingsChanged { settings }) =
                    seal::decode(recorded)
                {
                    self.answerer.intents.set_retention(recorded.stream.tenant(), settings.handoff_retention as f32);
                }
            }
            AggregateKind::User if recorded.event_type == "UserErased" => {
                if let Ok(user) = jamuna_domain::UserId::parse(recorded.stream.id()) {
                    self.answerer.forget_user(recorded.stream.tenant(), &user).await;
                }
            }
            _ => {}
        }
    }

    async fn index(&self, recorded: &RecordedEvent) {
        let tenant = recorded.stream.tenant();
        let result = match seal::decode::<KnowledgeBaseEvent>(recorded) {
            // Articles: the vector projection embeds and stores their passages
            // (an event it has applied already changes nothing).
            Ok(
                KnowledgeBaseEvent::ArticleAdded { .. }
                | KnowledgeBaseEvent::ArticleUpdated { .. }
                | KnowledgeBaseEvent::ArticleRemoved { .. },
            ) => self.index_article(recorded).await,
            // Labelled examples, intent answers and trained models.
            Ok(other) => {
                self.answerer.learn(tenant, &other);
                Ok(())
            }
            Err(e) => {
                tracing::error!(position = recorded.position, error = %e, "ai-worker cannot read a knowledge-base event");
                Ok(())
            }
        };
        if let Err(e) = result {
            tracing::error!(position = recorded.position, error = %e, "ai-worker cannot index an article");
        }
    }

    /// Applies an article event to the knowledge-base vectors, waiting out
    /// an unavailable vector store (up to about a minute). A failure is
    /// logged by the caller; `jamuna replay --projection vectors` rebuilds.
    async fn index_article(&self, recorded: &RecordedEvent) -> Result<(), ProjectionError> {
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.answerer.vectors().apply(std::slice::from_ref(recorded)).await {
                Err(e) if e.is_transient() && backoff < Duration::from_secs(30) => {
                    tracing::warn!(position = recorded.position, error = %e, "the vector store is unavailable; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                other => return other,
            }
        }
    }

    /// Answers one customer message (a batch of one: see [`Worker::answer_all`]).
    async fn answer(&self, recorded: &RecordedEvent) {
        self.answer_all(&[recorded]).await
    }

    /// Answers customer messages taken from the log together, in waves: the
    /// first message of each conversation in the batch, then the second, and
    /// so on ([`waves`]), so that a conversation's messages are answered in
    /// order and each in the context its predecessor left. A wave loads its
    /// conversations concurrently, embeds its texts in one call (one forward
    /// pass per length bucket), decides each message, and appends the
    /// answers concurrently: the log commits them as one group.
    pub async fn answer_all(&self, messages: &[&RecordedEvent]) {
        let mut answering = Answers::default();
        self.start_answers(messages, &mut answering).await;
        answering.settle().await;
    }

    /// [`Worker::answer_all`], except that the last wave's answers may still
    /// be on their way when it returns: they are in `answering`, and the
    /// worker reads and embeds its next batch meanwhile (see [`Answers`]).
    async fn start_answers(&self, messages: &[&RecordedEvent], answering: &mut Answers) {
        let now = chrono::Utc::now();
        for recorded in messages {
            // How long the message waited in the log before the worker took it up.
            let waited = (now - recorded.meta.occurred_at).to_std().unwrap_or_default();
            metrics::histogram!("jamuna_ai_worker_wait_seconds").record(waited.as_secs_f64());
        }
        let started = Instant::now();
        // Opened together: in the distributed mode each opening asks the key
        // store (MongoDB, never cached: see `keys::mongo`) for the customer's key.
        // One after another that was ~5.6 ms a message, 157 ms of a batch of 28.
        let texts = futures::future::join_all(messages.iter().map(|recorded| self.customer_text(recorded))).await;
        let asked: Vec<Asked> =
            messages.iter().zip(texts).filter_map(|(recorded, text)| text.map(|text| Asked { recorded, text })).collect();
        stage("open", started);
        metrics::histogram!("jamuna_ai_worker_batch_messages").record(asked.len() as f64);
        for wave in waves(asked, |a| &a.recorded.stream) {
            self.answer_wave(wave, answering).await;
        }
    }

    /// The text of a customer's message, if `recorded` is one (and not erased).
    async fn customer_text(&self, recorded: &RecordedEvent) -> Option<String> {
        let opened = match self.commands.sealer().open::<ConversationEvent>(recorded).await {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(position = recorded.position, error = %e, "ai-worker cannot read a message");
                metrics::counter!("jamuna_ai_worker_skipped_total", "reason" => "unopenable").increment(1);
                return None;
            }
        };
        let ConversationEvent::MessagePosted { author: Author::Customer, text, .. } = &opened.data else {
            return None;
        };
        // A message of attachments only has no text to answer: it waits for a human.
        text.text().filter(|t| !text.is_erased() && !t.trim().is_empty()).map(str::to_owned)
    }

    /// Answers messages of distinct conversations together (see [`Worker::answer_all`]).
    /// The wave is read (loaded, embedded) while the answers before it are
    /// still being decided and appended; it is decided once they are in
    /// (`answering`), so each message is decided in the context the one
    /// before it left.
    async fn answer_wave(&self, wave: Vec<Asked<'_>>, answering: &mut Answers) {
        // Skip early when a human already has it (the domain refuses anyway).
        let started = Instant::now();
        let loaded =
            futures::future::join_all(wave.iter().map(|a| retry_transient(|| self.commands.load::<Conversation>(&a.recorded.stream))))
                .await;
        let started = stage("load", started);
        let mut live = Vec::with_capacity(wave.len());
        for (asked, conversation) in wave.into_iter().zip(loaded) {
            match conversation {
                Ok(c) if c.human_involved() || c.status() == Some(jamuna_domain::conversation::Status::Resolved) => {}
                Ok(c) => live.push((asked, c.started().map(|s| s.customer.clone()))),
                Err(e) => tracing::warn!(error = %e, "ai-worker cannot load a conversation"),
            }
        }
        if live.is_empty() {
            return;
        }
        let messages = live
            .iter()
            .map(|(a, _)| {
                let stream = &a.recorded.stream;
                (stream.tenant().clone(), jamuna_domain::ConversationId::parse(stream.id()).ok(), a.text.clone())
            })
            .collect();
        // The wave's texts embedded together (with each follow-up after the question
        // before it), and each tenant's intent model over all of its messages at once
        // (the "embed" stage counts both).
        let reads = match self.answerer.read_in_context(messages).await {
            Ok(q) if q.len() == live.len() => q,
            Ok(_) | Err(_) => {
                tracing::error!(messages = live.len(), "ai-worker cannot embed messages");
                return;
            }
        };
        stage("embed", started);
        answering.settle().await;
        // Each message is decided and answered in a task of its own, so the
        // wave's decisions (vector search, session context: CPU) use every core
        // of the runtime instead of taking turns on this one task.
        let batch = live.len();
        let tasks: Vec<_> = live
            .into_iter()
            .zip(reads)
            .map(|((asked, customer), read)| {
                let recorded = asked.recorded.clone();
                // Each message continues its own trace, as `handle_traced` does.
                let span = tracing::info_span!("ai_worker.handle", otel.kind = "consumer", trace_id = %recorded.meta.trace_id_hex(), parent_id = %recorded.meta.span_id_hex(), event_type = %recorded.event_type, position = recorded.position, batch);
                let (commands, answerer, text) = (self.commands.clone(), self.answerer.clone(), asked.text);
                tokio::spawn(tracing::Instrument::instrument(
                    async move {
                        decide_and_respond(&commands, &answerer, &recorded, &text, customer.as_ref(), &read).await;
                        Instant::now()
                    },
                    span,
                ))
            })
            .collect();
        *answering = Answers { tasks, started: Some(Instant::now()) };
    }
}

/// The answers of the last wave started: tasks deciding and appending, not
/// awaited yet. The worker reads and embeds the next batch while they run,
/// so the encoder's forward pass and the log's commit overlap instead of
/// taking turns; a wave is decided only once the answers before it are in
/// ([`Answers::settle`]), and so is anything that must follow them (an event
/// that changes what the bot knows, a checkpoint, a rebalance, a stop).
#[derive(Default)]
struct Answers {
    /// Each task answers when it finished.
    tasks: Vec<tokio::task::JoinHandle<Instant>>,
    /// When the tasks were started.
    started: Option<Instant>,
}

impl Answers {
    /// Waits until every answer started is appended (or has failed, logged).
    /// The `decide_append` stage runs from the tasks' start to the last one's
    /// end, not to this wait (which comes after the next batch's embedding).
    async fn settle(&mut self) {
        let tasks = std::mem::take(&mut self.tasks);
        let mut last = None;
        for done in futures::future::join_all(tasks).await {
            match done {
                Ok(at) => last = last.max(Some(at)),
                Err(e) => tracing::error!(error = %e, "ai-worker's answering task failed"),
            }
        }
        if let (Some(started), Some(last)) = (self.started.take(), last) {
            metrics::histogram!("jamuna_ai_worker_stage_seconds", "stage" => "decide_append")
                .record(last.saturating_duration_since(started).as_secs_f64());
        }
    }
}

/// Decides about one message (read already: embedded, intent predicted) and appends the answer or the handoff.
async fn decide_and_respond(
    commands: &CommandHandler,
    answerer: &Answerer,
    recorded: &RecordedEvent,
    text: &str,
    customer: Option<&jamuna_domain::UserId>,
    read: &crate::answer::Read,
) {
    let started = Instant::now();
    let stream = &recorded.stream;
    let tenant: &TenantId = stream.tenant();
    // Read in the conversation's context (the session id is the conversation id).
    let conversation = jamuna_domain::ConversationId::parse(stream.id()).ok();
    let decided = match (&conversation, customer) {
        (Some(id), Some(customer)) => answerer.decide_in_session_embedded(tenant, id, customer, text, Some(read)).await,
        _ => answerer.decide_embedded(tenant, text, Some(read)).await,
    };
    let decision = match decided {
        Ok(d) => {
            // Messages this worker decided about (replicas never decide the same one).
            metrics::counter!("jamuna_ai_worker_decisions_total").increment(1);
            d
        }
        Err(e) => {
            tracing::error!(error = %e, "ai-worker cannot embed a message");
            return;
        }
    };
    let started = stage("decide", started);
    let command = match decision {
        Decision::Answer { text, intent, confidence, sources, why } => {
            let Ok(text) = MessageText::parse(&text) else {
                return;
            };
            ConversationCommand::AnswerMessage { in_reply_to: recorded.version, text, intent, confidence, sources, why: Some(why) }
        }
        Decision::Handoff { reason, why, .. } => {
            metrics::counter!("jamuna_handoffs_total", "reason" => format!("{reason:?}")).increment(1);
            ConversationCommand::RequestHandoff { reason, why: Some(why) }
        }
    };
    let ctx = CommandContext {
        tenant: tenant.clone(),
        now: chrono::Utc::now(),
        correlation_id: recorded.meta.correlation_id,
        causation_id: Some(recorded.meta.event_id),
    };
    // A retry after a write whose acknowledgement was lost decides again on
    // the stored state: the domain answers a message once and hands off
    // once, so it stores nothing twice.
    let appended = retry_transient(|| commands.execute::<Conversation>(stream, &command, &ctx)).await;
    stage("append", started);
    match appended {
        Ok(_) => {
            let latency = (chrono::Utc::now() - recorded.meta.occurred_at).to_std().unwrap_or_default();
            metrics::histogram!("jamuna_bot_answer_seconds").record(latency.as_secs_f64());
        }
        Err(CommandError::Rejected(ConversationError::HandedToHuman | ConversationError::AlreadyResolved)) => {}
        Err(e) => {
            tracing::error!(error = %e, conversation = %stream, "ai-worker cannot answer")
        }
    }
}

/// Whether an event can change what the bot answers (the knowledge, a
/// tenant's settings, an erased user: what [`Worker::handle`] acts on), so
/// that the messages before it and after it must not be answered as one
/// batch. Other events go by without splitting a batch.
fn splits_batch(recorded: &RecordedEvent) -> bool {
    match recorded.stream.kind() {
        AggregateKind::KnowledgeBase | AggregateKind::Tenant => true,
        AggregateKind::User => recorded.event_type == "UserErased",
        AggregateKind::Conversation
        | AggregateKind::EmailClaim
        | AggregateKind::CannedReplies
        | AggregateKind::Team
        | AggregateKind::Webhooks
        | AggregateKind::WebhookDeliveries => false,
    }
}

/// Records the seconds since `started` in `jamuna_ai_worker_stage_seconds{stage}`
/// (where a message's time goes in the worker); answers now, the next stage's start.
fn stage(name: &'static str, started: Instant) -> Instant {
    let now = Instant::now();
    metrics::histogram!("jamuna_ai_worker_stage_seconds", "stage" => name).record((now - started).as_secs_f64());
    now
}

/// A customer message to answer and its text.
struct Asked<'a> {
    recorded: &'a RecordedEvent,
    text: String,
}

/// Splits items into waves: wave `n` holds the `n`-th item of each key (a
/// conversation), in their order. Every key appears at most once per wave,
/// and a key's items are in successive waves in their order, so answering
/// wave after wave answers each conversation in order.
fn waves<T, K: Eq + std::hash::Hash>(items: Vec<T>, key: impl Fn(&T) -> &K) -> Vec<Vec<T>> {
    let mut waves: Vec<Vec<T>> = Vec::new();
    let mut seen = std::collections::HashMap::new();
    let mut at = Vec::with_capacity(items.len());
    for item in &items {
        let n = seen.entry(key(item)).or_insert(0usize);
        at.push(*n);
        *n += 1;
    }
    drop(seen);
    for (item, n) in items.into_iter().zip(at) {
        if waves.len() <= n {
            waves.resize_with(n + 1, Vec::new);
        }
        waves[n].push(item);
    }
    waves
}

/// The most events the worker takes from the log at once: the customer
/// messages among them are answered as one batch ([`Worker::answer_all`]).
const BATCH: usize = 64;

/// How many events a catch-up reads at a time.
const CATCH_UP_PAGE: usize = 512;

/// Logs and counts a stored event the worker goes on without (see the module's docs).
fn skip_undecodable(position: u64, reason: &str) {
    tracing::error!(position, error = %reason, "ai-worker skips a stored event it cannot decode");
    metrics::counter!("jamuna_ai_worker_skipped_total", "reason" => "undecodable").increment(1);
}

/// How long the worker waits before it tries again: 1 s after a failure (to
/// subscribe, to read a checkpoint or the log), 200 ms after a subscription
/// that was running broke.
const RETRY: RetryPolicy =
    RetryPolicy { initial: Duration::from_secs(1), max: Duration::from_secs(1), after_break: Some(Duration::from_millis(200)) };

/// The worker following the log, as a [`LogConsumer`]: where it stands and
/// the partitions it holds.
struct Answering<'a> {
    worker: &'a Worker,
    log: &'a Arc<dyn EventLog>,
    /// The partitions the [`WorkShare`] gives this worker.
    partitions: tokio::sync::watch::Receiver<BTreeSet<String>>,
    held: BTreeMap<u32, Held>,
    /// The last event handled.
    position: u64,
    last_store: Instant,
    stop: tokio::sync::watch::Receiver<bool>,
    /// Trains the models asked for (it reads every event after this worker).
    retrain: Arc<crate::retrain::Retrainer>,
    /// The last batch's answers, while the next batch is read.
    answers: Answers,
}

impl Answering<'_> {
    /// Takes the partitions now given into account (see [`Worker::rebalance`]).
    async fn rebalance(&mut self) -> bool {
        self.answers.settle().await;
        self.worker.rebalance(self.log, &mut self.partitions, &mut self.held, self.position, &mut self.stop).await
    }
}

#[async_trait::async_trait]
impl LogConsumer for Answering<'_> {
    /// Asked to stop during a rebalance.
    type Halt = ();

    fn position(&self) -> u64 {
        self.position
    }

    /// Indexes knowledge-base events and answers the messages of the
    /// partitions held; stores the checkpoints every half second.
    ///
    /// The customer messages between two events that change what the bot
    /// knows ([`splits_batch`]: an article, a model, a tenant's settings, an
    /// erasure) are answered as one batch ([`Worker::answer_all`]); such an
    /// event is handled after the messages before it and before those after
    /// it, so a message is answered from the knowledge as it stood when it
    /// was sent. The other conversation events (the bot's own answers, a
    /// conversation started, a human joining) do not split a batch: the
    /// worker reads none of them here (it loads each conversation as it
    /// answers), and under load they come between nearly every two messages.
    async fn handle(&mut self, batch: &[RecordedEvent]) -> Next<()> {
        metrics::histogram!("jamuna_ai_worker_log_batch_events").record(batch.len() as f64);
        let mut messages: Vec<&RecordedEvent> = Vec::new();
        for recorded in batch {
            let answer = recorded.stream.kind() == AggregateKind::Conversation
                && self.held.get(&partition_of(recorded.stream.id())).is_some_and(|h| recorded.position > h.from);
            if answer && recorded.event_type == "MessagePosted" {
                messages.push(recorded);
                continue;
            }
            if !splits_batch(recorded) {
                continue;
            }
            if !messages.is_empty() {
                self.worker.start_answers(&std::mem::take(&mut messages), &mut self.answers).await;
            }
            self.answers.settle().await;
            self.worker.handle_traced(recorded, answer).await;
            self.retrain.observe(recorded);
        }
        if !messages.is_empty() {
            self.worker.start_answers(&messages, &mut self.answers).await;
        }
        if let Some(last) = batch.last() {
            self.position = last.position;
        }
        if self.last_store.elapsed() > Duration::from_millis(500) {
            // A checkpoint says every message up to it is answered.
            self.answers.settle().await;
            self.worker.store_checkpoints(&mut self.held, self.position).await;
            self.last_store = Instant::now();
        }
        Next::Continue
    }

    /// The partitions given changed (never once the share is gone).
    async fn interrupted(&mut self) {
        if self.partitions.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    async fn on_interrupt(&mut self) -> Next<()> {
        if self.rebalance().await { Next::Continue } else { Next::Halt(()) }
    }

    /// Goes on after it, logged and counted: retrying would stop every answer.
    async fn undecodable(&mut self, position: u64, error: &LogError) -> Next<()> {
        let reason = match error {
            LogError::Corrupt { reason, .. } => reason.as_str(),
            _ => "",
        };
        skip_undecodable(position, reason);
        self.position = position;
        Next::Continue
    }

    fn retrying(&mut self, failure: &Failure) {
        match failure {
            Failure::Subscribe(e) => tracing::warn!(error = %e, "ai-worker cannot subscribe; retrying"),
            Failure::Broken(e) => tracing::warn!(error = %e, "ai-worker subscription failed; resubscribing"),
            Failure::Ended | Failure::Handle(_) => {}
        }
    }
}

/// How long the worker keeps retrying a command while the log is unavailable
/// (e.g. NATS restarting) before it gives up on that message.
const TRANSIENT_RETRY_FOR: Duration = Duration::from_secs(60);

/// Runs `op` again, with back-off, while it fails because the log is
/// unavailable or other writers keep winning; other errors return at once.
async fn retry_transient<T, E, F, Fut>(mut op: F) -> Result<T, CommandError<E>>
where
    E: std::error::Error + 'static,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, CommandError<E>>>,
{
    let deadline = Instant::now() + TRANSIENT_RETRY_FOR;
    let mut pause = Duration::from_millis(100);
    loop {
        match op().await {
            Err(CommandError::Log(jamuna_commands::LogError::Unavailable(e))) if Instant::now() < deadline => {
                tracing::warn!(error = %e, "the event log is unavailable; the ai-worker retries");
            }
            Err(CommandError::Conflict(s)) if Instant::now() < deadline => {
                tracing::warn!(stream = %s, "the conversation kept changing; the ai-worker retries");
            }
            other => return other,
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

#[cfg(test)]
mod retry_tests {
    use super::*;
    use jamuna_commands::LogError;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[derive(Debug, thiserror::Error)]
    #[error("refused")]
    struct Refused;

    #[tokio::test]
    async fn an_unavailable_log_is_retried_until_it_answers() {
        let calls = AtomicU32::new(0);
        let result: Result<u32, CommandError<Refused>> = retry_transient(|| async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0 | 1 => Err(CommandError::Log(LogError::Unavailable("restarting".into()))),
                n => Ok(n),
            }
        })
        .await;
        assert_eq!(result.ok(), Some(2));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_refusal_is_not_retried() {
        let calls = AtomicU32::new(0);
        let result: Result<(), CommandError<Refused>> = retry_transient(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(CommandError::Rejected(Refused))
        })
        .await;
        assert!(matches!(result, Err(CommandError::Rejected(Refused))));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}

#[cfg(test)]
mod wave_tests {
    use super::waves;

    #[test]
    fn a_conversations_messages_go_to_successive_waves_in_their_order() {
        // (conversation, message) in log order.
        let batch = vec![("a", 1), ("b", 1), ("a", 2), ("c", 1), ("a", 3), ("b", 2)];
        let w = waves(batch, |m| &m.0);
        assert_eq!(w, vec![vec![("a", 1), ("b", 1), ("c", 1)], vec![("a", 2), ("b", 2)], vec![("a", 3)]]);
    }

    #[test]
    fn messages_of_distinct_conversations_make_one_wave() {
        let batch: Vec<(u32, u32)> = (0..64).map(|c| (c, 1)).collect();
        let w = waves(batch.clone(), |m| &m.0);
        assert_eq!(w, vec![batch]);
    }

    #[test]
    fn no_messages_no_waves() {
        assert!(waves(Vec::<(u8, u8)>::new(), |m| &m.0).is_empty());
    }
}

#[cfg(test)]
mod split_tests {
    use super::splits_batch;
    use jamuna_commands::RecordedEvent;
    use jamuna_domain::envelope::Envelope;

    fn event(stream: &str, event_type: &str) -> RecordedEvent {
        Envelope {
            position: 1,
            stream: jamuna_domain::StreamId::parse(stream).unwrap(),
            version: 1,
            meta: jamuna_domain::EventMeta {
                event_id: Default::default(),
                tenant: jamuna_domain::TenantId::parse("acme").unwrap(),
                occurred_at: chrono::Utc::now(),
                causation_id: None,
                correlation_id: Default::default(),
                subject: None,
            },
            event_type: event_type.into(),
            schema: 1,
            data: serde_json::value::to_raw_value(&serde_json::json!({})).unwrap(),
        }
    }

    #[test]
    fn the_bots_answers_and_other_conversation_events_do_not_split_a_batch() {
        for t in ["BotAnswered", "HandoffRequested", "ConversationStarted", "AgentJoined", "MessagePosted"] {
            assert!(!splits_batch(&event("acme.conversation.c1", t)), "{t}");
        }
        assert!(!splits_batch(&event("acme.user.ada", "UserCreated")));
    }

    #[test]
    fn what_changes_the_bots_knowledge_splits_a_batch() {
        assert!(splits_batch(&event("acme.kb.kb", "ArticleAdded")));
        assert!(splits_batch(&event("acme.kb.kb", "IntentModelTrained")));
        assert!(splits_batch(&event("acme.tenant.acme", "TenantSettingsChanged")));
        assert!(splits_batch(&event("acme.user.ada", "UserErased")));
    }
}
