//! The distributed mode end to end: NATS JetStream for the log, FerretDB
//! (MongoDB protocol) for the read models, keys, refresh tokens and the
//! worker's checkpoint; two `jamuna gateway` processes, one `jamuna
//! projector` and one `jamuna ai-worker`, each a child process with its own
//! data directory. Every test gets a stream and a database of its own.
//!
//! The servers come from `scripts/with-services.sh` (JAMUNA_TEST_NATS_URL,
//! JAMUNA_TEST_MONGODB_URL, and JAMUNA_TEST_REDIS_URL when it exports one).
//! Without them the tests say so and do nothing, unless
//! JAMUNA_REQUIRE_SERVICES=1, where they fail.

use crate::app::*;
use futures::StreamExt;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

struct Services {
    nats: String,
    mongodb: String,
    redis: Option<String>,
}

fn services(test: &str) -> Option<Services> {
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
struct Cluster {
    env: Vec<(&'static str, String)>,
}

impl Cluster {
    fn new(s: &Services) -> Self {
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
    fn spawn(&self, args: &[&str]) -> Role {
        let (child, base, _, data) = self.start(args);
        Role { child, base, _data: data }
    }

    fn start(&self, args: &[&str]) -> (Child, String, Option<String>, tempfile::TempDir) {
        let data = tempfile::tempdir().expect("a data dir");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_jamuna"));
        cmd.args(args).env("JAMUNA_DATA_DIR", data.path()).stdout(Stdio::piped()).stderr(Stdio::inherit());
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
    fn replay(&self) {
        let data = tempfile::tempdir().expect("dir");
        let mut replay = Command::new(env!("CARGO_BIN_EXE_jamuna"));
        replay.args(["replay"]).env("JAMUNA_DATA_DIR", data.path()).stdout(Stdio::null());
        for (k, v) in &self.env {
            replay.env(k, v);
        }
        assert!(replay.status().expect("run jamuna replay").success(), "jamuna replay succeeds");
    }

    fn gateway(&self) -> App {
        let (child, base, widget_key, data) = self.start(&["gateway", "--dev"]);
        App { child, base, data, http: reqwest::Client::new(), widget_key: widget_key.expect("a dev gateway prints the widget key") }
    }
}

async fn wait_ready(http: &reqwest::Client, base: &str) {
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
async fn eventually<T, F: std::future::Future<Output = Option<T>>>(what: &str, mut f: impl FnMut() -> F) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn is_event(f: &Value, conversation: &str) -> bool {
    f["type"] == "event" && f["conversation_id"] == conversation
}

/// Reads event frames of `conversation` until one has type `kind`; returns
/// every event frame of it read on the way, in order.
async fn events_until(ws: &mut Ws, conversation: &str, kind: &str, seen: &mut Vec<Value>) -> Value {
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

#[tokio::test]
async fn a_customer_on_gateway_a_and_an_agent_on_gateway_b_hold_a_conversation_with_the_bot_and_a_handoff() {
    let Some(s) = services("the distributed conversation test") else { return };
    let cluster = Cluster::new(&s);
    let projector = cluster.spawn(&["projector"]);
    let mut worker = cluster.spawn(&["ai-worker"]);
    let a = cluster.gateway();
    let b = cluster.gateway();
    for base in [&projector.base, &worker.base, &a.base, &b.base] {
        wait_ready(&a.http, base).await;
    }
    assert_eq!(a.widget_key, b.widget_key, "the second gateway found the demo tenant in the log");
    // Every role serves its metrics, the process's own among them.
    for base in [&projector.base, &worker.base, &a.base] {
        let text = a.http.get(format!("{base}/metrics")).send().await.expect("metrics").text().await.expect("text");
        for name in ["process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds"] {
            assert!(text.contains(name), "{base}/metrics lacks {name}");
        }
    }

    // The agent signs in at B once the projector has the admin in MongoDB.
    let admin = eventually("the admin can sign in at gateway B", || async {
        let (s, body) =
            b.post("/api/v1/auth/login", None, json!({"tenant": "demo", "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})).await;
        (s == 200).then(|| body["access_token"].as_str().map(str::to_owned)).flatten()
    })
    .await;
    let mut agent = b.socket(&admin).await;
    send(&mut agent, json!({"type": "subscribe_inbox"})).await;

    // The customer, a visitor of the widget, at A.
    let visitor = eventually("a visitor token at gateway A", || async {
        let (s, body) = a.post("/api/v1/auth/visitor", None, json!({"widget_key": a.widget_key})).await;
        (s == 201).then(|| body["access_token"].as_str().map(str::to_owned)).flatten()
    })
    .await;
    let id = a.start_conversation(&visitor).await;
    let mut customer = a.socket(&visitor).await;
    send(&mut customer, json!({"type": "subscribe", "conversation_id": id, "after_version": 0})).await;
    let (mut at_a, mut at_b) = (Vec::new(), Vec::new());

    // A question the knowledge base answers.
    send(&mut customer, json!({"type": "send", "conversation_id": id, "client_message_id": "d-1", "text": "My new card has not arrived yet, when will it come?"})).await;
    let answer = events_until(&mut customer, &id, "BotAnswered", &mut at_a).await;
    assert_eq!(answer["event"]["sources"][0]["article_id"], "card-delivery", "{answer}");
    events_until(&mut agent, &id, "BotAnswered", &mut at_b).await;

    // Asking for a person: the bot hands off, and the handoff reaches B's inbox live.
    send(&mut customer, json!({"type": "send", "conversation_id": id, "client_message_id": "d-2", "text": "can I talk to a human please"}))
        .await;
    let handoff = events_until(&mut agent, &id, "HandoffRequested", &mut at_b).await;
    assert_eq!(handoff["conversation_id"], id);
    events_until(&mut customer, &id, "HandoffRequested", &mut at_a).await;

    // The agent takes it at B and replies over the socket; the customer at A sees it.
    let (s, body) = b.post(&format!("/api/v1/conversations/{id}/assign"), Some(&admin), json!({})).await;
    assert_eq!(s, 200, "{body}");
    send(&mut agent, json!({"type": "send", "conversation_id": id, "client_message_id": "agent-1", "text": "Hello, I am looking at your card order now."})).await;
    let reply = loop {
        let f = events_until(&mut customer, &id, "MessagePosted", &mut at_a).await;
        if f["event"]["author"]["role"] == "agent" || f["event"]["text"] == "Hello, I am looking at your card order now." {
            break f;
        }
    };
    assert_eq!(reply["event"]["text"], "Hello, I am looking at your card order now.");
    let last = reply["version"].as_u64().expect("a version");
    while at_b.last().and_then(|f| f["version"].as_u64()) != Some(last) {
        let f = next_frame(&mut agent).await;
        if is_event(&f, &id) {
            at_b.push(f);
        }
    }

    // Every event of the conversation reached both sockets, once each, in order.
    let versions = |frames: &[Value]| frames.iter().map(|f| f["version"].as_u64().expect("version")).collect::<Vec<_>>();
    let all: Vec<u64> = (1..=last).collect();
    assert_eq!(versions(&at_a), all, "customer's socket at A");
    assert_eq!(versions(&at_b), all, "agent's socket at B");
    let kinds = |frames: &[Value]| frames.iter().map(|f| f["event"]["type"].as_str().unwrap_or_default().to_owned()).collect::<Vec<_>>();
    assert_eq!(kinds(&at_a), kinds(&at_b));
    for k in ["ConversationStarted", "MessagePosted", "BotAnswered", "HandoffRequested", "AgentAssigned"] {
        assert!(kinds(&at_a).iter().any(|x| x == k), "{k} missing from {:?}", kinds(&at_a));
    }

    // The projector's read models, read through the other gateway, reach the same version.
    let summary = eventually("the conversation's summary at gateway A", || async {
        let (s, page) = a.get("/api/v1/conversations?view=all", Some(&admin)).await;
        assert_eq!(s, 200, "{page}");
        page["items"].as_array().and_then(|items| items.iter().find(|c| c["id"] == id && c["version"].as_u64() == Some(last)).cloned())
    })
    .await;
    assert_eq!(summary["human_involved"], true, "{summary}");
    // Two from the customer, the bot's answer, the agent's reply.
    assert_eq!(summary["message_count"], 4, "{summary}");
    assert_eq!(summary["last_message"]["text"], "Hello, I am looking at your card order now.", "{summary}");

    // SIGTERM: the AI worker stores its checkpoint and exits cleanly.
    assert!(terminate(&mut worker.child).success(), "the ai-worker exits cleanly on SIGTERM");
}

/// What the read models say, through the API: every conversation summary,
/// every user, and the analytics of the last 30 days.
async fn read_models_snapshot(gateway: &App, admin: &str) -> Value {
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
async fn caught_up(http: &reqwest::Client, projector: &Role, head: u64) {
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

fn terminate(child: &mut Child) -> std::process::ExitStatus {
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

#[tokio::test]
async fn a_projector_killed_mid_burst_and_restarted_ends_equal_to_a_replay() {
    const CUSTOMERS: usize = 20;
    const PER_CUSTOMER: usize = 250;
    const KILL_AFTER: usize = 1_500;
    let Some(s) = services("the projector kill -9 test") else { return };
    let mut cluster = Cluster::new(&s);
    cluster.env.push(("JAMUNA_RATE_LIMIT_PER_MINUTE", "1000000".into()));
    let mut projector = cluster.spawn(&["projector"]);
    let a = cluster.gateway();
    wait_ready(&a.http, &projector.base).await;
    wait_ready(&a.http, &a.base).await;
    let admin = eventually("the admin can sign in", || async {
        let (s, body) =
            a.post("/api/v1/auth/login", None, json!({"tenant": "demo", "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})).await;
        (s == 200).then(|| body["access_token"].as_str().map(str::to_owned)).flatten()
    })
    .await;
    let mut customers = Vec::new();
    for _ in 0..CUSTOMERS {
        let token = eventually("a visitor token", || async {
            let (s, body) = a.post("/api/v1/auth/visitor", None, json!({"widget_key": a.widget_key})).await;
            (s == 201).then(|| body["access_token"].as_str().map(str::to_owned)).flatten()
        })
        .await;
        let id = a.start_conversation(&token).await;
        customers.push((token, id));
    }

    // The burst: every customer writes at once; the projector dies part way.
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (c, (token, id)) in customers.iter().cloned().enumerate() {
        let (http, base, acked) = (a.http.clone(), a.base.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            for m in 0..PER_CUSTOMER {
                let body = json!({"client_message_id": format!("burst-{c}-{m}"), "text": format!("message {m} of customer {c}")});
                let r = http
                    .post(format!("{base}/api/v1/conversations/{id}/messages"))
                    .bearer_auth(&token)
                    .json(&body)
                    .send()
                    .await
                    .expect("post");
                assert_eq!(r.status().as_u16(), 201, "{:?}", r.text().await);
                acked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }));
    }
    while acked.load(std::sync::atomic::Ordering::Relaxed) < KILL_AFTER {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    projector.child.kill().expect("kill -9 the projector");
    let _ = projector.child.wait();
    let killed_at = acked.load(std::sync::atomic::Ordering::Relaxed);
    for t in tasks {
        t.await.expect("a writer");
    }
    let total = CUSTOMERS * PER_CUSTOMER;
    eprintln!("burst: {total} messages acked in {:.1} s; the projector was killed after {killed_at}", started.elapsed().as_secs_f64());

    // A new projector continues from the stored checkpoints.
    let projector = cluster.spawn(&["projector"]);
    let head = {
        let r: Value =
            a.http.get(format!("{}/status/projections", projector.base)).send().await.expect("status").json().await.expect("json");
        r["projections"][0]["head"].as_u64().expect("head")
    };
    caught_up(&a.http, &projector, head).await;
    let live = read_models_snapshot(&a, &admin).await;
    let counts: u64 = live["conversations"].as_array().expect("items").iter().map(|c| c["message_count"].as_u64().unwrap_or(0)).sum();
    assert_eq!(counts, total as u64, "every acknowledged message is in the read models once");

    // SIGTERM: the projector stops cleanly; then `jamuna replay` rebuilds the
    // same read models from the log, and they must be equal.
    let mut projector = projector;
    assert!(terminate(&mut projector.child).success(), "the projector exits cleanly on SIGTERM");
    cluster.replay();
    let rebuilt = read_models_snapshot(&a, &admin).await;
    assert_eq!(live, rebuilt, "the read models after kill -9 and restart equal a rebuild from the log");
}

/// Which projections a projector runs now (not standing by), and whether
/// each of them has caught up with `head` (when given).
async fn running(http: &reqwest::Client, projector: &Role) -> Option<Vec<(String, bool, u64)>> {
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
async fn metric(http: &reqwest::Client, role: &Role, name: &str) -> Option<f64> {
    let text = http.get(format!("{}/metrics", role.base)).send().await.ok()?.text().await.ok()?;
    Some(text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok()).unwrap_or(0.0))
}

/// The bot's decisions (answers and handoffs) in a conversation's timeline.
async fn decisions(gateway: &App, admin: &str, id: &str) -> usize {
    let (s, detail) = gateway.get(&format!("/api/v1/conversations/{id}"), Some(admin)).await;
    assert_eq!(s, 200, "{detail}");
    detail["events"]
        .as_array()
        .map_or(0, |e| e.iter().filter(|f| matches!(f["event"]["type"].as_str(), Some("BotAnswered" | "HandoffRequested"))).count())
}

/// Starts `n` conversations with one question each; returns their ids.
async fn questions(gateway: &App, n: usize, tag: &str) -> Vec<String> {
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

/// Two projectors and two AI workers share one log through leases in Redis:
/// each projection runs on one projector and each conversation's messages
/// are decided by one worker; `kill -9` one of each and the others take over
/// within the lease TTL, with nothing decided twice and read models equal to
/// a replay.
#[tokio::test]
async fn replicas_of_the_projector_and_the_ai_worker_share_the_work_and_take_over_from_a_dead_one() {
    const FIRST: usize = 24;
    const AFTER_KILL: usize = 8;
    let Some(s) = services("the replicas test") else { return };
    if s.redis.is_none() {
        assert!(
            !std::env::var("JAMUNA_REQUIRE_SERVICES").is_ok_and(|v| v == "1"),
            "the replicas test needs JAMUNA_TEST_REDIS_URL, but JAMUNA_REQUIRE_SERVICES=1"
        );
        eprintln!("NOT RUN: the replicas test needs Redis for its leases (JAMUNA_TEST_REDIS_URL)");
        return;
    }
    let mut cluster = Cluster::new(&s);
    cluster.env.push(("JAMUNA_RATE_LIMIT_PER_MINUTE", "1000000".into()));
    let mut projectors = [cluster.spawn(&["projector"]), cluster.spawn(&["projector"])];
    let mut workers = [cluster.spawn(&["ai-worker"]), cluster.spawn(&["ai-worker"])];
    let a = cluster.gateway();
    for base in projectors.iter().chain(&workers).map(|r| &r.base).chain([&a.base]) {
        wait_ready(&a.http, base).await;
    }

    // The three projections split two and one; every one runs once.
    let split = eventually("the projectors split the projections", || async {
        let (x, y) = (running(&a.http, &projectors[0]).await?, running(&a.http, &projectors[1]).await?);
        let mut names: Vec<&str> = x.iter().chain(&y).map(|(n, ..)| n.as_str()).collect();
        names.sort();
        (names == ["analytics", "conversations", "users"] && !x.is_empty() && !y.is_empty()).then_some((x.len(), y.len()))
    })
    .await;
    eprintln!("projections per projector: {split:?}");
    // The 16 partitions split eight and eight.
    eventually("the workers split the partitions", || async {
        let (x, y) = (
            metric(&a.http, &workers[0], "jamuna_ai_worker_partitions").await?,
            metric(&a.http, &workers[1], "jamuna_ai_worker_partitions").await?,
        );
        (x == 8.0 && y == 8.0).then_some(())
    })
    .await;

    let admin = eventually("the admin can sign in", || async {
        let (s, body) =
            a.post("/api/v1/auth/login", None, json!({"tenant": "demo", "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})).await;
        (s == 200).then(|| body["access_token"].as_str().map(str::to_owned)).flatten()
    })
    .await;
    let first = questions(&a, FIRST, "first").await;
    for id in &first {
        eventually("the bot decides every question", || async { (decisions(&a, &admin, id).await > 0).then_some(()) }).await;
    }
    // Each question was decided by one worker, and both workers had some.
    let per_worker = [
        metric(&a.http, &workers[0], "jamuna_ai_worker_decisions_total").await.expect("metrics"),
        metric(&a.http, &workers[1], "jamuna_ai_worker_decisions_total").await.expect("metrics"),
    ];
    eprintln!("decisions per worker: {per_worker:?}");
    assert_eq!(per_worker.iter().sum::<f64>(), FIRST as f64, "every question decided once, by one worker: {per_worker:?}");
    assert!(per_worker.iter().all(|&d| d > 0.0), "both workers decide: {per_worker:?}");

    // kill -9 one of each: the survivors take over every unit.
    let killed = Instant::now();
    projectors[0].child.kill().expect("kill -9 a projector");
    workers[0].child.kill().expect("kill -9 a worker");
    let _ = (projectors[0].child.wait(), workers[0].child.wait());
    let after = questions(&a, AFTER_KILL, "after").await;
    for id in &after {
        eventually("the surviving worker decides every later question", || async { (decisions(&a, &admin, id).await > 0).then_some(()) })
            .await;
    }
    eventually("the surviving worker holds every partition", || async {
        (metric(&a.http, &workers[1], "jamuna_ai_worker_partitions").await? == 16.0).then_some(())
    })
    .await;
    let head: u64 = eventually("the surviving projector runs every projection, caught up", || async {
        let mine = running(&a.http, &projectors[1]).await?;
        (mine.len() == 3 && mine.iter().all(|(_, caught_up, _)| *caught_up)).then(|| mine[0].2)
    })
    .await;
    eprintln!("took over and caught up with {head} in {:.1} s after kill -9", killed.elapsed().as_secs_f64());
    for id in first.iter().chain(&after) {
        assert_eq!(decisions(&a, &admin, id).await, 1, "{id}: decided exactly once");
    }

    // The survivor's read models equal a replay of the log.
    let live = read_models_snapshot(&a, &admin).await;
    assert_eq!(live["conversations"].as_array().map(Vec::len), Some(FIRST + AFTER_KILL), "{live}");
    assert!(terminate(&mut projectors[1].child).success(), "the projector exits cleanly on SIGTERM");
    assert!(terminate(&mut workers[1].child).success(), "the ai-worker exits cleanly on SIGTERM");
    cluster.replay();
    assert_eq!(live, read_models_snapshot(&a, &admin).await, "the read models after the takeover equal a rebuild from the log");
}

/// The online user ids of `presence` frames, sorted, until they are `expected`
/// (a frame may repeat the current list; each must come within 15 s).
async fn presence(ws: &mut Ws, expected: &[String]) -> Vec<String> {
    loop {
        let f = frame_where(ws, |f| f["type"] == "presence").await;
        let mut ids: Vec<String> = f["online"].as_array().expect("online").iter().map(|v| v.as_str().expect("an id").to_owned()).collect();
        ids.sort();
        if ids == expected {
            return ids;
        }
    }
}

#[tokio::test]
async fn agents_see_who_is_online_across_gateways_and_sigterm_closes_sockets_with_1012() {
    let Some(s) = services("the distributed presence test") else { return };
    let cluster = Cluster::new(&s);
    let _projector = cluster.spawn(&["projector"]);
    let a = cluster.gateway();
    let mut b = cluster.gateway();
    // Presence is shared through Redis; without it each gateway knows only its own sockets.
    let agent_gateway = if s.redis.is_some() { &a } else { &b };
    let admin = eventually("the admin can sign in at B", || async {
        let (s, body) =
            b.post("/api/v1/auth/login", None, json!({"tenant": "demo", "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})).await;
        (s == 200).then(|| body.clone())
    })
    .await;
    let (admin_token, admin_id) = (admin["access_token"].as_str().expect("token").to_owned(), admin["user_id"].as_str().map(str::to_owned));
    let mut admin_ws = b.socket(&admin_token).await;
    let admin_id = admin_id.expect("the login names the user");
    let first = frame_where(&mut admin_ws, |f| f["type"] == "presence").await;
    assert_eq!(first["online"], json!([admin_id]), "a staff socket first learns who is online: itself");

    let (s, created) = b
        .post(
            "/api/v1/users",
            Some(&admin_token),
            json!({"email": "ana@demo.example", "password": "a strong password", "name": "Ana", "role": "agent"}),
        )
        .await;
    assert_eq!(s, 201, "{created}");
    let agent_id = created["id"].as_str().expect("id").to_owned();
    let agent_token = eventually("the agent can sign in", || async {
        let (s, body) = agent_gateway
            .post("/api/v1/auth/login", None, json!({"tenant": "demo", "email": "ana@demo.example", "password": "a strong password"}))
            .await;
        (s == 200).then(|| body["access_token"].as_str().map(str::to_owned)).flatten()
    })
    .await;
    let mut agent_ws = agent_gateway.socket(&agent_token).await;
    let mut both = vec![admin_id.clone(), agent_id.clone()];
    both.sort();
    presence(&mut admin_ws, &both).await; // the admin sees the agent come online
    presence(&mut agent_ws, &both).await;

    // Customers get no presence frames.
    let (visitor, _) = eventually("a visitor token", || async {
        let (s, body) = a.post("/api/v1/auth/visitor", None, json!({"widget_key": a.widget_key})).await;
        (s == 201).then(|| (body["access_token"].as_str().unwrap_or_default().to_owned(), ()))
    })
    .await;
    let mut customer = a.socket(&visitor).await;
    send(&mut customer, json!({"type": "ping"})).await;
    assert_eq!(next_frame(&mut customer).await["type"], "pong", "no presence frame before the pong");

    agent_ws.close(None).await.expect("close");
    presence(&mut admin_ws, std::slice::from_ref(&admin_id)).await; // the admin sees the agent go

    // SIGTERM to gateway B: its sockets are told to reconnect (1012), and it exits cleanly.
    let status = terminate(&mut b.child);
    let mut code = None;
    while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(10), admin_ws.next()).await {
        if let Message::Close(f) = m {
            code = f.map(|f| u16::from(f.code));
            break;
        }
    }
    assert_eq!(code, Some(1012), "service restart: reconnect");
    assert!(status.success(), "the gateway exits cleanly on SIGTERM: {status:?}");
}

#[test]
fn every_role_refuses_to_start_without_a_jwt_secret_outside_dev_mode() {
    for role in ["serve", "gateway", "projector", "ai-worker"] {
        let data = tempfile::tempdir().expect("dir");
        let out = Command::new(env!("CARGO_BIN_EXE_jamuna"))
            .arg(role)
            .env("JAMUNA_DATA_DIR", data.path())
            .env("JAMUNA_LISTEN", "127.0.0.1:0")
            .env_remove("JAMUNA_JWT_SECRET")
            .env_remove("JAMUNA_DEV")
            .output()
            .expect("run jamuna");
        assert!(!out.status.success(), "jamuna {role} started without a secret");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("JAMUNA_JWT_SECRET is not set"), "jamuna {role}: {err}");
    }
}

/// Opens `/api/v1/ws` at `base` and authenticates; `None` if the gateway is
/// unreachable or the socket closes before `ready`.
async fn try_socket(base: &str, token: &str) -> Option<Ws> {
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
async fn read_frame(ws: &mut Ws) -> Option<Value> {
    loop {
        match tokio::time::timeout(Duration::from_secs(15), ws.next()).await.ok()?? {
            Ok(Message::Text(t)) => return Some(serde_json::from_str(t.as_str()).expect("JSON")),
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            _ => return None,
        }
    }
}

async fn try_send(ws: &mut Ws, frame: Value) -> bool {
    use futures::SinkExt;
    ws.send(Message::Text(frame.to_string().into())).await.is_ok()
}

/// What one resuming WebSocket client did and saw.
#[derive(Debug, Default)]
struct ClientRun {
    /// Client message ids acknowledged, and the version each ack named.
    acked: Vec<(String, u64)>,
    /// Versions of the conversation's event frames received, in arrival order.
    versions: Vec<u64>,
    /// Each client message id as seen in event frames (to count duplicates).
    seen_ids: Vec<String>,
    reconnects: usize,
    resent: usize,
}

/// A customer's client, as the protocol expects one to behave: it sends
/// numbered messages one at a time and waits for each ack; when its socket
/// breaks it connects to the next gateway, resubscribes after the last
/// version it saw and resends the unacknowledged message with the same
/// client message id. Returns once every message is acked and the socket
/// has seen the conversation up to `final_version`.
async fn resuming_client(
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

#[tokio::test]
async fn a_gateway_killed_while_clients_send_loses_and_doubles_nothing_acknowledged() {
    const CUSTOMERS: usize = 6;
    const MESSAGES: usize = 40;
    let Some(s) = services("the gateway kill -9 test") else { return };
    let mut cluster = Cluster::new(&s);
    cluster.env.push(("JAMUNA_RATE_LIMIT_PER_MINUTE", "1000000".into()));
    let projector = cluster.spawn(&["projector"]);
    let mut a = cluster.gateway();
    let b = cluster.gateway();
    for base in [&projector.base, &a.base, &b.base] {
        wait_ready(&b.http, base).await;
    }
    let admin = eventually("the admin can sign in at B", || async {
        let (s, body) =
            b.post("/api/v1/auth/login", None, json!({"tenant": "demo", "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})).await;
        (s == 200).then(|| body["access_token"].as_str().map(str::to_owned)).flatten()
    })
    .await;
    let mut customers = Vec::new();
    for _ in 0..CUSTOMERS {
        let token = eventually("a visitor token at A", || async {
            let (s, body) = a.post("/api/v1/auth/visitor", None, json!({"widget_key": a.widget_key})).await;
            (s == 201).then(|| body["access_token"].as_str().map(str::to_owned)).flatten()
        })
        .await;
        let id = a.start_conversation(&token).await;
        customers.push((token, id));
    }
    // Started (version 1), then each message once; no ai-worker runs here.
    let final_version = 1 + MESSAGES as u64;

    // An agent on B follows every conversation from its start.
    let mut agent = b.socket(&admin).await;
    for (_, id) in &customers {
        send(&mut agent, json!({"type": "subscribe", "conversation_id": id, "after_version": 0})).await;
    }
    let ids: Vec<String> = customers.iter().map(|(_, id)| id.clone()).collect();
    let agent_task = tokio::spawn(async move {
        let mut seen: std::collections::HashMap<String, Vec<u64>> = ids.iter().map(|id| (id.clone(), Vec::new())).collect();
        let deadline = Instant::now() + Duration::from_secs(150);
        while seen.values().any(|v| v.last().copied().unwrap_or(0) < final_version) {
            assert!(Instant::now() < deadline, "the agent's socket did not see every conversation to its end");
            let f = read_frame(&mut agent).await.expect("the agent's socket on B stays open");
            if f["type"] == "event"
                && let Some(v) = f["conversation_id"].as_str().and_then(|id| seen.get_mut(id))
            {
                v.push(f["version"].as_u64().expect("a version"));
            }
        }
        // Anything doubled would come right after; give it a moment.
        while let Ok(Some(f)) = tokio::time::timeout(Duration::from_secs(1), read_frame(&mut agent)).await {
            if f["type"] == "event"
                && let Some(v) = f["conversation_id"].as_str().and_then(|id| seen.get_mut(id))
            {
                v.push(f["version"].as_u64().expect("a version"));
            }
        }
        seen
    });

    // The customers, all on A at first.
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let tasks: Vec<_> = customers
        .iter()
        .enumerate()
        .map(|(c, (token, id))| {
            tokio::spawn(resuming_client(
                vec![a.base.clone(), b.base.clone()],
                token.clone(),
                id.clone(),
                c,
                MESSAGES,
                final_version,
                acked.clone(),
            ))
        })
        .collect();
    while acked.load(std::sync::atomic::Ordering::Relaxed) < CUSTOMERS * MESSAGES / 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    a.child.kill().expect("kill -9 gateway A");
    let _ = a.child.wait();
    let killed_at = acked.load(std::sync::atomic::Ordering::Relaxed);
    let mut runs = Vec::new();
    for t in tasks {
        runs.push(t.await.expect("a customer's client"));
    }
    let agent_seen = agent_task.await.expect("the agent's socket");
    let reconnects: usize = runs.iter().map(|r| r.reconnects).sum();
    let resent: usize = runs.iter().map(|r| r.resent).sum();
    eprintln!("gateway A killed after {killed_at} acks; {reconnects} reconnects to B, {resent} unacknowledged messages resent");
    assert!(runs.iter().all(|r| r.reconnects >= 1), "every customer lost gateway A and reconnected: {runs:?}");

    let all: Vec<u64> = (1..=final_version).collect();
    for (c, ((_, id), run)) in customers.iter().zip(&runs).enumerate() {
        // Every acknowledged message is stored exactly once, read from the log through B.
        let (s, detail) = b.get(&format!("/api/v1/conversations/{id}"), Some(&admin)).await;
        assert_eq!(s, 200, "{detail}");
        let stored: Vec<&str> =
            detail["events"].as_array().expect("events").iter().filter_map(|f| f["event"]["client_message_id"].as_str()).collect();
        assert_eq!(run.acked.len(), MESSAGES, "customer {c}: every message was acked in the end");
        for (cmid, version) in &run.acked {
            assert_eq!(stored.iter().filter(|s| *s == cmid).count(), 1, "customer {c}: {cmid} stored once: {stored:?}");
            let at = detail["events"]
                .as_array()
                .expect("events")
                .iter()
                .find(|f| f["event"]["client_message_id"] == cmid.as_str())
                .expect("stored");
            assert_eq!(at["version"].as_u64(), Some(*version), "customer {c}: the ack of {cmid} named its stored version");
        }
        assert_eq!(stored.len(), MESSAGES, "customer {c}: nothing else, nothing twice: {stored:?}");
        assert_eq!(detail["version"].as_u64(), Some(final_version));
        // Each subscriber saw each event once, in version order.
        assert_eq!(run.versions, all, "customer {c}'s socket(s), across the reconnect");
        let mut ids = run.seen_ids.clone();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), run.seen_ids.len(), "customer {c}: a message pushed twice");
        assert_eq!(agent_seen[id.as_str()], all, "the agent's socket on B, conversation of customer {c}");
    }
}

/// A nats-server of one test's own (the template `infra/nats/nats.conf`, a
/// free port, a JetStream store in a temporary directory), so the test can
/// kill and restart it without disturbing the others. Killed when dropped.
struct OwnNats {
    child: Child,
    config: std::path::PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

impl OwnNats {
    /// `None` when nats-server is not installed.
    fn start() -> Option<Self> {
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

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// `kill -9`, then, after `down`, a new server on the same port and store.
    async fn restart(&mut self, down: Duration) {
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

#[tokio::test]
async fn nats_restarted_mid_run_the_roles_reconnect_by_themselves_and_nothing_acknowledged_is_lost() {
    const CUSTOMERS: usize = 4;
    const MESSAGES: usize = 30;
    let Some(s) = services("the NATS restart test") else { return };
    let required = std::env::var("JAMUNA_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
    let Some(mut nats) = OwnNats::start() else {
        assert!(!required, "the NATS restart test needs nats-server on PATH, but JAMUNA_REQUIRE_SERVICES=1");
        eprintln!("NOT RUN: the NATS restart test needs nats-server on PATH");
        return;
    };
    let mut cluster = Cluster::new(&Services { nats: nats.url(), mongodb: s.mongodb.clone(), redis: s.redis.clone() });
    cluster.env.push(("JAMUNA_RATE_LIMIT_PER_MINUTE", "1000000".into()));
    let projector = cluster.spawn(&["projector"]);
    let worker = cluster.spawn(&["ai-worker"]);
    let a = cluster.gateway();
    let b = cluster.gateway();
    for base in [&projector.base, &worker.base, &a.base, &b.base] {
        wait_ready(&a.http, base).await;
    }
    let admin = eventually("the admin can sign in at B", || async {
        let (s, body) =
            b.post("/api/v1/auth/login", None, json!({"tenant": "demo", "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})).await;
        (s == 200).then(|| body["access_token"].as_str().map(str::to_owned)).flatten()
    })
    .await;
    let mut customers = Vec::new();
    for _ in 0..CUSTOMERS {
        let token = eventually("a visitor token", || async {
            let (s, body) = a.post("/api/v1/auth/visitor", None, json!({"widget_key": a.widget_key})).await;
            (s == 201).then(|| body["access_token"].as_str().map(str::to_owned)).flatten()
        })
        .await;
        customers.push((token.clone(), a.start_conversation(&token).await));
    }

    // An agent's socket on B follows every conversation through the restart.
    let mut agent = b.socket(&admin).await;
    for (_, id) in &customers {
        send(&mut agent, json!({"type": "subscribe", "conversation_id": id, "after_version": 0})).await;
    }
    let seen: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, Vec<u64>>>> = std::sync::Arc::default();
    let agent_task = {
        let seen = seen.clone();
        tokio::spawn(async move {
            while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(120), agent.next()).await {
                let Message::Text(t) = m else { continue };
                let f: Value = serde_json::from_str(t.as_str()).expect("JSON");
                if f["type"] == "event"
                    && let (Some(id), Some(v)) = (f["conversation_id"].as_str(), f["version"].as_u64())
                {
                    seen.lock().expect("lock").entry(id.to_owned()).or_default().push(v);
                }
            }
            panic!("the agent's socket on B closed or went quiet");
        })
    };

    // Customers write over REST, half through A and half through B; a request
    // that fails (NATS is down) is retried with the same client message id.
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let retried = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let http = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().expect("client");
    let tasks: Vec<_> = customers
        .iter()
        .cloned()
        .enumerate()
        .map(|(c, (token, id))| {
            let base = if c % 2 == 0 { a.base.clone() } else { b.base.clone() };
            let (http, acked, retried) = (http.clone(), acked.clone(), retried.clone());
            tokio::spawn(async move {
                let mut acks = Vec::new();
                for m in 0..MESSAGES {
                    let cmid = format!("n{c}-{m}");
                    let deadline = Instant::now() + Duration::from_secs(90);
                    loop {
                        let body = json!({"client_message_id": cmid, "text": format!("message {m} of customer {c}")});
                        let r =
                            http.post(format!("{base}/api/v1/conversations/{id}/messages")).bearer_auth(&token).json(&body).send().await;
                        match r {
                            Ok(r) if r.status().is_success() => {
                                let ack: Value = r.json().await.expect("an ack");
                                acks.push((cmid.clone(), ack["version"].as_u64().expect("a version")));
                                acked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                break;
                            }
                            Ok(r) => assert!(r.status().is_server_error(), "customer {c}, {cmid}: {} {:?}", r.status(), r.text().await),
                            Err(_) => {}
                        }
                        retried.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        assert!(Instant::now() < deadline, "customer {c}: {cmid} not acknowledged within 90 s of NATS coming back");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                acks
            })
        })
        .collect();
    while acked.load(std::sync::atomic::Ordering::Relaxed) < CUSTOMERS * MESSAGES / 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let killed_at = acked.load(std::sync::atomic::Ordering::Relaxed);
    nats.restart(Duration::from_secs(2)).await;
    let mut acks = Vec::new();
    for t in tasks {
        acks.push(t.await.expect("a customer"));
    }
    eprintln!("NATS killed and restarted after {killed_at} acks; {} requests retried", retried.load(std::sync::atomic::Ordering::Relaxed));

    // The ai-worker reconnected: it answers a question asked now (it handles
    // the log in order, so every earlier message has been handled too).
    let (token, _) = &customers[0];
    let asked = a.start_conversation(token).await;
    let (s, body) = a
        .post(
            &format!("/api/v1/conversations/{asked}/messages"),
            Some(token),
            json!({"client_message_id": "after-restart", "text": "My new card has not arrived yet, when will it come?"}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
    let answer = eventually("the bot's answer after the restart", || async {
        let (_, d) = b.get(&format!("/api/v1/conversations/{asked}"), Some(&admin)).await;
        d["events"].as_array().and_then(|e| e.iter().find(|f| f["event"]["type"] == "BotAnswered").cloned())
    })
    .await;
    assert_eq!(answer["event"]["sources"][0]["article_id"], "card-delivery", "{answer}");

    for (c, ((_, id), acks)) in customers.iter().zip(&acks).enumerate() {
        // Every acknowledged message is in the log, once, at the version its ack named.
        let (s, detail) = b.get(&format!("/api/v1/conversations/{id}"), Some(&admin)).await;
        assert_eq!(s, 200, "{detail}");
        let events = detail["events"].as_array().expect("events");
        let stored: Vec<&str> = events
            .iter()
            .filter(|f| f["event"]["author"]["role"] != "bot")
            .filter_map(|f| f["event"]["client_message_id"].as_str())
            .collect();
        assert_eq!(acks.len(), MESSAGES);
        for (cmid, version) in acks {
            let at: Vec<&Value> = events.iter().filter(|f| f["event"]["client_message_id"] == cmid.as_str()).collect();
            assert_eq!(at.len(), 1, "customer {c}: {cmid} stored once: {stored:?}");
            assert_eq!(at[0]["version"].as_u64(), Some(*version), "customer {c}: {cmid} at the acked version");
        }
        let version = detail["version"].as_u64().expect("a version");
        let versions: Vec<u64> = events.iter().map(|f| f["version"].as_u64().expect("v")).collect();
        assert_eq!(versions, (1..=version).collect::<Vec<_>>(), "customer {c}: a gapless stream");

        // The gateway's push reconnected: the agent's socket saw every event once, in order.
        let all: Vec<u64> = (1..=version).collect();
        eventually("the agent's socket at the conversation's last version", || async {
            (seen.lock().expect("lock").get(id.as_str()).and_then(|v| v.last().copied()) >= Some(version)).then_some(())
        })
        .await;
        // The projector reconnected: its read model reached the same version.
        eventually("the read model at the log's version", || async {
            let (_, page) = b.get("/api/v1/conversations?view=all&limit=100", Some(&admin)).await;
            page["items"]
                .as_array()
                .and_then(|items| items.iter().find(|i| i["id"] == id.as_str() && i["version"].as_u64() == Some(version)).map(|_| ()))
        })
        .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(seen.lock().expect("lock")[id.as_str()], all, "the agent's socket on B, conversation of customer {c}");
    }
    agent_task.abort();
}
