//! Fuzz-style property tests (issue 16) of reading stored events: a NATS
//! message (subject and payload) to a [`RecordedEvent`], then to each
//! aggregate's domain event (upcasting old schemas) and, with personal
//! data, opening it — fed arbitrary bytes, valid stored events mutated, and
//! sealed values tampered with.
//!
//! A bounded number of cases runs in `make test`; set `PROPTEST_CASES` to
//! run long (`PROPTEST_CASES=100000 cargo test -p jamuna-commands fuzz_`).
//! The properties: nothing panics; every message gives an event or a clear
//! error; a tampered sealed value never opens to other text.

use super::{Decoder, Stored};
use crate::keys::memory::MemoryKeyStore;
use crate::seal::{self, SealError, Sealer};
use jamuna_domain::conversation::{Author, ConversationEvent};
use jamuna_domain::email_claim::EmailClaimEvent;
use jamuna_domain::knowledge_base::KnowledgeBaseEvent;
use jamuna_domain::tenant::TenantEvent;
use jamuna_domain::user::UserEvent;
use jamuna_domain::{AggregateKind, DomainEvent, EventMeta, Personal, TenantId, UserId};
use proptest::prelude::*;
use serde_json::{Value, json};
use std::sync::Arc;

/// `cases` per run, unless `PROPTEST_CASES` asks for another number.
fn config(cases: u32) -> ProptestConfig {
    let mut c = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = cases;
    }
    c
}

fn edge_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("\u{0}\u{feff}\u{202e}".to_owned()),
        Just("🦀\u{10ffff}".to_owned()),
        Just("acme.conversation.c1".to_owned()),
        Just("acme.user.u1".to_owned()),
        Just("acme..".to_owned()),
        (1usize..10_000).prop_map(|n| "x".repeat(n)),
        any::<String>(),
        "[a-z0-9._-]{1,80}",
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
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((edge_string(), inner), 0..5).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn tenant() -> TenantId {
    TenantId::parse("acme").expect("an id")
}

fn meta(event_id: uuid::Uuid, subject: Option<UserId>) -> EventMeta {
    EventMeta {
        event_id,
        tenant: tenant(),
        occurred_at: chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("a time"),
        causation_id: None,
        correlation_id: event_id,
        subject,
    }
}

/// A valid stored payload of each aggregate, in every schema it may have.
fn valid_payloads() -> Vec<(&'static str, Value)> {
    let stored = |event_type: &str, schema: u16, data: Value| {
        let s = Stored {
            version: 1,
            meta: meta(uuid::Uuid::from_u128(7), Some(UserId::parse("u1").expect("an id"))),
            event_type: event_type.into(),
            schema,
            data: serde_json::value::to_raw_value(&data).expect("JSON"),
        };
        serde_json::to_value(&s).expect("a stored event encodes")
    };
    vec![
        (
            "acme.conversation.c1",
            stored(
                "MessagePosted",
                2,
                json!({"type": "MessagePosted", "author": {"kind": "customer"}, "text": "hi", "client_message_id": "m1"}),
            ),
        ),
        ("acme.conversation.c1", stored("MessagePosted", 1, json!({"type": "MessagePosted", "sender": "user", "content": "hi"}))),
        (
            "acme.conversation.c1",
            stored(
                "BotAnswered",
                1,
                json!({"type": "BotAnswered", "in_reply_to": 2, "text": {"sealed": "AAAA"}, "intent": null, "confidence": 0.5, "sources": []}),
            ),
        ),
        (
            "acme.user.u1",
            stored(
                "UserRegistered",
                1,
                json!({"type": "UserRegistered", "tenant": "acme", "user_id": "u1", "role": "agent", "name": {"erased": true}, "email": null, "password_hash": null}),
            ),
        ),
        ("acme.tenant.acme", stored("WidgetKeyRotated", 1, json!({"type": "WidgetKeyRotated", "widget_key": "k"}))),
        ("acme.kb.kb", stored("ArticleRemoved", 1, json!({"type": "ArticleRemoved", "article_id": "a1"}))),
        ("acme.canned.replies", stored("CannedReplyRemoved", 1, json!({"type": "CannedReplyRemoved", "id": "r1"}))),
    ]
}

