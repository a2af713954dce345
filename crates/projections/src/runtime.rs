//! The projection runtime: follow the log, apply in batches, checkpoint,
//! report, replay.
//!
//! A [`Projection`] folds events into a read model and stores the position
//! of the last event it applied (its *checkpoint*) in the same write as the
//! change, so that after a crash it continues exactly where its read model
//! stands, and an event delivered twice changes nothing.
//!
//! The [`Projector`] runs one task per projection. Each task reads its
//! checkpoint, subscribes to the log after it ([`EventLog::subscribe_all`]),
//! and applies whatever has arrived in one batch (up to
//! [`ProjectorConfig::batch_size`] events), which makes catching up fast and
//! following the live log cheap. Then:
//!
//! * a **transient** failure (the log or the store unavailable, a write
//!   conflict) is logged, and the task backs off and resubscribes from its
//!   checkpoint;
//! * a **failing event** (a payload that does not decode, a stored event
//!   whose envelope does not, a bug) stops that
//!   projection — after applying everything before the event — with an
//!   `error!` line and a [`RunState::Failed`] that [`Projector::status`]
//!   reports. It is never skipped. The other projections keep running.
//!   A projection that **panics** is a failing event too: a panic in
//!   [`Projection::apply`] is caught and reported as the event's failure
//!   (with the panic's message), and a panic anywhere else in the task as a
//!   failure at its checkpoint, so a bug never leaves a task silently gone
//!   while its status still says `running`.
//!
//! Each task publishes its [`Progress`] on a `watch` channel, which backs both
//! the status query and [`ProjectionHandle::wait_for`]: the gateway, after a
//! command appended at position *p*, waits until the read model has reached
//! *p* before it answers a query (read-your-writes).
//!
//! Replicas of the projector share the projections between them: given
//! [`Projector::share`] (a [`crate::work_share::WorkShare`]'s `held` set), a
//! task runs its projection only while this process holds it, and stands by
//! ([`RunState::Standby`]) otherwise; when it takes the projection over, it
//! starts from the checkpoint the last holder stored.
//!
//! How a task follows the log — subscribing, batching, backing off,
//! resubscribing, stopping — is [`follow::follow_log`], the loop the AI
//! worker follows the log with too; this module says what a projection does
//! with it.
//!
//! [`replay`] rebuilds one projection from scratch: it drops the read model
//! and applies the whole log in large batches, reporting progress.

pub mod follow;

use crate::error::ProjectionError;
use async_trait::async_trait;
use follow::{Backoff, Failure, Followed, LogConsumer, Next, RetryPolicy, follow_log};
use futures::FutureExt;
use jamuna_commands::{EventLog, LogError, RecordedEvent};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// A read model fed by the log.
///
/// ```no_run
/// # use jamuna_projections::{Projection, ProjectionError};
/// # use jamuna_commands::RecordedEvent;
/// struct Count(std::sync::atomic::AtomicU64);
/// #[async_trait::async_trait]
/// impl Projection for Count {
///     fn name(&self) -> &str { "count" }
///     async fn checkpoint(&self) -> Result<u64, ProjectionError> { Ok(self.0.load(std::sync::atomic::Ordering::SeqCst)) }
///     async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
///         // One write: the change and the checkpoint together.
///         if let Some(last) = events.last() { self.0.fetch_max(last.position, std::sync::atomic::Ordering::SeqCst); }
///         Ok(())
///     }
///     async fn reset(&self) -> Result<(), ProjectionError> { self.0.store(0, std::sync::atomic::Ordering::SeqCst); Ok(()) }
/// }
/// ```
#[async_trait]
pub trait Projection: Send + Sync + 'static {
    /// A stable name: the key of its checkpoint, and how status reports it.
    fn name(&self) -> &str;
    /// The position of the last event applied (0: nothing yet).
    async fn checkpoint(&self) -> Result<u64, ProjectionError>;
    /// Applies `events` (in log order, possibly including events already
    /// applied, which change nothing) and stores the last position as the
    /// checkpoint in the same write.
    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError>;
    /// Drops the read model and its checkpoint.
    async fn reset(&self) -> Result<(), ProjectionError>;
    /// Drops the read model for a [`replay`], which may load it in bulk
    /// (e.g. build secondary indexes once at the end rather than row by
    /// row); [`replay`] calls [`Projection::end_rebuild`] when it has
    /// reached the head. By default the same as [`Projection::reset`].
    async fn begin_rebuild(&self) -> Result<(), ProjectionError> {
        self.reset().await
    }
    /// The replay is done: finish what [`Projection::begin_rebuild`]
    /// deferred. A model must also finish it by itself if the process died
    /// before this was called (e.g. when it is next opened).
    async fn end_rebuild(&self) -> Result<(), ProjectionError> {
        Ok(())
    }
}

