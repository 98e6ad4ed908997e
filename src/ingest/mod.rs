//! The inbound pipeline: raw bytes → parse → classify → identify → route → thread → decide → apply,
//! in one transaction per message.

pub mod admin;
pub mod apply;
pub mod bounce;
pub mod commands;
pub mod decide;
#[cfg(feature = "dkim")]
pub mod dkim;
pub mod identify;
pub mod import;
pub mod route;
pub mod service;
pub mod thread;
pub mod verify;
pub mod worker;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tracing::{Instrument, info_span};

use crate::blobs::BlobStore;
use crate::config::{Role, Settings};
use crate::mail::classify::classify;
use crate::mail::parse::{NotAMessage, check_is_message, parse_headers_only};
use crate::mail::{Classification, InboundMail, RawMessage, parse};
use crate::store::intake::{self, NewRaw};
use crate::store::queues::Queue;

use crate::mail::tag::SubjectTag;
use crate::notify::{Notifier, People};
use crate::store::durable::Durability;
use crate::store::tickets::Priority;
use crate::store::writer::Writer;
use crate::store::{Conn, Store, StoreError, checkpoint, directory, now, secrets};
pub use apply::Release;
use decide::{AgentCheck, Context, HoldCode, Sender};
use service::TicketService;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Created,
    Appended,
    Duplicate,
    Held,
    Ignored,
}

impl Outcome {
    /// The name in `ingest --json` reports and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Appended => "appended",
            Outcome::Duplicate => "duplicate",
            Outcome::Held => "held",
            Outcome::Ignored => "ignored",
        }
    }
}

/// What happened to one message.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub outcome: Outcome,
    pub ticket: Option<i64>,
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_id: Option<i64>,
}

