//! Attachments: uploaded files, encrypted with the data key of the
//! conversation's customer (their data subject, whoever uploaded) and kept
//! in the blob store ([`crate::blobs`]).
//!
//! An upload is stored under `attachments/{tenant}/{conversation}/{id}` as
//!
//! ```text
//! "JMB1" | header length (u16, big-endian) | header (JSON) | nonce (24) | ciphertext
//! ```
//!
//! The header is readable — who uploaded it, whose key opens it (the
//! subject; blobs written before it was recorded name only the uploader,
//! whose key it then is), the type its bytes were found to be, and its
//! size — and the ciphertext is XChaCha20-Poly1305 of the file name and the
//! bytes under the subject's data key (the same per-user key that seals the
//! conversation's personal data in events, [`crate::keys`]), with the
//! blob's key and the header as associated data: a blob cannot be moved to
//! another conversation, nor its header changed, unnoticed. Erasing the
//! customer deletes the key, and what is left in the store of every file
//! of their conversations — theirs and those staff sent them — is
//! ciphertext nobody can open ([`Opened::Erased`]).

use crate::blobs::{BlobError, BlobKey, BlobStore};
use crate::keys::{KeyStore, KeyStoreError};
use bytes::Bytes;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use jamuna_domain::attachment::{ContentType, FileName};
use jamuna_domain::{AttachmentId, ConversationId, TenantId, UserId};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

const MAGIC: &[u8; 4] = b"JMB1";
const NONCE_LEN: usize = 24;

#[derive(Debug, thiserror::Error)]
pub enum AttachmentError {
    /// The bytes are none of the accepted types.
    #[error("this kind of file is not accepted (images, PDF and plain text are)")]
    UnsupportedType,
    #[error(transparent)]
    Keys(#[from] KeyStoreError),
    #[error(transparent)]
    Blobs(#[from] BlobError),
    #[error("attachment blob {0} is corrupt or was tampered with")]
    Corrupt(String),
}

/// What anyone allowed to see the conversation may know of an upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAttachment {
    pub id: AttachmentId,
    pub uploader: UserId,
    pub name: String,
    pub content_type: ContentType,
    pub size: u64,
}

/// An upload as read back.
#[derive(Debug)]
pub enum Opened {
    Readable {
        attachment: StoredAttachment,
        bytes: Bytes,
    },
    /// Its subject (the conversation's customer) was erased: only
    /// ciphertext is left.
    Erased {
        subject: UserId,
    },
}

#[derive(Serialize, Deserialize)]
struct Header {
    uploader: UserId,
    /// Whose key seals it; absent in blobs from before it was recorded,
    /// which the uploader's key seals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subject: Option<UserId>,
    content_type: ContentType,
    size: u64,
}

/// Uploads, sealed, in a [`BlobStore`].
#[derive(Clone)]
pub struct AttachmentStore {
    blobs: Arc<dyn BlobStore>,
    keys: Arc<dyn KeyStore>,
}

impl AttachmentStore {
    pub fn new(blobs: Arc<dyn BlobStore>, keys: Arc<dyn KeyStore>) -> Self {
        Self { blobs, keys }
    }

    fn key(tenant: &TenantId, conversation: &ConversationId, id: &AttachmentId) -> Result<BlobKey, BlobError> {
        BlobKey::parse(format!("attachments/{tenant}/{conversation}/{id}"))
    }

