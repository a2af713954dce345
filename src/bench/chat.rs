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
//!
//! It runs at several loads in turn (`--customers 1,16,50,200`, the same
//! processes for every level, new customers for each), and reports for each
//! the CPU the server processes used over the measured seconds: their
//! `utime + stime` from `/proc/<pid>/stat` divided by the wall time, in cores.
//! A server that is waiting (on a timer, a lock, a round trip) instead of
//! computing shows as idle cores while latency grows. The benchmark's own
//! CPU (the customers' side, in this process) is reported beside it: both
//! share the machine.
//!
//! With `--examples FILE` (a `text,category` CSV such as BANKING77's training
//! split) the embedded server's demo tenant first gets those examples, one
//! answer per intent and a model trained on them (as `bench answer` does),
//! and the customers ask the examples' texts: the setup. The
//! distributed mode is taught the same over its API, as an admin would
//! ([`train_over_api`]: the examples imported, a model asked for and trained
//! by an AI worker), and measured once every worker has gone idle (each
//! replica trains its own copy of the model).

use super::Latencies;
use super::ws::{Server, Ws, open, rss_mib, spawn, spawn_binary};
use anyhow::{Context, Result, bail};
use futures::{SinkExt, StreamExt};
use jamuna_commands::log::nats::{NatsConfig, NatsLog};
use jamuna_projections::mongo::MongoReadDb;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

