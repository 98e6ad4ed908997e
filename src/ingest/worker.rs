//! The ingest worker: one thread that owns the pipeline, fed messages over a channel.
//!
//! sqlx runs every SQLite connection on a thread of its own and hands each
//! statement across. Measured on a 2-core VM, a hand-off to a thread on the
//! other core costs about 80 µs and one on the same core about 10 µs, and a
//! message takes some ten statements. So for SQLite the worker thread is
//! pinned to one core before it opens its connections (whose threads inherit
//! the pinning): ingest runs 2–3 times faster. Sources (IMAP, Maildir) stay on
//! the main runtime and send whole messages here, one hand-off per message.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, mpsc, oneshot};
use tracing::Instrument;

use super::decide::HoldCode;
use super::{IngestError, Pipeline, Read, Report, read_within};
use crate::config::Settings;
use crate::mail::{InboundMail, RawMessage};
use crate::store::checkpoint::Checkpointer;
use crate::store::durable::Durability;
use crate::store::{Backend, Store, StoreError};

/// Messages between two WAL catch-ups by the ingest thread (some 3,000 log
/// pages: the log stays around 12 MiB). One that does not succeed is tried
/// again after the next message.
const CATCH_UP_EVERY: u64 = 200;

/// Messages larger than this wait for a reading permit (one per core).
const READ_ALONE_OVER: usize = 1024 * 1024;

/// A job for the worker, with the caller's tracing span so that the
/// message's log lines carry the source, mailbox and UID it came from.
struct Job {
    kind: JobKind,
    span: tracing::Span,
}

enum JobKind {
    Ingest {
        raw: Arc<RawMessage>,
        mail: Box<InboundMail>,
        source: String,
        queue: Option<String>,
        reply: oneshot::Sender<Result<Report, IngestError>>,
    },
    Hold {
        raw: Arc<RawMessage>,
        source: String,
        queue: Option<String>,
        code: HoldCode,
        reason: String,
        reply: oneshot::Sender<Result<Report, IngestError>>,
    },
}

/// A handle to the ingest thread. Dropping every handle (or calling
/// [`IngestWorker::shutdown`]) lets the thread finish its message and close the store.
pub struct IngestWorker {
    jobs: mpsc::Sender<Job>,
    max_message_bytes: u64,
    /// How long reading one message may take (`limits.message_budget_secs`).
    budget: Duration,
    /// Messages read at once: one per core, so a batch of large messages is
    /// not in memory parsed all together.
    reading: Arc<Semaphore>,
    thread: Option<JoinHandle<()>>,
    /// SQLite: checkpoints the WAL on the caller's runtime, off the ingest thread.
    checkpointer: Option<Checkpointer>,
    /// The pipeline's commits, made durable by [`IngestWorker::sync`].
    durability: Durability,
}

