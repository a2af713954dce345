//! What happened to a conversation.

use super::{Author, Channel, DecisionWhy, Feedback, HandoffReason, Source, Tag};
use crate::{ClientMessageId, ConversationId, DomainEvent, Personal, TeamId, TenantId, UserId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum ConversationEvent {
    ConversationStarted {
        tenant: TenantId,
        conversation_id: ConversationId,
        customer: UserId,
        channel: Channel,
    },
    /// Schema 2. Schema 1 was the seed's message shape, `{sender, content}`
    /// (see [`crate::upcast`]).
    MessagePosted {
        author: Author,
        text: Personal,
        client_message_id: Option<ClientMessageId>,
    },
    /// The bot's answer to the customer message at version `in_reply_to`.
    BotAnswered {
        in_reply_to: u64,
        text: Personal,
        intent: Option<String>,
        confidence: f32,
        sources: Vec<Source>,
        /// Which score decided the answer (staff-only; absent from events
        /// stored before it existed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        why: Option<DecisionWhy>,
    },
    HandoffRequested {
        reason: HandoffReason,
        /// Which score decided a bot's handoff (staff-only); `None` when a
        /// customer or an agent asked, and in events stored before it existed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        why: Option<DecisionWhy>,
    },
    AgentAssigned {
        agent: UserId,
    },
    ConversationResolved {
        by: Option<UserId>,
    },
    ConversationReopened {
        by: Option<UserId>,
    },
    FeedbackGiven {
        feedback: Feedback,
    },
    TagsChanged {
        added: Vec<Tag>,
        removed: Vec<Tag>,
    },
    /// The conversation is now the team's (`None`: no team's).
    TeamAssigned {
        team: Option<TeamId>,
    },
    /// Nobody is assigned any more: a conversation a human was asked for
    /// waits for one again. `by` is the member of staff who unassigned it;
    /// `None` when the router did, because its agent was away too long.
    AgentUnassigned {
        by: Option<UserId>,
    },
}

impl DomainEvent for ConversationEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::ConversationStarted { .. } => "ConversationStarted",
            Self::MessagePosted { .. } => "MessagePosted",
            Self::BotAnswered { .. } => "BotAnswered",
            Self::HandoffRequested { .. } => "HandoffRequested",
            Self::AgentAssigned { .. } => "AgentAssigned",
            Self::ConversationResolved { .. } => "ConversationResolved",
            Self::ConversationReopened { .. } => "ConversationReopened",
            Self::FeedbackGiven { .. } => "FeedbackGiven",
            Self::TagsChanged { .. } => "TagsChanged",
            Self::TeamAssigned { .. } => "TeamAssigned",
            Self::AgentUnassigned { .. } => "AgentUnassigned",
        }
    }

    fn personal_fields_mut(&mut self) -> Vec<&mut Personal> {
        match self {
            Self::MessagePosted { text, .. } | Self::BotAnswered { text, .. } => vec![text],
            Self::FeedbackGiven { feedback: Feedback::Csat { comment: Some(c), .. } } => vec![c],
            _ => vec![],
        }
    }
}
