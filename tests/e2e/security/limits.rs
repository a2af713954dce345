//! Attacks on limits: what one client can make the server do for free
//! (issue 16, findings 5, 6, 7, part of 8, and the proxy part of 10).

use crate::app::{ADMIN_EMAIL, ADMIN_PASSWORD, App, Ws, spawn_app, spawn_app_with};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// A gauge's value in `/metrics` text.
fn gauge(text: &str, name: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(name) && l[name.len()..].starts_with(' ')).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
}

/// The server's resident-memory high-water mark, in KiB.
fn vm_hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the server's /proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmHWM in /proc/<pid>/status")
}

async fn login(app: &App, email: &str, password: &str) -> (u16, Option<u64>) {
    let r = app
        .http
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"tenant": "demo", "email": email, "password": password}))
        .send()
        .await
        .expect("login");
    let retry = r.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse().ok());
    (r.status().as_u16(), retry)
}

/// Finding 6: 32 concurrent wrong logins raised the server's memory by
/// 444 MiB (598 MiB here) — argon2 ran unbounded in parallel. Now at most one
/// hash runs per core, and the memory stays bounded.
#[tokio::test]
async fn concurrent_wrong_logins_hash_at_most_one_per_core() {
    let app = spawn_app().await;
    let before = vm_hwm_kib(app.child.id());
    let logins = (0..32).map(|i| {
        let app = &app;
        async move { login(app, &format!("nobody{i}@demo.example"), "not the password at all").await.0 }
    });
    let statuses = futures::future::join_all(logins).await;
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    let grown_mib = vm_hwm_kib(app.child.id()).saturating_sub(before) / 1024;
    eprintln!("32 concurrent wrong logins: memory high-water grew by {grown_mib} MiB");
    let metrics = app.http.get(app.url("/metrics")).send().await.expect("metrics").text().await.expect("text");
    let peak = gauge(&metrics, "jamuna_password_hashing_peak").expect("the server reports its hashing peak");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    assert!(peak >= 1.0 && peak <= cores, "{peak} hashes ran at once on {cores} cores");
    assert!(grown_mib < 256, "32 wrong logins grew the memory by {grown_mib} MiB");
}

