//! Files attached to messages.
//!
//! A customer or an agent uploads a file first (the gateway stores it,
//! encrypted, in the blob store) and then posts a message that refers to it.
//! What the message event carries is an [`Attachment`]: the upload's id, its
//! file name (personal: a file name can say who someone is), the type its
//! bytes were found to be, and its size. The bytes never enter the log.
//!
//! Only a few types are accepted, each recognised by its content (its
//! "magic bytes"), never by the name or the type a client declares: a
//! program renamed `cat.png` is refused ([`ContentType::sniff`]).

use crate::{AttachmentId, Personal};
use serde::{Deserialize, Serialize};

/// The most attachments one message may carry.
pub const MAX_ATTACHMENTS_PER_MESSAGE: usize = 10;
/// The longest file name, in characters.
pub const MAX_FILE_NAME_CHARS: usize = 255;

/// A file attached to a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub id: AttachmentId,
    /// The file name the uploader gave (personal data).
    pub name: Personal,
    pub content_type: ContentType,
    /// In bytes.
    pub size: u64,
}

/// The types a file may be, as found in its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ContentType {
    #[serde(rename = "image/png")]
    Png,
    #[serde(rename = "image/jpeg")]
    Jpeg,
    #[serde(rename = "image/gif")]
    Gif,
    #[serde(rename = "image/webp")]
    Webp,
    #[serde(rename = "application/pdf")]
    Pdf,
    #[serde(rename = "text/plain")]
    Text,
}

impl ContentType {
    /// Every accepted type.
    pub const ALL: [ContentType; 6] = [Self::Png, Self::Jpeg, Self::Gif, Self::Webp, Self::Pdf, Self::Text];

    /// The media type (`image/png`, …).
    pub fn mime(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Gif => "image/gif",
            Self::Webp => "image/webp",
            Self::Pdf => "application/pdf",
            Self::Text => "text/plain",
        }
    }

    /// Shown inline (a thumbnail) rather than offered as a download.
    pub fn is_image(self) -> bool {
        matches!(self, Self::Png | Self::Jpeg | Self::Gif | Self::Webp)
    }

    /// The type `bytes` are, or `None` when they are none of the accepted
    /// ones. Images and PDF by their signature; plain text when the bytes
    /// are UTF-8 without control characters other than white space.
    pub fn sniff(bytes: &[u8]) -> Option<Self> {
        const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
        if bytes.starts_with(PNG) {
            return Some(Self::Png);
        }
        if bytes.starts_with(b"\xff\xd8\xff") {
            return Some(Self::Jpeg);
        }
        if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
            return Some(Self::Gif);
        }
        if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            return Some(Self::Webp);
        }
        if bytes.starts_with(b"%PDF-") {
            return Some(Self::Pdf);
        }
        let text = std::str::from_utf8(bytes).ok()?;
        let plain = !text.is_empty() && text.chars().all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t' | '\u{c}'));
        plain.then_some(Self::Text)
    }
}

/// Why a string is not a file name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a file name has 1 to 255 characters and no control characters")]
pub struct FileNameError;

/// A file name as stored: the last component of what the client sent
/// (no directories), trimmed, 1 to [`MAX_FILE_NAME_CHARS`] characters,
/// without control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileName(String);

impl FileName {
    pub fn parse(s: &str) -> Result<Self, FileNameError> {
        let last = s.rsplit(['/', '\\']).next().unwrap_or_default().trim();
        let n = last.chars().count();
        if n == 0 || n > MAX_FILE_NAME_CHARS || last.chars().any(char::is_control) || last == "." || last == ".." {
            return Err(FileNameError);
        }
        Ok(Self(last.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_recognised_by_their_bytes() {
        assert_eq!(ContentType::sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Some(ContentType::Png));
        assert_eq!(ContentType::sniff(b"\xff\xd8\xff\xe0\0\x10JFIF"), Some(ContentType::Jpeg));
        assert_eq!(ContentType::sniff(b"GIF89a\x01\0\x01\0"), Some(ContentType::Gif));
        assert_eq!(ContentType::sniff(b"RIFF\x24\0\0\0WEBPVP8 "), Some(ContentType::Webp));
        assert_eq!(ContentType::sniff(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3"), Some(ContentType::Pdf));
        assert_eq!(ContentType::sniff("Order 1234, merci ✓\r\n\tline two".as_bytes()), Some(ContentType::Text));
    }

    #[test]
    fn programs_and_binary_data_are_refused_whatever_their_name() {
        // A Windows program (what a renamed `invoice.exe` starts with).
        assert_eq!(ContentType::sniff(b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff\0\0"), None);
        assert_eq!(ContentType::sniff(b"\x7fELF\x02\x01\x01"), None, "an ELF program");
        assert_eq!(ContentType::sniff(b"PK\x03\x04"), None, "a zip archive");
        assert_eq!(ContentType::sniff(b"hello\0world"), None, "text with a NUL");
        assert_eq!(ContentType::sniff(b"\xc3\x28"), None, "not UTF-8");
        assert_eq!(ContentType::sniff(b""), None, "empty");
        assert_eq!(ContentType::sniff(b"RIFF\0\0\0\0WAVE"), None, "a RIFF that is not WebP");
    }

    #[test]
    fn media_types_serialise_as_their_names() {
        for t in ContentType::ALL {
            assert_eq!(serde_json::to_value(t).unwrap(), serde_json::json!(t.mime()));
        }
        assert!(ContentType::Png.is_image() && !ContentType::Pdf.is_image() && !ContentType::Text.is_image());
    }

    #[test]
    fn file_names_lose_their_directories_and_are_bounded() {
        assert_eq!(FileName::parse(" C:\\Users\\ada\\scan.pdf ").unwrap().as_str(), "scan.pdf");
        assert_eq!(FileName::parse("../../etc/passwd").unwrap().as_str(), "passwd");
        assert_eq!(FileName::parse("reçu été.png").unwrap().as_str(), "reçu été.png");
        for bad in ["", "  ", "dir/", "..", "a\nb.txt", "a\u{7}.txt"] {
            assert_eq!(FileName::parse(bad), Err(FileNameError), "{bad:?}");
        }
        assert!(FileName::parse(&"é".repeat(255)).is_ok());
        assert_eq!(FileName::parse(&"é".repeat(256)), Err(FileNameError));
    }
}
