//! `ticketd ingest`: messages from files or standard input into tickets.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;
use ticketd::ingest::{IngestError, Pipeline, Report};

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

pub async fn run(ctx: &Ctx, args: IngestArgs) -> ExitCode {
    let store = match ctx.store().await {
        Ok(s) => s,
        Err(code) => return code,
    };
    let pipeline = match super::pipeline(ctx, &store).await {
        Ok(p) => p,
        Err(code) => return code,
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
        let code = ingest_one(&pipeline, file, &name, args.json).await;
        worst = worse(worst, code);
    }
    // The pipeline holds a connection; the pool closes only once it is back.
    drop(pipeline);
    store.close().await;
    ExitCode::from(worst)
}

async fn ingest_one(pipeline: &Pipeline, file: &std::path::Path, name: &str, json: bool) -> u8 {
    let raw = match super::read_input(file) {
        Ok(raw) => raw,
        Err(e) => {
            print_error(json, name, &format!("cannot read: {e}"));
            return exit::NO_INPUT;
        }
    };
    let source = if name == "-" {
        "stdin".to_string()
    } else {
        format!("file:{name}")
    };
    match pipeline.ingest(&raw, &source, None).await {
        Ok(report) => {
            print_report(json, name, &report);
            0
        }
        Err(e) => {
            print_error(json, name, &e.to_string());
            match &e {
                IngestError::NotAMessage(_) => exit::DATA_ERR,
                // A store or file failure: the MTA keeps the message and retries.
                // Other failures too, so that nothing is bounced or lost over a bug.
                _ => exit::TEMP_FAIL,
            }
        }
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
    eprintln!("ticketd ingest: {name}: {message}");
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