impl Report {
    /// A report of `outcome`, on `ticket` when there is one, with a `reason` to show.
    pub fn new(outcome: Outcome, ticket: Option<i64>, reason: Option<String>) -> Report {
        Report {
            outcome,
            ticket,
            reason,
            held_id: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("not an email message: {0}")]
    NotAMessage(#[from] NotAMessage),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot store an attachment: {0}")]
    Files(#[source] std::io::Error),
    #[error("{0}")]
    Invalid(String),
    #[error("the ingest worker has stopped")]
    Stopped,
    #[error(transparent)]
    Templates(#[from] crate::notify::templates::TemplateError),
}

impl From<crate::notify::OpenError> for IngestError {
    fn from(e: crate::notify::OpenError) -> Self {
        match e {
            crate::notify::OpenError::Store(e) => IngestError::Store(e),
            crate::notify::OpenError::Templates(e) => IngestError::Templates(e),
            crate::notify::OpenError::Secret(e) => IngestError::Invalid(e.to_string()),
        }
    }
}

impl From<service::ServiceError> for IngestError {
    fn from(e: service::ServiceError) -> Self {
        match e {
            service::ServiceError::Refused(reason) => IngestError::Invalid(reason),
            service::ServiceError::Store(e) => IngestError::Store(e),
            service::ServiceError::Files(e) => IngestError::Files(e),
        }
    }
}

impl IngestError {
    /// True when the same message may succeed later (the store was unavailable).
    pub fn is_transient(&self) -> bool {
        match self {
            IngestError::Store(e) => e.is_transient(),
            IngestError::Files(_) | IngestError::Stopped => true,
            _ => false,
        }
    }
}

/// Raw messages larger than this are kept in a file of the data directory, not in their row.
pub const RAW_IN_ROW_MAX: usize = 256 * 1024;
/// Of a message over the size limit, the beginning a source reads and keeps
/// (its headers and first part); it reads no further.
pub const KEPT_OF_OVERSIZED: usize = 256 * 1024;

/// How much of a message over `max_bytes` every source keeps: the same
/// beginning whatever the source, so that the same message is recognized.
pub fn kept_of_oversized(max_bytes: u64) -> usize {
    usize::try_from(max_bytes)
        .unwrap_or(usize::MAX)
        .min(KEPT_OF_OVERSIZED)
}

/// Reads raw input as the pipeline sees it: refuses what is no message at all,
/// and parses only the headers of a message over `max_bytes` (it will be held).
pub fn read_message(raw: &RawMessage, max_bytes: u64) -> Result<InboundMail, NotAMessage> {
    check_is_message(raw.bytes())?;
    let mut mail = if raw.size() > max_bytes {
        parse_headers_only(raw.bytes())
    } else {
        parse(raw.bytes())
    };
    mail.size = usize::try_from(raw.size()).unwrap_or(usize::MAX);
    if raw.is_truncated() {
        mail.sha256 = raw.sha256();
    }
    Ok(mail)
}

/// Reads one message from `reader`, keeping no more than the size limit in
/// memory: a message over `max_bytes` is kept as its first
/// [`kept_of_oversized`] bytes and its size, the rest read and dropped (a pipe
/// must be drained, or the MTA sees an error).
pub fn read_up_to(mut reader: impl std::io::Read, max_bytes: u64) -> std::io::Result<RawMessage> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    (&mut reader)
        .take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 <= max_bytes {
        return Ok(RawMessage::whole(bytes));
    }
    let mut size = bytes.len() as u64;
    bytes.truncate(kept_of_oversized(max_bytes));
    bytes.shrink_to_fit();
    size += std::io::copy(&mut reader, &mut std::io::sink())?;
    Ok(RawMessage::truncated(bytes, size))
}

/// The raw message recorded under `sha256`: from its row, or from its file
/// in `raw_files` (see [`BlobStore::raw_messages`]).
pub async fn load_raw(
    conn: &mut Conn,
    raw_files: &BlobStore,
    sha256: &str,
) -> Result<Option<RawMessage>, IngestError> {
    let Some(stored) = intake::raw_message(conn, sha256).await? else {
        return Ok(None);
    };
    let bytes = if stored.in_file {
        raw_files.get(sha256).await.map_err(IngestError::Files)?
    } else {
        stored.bytes
    };
    Ok(Some(if stored.truncated {
        RawMessage::truncated(bytes, stored.size)
    } else {
        RawMessage::whole(bytes)
    }))
}

/// How reading a message within its budget ended.
pub enum Read {
    Mail(Box<InboundMail>),
    /// It is kept unread, held with this code and reason.
    Hold {
        code: HoldCode,
        reason: String,
    },
}

/// Reads a message ([`read_message`]) on a blocking thread, giving up after
/// `budget`: a message that takes longer is held as `too_costly` and the
/// source goes on. (The thread cannot be stopped; it finishes on its own.)
/// Small messages are read on the caller's thread (see `READ_INLINE_MAX`).
pub async fn read_within(
    raw: Arc<RawMessage>,
    max_bytes: u64,
    budget: Duration,
) -> Result<Read, NotAMessage> {
    read_with(raw, budget, move |raw| read_message(raw, max_bytes)).await
}

/// Messages up to this size are read on the caller's thread: every step of
/// reading is linear and bounded, so they cannot come near the budget, and a
/// thread hop per message would cost ordinary mail a fifth of its speed.
const READ_INLINE_MAX: usize = 64 * 1024;

/// [`read_within`] with the reading given (a slow one, in tests).
async fn read_with(
    raw: Arc<RawMessage>,
    budget: Duration,
    read: impl FnOnce(&RawMessage) -> Result<InboundMail, NotAMessage> + Send + 'static,
) -> Result<Read, NotAMessage> {
    if raw.bytes().len() <= READ_INLINE_MAX {
        return match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read(&raw))) {
            Ok(read) => read.map(|mail| Read::Mail(Box::new(mail))),
            Err(_) => Ok(Read::Hold {
                code: HoldCode::Unprocessable,
                reason: "cannot be processed: reading it failed (a panic)".into(),
            }),
        };
    }
    let reading = tokio::task::spawn_blocking(move || read(&raw));
    match tokio::time::timeout(budget, reading).await {
        Ok(Ok(Ok(mail))) => Ok(Read::Mail(Box::new(mail))),
        Ok(Ok(Err(not_a_message))) => Err(not_a_message),
        Ok(Err(failed)) => Ok(Read::Hold {
            code: HoldCode::Unprocessable,
            reason: format!("cannot be processed: reading it failed ({failed})"),
        }),
        Err(_) => Ok(Read::Hold {
            code: HoldCode::TooCostly,
            reason: format!(
                "reading it took longer than limits.message_budget_secs ({} s); release it \
                 to try again",
                budget.as_secs()
            ),
        }),
    }
}

/// A message's transaction, or the report on a message received before.
enum Fresh<'c> {
    New(sqlx::Transaction<'c, sqlx::Any>),
    Known(Report),
}

/// A message kept unread: the queue it is held in, and why.
#[derive(Clone, Copy)]
struct Unread<'a> {
    queue: &'a Queue,
    code: HoldCode,
    reason: &'a str,
}

