//! What can be asked of a conversation.

use super::{Author, Channel, DecisionWhy, Feedback, HandoffReason, NotificationKind, Source, Tag};
use crate::attachment::Attachment;
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
    /// A message has text, attachments, or both; the attachments are
    /// uploads the caller checked belong to this conversation and author.
    PostMessage {
        author: Author,
        text: Option<MessageText>,
        client_message_id: Option<ClientMessageId>,
        attachments: Vec<Attachment>,
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
    /// The notifier records a notification before it sends it. The same
    /// `kind` about the same version a second time is a no-op, so a
    /// restarted notifier never records (and so never sends) one twice.
    RecordNotification {
        kind: NotificationKind,
        recipient: UserId,
        about_version: u64,
    },
    /// A member of staff writes a private note, seen by staff only, naming
    /// colleagues (`mentions`, looked up by the caller like an [`Assignee`]).
    AddNote {
        author: Assignee,
        text: MessageText,
        mentions: Vec<Assignee>,
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
