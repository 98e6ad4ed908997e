//! Group commit: what was committed is on disk before a source is told it may
//! forget the message (IMAP `\Seen` and move, Maildir rename, the pipe's exit 0).
//!
//! SQLite runs in WAL mode with `synchronous = NORMAL`: a commit is appended to
//! the `-wal` file but not synced, so it survives a crash of the process but
//! not a power failure or an OS crash. Syncing every commit would cost an fsync
//! per message; instead a source calls [`Durability::sync`] once per batch,
//! before acknowledging it, and one `fdatasync` of the log covers every commit
//! made before it, whoever made it. (Attachment files are synced as they are
//! written, before the commit that names them: see [`crate::blobs`].)
//! PostgreSQL makes each commit durable itself (unless `synchronous_commit` is
//! off, which the pipeline warns about): there is nothing to do.
//!
//! After a failed sync the kernel may have dropped the failed pages' error and
//! marked them clean, so a later successful `fdatasync` would prove nothing.
//! The next sync therefore rewrites: a full checkpoint copies the log into the
//! database file and syncs it, and only then is anything acknowledged.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use sqlx::Row;

use super::{Store, StoreError};
use crate::config::sqlite_file;

/// Shared by the pipeline (which counts its commits) and the sources (which
/// ask for a sync before acknowledging).
#[derive(Clone, Debug)]
pub struct Durability {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The store, to checkpoint it after a failed sync.
    store: Store,
    /// The SQLite database file as configured; `None` for PostgreSQL and in-memory databases.
    database: Option<PathBuf>,
    /// Commits made so far that an acknowledgement may depend on.
    commits: AtomicU64,
    /// Set after a failed sync: the writer should open its connection anew.
    reopen: AtomicBool,
    state: tokio::sync::Mutex<Synced>,
}

#[derive(Debug, Default)]
struct Synced {
    /// Every commit up to this count is durable.
    commits: u64,
    /// The log file (device, inode) whose directory entry is known to be durable.
    log_entry: Option<(u64, u64)>,
    /// A sync failed since the last checkpoint: the next one must rewrite.
    failed: bool,
}

impl Durability {
    /// For `store` (a SQLite file's log; nothing to sync on PostgreSQL).
    pub fn for_store(store: &Store) -> Durability {
        Durability {
            inner: Arc::new(Inner {
                database: sqlite_file(store.url()),
                store: store.clone(),
                commits: AtomicU64::new(0),
                reopen: AtomicBool::new(false),
                state: tokio::sync::Mutex::new(Synced::default()),
            }),
        }
    }

    /// Records that a transaction was committed (or that a message was found
    /// committed already, maybe by another process that has not synced it):
    /// the next [`Durability::sync`] covers it.
    pub fn committed(&self) {
        self.inner.commits.fetch_add(1, Ordering::AcqRel);
    }

    /// True once after a failed sync: the writer drops its connection and opens a new one.
    pub fn take_reopen(&self) -> bool {
        self.inner.reopen.swap(false, Ordering::AcqRel)
    }

    /// Makes every commit counted before this call durable. Concurrent callers
    /// share one sync. An error (EIO, ENOSPC…) means nothing may be
    /// acknowledged: the caller keeps its messages and reads them again later
    /// (dedup makes that safe).
    pub async fn sync(&self) -> Result<(), StoreError> {
        let wanted = self.inner.commits.load(Ordering::Acquire);
        let mut state = self.inner.state.lock().await;
        if state.commits >= wanted && !state.failed {
            return Ok(());
        }
        let Some(database) = self.inner.database.clone() else {
            state.commits = state.commits.max(wanted);
            return Ok(());
        };
        // Whatever was committed by now is covered by the sync that starts next.
        let covered = self.inner.commits.load(Ordering::Acquire);
        let result = if state.failed {
            self.rewrite(&database).await.map(|()| None)
        } else {
            let known = state.log_entry;
            tokio::task::spawn_blocking(move || sync_log(&database, known))
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(format!("sync task failed: {e}"))))
                .map(Some)
                .map_err(|e| StoreError::Sync(e.to_string()))
        };
        match result {
            Ok(log_entry) => {
                state.commits = state.commits.max(covered);
                state.log_entry = log_entry;
                state.failed = false;
                Ok(())
            }
            Err(e) => {
                state.failed = true;
                state.log_entry = None;
                self.inner.reopen.store(true, Ordering::Release);
                Err(e)
            }
        }
    }

    /// After a failed sync: copies the whole log into the database file
    /// (rewriting every page), syncs it and empties the log.
    async fn rewrite(&self, database: &Path) -> Result<(), StoreError> {
        let mut conn = self.inner.store.conn().await?;
        let row = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .fetch_one(&mut *conn)
            .await?;
        if row.try_get::<i64, _>(0)? != 0 {
            return Err(StoreError::Sync(
                "the log could not be checkpointed after a failed sync (the store is busy); \
                 will try again"
                    .into(),
            ));
        }
        let database = database.to_path_buf();
        tokio::task::spawn_blocking(move || {
            let real = std::fs::canonicalize(&database).map_err(|e| context(&database, e))?;
            File::open(&real)
                .and_then(|f| f.sync_all())
                .map_err(|e| context(&real, e))
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(format!("sync task failed: {e}"))))
        .map_err(|e| StoreError::Sync(e.to_string()))
    }
}

