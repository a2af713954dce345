//! Message text, parsed once at the edge ("parse, don't validate").

use serde::{Deserialize, Serialize};

/// The most characters a message may hold.
pub const MAX_MESSAGE_CHARS: usize = 4_000;

/// Why a text is not a valid message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("a message must not be empty")]
    Empty,
    #[error("a message may hold at most {max} characters, this one has {len}")]
    TooLong { len: usize, max: usize },
    #[error("a message must not contain control characters")]
    ControlCharacter,
}

/// A message's text: trimmed, non-empty, at most [`MAX_MESSAGE_CHARS`]
/// characters, without control characters other than line breaks and tabs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MessageText(String);

impl MessageText {
    pub fn parse(s: &str) -> Result<Self, TextError> {
        let t = s.trim();
        if t.is_empty() {
            return Err(TextError::Empty);
        }
        let len = t.chars().count();
        if len > MAX_MESSAGE_CHARS {
            return Err(TextError::TooLong { len, max: MAX_MESSAGE_CHARS });
        }
        if t.chars().any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r') {
            return Err(TextError::ControlCharacter);
        }
        Ok(Self(t.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for MessageText {
    type Error = TextError;
    fn try_from(s: String) -> Result<Self, TextError> {
        Self::parse(&s)
    }
}

impl From<MessageText> for String {
    fn from(t: MessageText) -> String {
        t.0
    }
}

impl std::fmt::Display for MessageText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_keeps_unicode() {
        assert_eq!(MessageText::parse("  héllo 👋\n").unwrap().as_str(), "héllo 👋");
    }

    #[test]
    fn refuses_empty_after_trimming() {
        assert_eq!(MessageText::parse(" \n\t "), Err(TextError::Empty));
    }

    #[test]
    fn counts_characters_not_bytes() {
        assert!(MessageText::parse(&"é".repeat(4_000)).is_ok());
        assert_eq!(MessageText::parse(&"é".repeat(4_001)), Err(TextError::TooLong { len: 4_001, max: 4_000 }));
    }

    #[test]
    fn refuses_control_characters() {
        assert_eq!(MessageText::parse("a\u{0}b"), Err(TextError::ControlCharacter));
        assert!(MessageText::parse("line one\nline two").is_ok());
    }
}
