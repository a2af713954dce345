//! Identifiers.
//!
//! Every id is a short string of ASCII letters, digits, `-` and `_`. That
//! keeps ids safe everywhere they travel: in URLs, in SQL, and in NATS
//! subjects (`events.<tenant>.<aggregate>.<id>`), where `.`, `*`, `>` and
//! white space would change the meaning of a subject. New ids are UUID v7
//! strings (time-ordered), made by the caller: the domain has no randomness.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a string is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{kind} must not be empty")]
    Empty { kind: &'static str },
    #[error("{kind} is longer than {max} characters")]
    TooLong { kind: &'static str, max: usize },
    #[error("{kind} may contain only ASCII letters, digits, '-' and '_'")]
    InvalidCharacter { kind: &'static str },
}

/// The longest id we accept.
pub const MAX_ID_LEN: usize = 64;

fn check(kind: &'static str, s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if s.len() > MAX_ID_LEN {
        return Err(IdError::TooLong { kind, max: MAX_ID_LEN });
    }
    if !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(IdError::InvalidCharacter { kind });
    }
    Ok(())
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Parses an id, refusing anything that is not a safe id.
            pub fn parse(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                check($kind, &s)?;
                Ok(Self(s))
            }

            /// A new id from a UUID (the caller makes it: the domain has no randomness).
            pub fn from_uuid(id: uuid::Uuid) -> Self {
                Self(id.simple().to_string())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

string_id!(
    /// A tenant: one support team and all of its data.
    TenantId, "tenant id"
);
string_id!(
    /// A conversation between a customer (or visitor) and the support team.
    ConversationId, "conversation id"
);
string_id!(
    /// A user: customer, anonymous visitor, agent or admin.
    UserId, "user id"
);
string_id!(
    /// An article of a tenant's knowledge base.
    ArticleId, "article id"
);
string_id!(
    /// One of a tenant's canned replies.
    CannedReplyId, "canned reply id"
);
string_id!(
    /// An id the client chooses for a message, so that a retry is stored once.
    ClientMessageId, "client message id"
);
string_id!(
    /// A file uploaded to a conversation, to be attached to a message.
    AttachmentId, "attachment id"
);
string_id!(
    /// A team of agents within a tenant (see [`crate::team`]).
    TeamId, "team id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_safe_ids() {
        assert!(TenantId::parse("acme-support_2").is_ok());
        assert_eq!(ConversationId::from_uuid(uuid::Uuid::nil()).as_str().len(), 32);
    }

    #[test]
    fn refuses_what_would_break_a_subject_or_url() {
        for bad in ["a.b", "a*", "a>", "a b", "é", "a/b"] {
            assert_eq!(TenantId::parse(bad), Err(IdError::InvalidCharacter { kind: "tenant id" }), "{bad}");
        }
        assert_eq!(UserId::parse(""), Err(IdError::Empty { kind: "user id" }));
        assert!(matches!(UserId::parse("x".repeat(65)), Err(IdError::TooLong { .. })));
    }

    #[test]
    fn deserialising_validates() {
        assert!(serde_json::from_str::<TenantId>("\"ok\"").is_ok());
        assert!(serde_json::from_str::<TenantId>("\"not.ok\"").is_err());
    }
}
