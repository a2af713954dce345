//! `jamuna bench ws`: many WebSockets against a real `jamuna serve`.
//!
//! Starts the server as a child process (fresh data directory, dev mode),
//! opens N sockets in pairs — two sockets of one visitor on one conversation
//! (handed to a human first, so the bot stays out of the measurement) — and
//! sends messages at a target rate for a while. Reports connections held,
//! the server's RSS, messages/s, and p50/p99 of send → ack and of send →
//! the push arriving on the pair's other socket.

use super::Latencies;
use anyhow::{Context, Result, bail};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::BufRead;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;

#[derive(clap::Args)]
pub struct Args {
    /// Sockets to open (an even number: they come in pairs).
    #[arg(long, default_value_t = 1000)]
    sockets: usize,
    /// Messages per second, over all sockets.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    /// Seconds of sending.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

/// A `jamuna` child process (killed when dropped) and the address it printed.
pub(super) struct Server {
    pub child: std::process::Child,
    /// The subcommand it runs: `serve`, `gateway`, `projector`, `ai-worker`.
    pub role: String,
    pub base: String,
    /// Printed by dev-mode `serve` and `gateway`.
    pub widget_key: Option<String>,
    /// The demo admin's email and password, printed by dev-mode `serve` and
    /// `gateway` when the demo tenant is created.
    pub admin: Option<(String, String)>,
    _data: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The variables that pick distributed adapters: a child given none of them
/// runs embedded, whatever the benchmark's own environment says.
const ADAPTER_VARS: &[&str] = &["JAMUNA_EVENT_LOG", "JAMUNA_MONGODB_URL", "JAMUNA_REDIS_URL", "JAMUNA_QDRANT_URL", "JAMUNA_CONFIG"];

/// Starts `jamuna <args>` with a fresh data directory and `env`, and waits
/// for the address it prints (`… on http://host:port`).
pub(super) fn spawn(args: &[&str], env: &[(&str, String)]) -> Result<Server> {
    spawn_binary(&std::env::current_exe()?, args, env)
}

/// [`spawn`], of another `jamuna` binary (e.g. an older build, to compare).
pub(super) fn spawn_binary(binary: &std::path::Path, args: &[&str], env: &[(&str, String)]) -> Result<Server> {
    let data = tempfile::tempdir()?;
    let mut cmd = std::process::Command::new(binary);
    cmd.args(args)
        .env("JAMUNA_DATA_DIR", data.path())
        .env("JAMUNA_LISTEN", "127.0.0.1:0")
        .env("JAMUNA_LOG", "warn")
        .stdout(std::process::Stdio::piped());
    for v in ADAPTER_VARS {
        cmd.env_remove(v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().with_context(|| format!("cannot start jamuna {args:?}"))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = std::io::BufReader::new(stdout).lines();
    let (mut base, mut widget_key, mut admin) = (None, None, None);
    for line in lines.by_ref() {
        let line = line?;
        if let Some((email, password)) = line.split("admin login: ").nth(1).and_then(|l| l.split_once(" / ")) {
            admin = Some((email.trim().to_string(), password.trim().to_string()));
        }
        if let Some(k) = line.split("widget key: ").nth(1) {
            widget_key = Some(k.trim().to_string());
        }
        if let Some(a) = line.split(" on http://").nth(1) {
            base = Some(format!("http://{}", a.trim()));
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    match base {
        Some(base) => {
            Ok(Server { child, role: args.first().copied().unwrap_or("jamuna").to_owned(), base, widget_key, admin, _data: data })
        }
        None => bail!("jamuna {args:?} did not start"),
    }
}

fn start_server(model_dir: &std::path::Path) -> Result<Server> {
    spawn(
        &["serve", "--dev"],
        &[
            ("JAMUNA_MODEL_DIR", model_dir.display().to_string()),
            ("JAMUNA_RATE_LIMIT_PER_MINUTE", "100000000".into()),
            // One IP plays every client.
            ("JAMUNA_VISITORS_PER_IP_PER_HOUR", "100000000".into()),
            // A pair of sockets is one visitor; the default (1,000 an hour) stopped the bench at 2,000 sockets.
            ("JAMUNA_VISITORS_PER_WIDGET_KEY_PER_HOUR", "100000000".into()),
            ("JAMUNA_SOCKETS_PER_IP", "100000000".into()),
        ],
    )
}

pub(super) fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

pub(super) type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A socket authenticated by its first frame, subscribed to `conversation` after `after_version`.
pub(super) async fn open(base: &str, token: &str, conversation: &str, after_version: u64) -> Result<Ws> {
    let url = format!("{}/api/v1/ws", base.replacen("http", "ws", 1));
    // No Nagle, as browsers do.
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, None, true).await?;
    ws.send(Message::Text(json!({"type": "auth", "token": token}).to_string().into())).await?;
    let ready = ws.next().await.context("closed")??;
    if !ready.to_text().unwrap_or_default().contains("\"ready\"") {
        bail!("no ready frame: {ready:?}");
    }
    ws.send(Message::Text(
        json!({"type": "subscribe", "conversation_id": conversation, "after_version": after_version}).to_string().into(),
    ))
    .await?;
    Ok(ws)
}

pub async fn run(args: Args, model_dir: &std::path::Path) -> Result<()> {
    if args.sockets < 2 {
        bail!("--sockets must be at least 2");
    }
    let pairs = args.sockets / 2;
    let server = start_server(model_dir)?;
    let widget_key = server.widget_key.clone().context("serve --dev printed no widget key")?;
    let http = reqwest::Client::new();
    let idle_rss = rss_mib(server.child.id());
    eprintln!("opening {} sockets…", pairs * 2);

    // Visitors, conversations handed to a human, and two sockets each.
    let mut senders = Vec::with_capacity(pairs);
    let mut receivers = Vec::with_capacity(pairs);
    for i in 0..pairs {
        let v: Value =
            http.post(format!("{}/api/v1/auth/visitor", server.base)).json(&json!({"widget_key": widget_key})).send().await?.json().await?;
        let token = v["access_token"].as_str().context("no token")?.to_string();
        let c: Value = http
            .post(format!("{}/api/v1/conversations", server.base))
            .bearer_auth(&token)
            .json(&json!({"channel": "web"}))
            .send()
            .await?
            .json()
            .await?;
        let id = c["id"].as_str().context("no conversation")?.to_string();
        http.post(format!("{}/api/v1/conversations/{id}/handoff", server.base)).bearer_auth(&token).json(&json!({})).send().await?;
        // Started and handed off: versions 1 and 2 are history.
        senders.push((id.clone(), open(&server.base, &token, &id, 2).await.with_context(|| format!("socket {}", 2 * i))?));
        receivers.push(open(&server.base, &token, &id, 2).await.with_context(|| format!("socket {}", 2 * i + 1))?);
        if (i + 1) % 1000 == 0 {
            eprintln!("  {} sockets open", 2 * (i + 1));
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let held_rss = rss_mib(server.child.id());

    // Send times by client message id, shared by the ack and push readers.
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let acks = Arc::new(Mutex::new(Latencies::new()));
    let pushes = Arc::new(Mutex::new(Latencies::new()));
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let per_pair = Duration::from_secs_f64(pairs as f64 / args.rate as f64);
    let mut tasks = Vec::new();
    let mut senders_done = Vec::new();
    for (i, ((id, ws), mut rx)) in senders.into_iter().zip(receivers).enumerate() {
        let (mut tx_half, mut rx_half) = ws.split();
        // Acks arrive on the sending socket.
        let (sent_a, acks) = (sent.clone(), acks.clone());
        tasks.push(tokio::spawn(async move {
            while let Some(Ok(m)) = rx_half.next().await {
                let Ok(v) = serde_json::from_str::<Value>(m.to_text().unwrap_or_default()) else { continue };
                if v["type"] == "ack"
                    && let Some(t) = sent_a.lock().await.get(v["client_message_id"].as_str().unwrap_or_default()).copied()
                {
                    acks.lock().await.record(t.elapsed());
                }
            }
        }));
        // Pushes arrive on the pair's other socket.
        let (sent_p, pushes) = (sent.clone(), pushes.clone());
        tasks.push(tokio::spawn(async move {
            while let Some(Ok(m)) = rx.next().await {
                let Ok(v) = serde_json::from_str::<Value>(m.to_text().unwrap_or_default()) else { continue };
                if v["type"] == "event"
                    && let Some(cmid) = v["event"]["client_message_id"].as_str()
                    && let Some(t) = sent_p.lock().await.get(cmid).copied()
                {
                    pushes.lock().await.record(t.elapsed());
                }
            }
        }));
        // Sends at this pair's share of the rate, staggered across pairs.
        let sent_s = sent.clone();
        let start = Instant::now() + per_pair.mul_f64(i as f64 / pairs as f64);
        senders_done.push(tokio::spawn(async move {
            tokio::time::sleep_until(start.into()).await;
            let mut n = 0u64;
            let mut next = Instant::now();
            while Instant::now() < deadline {
                let cmid = format!("b{i}-{n}");
                sent_s.lock().await.insert(cmid.clone(), Instant::now());
                let frame = json!({"type": "send", "conversation_id": id, "client_message_id": cmid, "text": "benchmark message"});
                if tx_half.send(Message::Text(frame.to_string().into())).await.is_err() {
                    break;
                }
                n += 1;
                next += per_pair;
                tokio::time::sleep_until(next.into()).await;
            }
            (n, tx_half)
        }));
    }
    let began = Instant::now();
    let mut total = 0;
    let mut halves = Vec::new();
    for s in senders_done {
        let (n, half) = s.await?;
        total += n;
        halves.push(half);
    }
    let elapsed = began.elapsed().as_secs_f64();
    // Let the last acks and pushes arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let busy_rss = rss_mib(server.child.id());
    let (acks, pushes) = (acks.lock().await, pushes.lock().await);
    println!(
        "jamuna bench ws — {} cores, {} sockets ({} pairs), target {} msg/s for {} s",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        pairs * 2,
        pairs,
        args.rate,
        args.seconds
    );
    let mib = |v: Option<f64>| v.map_or_else(|| "n/a".into(), |v| format!("{v:.0} MiB"));
    println!("server RSS: idle {}, holding the sockets {}, after sending {}", mib(idle_rss), mib(held_rss), mib(busy_rss));
    println!("messages sent: {total} in {elapsed:.1} s = {:.0} msg/s", total as f64 / elapsed);
    println!("acks received: {} — send → ack p50 {:.2} ms, p99 {:.2} ms", acks.count(), acks.ms(0.5), acks.ms(0.99));
    println!(
        "pushes received: {} — send → push on the other socket p50 {:.2} ms, p99 {:.2} ms",
        pushes.count(),
        pushes.ms(0.5),
        pushes.ms(0.99)
    );
    for t in tasks {
        t.abort();
    }
    drop(halves);
    Ok(())
}
