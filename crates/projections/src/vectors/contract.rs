//! The contract every [`VectorIndex`] adapter passes.
//!
//! An adapter's tests invoke [`vector_index_contract!`](crate::vector_index_contract)
//! with a function that makes a fresh, empty index of [`DIM`] dimensions (or
//! `None` when the adapter's server is not configured, which the function
//! itself reports); the macro expands to one test per rule.

use super::{ArticlePassages, EncodeError, EncodedPassage, PassageEncoder, PassagePoint, VectorIndex, VectorProjection};
use crate::error::StoreError;
use crate::runtime::Projection;
use async_trait::async_trait;
use jamuna_domain::{ArticleId, TenantId};
use std::sync::Arc;

/// The dimension of the contract's vectors.
pub const DIM: usize = 8;

pub type Index = Arc<dyn VectorIndex>;

pub fn tenant(s: &str) -> TenantId {
    TenantId::parse(s).expect("a valid tenant id")
}

pub fn article(s: &str) -> ArticleId {
    ArticleId::parse(s).expect("a valid article id")
}

/// A unit vector mostly along axis `axis`, tilted a little along `axis + 1`.
pub fn axis(axis: usize, tilt: f32) -> Vec<f32> {
    let mut v = [0.0; DIM];
    v[axis % DIM] = 1.0;
    v[(axis + 1) % DIM] = tilt;
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / n).collect()
}

/// An article whose passage `i` points along `axes[i]`.
pub fn passages(t: &str, a: &str, version: u64, axes: &[usize]) -> ArticlePassages {
    ArticlePassages {
        tenant: tenant(t),
        article_id: article(a),
        title: format!("Title of {a}"),
        version,
        passages: axes
            .iter()
            .enumerate()
            .map(|(i, &x)| PassagePoint { position: i as u32, text: format!("{a} passage {i} (v{version})"), vector: axis(x, 0.0) })
            .collect(),
    }
}

/// One test per rule.
#[macro_export]
macro_rules! vector_index_contract {
    ($make:path) => {
        $crate::vector_index_contract!(@tests $make;
            upsert_then_search_finds_it_with_its_payload,
            search_ranks_by_cosine_and_respects_the_limit,
            reupserting_an_article_replaces_its_passages,
            remove_deletes_the_article_only,
            tenants_never_see_each_others_passages,
            an_empty_index_finds_nothing,
            the_wrong_dimension_is_an_error_and_stores_nothing,
            the_checkpoint_is_kept_and_reset_drops_everything,
            the_projection_follows_articles_and_applying_twice_changes_nothing,
        );
    };
    (@tests $make:path; $($rule:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $rule() {
                let Some(index) = $make().await else { return };
                $crate::vectors::contract::$rule(index).await;
            }
        )*
    };
}

pub async fn upsert_then_search_finds_it_with_its_payload(index: Index) {
    let t = tenant("acme");
    index.upsert_article(passages("acme", "cards", 3, &[0, 1])).await.expect("upsert");
    let hits = index.search(&t, &axis(1, 0.1), 5).await.expect("search");
    assert_eq!(hits.len(), 2, "{hits:?}");
    let top = &hits[0];
    assert_eq!(
        (top.article_id.as_str(), top.title.as_str(), top.text.as_str(), top.position, top.version),
        ("cards", "Title of cards", "cards passage 1 (v3)", 1, 3)
    );
    assert!(top.score > 0.99, "cosine of nearly the same direction: {}", top.score);
    assert!(hits[1].score < 0.2, "an orthogonal passage scores about 0: {}", hits[1].score);
    assert_eq!(index.count(&t).await.expect("count"), 2);
}

pub async fn search_ranks_by_cosine_and_respects_the_limit(index: Index) {
    let t = tenant("acme");
    index.upsert_article(passages("acme", "a", 1, &[0, 1, 2, 3])).await.expect("upsert");
    let q = {
        // Closest to axis 2, then 3, then the others.
        let mut v = vec![0.0; DIM];
        v[2] = 0.9;
        v[3] = 0.4;
        v
    };
    let hits = index.search(&t, &q, 2).await.expect("search");
    assert_eq!(hits.iter().map(|h| h.position).collect::<Vec<_>>(), [2, 3]);
    assert!(hits[0].score >= hits[1].score);
    assert!(index.search(&t, &q, 0).await.expect("search").is_empty());
}

pub async fn reupserting_an_article_replaces_its_passages(index: Index) {
    let t = tenant("acme");
    index.upsert_article(passages("acme", "cards", 1, &[0, 1, 2])).await.expect("upsert");
    index.upsert_article(passages("acme", "fees", 1, &[3])).await.expect("upsert");
    // The article shrinks from three passages to one.
    index.upsert_article(passages("acme", "cards", 2, &[4])).await.expect("re-upsert");
    assert_eq!(index.count(&t).await.expect("count"), 2);
    let hits = index.search(&t, &axis(0, 0.0), 10).await.expect("search");
    assert_eq!(hits.len(), 2, "{hits:?}");
    for h in &hits {
        assert!(h.article_id.as_str() == "fees" || (h.version == 2 && h.text == "cards passage 0 (v2)"), "a stale passage: {h:?}");
    }
    // An article rewritten with no passages at all is gone.
    index.upsert_article(passages("acme", "cards", 3, &[])).await.expect("empty upsert");
    assert_eq!(index.count(&t).await.expect("count"), 1);
}

