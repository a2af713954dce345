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
//!
//! Every decision says why ([`DecisionWhy`], for agents only): which score
//! decided it ([`Basis`]) and the scores that mattered. The rules:
//!
//! | basis | when |
//! |---|---|
//! | `customer_asked` | words asking for a person, or a message close to a canned request for one |
//! | `small_talk` | close to a greeting, thanks or goodbye (and no closer passage) |
//! | `retrieval` | the best passage's cosine ≥ its minimum, and no confident intent with an answer |
//! | `intent_head` | the intent model's confidence ≥ its threshold, and the intent has an answer |
//! | `out_of_scope_example` | a handoff: the model read the message as the tenant's reserved `out_of_scope` intent (questions for a person), whatever retrieval found |
//! | `out_of_scope_distance` | a handoff: the confidence < threshold, and it stays under even with the head certain |
//! | `low_confidence` | a handoff otherwise (the head's doubt mattered, or no model), retrieval too weak too |
//! | `clarify`, `context` | set by [`crate::dialogue`]: the clarifying question; a follow-up read in context |
//!
//! **Out-of-scope distance, precisely.** The confidence is a logistic over
//! the features `z = a·ln p + b·nearest + c·knn_mean + d·mahalanobis + e`
//! (older models: `a·ln p + b·nearest + c`). The head's term `a·ln p` is at
//! most 0 and reaches 0 when the head is certain (`p = 1`); the rest is the
//! distance features' contribution with the bias. The model computes
//! `confidence_if_head_certain = σ(z − a·ln p)`. When the confidence is under
//! the threshold and so is `confidence_if_head_certain`, no probability the
//! head could have given would have cleared it: the distances to the
//! training examples decided (`out_of_scope_distance`). When a certain head
//! would have cleared it, the head's doubt mattered (`low_confidence`).

use jamuna_domain::conversation::{Basis, DecisionScores, DecisionWhy, HandoffReason, Source};
use jamuna_projections::vectors::VectorHit;

use crate::embed::cosine;
use crate::intent::Prediction;

/// The bot's decision about one message, and why.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Answer { text: String, intent: Option<String>, confidence: f32, sources: Vec<Source>, why: DecisionWhy },
    Handoff { reason: HandoffReason, confidence: f32, why: DecisionWhy },
}

impl Decision {
    /// Why the bot decided this.
    pub fn why(&self) -> &DecisionWhy {
        match self {
            Decision::Answer { why, .. } | Decision::Handoff { why, .. } => why,
        }
    }

    /// The same decision, on another basis (the scores stay).
    pub fn because(mut self, basis: Basis) -> Self {
        match &mut self {
            Decision::Answer { why, .. } | Decision::Handoff { why, .. } => why.basis = basis,
        }
        self
    }
}

/// A why with no scores.
fn bare(basis: Basis) -> DecisionWhy {
    DecisionWhy::new(basis, DecisionScores::default())
}

/// A score worth recording: a finite one (the conversation refuses others, and
/// a why must not cost the customer their answer).
fn finite(x: f32) -> Option<f32> {
    Some(x).filter(|x| x.is_finite())
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
        return Decision::Handoff { reason: HandoffReason::CustomerAsked, confidence: 1.0, why: bare(Basis::CustomerAsked) };
    }
    let phrase = |s: f32| DecisionScores { phrase_similarity: finite(s), ..DecisionScores::default() };
    if let Some((PhraseKind::Human, s)) = best_phrase
        && s >= config.phrase_score
    {
        return Decision::Handoff {
            reason: HandoffReason::CustomerAsked,
            confidence: s,
            why: DecisionWhy::new(Basis::CustomerAsked, phrase(s)),
        };
    }
    let best = hits.first().map(|h| h.score).unwrap_or(0.0);
    // The retrieval scores: the best passage's (if any) against the minimum.
    let passage = DecisionScores {
        passage_score: hits.first().and_then(|h| finite(h.score)),
        passage_minimum: finite(config.min_score),
        ..DecisionScores::default()
    };
    if let Some((kind, s)) = best_phrase
        && s >= config.phrase_score
        && s >= best
        && let Some((intent, reply)) = kind.reply()
    {
        let why = DecisionWhy::new(Basis::SmallTalk, DecisionScores { phrase_similarity: finite(s), ..passage });
        return Decision::Answer { text: reply.into(), intent: Some(intent.into()), confidence: s, sources: vec![], why };
    }
    let Some(top) = hits.first().filter(|h| h.score >= config.min_score) else {
        return Decision::Handoff {
            reason: HandoffReason::LowConfidence,
            confidence: best.max(0.0),
            why: DecisionWhy::new(Basis::LowConfidence, passage),
        };
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
    Decision::Answer { text, intent: None, confidence: top.score, sources, why: DecisionWhy::new(Basis::Retrieval, passage) }
}

