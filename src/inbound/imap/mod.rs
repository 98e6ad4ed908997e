//! An IMAP mailbox as a source: fetch in batches, hand each message to the ingest
//! worker, acknowledge (\Seen + move to the processed folder) only after commit,
//! then IDLE or poll; reconnect with backoff whatever goes wrong.

pub mod connect;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_imap::extensions::idle::IdleResponse;
use futures::TryStreamExt;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::config::{DaemonSettings, ImapSettings};
use crate::ingest::worker::IngestWorker;
use crate::ingest::{IngestError, kept_of_oversized};
use crate::mail::RawMessage;
use crate::outage::Outage;
use crate::store::mailboxes::{self, Cursor};
use crate::store::{Store, StoreError, now};
use connect::{ConnectError, ImapSession};

#[derive(Debug, thiserror::Error)]
enum SourceError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("IMAP: {0}")]
    Imap(#[from] async_imap::error::Error),
    #[error("the store is unavailable: {0}")]
    Store(#[from] StoreError),
    #[error("messages stay in the mailbox: {0}")]
    Ingest(IngestError),
}

/// What the source needs to run.
pub struct ImapSource {
    pub settings: ImapSettings,
    pub daemon: DaemonSettings,
    /// `limits.max_message_bytes`: past it only a message's beginning is fetched.
    pub max_message_bytes: u64,
    pub worker: Arc<IngestWorker>,
    pub store: Store,
    pub shutdown: CancellationToken,
}

/// The IMAP flags and commands a server offers that change how we acknowledge.
#[derive(Debug, Clone, Copy)]
struct Capabilities {
    idle: bool,
    r#move: bool,
    uidplus: bool,
}

impl ImapSource {
    /// Runs until shutdown: never returns because a server is down.
    pub async fn run(self) {
        let label = self.settings.label();
        let span = info_span!("imap", source = %label, mailbox = %self.settings.mailbox);
        async {
            let mut outage = Outage::new(
                Duration::from_millis(500),
                Duration::from_secs(self.daemon.reconnect_max_secs.max(1)),
            );
            while !self.shutdown.is_cancelled() {
                let started = Instant::now();
                let delay = match self.session(&mut outage).await {
                    Ok(()) => break,
                    Err(SourceError::Connect(e @ ConnectError::Auth { .. })) => {
                        let wait = Duration::from_secs(self.daemon.auth_failure_backoff_secs);
                        outage.failed_waiting(
                            &format!("{e}; check the user and password (or token) of this [[imap]] source"),
                            wait,
                        );
                        wait
                    }
                    Err(e) => {
                        if started.elapsed() > Duration::from_secs(60) {
                            outage.restart_backoff();
                        }
                        outage.failed(&e.to_string())
                    }
                };
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = self.shutdown.cancelled() => break,
                }
            }
            info!("stopped");
        }
        .instrument(span)
        .await
    }

    /// One connection: process what is pending, wait for more, until shutdown or an error.
    async fn session(&self, outage: &mut Outage) -> Result<(), SourceError> {
        let timeout = Duration::from_secs(self.daemon.connect_timeout_secs.max(1));
        let mut session = connect::open(&self.settings, timeout).await?;
        let caps = session.capabilities().await?;
        let caps = Capabilities {
            idle: caps.has_str("IDLE"),
            r#move: caps.has_str("MOVE"),
            uidplus: caps.has_str("UIDPLUS"),
        };
        info!(idle = caps.idle, r#move = caps.r#move, "connected");
        ensure_folder(&mut session, &self.settings.processed_folder).await?;
        loop {
            let mailbox = session.select(&self.settings.mailbox).await?;
            let uidvalidity = mailbox.uid_validity.unwrap_or(0);
            let processed = self
                .process_pending(&mut session, uidvalidity, caps)
                .await?;
            outage.recovered();
            if self.shutdown.is_cancelled() {
                break;
            }
            // Mail that came while we worked was announced (EXISTS) in the replies to our
            // commands, and IDLE would not announce it again: look again before idling
            // (the announcement itself may have been dropped from the full channel).
            let announced = new_mail_announced(|| session.unsolicited_responses.try_recv().ok());
            if processed > 0 || announced {
                continue;
            }
            if caps.idle {
                match self.idle(session).await? {
                    Some(s) => session = s,
                    None => return Ok(()),
                }
            } else {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(self.daemon.poll_interval_secs)) => {}
                    _ = self.shutdown.cancelled() => break,
                }
            }
        }
        logout(session).await;
        Ok(())
    }

    /// Waits in IDLE for new mail, the renewal timeout or shutdown. Returns the
    /// session to go on with, or `None` after logging out for shutdown.
    async fn idle(&self, session: ImapSession) -> Result<Option<ImapSession>, SourceError> {
        let unsolicited = session.unsolicited_responses.clone();
        let mut handle = session.idle();
        handle.init().await?;
        // An EXISTS sent before the server's `+ idling` went to the unsolicited channel.
        let announced = new_mail_announced(|| unsolicited.try_recv().ok());
        let stopping = if announced {
            debug!("new mail announced");
            false
        } else {
            // Dropping `_stop` would end IDLE at once, so it lives as long as the wait.
            let (wait, _stop) =
                handle.wait_with_timeout(Duration::from_secs(self.daemon.idle_timeout_secs));
            tokio::select! {
                response = wait => {
                    if let IdleResponse::NewData(_) = response? {
                        debug!("new mail announced");
                    }
                    false
                }
                _ = self.shutdown.cancelled() => true,
            }
        };
        let session = handle.done().await?;
        if stopping {
            logout(session).await;
            return Ok(None);
        }
        Ok(Some(session))
    }

    /// Everything in the mailbox above the cursor, in batches, oldest first.
    async fn process_pending(
        &self,
        session: &mut ImapSession,
        uidvalidity: u32,
        caps: Capabilities,
    ) -> Result<usize, SourceError> {
        let label = self.settings.label();
        let mailbox = &self.settings.mailbox;
        let saved = {
            let mut conn = self.store.conn().await?;
            mailboxes::cursor(&mut conn, &label, mailbox).await?
        };
        let cursor = match saved {
            Some(c) if c.uidvalidity == uidvalidity => c,
            Some(c) => {
                warn!(
                    old = c.uidvalidity,
                    new = uidvalidity,
                    "UIDVALIDITY changed: reading the whole mailbox again (messages seen before are recognized)"
                );
                Cursor {
                    uidvalidity,
                    last_uid: 0,
                }
            }
            None => Cursor {
                uidvalidity,
                last_uid: 0,
            },
        };
        let mut cursor = SavedCursor {
            current: cursor,
            // A cursor reset by a new UIDVALIDITY is written once anything is processed.
            saved: saved.unwrap_or(cursor),
            saved_at: Instant::now(),
        };
        let mut uids: Vec<u32> = session
            .uid_search(format!(
                "UID {}:*",
                cursor.current.last_uid.saturating_add(1)
            ))
            .await?
            .into_iter()
            .filter(|uid| *uid > cursor.current.last_uid)
            .collect();
        uids.sort_unstable();
        if !uids.is_empty() {
            info!(pending = uids.len(), "messages to process");
        }
        let batches: Vec<&[u32]> = uids
            .chunks(self.daemon.fetch_batch.max(1) as usize)
            .collect();
        let mut processed = 0;
        let mut current = match batches.first() {
            Some(first) => Some(fetch(session, first, self.max_message_bytes).await?),
            None => None,
        };
        // The batch whose results are known but not yet acknowledged to the server.
        let mut unsettled: Option<(&[u32], BatchOutcome)> = None;
        let mut index = 0;
        while let Some(messages) = current.take() {
            let prefetch = batches
                .get(index + 1)
                .filter(|_| !self.shutdown.is_cancelled());
            // The ingest worker takes this batch while the connection acknowledges the
            // previous one and fetches the next: the server, the network and the store
            // work at the same time instead of in turn. Batches are still acknowledged,
            // and the cursor moved, in order and only after commit.
            let (outcome, io) = tokio::join!(self.ingest_batch(&messages), async {
                let fetch_next = async {
                    match prefetch {
                        Some(next) => fetch(session, next, self.max_message_bytes).await.map(Some),
                        None => Ok(None),
                    }
                };
                let Some((batch, outcome)) = unsettled.take() else {
                    return fetch_next.await;
                };
                // The log is synced while the next batch is fetched; the
                // acknowledgement waits for the sync.
                let (synced, next) = tokio::join!(self.sync(&outcome), fetch_next);
                synced?;
                let next = next?;
                let settled = Settled {
                    batch,
                    outcome: &outcome,
                    last: false,
                };
                self.settle(session, &mut cursor, caps, settled).await?;
                Ok(next)
            });
            drop(messages);
            processed += outcome.committed.len();
            let batch = batches[index];
            match io {
                Ok(next) => current = next,
                Err(e) => return Err(e),
            }
            if outcome.failure.is_some() || current.is_none() || self.shutdown.is_cancelled() {
                self.sync(&outcome).await?;
                let settled = Settled {
                    batch,
                    outcome: &outcome,
                    last: true,
                };
                self.settle(session, &mut cursor, caps, settled).await?;
                if let Some(e) = outcome.failure {
                    return Err(SourceError::Ingest(e));
                }
                break;
            }
            unsettled = Some((batch, outcome));
            index += 1;
        }
        Ok(processed)
    }

    /// Makes the commits of a batch durable before it is acknowledged (see
    /// [`IngestWorker::sync`]); on a failure nothing of the batch may be.
    async fn sync(&self, outcome: &BatchOutcome) -> Result<(), SourceError> {
        if outcome.committed.is_empty() {
            return Ok(());
        }
        self.worker.sync().await.map_err(SourceError::Ingest)
    }

    /// Acknowledges the committed messages of a batch, which [`Self::sync`]
    /// made durable, then moves the cursor over
    /// the part of the batch that is committed without a gap. The cursor is written
    /// at most once a second during a pass and always at its end (`last`): each write
    /// takes the SQLite write lock the ingest worker needs, and a cursor that lags
    /// only means a longer SEARCH (messages above it are moved away or recognized).
    async fn settle(
        &self,
        session: &mut ImapSession,
        cursor: &mut SavedCursor,
        caps: Capabilities,
        settled: Settled<'_>,
    ) -> Result<(), SourceError> {
        let Settled {
            batch,
            outcome,
            last,
        } = settled;
        if !outcome.committed.is_empty() {
            acknowledge(
                session,
                &outcome.committed,
                &self.settings.processed_folder,
                caps,
            )
            .await?;
        }
        if let Some(uid) = outcome.contiguous_through(batch) {
            cursor.current.last_uid = uid;
        }
        if cursor.current != cursor.saved
            && (last || cursor.saved_at.elapsed() >= CURSOR_SAVE_INTERVAL)
        {
            let mut conn = self.store.conn().await?;
            mailboxes::save_cursor(
                &mut conn,
                &self.settings.label(),
                &self.settings.mailbox,
                cursor.current,
                now(),
            )
            .await?;
            cursor.saved = cursor.current;
            cursor.saved_at = Instant::now();
        }
        drain(session);
        Ok(())
    }

    /// Hands a batch to the ingest worker at once and collects the results in order.
    async fn ingest_batch(&self, messages: &[(u32, RawMessage)]) -> BatchOutcome {
        let source = format!("{}/{}", self.settings.label(), self.settings.mailbox);
        let queue = self.settings.queue.as_deref();
        let results = futures::future::join_all(messages.iter().map(|(uid, raw)| {
            let source = &source;
            async move { (*uid, self.worker.ingest_or_hold(raw, source, queue).await) }
                .instrument(info_span!("uid", uid))
        }))
        .await;
        let mut outcome = BatchOutcome::default();
        for (uid, result) in results {
            match result {
                Ok(_) => outcome.committed.push(uid),
                Err(e) => {
                    debug!(uid, error = %e, "message left in the mailbox for the next attempt");
                    outcome.failure.get_or_insert(e);
                }
            }
        }
        outcome
    }
}