/// Everything the pipeline needs, built once and shared by every message.
pub struct Pipeline {
    store: Store,
    settings: Arc<Settings>,
    queues: Vec<Queue>,
    default_queue: usize,
    own_addresses: Vec<String>,
    tag: SubjectTag,
    blobs: BlobStore,
    /// Raw messages too large for their row.
    raw_files: BlobStore,
    notifier: Notifier,
    /// Signs and checks the return paths of our notifications (see [`bounce`]).
    bounce_key: Vec<u8>,
    /// Counts commits and written files for the sources' sync before acknowledging.
    durability: Durability,
    /// Proves mail from an agent's address to be the agent's.
    verifier: verify::Verifier,
    /// The connection this pipeline writes through.
    writer: Writer,
}

impl Pipeline {
    /// Loads the configured queues (writing them only when the configuration
    /// changed), the bounce key and the notification templates. Reads only, so
    /// a message waits for the store's write lock in its own transaction alone.
    pub async fn new(store: Store, settings: Arc<Settings>) -> Result<Pipeline, IngestError> {
        let notifier = Notifier::open(&store, settings.clone()).await?;
        let queues = notifier.queues().to_vec();
        let bounce_key = secrets::bounce_key(&mut *store.conn().await?).await?;
        if let Some(warning) = store.durability_warning().await? {
            tracing::warn!("{warning}");
        }
        let durability = Durability::for_store(&store);
        let default_queue = queues
            .iter()
            .position(|q| q.name == settings.tickets.default_queue)
            .unwrap_or(0);
        Ok(Pipeline {
            notifier,
            own_addresses: settings.own_addresses(),
            tag: SubjectTag::new(&settings.tickets.tag),
            blobs: BlobStore::attachments(&settings.data.dir),
            raw_files: BlobStore::raw_messages(&settings.data.dir),
            bounce_key,
            durability,
            verifier: verify::Verifier::new(&settings.agents),
            writer: Writer::new(store.clone()),
            store,
            settings,
            queues,
            default_queue,
        })
    }

    /// The store this pipeline writes to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// What a source syncs before it acknowledges messages this pipeline committed.
    pub fn durability(&self) -> &Durability {
        &self.durability
    }

    /// The subject tag (`[tickets] tag`) this pipeline threads by.
    pub fn tag(&self) -> &SubjectTag {
        &self.tag
    }

    /// The configured queues, as stored (with their ids).
    pub fn queues(&self) -> &[Queue] {
        &self.queues
    }

    /// Processes one message exactly once. `source` says where it came from
    /// (a file name, `stdin`, `imap:host/INBOX`…) for the record.
    ///
    /// `queue` names the queue of a source dedicated to one (an IMAP mailbox
    /// or Maildir configured with `queue`); without it the recipient picks.
    pub async fn ingest(
        &self,
        raw: RawMessage,
        source: &str,
        queue: Option<&str>,
    ) -> Result<Report, IngestError> {
        let raw = Arc::new(raw);
        let limits = &self.settings.limits;
        let budget = Duration::from_secs(limits.message_budget_secs.max(1));
        match read_within(raw.clone(), limits.max_message_bytes, budget).await? {
            Read::Mail(mail) => self.ingest_mail(&raw, &mail, source, queue).await,
            Read::Hold { code, reason } => {
                self.hold_unread(&raw, source, queue, code, &reason).await
            }
        }
    }

    /// [`Pipeline::ingest`] for a message already read with [`read_message`]
    /// (the ingest worker's callers parse on their own thread).
    pub async fn ingest_mail(
        &self,
        raw: &RawMessage,
        mail: &InboundMail,
        source: &str,
        queue: Option<&str>,
    ) -> Result<Report, IngestError> {
        let forced = match queue {
            Some(name) => Some(
                self.queues
                    .iter()
                    .find(|q| q.name == name)
                    .ok_or_else(|| IngestError::Invalid(format!("no queue named `{name}`")))?,
            ),
            None => None,
        };
        let span = info_span!(
            "message",
            source,
            message_id = mail.message_id.as_deref().unwrap_or(""),
            outcome = tracing::field::Empty,
            ticket = tracing::field::Empty,
        );
        async {
            let report = self.ingest_parsed(raw, mail, source, forced).await?;
            let span = tracing::Span::current();
            span.record("outcome", report.outcome.as_str());
            if let Some(ticket) = report.ticket {
                span.record("ticket", ticket);
            }
            tracing::info!(
                reason = report.reason.as_deref().unwrap_or(""),
                "message processed"
            );
            Ok(report)
        }
        .instrument(span)
        .await
    }

