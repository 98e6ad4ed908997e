//! `ticketd held`: review, release or discard messages the pipeline held back.

use std::io::Write;
use std::process::ExitCode;

use clap::Subcommand;
use serde::Serialize;
use ticketd::blobs::BlobStore;
use ticketd::ingest::service::Actor;
use ticketd::ingest::{IngestError, load_raw};
use ticketd::mail::RawMessage;
use ticketd::store::events::{self, Event};
use ticketd::store::intake::{self, HeldMessage};
use ticketd::store::{Store, StoreError, now};

use super::paging;
use super::{Ctx, exit, fail, print_json, timestamp};

#[derive(Debug, Subcommand)]
pub enum HeldCommand {
    /// List held messages that await a decision.
    List {
        /// Every held message: released and discarded ones too, and no limit.
        #[arg(long)]
        all: bool,
        /// Print at most N rows, the newest [default: 50; with --json or --all every row].
        #[arg(long, value_name = "N")]
        limit: Option<u32>,
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Show one held message: why it is held and what it says.
    Show {
        /// The held message's number (see `held list`).
        id: i64,
        /// Print the raw message exactly as received.
        #[arg(long)]
        raw: bool,
        /// Print a JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Run a held message through the pipeline again (e.g. after unlocking its sender).
    ///
    /// Releasing approves an unknown sender and lifts the size limit; a locked
    /// or deactivated contact, a missing role or automatic mail still hold it.
    Release {
        /// The held message's number (see `held list`).
        id: i64,
    },
    /// Drop a held message from the review list (its raw copy is kept).
    Discard {
        /// The held message's number (see `held list`).
        id: i64,
    },
}

#[derive(Serialize)]
struct HeldView<'a> {
    id: i64,
    reason_code: &'a str,
    reason: &'a str,
    sender: Option<&'a str>,
    subject: Option<&'a str>,
    created_at: String,
    resolution: Option<&'a str>,
    ticket: Option<i64>,
    raw_sha256: &'a str,
}

impl<'a> From<&'a HeldMessage> for HeldView<'a> {
    fn from(h: &'a HeldMessage) -> Self {
        HeldView {
            id: h.id,
            reason_code: h.reason_code.as_str(),
            reason: &h.reason,
            sender: h.sender.as_deref(),
            subject: h.subject.as_deref(),
            created_at: timestamp(h.created_at),
            resolution: h.resolution.as_deref(),
            ticket: h.ticket_id,
            raw_sha256: &h.raw_sha256,
        }
    }
}

pub async fn run(ctx: &Ctx, cmd: HeldCommand) -> ExitCode {
    let store = match ctx.store().await {
        Ok(s) => s,
        Err(code) => return code,
    };
    match cmd {
        HeldCommand::List { all, limit, json } => list(&store, all, limit, json).await,
        HeldCommand::Show { id, raw, json } => show(ctx, &store, id, raw, json).await,
        HeldCommand::Release { id } => release(ctx, &store, id).await,
        HeldCommand::Discard { id } => discard(&store, id).await,
    }
}

/// `held list`: held messages, oldest first, the newest page of them.
async fn list(store: &Store, all: bool, limit: Option<u32>, json: bool) -> ExitCode {
    let rows = paging::rows(limit, all || json);
    let list = async {
        let mut conn = store.conn().await?;
        intake::list_held(&mut conn, all, paging::fetch(rows)).await
    }
    .await;
    let mut list = match list {
        Ok(l) => l,
        Err(e) => return fail("cannot list held messages", &e),
    };
    // Oldest first, so the newest are at the end.
    list.reverse();
    paging::cut(&mut list, rows);
    list.reverse();
    if json {
        let rows: Vec<HeldView> = list.iter().map(Into::into).collect();
        return print_json(&rows);
    }
    if list.is_empty() {
        println!("no held messages");
    }
    for h in &list {
        println!(
            "#{:<5} {} {:<20} {:<32} {}",
            h.id,
            timestamp(h.created_at),
            h.reason_code,
            h.sender.as_deref().unwrap_or("(no sender)"),
            h.subject.as_deref().unwrap_or("")
        );
    }
    ExitCode::SUCCESS
}

