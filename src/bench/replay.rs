//! `jamuna bench replay`: how fast the read models rebuild from the log, and
//! how fast the agent inbox answers.
//!
//! Generates a realistic log (by default 10,000 conversations and about
//! 200,000 events, through the real command handler into a SQLite log in a
//! temporary directory), then times a full rebuild of each read model in
//! each adapter — SQLite always, MongoDB when a URL is given — and the inbox
//! queries (each view, a tag filter, a deep page, full-text search) against
//! the rebuilt conversations model.

use super::Latencies;
use anyhow::{Context, Result};
use jamuna_commands::handler::CommandHandler;
use jamuna_commands::keys::memory::MemoryKeyStore;
use jamuna_commands::log::sqlite::SqliteLog;
use jamuna_commands::{EventLog, Sealer};
use jamuna_projections::bench::{Generated, LogSpec, generate, inbox_probes, replay_each, time_inbox};
use jamuna_projections::conversations::ConversationStore;
use jamuna_projections::mongo::MongoReadDb;
use jamuna_projections::{ReadModels, ReplaySummary};
use std::sync::Arc;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Conversations in the generated log.
    #[arg(long, default_value_t = 10_000)]
    conversations: usize,
    /// About how many events the log should hold (sets how many turns a
    /// conversation has; the real count is printed).
    #[arg(long, default_value_t = 200_000)]
    events: usize,
    /// Tenants the conversations are spread over.
    #[arg(long, default_value_t = 2)]
    tenants: usize,
    /// Days the conversations are spread over.
    #[arg(long, default_value_t = 30)]
    days: u32,
    /// Times each inbox query is run.
    #[arg(long, default_value_t = 200)]
    queries: usize,
}

/// Customer turns per conversation (1..=rounds, uniform) for about
/// `per_conversation` events: ~3.5 events a conversation has anyway (its
/// customer's registration, the start, some tags, resolutions and ratings)
/// plus ~2.3 per turn (the message and the bot's answer, or a handoff).
fn rounds_for(per_conversation: f64) -> u64 {
    let turns = ((per_conversation - 3.5) / 2.3).max(1.0);
    ((2.0 * turns - 1.0).round() as u64).max(1)
}

struct Row {
    adapter: &'static str,
    summary: ReplaySummary,
}

/// Rebuilds into SQLite, and into MongoDB too (a fresh database, dropped
/// afterwards) when `mongodb_url` is configured (`--mongodb-url`).
pub async fn run(args: Args, mongodb_url: Option<&str>) -> Result<()> {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let tmp = tempfile::tempdir()?;
    let log: Arc<dyn EventLog> = Arc::new(SqliteLog::open(tmp.path().join("events.db")).await?);
    let sealer = Sealer::new(Arc::new(MemoryKeyStore::default()));
    let handler = Arc::new(CommandHandler::new(log.clone(), sealer.clone()));
    let spec = LogSpec {
        tenants: args.tenants.max(1),
        conversations: args.conversations.max(1),
        days: args.days.max(1),
        rounds: rounds_for(args.events as f64 / args.conversations.max(1) as f64),
        ..LogSpec::default()
    };
    let spinner = indicatif::ProgressBar::new_spinner()
        .with_message(format!("generating {} conversations (up to {} turns each)", spec.conversations, spec.rounds));
    spinner.enable_steady_tick(std::time::Duration::from_millis(200));
    let started = Instant::now();
    let generated = generate(handler, &spec).await.context("generating the log")?;
    spinner.finish_and_clear();
    eprintln!(
        "generated {} events ({} conversations, {} tenants) in {:.1} s",
        generated.head,
        generated.conversations,
        generated.tenants.len(),
        started.elapsed().as_secs_f64()
    );

    println!(
        "jamuna bench replay — {cores} cores; log: {} events, {} conversations, {} tenants, {} days (SQLite log, generated in a temp dir)",
        generated.head,
        generated.conversations,
        generated.tenants.len(),
        spec.days
    );
    println!(
        "full rebuild from position 0 (reset, read the whole log, open personal data, apply in batches); events/s counts every log event read;"
    );
    println!(
        "inbox queries: first page (25) of the first tenant, {} runs each, one at a time. Each adapter's figures print as soon as it is done.",
        args.queries
    );

    let sqlite = ReadModels::open_sqlite(tmp.path().join("read")).context("opening the SQLite read models")?;
    let mut rows = Vec::new();
    rebuild("sqlite", &log, &sealer, &sqlite, &mut rows).await?;
    let probes = measure_inbox(sqlite.conversations.as_ref(), &generated, args.queries).await?;
    print_results("sqlite", &rows, &probes);

    if let Some(url) = mongodb_url {
        let name = format!("jamuna_bench_{}", uuid::Uuid::now_v7().simple());
        let mongo = ReadModels::connect_mongo(url, &name).await.with_context(|| format!("cannot reach MongoDB at {url}"))?;
        let result = async {
            let mut rows = Vec::new();
            rebuild("mongodb", &log, &sealer, &mongo, &mut rows).await?;
            let probes = measure_inbox(mongo.conversations.as_ref(), &generated, args.queries).await?;
            print_results("mongodb", &rows, &probes);
            anyhow::Ok(())
        }
        .await;
        let db = MongoReadDb::connect(url, &name).await?;
        db.database().drop().await.with_context(|| format!("dropping the bench database {name}"))?;
        result?;
    }
    Ok(())
}