/// Intents the small-talk replies carry; a recognised business intent does not override them.
pub const SMALL_TALK: &[&str] = &["greeting", "thanks", "goodbye"];

/// The decision once the intent model has spoken.
///
/// - A request for a human and small talk stand as retrieval decided.
/// - A message read as the tenant's `out_of_scope` intent: a handoff (`out_of_scope`),
///   whatever retrieval found — the tenant said such questions are for a person.
/// - A confident intent with an answer: that answer, with the intent and its confidence.
/// - A confident intent without an answer: the retrieval decision, recording the intent.
/// - No confident intent (out of scope, or no model): the retrieval decision.
///
/// The why keeps the retrieval scores and adds the model's; a handoff the model
/// was not confident about is put down to the distances or to the head's doubt
/// (see the module's docs).
pub fn with_intent(retrieved: Decision, prediction: Option<&Prediction>, answer: Option<&str>) -> Decision {
    match &retrieved {
        Decision::Handoff { reason: HandoffReason::CustomerAsked, .. } => return retrieved,
        Decision::Answer { intent: Some(i), sources, .. } if sources.is_empty() && SMALL_TALK.contains(&i.as_str()) => return retrieved,
        _ => {}
    }
    let Some(p) = prediction else {
        return retrieved;
    };
    let scores = with_model_scores(retrieved.why().scores.clone(), p);
    if p.out_of_scope {
        return Decision::Handoff {
            reason: HandoffReason::OutOfScope,
            confidence: p.confidence,
            why: DecisionWhy::new(Basis::OutOfScopeExample, scores),
        };
    }
    let Some(intent) = &p.intent else {
        // Under the threshold: retrieval decides; a handoff says which part of the confidence failed.
        return match retrieved {
            Decision::Answer { text, intent, confidence, sources, .. } => {
                Decision::Answer { text, intent, confidence, sources, why: DecisionWhy::new(Basis::Retrieval, scores) }
            }
            Decision::Handoff { reason, confidence, .. } => {
                let distance = p.evidence.is_some_and(|e| e.confidence_if_head_certain < e.threshold);
                let basis = if distance { Basis::OutOfScopeDistance } else { Basis::LowConfidence };
                Decision::Handoff { reason, confidence, why: DecisionWhy::new(basis, scores) }
            }
        };
    };
    if let Some(answer) = answer.filter(|a| !a.trim().is_empty()) {
        let why = DecisionWhy::new(Basis::IntentHead, scores);
        return Decision::Answer { text: answer.to_owned(), intent: Some(intent.clone()), confidence: p.confidence, sources: vec![], why };
    }
    match retrieved {
        Decision::Answer { text, confidence, sources, .. } => {
            Decision::Answer { text, intent: Some(intent.clone()), confidence, sources, why: DecisionWhy::new(Basis::Retrieval, scores) }
        }
        Decision::Handoff { reason, confidence, .. } => {
            Decision::Handoff { reason, confidence, why: DecisionWhy::new(Basis::LowConfidence, scores) }
        }
    }
}

