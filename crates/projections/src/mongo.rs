//! What the MongoDB read models share: a database handle, the checkpoints
//! collection, and [`Documents`], through which a model reads and writes the
//! documents of a batch.
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
//!
//! **Round trips.** A batch costs a fixed number of commands, whatever its
//! size: one `find` (`_id` `$in`) per collection for the documents it
//! touches, one `insert` of the new documents and one `update` with a
//! statement per replaced document (FerretDB 1.x has no `bulkWrite`), then
//! the checkpoint. This matters most on FerretDB with its SQLite backend,
//! where every command that looks a document up scans its collection.
//!
//! **Rebuilds.** During a replay ([`Documents::begin_rebuild`]) the model is
//! the only writer and starts empty, so nothing needs to be read back: the
//! documents are folded in memory and written once, with `insert`, when the
//! replay ends (or whenever [`STAGED_DOCUMENTS`] are held), together
//! with the checkpoint; the secondary indexes are built at the end.

use crate::error::StoreError;
use futures::TryStreamExt;
use mongodb::bson::{Bson, Document, doc};
use mongodb::{Client, Collection, Database};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

const CHECKPOINTS: &str = "checkpoints";

/// A MongoDB database holding read models.
#[derive(Clone)]
pub struct MongoReadDb {
    db: Database,
    staged_documents: usize,
    /// The most statements one `update` command carries on this server
    /// ([`STATEMENTS_PER_COMMAND`], or [`FERRETDB_STATEMENTS_PER_COMMAND`]).
    statements_per_command: usize,
}

impl MongoReadDb {
    /// Connects to `url` (`mongodb://host:port`) and uses database `name`.
    pub async fn connect(url: &str, name: &str) -> Result<Self, StoreError> {
        let client = Client::with_uri_str(url).await.map_err(StoreError::unavailable)?;
        let db = client.database(name);
        db.run_command(doc! {"ping": 1}).await.map_err(StoreError::unavailable)?;
        let build = db.run_command(doc! {"buildInfo": 1}).await.map_err(StoreError::unavailable)?;
        let statements_per_command =
            if build.contains_key("ferretdbVersion") { FERRETDB_STATEMENTS_PER_COMMAND } else { STATEMENTS_PER_COMMAND };
        Ok(Self { db, staged_documents: STAGED_DOCUMENTS, statements_per_command })
    }

