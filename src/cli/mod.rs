//! Command-line interface: one module per command group.

mod address;
mod admin;
mod audit;
mod error;
mod held;
mod ingest;
mod outbox;
mod paging;
mod parse;
#[cfg(test)]
mod readme;
mod service_user;
mod template;
mod ticket;
mod transfer;

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};
use ticketd::config::{self, Settings};
use ticketd::store::{Store, StoreError};

use error::{CliError, Context};
use ticketd::ingest::service::Actor;

/// Exit codes from sysexits.h, which MTAs (Postfix `pipe`, procmail) understand.
pub mod exit {
    /// Bad command-line usage (EX_USAGE).
    pub const USAGE: u8 = 64;
    /// The input is not an email message at all (EX_DATAERR).
    pub const DATA_ERR: u8 = 65;
    /// An input file cannot be read (EX_NOINPUT).
    pub const NO_INPUT: u8 = 66;
    /// An internal error (EX_SOFTWARE).
    pub const SOFTWARE: u8 = 70;
    /// The store is unavailable; try again later (EX_TEMPFAIL).
    pub const TEMP_FAIL: u8 = 75;
    /// Not allowed to act on the store as this user (EX_NOPERM).
    pub const NO_PERM: u8 = 77;
    /// The configuration is wrong (EX_CONFIG).
    pub const CONFIG: u8 = 78;
}

#[derive(Debug, Parser)]
#[command(
    name = "ticketd",
    version,
    about = "An email-driven helpdesk daemon: mail in, tickets out, notifications back",
    long_about = "An email-driven helpdesk daemon: mail in, tickets out, notifications back.\n\n\
        Every command reads the embedded defaults, then the file given with --config (or \
        $TICKETD_CONFIG), then TICKETD__SECTION__KEY environment variables. \
        `ticketd config check` shows the result."
)]
pub struct Cli {
    /// Configuration file layered on the embedded defaults (else $TICKETD_CONFIG).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log format on standard error.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: read the configured mailboxes, send notifications, remind.
    ///
    /// Reads the configured IMAP mailboxes and Maildirs into tickets, sends what
    /// the outbox holds (notifications queued by the daemon and by `ticketd
    /// ingest`) over SMTP or into the sent Maildir, and reminds customers of
    /// tickets pending for `notify.reminder_after_hours`, until stopped.
    /// Stops cleanly on SIGTERM or SIGINT. Under systemd (Type=notify) it reports
    /// readiness and feeds the watchdog. Logs go to standard error; RUST_LOG filters.
    Run,
    /// Turn messages into tickets: each FILE (or standard input) is one message.
    ///
    /// Made for an MTA's pipe transport: exits 0 when every message was
    /// recorded and synced to disk (a held message counts), 65 for input that
    /// is not a message at all, and 75 for any other failure (configuration,
    /// store, permissions, a bug), so the MTA keeps the mail and tries again.
    Ingest(ingest::IngestArgs),
    /// Show what the pipeline sees in a message, storing nothing.
    Parse(parse::ParseArgs),
    /// List, show and change tickets.
    #[command(subcommand)]
    Ticket(ticket::TicketCommand),
    /// Manage organizations.
    #[command(subcommand)]
    Org(admin::OrgCommand),
    /// Manage contacts: customers who write in.
    #[command(subcommand)]
    Contact(admin::ContactCommand),
    /// Manage agents: the people who answer.
    #[command(subcommand)]
    Agent(admin::AgentCommand),
    /// Review messages held back (locked senders, unknown senders, automatic mail…).
    #[command(subcommand)]
    Held(held::HeldCommand),
    /// Notifications waiting to go out, sent or failed.
    #[command(subcommand)]
    Outbox(outbox::OutboxCommand),
    /// Addresses flagged after a proven delivery failure: list and clear.
    #[command(subcommand)]
    Address(address::AddressCommand),
    /// The audit log: who changed what and when, with the old and new value.
    Audit(audit::AuditArgs),
    /// Organizations, contacts or tickets as CSV or JSON on standard output.
    Export(transfer::ExportArgs),
    /// Organizations or contacts from a CSV file.
    #[command(subcommand)]
    Import(transfer::ImportCommand),
    /// Preview notification templates.
    #[command(subcommand)]
    Template(template::TemplateCommand),
    /// Create or upgrade the database schema, store the configured queues, make the reply-token key.
    Migrate,
    /// Configuration commands.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration and print it as ticketd sees it (secrets masked).
    Check,
}

/// Settings and the file they came from, shared by every command.
pub struct Ctx {
    pub settings: Arc<Settings>,
    /// Who runs the command, as the audit log names them.
    pub operator: String,
}

