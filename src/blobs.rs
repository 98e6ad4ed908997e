//! Content-addressed files under the data directory: each attachment, and each
//! large raw message, stored once, named by its SHA-256.

use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct BlobStore {
    dir: PathBuf,
}

impl BlobStore {
    /// Attachments: `<data dir>/attachments/<first two hex digits>/<sha256>`.
    pub fn attachments(data_dir: &Path) -> BlobStore {
        BlobStore {
            dir: data_dir.join("attachments"),
        }
    }

    /// Raw messages too large for a database row: `<data dir>/raw/<two hex digits>/<sha256>`.
    pub fn raw_messages(data_dir: &Path) -> BlobStore {
        BlobStore {
            dir: data_dir.join("raw"),
        }
    }

    /// Where the blob with this hash is (or would be).
    pub fn path(&self, sha256: &str) -> PathBuf {
        let prefix = sha256.get(..2).unwrap_or("00");
        self.dir.join(prefix).join(sha256)
    }

    /// Writes `bytes` unless a blob with this hash exists. The file appears
    /// whole or not at all (written beside it, synced, then renamed), and it is
    /// on disk with its directory entry when this returns: before the commit
    /// that names it, which may become durable at any moment after.
    pub async fn put(&self, sha256: &str, bytes: &[u8]) -> io::Result<()> {
        let path = self.path(sha256);
        let parent = path.parent().unwrap_or(&self.dir).to_path_buf();
        // Errors name the directory, not the file: a full disk is one error, not one per blob.
        let failed = |e: io::Error| {
            io::Error::new(
                e.kind(),
                format!("cannot write under {}: {e}", self.dir.display()),
            )
        };
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            // Written before, maybe by a process that stopped before syncing its entry.
            return sync_directory(&parent).await.map_err(failed);
        }
        let new_dirs: Vec<PathBuf> = [&self.dir, &parent]
            .into_iter()
            .filter(|d| !d.exists())
            .cloned()
            .collect();
        tokio::fs::create_dir_all(&parent).await.map_err(failed)?;
        let tmp = parent.join(format!(".{sha256}.{}.tmp", std::process::id()));
        if let Err(e) = write_synced(&tmp, bytes).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(failed(e));
        }
        tokio::fs::rename(&tmp, &path).await.map_err(failed)?;
        sync_directory(&parent).await.map_err(failed)?;
        // A directory made just now is named in its own parent.
        for dir in new_dirs {
            if let Some(up) = dir.parent() {
                sync_directory(up).await.map_err(failed)?;
            }
        }
        Ok(())
    }

    /// The content of the blob with this hash.
    pub async fn get(&self, sha256: &str) -> io::Result<Vec<u8>> {
        tokio::fs::read(self.path(sha256)).await
    }
}

async fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut file = tokio::fs::File::create(path).await?;
    file.write_all(bytes).await?;
    file.sync_all().await
}

async fn sync_directory(dir: &Path) -> io::Result<()> {
    tokio::fs::File::open(dir).await?.sync_all().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn blobs_are_stored_once_by_hash() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blobs = BlobStore::attachments(dir.path());
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
