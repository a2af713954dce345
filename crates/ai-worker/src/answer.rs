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
//!
//! The passages live in memory per tenant, embedded once when their article
//! is added or updated. The scoring is a pure function ([`choose`]) so it can
//! be tested without a model.

use crate::chunk::{ChunkConfig, split_passages};
use crate::embed::{AsyncEmbedder, EmbedError, cosine};
use jamuna_domain::conversation::{HandoffReason, Source};
use jamuna_domain::{ArticleId, TenantId};
use std::collections::HashMap;
use std::sync::RwLock;

/// The bot's decision about one message.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Answer {
        text: String,
        intent: Option<String>,
        confidence: f32,
        sources: Vec<Source>,
    },
    Handoff {
        reason: HandoffReason,
        confidence: f32,
    },
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
        Self {
            min_score: 0.45,
            max_sources: 3,
            phrase_score: 0.72,
            max_answer_chars: 800,
        }
    }
}

/// One embedded passage of an article.
#[derive(Debug, Clone)]
pub struct IndexedPassage {
    pub article_id: ArticleId,
    pub title: String,
    pub text: String,
    pub embedding: Vec<f32>,
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
    (
        PhraseKind::Human,
        "I need a customer service representative",
    ),
    (PhraseKind::Greeting, "Hello"),
    (PhraseKind::Greeting, "Hi there"),
    (PhraseKind::Greeting, "Good morning"),
    (PhraseKind::Thanks, "Thank you"),
    (PhraseKind::Thanks, "Thanks a lot, that helped"),
    (PhraseKind::Goodbye, "Goodbye"),
    (PhraseKind::Goodbye, "Bye, have a nice day"),
];

/// Words that ask for a person whatever the rest of the message says.
const HUMAN_WORDS: &[&str] = &[
    "human",
    "real person",
    "agent",
    "representative",
    "operator",
    "someone real",
];

impl PhraseKind {
    fn reply(self) -> Option<(&'static str, &'static str)> {
        match self {
            PhraseKind::Human => None,
            PhraseKind::Greeting => Some(("greeting", "Hi! How can I help you today?")),
            PhraseKind::Thanks => Some((
                "thanks",
                "You're welcome! Is there anything else I can help with?",
            )),
            PhraseKind::Goodbye => Some(("goodbye", "Goodbye, and thanks for getting in touch!")),
        }
    }
}

fn asks_for_human(text: &str) -> bool {
    let t = text.to_lowercase();
    HUMAN_WORDS.iter().any(|w| {
        t.split(|c: char| !c.is_alphanumeric() && c != ' ')
            .any(|part| part.contains(w))
    })
}

/// The decision for a message with embedding `query`, against the tenant's
/// passages and the canned phrases. Pure: no model, no I/O.
pub fn choose(
    text: &str,
    query: &[f32],
    passages: &[IndexedPassage],
    phrases: &[Phrase],
    config: &AnswerConfig,
) -> Decision {
    let best_phrase = phrases
        .iter()
        .map(|p| (p.kind, cosine(query, &p.embedding)))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    if asks_for_human(text) {
        return Decision::Handoff {
            reason: HandoffReason::CustomerAsked,
            confidence: 1.0,
        };
    }
    if let Some((PhraseKind::Human, s)) = best_phrase
        && s >= config.phrase_score
    {
        return Decision::Handoff {
            reason: HandoffReason::CustomerAsked,
            confidence: s,
        };
    }
    let mut scored: Vec<(f32, &IndexedPassage)> = passages
        .iter()
        .map(|p| (cosine(query, &p.embedding), p))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let best = scored.first().map(|s| s.0).unwrap_or(0.0);
    if let Some((kind, s)) = best_phrase
        && s >= config.phrase_score
        && s >= best
        && let Some((intent, reply)) = kind.reply()
    {
        return Decision::Answer {
            text: reply.into(),
            intent: Some(intent.into()),
            confidence: s,
            sources: vec![],
        };
    }
    let Some(&(score, top)) = scored.first().filter(|s| s.0 >= config.min_score) else {
        return Decision::Handoff {
            reason: HandoffReason::LowConfidence,
            confidence: best.max(0.0),
        };
    };
    let mut sources = Vec::new();
    for (s, p) in scored.iter().take_while(|(s, _)| *s >= config.min_score) {
        if sources.len() >= config.max_sources {
            break;
        }
        if sources
            .iter()
            .any(|src: &Source| src.article_id == p.article_id)
        {
            continue;
        }
        sources.push(Source {
            article_id: p.article_id.clone(),
            title: p.title.clone(),
            passage: p.text.chars().take(300).collect(),
            score: *s,
        });
    }
    let text: String = top.text.chars().take(config.max_answer_chars).collect();
    Decision::Answer {
        text,
        intent: None,
        confidence: score,
        sources,
    }
}

/// The tenants' knowledge, embedded, and the model that embeds messages.
pub struct Answerer {
    embedder: AsyncEmbedder,
    phrases: Vec<Phrase>,
    knowledge: RwLock<HashMap<TenantId, Vec<IndexedPassage>>>,
    chunks: ChunkConfig,
    pub config: AnswerConfig,
}

impl Answerer {
    pub async fn new(embedder: AsyncEmbedder, config: AnswerConfig) -> Result<Self, EmbedError> {
        let texts: Vec<String> = PHRASES.iter().map(|(_, t)| t.to_string()).collect();
        let embeddings = embedder.embed(texts).await?;
        let phrases = PHRASES
            .iter()
            .zip(embeddings)
            .map(|((kind, _), embedding)| Phrase {
                kind: *kind,
                embedding,
            })
            .collect();
        Ok(Self {
            embedder,
            phrases,
            knowledge: RwLock::new(HashMap::new()),
            chunks: ChunkConfig::default(),
            config,
        })
    }

