//! The AI worker's side of the knowledge-base vectors: an article becomes
//! passages ([`crate::chunk`]) and each passage a vector ([`crate::embed`]).
//!
//! [`ChunkEncoder`] implements the read side's [`PassageEncoder`] port, so
//! the vector projection (`jamuna_projections::vectors::VectorProjection`)
//! stores what this crate computes without knowing the model. Each passage is
//! embedded together with its article's title, which helps retrieval: a short
//! passage ("It takes 5 days.") says little without its title.

use crate::chunk::{ChunkConfig, split_passages};
use crate::embed::AsyncEmbedder;
use async_trait::async_trait;
use jamuna_projections::vectors::{EncodeError, EncodedPassage, PassageEncoder};

/// Splits and embeds articles with the model, on the blocking pool.
#[derive(Debug, Clone)]
pub struct ChunkEncoder {
    embedder: AsyncEmbedder,
    chunks: ChunkConfig,
}

impl ChunkEncoder {
    pub fn new(embedder: AsyncEmbedder) -> Self {
        Self { embedder, chunks: ChunkConfig::default() }
    }

    pub fn with_chunks(mut self, chunks: ChunkConfig) -> Self {
        self.chunks = chunks;
        self
    }
}

/// What is embedded for a passage: the title, then the passage.
pub fn passage_input(title: &str, passage: &str) -> String {
    format!("{title}\n{passage}")
}

#[async_trait]
impl PassageEncoder for ChunkEncoder {
    fn dimension(&self) -> usize {
        self.embedder.embedder().dim()
    }

    async fn encode(&self, title: &str, body: &str) -> Result<Vec<EncodedPassage>, EncodeError> {
        let passages = split_passages(body, &self.chunks);
        if passages.is_empty() {
            return Ok(vec![]);
        }
        let texts = passages.iter().map(|p| passage_input(title, &p.text)).collect();
        let vectors = self.embedder.embed(texts).await.map_err(|e| EncodeError(Box::new(e)))?;
        if vectors.len() != passages.len() {
            return Err(EncodeError(format!("{} passages but {} vectors", passages.len(), vectors.len()).into()));
        }
        Ok(passages
            .into_iter()
            .zip(vectors)
            .map(|(p, vector)| EncodedPassage { position: u32::try_from(p.index).unwrap_or(u32::MAX), text: p.text, vector })
            .collect())
    }
}
