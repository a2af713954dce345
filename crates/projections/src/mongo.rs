//! What the MongoDB read models share: a database handle and the
//! checkpoints collection.
//!
//! MongoDB-compatible servers (FerretDB among them) may not offer
//! multi-document transactions, so a batch is not one atomic write. Instead
//! every document carries the log position it reflects, the fold skips events
//! at or below it, and a document is only replaced on the condition that it
//! still holds the position it was read at (else the write is a conflict and
//! the projector retries from its checkpoint). The checkpoint is written last
//! and only moves forward (`$max`). A crash between the writes leaves some
//! documents ahead of the checkpoint; re-applying the batch changes nothing
//! in them.

use crate::error::StoreError;
use futures::TryStreamExt;
use mongodb::bson::{Document, doc};
use mongodb::{Client, Collection, Database};

const CHECKPOINTS: &str = "checkpoints";

/// A MongoDB database holding read models.
#[derive(Clone)]
pub struct MongoReadDb {
    db: Database,
}

impl MongoReadDb {
    /// Connects to `url` (`mongodb://host:port`) and uses database `name`.
    pub async fn connect(url: &str, name: &str) -> Result<Self, StoreError> {
        let client = Client::with_uri_str(url).await.map_err(StoreError::unavailable)?;
        let db = client.database(name);
        db.run_command(doc! {"ping": 1}).await.map_err(StoreError::unavailable)?;
        Ok(Self { db })
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    pub fn collection(&self, name: &str) -> Collection<Document> {
        self.db.collection(name)
    }

    pub async fn checkpoint(&self, projection: &str) -> Result<u64, StoreError> {
        let d = self.collection(CHECKPOINTS).find_one(doc! {"_id": projection}).await?;
        Ok(d.and_then(|d| d.get_i64("position").ok()).unwrap_or(0).max(0) as u64)
    }

    /// Moves the checkpoint forward to `position` (never back).
    pub async fn set_checkpoint(&self, projection: &str, position: u64) -> Result<(), StoreError> {
        self.collection(CHECKPOINTS).update_one(doc! {"_id": projection}, doc! {"$max": {"position": position as i64}}).upsert(true).await?;
        Ok(())
    }

    /// Drops `collections` and the checkpoint of `projection`.
    pub async fn reset(&self, projection: &str, collections: &[&str]) -> Result<(), StoreError> {
        for c in collections {
            self.collection(c).drop().await?;
        }
        self.collection(CHECKPOINTS).delete_one(doc! {"_id": projection}).await?;
        Ok(())
    }

    /// Every document `filter` matches, in `sort` order.
    pub async fn find_all(&self, collection: &str, filter: Document, sort: Document, limit: Option<i64>) -> Result<Vec<Document>, StoreError> {
        let c = self.collection(collection);
        let mut find = c.find(filter).sort(sort);
        if let Some(n) = limit {
            find = find.limit(n);
        }
        Ok(find.await?.try_collect().await?)
    }

    /// A conversation document as stored (for tests of the document shape).
    pub async fn raw_conversation(&self, id: &str) -> Result<Option<Document>, StoreError> {
        Ok(self.collection(crate::conversations::mongo::COLLECTION).find_one(doc! {"_id": id}).await?)
    }

    /// Replaces `_id`'s document if it still reflects `loaded` (the position
    /// it was read at), or inserts it if it was not there. A conflict otherwise.
    pub async fn save(&self, collection: &str, id: &str, loaded: Option<i64>, doc: Document) -> Result<(), StoreError> {
        let c = self.collection(collection);
        match loaded {
            None => {
                c.insert_one(doc).await?;
            }
            Some(position) => {
                let r = c.replace_one(doc! {"_id": id, "position": position}, doc).await?;
                if r.matched_count == 0 {
                    return Err(StoreError::Conflict(format!("{collection} {id} changed since it was read at position {position}")));
                }
            }
        }
        Ok(())
    }
}

/// A value as a BSON document, through serde.
pub fn to_doc<T: serde::Serialize>(v: &T) -> Result<Document, StoreError> {
    mongodb::bson::to_document(v).map_err(StoreError::internal)
}

/// A BSON document as a value, through serde (unknown fields are ignored).
pub fn from_doc<T: serde::de::DeserializeOwned>(d: Document) -> Result<T, StoreError> {
    mongodb::bson::from_document(d).map_err(StoreError::internal)
}

/// A BSON date (millisecond precision).
pub fn date(t: &jamuna_domain::Timestamp) -> mongodb::bson::DateTime {
    mongodb::bson::DateTime::from_millis(t.timestamp_millis())
}

/// Escapes a user's words for a `$regex`.
pub fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\^$.|?*+()[]{}/-".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn regex_metacharacters_are_escaped() {
        assert_eq!(super::regex_escape("a.b*(c)"), "a\\.b\\*\\(c\\)");
    }
}
