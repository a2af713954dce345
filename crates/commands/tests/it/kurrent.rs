//! The KurrentDB adapter against the event-log contract, on a real KurrentDB
//! server named by JAMUNA_TEST_KURRENTDB_URL (a connection string such as
//! `kurrentdb://127.0.0.1:2113?tls=false`).
//!
//! No KurrentDB server can be installed on our machines and `make test`
//! does not start one, so without the variable these tests report that they
//! did not run and pass, even under JAMUNA_REQUIRE_SERVICES=1.

use jamuna_commands::log::kurrent::{KurrentConfig, KurrentLog};

pub async fn make() -> Option<KurrentLog> {
    let Ok(url) = std::env::var("JAMUNA_TEST_KURRENTDB_URL") else {
        eprintln!("KurrentDB contract tests did not run: JAMUNA_TEST_KURRENTDB_URL is not set");
        return None;
    };
    // Streams of its own per test (`t<uuid>-…`), and $all filtered to them,
    // so a test sees an empty log whatever else the server holds.
    let prefix = format!("t{}", uuid::Uuid::now_v7().simple());
    let config = KurrentConfig { stream_prefix: prefix, ..KurrentConfig::default() };
    Some(KurrentLog::connect(&url, config).await.expect("connect to KurrentDB"))
}

mod contract {
    jamuna_commands::event_log_contract!(super::make);
}

/// Positions are the same in every process: a second client on the same
/// prefix numbers the events the way the writer's answers did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_client_derives_the_same_positions() {
    use jamuna_commands::log::{EventLog, ExpectedVersion};
    use jamuna_commands::testing::{event, stream};
    let Ok(url) = std::env::var("JAMUNA_TEST_KURRENTDB_URL") else {
        eprintln!("KurrentDB contract tests did not run: JAMUNA_TEST_KURRENTDB_URL is not set");
        return;
    };
    let prefix = format!("t{}", uuid::Uuid::now_v7().simple());
    let config = KurrentConfig { stream_prefix: prefix, ..KurrentConfig::default() };
    let writer = KurrentLog::connect(&url, config.clone()).await.expect("connect");
    let mut answers = Vec::new();
    for n in 0..12u64 {
        let batch = (0..=n % 3).map(|i| event(n * 10 + i, "p")).collect();
        let a = writer.append(&stream(&format!("s{}", n % 4)), ExpectedVersion::Any, batch).await.expect("append");
        answers.extend(a.first_position..=a.last_position);
    }
    assert_eq!(answers, (1..=answers.len() as u64).collect::<Vec<_>>());
    let reader = KurrentLog::connect(&url, config).await.expect("connect");
    assert_eq!(reader.head().await.expect("head"), answers.len() as u64);
    let all = reader.read_all(0, 1000).await.expect("read all");
    let mine = writer.read_all(0, 1000).await.expect("read all");
    assert_eq!(
        all.iter().map(|e| (e.position, e.meta.event_id)).collect::<Vec<_>>(),
        mine.iter().map(|e| (e.position, e.meta.event_id)).collect::<Vec<_>>()
    );
}

/// Runs without a server: a KurrentDB that is not there is `Unavailable`
/// (with and without TLS: the TLS set-up itself must not panic), quickly.
#[tokio::test]
async fn an_unreachable_server_is_unavailable() {
    use jamuna_commands::log::LogError;
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    for url in [format!("kurrentdb://127.0.0.1:{port}?tls=false"), format!("esdb://127.0.0.1:{port}")] {
        let started = std::time::Instant::now();
        let result = KurrentLog::connect(&url, KurrentConfig::default()).await;
        assert!(matches!(result, Err(LogError::Unavailable(_))), "{url}: {:?}", result.err());
        eprintln!("{url}: refused as unavailable in {:?}", started.elapsed());
    }
}

/// Runs without a server: a prefix that could overlap another's is refused.
#[tokio::test]
async fn a_stream_prefix_that_could_overlap_is_refused() {
    use jamuna_commands::log::LogError;
    for prefix in ["", "a-b", "$all", "jamuna events"] {
        let config = KurrentConfig { stream_prefix: prefix.into(), ..KurrentConfig::default() };
        let result = KurrentLog::connect("kurrentdb://127.0.0.1:2113?tls=false", config).await;
        assert!(matches!(result, Err(LogError::Invalid(_))), "{prefix:?}: {:?}", result.err());
    }
}