    /// Adds or replaces an article's passages.
    pub async fn index_article(
        &self,
        tenant: &TenantId,
        article_id: &ArticleId,
        title: &str,
        body: &str,
    ) -> Result<usize, EmbedError> {
        let passages = split_passages(body, &self.chunks);
        // The title helps retrieval: each passage is embedded with it.
        let texts: Vec<String> = passages
            .iter()
            .map(|p| format!("{title}\n{}", p.text))
            .collect();
        let embeddings = if texts.is_empty() {
            vec![]
        } else {
            self.embedder.embed(texts).await?
        };
        let indexed: Vec<IndexedPassage> = passages
            .into_iter()
            .zip(embeddings)
            .map(|(p, embedding)| IndexedPassage {
                article_id: article_id.clone(),
                title: title.to_string(),
                text: p.text,
                embedding,
            })
            .collect();
        let n = indexed.len();
        let mut k = self.knowledge.write().unwrap_or_else(|p| p.into_inner());
        let list = k.entry(tenant.clone()).or_default();
        list.retain(|p| &p.article_id != article_id);
        list.extend(indexed);
        Ok(n)
    }

    pub fn remove_article(&self, tenant: &TenantId, article_id: &ArticleId) {
        let mut k = self.knowledge.write().unwrap_or_else(|p| p.into_inner());
        if let Some(list) = k.get_mut(tenant) {
            list.retain(|p| &p.article_id != article_id);
        }
    }

    /// How many passages a tenant has.
    pub fn passages(&self, tenant: &TenantId) -> usize {
        self.knowledge
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant)
            .map_or(0, Vec::len)
    }

    /// Decides what to say to `text` from a customer of `tenant`.
    pub async fn decide(&self, tenant: &TenantId, text: &str) -> Result<Decision, EmbedError> {
        let query = self
            .embedder
            .embed(vec![text.to_string()])
            .await?
            .into_iter()
            .next()
            .unwrap_or_default();
        let k = self.knowledge.read().unwrap_or_else(|p| p.into_inner());
        let passages = k.get(tenant).map(Vec::as_slice).unwrap_or(&[]);
        Ok(choose(text, &query, passages, &self.phrases, &self.config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            Phrase {
                kind: PhraseKind::Greeting,
                embedding: unit(&[0.0, 0.0, 1.0]),
            },
            Phrase {
                kind: PhraseKind::Human,
                embedding: unit(&[0.0, 1.0, 0.0]),
            },
        ]
    }

    #[test]
    fn the_closest_passage_answers_and_is_cited() {
        let passages = [
            passage("cards", &[1.0, 0.0, 0.1]),
            passage("fees", &[0.2, 0.1, 0.0]),
        ];
        let d = choose(
            "where is my card",
            &unit(&[1.0, 0.05, 0.05]),
            &passages,
            &phrases(),
            &AnswerConfig::default(),
        );
        let Decision::Answer {
            text,
            sources,
            confidence,
            ..
        } = d
        else {
            panic!("expected an answer: {d:?}")
        };
        assert_eq!(text, "Text of cards");
        assert_eq!(sources[0].article_id.as_str(), "cards");
        assert!(confidence > 0.9);
    }

    #[test]
    fn a_far_message_hands_off_instead_of_guessing() {
        let passages = [passage("cards", &[1.0, 0.0, 0.0])];
        let d = choose(
            "what is the meaning of life",
            &unit(&[-1.0, 0.1, -0.2]),
            &passages,
            &phrases(),
            &AnswerConfig::default(),
        );
        assert!(
            matches!(
                d,
                Decision::Handoff {
                    reason: HandoffReason::LowConfidence,
                    ..
                }
            ),
            "{d:?}"
        );
        let empty = choose(
            "anything",
            &unit(&[1.0, 0.0, 0.0]),
            &[],
            &[],
            &AnswerConfig::default(),
        );
        assert!(matches!(
            empty,
            Decision::Handoff {
                reason: HandoffReason::LowConfidence,
                ..
            }
        ));
    }

    #[test]
    fn asking_for_a_human_hands_off() {
        let d = choose(
            "can I talk to a human please",
            &unit(&[1.0, 0.0, 0.0]),
            &[passage("cards", &[1.0, 0.0, 0.0])],
            &phrases(),
            &AnswerConfig::default(),
        );
        assert!(matches!(
            d,
            Decision::Handoff {
                reason: HandoffReason::CustomerAsked,
                ..
            }
        ));
        let d = choose(
            "get me someone",
            &unit(&[0.0, 1.0, 0.0]),
            &[],
            &phrases(),
            &AnswerConfig::default(),
        );
        assert!(matches!(
            d,
            Decision::Handoff {
                reason: HandoffReason::CustomerAsked,
                ..
            }
        ));
    }

    #[test]
    fn greetings_get_a_greeting() {
        let d = choose(
            "hello",
            &unit(&[0.0, 0.0, 1.0]),
            &[passage("cards", &[1.0, 0.0, 0.0])],
            &phrases(),
            &AnswerConfig::default(),
        );
        assert!(
            matches!(d, Decision::Answer { intent: Some(ref i), .. } if i == "greeting"),
            "{d:?}"
        );
    }
}
