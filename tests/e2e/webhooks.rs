//! Webhooks against the real binary and a local receiver (an axum server on
//! 127.0.0.1, which the tests allow with `webhooks.allow_insecure_hosts`):
//! signed deliveries, retries, redelivery after `kill -9`, erased data never
//! sent, SSRF refused, admins only.

use crate::app::{App, poll, spawn_app_with, start_with};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

const ALLOW: (&str, &str) = ("JAMUNA_WEBHOOKS_ALLOW_INSECURE_HOSTS", "127.0.0.1");

/// One request the receiver got, and what it answered.
#[derive(Debug, Clone)]
struct Received {
    delivery: String,
    signature: String,
    body: String,
    answered: u16,
}

/// A local webhook receiver that answers `status` (changeable) and records everything.
struct Receiver {
    url: String,
    status: Arc<AtomicU16>,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    async fn start(status: u16) -> Self {
        let status = Arc::new(AtomicU16::new(status));
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let (s, g) = (status.clone(), got.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let (s, g) = (s.clone(), g.clone());
                async move {
                    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                    let answered = s.load(Ordering::SeqCst);
                    g.lock().unwrap().push(Received {
                        delivery: header("x-jamuna-delivery"),
                        signature: header("x-jamuna-signature"),
                        body,
                        answered,
                    });
                    StatusCode::from_u16(answered).unwrap()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, status, got }
    }

    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }
}

async fn register(app: &App, admin: &str, url: &str, types: &[&str]) -> (u16, Value) {
    app.post("/api/v1/webhooks", Some(admin), json!({"url": url, "event_types": types})).await
}

async fn post_message(app: &App, visitor: &str, conversation: &str, text: &str) {
    let (s, body) = app
        .post(
            &format!("/api/v1/conversations/{conversation}/messages"),
            Some(visitor),
            json!({"client_message_id": uuid::Uuid::new_v4().simple().to_string(), "text": text}),
        )
        .await;
    assert_eq!(s, 201, "{body}");
}

fn verified(secret: &str, r: &Received) -> Value {
    let now = chrono::Utc::now().timestamp();
    jamuna_webhooks::sign::verify(secret.as_bytes(), &r.signature, r.body.as_bytes(), now, 300)
        .unwrap_or_else(|e| panic!("a bad signature {:?}: {e}", r.signature));
    serde_json::from_str(&r.body).expect("a JSON body")
}

