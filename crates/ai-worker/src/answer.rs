//! What the bot says to a customer message — or that it says nothing and a
//! human takes over.
//!
//! For each message, in order:
//!
//! 1. **A request for a human** ("can I talk to a person?") hands off at once.
//! 2. **Small talk** (greetings, thanks, goodbyes) gets a short reply.
//! 3. **Retrieval**: the message is compared with every passage of the
//!    tenant's knowledge base; the best passage answers, citing its article,
//!    if it is close enough. Otherwise the bot does not guess: it hands off
//!    with reason `low_confidence`.
//! 4. **Intent** (when the tenant has a trained model): a confident intent
//!    with an answer answers with it; a confident intent without one is
//!    recorded on the retrieval answer; a message below the model's
//!    calibrated threshold is left to retrieval ([`with_intent`]).
//!
//! Each decision carries why it was made ([`Decision::why`]: which score
//! decided, and the scores), which the worker records for agents.
//!
//! [`Answerer::decide_in_session`] adds the conversation's context: a short
//! follow-up is read with the question before it, and an unclear message
//! gets one clarifying question before a handoff ([`crate::dialogue`]).
//!
//! The passages live in the knowledge-base vector index
//! ([`jamuna_projections::vectors`]: qdrant-edge in-process or a Qdrant
//! server), embedded once when their article is added or updated; a message
//! is compared with the tenant's nearest passages only. The scoring is pure
//! ([`crate::decision`]: [`choose`], then [`with_intent`]) so it can be tested
//! without a model; this module computes what it scores.

use crate::decision::{PHRASES, Phrase, choose, with_intent};
use crate::embed::{AsyncEmbedder, EmbedError};
use jamuna_domain::TenantId;
use jamuna_projections::StoreError;
use jamuna_projections::vectors::{VectorHit, VectorProjection};
use std::sync::Arc;

pub use crate::decision::{AnswerConfig, Decision};

/// A message as the models read it: its embedding, and the tenant's intent model's
/// prediction with the intent's answer (`None` when the tenant has no model).
#[derive(Debug, Clone)]
pub struct Read {
    pub embedding: Vec<f32>,
    pub intent: Option<(crate::Prediction, Option<String>)>,
    /// A follow-up read after its conversation's previous question, in the same
    /// batch ([`Answerer::read_in_context`](crate::answer::Answerer::read_in_context)):
    /// that question, as the session held it then, and the reading of the two together.
    pub in_context: Option<(String, Box<Read>)>,
}

/// The tenants' knowledge, embedded, and the model that embeds messages.
pub struct Answerer {
    embedder: AsyncEmbedder,
    phrases: Vec<Phrase>,
    /// The knowledge-base vectors, and the projection that keeps them current.
    vectors: Arc<VectorProjection>,
    pub config: AnswerConfig,
    /// The tenants' labelled examples, intent answers and models (see [`crate::live`]).
    pub(crate) intents: std::sync::Arc<crate::live::LiveIntents>,
    /// What the bot remembers between turns (see [`crate::dialogue`]).
    pub(crate) sessions: Option<std::sync::Arc<dyn jamuna_projections::sessions::SessionStore>>,
}

impl Answerer {
    /// `vectors` holds the knowledge bases; its encoder must be this
    /// embedder's ([`crate::encoder::ChunkEncoder`]), so that passages and
    /// messages are embedded alike.
    pub async fn new(embedder: AsyncEmbedder, vectors: Arc<VectorProjection>, config: AnswerConfig) -> Result<Self, EmbedError> {
        let texts: Vec<String> = PHRASES.iter().map(|(_, t)| t.to_string()).collect();
        let embeddings = embedder.embed(texts).await?;
        let phrases = PHRASES.iter().zip(embeddings).map(|((kind, _), embedding)| Phrase { kind: *kind, embedding }).collect();
        Ok(Self {
            intents: std::sync::Arc::new(crate::live::LiveIntents::new(embedder.clone())),
            sessions: None,
            embedder,
            phrases,
            vectors,
            config,
        })
    }

    /// The knowledge-base vector projection: the worker feeds it the
    /// knowledge-base events in log order, so a message is answered from the
    /// articles as they stood when it was sent.
    pub fn vectors(&self) -> &Arc<VectorProjection> {
        &self.vectors
    }

    /// How many passages a tenant has.
    pub async fn passages(&self, tenant: &TenantId) -> Result<u64, StoreError> {
        self.vectors.index().count(tenant).await
    }

    /// The tenant's passages nearest `query`, best first. When the index
    /// fails, none (logged and counted): the bot then hands off rather than guess.
    async fn search(&self, tenant: &TenantId, query: &[f32]) -> Vec<VectorHit> {
        let limit = (self.config.max_sources * 4).max(8);
        match self.vectors.index().search(tenant, query, limit).await {
            Ok(hits) => hits,
            Err(e) => {
                tracing::error!(%tenant, error = %e, "the knowledge-base vector search failed; answering without passages");
                metrics::counter!("jamuna_vector_search_failures_total").increment(1);
                vec![]
            }
        }
    }

    /// Decides what to say to `text` from a customer of `tenant`.
    pub async fn decide(&self, tenant: &TenantId, text: &str) -> Result<Decision, EmbedError> {
        self.decide_embedded(tenant, text, None).await
    }

    /// Reads many messages (tenant, text) at once: one embedding call for all their
    /// texts (one forward pass per length bucket), then each tenant's intent model
    /// over all of its messages together (one nearest-example product, off the
    /// runtime's threads). A batch of messages is read together, then each decided
    /// with its reading ([`Answerer::decide_embedded`]).
    pub async fn read_all(&self, messages: Vec<(TenantId, String)>) -> Result<Vec<Read>, EmbedError> {
        let (tenants, texts): (Vec<TenantId>, Vec<String>) = messages.into_iter().unzip();
        let embeddings = self.embedder.embed(texts).await?;
        let reads: Vec<(TenantId, Vec<f32>)> = tenants.into_iter().zip(embeddings).collect();
        let intents = Arc::clone(&self.intents);
        tokio::task::spawn_blocking(move || {
            let predicted = intents.predict_all(&reads);
            reads.into_iter().zip(predicted).map(|((_, embedding), intent)| Read { embedding, intent, in_context: None }).collect()
        })
        .await
        .map_err(|e| EmbedError::Task(e.to_string()))
    }

    /// [`Answerer::decide`], with the message's reading when a batch computed it
    /// already (`None`: read here).
    pub async fn decide_embedded(&self, tenant: &TenantId, text: &str, read: Option<&Read>) -> Result<Decision, EmbedError> {
        let query = match read {
            Some(r) => r.embedding.clone(),
            None => self.embedder.embed(vec![text.to_string()]).await?.into_iter().next().unwrap_or_default(),
        };
        let hits = self.search(tenant, &query).await;
        let retrieved = choose(text, &query, &hits, &self.phrases, &self.config);
        // The tenant's intent model, if trained, has the first word (with_intent).
        let predicted = match read {
            Some(r) => r.intent.clone(),
            None => self.intents.predict(tenant, &query),
        };
        Ok(with_intent(retrieved, predicted.as_ref().map(|p| &p.0), predicted.as_ref().and_then(|p| p.1.as_deref())))
    }
}
