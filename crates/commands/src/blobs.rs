//! The blob store: where the bytes of attachments live, outside the log.
//!
//! A small port, [`BlobStore`] (put, get, delete by key), with two adapters,
//! chosen by configuration (`blobs.url`):
//!
//! * [`fs::FsBlobs`] — files under a directory (`jamuna serve` uses
//!   `<data_dir>/blobs`), each written to a temporary file and renamed into
//!   place, so a reader never sees half a blob;
//! * [`s3::S3Blobs`] — an S3-compatible object store (the distributed mode),
//!   through a small hand-written client: path-style URLs, AWS Signature
//!   Version 4, no SDK.
//!
//! Both pass the same contract suite ([`contract::run`], behind the
//! `testing` feature). The store holds opaque bytes: what goes in is already
//! encrypted ([`crate::attachments`]), so neither a disk nor a bucket ever
//! holds a readable file.
//!
//! ```no_run
//! # async fn demo(blobs: &dyn jamuna_commands::blobs::BlobStore) -> Result<(), jamuna_commands::blobs::BlobError> {
//! use jamuna_commands::blobs::BlobKey;
//! let key = BlobKey::parse("attachments/acme/c1/f1")?;
//! blobs.put(&key, bytes::Bytes::from_static(b"sealed bytes")).await?;
//! assert_eq!(blobs.get(&key).await?.as_deref(), Some(&b"sealed bytes"[..]));
//! blobs.delete(&key).await?;
//! # Ok(()) }
//! ```

#[cfg(feature = "testing")]
pub mod contract;
pub mod fs;
pub mod s3;

use async_trait::async_trait;
use bytes::Bytes;

/// A blob's name: segments of ASCII letters, digits, `-` and `_`, joined by
/// `/`. Safe as a relative path and as an S3 key without any escaping.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlobKey(String);

impl BlobKey {
    pub fn parse(s: impl Into<String>) -> Result<Self, BlobError> {
        let s = s.into();
        let ok = !s.is_empty()
            && s.len() <= 512
            && s.split('/').all(|seg| !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        if !ok {
            return Err(BlobError::InvalidKey(s));
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for BlobKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("{0:?} is not a blob key (segments of letters, digits, '-' and '_', joined by '/')")]
    InvalidKey(String),
    #[error("the blob store is unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the blob store failed: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Where blobs live.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Stores `bytes` under `key`, replacing what was there.
    async fn put(&self, key: &BlobKey, bytes: Bytes) -> Result<(), BlobError>;
    /// The bytes under `key`, or `None`.
    async fn get(&self, key: &BlobKey) -> Result<Option<Bytes>, BlobError>;
    /// Removes `key`; removing a missing key is fine.
    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError>;
}

/// Which adapter a `blobs.url` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobUrl {
    /// `file:///absolute/dir` (or a path).
    Dir(std::path::PathBuf),
    /// `s3://bucket`.
    S3 { bucket: String },
}

impl BlobUrl {
    /// Parses `file://…` or `s3://bucket`.
    pub fn parse(url: &str) -> Result<Self, String> {
        if let Some(path) = url.strip_prefix("file://") {
            if path.is_empty() {
                return Err("file:// needs a directory".into());
            }
            return Ok(Self::Dir(path.into()));
        }
        if let Some(bucket) = url.strip_prefix("s3://") {
            let bucket = bucket.trim_end_matches('/');
            let valid = (3..=63).contains(&bucket.len())
                && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
            if !valid {
                return Err(format!("{bucket:?} is not an S3 bucket name"));
            }
            return Ok(Self::S3 { bucket: bucket.into() });
        }
        Err(format!("{url:?}: a blob store URL is file:///dir or s3://bucket"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_safe_paths() {
        assert!(BlobKey::parse("attachments/acme/c1/f-1_2").is_ok());
        for bad in ["", "/a", "a/", "a//b", "../a", "a/./b", "a b", "a.b", "é"] {
            assert!(matches!(BlobKey::parse(bad), Err(BlobError::InvalidKey(_))), "{bad:?}");
        }
    }

    #[test]
    fn urls_name_an_adapter() {
        assert_eq!(BlobUrl::parse("file:///srv/blobs"), Ok(BlobUrl::Dir("/srv/blobs".into())));
        assert_eq!(BlobUrl::parse("s3://jamuna"), Ok(BlobUrl::S3 { bucket: "jamuna".into() }));
        assert!(BlobUrl::parse("s3://A_B").is_err());
        assert!(BlobUrl::parse("http://x").is_err());
        assert!(BlobUrl::parse("file://").is_err());
    }
}
