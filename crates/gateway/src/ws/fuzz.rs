//! Fuzz-style property tests (issue 16) of the inbound frame decoder of
//! `/api/v1/ws` ([`parse_traced`], and the `traceparent` it carries):
//! arbitrary text, arbitrary JSON, and valid frames mutated field by field.
//!
//! A bounded number of cases runs in `make test`; set `PROPTEST_CASES` to
//! run long (`PROPTEST_CASES=200000 cargo test -p jamuna-gateway fuzz_`).
//! The properties: nothing panics, every input gives a frame or an error
//! with one of the documented codes, and a valid frame reads back as itself.

use super::protocol::{ClientFrame, parse, parse_traced};
use crate::trace::TraceContext;
use jamuna_domain::ConversationId;
use proptest::prelude::*;
use serde_json::{Value, json};

/// `cases` per run, unless `PROPTEST_CASES` asks for another number.
fn config(cases: u32) -> ProptestConfig {
    let mut c = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = cases;
    }
    c
}

/// The codes of the `error` frame a refused frame is answered with.
const CODES: [&str; 3] = ["invalid_json", "invalid_frame", "unknown_frame"];

/// Strings that tend to break parsers.
fn edge_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just(" \t\r\n".to_owned()),
        Just("\u{0}".to_owned()),
        Just("\u{feff}\u{200b}\u{202e}".to_owned()),
        Just("🦀👩‍👩‍👧\u{10ffff}".to_owned()),
        Just("e\u{301}\u{301}".to_owned()),
        Just("../../etc/passwd".to_owned()),
        Just("a.b.c".to_owned()),
        Just("\\ud800".to_owned()),
        (1usize..70_000).prop_map(|n| "x".repeat(n)),
        any::<String>(),
        "[a-z0-9_-]{1,70}",
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "type",
            "token",
            "conversation_id",
            "after_version",
            "client_message_id",
            "text",
            "typing",
            "traceparent",
        ])
        .prop_map(str::to_owned),
        edge_string(),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        edge_string().prop_map(Value::String),
        prop::sample::select(vec!["auth", "subscribe", "unsubscribe", "send", "typing", "subscribe_inbox", "ping"])
            .prop_map(|t| Value::String(t.to_owned())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn conversation_id() -> impl Strategy<Value = ConversationId> {
    "[A-Za-z0-9_-]{1,64}".prop_map(|s| ConversationId::parse(s).expect("an id"))
}

/// Every client frame.
fn frame() -> impl Strategy<Value = ClientFrame> {
    prop_oneof![
        any::<String>().prop_map(|token| ClientFrame::Auth { token }),
        (conversation_id(), any::<u64>())
            .prop_map(|(conversation_id, after_version)| ClientFrame::Subscribe { conversation_id, after_version }),
        conversation_id().prop_map(|conversation_id| ClientFrame::Unsubscribe { conversation_id }),
        (conversation_id(), any::<String>(), edge_string()).prop_map(|(conversation_id, client_message_id, text)| ClientFrame::Send {
            conversation_id,
            client_message_id,
            text
        }),
        (conversation_id(), any::<bool>()).prop_map(|(conversation_id, typing)| ClientFrame::Typing { conversation_id, typing }),
        Just(ClientFrame::SubscribeInbox {}),
        Just(ClientFrame::Ping {}),
    ]
}

/// The JSON a client sends for a frame (`ClientFrame` is never serialised
/// by the server, so this is the protocol as documented).
fn encode(f: &ClientFrame) -> Value {
    match f {
        ClientFrame::Auth { token } => json!({"type": "auth", "token": token}),
        ClientFrame::Subscribe { conversation_id, after_version } => {
            json!({"type": "subscribe", "conversation_id": conversation_id.as_str(), "after_version": after_version})
        }
        ClientFrame::Unsubscribe { conversation_id } => json!({"type": "unsubscribe", "conversation_id": conversation_id.as_str()}),
        ClientFrame::Send { conversation_id, client_message_id, text } => json!({
            "type": "send", "conversation_id": conversation_id.as_str(), "client_message_id": client_message_id, "text": text
        }),
        ClientFrame::Typing { conversation_id, typing } => {
            json!({"type": "typing", "conversation_id": conversation_id.as_str(), "typing": typing})
        }
        ClientFrame::SubscribeInbox {} => json!({"type": "subscribe_inbox"}),
        ClientFrame::Ping {} => json!({"type": "ping"}),
    }
}

fn traceparent() -> impl Strategy<Value = String> {
    prop_oneof![
        ("[0-9a-f]{32}", "[0-9a-f]{16}", "[0-9a-f]{2}").prop_map(|(t, s, f)| format!("00-{t}-{s}-{f}")),
        "[0-9a-fA-F-]{0,60}",
        edge_string(),
    ]
}

/// One change to a frame's JSON.
#[derive(Debug, Clone)]
enum Mutation {
    Drop(String),
    Set(String, Value),
    /// Wrap the value of a field in `depth` arrays.
    Nest(String, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        key().prop_map(Mutation::Drop),
        (key(), json_value()).prop_map(|(k, v)| Mutation::Set(k, v)),
        // Past serde_json's recursion limit (128); deeper is the nested test's text.
        (key(), 1usize..300).prop_map(|(k, d)| Mutation::Nest(k, d)),
    ]
}

fn mutate(mut v: Value, mutations: &[Mutation]) -> Value {
    let Some(o) = v.as_object_mut() else { return v };
    for m in mutations {
        match m {
            Mutation::Drop(k) => {
                o.remove(k);
            }
            Mutation::Set(k, value) => {
                o.insert(k.clone(), value.clone());
            }
            Mutation::Nest(k, depth) => {
                let mut inner = o.remove(k).unwrap_or(Value::Null);
                for _ in 0..*depth {
                    inner = Value::Array(vec![inner]);
                }
                o.insert(k.clone(), inner);
            }
        }
    }
    v
}

/// A frame, or an error frame's code and a message; never a panic. What
/// parses, re-encoded, parses to the same frame.
fn decodes_or_says_why(text: &str) {
    match parse_traced(text) {
        Ok((frame, traceparent)) => {
            let mut again = encode(&frame);
            if let Some(t) = &traceparent {
                again["traceparent"] = Value::String(t.clone());
                // A traceparent is read or replaced by a fresh trace, never a panic.
                if let Some(ctx) = TraceContext::from_traceparent(t) {
                    let child = TraceContext::from_traceparent(&ctx.traceparent()).expect("a traceparent this hop writes is valid");
                    assert_eq!(child.trace_id_hex(), ctx.trace_id_hex());
                }
                let _ = TraceContext::from_optional(Some(t));
            }
            assert_eq!(parse_traced(&again.to_string()), Ok((frame, traceparent)));
        }
        Err((code, message)) => {
            assert!(CODES.contains(&code), "undocumented code {code}");
            assert!(!message.is_empty());
        }
    }
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn fuzz_ws_frames_take_any_text(bytes in prop::collection::vec(any::<u8>(), 0..512), text in any::<String>()) {
        // A text frame is UTF-8 (tungstenite closes with 1007 otherwise); lossy keeps the rest of the bytes.
        decodes_or_says_why(&String::from_utf8_lossy(&bytes));
        decodes_or_says_why(&text);
    }

    #[test]
    fn fuzz_ws_frames_take_any_json(value in json_value()) {
        decodes_or_says_why(&value.to_string());
    }

    #[test]
    fn fuzz_ws_valid_frames_round_trip(frame in frame(), trace in prop::option::of(traceparent())) {
        let mut value = encode(&frame);
        if let Some(t) = &trace {
            value["traceparent"] = Value::String(t.clone());
        }
        let text = value.to_string();
        prop_assert_eq!(parse_traced(&text), Ok((frame.clone(), trace.clone())));
        if trace.is_none() {
            prop_assert_eq!(parse(&text), Ok(frame));
        }
    }

    #[test]
    fn fuzz_ws_mutated_frames_decode_or_say_why(
        frame in frame(),
        mutations in prop::collection::vec(mutation(), 1..4),
        cut in prop::option::of(any::<usize>()),
    ) {
        let text = mutate(encode(&frame), &mutations).to_string();
        decodes_or_says_why(&text);
        // A frame cut short anywhere (on a character boundary).
        if let Some(cut) = cut {
            let at = cut % (text.len() + 1);
            if text.is_char_boundary(at) {
                decodes_or_says_why(&text[..at]);
            }
        }
    }

    #[test]
    fn fuzz_ws_deeply_nested_frames_are_refused_not_overflowed(depth in 1usize..40_000, field in key()) {
        // Up to the 64 KiB frame limit of nesting, in the field or at the top.
        let nested = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        decodes_or_says_why(&format!("{{\"type\":\"ping\",{}:{nested}}}", Value::String(field)));
        decodes_or_says_why(&nested);
    }
}
