//! `ticketd audit`: who did what and when, with the old and the new value.

use clap::Args;
use ticketd::ingest::admin;
use ticketd::store::directory;
use ticketd::store::events::{self, EventRecord, Filter};

use super::error::{CliError, Context};
use super::paging::{self, Paging};
use super::{Ctx, email_address, print_json, timestamp};

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  ticketd audit --ticket 42\n  \
    ticketd audit --org Acme --since 2026-11-01\n  ticketd audit --actor system --json")]
pub struct AuditArgs {
    /// Only changes to this ticket.
    #[arg(long, value_name = "ID")]
    ticket: Option<i64>,
    /// Only changes to this contact or to tickets they asked.
    #[arg(long, value_name = "EMAIL")]
    contact: Option<String>,
    /// Only changes to this organization, its contacts or its tickets.
    #[arg(long, value_name = "NAME")]
    org: Option<String>,
    /// Only changes by this actor: a user name, an address, or `system`.
    #[arg(long, value_name = "ACTOR")]
    actor: Option<String>,
    /// Only changes at or after this time (2026-11-01 or 2026-11-01T09:00:00Z).
    #[arg(long, value_name = "TIME", value_parser = parse_since)]
    since: Option<i64>,
    #[command(flatten)]
    paging: Paging,
    /// Print a JSON array.
    #[arg(long)]
    json: bool,
}

/// A date (midnight UTC) or an RFC 3339 time, as Unix seconds.
pub(super) fn parse_since(text: &str) -> Result<i64, String> {
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(at.timestamp());
    }
    chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp())
        .ok_or_else(|| format!("`{text}` is neither a date (2026-11-01) nor an RFC 3339 time"))
}

/// Lists audit events, newest first.
pub async fn run(ctx: &Ctx, args: AuditArgs) -> Result<(), CliError> {
    const LISTING: &str = "cannot list the audit log";
    let (_store, mut conn) = ctx.connection().await?;
    let contact_id = match &args.contact {
        Some(email) => {
            let email = email_address(email)?;
            let contact = directory::contact_by_email(&mut conn, &email)
                .await
                .context(LISTING)?;
            Some(
                contact
                    .ok_or_else(|| CliError::Refused(format!("no contact `{email}`")))?
                    .id,
            )
        }
        None => None,
    };
    let organization_id = match &args.org {
        Some(name) => Some(
            admin::organization_id(&mut conn, name)
                .await
                .context(LISTING)?,
        ),
        None => None,
    };
    let filter = Filter {
        ticket_id: args.ticket,
        contact_id,
        organization_id,
        actor: args.actor.as_deref(),
        since: args.since,
    };
    let rows = args.paging.rows(args.json);
    let mut list = events::search(&mut conn, &filter, paging::fetch(rows))
        .await
        .context(LISTING)?;
    paging::cut(&mut list, rows);
    if args.json {
        return print_json(&list);
    }
    if list.is_empty() {
        println!("no changes");
    }
    for event in &list {
        print_event(event);
    }
    Ok(())
}

fn print_event(e: &EventRecord) {
    let about = [
        e.ticket_id.map(|id| format!("ticket #{id}")),
        e.held_id.map(|id| format!("held #{id}")),
        e.contact_id.map(|id| format!("contact {id}")),
        e.organization_id.map(|id| format!("organization {id}")),
    ]
    .into_iter()
    .flatten()
    .next()
    .unwrap_or_default();
    let change = match (&e.old_value, &e.new_value) {
        (Some(old), Some(new)) => format!("{old} → {new}"),
        (None, Some(new)) => new.clone(),
        (Some(old), None) => format!("{old} →"),
        (None, None) => String::new(),
    };
    println!(
        "{}  {:<24} {:<22} {:<16} {change}",
        timestamp(e.at),
        e.actor,
        e.action,
        about
    );
}
