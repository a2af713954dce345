//! Sealing and opening personal data in events.
//!
//! Before an event is appended, every [`Personal::Plain`] value in it is
//! encrypted with XChaCha20-Poly1305 under its data subject's key, with a
//! random 192-bit nonce and the event id (and the field's index) as
//! associated data, so a sealed value cannot be moved to another event
//! unnoticed. After an event is read, sealed values are opened again, or read
//! as [`Personal::Erased`] when the subject's key is gone.

use crate::keys::{DataKey, KeyStore, KeyStoreError};
use crate::log::RecordedEvent;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use jamuna_domain::envelope::Envelope;
use jamuna_domain::upcast::{self, DecodeError};
use jamuna_domain::{DomainEvent, Personal, TenantId, UserId};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error(transparent)]
    Keys(#[from] KeyStoreError),
    #[error("event {0} carries personal data but names no data subject")]
    NoSubject(uuid::Uuid),
    #[error("personal data in event {0} does not open with its subject's key (tampered or corrupt)")]
    Corrupt(uuid::Uuid),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("event {0} could not be serialised: {1}")]
    Encode(uuid::Uuid, #[source] serde_json::Error),
}

const NONCE_LEN: usize = 24;

/// Seals and opens personal data with keys from a [`KeyStore`].
#[derive(Clone)]
pub struct Sealer {
    keys: Arc<dyn KeyStore>,
}

impl Sealer {
    pub fn new(keys: Arc<dyn KeyStore>) -> Self {
        Self { keys }
    }

    pub fn keys(&self) -> &Arc<dyn KeyStore> {
        &self.keys
    }

    /// Encrypts every plain personal value of `event` in place.
    pub async fn seal<E: DomainEvent>(
        &self,
        tenant: &TenantId,
        subject: Option<&UserId>,
        event_id: uuid::Uuid,
        event: &mut E,
    ) -> Result<(), SealError> {
        let fields = event.personal_fields_mut();
        if fields.iter().all(|f| !matches!(f, Personal::Plain(_))) {
            return Ok(());
        }
        let subject = subject.ok_or(SealError::NoSubject(event_id))?;
        let key = self.keys.key_for_sealing(tenant, subject).await?;
        let cipher = XChaCha20Poly1305::new((&key.0).into());
        for (i, field) in fields.into_iter().enumerate() {
            if let Personal::Plain(text) = field {
                let mut nonce = [0u8; NONCE_LEN];
                rand::fill(&mut nonce);
                let aad = aad(event_id, i);
                let ct = cipher
                    .encrypt(XNonce::from_slice(&nonce), Payload { msg: text.as_bytes(), aad: &aad })
                    .map_err(|_| SealError::Corrupt(event_id))?;
                let mut out = nonce.to_vec();
                out.extend_from_slice(&ct);
                *field = Personal::Sealed(base64::engine::general_purpose::STANDARD_NO_PAD.encode(out));
            }
        }
        Ok(())
    }

    /// Decodes a stored event (upcasting older schemas) and opens its
    /// personal data.
    pub async fn open<E: DomainEvent>(&self, recorded: &RecordedEvent) -> Result<Envelope<E>, SealError> {
        let mut event: E = decode(recorded)?;
        let fields = event.personal_fields_mut();
        if fields.iter().any(|f| matches!(f, Personal::Sealed(_))) {
            let key = match &recorded.meta.subject {
                Some(s) => self.keys.key_for_opening(&recorded.meta.tenant, s).await?,
                None => None,
            };
            open_fields(key.as_ref(), recorded.meta.event_id, fields)?;
        }
        Ok(Envelope {
            position: recorded.position,
            stream: recorded.stream.clone(),
            version: recorded.version,
            meta: recorded.meta.clone(),
            event_type: recorded.event_type.clone(),
            schema: recorded.schema,
            data: event,
        })
    }
}

/// Decodes a stored event without opening its personal data (enough to
/// rebuild an aggregate's state, which never reads personal content).
pub fn decode<E: DomainEvent>(recorded: &RecordedEvent) -> Result<E, DecodeError> {
    let shape = |e: serde_json::Error| DecodeError::Shape { event_type: recorded.event_type.clone(), reason: e.to_string() };
    if recorded.schema == upcast::current_schema(&recorded.event_type) {
        serde_json::from_str(recorded.data.get()).map_err(shape)
    } else {
        let value = serde_json::from_str(recorded.data.get()).map_err(shape)?;
        upcast::decode(&recorded.event_type, recorded.schema, value)
    }
}