    /// Rebuilds of the models on this handle write out what they hold every
    /// `n` documents instead of every [`STAGED_DOCUMENTS`].
    pub fn with_staged_documents(mut self, n: usize) -> Self {
        self.staged_documents = n.max(1);
        self
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
        self.collection(CHECKPOINTS)
            .update_one(doc! {"_id": projection}, doc! {"$max": {"position": position as i64}})
            .upsert(true)
            .await?;
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
    pub async fn find_all(
        &self,
        collection: &str,
        filter: Document,
        sort: Document,
        limit: Option<i64>,
    ) -> Result<Vec<Document>, StoreError> {
        let c = self.collection(collection);
        let mut find = c.find(filter).sort(sort);
        if let Some(n) = limit {
            find = find.limit(n);
        }
        Ok(find.await?.try_collect().await?)
    }

    /// The documents of `collection` with these `_id`s (those that exist),
    /// in one `find`.
    pub async fn find_ids(&self, collection: &str, ids: impl IntoIterator<Item = String>) -> Result<Vec<Document>, StoreError> {
        let ids: Vec<String> = ids.into_iter().collect::<HashSet<_>>().into_iter().collect();
        if ids.is_empty() {
            return Ok(vec![]);
        }
        self.find_all(collection, doc! {"_id": {"$in": ids}}, doc! {}, None).await
    }

    /// Writes a batch's documents to `collection`: the new ones in one
    /// `insert`, the others in one `update` with a replacement statement each
    /// (split only where the server's message size demands), each on the
    /// condition that the document still reflects the position it was read
    /// at. A conflict if a document to insert exists or one to replace has
    /// moved on; the other writes may have been made by then, which is safe,
    /// since re-applying their events changes nothing.
    pub async fn write_all(&self, collection: &str, writes: Vec<Write>) -> Result<(), StoreError> {
        let mut inserts = Vec::new();
        let mut updates = Vec::new();
        for w in writes {
            match w.loaded {
                None => inserts.push(w.doc),
                Some(position) => updates.push(doc! {"q": {"_id": w.id, "position": position}, "u": w.doc}),
            }
        }
        if !inserts.is_empty() {
            self.collection(collection).insert_many(inserts).await?;
        }
        for statements in command_chunks(updates, self.statements_per_command)? {
            let expected = statements.len() as i64;
            let reply = self.db.run_command(doc! {"update": collection, "updates": statements, "ordered": true}).await?;
            write_errors(&reply)?;
            let matched = count(&reply, "n");
            if matched < expected {
                return Err(StoreError::Conflict(format!(
                    "{} of {expected} documents of {collection} changed since they were read",
                    expected - matched
                )));
            }
        }
        Ok(())
    }
}

/// The most statements one `update` command carries.
const STATEMENTS_PER_COMMAND: usize = 1_000;
/// The most on FerretDB (seen in `buildInfo`). FerretDB 1.24's SQLite backend
/// keeps each statement's query open until the whole command ends
/// (`defer closer.Close()` in a loop, msg_update.go) and needs one more
/// connection for each statement's write, out of a pool of 100: a few
/// concurrent commands of dozens of statements took every connection and
/// waited for ever for one more (the distributed mode hung under
/// `jamuna bench chat --customers 50`). Eight per command leaves the pool
/// room for a dozen concurrent writers.
const FERRETDB_STATEMENTS_PER_COMMAND: usize = 8;
/// The most bytes of statements one `update` command carries (a command
/// must stay under the server's 16 MiB document limit).
const BYTES_PER_COMMAND: usize = 8 << 20;

/// `statements` cut into commands' worth.
fn command_chunks(statements: Vec<Document>, most: usize) -> Result<Vec<Vec<Document>>, StoreError> {
    let mut chunks = Vec::new();
    let (mut chunk, mut bytes) = (Vec::new(), 0);
    for s in statements {
        let size = mongodb::bson::to_vec(&s).map_err(StoreError::internal)?.len();
        if !chunk.is_empty() && (chunk.len() >= most.max(1) || bytes + size > BYTES_PER_COMMAND) {
            chunks.push(std::mem::take(&mut chunk));
            bytes = 0;
        }
        bytes += size;
        chunk.push(s);
    }
    if !chunk.is_empty() {
        chunks.push(chunk);
    }
    Ok(chunks)
}

/// A count in a command's reply (servers differ in its integer type).
fn count(reply: &Document, field: &str) -> i64 {
    match reply.get(field) {
        Some(Bson::Int32(n)) => i64::from(*n),
        Some(Bson::Int64(n)) => *n,
        Some(Bson::Double(n)) => *n as i64,
        _ => 0,
    }
}

/// The first of a write command's `writeErrors`, as an error (a duplicate
/// key is a conflict).
fn write_errors(reply: &Document) -> Result<(), StoreError> {
    let Some(first) = reply.get_array("writeErrors").ok().and_then(|errors| errors.first()).and_then(Bson::as_document) else {
        return Ok(());
    };
    let message = first.get_str("errmsg").unwrap_or("no message").to_owned();
    match count(first, "code") {
        11000 => Err(StoreError::Conflict(message)),
        code => Err(StoreError::Internal(format!("write error {code}: {message}").into())),
    }
}

/// A document a batch writes: inserted if it was not stored (`loaded` is
/// `None`), else replaced on the condition that it still reflects `loaded`,
/// the position it was read at.
#[derive(Debug, Clone)]
pub struct Write {
    pub id: String,
    pub loaded: Option<i64>,
    pub doc: Document,
}

/// How many documents a rebuild holds in memory, by default, before it
/// writes them out (with the checkpoint) and starts holding again
/// ([`MongoReadDb::with_staged_documents`]).
pub const STAGED_DOCUMENTS: usize = 20_000;

/// The documents of a read model, read and written a batch at a time:
/// straight from and to the database, or, between
/// [`Documents::begin_rebuild`] and [`Documents::end_rebuild`], held in
/// memory (see the module's docs). A model's batches come one at a time.
#[derive(Clone)]
pub struct Documents {
    db: MongoReadDb,
    stage: Arc<tokio::sync::Mutex<Option<Stage>>>,
}

/// What a rebuild holds: per collection, in the order they are written out,
/// the documents by `_id`, each with the position it is stored at (`None`:
/// not stored yet).
struct Stage {
    collections: Vec<(String, HashMap<String, Write>)>,
    /// The last position applied: the checkpoint once the documents are written out.
    through: u64,
    /// Some documents were written out: those not held may be stored.
    written: bool,
}

impl Stage {
    fn held(&self, collection: &str) -> Option<&HashMap<String, Write>> {
        self.collections.iter().find(|(c, _)| c == collection).map(|(_, held)| held)
    }

