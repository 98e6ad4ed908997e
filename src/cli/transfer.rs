//! `ticketd export` and `ticketd import`: the directory and tickets as CSV or
//! JSON, and organizations and contacts back from CSV.

use std::collections::HashMap;
use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};
use serde::Serialize;
use ticketd::ingest::admin;
use ticketd::ingest::import::{self, ContactRow, Imported, Mode, OrganizationRow};
use ticketd::store::directory;
use ticketd::store::tickets::{self, Filter, Priority, Status};
use ticketd::store::{Store, StoreError, now};

use super::error::{CliError, Context};
use super::{Ctx, print_json, timestamp};

/// What goes between the items of a list in one CSV cell.
const LIST_SEPARATOR: char = ';';

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Csv,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum What {
    Orgs,
    Contacts,
    Tickets,
}

/// `ticketd export`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  ticketd export contacts > contacts.csv\n  \
    ticketd export tickets --org Acme --with-children --since 2026-01-01 --format json")]
pub struct ExportArgs {
    /// What to export: orgs, contacts or tickets.
    #[arg(value_enum)]
    what: What,
    /// csv (fixed headers, lists joined with `;`) or json.
    #[arg(long, value_enum, default_value = "csv")]
    format: Format,
    /// Tickets: only with this status.
    #[arg(long, value_parser = |s: &str| s.parse::<Status>())]
    status: Option<Status>,
    /// Contacts and tickets: only of this organization.
    #[arg(long, value_name = "NAME")]
    org: Option<String>,
    /// With --org: its child organizations too.
    #[arg(long, requires = "org")]
    with_children: bool,
    /// Tickets: only opened at or after this time (2026-01-01 or an RFC 3339 time).
    #[arg(long, value_name = "TIME", value_parser = super::audit::parse_since)]
    since: Option<i64>,
    /// Tickets: only with this priority.
    #[arg(long, value_parser = |s: &str| s.parse::<Priority>())]
    priority: Option<Priority>,
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Organizations from CSV (name,parent,domains,shares_tickets,notify,language).
    Orgs(ImportFile),
    /// Contacts from CSV (email,name,organization,roles,state,language).
    Contacts(ImportFile),
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Headers may come in any order; only name (orgs) or email \
    (contacts) is required. Every bad row is reported with its line and reason, and \
    nothing is imported when any row is bad unless --partial."
)]
pub struct ImportFile {
    /// The CSV file.
    file: PathBuf,
    /// Check every row and report, changing nothing.
    #[arg(long)]
    dry_run: bool,
    /// Import the good rows even when some are bad.
    #[arg(long)]
    partial: bool,
}

#[derive(Serialize)]
struct OrganizationOut {
    name: String,
    parent: String,
    domains: String,
    shares_tickets: bool,
    notify: String,
    language: String,
}

#[derive(Serialize)]
struct ContactOut {
    email: String,
    name: String,
    organization: String,
    roles: String,
    state: String,
    language: String,
}

#[derive(Serialize)]
struct TicketOut {
    id: i64,
    status: String,
    priority: String,
    subject: String,
    requester: String,
    organization: String,
    queue: String,
    assignee: String,
    created: String,
    updated: String,
    message_count: i64,
}

