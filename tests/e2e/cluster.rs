//! The harness of the distributed end-to-end tests ([`crate::distributed`]):
//! the servers they need ([`services`]), a [`Cluster`] of `jamuna` role
//! processes sharing one NATS stream and one MongoDB database, a
//! nats-server of a test's own ([`OwnNats`]), and the clients and probes the
//! tests drive them with (read-model snapshots, projection status, metrics,
//! presence, a resuming WebSocket customer).

use crate::app::*;
use futures::StreamExt;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

pub struct Services {
    pub nats: String,
    pub mongodb: String,
    pub redis: Option<String>,
}

pub fn services(test: &str) -> Option<Services> {
    let (nats, mongodb) = (std::env::var("JAMUNA_TEST_NATS_URL").ok(), std::env::var("JAMUNA_TEST_MONGODB_URL").ok());
    let required = std::env::var("JAMUNA_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
    match (nats, mongodb) {
        (Some(nats), Some(mongodb)) => Some(Services { nats, mongodb, redis: std::env::var("JAMUNA_TEST_REDIS_URL").ok() }),
        _ => {
            assert!(!required, "{test}: JAMUNA_TEST_NATS_URL and JAMUNA_TEST_MONGODB_URL are not set, but JAMUNA_REQUIRE_SERVICES=1");
            eprintln!("NOT RUN: {test} needs NATS and MongoDB/FerretDB (run it under scripts/with-services.sh)");
            None
        }
    }
}

/// One role process; killed when dropped.
pub struct Role {
    pub child: Child,
    /// `http://host:port`: the API (gateway) or health and metrics (others).
    pub base: String,
    _data: tempfile::TempDir,
}

impl Drop for Role {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The configuration every role of one cluster shares.
pub struct Cluster {
    pub env: Vec<(&'static str, String)>,
}

impl Cluster {
    pub fn new(s: &Services) -> Self {
        let id = uuid::Uuid::now_v7().simple().to_string();
        let mut env = vec![
            ("JAMUNA_EVENT_LOG", s.nats.clone()),
            ("JAMUNA_NATS_STREAM", format!("E2E_{id}")),
            ("JAMUNA_NATS_SUBJECT_PREFIX", format!("e{id}")),
            ("JAMUNA_MONGODB_URL", s.mongodb.clone()),
            ("JAMUNA_MONGODB_DATABASE", format!("e2e_{id}")),
            ("JAMUNA_JWT_SECRET", format!("distributed-e2e-secret-{id}")),
            ("JAMUNA_DEMO_ADMIN_EMAIL", ADMIN_EMAIL.into()),
            ("JAMUNA_DEMO_ADMIN_PASSWORD", ADMIN_PASSWORD.into()),
            ("JAMUNA_LISTEN", "127.0.0.1:0".into()),
            ("JAMUNA_LOG", "warn,qdrant_edge=error".into()),
            // A replica killed by a test hands its work over within 2 s.
            ("JAMUNA_LEASE_TTL_MS", "2000".into()),
            // One IP plays many customers (and the Redis counts outlive a test).
            ("JAMUNA_VISITORS_PER_IP_PER_HOUR", "1000000".into()),
        ];
        if let Some(r) = &s.redis {
            env.push(("JAMUNA_REDIS_URL", r.clone()));
        }
        Self { env }
    }

    /// Starts `jamuna <args>` and waits for the address it prints.
    pub fn spawn(&self, args: &[&str]) -> Role {
        let (child, base, _, data) = self.start(args);
        Role { child, base, _data: data }
    }

    fn start(&self, args: &[&str]) -> (Child, String, Option<String>, tempfile::TempDir) {
        let data = tempfile::tempdir().expect("a data dir");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_jamuna"));
        // Each role names its own service in traces (the runner's OTEL_SERVICE_NAME is not theirs).
        cmd.args(args).env("JAMUNA_DATA_DIR", data.path()).env_remove("OTEL_SERVICE_NAME").stdout(Stdio::piped()).stderr(Stdio::inherit());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start a jamuna role");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let (mut base, mut widget_key) = (None, None);
        for line in lines.by_ref() {
            let line = line.expect("a line");
            if let Some(k) = line.split("widget key: ").nth(1) {
                widget_key = Some(k.trim().to_string());
            }
            if let Some(addr) = line.split(" on http://").nth(1) {
                base = Some(format!("http://{}", addr.trim()));
                break;
            }
        }
        std::thread::spawn(move || for _ in lines {});
        let base = base.unwrap_or_else(|| panic!("jamuna {args:?} printed no address (see its stderr above)"));
        (child, base, widget_key, data)
    }

    /// Runs `jamuna replay`: rebuilds every read model from the log.
    pub fn replay(&self) {
        let data = tempfile::tempdir().expect("dir");
        let mut replay = Command::new(env!("CARGO_BIN_EXE_jamuna"));
        replay.args(["replay"]).env("JAMUNA_DATA_DIR", data.path()).stdout(Stdio::null());
        for (k, v) in &self.env {
            replay.env(k, v);
        }
        assert!(replay.status().expect("run jamuna replay").success(), "jamuna replay succeeds");
    }

    pub fn gateway(&self) -> App {
        let (child, base, widget_key, data) = self.start(&["gateway", "--dev"]);
        App { child, base, data, http: reqwest::Client::new(), widget_key: widget_key.expect("a dev gateway prints the widget key") }
    }
}

pub async fn wait_ready(http: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await
            && r.status().is_success()
        {
            return;
        }
        assert!(Instant::now() < deadline, "{base} did not become ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Retries `f` until it gives `Some` (the read models catching up in another process).
pub async fn eventually<T, F: std::future::Future<Output = Option<T>>>(what: &str, mut f: impl FnMut() -> F) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn is_event(f: &Value, conversation: &str) -> bool {
    f["type"] == "event" && f["conversation_id"] == conversation
}

/// Reads event frames of `conversation` until one has type `kind`; returns
/// every event frame of it read on the way, in order.
pub async fn events_until(ws: &mut Ws, conversation: &str, kind: &str, seen: &mut Vec<Value>) -> Value {
    loop {
        let f = next_frame(ws).await;
        if is_event(&f, conversation) {
            seen.push(f.clone());
            if f["event"]["type"] == kind {
                return f;
            }
        }
    }
}

/// What the read models say, through the API: every conversation summary,
/// every user, and the analytics of the last 30 days.
pub async fn read_models_snapshot(gateway: &App, admin: &str) -> Value {
    let (s, conversations) = gateway.get("/api/v1/conversations?view=all&limit=100", Some(admin)).await;
    assert_eq!(s, 200, "{conversations}");
    assert!(conversations["next_cursor"].is_null(), "one page holds them all");
    let (s, users) = gateway.get("/api/v1/users", Some(admin)).await;
    assert_eq!(s, 200, "{users}");
    let (s, analytics) = gateway.get("/api/v1/analytics", Some(admin)).await;
    assert_eq!(s, 200, "{analytics}");
    json!({"conversations": conversations["items"], "users": users, "analytics": analytics})
}

/// Waits until every projection of a projector has caught up with `head`.
pub async fn caught_up(http: &reqwest::Client, projector: &Role, head: u64) {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(300);
    loop {
        let body: Option<Value> = match http.get(format!("{}/status/projections", projector.base)).send().await {
            Ok(r) => r.json().await.ok(),
            Err(_) => None,
        };
        if let Some(all) = body.as_ref().and_then(|b| b["projections"].as_array())
            && all.iter().all(|p| p["state"] == "caught_up" && p["position"].as_u64() >= Some(head))
        {
            eprintln!("the restarted projector caught up with {head} in {:.1} s", started.elapsed().as_secs_f64());
            return;
        }
        assert!(Instant::now() < deadline, "the projector did not catch up within 300 s: {body:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("run kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(s) = child.try_wait().expect("wait") {
            return s;
        }
        assert!(Instant::now() < deadline, "the role did not stop within 20 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Which projections a projector runs now (not standing by), and whether
/// each of them has caught up with `head` (when given).
pub async fn running(http: &reqwest::Client, projector: &Role) -> Option<Vec<(String, bool, u64)>> {
    let body: Value = http.get(format!("{}/status/projections", projector.base)).send().await.ok()?.json().await.ok()?;
    let all = body["projections"].as_array()?;
    Some(
        all.iter()
            .filter(|p| p["state"] != "standby")
            .map(|p| (p["name"].as_str().unwrap_or_default().to_owned(), p["state"] == "caught_up", p["head"].as_u64().unwrap_or(0)))
            .collect(),
    )
}

/// A counter or gauge of a role's `/metrics` (0 when not exported yet).
pub async fn metric(http: &reqwest::Client, role: &Role, name: &str) -> Option<f64> {
    let text = http.get(format!("{}/metrics", role.base)).send().await.ok()?.text().await.ok()?;
    Some(text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok()).unwrap_or(0.0))
}

/// The bot's decisions (answers and handoffs) in a conversation's timeline.
pub async fn decisions(gateway: &App, admin: &str, id: &str) -> usize {
    let (s, detail) = gateway.get(&format!("/api/v1/conversations/{id}"), Some(admin)).await;
    assert_eq!(s, 200, "{detail}");
    detail["events"]
        .as_array()
        .map_or(0, |e| e.iter().filter(|f| matches!(f["event"]["type"].as_str(), Some("BotAnswered" | "HandoffRequested"))).count())
}

/// Starts `n` conversations with one question each; returns their ids.
pub async fn questions(gateway: &App, n: usize, tag: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let (s, body) = gateway.post("/api/v1/auth/visitor", None, json!({"widget_key": gateway.widget_key})).await;
        assert_eq!(s, 201, "{body}");
        let token = body["access_token"].as_str().expect("a token").to_owned();
        let id = gateway.start_conversation(&token).await;
        let (s, body) = gateway
            .post(
                &format!("/api/v1/conversations/{id}/messages"),
                Some(&token),
                json!({"client_message_id": format!("{tag}-{i}"), "text": "My new card has not arrived yet, when will it come?"}),
            )
            .await;
        assert_eq!(s, 201, "{body}");
        ids.push(id);
    }
    ids
}

/// The online user ids of `presence` frames, sorted, until they are `expected`
/// (a frame may repeat the current list; each must come within 15 s).
pub async fn presence(ws: &mut Ws, expected: &[String]) -> Vec<String> {
    loop {
        let f = frame_where(ws, |f| f["type"] == "presence").await;
        let mut ids: Vec<String> = f["online"].as_array().expect("online").iter().map(|v| v.as_str().expect("an id").to_owned()).collect();
        ids.sort();
        if ids == expected {
            return ids;
        }
    }
}

/// Opens `/api/v1/ws` at `base` and authenticates; `None` if the gateway is
/// unreachable or the socket closes before `ready`.
pub async fn try_socket(base: &str, token: &str) -> Option<Ws> {
    use futures::SinkExt;
    let url = format!("{}/api/v1/ws", base.replacen("http", "ws", 1));
    let (mut ws, _) = tokio::time::timeout(Duration::from_secs(5), tokio_tungstenite::connect_async(url)).await.ok()?.ok()?;
    ws.send(Message::Text(json!({"type": "auth", "token": token}).to_string().into())).await.ok()?;
    match read_frame(&mut ws).await {
        Some(f) if f["type"] == "ready" => Some(ws),
        _ => None,
    }
}

/// The next JSON frame within 15 s, or `None` when the socket closed or broke.
pub async fn read_frame(ws: &mut Ws) -> Option<Value> {
    loop {
        match tokio::time::timeout(Duration::from_secs(15), ws.next()).await.ok()?? {
            Ok(Message::Text(t)) => return Some(serde_json::from_str(t.as_str()).expect("JSON")),
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            _ => return None,
        }
    }
}

pub async fn try_send(ws: &mut Ws, frame: Value) -> bool {
    use futures::SinkExt;
    ws.send(Message::Text(frame.to_string().into())).await.is_ok()
}

/// What one resuming WebSocket client did and saw.
#[derive(Debug, Default)]
pub struct ClientRun {
    /// Client message ids acknowledged, and the version each ack named.
    pub acked: Vec<(String, u64)>,
    /// Versions of the conversation's event frames received, in arrival order.
    pub versions: Vec<u64>,
    /// Each client message id as seen in event frames (to count duplicates).
    pub seen_ids: Vec<String>,
    pub reconnects: usize,
    pub resent: usize,
}

/// A customer's client, as the protocol expects one to behave: it sends
/// numbered messages one at a time and waits for each ack; when its socket
/// breaks it connects to the next gateway, resubscribes after the last
/// version it saw and resends the unacknowledged message with the same
/// client message id. Returns once every message is acked and the socket
/// has seen the conversation up to `final_version`.
pub async fn resuming_client(
    gateways: Vec<String>,
    token: String,
    conversation: String,
    c: usize,
    messages: usize,
    final_version: u64,
    acked_total: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> ClientRun {
    let mut run = ClientRun::default();
    let (mut g, mut last_version, mut next, mut pending): (usize, u64, usize, Option<String>) = (0, 0, 0, None);
    let deadline = Instant::now() + Duration::from_secs(120);
    'connect: loop {
        assert!(Instant::now() < deadline, "customer {c}: not done within 120 s: {run:?}");
        let Some(mut ws) = try_socket(&gateways[g], &token).await else {
            g = (g + 1) % gateways.len();
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        if !try_send(&mut ws, json!({"type": "subscribe", "conversation_id": conversation, "after_version": last_version})).await {
            continue;
        }
        loop {
            if pending.is_none() && next < messages {
                pending = Some(format!("k{c}-{next}"));
                next += 1;
                // Under the socket's frame rate limit (20/s).
                tokio::time::sleep(Duration::from_millis(60)).await;
            } else if pending.is_some() {
                // Only right after a reconnect: the message in flight when the socket broke.
                run.resent += 1;
            }
            if let Some(cmid) = &pending {
                let frame =
                    json!({"type": "send", "conversation_id": conversation, "client_message_id": cmid, "text": format!("message {cmid}")});
                if !try_send(&mut ws, frame).await {
                    break;
                }
            } else if last_version >= final_version {
                return run;
            }
            // Until the pending message's ack (or, when none is pending, the next event).
            let mut broken = false;
            loop {
                let Some(f) = read_frame(&mut ws).await else {
                    broken = true;
                    break;
                };
                if is_event(&f, &conversation) {
                    let v = f["version"].as_u64().expect("a version");
                    run.versions.push(v);
                    last_version = last_version.max(v);
                    if let Some(id) = f["event"]["client_message_id"].as_str() {
                        run.seen_ids.push(id.to_owned());
                    }
                    if pending.is_none() {
                        break;
                    }
                } else if f["type"] == "ack" && pending.as_deref() == f["client_message_id"].as_str() {
                    run.acked.push((pending.take().expect("pending"), f["version"].as_u64().expect("a version")));
                    acked_total.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    break;
                } else {
                    assert_ne!(f["type"], "error", "customer {c}: {f}");
                }
            }
            if broken {
                break;
            }
        }
        // The socket broke (its gateway died): the next one.
        run.reconnects += 1;
        g = (g + 1) % gateways.len();
        continue 'connect;
    }
}

/// A nats-server of one test's own (the template `infra/nats/nats.conf`, a
/// free port, a JetStream store in a temporary directory), so the test can
/// kill and restart it without disturbing the others. Killed when dropped.
pub struct OwnNats {
    child: Child,
    config: std::path::PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

impl OwnNats {
    /// `None` when nats-server is not installed.
    pub fn start() -> Option<Self> {
        let dir = tempfile::tempdir().expect("a dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("addr").port();
        let template = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/infra/nats/nats.conf")).expect("infra/nats/nats.conf");
        let text = template.replace("@PORT@", &port.to_string()).replace("@STORE@", &dir.path().join("jetstream").display().to_string());
        let config = dir.path().join("nats.conf");
        std::fs::write(&config, text).expect("write nats.conf");
        let child = Self::spawn(&config, port)?;
        Some(Self { child, config, port, _dir: dir })
    }

    fn spawn(config: &std::path::Path, port: u16) -> Option<Child> {
        let child = Command::new("nats-server").arg("-c").arg(config).stdout(Stdio::null()).stderr(Stdio::null()).spawn().ok()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start on port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(child)
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// `kill -9`, then, after `down`, a new server on the same port and store.
    pub async fn restart(&mut self, down: Duration) {
        self.child.kill().expect("kill -9 nats-server");
        let _ = self.child.wait();
        tokio::time::sleep(down).await;
        self.child = Self::spawn(&self.config, self.port).expect("nats-server starts again");
    }
}

impl Drop for OwnNats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
