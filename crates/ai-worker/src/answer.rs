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
//!    calibrated threshold is left to retrieval ([`crate::live::with_intent`]).
//!
//! [`Answerer::decide_in_session`] adds the conversation's context: a short
//! follow-up is read with the question before it, and an unclear message
//! gets one clarifying question before a handoff ([`crate::dialogue`]).
//!
//! The passages live in the knowledge-base vector index
//! ([`jamuna_projections::vectors`]: qdrant-edge in-process or a Qdrant
//! server), embedded once when their article is added or updated; a message
//! is compared with the tenant's nearest passages only. The scoring is a pure
//! function ([`choose`]) so it can be tested without a model.

use crate::embed::{AsyncEmbedder, EmbedError, cosine};
use jamuna_domain::TenantId;
use jamuna_domain::conversation::{HandoffReason, Source};
use jamuna_projections::StoreError;
use jamuna_projections::vectors::{VectorHit, VectorProjection};
use std::sync::Arc;

/// The bot's decision about one message.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Answer { text: String, intent: Option<String>, confidence: f32, sources: Vec<Source> },
    Handoff { reason: HandoffReason, confidence: f32 },
}

#[derive(Debug, Clone)]
pub struct AnswerConfig {
    /// Below this cosine similarity the best passage is not trusted.
    pub min_score: f32,
    /// How many sources an answer cites at most.
    pub max_sources: usize,
    /// Similarity above which a message counts as small talk or a request for a human.
    pub phrase_score: f32,
    /// Longest answer text, in characters.
    pub max_answer_chars: usize,
}

impl Default for AnswerConfig {
    fn default() -> Self {
        Self { min_score: 0.45, max_sources: 3, phrase_score: 0.72, max_answer_chars: 800 }
    }
}

/// Canned phrases the bot recognises, embedded once.
#[derive(Debug, Clone)]
pub struct Phrase {
    pub kind: PhraseKind,
    pub embedding: Vec<f32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhraseKind {
    Human,
    Greeting,
    Thanks,
    Goodbye,
}

const PHRASES: &[(PhraseKind, &str)] = &[
    (PhraseKind::Human, "I want to talk to a human"),
    (PhraseKind::Human, "Can I speak to a real person?"),
    (PhraseKind::Human, "connect me with an agent please"),
    (PhraseKind::Human, "I need a customer service representative"),
    (PhraseKind::Greeting, "Hello"),
    (PhraseKind::Greeting, "Hi there"),
    (PhraseKind::Greeting, "Good morning"),
    (PhraseKind::Thanks, "Thank you"),
    (PhraseKind::Thanks, "Thanks a lot, that helped"),
    (PhraseKind::Goodbye, "Goodbye"),
    (PhraseKind::Goodbye, "Bye, have a nice day"),
];

/// Words that ask for a person whatever the rest of the message says.
const HUMAN_WORDS: &[&str] = &["human", "real person", "agent", "representative", "operator", "someone real"];

impl PhraseKind {
    fn reply(self) -> Option<(&'static str, &'static str)> {
        match self {
            PhraseKind::Human => None,
            PhraseKind::Greeting => Some(("greeting", "Hi! How can I help you today?")),
            PhraseKind::Thanks => Some(("thanks", "You're welcome! Is there anything else I can help with?")),
            PhraseKind::Goodbye => Some(("goodbye", "Goodbye, and thanks for getting in touch!")),
        }
    }
}

fn asks_for_human(text: &str) -> bool {
    let t = text.to_lowercase();
    HUMAN_WORDS.iter().any(|w| t.split(|c: char| !c.is_alphanumeric() && c != ' ').any(|part| part.contains(w)))
}

/// The decision for a message with embedding `query`, against the tenant's
/// passages nearest it (`hits`, best first, scored by cosine similarity) and
/// the canned phrases. Pure: no model, no I/O.
pub fn choose(text: &str, query: &[f32], hits: &[VectorHit], phrases: &[Phrase], config: &AnswerConfig) -> Decision {
    let best_phrase = phrases.iter().map(|p| (p.kind, cosine(query, &p.embedding))).max_by(|a, b| a.1.total_cmp(&b.1));
    if asks_for_human(text) {
        return Decision::Handoff { reason: HandoffReason::CustomerAsked, confidence: 1.0 };
    }
    if let Some((PhraseKind::Human, s)) = best_phrase
        && s >= config.phrase_score
    {
        return Decision::Handoff { reason: HandoffReason::CustomerAsked, confidence: s };
    }
    let best = hits.first().map(|h| h.score).unwrap_or(0.0);
    if let Some((kind, s)) = best_phrase
        && s >= config.phrase_score
        && s >= best
        && let Some((intent, reply)) = kind.reply()
    {
        return Decision::Answer { text: reply.into(), intent: Some(intent.into()), confidence: s, sources: vec![] };
    }
    let Some(top) = hits.first().filter(|h| h.score >= config.min_score) else {
        return Decision::Handoff { reason: HandoffReason::LowConfidence, confidence: best.max(0.0) };
    };
    let mut sources = Vec::new();
    for p in hits.iter().take_while(|h| h.score >= config.min_score) {
        if sources.len() >= config.max_sources {
            break;
        }
        if sources.iter().any(|src: &Source| src.article_id == p.article_id) {
            continue;
        }
        sources.push(Source {
            article_id: p.article_id.clone(),
            title: p.title.clone(),
            passage: p.text.chars().take(300).collect(),
            score: p.score,
        });
    }
    let text: String = top.text.chars().take(config.max_answer_chars).collect();
    Decision::Answer { text, intent: None, confidence: top.score, sources }
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
        let query = self.embedder.embed(vec![text.to_string()]).await?.into_iter().next().unwrap_or_default();
        let hits = self.search(tenant, &query).await;
        let retrieved = choose(text, &query, &hits, &self.phrases, &self.config);
        // The tenant's intent model, if trained, has the first word (crate::live::with_intent).
        let predicted = self.intents.predict(tenant, &query);
        Ok(crate::live::with_intent(retrieved, predicted.as_ref().map(|p| &p.0), predicted.as_ref().and_then(|p| p.1.as_deref())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jamuna_domain::ArticleId;

    /// A passage with its embedding, as the vector index holds it.
    struct IndexedPassage {
        article_id: ArticleId,
        title: String,
        text: String,
        embedding: Vec<f32>,
    }

    /// What the vector index does before [`choose`]: score every passage, best first.
    fn choose_among(text: &str, query: &[f32], passages: &[IndexedPassage], phrases: &[Phrase], config: &AnswerConfig) -> Decision {
        let mut hits: Vec<VectorHit> = passages
            .iter()
            .enumerate()
            .map(|(i, p)| VectorHit {
                score: cosine(query, &p.embedding),
                article_id: p.article_id.clone(),
                title: p.title.clone(),
                text: p.text.clone(),
                position: i as u32,
                version: 1,
            })
            .collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score));
        choose(text, query, &hits, phrases, config)
    }

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }
    fn passage(id: &str, e: &[f32]) -> IndexedPassage {
        IndexedPassage {
            article_id: ArticleId::parse(id).unwrap(),
            title: format!("Title {id}"),
            text: format!("Text of {id}"),
            embedding: unit(e),
        }
    }
    fn phrases() -> Vec<Phrase> {
        vec![
            Phrase { kind: PhraseKind::Greeting, embedding: unit(&[0.0, 0.0, 1.0]) },
            Phrase { kind: PhraseKind::Human, embedding: unit(&[0.0, 1.0, 0.0]) },
        ]
    }

