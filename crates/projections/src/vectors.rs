//! # Knowledge-base vectors: the read model the bot retrieves from
//!
//! A tenant's articles, cut into passages and embedded, stored so that the
//! passages nearest a customer's message come back fast. Two adapters of one
//! port, [`VectorIndex`]:
//!
//! * [`edge::EdgeVectors`] — qdrant-edge, Qdrant's engine in-process, with its
//!   files under a directory (`jamuna serve` uses `<data_dir>/vectors`);
//! * [`qdrant::QdrantVectors`] — a Qdrant server, through `qdrant-client`
//!   (the distributed mode, `JAMUNA_QDRANT_URL`).
//!
//! Both pass the same contract suite (`vector_index_contract!`, in the `testing` feature).
//!
//! **One collection, the tenant in the payload.** Every tenant's passages live
//! in one collection (one shard for qdrant-edge), each point carrying its
//! `tenant` in a keyword payload field indexed with `is_tenant`, and every
//! search, count and delete filters on it. That is Qdrant's documented advice
//! for many small tenants: a collection per tenant costs each one its own
//! segments, WAL and HNSW graph (memory and file handles grow with the number
//! of tenants, and creating one is a slow, schema-changing operation), while a
//! tenant-keyed index lets Qdrant co-locate a tenant's points and build
//! per-tenant graphs where it pays. A support platform has many tenants with
//! a few hundred passages each, which is exactly that case. Isolation is then
//! a property of this module's code — no search is built without the tenant
//! condition — and the contract checks it.
//!
//! **Points.** A point is one passage: the vector, and the payload `tenant`,
//! `article_id`, `title`, `text`, `position` (the passage's place in its
//! article, from 0) and `version` (the knowledge-base stream version of the
//! event that last wrote the article). Upserting an article first deletes
//! its previous points (by a tenant + article filter), so an article that
//! shrinks leaves nothing stale.
//!
//! **Following the log.** [`VectorProjection`] is an ordinary
//! [`Projection`]: the projector runtime feeds it the log, and `jamuna replay
//! --projection vectors` rebuilds it. For `ArticleAdded` / `ArticleUpdated` it
//! asks a [`PassageEncoder`] — implemented by the AI worker, which owns the
//! chunker and the model — for the article's passages with their vectors, and
//! upserts them; `ArticleRemoved` deletes them. Its checkpoint is a point of
//! its own in the same collection (no tenant, so no search sees it), written
//! after the batch's changes: a crash in between re-applies the batch, which
//! changes nothing, because an upsert replaces the article and a delete of a
//! deleted article is a no-op. Within a batch only the last change of each
//! article is applied (a replay does not embed an article it will remove).
//!
//! ```no_run
//! # async fn demo(index: std::sync::Arc<dyn jamuna_projections::vectors::VectorIndex>) -> Result<(), jamuna_projections::StoreError> {
//! use jamuna_projections::vectors::{ArticlePassages, PassagePoint};
//! let tenant = jamuna_domain::TenantId::parse("acme").unwrap();
//! let article = jamuna_domain::ArticleId::parse("refunds").unwrap();
//! index.upsert_article(ArticlePassages {
//!     tenant: tenant.clone(), article_id: article, title: "Refunds".into(), version: 3,
//!     passages: vec![PassagePoint { position: 0, text: "Refunds take 5 days.".into(), vector: vec![0.0; 384] }],
//! }).await?;
//! let hits = index.search(&tenant, &vec![0.0; 384], 3).await?;
//! # Ok(()) }
//! ```

#[cfg(feature = "testing")]
pub mod contract;
pub mod edge;
pub mod qdrant;

use crate::error::{ProjectionError, StoreError};
use crate::runtime::Projection;
use async_trait::async_trait;
use jamuna_commands::{RecordedEvent, seal};
use jamuna_domain::knowledge_base::KnowledgeBaseEvent;
use jamuna_domain::{AggregateKind, ArticleId, TenantId};
use std::collections::HashMap;
use std::sync::Arc;

/// The projection's name: its checkpoint's key and what `replay --projection` takes.
pub const PROJECTION: &str = "vectors";

/// The payload keys of a point.
pub(crate) mod keys {
    pub const TENANT: &str = "tenant";
    pub const ARTICLE: &str = "article_id";
    pub const TITLE: &str = "title";
    pub const TEXT: &str = "text";
    pub const POSITION: &str = "position";
    pub const VERSION: &str = "version";
    /// Only on the checkpoint point.
    pub const CHECKPOINT: &str = "checkpoint";
}

/// One passage of an article, embedded.
#[derive(Debug, Clone, PartialEq)]
pub struct PassagePoint {
    /// Its place among the article's passages, from 0.
    pub position: u32,
    pub text: String,
    pub vector: Vec<f32>,
}

/// All the passages of one article, as they replace its previous ones.
#[derive(Debug, Clone, PartialEq)]
pub struct ArticlePassages {
    pub tenant: TenantId,
    pub article_id: ArticleId,
    pub title: String,
    /// The knowledge-base stream version of the event that wrote the article.
    pub version: u64,
    pub passages: Vec<PassagePoint>,
}

