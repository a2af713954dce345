//! Canned replies: a tenant's saved answers, which agents insert into the
//! reply box by their shortcut (`/refund`).
//!
//! One aggregate per tenant (stream `<tenant>.canned.replies`), not part of
//! the [`crate::tenant::Tenant`]: the replies change often and on their own,
//! and a tenant's settings should not conflict with them. The whole set is
//! small (at most [`MAX_REPLIES`]), so the gateway reads it by folding the
//! stream, and every rule that spans replies (a shortcut is used once) is
//! checked here, against the whole set.
//!
//! A reply's text may hold placeholders, `{{customer.name}}`,
//! `{{agent.name}}` and `{{conversation.id}}`, which the dashboard fills in
//! before the agent sends the message. Any other `{{…}}` is refused when the
//! reply is saved, so a typo never reaches a customer as raw braces. The
//! replies are the company's words, not a person's: nothing here is sealed.

use crate::{Aggregate, AggregateKind, DomainEvent, MessageText, Personal, Timestamp, UserId};
use serde::{Deserialize, Serialize};

#[cfg(test)]
mod tests;

/// The most replies a tenant may keep.
pub const MAX_REPLIES: usize = 500;
/// The longest shortcut.
pub const MAX_SHORTCUT_CHARS: usize = 32;
/// The placeholders a reply's text may hold, as written between `{{` and `}}`.
pub const PLACEHOLDERS: [&str; 3] = ["customer.name", "agent.name", "conversation.id"];

pub use crate::ids::CannedReplyId;

#[derive(Debug, Clone, PartialEq)]
pub enum CannedReplyCommand {
    Add { id: CannedReplyId, shortcut: String, text: String },
    Change { id: CannedReplyId, shortcut: String, text: String },
    Remove { id: CannedReplyId },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum CannedReplyEvent {
    CannedReplyAdded { id: CannedReplyId, shortcut: String, text: String },
    CannedReplyChanged { id: CannedReplyId, shortcut: String, text: String },
    CannedReplyRemoved { id: CannedReplyId },
}

impl DomainEvent for CannedReplyEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::CannedReplyAdded { .. } => "CannedReplyAdded",
            Self::CannedReplyChanged { .. } => "CannedReplyChanged",
            Self::CannedReplyRemoved { .. } => "CannedReplyRemoved",
        }
    }

    /// A canned reply is the company's text, not a person's.
    fn personal_fields_mut(&mut self) -> Vec<&mut Personal> {
        vec![]
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CannedReplyError {
    #[error("a shortcut has 1 to {MAX_SHORTCUT_CHARS} characters: lower-case letters, digits, '-' and '_'")]
    InvalidShortcut,
    #[error("the text of a canned reply: {0}")]
    InvalidText(String),
    #[error("unknown placeholder {{{{{0}}}}}; use {{{{customer.name}}}}, {{{{agent.name}}}} or {{{{conversation.id}}}}")]
    UnknownPlaceholder(String),
    #[error("the shortcut /{0} is taken")]
    ShortcutTaken(String),
    #[error("a tenant keeps at most {MAX_REPLIES} canned replies")]
    TooMany,
    #[error("no canned reply {0}")]
    UnknownReply(CannedReplyId),
    #[error("a different canned reply {0} exists")]
    AlreadyExists(CannedReplyId),
}

impl crate::ErrorCode for CannedReplyError {
    fn code(&self) -> &'static str {
        match self {
            Self::InvalidShortcut => "invalid_shortcut",
            Self::InvalidText(_) => "invalid_text",
            Self::UnknownPlaceholder(_) => "unknown_placeholder",
            Self::ShortcutTaken(_) => "shortcut_taken",
            Self::TooMany => "too_many_canned_replies",
            Self::UnknownReply(_) => "unknown_canned_reply",
            Self::AlreadyExists(_) => "canned_reply_exists",
        }
    }

    fn refusal(&self) -> crate::error_code::Refusal {
        use crate::error_code::Refusal;
        match self {
            Self::InvalidShortcut | Self::InvalidText(_) | Self::UnknownPlaceholder(_) => Refusal::Invalid,
            Self::UnknownReply(_) => Refusal::NotFound,
            Self::ShortcutTaken(_) | Self::TooMany | Self::AlreadyExists(_) => Refusal::Conflict,
        }
    }
}

/// Checks a shortcut: `[a-z0-9_-]{1,32}`.
pub fn check_shortcut(s: &str) -> Result<(), CannedReplyError> {
    let ok = !s.is_empty()
        && s.len() <= MAX_SHORTCUT_CHARS
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok { Ok(()) } else { Err(CannedReplyError::InvalidShortcut) }
}

