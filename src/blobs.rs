//! Content-addressed files under the data directory: each attachment stored once, named by its SHA-256.

use std::io;
use std::path::{Path, PathBuf};

use crate::store::durable::Durability;

#[derive(Debug, Clone)]
pub struct BlobStore {
    dir: PathBuf,
    /// Where new files are recorded so the next sync makes them durable.
    durability: Option<Durability>,
}

impl BlobStore {
    /// Blobs live in `<data dir>/attachments/<first two hex digits>/<sha256>`.
    pub fn new(data_dir: &Path) -> BlobStore {
        BlobStore {
            dir: data_dir.join("attachments"),
            durability: None,
        }
    }

    /// Records every file it writes (and the directories that name it) into
    /// `durability`, to be synced before the message is acknowledged.
    pub fn recording_into(mut self, durability: Durability) -> BlobStore {
        self.durability = Some(durability);
        self
    }

    pub fn path(&self, sha256: &str) -> PathBuf {
        let prefix = sha256.get(..2).unwrap_or("00");
        self.dir.join(prefix).join(sha256)
    }

    /// Writes `bytes` unless a blob with this hash exists. The file appears
    /// whole or not at all (written beside it, then renamed).
    pub async fn put(&self, sha256: &str, bytes: &[u8]) -> io::Result<()> {
        let path = self.path(sha256);
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Ok(());
        }
        let parent = path.parent().unwrap_or(&self.dir);
        // Errors name the directory, not the file: a full disk is one error, not one per blob.
        let failed = |e: io::Error| {
            io::Error::new(
                e.kind(),
                format!("cannot write under {}: {e}", self.dir.display()),
            )
        };
        tokio::fs::create_dir_all(parent).await.map_err(failed)?;
        let tmp = parent.join(format!(".{sha256}.{}.tmp", std::process::id()));
        if let Err(e) = tokio::fs::write(&tmp, bytes).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(failed(e));
        }
        tokio::fs::rename(&tmp, &path).await.map_err(failed)?;
        if let Some(durability) = &self.durability {
            durability.wrote(path.clone());
            durability.wrote(parent.to_path_buf());
            durability.wrote(self.dir.clone());
            if let Some(data_dir) = self.dir.parent() {
                durability.wrote(data_dir.to_path_buf());
            }
        }
        Ok(())
    }

    pub async fn get(&self, sha256: &str) -> io::Result<Vec<u8>> {
        tokio::fs::read(self.path(sha256)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn blobs_are_stored_once_by_hash() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blobs = BlobStore::new(dir.path());
        let sha = "ab".repeat(32);
        blobs.put(&sha, b"hello").await.expect("put");
        blobs.put(&sha, b"hello").await.expect("put again");
        assert_eq!(blobs.get(&sha).await.expect("get"), b"hello");
        assert!(
            blobs
                .path(&sha)
                .starts_with(dir.path().join("attachments").join("ab"))
        );
    }
}
