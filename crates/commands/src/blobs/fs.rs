//! Blobs as files under a directory (the embedded mode).
//!
//! A blob's key is its path below the root. A put writes a temporary file
//! beside the target, syncs it and renames it into place, so a reader sees
//! the old blob or the new one, never part of one.

use super::{BlobError, BlobKey, BlobStore};
use async_trait::async_trait;
use bytes::Bytes;
use std::path::{Path, PathBuf};
use tokio::io::AsyncWriteExt;

/// Blobs in files under `root`.
pub struct FsBlobs {
    root: PathBuf,
}

impl FsBlobs {
    /// Blobs under `root` (made if missing).
    pub fn open(root: impl AsRef<Path>) -> Result<Self, BlobError> {
        let root = root.as_ref().to_path_buf();
        std::fs::create_dir_all(&root).map_err(|e| BlobError::Unavailable(Box::new(e)))?;
        Ok(Self { root })
    }

    fn path(&self, key: &BlobKey) -> PathBuf {
        // Safe: a key's segments have no `.`, `/` or `\`.
        self.root.join(key.as_str())
    }
}

fn internal(e: std::io::Error) -> BlobError {
    BlobError::Internal(Box::new(e))
}

#[async_trait]
impl BlobStore for FsBlobs {
    async fn put(&self, key: &BlobKey, bytes: Bytes) -> Result<(), BlobError> {
        let path = self.path(key);
        let dir = path.parent().unwrap_or(&self.root);
        tokio::fs::create_dir_all(dir).await.map_err(internal)?;
        let tmp = dir.join(format!(".tmp-{}", uuid::Uuid::now_v7().simple()));
        let write = async {
            let mut f = tokio::fs::File::create(&tmp).await?;
            f.write_all(&bytes).await?;
            f.sync_all().await?;
            tokio::fs::rename(&tmp, &path).await
        };
        if let Err(e) = write.await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(internal(e));
        }
        Ok(())
    }

    async fn get(&self, key: &BlobKey) -> Result<Option<Bytes>, BlobError> {
        match tokio::fs::read(self.path(key)).await {
            Ok(b) => Ok(Some(b.into())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(internal(e)),
        }
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        match tokio::fs::remove_file(self.path(key)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(internal(e)),
        }
    }
}