/// A passage found by a search, best first.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorHit {
    /// Cosine similarity to the query, in [-1, 1].
    pub score: f32,
    pub article_id: ArticleId,
    pub title: String,
    pub text: String,
    pub position: u32,
    pub version: u64,
}

/// The vector store of the knowledge bases (qdrant-edge or a Qdrant server).
///
/// Vectors have a fixed [`dimension`](VectorIndex::dimension); a vector of any
/// other length is refused with [`StoreError::Invalid`] and nothing is stored.
/// Similarity is cosine.
#[async_trait]
pub trait VectorIndex: Send + Sync + 'static {
    /// The length of every vector.
    fn dimension(&self) -> usize;

    /// Replaces the article's points with these (none: the article is gone).
    async fn upsert_article(&self, article: ArticlePassages) -> Result<(), StoreError>;

    /// Deletes the article's points (nothing if it has none).
    async fn remove_article(&self, tenant: &TenantId, article_id: &ArticleId) -> Result<(), StoreError>;

    /// The `limit` passages of `tenant` nearest `vector`, best first.
    async fn search(&self, tenant: &TenantId, vector: &[f32], limit: usize) -> Result<Vec<VectorHit>, StoreError>;

    /// How many passages `tenant` has.
    async fn count(&self, tenant: &TenantId) -> Result<u64, StoreError>;

    /// The position of the last event applied (0: none).
    async fn checkpoint(&self) -> Result<u64, StoreError>;

    /// Records that every event up to `position` is applied (after the changes,
    /// which are durable when this returns).
    async fn set_checkpoint(&self, position: u64) -> Result<(), StoreError>;

    /// Drops every point and the checkpoint.
    async fn reset(&self) -> Result<(), StoreError>;
}

/// A passage cut from an article and embedded by a [`PassageEncoder`].
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedPassage {
    pub position: u32,
    pub text: String,
    pub vector: Vec<f32>,
}

/// The encoder failed (the model could not run).
#[derive(Debug, thiserror::Error)]
#[error("cannot embed the article's passages: {0}")]
pub struct EncodeError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// Cuts an article into passages and embeds them: the AI worker's chunker and
/// model, behind a port so that this crate needs neither.
#[async_trait]
pub trait PassageEncoder: Send + Sync + 'static {
    /// The length of the vectors it makes.
    fn dimension(&self) -> usize;
    /// The article's passages, in order, each with its vector.
    async fn encode(&self, title: &str, body: &str) -> Result<Vec<EncodedPassage>, EncodeError>;
}

/// What a batch does to one article, in the end.
enum Change {
    Write { title: String, body: String, version: u64 },
    Remove,
}

/// Keeps a [`VectorIndex`] in step with the knowledge-base events of the log.
pub struct VectorProjection {
    index: Arc<dyn VectorIndex>,
    encoder: Arc<dyn PassageEncoder>,
}

impl VectorProjection {
    /// Fails if the encoder's vectors do not fit the index.
    pub fn new(index: Arc<dyn VectorIndex>, encoder: Arc<dyn PassageEncoder>) -> Result<Self, StoreError> {
        if index.dimension() != encoder.dimension() {
            return Err(StoreError::Invalid(format!(
                "the encoder makes vectors of {} dimensions, the vector index holds {}",
                encoder.dimension(),
                index.dimension()
            )));
        }
        Ok(Self { index, encoder })
    }

    pub fn index(&self) -> &Arc<dyn VectorIndex> {
        &self.index
    }

    /// Embeds an article and replaces its passages in the index: what
    /// `ArticleAdded` and `ArticleUpdated` do (and what tools and tests
    /// without a log can call). Returns how many passages it has.
    pub async fn write_article(
        &self,
        tenant: &TenantId,
        article_id: &ArticleId,
        title: &str,
        body: &str,
        version: u64,
    ) -> Result<usize, WriteError> {
        let encoded = self.encoder.encode(title, body).await?;
        let passages: Vec<PassagePoint> =
            encoded.into_iter().map(|p| PassagePoint { position: p.position, text: p.text, vector: p.vector }).collect();
        let n = passages.len();
        let article =
            ArticlePassages { tenant: tenant.clone(), article_id: article_id.clone(), title: title.to_owned(), version, passages };
        self.index.upsert_article(article).await?;
        Ok(n)
    }
}

/// Why [`VectorProjection::write_article`] failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Encode(#[from] EncodeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn is_article_event(r: &RecordedEvent) -> bool {
    r.stream.kind() == AggregateKind::KnowledgeBase && matches!(r.event_type.as_str(), "ArticleAdded" | "ArticleUpdated" | "ArticleRemoved")
}

#[async_trait]
impl Projection for VectorProjection {
    fn name(&self) -> &str {
        PROJECTION
    }

    async fn checkpoint(&self) -> Result<u64, ProjectionError> {
        Ok(self.index.checkpoint().await?)
    }

