//! `ticketd ticket`: list, show and change tickets.

use std::path::PathBuf;

use clap::Subcommand;
use serde::Serialize;
use ticketd::blobs::BlobStore;
use ticketd::ingest::admin;
use ticketd::ingest::service::{Actor, ServiceError, TicketService};
use ticketd::notify::Notifier;
use ticketd::store::events::{self, EventRecord};
use ticketd::store::tickets::{self, Filter, MessageView, Priority, Status, Ticket};
use ticketd::store::{Conn, Store, StoreError, directory, now};

use super::error::{CliError, Context};
use super::paging::{self, Paging};
use super::{Ctx, print_json, timestamp};

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
        /// With --org: its child organizations' tickets too.
        #[arg(long, requires = "org")]
        with_children: bool,
        /// Only tickets assigned to this agent (by address).
        #[arg(long, value_name = "AGENT")]
        assignee: Option<String>,
        /// Only tickets of this priority: low, normal, high, urgent.
        #[arg(long, value_parser = parse_priority)]
        priority: Option<Priority>,
        #[command(flatten)]
        paging: Paging,
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
    /// Change a ticket's status; the customer side hears of pending, solved and closed.
    SetStatus {
        /// The ticket number.
        id: i64,
        /// new, open, pending, on_hold, solved or closed.
        #[arg(value_parser = parse_status)]
        status: Status,
    },
    /// Assign a ticket to an agent (`none` to nobody); its notices then go to that agent only.
    Assign {
        /// The ticket number.
        id: i64,
        /// The agent's address, or `none`.
        agent: String,
    },
    /// Change a ticket's priority.
    SetPriority {
        /// The ticket number.
        id: i64,
        /// low, normal, high or urgent.
        #[arg(value_parser = parse_priority)]
        priority: Priority,
    },
    /// Add an internal note (agents only, never a customer) written by an agent.
    Note {
        /// The ticket number.
        id: i64,
        /// The agent the note is from (by address).
        #[arg(long, value_name = "AGENT")]
        from: String,
        /// A file with the note's text; `-` reads standard input.
        file: PathBuf,
    },
    /// Merge a ticket into another: its messages and participants move, it
    /// closes with a link, and later replies to it land on the other.
    Merge {
        /// The ticket to merge away.
        id: i64,
        /// The ticket that remains.
        into: i64,
    },
}

fn parse_status(s: &str) -> Result<Status, String> {
    s.parse()
}

fn parse_priority(s: &str) -> Result<Priority, String> {
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
    priority: Priority,
    assignee: Option<&'a str>,
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
            priority: t.priority,
            assignee: t.assignee.as_deref(),
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
    merged_into: Option<i64>,
    participants: Vec<String>,
    messages: &'a [MessageView],
    events: Vec<EventRecord>,
}

/// Runs a `ticket` subcommand.
pub async fn run(ctx: &Ctx, cmd: TicketCommand) -> Result<(), CliError> {
    let (store, mut conn) = ctx.connection().await?;
    match cmd {
        TicketCommand::List {
            status,
            org,
            with_children,
            assignee,
            priority,
            paging,
            json,
        } => {
            let organization_id = match org {
                Some(name) => Some(
                    admin::organization_id(&mut conn, &name)
                        .await
                        .context("cannot look up the organization")?,
                ),
                None => None,
            };
            let assignee_id = match assignee {
                Some(address) => directory::agent_by_email(&mut conn, &address)
                    .await
                    .context("cannot look up the agent")?
                    .map(|a| a.id)
                    .ok_or_else(|| CliError::Refused(format!("no agent `{address}`")))
                    .map(Some)?,
                None => None,
            };
            let filter = Filter {
                status,
                organization_id,
                assignee_id,
                priority,
                with_children,
                ..Filter::default()
            };
            let rows = paging.rows(json);
            let mut list = tickets::list(&mut conn, &filter, paging::fetch(rows))
                .await
                .context("cannot list tickets")?;
            paging::cut(&mut list, rows);
            if json {
                let rows: Vec<TicketSummary> = list.iter().map(Into::into).collect();
                return print_json(&rows);
            }
            if list.is_empty() {
                println!("no tickets");
            }
            for t in &list {
                println!(
                    "#{:<6} {:<8} {:<7} {:<10} {:<30} {}",
                    t.id,
                    t.status.as_str(),
                    t.priority.as_str(),
                    t.queue,
                    t.requester,
                    t.subject
                );
            }
            Ok(())
        }
        TicketCommand::Show { id, json } => {
            const LOADING: &str = "cannot load the ticket";
            let ticket = tickets::get(&mut conn, id)
                .await
                .context(LOADING)?
                .ok_or_else(|| CliError::Refused(format!("no ticket #{id}")))?;
            let messages = tickets::messages(&mut conn, id).await.context(LOADING)?;
            let participants = tickets::participants(&mut conn, id)
                .await
                .context(LOADING)?;
            let events = events::for_ticket(&mut conn, id).await.context(LOADING)?;
            if json {
                return print_json(&TicketDetail {
                    summary: (&ticket).into(),
                    follows_up: ticket.follows_up,
                    merged_into: ticket.merged_into,
                    participants,
                    messages: &messages,
                    events,
                });
            }
            print_ticket(&ticket, &participants, &messages);
            Ok(())
        }
        change => {
            drop(conn);
            changed(ctx, &store, change).await
        }
    }
}