/// Exports to standard output.
pub async fn export(ctx: &Ctx, args: ExportArgs) -> Result<(), CliError> {
    const EXPORTING: &str = "cannot export";
    let (_store, mut conn) = ctx.connection().await?;
    let organization_id = match &args.org {
        Some(name) => {
            let id = admin::organization_id(&mut conn, name)
                .await
                .context(EXPORTING)?;
            Some(id)
        }
        None => None,
    };
    match args.what {
        What::Orgs => {
            let rows: Vec<OrganizationOut> = directory::list_organizations(&mut conn)
                .await
                .context(EXPORTING)?
                .into_iter()
                .map(|o| OrganizationOut {
                    name: o.name,
                    parent: o.parent.unwrap_or_default(),
                    domains: join(&o.domains),
                    shares_tickets: o.shares_tickets,
                    notify: join(&o.notify),
                    language: o.language.unwrap_or_default(),
                })
                .collect();
            write(args.format, &rows)
        }
        What::Contacts => {
            let mut list = directory::list_contacts(&mut conn, organization_id, None)
                .await
                .context(EXPORTING)?;
            list.sort_by(|a, b| a.email.cmp(&b.email));
            let rows: Vec<ContactOut> = list
                .into_iter()
                .map(|c| ContactOut {
                    roles: join(
                        &c.roles
                            .iter()
                            .map(|r| r.as_str().to_string())
                            .collect::<Vec<_>>(),
                    ),
                    state: c.state.as_str().to_string(),
                    email: c.email,
                    name: c.name.unwrap_or_default(),
                    organization: c.organization.unwrap_or_default(),
                    language: c.language.unwrap_or_default(),
                })
                .collect();
            write(args.format, &rows)
        }
        What::Tickets => {
            let filter = Filter {
                status: args.status,
                organization_id,
                priority: args.priority,
                with_children: args.with_children,
                since: args.since,
                ..Filter::default()
            };
            let rows: Vec<TicketOut> = tickets::list(&mut conn, &filter, None)
                .await
                .context(EXPORTING)?
                .into_iter()
                .map(|t| TicketOut {
                    id: t.id,
                    status: t.status.as_str().to_string(),
                    priority: t.priority.as_str().to_string(),
                    subject: t.subject,
                    requester: t.requester,
                    organization: t.organization.unwrap_or_default(),
                    queue: t.queue,
                    assignee: t.assignee.unwrap_or_default(),
                    created: timestamp(t.created_at),
                    updated: timestamp(t.updated_at),
                    message_count: t.message_count,
                })
                .collect();
            write(args.format, &rows)
        }
    }
}

fn join(items: &[String]) -> String {
    items.join(&LIST_SEPARATOR.to_string())
}

/// Rows as CSV (with their header) or a JSON array on standard output.
fn write<T: Serialize>(format: Format, rows: &[T]) -> Result<(), CliError> {
    if let Format::Json = format {
        return print_json(&rows);
    }
    let failed = |e: &dyn std::fmt::Display| CliError::Internal(format!("cannot write CSV: {e}"));
    let mut out = csv::Writer::from_writer(std::io::stdout().lock());
    for row in rows {
        out.serialize(row).map_err(|e| failed(&e))?;
    }
    out.flush().map_err(|e| failed(&e))
}

/// Imports organizations or contacts from a CSV file.
pub async fn import(ctx: &Ctx, cmd: ImportCommand) -> Result<(), CliError> {
    let store = ctx.store().await?;
    let (file, what) = match &cmd {
        ImportCommand::Orgs(f) => (f, "organizations"),
        ImportCommand::Contacts(f) => (f, "contacts"),
    };
    let records = read_csv(&file.file)?;
    let mode = if file.partial {
        Mode::Partial
    } else {
        Mode::AllOrNothing
    };
    let imported = run_import(ctx, &store, &cmd, &records, mode, file.dry_run).await?;
    for bad in &imported.rejected {
        eprintln!("{}:{}: {}", file.file.display(), bad.line, bad.reason);
    }
    let verb = if file.dry_run {
        "would import"
    } else {
        "imported"
    };
    if !imported.rejected.is_empty() && mode == Mode::AllOrNothing {
        return Err(CliError::Refused(format!(
            "{} bad row(s); nothing imported (fix them, or use --partial)",
            imported.rejected.len()
        )));
    }
    println!(
        "{verb} {} {what}; {} row(s) refused",
        imported.applied,
        imported.rejected.len()
    );
    if imported.rejected.is_empty() {
        Ok(())
    } else {
        Err(CliError::Reported(1))
    }
}

