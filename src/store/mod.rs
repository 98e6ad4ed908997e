//! All SQL lives here: one sqlx `Any` pool over SQLite (default) or PostgreSQL.
//!
//! Every query is written once with `$n` placeholders, which both backends
//! accept through the Any driver. Flags are 0/1 integers and timestamps Unix
//! seconds, the types the Any driver maps the same way on both.

pub mod checkpoint;
pub mod directory;
pub mod events;
pub mod intake;
pub mod mailboxes;
pub mod outbox;
pub mod queues;
pub mod tickets;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Once;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::error::ErrorKind;
use sqlx::{AnyConnection, AnyPool, Executor};

use crate::config::StoreSettings;

pub type Conn = AnyConnection;
pub type Tx = sqlx::Transaction<'static, sqlx::Any>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend a `store.url` names (validated settings name one of the two).
    pub fn of_url(url: &str) -> Backend {
        if url.trim().starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or is busy: worth retrying later.
    #[error("the store is unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("cannot prepare the database: {0}")]
    Setup(String),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// True when retrying later may succeed (connection lost, database busy or full).
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if is_transient(&e) {
            StoreError::Unavailable(e)
        } else {
            StoreError::Database(e)
        }
    }
}

fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                // BUSY, LOCKED, READONLY, IOERR, FULL, CANTOPEN (primary result codes).
                code.parse::<i64>()
                    .is_ok_and(|c| matches!(c & 0xff, 5 | 6 | 8 | 10 | 13 | 14))
            } else {
                // Connection (08), resources (53), operator intervention (57),
                // serialization failure and deadlock.
                code.starts_with("08")
                    || code.starts_with("53")
                    || code.starts_with("57")
                    || code == "40001"
                    || code == "40P01"
            }
        }
        _ => false,
    }
}

/// Maps a unique-constraint violation to a [`StoreError::Conflict`] with `message`.
pub(crate) fn conflict(e: sqlx::Error, message: impl FnOnce() -> String) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.kind() == ErrorKind::UniqueViolation => {
            StoreError::Conflict(message())
        }
        _ => e.into(),
    }
}

/// Current time in Unix seconds.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Unix seconds as an RFC 3339 UTC string (`2026-11-23T10:00:00Z`).
pub fn rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| secs.to_string())
}

/// Serializes a Unix-seconds field as RFC 3339, for JSON that people read.
pub(crate) fn serialize_time<S: serde::Serializer>(secs: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*secs))
}

pub(crate) fn serialize_optional_time<S: serde::Serializer>(
    secs: &Option<i64>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match secs {
        Some(secs) => s.serialize_str(&rfc3339(*secs)),
        None => s.serialize_none(),
    }
}

#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// For a SQLite file: the lock file that serializes migrations between processes
    /// (SQLite's migrator takes no lock of its own, PostgreSQL's takes an advisory one).
    migration_lock: Option<PathBuf>,
}

static DRIVERS: Once = Once::new();

impl Store {
    /// Opens the pool (creating a SQLite file and its directory on first use).
    /// Does not migrate; call [`Store::migrate`].
    pub async fn connect(settings: &StoreSettings) -> Result<Store, StoreError> {
        Store::connect_with(settings, false).await
    }

    /// Like [`Store::connect`], for the ingest worker, the one writer that
    /// works through a backlog. On SQLite its connections never checkpoint
    /// the WAL themselves (a [`checkpoint::Checkpointer`] does it on another
    /// thread) and keep a larger page cache.
    pub async fn connect_as_ingest_writer(settings: &StoreSettings) -> Result<Store, StoreError> {
        Store::connect_with(settings, true).await
    }