/// Syncs the log beside the real database file (`<db>-wal`, after following
/// links, as SQLite does), and its directory entry the first time this log
/// file is seen. A missing log is an error, not something to skip: while the
/// store is open in WAL mode SQLite keeps it, so a wrong path must not pass
/// for a sync.
fn sync_log(db: &Path, known: Option<(u64, u64)>) -> std::io::Result<(u64, u64)> {
    let real = std::fs::canonicalize(db).map_err(|e| context(db, e))?;
    let wal = PathBuf::from(format!("{}-wal", real.display()));
    let file = File::open(&wal).map_err(|e| context(&wal, e))?;
    file.sync_data().map_err(|e| context(&wal, e))?;
    let meta = file.metadata().map_err(|e| context(&wal, e))?;
    let entry = (meta.dev(), meta.ino());
    if known != Some(entry)
        && let Some(dir) = wal.parent()
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| context(dir, e))?;
    }
    Ok(entry)
}

fn context(path: &Path, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StoreSettings;

    async fn store(url: String) -> Store {
        Store::open(&StoreSettings {
            url,
            max_connections: 2,
            connect_timeout_secs: 5,
        })
        .await
        .expect("store")
    }

    #[tokio::test]
    async fn a_sync_covers_the_log_and_nothing_twice() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store(format!("sqlite://{}", dir.path().join("t.db").display())).await;
        let durability = Durability::for_store(&store);
        durability.sync().await.expect("nothing to do");
        durability.committed();
        durability.sync().await.expect("synced");
        let state = durability.inner.state.lock().await;
        assert_eq!(state.commits, 1);
        assert!(state.log_entry.is_some());
    }

    #[tokio::test]
    async fn a_missing_log_fails_the_sync_and_the_next_one_rewrites() {
        let dir = tempfile::tempdir().expect("tempdir");
        let real = dir.path().join("real.db");
        let store = store(format!("sqlite://{}", real.display())).await;
        // The log of the configured path, not of the real file, is missing.
        let link = dir.path().join("link.db");
        std::os::unix::fs::symlink(&real, &link).expect("symlink");
        let durability = Durability {
            inner: Arc::new(Inner {
                database: Some(dir.path().join("elsewhere.db")),
                store: store.clone(),
                commits: AtomicU64::new(0),
                reopen: AtomicBool::new(false),
                state: tokio::sync::Mutex::new(Synced::default()),
            }),
        };
        durability.committed();
        let err = durability.sync().await.expect_err("no such store");
        assert!(err.is_transient(), "{err}");
        assert!(durability.take_reopen());
        assert!(!durability.take_reopen());
        // Through a link, the log beside the real file is the one synced.
        let linked = Durability {
            inner: Arc::new(Inner {
                database: Some(link),
                store: store.clone(),
                commits: AtomicU64::new(1),
                reopen: AtomicBool::new(false),
                state: tokio::sync::Mutex::new(Synced {
                    failed: true,
                    ..Synced::default()
                }),
            }),
        };
        linked.sync().await.expect("rewritten after the failure");
        assert!(!linked.inner.state.lock().await.failed);
        linked.committed();
        linked.sync().await.expect("synced through the link");
    }

    #[tokio::test]
    async fn postgres_and_memory_need_no_sync() {
        let memory = store("sqlite::memory:".into()).await;
        let durability = Durability::for_store(&memory);
        durability.committed();
        durability.sync().await.expect("nothing to sync in memory");
    }
}