async fn run_import(
    ctx: &Ctx,
    store: &Store,
    cmd: &ImportCommand,
    records: &Records,
    mode: Mode,
    dry_run: bool,
) -> Result<Imported, CliError> {
    let mut tx = store.begin().await.context("cannot import")?;
    let imported = match cmd {
        ImportCommand::Orgs(_) => {
            let rows = organization_rows(records)?;
            import::organizations(&mut tx, &rows, mode, ctx.operator(), now()).await
        }
        ImportCommand::Contacts(_) => {
            let rows = contact_rows(records)?;
            import::contacts(&mut tx, &rows, mode, ctx.operator(), now()).await
        }
    }
    .context("cannot import")?;
    if dry_run {
        tx.rollback()
            .await
            .map_err(StoreError::from)
            .context("cannot import")?;
    } else {
        tx.commit()
            .await
            .map_err(StoreError::from)
            .context("cannot import")?;
    }
    Ok(imported)
}

/// A CSV file's rows as header → value maps, with each row's line.
struct Records(Vec<(u64, HashMap<String, String>)>);

fn read_csv(path: &std::path::Path) -> Result<Records, CliError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| CliError::NoInput(format!("cannot read {}: {e}", path.display())))?;
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| CliError::Refused(format!("{}: {e}", path.display())))?
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| CliError::Refused(format!("{}: {e}", path.display())))?;
        let line = record.position().map_or(0, |p| p.line());
        let values = headers
            .iter()
            .cloned()
            .zip(record.iter().map(str::to_string))
            .collect();
        rows.push((line, values));
    }
    Ok(Records(rows))
}

/// Refuses a file without `required` or with a column nobody knows.
fn check_headers(records: &Records, required: &str, known: &[&str]) -> Result<(), CliError> {
    for (_, row) in records.0.iter().take(1) {
        if !row.contains_key(required) {
            return Err(CliError::Refused(format!(
                "the CSV has no `{required}` column"
            )));
        }
        if let Some(unknown) = row.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(CliError::Refused(format!(
                "unknown column `{unknown}` (known: {})",
                known.join(", ")
            )));
        }
    }
    Ok(())
}

fn list(value: Option<&String>) -> Vec<String> {
    value
        .map(|v| {
            v.split(LIST_SEPARATOR)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn optional(value: Option<&String>) -> Option<String> {
    value.filter(|v| !v.is_empty()).cloned()
}

/// `true`, `yes` or `1` (any case); `false`, `no`, `0` and empty are false.
fn is_true(value: &str) -> bool {
    matches!(value.to_ascii_lowercase().as_str(), "true" | "yes" | "1")
}

fn organization_rows(records: &Records) -> Result<Vec<OrganizationRow>, CliError> {
    check_headers(
        records,
        "name",
        &[
            "name",
            "parent",
            "domains",
            "shares_tickets",
            "notify",
            "language",
        ],
    )?;
    for (line, row) in &records.0 {
        let value = row.get("shares_tickets").map(|v| v.to_ascii_lowercase());
        if let Some(value) = value
            && !matches!(
                value.as_str(),
                "" | "true" | "yes" | "1" | "false" | "no" | "0"
            )
        {
            return Err(CliError::Refused(format!(
                "line {line}: shares_tickets is `{value}`, not true or false; nothing imported"
            )));
        }
    }
    Ok(records
        .0
        .iter()
        .map(|(line, row)| OrganizationRow {
            line: *line,
            name: row.get("name").cloned().unwrap_or_default(),
            parent: optional(row.get("parent")),
            domains: list(row.get("domains")),
            shares_tickets: row.get("shares_tickets").is_some_and(|v| is_true(v)),
            notify: list(row.get("notify")),
            language: optional(row.get("language")),
        })
        .collect())
}

fn contact_rows(records: &Records) -> Result<Vec<ContactRow>, CliError> {
    check_headers(
        records,
        "email",
        &[
            "email",
            "name",
            "organization",
            "roles",
            "state",
            "language",
        ],
    )?;
    Ok(records
        .0
        .iter()
        .map(|(line, row)| ContactRow {
            line: *line,
            email: row.get("email").cloned().unwrap_or_default(),
            name: optional(row.get("name")),
            organization: optional(row.get("organization")),
            roles: list(row.get("roles")),
            state: optional(row.get("state")),
            language: optional(row.get("language")),
        })
        .collect())
}