pub async fn remove_deletes_the_article_only(index: Index) {
    let t = tenant("acme");
    index.upsert_article(passages("acme", "cards", 1, &[0, 1])).await.expect("upsert");
    index.upsert_article(passages("acme", "fees", 1, &[2])).await.expect("upsert");
    index.remove_article(&t, &article("cards")).await.expect("remove");
    let hits = index.search(&t, &axis(0, 0.0), 10).await.expect("search");
    assert_eq!(hits.iter().map(|h| h.article_id.as_str()).collect::<Vec<_>>(), ["fees"]);
    // Removing what is not there is not an error.
    index.remove_article(&t, &article("cards")).await.expect("remove again");
    index.remove_article(&t, &article("never")).await.expect("remove unknown");
    assert_eq!(index.count(&t).await.expect("count"), 1);
}

pub async fn tenants_never_see_each_others_passages(index: Index) {
    // The same article id in two tenants, and a much closer passage in the other one.
    index.upsert_article(passages("acme", "cards", 1, &[0])).await.expect("upsert");
    index.upsert_article(passages("globex", "cards", 1, &[1, 1, 1])).await.expect("upsert");
    index.upsert_article(passages("globex", "other", 1, &[5])).await.expect("upsert");
    let hits = index.search(&tenant("acme"), &axis(1, 0.0), 10).await.expect("search");
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].text, "cards passage 0 (v1)");
    assert_eq!(index.count(&tenant("acme")).await.expect("count"), 1);
    assert_eq!(index.count(&tenant("globex")).await.expect("count"), 4);
    // Removing acme's article leaves globex's of the same id.
    index.remove_article(&tenant("acme"), &article("cards")).await.expect("remove");
    assert_eq!(index.count(&tenant("globex")).await.expect("count"), 4);
    assert!(index.search(&tenant("acme"), &axis(1, 0.0), 10).await.expect("search").is_empty());
    assert!(index.search(&tenant("initech"), &axis(1, 0.0), 10).await.expect("search").is_empty());
}

pub async fn an_empty_index_finds_nothing(index: Index) {
    let t = tenant("acme");
    assert!(index.search(&t, &axis(0, 0.0), 10).await.expect("search").is_empty());
    assert_eq!(index.count(&t).await.expect("count"), 0);
    assert_eq!(index.checkpoint().await.expect("checkpoint"), 0);
}

pub async fn the_wrong_dimension_is_an_error_and_stores_nothing(index: Index) {
    let t = tenant("acme");
    assert_eq!(index.dimension(), DIM);
    let mut bad = passages("acme", "cards", 1, &[0, 1]);
    bad.passages[1].vector = vec![1.0; DIM + 1];
    let err = index.upsert_article(bad).await.expect_err("a vector too long");
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    assert_eq!(index.count(&t).await.expect("count"), 0, "nothing of the article is stored");
    let err = index.search(&t, &[1.0; 3], 5).await.expect_err("a query too short");
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    let mut nan = passages("acme", "cards", 1, &[0]);
    nan.passages[0].vector[0] = f32::NAN;
    assert!(matches!(index.upsert_article(nan).await, Err(StoreError::Invalid(_))));
    assert_eq!(index.count(&t).await.expect("count"), 0);
}

pub async fn the_checkpoint_is_kept_and_reset_drops_everything(index: Index) {
    let t = tenant("acme");
    index.upsert_article(passages("acme", "cards", 1, &[0, 1])).await.expect("upsert");
    index.set_checkpoint(41).await.expect("checkpoint");
    index.set_checkpoint(42).await.expect("checkpoint");
    assert_eq!(index.checkpoint().await.expect("checkpoint"), 42);
    // The checkpoint is not a passage: no tenant counts or finds it.
    assert_eq!(index.count(&t).await.expect("count"), 2);
    assert!(index.search(&t, &axis(0, 0.0), 10).await.expect("search").iter().all(|h| h.article_id.as_str() == "cards"));
    index.reset().await.expect("reset");
    assert_eq!(index.checkpoint().await.expect("checkpoint"), 0);
    assert_eq!(index.count(&t).await.expect("count"), 0);
    assert!(index.search(&t, &axis(0, 0.0), 10).await.expect("search").is_empty());
    // Still usable after a reset.
    index.upsert_article(passages("acme", "fees", 1, &[3])).await.expect("upsert");
    assert_eq!(index.count(&t).await.expect("count"), 1);
}

/// A stand-in for the model: a passage per paragraph, its vector from the
/// first word (`axisN` points along axis N).
pub struct ParagraphEncoder;