/// A change to a stored payload: a field of the envelope, of its meta or
/// of its data replaced or dropped.
#[derive(Debug, Clone)]
enum Mutation {
    Set(&'static str, String, Value),
    Drop(&'static str, String),
}

fn place() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["", "meta", "data"])
}

fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "version",
            "meta",
            "type",
            "schema",
            "data",
            "event_id",
            "tenant",
            "occurred_at",
            "causation_id",
            "correlation_id",
            "subject",
            "author",
            "text",
            "sender",
            "content",
            "sealed",
            "erased",
            "confidence",
            "role",
            "widget_key",
            "article_id",
        ])
        .prop_map(str::to_owned),
        edge_string(),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (place(), field(), json_value()).prop_map(|(p, f, v)| Mutation::Set(p, f, v)),
        (place(), field()).prop_map(|(p, f)| Mutation::Drop(p, f)),
    ]
}

fn mutate(mut v: Value, mutations: &[Mutation]) -> Value {
    for m in mutations {
        let (place, f) = match m {
            Mutation::Set(p, f, _) | Mutation::Drop(p, f) => (*p, f),
        };
        let target = if place.is_empty() { Some(&mut v) } else { v.get_mut(place) };
        let Some(Value::Object(o)) = target else { continue };
        match m {
            Mutation::Set(_, _, value) => {
                o.insert(f.clone(), value.clone());
            }
            Mutation::Drop(..) => {
                o.remove(f);
            }
        }
    }
    v
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().expect("a runtime")
}

