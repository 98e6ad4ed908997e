//! The ingest pipeline's one writing connection, kept between messages.
//!
//! Keeping one connection (rather than taking any from the pool) keeps
//! SQLite's page cache warm from one message to the next. It is dropped, and
//! the next use opens another, when it may be broken: after a transient error,
//! when a failed COMMIT left the driver believing a transaction is still open
//! (every later BEGIN would fail), or after a failed sync (see
//! [`super::durable`]).

use sqlx::Any;
use sqlx::pool::PoolConnection;

use super::{Conn, Store, StoreError};

/// The kept connection; one user at a time.
#[derive(Debug)]
pub struct Writer {
    store: Store,
    slot: tokio::sync::Mutex<Option<PoolConnection<Any>>>,
}

/// The connection, lent until [`Writing::finish`] gives it back.
pub struct Writing<'w> {
    slot: tokio::sync::MutexGuard<'w, Option<PoolConnection<Any>>>,
    conn: PoolConnection<Any>,
}

impl Writer {
    /// A writer on `store`; its connection is opened on first use.
    pub fn new(store: Store) -> Writer {
        Writer {
            store,
            slot: tokio::sync::Mutex::new(None),
        }
    }

    /// Waits for the connection and lends it; with `reopen` (after a failed
    /// sync) the kept one is closed and a new one opened.
    pub async fn lock(&self, reopen: bool) -> Result<Writing<'_>, StoreError> {
        let mut slot = self.slot.lock().await;
        if reopen && let Some(mut stale) = slot.take() {
            stale.close_on_drop();
        }
        let conn = match slot.take() {
            Some(conn) => conn,
            None => self.store.conn().await?,
        };
        Ok(Writing { slot, conn })
    }
}

impl Writing<'_> {
    /// The connection to write through.
    pub fn conn(&mut self) -> &mut Conn {
        &mut self.conn
    }

    /// Keeps the connection for the next use, unless `suspect` (the work
    /// failed in a way that may have broken it) or it is still inside a
    /// transaction: then it is closed and the next use opens another.
    pub fn finish(mut self, suspect: bool) {
        use sqlx::Connection;
        if suspect || self.conn.is_in_transaction() {
            self.conn.close_on_drop();
        } else {
            *self.slot = Some(self.conn);
        }
    }
}
