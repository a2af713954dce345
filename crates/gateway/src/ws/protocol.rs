//! The frames of `/api/v1/ws`, JSON text frames with a `type`.
//!
//! Client → server:
//!
//! | frame | meaning |
//! |---|---|
//! | `{"type":"auth","token":"…"}` | first frame; later, a fresh token of the same user extends the session (answered by `authenticated`) |
//! | `{"type":"subscribe","conversation_id":"…","after_version":N}` | every event after version N, then live ones |
//! | `{"type":"unsubscribe","conversation_id":"…"}` | stop |
//! | `{"type":"send","conversation_id":"…","client_message_id":"…","text":"…"}` | post a message; answered by `ack` |
//! | `{"type":"typing","conversation_id":"…","typing":true}` | typing indicator (not stored) |
//! | `{"type":"subscribe_inbox"}` | agents: live updates of the tenant's conversations |
//! | `{"type":"ping"}` | heartbeat; answered by `pong` |
//!
//! Every client frame may also carry `"traceparent":"00-<trace id>-<span id>-<flags>"`
//! (W3C trace context): the frame's work joins that trace, and the trace id is
//! stored as the correlation id of the events it causes. Without one, each
//! frame starts a new trace.
//!
//! Server → client: `ready` (with `expires_at`, the token's expiry in Unix
//! seconds), `authenticated` (`{"type":"authenticated","expires_at":N}`, the
//! new expiry after a re-authentication), `event`, `ack`, `typing`, `presence`, `pong`, and `error` (`{"type":"error","code":"…","message":"…"}`; the socket stays
//! open unless the close code says otherwise).
//!
//! A customer's `event` frames are the customer view ([`crate::view`]): no
//! `position`, no staff-only events (tags), no intent, confidence or handoff
//! reason, and staff user ids (there and in `typing`) replaced by per-conversation
//! aliases. A customer's versions therefore have gaps: resume from the last
//! version seen (`after_version`), never expect N+1 after N.
//!
//! `{"type":"presence","online":["<user id>",…]}` goes to staff (agent and
//! admin) sockets only: first right after `ready`, then whenever the set of
//! the tenant's staff online changes (on any gateway replica; within a few
//! seconds). A frame may repeat the list the socket already has. A staff user is online while one of their sockets is open and
//! alive: the socket's open, its `ping` frames and its answers to the server's
//! pings keep them online for 75 s.
//!
//! Sessions end: a socket closes with 4002 when its token expires unless a
//! fresh token was sent in an `auth` frame before then, and with 4004 when
//! the user's role changes, the user is erased or signs out everywhere.
//!
//! Close codes: 4001 unauthenticated, 4002 the token expired (refresh and
//! reconnect), 4004 the session ended (sign in again), 4003 origin not allowed for the
//! tenant, 4008 too slow (the send queue overflowed: reconnect and resume),
//! 1008 policy (frame rate exceeded, or idle past the heartbeat timeout),
//! 1012 service restart (reconnect), 1003 binary frames are not accepted,
//! 1007 a text frame that is not valid UTF-8, 1009 a frame over 64 KiB,
//! 1002 any other unreadable frame. Nothing in a refused frame is stored.

use jamuna_domain::ConversationId;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    Auth {
        token: String,
    },
    Subscribe {
        conversation_id: ConversationId,
        #[serde(default)]
        after_version: u64,
    },
    Unsubscribe {
        conversation_id: ConversationId,
    },
    Send {
        conversation_id: ConversationId,
        client_message_id: String,
        text: String,
    },
    Typing {
        conversation_id: ConversationId,
        typing: bool,
    },
    SubscribeInbox {},
    Ping {},
}

/// Why a frame could not be read, as an `error` frame's code.
pub fn parse(text: &str) -> Result<ClientFrame, (&'static str, String)> {
    parse_traced(text).map(|(frame, _)| frame)
}

/// A frame and its optional `traceparent` field (W3C trace context, allowed
/// on every client frame: see [`crate::trace`]).
pub fn parse_traced(text: &str) -> Result<(ClientFrame, Option<String>), (&'static str, String)> {
    let mut value: serde_json::Value = serde_json::from_str(text).map_err(|e| ("invalid_json", format!("the frame is not JSON: {e}")))?;
    let traceparent = match value.as_object_mut().and_then(|o| o.remove("traceparent")) {
        None => None,
        Some(serde_json::Value::String(t)) => Some(t),
        Some(_) => return Err(("invalid_frame", "\"traceparent\" must be a string".into())),
    };
    let Some(kind) = value.get("type").and_then(|t| t.as_str()) else {
        return Err(("invalid_frame", "a frame needs a string \"type\"".into()));
    };
    const KNOWN: [&str; 7] = ["auth", "subscribe", "unsubscribe", "send", "typing", "subscribe_inbox", "ping"];
    if !KNOWN.contains(&kind) {
        return Err(("unknown_frame", format!("unknown frame type {kind:?}")));
    }
    let frame = serde_json::from_value(value).map_err(|e| ("invalid_frame", e.to_string()))?;
    Ok((frame, traceparent))
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    Ready { user_id: &'a str, tenant: &'a str, role: jamuna_domain::user::Role, expires_at: i64 },
    Authenticated { expires_at: i64 },
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
        assert!(matches!(
            parse(r#"{"type":"subscribe","conversation_id":"c1","after_version":3}"#),
            Ok(ClientFrame::Subscribe { after_version: 3, .. })
        ));
        assert_eq!(parse("nope").unwrap_err().0, "invalid_json");
        assert_eq!(parse(r#"{"kind":"ping"}"#).unwrap_err().0, "invalid_frame");
        assert_eq!(parse(r#"{"type":"explode"}"#).unwrap_err().0, "unknown_frame");
        assert_eq!(parse(r#"{"type":"send","conversation_id":"c1"}"#).unwrap_err().0, "invalid_frame");
        assert_eq!(parse(r#"{"type":"subscribe","conversation_id":"../etc"}"#).unwrap_err().0, "invalid_frame");
        assert_eq!(parse(r#"{"type":"ping","extra":1}"#).unwrap_err().0, "invalid_frame");
    }
}
