//! The knowledge-base vector index against its contract: qdrant-edge always
//! (in a temporary directory), a Qdrant server when JAMUNA_TEST_QDRANT_URL
//! names one (`make test` does not start Qdrant, so those tests say NOT RUN
//! and pass without it, even under JAMUNA_REQUIRE_SERVICES=1).

use jamuna_projections::StoreError;
use jamuna_projections::vectors::VectorIndex;
use jamuna_projections::vectors::contract::{DIM, Index, axis, passages, tenant};
use jamuna_projections::vectors::edge::EdgeVectors;
use jamuna_projections::vectors::qdrant::QdrantVectors;
use std::sync::Arc;

/// Keeps the directory alive as long as the index.
struct InDir {
    index: EdgeVectors,
    _dir: tempfile::TempDir,
}

#[async_trait::async_trait]
impl VectorIndex for InDir {
    fn dimension(&self) -> usize {
        self.index.dimension()
    }
    async fn upsert_article(&self, a: jamuna_projections::vectors::ArticlePassages) -> Result<(), StoreError> {
        self.index.upsert_article(a).await
    }
    async fn remove_article(&self, t: &jamuna_domain::TenantId, a: &jamuna_domain::ArticleId) -> Result<(), StoreError> {
        self.index.remove_article(t, a).await
    }
    async fn search(
        &self,
        t: &jamuna_domain::TenantId,
        v: &[f32],
        limit: usize,
    ) -> Result<Vec<jamuna_projections::vectors::VectorHit>, StoreError> {
        self.index.search(t, v, limit).await
    }
    async fn count(&self, t: &jamuna_domain::TenantId) -> Result<u64, StoreError> {
        self.index.count(t).await
    }
    async fn checkpoint(&self) -> Result<u64, StoreError> {
        self.index.checkpoint().await
    }
    async fn set_checkpoint(&self, p: u64) -> Result<(), StoreError> {
        self.index.set_checkpoint(p).await
    }
    async fn reset(&self) -> Result<(), StoreError> {
        self.index.reset().await
    }
}

pub async fn edge() -> Option<Index> {
    let dir = tempfile::tempdir().expect("a temp dir");
    let index = EdgeVectors::open(dir.path().join("vectors"), DIM).await.expect("open qdrant-edge");
    Some(Arc::new(InDir { index, _dir: dir }))
}

pub async fn server() -> Option<Index> {
    let Ok(url) = std::env::var("JAMUNA_TEST_QDRANT_URL") else {
        eprintln!(
            "NOT RUN: the Qdrant-server vector tests need JAMUNA_TEST_QDRANT_URL (a Qdrant gRPC URL, e.g. http://127.0.0.1:6334); make test does not start Qdrant"
        );
        return None;
    };
    let collection = format!("jamuna_test_{}", uuid::Uuid::now_v7().simple());
    Some(Arc::new(QdrantVectors::connect(&url, &collection, DIM).await.expect("connect to Qdrant")))
}

mod edge_contract {
    jamuna_projections::vector_index_contract!(super::edge);
}

mod qdrant_contract {
    jamuna_projections::vector_index_contract!(super::server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_keeps_its_points_and_checkpoint_across_a_reopen() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("vectors");
    let t = tenant("acme");
    {
        let index = EdgeVectors::open(&path, DIM).await.expect("open");
        index.upsert_article(passages("acme", "cards", 1, &[0, 1])).await.expect("upsert");
        index.upsert_article(passages("acme", "fees", 1, &[2])).await.expect("upsert");
        index.remove_article(&t, &jamuna_projections::vectors::contract::article("fees")).await.expect("remove");
        index.set_checkpoint(17).await.expect("checkpoint");
    }
    let index = EdgeVectors::open(&path, DIM).await.expect("reopen");
    assert_eq!(index.checkpoint().await.expect("checkpoint"), 17);
    assert_eq!(index.count(&t).await.expect("count"), 2);
    let hits = index.search(&t, &axis(1, 0.0), 1).await.expect("search");
    assert_eq!((hits[0].article_id.as_str(), hits[0].position), ("cards", 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_refuses_to_open_a_shard_of_another_dimension() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("vectors");
    drop(EdgeVectors::open(&path, DIM).await.expect("open"));
    let err = EdgeVectors::open(&path, DIM * 2).await.err().expect("another dimension");
    assert!(err.to_string().contains("dimension"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_stays_correct_past_its_optimizer_runs() {
    // Enough points written to run the shard's optimizers (vacuum, merge) a few times.
    use jamuna_projections::vectors::edge::OPTIMIZE_EVERY;
    let Some(index) = edge().await else { return };
    let t = tenant("acme");
    let per_article = 50;
    let articles = (OPTIMIZE_EVERY as usize * 2) / per_article + 1;
    for round in 0..2u64 {
        for a in 0..articles {
            let axes: Vec<usize> = (0..per_article).map(|i| (a + i) % DIM).collect();
            index.upsert_article(passages("acme", &format!("a{a}"), round + 1, &axes)).await.expect("upsert");
        }
    }
    assert_eq!(index.count(&t).await.expect("count"), (articles * per_article) as u64);
    let hits = index.search(&t, &axis(3, 0.0), 20).await.expect("search");
    assert_eq!(hits.len(), 20);
    assert!(hits.iter().all(|h| h.version == 2 && h.score > 0.99), "{hits:?}");
}
