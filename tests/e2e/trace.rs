//! Trace context: a W3C `traceparent` on a request or a WebSocket frame is
//! continued (the response names the same trace), and its trace id is stored
//! as the correlation id of the events it caused — including the bot's
//! answer, which the AI worker writes with the message's correlation id.

use crate::app::*;
use serde_json::{Value, json};
use std::process::Command;
use std::time::{Duration, Instant};

const HTTP_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const WS_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";

/// Every stored event, as `jamuna events tail` prints them.
fn events(app: &App) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_jamuna"))
        .args(["events", "tail"])
        .env("JAMUNA_DATA_DIR", app.data.path())
        .output()
        .expect("run jamuna events tail");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).expect("an event")).collect()
}

fn correlated<'a>(events: &'a [Value], trace: &str) -> Vec<&'a str> {
    let id = uuid::Uuid::parse_str(trace).expect("a trace id").to_string();
    events.iter().filter(|e| e["correlation_id"] == id.as_str()).map(|e| e["type"].as_str().unwrap_or_default()).collect()
}

#[tokio::test]
async fn a_traceparent_is_continued_and_stored_as_the_events_correlation_id() {
    let app = spawn_app().await;
    let (visitor, _) = app.visitor().await;
    let id = app.start_conversation(&visitor).await;

    // HTTP: the response continues the caller's trace with a span of its own.
    let r = app
        .http
        .post(app.url(&format!("/api/v1/conversations/{id}/messages")))
        .bearer_auth(&visitor)
        .header("traceparent", format!("00-{HTTP_TRACE}-00f067aa0ba902b7-01"))
        .json(&json!({"client_message_id": "t-1", "text": "My new card has not arrived yet, when will it come?"}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 201);
    let back = r.headers().get("traceparent").and_then(|v| v.to_str().ok()).expect("a traceparent in the response").to_owned();
    assert!(back.starts_with(&format!("00-{HTTP_TRACE}-")) && !back.contains("00f067aa0ba902b7"), "{back}");
    // Without one, a request still gets a trace of its own.
    let r = app.http.get(app.url("/healthz")).send().await.expect("get");
    let fresh = r.headers().get("traceparent").and_then(|v| v.to_str().ok()).expect("a traceparent").to_owned();
    assert!(!fresh.contains(HTTP_TRACE) && fresh.len() == 55, "{fresh}");

    // WebSocket: a frame's own traceparent.
    let mut ws = app.socket(&visitor).await;
    send(&mut ws, json!({"type": "send", "conversation_id": id, "client_message_id": "t-2", "text": "can I talk to a human please", "traceparent": format!("00-{WS_TRACE}-b7ad6b7169203331-01")})).await;
    assert_eq!(frame_where(&mut ws, |f| f["type"] == "ack").await["client_message_id"], "t-2");
    send(&mut ws, json!({"type": "ping", "traceparent": 7})).await;
    assert_eq!(next_frame(&mut ws).await["code"], "invalid_frame", "a traceparent must be a string");

    // The events carry the trace ids: the message and what the bot did about it.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let all = events(&app);
        let (http, socket) = (correlated(&all, HTTP_TRACE), correlated(&all, WS_TRACE));
        if http.contains(&"BotAnswered") && socket.contains(&"HandoffRequested") {
            assert!(http.contains(&"MessagePosted"), "{http:?}");
            assert!(socket.contains(&"MessagePosted"), "{socket:?}");
            break;
        }
        assert!(Instant::now() < deadline, "the bot's events do not carry the trace ids: {http:?} {socket:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
