//! `jamuna bench append`: the write path, measured per adapter.
//!
//! * single-event commands through the whole command path (load the
//!   conversation, decide, seal the message, append with the expected
//!   version), from 1 writer on 1 conversation and from 16 writers on 16;
//! * batched appends of 100 events straight to the log, from 1 and 16 writers.
//!
//! Each scenario runs for a fixed time against a fresh log.

use super::Latencies;
use anyhow::{Context, Result};
use jamuna_commands::Sealer;
use jamuna_commands::handler::{CommandContext, CommandHandler};
use jamuna_commands::keys::sqlite::SqliteKeyStore;
use jamuna_commands::log::nats::{NatsConfig, NatsLog};
use jamuna_commands::log::sqlite::SqliteLog;
use jamuna_commands::log::{EventLog, ExpectedVersion, NewEvent};
use jamuna_domain::conversation::{Author, Channel, Conversation, ConversationCommand};
use jamuna_domain::{ClientMessageId, ConversationId, EventMeta, MessageText, StreamId, TenantId, UserId};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// Adapters to measure (comma-separated): sqlite, nats.
    #[arg(long, value_delimiter = ',', default_value = "sqlite")]
    adapters: Vec<String>,
    /// The NATS server for the nats adapter.
    #[arg(long, env = "JAMUNA_BENCH_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    /// Seconds per scenario.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
}

struct Row {
    adapter: String,
    scenario: String,
    ops: u64,
    events: u64,
    secs: f64,
    lat: Latencies,
}

pub async fn run(args: Args) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let mut rows = Vec::new();
    let span = Duration::from_secs_f64(args.seconds);
    for adapter in &args.adapters {
        for (scenario, writers, batch) in [
            ("commands, 1 stream", 1, 0),
            ("commands, 16 streams", 16, 0),
            ("batches of 100, 1 writer", 1, 100),
            ("batches of 100, 16 writers", 16, 100),
        ] {
            let (log, cleanup) = open(adapter, &args.nats_url, tmp.path()).await?;
            let keys = Arc::new(SqliteKeyStore::open(tmp.path().join(format!("keys-{}.db", uuid::Uuid::now_v7())))?);
            let handler = Arc::new(CommandHandler::new(log.clone(), Sealer::new(keys)));
            let row = if batch == 0 { commands(handler, writers, span).await? } else { batches(log, writers, batch, span).await? };
            rows.push(Row { adapter: adapter.clone(), scenario: scenario.into(), ..row });
            if let Some(nats) = cleanup {
                nats.delete_stream().await?;
            }
        }
    }
    println!(
        "jamuna bench append — {} cores, {} s per scenario",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        args.seconds
    );
    println!(
        "sqlite: WAL, synchronous=FULL (fsync before every acknowledgement), group commit; nats: file storage, the server's sync_interval decides durability"
    );
    println!(
        "{:<8} {:<28} {:>10} {:>14} {:>14} {:>10} {:>10}",
        "adapter", "scenario", "appends", "appends/s", "events/s", "p50 ms", "p99 ms"
    );
    for r in &rows {
        println!(
            "{:<8} {:<28} {:>10} {:>14.0} {:>14.0} {:>10.2} {:>10.2}",
            r.adapter,
            r.scenario,
            r.ops,
            r.ops as f64 / r.secs,
            r.events as f64 / r.secs,
            r.lat.ms(0.5),
            r.lat.ms(0.99)
        );
    }
    Ok(())
}

async fn open(adapter: &str, nats_url: &str, dir: &std::path::Path) -> Result<(Arc<dyn EventLog>, Option<Arc<NatsLog>>)> {
    match adapter {
        "sqlite" => Ok((Arc::new(SqliteLog::open(dir.join(format!("events-{}.db", uuid::Uuid::now_v7()))).await?), None)),
        "nats" => {
            let id = uuid::Uuid::now_v7().simple().to_string();
            let config = NatsConfig { stream_name: format!("BENCH_{id}"), subject_prefix: format!("b{id}"), ..NatsConfig::default() };
            let log = Arc::new(NatsLog::connect(nats_url, config).await.with_context(|| format!("cannot reach NATS at {nats_url}"))?);
            Ok((log.clone(), Some(log)))
        }
        other => anyhow::bail!("unknown adapter {other:?}: use sqlite or nats"),
    }
}