fn aad(event_id: uuid::Uuid, field: usize) -> [u8; 17] {
    let mut a = [0u8; 17];
    a[..16].copy_from_slice(event_id.as_bytes());
    a[16] = field as u8;
    a
}

fn open_fields(key: Option<&DataKey>, event_id: uuid::Uuid, fields: Vec<&mut Personal>) -> Result<(), SealError> {
    let cipher = key.map(|k| XChaCha20Poly1305::new((&k.0).into()));
    for (i, field) in fields.into_iter().enumerate() {
        let Personal::Sealed(b64) = field else { continue };
        let Some(cipher) = &cipher else {
            *field = Personal::Erased;
            continue;
        };
        let bytes = base64::engine::general_purpose::STANDARD_NO_PAD.decode(b64.as_bytes()).map_err(|_| SealError::Corrupt(event_id))?;
        if bytes.len() < NONCE_LEN {
            return Err(SealError::Corrupt(event_id));
        }
        let (nonce, ct) = bytes.split_at(NONCE_LEN);
        let plain = cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: &aad(event_id, i) })
            .map_err(|_| SealError::Corrupt(event_id))?;
        *field = Personal::Plain(String::from_utf8(plain).map_err(|_| SealError::Corrupt(event_id))?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::memory::MemoryKeyStore;
    use jamuna_domain::conversation::{Author, ConversationEvent};

    fn message(text: &str) -> ConversationEvent {
        ConversationEvent::MessagePosted {
            author: Author::Customer,
            text: Personal::plain(text),
            client_message_id: None,
            attachments: vec![],
        }
    }

    fn recorded(event: &ConversationEvent, id: uuid::Uuid, subject: &UserId) -> RecordedEvent {
        Envelope {
            position: 1,
            stream: jamuna_domain::StreamId::parse("acme.conversation.c1").unwrap(),
            version: 1,
            meta: jamuna_domain::EventMeta {
                event_id: id,
                tenant: TenantId::parse("acme").unwrap(),
                occurred_at: chrono::Utc::now(),
                causation_id: None,
                correlation_id: id,
                subject: Some(subject.clone()),
            },
            event_type: event.event_type().into(),
            schema: event.schema_version(),
            data: serde_json::value::to_raw_value(event).unwrap(),
        }
    }

    #[tokio::test]
    async fn sealed_data_opens_until_the_subject_is_erased() {
        let sealer = Sealer::new(Arc::new(MemoryKeyStore::default()));
        let tenant = TenantId::parse("acme").unwrap();
        let ada = UserId::parse("ada").unwrap();
        let id = uuid::Uuid::now_v7();
        let mut e = message("my card number is 1234");
        sealer.seal(&tenant, Some(&ada), id, &mut e).await.unwrap();
        let stored = recorded(&e, id, &ada);
        assert!(!stored.data.get().contains("1234"), "plain text reached the log: {}", stored.data.get());

        let opened: Envelope<ConversationEvent> = sealer.open(&stored).await.unwrap();
        assert_eq!(opened.data, message("my card number is 1234"));

        sealer.keys().erase(&tenant, &ada).await.unwrap();
        let opened: Envelope<ConversationEvent> = sealer.open(&stored).await.unwrap();
        assert!(matches!(opened.data, ConversationEvent::MessagePosted { text: Personal::Erased, .. }));
        assert!(matches!(
            sealer.seal(&tenant, Some(&ada), id, &mut message("again")).await,
            Err(SealError::Keys(KeyStoreError::Erased(_)))
        ));
    }

    #[tokio::test]
    async fn a_sealed_value_moved_to_another_event_does_not_open() {
        let sealer = Sealer::new(Arc::new(MemoryKeyStore::default()));
        let tenant = TenantId::parse("acme").unwrap();
        let ada = UserId::parse("ada").unwrap();
        let id = uuid::Uuid::now_v7();
        let mut e = message("secret");
        sealer.seal(&tenant, Some(&ada), id, &mut e).await.unwrap();
        let moved = recorded(&e, uuid::Uuid::now_v7(), &ada);
        assert!(matches!(sealer.open::<ConversationEvent>(&moved).await, Err(SealError::Corrupt(_))));
    }

    #[tokio::test]
    async fn personal_data_without_a_subject_is_refused() {
        let sealer = Sealer::new(Arc::new(MemoryKeyStore::default()));
        let mut e = message("hi");
        let r = sealer.seal(&TenantId::parse("acme").unwrap(), None, uuid::Uuid::now_v7(), &mut e).await;
        assert!(matches!(r, Err(SealError::NoSubject(_))));
    }
}
