//! All SQL lives here: one sqlx `Any` pool over SQLite (default) or PostgreSQL.
//!
//! Every query is written once with `$n` placeholders, which both backends
//! accept through the Any driver. Flags are 0/1 integers and timestamps Unix
//! seconds, the types the Any driver maps the same way on both.

/// Reads a domain value back from its one stored spelling (`Type::ALL` and
/// `as_str`): an unknown spelling is [`StoreError::Corrupt`], never a default.
/// With `shown`, the value also displays as that spelling.
macro_rules! decoded_fail_closed {
    ($ty:ty, $what:literal, shown) => {
        decoded_fail_closed!($ty, $what);

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }
    };
    ($ty:ty, $what:literal) => {
        impl TryFrom<&str> for $ty {
            type Error = $crate::store::StoreError;

            fn try_from(stored: &str) -> Result<Self, Self::Error> {
                <$ty>::ALL
                    .iter()
                    .copied()
                    .find(|value| value.as_str() == stored)
                    .ok_or_else(|| {
                        $crate::store::StoreError::Corrupt(format!("unknown {} `{stored}`", $what))
                    })
            }
        }
    };
}

pub mod checkpoint;
pub mod directory;
pub mod durable;
pub mod events;
pub mod intake;
pub mod mailboxes;
pub mod outbox;
pub mod queues;
pub mod secrets;
pub mod tickets;
pub mod writer;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Once;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::error::ErrorKind;
use sqlx::migrate::Migrator;
use sqlx::{AnyConnection, AnyPool, Executor};

use crate::config::{StoreSettings, sqlite_file};

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
    /// A stored value this version does not know (written by a newer one, or by hand).
    #[error("the store holds a value this version of ticketd does not know: {0}")]
    Corrupt(String),
    /// What was committed could not be made durable (EIO, ENOSPC): nothing may be acknowledged.
    #[error("cannot make the store durable on disk: {0}")]
    Sync(String),
}

impl StoreError {
    /// True when retrying later may succeed (connection lost, database busy or
    /// full, a failed sync).
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Sync(_))
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

/// SQLite's SQLITE_READONLY family: the file or its directory cannot be written.
fn is_read_only(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db
            .code()
            .and_then(|c| c.parse::<i64>().ok())
            .is_some_and(|c| c & 0xff == 8),
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
    /// `store.url` as configured.
    url: String,
    /// For a SQLite file: the lock file that serializes migrations between processes
    /// (SQLite's migrator takes no lock of its own, PostgreSQL's takes an advisory one).
    migration_lock: Option<PathBuf>,
}

static DRIVERS: Once = Once::new();

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

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
            .test_before_acquire(false)
            // A connection that comes back still inside a transaction is closed, not
            // reused: after a COMMIT that failed (a full disk) the driver can lose track
            // of the transaction, and every later BEGIN on that connection would fail.
            .after_release(|conn, _meta| {
                Box::pin(async move {
                    use sqlx::Connection;
                    Ok(!conn.is_in_transaction())
                })
            });
        let mut migration_lock = None;
        let url = match backend {
            Backend::Sqlite => {
                let (url, database) = sqlite_url(url)?;
                let in_memory = database.is_none();
                migration_lock = database.as_deref().map(sqlite_lock_path);
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
                        // A store this user cannot write (a wrong owner) fails here; let
                        // it fail at its first write instead, at once: the pool retries
                        // a failed connection set-up until its timeout.
                        if let Err(e) = conn.execute("PRAGMA journal_mode = WAL").await
                            && !is_read_only(&e)
                        {
                            return Err(e);
                        }
                        conn.execute(sqlx::AssertSqlSafe(format!(
                            "PRAGMA synchronous = NORMAL; \
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
            url: settings.url.trim().to_string(),
            migration_lock,
        })
    }

    /// Applies the migrations of this backend that have not run yet. A store
    /// that is up to date is only read: no lock, no write.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        if self.is_up_to_date(migrator).await {
            return Ok(());
        }
        // Two processes starting on a fresh file (the daemon and a CLI command)
        // would otherwise both run the first migration.
        let _guard = match &self.migration_lock {
            Some(path) => Some(lock_file(path.clone()).await?),
            None => None,
        };
        migrator.run(&self.pool).await?;
        Ok(())
    }

    /// Whether every migration of `migrator` is recorded as applied. Any doubt
    /// (no migrations table yet, a failed read) answers no, and `migrate` runs.
    /// A migration whose file changed since it ran (another checksum) answers
    /// no too, so that `migrate` reports it.
    async fn is_up_to_date(&self, migrator: &Migrator) -> bool {
        let applied: Vec<(i64, Vec<u8>)> =
            match sqlx::query_as("SELECT version, checksum FROM _sqlx_migrations WHERE success")
                .fetch_all(&self.pool)
                .await
            {
                Ok(applied) => applied,
                Err(_) => return false,
            };
        migrator
            .iter()
            .filter(|m| !m.migration_type.is_down_migration())
            .all(|m| {
                applied
                    .iter()
                    .any(|(version, checksum)| *version == m.version && **checksum == *m.checksum)
            })
    }

    /// A warning when PostgreSQL does not make each commit durable
    /// (`synchronous_commit = off`): then an acknowledged message can be lost
    /// when the database server fails. `None` for SQLite and durable settings.
    pub async fn durability_warning(&self) -> Result<Option<String>, StoreError> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        let setting: String = sqlx::query_scalar("SELECT current_setting('synchronous_commit')")
            .fetch_one(&self.pool)
            .await?;
        Ok((setting.trim() == "off").then(|| {
            "PostgreSQL runs with synchronous_commit = off: a message acknowledged to its source \
             can be lost if the database server fails; set synchronous_commit = on for ticketd's \
             database (ALTER DATABASE … SET synchronous_commit = on)"
                .to_string()
        }))
    }

    /// Connects and migrates: what every command that touches the store does first.
    pub async fn open(settings: &StoreSettings) -> Result<Store, StoreError> {
        let store = Store::connect(settings).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Which database this store runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The `store.url` this store was opened with.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The connection pool, for what needs more than one statement at a time.
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

    /// Closes every connection (SQLite checkpoints the log on the last one).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// `<database file>.lock`, beside the database.
fn sqlite_lock_path(database: &Path) -> PathBuf {
    PathBuf::from(format!("{}.lock", database.display()))
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

/// Adds `mode=rwc` so the file is created, and creates its directory.
/// Returns the URL and the database file (`None` in memory).
fn sqlite_url(url: &str) -> Result<(String, Option<PathBuf>), StoreError> {
    let database = sqlite_file(url);
    if let Some(parent) = database.as_deref().and_then(Path::parent)
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|e| {
            StoreError::Setup(format!(
                "cannot create the database directory {}: {e}",
                parent.display()
            ))
        })?;
    }
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let url = if database.is_none() || query.contains("mode=") {
        url.to_string()
    } else if query.is_empty() {
        format!("{url}?mode=rwc")
    } else {
        format!("{url}&mode=rwc")
    };
    Ok((url, database))
}

/// Booleans are stored as 0/1.
pub(crate) fn flag(b: bool) -> i64 {
    i64::from(b)
}
