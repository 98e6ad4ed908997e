//! `ticketd ticket`: list, show and change tickets.

use std::process::ExitCode;

use clap::Subcommand;
use serde::Serialize;
use ticketd::store::events::{self, Event, EventRecord};
use ticketd::store::tickets::{self, MessageView, Status, Ticket};
use ticketd::store::{directory, now};

use super::{Ctx, fail, print_json, timestamp};

#[derive(Debug, Subcommand)]
pub enum TicketCommand {
    /// List tickets, newest first.
    List {
        /// Only tickets with this status: new, open, pending, on_hold, solved, closed.
        #[arg(long, value_parser = parse_status)]
        status: Option<Status>,
        /// Only tickets of this organization (by name).
        #[arg(long, value_name = "NAME")]
        org: Option<String>,
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Show one ticket with its messages.
    Show {
        /// The ticket number.
        id: i64,
        /// Print a JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Change a ticket's status (recorded in the audit log).
    SetStatus {
        /// The ticket number.
        id: i64,
        /// new, open, pending, on_hold, solved or closed.
        #[arg(value_parser = parse_status)]
        status: Status,
    },
}

fn parse_status(s: &str) -> Result<Status, String> {
    s.parse()
}

#[derive(Serialize)]
struct TicketSummary<'a> {
    id: i64,
    status: Status,
    subject: &'a str,
    requester: &'a str,
    organization: Option<&'a str>,
    queue: &'a str,
    message_count: i64,
    created_at: String,
    updated_at: String,
}

impl<'a> From<&'a Ticket> for TicketSummary<'a> {
    fn from(t: &'a Ticket) -> Self {
        TicketSummary {
            id: t.id,
            status: t.status,
            subject: &t.subject,
            requester: &t.requester,
            organization: t.organization.as_deref(),
            queue: &t.queue,
            message_count: t.message_count,
            created_at: timestamp(t.created_at),
            updated_at: timestamp(t.updated_at),
        }
    }
}

#[derive(Serialize)]
struct TicketDetail<'a> {
    #[serde(flatten)]
    summary: TicketSummary<'a>,
    follows_up: Option<i64>,
    participants: Vec<String>,
    messages: &'a [MessageView],
    events: Vec<EventRecord>,
}

pub async fn run(ctx: &Ctx, cmd: TicketCommand) -> ExitCode {
    let (store, mut conn) = match ctx.connection().await {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    match cmd {
        TicketCommand::List { status, org, json } => {
            let org_id = match org {
                Some(name) => match directory::organization_by_name(&mut conn, &name).await {
                    Ok(Some(o)) => Some(o.id),
                    Ok(None) => {
                        eprintln!("ticketd: no organization named `{name}`");
                        return ExitCode::FAILURE;
                    }
                    Err(e) => return fail("cannot look up the organization", &e),
                },
                None => None,
            };
            let list = match tickets::list(&mut conn, status, org_id).await {
                Ok(l) => l,
                Err(e) => return fail("cannot list tickets", &e),
            };
            if json {
                let rows: Vec<TicketSummary> = list.iter().map(Into::into).collect();
                return print_json(&rows);
            }
            if list.is_empty() {
                println!("no tickets");
            }
            for t in &list {
                println!(
                    "#{:<6} {:<8} {:<10} {:<30} {}",
                    t.id,
                    t.status.as_str(),
                    t.queue,
                    t.requester,
                    t.subject
                );
            }
            ExitCode::SUCCESS
        }
        TicketCommand::Show { id, json } => {
            let ticket = match tickets::get(&mut conn, id).await {
                Ok(Some(t)) => t,
                Ok(None) => {
                    eprintln!("ticketd: no ticket #{id}");
                    return ExitCode::FAILURE;
                }
                Err(e) => return fail("cannot load the ticket", &e),
            };
            let loaded = async {
                Ok::<_, ticketd::store::StoreError>((
                    tickets::messages(&mut conn, id).await?,
                    tickets::participants(&mut conn, id).await?,
                    events::for_ticket(&mut conn, id).await?,
                ))
            }
            .await;
            let (messages, participants, events) = match loaded {
                Ok(v) => v,
                Err(e) => return fail("cannot load the ticket", &e),
            };
            if json {
                return print_json(&TicketDetail {
                    summary: (&ticket).into(),
                    follows_up: ticket.follows_up,
                    participants,
                    messages: &messages,
                    events,
                });
            }
            print_ticket(&ticket, &participants, &messages);
            ExitCode::SUCCESS
        }
        TicketCommand::SetStatus { id, status } => {
            let queues = match ticketd::store::queues::load(&mut conn, &ctx.settings.queues).await {
                Ok(q) => q,
                Err(e) => return fail("cannot load the queues", &e),
            };
            drop(conn);
            let notifier = match ticketd::notify::Notifier::new(ctx.settings.clone(), queues) {
                Ok(n) => n,
                Err(e) => {
                    eprintln!("ticketd: {e}");
                    return ExitCode::from(super::exit::CONFIG);
                }
            };
            let result = async {
                let mut tx = store.begin().await?;
                let Some(ticket) = tickets::get(&mut tx, id).await? else {
                    return Err(ticketd::store::StoreError::NotFound(format!(
                        "no ticket #{id}"
                    )));
                };
                if ticket.status != status {
                    let t = now();
                    tickets::set_status(&mut tx, id, status, t).await?;
                    events::record(
                        &mut tx,
                        &Event {
                            ticket_id: Some(id),
                            actor: "operator",
                            action: "status_changed",
                            old_value: Some(ticket.status.as_str()),
                            new_value: Some(status.as_str()),
                            ..Event::default()
                        },
                        t,
                    )
                    .await?;
                    notifier
                        .status_changed(&mut tx, id, ticket.status, status)
                        .await?;
                }
                tx.commit().await?;
                Ok(ticket.status)
            }
            .await;
            match result {
                Ok(old) => {
                    println!("ticket #{id}: {old} → {status}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail("cannot change the status", &e),
            }
        }
    }
}

fn print_ticket(t: &Ticket, participants: &[String], messages: &[MessageView]) {
    println!("Ticket #{}: {}", t.id, t.subject);
    println!("Status:       {}", t.status);
    println!("Queue:        {}", t.queue);
    println!("Requester:    {}", t.requester);
    println!(
        "Organization: {}",
        t.organization.as_deref().unwrap_or("(none)")
    );
    println!("Participants: {}", participants.join(", "));
    if let Some(prev) = t.follows_up {
        println!("Follows up:   #{prev}");
    }
    println!("Created:      {}", timestamp(t.created_at));
    for m in messages {
        let who = match (&m.author.name, &m.author.address) {
            (Some(n), Some(a)) => format!("{n} <{a}>"),
            (None, Some(a)) => a.clone(),
            _ => "(unknown)".to_string(),
        };
        let class = if m.classification == "normal" {
            String::new()
        } else {
            format!(" [{}]", m.classification)
        };
        println!(
            "\n--- {} {} {}{class}",
            timestamp(m.created_at),
            m.direction,
            who
        );
        println!("{}", m.visible_text);
        for a in &m.attachments {
            println!(
                "[attachment: {} ({}, {} bytes)]",
                a.filename.as_deref().unwrap_or("(unnamed)"),
                a.content_type,
                a.size
            );
        }
    }
}
