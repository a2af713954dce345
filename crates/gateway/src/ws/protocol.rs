//! The frames of `/api/v1/ws`, JSON text frames with a `type`.
//!
//! Client → server:
//!
//! | frame | meaning |
//! |---|---|
//! | `{"type":"auth","token":"…"}` | first frame (unless the token came in the URL) |
//! | `{"type":"subscribe","conversation_id":"…","after_version":N}` | every event after version N, then live ones |
//! | `{"type":"unsubscribe","conversation_id":"…"}` | stop |
//! | `{"type":"send","conversation_id":"…","client_message_id":"…","text":"…"}` | post a message; answered by `ack` |
//! | `{"type":"typing","conversation_id":"…","typing":true}` | typing indicator (not stored) |
//! | `{"type":"subscribe_inbox"}` | agents: live updates of the tenant's conversations |
//! | `{"type":"ping"}` | heartbeat; answered by `pong` |
//!
//! Server → client: `ready`, `event`, `ack`, `typing`, `pong`, and `error` (`{"type":"error","code":"…","message":"…"}`; the socket stays
//! open unless the close code says otherwise).
//!
//! Close codes: 4001 unauthenticated, 4003 origin not allowed for the
//! tenant, 4008 too slow (the send queue overflowed: reconnect and resume),
//! 1008 policy (frame rate exceeded, or idle past the heartbeat timeout),
//! 1012 service restart (reconnect), 1003 binary frames are not accepted.

use jamuna_domain::ConversationId;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    Auth { token: String },
    Subscribe { conversation_id: ConversationId, #[serde(default)] after_version: u64 },
    Unsubscribe { conversation_id: ConversationId },
    Send { conversation_id: ConversationId, client_message_id: String, text: String },
    Typing { conversation_id: ConversationId, typing: bool },
    SubscribeInbox {},
    Ping {},
}

/// Why a frame could not be read, as an `error` frame's code.
pub fn parse(text: &str) -> Result<ClientFrame, (&'static str, String)> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| ("invalid_json", format!("the frame is not JSON: {e}")))?;
    let Some(kind) = value.get("type").and_then(|t| t.as_str()) else {
        return Err(("invalid_frame", "a frame needs a string \"type\"".into()));
    };
    const KNOWN: [&str; 7] = ["auth", "subscribe", "unsubscribe", "send", "typing", "subscribe_inbox", "ping"];
    if !KNOWN.contains(&kind) {
        return Err(("unknown_frame", format!("unknown frame type {kind:?}")));
    }
    serde_json::from_value(value).map_err(|e| ("invalid_frame", e.to_string()))
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    Ready { user_id: &'a str, tenant: &'a str, role: jamuna_domain::user::Role },
    Ack { conversation_id: &'a str, client_message_id: &'a str, version: u64, duplicate: bool },
    Typing { conversation_id: &'a str, user_id: &'a str, role: jamuna_domain::user::Role, typing: bool },
    Pong,
    Error { code: &'a str, message: &'a str },
}

impl ServerFrame<'_> {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| r#"{"type":"error","code":"internal","message":"unserialisable frame"}"#.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_parse_or_say_why_not() {
        assert_eq!(parse(r#"{"type":"ping"}"#), Ok(ClientFrame::Ping {}));
        assert!(matches!(parse(r#"{"type":"subscribe","conversation_id":"c1","after_version":3}"#), Ok(ClientFrame::Subscribe { after_version: 3, .. })));
        assert_eq!(parse("nope").unwrap_err().0, "invalid_json");
        assert_eq!(parse(r#"{"kind":"ping"}"#).unwrap_err().0, "invalid_frame");
        assert_eq!(parse(r#"{"type":"explode"}"#).unwrap_err().0, "unknown_frame");
        assert_eq!(parse(r#"{"type":"send","conversation_id":"c1"}"#).unwrap_err().0, "invalid_frame");
        assert_eq!(parse(r#"{"type":"subscribe","conversation_id":"../etc"}"#).unwrap_err().0, "invalid_frame");
        assert_eq!(parse(r#"{"type":"ping","extra":1}"#).unwrap_err().0, "invalid_frame");
    }
}