/// How a projection task behaves.
#[derive(Debug, Clone)]
pub struct ProjectorConfig {
    /// The most events applied in one write.
    pub batch_size: usize,
    /// The first back-off after a transient failure; it doubles up to `retry_max`.
    pub retry_initial: Duration,
    pub retry_max: Duration,
}

impl ProjectorConfig {
    /// The back-off between subscriptions: every failure counts.
    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy { initial: self.retry_initial, max: self.retry_max, after_break: None }
    }
}

impl Default for ProjectorConfig {
    fn default() -> Self {
        Self { batch_size: 1_000, retry_initial: Duration::from_millis(100), retry_max: Duration::from_secs(5) }
    }
}

/// What a projection task is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunState {
    /// Reading its checkpoint.
    Starting,
    /// Another replica runs it (see [`Projector::share`]).
    Standby,
    /// Following the log.
    Running,
    /// A transient failure; it will try again from its checkpoint.
    Retrying { error: String },
    /// Stopped at the event at `position`, which it could not apply.
    Failed { position: u64, error: String },
    /// Shut down.
    Stopped,
}

/// A projection's position and state, as its task publishes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// The checkpoint: every event up to here is in the read model.
    pub position: u64,
    pub state: RunState,
}

/// How a projection stands, for the status page.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum StatusState {
    Starting,
    Standby,
    CatchingUp,
    CaughtUp,
    Retrying { error: String },
    Failed { at_position: u64, error: String },
    Stopped,
}

/// One projection's status: position, lag behind the log's head, state.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProjectionStatus {
    pub name: String,
    pub position: u64,
    pub head: u64,
    /// Events in the log not yet in the read model.
    pub lag: u64,
    #[serde(flatten)]
    pub state: StatusState,
}

impl ProjectionStatus {
    fn new(name: &str, progress: &Progress, head: u64) -> Self {
        let lag = head.saturating_sub(progress.position);
        let state = match &progress.state {
            RunState::Starting => StatusState::Starting,
            RunState::Standby => StatusState::Standby,
            RunState::Running if lag == 0 => StatusState::CaughtUp,
            RunState::Running => StatusState::CatchingUp,
            RunState::Retrying { error } => StatusState::Retrying { error: error.clone() },
            RunState::Failed { position, error } => StatusState::Failed { at_position: *position, error: error.clone() },
            RunState::Stopped => StatusState::Stopped,
        };
        Self { name: name.to_owned(), position: progress.position, head, lag, state }
    }
}

/// Why [`ProjectionHandle::wait_for`] returned without the position reached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WaitError {
    #[error("projection {name} reached {reached}, not {position}, within the time allowed")]
    Timeout { name: String, position: u64, reached: u64 },
    #[error("projection {name} has failed at position {at_position}: {error}")]
    Failed { name: String, at_position: u64, error: String },
    #[error("projection {name} has stopped")]
    Stopped { name: String },
}

/// A view of one running projection: its progress, and waiting for a position.
#[derive(Clone)]
pub struct ProjectionHandle {
    name: Arc<str>,
    progress: watch::Receiver<Progress>,
}

impl ProjectionHandle {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn progress(&self) -> Progress {
        self.progress.borrow().clone()
    }