/// `scores` with the intent model's: its confidence, threshold and the features behind them.
fn with_model_scores(scores: DecisionScores, p: &Prediction) -> DecisionScores {
    let e = p.evidence.as_ref();
    DecisionScores {
        confidence: finite(p.confidence),
        threshold: e.and_then(|e| finite(e.threshold)),
        head_probability: e.and_then(|e| finite(e.head_probability)),
        nearest_similarity: e.and_then(|e| finite(e.nearest)),
        mean_similarity: e.and_then(|e| finite(e.knn_mean)),
        mahalanobis: e.and_then(|e| e.mahalanobis.and_then(finite)),
        confidence_if_head_certain: e.and_then(|e| finite(e.confidence_if_head_certain)),
        ..scores
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

    use crate::intent::Evidence;

    /// A prediction with its evidence: confidence 0.9 over a threshold of 0.5 when it has an
    /// intent, 0.3 under it when not; `if_certain` is the confidence had the head been certain.
    fn predicted(intent: Option<&str>, if_certain: f32) -> Prediction {
        Prediction {
            intent: intent.map(str::to_owned),
            confidence: if intent.is_some() { 0.9 } else { 0.3 },
            top: vec![],
            evidence: Some(Evidence {
                threshold: 0.5,
                head_probability: 0.8,
                nearest: 0.4,
                knn_mean: 0.35,
                mahalanobis: Some(2.5),
                confidence_if_head_certain: if_certain,
            }),
            out_of_scope: false,
        }
    }
    fn prediction(intent: Option<&str>) -> Prediction {
        predicted(intent, 0.95)
    }
    fn kb_answer() -> Decision {
        Decision::Answer {
            text: "From the article".into(),
            intent: None,
            confidence: 0.6,
            sources: vec![Source { article_id: ArticleId::parse("a").unwrap(), title: "A".into(), passage: "p".into(), score: 0.6 }],
            why: DecisionWhy::new(
                Basis::Retrieval,
                DecisionScores { passage_score: Some(0.6), passage_minimum: Some(0.45), ..DecisionScores::default() },
            ),
        }
    }
    fn low() -> Decision {
        Decision::Handoff {
            reason: HandoffReason::LowConfidence,
            confidence: 0.2,
            why: DecisionWhy::new(
                Basis::LowConfidence,
                DecisionScores { passage_score: Some(0.2), passage_minimum: Some(0.45), ..DecisionScores::default() },
            ),
        }
    }
    fn basis(d: &Decision) -> Basis {
        d.why().basis
    }

    #[test]
    fn a_confident_intent_with_an_answer_answers_with_it() {
        let d = with_intent(low(), Some(&prediction(Some("card_arrival"))), Some("Cards take 5 days."));
        let Decision::Answer { text, intent, confidence, sources, .. } = &d else { panic!("{d:?}") };
        assert_eq!((text.as_str(), intent.as_deref(), *confidence, sources.len()), ("Cards take 5 days.", Some("card_arrival"), 0.9, 0));
    }

    #[test]
    fn without_an_answer_retrieval_answers_and_the_intent_is_recorded() {
        let d = with_intent(kb_answer(), Some(&prediction(Some("card_arrival"))), None);
        let Decision::Answer { intent, text, sources, .. } = d else { panic!("{d:?}") };
        assert_eq!((intent.as_deref(), text.as_str(), sources.len()), (Some("card_arrival"), "From the article", 1));
        let d = with_intent(low(), Some(&prediction(Some("card_arrival"))), None);
        assert!(matches!(d, Decision::Handoff { reason: HandoffReason::LowConfidence, confidence: 0.2, .. }), "{d:?}");
    }

    #[test]
    fn out_of_scope_leaves_retrieval_to_decide() {
        let d = with_intent(kb_answer(), Some(&prediction(None)), None);
        assert!(matches!(&d, Decision::Answer { text, intent: None, confidence: 0.6, .. } if text == "From the article"), "{d:?}");
        let d = with_intent(low(), Some(&prediction(None)), Some("ignored"));
        assert!(matches!(d, Decision::Handoff { reason: HandoffReason::LowConfidence, confidence: 0.2, .. }), "{d:?}");
        assert_eq!(with_intent(low(), None, None), low());
    }

    #[test]
    fn humans_and_small_talk_come_first() {
        let human = Decision::Handoff { reason: HandoffReason::CustomerAsked, confidence: 1.0, why: bare(Basis::CustomerAsked) };
        assert_eq!(with_intent(human.clone(), Some(&prediction(Some("x"))), Some("a")), human);
        let hello = Decision::Answer {
            text: "Hi!".into(),
            intent: Some("greeting".into()),
            confidence: 0.8,
            sources: vec![],
            why: DecisionWhy::new(Basis::SmallTalk, DecisionScores { phrase_similarity: Some(0.8), ..DecisionScores::default() }),
        };
        assert_eq!(with_intent(hello.clone(), Some(&prediction(Some("x"))), Some("a")), hello);
    }

    // ---- why: each basis from the case that should produce it ----

    #[test]
    fn why_customer_asked_by_words_or_by_phrase() {
        let d = choose_among(
            "can I talk to a human please",
            &unit(&[1.0, 0.0, 0.0]),
            &[passage("cards", &[1.0, 0.0, 0.0])],
            &phrases(),
            &AnswerConfig::default(),
        );
        assert_eq!(d.why(), &bare(Basis::CustomerAsked), "words: no score mattered");
        let d = choose_among("get me someone", &unit(&[0.0, 1.0, 0.0]), &[], &phrases(), &AnswerConfig::default());
        assert_eq!(basis(&d), Basis::CustomerAsked);
        assert!(d.why().scores.phrase_similarity.is_some_and(|s| s > 0.99), "{d:?}");
    }

    #[test]
    fn why_small_talk_records_the_phrase_and_the_passage_it_beat() {
        let d = choose_among("hello", &unit(&[0.0, 0.0, 1.0]), &[passage("cards", &[1.0, 0.0, 0.0])], &phrases(), &AnswerConfig::default());
        assert_eq!(basis(&d), Basis::SmallTalk);
        let s = &d.why().scores;
        assert!(s.phrase_similarity.unwrap() > 0.99 && s.passage_score.unwrap() < 0.01, "{s:?}");
    }

    #[test]
    fn why_retrieval_records_the_best_passage_against_its_minimum() {
        let passages = [passage("cards", &[1.0, 0.0, 0.1])];
        let d = choose_among("where is my card", &unit(&[1.0, 0.05, 0.05]), &passages, &phrases(), &AnswerConfig::default());
        assert_eq!(basis(&d), Basis::Retrieval);
        let s = &d.why().scores;
        assert!(s.passage_score.unwrap() >= s.passage_minimum.unwrap());
        assert_eq!((s.passage_minimum, s.confidence), (Some(0.45), None), "no model spoke");
        // A model under its threshold leaves the answer to retrieval, and its scores are recorded.
        let d = with_intent(kb_answer(), Some(&prediction(None)), None);
        assert_eq!(basis(&d), Basis::Retrieval);
        assert_eq!((d.why().scores.passage_score, d.why().scores.confidence), (Some(0.6), Some(0.3)));
        // A confident intent without an answer: retrieval still answered.
        assert_eq!(basis(&with_intent(kb_answer(), Some(&prediction(Some("card_arrival"))), None)), Basis::Retrieval);
    }

    #[test]
    fn why_intent_head_records_the_confidence_over_the_threshold() {
        let d = with_intent(low(), Some(&prediction(Some("card_arrival"))), Some("Cards take 5 days."));
        assert_eq!(basis(&d), Basis::IntentHead);
        let s = &d.why().scores;
        assert_eq!((s.confidence, s.threshold, s.head_probability), (Some(0.9), Some(0.5), Some(0.8)));
        assert_eq!((s.nearest_similarity, s.mean_similarity, s.mahalanobis), (Some(0.4), Some(0.35), Some(2.5)));
        assert_eq!(s.passage_score, Some(0.2), "the retrieval it overrode is kept");
    }

    #[test]
    fn why_out_of_scope_distance_when_even_a_certain_head_would_not_have_cleared_the_threshold() {
        // Under the threshold (0.3 < 0.5), and at p = 1 still under (0.35 < 0.5): the distances decided.
        let d = with_intent(low(), Some(&predicted(None, 0.35)), None);
        assert!(matches!(d, Decision::Handoff { reason: HandoffReason::LowConfidence, .. }), "{d:?}");
        assert_eq!(basis(&d), Basis::OutOfScopeDistance);
        assert_eq!(d.why().scores.confidence_if_head_certain, Some(0.35));
        // A certain head would have cleared it (0.95 ≥ 0.5): the head's doubt mattered.
        assert_eq!(basis(&with_intent(low(), Some(&predicted(None, 0.95)), None)), Basis::LowConfidence);
        // Exactly at the threshold a certain head clears it.
        assert_eq!(basis(&with_intent(low(), Some(&predicted(None, 0.5)), None)), Basis::LowConfidence);
    }

    #[test]
    fn a_message_read_as_the_tenants_out_of_scope_intent_is_handed_off_whatever_retrieval_found() {
        let read_as_out_of_scope = Prediction { confidence: 0.8, out_of_scope: true, ..predicted(None, 0.9) };
        // A passage close enough to answer from: still a handoff, and not a low-confidence one.
        for retrieved in [kb_answer(), low()] {
            let d = with_intent(retrieved, Some(&read_as_out_of_scope), Some("an answer"));
            assert!(matches!(d, Decision::Handoff { reason: HandoffReason::OutOfScope, .. }), "{d:?}");
            assert_eq!(basis(&d), Basis::OutOfScopeExample);
            assert_eq!(d.why().scores.confidence, Some(0.8));
        }
        // A request for a human stays one.
        let asked = Decision::Handoff { reason: HandoffReason::CustomerAsked, confidence: 1.0, why: bare(Basis::CustomerAsked) };
        assert_eq!(with_intent(asked.clone(), Some(&read_as_out_of_scope), None), asked);
    }

    #[test]
    fn why_low_confidence_without_a_model_or_without_an_answer_and_retrieval_too_weak() {
        let d = choose_among(
            "what is the meaning of life",
            &unit(&[-1.0, 0.1, -0.2]),
            &[passage("cards", &[1.0, 0.0, 0.0])],
            &phrases(),
            &AnswerConfig::default(),
        );
        assert_eq!(basis(&d), Basis::LowConfidence);
        assert!(d.why().scores.passage_score.unwrap() < d.why().scores.passage_minimum.unwrap());
        let empty = choose_among("anything", &unit(&[1.0, 0.0, 0.0]), &[], &[], &AnswerConfig::default());
        assert_eq!(
            empty.why(),
            &DecisionWhy::new(Basis::LowConfidence, DecisionScores { passage_minimum: Some(0.45), ..DecisionScores::default() })
        );
        assert_eq!(basis(&with_intent(low(), None, None)), Basis::LowConfidence);
        // A confident intent with no answer, and no passage close enough.
        assert_eq!(basis(&with_intent(low(), Some(&prediction(Some("card_arrival"))), None)), Basis::LowConfidence);
        // A message the model could not score (no evidence) is not put down to the distance.
        let unscored = Prediction { intent: None, confidence: 0.0, top: vec![], evidence: None, out_of_scope: false };
        assert_eq!(basis(&with_intent(low(), Some(&unscored), None)), Basis::LowConfidence);
    }

    #[test]
    fn why_never_records_a_non_finite_score() {
        let mut p = predicted(None, f32::NAN);
        p.confidence = f32::NAN;
        let d = with_intent(low(), Some(&p), None);
        assert!(d.why().scores.is_finite());
        assert_eq!((d.why().scores.confidence, d.why().scores.confidence_if_head_certain), (None, None));
        let broken = VectorHit {
            score: f32::NAN,
            article_id: ArticleId::parse("cards").unwrap(),
            title: "Cards".into(),
            text: "Text".into(),
            position: 0,
            version: 1,
        };
        let d = choose("anything", &unit(&[1.0, 0.0, 0.0]), &[broken], &[], &AnswerConfig::default());
        assert_eq!((basis(&d), d.why().scores.passage_score), (Basis::LowConfidence, None), "{d:?}");
    }

    #[test]
    fn because_changes_the_basis_and_keeps_the_scores() {
        let d = kb_answer().because(Basis::Context);
        assert_eq!(basis(&d), Basis::Context);
        assert_eq!(d.why().scores, kb_answer().why().scores);
    }
}
