//! Frames the WebSocket refuses: a text frame that is not UTF-8 and a binary
//! frame each close the socket with their documented code (1007, 1003), and
//! nothing of them is stored.

use crate::app::*;
use futures::{SinkExt, StreamExt};
use serde_json::json;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

/// The close code the server sends next (skipping other frames), if any.
async fn close_code(ws: &mut Ws) -> Option<u16> {
    while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
        if let Message::Close(f) = m {
            return f.map(|f| u16::from(f.code));
        }
    }
    None
}

/// The stored version of a conversation (through the API, from the log).
async fn version(app: &App, token: &str, id: &str) -> u64 {
    let (s, body) = app.get(&format!("/api/v1/conversations/{id}"), Some(token)).await;
    assert_eq!(s, 200, "{body}");
    body["version"].as_u64().expect("a version")
}

#[tokio::test]
async fn an_invalid_utf8_text_frame_and_a_binary_frame_close_the_socket_and_store_nothing() {
    let app = spawn_app().await;
    let (visitor, _) = app.visitor().await;
    let id = app.start_conversation(&visitor).await;
    let before = version(&app, &visitor, &id).await;

    // A `send` frame whose text holds a lone 0xE9 byte (Latin-1 "é"): not UTF-8.
    // tungstenite will not build such a Text message, so the frame is made by hand.
    let mut bytes = format!(r#"{{"type":"send","conversation_id":"{id}","client_message_id":"utf8-1","text":"caf"#).into_bytes();
    bytes.extend_from_slice(b"\xe9\"}");
    assert!(std::str::from_utf8(&bytes).is_err());
    let mut ws = app.socket(&visitor).await;
    ws.send(Message::Frame(Frame::message(bytes, OpCode::Data(Data::Text), true))).await.expect("send the raw frame");
    assert_eq!(close_code(&mut ws).await, Some(1007), "invalid UTF-8 closes with 1007");

    // A binary frame carrying a valid `send` frame's bytes is refused too.
    let mut ws = app.socket(&visitor).await;
    let frame = json!({"type": "send", "conversation_id": id, "client_message_id": "bin-1", "text": "hello"}).to_string();
    ws.send(Message::Binary(frame.into_bytes().into())).await.expect("send binary");
    assert_eq!(close_code(&mut ws).await, Some(1003), "binary frames close with 1003");

    assert_eq!(version(&app, &visitor, &id).await, before, "nothing was stored");
    // The server keeps serving: a good frame on a new socket is acked.
    let mut ws = app.socket(&visitor).await;
    send(&mut ws, json!({"type": "send", "conversation_id": id, "client_message_id": "ok-1", "text": "hello"})).await;
    let ack = frame_where(&mut ws, |f| f["type"] == "ack").await;
    assert_eq!(ack["version"].as_u64(), Some(before + 1));
}
