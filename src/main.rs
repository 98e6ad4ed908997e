//! The `ticketd` command: parses arguments, loads configuration and dispatches.

mod cli;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = match cli::Cli::try_parse() {
        Ok(args) => args,
        Err(e) => {
            // A wrong flag in an MTA's pipe command must not bounce the mail, and
            // `--help` there must not report it delivered: only a person at a
            // terminal asks for help.
            let pipe_mode = std::env::args().skip(1).any(|word| word == "ingest");
            if pipe_mode && (e.use_stderr() || !std::io::stdin().is_terminal()) {
                let _ = e.print();
                eprintln!("ticketd ingest: deferred: the command line is wrong (see above)");
                return ExitCode::from(cli::exit::TEMP_FAIL);
            }
            e.exit();
        }
    };
    cli::run(args)
}
