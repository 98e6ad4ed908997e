//! The `ticketd` command: parses arguments, loads configuration and dispatches.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = match cli::Cli::try_parse() {
        Ok(args) => args,
        Err(e) => {
            // A wrong flag in an MTA's pipe command must not bounce the mail.
            let pipe_mode = std::env::args().skip(1).any(|word| word == "ingest");
            if e.use_stderr() && pipe_mode {
                let _ = e.print();
                eprintln!("ticketd ingest: deferred: the command line is wrong (see above)");
                return ExitCode::from(cli::exit::TEMP_FAIL);
            }
            e.exit();
        }
    };
    cli::run(args)
}
