//! Search latency of the knowledge-base vector index (qdrant-edge), printed,
//! never asserted:
//! `cargo run --release -p jamuna-projections --features bench --example bench_vectors -- 10000`.
//!
//! Fills one tenant with N passages of 384 dimensions (all-MiniLM-L6-v2's size;
//! random unit vectors, 10 passages an article) beside a second tenant of the
//! same size, so every search filters; then times 1,000 searches of 12 hits
//! (what the answerer asks for) and prints p50 / p99. With
//! JAMUNA_TEST_QDRANT_URL set it measures that Qdrant server too.

use jamuna_domain::{ArticleId, TenantId};
use jamuna_projections::vectors::edge::EdgeVectors;
use jamuna_projections::vectors::qdrant::QdrantVectors;
use jamuna_projections::vectors::{ArticlePassages, PassagePoint, VectorIndex};
use std::time::{Duration, Instant};

const DIM: usize = 384;
const PER_ARTICLE: usize = 10;
const QUERIES: usize = 1_000;
const LIMIT: usize = 12;

/// xorshift64*: reproducible vectors without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        ((self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40) as f32 / (1u64 << 24) as f32) - 0.5
    }

    fn unit(&mut self) -> Vec<f32> {
        let v: Vec<f32> = (0..DIM).map(|_| self.next()).collect();
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / n).collect()
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn bench(name: &str, index: &dyn VectorIndex, n: usize) -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let started = Instant::now();
    for tenant in ["bench", "neighbour"] {
        let tenant = TenantId::parse(tenant)?;
        for a in 0..n.div_ceil(PER_ARTICLE) {
            let passages = (0..PER_ARTICLE)
                .map(|i| PassagePoint { position: i as u32, text: format!("passage {i} of article {a}"), vector: rng.unit() })
                .collect();
            index
                .upsert_article(ArticlePassages {
                    tenant: tenant.clone(),
                    article_id: ArticleId::parse(format!("a{a}"))?,
                    title: format!("Article {a}"),
                    version: 1,
                    passages,
                })
                .await?;
        }
    }
    let fill = started.elapsed();
    let tenant = TenantId::parse("bench")?;
    let count = index.count(&tenant).await?;
    println!(
        "{name}: {count} passages in the tenant searched (and as many in another), written in {:.1} s ({:.0} passages/s, one upsert per article of {PER_ARTICLE})",
        fill.as_secs_f64(),
        2.0 * count as f64 / fill.as_secs_f64()
    );
    let mut times = Vec::with_capacity(QUERIES);
    for _ in 0..QUERIES {
        let q = rng.unit();
        let t = Instant::now();
        let hits = index.search(&tenant, &q, LIMIT).await?;
        times.push(t.elapsed());
        assert_eq!(hits.len(), LIMIT);
    }
    times.sort();
    println!(
        "{name}: search of {LIMIT} hits among {count} passages: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({QUERIES} queries)",
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.99).as_secs_f64() * 1e3,
        times.last().map_or(0.0, |d| d.as_secs_f64() * 1e3)
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let dir = tempfile::tempdir()?;
    let edge = EdgeVectors::open(dir.path().join("vectors"), DIM).await?;
    bench("qdrant-edge", &edge, n).await?;
    if let Ok(url) = std::env::var("JAMUNA_TEST_QDRANT_URL") {
        let server = QdrantVectors::connect(&url, &format!("jamuna_bench_{}", std::process::id()), DIM).await?;
        bench("qdrant server", &server, n).await?;
        server.reset().await?;
    }
    Ok(())
}
