//! The NATS JetStream adapter against the event-log contract, on a real
//! `nats-server -js` (started by `make test`, found at JAMUNA_TEST_NATS_URL).

use jamuna_commands::log::nats::{NatsConfig, NatsLog};

pub async fn make() -> Option<NatsLog> {
    let Ok(url) = std::env::var("JAMUNA_TEST_NATS_URL") else {
        assert!(!crate::services_required(), "JAMUNA_TEST_NATS_URL is not set, but make test requires NATS");
        eprintln!("NOT RUN: the NATS contract tests need JAMUNA_TEST_NATS_URL (make test starts a server and sets it)");
        return None;
    };
    // A stream of its own per test, so tests do not see each other's events.
    let id = uuid::Uuid::now_v7().simple().to_string();
    let config = NatsConfig { stream_name: format!("TEST_{id}"), subject_prefix: format!("t{id}"), ..NatsConfig::default() };
    Some(NatsLog::connect(&url, config).await.expect("connect to NATS"))
}

mod contract {
    jamuna_commands::event_log_contract!(super::make);
}
