//! `ticketd address`: addresses a proven delivery report flagged (no automatic
//! mail reaches them until the flag expires), shown and cleared.

use clap::Subcommand;
use serde::Serialize;
use ticketd::ingest::admin;
use ticketd::store::now;
use ticketd::store::outbox::{self, BounceFlag};

use super::error::{CliError, Context};
use super::{Ctx, email_address, print_json, timestamp};

#[derive(Debug, Subcommand)]
pub enum AddressCommand {
    /// List flagged addresses (or show one), with why and until when.
    List {
        /// Only this address.
        address: Option<String>,
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Lift the flag of an address: automatic mail reaches it again.
    Clear {
        /// The flagged address.
        address: String,
    },
}

#[derive(Serialize)]
struct FlagView<'a> {
    #[serde(flatten)]
    flag: &'a BounceFlag,
    expires_at: String,
}

/// Runs an `address` command; exit 1 when clearing an address that has no flag.
pub async fn run(ctx: &Ctx, cmd: AddressCommand) -> Result<(), CliError> {
    let (_store, mut conn) = ctx.connection().await?;
    let days = i64::try_from(ctx.settings.notify.bounce_flag_days).unwrap_or(i64::MAX / 86_400);
    let lifetime = days.saturating_mul(86_400);
    match cmd {
        AddressCommand::List { address, json } => {
            let wanted = address.as_deref().map(email_address).transpose()?;
            let flags =
                outbox::bounce_flags(&mut conn, now().saturating_sub(lifetime), wanted.as_deref())
                    .await
                    .context("cannot list flagged addresses")?;
            let views: Vec<FlagView> = flags
                .iter()
                .map(|flag| FlagView {
                    flag,
                    expires_at: timestamp(flag.at.saturating_add(lifetime)),
                })
                .collect();
            if json {
                return print_json(&views);
            }
            if views.is_empty() {
                match wanted {
                    Some(address) => println!("{address} is not flagged"),
                    None => println!("no address is flagged"),
                }
                return Ok(());
            }
            for view in &views {
                println!(
                    "{}  flagged {}  until {}  {}",
                    view.flag.address,
                    timestamp(view.flag.at),
                    view.expires_at,
                    view.flag.reason
                );
            }
            Ok(())
        }
        AddressCommand::Clear { address } => {
            let address = email_address(&address)?;
            let cleared = admin::clear_bounce_flag(&mut conn, &address, ctx.operator(), now())
                .await
                .context("cannot clear the flag")?;
            if !cleared {
                return Err(CliError::Refused(format!("{address} is not flagged")));
            }
            println!("{address}: flag cleared; automatic mail reaches it again");
            Ok(())
        }
    }
}