/// The names of the placeholders in `text`, in order: each `{{` followed by
/// no brace up to the next `}}` (the dashboard's renderer reads the same
/// way: `/\{\{([^{}]*)\}\}/g`), trimmed. A `{{` without its `}}` is text.
pub fn placeholders(text: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let inner = &rest[start + 2..];
        let end = inner.find(['{', '}']).unwrap_or(inner.len());
        if inner[end..].starts_with("}}") {
            found.push(inner[..end].trim());
            rest = &inner[end + 2..];
        } else {
            // Try again one character on, as the regular expression would.
            rest = &rest[start + 1..];
        }
    }
    found
}

/// Checks a reply's text: a valid message ([`MessageText`]) whose
/// placeholders are all known. Returns the text trimmed.
pub fn check_text(text: &str) -> Result<String, CannedReplyError> {
    let parsed = MessageText::parse(text).map_err(|e| CannedReplyError::InvalidText(e.to_string()))?;
    if let Some(unknown) = placeholders(parsed.as_str()).into_iter().find(|p| !PLACEHOLDERS.contains(p)) {
        return Err(CannedReplyError::UnknownPlaceholder(unknown.to_owned()));
    }
    Ok(parsed.as_str().to_owned())
}

/// One saved reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CannedReply {
    pub id: CannedReplyId,
    pub shortcut: String,
    pub text: String,
}

/// A tenant's canned replies, in the order they were added.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CannedReplies {
    version: u64,
    replies: Vec<CannedReply>,
}

impl CannedReplies {
    pub fn replies(&self) -> &[CannedReply] {
        &self.replies
    }

    pub fn get(&self, id: &CannedReplyId) -> Option<&CannedReply> {
        self.replies.iter().find(|r| &r.id == id)
    }

    /// The reply `shortcut` names, other than `except`, if one does.
    fn holder(&self, shortcut: &str, except: Option<&CannedReplyId>) -> Option<&CannedReply> {
        self.replies.iter().find(|r| r.shortcut == shortcut && Some(&r.id) != except)
    }

    fn check(&self, id: Option<&CannedReplyId>, shortcut: &str, text: &str) -> Result<String, CannedReplyError> {
        check_shortcut(shortcut)?;
        let text = check_text(text)?;
        if self.holder(shortcut, id).is_some() {
            return Err(CannedReplyError::ShortcutTaken(shortcut.to_owned()));
        }
        Ok(text)
    }
}

impl Aggregate for CannedReplies {
    const KIND: AggregateKind = AggregateKind::CannedReplies;
    type Command = CannedReplyCommand;
    type Event = CannedReplyEvent;
    type Error = CannedReplyError;

    fn decide(&self, command: &CannedReplyCommand, _now: Timestamp) -> Result<Vec<CannedReplyEvent>, CannedReplyError> {
        match command {
            CannedReplyCommand::Add { id, shortcut, text } => {
                if let Some(existing) = self.get(id) {
                    // The same add again (a retry) changes nothing.
                    let same = existing.shortcut == *shortcut && check_text(text).is_ok_and(|t| t == existing.text);
                    return if same { Ok(vec![]) } else { Err(CannedReplyError::AlreadyExists(id.clone())) };
                }
                let text = self.check(None, shortcut, text)?;
                if self.replies.len() >= MAX_REPLIES {
                    return Err(CannedReplyError::TooMany);
                }
                Ok(vec![CannedReplyEvent::CannedReplyAdded { id: id.clone(), shortcut: shortcut.clone(), text }])
            }
            CannedReplyCommand::Change { id, shortcut, text } => {
                let existing = self.get(id).ok_or_else(|| CannedReplyError::UnknownReply(id.clone()))?;
                let text = self.check(Some(id), shortcut, text)?;
                if existing.shortcut == *shortcut && existing.text == text {
                    return Ok(vec![]);
                }
                Ok(vec![CannedReplyEvent::CannedReplyChanged { id: id.clone(), shortcut: shortcut.clone(), text }])
            }
            CannedReplyCommand::Remove { id } => {
                self.get(id).ok_or_else(|| CannedReplyError::UnknownReply(id.clone()))?;
                Ok(vec![CannedReplyEvent::CannedReplyRemoved { id: id.clone() }])
            }
        }
    }

    fn apply(&mut self, event: &CannedReplyEvent) {
        self.version += 1;
        match event {
            CannedReplyEvent::CannedReplyAdded { id, shortcut, text } => {
                self.replies.push(CannedReply { id: id.clone(), shortcut: shortcut.clone(), text: text.clone() })
            }
            CannedReplyEvent::CannedReplyChanged { id, shortcut, text } => {
                if let Some(r) = self.replies.iter_mut().find(|r| &r.id == id) {
                    r.shortcut = shortcut.clone();
                    r.text = text.clone();
                }
            }
            CannedReplyEvent::CannedReplyRemoved { id } => self.replies.retain(|r| &r.id != id),
        }
    }

    fn data_subject(&self, _event: &CannedReplyEvent) -> Option<UserId> {
        None
    }

    fn version(&self) -> u64 {
        self.version
    }
}
