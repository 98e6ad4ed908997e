//! Group commit: what was committed is on disk before a source is told it may
//! forget the message (IMAP `\Seen` and move, Maildir rename, the pipe's exit 0).
//!
//! SQLite runs in WAL mode with `synchronous = NORMAL`: a commit is appended to
//! the `-wal` file but not synced, so it survives a crash of the process but
//! not a power failure or an OS crash. Syncing every commit would cost an fsync
//! per message; instead a source calls [`Durability::sync`] once per batch,
//! before acknowledging it, and one `fdatasync` of the log covers every commit
//! made before it, whoever made it. Attachment files written meanwhile are
//! synced with it. PostgreSQL makes each commit durable itself (unless
//! `synchronous_commit` is off, which the pipeline warns about), so there only
//! attachment files are synced.

use std::collections::BTreeSet;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::StoreError;
use crate::config::sqlite_file;

/// Shared by the pipeline (which counts its commits and the files it writes)
/// and the sources (which ask for a sync before acknowledging).
#[derive(Clone, Debug)]
pub struct Durability {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The SQLite database file; `None` for PostgreSQL and in-memory databases.
    database: Option<PathBuf>,
    /// Commits made so far that an acknowledgement may depend on.
    commits: AtomicU64,
    /// Files (and directories) written since the last sync.
    files: Mutex<BTreeSet<PathBuf>>,
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
}

impl Durability {
    /// For the store at `url` (a SQLite file's log, or nothing to sync for PostgreSQL).
    pub fn for_store_url(url: &str) -> Durability {
        Durability {
            inner: Arc::new(Inner {
                database: sqlite_file(url),
                commits: AtomicU64::new(0),
                files: Mutex::new(BTreeSet::new()),
                reopen: AtomicBool::new(false),
                state: tokio::sync::Mutex::new(Synced::default()),
            }),
        }
    }

    /// Records that a transaction was committed: the next [`Durability::sync`] covers it.
    pub fn committed(&self) {
        self.inner.commits.fetch_add(1, Ordering::AcqRel);
    }

    /// Records a file (or directory) whose content the next sync must make durable.
    pub fn wrote(&self, path: PathBuf) {
        self.files().insert(path);
    }

    /// True once after a failed sync: the writer drops its connection and opens a new one.
    pub fn take_reopen(&self) -> bool {
        self.inner.reopen.swap(false, Ordering::AcqRel)
    }

    /// Makes every commit counted before this call, and every file recorded,
    /// durable. Concurrent callers share one sync. An error (EIO, ENOSPC…)
    /// means nothing may be acknowledged: the caller keeps its messages and
    /// reads them again later (dedup makes that safe).
    pub async fn sync(&self) -> Result<(), StoreError> {
        let wanted = self.inner.commits.load(Ordering::Acquire);
        let mut state = self.inner.state.lock().await;
        let files = std::mem::take(&mut *self.files());
        if state.commits >= wanted && files.is_empty() {
            return Ok(());
        }
        // Whatever was committed by now is covered by the sync that starts next.
        let covered = self.inner.commits.load(Ordering::Acquire);
        let database = self.inner.database.clone();
        let log_entry = state.log_entry;
        let pending = files.clone();
        let result = tokio::task::spawn_blocking(move || {
            sync_files(&pending)?;
            match database {
                Some(db) => sync_sqlite(&db, log_entry),
                None => Ok(log_entry),
            }
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(format!("sync task failed: {e}"))));
        match result {
            Ok(log_entry) => {
                state.commits = state.commits.max(covered);
                state.log_entry = log_entry;
                Ok(())
            }
            Err(e) => {
                self.files().extend(files);
                state.log_entry = None;
                self.inner.reopen.store(true, Ordering::Release);
                Err(StoreError::Sync(e.to_string()))
            }
        }
    }

    fn files(&self) -> std::sync::MutexGuard<'_, BTreeSet<PathBuf>> {
        self.inner.files.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Syncs the log (`<db>-wal`), and its directory entry the first time this log
/// file is seen. Without a log (the last connection checkpointed and removed
/// it) the database file itself holds everything: sync that.
fn sync_sqlite(db: &Path, known: Option<(u64, u64)>) -> std::io::Result<Option<(u64, u64)>> {
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    let (file, path) = match File::open(&wal) {
        Ok(file) => (file, wal),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (
            File::open(db).map_err(|e| context(db, e))?,
            db.to_path_buf(),
        ),
        Err(e) => return Err(context(&wal, e)),
    };
    file.sync_data().map_err(|e| context(&path, e))?;
    let meta = file.metadata().map_err(|e| context(&path, e))?;
    let entry = (meta.dev(), meta.ino());
    if known != Some(entry)
        && let Some(dir) = path.parent()
    {
        sync_directory(dir)?;
    }
    Ok(Some(entry))
}

fn sync_files(paths: &BTreeSet<PathBuf>) -> std::io::Result<()> {
    for path in paths {
        if path.is_dir() {
            sync_directory(path)?;
        } else {
            let file = File::open(path).map_err(|e| context(path, e))?;
            file.sync_data().map_err(|e| context(path, e))?;
        }
    }
    Ok(())
}

fn sync_directory(dir: &Path) -> std::io::Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| context(dir, e))
}

fn context(path: &Path, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_sync_covers_the_log_and_written_files_and_nothing_twice() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("t.db");
        std::fs::write(&db, b"db").expect("db");
        std::fs::write(dir.path().join("t.db-wal"), b"log").expect("wal");
        let blob = dir.path().join("blob");
        std::fs::write(&blob, b"blob").expect("blob");
        let durability = Durability::for_store_url(&format!("sqlite://{}", db.display()));
        durability.sync().await.expect("nothing to do");
        durability.committed();
        durability.wrote(blob.clone());
        durability.sync().await.expect("synced");
        assert!(durability.files().is_empty());
        assert_eq!(durability.inner.state.lock().await.commits, 1);
        // A missing file fails the sync and stays pending for the next one.
        durability.wrote(dir.path().join("gone"));
        let err = durability.sync().await.expect_err("a missing file");
        assert!(err.is_transient(), "{err}");
        assert!(durability.take_reopen());
        assert!(!durability.take_reopen());
        assert_eq!(durability.files().len(), 1);
    }

    #[tokio::test]
    async fn without_a_log_the_database_file_is_synced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("t.db");
        std::fs::write(&db, b"db").expect("db");
        let durability = Durability::for_store_url(&format!("sqlite://{}", db.display()));
        durability.committed();
        durability.sync().await.expect("synced");
        let postgres = Durability::for_store_url("postgres://u@h/db");
        postgres.committed();
        postgres
            .sync()
            .await
            .expect("nothing to sync for PostgreSQL");
    }
}
