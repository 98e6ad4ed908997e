//! `ticketd outbox`: what notifications are waiting, were sent or failed, and sending one again.

use std::io::Write;

use clap::Subcommand;
use ticketd::ingest::admin;
use ticketd::store::outbox::{self, OutboxStatus};
use ticketd::store::{StoreError, now};

use super::error::{CliError, Context};
use super::paging::{self, Paging};
use super::{Ctx, print_json, timestamp};

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// List notifications, newest first.
    List {
        /// Only those with this status: pending, sent or failed.
        #[arg(long, value_parser = ["pending", "sent", "failed"])]
        status: Option<String>,
        #[command(flatten)]
        paging: Paging,
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Show one notification with its delivery attempts.
    Show {
        /// The notification's number (see `outbox list`).
        id: i64,
        /// Print the message exactly as it is sent.
        #[arg(long)]
        raw: bool,
        /// Print a JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Send a failed or waiting notification again as soon as the daemon can.
    Retry {
        /// The notification's number (see `outbox list`).
        id: i64,
    },
}

/// Runs an `outbox` subcommand.
pub async fn run(ctx: &Ctx, cmd: OutboxCommand) -> Result<(), CliError> {
    let (_store, mut conn) = ctx.connection().await?;
    match cmd {
        OutboxCommand::List {
            status,
            paging,
            json,
        } => {
            let status = status
                .as_deref()
                .map(OutboxStatus::try_from)
                .transpose()
                .context("cannot list the outbox")?;
            let rows = paging.rows(json);
            let mut list = outbox::list(&mut conn, status, paging::fetch(rows))
                .await
                .context("cannot list the outbox")?;
            paging::cut(&mut list, rows);
            if json {
                return print_json(&list);
            }
            if list.is_empty() {
                println!("the outbox is empty");
            }
            for o in &list {
                println!(
                    "#{:<6} {:<8} {:<22} {:<32} {}{}",
                    o.id,
                    o.status,
                    o.kind,
                    o.recipient,
                    o.subject,
                    o.last_error
                        .as_deref()
                        .map(|e| format!("  [{e}]"))
                        .unwrap_or_default()
                );
            }
            Ok(())
        }
        OutboxCommand::Show { id, raw, json } => {
            let (entry, bytes) = outbox::get(&mut conn, id)
                .await
                .and_then(|found| {
                    found.ok_or_else(|| StoreError::NotFound(format!("no outbox entry #{id}")))
                })
                .context("cannot load the notification")?;
            let attempts = outbox::attempts(&mut conn, id)
                .await
                .context("cannot load the notification")?;
            if raw {
                let mut out = std::io::stdout().lock();
                return out
                    .write_all(&bytes)
                    .and_then(|_| out.flush())
                    .map_err(|e| CliError::Refused(format!("cannot write: {e}")));
            }
            if json {
                return print_json(&serde_json::json!({ "entry": entry, "attempts": attempts }));
            }
            println!("Notification #{} ({})", entry.id, entry.kind);
            println!("To:         {}", entry.recipient);
            println!("Subject:    {}", entry.subject);
            println!("Message-ID: <{}>", entry.message_id);
            println!(
                "Status:     {} after {} attempt(s)",
                entry.status, entry.attempts
            );
            if entry.status == OutboxStatus::Pending {
                println!("Next try:   {}", timestamp(entry.next_attempt_at));
            }
            if let Some(t) = entry.ticket_id {
                println!("Ticket:     #{t}");
            }
            for a in &attempts {
                println!(
                    "  {} {} {}",
                    timestamp(a.at),
                    if a.ok { "ok  " } else { "fail" },
                    a.reply
                );
            }
            Ok(())
        }
        OutboxCommand::Retry { id } => {
            if !admin::retry_notification(&mut conn, id, ctx.operator(), now())
                .await
                .context("cannot retry")?
            {
                return Err(CliError::Refused(format!("no unsent notification #{id}")));
            }
            println!("notification #{id} will be sent again");
            Ok(())
        }
    }
}
