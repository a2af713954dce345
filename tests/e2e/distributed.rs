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
//!
//! The harness (the role processes, the probes and clients the tests use) is
//! [`crate::cluster`].

use crate::app::*;
use crate::cluster::*;
use futures::StreamExt;
use serde_json::{Value, json};
use std::process::Command;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

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

/// The router runs in the ai-worker's process and sees who is online through
/// Redis (presence written by the gateway): a handoff at the gateway goes to
/// the online team member; after a `kill -9` of the ai-worker, a new one
/// folds the log again and routes the next handoff.
#[tokio::test]
async fn the_router_in_the_ai_worker_assigns_handoffs_to_an_agent_online_at_a_gateway_and_survives_kill_9() {
    let Some(s) = services("the distributed router test") else { return };
    if s.redis.is_none() {
        let required = std::env::var("JAMUNA_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "the distributed router test needs JAMUNA_TEST_REDIS_URL (presence across processes), but JAMUNA_REQUIRE_SERVICES=1"
        );
        eprintln!("NOT RUN: the distributed router test needs JAMUNA_TEST_REDIS_URL (presence across processes)");
        return;
    }
    let cluster = Cluster::new(&s);
    let projector = cluster.spawn(&["projector"]);
    let mut worker = cluster.spawn(&["ai-worker"]);
    let a = cluster.gateway();
    for base in [&projector.base, &worker.base, &a.base] {
        wait_ready(&a.http, base).await;
    }
    let admin = eventually("the admin can sign in", || async {
        let (s, body) =
            a.post("/api/v1/auth/login", None, json!({"tenant": "demo", "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})).await;
        (s == 200).then(|| body["access_token"].as_str().map(str::to_owned)).flatten()
    })
    .await;
    let (_, me) = a.get("/api/v1/users/me", Some(&admin)).await;
    let me = me["id"].as_str().expect("an id").to_owned();
    let (s, team) = a.post("/api/v1/teams", Some(&admin), json!({"name": "Cards"})).await;
    assert_eq!(s, 201, "{team}");
    let team = team["id"].as_str().expect("an id").to_owned();
    let r = a.http.put(a.url(&format!("/api/v1/teams/{team}/members/{me}"))).bearer_auth(&admin).send().await.expect("put");
    assert_eq!(r.status().as_u16(), 200);
    // Online at the gateway (presence in Redis).
    let _online = a.socket(&admin).await;

    let handoff = async || {
        let visitor = eventually("a visitor token", || async {
            let (s, body) = a.post("/api/v1/auth/visitor", None, json!({"widget_key": a.widget_key})).await;
            (s == 201).then(|| body["access_token"].as_str().map(str::to_owned)).flatten()
        })
        .await;
        let id = a.start_conversation(&visitor).await;
        let (s, r) = a.post(&format!("/api/v1/conversations/{id}/team"), Some(&admin), json!({"team_id": team})).await;
        assert_eq!(s, 200, "{r}");
        let (s, r) = a.post(&format!("/api/v1/conversations/{id}/handoff"), Some(&visitor), json!({})).await;
        assert_eq!(s, 200, "{r}");
        id
    };
    let assigned = async |id: &str| {
        eventually(&format!("{id} assigned by the router"), || async {
            let (_, d) = a.get(&format!("/api/v1/conversations/{id}"), Some(&admin)).await;
            (d["assignee"] == json!(me)).then_some(())
        })
        .await
    };
    let first = handoff().await;
    assigned(&first).await;

    // kill -9, a new worker: it folds the log again and routes the next one.
    worker.child.kill().expect("kill -9 the ai-worker");
    let _ = worker.child.wait();
    let worker = cluster.spawn(&["ai-worker"]);
    wait_ready(&a.http, &worker.base).await;
    let second = handoff().await;
    assigned(&second).await;
}