#[derive(clap::Args)]
pub struct Args {
    /// Customers asking at once (one socket and one question in flight
    /// each), one level after another: e.g. `--customers 1,16,50,200`.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 16, 50, 200])]
    customers: Vec<usize>,
    /// Seconds of asking per level and mode (after one warm-up question per customer).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Labelled examples (`text,category` CSV, e.g. BANKING77's train.csv):
    /// the embedded server's demo tenant is trained on them first (one
    /// answer per intent) and the customers ask their texts.
    #[arg(long)]
    examples: Option<PathBuf>,
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
    #[arg(long, conflicts_with = "distributed_only")]
    embedded_only: bool,
    /// Only the distributed mode.
    #[arg(long)]
    distributed_only: bool,
    /// Keep the trained data directory of `--examples` here: the first run
    /// trains into it, later runs start each server from a fresh copy of it
    /// (so every run begins from the same log) instead of training again.
    #[arg(long)]
    trained_cache: Option<PathBuf>,
    /// The `jamuna` binary to run as the embedded server (default: this one),
    /// e.g. an older build, to compare two builds under the same load.
    #[arg(long)]
    server_binary: Option<PathBuf>,
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

/// One mode's figures at one load.
struct Row {
    mode: &'static str,
    processes: String,
    customers: usize,
    answers: u64,
    handoffs: u64,
    seconds: f64,
    latency: Latencies,
    rss_mib: f64,
    /// The server processes' CPU over the measured seconds, in cores.
    server_cores: f64,
    /// This process's (the customers') CPU over the same seconds, in cores.
    client_cores: f64,
    /// Each server process's CPU over the measured seconds, in cores, by role.
    role_cores: Vec<(String, f64)>,
}

pub async fn run(args: Args, config: &crate::config::Config) -> Result<()> {
    let model_dir = &config.model_dir;
    let nats_url = args.nats_url.clone().or_else(|| config.event_log.url.clone());
    let (mongodb_url, redis_url) = (config.mongodb.url.clone(), config.redis.url.clone());
    if args.customers.is_empty() || args.customers.contains(&0) || args.seconds == 0 || args.ai_workers == 0 {
        bail!("--customers (each level), --seconds and --ai-workers must be at least 1");
    }
    if args.ai_workers > 1 && redis_url.is_none() {
        bail!("--ai-workers {} needs --redis-url (JAMUNA_REDIS_URL): replicas split the work by leases in Redis", args.ai_workers);
    }
    let model = ("JAMUNA_MODEL_DIR", model_dir.display().to_string());
    let unlimited = ("JAMUNA_RATE_LIMIT_PER_MINUTE", "100000000".to_string());
    // One IP plays every customer.
    let visitors = ("JAMUNA_VISITORS_PER_IP_PER_HOUR", "100000000".to_string());
    let per_key = ("JAMUNA_VISITORS_PER_WIDGET_KEY_PER_HOUR", "100000000".to_string());
    let sockets = ("JAMUNA_SOCKETS_PER_IP", "100000".to_string());
    let mut rows = Vec::new();

    // The trained tenant's data directory (kept until the server stops) and the questions asked.
    let (trained, questions) = match &args.examples {
        Some(path) => {
            let (dir, texts) = trained_data_dir(config, path, args.trained_cache.as_deref()).await?;
            (Some(dir), texts)
        }
        None => (None, QUESTIONS.iter().map(|q| q.to_string()).collect()),
    };
    let questions: Arc<[String]> = questions.into();

    if !args.distributed_only {
        eprintln!("embedded: starting jamuna serve --dev…");
        let mut env = vec![model.clone(), unlimited.clone(), visitors.clone(), per_key.clone(), sockets.clone()];
        if let Some(dir) = &trained {
            env.push(("JAMUNA_DATA_DIR", dir.path().display().to_string()));
        }
        let serve = match &args.server_binary {
            Some(binary) => spawn_binary(binary, &["serve", "--dev"], &env)?,
            None => spawn(&["serve", "--dev"], &env)?,
        };
        for &customers in &args.customers {
            rows.push(measure("embedded", "serve", &serve, std::slice::from_ref(&serve), customers, &questions, &args).await?);
        }
        drop(serve);
    }
    drop(trained);

    let distributed = match (&nats_url, &mongodb_url) {
        _ if args.embedded_only => None,
        _ if args.distributed_only && (nats_url.is_none() || mongodb_url.is_none()) => {
            bail!("--distributed-only needs --nats-url and --mongodb-url (or JAMUNA_EVENT_LOG=nats://… and JAMUNA_MONGODB_URL)")
        }
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
                per_key,
                sockets,
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
            if let Some(path) = &args.examples {
                let workers: Vec<&Server> = roles[2..].iter().collect();
                train_over_api(&roles[0], &workers, path).await.context("distributed: teaching the demo tenant")?;
            }
            let workers = if workers == 1 { "ai-worker".to_owned() } else { format!("{workers} ai-workers") };
            let servers = if redis_url.is_some() { "NATS, MongoDB, Redis" } else { "NATS, MongoDB" };
            let processes = format!("gateway+projector+{workers}; {servers}");
            let mut measured = Vec::new();
            for &customers in &args.customers {
                let row = measure("distributed", &processes, &roles[0], &roles, customers, &questions, &args).await;
                let failed = row.is_err();
                measured.push(row);
                if failed {
                    break;
                }
            }
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
            for row in measured {
                rows.push(row?);
            }
        }
        None => eprintln!("distributed: not run (give --nats-url and --mongodb-url, or JAMUNA_EVENT_LOG=nats://… and JAMUNA_MONGODB_URL)"),
    }

    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let tenant = match &args.examples {
        Some(p) => format!("the demo tenant trained on {}", p.display()),
        None => "the demo knowledge base".to_owned(),
    };
    println!("jamuna bench chat — {cores} cores, customers asking the bot in a closed loop, {} s per level; {tenant}", args.seconds);
    println!("latency: the customer's send frame → the bot's answer pushed back on the customer's socket");
    println!("CPU: the server processes' utime+stime over the measured seconds, in cores (client: this benchmark's own)");
    println!(
        "{:<12} {:>9} {:>8} {:>9} {:>8} {:>8} {:>8} {:>12} {:>12} {:>8}  processes",
        "mode", "customers", "answers", "answers/s", "p50 ms", "p99 ms", "handoffs", "server cores", "client cores", "RSS MiB"
    );
    for r in &rows {
        println!(
            "{:<12} {:>9} {:>8} {:>9.1} {:>8.1} {:>8.1} {:>8} {:>12.2} {:>12.2} {:>8.0}  {}",
            r.mode,
            r.customers,
            r.answers,
            r.answers as f64 / r.seconds,
            r.latency.ms(0.5),
            r.latency.ms(0.99),
            r.handoffs,
            r.server_cores,
            r.client_cores,
            r.rss_mib,
            r.processes
        );
    }
    println!("CPU per answer, by process (the per-role cost a capacity plan starts from):");
    for r in rows.iter().filter(|r| r.answers > 0) {
        let per: Vec<String> =
            r.role_cores.iter().map(|(role, cores)| format!("{role} {:.2} ms", cores * r.seconds * 1000.0 / r.answers as f64)).collect();
        println!("  {:<12} {:>4} customers: {}", r.mode, r.customers, per.join(", "));
    }
    for r in &rows {
        println!(
            "{}",
            json!({"mode": r.mode, "customers": r.customers, "answers": r.answers, "answers_per_s": r.answers as f64 / r.seconds,
                "p50_ms": r.latency.ms(0.5), "p99_ms": r.latency.ms(0.99), "handoffs": r.handoffs,
                "server_cores": r.server_cores, "client_cores": r.client_cores, "rss_mib": r.rss_mib,
                "role_cores": r.role_cores.iter().map(|(role, c)| json!({"role": role, "cores": c})).collect::<Vec<_>>()})
        );
    }
    Ok(())
}