/// Finding 8: 25 wrong passwords, then the right one, signed in. Now the
/// account is locked out after 5 attempts (the right password too), with a
/// Retry-After; another account is not affected; a success clears the count.
#[tokio::test]
async fn the_right_password_after_many_wrong_ones_is_refused() {
    let app = spawn_app().await;
    let (victim, password) = ("victim@demo.example", "the victim's password");
    let (s, body) =
        app.post("/api/v1/auth/register", None, json!({"tenant": "demo", "email": victim, "password": password, "name": "V"})).await;
    assert_eq!(s, 202, "{body}");

    let mut statuses = Vec::new();
    for _ in 0..25 {
        statuses.push(login(&app, victim, "a wrong password guess").await.0);
    }
    assert_eq!(&statuses[..5], &[401; 5], "the first attempts are checked: {statuses:?}");
    assert!(statuses[5..].iter().all(|s| *s == 429), "then refused: {statuses:?}");
    let (s, retry) = login(&app, victim, password).await;
    assert_eq!(s, 429, "the right password during the lock-out is refused too");
    assert!(retry.is_some_and(|r| r > 60), "hammering lengthens the lock-out beyond a minute: {retry:?}");

    assert_eq!(login(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await.0, 200, "another account signs in");
    // A success clears the count: four wrong, right, then five wrong are all checked.
    for _ in 0..4 {
        assert_eq!(login(&app, ADMIN_EMAIL, "a wrong password guess").await.0, 401);
    }
    assert_eq!(login(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await.0, 200);
    for _ in 0..5 {
        assert_eq!(login(&app, ADMIN_EMAIL, "a wrong password guess").await.0, 401, "the count started again");
    }
}

/// Finding 5: 20 `POST /auth/visitor` calls made 20 permanent users. Now one
/// IP gets a handful an hour.
#[tokio::test]
async fn twenty_visitor_mints_from_one_ip_are_refused_before_the_twentieth() {
    let app = spawn_app().await;
    let mut statuses = Vec::new();
    for _ in 0..20 {
        let r = app.http.post(app.url("/api/v1/auth/visitor")).json(&json!({"widget_key": app.widget_key})).send().await.expect("mint");
        statuses.push((r.status().as_u16(), r.headers().contains_key("retry-after")));
    }
    let minted = statuses.iter().filter(|(s, _)| *s == 201).count();
    assert!(minted <= 10, "{minted} visitors from one IP: {statuses:?}");
    assert!(statuses.iter().any(|(s, retry)| *s == 429 && *retry), "a 429 with Retry-After: {statuses:?}");
}

/// Finding 6: one visitor token held 300 sockets. Now 8 per user; the
/// ninth is closed with 4029 after it authenticates, and a closed socket
/// frees its place.
#[tokio::test]
async fn one_token_holds_a_bounded_number_of_sockets() {
    let app = spawn_app().await;
    let (token, _) = app.visitor().await;
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(app.socket(&token).await);
    }
    let mut ninth = raw_socket(&app).await.expect("the upgrade is accepted: the user is known only after auth");
    ninth.send(Message::Text(json!({"type": "auth", "token": token}).to_string().into())).await.expect("auth");
    assert_eq!(close_code(&mut ninth).await, Some(CloseCode::Library(4029)), "the ninth socket of one user is closed");

    let mut first = held.remove(0);
    first.close(None).await.expect("close");
    // The server frees the place when it sees the close: try until it has.
    let mut reopened = None;
    for _ in 0..50 {
        let mut ws = raw_socket(&app).await.expect("connect");
        ws.send(Message::Text(json!({"type": "auth", "token": token}).to_string().into())).await.expect("auth");
        let frame = first_message(&mut ws).await;
        if matches!(&frame, Some(Message::Text(t)) if serde_json::from_str::<Value>(t.as_str()).is_ok_and(|f| f["type"] == "ready")) {
            reopened = Some(ws);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(reopened.is_some(), "a closed socket frees its place");
}

/// Finding 6: 40 unauthenticated sockets were accepted at once from one IP.
/// Now 8; the ninth upgrade answers 429.
#[tokio::test]
async fn unauthenticated_sockets_per_ip_are_capped() {
    let app = spawn_app().await;
    let mut held = Vec::new();
    for i in 0..8 {
        held.push(raw_socket(&app).await.unwrap_or_else(|e| panic!("socket {i}: {e}")));
    }
    match raw_socket(&app).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status().as_u16(), 429),
        other => panic!("the ninth unauthenticated socket: {:?}", other.map(|_| "accepted")),
    }
}

/// Finding 6: a visitor's 1,200-word search answered 503 (`Expression tree
/// is too large`). Now 400 with a clear message, also for a long word.
#[tokio::test]
async fn an_oversized_search_is_a_400() {
    let app = spawn_app().await;
    let (token, _) = app.visitor().await;
    let the_attack = vec!["card"; 1200].join(" ");
    let many_short_words = vec!["a"; 40].join(" ");
    for (q, says) in [(the_attack.as_str(), "characters"), (&many_short_words, "words"), (&"x".repeat(300), "characters")] {
        let r = app.http.get(app.url("/api/v1/conversations")).query(&[("q", q)]).bearer_auth(&token).send().await.expect("list");
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 400, "{body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains(says)), "{body}");
    }
    let (s, body) = app.get("/api/v1/conversations?q=card%20delivery", Some(&token)).await;
    assert_eq!(s, 200, "a normal search still works: {body}");
}

/// Finding 7: `/status/projections` was merged outside the gateway's
/// middleware: no rate limit, no trace header.
#[tokio::test]
async fn status_projections_goes_through_the_middleware() {
    let app = spawn_app_with(&[("JAMUNA_RATE_LIMIT_PER_MINUTE", "5")]).await;
    let r = app.http.get(app.url("/status/projections")).send().await.expect("status");
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers().contains_key("traceparent"), "a trace header: {:?}", r.headers());
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(app.http.get(app.url("/status/projections")).send().await.expect("status").status().as_u16());
    }
    assert!(statuses.contains(&429), "rate-limited like the rest: {statuses:?}");
}

