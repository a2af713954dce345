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
