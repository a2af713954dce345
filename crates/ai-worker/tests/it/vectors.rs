//! The knowledge-base vectors with the real model: the chunker and encoder
//! ([`ChunkEncoder`]) feeding qdrant-edge, and the answerer retrieving from it.

use std::sync::Arc;

use jamuna_ai_worker::AsyncEmbedder;
use jamuna_ai_worker::answer::{AnswerConfig, Answerer, Decision};
use jamuna_ai_worker::encoder::ChunkEncoder;
use jamuna_domain::{ArticleId, TenantId};
use jamuna_projections::vectors::VectorProjection;
use jamuna_projections::vectors::edge::EdgeVectors;

use crate::shared_embedder;

/// A fresh qdrant-edge index (in a temporary directory that outlives the
/// test) with the projection that embeds articles with the shared model.
pub async fn vectors() -> Arc<VectorProjection> {
    let dir = tempfile::tempdir().unwrap().keep();
    let embedder = AsyncEmbedder::new(shared_embedder());
    let index = EdgeVectors::open(dir.join("vectors"), embedder.embedder().dim()).await.unwrap();
    Arc::new(VectorProjection::new(Arc::new(index), Arc::new(ChunkEncoder::new(embedder))).unwrap())
}

#[tokio::test]
async fn articles_are_split_embedded_stored_and_answered_from() {
    let vectors = vectors().await;
    let tenant = TenantId::parse("acme").unwrap();
    let other = TenantId::parse("globex").unwrap();
    // A long article: several passages, each found on its own.
    let filler = "Our branches are open on weekdays from nine to five. ".repeat(30);
    let body = format!(
        "## Opening hours\n{filler}\n\n## Lost cards\nIf you lost your card, freeze it in the app under Cards > Freeze card, then order a free replacement.\n\n## Branches\n{filler}"
    );
    let n = vectors.write_article(&tenant, &ArticleId::parse("cards").unwrap(), "Cards", &body, 1).await.unwrap();
    assert!(n >= 3, "a long article makes several passages: {n}");
    vectors.write_article(&other, &ArticleId::parse("pizza").unwrap(), "Pizza", "Our pizza dough rests for 48 hours.", 1).await.unwrap();
    assert_eq!(vectors.index().count(&tenant).await.unwrap(), n as u64);

    let answerer = Answerer::new(AsyncEmbedder::new(shared_embedder()), vectors.clone(), AnswerConfig::default()).await.unwrap();
    let d = answerer.decide(&tenant, "I lost my card, what should I do?").await.unwrap();
    let Decision::Answer { text, sources, .. } = &d else { panic!("{d:?}") };
    assert!(text.contains("Freeze card"), "the passage about lost cards answers: {text}");
    assert_eq!(sources[0].article_id.as_str(), "cards");
    assert_eq!(sources[0].title, "Cards");
    // Another tenant's article is never used.
    let d = answerer.decide(&tenant, "how long does the pizza dough rest?").await.unwrap();
    assert!(!matches!(&d, Decision::Answer { sources, .. } if sources.iter().any(|s| s.article_id.as_str() == "pizza")), "{d:?}");
    // Empty bodies make no passages and remove what there was.
    assert_eq!(vectors.write_article(&tenant, &ArticleId::parse("cards").unwrap(), "Cards", "  ", 2).await.unwrap(), 0);
    assert_eq!(vectors.index().count(&tenant).await.unwrap(), 0);
}
