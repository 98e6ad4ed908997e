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

use tokio::sync::{Notify, mpsc, oneshot};
use tracing::Instrument;

use super::{IngestError, Pipeline, Report};
use crate::config::Settings;
use crate::store::{Backend, Store, StoreError};

/// A job for the worker, with the caller's tracing span so that the
/// message's log lines carry the source, mailbox and UID it came from.
struct Job {
    kind: JobKind,
    span: tracing::Span,
}

enum JobKind {
    Ingest {
        raw: Vec<u8>,
        source: String,
        queue: Option<String>,
        reply: oneshot::Sender<Result<Report, IngestError>>,
    },
    Release {
        held_id: i64,
        reply: oneshot::Sender<Result<Report, IngestError>>,
    },
    Hold {
        raw: Vec<u8>,
        source: String,
        queue: Option<String>,
        reason: String,
        reply: oneshot::Sender<Result<Report, IngestError>>,
    },
}

/// A handle to the ingest thread. Dropping every handle (or calling
/// [`IngestWorker::shutdown`]) lets the thread finish its message and close the store.
pub struct IngestWorker {
    jobs: mpsc::Sender<Job>,
    thread: Option<JoinHandle<()>>,
}

impl IngestWorker {
    /// Starts the thread, opens the store there and prepares the pipeline.
    /// `committed` is woken after every job, so the outbox sender sends what it queued.
    pub async fn start(
        settings: Arc<Settings>,
        committed: Option<Arc<Notify>>,
    ) -> Result<IngestWorker, IngestError> {
        let (jobs, mut queue) = mpsc::channel::<Job>(16);
        let (ready_tx, ready_rx) = oneshot::channel::<Result<(), IngestError>>();
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
                    let store = match open(&settings).await {
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
                    let _ = ready_tx.send(Ok(()));
                    while let Some(Job { kind, span }) = queue.recv().await {
                        run_job(&pipeline, kind).instrument(span).await;
                        if let Some(wake) = &committed {
                            wake.notify_one();
                        }
                    }
                    drop(pipeline);
                    store.close().await;
                });
            })
            .map_err(|e| StoreError::Setup(format!("cannot start the ingest thread: {e}")))?;
        match ready_rx.await {
            Ok(Ok(())) => Ok(IngestWorker {
                jobs,
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                Err(StoreError::Setup("the ingest thread stopped while starting".into()).into())
            }
        }
    }

    /// Processes one message (see [`Pipeline::ingest`]).
    pub async fn ingest(
        &self,
        raw: Vec<u8>,
        source: &str,
        queue: Option<&str>,
    ) -> Result<Report, IngestError> {
        let (reply, answer) = oneshot::channel();
        let job = JobKind::Ingest {
            raw,
            source: source.to_string(),
            queue: queue.map(str::to_string),
            reply,
        };
        self.send(job, answer).await
    }

    /// Releases a held message (see [`Pipeline::release`]).
    pub async fn release(&self, held_id: i64) -> Result<Report, IngestError> {
        let (reply, answer) = oneshot::channel();
        self.send(JobKind::Release { held_id, reply }, answer).await
    }

    /// Keeps input that cannot be processed as a held message (see [`Pipeline::hold_unprocessable`]).
    pub async fn hold_unprocessable(
        &self,
        raw: Vec<u8>,
        source: &str,
        queue: Option<&str>,
        reason: &str,
    ) -> Result<Report, IngestError> {
        let (reply, answer) = oneshot::channel();
        let job = JobKind::Hold {
            raw,
            source: source.to_string(),
            queue: queue.map(str::to_string),
            reason: reason.to_string(),
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
        drop(self);
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

async fn run_job(pipeline: &Pipeline, kind: JobKind) {
    match kind {
        JobKind::Ingest {
            raw,
            source,
            queue,
            reply,
        } => {
            let _ = reply.send(pipeline.ingest(&raw, &source, queue.as_deref()).await);
        }
        JobKind::Release { held_id, reply } => {
            let _ = reply.send(pipeline.release(held_id).await);
        }
        JobKind::Hold {
            raw,
            source,
            queue,
            reason,
            reply,
        } => {
            let held = pipeline
                .hold_unprocessable(&raw, &source, queue.as_deref(), &reason)
                .await;
            let _ = reply.send(held);
        }
    }
}

async fn open(settings: &Settings) -> Result<Store, StoreError> {
    // Before connecting: each connection's thread is started by `connect`.
    if Backend::of_url(&settings.store.url) == Backend::Sqlite {
        pin_to_one_core();
    }
    Store::open(&settings.store).await
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
