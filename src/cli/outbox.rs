//! `ticketd outbox`: what notifications are waiting, were sent or failed, and sending one again.

use std::io::Write;
use std::process::ExitCode;

use clap::Subcommand;
use ticketd::store::outbox::{self, OutboxStatus};
use ticketd::store::{StoreError, now};

use super::paging::{self, Paging};
use super::{Ctx, fail, print_json, timestamp};

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

pub async fn run(ctx: &Ctx, cmd: OutboxCommand) -> ExitCode {
    let (_store, mut conn) = match ctx.connection().await {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    match cmd {
        OutboxCommand::List {
            status,
            paging,
            json,
        } => {
            let status = match status.as_deref().map(OutboxStatus::try_from).transpose() {
                Ok(status) => status,
                Err(e) => return fail("cannot list the outbox", &e),
            };
            let rows = paging.rows(json);
            let mut list = match outbox::list(&mut conn, status, paging::fetch(rows)).await {
                Ok(l) => l,
                Err(e) => return fail("cannot list the outbox", &e),
            };
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
            ExitCode::SUCCESS
        }
        OutboxCommand::Show { id, raw, json } => {
            let loaded = async {
                let (entry, bytes) = outbox::get(&mut conn, id)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(format!("no outbox entry #{id}")))?;
                let attempts = outbox::attempts(&mut conn, id).await?;
                Ok::<_, StoreError>((entry, bytes, attempts))
            }
            .await;
            let (entry, bytes, attempts) = match loaded {
                Ok(v) => v,
                Err(e) => return fail("cannot load the notification", &e),
            };
            if raw {
                let mut out = std::io::stdout().lock();
                return match out.write_all(&bytes).and_then(|_| out.flush()) {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(e) => {
                        eprintln!("ticketd: cannot write: {e}");
                        ExitCode::FAILURE
                    }
                };
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
                    if a.ok != 0 { "ok  " } else { "fail" },
                    a.reply
                );
            }
            ExitCode::SUCCESS
        }
        OutboxCommand::Retry { id } => match outbox::retry(&mut conn, id, now()).await {
            Ok(true) => {
                println!("notification #{id} will be sent again");
                ExitCode::SUCCESS
            }
            Ok(false) => {
                eprintln!("ticketd: no unsent notification #{id}");
                ExitCode::FAILURE
            }
            Err(e) => fail("cannot retry", &e),
        },
    }
}