/// `held show`: why a message is held and what it says.
async fn show(ctx: &Ctx, store: &Store, id: i64, raw: bool, json: bool) -> ExitCode {
    let raw_files = BlobStore::raw_messages(&ctx.settings.data.dir);
    let loaded = async {
        let mut conn = store.conn().await?;
        let held = intake::held(&mut conn, id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("no held message #{id}")))?;
        let raw = load_raw(&mut conn, &raw_files, &held.raw_sha256).await?;
        Ok::<_, IngestError>((held, raw))
    }
    .await;
    let (held, kept) = match loaded {
        Ok(v) => v,
        Err(IngestError::Store(e)) => return fail("cannot load the held message", &e),
        Err(e) => {
            eprintln!("ticketd: cannot load the held message: {e}");
            return ExitCode::FAILURE;
        }
    };
    let kept = kept.unwrap_or_else(|| RawMessage::whole(Vec::new()));
    let bytes = kept.bytes();
    if raw {
        let mut out = std::io::stdout().lock();
        return match out.write_all(bytes).and_then(|_| out.flush()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ticketd: cannot write: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if json {
        return print_json(&HeldView::from(&held));
    }
    println!("Held message #{}", held.id);
    println!("Reason:   {} — {}", held.reason_code, held.reason);
    println!(
        "From:     {}",
        held.sender.as_deref().unwrap_or("(no sender)")
    );
    println!("Subject:  {}", held.subject.as_deref().unwrap_or(""));
    println!("Received: {}", timestamp(held.created_at));
    if let Some(r) = &held.resolution {
        println!(
            "Resolved: {r}{}",
            held.ticket_id
                .map(|t| format!(" into ticket #{t}"))
                .unwrap_or_default()
        );
    }
    if kept.is_truncated() {
        println!(
            "Size:     {} bytes; only the first {} were kept (ticketd held show {id} --raw prints them)",
            kept.size(),
            bytes.len()
        );
    } else {
        println!(
            "Size:     {} bytes (ticketd held show {id} --raw prints it)",
            kept.size()
        );
    }
    let preview = ticketd::mail::parse(bytes);
    println!(
        "\n{}",
        preview.visible_text.chars().take(2000).collect::<String>()
    );
    ExitCode::SUCCESS
}

/// `held release`: the message through the pipeline again, as approved.
async fn release(ctx: &Ctx, store: &Store, id: i64) -> ExitCode {
    let pipeline = match super::pipeline(ctx, store).await {
        Ok(p) => p,
        Err(code) => return code,
    };
    match pipeline.release(id).await {
        Ok(report) => {
            match (report.outcome.as_str(), report.ticket) {
                ("held", _) => println!(
                    "held message #{id} is still held: {}",
                    report.reason.as_deref().unwrap_or("")
                ),
                (outcome, Some(t)) => {
                    println!("held message #{id} released: {outcome} ticket #{t}")
                }
                (outcome, None) => println!("held message #{id} released: {outcome}"),
            }
            ExitCode::SUCCESS
        }
        Err(IngestError::Store(e)) => fail("cannot release the message", &e),
        Err(IngestError::Invalid(msg)) => {
            eprintln!("ticketd: {msg}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("ticketd: cannot release the message: {e}");
            ExitCode::from(exit::SOFTWARE)
        }
    }
}

/// `held discard`: off the review list; its raw copy is kept.
async fn discard(store: &Store, id: i64) -> ExitCode {
    let result = async {
        let mut tx = store.begin().await?;
        let held = intake::held(&mut tx, id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("no held message #{id}")))?;
        if let Some(r) = held.resolution {
            return Err(StoreError::Conflict(format!(
                "held message #{id} was {r} already"
            )));
        }
        let t = now();
        intake::resolve_held(&mut tx, id, "discarded", None, t).await?;
        events::record(
            &mut tx,
            &Event {
                held_id: Some(id),
                actor: Actor::OPERATOR.name,
                action: "message_discarded",
                old_value: Some(held.reason_code.as_str()),
                ..Event::default()
            },
            t,
        )
        .await?;
        tx.commit().await?;
        Ok::<_, StoreError>(())
    }
    .await;
    match result {
        Ok(()) => {
            println!("held message #{id} discarded");
            ExitCode::SUCCESS
        }
        Err(e) => fail("cannot discard the message", &e),
    }
}