    /// Waits until the read model holds every event up to `position`
    /// (read-your-writes after a command appended there).
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> Result<(), WaitError> {
        let mut rx = self.progress.clone();
        let name = self.name.to_string();
        let reached = |p: &Progress| p.position >= position || matches!(p.state, RunState::Failed { .. } | RunState::Stopped);
        let waited = tokio::time::timeout(timeout, rx.wait_for(reached)).await;
        let p = self.progress();
        if p.position >= position {
            return Ok(());
        }
        match (waited, p.state) {
            (_, RunState::Failed { position: at_position, error }) => Err(WaitError::Failed { name, at_position, error }),
            (Ok(Err(_)), _) | (_, RunState::Stopped) => Err(WaitError::Stopped { name }),
            _ => Err(WaitError::Timeout { name, position, reached: p.position }),
        }
    }
}

struct Entry {
    projection: Arc<dyn Projection>,
    progress: watch::Sender<Progress>,
}

/// Runs projections: one task each, following the log.
///
/// ```no_run
/// # async fn demo(log: std::sync::Arc<dyn jamuna_commands::EventLog>, p: std::sync::Arc<dyn jamuna_projections::Projection>) {
/// use jamuna_projections::Projector;
/// let mut projector = Projector::new(log);
/// let conversations = projector.add(p);
/// projector.start();
/// conversations.wait_for(42, std::time::Duration::from_secs(2)).await.ok();
/// let status = projector.status().await;
/// projector.shutdown().await;
/// # }
/// ```
pub struct Projector {
    log: Arc<dyn EventLog>,
    config: ProjectorConfig,
    entries: Vec<Arc<Entry>>,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// The projections this process may run now; all when `None`.
    held: Option<watch::Receiver<BTreeSet<String>>>,
}

impl Projector {
    pub fn new(log: Arc<dyn EventLog>) -> Self {
        Self::with_config(log, ProjectorConfig::default())
    }

    pub fn with_config(log: Arc<dyn EventLog>, config: ProjectorConfig) -> Self {
        Self { log, config, entries: Vec::new(), stop: watch::channel(false).0, tasks: Mutex::new(Vec::new()), held: None }
    }

    /// Adds a projection (before [`Projector::start`]).
    pub fn add(&mut self, projection: Arc<dyn Projection>) -> ProjectionHandle {
        let (progress, rx) = watch::channel(Progress { position: 0, state: RunState::Starting });
        let name: Arc<str> = projection.name().into();
        self.entries.push(Arc::new(Entry { projection, progress }));
        ProjectionHandle { name, progress: rx }
    }

    /// Runs each projection only while its name is in `held` (before
    /// [`Projector::start`]): replicas sharing the projections.
    pub fn share(&mut self, held: watch::Receiver<BTreeSet<String>>) {
        self.held = Some(held);
    }

    /// Starts a task per projection (a second call does nothing).
    pub fn start(&self) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        if !tasks.is_empty() {
            return;
        }
        for entry in &self.entries {
            let task = Task {
                log: self.log.clone(),
                entry: entry.clone(),
                config: self.config.clone(),
                stop: self.stop.subscribe(),
                held: self.held.clone(),
            };
            tasks.push(tokio::spawn(task.run_caught()));
        }
        tasks.push(tokio::spawn(publish_lag(self.log.clone(), self.entries.clone(), self.stop.subscribe())));
    }

    /// The handle of the projection called `name`.
    pub fn handle(&self, name: &str) -> Option<ProjectionHandle> {
        self.entries
            .iter()
            .find(|e| e.projection.name() == name)
            .map(|e| ProjectionHandle { name: e.projection.name().into(), progress: e.progress.subscribe() })
    }

    pub fn handles(&self) -> Vec<ProjectionHandle> {
        self.entries.iter().map(|e| ProjectionHandle { name: e.projection.name().into(), progress: e.progress.subscribe() }).collect()
    }

    /// Every projection's position, lag behind the head and state.
    pub async fn status(&self) -> Result<Vec<ProjectionStatus>, LogError> {
        let head = self.log.head().await?;
        Ok(self.entries.iter().map(|e| ProjectionStatus::new(e.projection.name(), &e.progress.borrow(), head)).collect())
    }

    /// Waits until every projection has reached `position`.
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> Result<(), WaitError> {
        let deadline = Instant::now() + timeout;
        for h in self.handles() {
            h.wait_for(position, deadline.saturating_duration_since(Instant::now())).await?;
        }
        Ok(())
    }

    /// Stops every task after the batch it is applying, and waits for them.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let tasks: Vec<_> = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for t in tasks {
            let _ = t.await;
        }
    }
}