    async fn ingest_parsed(
        &self,
        raw: &RawMessage,
        mail: &InboundMail,
        source: &str,
        forced: Option<&Queue>,
    ) -> Result<Report, IngestError> {
        self.store_large_raw(raw, mail).await?;
        self.write(async |conn| self.ingest_on(conn, raw, mail, source, forced).await)
            .await
    }

    /// Runs `work` on this pipeline's writing connection (see [`Writer`]).
    async fn write<T>(
        &self,
        work: impl AsyncFnOnce(&mut Conn) -> Result<T, IngestError>,
    ) -> Result<T, IngestError> {
        let mut writing = self.writer.lock(self.durability.take_reopen()).await?;
        let result = work(writing.conn()).await;
        writing.finish(result.as_ref().is_err_and(IngestError::is_transient));
        result
    }

    /// Writes a raw message too large for its row to the data directory (and
    /// syncs it), before the transaction that names it.
    async fn store_large_raw(
        &self,
        raw: &RawMessage,
        mail: &InboundMail,
    ) -> Result<(), IngestError> {
        if raw.bytes().len() > RAW_IN_ROW_MAX {
            self.raw_files
                .put(&mail.sha256, raw.bytes())
                .await
                .map_err(IngestError::Files)?;
        }
        Ok(())
    }

    /// Records the raw message (in its row, or named when it is in a file)
    /// unless it is known: false for a message received before.
    async fn record_raw(
        &self,
        conn: &mut Conn,
        raw: &RawMessage,
        mail: &InboundMail,
        source: &str,
    ) -> Result<bool, StoreError> {
        let in_file = raw.bytes().len() > RAW_IN_ROW_MAX;
        intake::record_raw(
            conn,
            &NewRaw {
                sha256: &mail.sha256,
                message_id: mail.message_id.as_deref(),
                from_address: mail.from.as_ref().map(|f| f.address.as_str()).unwrap_or(""),
                bytes: if in_file { &[] } else { raw.bytes() },
                size: raw.size(),
                truncated: raw.is_truncated(),
                in_file,
                source,
            },
            now(),
        )
        .await
    }

    /// The raw message recorded under `sha256`, from its row or its file.
    pub async fn raw_message(
        &self,
        conn: &mut Conn,
        sha256: &str,
    ) -> Result<Option<RawMessage>, IngestError> {
        load_raw(conn, &self.raw_files, sha256).await
    }

    /// Lets the SQLite log restart (see [`checkpoint::catch_up`]); between
    /// messages, on this pipeline's connection. Returns false when it should
    /// be tried again after the next message (the log was busy). A failure
    /// (a full disk) is logged at debug level only, since the checkpointer
    /// reports it once, and counts as done: the next try comes a batch later.
    pub async fn catch_up_checkpoint(&self) -> bool {
        let result = self
            .write(async |conn| Ok(checkpoint::catch_up(conn).await?))
            .await;
        result.unwrap_or_else(|e| {
            tracing::debug!(error = %e, "WAL catch-up failed");
            true
        })
    }

    async fn ingest_on(
        &self,
        conn: &mut Conn,
        raw: &RawMessage,
        mail: &InboundMail,
        source: &str,
        forced: Option<&Queue>,
    ) -> Result<Report, IngestError> {
        // Before the transaction: a DKIM check asks the DNS.
        let agent_check = self.agent_check(conn, mail, raw.bytes()).await?;
        let mut tx = match self.begin_fresh(conn, raw, mail, source).await? {
            Fresh::New(tx) => tx,
            Fresh::Known(report) => return Ok(report),
        };
        let report = self
            .decide_and_apply(&mut tx, mail, agent_check.as_ref(), None, forced)
            .await?;
        self.commit(tx).await?;
        Ok(report)
    }