/// A batch whose messages were all tried: its UIDs, what became of them, and
/// whether it ends the pass (the cursor is then written whatever the time).
#[derive(Clone, Copy)]
struct Settled<'a> {
    batch: &'a [u32],
    outcome: &'a BatchOutcome,
    last: bool,
}

/// How often, at most, the cursor is written during a pass.
const CURSOR_SAVE_INTERVAL: Duration = Duration::from_secs(1);

/// The cursor as processing moves it, and as last written to the store.
struct SavedCursor {
    current: Cursor,
    saved: Cursor,
    saved_at: Instant,
}

#[derive(Default)]
struct BatchOutcome {
    committed: Vec<u32>,
    failure: Option<IngestError>,
}

impl BatchOutcome {
    /// The highest UID of `batch` up to which every message was committed.
    fn contiguous_through(&self, batch: &[u32]) -> Option<u32> {
        batch
            .iter()
            .take_while(|uid| self.committed.contains(uid))
            .last()
            .copied()
    }
}

/// `BODY.PEEK[]` of a batch, drained completely before the next command.
/// The messages of a batch, with their sizes. The server sends no more than
/// `max_bytes` of any (a partial fetch); of a message over the limit only the
/// first [`kept_of_oversized`] bytes are kept.
async fn fetch(
    session: &mut ImapSession,
    uids: &[u32],
    max_bytes: u64,
) -> Result<Vec<(u32, RawMessage)>, SourceError> {
    let set = uid_set(uids);
    let fetches: Vec<_> = session
        .uid_fetch(
            &set,
            format!("(UID RFC822.SIZE BODY.PEEK[]<0.{max_bytes}>)"),
        )
        .await?
        .try_collect()
        .await?;
    let mut messages: Vec<(u32, RawMessage)> = fetches
        .iter()
        .filter_map(|f| {
            let body = f.body().unwrap_or_default();
            let size = f
                .size
                .map_or(body.len() as u64, u64::from)
                .max(body.len() as u64);
            let raw = if size > max_bytes {
                let kept = body.len().min(kept_of_oversized(max_bytes));
                RawMessage::truncated(body[..kept].to_vec(), size)
            } else {
                RawMessage::whole(body.to_vec())
            };
            Some((f.uid?, raw))
        })
        .collect();
    messages.sort_by_key(|(uid, _)| *uid);
    Ok(messages)
}

