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
