//! The contract every [`EventLog`] adapter passes.
//!
//! An adapter's tests invoke [`event_log_contract!`] with a function that
//! makes a fresh, empty log (or `None` when the adapter's server is not
//! configured, which the function itself reports); the macro expands to one
//! test per rule below.

use crate::log::{EventLog, ExpectedVersion, LogError, NewEvent};
use jamuna_domain::{AggregateKind, EventMeta, StreamId, TenantId};
use std::sync::Arc;

/// One test per rule of the event-log contract.
#[macro_export]
macro_rules! event_log_contract {
    ($make:path) => {
        $crate::event_log_contract!(@tests $make;
            expected_versions_are_enforced,
            appends_are_atomic,
            appends_are_idempotent_by_event_id,
            invalid_appends_are_refused,
            concurrent_appends_to_one_stream_lose_and_double_nothing,
            read_all_returns_append_order,
            a_subscription_started_midway_sees_every_later_event_once_in_order,
            a_resubscription_from_a_checkpoint_continues_without_gaps,
            large_and_unicode_events_survive_the_round_trip,
        );
    };
    (@tests $make:path; $($rule:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $rule() {
                let Some(log) = $make().await else { return };
                $crate::testing::$rule(std::sync::Arc::new(log)).await;
            }
        )*
    };
}

pub fn tenant() -> TenantId {
    TenantId::parse("acme").expect("a valid tenant")
}

pub fn stream(id: &str) -> StreamId {
    StreamId::new(tenant(), AggregateKind::Conversation, id).expect("a valid stream id")
}

/// A test event whose data is `{"type": "Test", "n": n, "text": text}`.
pub fn event(n: u64, text: &str) -> NewEvent {
    let id = uuid::Uuid::now_v7();
    NewEvent {
        meta: EventMeta {
            event_id: id,
            tenant: tenant(),
            occurred_at: chrono::Utc::now(),
            causation_id: None,
            correlation_id: id,
            subject: None,
        },
        event_type: "Test".into(),
        schema: 1,
        data: serde_json::value::to_raw_value(&serde_json::json!({"type": "Test", "n": n, "text": text})).expect("valid JSON"),
    }
}

fn n_of(e: &crate::RecordedEvent) -> u64 {
    let v: serde_json::Value = serde_json::from_str(e.data.get()).expect("valid JSON");
    v["n"].as_u64().expect("an n")
}

pub async fn expected_versions_are_enforced(log: Arc<dyn EventLog>) {
    let s = stream("versions");
    let a = log.append(&s, ExpectedVersion::NoStream, vec![event(1, "a")]).await.expect("a new stream");
    assert_eq!((a.version, a.first_position, a.duplicate), (1, 1, false));
    let again = log.append(&s, ExpectedVersion::NoStream, vec![event(2, "b")]).await;
    assert!(matches!(again, Err(LogError::Conflict { actual: 1, .. })), "{again:?}");
    let b = log.append(&s, ExpectedVersion::Exact(1), vec![event(2, "b")]).await.expect("the right version");
    assert_eq!(b.version, 2);
    let stale = log.append(&s, ExpectedVersion::Exact(1), vec![event(3, "c")]).await;
    assert!(matches!(stale, Err(LogError::Conflict { actual: 2, .. })), "{stale:?}");
    let ahead = log.append(&s, ExpectedVersion::Exact(7), vec![event(3, "c")]).await;
    assert!(matches!(ahead, Err(LogError::Conflict { .. })), "{ahead:?}");
    let any = log.append(&s, ExpectedVersion::Any, vec![event(3, "c")]).await.expect("any version");
    assert_eq!(any.version, 3);
    let fresh =
        log.append(&stream("versions-other"), ExpectedVersion::Exact(0), vec![event(1, "x")]).await.expect("exact 0 is a new stream");
    assert_eq!(fresh.version, 1);
    let read = log.read_stream(&s, 0).await.expect("read");
    assert_eq!(read.iter().map(|e| (e.version, n_of(e))).collect::<Vec<_>>(), vec![(1, 1), (2, 2), (3, 3)]);
    assert_eq!(log.read_stream(&s, 2).await.expect("read").len(), 1);
    assert!(log.read_stream(&stream("nothing-here"), 0).await.expect("read").is_empty());
}