/// How often the `jamuna_consumer_lag_events` gauges are refreshed.
const LAG_EVERY: Duration = Duration::from_secs(5);

/// Publishes each projection's lag behind the log's head (events) as the
/// gauge `jamuna_consumer_lag_events{consumer}`, until the projector stops.
async fn publish_lag(log: Arc<dyn EventLog>, entries: Vec<Arc<Entry>>, mut stop: watch::Receiver<bool>) {
    loop {
        if let Ok(head) = log.head().await {
            for e in &entries {
                let progress = e.progress.borrow().clone();
                // The replica that runs a projection reports its lag; the others 0.
                let lag = if progress.state == RunState::Standby { 0 } else { head.saturating_sub(progress.position) };
                metrics::gauge!("jamuna_consumer_lag_events", "consumer" => e.projection.name().to_owned()).set(lag as f64);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(LAG_EVERY) => {}
            _ = stop.changed() => return,
        }
    }
}

impl Drop for Projector {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

struct Task {
    log: Arc<dyn EventLog>,
    entry: Arc<Entry>,
    config: ProjectorConfig,
    stop: watch::Receiver<bool>,
    held: Option<watch::Receiver<BTreeSet<String>>>,
}

impl Task {
    fn name(&self) -> &str {
        self.entry.projection.name()
    }

    fn publish(&self, position: u64, state: RunState) {
        self.entry.progress.send_replace(Progress { position, state });
    }

    /// Whether this process may run the projection now.
    fn may_run(&self) -> bool {
        self.held.as_ref().is_none_or(|h| h.borrow().contains(self.name()))
    }

    /// Waits until this process may run the projection; false if asked to stop meanwhile.
    async fn wait_turn(&mut self, position: u64) -> bool {
        let mut announced = false;
        loop {
            if *self.stop.borrow() {
                return false;
            }
            if self.may_run() {
                return true;
            }
            if !announced {
                tracing::info!(projection = self.name(), "another replica runs this projection; standing by");
                self.publish(position, RunState::Standby);
                announced = true;
            }
            let Some(held) = self.held.as_mut() else { return true };
            tokio::select! {
                changed = held.changed() => {
                    if changed.is_err() {
                        // Nothing will change any more: wait for the stop.
                        let _ = self.stop.changed().await;
                        return false;
                    }
                }
                _ = self.stop.changed() => return false,
            }
        }
    }

    /// [`Task::run`], and a panic anywhere in it reported as a failure at
    /// the checkpoint reached (a panic in `apply` is caught closer, in
    /// [`Turn::handle`], which names the event).
    async fn run_caught(self) {
        let entry = self.entry.clone();
        if let Err(panic) = std::panic::AssertUnwindSafe(self.run()).catch_unwind().await {
            let position = entry.progress.borrow().position;
            let error = format!("the projection panicked: {}", panic_message(panic.as_ref()));
            fail(&entry, position, position, error);
        }
    }

    async fn run(mut self) {
        let mut position = 0;
        loop {
            if !self.wait_turn(position).await {
                return self.publish(position, RunState::Stopped);
            }
            match self.run_turn().await {
                Some(p) => position = p,
                None => return,
            }
        }
    }

    /// Runs the projection from its checkpoint while this process holds it:
    /// the position reached when it was handed to another replica, `None`
    /// when the task is over (stopped or failed).
    async fn run_turn(&mut self) -> Option<u64> {
        let mut backoff = Backoff::new(self.config.retry_policy());
        let position = loop {
            match self.entry.projection.checkpoint().await {
                Ok(p) => break p,
                Err(e) if e.is_transient() => {
                    tracing::warn!(projection = self.name(), error = %e, "reading the checkpoint failed; retrying");
                    self.publish(0, RunState::Retrying { error: e.to_string() });
                    if backoff.pause(&mut self.stop).await {
                        self.publish(0, RunState::Stopped);
                        return None;
                    }
                }
                Err(e) => {
                    tracing::error!(projection = self.name(), error = %e, "projection stopped: its checkpoint cannot be read");
                    metrics::counter!("jamuna_projection_failures_total", "projection" => self.name().to_owned()).increment(1);
                    self.publish(0, RunState::Failed { position: 0, error: e.to_string() });
                    return None;
                }
            }
        };
        self.publish(position, RunState::Running);
        let mut turn = Turn { entry: self.entry.clone(), held: &mut self.held, position };
        let followed = follow_log(self.log.as_ref(), &mut self.stop, self.config.batch_size, &mut backoff, &mut turn).await;
        let position = turn.position;
        match followed {
            Followed::Stopped => {
                self.publish(position, RunState::Stopped);
                None
            }
            Followed::Halted(Halt::Released) => Some(position),
            Followed::Halted(Halt::Failed { position: at, error }) => {
                fail(&self.entry, position, at, error);
                None
            }
        }
    }
}

/// Stops a projection at the event at `at`, its checkpoint at `position`:
/// the `error!` line, the failure counter and the [`RunState::Failed`].
fn fail(entry: &Entry, position: u64, at: u64, error: String) {
    let name = entry.projection.name();
    tracing::error!(projection = name, position = at, error = %error, "projection stopped at an event it cannot apply");
    metrics::counter!("jamuna_projection_failures_total", "projection" => name.to_owned()).increment(1);
    entry.progress.send_replace(Progress { position, state: RunState::Failed { position: at, error } });
}

/// The message a panic was raised with.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    match (panic.downcast_ref::<&str>(), panic.downcast_ref::<String>()) {
        (Some(s), _) => s,
        (_, Some(s)) => s,
        _ => "a panic without a message",
    }
}