impl Ctx {
    /// The operator as the actor of a change.
    pub fn operator(&self) -> Actor<'_> {
        Actor {
            name: &self.operator,
        }
    }

    /// Opens (and migrates) the store.
    pub async fn store(&self) -> Result<Store, CliError> {
        Store::open(&self.settings.store)
            .await
            .context("cannot open the store")
    }

    /// Opens the store and takes a connection from it.
    pub async fn connection(
        &self,
    ) -> Result<(Store, sqlx::pool::PoolConnection<sqlx::Any>), CliError> {
        let store = self.store().await?;
        let conn = store.conn().await.context("cannot reach the store")?;
        Ok((store, conn))
    }
}

/// `raw` as a normalized email address, or a usage error naming it.
pub fn email_address(raw: &str) -> Result<String, CliError> {
    ticketd::mail::address::normalize(raw)
        .ok_or_else(|| CliError::Usage(format!("`{raw}` is not an email address")))
}

/// Runs `change` in one transaction of `store`, committed when it succeeds.
pub async fn in_transaction<T>(
    store: &Store,
    change: impl AsyncFnOnce(&mut ticketd::store::Conn) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let mut tx = store.begin().await?;
    let done = change(&mut tx).await?;
    tx.commit().await?;
    Ok(done)
}

/// Opens the ingest pipeline (store, queues, templates).
pub async fn pipeline(ctx: &Ctx, store: &Store) -> Result<ticketd::ingest::Pipeline, CliError> {
    ticketd::ingest::Pipeline::new(store.clone(), ctx.settings.clone())
        .await
        .context("cannot prepare the pipeline")
}

/// `ticketd ticket list | head` ends quietly, as Unix tools do, instead of
/// panicking on the closed pipe. The daemon and `ingest` keep ignoring SIGPIPE:
/// a vanished reader must not kill them in the middle of their work.
fn quiet_on_closed_pipe() {
    // SAFETY: called once, before any other thread exists; restores the default action.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

pub fn run(cli: Cli) -> ExitCode {
    // The pipe's output is what the MTA logs: only its own report or reason
    // line, unless RUST_LOG asks for more.
    let default_level = match cli.command {
        Command::Run => "info",
        Command::Ingest(_) => "off",
        _ => "warn",
    };
    init_logging(cli.log_format, default_level);
    if !matches!(cli.command, Command::Run | Command::Ingest(_)) {
        quiet_on_closed_pipe();
    }
    // One TLS provider for the whole process (see DESIGN.md): ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config_file = config::config_path(cli.config);
    // An MTA bounces the customer's mail on any exit code but 0 and 75: in
    // pipe mode every failure that is not the input's own fault is 75.
    let pipe_mode = matches!(cli.command, Command::Ingest(_));
    let failed = |code: u8| {
        if pipe_mode {
            ExitCode::from(exit::TEMP_FAIL)
        } else {
            ExitCode::from(code)
        }
    };
    let finish = |result: Result<(), CliError>| match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if e.unreported() {
                eprintln!("ticketd: {e}");
            }
            // `ingest` reports its own codes, 65 and 66 among them.
            match e {
                CliError::Reported(code) => ExitCode::from(code),
                e => failed(e.exit_code()),
            }
        }
    };
    if let Command::Parse(args) = cli.command {
        return finish(parse::run(args, config_file.as_deref()));
    }
    let settings = match load_settings(config_file.as_deref(), pipe_mode) {
        Ok(s) => Arc::new(s),
        Err(code) => return failed(code),
    };
    if let Command::Config(ConfigCommand::Check) = cli.command {
        return finish(config_check(&settings, config_file.as_deref()));
    }
    let argv: Vec<String> = std::env::args().collect();
    match service_user::become_store_owner(&settings, &argv) {
        Ok(service_user::RunAs::Unchanged) => {}
        Ok(service_user::RunAs::Switched { user, owner_of }) => {
            if !pipe_mode {
                eprintln!(
                    "ticketd: running as {user}, the owner of {}",
                    owner_of.display()
                );
            }
        }
        Err(e) => {
            eprintln!("ticketd: refusing to run as root: {e}");
            return failed(exit::NO_PERM);
        }
    }
    if pipe_mode && let Err(e) = service_user::store_writable(&settings) {
        eprintln!("ticketd ingest: deferred: {e}");
        return failed(exit::NO_PERM);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ticketd: cannot start the async runtime: {e}");
            return failed(exit::SOFTWARE);
        }
    };
    let ctx = Ctx {
        settings,
        operator: ticketd::ingest::service::operator_name(),
    };
    let dispatch = move || {
        let result = runtime.block_on(async move {
            match cli.command {
                Command::Ingest(args) => ingest::run(&ctx, args).await,
                Command::Ticket(cmd) => ticket::run(&ctx, cmd).await,
                Command::Org(cmd) => admin::run_org(&ctx, cmd).await,
                Command::Contact(cmd) => admin::run_contact(&ctx, cmd).await,
                Command::Agent(cmd) => admin::run_agent(&ctx, cmd).await,
                Command::Held(cmd) => held::run(&ctx, cmd).await,
                Command::Outbox(cmd) => outbox::run(&ctx, cmd).await,
                Command::Address(cmd) => address::run(&ctx, cmd).await,
                Command::Audit(args) => audit::run(&ctx, args).await,
                Command::Export(args) => transfer::export(&ctx, args).await,
                Command::Import(cmd) => transfer::import(&ctx, cmd).await,
                Command::Template(cmd) => template::run(&ctx, cmd).await,
                Command::Migrate => migrate(&ctx).await,
                Command::Run => ticketd::daemon::run(ctx.settings.clone())
                    .await
                    .map_err(|e| CliError::Internal(format!("run: {e:#}"))),
                Command::Parse(_) | Command::Config(_) => Ok(()),
            }
        });
        finish(result)
    };
    if !pipe_mode {
        return dispatch();
    }
    // A bug must not bounce mail either.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(dispatch)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        eprintln!(
            "ticketd ingest: deferred: internal error: {}",
            one_line(&what)
        );
        ExitCode::from(exit::TEMP_FAIL)
    })
}