/// Finding 7: `/metrics` (cross-tenant counters) was public. With a metrics
/// listener it is served there only.
#[tokio::test]
async fn metrics_are_not_on_the_public_listener_when_a_metrics_listener_is_set() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("addr").port();
    let metrics_listen = format!("127.0.0.1:{port}");
    let app = spawn_app_with(&[("JAMUNA_METRICS_LISTEN", &metrics_listen)]).await;
    let public = app.http.get(app.url("/metrics")).send().await.expect("public /metrics");
    assert_eq!(public.status().as_u16(), 404, "not on the public listener");
    let private = app.http.get(format!("http://{metrics_listen}/metrics")).send().await.expect("private /metrics");
    assert_eq!(private.status().as_u16(), 200);
    assert!(private.text().await.expect("text").contains("process_resident_memory_bytes"));
}

async fn fetch_openapi(app: &App, forwarded_for: &str) -> u16 {
    app.http.get(app.url("/openapi.json")).header("x-forwarded-for", forwarded_for).send().await.expect("get").status().as_u16()
}

/// Finding 10: behind a reverse proxy every client shared the proxy's
/// bucket. Through a trusted proxy each client has its own.
#[tokio::test]
async fn forwarded_for_names_the_client_through_a_trusted_proxy() {
    let app = spawn_app_with(&[("JAMUNA_RATE_LIMIT_PER_MINUTE", "3"), ("JAMUNA_TRUSTED_PROXIES", "127.0.0.0/8, ::1")]).await;
    for _ in 0..3 {
        assert_eq!(fetch_openapi(&app, "198.51.100.1").await, 200);
    }
    assert_eq!(fetch_openapi(&app, "198.51.100.1").await, 429, "the first client is over its limit");
    assert_eq!(fetch_openapi(&app, "198.51.100.2").await, 200, "the second client has its own");
    // What the client wrote left of the proxy's entry does not count.
    assert_eq!(fetch_openapi(&app, "203.0.113.7, 198.51.100.1").await, 429, "a forged hop gives no fresh bucket");
}

/// The header from a peer that is not a trusted proxy is ignored (this held
/// before: without trusted proxies the client is the peer).
#[tokio::test]
async fn forwarded_for_from_an_untrusted_peer_is_ignored() {
    let app = spawn_app_with(&[("JAMUNA_RATE_LIMIT_PER_MINUTE", "3")]).await;
    for i in 0..3 {
        assert_eq!(fetch_openapi(&app, &format!("198.51.100.{i}")).await, 200);
    }
    assert_eq!(fetch_openapi(&app, "198.51.100.99").await, 429, "a forged X-Forwarded-For gives no fresh bucket");
}

async fn raw_socket(app: &App) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    tokio_tungstenite::connect_async(app.ws_url("/api/v1/ws")).await.map(|(ws, _)| ws)
}

/// The first message that is not a ping, within 15 s (`None`: the socket ended).
async fn first_message(ws: &mut Ws) -> Option<Message> {
    loop {
        match tokio::time::timeout(Duration::from_secs(15), ws.next()).await.expect("a message within 15 s") {
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(m)) => return Some(m),
            _ => return None,
        }
    }
}

async fn close_code(ws: &mut Ws) -> Option<CloseCode> {
    match first_message(ws).await {
        Some(Message::Close(Some(f))) => Some(f.code),
        other => panic!("expected a close frame, got {other:?}"),
    }
}