    /// Stores `bytes` uploaded by `uploader` to `conversation`, sealed with
    /// the key of `subject` (the conversation's customer), under a new id.
    /// Refuses bytes of a type that is not accepted, whatever the name says.
    #[allow(clippy::too_many_arguments)]
    pub async fn store(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        uploader: &UserId,
        subject: &UserId,
        name: &FileName,
        bytes: &[u8],
    ) -> Result<StoredAttachment, AttachmentError> {
        let content_type = ContentType::sniff(bytes).ok_or(AttachmentError::UnsupportedType)?;
        let id = AttachmentId::from_uuid(uuid::Uuid::now_v7());
        let key = Self::key(tenant, conversation, &id)?;
        let data_key = self.keys.key_for_sealing(tenant, subject).await?;
        let header = Header { uploader: uploader.clone(), subject: Some(subject.clone()), content_type, size: bytes.len() as u64 };
        let header_json = serde_json::to_vec(&header).map_err(|e| AttachmentError::Corrupt(e.to_string()))?;
        let name_bytes = name.as_str().as_bytes();
        let mut plain = Vec::with_capacity(2 + name_bytes.len() + bytes.len());
        plain.extend_from_slice(&(name_bytes.len() as u16).to_be_bytes());
        plain.extend_from_slice(name_bytes);
        plain.extend_from_slice(bytes);
        let mut nonce = [0u8; NONCE_LEN];
        rand::fill(&mut nonce);
        let aad = aad(&key, &header_json);
        let cipher = XChaCha20Poly1305::new((&data_key.0).into());
        let sealed = cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: &plain, aad: &aad })
            .map_err(|_| AttachmentError::Corrupt(key.to_string()))?;
        let mut blob = Vec::with_capacity(4 + 2 + header_json.len() + NONCE_LEN + sealed.len());
        blob.extend_from_slice(MAGIC);
        blob.extend_from_slice(&(header_json.len() as u16).to_be_bytes());
        blob.extend_from_slice(&header_json);
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&sealed);
        self.blobs.put(&key, blob.into()).await?;
        Ok(StoredAttachment { id, uploader: uploader.clone(), name: name.as_str().to_owned(), content_type, size: header.size })
    }

    /// The upload `id` of `conversation`: `None` if there is none.
    pub async fn open(
        &self,
        tenant: &TenantId,
        conversation: &ConversationId,
        id: &AttachmentId,
    ) -> Result<Option<Opened>, AttachmentError> {
        let key = Self::key(tenant, conversation, id)?;
        let Some(blob) = self.blobs.get(&key).await? else { return Ok(None) };
        let corrupt = || AttachmentError::Corrupt(key.to_string());
        if blob.len() < 6 || &blob[..4] != MAGIC {
            return Err(corrupt());
        }
        let header_len = u16::from_be_bytes([blob[4], blob[5]]) as usize;
        let rest = &blob[6..];
        if rest.len() < header_len + NONCE_LEN {
            return Err(corrupt());
        }
        let (header_json, rest) = rest.split_at(header_len);
        let header: Header = serde_json::from_slice(header_json).map_err(|_| corrupt())?;
        let subject = header.subject.as_ref().unwrap_or(&header.uploader);
        let Some(data_key) = self.keys.key_for_opening(tenant, subject).await? else {
            return Ok(Some(Opened::Erased { subject: subject.clone() }));
        };
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let cipher = XChaCha20Poly1305::new((&data_key.0).into());
        let plain =
            cipher.decrypt(XNonce::from_slice(nonce), Payload { msg: sealed, aad: &aad(&key, header_json) }).map_err(|_| corrupt())?;
        if plain.len() < 2 {
            return Err(corrupt());
        }
        let name_len = u16::from_be_bytes([plain[0], plain[1]]) as usize;
        let Some(name) = plain.get(2..2 + name_len) else { return Err(corrupt()) };
        let name = String::from_utf8(name.to_vec()).map_err(|_| corrupt())?;
        let bytes = Bytes::copy_from_slice(&plain[2 + name_len..]);
        if bytes.len() as u64 != header.size {
            return Err(corrupt());
        }
        let attachment =
            StoredAttachment { id: id.clone(), uploader: header.uploader, name, content_type: header.content_type, size: header.size };
        Ok(Some(Opened::Readable { attachment, bytes }))
    }
}

