//! Keys in memory: for tests, and for tools that never persist anything.

use super::{DataKey, KeyStore, KeyStoreError};
use async_trait::async_trait;
use jamuna_domain::{TenantId, UserId};
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
pub struct MemoryKeyStore {
    /// `None`: erased.
    keys: Mutex<HashMap<(TenantId, UserId), Option<DataKey>>>,
}

impl MemoryKeyStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(TenantId, UserId), Option<DataKey>>> {
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl KeyStore for MemoryKeyStore {
    async fn key_for_sealing(&self, tenant: &TenantId, subject: &UserId) -> Result<DataKey, KeyStoreError> {
        let mut keys = self.lock();
        match keys.entry((tenant.clone(), subject.clone())).or_insert_with(|| Some(DataKey::random())) {
            Some(k) => Ok(k.clone()),
            None => Err(KeyStoreError::Erased(subject.clone())),
        }
    }

    async fn key_for_opening(&self, tenant: &TenantId, subject: &UserId) -> Result<Option<DataKey>, KeyStoreError> {
        Ok(self.lock().get(&(tenant.clone(), subject.clone())).cloned().flatten())
    }

    async fn erase(&self, tenant: &TenantId, subject: &UserId) -> Result<(), KeyStoreError> {
        self.lock().insert((tenant.clone(), subject.clone()), None);
        Ok(())
    }
}
