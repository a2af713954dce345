//! Attacks on sessions (issue 16, findings 1, 2 and the socket half of 9):
//! a socket outliving its token, tokens outliving a demotion or an erasure,
//! a signed token for a tenant that does not exist, a token in the URL.

use crate::app::*;
use futures::StreamExt;
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// Reads frames until the server closes the socket; its close code.
/// Panics if nothing closes it within 60 s (an open socket is the failure).
async fn close_code(ws: &mut Ws) -> u16 {
    let wait = async {
        while let Some(msg) = ws.next().await {
            match msg {
                Ok(Message::Close(Some(f))) => return u16::from(f.code),
                Ok(Message::Close(None)) => return 1005,
                Ok(_) => continue,
                Err(e) => panic!("the socket failed instead of closing: {e}"),
            }
        }
        panic!("the socket ended without a close frame")
    };
    tokio::time::timeout(Duration::from_secs(60), wait).await.expect("the server closes the socket")
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

async fn patch(app: &App, path: &str, token: &str, body: Value) -> u16 {
    app.http.patch(app.url(path)).bearer_auth(token).json(&body).send().await.expect("request").status().as_u16()
}

async fn delete(app: &App, path: &str, token: &str) -> u16 {
    app.http.delete(app.url(path)).bearer_auth(token).send().await.expect("request").status().as_u16()
}

/// An agent of the demo tenant, signed in: (user id, access token).
async fn agent(app: &App, admin: &str, email: &str) -> (String, String) {
    let (s, body) = app.post("/api/v1/users", Some(admin), json!({"email": email, "password": "a strong password", "role": "agent"})).await;
    assert_eq!(s, 201, "{body}");
    let (s, login) = app.post("/api/v1/auth/login", None, json!({"tenant": "demo", "email": email, "password": "a strong password"})).await;
    assert_eq!(s, 200, "{login}");
    (body["id"].as_str().expect("an id").into(), login["access_token"].as_str().expect("a token").into())
}

#[tokio::test]
async fn a_socket_closes_with_4002_when_its_token_expires() {
    let app = spawn_app_with(&[("JAMUNA_ACCESS_TOKEN_TTL_SECS", "3")]).await;
    let (token, _) = app.visitor().await;
    let mut ws = app.socket(&token).await;
    assert_eq!(close_code(&mut ws).await, 4002);
}

#[tokio::test]
async fn re_authenticating_over_the_socket_keeps_it_open() {
    let app = spawn_app_with(&[("JAMUNA_ACCESS_TOKEN_TTL_SECS", "8")]).await;
    let (s, body) = app.post("/api/v1/auth/visitor", None, json!({"widget_key": app.widget_key})).await;
    assert_eq!(s, 201, "{body}");
    let token = body["access_token"].as_str().expect("token");
    let (mut ws, _) = tokio_tungstenite::connect_async(app.ws_url("/api/v1/ws")).await.expect("connect");
    send(&mut ws, json!({"type": "auth", "token": token})).await;
    let ready = next_frame(&mut ws).await;
    assert_eq!(ready["type"], "ready", "{ready}");
    let first_expiry = ready["expires_at"].as_i64().expect("ready says when the token expires");

    // Half way through, the client refreshes and sends the new token.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (s, fresh) = app.post("/api/v1/auth/refresh", None, json!({"refresh_token": body["refresh_token"]})).await;
    assert_eq!(s, 200, "{fresh}");
    send(&mut ws, json!({"type": "auth", "token": fresh["access_token"]})).await;
    let renewed = next_frame(&mut ws).await;
    assert_eq!(renewed["type"], "authenticated", "{renewed}");
    assert!(renewed["expires_at"].as_i64().expect("the new expiry") > first_expiry, "{renewed}");

    // Past the first token's expiry the socket still answers.
    let wait = u64::try_from(first_expiry + 1 - now()).unwrap_or(0);
    tokio::time::sleep(Duration::from_secs(wait)).await;
    send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(frame_where(&mut ws, |f| f["type"] != "presence").await["type"], "pong");

    // A token of someone else does not take the socket over.
    let (other, _) = app.visitor().await;
    send(&mut ws, json!({"type": "auth", "token": other})).await;
    assert_eq!(next_frame(&mut ws).await["code"], "forbidden");
}

#[tokio::test]
async fn a_demoted_agent_loses_the_inbox_socket_and_the_staff_view_of_the_kb() {
    let app = spawn_app().await;
    let admin = app.login_admin().await;
    let (id, token) = agent(&app, &admin, "demoted@demo.example").await;
    let (s, _) = app.get("/api/v1/kb/articles", Some(&token)).await;
    assert_eq!(s, 200);
    let mut ws = app.socket(&token).await;
    send(&mut ws, json!({"type": "subscribe_inbox"})).await;

    assert_eq!(patch(&app, &format!("/api/v1/users/{id}/role"), &admin, json!({"role": "customer"})).await, 200);
    assert_eq!(close_code(&mut ws).await, 4004);
    let (s, body) = app.get("/api/v1/kb/articles", Some(&token)).await;
    assert_eq!(s, 401, "the old token still reads the KB: {body}");
    // A socket opened with the old token is refused as well.
    let (mut ws, _) = tokio_tungstenite::connect_async(app.ws_url("/api/v1/ws")).await.expect("connect");
    send(&mut ws, json!({"type": "auth", "token": token})).await;
    assert_eq!(next_frame(&mut ws).await["code"], "unauthorized");
    assert_eq!(close_code(&mut ws).await, 4001);
}

#[tokio::test]
async fn an_erased_agent_cannot_list_the_inbox() {
    let app = spawn_app().await;
    let admin = app.login_admin().await;
    let (id, token) = agent(&app, &admin, "erased@demo.example").await;
    let (s, _) = app.get("/api/v1/conversations", Some(&token)).await;
    assert_eq!(s, 200);
    let mut ws = app.socket(&token).await;
    assert_eq!(delete(&app, &format!("/api/v1/users/{id}"), &admin).await, 204);
    let (s, body) = app.get("/api/v1/conversations", Some(&token)).await;
    assert_eq!(s, 401, "{body}");
    assert_eq!(close_code(&mut ws).await, 4004);
}

#[tokio::test]
async fn an_erased_visitor_cannot_start_a_conversation() {
    let app = spawn_app().await;
    let admin = app.login_admin().await;
    let (token, id) = app.visitor().await;
    assert_eq!(delete(&app, &format!("/api/v1/users/{id}"), &admin).await, 204);
    let (s, body) = app.post("/api/v1/conversations", Some(&token), json!({"channel": "web"})).await;
    assert_eq!(s, 401, "{body}");
}

#[tokio::test]
async fn signing_out_everywhere_ends_the_tokens_and_sockets() {
    let app = spawn_app().await;
    let admin = app.login_admin().await;
    let (_, token) = agent(&app, &admin, "leaving@demo.example").await;
    let mut ws = app.socket(&token).await;
    let (s, body) = app.post("/api/v1/auth/logout-all", Some(&token), json!({})).await;
    assert_eq!(s, 204, "{body}");
    assert_eq!(close_code(&mut ws).await, 4004);
    let (s, _) = app.get("/api/v1/conversations", Some(&token)).await;
    assert_eq!(s, 401);
    // Signing in again works.
    let (s, _) = app
        .post("/api/v1/auth/login", None, json!({"tenant": "demo", "email": "leaving@demo.example", "password": "a strong password"}))
        .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn a_signed_token_for_a_tenant_that_does_not_exist_cannot_write() {
    let app = spawn_app().await;
    let secret = std::fs::read_to_string(app.data.path().join("dev-jwt-secret")).expect("the dev secret");
    let now = now();
    let claims = json!({"sub": "ghost-admin", "tenant": "ghost", "role": "admin", "visitor": false,
        "iss": "jamuna", "aud": "jamuna-api", "iat": now, "exp": now + 600});
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.trim().as_bytes()),
    )
    .expect("a token");
    let (s, body) = app.post("/api/v1/kb/articles", Some(&token), json!({"title": "Pwned", "body": "Written by nobody."})).await;
    assert_eq!(s, 401, "{body}");
    // Nor for a made-up user of a real tenant.
    let claims = json!({"sub": "ghost-admin", "tenant": "demo", "role": "admin", "visitor": false,
        "iss": "jamuna", "aud": "jamuna-api", "iat": now, "exp": now + 600});
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.trim().as_bytes()),
    )
    .expect("a token");
    let (s, body) = app.post("/api/v1/kb/articles", Some(&token), json!({"title": "Pwned", "body": "Written by nobody."})).await;
    assert_eq!(s, 401, "{body}");
}

#[tokio::test]
async fn a_token_in_the_socket_url_is_refused() {
    let app = spawn_app().await;
    let (token, _) = app.visitor().await;
    match tokio_tungstenite::connect_async(app.ws_url(&format!("/api/v1/ws?token={token}"))).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status().as_u16(), 401),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a socket with the token in its URL was accepted"),
    }
}
