//! The bot's decision about one message, and the pure rules that reach it.
//!
//! No model, no I/O: the rules take what the model and the vector index
//! computed (the message's embedding, the nearest passages with their
//! cosine scores, the canned phrases' embeddings, the intent model's
//! prediction) and turn it into a [`Decision`]. [`crate::answer`] computes
//! those inputs and [`crate::live`] keeps the tenants' intent models; both
//! depend on this module, neither on the other's rules.
//!
//! - [`choose`]: retrieval and canned phrases (a request for a human, small
//!   talk, the closest passage if it is close enough, else a handoff).
//! - [`with_intent`]: the intent model's say over that decision.

use jamuna_domain::conversation::{HandoffReason, Source};
use jamuna_projections::vectors::VectorHit;

use crate::embed::cosine;
use crate::intent::Prediction;

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

pub(crate) const PHRASES: &[(PhraseKind, &str)] = &[
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

/// Intents the small-talk replies carry; a recognised business intent does not override them.
pub const SMALL_TALK: &[&str] = &["greeting", "thanks", "goodbye"];

/// The decision once the intent model has spoken.
///
/// - A request for a human and small talk stand as retrieval decided.
/// - A confident intent with an answer: that answer, with the intent and its confidence.
/// - A confident intent without an answer: the retrieval decision, recording the intent.
/// - No confident intent (out of scope, or no model): the retrieval decision.
pub fn with_intent(retrieved: Decision, prediction: Option<&Prediction>, answer: Option<&str>) -> Decision {
    match &retrieved {
        Decision::Handoff { reason: HandoffReason::CustomerAsked, .. } => return retrieved,
        Decision::Answer { intent: Some(i), sources, .. } if sources.is_empty() && SMALL_TALK.contains(&i.as_str()) => return retrieved,
        _ => {}
    }
    let Some((p, intent)) = prediction.and_then(|p| p.intent.as_ref().map(|i| (p, i))) else {
        return retrieved;
    };
    if let Some(answer) = answer.filter(|a| !a.trim().is_empty()) {
        return Decision::Answer { text: answer.to_owned(), intent: Some(intent.clone()), confidence: p.confidence, sources: vec![] };
    }
    match retrieved {
        Decision::Answer { text, confidence, sources, .. } => Decision::Answer { text, intent: Some(intent.clone()), confidence, sources },
        handoff => handoff,
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

    fn prediction(intent: Option<&str>) -> Prediction {
        Prediction { intent: intent.map(str::to_owned), confidence: 0.9, top: vec![] }
    }
    fn kb_answer() -> Decision {
        Decision::Answer {
            text: "From the article".into(),
            intent: None,
            confidence: 0.6,
            sources: vec![Source { article_id: ArticleId::parse("a").unwrap(), title: "A".into(), passage: "p".into(), score: 0.6 }],
        }
    }
    fn low() -> Decision {
        Decision::Handoff { reason: HandoffReason::LowConfidence, confidence: 0.2 }
    }

    #[test]
    fn a_confident_intent_with_an_answer_answers_with_it() {
        let d = with_intent(low(), Some(&prediction(Some("card_arrival"))), Some("Cards take 5 days."));
        assert_eq!(
            d,
            Decision::Answer { text: "Cards take 5 days.".into(), intent: Some("card_arrival".into()), confidence: 0.9, sources: vec![] }
        );
    }

    #[test]
    fn without_an_answer_retrieval_answers_and_the_intent_is_recorded() {
        let d = with_intent(kb_answer(), Some(&prediction(Some("card_arrival"))), None);
        let Decision::Answer { intent, text, sources, .. } = d else { panic!("{d:?}") };
        assert_eq!((intent.as_deref(), text.as_str(), sources.len()), (Some("card_arrival"), "From the article", 1));
        assert_eq!(with_intent(low(), Some(&prediction(Some("card_arrival"))), None), low());
    }

    #[test]
    fn out_of_scope_leaves_retrieval_to_decide() {
        assert_eq!(with_intent(kb_answer(), Some(&prediction(None)), None), kb_answer());
        assert_eq!(with_intent(low(), Some(&prediction(None)), Some("ignored")), low());
        assert_eq!(with_intent(low(), None, None), low());
    }

    #[test]
    fn humans_and_small_talk_come_first() {
        let human = Decision::Handoff { reason: HandoffReason::CustomerAsked, confidence: 1.0 };
        assert_eq!(with_intent(human.clone(), Some(&prediction(Some("x"))), Some("a")), human);
        let hello = Decision::Answer { text: "Hi!".into(), intent: Some("greeting".into()), confidence: 0.8, sources: vec![] };
        assert_eq!(with_intent(hello.clone(), Some(&prediction(Some("x"))), Some("a")), hello);
    }
}
