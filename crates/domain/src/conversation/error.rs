//! Why a conversation refused a command.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConversationError {
    #[error("the conversation has not been started")]
    NotStarted,
    #[error("the conversation has already been started")]
    AlreadyStarted,
    #[error("the conversation is resolved; reopen it first")]
    AlreadyResolved,
    #[error("the conversation is not resolved")]
    NotResolved,
    #[error("a human has taken over this conversation; the bot stays silent")]
    HandedToHuman,
    #[error("only agents and admins can be assigned")]
    NotAnAgent,
    #[error("the user belongs to another tenant")]
    OtherTenant,
    #[error("there is no customer message at version {0}")]
    UnknownMessage(u64),
    #[error("there is no bot answer at version {0}")]
    UnknownAnswer(u64),
    #[error("a satisfaction score is between 1 and 5, got {0}")]
    InvalidScore(u8),
    #[error("the comment is too long (at most 1000 characters)")]
    CommentTooLong,
    #[error("a message needs text or at least one attachment")]
    EmptyMessage,
    #[error("a message carries at most {0} attachments")]
    TooManyAttachments(usize),
    #[error("attachment {0} is already part of a message")]
    AttachmentAlreadyPosted(crate::AttachmentId),
    #[error("a note names at most {max} colleagues, got {got}")]
    TooManyMentions { got: usize, max: usize },
    /// A stored event holds finite numbers only: JSON has no NaN or infinity.
    #[error("a confidence or score must be a finite number")]
    NotFinite,
}

impl crate::ErrorCode for ConversationError {
    fn code(&self) -> &'static str {
        match self {
            ConversationError::NotStarted => "not_started",
            ConversationError::AlreadyStarted => "already_started",
            ConversationError::AlreadyResolved => "already_resolved",
            ConversationError::NotResolved => "not_resolved",
            ConversationError::HandedToHuman => "handed_to_human",
            ConversationError::NotAnAgent => "not_an_agent",
            ConversationError::OtherTenant => "other_tenant",
            ConversationError::UnknownMessage(_) => "unknown_message",
            ConversationError::UnknownAnswer(_) => "unknown_answer",
            ConversationError::InvalidScore(_) => "invalid_score",
            ConversationError::CommentTooLong => "comment_too_long",
            ConversationError::NotFinite => "not_finite",
            ConversationError::EmptyMessage => "empty_message",
            ConversationError::TooManyAttachments(_) => "too_many_attachments",
            ConversationError::AttachmentAlreadyPosted(_) => "attachment_already_posted",
            ConversationError::TooManyMentions { .. } => "too_many_mentions",
        }
    }
}