    fn hold(&mut self, collection: &str, writes: Vec<Write>) {
        let i = match self.collections.iter().position(|(c, _)| c == collection) {
            Some(i) => i,
            None => {
                self.collections.push((collection.to_owned(), HashMap::new()));
                self.collections.len() - 1
            }
        };
        let held = &mut self.collections[i].1;
        for w in writes {
            match held.get_mut(&w.id) {
                // Still stored at the position it had when first held.
                Some(h) => h.doc = w.doc,
                None => {
                    held.insert(w.id.clone(), w);
                }
            }
        }
    }

    fn len(&self) -> usize {
        self.collections.iter().map(|(_, held)| held.len()).sum()
    }
}

impl Documents {
    pub fn new(db: MongoReadDb) -> Self {
        Self { db, stage: Arc::new(tokio::sync::Mutex::new(None)) }
    }

    pub fn db(&self) -> &MongoReadDb {
        &self.db
    }

    /// The last position applied: the stored checkpoint, or during a
    /// rebuild the last one held.
    pub async fn applied(&self, projection: &str) -> Result<u64, StoreError> {
        match &*self.stage.lock().await {
            Some(stage) => Ok(stage.through),
            None => self.db.checkpoint(projection).await,
        }
    }

    /// The documents of `collection` with these `_id`s (those that exist).
    pub async fn load(&self, collection: &str, ids: impl IntoIterator<Item = String>) -> Result<Vec<Document>, StoreError> {
        let stage = self.stage.lock().await;
        let Some(stage) = stage.as_ref() else { return self.db.find_ids(collection, ids).await };
        let held = stage.held(collection);
        let mut found = Vec::new();
        let mut stored = Vec::new();
        for id in ids.into_iter().collect::<HashSet<_>>() {
            match held.and_then(|h| h.get(&id)) {
                Some(w) => found.push(w.doc.clone()),
                None if stage.written => stored.push(id),
                None => {}
            }
        }
        found.extend(self.db.find_ids(collection, stored).await?);
        Ok(found)
    }

    /// The documents of `collection` whose string `fields` have these values.
    pub async fn load_where(&self, collection: &str, fields: &[(&str, &str)]) -> Result<Vec<Document>, StoreError> {
        let filter: Document = fields.iter().map(|(k, v)| ((*k).to_owned(), Bson::String((*v).to_owned()))).collect();
        let stage = self.stage.lock().await;
        let Some(stage) = stage.as_ref() else { return self.db.find_all(collection, filter, doc! {}, None).await };
        let held = stage.held(collection);
        let mut found: Vec<Document> = held
            .into_iter()
            .flat_map(|h| h.values())
            .filter(|w| fields.iter().all(|(k, v)| w.doc.get_str(k).ok() == Some(*v)))
            .map(|w| w.doc.clone())
            .collect();
        if stage.written {
            let not_held = |d: &Document| d.get_str("_id").map_or(true, |id| held.is_none_or(|h| !h.contains_key(id)));
            found.extend(self.db.find_all(collection, filter, doc! {}, None).await?.into_iter().filter(not_held));
        }
        Ok(found)
    }