/// Why applying a batch failed: worth a retry, or not.
enum Fault {
    Transient(String),
    Fatal(String),
}

/// Applies `batch`; a panic is a [`Fault::Fatal`] naming it (what the
/// panic left half written is in a transaction that was not committed).
async fn apply_caught(projection: &dyn Projection, batch: &[RecordedEvent]) -> Result<(), Fault> {
    match std::panic::AssertUnwindSafe(projection.apply(batch)).catch_unwind().await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) if e.is_transient() => Err(Fault::Transient(e.to_string())),
        Ok(Err(e)) => Err(Fault::Fatal(e.to_string())),
        Err(panic) => Err(Fault::Fatal(format!("the projection panicked: {}", panic_message(panic.as_ref())))),
    }
}

/// A projection task's turn at following the log, as a [`LogConsumer`].
struct Turn<'a> {
    entry: Arc<Entry>,
    held: &'a mut Option<watch::Receiver<BTreeSet<String>>>,
    /// The checkpoint: the last event applied.
    position: u64,
}

/// Why a turn ends before the projector stops.
enum Halt {
    /// Another replica runs the projection now.
    Released,
    /// The event at `position` cannot be applied.
    Failed { position: u64, error: String },
}

impl Turn<'_> {
    fn publish(&self, state: RunState) {
        self.entry.progress.send_replace(Progress { position: self.position, state });
    }
}

