//! The [`VectorIndex`] in-process: qdrant-edge, Qdrant's engine as a library,
//! with its files in a directory of its own.
//!
//! qdrant-edge is synchronous and does its I/O on the calling thread, so
//! every call runs on tokio's blocking pool. Its shard keeps writes in a WAL
//! but (in 0.7) does not replay that WAL when it is loaded: what is durable
//! is what was flushed to the segments. So every write here is followed by a
//! flush before it returns, and the checkpoint is written (and flushed) only
//! after the changes it covers.
//!
//! The shard's `flush` insists on taking its locks without waiting, so writes
//! and flushes are serialised here behind a `RwLock` (searches share it).
//! Segments are plain at first (exact search, which at a few thousand
//! passages takes well under a millisecond); after every
//! [`OPTIMIZE_EVERY`] points written the shard's optimizers run, which
//! vacuum deleted points and build the HNSW index once a segment is large.

use super::{ArticlePassages, VectorHit, VectorIndex, check_article, check_vector, hit_from_payload, keys, passage_payload};
use crate::error::StoreError;
use async_trait::async_trait;
use jamuna_domain::{ArticleId, TenantId};
use qdrant_edge::external::uuid::Uuid;
use qdrant_edge::{
    CountRequest, DEFAULT_VECTOR_NAME, Distance, EdgeConfig, EdgeShard, EdgeVectorParams, FieldIndexOperations, Filter, NamedQuery,
    PointId, PointInsertOperations, PointOperations, PointStruct, QueryEnum, SearchRequest, UpdateOperation, WithPayloadInterface,
    WithVector,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Points written between two runs of the shard's optimizers.
pub const OPTIMIZE_EVERY: u64 = 2_000;

/// The id of the point that holds the checkpoint.
const CHECKPOINT_ID: u64 = 0;

/// The knowledge-base vectors in a qdrant-edge shard under a directory.
pub struct EdgeVectors {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    dimension: usize,
    shard: RwLock<EdgeShard>,
    written: AtomicU64,
}

fn internal(e: impl std::fmt::Display) -> StoreError {
    StoreError::internal(std::io::Error::other(format!("qdrant-edge: {e}")))
}

fn filter(value: serde_json::Value) -> Result<Filter, StoreError> {
    serde_json::from_value(value).map_err(internal)
}

fn tenant_filter(tenant: &TenantId) -> Result<Filter, StoreError> {
    filter(serde_json::json!({"must": [{"key": keys::TENANT, "match": {"value": tenant.as_str()}}]}))
}

fn article_filter(tenant: &TenantId, article: &ArticleId) -> Result<Filter, StoreError> {
    filter(serde_json::json!({"must": [
        {"key": keys::TENANT, "match": {"value": tenant.as_str()}},
        {"key": keys::ARTICLE, "match": {"value": article.as_str()}},
    ]}))
}

fn config(dimension: usize) -> EdgeConfig {
    EdgeConfig {
        // Payloads (the passage texts) in RAM: they are read with every hit.
        on_disk_payload: false,
        vectors: HashMap::from([(
            DEFAULT_VECTOR_NAME.to_string(),
            EdgeVectorParams {
                size: dimension,
                distance: Distance::Cosine,
                on_disk: None,
                multivector_config: None,
                datatype: None,
                quantization_config: None,
                hnsw_config: None,
            },
        )]),
        ..EdgeConfig::default()
    }
}

impl EdgeVectors {
    /// Opens the shard in `dir` (creating it if there is none) for vectors of
    /// `dimension`; an existing shard of another dimension is an error.
    pub async fn open(dir: impl AsRef<Path>, dimension: usize) -> Result<Self, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        if dimension == 0 {
            return Err(StoreError::Invalid("a vector index needs at least one dimension".into()));
        }
        let inner = tokio::task::spawn_blocking(move || Inner::open(dir, dimension)).await.map_err(internal)??;
        Ok(Self { inner: Arc::new(inner) })
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    async fn blocking<T: Send + 'static>(&self, f: impl FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner)).await.map_err(internal)?
    }
}

impl Inner {
    fn open(dir: PathBuf, dimension: usize) -> Result<Self, StoreError> {
        std::fs::create_dir_all(&dir).map_err(StoreError::unavailable)?;
        let shard = EdgeShard::load(&dir, Some(config(dimension))).map_err(|e| {
            StoreError::Internal(Box::new(std::io::Error::other(format!(
                "cannot open the vector index in {} (for {dimension} dimensions): {e}",
                dir.display()
            ))))
        })?;
        let inner = Self { dir, dimension, shard: RwLock::new(shard), written: AtomicU64::new(0) };
        inner.ensure_tenant_index()?;
        Ok(inner)
    }