    /// Writes a batch's documents to `collection` ([`MongoReadDb::write_all`]),
    /// or during a rebuild holds them.
    pub async fn write(&self, collection: &str, writes: Vec<Write>) -> Result<(), StoreError> {
        if writes.is_empty() {
            return Ok(());
        }
        let mut stage = self.stage.lock().await;
        match stage.as_mut() {
            Some(stage) => {
                stage.hold(collection, writes);
                Ok(())
            }
            None => self.db.write_all(collection, writes).await,
        }
    }

    /// Ends a batch: stores `through` as the checkpoint, after its writes.
    /// During a rebuild, the held documents and the checkpoint are written
    /// out once enough are held ([`STAGED_DOCUMENTS`]).
    pub async fn commit(&self, projection: &str, through: u64) -> Result<(), StoreError> {
        let mut guard = self.stage.lock().await;
        let Some(stage) = guard.as_mut() else { return self.db.set_checkpoint(projection, through).await };
        stage.through = stage.through.max(through);
        if stage.len() >= self.db.staged_documents
            && let Err(e) = self.write_out(projection, stage).await
        {
            // As after a crash: what was written stands, the rest is redone
            // from the stored checkpoint.
            *guard = None;
            return Err(e);
        }
        Ok(())
    }

    /// Starts a rebuild: drops `collections` (listed in the order their
    /// documents must be written out) and the checkpoint, and holds the
    /// documents of the batches that follow.
    pub async fn begin_rebuild(&self, projection: &str, collections: &[&str]) -> Result<(), StoreError> {
        let mut stage = self.stage.lock().await;
        *stage = None;
        self.db.reset(projection, collections).await?;
        *stage = Some(Stage {
            collections: collections.iter().map(|c| ((*c).to_owned(), HashMap::new())).collect(),
            through: 0,
            written: false,
        });
        Ok(())
    }

    /// Ends a rebuild: writes out what is held, then the checkpoint.
    pub async fn end_rebuild(&self, projection: &str) -> Result<(), StoreError> {
        let Some(mut stage) = self.stage.lock().await.take() else { return Ok(()) };
        self.write_out(projection, &mut stage).await
    }

    /// Drops `collections` and the checkpoint (and ends a rebuild).
    pub async fn reset(&self, projection: &str, collections: &[&str]) -> Result<(), StoreError> {
        let mut stage = self.stage.lock().await;
        *stage = None;
        self.db.reset(projection, collections).await
    }

    async fn write_out(&self, projection: &str, stage: &mut Stage) -> Result<(), StoreError> {
        for (collection, held) in &mut stage.collections {
            let writes: Vec<Write> = held.drain().map(|(_, w)| w).collect();
            self.db.write_all(collection, writes).await?;
        }
        stage.written = true;
        if stage.through > 0 {
            self.db.set_checkpoint(projection, stage.through).await?;
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
    use super::*;

    #[test]
    fn updates_are_cut_into_commands_of_at_most_so_many_statements() {
        let statements: Vec<Document> = (0..20).map(|i| doc! {"q": {"_id": i}, "u": {"_id": i}}).collect();
        let sizes = |most| command_chunks(statements.clone(), most).unwrap().iter().map(Vec::len).collect::<Vec<_>>();
        assert_eq!(sizes(FERRETDB_STATEMENTS_PER_COMMAND), vec![8, 8, 4]);
        assert_eq!(sizes(STATEMENTS_PER_COMMAND), vec![20]);
        let big = "x".repeat(3 << 20);
        let large: Vec<Document> = (0..5).map(|i| doc! {"q": {"_id": i}, "u": {"b": big.clone()}}).collect();
        assert_eq!(command_chunks(large, 1000).unwrap().iter().map(Vec::len).collect::<Vec<_>>(), vec![2, 2, 1], "under 8 MiB each");
    }

    #[test]
    fn regex_metacharacters_are_escaped() {
        assert_eq!(super::regex_escape("a.b*(c)"), "a\\.b\\*\\(c\\)");
    }
}
