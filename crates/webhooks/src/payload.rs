//! The body of a delivery, and its id.
//!
//! `data` is the staff view of the event: the event as staff read it over the
//! API, without its `type` (which is beside it). Personal data is opened at
//! send time, so content of a user erased before the delivery is sent —
//! even between two attempts — reads `"[erased]"`, never the text.

use jamuna_domain::envelope::Envelope;
use jamuna_domain::{AggregateKind, DomainEvent, Personal};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The id of the delivery of one event to one webhook: `dlv_` and 32 hex
/// digits of a hash of both, so every attempt and every restart names it alike.
pub fn delivery_id(webhook: &str, event_id: uuid::Uuid) -> String {
    let digest = Sha256::new()
        .chain_update(b"jamuna webhook delivery\n")
        .chain_update(webhook)
        .chain_update(b"\n")
        .chain_update(event_id.as_bytes())
        .finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("dlv_{hex}")
}

/// The JSON body of a delivery of `event` (opened).
pub fn body<E: DomainEvent>(delivery_id: &str, event: &Envelope<E>) -> String {
    let mut data = serde_json::to_value(&event.data).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut data {
        map.remove("type");
    }
    scrub(&mut data);
    let conversation_id = (event.stream.kind() == AggregateKind::Conversation).then(|| event.stream.id());
    json!({
        "delivery_id": delivery_id,
        "event_id": event.meta.event_id,
        "type": event.event_type,
        "tenant": event.meta.tenant,
        "conversation_id": conversation_id,
        "occurred_at": event.meta.occurred_at,
        "data": data,
    })
    .to_string()
}

/// Erased personal values (`{"erased": true}`) become `"[erased]"`; sealed
/// ones (never opened: no key) become `null`.
fn scrub(v: &mut Value) {
    match v {
        Value::Object(map) => {
            let erased = map.len() == 1 && map.get("erased") == Some(&Value::Bool(true));
            let sealed = map.len() == 1 && map.get("sealed").is_some_and(Value::is_string);
            if erased {
                *v = Value::String(Personal::ERASED_TEXT.into());
            } else if sealed {
                *v = Value::Null;
            } else {
                map.values_mut().for_each(scrub);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(scrub),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jamuna_domain::conversation::{Author, ConversationEvent};
    use jamuna_domain::{EventMeta, StreamId, TenantId};

    fn envelope(text: Personal) -> Envelope<ConversationEvent> {
        Envelope {
            position: 7,
            stream: StreamId::parse("acme.conversation.c1").unwrap(),
            version: 2,
            meta: EventMeta {
                event_id: uuid::Uuid::nil(),
                tenant: TenantId::parse("acme").unwrap(),
                occurred_at: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
                causation_id: None,
                correlation_id: uuid::Uuid::nil(),
                subject: None,
            },
            event_type: "MessagePosted".into(),
            schema: 2,
            data: ConversationEvent::MessagePosted { author: Author::Customer, text, client_message_id: None, attachments: vec![] },
        }
    }

    #[test]
    fn the_body_carries_ids_type_tenant_conversation_and_the_staff_view() {
        let body: Value = serde_json::from_str(&body("dlv_1", &envelope(Personal::plain("hello")))).unwrap();
        assert_eq!(body["delivery_id"], "dlv_1");
        assert_eq!(body["event_id"], uuid::Uuid::nil().to_string());
        assert_eq!(body["type"], "MessagePosted");
        assert_eq!(body["tenant"], "acme");
        assert_eq!(body["conversation_id"], "c1");
        assert_eq!(body["occurred_at"], "2023-11-14T22:13:20Z");
        assert_eq!(body["data"]["text"], "hello");
        assert_eq!(body["data"]["author"], json!({"kind": "customer"}));
        assert!(body["data"].get("type").is_none());
    }

    #[test]
    fn erased_and_unopened_personal_data_is_never_sent() {
        let erased = body("dlv_1", &envelope(Personal::Erased));
        assert_eq!(serde_json::from_str::<Value>(&erased).unwrap()["data"]["text"], "[erased]");
        let sealed = body("dlv_1", &envelope(Personal::Sealed("c2VjcmV0".into())));
        assert_eq!(serde_json::from_str::<Value>(&sealed).unwrap()["data"]["text"], Value::Null);
        assert!(!sealed.contains("c2VjcmV0"));
    }

    #[test]
    fn a_delivery_id_is_stable_and_distinct_per_webhook_and_event() {
        let (e1, e2) = (uuid::Uuid::from_u128(1), uuid::Uuid::from_u128(2));
        assert_eq!(delivery_id("wh1", e1), delivery_id("wh1", e1));
        assert_ne!(delivery_id("wh1", e1), delivery_id("wh2", e1));
        assert_ne!(delivery_id("wh1", e1), delivery_id("wh1", e2));
        assert_eq!(delivery_id("wh1", e1).len(), 36);
    }
}