fn aad(key: &BlobKey, header: &[u8]) -> Vec<u8> {
    let mut a = Vec::with_capacity(key.as_str().len() + 1 + header.len());
    a.extend_from_slice(key.as_str().as_bytes());
    a.push(0);
    a.extend_from_slice(header);
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blobs::fs::FsBlobs;
    use crate::keys::memory::MemoryKeyStore;

    struct Fixture {
        dir: tempfile::TempDir,
        store: AttachmentStore,
        keys: Arc<MemoryKeyStore>,
        tenant: TenantId,
        conversation: ConversationId,
        ada: UserId,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let keys = Arc::new(MemoryKeyStore::default());
        let store = AttachmentStore::new(Arc::new(FsBlobs::open(dir.path()).unwrap()), keys.clone());
        Fixture {
            dir,
            store,
            keys,
            tenant: TenantId::parse("acme").unwrap(),
            conversation: ConversationId::parse("c1").unwrap(),
            ada: UserId::parse("ada").unwrap(),
        }
    }

    fn files_under(dir: &std::path::Path) -> Vec<Vec<u8>> {
        let mut out = vec![];
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() { out.extend(files_under(&path)) } else { out.push(std::fs::read(path).unwrap()) }
        }
        out
    }

    #[tokio::test]
    async fn an_upload_reads_back_and_is_sealed_at_rest() {
        let f = fixture();
        let text = b"my account number is 987654321";
        let name = FileName::parse("statement-ada.txt").unwrap();
        let stored = f.store.store(&f.tenant, &f.conversation, &f.ada, &f.ada, &name, text).await.unwrap();
        assert_eq!((stored.content_type, stored.size, stored.name.as_str()), (ContentType::Text, 30, "statement-ada.txt"));
        let Some(Opened::Readable { attachment, bytes }) = f.store.open(&f.tenant, &f.conversation, &stored.id).await.unwrap() else {
            panic!("readable")
        };
        assert_eq!((attachment, &bytes[..]), (stored, &text[..]));
        let at_rest = files_under(f.dir.path());
        assert_eq!(at_rest.len(), 1);
        let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
        assert!(!contains(&at_rest[0], b"987654321") && !contains(&at_rest[0], b"statement-ada"), "plain bytes at rest");
    }

    #[tokio::test]
    async fn erasing_the_uploader_leaves_ciphertext_nobody_opens() {
        let f = fixture();
        let name = FileName::parse("a.png").unwrap();
        let stored = f.store.store(&f.tenant, &f.conversation, &f.ada, &f.ada, &name, b"\x89PNG\r\n\x1a\nxxxx").await.unwrap();
        f.keys.erase(&f.tenant, &f.ada).await.unwrap();
        assert!(matches!(
            f.store.open(&f.tenant, &f.conversation, &stored.id).await.unwrap(),
            Some(Opened::Erased { subject }) if subject == f.ada
        ));
        assert!(matches!(
            f.store.store(&f.tenant, &f.conversation, &f.ada, &f.ada, &name, b"\x89PNG\r\n\x1a\n").await,
            Err(AttachmentError::Keys(KeyStoreError::Erased(_)))
        ));
    }

    #[tokio::test]
    async fn a_file_staff_sent_is_sealed_for_the_customer_and_goes_with_them() {
        let f = fixture();
        let agent = UserId::parse("agent").unwrap();
        let name = FileName::parse("invoice.txt").unwrap();
        let stored = f.store.store(&f.tenant, &f.conversation, &agent, &f.ada, &name, b"invoice 42").await.unwrap();
        assert_eq!(stored.uploader, agent);
        f.keys.erase(&f.tenant, &agent).await.unwrap();
        assert!(
            matches!(f.store.open(&f.tenant, &f.conversation, &stored.id).await.unwrap(), Some(Opened::Readable { .. })),
            "an agent who leaves takes nothing of the customer's conversation with them"
        );
        f.keys.erase(&f.tenant, &f.ada).await.unwrap();
        assert!(matches!(
            f.store.open(&f.tenant, &f.conversation, &stored.id).await.unwrap(),
            Some(Opened::Erased { subject }) if subject == f.ada
        ));
    }

    #[tokio::test]
    async fn unknown_types_are_refused_and_unknown_ids_are_none() {
        let f = fixture();
        let exe = FileName::parse("cat.png").unwrap();
        assert!(matches!(
            f.store.store(&f.tenant, &f.conversation, &f.ada, &f.ada, &exe, b"MZ\x90\0\x03\0\0\0").await,
            Err(AttachmentError::UnsupportedType)
        ));
        let none = AttachmentId::parse("nope").unwrap();
        assert!(f.store.open(&f.tenant, &f.conversation, &none).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_blob_moved_to_another_conversation_does_not_open() {
        let f = fixture();
        let stored = f.store.store(&f.tenant, &f.conversation, &f.ada, &f.ada, &FileName::parse("a.txt").unwrap(), b"hello").await.unwrap();
        let from = f.dir.path().join(format!("attachments/acme/c1/{}", stored.id));
        let to_dir = f.dir.path().join("attachments/acme/c2");
        std::fs::create_dir_all(&to_dir).unwrap();
        std::fs::copy(from, to_dir.join(stored.id.as_str())).unwrap();
        let other = ConversationId::parse("c2").unwrap();
        assert!(matches!(f.store.open(&f.tenant, &other, &stored.id).await, Err(AttachmentError::Corrupt(_))));
    }
}