pub async fn appends_are_atomic(log: Arc<dyn EventLog>) {
    let s = stream("atomic");
    let batch: Vec<_> = (1..=5).map(|n| event(n, "batch")).collect();
    let a = log.append(&s, ExpectedVersion::NoStream, batch).await.expect("a batch");
    assert_eq!((a.first_position, a.last_position, a.version), (1, 5, 5));
    let refused: Vec<_> = (6..=8).map(|n| event(n, "refused")).collect();
    assert!(log.append(&s, ExpectedVersion::Exact(3), refused).await.is_err());
    let events = log.read_stream(&s, 0).await.expect("read");
    assert_eq!(events.iter().map(|e| e.version).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5]);
    assert_eq!(events.iter().map(|e| e.position).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5]);
    assert_eq!(log.head().await.expect("head"), 5);
}

pub async fn appends_are_idempotent_by_event_id(log: Arc<dyn EventLog>) {
    let s = stream("idempotent");
    let e = event(1, "once");
    let first = log.append(&s, ExpectedVersion::NoStream, vec![e.clone()]).await.expect("first");
    // A retry with the same expectation (the first answer was lost) is a duplicate, not a conflict.
    let retry = log.append(&s, ExpectedVersion::NoStream, vec![e.clone()]).await.expect("retry");
    assert!(retry.duplicate);
    assert_eq!((retry.first_position, retry.version), (first.first_position, first.version));
    let batch = vec![event(2, "b"), event(3, "b")];
    let b1 = log.append(&s, ExpectedVersion::Exact(1), batch.clone()).await.expect("batch");
    let b2 = log.append(&s, ExpectedVersion::Exact(1), batch).await.expect("batch retry");
    assert!(b2.duplicate);
    assert_eq!((b2.first_position, b2.last_position, b2.version), (b1.first_position, b1.last_position, b1.version));
    assert_eq!(log.read_stream(&s, 0).await.expect("read").len(), 3);
    assert_eq!(log.head().await.expect("head"), 3);
}

pub async fn invalid_appends_are_refused(log: Arc<dyn EventLog>) {
    let s = stream("invalid");
    assert!(matches!(log.append(&s, ExpectedVersion::Any, vec![]).await, Err(LogError::Invalid(_))));
    let mut other = event(1, "x");
    other.meta.tenant = TenantId::parse("globex").expect("valid");
    assert!(matches!(log.append(&s, ExpectedVersion::Any, vec![other]).await, Err(LogError::Invalid(_))));
    let huge = "x".repeat(crate::log::MAX_EVENT_BYTES + 1);
    assert!(matches!(log.append(&s, ExpectedVersion::Any, vec![event(1, &huge)]).await, Err(LogError::Invalid(_))));
    assert_eq!(log.head().await.expect("head"), 0);
}

pub async fn concurrent_appends_to_one_stream_lose_and_double_nothing(log: Arc<dyn EventLog>) {
    let s = stream("contended");
    let (tasks, per_task) = (16u64, 12u64);
    let mut handles = Vec::new();
    for t in 0..tasks {
        let (log, s) = (log.clone(), s.clone());
        handles.push(tokio::spawn(async move {
            let mut conflicts = 0;
            for i in 0..per_task {
                let e = event(t * 1000 + i, "race");
                loop {
                    let v = log.read_stream(&s, 0).await.expect("read").last().map_or(0, |e| e.version);
                    match log.append(&s, ExpectedVersion::Exact(v), vec![e.clone()]).await {
                        Ok(a) => {
                            assert!(!a.duplicate);
                            break;
                        }
                        Err(LogError::Conflict { .. }) => conflicts += 1,
                        Err(e) => panic!("append failed: {e}"),
                    }
                }
            }
            conflicts
        }));
    }
    let mut conflicts = 0;
    for h in handles {
        conflicts += h.await.expect("task");
    }
    let events = log.read_stream(&s, 0).await.expect("read");
    assert_eq!(events.len() as u64, tasks * per_task);
    assert_eq!(events.iter().map(|e| e.version).collect::<Vec<_>>(), (1..=tasks * per_task).collect::<Vec<_>>(), "versions gap-free");
    let mut ns: Vec<_> = events.iter().map(n_of).collect();
    ns.sort();
    ns.dedup();
    assert_eq!(ns.len() as u64, tasks * per_task, "no event doubled");
    assert!(conflicts > 0, "16 racing writers should have conflicted at least once");
}