/// A data directory whose demo tenant is trained on the examples in `path`
/// (see [`super::answer::train_tenant`]), and the examples' texts to ask.
/// With a `cache` that a previous run filled, a fresh copy of it.
async fn trained_data_dir(
    config: &crate::config::Config,
    path: &std::path::Path,
    cache: Option<&std::path::Path>,
) -> Result<(tempfile::TempDir, Vec<String>)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let examples = jamuna_domain::knowledge_base::import::parse_examples(&text).context("the examples were not read")?;
    // Spread over the intents (the file is sorted by intent), always the same.
    let texts = (0..examples.len().min(2000)).map(|i| examples[(i * 7919) % examples.len()].text.clone()).collect();
    let dir = tempfile::tempdir()?;
    let filled = cache.map(|c| c.join(TRAINED_MARK)).filter(|m| m.exists());
    if let (Some(cache), Some(_)) = (cache, filled) {
        eprintln!("embedded: the trained tenant comes from {}", cache.display());
        copy_dir(cache, dir.path())?;
        return Ok((dir, texts));
    }
    let mut config = config.clone();
    config.data_dir = dir.path().to_path_buf();
    config.event_log.url = None;
    config.mongodb.url = None;
    config.redis.url = None;
    config.qdrant.url = None;
    {
        let write = crate::ports::write_side(&config).await?;
        crate::roles::gateway::seed_demo(&config, &write.commands).await.context("cannot seed the demo tenant")?;
        let tenant = jamuna_domain::TenantId::parse("demo")?;
        super::answer::train_tenant(&config, &write.commands, &tenant, &examples).await?;
    }
    if let Some(cache) = cache {
        std::fs::create_dir_all(cache)?;
        copy_dir(dir.path(), cache)?;
        std::fs::write(cache.join(TRAINED_MARK), path.display().to_string())?;
    }
    Ok((dir, texts))
}

/// Rows per import: a part of BANKING77's CSV stays under the gateway's
/// 256 KiB body limit.
const IMPORT_ROWS: usize = 1500;

