//! Attacks on tokens (issue 16, the refresh part of finding 8, the form part
//! of finding 9, and idle visitor identities from finding 5).

use crate::app::{ADMIN_EMAIL, ADMIN_PASSWORD, App, poll, spawn_app, spawn_app_with};
use serde_json::{Value, json};
use std::time::Duration;

async fn refresh(app: &App, token: &str) -> (u16, Value) {
    app.post("/api/v1/auth/refresh", None, json!({"refresh_token": token})).await
}

fn refresh_token(body: &Value) -> String {
    body["refresh_token"].as_str().expect("a refresh token").to_string()
}

/// Finding 8: replaying a used refresh token left the newer token of the same
/// chain valid, so a stolen token raced its owner unnoticed. Now a replay
/// revokes the whole family: the thief and the owner both sign in again.
#[tokio::test]
async fn a_replayed_refresh_token_revokes_its_family() {
    let app = spawn_app().await;
    let (s, body) = app.post("/api/v1/auth/login", None, json!({"tenant": "demo", "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})).await;
    assert_eq!(s, 200, "{body}");
    let first = refresh_token(&body);
    let (s, body) = refresh(&app, &first).await;
    assert_eq!(s, 200, "the first redemption rotates: {body}");
    let second = refresh_token(&body);

    let (s, body) = refresh(&app, &first).await;
    assert_eq!(s, 401, "a replayed token is refused: {body}");
    let (s, body) = refresh(&app, &second).await;
    assert_eq!(s, 401, "and the chain's newer token stops working too: {body}");

    // Another sign-in is another family, untouched by the replay.
    let (s, body) = app.post("/api/v1/auth/login", None, json!({"tenant": "demo", "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})).await;
    assert_eq!(s, 200, "{body}");
    let (s, body) = refresh(&app, &refresh_token(&body)).await;
    assert_eq!(s, 200, "a new sign-in starts a new family: {body}");
}

/// Finding 9: `POST /auth/token?username=…&password=…` signed in, and the
/// password ended up in every proxy's access log. Now credentials in the
/// query string answer 422 saying why, even when the form has them too.
#[tokio::test]
async fn seed_token_refuses_credentials_in_the_query_string() {
    let app = spawn_app().await;
    let creds = [("username", ADMIN_EMAIL), ("password", ADMIN_PASSWORD)];
    let r = app.http.post(app.url("/auth/token")).query(&creds).send().await.expect("request");
    assert_eq!(r.status().as_u16(), 422);
    let body: Value = r.json().await.expect("JSON");
    assert!(body["detail"].as_str().is_some_and(|d| d.contains("query") && d.contains("log")), "{body}");

    let r = app.http.post(app.url("/auth/token")).query(&[("password", ADMIN_PASSWORD)]).form(&creds).send().await.expect("request");
    assert_eq!(r.status().as_u16(), 422, "the query is refused even when the form has the credentials");

    let r = app.http.post(app.url("/auth/token")).form(&creds).send().await.expect("request");
    assert_eq!(r.status().as_u16(), 200, "the form alone signs in");
}

/// Finding 5: every `POST /api/v1/auth/visitor` made a permanent user, so
/// visitor identities piled up for ever. Now a visitor that has not signed in
/// or refreshed for `visitors.idle_secs` is erased like any user: its tokens
/// stop working and its conversation's text is gone. (A few seconds here, so
/// the visitor has time to write before it goes idle.)
#[tokio::test]
async fn an_idle_visitor_is_erased_with_its_text() {
    const WORDS: &str = "periwinkle xylophone marmalade";
    let app = spawn_app_with(&[("JAMUNA_VISITOR_IDLE_SECS", "8")]).await;
    let admin = app.login_admin().await;
    let (s, minted) = app.post("/api/v1/auth/visitor", None, json!({"widget_key": app.widget_key})).await;
    assert_eq!(s, 201, "{minted}");
    let token = minted["access_token"].as_str().expect("a token").to_string();
    let id = minted["user_id"].as_str().expect("an id").to_string();
    let conversation = app.start_conversation(&token).await;
    let (s, b) = app
        .post(&format!("/api/v1/conversations/{conversation}/messages"), Some(&token), json!({"client_message_id": "m1", "text": WORDS}))
        .await;
    assert!(s == 200 || s == 201 || s == 202, "{s} {b}");
    poll("the message in the read model", async || {
        let (_, d) = app.get(&format!("/api/v1/conversations/{conversation}"), Some(&admin)).await;
        d.to_string().contains(WORDS).then_some(())
    })
    .await;

    // Idle from now on: the sweep erases the visitor.
    poll("the idle visitor's token to stop working", async || {
        let (s, _) = app.get("/api/v1/conversations", Some(&token)).await;
        (s == 401).then_some(())
    })
    .await;
    let (s, body) = refresh(&app, &refresh_token(&minted)).await;
    assert_eq!(s, 401, "its refresh token is revoked too: {body}");
    poll("the text to be gone and the visitor erased", async || {
        let (_, d) = app.get(&format!("/api/v1/conversations/{conversation}"), Some(&admin)).await;
        let (_, users) = app.get("/api/v1/users", Some(&admin)).await;
        let erased = users["items"].as_array().and_then(|u| u.iter().find(|u| u["id"] == id.as_str()).cloned());
        (!d.to_string().contains(WORDS) && erased.is_none_or(|u| u["erased"] == true)).then_some(())
    })
    .await;
}

/// The HTTP status a socket upgrade to `url` is refused with, or 101.
async fn upgrade_status(url: &str) -> u16 {
    match tokio_tungstenite::connect_async(url).await {
        Ok(_) => 101,
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => r.status().as_u16(),
        Err(e) => panic!("the upgrade failed without an HTTP answer: {e}"),
    }
}

/// Finding 9, the seed socket: an access token in the URL (`/ws/{id}?token=`)
/// ends up in proxy logs. It is refused; a single-use ticket opens one socket
/// as its caller, once, and is not an access token.
#[tokio::test]
async fn the_seed_socket_takes_a_single_use_ticket_not_a_token_in_the_url() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let app = spawn_app().await;
    let (token, _) = app.visitor().await;

    assert_eq!(upgrade_status(&app.ws_url(&format!("/ws/me?token={token}"))).await, 401, "a token in the URL is refused");

    let (s, body) = app.post("/api/v1/auth/socket-ticket", Some(&token), json!({})).await;
    assert_eq!(s, 201, "{body}");
    let ticket = body["ticket"].as_str().expect("a ticket").to_owned();
    assert!(body["expires_in"].as_u64().is_some_and(|s| s > 0 && s <= 60), "{body}");
    let (s, _) = app.get("/api/v1/conversations", Some(&ticket)).await;
    assert_eq!(s, 401, "a ticket is not an access token");

    let (mut ws, _) =
        tokio_tungstenite::connect_async(app.ws_url(&format!("/ws/me?ticket={ticket}"))).await.expect("the ticket opens a socket");
    ws.send(Message::Text("I want to talk to a human".into())).await.expect("send");
    let reply = tokio::time::timeout(Duration::from_secs(60), ws.next()).await.expect("a reply in time").expect("open").expect("a frame");
    assert!(reply.is_text(), "{reply:?}");
    // The message went into the visitor's own conversation: the ticket's caller.
    let (s, list) = app.get("/api/v1/conversations", Some(&token)).await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "{list}");

    assert_eq!(upgrade_status(&app.ws_url(&format!("/ws/me?ticket={ticket}"))).await, 401, "a ticket opens one socket only");
}
