//! `jamuna bench chat`: the product end to end, embedded and distributed
//! side by side in one run.
//!
//! For each mode it starts the real processes as children — embedded: one
//! `jamuna serve --dev`; distributed: `jamuna gateway --dev`, `jamuna
//! projector` and `jamuna ai-worker` against the NATS, MongoDB and Redis the
//! flags (or JAMUNA_* variables) name, in a stream and database of their own
//! — then N customers, each on a WebSocket of their own, ask the knowledge
//! base questions one after another (closed loop: the next question once the
//! bot's answer is pushed back on the customer's socket). It reports the
//! answers per second sustained and p50/p99 from the customer's `send` frame
//! to the bot's answer (`BotAnswered`, or `HandoffRequested` when the bot
//! hands over; the customer then starts a new conversation) arriving on that
//! socket.

use super::Latencies;
use super::ws::{Server, Ws, open, rss_mib, spawn};
use anyhow::{Context, Result, bail};
use futures::{SinkExt, StreamExt};
use jamuna_commands::log::nats::{NatsConfig, NatsLog};
use jamuna_projections::mongo::MongoReadDb;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

#[derive(clap::Args)]
pub struct Args {
    /// Customers asking at once (one socket and one question in flight each).
    #[arg(long, default_value_t = 16)]
    customers: usize,
    /// Seconds of asking per mode (after one warm-up question per customer).
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// NATS (JetStream) for the distributed mode's log; default: the configured
    /// event log (`--event-log`, JAMUNA_EVENT_LOG). The distributed mode also
    /// needs `--mongodb-url` (MongoDB or FerretDB for its read models) and
    /// takes `--redis-url` (sessions, presence and rate limits; optional).
    #[arg(long)]
    nats_url: Option<String>,
    /// AI-worker replicas in the distributed mode (more than one needs
    /// Redis: they split the conversations by leases there).
    #[arg(long, default_value_t = 1)]
    ai_workers: usize,
    /// Only the embedded mode.
    #[arg(long)]
    embedded_only: bool,
}

/// Questions the demo knowledge base answers.
const QUESTIONS: &[&str] = &[
    "My new card has not arrived yet, when will it come?",
    "How do I change my PIN?",
    "How long does a bank transfer take?",
    "Which exchange rate do you use for card payments abroad?",
    "How do I top up my account?",
    "I lost my card, what should I do?",
];

/// One mode's figures.
struct Row {
    mode: &'static str,
    processes: String,
    answers: u64,
    handoffs: u64,
    seconds: f64,
    latency: Latencies,
    rss_mib: f64,
}

