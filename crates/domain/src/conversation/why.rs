//! Why the bot decided what it did: which score decided a bot answer or a
//! bot handoff, and the numbers that mattered.
//!
//! The AI worker computes it with the decision and sends it in the command
//! (`AnswerMessage`, `RequestHandoff`); the events (`BotAnswered`,
//! `HandoffRequested`) keep it for agents. It is staff-only: the gateway's
//! customer view leaves it out. Handoffs that customers or agents ask for
//! have none, and so do events stored before it existed.
//!
//! The scores are a fixed set of named numbers, each optional (a decision
//! records those that mattered to it), so a why is bounded in size; the
//! conversation refuses a non-finite one (`ConversationError::NotFinite`).

use serde::{Deserialize, Serialize};

/// Which score decided a bot decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// The customer asked for a human: words such as "agent" or "human", or
    /// a message close to a canned request for a person (`phrase_similarity`).
    CustomerAsked,
    /// A greeting, thanks or goodbye close to a canned phrase (`phrase_similarity`).
    SmallTalk,
    /// The best knowledge-base passage was close enough:
    /// `passage_score ≥ passage_minimum`.
    Retrieval,
    /// The intent model's calibrated confidence cleared its threshold:
    /// `confidence ≥ threshold`, and the intent's answer was given.
    IntentHead,
    /// The intent model's confidence fell under its threshold, and would have
    /// stayed under it even had the head been certain of its intent
    /// (`confidence_if_head_certain < threshold`): the distance features
    /// (nearest-example similarity, mean similarity of the nearest examples,
    /// Mahalanobis score) alone pulled it down. Retrieval was too weak too.
    OutOfScopeDistance,
    /// Under the threshold otherwise (the head's doubt mattered: a certain
    /// head would have cleared it), or no intent model — and the best passage
    /// was under its minimum.
    LowConfidence,
    /// The bot asked its one clarifying question instead of handing off;
    /// the scores are those of the unsure reading.
    Clarify,
    /// A follow-up read together with the previous question answered better
    /// than the message alone; the scores are those of the combined reading.
    Context,
    /// The intent model read the message as the reserved `out_of_scope`
    /// intent ([`crate::knowledge_base::OUT_OF_SCOPE_INTENT`]), the tenant's
    /// examples of questions for a person; the scores are the model's.
    OutOfScopeExample,
}

/// The numbers behind a decision, by name; each present only where it mattered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DecisionScores {
    /// The intent model's calibrated confidence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f32>,
    /// The intent model's handoff threshold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f32>,
    /// The probability of the best intent (the head's, blended with the
    /// nearest examples' vote).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head_probability: Option<f32>,
    /// Cosine similarity to the nearest training example.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nearest_similarity: Option<f32>,
    /// Mean cosine similarity to the nearest training examples.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean_similarity: Option<f32>,
    /// Squared Mahalanobis distance to the nearest intent, per dimension.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mahalanobis: Option<f32>,
    /// The confidence had the head been certain (probability 1): what the
    /// distance features alone allow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence_if_head_certain: Option<f32>,
    /// Cosine similarity of the best knowledge-base passage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passage_score: Option<f32>,
    /// The passage similarity under which retrieval does not answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passage_minimum: Option<f32>,
    /// Cosine similarity to the closest canned phrase (small talk, asking for a human).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phrase_similarity: Option<f32>,
}

impl DecisionScores {
    /// Every score that is present.
    pub fn present(&self) -> impl Iterator<Item = f32> {
        [
            self.confidence,
            self.threshold,
            self.head_probability,
            self.nearest_similarity,
            self.mean_similarity,
            self.mahalanobis,
            self.confidence_if_head_certain,
            self.passage_score,
            self.passage_minimum,
            self.phrase_similarity,
        ]
        .into_iter()
        .flatten()
    }

    /// Whether every present score is a finite number (JSON has no NaN).
    pub fn is_finite(&self) -> bool {
        self.present().all(f32::is_finite)
    }
}

/// Why the bot decided what it did (staff-only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionWhy {
    pub basis: Basis,
    #[serde(default)]
    pub scores: DecisionScores,
}

impl DecisionWhy {
    pub fn new(basis: Basis, scores: DecisionScores) -> Self {
        Self { basis, scores }
    }

    /// The same scores on another basis.
    pub fn because(self, basis: Basis) -> Self {
        Self { basis, ..self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_serialise_only_what_is_present() {
        let why = DecisionWhy::new(
            Basis::IntentHead,
            DecisionScores { confidence: Some(0.91), threshold: Some(0.56), ..DecisionScores::default() },
        );
        let json = serde_json::to_value(&why).unwrap();
        assert_eq!(json, serde_json::json!({"basis": "intent_head", "scores": {"confidence": 0.91f32, "threshold": 0.56f32}}));
        assert_eq!(serde_json::from_value::<DecisionWhy>(json).unwrap(), why);
        let bare: DecisionWhy = serde_json::from_str(r#"{"basis":"out_of_scope_distance"}"#).unwrap();
        assert_eq!(bare, DecisionWhy::new(Basis::OutOfScopeDistance, DecisionScores::default()));
    }

    #[test]
    fn a_non_finite_score_is_noticed() {
        assert!(DecisionScores::default().is_finite());
        assert!(!DecisionScores { mahalanobis: Some(f32::NAN), ..DecisionScores::default() }.is_finite());
        assert!(!DecisionScores { passage_score: Some(f32::INFINITY), ..DecisionScores::default() }.is_finite());
    }
}