    /// Opens the message's transaction and records its raw copy: the one
    /// dedup step of every way in. A message received before gets a
    /// `duplicate` report naming its ticket and nothing is written; since the
    /// earlier copy may have been committed by another process that has not
    /// synced it yet, the source's next sync covers it before this copy is
    /// acknowledged.
    async fn begin_fresh<'c>(
        &self,
        conn: &'c mut Conn,
        raw: &RawMessage,
        mail: &InboundMail,
        source: &str,
    ) -> Result<Fresh<'c>, IngestError> {
        let mut tx = self.store.begin_on(conn).await?;
        if self.record_raw(&mut tx, raw, mail, source).await? {
            return Ok(Fresh::New(tx));
        }
        let from = mail.from.as_ref().map(|f| f.address.as_str()).unwrap_or("");
        let ticket = intake::ticket_of_known_message(
            &mut tx,
            &mail.sha256,
            mail.message_id.as_deref(),
            from,
        )
        .await?;
        tx.rollback().await.map_err(StoreError::from)?;
        self.durability.committed();
        Ok(Fresh::Known(Report::new(
            Outcome::Duplicate,
            ticket,
            Some("this message was received before".to_string()),
        )))
    }

    /// Commits a message's transaction and counts it for the next sync.
    async fn commit(&self, tx: sqlx::Transaction<'_, sqlx::Any>) -> Result<(), IngestError> {
        tx.commit().await.map_err(StoreError::from)?;
        self.durability.committed();
        Ok(())
    }

    /// Runs a held message through the pipeline again, as approved by an
    /// operator: an unknown sender is accepted and the size limit lifted; a
    /// locked contact, a missing role or automatic mail still hold it.
    pub async fn release(&self, release: Release<'_>) -> Result<Report, IngestError> {
        self.write(async |conn| self.release_on(conn, release).await)
            .await
    }

    /// Keeps a message unread as a held message with `code` and `reason`: input
    /// a source delivered that cannot be processed (not a message at all, an
    /// error that will not go away) or that costs too much to read, so that
    /// the source can acknowledge it and nothing is lost.
    pub async fn hold_unread(
        &self,
        raw: &RawMessage,
        source: &str,
        queue: Option<&str>,
        code: HoldCode,
        reason: &str,
    ) -> Result<Report, IngestError> {
        let mut mail = parse_headers_only(raw.bytes());
        mail.size = usize::try_from(raw.size()).unwrap_or(usize::MAX);
        mail.sha256 = raw.sha256();
        let queue = queue
            .and_then(|name| self.queues.iter().find(|q| q.name == name))
            .unwrap_or(&self.queues[self.default_queue]);
        self.store_large_raw(raw, &mail).await?;
        let held = Unread {
            queue,
            code,
            reason,
        };
        self.write(async |conn| self.hold_on(conn, raw, &mail, source, &held).await)
            .await
    }

    async fn hold_on(
        &self,
        conn: &mut Conn,
        raw: &RawMessage,
        mail: &InboundMail,
        source: &str,
        held: &Unread<'_>,
    ) -> Result<Report, IngestError> {
        let Unread {
            queue,
            code,
            reason,
        } = *held;
        let mut tx = match self.begin_fresh(conn, raw, mail, source).await? {
            Fresh::New(tx) => tx,
            Fresh::Known(report) => return Ok(report),
        };
        let new_subject = self.tag.clean_subject(mail.subject.as_deref());
        let decision = decide::Decision::Hold {
            code,
            reason: reason.to_string(),
            bounced: Vec::new(),
            bounce_outbox_id: None,
        };
        let service = self.service();
        let input = apply::Input {
            mail,
            classification: Classification::Normal,
            queue,
            new_subject: &new_subject,
            released: None,
            agent_text: "",
            forwarded: None,
            rejected: &[],
            foreign: &[],
            people: &People::default(),
            service: &service,
        };
        let report = apply::apply(&mut tx, &decision, &input).await?;
        self.commit(tx).await?;
        Ok(report)
    }

    async fn release_on(
        &self,
        conn: &mut Conn,
        release: Release<'_>,
    ) -> Result<Report, IngestError> {
        let held_id = release.held_id;
        let mut tx = self.store.begin_on(conn).await?;
        let held = intake::held(&mut tx, held_id)
            .await?
            .ok_or_else(|| IngestError::Invalid(format!("no held message #{held_id}")))?;
        if let Some(resolution) = &held.resolution {
            return Err(IngestError::Invalid(format!(
                "held message #{held_id} was {resolution} already"
            )));
        }
        let raw = self
            .raw_message(&mut tx, &held.raw_sha256)
            .await?
            .ok_or_else(|| {
                IngestError::Invalid(format!(
                    "the raw message of held message #{held_id} is missing"
                ))
            })?;
        // What was kept of an oversized message is processed as it is.
        let mut mail = parse(raw.bytes());
        mail.sha256 = held.raw_sha256.clone();
        let held_queue = self.queues.iter().find(|q| Some(q.id) == held.queue_id);
        let agent_check = self.agent_check(&mut tx, &mail, raw.bytes()).await?;
        let report = self
            .decide_and_apply(
                &mut tx,
                &mail,
                agent_check.as_ref(),
                Some(release),
                held_queue,
            )
            .await?;
        self.commit(tx).await?;
        Ok(report)
    }

    /// The ticket service for a change made now.
    pub fn service(&self) -> TicketService<'_> {
        TicketService {
            notifier: &self.notifier,
            blobs: &self.blobs,
            max_attachment_bytes: self.settings.limits.max_attachment_bytes,
            now: now(),
        }
    }

    /// For mail from an active agent's address: whether it proves to be the agent's.
    async fn agent_check(
        &self,
        conn: &mut Conn,
        mail: &InboundMail,
        raw: &[u8],
    ) -> Result<Option<AgentCheck>, StoreError> {
        let Some(from) = &mail.from else {
            return Ok(None);
        };
        match directory::agent_by_email(conn, &from.address).await? {
            Some(agent) if agent.active => Ok(Some(self.verifier.check(mail, raw).await)),
            _ => Ok(None),
        }
    }

    async fn decide_and_apply(
        &self,
        conn: &mut Conn,
        mail: &InboundMail,
        agent_check: Option<&AgentCheck>,
        released: Option<Release<'_>>,
        forced: Option<&Queue>,
    ) -> Result<Report, IngestError> {
        let classification = classify(mail, &self.own_addresses);
        let comment_queue = route::comment_queue(mail, &self.queues, &self.settings.queues);
        let queue = match (forced, comment_queue) {
            (Some(queue), _) | (None, Some(queue)) => queue,
            (None, None) => route::pick_queue(mail, &self.queues, &self.queues[self.default_queue]),
        };
        let mut people = People::default();
        let sender = identify::sender(conn, mail, &mut people).await?;
        let foreign = mail
            .subject
            .as_deref()
            .map(|s| crate::mail::foreign::references(s, &self.tag))
            .unwrap_or_default();
        let marks = thread::Marks {
            tag: &self.tag,
            reply_key: self.notifier.reply_key(),
            foreign: &foreign,
        };
        let asker = thread::Asker {
            address: sender.address().unwrap_or(""),
            organization_id: sender.organization().map(|o| o.id),
            admin_of: match &sender {
                Sender::Contact { contact, .. } if contact.roles.contains(&Role::Admin) => {
                    contact.organization_id
                }
                _ => None,
            },
        };
        let candidates = thread::candidates(conn, mail, &marks, asker).await?;
        let recipients = if classification == Classification::Normal
            && self.settings.tickets.cc_participants != crate::config::CcPolicy::None
        {
            identify::recipients(conn, mail, &self.own_addresses, &mut people).await?
        } else {
            Vec::new()
        };
        let bounce_of = if classification == Classification::Bounce {
            bounce::find(conn, mail, &self.bounce_key).await?
        } else {
            None
        };
        let is_agent = matches!(sender, Sender::Agent(_));
        // Commands and forwards are an agent's only; for anyone else a `#`
        // line is text.
        let mut parsed = if is_agent {
            commands::parse(&mail.visible_text)
        } else {
            commands::Parsed::default()
        };
        if is_agent {
            let ticket = candidates.first().map(|c| c.ticket_id);
            let unusable =
                service::check_commands(conn, ticket, &parsed.commands, &parsed.lines).await?;
            parsed.errors.extend(unusable);
        }
        let forwarded = if is_agent && candidates.is_empty() {
            crate::mail::forward::forwarded(mail)
        } else {
            None
        };
        let forwarded_sender = match &forwarded {
            Some(f) => Some(identify::by_address(conn, &f.sender, &mut people).await?),
            None => None,
        };
        // The agent's words above a forward are the note; commands were read from them.
        let agent_text = crate::mail::reply::without_signoff(&match &forwarded {
            Some(f) => commands::parse(&f.note).text,
            None => parsed.text.clone(),
        });
        let priority = mail.signals.priority.as_deref().and_then(|p| match p {
            "high" => Some(Priority::High),
            "low" => Some(Priority::Low),
            _ => None,
        });
        let decision = decide::decide(&Context {
            classification,
            size: mail.size,
            max_size: self.settings.limits.max_message_bytes,
            sender: &sender,
            queue,
            candidates: &candidates,
            recipients: &recipients,
            unknown_sender: self.settings.tickets.unknown_sender,
            cc_policy: self.settings.tickets.cc_participants,
            max_participants: self.settings.tickets.max_participants_per_message,
            operator_approved: released.is_some(),
            bounce_of: bounce_of.as_ref(),
            parse_failure: mail.parse_failure.as_deref(),
            agent_check,
            commands: &parsed,
            to_comment_address: comment_queue.is_some(),
            forwarded: forwarded.as_ref(),
            forwarded_sender: forwarded_sender.as_ref(),
            forwarded_mail: self.settings.agents.forwarded_mail,
            priority,
        });
        tracing::debug!(?decision, "decided");
        let new_subject = self.tag.clean_subject(mail.subject.as_deref());
        let service = self.service();
        let input = apply::Input {
            mail,
            classification,
            queue,
            new_subject: &new_subject,
            released,
            agent_text: &agent_text,
            forwarded: forwarded.as_ref(),
            rejected: &parsed.errors,
            foreign: &foreign,
            people: &people,
            service: &service,
        };
        apply::apply(conn, &decision, &input).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> Arc<RawMessage> {
        Arc::new(RawMessage::whole(
            b"From: a@b.example\r\nSubject: s\r\n\r\nhello\r\n".to_vec(),
        ))
    }

    /// Large enough to be read on a thread of its own, under the budget.
    fn large() -> Arc<RawMessage> {
        let body = "hello\r\n".repeat(READ_INLINE_MAX / 7 + 1);
        Arc::new(RawMessage::whole(
            format!("From: a@b.example\r\nSubject: s\r\n\r\n{body}").into_bytes(),
        ))
    }

    #[tokio::test]
    async fn a_message_read_past_its_budget_is_held_as_too_costly() {
        let slow = |raw: &RawMessage| {
            std::thread::sleep(Duration::from_millis(500));
            Ok(parse(raw.bytes()))
        };
        match read_with(large(), Duration::from_millis(50), slow).await {
            Ok(Read::Hold { code, reason }) => {
                assert_eq!(code, HoldCode::TooCostly);
                assert!(reason.contains("message_budget_secs"), "{reason}");
            }
            _ => panic!("not held"),
        }
        for raw in [raw(), large()] {
            match read_within(raw, 1 << 20, Duration::from_secs(5)).await {
                Ok(Read::Mail(mail)) => assert_eq!(mail.subject.as_deref(), Some("s")),
                _ => panic!("not read"),
            }
        }
    }

    #[tokio::test]
    async fn a_panic_while_reading_holds_the_message_unprocessable() {
        for raw in [raw(), large()] {
            let broken = |_: &RawMessage| -> Result<InboundMail, NotAMessage> { panic!("broken") };
            match read_with(raw, Duration::from_secs(5), broken).await {
                Ok(Read::Hold { code, .. }) => assert_eq!(code, HoldCode::Unprocessable),
                _ => panic!("not held"),
            }
        }
    }

    #[test]
    fn a_pipe_is_drained_and_only_the_beginning_of_an_oversized_message_kept() {
        let message = [b"From: a@b.example\r\n\r\n".as_slice(), &[b'x'; 100_000]].concat();
        let raw = read_up_to(message.as_slice(), 10_000).expect("read");
        assert!(raw.is_truncated());
        assert_eq!(raw.size(), message.len() as u64);
        assert_eq!(raw.bytes(), &message[..10_000]);
        let whole = read_up_to(message.as_slice(), 1 << 20).expect("read");
        assert!(!whole.is_truncated());
        assert_eq!(whole.bytes(), message.as_slice());
    }
}
