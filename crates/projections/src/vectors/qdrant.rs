//! The [`VectorIndex`] on a Qdrant server, over gRPC with `qdrant-client`.
//!
//! One collection (named by the caller, e.g. `jamuna_kb`) holds every
//! tenant's passages, with a keyword index on `tenant` marked `is_tenant`
//! (see the [module docs](super)). Writes wait for the server to apply them
//! (`wait: true`), so a checkpoint written after them never runs ahead. An
//! article's replacement is one ordered batch: delete its points, then upsert
//! the new ones.

use super::{ArticlePassages, VectorHit, VectorIndex, check_article, check_vector, hit_from_payload, keys, passage_payload};
use crate::error::StoreError;
use async_trait::async_trait;
use jamuna_domain::{ArticleId, TenantId};
use qdrant_client::qdrant::points_update_operation::{DeletePoints, Operation, PointStructList};
use qdrant_client::qdrant::vectors_config::Config as VectorsConfigKind;
use qdrant_client::qdrant::{
    Condition, CountPointsBuilder, CreateCollectionBuilder, CreateFieldIndexCollectionBuilder, Distance, FieldType, Filter,
    GetPointsBuilder, KeywordIndexParamsBuilder, PointId, PointStruct, PointsUpdateOperation, QueryPointsBuilder, UpdateBatchPointsBuilder,
    UpsertPointsBuilder, VectorParamsBuilder,
};
use qdrant_client::{Payload, Qdrant, QdrantError};

/// The id of the point that holds the checkpoint.
const CHECKPOINT_ID: u64 = 0;

/// The knowledge-base vectors in a collection of a Qdrant server.
pub struct QdrantVectors {
    client: Qdrant,
    collection: String,
    dimension: usize,
}

fn store_error(e: QdrantError) -> StoreError {
    use tonic_code::Code;
    match &e {
        QdrantError::ResponseError { status }
            if matches!(status.code(), Code::Unavailable | Code::DeadlineExceeded | Code::Aborted | Code::Unknown) =>
        {
            StoreError::unavailable(e)
        }
        QdrantError::ResourceExhaustedError { .. } | QdrantError::Io(_) => StoreError::unavailable(e),
        QdrantError::ResponseError { status } if status.code() == Code::InvalidArgument => StoreError::Invalid(status.message().to_owned()),
        _ => StoreError::internal(e),
    }
}

/// `tonic::Code`, as `qdrant-client` exposes it through its errors.
mod tonic_code {
    pub use tonic::Code;
}

fn tenant_filter(tenant: &TenantId) -> Filter {
    Filter::must([Condition::matches(keys::TENANT, tenant.as_str().to_owned())])
}

fn article_filter(tenant: &TenantId, article: &ArticleId) -> Filter {
    Filter::must([
        Condition::matches(keys::TENANT, tenant.as_str().to_owned()),
        Condition::matches(keys::ARTICLE, article.as_str().to_owned()),
    ])
}

fn delete_by(filter: Filter) -> PointsUpdateOperation {
    PointsUpdateOperation {
        operation: Some(Operation::DeletePoints(DeletePoints { points: Some(filter.into()), shard_key_selector: None })),
    }
}

impl QdrantVectors {
    /// Connects to the server at `url` (gRPC, e.g. `http://127.0.0.1:6334`)
    /// and makes sure `collection` exists for vectors of `dimension`; an
    /// existing collection of another dimension is an error.
    pub async fn connect(url: &str, collection: &str, dimension: usize) -> Result<Self, StoreError> {
        if dimension == 0 {
            return Err(StoreError::Invalid("a vector index needs at least one dimension".into()));
        }
        let client = Qdrant::from_url(url).skip_compatibility_check().build().map_err(store_error)?;
        let index = Self { client, collection: collection.to_owned(), dimension };
        index.ensure_collection().await?;
        Ok(index)
    }

    async fn ensure_collection(&self) -> Result<(), StoreError> {
        if self.client.collection_exists(&self.collection).await.map_err(store_error)? {
            let info = self.client.collection_info(&self.collection).await.map_err(store_error)?;
            let size =
                info.result.and_then(|r| r.config).and_then(|c| c.params).and_then(|p| p.vectors_config).and_then(|v| v.config).and_then(
                    |c| match c {
                        VectorsConfigKind::Params(p) => Some(p.size),
                        VectorsConfigKind::ParamsMap(_) => None,
                    },
                );
            return match size {
                Some(size) if size == self.dimension as u64 => Ok(()),
                other => Err(StoreError::Invalid(format!(
                    "the Qdrant collection {} holds vectors of {other:?} dimensions, not {}",
                    self.collection, self.dimension
                ))),
            };
        }
        let create = CreateCollectionBuilder::new(&self.collection)
            .vectors_config(VectorParamsBuilder::new(self.dimension as u64, Distance::Cosine));
        match self.client.create_collection(create).await {
            Ok(_) => {}
            // Another process created it meanwhile.
            Err(QdrantError::ResponseError { status }) if status.code() == tonic_code::Code::AlreadyExists => return Ok(()),
            Err(e) => return Err(store_error(e)),
        }
        let index = CreateFieldIndexCollectionBuilder::new(&self.collection, keys::TENANT, FieldType::Keyword)
            .field_index_params(KeywordIndexParamsBuilder::default().is_tenant(true))
            .wait(true);
        self.client.create_field_index(index).await.map_err(store_error)?;
        let index = CreateFieldIndexCollectionBuilder::new(&self.collection, keys::ARTICLE, FieldType::Keyword).wait(true);
        self.client.create_field_index(index).await.map_err(store_error)?;
        Ok(())
    }