/// Flags committed messages \Seen and moves them to the processed folder.
async fn acknowledge(
    session: &mut ImapSession,
    uids: &[u32],
    folder: &str,
    caps: Capabilities,
) -> Result<(), SourceError> {
    let set = uid_set(uids);
    let _: Vec<_> = session
        .uid_store(&set, "+FLAGS.SILENT (\\Seen)")
        .await?
        .try_collect()
        .await?;
    if caps.r#move {
        session.uid_mv(&set, folder).await?;
        return Ok(());
    }
    session.uid_copy(&set, folder).await?;
    let _: Vec<_> = session
        .uid_store(&set, "+FLAGS.SILENT (\\Deleted)")
        .await?
        .try_collect()
        .await?;
    if caps.uidplus {
        let _: Vec<_> = session.uid_expunge(&set).await?.try_collect().await?;
    } else {
        let _: Vec<_> = session.expunge().await?.try_collect().await?;
    }
    Ok(())
}

/// Creates the processed folder unless it exists.
async fn ensure_folder(session: &mut ImapSession, folder: &str) -> Result<(), SourceError> {
    let existing: Vec<_> = session
        .list(None, Some(folder))
        .await?
        .try_collect()
        .await?;
    if existing.is_empty() {
        session.create(folder).await?;
        info!(folder, "created the processed folder");
    }
    Ok(())
}