pub async fn run(args: Args, config: &crate::config::Config) -> Result<()> {
    let model_dir = &config.model_dir;
    let nats_url = args.nats_url.clone().or_else(|| config.event_log.url.clone());
    let (mongodb_url, redis_url) = (config.mongodb.url.clone(), config.redis.url.clone());
    if args.customers == 0 || args.seconds == 0 || args.ai_workers == 0 {
        bail!("--customers, --seconds and --ai-workers must be at least 1");
    }
    if args.ai_workers > 1 && redis_url.is_none() {
        bail!("--ai-workers {} needs --redis-url (JAMUNA_REDIS_URL): replicas split the work by leases in Redis", args.ai_workers);
    }
    let model = ("JAMUNA_MODEL_DIR", model_dir.display().to_string());
    let unlimited = ("JAMUNA_RATE_LIMIT_PER_MINUTE", "100000000".to_string());
    // One IP plays every customer.
    let visitors = ("JAMUNA_VISITORS_PER_IP_PER_HOUR", "100000000".to_string());
    let mut rows = Vec::new();

    eprintln!("embedded: starting jamuna serve --dev…");
    let serve = spawn(&["serve", "--dev"], &[model.clone(), unlimited.clone(), visitors.clone()])?;
    rows.push(measure("embedded", "serve", &serve, std::slice::from_ref(&serve), &args).await?);
    drop(serve);

    let distributed = match (&nats_url, &mongodb_url) {
        _ if args.embedded_only => None,
        (Some(nats), Some(mongodb)) if nats.starts_with("nats://") => Some((nats.clone(), mongodb.clone())),
        (Some(other), Some(_)) => bail!("--nats-url must be a nats:// URL, not {other}"),
        _ => None,
    };
    match distributed {
        Some((nats, mongodb)) => {
            let (nats, mongodb) = (nats.as_str(), mongodb.as_str());
            let id = uuid::Uuid::now_v7().simple().to_string();
            let mut env = vec![
                model,
                unlimited,
                visitors,
                ("JAMUNA_EVENT_LOG", nats.to_owned()),
                ("JAMUNA_NATS_STREAM", format!("BENCH_{id}")),
                ("JAMUNA_NATS_SUBJECT_PREFIX", format!("b{id}")),
                ("JAMUNA_MONGODB_URL", mongodb.to_owned()),
                ("JAMUNA_MONGODB_DATABASE", format!("bench_{id}")),
                ("JAMUNA_JWT_SECRET", super::super::roles::random_token(48)),
            ];
            if let Some(r) = &redis_url {
                env.push(("JAMUNA_REDIS_URL", r.clone()));
            }
            let workers = args.ai_workers;
            eprintln!("distributed: starting gateway, projector and {workers} ai-worker(s)…");
            let mut roles = vec![spawn(&["gateway", "--dev"], &env)?, spawn(&["projector"], &env)?];
            for _ in 0..workers {
                roles.push(spawn(&["ai-worker"], &env)?);
            }
            let workers = if workers == 1 { "ai-worker".to_owned() } else { format!("{workers} ai-workers") };
            let servers = if redis_url.is_some() { "NATS, MongoDB, Redis" } else { "NATS, MongoDB" };
            let row = measure("distributed", &format!("gateway+projector+{workers}; {servers}"), &roles[0], &roles, &args).await;
            drop(roles);
            // The run's stream and database go with it.
            let stream = NatsConfig { stream_name: format!("BENCH_{id}"), subject_prefix: format!("b{id}"), ..NatsConfig::default() };
            NatsLog::connect(nats, stream)
                .await
                .context("cannot reach NATS to delete the bench stream")?
                .delete_stream()
                .await
                .context("deleting the bench stream")?;
            MongoReadDb::connect(mongodb, &format!("bench_{id}")).await?.database().drop().await.context("dropping the bench database")?;
            rows.push(row?);
        }
        None => eprintln!("distributed: not run (give --nats-url and --mongodb-url, or JAMUNA_EVENT_LOG=nats://… and JAMUNA_MONGODB_URL)"),
    }

    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!(
        "jamuna bench chat — {cores} cores, {} customers asking the bot in a closed loop, {} s per mode",
        args.customers, args.seconds
    );
    println!("latency: the customer's send frame → the bot's answer pushed back on the customer's socket");
    println!(
        "{:<12} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9}  processes",
        "mode", "answers", "answers/s", "p50 ms", "p99 ms", "handoffs", "RSS MiB"
    );
    for r in &rows {
        println!(
            "{:<12} {:>10} {:>9.1} {:>9.1} {:>9.1} {:>9} {:>9.0}  {}",
            r.mode,
            r.answers,
            r.answers as f64 / r.seconds,
            r.latency.ms(0.5),
            r.latency.ms(0.99),
            r.handoffs,
            r.rss_mib,
            r.processes
        );
    }
    Ok(())
}

