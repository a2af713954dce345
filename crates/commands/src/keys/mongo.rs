//! Keys in a MongoDB (or FerretDB) `keys` collection, shared by every process
//! of the distributed mode (gateways seal, projectors and the AI worker open).
//!
//! One document per data subject: `{_id: "<tenant>/<subject>", tenant,
//! subject, key: BinData}`. Erasing replaces the document with a tombstone
//! that has no `key` field, so nothing new is ever sealed for the subject.
//!
//! **Secure deletion.** Unlike the SQLite adapter (`secure_delete` and a WAL
//! truncation overwrite the erased key's bytes), a MongoDB-protocol server
//! gives no way to make sure the old document's bytes are overwritten: the
//! storage engine (WiredTiger, or FerretDB's backend) may keep them in free
//! pages, its journal, the oplog of a replica set, or backups until those are
//! reused or expire. Crypto-shredding with this adapter is as strong as the
//! server's own data retention; run it with an encrypted storage volume and
//! bounded oplog/backup retention if erasure must be final at the byte level.
//!
//! Keys are not cached in the process: another process may erase a key at any
//! moment, and a cached copy would keep opening the subject's data after the
//! erasure. Tombstones are final, so they are cached.

use super::{DataKey, KeyStore, KeyStoreError};
use async_trait::async_trait;
use jamuna_domain::{TenantId, UserId};
use mongodb::bson::{Binary, Bson, Document, doc, spec::BinarySubtype};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::{Client, Collection};
use std::collections::HashSet;
use std::sync::Mutex;

/// The collection's name.
pub const COLLECTION: &str = "keys";

pub struct MongoKeyStore {
    keys: Collection<Document>,
    erased: Mutex<HashSet<String>>,
}

fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> KeyStoreError {
    KeyStoreError::Unavailable(Box::new(e))
}

fn id(tenant: &TenantId, subject: &UserId) -> String {
    format!("{tenant}/{subject}")
}

fn duplicate(e: &mongodb::error::Error) -> bool {
    match e.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(w)) => w.code == 11000,
        ErrorKind::Command(c) => c.code == 11000,
        _ => false,
    }
}

/// What a document says: `Some(Some(key))` a key, `Some(None)` erased.
fn read(d: Option<Document>) -> Option<Option<DataKey>> {
    let d = d?;
    Some(match d.get("key") {
        Some(Bson::Binary(b)) => <[u8; 32]>::try_from(b.bytes.as_slice()).ok().map(DataKey),
        _ => None,
    })
}

impl MongoKeyStore {
    /// Connects to `url` (`mongodb://host:port`) and uses database `database`.
    pub async fn connect(url: &str, database: &str) -> Result<Self, KeyStoreError> {
        let client = Client::with_uri_str(url).await.map_err(unavailable)?;
        let db = client.database(database);
        db.run_command(doc! {"ping": 1}).await.map_err(unavailable)?;
        Ok(Self { keys: db.collection(COLLECTION), erased: Mutex::new(HashSet::new()) })
    }

    fn known_erased(&self, id: &str) -> bool {
        self.erased.lock().unwrap_or_else(|p| p.into_inner()).contains(id)
    }

    fn remember_erased(&self, id: String) {
        self.erased.lock().unwrap_or_else(|p| p.into_inner()).insert(id);
    }

    async fn lookup(&self, id: &str) -> Result<Option<Option<DataKey>>, KeyStoreError> {
        if self.known_erased(id) {
            return Ok(Some(None));
        }
        let found = read(self.keys.find_one(doc! {"_id": id}).await.map_err(unavailable)?);
        if let Some(None) = found {
            self.remember_erased(id.to_owned());
        }
        Ok(found)
    }
}

#[async_trait]
impl KeyStore for MongoKeyStore {
    async fn key_for_sealing(&self, tenant: &TenantId, subject: &UserId) -> Result<DataKey, KeyStoreError> {
        let id = id(tenant, subject);
        for _ in 0..3 {
            match self.lookup(&id).await? {
                Some(Some(k)) => return Ok(k),
                Some(None) => return Err(KeyStoreError::Erased(subject.clone())),
                None => {}
            }
            let k = DataKey::random();
            let bytes = Binary { subtype: BinarySubtype::Generic, bytes: k.0.to_vec() };
            match self.keys.insert_one(doc! {"_id": &id, "tenant": tenant.as_str(), "subject": subject.as_str(), "key": bytes}).await {
                Ok(_) => return Ok(k),
                // Another process made it first: use theirs.
                Err(e) if duplicate(&e) => continue,
                Err(e) => return Err(unavailable(e)),
            }
        }
        Err(KeyStoreError::Unavailable(format!("the key of {id} keeps changing").into()))
    }

    async fn key_for_opening(&self, tenant: &TenantId, subject: &UserId) -> Result<Option<DataKey>, KeyStoreError> {
        Ok(self.lookup(&id(tenant, subject)).await?.flatten())
    }

    async fn erase(&self, tenant: &TenantId, subject: &UserId) -> Result<(), KeyStoreError> {
        let id = id(tenant, subject);
        let tombstone = doc! {"_id": &id, "tenant": tenant.as_str(), "subject": subject.as_str(), "erased": true};
        self.keys.replace_one(doc! {"_id": &id}, tombstone).upsert(true).await.map_err(unavailable)?;
        self.remember_erased(id);
        Ok(())
    }
}