    async fn connect_with(
        settings: &StoreSettings,
        ingest_writer: bool,
    ) -> Result<Store, StoreError> {
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let url = settings.url.trim();
        let backend = Backend::of_url(url);
        let timeout = Duration::from_secs(settings.connect_timeout_secs.max(1));
        let mut options = AnyPoolOptions::new()
            .max_connections(settings.max_connections.max(1))
            .acquire_timeout(timeout)
            // A broken connection fails its statement and the message is retried;
            // pinging before every use would cost a round trip per message.
            .test_before_acquire(false);
        let mut migration_lock = None;
        let url = match backend {
            Backend::Sqlite => {
                let (url, in_memory) = sqlite_url(url)?;
                if !in_memory {
                    migration_lock = Some(sqlite_lock_path(&url));
                }
                if in_memory {
                    // Every connection to :memory: is its own database: keep exactly one.
                    options = options
                        .max_connections(1)
                        .min_connections(1)
                        .idle_timeout(None)
                        .max_lifetime(None);
                }
                let busy_ms = timeout.as_millis();
                // SQLite's defaults are 1,000 log pages and a 2 MiB cache; a
                // checkpoint of 0 pages leaves checkpoints to someone else.
                let (autocheckpoint_pages, cache_kib) = if ingest_writer {
                    (0, 16 * 1024)
                } else {
                    (1000, 2 * 1024)
                };
                options = options.after_connect(move |conn, _meta| {
                    Box::pin(async move {
                        conn.execute(sqlx::AssertSqlSafe(format!(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = {busy_ms}; \
                             PRAGMA wal_autocheckpoint = {autocheckpoint_pages}; PRAGMA cache_size = -{cache_kib};"
                        )))
                        .await?;
                        Ok(())
                    })
                });
                url
            }
            Backend::Postgres => url.to_string(),
        };
        let connect_options = AnyConnectOptions::from_str(&url)
            .map_err(|e| StoreError::Setup(format!("bad store.url: {e}")))?;
        let pool = options.connect_with(connect_options).await?;
        Ok(Store {
            pool,
            backend,
            migration_lock,
        })
    }

    /// Applies the migrations of this backend that have not run yet.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        // Two processes starting on a fresh file (the daemon and a CLI command)
        // would otherwise both run the first migration.
        let _guard = match &self.migration_lock {
            Some(path) => Some(lock_file(path.clone()).await?),
            None => None,
        };
        match self.backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite").run(&self.pool).await?,
            Backend::Postgres => {
                sqlx::migrate!("migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
        }
        Ok(())
    }

    /// Connects and migrates: what every command that touches the store does first.
    pub async fn open(settings: &StoreSettings) -> Result<Store, StoreError> {
        let store = Store::connect(settings).await?;
        store.migrate().await?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A connection for reads and single statements.
    pub async fn conn(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, StoreError> {
        Ok(self.pool.acquire().await?)
    }

    /// A write transaction. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so concurrent writers wait for each other instead of
    /// failing when a read lock cannot be upgraded.
    pub async fn begin(&self) -> Result<Tx, StoreError> {
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(tx)
    }

    /// A write transaction on a connection the caller keeps (see [`Store::begin`]).
    pub async fn begin_on<'c>(
        &self,
        conn: &'c mut Conn,
    ) -> Result<sqlx::Transaction<'c, sqlx::Any>, StoreError> {
        use sqlx::Connection;
        let tx = match self.backend {
            Backend::Sqlite => conn.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => conn.begin().await?,
        };
        Ok(tx)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Adds `mode=rwc` so the file is created, and creates its directory.
/// `<database file>.lock`, beside the database.
fn sqlite_lock_path(url: &str) -> PathBuf {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let path = rest.split_once('?').map_or(rest, |(path, _)| path);
    PathBuf::from(format!("{path}.lock"))
}

/// Waits for an exclusive lock on `path` (created when missing); released on drop.
async fn lock_file(path: PathBuf) -> Result<std::fs::File, StoreError> {
    tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .and_then(|file| file.lock().map(|()| file));
        file.map_err(|e| StoreError::Setup(format!("cannot lock {}: {e}", path.display())))
    })
    .await
    .map_err(|e| StoreError::Setup(format!("migration lock task failed: {e}")))?
}

fn sqlite_url(url: &str) -> Result<(String, bool), StoreError> {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let in_memory = path == ":memory:" || path.is_empty() || query.contains("mode=memory");
    if !in_memory
        && let Some(parent) = Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|e| {
            StoreError::Setup(format!(
                "cannot create the database directory {}: {e}",
                parent.display()
            ))
        })?;
    }
    let url = if in_memory || query.contains("mode=") {
        url.to_string()
    } else if query.is_empty() {
        format!("{url}?mode=rwc")
    } else {
        format!("{url}&mode=rwc")
    };
    Ok((url, in_memory))
}

/// Booleans are stored as 0/1.
pub(crate) fn flag(b: bool) -> i64 {
    i64::from(b)
}