/// `text` on one line (an MTA logs the first line of a failed command).
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Logs go to standard error: readable text (colored on a terminal) or JSON
/// lines; `RUST_LOG` filters (default `default_level`).
pub fn init_logging(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
}

fn config_check(settings: &Settings, file: Option<&Path>) -> Result<(), CliError> {
    let templates =
        ticketd::notify::templates::Templates::load(settings.notify.templates_dir.as_deref())
            .map_err(|e| CliError::Config(e.to_string()))?;
    match file {
        Some(path) => println!("# configuration: embedded defaults + {}", path.display()),
        None => println!("# configuration: embedded defaults (no file given)"),
    }
    print!("{}", settings.to_masked_toml());
    for warning in settings.warnings() {
        eprintln!("ticketd: warning: {warning}");
    }
    let languages: Vec<&str> = templates.languages().collect();
    eprintln!(
        "ticketd: configuration is valid; templates compiled ({})",
        languages.join(", ")
    );
    Ok(())
}

async fn migrate(ctx: &Ctx) -> Result<(), CliError> {
    let store = Store::connect(&ctx.settings.store)
        .await
        .context("cannot connect to the store")?;
    let prepared = async {
        store.migrate().await?;
        // The configured queues too, so that `ingest` (often run as another
        // user) only reads before a message's own transaction.
        let mut conn = store.conn().await?;
        ticketd::store::queues::load(&mut conn, &ctx.settings.queues).await?;
        Ok::<(), StoreError>(())
    };
    prepared.await.context("migration failed")?;
    // And the reply-token key, made once here rather than by a delivery.
    let tickets = &ctx.settings.tickets;
    ticketd::credentials::reply_token_secret(
        tickets.reply_token_secret.as_deref(),
        tickets.reply_token_secret_file.as_deref(),
        &ctx.settings.data.dir,
    )
    .map_err(|e| CliError::Config(format!("cannot make the reply token secret: {e}")))?;
    println!(
        "database schema is up to date ({})",
        config::mask_url_password(&ctx.settings.store.url)
    );
    Ok(())
}

/// Loads the settings, printing a clear error (on one line in pipe mode) when
/// they are wrong; the error is the exit code to use.
pub fn load_settings(file: Option<&Path>, pipe_mode: bool) -> Result<Settings, u8> {
    Settings::load(file).map_err(|e| {
        if pipe_mode {
            eprintln!("ticketd ingest: deferred: {}", one_line(&e.to_string()));
        } else {
            eprintln!("ticketd: {e}");
        }
        exit::CONFIG
    })
}

/// Reads a whole message from a file, or from standard input for `-`.
pub fn read_input(path: &Path) -> std::io::Result<Vec<u8>> {
    if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf)?;
        Ok(buf)
    } else {
        std::fs::read(path)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
    }
}

/// Prints a value as pretty JSON on standard output.
pub fn print_json<T: serde::Serialize>(value: &T) -> Result<(), CliError> {
    let json = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::Internal(format!("cannot encode JSON: {e}")))?;
    println!("{json}");
    Ok(())
}

pub use ticketd::store::rfc3339 as timestamp;
