//! The projection runtime over a real SQLite log: following, batching,
//! stopping on a bad event, retrying, waiting, replaying.

use crate::Fixture;
use async_trait::async_trait;
use jamuna_commands::handler::CommandContext;
use jamuna_commands::testing::event;
use jamuna_commands::{ExpectedVersion, RecordedEvent};
use jamuna_domain::conversation::{Author, Channel, Conversation, ConversationCommand};
use jamuna_domain::{ConversationId, MessageText, StreamId};
use jamuna_projections::conversations::sqlite::SqliteConversations;
use jamuna_projections::conversations::{ConversationQuery, ConversationStore};
use jamuna_projections::testing::{conversations_snapshot, tenant, user};
use jamuna_projections::users::sqlite::SqliteUsers;
use jamuna_projections::{Projection, ProjectionError, Projector, ProjectorConfig, RunState, StatusState, StoreError, WaitError, replay};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

async fn converse(f: &Fixture, id: &str, lines: usize) -> u64 {
    let t = tenant("acme");
    let cid = ConversationId::parse(id).expect("id");
    let s = StreamId::conversation(&t, &cid);
    let ctx = CommandContext::new(t.clone(), chrono::Utc::now());
    let start = ConversationCommand::Start { tenant: t.clone(), conversation_id: cid, customer: user("u1"), channel: Channel::Web };
    let mut last = f.handler.execute::<Conversation>(&s, &start, &ctx).await.expect("start").appended.expect("appended").last_position;
    for n in 0..lines {
        let post = ConversationCommand::PostMessage {
            author: Author::Customer,
            text: Some(MessageText::parse(&format!("line {n}")).expect("text")),
            client_message_id: None,
            attachments: vec![],
        };
        last = f.handler.execute::<Conversation>(&s, &post, &ctx).await.expect("post").appended.expect("appended").last_position;
    }
    last
}