    #[test]
    fn the_closest_passage_answers_and_is_cited() {
        let passages = [passage("cards", &[1.0, 0.0, 0.1]), passage("fees", &[0.2, 0.1, 0.0])];
        let d = choose_among("where is my card", &unit(&[1.0, 0.05, 0.05]), &passages, &phrases(), &AnswerConfig::default());
        let Decision::Answer { text, sources, confidence, .. } = d else { panic!("expected an answer: {d:?}") };
        assert_eq!(text, "Text of cards");
        assert_eq!(sources[0].article_id.as_str(), "cards");
        assert!(confidence > 0.9);
    }

    #[test]
    fn a_far_message_hands_off_instead_of_guessing() {
        let passages = [passage("cards", &[1.0, 0.0, 0.0])];
        let d = choose_among("what is the meaning of life", &unit(&[-1.0, 0.1, -0.2]), &passages, &phrases(), &AnswerConfig::default());
        assert!(matches!(d, Decision::Handoff { reason: HandoffReason::LowConfidence, .. }), "{d:?}");
        let empty = choose_among("anything", &unit(&[1.0, 0.0, 0.0]), &[], &[], &AnswerConfig::default());
        assert!(matches!(empty, Decision::Handoff { reason: HandoffReason::LowConfidence, .. }));
    }

    #[test]
    fn asking_for_a_human_hands_off() {
        let d = choose_among(
            "can I talk to a human please",
            &unit(&[1.0, 0.0, 0.0]),
            &[passage("cards", &[1.0, 0.0, 0.0])],
            &phrases(),
            &AnswerConfig::default(),
        );
        assert!(matches!(d, Decision::Handoff { reason: HandoffReason::CustomerAsked, .. }));
        let d = choose_among("get me someone", &unit(&[0.0, 1.0, 0.0]), &[], &phrases(), &AnswerConfig::default());
        assert!(matches!(d, Decision::Handoff { reason: HandoffReason::CustomerAsked, .. }));
    }

    #[test]
    fn greetings_get_a_greeting() {
        let d = choose_among("hello", &unit(&[0.0, 0.0, 1.0]), &[passage("cards", &[1.0, 0.0, 0.0])], &phrases(), &AnswerConfig::default());
        assert!(matches!(d, Decision::Answer { intent: Some(ref i), .. } if i == "greeting"), "{d:?}");
    }
}
