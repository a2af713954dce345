//! Generates a log of N conversations and times a rebuild of each SQLite
//! read model: `cargo run --release -p jamuna-projections --example bench_replay -- 10000`.
//! (`jamuna bench replay` is the real command; this is the same two calls.)

use jamuna_commands::handler::CommandHandler;
use jamuna_commands::keys::memory::MemoryKeyStore;
use jamuna_commands::log::sqlite::SqliteLog;
use jamuna_commands::{EventLog, Sealer};
use jamuna_projections::bench::{LogSpec, generate, replay_sqlite};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(2_000);
    let dir = tempfile::tempdir()?;
    let log: Arc<dyn EventLog> = Arc::new(SqliteLog::open(dir.path().join("events.db")).await?);
    let sealer = Sealer::new(Arc::new(MemoryKeyStore::default()));
    let handler = Arc::new(CommandHandler::new(log.clone(), sealer.clone()));
    let started = std::time::Instant::now();
    let generated = generate(handler, &LogSpec { conversations: n, ..LogSpec::default() }).await?;
    println!("generated {} events ({} conversations) in {:.1} s", generated.head, n, started.elapsed().as_secs_f64());
    for summary in replay_sqlite(log, sealer, &dir.path().join("read"), |_, _| {}).await? {
        println!("{summary}");
    }
    Ok(())
}