impl IngestWorker {
    /// Starts the thread, opens the store there and prepares the pipeline.
    /// `committed` is woken after every job, so the outbox sender sends what it queued.
    pub async fn start(
        settings: Arc<Settings>,
        committed: Option<Arc<Notify>>,
    ) -> Result<IngestWorker, IngestError> {
        let max_message_bytes = settings.limits.max_message_bytes;
        let budget = Duration::from_secs(settings.limits.message_budget_secs.max(1));
        let checkpointer = Checkpointer::start(&settings.store).await?;
        let deferred_checkpoints = checkpointer.is_some();
        let (jobs, mut queue) = mpsc::channel::<Job>(16);
        let (ready_tx, ready_rx) = oneshot::channel::<Result<Durability, IngestError>>();
        let thread = std::thread::Builder::new()
            .name("ticketd-ingest".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(StoreError::Setup(format!(
                            "cannot start the ingest thread: {e}"
                        ))
                        .into()));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let store = match open(&settings, deferred_checkpoints).await {
                        Ok(store) => store,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.into()));
                            return;
                        }
                    };
                    let pipeline = match Pipeline::new(store.clone(), settings).await {
                        Ok(p) => p,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(pipeline.durability().clone()));
                    let mut since_catch_up: u64 = 0;
                    while let Some(Job { kind, span }) = queue.recv().await {
                        run_job(&pipeline, kind).instrument(span).await;
                        since_catch_up += 1;
                        if deferred_checkpoints
                            && since_catch_up >= CATCH_UP_EVERY
                            && pipeline.catch_up_checkpoint().await
                        {
                            since_catch_up = 0;
                        }
                        if let Some(wake) = &committed {
                            wake.notify_one();
                        }
                    }
                    drop(pipeline);
                    store.close().await;
                });
            })
            .map_err(|e| StoreError::Setup(format!("cannot start the ingest thread: {e}")))?;
        let failure = match ready_rx.await {
            Ok(Ok(durability)) => {
                let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
                return Ok(IngestWorker {
                    jobs,
                    max_message_bytes,
                    budget,
                    reading: Arc::new(Semaphore::new(cores.clamp(1, 4))),
                    thread: Some(thread),
                    checkpointer,
                    durability,
                });
            }
            Ok(Err(e)) => {
                let _ = thread.join();
                e
            }
            Err(_) => StoreError::Setup("the ingest thread stopped while starting".into()).into(),
        };
        if let Some(checkpointer) = checkpointer {
            checkpointer.stop().await;
        }
        Err(failure)
    }

    /// Processes one message (see [`Pipeline::ingest`]). The message is read
    /// here, on a blocking thread within its budget, while the worker writes
    /// the one before; one that costs too much is held unread.
    pub async fn ingest(
        &self,
        raw: RawMessage,
        source: &str,
        queue: Option<&str>,
    ) -> Result<Report, IngestError> {
        let raw = Arc::new(raw);
        let (reply, answer) = oneshot::channel();
        let read = {
            // Large messages only: small ones are read at once (see `read_within`).
            let _permit = if raw.bytes().len() > READ_ALONE_OVER {
                Some(
                    self.reading
                        .acquire()
                        .await
                        .map_err(|_| IngestError::Stopped)?,
                )
            } else {
                None
            };
            read_within(raw.clone(), self.max_message_bytes, self.budget).await?
        };
        let job = match read {
            Read::Mail(mail) => JobKind::Ingest {
                raw,
                mail,
                source: source.to_string(),
                queue: queue.map(str::to_string),
                reply,
            },
            Read::Hold { code, reason } => JobKind::Hold {
                raw,
                source: source.to_string(),
                queue: queue.map(str::to_string),
                code,
                reason,
                reply,
            },
        };
        self.send(job, answer).await
    }

    /// Makes every message committed so far durable on disk: call it before
    /// acknowledging messages to their source. One sync covers the commits of
    /// every source, so a batch costs about one fsync. On an error nothing of
    /// the batch may be acknowledged (see [`Durability::sync`]).
    pub async fn sync(&self) -> Result<(), IngestError> {
        Ok(self.durability.sync().await?)
    }

    /// Ingests a message from a daemon's source; one that fails for a reason
    /// trying again cannot fix (a bug, not a full disk) is kept as a held
    /// message (`unprocessable`) rather than retried forever. An error is
    /// transient: the source keeps the message and offers it again.
    pub async fn ingest_or_hold(
        &self,
        raw: &RawMessage,
        source: &str,
        queue: Option<&str>,
    ) -> Result<Report, IngestError> {
        match self.ingest(raw.clone(), source, queue).await {
            Err(e) if !e.is_transient() => {
                tracing::error!(error = %e, "cannot process; keeping it as a held message");
                self.hold_unprocessable(raw.clone(), source, queue, &e.to_string())
                    .await
            }
            other => other,
        }
    }

    /// Keeps input that cannot be processed as a held message (see [`Pipeline::hold_unread`]).
    pub async fn hold_unprocessable(
        &self,
        raw: RawMessage,
        source: &str,
        queue: Option<&str>,
        reason: &str,
    ) -> Result<Report, IngestError> {
        let (reply, answer) = oneshot::channel();
        let job = JobKind::Hold {
            raw: Arc::new(raw),
            source: source.to_string(),
            queue: queue.map(str::to_string),
            code: HoldCode::Unprocessable,
            reason: format!("cannot be processed: {reason}"),
            reply,
        };
        self.send(job, answer).await
    }

    async fn send(
        &self,
        kind: JobKind,
        answer: oneshot::Receiver<Result<Report, IngestError>>,
    ) -> Result<Report, IngestError> {
        let job = Job {
            kind,
            span: tracing::Span::current(),
        };
        self.jobs
            .send(job)
            .await
            .map_err(|_| IngestError::Stopped)?;
        answer.await.map_err(|_| IngestError::Stopped)?
    }

    /// Finishes the message in progress, closes the store and ends the thread.
    pub async fn shutdown(mut self) {
        let thread = self.thread.take();
        let checkpointer = self.checkpointer.take();
        drop(self);
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        if let Some(checkpointer) = checkpointer {
            checkpointer.stop().await;
        }
    }
}