/// One adapter's figures: its rebuilds, then its inbox queries.
fn print_results(adapter: &str, rows: &[Row], probes: &[(&'static str, usize, Latencies)]) {
    println!();
    println!("{:<8} {:<14} {:>10} {:>10} {:>12}", "adapter", "read model", "events", "seconds", "events/s");
    for r in rows {
        let secs = r.summary.elapsed.as_secs_f64();
        println!(
            "{:<8} {:<14} {:>10} {:>10.2} {:>12.0}",
            r.adapter,
            r.summary.projection,
            r.summary.events,
            secs,
            r.summary.events as f64 / secs.max(1e-9)
        );
    }
    println!("{:<8} {:<24} {:>6} {:>10} {:>10}", "adapter", "query", "rows", "p50 ms", "p99 ms");
    for (name, hits, lat) in probes {
        println!("{:<8} {:<24} {:>6} {:>10.2} {:>10.2}", adapter, name, hits, lat.ms(0.5), lat.ms(0.99));
    }
}

async fn rebuild(adapter: &'static str, log: &Arc<dyn EventLog>, sealer: &Sealer, models: &ReadModels, rows: &mut Vec<Row>) -> Result<()> {
    let head = log.head().await?;
    let bar = indicatif::ProgressBar::new(head);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{msg:28} [{bar:40}] {pos}/{len} ({per_sec})") {
        bar.set_style(style.progress_chars("=> "));
    }
    let summaries = replay_each(log.clone(), &models.projections(sealer), |name, p| {
        bar.set_message(format!("{adapter} {name}"));
        bar.set_position(p.position);
    })
    .await
    .with_context(|| format!("rebuilding the {adapter} read models"))?;
    bar.finish_and_clear();
    rows.extend(summaries.into_iter().map(|summary| Row { adapter, summary }));
    Ok(())
}

async fn measure_inbox(
    store: &dyn ConversationStore,
    generated: &Generated,
    rounds: usize,
) -> Result<Vec<(&'static str, usize, Latencies)>> {
    let probes = inbox_probes(store, generated).await?;
    Ok(time_inbox(store, &probes, rounds.max(1))
        .await?
        .into_iter()
        .map(|(name, hits, times)| {
            let mut lat = Latencies::new();
            for t in times {
                lat.record(t);
            }
            (name, hits, lat)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_follow_the_events_asked_for() {
        assert_eq!(rounds_for(20.0), 13, "the default: 200,000 events over 10,000 conversations");
        assert_eq!(rounds_for(1.0), 1, "at least one turn");
        assert!(rounds_for(40.0) > rounds_for(20.0));
    }
}
