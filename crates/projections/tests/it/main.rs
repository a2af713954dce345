//! Integration tests of the read side, in one test binary.

mod mongo;
mod replay;
mod runtime;
mod sessions;
mod sqlite;
mod vectors;

use jamuna_commands::handler::CommandHandler;
use jamuna_commands::keys::memory::MemoryKeyStore;
use jamuna_commands::log::sqlite::SqliteLog;
use jamuna_commands::{EventLog, Sealer};
use std::sync::Arc;

/// `make test` sets this: a test whose server is missing must fail, not skip.
pub fn services_required() -> bool {
    std::env::var("JAMUNA_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// A fresh SQLite event log and a command handler over it.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub handler: Arc<CommandHandler>,
}

impl Fixture {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let log: Arc<dyn EventLog> = Arc::new(SqliteLog::open(dir.path().join("events.db")).await.expect("open the log"));
        let handler = Arc::new(CommandHandler::new(log, Sealer::new(Arc::new(MemoryKeyStore::default()))));
        Self { dir, handler }
    }

    pub fn log(&self) -> Arc<dyn EventLog> {
        self.handler.log().clone()
    }

    pub fn sealer(&self) -> Sealer {
        self.handler.sealer().clone()
    }
}