/// Runs one of the commands that change a ticket, through the ticket service.
async fn changed(ctx: &Ctx, store: &Store, cmd: TicketCommand) -> Result<(), CliError> {
    let notifier = Notifier::open(store, ctx.settings.clone()).await?;
    let note_text = match &cmd {
        TicketCommand::Note { file, .. } => {
            let text = read_text(file)
                .map_err(|e| CliError::NoInput(format!("cannot read {}: {e}", file.display())))?;
            if text.trim().is_empty() {
                return Err(CliError::Refused("the note is empty".into()));
            }
            Some(text)
        }
        _ => None,
    };
    let blobs = BlobStore::attachments(&ctx.settings.data.dir);
    let service = TicketService {
        notifier: &notifier,
        blobs: &blobs,
        max_attachment_bytes: ctx.settings.limits.max_attachment_bytes,
        now: now(),
    };
    let result = async {
        let mut tx = store.begin().await?;
        let said = change(
            &service,
            &mut tx,
            &cmd,
            note_text.as_deref(),
            ctx.operator(),
        )
        .await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok::<_, ServiceError>(said)
    };
    println!("{}", result.await.context("cannot change the ticket")?);
    Ok(())
}

/// Applies `cmd` in `conn`'s transaction and says what it did.
async fn change(
    service: &TicketService<'_>,
    conn: &mut Conn,
    cmd: &TicketCommand,
    note_text: Option<&str>,
    operator: Actor<'_>,
) -> Result<String, ServiceError> {
    Ok(match cmd {
        TicketCommand::SetStatus { id, status } => {
            match service
                .set_status(conn, *id, *status, operator, true)
                .await?
            {
                Some(old) => format!("ticket #{id}: {old} → {status}"),
                None => format!("ticket #{id} is {status} already"),
            }
        }
        TicketCommand::SetPriority { id, priority } => {
            match service.set_priority(conn, *id, *priority, operator).await? {
                Some(old) => format!("ticket #{id}: priority {old} → {priority}"),
                None => format!("ticket #{id} has priority {priority} already"),
            }
        }
        TicketCommand::Assign { id, agent } => {
            let agent = ticketd::mail::address::normalize(agent).filter(|_| agent != "none");
            let changed = service
                .assign(conn, *id, agent.as_deref(), operator)
                .await?;
            let who = agent.as_deref().unwrap_or("nobody");
            if changed {
                format!("ticket #{id} assigned to {who}")
            } else {
                format!("ticket #{id} is assigned to {who} already")
            }
        }
        TicketCommand::Merge { id, into } => {
            let survivor = service.merge(conn, *id, *into, operator).await?;
            format!("ticket #{id} merged into #{survivor}")
        }
        TicketCommand::Note { id, from, .. } => {
            let agent = ticketd::mail::address::normalize(from).unwrap_or_else(|| from.clone());
            service
                .add_note(conn, *id, &agent, note_text.unwrap_or_default())
                .await?;
            format!("internal note added to ticket #{id}")
        }
        TicketCommand::List { .. } | TicketCommand::Show { .. } => String::new(),
    })
}

/// The text of `path`, or of standard input for `-`.
fn read_text(path: &std::path::Path) -> std::io::Result<String> {
    if path.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    }
}

fn print_ticket(t: &Ticket, participants: &[String], messages: &[MessageView]) {
    println!("Ticket #{}: {}", t.id, t.subject);
    println!("Status:       {}", t.status);
    println!("Priority:     {}", t.priority);
    println!(
        "Assignee:     {}",
        t.assignee.as_deref().unwrap_or("(nobody)")
    );
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
    if let Some(into) = t.merged_into {
        println!("Merged into:  #{into}");
    }
    println!("Created:      {}", timestamp(t.created_at));
    for m in messages {
        let who = match (&m.author.name, &m.author.address) {
            (Some(n), Some(a)) => format!("{n} <{a}>"),
            (None, Some(a)) => a.clone(),
            _ => "(unknown)".to_string(),
        };
        let mut class = if m.classification == "normal" {
            String::new()
        } else {
            format!(" [{}]", m.classification)
        };
        if m.internal {
            class.push_str(" [internal note]");
        }
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