async fn run_job(pipeline: &Pipeline, kind: JobKind) {
    match kind {
        JobKind::Ingest {
            raw,
            mail,
            source,
            queue,
            reply,
        } => {
            let report = pipeline
                .ingest_mail(&raw, &mail, &source, queue.as_deref())
                .await;
            let _ = reply.send(report);
        }
        JobKind::Hold {
            raw,
            source,
            queue,
            code,
            reason,
            reply,
        } => {
            let held = pipeline
                .hold_unread(&raw, &source, queue.as_deref(), code, &reason)
                .await;
            let _ = reply.send(held);
        }
    }
}

async fn open(settings: &Settings, deferred_checkpoints: bool) -> Result<Store, StoreError> {
    // Before connecting: each connection's thread is started by `connect`.
    if Backend::of_url(&settings.store.url) == Backend::Sqlite {
        pin_to_one_core();
    }
    let store = if deferred_checkpoints {
        Store::connect_as_ingest_writer(&settings.store).await?
    } else {
        Store::connect(&settings.store).await?
    };
    store.migrate().await?;
    Ok(store)
}

/// Pins the current thread to the last core; threads it starts inherit this.
fn pin_to_one_core() {
    let Some(cores) = core_affinity::get_core_ids() else {
        return;
    };
    if cores.len() > 1
        && let Some(core) = cores.last()
    {
        let pinned = core_affinity::set_for_current(*core);
        tracing::debug!(core = core.id, pinned, "ingest thread pinned for SQLite");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(i: usize) -> Vec<u8> {
        let first = i - i % 2;
        let threading = if i % 2 == 1 {
            format!("In-Reply-To: <m{first}@test.example>\r\n")
        } else {
            String::new()
        };
        format!(
            "From: Customer <customer{}@org.example>\r\nTo: support@example.com\r\n\
             Subject: Printer problem {first}\r\nMessage-ID: <m{i}@test.example>\r\n{threading}\r\n\
             The printer on floor {} is broken.\r\n",
            first % 50,
            i % 7
        )
        .into_bytes()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_stays_short_while_a_backlog_is_ingested() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("ticketd.db");
        let vars = vec![
            (
                "TICKETD__STORE__URL".to_string(),
                format!("sqlite://{}", db.display()),
            ),
            (
                "TICKETD__DATA__DIR".to_string(),
                dir.path().join("data").display().to_string(),
            ),
        ];
        let settings = Arc::new(Settings::load_with_env(None, &vars).expect("settings"));
        let worker = IngestWorker::start(settings, None).await.expect("worker");
        let wal = dir.path().join("ticketd.db-wal");
        let mut longest = 0;
        // Some 12 log pages a message: without the catch-ups the log would pass 45 MiB.
        for batch in (0..1_000).collect::<Vec<_>>().chunks(50) {
            let results = futures::future::join_all(
                batch
                    .iter()
                    .map(|i| worker.ingest(RawMessage::whole(message(*i)), "test", None)),
            )
            .await;
            for result in results {
                result.expect("ingested");
            }
            longest = longest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
        }
        worker.shutdown().await;
        assert!(longest > 0, "the store runs in WAL mode");
        assert!(
            longest < 20 * 1024 * 1024,
            "the log grew to {longest} bytes"
        );
    }
}