/// One CSV field, quoted.
fn csv_field(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Teaches the demo tenant of a distributed deployment the examples in
/// `path` over its API, as an admin would: the examples imported in parts
/// (`POST /api/v1/kb/import`, text/csv), one answer per intent, a model asked
/// for (`POST /api/v1/kb/train`); returns once `GET /api/v1/kb/model` says
/// `trained` and every AI worker has gone idle (a replica without the model
/// in its own data directory trains a copy when it reads the recording).
async fn train_over_api(gateway: &Server, workers: &[&Server], path: &std::path::Path) -> Result<()> {
    let http = reqwest::Client::new();
    let base = &gateway.base;
    for s in std::iter::once(gateway).chain(workers.iter().copied()) {
        wait_ready(&http, &s.base).await?;
    }
    let (email, password) = gateway.admin.clone().context("the dev gateway printed no admin login")?;
    // The gateway reads the admin from the projector's read model: retry until it is there.
    let deadline = Instant::now() + Duration::from_secs(60);
    let token = loop {
        let login = json!({"tenant": "demo", "email": email, "password": password});
        let r = http.post(format!("{base}/api/v1/auth/login")).json(&login).send().await?;
        if r.status().is_success() {
            let v: Value = r.json().await?;
            break v["access_token"].as_str().context("no token")?.to_string();
        }
        if Instant::now() > deadline || r.status().as_u16() == 400 {
            bail!("the demo admin cannot sign in: {} {}", r.status(), r.text().await.unwrap_or_default());
        }
        // 401 until the projector has the admin; sign-in attempts are rate limited (429: Retry-After).
        let wait = r.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse().ok()).unwrap_or(1);
        tokio::time::sleep(Duration::from_secs(wait)).await;
    };
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let examples = jamuna_domain::knowledge_base::import::parse_examples(&text).context("the examples were not read")?;
    let intents: std::collections::BTreeSet<&str> = examples.iter().map(|e| e.intent.as_str()).collect();
    let mut parts: Vec<String> = examples
        .chunks(IMPORT_ROWS)
        .map(|part| {
            let rows: String = part.iter().map(|e| format!("{},{}\n", csv_field(&e.text), csv_field(&e.intent))).collect();
            format!("text,category\n{rows}")
        })
        .collect();
    let answers: String = intents
        .iter()
        .map(|i| format!("{},{}\n", csv_field(i), csv_field(&format!("Here is how we help with {}.", i.replace('_', " ")))))
        .collect();
    parts.push(format!("intent,answer\n{answers}"));
    eprintln!("distributed: importing {} examples of {} intents over the API…", examples.len(), intents.len());
    for part in parts {
        let r =
            http.post(format!("{base}/api/v1/kb/import")).bearer_auth(&token).header("content-type", "text/csv").body(part).send().await?;
        if !r.status().is_success() {
            bail!("importing examples: {} {}", r.status(), r.text().await.unwrap_or_default());
        }
    }
    let r = http.post(format!("{base}/api/v1/kb/train")).bearer_auth(&token).send().await?;
    if !r.status().is_success() {
        bail!("asking for a model: {} {}", r.status(), r.text().await.unwrap_or_default());
    }
    let started = Instant::now();
    eprintln!("distributed: an AI worker is training the model…");
    loop {
        let v: Value = http.get(format!("{base}/api/v1/kb/model")).bearer_auth(&token).send().await?.json().await?;
        if v["state"] == "trained" {
            break;
        }
        if started.elapsed() > Duration::from_secs(1800) {
            bail!("no model within 30 minutes: {v}");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    eprintln!("distributed: trained in {:.0} s; waiting for every AI worker to go idle…", started.elapsed().as_secs_f64());
    let busy = || workers.iter().filter_map(|s| cpu_seconds(s.child.id())).sum::<f64>();
    loop {
        let before = busy();
        tokio::time::sleep(Duration::from_secs(3)).await;
        if (busy() - before) / 3.0 < 0.1 {
            break;
        }
        if started.elapsed() > Duration::from_secs(1800) {
            bail!("the AI workers are still busy 30 minutes after the model was asked for");
        }
    }
    eprintln!("distributed: ready after {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Written last into a `--trained-cache`: its copy is complete.
const TRAINED_MARK: &str = "bench-trained";

/// Copies the files under `from` into `to` (which exists), folders included.
fn copy_dir(from: &std::path::Path, to: &std::path::Path) -> Result<()> {
    for entry in std::fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            std::fs::create_dir_all(&target)?;
            copy_dir(&entry.path(), &target)?;
        } else if entry.file_name() != TRAINED_MARK {
            std::fs::copy(entry.path(), &target).with_context(|| format!("cannot copy {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// The server's /metrics, if it answers.
async fn metrics_text(http: &reqwest::Client, base: &str) -> Option<String> {
    http.get(format!("{base}/metrics")).send().await.ok()?.text().await.ok()
}

/// The `_sum` and `_count` of every histogram and summary in a Prometheus
/// text exposition, by series (name without the suffix, and labels).
fn sums_and_counts(text: &str) -> std::collections::BTreeMap<String, (f64, f64)> {
    let mut series = std::collections::BTreeMap::<String, (f64, f64)>::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((key, value)) = line.rsplit_once(' ') else { continue };
        let Ok(value) = value.parse::<f64>() else { continue };
        let (name, labels) = key.split_once('{').map_or((key, String::new()), |(n, l)| (n, format!("{{{l}")));
        if let Some(base) = name.strip_suffix("_sum") {
            series.entry(format!("{base}{labels}")).or_default().0 = value;
        } else if let Some(base) = name.strip_suffix("_count") {
            series.entry(format!("{base}{labels}")).or_default().1 = value;
        }
    }
    series
}

/// The server's own account of a level: for each of its timing series
/// (worker stages, waits, batch sizes, the gateway's append), the mean over
/// the level and how many observations, from /metrics before and after.
fn where_time_went(before: &str, after: &str) -> Vec<String> {
    let before = sums_and_counts(before);
    sums_and_counts(after)
        .into_iter()
        .filter(|(k, _)| {
            k.starts_with("jamuna_ai_worker_")
                || k.starts_with("jamuna_gateway_append")
                || k.starts_with("jamuna_bot_answer")
                || k.starts_with("jamuna_ws_push")
        })
        .filter_map(|(k, (sum, count))| {
            let (s0, c0) = before.get(&k).copied().unwrap_or_default();
            let n = count - c0;
            (n > 0.0).then(|| {
                let mean = (sum - s0) / n;
                if k.contains("_seconds") {
                    format!("{k}: mean {:.2} ms over {n}", mean * 1000.0)
                } else {
                    format!("{k}: mean {mean:.1} over {n}")
                }
            })
        })
        .collect()
}

/// CPU time (user + system) a process used so far, in seconds: fields 14
/// and 15 of `/proc/<pid>/stat`, in clock ticks of 1/100 s (Linux's
/// `USER_HZ` as userspace sees it).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let (utime, stime): (f64, f64) = (fields.get(11)?.parse().ok()?, fields.get(12)?.parse().ok()?);
    Some((utime + stime) / 100.0)
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
        let Ok(m) = tokio::time::timeout(Duration::from_secs(30), c.ws.next()).await else {
            // Say whether the answer was never made or made and not pushed.
            let url = format!("{base}/api/v1/conversations/{}", c.conversation);
            let detail: Value = http.get(url).bearer_auth(&c.token).send().await?.json().await.unwrap_or_default();
            let events: Vec<String> = detail["events"]
                .as_array()
                .map(|es| es.iter().rev().take(6).map(|e| format!("{} v{}", e["event"]["type"], e["version"])).collect())
                .unwrap_or_default();
            bail!("no reply within 30 s to version {asked_at:?} of {}; its last events, newest first: {events:?}", c.conversation);
        };
        let m = m.context("socket closed")??;
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

/// Drives `customers` against `gateway` for `seconds`; `all` are the
/// processes whose RSS and CPU are summed.
async fn measure(
    mode: &'static str,
    processes: &str,
    gateway: &Server,
    all: &[Server],
    customers: usize,
    questions: &Arc<[String]>,
    args: &Args,
) -> Result<Row> {
    let http = reqwest::Client::new();
    for s in all {
        wait_ready(&http, &s.base).await?;
    }
    let base = gateway.base.clone();
    let widget_key = gateway.widget_key.clone().context("the dev gateway printed no widget key")?;
    let mut tasks = Vec::new();
    let deadline_after_warmup = Duration::from_secs(args.seconds);
    let (go_tx, go_rx) = tokio::sync::watch::channel(None::<Instant>);
    let (warm_tx, mut warm_rx) = tokio::sync::mpsc::channel::<()>(customers);
    for i in 0..customers {
        let mut c = customer(&http, &base, &widget_key).await.with_context(|| format!("{mode}: customer {i}"))?;
        let (http, base, mut go, warmed, questions) = (http.clone(), base.clone(), go_rx.clone(), warm_tx.clone(), questions.clone());
        tasks.push(tokio::spawn(async move {
            // Warm-up: one question, not timed (the first answer loads caches).
            let mut ignored = Latencies::new();
            ask(&mut c, &http, &base, 0, &questions[i % questions.len()], &mut ignored).await?;
            let _ = warmed.send(()).await;
            drop(warmed);
            let _ = go.wait_for(Option::is_some).await;
            let until = go.borrow().map(|t| t + deadline_after_warmup).context("no start")?;
            let (mut latency, mut handoffs, mut n) = (Latencies::new(), 0u64, 1u64);
            while Instant::now() < until {
                let q = &questions[(i * 31 + n as usize) % questions.len()];
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
    eprintln!("{mode}: {customers} customers connected; warming up…");
    for _ in 0..customers {
        if warm_rx.recv().await.is_none() {
            break; // a customer failed: its task says why below
        }
    }
    let mut metrics_before = Vec::new();
    for s in all {
        metrics_before.push(metrics_text(&http, &s.base).await);
    }
    let each_cpu = || all.iter().map(|s| cpu_seconds(s.child.id()).unwrap_or(0.0)).collect::<Vec<f64>>();
    let (each_before, client_before) = (each_cpu(), cpu_seconds(std::process::id()).unwrap_or(0.0));
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
    let role_cores: Vec<(String, f64)> = all
        .iter()
        .zip(each_cpu().iter().zip(&each_before))
        .map(|(s, (after, before))| (s.role.clone(), (after - before) / seconds))
        .collect();
    let server_cores = role_cores.iter().map(|(_, c)| c).sum();
    let client_cores = (cpu_seconds(std::process::id()).unwrap_or(0.0) - client_before) / seconds;
    let rss_mib = all.iter().filter_map(|s| rss_mib(s.child.id())).sum();
    for (s, before) in all.iter().zip(metrics_before) {
        if let (Some(before), Some(after)) = (before, metrics_text(&http, &s.base).await) {
            eprintln!("{mode}, {customers} customers, where the time went ({}'s /metrics):", s.role);
            for line in where_time_went(&before, &after) {
                eprintln!("  {line}");
            }
        }
    }
    Ok(Row {
        mode,
        processes: processes.into(),
        customers,
        answers: latency.count(),
        handoffs,
        seconds,
        latency,
        rss_mib,
        server_cores,
        client_cores,
        role_cores,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_done_shows_as_cpu_time() {
        let before = cpu_seconds(std::process::id()).expect("/proc/self/stat reads");
        let (mut x, give_up) = (0u64, Instant::now() + Duration::from_secs(60));
        let after = loop {
            for _ in 0..1_000_000 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
            let now = cpu_seconds(std::process::id()).expect("/proc/self/stat reads");
            if now > before {
                break now;
            }
            assert!(Instant::now() < give_up, "a minute of spinning never showed as CPU time ({before} s)");
        };
        assert!(after - before < 60.0, "{before} → {after}");
    }

    #[test]
    fn a_levels_means_come_from_the_sums_and_counts_it_added() {
        let before = "# TYPE jamuna_ai_worker_stage_seconds histogram\n\
            jamuna_ai_worker_stage_seconds_bucket{stage=\"embed\",le=\"0.01\"} 1\n\
            jamuna_ai_worker_stage_seconds_sum{stage=\"embed\"} 0.5\n\
            jamuna_ai_worker_stage_seconds_count{stage=\"embed\"} 10\n\
            jamuna_ai_worker_batch_messages_sum 10\njamuna_ai_worker_batch_messages_count 10\n\
            jamuna_other_seconds_sum 1\njamuna_other_seconds_count 1\n";
        let after = "jamuna_ai_worker_stage_seconds_sum{stage=\"embed\"} 1.5\n\
            jamuna_ai_worker_stage_seconds_count{stage=\"embed\"} 30\n\
            jamuna_ai_worker_batch_messages_sum 210\njamuna_ai_worker_batch_messages_count 20\n\
            jamuna_ai_worker_wait_seconds_sum 0\njamuna_ai_worker_wait_seconds_count 0\n\
            jamuna_other_seconds_sum 9\njamuna_other_seconds_count 2\n";
        assert_eq!(
            where_time_went(before, after),
            vec![
                "jamuna_ai_worker_batch_messages: mean 20.0 over 10".to_owned(),
                "jamuna_ai_worker_stage_seconds{stage=\"embed\"}: mean 50.00 ms over 20".to_owned(),
            ]
        );
    }

    #[test]
    fn a_trained_cache_is_copied_whole() {
        let (from, to) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        std::fs::create_dir_all(from.path().join("vectors/seg")).unwrap();
        std::fs::write(from.path().join("events.db"), "log").unwrap();
        std::fs::write(from.path().join("vectors/seg/0"), "v").unwrap();
        std::fs::write(from.path().join(TRAINED_MARK), "x").unwrap();
        copy_dir(from.path(), to.path()).unwrap();
        assert_eq!(std::fs::read_to_string(to.path().join("events.db")).unwrap(), "log");
        assert_eq!(std::fs::read_to_string(to.path().join("vectors/seg/0")).unwrap(), "v");
        assert!(!to.path().join(TRAINED_MARK).exists(), "the mark is the cache's own");
    }

    #[test]
    fn no_process_no_cpu_time() {
        assert_eq!(cpu_seconds(u32::MAX), None);
    }
}