async fn deliveries(app: &App, admin: &str, webhook: &str) -> Vec<Value> {
    let (s, body) = app.get(&format!("/api/v1/webhooks/{webhook}/deliveries"), Some(admin)).await;
    assert_eq!(s, 200, "{body}");
    body["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_subscribed_event_is_delivered_signed_and_recorded() {
    let receiver = Receiver::start(200).await;
    let app = spawn_app_with(&[ALLOW]).await;
    let admin = app.login_admin().await;
    let (s, hook) = register(&app, &admin, &receiver.url, &["MessagePosted"]).await;
    assert_eq!(s, 201, "{hook}");
    let (id, secret) = (hook["id"].as_str().unwrap().to_owned(), hook["secret"].as_str().unwrap().to_owned());
    let (s, list) = app.get("/api/v1/webhooks", Some(&admin)).await;
    assert_eq!(s, 200);
    assert_eq!(list["items"], json!([{"id": id, "url": receiver.url, "event_types": ["MessagePosted"]}]));
    assert!(!list.to_string().contains(&secret), "the secret is shown once: {list}");

    let (visitor, customer) = app.visitor().await;
    let conversation = app.start_conversation(&visitor).await;
    post_message(&app, &visitor, &conversation, "where is my parcel?").await;

    let r = poll("a delivery", async || receiver.got().into_iter().next()).await;
    let body = verified(&secret, &r);
    assert_eq!(body["type"], "MessagePosted");
    assert_eq!(body["tenant"], "demo");
    assert_eq!(body["conversation_id"], conversation.as_str());
    assert_eq!(body["data"]["text"], "where is my parcel?");
    assert_eq!(body["data"]["author"]["kind"], "customer", "{body}");
    assert_eq!(body["delivery_id"], r.delivery.as_str());
    assert!(r.delivery.starts_with("dlv_"));
    assert!(body["occurred_at"].is_string() && body["event_id"].is_string());
    // A tampered body or another secret does not verify.
    let now = chrono::Utc::now().timestamp();
    assert!(jamuna_webhooks::sign::verify(b"whsec_not_the_secret_at_all_000", &r.signature, r.body.as_bytes(), now, 300).is_err());
    assert!(
        jamuna_webhooks::sign::verify(secret.as_bytes(), &r.signature, r.body.replace("parcel", "parcels").as_bytes(), now, 300).is_err()
    );

    let recorded = poll("the delivery recorded", async || {
        let d = deliveries(&app, &admin, &id).await;
        (!d.is_empty()).then_some(d)
    })
    .await;
    assert_eq!(recorded[0]["delivery_id"], r.delivery.as_str());
    assert_eq!(
        (recorded[0]["status"].as_str(), recorded[0]["attempts"].as_u64(), recorded[0]["response_code"].as_u64()),
        (Some("delivered"), Some(1), Some(200))
    );
    assert!(!customer.is_empty());
}

#[tokio::test]
async fn a_failing_receiver_is_retried_and_the_outcome_recorded() {
    let receiver = Receiver::start(500).await;
    let app = spawn_app_with(&[ALLOW]).await;
    let admin = app.login_admin().await;
    let (_, hook) = register(&app, &admin, &receiver.url, &["MessagePosted"]).await;
    let (id, secret) = (hook["id"].as_str().unwrap().to_owned(), hook["secret"].as_str().unwrap().to_owned());
    let (visitor, _) = app.visitor().await;
    let conversation = app.start_conversation(&visitor).await;
    post_message(&app, &visitor, &conversation, "hello").await;

    let first = poll("a first attempt", async || receiver.got().into_iter().next()).await;
    assert_eq!(first.answered, 500);
    receiver.answer(200);
    let recorded = poll("the delivery recorded", async || {
        let d = deliveries(&app, &admin, &id).await;
        (!d.is_empty()).then_some(d)
    })
    .await;
    let got = receiver.got();
    assert!(got.len() >= 2, "{got:?}");
    assert!(got.iter().all(|r| r.delivery == first.delivery), "one delivery id on every attempt: {got:?}");
    for r in &got {
        verified(&secret, r);
    }
    assert_eq!(got.iter().filter(|r| r.answered == 200).count(), 1, "{got:?}");
    assert_eq!(recorded[0]["status"], "delivered");
    assert_eq!(recorded[0]["attempts"].as_u64(), Some(got.len() as u64));
    assert_eq!(recorded[0]["response_code"], 200);
}

#[tokio::test]
async fn a_pending_delivery_survives_kill_9_with_the_same_delivery_id() {
    let receiver = Receiver::start(503).await;
    let mut app = spawn_app_with(&[ALLOW]).await;
    let admin = app.login_admin().await;
    let (_, hook) = register(&app, &admin, &receiver.url, &["MessagePosted"]).await;
    let (id, secret) = (hook["id"].as_str().unwrap().to_owned(), hook["secret"].as_str().unwrap().to_owned());
    let (visitor, _) = app.visitor().await;
    let conversation = app.start_conversation(&visitor).await;
    post_message(&app, &visitor, &conversation, "are you there?").await;
    let pending = poll("a failed attempt", async || receiver.got().into_iter().next()).await;

    app.child.kill().expect("kill -9");
    app.child.wait().expect("reap");
    receiver.answer(200);
    let (child, base, _) = start_with(app.data.path(), &[ALLOW]);
    app.child = child;
    app.base = base;

    let delivered = poll("the delivery after the restart", async || receiver.got().into_iter().find(|r| r.answered == 200)).await;
    assert_eq!(delivered.delivery, pending.delivery, "the same delivery id across the restart");
    let body = verified(&secret, &delivered);
    assert_eq!(body["data"]["text"], "are you there?");
    let admin = app.login_admin().await;
    let recorded = poll("the delivery recorded", async || {
        let d = deliveries(&app, &admin, &id).await;
        (!d.is_empty()).then_some(d)
    })
    .await;
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!((recorded[0]["delivery_id"].as_str(), recorded[0]["status"].as_str()), (Some(pending.delivery.as_str()), Some("delivered")));
    // Nothing was accepted before the kill, so the receiver accepted it exactly once.
    assert_eq!(receiver.got().iter().filter(|r| r.answered == 200).count(), 1);
}

#[tokio::test]
async fn an_erased_users_text_is_never_sent() {
    const TEXT: &str = "my card number is 4111 1111";
    let receiver = Receiver::start(500).await;
    let app = spawn_app_with(&[ALLOW]).await;
    let admin = app.login_admin().await;
    let (_, hook) = register(&app, &admin, &receiver.url, &["MessagePosted"]).await;
    let secret = hook["secret"].as_str().unwrap().to_owned();
    let (visitor, customer) = app.visitor().await;
    let conversation = app.start_conversation(&visitor).await;
    post_message(&app, &visitor, &conversation, TEXT).await;
    // The first attempt (before the erasure) fails; the next one is a second later at the earliest.
    let first = poll("a first attempt", async || receiver.got().into_iter().next()).await;
    assert!(first.body.contains(TEXT), "the text is sent before the erasure (else this test proves nothing)");
    let r = app.http.delete(app.url(&format!("/api/v1/users/{customer}"))).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let before = receiver.got().len();
    receiver.answer(200);

    let delivered = poll("the delivery after the erasure", async || receiver.got().into_iter().find(|r| r.answered == 200)).await;
    let after = &receiver.got()[before..];
    assert!(!after.is_empty());
    for r in after {
        assert!(!r.body.contains(TEXT) && !r.body.contains("4111"), "erased text sent: {}", r.body);
    }
    let body = verified(&secret, &delivered);
    assert_eq!(body["data"]["text"], "[erased]", "{body}");
}

#[tokio::test]
async fn ssrf_targets_are_refused_and_only_admins_manage_webhooks() {
    let app = spawn_app_with(&[ALLOW]).await;
    let admin = app.login_admin().await;
    for url in
        ["http://169.254.169.254/", "https://169.254.169.254/latest/meta-data", "https://10.0.0.1/", "https://localhost/", "https://[::1]/"]
    {
        let (s, body) = register(&app, &admin, url, &["MessagePosted"]).await;
        assert_eq!((s, body["error"]["code"].as_str()), (409, Some("forbidden_host")), "{url}: {body}");
    }
    let (s, body) = register(&app, &admin, "http://hooks.example.com/", &["MessagePosted"]).await;
    assert_eq!((s, body["error"]["code"].as_str()), (409, Some("insecure_url")), "{body}");
    let (s, body) = register(&app, &admin, "https://hooks.example.com/", &["UserErased"]).await;
    assert_eq!((s, body["error"]["code"].as_str()), (409, Some("unknown_event_type")), "{body}");
    let (s, body) = register(&app, &admin, &format!("https://hooks.example.com/{}", "a".repeat(2100)), &["MessagePosted"]).await;
    assert_eq!((s, body["error"]["code"].as_str()), (409, Some("url_too_long")), "{body}");

    let (s, hook) = register(&app, &admin, "https://hooks.example.com/jamuna", &["MessagePosted", "HandoffRequested"]).await;
    assert_eq!(s, 201, "{hook}");
    let id = hook["id"].as_str().unwrap().to_owned();

    // Agents and customers are refused everything.
    let (s, _) = app
        .post("/api/v1/users", Some(&admin), json!({"email": "ana@demo.example", "password": "a strong password", "role": "agent"}))
        .await;
    assert_eq!(s, 201);
    let (_, login) =
        app.post("/api/v1/auth/login", None, json!({"tenant": "demo", "email": "ana@demo.example", "password": "a strong password"})).await;
    let agent = login["access_token"].as_str().unwrap().to_owned();
    let (visitor, _) = app.visitor().await;
    for token in [&agent, &visitor] {
        assert_eq!(app.get("/api/v1/webhooks", Some(token)).await.0, 403);
        assert_eq!(register(&app, token, "https://hooks.example.com/x", &["MessagePosted"]).await.0, 403);
        assert_eq!(app.get(&format!("/api/v1/webhooks/{id}/deliveries"), Some(token)).await.0, 403);
        assert_eq!(app.post(&format!("/api/v1/webhooks/{id}/secret"), Some(token), json!({})).await.0, 403);
        let r = app.http.delete(app.url(&format!("/api/v1/webhooks/{id}"))).bearer_auth(token).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 403);
    }
    assert_eq!(app.get("/api/v1/webhooks", None).await.0, 401);

    // Admins change, rotate and remove.
    let r = app
        .http
        .put(app.url(&format!("/api/v1/webhooks/{id}")))
        .bearer_auth(&admin)
        .json(&json!({"url": "https://hooks.example.com/v2", "event_types": ["ConversationResolved"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (s, rotated) = app.post(&format!("/api/v1/webhooks/{id}/secret"), Some(&admin), json!({})).await;
    assert_eq!(s, 200);
    assert_ne!(rotated["secret"], hook["secret"]);
    let r = app.http.delete(app.url(&format!("/api/v1/webhooks/{id}"))).bearer_auth(&admin).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let (_, list) = app.get("/api/v1/webhooks", Some(&admin)).await;
    assert_eq!(list["items"], json!([]));
    assert_eq!(app.get("/api/v1/webhooks/not-an-id/deliveries", Some(&admin)).await.0, 404);
}