    fn ensure_tenant_index(&self) -> Result<(), StoreError> {
        let shard = self.write();
        if shard.info().payload_schema.keys().any(|k| k.to_string() == keys::TENANT) {
            return Ok(());
        }
        let op = serde_json::json!({"field_name": keys::TENANT, "field_schema": {"type": "keyword", "is_tenant": true}});
        let create = serde_json::from_value(op).map_err(internal)?;
        shard.update(UpdateOperation::FieldIndexOperation(FieldIndexOperations::CreateIndex(create))).map_err(internal)?;
        Self::flush(&shard)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, EdgeShard> {
        self.shard.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, EdgeShard> {
        self.shard.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes what was written durable (the shard panics on an I/O failure
    /// here; that is caught and reported as an error).
    fn flush(shard: &EdgeShard) -> Result<(), StoreError> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| shard.flush())).map_err(|_| internal("flushing the vector index failed"))
    }

    fn update(&self, ops: Vec<UpdateOperation>, points: u64) -> Result<(), StoreError> {
        let shard = self.write();
        for op in ops {
            shard.update(op).map_err(internal)?;
        }
        let before = self.written.fetch_add(points, Ordering::Relaxed);
        if before / OPTIMIZE_EVERY != (before + points) / OPTIMIZE_EVERY {
            shard.optimize().map_err(internal)?;
        }
        Self::flush(&shard)
    }
}

fn upsert(points: Vec<PointStruct>) -> UpdateOperation {
    UpdateOperation::PointOperation(PointOperations::UpsertPoints(PointInsertOperations::PointsList(
        points.into_iter().map(Into::into).collect(),
    )))
}

fn delete(filter: Filter) -> UpdateOperation {
    UpdateOperation::PointOperation(PointOperations::DeletePointsByFilter(filter))
}

#[async_trait]
impl VectorIndex for EdgeVectors {
    fn dimension(&self) -> usize {
        self.inner.dimension
    }

    async fn upsert_article(&self, article: ArticlePassages) -> Result<(), StoreError> {
        check_article(&article, self.inner.dimension)?;
        let mut ops = vec![delete(article_filter(&article.tenant, &article.article_id)?)];
        let points: Vec<PointStruct> = article
            .passages
            .iter()
            .map(|p| {
                PointStruct::new(PointId::Uuid(Uuid::now_v7()), p.vector.clone(), serde_json::Value::Object(passage_payload(&article, p)))
            })
            .collect();
        let n = points.len() as u64;
        if !points.is_empty() {
            ops.push(upsert(points));
        }
        self.blocking(move |inner| inner.update(ops, n)).await
    }

    async fn remove_article(&self, tenant: &TenantId, article_id: &ArticleId) -> Result<(), StoreError> {
        let op = delete(article_filter(tenant, article_id)?);
        self.blocking(move |inner| inner.update(vec![op], 0)).await
    }

    async fn search(&self, tenant: &TenantId, vector: &[f32], limit: usize) -> Result<Vec<VectorHit>, StoreError> {
        check_vector(vector, self.inner.dimension)?;
        if limit == 0 {
            return Ok(vec![]);
        }
        let request = SearchRequest {
            query: QueryEnum::Nearest(NamedQuery { query: vector.to_vec().into(), using: None }),
            filter: Some(tenant_filter(tenant)?),
            params: None,
            limit,
            offset: 0,
            with_payload: Some(WithPayloadInterface::Bool(true)),
            with_vector: Some(WithVector::Bool(false)),
            score_threshold: None,
        };
        let points = self.blocking(move |inner| inner.read().search(request).map_err(internal)).await?;
        Ok(points.iter().filter_map(|p| hit_from_payload(p.score, &p.payload.as_ref()?.0)).collect())
    }

    async fn count(&self, tenant: &TenantId) -> Result<u64, StoreError> {
        let request = CountRequest { filter: Some(tenant_filter(tenant)?), exact: true };
        self.blocking(move |inner| inner.read().count(request).map(|n| n as u64).map_err(internal)).await
    }

    async fn checkpoint(&self) -> Result<u64, StoreError> {
        self.blocking(|inner| {
            let records = inner
                .read()
                .retrieve(&[PointId::NumId(CHECKPOINT_ID)], Some(WithPayloadInterface::Bool(true)), Some(WithVector::Bool(false)))
                .map_err(internal)?;
            Ok(records.first().and_then(|r| r.payload.as_ref()?.0.get(keys::CHECKPOINT)?.as_u64()).unwrap_or(0))
        })
        .await
    }

    async fn set_checkpoint(&self, position: u64) -> Result<(), StoreError> {
        // A point like any other (the vector must fit), without a tenant: no search sees it.
        let mut vector = vec![0.0; self.inner.dimension];
        vector[0] = 1.0;
        let point = PointStruct::new(PointId::NumId(CHECKPOINT_ID), vector, serde_json::json!({ keys::CHECKPOINT: position }));
        self.blocking(move |inner| inner.update(vec![upsert(vec![point])], 0)).await
    }

    async fn reset(&self) -> Result<(), StoreError> {
        // A filter without conditions matches every point.
        let op = delete(Filter::default());
        self.blocking(move |inner| {
            inner.update(vec![op], 0)?;
            let shard = inner.write();
            shard.optimize().map_err(internal)?;
            Inner::flush(&shard)
        })
        .await
    }
}