fn conversations(f: &Fixture) -> (Arc<SqliteConversations>, Arc<dyn Projection>) {
    let store = Arc::new(SqliteConversations::open(f.dir.path().join(format!("conv-{}.db", uuid::Uuid::now_v7()))).expect("open"));
    let p = jamuna_projections::conversations::projection(store.clone(), f.sealer());
    (store, p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_projection_follows_appends_and_wait_for_reads_your_writes() {
    let f = Fixture::new().await;
    converse(&f, "before", 3).await;
    let (store, p) = conversations(&f);
    let mut projector = Projector::new(f.log());
    let handle = projector.add(p);
    projector.start();
    for n in 0..5 {
        let position = converse(&f, &format!("live{n}"), 2).await;
        handle.wait_for(position, Duration::from_secs(10)).await.expect("reached");
        let d = store.conversation(&tenant("acme"), &ConversationId::parse(format!("live{n}")).expect("id")).await.expect("read");
        assert_eq!(d.expect("visible right after wait_for").messages.len(), 2);
    }
    let head = f.log().head().await.expect("head");
    let status = projector.status().await.expect("status");
    assert_eq!(status.len(), 1);
    assert_eq!(
        (status[0].name.as_str(), status[0].position, status[0].lag, &status[0].state),
        ("conversations", head, 0, &StatusState::CaughtUp)
    );
    let err = handle.wait_for(head + 1, Duration::from_millis(100)).await;
    assert!(matches!(err, Err(WaitError::Timeout { reached, .. }) if reached == head), "{err:?}");
    projector.shutdown().await;
    assert_eq!(handle.progress().state, RunState::Stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_event_stops_its_projection_loudly_and_the_others_go_on() {
    let f = Fixture::new().await;
    let good = converse(&f, "good", 2).await;
    let bad_stream = StreamId::conversation(&tenant("acme"), &ConversationId::parse("bad").expect("id"));
    let bad =
        f.log().append(&bad_stream, ExpectedVersion::Any, vec![event(1, "not a conversation event")]).await.expect("append").first_position;
    converse(&f, "after", 2).await;
    let head = f.log().head().await.expect("head");
    let (store, p) = conversations(&f);
    let users = Arc::new(SqliteUsers::open(f.dir.path().join("users.db")).expect("open"));
    let mut projector = Projector::new(f.log());
    let conv = projector.add(p);
    let other = projector.add(jamuna_projections::users::projection(users, f.sealer()));
    projector.start();
    other.wait_for(head, Duration::from_secs(10)).await.expect("the users projection is not held up");
    let err = conv.wait_for(head, Duration::from_secs(10)).await;
    assert!(matches!(&err, Err(WaitError::Failed { at_position, .. }) if *at_position == bad), "{err:?}");
    let progress = conv.progress();
    assert_eq!(progress.position, good, "everything before the bad event is applied, nothing after");
    let status = projector.status().await.expect("status");
    let s = status.iter().find(|s| s.name == "conversations").expect("listed");
    assert!(matches!(&s.state, StatusState::Failed { at_position, error } if *at_position == bad && error.contains("Test")), "{s:?}");
    assert_eq!(s.lag, head - good);
    assert!(
        store.conversation(&tenant("acme"), &ConversationId::parse("after").expect("id")).await.expect("read").is_none(),
        "nothing was skipped"
    );
    projector.shutdown().await;
}

/// Panics when asked to apply the event at `at` (a bug in a read model), or
/// when asked for its checkpoint if `at` is 0.
struct Panicky {
    inner: Arc<dyn Projection>,
    at: u64,
}

#[async_trait]
impl Projection for Panicky {
    fn name(&self) -> &str {
        self.inner.name()
    }
    async fn checkpoint(&self) -> Result<u64, ProjectionError> {
        assert!(self.at != 0, "no checkpoint for you");
        self.inner.checkpoint().await
    }
    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        if let Some(e) = events.iter().find(|e| e.position == self.at) {
            panic!("cannot fold the event at {}", e.position);
        }
        self.inner.apply(events).await
    }
    async fn reset(&self) -> Result<(), ProjectionError> {
        self.inner.reset().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projection_that_panics_on_an_event_stops_as_failed_and_the_others_go_on() {
    let f = Fixture::new().await;
    let good = converse(&f, "good", 2).await;
    let bad = converse(&f, "bad", 0).await;
    converse(&f, "after", 2).await;
    let head = f.log().head().await.expect("head");
    let (store, p) = conversations(&f);
    let users = Arc::new(SqliteUsers::open(f.dir.path().join("users.db")).expect("open"));
    let mut projector = Projector::new(f.log());
    let conv = projector.add(Arc::new(Panicky { inner: p, at: bad }));
    let other = projector.add(jamuna_projections::users::projection(users, f.sealer()));
    projector.start();
    other.wait_for(head, Duration::from_secs(10)).await.expect("the users projection is not held up");
    let err = conv.wait_for(head, Duration::from_secs(10)).await;
    assert!(matches!(&err, Err(WaitError::Failed { at_position, .. }) if *at_position == bad), "{err:?}");
    assert_eq!(conv.progress().position, good, "everything before the event is applied, nothing after");
    let status = projector.status().await.expect("status");
    let s = status.iter().find(|s| s.name == "conversations").expect("listed");
    assert!(
        matches!(&s.state, StatusState::Failed { at_position, error } if *at_position == bad && error.contains(&format!("cannot fold the event at {bad}"))),
        "{s:?}"
    );
    assert!(
        store.conversation(&tenant("acme"), &ConversationId::parse("after").expect("id")).await.expect("read").is_none(),
        "nothing was skipped"
    );
    // The process goes on: the log takes appends and the other projection follows them.
    let later = converse(&f, "later", 1).await;
    other.wait_for(later, Duration::from_secs(10)).await.expect("the users projection still follows");
    projector.shutdown().await;
    assert!(matches!(conv.progress().state, RunState::Failed { .. }), "a failed projection stays failed after shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projection_task_that_panics_outside_apply_stops_as_failed() {
    let f = Fixture::new().await;
    let head = converse(&f, "c1", 1).await;
    let (_store, p) = conversations(&f);
    let mut projector = Projector::new(f.log());
    let conv = projector.add(Arc::new(Panicky { inner: p, at: 0 }));
    projector.start();
    let err = conv.wait_for(head, Duration::from_secs(10)).await;
    assert!(matches!(&err, Err(WaitError::Failed { error, .. }) if error.contains("no checkpoint for you")), "{err:?}");
    let status = projector.status().await.expect("status");
    assert!(matches!(&status[0].state, StatusState::Failed { error, .. } if error.contains("no checkpoint for you")), "{status:?}");
    projector.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_event_that_does_not_decode_stops_a_projection_as_failed_there() {
    let f = Fixture::new().await;
    let good = converse(&f, "good", 2).await;
    let bad = jamuna_commands::log::sqlite::append_undecodable(&f.dir.path().join("events.db")).expect("a corrupt row");
    converse(&f, "after", 1).await;
    let head = f.log().head().await.expect("head");
    let (store, p) = conversations(&f);
    let mut projector = Projector::new(f.log());
    let conv = projector.add(p);
    projector.start();
    let err = conv.wait_for(head, Duration::from_secs(10)).await;
    assert!(
        matches!(&err, Err(WaitError::Failed { at_position, error, .. }) if *at_position == bad && error.contains("corrupt event")),
        "{err:?}"
    );
    assert_eq!(conv.progress().position, good, "everything before it is applied");
    assert!(
        store.conversation(&tenant("acme"), &ConversationId::parse("after").expect("id")).await.expect("read").is_none(),
        "a projection does not skip it"
    );
    projector.shutdown().await;
}

/// Fails with a transient error the first few times it is asked to apply.
struct Flaky {
    inner: Arc<dyn Projection>,
    failures: AtomicUsize,
}

#[async_trait]
impl Projection for Flaky {
    fn name(&self) -> &str {
        self.inner.name()
    }
    async fn checkpoint(&self) -> Result<u64, ProjectionError> {
        self.inner.checkpoint().await
    }
    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        if self.failures.fetch_sub(1, Ordering::SeqCst) > 0 {
            return Err(StoreError::unavailable(std::io::Error::other("the disk is having a moment")).into());
        }
        self.inner.apply(events).await
    }
    async fn reset(&self) -> Result<(), ProjectionError> {
        self.inner.reset().await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried_from_the_checkpoint() {
    let f = Fixture::new().await;
    let head = converse(&f, "c1", 10).await;
    let (store, p) = conversations(&f);
    let flaky = Arc::new(Flaky { inner: p, failures: AtomicUsize::new(3) });
    let config = ProjectorConfig { retry_initial: Duration::from_millis(10), ..ProjectorConfig::default() };
    let mut projector = Projector::with_config(f.log(), config);
    let h = projector.add(flaky);
    projector.start();
    h.wait_for(head, Duration::from_secs(10)).await.expect("caught up after the retries");
    assert_eq!(
        store.conversation(&tenant("acme"), &ConversationId::parse("c1").expect("id")).await.expect("read").expect("c1").messages.len(),
        10
    );
    projector.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_recorded_event_delivered_twice_changes_nothing() {
    let f = Fixture::new().await;
    for n in 0..4 {
        converse(&f, &format!("c{n}"), 3).await;
    }
    let events = f.log().read_all(0, 1_000).await.expect("read");
    let (once, p1) = conversations(&f);
    let (twice, p2) = conversations(&f);
    p1.apply(&events).await.expect("once");
    for e in &events {
        p2.apply(&[e.clone(), e.clone()]).await.expect("doubled");
    }
    p2.apply(&events).await.expect("all again");
    assert_eq!(conversations_snapshot(once.as_ref(), &tenant("acme")).await, conversations_snapshot(twice.as_ref(), &tenant("acme")).await);
    assert_eq!(p2.checkpoint().await.expect("checkpoint"), events.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projection_restarts_from_its_checkpoint() {
    let f = Fixture::new().await;
    let first = converse(&f, "c1", 2).await;
    let (store, p) = conversations(&f);
    {
        let mut projector = Projector::new(f.log());
        let h = projector.add(p.clone());
        projector.start();
        h.wait_for(first, Duration::from_secs(10)).await.expect("reached");
        projector.shutdown().await;
    }
    let second = converse(&f, "c2", 2).await;
    let mut projector = Projector::new(f.log());
    let h = projector.add(p);
    projector.start();
    h.wait_for(second, Duration::from_secs(10)).await.expect("reached");
    assert_eq!(store.list(&ConversationQuery::inbox(tenant("acme"))).await.expect("list").items.len(), 2);
    projector.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_rebuilds_with_progress_and_a_summary() {
    let f = Fixture::new().await;
    for n in 0..30 {
        converse(&f, &format!("c{n}"), 4).await;
    }
    let head = f.log().head().await.expect("head");
    let (store, p) = conversations(&f);
    p.apply(&f.log().read_all(0, 10).await.expect("read")).await.expect("a partial build to be dropped");
    let mut seen = Vec::new();
    let summary = replay(f.log(), p.as_ref(), |pr| seen.push(*pr)).await.expect("replay");
    assert_eq!((summary.events, summary.position, summary.projection.as_str()), (head, head, "conversations"));
    assert!(summary.events_per_second() > 0.0);
    assert!(summary.to_string().contains("events/s"));
    assert_eq!(seen.first().map(|p| (p.position, p.head)), Some((0, head)));
    assert_eq!(seen.last().map(|p| (p.position, p.events)), Some((head, head)));
    assert_eq!(store.list(&ConversationQuery::inbox(tenant("acme")).limit(100)).await.expect("list").items.len(), 30);
}

/// Two replicas share a projection through leases: one runs it, the other
/// stands by; when the first leaves, the second takes over from the stored
/// checkpoint and the read model ends as a replay builds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_a_projection_and_one_takes_over_when_the_other_leaves() {
    use jamuna_projections::sessions::{Leases, MemorySessions};
    use jamuna_projections::work_share::{WorkShare, WorkShareConfig};
    let f = Fixture::new().await;
    converse(&f, "first", 3).await;
    let store = Arc::new(SqliteConversations::open(f.dir.path().join("shared.db")).expect("open"));
    let leases: Arc<dyn Leases> = Arc::new(MemorySessions::new());
    let config = WorkShareConfig::with_ttl(Duration::from_millis(400));
    let units = vec!["conversations".to_string()];
    let replica = |member: &str| {
        let share = WorkShare::start(leases.clone(), "projector", member.into(), units.clone(), config.clone());
        let mut projector = Projector::new(f.log());
        projector.share(share.held());
        let handle = projector.add(jamuna_projections::conversations::projection(store.clone(), f.sealer()));
        projector.start();
        (share, projector, handle)
    };
    let (share_a, projector_a, a) = replica("a");
    let (share_b, projector_b, b) = replica("b");
    let head = f.log().head().await.expect("head");
    // Whichever took the lease runs it; the other stands by.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let (runner, standby) = loop {
        match (a.progress().state, b.progress().state) {
            (RunState::Running, RunState::Standby) => break (&a, &b),
            (RunState::Standby, RunState::Running) => break (&b, &a),
            states => assert!(std::time::Instant::now() < deadline, "one runs, one stands by: {states:?}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    runner.wait_for(head, Duration::from_secs(10)).await.expect("the runner catches up");
    assert_eq!(standby.progress().state, RunState::Standby);
    let ((leaving_share, leaving_projector), (staying_projector, staying)) = if std::ptr::eq(runner, &a) {
        ((&share_a, &projector_a), (&projector_b, &b))
    } else {
        ((&share_b, &projector_b), (&projector_a, &a))
    };
    // The runner leaves (its tasks stop first, then its leases go).
    leaving_projector.shutdown().await;
    leaving_share.shutdown().await;
    let position = converse(&f, "second", 4).await;
    staying.wait_for(position, Duration::from_secs(10)).await.expect("the other replica takes over and catches up");
    let status = staying_projector.status().await.expect("status");
    assert_eq!(status[0].state, StatusState::CaughtUp);
    let built = conversations_snapshot(store.as_ref(), &tenant("acme")).await;
    let (fresh, p) = conversations(&f);
    replay(f.log(), p.as_ref(), |_| {}).await.expect("replay");
    assert_eq!(built, conversations_snapshot(fresh.as_ref(), &tenant("acme")).await, "the shared read model equals a replay");
    staying_projector.shutdown().await;
}

/// The loop every log consumer follows the log with, driven by a consumer
/// that records what it is handed and told.
mod follow {
    use crate::Fixture;
    use async_trait::async_trait;
    use jamuna_commands::testing::{event, stream};
    use jamuna_commands::{Appended, EventLog, ExpectedVersion, LogError, NewEvent, RecordedEvent, Subscription};
    use jamuna_domain::StreamId;
    use jamuna_projections::runtime::follow::{Backoff, Failure, Followed, LogConsumer, Next, RetryPolicy, follow_log};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;
    use tokio::sync::watch;

    /// A log that refuses the first `refusals` subscriptions and counts them all.
    struct Refusing {
        inner: Arc<dyn EventLog>,
        refusals: AtomicUsize,
        subscriptions: AtomicUsize,
    }

    #[async_trait]
    impl EventLog for Refusing {
        async fn append(&self, stream: &StreamId, expected: ExpectedVersion, events: Vec<NewEvent>) -> Result<Appended, LogError> {
            self.inner.append(stream, expected, events).await
        }
        async fn read_stream(&self, stream: &StreamId, after_version: u64) -> Result<Vec<RecordedEvent>, LogError> {
            self.inner.read_stream(stream, after_version).await
        }
        async fn read_all(&self, after_position: u64, limit: usize) -> Result<Vec<RecordedEvent>, LogError> {
            self.inner.read_all(after_position, limit).await
        }
        async fn head(&self) -> Result<u64, LogError> {
            self.inner.head().await
        }
        async fn subscribe_all(&self, after_position: u64) -> Result<Subscription, LogError> {
            self.subscriptions.fetch_add(1, Ordering::SeqCst);
            if self.refusals.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
                return Err(LogError::Unavailable("restarting".into()));
            }
            self.inner.subscribe_all(after_position).await
        }
    }

    fn refusing(f: &Fixture, refusals: usize) -> Arc<Refusing> {
        Arc::new(Refusing { inner: f.log(), refusals: AtomicUsize::new(refusals), subscriptions: AtomicUsize::new(0) })
    }

    async fn append(f: &Fixture, n: u64) -> u64 {
        let mut last = 0;
        for i in 0..n {
            last = f.log().append(&stream("s"), ExpectedVersion::Any, vec![event(i, "x")]).await.expect("append").first_position;
        }
        last
    }

    /// Records batches; halts at `halt_at`, retries once at `retry_at`,
    /// is interrupted whenever `interrupts` changes.
    struct Recorder {
        position: u64,
        batches: Vec<Vec<u64>>,
        retry_at: Option<u64>,
        halt_at: Option<u64>,
        interrupts: watch::Receiver<u32>,
        interrupted: u32,
        failures: Vec<String>,
        /// Whether it does without the events the log cannot decode, and those it did without.
        skips: bool,
        skipped: Vec<u64>,
        done: watch::Sender<u64>,
    }

    fn recorder() -> (Recorder, watch::Sender<u32>, watch::Receiver<u64>) {
        let (interrupt, interrupts) = watch::channel(0);
        let (done, reached) = watch::channel(0);
        let r = Recorder {
            position: 0,
            batches: Vec::new(),
            retry_at: None,
            halt_at: None,
            interrupts,
            interrupted: 0,
            failures: Vec::new(),
            skips: false,
            skipped: Vec::new(),
            done,
        };
        (r, interrupt, reached)
    }

    #[async_trait]
    impl LogConsumer for Recorder {
        type Halt = u64;
        fn position(&self) -> u64 {
            self.position
        }
        async fn handle(&mut self, batch: &[RecordedEvent]) -> Next<u64> {
            let mut handled = Vec::new();
            for e in batch {
                if self.retry_at.is_some_and(|p| p == e.position) {
                    self.retry_at = None;
                    self.batches.push(handled);
                    return Next::Retry("not now".into());
                }
                if self.halt_at.is_some_and(|p| p == e.position) {
                    self.batches.push(handled);
                    return Next::Halt(e.position);
                }
                handled.push(e.position);
                self.position = e.position;
            }
            self.batches.push(handled);
            self.done.send_replace(self.position);
            Next::Continue
        }
        async fn interrupted(&mut self) {
            if self.interrupts.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        async fn on_interrupt(&mut self) -> Next<u64> {
            self.interrupted += 1;
            Next::Continue
        }
        async fn undecodable(&mut self, position: u64, error: &LogError) -> Next<u64> {
            if !self.skips {
                return Next::Retry(error.to_string());
            }
            self.skipped.push(position);
            self.position = position;
            Next::Continue
        }
        fn retrying(&mut self, failure: &Failure) {
            self.failures.push(failure.to_string());
        }
    }

    fn quick() -> Backoff {
        Backoff::new(RetryPolicy::fixed(Duration::from_millis(10)))
    }

    fn handled(r: &Recorder) -> Vec<u64> {
        r.batches.iter().flatten().copied().collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn follow_log_hands_over_every_event_once_in_batches_and_stops_when_asked() {
        let f = Fixture::new().await;
        let head = append(&f, 20).await;
        let log = refusing(&f, 0);
        for batch_size in [1, 8] {
            let (mut r, _interrupt, mut reached) = recorder();
            let (stop_tx, mut stop) = watch::channel(false);
            let follower = {
                let log = log.clone();
                tokio::spawn(async move {
                    let ended = follow_log(log.as_ref(), &mut stop, batch_size, &mut quick(), &mut r).await;
                    (ended, r)
                })
            };
            reached.wait_for(|p| *p >= head).await.expect("reached the head");
            stop_tx.send_replace(true);
            let (ended, r) = follower.await.expect("the loop ends");
            assert_eq!(ended, Followed::Stopped);
            assert_eq!(handled(&r), (1..=head).collect::<Vec<_>>());
            assert!(r.batches.iter().all(|b| !b.is_empty() && b.len() <= batch_size), "{:?}", r.batches);
        }
        assert_eq!(log.subscriptions.load(Ordering::SeqCst), 2, "one subscription per run");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_interrupt_is_dealt_with_between_batches_and_keeps_the_subscription() {
        let f = Fixture::new().await;
        let first = append(&f, 3).await;
        let log = refusing(&f, 0);
        let (mut r, interrupt, mut reached) = recorder();
        let (stop_tx, mut stop) = watch::channel(false);
        let follower = {
            let log = log.clone();
            tokio::spawn(async move {
                let ended = follow_log(log.as_ref(), &mut stop, 1, &mut quick(), &mut r).await;
                (ended, r)
            })
        };
        reached.wait_for(|p| *p >= first).await.expect("reached the first events");
        interrupt.send_replace(1);
        let head = append(&f, 3).await;
        reached.wait_for(|p| *p >= head).await.expect("reached the later events");
        stop_tx.send_replace(true);
        let (ended, r) = follower.await.expect("the loop ends");
        assert_eq!(ended, Followed::Stopped);
        assert_eq!(r.interrupted, 1);
        assert_eq!(handled(&r), (1..=head).collect::<Vec<_>>());
        assert_eq!(log.subscriptions.load(Ordering::SeqCst), 1, "the subscription is kept");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refusals_and_retries_back_off_and_resubscribe_from_the_consumer_position() {
        let f = Fixture::new().await;
        let head = append(&f, 10).await;
        let log = refusing(&f, 2);
        let (mut r, _interrupt, _reached) = recorder();
        r.retry_at = Some(4);
        r.halt_at = Some(head);
        let (_stop_tx, mut stop) = watch::channel(false);
        let ended = tokio::time::timeout(Duration::from_secs(10), follow_log(log.as_ref(), &mut stop, 1, &mut quick(), &mut r))
            .await
            .expect("the loop halts");
        assert_eq!(ended, Followed::Halted(head));
        assert_eq!(r.failures, ["the event log is unavailable: restarting", "the event log is unavailable: restarting", "not now"]);
        assert_eq!(handled(&r), (1..head).collect::<Vec<_>>(), "nothing skipped, nothing twice");
        assert_eq!(log.subscriptions.load(Ordering::SeqCst), 4, "two refused, one retried, one to the end");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_consumer_may_do_without_an_event_the_log_cannot_decode_and_go_on_at_once() {
        let f = Fixture::new().await;
        append(&f, 3).await;
        let bad = jamuna_commands::log::sqlite::append_undecodable(&f.dir.path().join("events.db")).expect("a corrupt row");
        let head = append(&f, 3).await;
        let log = refusing(&f, 0);
        for (batch_size, skips) in [(1, true), (8, true), (8, false)] {
            let (mut r, _interrupt, mut reached) = recorder();
            r.skips = skips;
            // A consumer that does not skip meets the event again at every
            // resubscription: a pause as long as the test means it did not go on.
            let backoff = if skips { quick() } else { Backoff::new(RetryPolicy::fixed(Duration::from_secs(60))) };
            let (stop_tx, mut stop) = watch::channel(false);
            let follower = {
                let log = log.clone();
                tokio::spawn(async move {
                    let mut backoff = backoff;
                    let ended = follow_log(log.as_ref(), &mut stop, batch_size, &mut backoff, &mut r).await;
                    (ended, r)
                })
            };
            let target = if skips { head } else { bad - 1 };
            reached.wait_for(|p| *p >= target).await.expect("reached");
            stop_tx.send_replace(true);
            let (ended, r) = follower.await.expect("the loop ends");
            assert_eq!(ended, Followed::Stopped);
            if skips {
                assert_eq!(handled(&r), (1..=head).filter(|p| *p != bad).collect::<Vec<_>>(), "everything else, once");
                assert_eq!((r.skipped, r.failures.len()), (vec![bad], 0));
            } else {
                assert_eq!(handled(&r), (1..bad).collect::<Vec<_>>(), "nothing after it");
                assert!(r.skipped.is_empty() && r.failures.iter().all(|e| e.contains("corrupt event")), "{:?}", r.failures);
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_back_off_doubles_up_to_its_maximum_and_a_stop_cuts_it_short() {
        let policy = RetryPolicy { initial: Duration::from_millis(20), max: Duration::from_millis(50), after_break: None };
        let mut backoff = Backoff::new(policy);
        let (stop_tx, mut stop) = watch::channel(false);
        let mut pauses = Vec::new();
        for _ in 0..4 {
            let started = std::time::Instant::now();
            assert!(!backoff.pause(&mut stop).await);
            pauses.push(started.elapsed());
        }
        let at_least = [20, 40, 50, 50].map(Duration::from_millis);
        assert!(pauses.iter().zip(at_least).all(|(p, min)| *p >= min), "{pauses:?}");
        backoff.reset();
        stop_tx.send_replace(true);
        let started = std::time::Instant::now();
        assert!(Backoff::new(RetryPolicy::fixed(Duration::from_secs(60))).pause(&mut stop).await, "stopped");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
