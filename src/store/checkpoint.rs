//! SQLite WAL checkpoints on a connection of their own, so that the ingest
//! writer's commits only append to the log and never copy pages back.
//!
//! By default every SQLite connection checkpoints when its commit finds the
//! log over 1,000 pages; the commit that does it waits for the page copies and
//! the fsyncs. The ingest worker turns that off for its connections (see
//! [`super::Store::connect_as_ingest_writer`]) and this task does the work
//! instead, on another thread, while ingest goes on.

use std::time::Duration;

use sqlx::Row;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::{Backend, Conn, Store, StoreError};
use crate::config::StoreSettings;

/// How often the log is checkpointed while mail comes in.
const INTERVAL: Duration = Duration::from_millis(50);
/// A log longer than this (about 400 MiB) is checkpointed in full and
/// restarted even if that makes the writer wait: the writer's own
/// [`catch_up`] calls failed to let it restart.
const RESTART_AFTER_FRAMES: i64 = 100_000;

/// The running checkpoint task; [`Checkpointer::stop`] ends it.
pub struct Checkpointer {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Checkpointer {
    /// Starts checkpointing the SQLite file of `settings` from the current
    /// runtime. `None` for PostgreSQL and in-memory databases, which have no log.
    pub async fn start(settings: &StoreSettings) -> Result<Option<Checkpointer>, StoreError> {
        let url = settings.url.trim();
        if Backend::of_url(url) != Backend::Sqlite || url.contains(":memory:") {
            return Ok(None);
        }
        let store = Store::connect(&StoreSettings {
            max_connections: 1,
            ..settings.clone()
        })
        .await?;
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(store, stop.clone()));
        Ok(Some(Checkpointer { stop, task }))
    }

    /// Ends the task after its checkpoint in progress; the last connection to
    /// close checkpoints whatever is left.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

async fn run(store: Store, stop: CancellationToken) {
    let mut failing = false;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(INTERVAL) => {}
            _ = stop.cancelled() => break,
        }
        match checkpoint(&store).await {
            Ok(()) => failing = false,
            Err(e) if !failing => {
                warn!(error = %e, "WAL checkpoint failed; will retry");
                failing = true;
            }
            Err(_) => {}
        }
    }
    store.close().await;
}

/// One pass: copy what the log holds back into the database without stopping
/// the writer.
async fn checkpoint(store: &Store) -> Result<(), StoreError> {
    let mut conn = store.conn().await?;
    let (_, log_frames, _) = passive(&mut conn).await?;
    if log_frames >= RESTART_AFTER_FRAMES {
        warn!(log_frames, "the WAL has grown long: restarting it");
        sqlx::query("PRAGMA wal_checkpoint(RESTART)")
            .fetch_one(&mut *conn)
            .await?;
    }
    Ok(())
}

/// For the writer, between two transactions: copies back the little the
/// checkpointer has not, so that the next transaction starts the log from
/// its beginning again. While a writer keeps committing, the checkpointer
/// alone never catches up, and the log would only grow. Returns false when
/// that did not happen (the checkpointer was busy, or a reader still needs
/// the log): the writer should try again soon.
pub async fn catch_up(conn: &mut Conn) -> Result<bool, StoreError> {
    let (busy, log_frames, checkpointed) = passive(conn).await?;
    debug!(busy, log_frames, checkpointed, "WAL catch-up");
    Ok(!busy && checkpointed >= log_frames)
}

/// `PRAGMA wal_checkpoint(PASSIVE)`: whether another checkpoint was in the
/// way, the frames in the log and how many of them are copied back.
async fn passive(conn: &mut Conn) -> Result<(bool, i64, i64), StoreError> {
    let row = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(&mut *conn)
        .await?;
    Ok((
        row.try_get::<i64, _>(0)? != 0,
        row.try_get(1)?,
        row.try_get(2)?,
    ))
}
