//! `ticketd held`: review, release or discard messages the pipeline held back.

use std::io::Write;

use clap::Subcommand;
use serde::Serialize;
use ticketd::blobs::BlobStore;
use ticketd::ingest::admin;
use ticketd::ingest::{Release, load_raw};
use ticketd::mail::RawMessage;
use ticketd::store::intake::{self, HeldMessage};
use ticketd::store::{Store, StoreError, now};

use super::error::{CliError, Context};
use super::paging;
use super::{Ctx, in_transaction, print_json, timestamp};

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

pub async fn run(ctx: &Ctx, cmd: HeldCommand) -> Result<(), CliError> {
    let store = ctx.store().await?;
    match cmd {
        HeldCommand::List { all, limit, json } => list(&store, all, limit, json).await,
        HeldCommand::Show { id, raw, json } => show(ctx, &store, id, raw, json).await,
        HeldCommand::Release { id } => release(ctx, &store, id).await,
        HeldCommand::Discard { id } => discard(ctx, &store, id).await,
    }
}

/// `held list`: held messages, oldest first, the newest page of them.
async fn list(store: &Store, all: bool, limit: Option<u32>, json: bool) -> Result<(), CliError> {
    let rows = paging::rows(limit, all || json);
    let mut conn = store.conn().await.context("cannot list held messages")?;
    let mut list = intake::list_held(&mut conn, all, paging::fetch(rows))
        .await
        .context("cannot list held messages")?;
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
    Ok(())
}

/// `held show`: why a message is held and what it says.
async fn show(ctx: &Ctx, store: &Store, id: i64, raw: bool, json: bool) -> Result<(), CliError> {
    const LOADING: &str = "cannot load the held message";
    let raw_files = BlobStore::raw_messages(&ctx.settings.data.dir);
    let mut conn = store.conn().await.context(LOADING)?;
    let held = intake::held(&mut conn, id)
        .await
        .and_then(|found| {
            found.ok_or_else(|| StoreError::NotFound(format!("no held message #{id}")))
        })
        .context(LOADING)?;
    let kept = load_raw(&mut conn, &raw_files, &held.raw_sha256)
        .await
        .context(LOADING)?;
    let kept = kept.unwrap_or_else(|| RawMessage::whole(Vec::new()));
    let bytes = kept.bytes();
    if raw {
        let mut out = std::io::stdout().lock();
        return out
            .write_all(bytes)
            .and_then(|_| out.flush())
            .map_err(|e| CliError::Refused(format!("cannot write: {e}")));
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
    Ok(())
}

/// `held release`: the message through the pipeline again, as approved.
async fn release(ctx: &Ctx, store: &Store, id: i64) -> Result<(), CliError> {
    let pipeline = super::pipeline(ctx, store).await?;
    let report = pipeline
        .release(Release {
            held_id: id,
            by: ctx.operator(),
        })
        .await
        .context("cannot release the message")?;
    match (report.outcome.as_str(), report.ticket) {
        ("held", _) => println!(
            "held message #{id} is still held: {}",
            report.reason.as_deref().unwrap_or("")
        ),
        (outcome, Some(t)) => println!("held message #{id} released: {outcome} ticket #{t}"),
        (outcome, None) => println!("held message #{id} released: {outcome}"),
    }
    Ok(())
}

/// `held discard`: off the review list; its raw copy is kept.
async fn discard(ctx: &Ctx, store: &Store, id: i64) -> Result<(), CliError> {
    in_transaction(store, async |tx| {
        admin::discard_held(tx, id, ctx.operator(), now()).await
    })
    .await
    .context("cannot discard the message")?;
    println!("held message #{id} discarded");
    Ok(())
}
