//! `ticketd ingest`: messages from files or standard input into tickets.

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;
use ticketd::ingest::{IngestError, Pipeline, Report, read_up_to};
use ticketd::mail::RawMessage;
use ticketd::store::Store;

use super::error::CliError;
use super::{Ctx, exit};

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Print one JSON object per message: {"file", "outcome", "ticket", "reason"}.
    #[arg(long)]
    pub json: bool,
    /// Message files (RFC 5322, one message each); standard input when none is given.
    pub files: Vec<PathBuf>,
}

#[derive(Serialize)]
struct Line<'a> {
    file: &'a str,
    outcome: &'a str,
    ticket: Option<i64>,
    reason: Option<&'a str>,
}

/// Ingests every file. An MTA's pipe reads the exit code: 0 when every message
/// is recorded and on disk, 65 for input that is no message at all (bounced),
/// 75 for everything else (the MTA keeps the mail and tries again), 66 for a
/// named file that cannot be read. Each failure is printed here, in the
/// form an MTA logs, and returned as [`CliError::Reported`].
pub async fn run(ctx: &Ctx, args: IngestArgs) -> Result<(), CliError> {
    let store = match Store::open(&ctx.settings.store).await {
        Ok(s) => s,
        Err(e) => return Err(defer(&format!("cannot open the store: {e}"))),
    };
    let pipeline = match Pipeline::new(store.clone(), ctx.settings.clone()).await {
        Ok(p) => p,
        Err(e) => {
            store.close().await;
            return Err(defer(&format!("cannot prepare the pipeline: {e}")));
        }
    };
    let files = if args.files.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        args.files
    };
    let mut worst: u8 = 0;
    for file in &files {
        let name = if file.as_os_str() == "-" {
            "-".to_string()
        } else {
            file.display().to_string()
        };
        let max_bytes = ctx.settings.limits.max_message_bytes;
        let code = ingest_one(&pipeline, file, &name, args.json, max_bytes).await;
        worst = worse(worst, code);
    }
    // Exit 0 tells the MTA it may delete the mail: first make what was
    // committed durable (closing the store would only checkpoint, and sync,
    // when no other process has it open).
    let synced = pipeline.durability().sync().await;
    // The pipeline holds a connection; the pool closes only once it is back.
    drop(pipeline);
    store.close().await;
    if let Err(e) = synced {
        return Err(defer(&e.to_string()));
    }
    match worst {
        0 => Ok(()),
        code => Err(CliError::Reported(code)),
    }
}

/// Exit 75 with a one-line reason, which the MTA logs and keeps the mail for.
fn defer(reason: &str) -> CliError {
    eprintln!("ticketd ingest: deferred: {}", super::one_line(reason));
    CliError::Reported(exit::TEMP_FAIL)
}

async fn ingest_one(
    pipeline: &Pipeline,
    file: &std::path::Path,
    name: &str,
    json: bool,
    max_bytes: u64,
) -> u8 {
    let raw = match read_message_input(file, max_bytes) {
        Ok(raw) => raw,
        Err(e) => {
            print_error(json, name, &format!("cannot read: {e}"));
            // Standard input is the MTA's mail: keep it. A named file is the operator's.
            return if name == "-" {
                exit::TEMP_FAIL
            } else {
                exit::NO_INPUT
            };
        }
    };
    let source = if name == "-" {
        "stdin".to_string()
    } else {
        format!("file:{name}")
    };
    match pipeline.ingest(raw, &source, None).await {
        Ok(report) => {
            print_report(json, name, &report);
            0
        }
        Err(e) => {
            let code = match &e {
                IngestError::NotAMessage(_) => exit::DATA_ERR,
                // A store or file failure: the MTA keeps the message and retries.
                // Other failures too, so that nothing is bounced or lost over a bug.
                _ => exit::TEMP_FAIL,
            };
            let reason = if code == exit::TEMP_FAIL {
                format!("deferred: {e}")
            } else {
                e.to_string()
            };
            print_error(json, name, &reason);
            code
        }
    }
}

/// One message from a file, or from standard input for `-`, with no more than
/// the size limit kept in memory (see [`read_up_to`]).
fn read_message_input(path: &std::path::Path, max_bytes: u64) -> std::io::Result<RawMessage> {
    if path.as_os_str() == "-" {
        read_up_to(std::io::stdin().lock(), max_bytes)
    } else {
        std::fs::File::open(path)
            .and_then(|file| read_up_to(file, max_bytes))
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
    }
}

/// Combines exit codes: a temporary failure outranks bad input, which outranks success.
fn worse(a: u8, b: u8) -> u8 {
    let rank = |c: u8| match c {
        0 => 0,
        exit::DATA_ERR => 1,
        exit::NO_INPUT => 2,
        exit::TEMP_FAIL => 4,
        _ => 3,
    };
    if rank(b) > rank(a) { b } else { a }
}

fn print_report(json: bool, name: &str, report: &Report) {
    if json {
        let line = Line {
            file: name,
            outcome: report.outcome.as_str(),
            ticket: report.ticket,
            reason: report.reason.as_deref(),
        };
        println!("{}", serde_json::to_string(&line).unwrap_or_default());
        return;
    }
    let ticket = report
        .ticket
        .map(|t| format!(" ticket #{t}"))
        .unwrap_or_default();
    let held = report
        .held_id
        .map(|h| format!(" (held message #{h})"))
        .unwrap_or_default();
    let reason = report
        .reason
        .as_deref()
        .map(|r| format!(": {r}"))
        .unwrap_or_default();
    println!("{name}: {}{ticket}{held}{reason}", report.outcome.as_str());
}

fn print_error(json: bool, name: &str, message: &str) {
    if json {
        let line = Line {
            file: name,
            outcome: "error",
            ticket: None,
            reason: Some(message),
        };
        println!("{}", serde_json::to_string(&line).unwrap_or_default());
    }
    eprintln!("ticketd ingest: {name}: {}", super::one_line(message));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_failure_outranks_bad_input() {
        assert_eq!(worse(0, exit::DATA_ERR), exit::DATA_ERR);
        assert_eq!(worse(exit::TEMP_FAIL, exit::DATA_ERR), exit::TEMP_FAIL);
        assert_eq!(worse(exit::DATA_ERR, 0), exit::DATA_ERR);
    }
}