/// A message gives an event or an error that says why; the event decodes
/// (and opens) as each aggregate's events or says why; nothing panics.
fn read(rt: &tokio::runtime::Runtime, sealer: &Sealer, subject: &str, sequence: u64, payload: &[u8]) {
    let decoder = Decoder { subject_prefix: "events".into() };
    let recorded = match decoder.decode(subject, sequence, payload) {
        Ok(r) => r,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    assert_eq!(recorded.position, sequence);
    fn each<E: DomainEvent>(rt: &tokio::runtime::Runtime, sealer: &Sealer, r: &super::RecordedEvent) {
        if let Err(e) = seal::decode::<E>(r) {
            assert!(!e.to_string().is_empty());
        }
        if let Err(e) = rt.block_on(sealer.open::<E>(r)) {
            assert!(!e.to_string().is_empty());
        }
    }
    each::<ConversationEvent>(rt, sealer, &recorded);
    each::<UserEvent>(rt, sealer, &recorded);
    each::<TenantEvent>(rt, sealer, &recorded);
    each::<KnowledgeBaseEvent>(rt, sealer, &recorded);
    each::<EmailClaimEvent>(rt, sealer, &recorded);
    each::<jamuna_domain::canned_reply::CannedReplyEvent>(rt, sealer, &recorded);
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn fuzz_stored_events_take_any_message(subject in edge_string(), sequence in any::<u64>(), payload in prop::collection::vec(any::<u8>(), 0..1024)) {
        let (rt, sealer) = (runtime(), Sealer::new(Arc::new(MemoryKeyStore::default())));
        read(&rt, &sealer, &subject, sequence, &payload);
        read(&rt, &sealer, &format!("events.{subject}"), sequence, &payload);
    }

    #[test]
    fn fuzz_stored_events_take_mutated_events(
        which in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..4),
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let (rt, sealer) = (runtime(), Sealer::new(Arc::new(MemoryKeyStore::default())));
        let payloads = valid_payloads();
        let (stream, valid) = which.get(&payloads);
        let subject = format!("events.{stream}");
        // Unmutated, each reads as its aggregate's event.
        let r = Decoder { subject_prefix: "events".into() }.decode(&subject, 1, valid.to_string().as_bytes()).expect("a valid event");
        let decoded = match r.stream.kind() {
            AggregateKind::Conversation => seal::decode::<ConversationEvent>(&r).map(|_| ()),
            AggregateKind::User => seal::decode::<UserEvent>(&r).map(|_| ()),
            AggregateKind::Tenant => seal::decode::<TenantEvent>(&r).map(|_| ()),
            AggregateKind::KnowledgeBase => seal::decode::<KnowledgeBaseEvent>(&r).map(|_| ()),
            AggregateKind::EmailClaim => seal::decode::<EmailClaimEvent>(&r).map(|_| ()),
            AggregateKind::CannedReplies => seal::decode::<jamuna_domain::canned_reply::CannedReplyEvent>(&r).map(|_| ()),
            AggregateKind::Team => seal::decode::<jamuna_domain::team::TeamEvent>(&r).map(|_| ()),
            AggregateKind::Webhooks => seal::decode::<jamuna_domain::webhook::WebhooksEvent>(&r).map(|_| ()),
            AggregateKind::WebhookDeliveries => seal::decode::<jamuna_domain::webhook::DeliveriesEvent>(&r).map(|_| ()),
        };
        prop_assert!(decoded.is_ok(), "{:?}", decoded);
        read(&rt, &sealer, &subject, 1, valid.to_string().as_bytes());
        let mutated = mutate(valid.clone(), &mutations).to_string();
        read(&rt, &sealer, &subject, 1, mutated.as_bytes());
        if let Some(cut) = cut {
            let bytes = mutated.as_bytes();
            read(&rt, &sealer, &subject, 1, &bytes[..cut.index(bytes.len() + 1)]);
        }
    }

    #[test]
    fn fuzz_tampered_sealed_values_do_not_open(
        text in any::<String>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
        replace in prop::option::of("[A-Za-z0-9+/=]{0,120}"),
    ) {
        let rt = runtime();
        let sealer = Sealer::new(Arc::new(MemoryKeyStore::default()));
        let ada = UserId::parse("ada").expect("an id");
        let id = uuid::Uuid::now_v7();
        let mut event = ConversationEvent::MessagePosted { author: Author::Customer, text: Personal::Plain(text.clone()), client_message_id: None, attachments: vec![] };
        rt.block_on(sealer.seal(&tenant(), Some(&ada), id, &mut event)).expect("seals");
        let ConversationEvent::MessagePosted { text: Personal::Sealed(sealed), .. } = &event else { panic!("not sealed") };
        let mut tampered = replace.unwrap_or_else(|| sealed.clone()).into_bytes();
        for (at, byte) in &flips {
            if !tampered.is_empty() {
                let i = at.index(tampered.len());
                tampered[i] ^= byte;
            }
        }
        let tampered = String::from_utf8_lossy(&tampered).into_owned();
        let data = json!({"type": "MessagePosted", "author": {"kind": "customer"}, "text": {"sealed": tampered}, "client_message_id": null});
        let recorded = super::RecordedEvent {
            position: 1,
            stream: jamuna_domain::StreamId::parse("acme.conversation.c1").expect("a stream"),
            version: 1,
            meta: meta(id, Some(ada)),
            event_type: "MessagePosted".into(),
            schema: 2,
            data: serde_json::value::to_raw_value(&data).expect("JSON"),
        };
        match rt.block_on(sealer.open::<ConversationEvent>(&recorded)) {
            Ok(opened) => {
                // Only the untouched value opens, and to its own text.
                prop_assert_eq!(&tampered, sealed);
                let ConversationEvent::MessagePosted { text: Personal::Plain(t), .. } = opened.data else { panic!("not opened") };
                prop_assert_eq!(t, text);
            }
            Err(e) => prop_assert!(matches!(e, SealError::Corrupt(_)), "{}", e),
        }
    }
}