pub async fn read_all_returns_append_order(log: Arc<dyn EventLog>) {
    let mut appended = Vec::new();
    for n in 0..30u64 {
        let s = stream(&format!("order-{}", n % 4));
        let e = event(n, "o");
        let id = e.meta.event_id;
        let a = log.append(&s, ExpectedVersion::Any, vec![e]).await.expect("append");
        appended.push((a.first_position, id));
    }
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let page = log.read_all(after, 7).await.expect("read_all");
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 7);
        after = page.last().map(|e| e.position).unwrap_or(after);
        all.extend(page);
    }
    assert_eq!(all.iter().map(|e| (e.position, e.meta.event_id)).collect::<Vec<_>>(), appended);
    assert_eq!(all.iter().map(|e| e.position).collect::<Vec<_>>(), (1..=30).collect::<Vec<_>>(), "positions gap-free");
    assert_eq!(log.head().await.expect("head"), 30);
}

pub async fn a_subscription_started_midway_sees_every_later_event_once_in_order(log: Arc<dyn EventLog>) {
    for n in 1..=10 {
        log.append(&stream("sub"), ExpectedVersion::Any, vec![event(n, "before")]).await.expect("append");
    }
    let mut sub = log.subscribe_all(5).await.expect("subscribe");
    let writer = {
        let log = log.clone();
        tokio::spawn(async move {
            for n in 11..=60 {
                log.append(&stream(&format!("sub-{}", n % 3)), ExpectedVersion::Any, vec![event(n, "live")]).await.expect("append");
            }
        })
    };
    let mut seen = Vec::new();
    while seen.len() < 55 {
        let e = tokio::time::timeout(std::time::Duration::from_secs(20), sub.next())
            .await
            .expect("an event within 20 s")
            .expect("the subscription is open")
            .expect("no error");
        seen.push((e.position, n_of(&e)));
    }
    writer.await.expect("writer");
    assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), (6..=60).collect::<Vec<_>>());
    assert_eq!(seen.iter().map(|s| s.1).collect::<Vec<_>>(), (6..=60).collect::<Vec<_>>());
    // Nothing more than what was appended.
    assert!(tokio::time::timeout(std::time::Duration::from_millis(300), sub.next()).await.is_err());
}

pub async fn a_resubscription_from_a_checkpoint_continues_without_gaps(log: Arc<dyn EventLog>) {
    for n in 1..=20 {
        log.append(&stream("resume"), ExpectedVersion::Any, vec![event(n, "r")]).await.expect("append");
    }
    let mut checkpoint = 0;
    let mut seen = Vec::new();
    for take in [7, 5, 8] {
        let mut sub = log.subscribe_all(checkpoint).await.expect("subscribe");
        for _ in 0..take {
            let e =
                tokio::time::timeout(std::time::Duration::from_secs(20), sub.next()).await.expect("in time").expect("open").expect("ok");
            checkpoint = e.position;
            seen.push(n_of(&e));
        }
        drop(sub);
    }
    assert_eq!(seen, (1..=20).collect::<Vec<_>>());
}

pub async fn large_and_unicode_events_survive_the_round_trip(log: Arc<dyn EventLog>) {
    let s = stream("large");
    let unicode = "héllo 👋 — 你好 — مرحبا — \u{1F600}\n\t\"quoted\" \\ back";
    let big = unicode.repeat(256 * 1024 / unicode.len() + 1);
    assert!(big.len() >= 256 * 1024);
    let e1 = event(1, unicode);
    let e2 = event(2, &big);
    let (d1, d2) = (e1.data.get().to_owned(), e2.data.get().to_owned());
    log.append(&s, ExpectedVersion::NoStream, vec![e1]).await.expect("unicode");
    log.append(&s, ExpectedVersion::Exact(1), vec![e2]).await.expect("large");
    let read = log.read_stream(&s, 0).await.expect("read");
    let json = |s: &str| serde_json::from_str::<serde_json::Value>(s).expect("json");
    assert_eq!(json(read[0].data.get()), json(&d1));
    assert_eq!(json(read[1].data.get()), json(&d2));
    let all = log.read_all(0, 10).await.expect("read all");
    assert_eq!(json(all[1].data.get())["text"].as_str().map(str::len), Some(big.len()));
}