async fn wait_ready(http: &reqwest::Client, base: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{base} did not become ready within 120 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A customer: a visitor token, a conversation and a socket on it.
struct Customer {
    token: String,
    conversation: String,
    ws: Ws,
}

async fn new_conversation(http: &reqwest::Client, base: &str, token: &str) -> Result<String> {
    let c: Value =
        http.post(format!("{base}/api/v1/conversations")).bearer_auth(token).json(&json!({"channel": "web"})).send().await?.json().await?;
    Ok(c["id"].as_str().with_context(|| format!("no conversation: {c}"))?.to_string())
}

async fn customer(http: &reqwest::Client, base: &str, widget_key: &str) -> Result<Customer> {
    // The gateway of the distributed mode reads the tenant from the projector's read model: retry until it is there.
    let deadline = Instant::now() + Duration::from_secs(60);
    let token = loop {
        let r = http.post(format!("{base}/api/v1/auth/visitor")).json(&json!({"widget_key": widget_key})).send().await?;
        if r.status().as_u16() == 201 {
            let v: Value = r.json().await?;
            break v["access_token"].as_str().context("no token")?.to_string();
        }
        if Instant::now() > deadline {
            bail!("no visitor token within 60 s: {}", r.status());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let conversation = new_conversation(http, base, &token).await?;
    let ws = open(base, &token, &conversation, 0).await?;
    Ok(Customer { token, conversation, ws })
}

/// Asks one question and waits for the bot's reply on the socket. `Ok(true)`
/// when the bot handed over (the customer then moves to a new conversation).
async fn ask(c: &mut Customer, http: &reqwest::Client, base: &str, n: u64, question: &str, latency: &mut Latencies) -> Result<bool> {
    let cmid = format!("q{n}");
    let started = Instant::now();
    let frame = json!({"type": "send", "conversation_id": c.conversation, "client_message_id": cmid, "text": question});
    c.ws.send(Message::Text(frame.to_string().into())).await?;
    let mut asked_at = None;
    loop {
        let m = tokio::time::timeout(Duration::from_secs(30), c.ws.next())
            .await
            .context("no reply within 30 s")?
            .context("socket closed")??;
        let Message::Text(t) = m else { continue };
        let f: Value = serde_json::from_str(t.as_str())?;
        match f["type"].as_str() {
            Some("ack") if f["client_message_id"] == cmid.as_str() => asked_at = f["version"].as_u64(),
            Some("error") => bail!("the gateway refused a frame: {f}"),
            Some("event") if f["conversation_id"] == c.conversation.as_str() => match f["event"]["type"].as_str() {
                Some("BotAnswered") if asked_at.is_some() && f["event"]["in_reply_to"].as_u64() == asked_at => {
                    latency.record(started.elapsed());
                    return Ok(false);
                }
                Some("HandoffRequested") if asked_at.is_some_and(|v| f["version"].as_u64() > Some(v)) => {
                    latency.record(started.elapsed());
                    let next = new_conversation(http, base, &c.token).await?;
                    c.ws.send(Message::Text(json!({"type": "unsubscribe", "conversation_id": c.conversation}).to_string().into())).await?;
                    c.ws.send(Message::Text(json!({"type": "subscribe", "conversation_id": next, "after_version": 0}).to_string().into()))
                        .await?;
                    c.conversation = next;
                    return Ok(true);
                }
                _ => {}
            },
            _ => {}
        }
    }
}

/// Drives `customers` against `gateway` for `seconds`; `all` are the processes whose RSS is summed.
async fn measure(mode: &'static str, processes: &str, gateway: &Server, all: &[Server], args: &Args) -> Result<Row> {
    let http = reqwest::Client::new();
    for s in all {
        wait_ready(&http, &s.base).await?;
    }
    let base = gateway.base.clone();
    let widget_key = gateway.widget_key.clone().context("the dev gateway printed no widget key")?;
    let mut tasks = Vec::new();
    let deadline_after_warmup = Duration::from_secs(args.seconds);
    let (go_tx, go_rx) = tokio::sync::watch::channel(None::<Instant>);
    let (warm_tx, mut warm_rx) = tokio::sync::mpsc::channel::<()>(args.customers);
    for i in 0..args.customers {
        let mut c = customer(&http, &base, &widget_key).await.with_context(|| format!("{mode}: customer {i}"))?;
        let (http, base, mut go, warmed) = (http.clone(), base.clone(), go_rx.clone(), warm_tx.clone());
        tasks.push(tokio::spawn(async move {
            // Warm-up: one question, not timed (the first answer loads caches).
            let mut ignored = Latencies::new();
            ask(&mut c, &http, &base, 0, QUESTIONS[i % QUESTIONS.len()], &mut ignored).await?;
            let _ = warmed.send(()).await;
            drop(warmed);
            let _ = go.wait_for(Option::is_some).await;
            let until = go.borrow().map(|t| t + deadline_after_warmup).context("no start")?;
            let (mut latency, mut handoffs, mut n) = (Latencies::new(), 0u64, 1u64);
            while Instant::now() < until {
                let q = QUESTIONS[(i + n as usize) % QUESTIONS.len()];
                let sent = Instant::now();
                if ask(&mut c, &http, &base, n, q, &mut latency).await? {
                    handoffs += 1;
                }
                n += 1;
                // The socket's frame limit is 20/s; stay under it.
                tokio::time::sleep_until((sent + Duration::from_millis(60)).into()).await;
            }
            anyhow::Ok((latency, handoffs))
        }));
    }
    // Start the clock once every customer had its warm-up answer.
    drop(warm_tx);
    let warm = Instant::now();
    eprintln!("{mode}: {} customers connected; warming up…", args.customers);
    for _ in 0..args.customers {
        if warm_rx.recv().await.is_none() {
            break; // a customer failed: its task says why below
        }
    }
    let started = Instant::now();
    let _ = go_tx.send(Some(started));
    eprintln!("{mode}: warm-up took {:.1} s; measuring for {} s…", warm.elapsed().as_secs_f64(), args.seconds);
    let (mut latency, mut handoffs) = (Latencies::new(), 0);
    for t in tasks {
        let (l, h) = t.await.context("a customer task")??;
        latency.add(&l);
        handoffs += h;
    }
    let seconds = started.elapsed().as_secs_f64();
    let rss_mib = all.iter().filter_map(|s| rss_mib(s.child.id())).sum();
    Ok(Row { mode, processes: processes.into(), answers: latency.count(), handoffs, seconds, latency, rss_mib })
}
