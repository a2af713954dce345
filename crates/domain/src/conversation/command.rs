//! What can be asked of a conversation.

use super::{Author, Channel, DecisionWhy, Feedback, HandoffReason, Source, Tag};
use crate::user::Role;
use crate::{ClientMessageId, ConversationId, MessageText, TeamId, TenantId, UserId};

/// A user who may be assigned to a conversation, as the caller looked them up.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignee {
    pub id: UserId,
    pub tenant: TenantId,
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ConversationCommand {
    /// A customer or visitor opens a conversation on a channel.
    Start {
        tenant: TenantId,
        conversation_id: ConversationId,
        customer: UserId,
        channel: Channel,
    },
    /// A customer or an agent writes. A `client_message_id` seen before in
    /// this conversation makes the command a no-op (an idempotent retry).
    PostMessage {
        author: Author,
        text: MessageText,
        client_message_id: Option<ClientMessageId>,
    },
    /// The AI worker answers the customer message at version `in_reply_to`.
    /// Its output arrives here as data.
    AnswerMessage {
        in_reply_to: u64,
        text: MessageText,
        intent: Option<String>,
        confidence: f32,
        sources: Vec<Source>,
        /// Which score decided it (staff-only).
        why: Option<DecisionWhy>,
    },
    /// Someone (the bot, the customer, an agent) asks for a human. The bot
    /// says why (`why`); a customer's or an agent's request has none.
    RequestHandoff {
        reason: HandoffReason,
        why: Option<DecisionWhy>,
    },
    AssignAgent {
        agent: Assignee,
    },
    Resolve {
        by: Option<UserId>,
    },
    Reopen {
        by: Option<UserId>,
    },
    ChangeTags {
        add: Vec<Tag>,
        remove: Vec<Tag>,
    },
    GiveFeedback {
        feedback: Feedback,
    },
    /// Gives the conversation to a team (`None`: to no team). The caller
    /// checked that the team exists in the conversation's tenant.
    AssignTeam {
        team: Option<TeamId>,
    },
    /// Nobody is assigned any more.
    Unassign {
        by: Option<UserId>,
    },
    /// The router gives a conversation waiting for a human to `agent`: only
    /// while it still waits and nobody is assigned (otherwise nothing
    /// happens), so a router deciding on a state that lags never takes a
    /// conversation from someone, and a retry is safe.
    Route {
        agent: Assignee,
    },
    /// The router takes the conversation from `agent`, away too long: only
    /// while `agent` is still its assignee (otherwise nothing happens).
    UnassignAbsent {
        agent: UserId,
    },
}