/// Empties the channel of unsolicited responses (EXPUNGE after MOVE, EXISTS…):
/// it holds 100 and we act on the mailbox state ourselves.
fn drain(session: &ImapSession) {
    while session.unsolicited_responses.try_recv().is_ok() {}
}

type Unsolicited = async_imap::types::UnsolicitedResponse;

/// Empties the channel of unsolicited responses; whether any announced new mail
/// (EXISTS or RECENT), which the server reports only once.
fn new_mail_announced(mut next: impl FnMut() -> Option<Unsolicited>) -> bool {
    let mut announced = false;
    while let Some(response) = next() {
        if matches!(response, Unsolicited::Exists(_) | Unsolicited::Recent(_)) {
            announced = true;
        }
    }
    announced
}

async fn logout(mut session: ImapSession) {
    let _ = tokio::time::timeout(Duration::from_secs(2), session.logout()).await;
}

/// `1:3,7,9:10` for a sorted list of UIDs.
fn uid_set(uids: &[u32]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && uids[i + 1] == end + 1 {
            i += 1;
            end = uids[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}:{end}")
        });
        i += 1;
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets_collapse_runs() {
        assert_eq!(uid_set(&[1, 2, 3, 7, 9, 10]), "1:3,7,9:10");
        assert_eq!(uid_set(&[5]), "5");
        assert_eq!(uid_set(&[]), "");
    }

    #[test]
    fn cursor_stops_at_the_first_uncommitted_message() {
        let outcome = BatchOutcome {
            committed: vec![1, 2, 4],
            failure: None,
        };
        assert_eq!(outcome.contiguous_through(&[1, 2, 3, 4]), Some(2));
        assert_eq!(outcome.contiguous_through(&[3, 4]), None);
    }
}
