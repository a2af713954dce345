//! Reading old events as new ones.
//!
//! An event in the log is never rewritten. When an event's shape changes, its
//! schema version goes up and an *upcaster* here turns the old JSON into the
//! new one as it is read, so the rest of the code only knows the current shape.
//!
//! The changes so far, all to `MessagePosted`:
//!
//! * schema 1 is the seed's message shape, `{"sender": "user" | "bot",
//!   "content": "…"}`, as found in data imported from the original product;
//! * schema 2 names the author and carries the client message id;
//! * schema 3 carries `attachments` (a message stored before had none).
//!
//! Upcasters chain: a schema-1 event becomes schema 2, then schema 3.

use crate::DomainEvent;
use serde_json::{Value, json};

/// The schema version this code writes, per event type.
pub fn current_schema(event_type: &str) -> u16 {
    match event_type {
        "MessagePosted" => 3,
        _ => 1,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{event_type} schema {schema} is newer than this Jamuna knows ({known}); upgrade Jamuna")]
    FromTheFuture { event_type: String, schema: u16, known: u16 },
    #[error("{event_type} schema {schema} cannot be upgraded: {reason}")]
    Upcast { event_type: String, schema: u16, reason: String },
    #[error("{event_type} does not match its schema: {reason}")]
    Shape { event_type: String, reason: String },
}

/// Upgrades `data` written as `event_type` schema `schema` to the current schema.
pub fn upcast(event_type: &str, schema: u16, mut data: Value) -> Result<Value, DecodeError> {
    let known = current_schema(event_type);
    if schema > known {
        return Err(DecodeError::FromTheFuture { event_type: event_type.into(), schema, known });
    }
    let fail = |reason: &str| DecodeError::Upcast { event_type: event_type.into(), schema, reason: reason.into() };
    if event_type == "MessagePosted" && schema == 1 {
        let obj = data.as_object_mut().ok_or_else(|| fail("not an object"))?;
        let author = match obj.get("sender").and_then(Value::as_str) {
            Some("user" | "customer") => json!({"kind": "customer"}),
            Some("bot") => json!({"kind": "bot"}),
            Some("agent") => {
                let id = obj.get("agent_id").cloned().ok_or_else(|| fail("an agent message without agent_id"))?;
                json!({"kind": "agent", "id": id})
            }
            _ => return Err(fail("unknown sender")),
        };
        let text = obj.remove("content").ok_or_else(|| fail("no content"))?;
        data = json!({"type": "MessagePosted", "author": author, "text": text, "client_message_id": null});
    }
    if event_type == "MessagePosted" && schema <= 2 {
        let obj = data.as_object_mut().ok_or_else(|| fail("not an object"))?;
        obj.insert("attachments".into(), json!([]));
    }
    Ok(data)
}

/// Upcasts and deserialises one stored event.
pub fn decode<E: DomainEvent>(event_type: &str, schema: u16, data: Value) -> Result<E, DecodeError> {
    let data = upcast(event_type, schema, data)?;
    serde_json::from_value(data).map_err(|e| DecodeError::Shape { event_type: event_type.into(), reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Personal;
    use crate::conversation::{Author, ConversationEvent};

    #[test]
    fn a_seed_message_reads_as_a_current_message() {
        let v1 = json!({"type": "MessagePosted", "sender": "user", "content": "Where is my card?"});
        let e: ConversationEvent = decode("MessagePosted", 1, v1).unwrap();
        assert_eq!(
            e,
            ConversationEvent::MessagePosted {
                author: Author::Customer,
                text: Personal::plain("Where is my card?"),
                client_message_id: None,
                attachments: vec![],
            }
        );
        let bot: ConversationEvent = decode("MessagePosted", 1, json!({"sender": "bot", "content": "Hi!"})).unwrap();
        assert!(matches!(bot, ConversationEvent::MessagePosted { author: Author::Bot, .. }));
    }

    #[test]
    fn a_schema_2_message_reads_as_one_without_attachments() {
        // As stored before attachments existed (the text sealed, as in the log).
        let v2 = json!({"type": "MessagePosted", "author": {"kind": "agent", "id": "ada"}, "text": {"sealed": "AAAA"},
                        "client_message_id": "m1"});
        let e: ConversationEvent = decode("MessagePosted", 2, v2).unwrap();
        let ConversationEvent::MessagePosted { author, text, client_message_id, attachments } = e else { panic!("{e:?}") };
        assert_eq!(author, Author::Agent { id: crate::UserId::parse("ada").unwrap() });
        assert_eq!(text, Personal::Sealed("AAAA".into()));
        assert_eq!(client_message_id.map(|c| c.to_string()).as_deref(), Some("m1"));
        assert!(attachments.is_empty());
    }

    #[test]
    fn the_current_schema_passes_through() {
        use crate::attachment::{Attachment, ContentType};
        let e = ConversationEvent::MessagePosted {
            author: Author::Customer,
            text: Personal::plain(""),
            client_message_id: None,
            attachments: vec![Attachment {
                id: crate::AttachmentId::parse("a1").unwrap(),
                name: Personal::plain("scan.pdf"),
                content_type: ContentType::Pdf,
                size: 1234,
            }],
        };
        let back: ConversationEvent = decode("MessagePosted", 3, serde_json::to_value(&e).unwrap()).unwrap();
        assert_eq!(back, e);
        assert_eq!(e.schema_version(), 3);
    }

    #[test]
    fn unknown_old_shapes_and_future_schemas_are_clear_errors() {
        assert!(matches!(
            decode::<ConversationEvent>("MessagePosted", 1, json!({"sender": "martian", "content": "x"})),
            Err(DecodeError::Upcast { .. })
        ));
        assert!(matches!(decode::<ConversationEvent>("MessagePosted", 4, json!({})), Err(DecodeError::FromTheFuture { known: 3, .. })));
        assert!(matches!(
            decode::<ConversationEvent>("AgentAssigned", 1, json!({"type": "AgentAssigned"})),
            Err(DecodeError::Shape { .. })
        ));
    }
}