fn tenant() -> TenantId {
    TenantId::parse("bench").expect("valid")
}

async fn commands(handler: Arc<CommandHandler>, writers: usize, span: Duration) -> Result<Row> {
    let mut tasks = Vec::new();
    for w in 0..writers {
        let handler = handler.clone();
        tasks.push(tokio::spawn(async move {
            let cid = ConversationId::from_uuid(uuid::Uuid::now_v7());
            let stream = StreamId::conversation(&tenant(), &cid);
            let customer = UserId::parse(format!("customer-{w}"))?;
            let start = ConversationCommand::Start { tenant: tenant(), conversation_id: cid, customer, channel: Channel::Web };
            handler.execute::<Conversation>(&stream, &start, &CommandContext::new(tenant(), chrono::Utc::now())).await?;
            let mut lat = Latencies::new();
            let mut n = 0u64;
            let deadline = Instant::now() + span;
            while Instant::now() < deadline {
                let post = ConversationCommand::PostMessage {
                    author: Author::Customer,
                    text: Some(MessageText::parse(&format!("Hello, my card has not arrived yet, order number {n}. Can you help?"))?),
                    client_message_id: Some(ClientMessageId::parse(format!("m{n}"))?),
                    attachments: vec![],
                };
                let t = Instant::now();
                handler.execute::<Conversation>(&stream, &post, &CommandContext::new(tenant(), chrono::Utc::now())).await?;
                lat.record(t.elapsed());
                n += 1;
            }
            anyhow::Ok((n, lat))
        }));
    }
    collect(tasks, span, 1).await
}

fn test_event(n: u64) -> Result<NewEvent> {
    let id = uuid::Uuid::now_v7();
    Ok(NewEvent {
        meta: EventMeta {
            event_id: id,
            tenant: tenant(),
            occurred_at: chrono::Utc::now(),
            causation_id: None,
            correlation_id: id,
            subject: None,
        },
        event_type: "BenchEvent".into(),
        schema: 1,
        data: serde_json::value::to_raw_value(
            &serde_json::json!({"type": "BenchEvent", "n": n, "text": "a customer message of a typical length, around eighty characters"}),
        )?,
    })
}

async fn batches(log: Arc<dyn EventLog>, writers: usize, size: u64, span: Duration) -> Result<Row> {
    let mut tasks = Vec::new();
    for w in 0..writers {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            let stream = StreamId::new(tenant(), jamuna_domain::AggregateKind::Conversation, format!("batch-{w}"))?;
            let mut lat = Latencies::new();
            let mut n = 0u64;
            let deadline = Instant::now() + span;
            while Instant::now() < deadline {
                let events = (0..size).map(|i| test_event(n * size + i)).collect::<Result<Vec<_>>>()?;
                let t = Instant::now();
                log.append(&stream, ExpectedVersion::Exact(n * size), events).await?;
                lat.record(t.elapsed());
                n += 1;
            }
            anyhow::Ok((n, lat))
        }));
    }
    collect(tasks, span, size).await
}

async fn collect(tasks: Vec<tokio::task::JoinHandle<Result<(u64, Latencies)>>>, span: Duration, events_per_op: u64) -> Result<Row> {
    let mut ops = 0;
    let mut lat = Latencies::new();
    for t in tasks {
        let (n, l) = t.await??;
        ops += n;
        lat.add(&l);
    }
    Ok(Row { adapter: String::new(), scenario: String::new(), ops, events: ops * events_per_op, secs: span.as_secs_f64(), lat })
}
