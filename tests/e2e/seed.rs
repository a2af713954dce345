//! The original plan's API keeps working.

use crate::app::*;
use futures::{SinkExt, StreamExt};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn ws_client_1_says_hello_and_gets_a_non_empty_text() {
    let app = spawn_app().await;
    let (mut ws, _) = tokio_tungstenite::connect_async(app.ws_url("/ws/1")).await.expect("connect to /ws/1");
    ws.send(Message::Text("Hello".into())).await.expect("send");
    let reply = tokio::time::timeout(Duration::from_secs(30), ws.next()).await.expect("a reply").expect("open").expect("ok");
    match reply {
        Message::Text(t) => assert!(!t.trim().is_empty()),
        other => panic!("expected text, got {other:?}"),
    }
}

#[tokio::test]
async fn auth_token_then_chat_answers() {
    let app = spawn_app().await;
    let r = app.http.post(app.url("/auth/token")).form(&[("username", ADMIN_EMAIL), ("password", "wrong password!")]).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["detail"].is_string());

    let r = app.http.post(app.url("/auth/token")).form(&[("username", ADMIN_EMAIL), ("password", ADMIN_PASSWORD)]).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "bearer");
    // Credentials in the query string are refused (security::tokens tests that further).
    let r = app.http.post(app.url("/auth/token")).query(&[("username", ADMIN_EMAIL), ("password", ADMIN_PASSWORD)]).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 422);

    // The seed's flow: the token from /auth/token chats through /chat, and the bot answers it.
    let token = body["access_token"].as_str().unwrap().to_string();
    let (status, body) =
        app.post("/chat", Some(&token), serde_json::json!({"message": "My new card has not arrived yet, when will it come?"})).await;
    assert_eq!(status, 200, "{body}");
    let response = body["response"].as_str().unwrap_or_default();
    assert!(response.contains("5 working days"), "the bot answers from the knowledge base: {body}");
    let (visitor, _) = app.visitor().await;
    let (status, body) = app.post("/chat", Some(&visitor), serde_json::json!({"message": "Hello"})).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["response"].as_str().is_some_and(|r| !r.trim().is_empty()), "{body}");
}

/// Once the conversation is with a human the bot stays silent, so the seed
/// API says "we will answer here shortly" at once instead of waiting out its
/// 10 s `chat_timeout`: the request must finish well inside a client-side
/// timeout shorter than that.
#[tokio::test]
async fn chat_in_a_handed_off_conversation_gets_the_note_at_once() {
    let app = spawn_app().await;
    let (visitor, _) = app.visitor().await;
    let (status, body) = app.post("/chat", Some(&visitor), serde_json::json!({"message": "I want to talk to a human"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["response"], "I'm passing you to a human agent, who will answer here shortly.", "{body}");

    for message in ["Are you there?", "Hello again"] {
        let r = app
            .http
            .post(app.url("/chat"))
            .bearer_auth(&visitor)
            .json(&serde_json::json!({"message": message}))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .expect("the note comes back before the client gives up (5 s, shorter than the 10 s chat_timeout)");
        assert_eq!(r.status().as_u16(), 200);
        let body: serde_json::Value = r.json().await.expect("json");
        assert_eq!(body["response"], "Thanks, we have your message and will answer here shortly.", "{body}");
    }
}
