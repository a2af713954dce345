//! The SQLite adapter against the event-log contract.

use jamuna_commands::log::sqlite::SqliteLog;

pub async fn make() -> Option<SqliteLog> {
    // The directory lives as long as the test process; each log gets its own.
    let dir = tempfile::tempdir().expect("a temp dir").keep();
    Some(SqliteLog::open(dir.join("events.db")).await.expect("open the log"))
}

mod contract {
    jamuna_commands::event_log_contract!(super::make);
}

#[tokio::test]
async fn a_log_reopens_with_its_events() {
    use jamuna_commands::testing::{event, stream};
    use jamuna_commands::{EventLog, ExpectedVersion};
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("events.db");
    {
        let log = SqliteLog::open(&path).await.expect("open");
        log.append(&stream("a"), ExpectedVersion::NoStream, vec![event(1, "x"), event(2, "y")]).await.expect("append");
    }
    let log = SqliteLog::open(&path).await.expect("reopen");
    assert_eq!(log.head().await.expect("head"), 2);
    let next = log.append(&stream("a"), ExpectedVersion::Exact(2), vec![event(3, "z")]).await.expect("append after reopen");
    assert_eq!((next.first_position, next.version), (3, 3));
}

#[tokio::test]
async fn a_subscription_delivers_the_events_before_a_corrupt_one_then_names_its_position() {
    use jamuna_commands::testing::{event, stream};
    use jamuna_commands::{EventLog, ExpectedVersion, LogError};
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("events.db");
    let log = SqliteLog::open(&path).await.expect("open");
    log.append(&stream("a"), ExpectedVersion::NoStream, vec![event(1, "x"), event(2, "y")]).await.expect("append");
    let bad = jamuna_commands::log::sqlite::append_undecodable(&path).expect("a corrupt row");
    assert_eq!(bad, 3);
    let after = log.append(&stream("a"), ExpectedVersion::Exact(2), vec![event(3, "z")]).await.expect("append after it");
    assert_eq!(after.first_position, 4);

    let mut sub = log.subscribe_all(0).await.expect("subscribe");
    for expected in [1, 2] {
        assert_eq!(sub.next().await.expect("an event").expect("it decodes").position, expected);
    }
    let err = sub.next().await.expect("the error");
    assert!(matches!(&err, Err(LogError::Corrupt { position: 3, .. })), "{err:?}");
    assert!(matches!(log.read_all(0, 10).await, Err(LogError::Corrupt { position: 3, .. })));
    // Past it, the log reads on.
    let mut sub = log.subscribe_all(bad).await.expect("subscribe past it");
    assert_eq!(sub.next().await.expect("an event").expect("it decodes").position, 4);
}