#[async_trait]
impl LogConsumer for Turn<'_> {
    type Halt = Halt;

    fn position(&self) -> u64 {
        self.position
    }

    /// Applies a batch; on a failing event, applies what precedes it and
    /// names the event.
    async fn handle(&mut self, batch: &[RecordedEvent]) -> Next<Halt> {
        let projection = self.entry.projection.clone();
        let next = match apply_caught(projection.as_ref(), batch).await {
            Ok(()) => {
                self.position = batch.last().map_or(self.position, |e| e.position);
                Next::Continue
            }
            Err(Fault::Transient(e)) => Next::Retry(e),
            Err(Fault::Fatal(error)) if batch.len() == 1 => Next::Halt(Halt::Failed { position: batch[0].position, error }),
            Err(Fault::Fatal(_)) => {
                // Find the event at fault: apply one at a time.
                for event in batch {
                    match apply_caught(projection.as_ref(), std::slice::from_ref(event)).await {
                        Ok(()) => self.position = event.position,
                        Err(Fault::Transient(e)) => return Next::Retry(e),
                        Err(Fault::Fatal(error)) => return Next::Halt(Halt::Failed { position: event.position, error }),
                    }
                }
                Next::Continue
            }
        };
        if matches!(next, Next::Continue) {
            self.publish(RunState::Running);
        }
        next
    }

    async fn interrupted(&mut self) {
        released(self.held, self.entry.projection.name()).await
    }

    async fn on_interrupt(&mut self) -> Next<Halt> {
        Next::Halt(Halt::Released)
    }

    /// A stored event that does not decode is a failing event: the
    /// projection stops there; it never skips one.
    async fn undecodable(&mut self, position: u64, error: &LogError) -> Next<Halt> {
        Next::Halt(Halt::Failed { position, error: error.to_string() })
    }

    fn subscribed(&mut self) {
        self.publish(RunState::Running);
    }

    fn retrying(&mut self, failure: &Failure) {
        tracing::warn!(projection = self.entry.projection.name(), position = self.position, error = %failure, "projection interrupted; resubscribing from its checkpoint");
        self.publish(RunState::Retrying { error: failure.to_string() });
    }
}

/// Returns once `name` is no longer in `held` (never when `held` is `None`).
async fn released(held: &mut Option<watch::Receiver<BTreeSet<String>>>, name: &str) {
    match held {
        // Closed (the share is gone) while still ours: nothing will change.
        Some(held) => {
            if held.wait_for(|h| !h.contains(name)).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

/// Where a replay stands, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayProgress {
    pub position: u64,
    /// The head of the log when the replay started: where it will stop.
    pub head: u64,
    pub events: u64,
}

/// What a replay did.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplaySummary {
    pub projection: String,
    pub events: u64,
    pub position: u64,
    pub elapsed: Duration,
}

impl ReplaySummary {
    pub fn events_per_second(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 { self.events as f64 / s } else { 0.0 }
    }
}

impl std::fmt::Display for ReplaySummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} events in {:.2} s ({:.0} events/s)",
            self.projection,
            self.events,
            self.elapsed.as_secs_f64(),
            self.events_per_second()
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error(transparent)]
    Projection(#[from] ProjectionError),
}

/// How many events a replay reads and applies at a time.
pub const REPLAY_BATCH: usize = 16_384;

/// Drops `projection`'s read model and rebuilds it from position 0 up to the
/// head of the log as it is when the replay starts, calling `progress` after
/// each batch. Reading the next batch overlaps with applying this one.
///
/// Run it while no [`Projector`] task runs the same projection (the binary's
/// `replay` does it offline).
pub async fn replay(
    log: Arc<dyn EventLog>,
    projection: &dyn Projection,
    mut progress: impl FnMut(&ReplayProgress) + Send,
) -> Result<ReplaySummary, ReplayError> {
    let started = Instant::now();
    let head = log.head().await?;
    projection.begin_rebuild().await?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Vec<RecordedEvent>, LogError>>(2);
    let reader = tokio::spawn(async move {
        let mut after = 0;
        while after < head {
            let page = log.read_all(after, REPLAY_BATCH).await;
            let (last, empty) = match &page {
                Ok(p) => (p.last().map(|e| e.position), p.is_empty()),
                Err(_) => (None, true),
            };
            let failed = page.is_err();
            if tx.send(page.map(|p| p.into_iter().filter(|e| e.position <= head).collect())).await.is_err() || failed || empty {
                return;
            }
            after = last.unwrap_or(head);
        }
    });
    let mut done = ReplayProgress { position: 0, head, events: 0 };
    progress(&done);
    while let Some(page) = rx.recv().await {
        let page = page?;
        let Some(last) = page.last() else { break };
        let last = last.position;
        projection.apply(&page).await?;
        done.position = last;
        done.events += page.len() as u64;
        progress(&done);
    }
    reader.abort();
    projection.end_rebuild().await?;
    Ok(ReplaySummary { projection: projection.name().to_owned(), events: done.events, position: done.position, elapsed: started.elapsed() })
}