    pub fn collection(&self) -> &str {
        &self.collection
    }
}

#[async_trait]
impl VectorIndex for QdrantVectors {
    fn dimension(&self) -> usize {
        self.dimension
    }

    async fn upsert_article(&self, article: ArticlePassages) -> Result<(), StoreError> {
        check_article(&article, self.dimension)?;
        let points: Vec<PointStruct> = article
            .passages
            .iter()
            .map(|p| PointStruct::new(uuid::Uuid::now_v7().to_string(), p.vector.clone(), Payload::from(passage_payload(&article, p))))
            .collect();
        let mut ops = vec![delete_by(article_filter(&article.tenant, &article.article_id))];
        if !points.is_empty() {
            ops.push(PointsUpdateOperation { operation: Some(Operation::Upsert(PointStructList { points, ..Default::default() })) });
        }
        self.client.update_points_batch(UpdateBatchPointsBuilder::new(&self.collection, ops).wait(true)).await.map_err(store_error)?;
        Ok(())
    }

    async fn remove_article(&self, tenant: &TenantId, article_id: &ArticleId) -> Result<(), StoreError> {
        let ops = vec![delete_by(article_filter(tenant, article_id))];
        self.client.update_points_batch(UpdateBatchPointsBuilder::new(&self.collection, ops).wait(true)).await.map_err(store_error)?;
        Ok(())
    }

    async fn search(&self, tenant: &TenantId, vector: &[f32], limit: usize) -> Result<Vec<VectorHit>, StoreError> {
        check_vector(vector, self.dimension)?;
        if limit == 0 {
            return Ok(vec![]);
        }
        let query = QueryPointsBuilder::new(&self.collection)
            .query(vector.to_vec())
            .filter(tenant_filter(tenant))
            .limit(limit as u64)
            .with_payload(true);
        let response = self.client.query(query).await.map_err(store_error)?;
        Ok(response
            .result
            .into_iter()
            .filter_map(|p| {
                let payload: serde_json::Map<String, serde_json::Value> = p.payload.into_iter().map(|(k, v)| (k, v.into_json())).collect();
                hit_from_payload(p.score, &payload)
            })
            .collect())
    }

    async fn count(&self, tenant: &TenantId) -> Result<u64, StoreError> {
        let response = self
            .client
            .count(CountPointsBuilder::new(&self.collection).filter(tenant_filter(tenant)).exact(true))
            .await
            .map_err(store_error)?;
        Ok(response.result.map_or(0, |r| r.count))
    }

    async fn checkpoint(&self) -> Result<u64, StoreError> {
        let ids: Vec<PointId> = vec![CHECKPOINT_ID.into()];
        let response =
            self.client.get_points(GetPointsBuilder::new(&self.collection, ids).with_payload(true)).await.map_err(store_error)?;
        Ok(response
            .result
            .into_iter()
            .next()
            .and_then(|p| p.payload.get(keys::CHECKPOINT).cloned())
            .and_then(|v| v.into_json().as_u64())
            .unwrap_or(0))
    }

    async fn set_checkpoint(&self, position: u64) -> Result<(), StoreError> {
        // A point like any other (the vector must fit), without a tenant: no search sees it.
        let mut vector = vec![0.0; self.dimension];
        vector[0] = 1.0;
        let payload = Payload::try_from(serde_json::json!({ keys::CHECKPOINT: position })).map_err(store_error)?;
        let point = PointStruct::new(CHECKPOINT_ID, vector, payload);
        self.client.upsert_points(UpsertPointsBuilder::new(&self.collection, vec![point]).wait(true)).await.map_err(store_error)?;
        Ok(())
    }

    async fn reset(&self) -> Result<(), StoreError> {
        if self.client.collection_exists(&self.collection).await.map_err(store_error)? {
            self.client.delete_collection(&self.collection).await.map_err(store_error)?;
        }
        self.ensure_collection().await
    }
}