    async fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        let Some(through) = events.iter().map(|e| e.position).max() else { return Ok(()) };
        let done = self.index.checkpoint().await?;
        if through <= done {
            return Ok(());
        }
        // The last change of each article in this batch, in the order of those last changes.
        let mut last: HashMap<(TenantId, ArticleId), (u64, Change)> = HashMap::new();
        for r in events.iter().filter(|r| r.position > done && is_article_event(r)) {
            let event = seal::decode::<KnowledgeBaseEvent>(r)
                .map_err(|e| ProjectionError::bad_event(r.position, format!("{} {}: {e}", r.event_type, r.meta.event_id)))?;
            let tenant = r.stream.tenant().clone();
            let (article_id, change) = match event {
                KnowledgeBaseEvent::ArticleAdded { article_id, title, body, .. }
                | KnowledgeBaseEvent::ArticleUpdated { article_id, title, body } => {
                    (article_id, Change::Write { title, body, version: r.version })
                }
                KnowledgeBaseEvent::ArticleRemoved { article_id } => (article_id, Change::Remove),
                _ => continue,
            };
            last.insert((tenant, article_id), (r.position, change));
        }
        let mut changes: Vec<_> = last.into_iter().collect();
        changes.sort_by_key(|(_, (position, _))| *position);
        for ((tenant, article_id), (position, change)) in changes {
            match change {
                Change::Write { title, body, version } => match self.write_article(&tenant, &article_id, &title, &body, version).await {
                    Ok(_) => {}
                    // The model failed on this article: the projection stops here, loudly.
                    Err(WriteError::Encode(e)) => return Err(ProjectionError::bad_event(position, e)),
                    Err(WriteError::Store(e)) => return Err(e.into()),
                },
                Change::Remove => self.index.remove_article(&tenant, &article_id).await?,
            }
        }
        self.index.set_checkpoint(through).await?;
        Ok(())
    }

    async fn reset(&self) -> Result<(), ProjectionError> {
        Ok(self.index.reset().await?)
    }
}

/// Refuses a vector of the wrong length, or one that is not a number throughout.
pub(crate) fn check_vector(vector: &[f32], dimension: usize) -> Result<(), StoreError> {
    if vector.len() != dimension {
        return Err(StoreError::Invalid(format!("a vector of {} dimensions, the index holds {dimension}", vector.len())));
    }
    if vector.iter().any(|x| !x.is_finite()) {
        return Err(StoreError::Invalid("a vector with a NaN or infinite component".into()));
    }
    Ok(())
}

/// Checks a whole article before anything of it is written.
pub(crate) fn check_article(article: &ArticlePassages, dimension: usize) -> Result<(), StoreError> {
    article.passages.iter().try_for_each(|p| check_vector(&p.vector, dimension))
}

/// A hit from a point's payload (a point without the keys is not ours: skipped).
pub(crate) fn hit_from_payload(score: f32, payload: &serde_json::Map<String, serde_json::Value>) -> Option<VectorHit> {
    let s = |k: &str| payload.get(k).and_then(|v| v.as_str());
    let n = |k: &str| payload.get(k).and_then(|v| v.as_u64());
    Some(VectorHit {
        score,
        article_id: ArticleId::parse(s(keys::ARTICLE)?).ok()?,
        title: s(keys::TITLE)?.to_owned(),
        text: s(keys::TEXT)?.to_owned(),
        position: u32::try_from(n(keys::POSITION)?).ok()?,
        version: n(keys::VERSION)?,
    })
}

/// The payload of a passage's point.
pub(crate) fn passage_payload(article: &ArticlePassages, p: &PassagePoint) -> serde_json::Map<String, serde_json::Value> {
    let serde_json::Value::Object(map) = serde_json::json!({
        keys::TENANT: article.tenant.as_str(),
        keys::ARTICLE: article.article_id.as_str(),
        keys::TITLE: article.title,
        keys::TEXT: p.text,
        keys::POSITION: p.position,
        keys::VERSION: article.version,
    }) else {
        unreachable!("a JSON object literal")
    };
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_of_the_wrong_length_or_not_numbers_are_refused() {
        assert!(check_vector(&[0.1, 0.2], 2).is_ok());
        assert!(matches!(check_vector(&[0.1], 2), Err(StoreError::Invalid(_))));
        assert!(matches!(check_vector(&[0.1, f32::NAN], 2), Err(StoreError::Invalid(_))));
    }

    #[test]
    fn a_payload_reads_back_as_the_hit_it_was() {
        let article = ArticlePassages {
            tenant: TenantId::parse("acme").unwrap(),
            article_id: ArticleId::parse("refunds").unwrap(),
            title: "Refunds".into(),
            version: 7,
            passages: vec![PassagePoint { position: 2, text: "Five days.".into(), vector: vec![1.0] }],
        };
        let hit = hit_from_payload(0.5, &passage_payload(&article, &article.passages[0])).unwrap();
        assert_eq!(
            hit,
            VectorHit {
                score: 0.5,
                article_id: article.article_id.clone(),
                title: "Refunds".into(),
                text: "Five days.".into(),
                position: 2,
                version: 7
            }
        );
        assert!(hit_from_payload(0.5, &serde_json::Map::new()).is_none());
    }
}
