//! What happened to a conversation.

use super::{Author, Channel, DecisionWhy, Feedback, HandoffReason, NotificationKind, Source, Tag};
use crate::attachment::Attachment;
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
    /// Schema 3: with `attachments`. Schema 2 had none; schema 1 was the
    /// seed's message shape, `{sender, content}` (see [`crate::upcast`]).
    MessagePosted {
        author: Author,
        /// Empty when the message is attachments only.
        text: Personal,
        client_message_id: Option<ClientMessageId>,
        attachments: Vec<Attachment>,
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
    /// A notification about the event at `about_version` went (or is going)
    /// to `recipient` (staff-only; no address, no text: those are looked up
    /// and opened when the mail is sent). Recorded before the mail is sent:
    /// the notifier sends what it reads of these (see the binary's `notify`).
    NotificationSent {
        kind: NotificationKind,
        recipient: UserId,
        about_version: u64,
    },
    /// A private note by a member of staff (staff-only), naming colleagues.
    /// Its text is sealed like a message's, with the customer's key.
    NoteAdded {
        author: UserId,
        text: Personal,
        /// Staff of the tenant, each once, at most [`super::MAX_MENTIONS`].
        mentions: Vec<UserId>,
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
            Self::NotificationSent { .. } => "NotificationSent",
            Self::NoteAdded { .. } => "NoteAdded",
            Self::TeamAssigned { .. } => "TeamAssigned",
            Self::AgentUnassigned { .. } => "AgentUnassigned",
        }
    }

    fn personal_fields_mut(&mut self) -> Vec<&mut Personal> {
        match self {
            // The order is fixed (it is part of each sealed value's associated data).
            Self::MessagePosted { text, attachments, .. } => {
                std::iter::once(text).chain(attachments.iter_mut().map(|a| &mut a.name)).collect()
            }
            Self::BotAnswered { text, .. } | Self::NoteAdded { text, .. } => vec![text],
            Self::FeedbackGiven { feedback: Feedback::Csat { comment: Some(c), .. } } => vec![c],
            _ => vec![],
        }
    }
}
