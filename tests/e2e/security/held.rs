//! The attacks that already held when issue 16 was filed, kept in the suite
//! so they keep holding: forged, `none`, confused-algorithm, wrong-audience,
//! wrong-issuer and expired tokens; role escalation; oversized and malformed
//! bodies and frames; path traversal out of the static directory. (Tenant
//! and visitor isolation over REST: `api::customers_and_tenants_are_isolated`;
//! over the socket: the gateway's `it::ws` tests.)

use crate::app::*;
use futures::{SinkExt, StreamExt};
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs() as i64
}

fn sign(alg: Algorithm, claims: &Value, key: &[u8]) -> String {
    jsonwebtoken::encode(&jsonwebtoken::Header::new(alg), claims, &jsonwebtoken::EncodingKey::from_secret(key)).expect("a token")
}

/// `base` with `field` set to `value`.
fn with(base: &Value, field: &str, value: Value) -> Value {
    let mut v = base.clone();
    v[field] = value;
    v
}

#[tokio::test]
async fn tokens_signed_wrongly_or_for_someone_else_are_refused() {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let app = spawn_app().await;
    let secret = std::fs::read_to_string(app.data.path().join("dev-jwt-secret")).expect("the dev secret");
    let secret = secret.trim().as_bytes();
    let (_, me) = app.post("/api/v1/auth/login", None, json!({"tenant": "demo", "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})).await;
    let admin_id = me["user_id"].as_str().expect("an id").to_owned();
    let t = now();
    let good = json!({"sub": admin_id, "tenant": "demo", "role": "admin", "visitor": false,
        "iss": "jamuna", "aud": "jamuna-api", "iat": t, "exp": t + 600});
    // The control: a token signed as the server signs is taken.
    let (s, body) = app.get("/api/v1/users/me", Some(&sign(Algorithm::HS256, &good, secret))).await;
    assert_eq!(s, 200, "the control token: {body}");

    let payload = b64.encode(good.to_string());
    let hs256 = sign(Algorithm::HS256, &good, secret);
    let signature = hs256.rsplit('.').next().expect("a signature");
    let attempts = [
        ("another audience", sign(Algorithm::HS256, &with(&good, "aud", json!("someone-else")), secret)),
        ("another issuer", sign(Algorithm::HS256, &with(&good, "iss", json!("evil")), secret)),
        ("expired an hour ago", sign(Algorithm::HS256, &with(&with(&good, "exp", json!(t - 3600)), "iat", json!(t - 7200)), secret)),
        ("another key", sign(Algorithm::HS256, &good, b"0123456789abcdef0123456789abcdef-not-the-key")),
        ("HS512 with the server's key", sign(Algorithm::HS512, &good, secret)),
        ("alg none", format!("{}.{payload}.", b64.encode(r#"{"alg":"none","typ":"JWT"}"#))),
        // Key confusion: an RS256 header over an HMAC signature made with the secret.
        ("RS256 header, HMAC signature", format!("{}.{payload}.{signature}", b64.encode(r#"{"alg":"RS256","typ":"JWT"}"#))),
        (
            "no expiry",
            sign(
                Algorithm::HS256,
                &{
                    let mut v = good.clone();
                    v.as_object_mut().expect("object").remove("exp");
                    v
                },
                secret,
            ),
        ),
        ("a role in a customer's token raised", {
            let (visitor, _) = app.visitor().await;
            let parts: Vec<&str> = visitor.split('.').collect();
            let mut claims: Value = serde_json::from_slice(&b64.decode(parts[1]).expect("base64")).expect("claims");
            claims["role"] = json!("admin");
            format!("{}.{}.{}", parts[0], b64.encode(claims.to_string()), parts[2])
        }),
    ];
    for (what, token) in attempts {
        let (s, body) = app.get("/api/v1/users", Some(&token)).await;
        assert_eq!(s, 401, "{what}: {body}");
    }
}

#[tokio::test]
async fn customers_and_agents_cannot_raise_their_role() {
    let app = spawn_app().await;
    let admin = app.login_admin().await;
    let (visitor, visitor_id) = app.visitor().await;
    let (s, body) = app
        .post("/api/v1/users", Some(&admin), json!({"email": "agent@demo.example", "password": "a strong password", "role": "agent"}))
        .await;
    assert_eq!(s, 201, "{body}");
    let agent_id = body["id"].as_str().expect("an id").to_owned();
    let (_, login) = app
        .post("/api/v1/auth/login", None, json!({"tenant": "demo", "email": "agent@demo.example", "password": "a strong password"}))
        .await;
    let agent = login["access_token"].as_str().expect("a token").to_owned();

    let patch = |token: String, id: String, role: &'static str| {
        let app = &app;
        async move {
            let r =
                app.http.patch(app.url(&format!("/api/v1/users/{id}/role"))).bearer_auth(token).json(&json!({"role": role})).send().await;
            r.expect("a response").status().as_u16()
        }
    };
    assert_eq!(patch(visitor.clone(), visitor_id.clone(), "admin").await, 403, "a customer promotes itself");
    assert_eq!(patch(agent.clone(), agent_id.clone(), "admin").await, 403, "an agent promotes itself");
    let (s, _) = app.get("/api/v1/users", Some(&visitor)).await;
    assert_eq!(s, 403, "a customer lists the users");
    let (s, _) =
        app.post("/api/v1/users", Some(&agent), json!({"email": "x@demo.example", "password": "a strong password", "role": "admin"})).await;
    assert_eq!(s, 403, "an agent creates an admin");
    let r = app
        .http
        .put(app.url("/api/v1/tenant/settings"))
        .bearer_auth(&agent)
        .json(&json!({"allowed_origins": ["https://evil.example"], "self_signup": true}))
        .send()
        .await
        .expect("a response");
    assert_eq!(r.status().as_u16(), 403, "an agent changes the tenant's settings");
    let (s, _) = app.post("/api/v1/kb/articles", Some(&visitor), json!({"title": "Pwned", "body": "by a customer"})).await;
    assert_eq!(s, 403, "a customer writes the knowledge base");
    // And the roles are as they were.
    let (_, me) = app.get("/api/v1/users/me", Some(&agent)).await;
    assert_eq!(me["role"], "agent", "{me}");
}

/// The status of a POST to `path` whose head declares `length` bytes of JSON
/// and whose body is never sent.
async fn declared_but_unsent(app: &App, path: &str, token: &str, length: usize) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = app.base.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(host).await.expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {host}\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n\r\n"
    );
    socket.write_all(head.as_bytes()).await.expect("the head is sent");
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(Duration::from_secs(10), async {
        while !answer.windows(2).any(|w| w == b"\r\n") {
            match socket.read(&mut buf).await.expect("read") {
                0 => break,
                n => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the server answers before the body arrives");
    let line = String::from_utf8_lossy(&answer);
    line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("a status line: {line:?}"))
}

#[tokio::test]
async fn oversized_and_malformed_bodies_and_frames_are_refused_and_nothing_is_stored() {
    let app = spawn_app().await;
    let (visitor, _) = app.visitor().await;
    let id = app.start_conversation(&visitor).await;
    let path = format!("/api/v1/conversations/{id}/messages");
    let send = |body: Vec<u8>| {
        let (app, path, visitor) = (&app, &path, &visitor);
        async move {
            let r = app.http.post(app.url(path)).bearer_auth(visitor).header("content-type", "application/json").body(body).send().await;
            r.expect("a response").status().as_u16()
        }
    };
    // A 2 MiB body is refused from its declared length, before it is read. The
    // request goes over a raw socket that sends the head and waits for the
    // answer: a client still writing the body when the server answers and closes
    // may see a reset instead of the 413 (a race in the client, not the server).
    assert_eq!(declared_but_unsent(&app, &path, &visitor, 2 * 1024 * 1024).await, 413, "a 2 MiB body");
    for (what, body) in [
        ("not JSON", b"{not json".to_vec()),
        ("not UTF-8", vec![0xff, 0xfe, 0x7b]),
        ("a number for the text", br#"{"text": 42}"#.to_vec()),
        ("an unknown field", br#"{"text": "hi", "author": "agent"}"#.to_vec()),
        ("nested a thousand deep", format!("{}{}", "[".repeat(1000), "]".repeat(1000)).into_bytes()),
    ] {
        let s = send(body).await;
        assert!((400..500).contains(&s), "{what}: {s}");
    }
    let (_, detail) = app.get(&format!("/api/v1/conversations/{id}"), Some(&visitor)).await;
    let messages = detail["events"].as_array().expect("events").iter().filter(|e| e["event"]["type"] == "MessagePosted").count();
    assert_eq!(messages, 0, "nothing was stored: {detail}");

    // A frame over the socket's limit closes it (1009); a malformed one gets an error frame and the socket goes on.
    let mut ws = app.socket(&visitor).await;
    send_frame(&mut ws, "{nope").await;
    let e = frame_where(&mut ws, |f| f["type"] == "error").await;
    assert!(e["code"].is_string(), "{e}");
    ws.send(Message::Text("x".repeat(70 * 1024).into())).await.ok();
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(c))) => return c.map(|c| u16::from(c.code)),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    })
    .await
    .expect("the socket closes in time");
    if let Some(code) = closed {
        assert_eq!(code, 1009, "closed as too big");
    }
}

async fn send_frame(ws: &mut Ws, text: &str) {
    ws.send(Message::Text(text.to_owned().into())).await.expect("send");
}

#[tokio::test]
async fn paths_out_of_the_static_directory_are_not_served() {
    let app = spawn_app().await;
    // Raw request lines, so the client does not normalise the dots away.
    let addr = app.base.trim_start_matches("http://").to_owned();
    for path in [
        "/../Cargo.toml",
        "/../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/admin/..%2f..%2fCargo.toml",
        "/..%5c..%5cCargo.toml",
        "/%2e%2e%2fCargo.toml",
    ] {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(&addr).await.expect("connect");
        stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes()).await.expect("write");
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(!answer.contains("[workspace]") && !answer.contains("root:x:0:0"), "{path} served a file outside: {answer}");
        assert!(!answer.starts_with("HTTP/1.1 5"), "{path}: {}", answer.lines().next().unwrap_or_default());
    }
}
