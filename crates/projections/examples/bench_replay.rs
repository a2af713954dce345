//! Generates a log and times a rebuild of each read model (SQLite, and
//! MongoDB when JAMUNA_MONGODB_URL is set) and the inbox queries:
//! `cargo run --release -p jamuna-projections --features bench --example bench_replay -- 10000 13`
//! (conversations, most customer turns per conversation). `jamuna bench
//! replay` is the real command; this is the same calls without the binary's
//! other dependencies, for quick measurements of this crate.

use jamuna_commands::handler::CommandHandler;
use jamuna_commands::keys::memory::MemoryKeyStore;
use jamuna_commands::log::sqlite::SqliteLog;
use jamuna_commands::{EventLog, Sealer};
use jamuna_projections::ReadModels;
use jamuna_projections::bench::{LogSpec, generate, inbox_probes, replay_each, time_inbox};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2_000);
    let rounds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let dir = tempfile::tempdir()?;
    let log: Arc<dyn EventLog> = Arc::new(SqliteLog::open(dir.path().join("events.db")).await?);
    let sealer = Sealer::new(Arc::new(MemoryKeyStore::default()));
    let handler = Arc::new(CommandHandler::new(log.clone(), sealer.clone()));
    let started = std::time::Instant::now();
    let generated = generate(handler, &LogSpec { conversations: n, rounds, days: 30, ..LogSpec::default() }).await?;
    println!("generated {} events ({} conversations) in {:.1} s", generated.head, n, started.elapsed().as_secs_f64());
    let mut adapters = vec![("sqlite", ReadModels::open_sqlite(dir.path().join("read"))?)];
    if let Ok(url) = std::env::var("JAMUNA_MONGODB_URL") {
        adapters.push(("mongodb", ReadModels::connect_mongo(&url, &format!("bench_{}", uuid::Uuid::now_v7().simple())).await?));
    }
    for (adapter, models) in &adapters {
        for summary in replay_each(log.clone(), &models.projections(&sealer), |_, _| {}).await? {
            println!("{adapter} {summary}");
        }
        let probes = inbox_probes(models.conversations.as_ref(), &generated).await?;
        for (name, rows, mut times) in time_inbox(models.conversations.as_ref(), &probes, 200).await? {
            times.sort();
            let q = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1000.0;
            println!("{adapter} inbox {name:<24} rows {rows:>3}  p50 {:.2} ms  p99 {:.2} ms", q(0.5), q(0.99));
        }
    }
    Ok(())
}
