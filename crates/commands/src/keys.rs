//! Per-user data keys, kept outside the event log.
//!
//! Each data subject (a user) gets a random 256-bit key on first use. Erasing
//! the subject deletes the key and leaves a tombstone, so nothing new is ever
//! sealed for an erased user. Keys are cached in memory; erasing goes through
//! the same store, which drops the cached key.

#[cfg(feature = "testing")]
pub mod contract;
pub mod memory;
pub mod mongo;
pub mod sqlite;

use async_trait::async_trait;
use jamuna_domain::{TenantId, UserId};

/// A 256-bit data key.
#[derive(Clone)]
pub struct DataKey(pub(crate) [u8; 32]);

impl DataKey {
    pub fn random() -> Self {
        let mut k = [0u8; 32];
        rand::fill(&mut k);
        Self(k)
    }

    /// HMAC-SHA256 of `message` under this key: a name for something that
    /// only a holder of the key can compute (e.g. the stream of an e-mail
    /// address's claim), never used to seal data.
    pub fn mac(&self, message: &[u8]) -> [u8; 32] {
        use hmac::Mac;
        let mut mac = <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(message);
        mac.finalize().into_bytes().into()
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    #[error("user {0} has been erased: no personal data is stored for them any more")]
    Erased(UserId),
    #[error("the key store is unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Where data keys live.
#[async_trait]
pub trait KeyStore: Send + Sync + 'static {
    /// The subject's key, made on first use. Refused for an erased subject.
    async fn key_for_sealing(&self, tenant: &TenantId, subject: &UserId) -> Result<DataKey, KeyStoreError>;
    /// The subject's key, or `None` if it was erased (or never made).
    async fn key_for_opening(&self, tenant: &TenantId, subject: &UserId) -> Result<Option<DataKey>, KeyStoreError>;
    /// Deletes the subject's key for good. Erasing twice is fine.
    async fn erase(&self, tenant: &TenantId, subject: &UserId) -> Result<(), KeyStoreError>;
}

#[cfg(test)]
mod tests {
    use super::DataKey;

    #[test]
    fn a_mac_depends_on_key_and_message() {
        let (a, b) = (DataKey::random(), DataKey::random());
        assert_eq!(a.mac(b"acme\nada@example.com"), a.mac(b"acme\nada@example.com"));
        assert_ne!(a.mac(b"acme\nada@example.com"), a.mac(b"acme\nbob@example.com"));
        assert_ne!(a.mac(b"acme\nada@example.com"), b.mac(b"acme\nada@example.com"));
        // RFC 4231, test case 2 (a short key, zero-padded by HMAC like ours would be).
        let mut jefe = [0u8; 32];
        jefe[..4].copy_from_slice(b"Jefe");
        let hex: String = DataKey(jefe).mac(b"what do ya want for nothing?").iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }
}
