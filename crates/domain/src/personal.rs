//! Personal data inside events.
//!
//! Message text, names and e-mail addresses belong to a person, and a person
//! may ask to be forgotten. The event log is append-only, so instead of
//! rewriting it Jamuna encrypts every [`Personal`] value with a key that
//! belongs to the person it is about (the event's *data subject*) and keeps
//! that key outside the log. Erasing the person deletes the key: their events
//! stay in the log, and their content reads as [`Personal::Erased`]
//! (crypto-shredding).
//!
//! The domain only carries the three states; the write side
//! (`jamuna-commands`) seals values before they are appended and opens them
//! when they are read.

use serde::{Deserialize, Serialize};

/// A piece of personal data, as it travels through the system.
#[derive(Clone, PartialEq, Eq)]
pub enum Personal {
    /// Readable: just decided, or opened with its subject's key.
    Plain(String),
    /// Encrypted with the subject's key, as stored in the log (base64).
    Sealed(String),
    /// Its subject was erased: the key is gone and so is the content.
    Erased,
}

impl Personal {
    /// What a reader sees in place of erased content.
    pub const ERASED_TEXT: &'static str = "[erased]";

    pub fn plain(s: impl Into<String>) -> Self {
        Personal::Plain(s.into())
    }

    /// The readable text, or [`Personal::ERASED_TEXT`] for erased data.
    /// Sealed data has not been opened: `None`.
    pub fn text(&self) -> Option<&str> {
        match self {
            Personal::Plain(s) => Some(s),
            Personal::Erased => Some(Self::ERASED_TEXT),
            Personal::Sealed(_) => None,
        }
    }

    pub fn is_erased(&self) -> bool {
        matches!(self, Personal::Erased)
    }
}

/// Never print personal data into logs by accident.
impl std::fmt::Debug for Personal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Personal::Plain(s) => write!(f, "Personal::Plain({} chars)", s.chars().count()),
            Personal::Sealed(_) => f.write_str("Personal::Sealed"),
            Personal::Erased => f.write_str("Personal::Erased"),
        }
    }
}

/// The JSON forms: `"text"`, `{"sealed": "base64"}`, `{"erased": true}`.
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Wire {
    Plain(String),
    Sealed { sealed: String },
    Erased { erased: bool },
}

impl Serialize for Personal {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Personal::Plain(p) => Wire::Plain(p.clone()),
            Personal::Sealed(c) => Wire::Sealed { sealed: c.clone() },
            Personal::Erased => Wire::Erased { erased: true },
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Personal {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Wire::deserialize(d)? {
            Wire::Plain(p) => Personal::Plain(p),
            Wire::Sealed { sealed } => Personal::Sealed(sealed),
            Wire::Erased { .. } => Personal::Erased,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_forms_round_trip() {
        for p in [Personal::plain("hello"), Personal::Sealed("AAEC".into()), Personal::Erased] {
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(serde_json::from_str::<Personal>(&json).unwrap(), p, "{json}");
        }
        assert_eq!(serde_json::to_string(&Personal::Erased).unwrap(), r#"{"erased":true}"#);
    }

    #[test]
    fn debug_does_not_print_the_content() {
        assert!(!format!("{:?}", Personal::plain("secret")).contains("secret"));
    }
}