#[async_trait]
impl PassageEncoder for ParagraphEncoder {
    fn dimension(&self) -> usize {
        DIM
    }

    async fn encode(&self, _title: &str, body: &str) -> Result<Vec<EncodedPassage>, EncodeError> {
        body.split("\n\n")
            .filter(|p| !p.trim().is_empty())
            .enumerate()
            .map(|(i, p)| {
                let n = p.trim().strip_prefix("axis").and_then(|r| r.split_whitespace().next()).and_then(|d| d.parse::<usize>().ok());
                let n = n.ok_or_else(|| EncodeError(format!("a paragraph must start with axisN: {p:?}").into()))?;
                Ok(EncodedPassage { position: i as u32, text: p.trim().to_owned(), vector: axis(n, 0.0) })
            })
            .collect()
    }
}

pub async fn the_projection_follows_articles_and_applying_twice_changes_nothing(index: Index) {
    use jamuna_commands::keys::memory::MemoryKeyStore;
    use jamuna_commands::log::sqlite::SqliteLog;
    use jamuna_commands::{CommandHandler, EventLog, Sealer};
    use jamuna_domain::StreamId;
    use jamuna_domain::knowledge_base::{KnowledgeBase, KnowledgeBaseCommand};

    let dir = std::env::temp_dir().join(format!("jamuna-vectors-contract-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let log: Arc<dyn EventLog> = Arc::new(SqliteLog::open(dir.join("events.db")).await.expect("the log"));
    let handler = CommandHandler::new(log.clone(), Sealer::new(Arc::new(MemoryKeyStore::default())));
    let t = tenant("acme");
    let kb = StreamId::knowledge_base(&t);
    let ctx = || jamuna_commands::handler::CommandContext::new(t.clone(), chrono::Utc::now());
    let run = |c: KnowledgeBaseCommand| {
        let (handler, kb, ctx) = (&handler, &kb, ctx());
        async move { handler.execute::<KnowledgeBase>(kb, &c, &ctx).await.expect("a knowledge-base command") }
    };
    let add = |id: &str, body: &str| KnowledgeBaseCommand::AddArticle {
        tenant: t.clone(),
        article_id: article(id),
        title: format!("T {id}"),
        body: body.into(),
        source: None,
    };
    run(add("cards", "axis0 cards arrive in 5 days\n\naxis1 track them in the app")).await;
    run(add("fees", "axis2 no fees")).await;
    run(add("gone", "axis3 soon removed")).await;
    run(KnowledgeBaseCommand::UpdateArticle {
        article_id: article("cards"),
        title: "Cards".into(),
        body: "axis4 cards arrive in 3 days".into(),
    })
    .await;
    run(KnowledgeBaseCommand::RemoveArticle { article_id: article("gone") }).await;

    let projection = VectorProjection::new(index.clone(), Arc::new(ParagraphEncoder)).expect("the dimensions fit");
    let events = log.read_all(0, 100).await.expect("the log");
    // Event by event, then every event again: the same index.
    for e in &events {
        projection.apply(std::slice::from_ref(e)).await.expect("apply");
    }
    projection.apply(&events).await.expect("apply again");
    let head = events.last().expect("events").position;
    assert_eq!(projection.checkpoint().await.expect("checkpoint"), head);
    assert_eq!(index.count(&t).await.expect("count"), 2, "cards (one passage now) and fees");
    let hits = index.search(&t, &axis(4, 0.0), 1).await.expect("search");
    assert_eq!((hits[0].title.as_str(), hits[0].text.as_str()), ("Cards", "axis4 cards arrive in 3 days"));
    assert!(index.search(&t, &axis(3, 0.0), 5).await.expect("search").iter().all(|h| h.article_id.as_str() != "gone"));

    // A replay from scratch in one batch builds the same.
    let live = crate::vectors::contract::snapshot(&index, &t).await;
    let summary = crate::runtime::replay(log.clone(), &projection, |_| {}).await.expect("replay");
    assert_eq!(summary.position, head);
    assert_eq!(crate::vectors::contract::snapshot(&index, &t).await, live);

    // An encoder of another dimension is refused up front.
    struct Wide;
    #[async_trait]
    impl PassageEncoder for Wide {
        fn dimension(&self) -> usize {
            DIM * 2
        }
        async fn encode(&self, _: &str, _: &str) -> Result<Vec<EncodedPassage>, EncodeError> {
            Ok(vec![])
        }
    }
    assert!(matches!(VectorProjection::new(index, Arc::new(Wide)), Err(StoreError::Invalid(_))));
    drop(handler);
    drop(log);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Everything a tenant has, in a comparable order (article, position).
pub async fn snapshot(index: &Index, t: &TenantId) -> Vec<(String, u32, String, String, u64)> {
    let mut all = Vec::new();
    for a in 0..DIM {
        for h in index.search(t, &axis(a, 0.0), 1000).await.expect("search") {
            all.push((h.article_id.as_str().to_owned(), h.position, h.title, h.text, h.version));
        }
    }
    all.sort();
    all.dedup();
    all
}
