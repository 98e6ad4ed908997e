//! `ticketd address`: addresses a proven delivery report flagged (no automatic
//! mail reaches them until the flag expires), shown and cleared.

use std::process::ExitCode;

use clap::Subcommand;
use serde::Serialize;
use ticketd::ingest::service::Actor;
use ticketd::mail::address;
use ticketd::store::events::{self, Event};
use ticketd::store::now;
use ticketd::store::outbox::{self, BounceFlag};

use super::{Ctx, fail, print_json, timestamp};

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
pub async fn run(ctx: &Ctx, cmd: AddressCommand) -> ExitCode {
    let (_store, mut conn) = match ctx.connection().await {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let days = i64::try_from(ctx.settings.notify.bounce_flag_days).unwrap_or(i64::MAX / 86_400);
    let lifetime = days.saturating_mul(86_400);
    match cmd {
        AddressCommand::List { address, json } => {
            let wanted = match address.as_deref().map(normalized).transpose() {
                Ok(wanted) => wanted,
                Err(code) => return code,
            };
            let flags = match outbox::bounce_flags(
                &mut conn,
                now().saturating_sub(lifetime),
                wanted.as_deref(),
            )
            .await
            {
                Ok(flags) => flags,
                Err(e) => return fail("cannot list flagged addresses", &e),
            };
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
                return ExitCode::SUCCESS;
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
            ExitCode::SUCCESS
        }
        AddressCommand::Clear { address } => {
            let address = match normalized(&address) {
                Ok(a) => a,
                Err(code) => return code,
            };
            let cleared = async {
                let cleared = outbox::clear_bounce_flag(&mut conn, &address).await?;
                if cleared {
                    let event = Event {
                        actor: Actor::OPERATOR.name,
                        action: "bounce_flag_cleared",
                        new_value: Some(&address),
                        ..Event::default()
                    };
                    events::record(&mut conn, &event, now()).await?;
                }
                Ok::<_, ticketd::store::StoreError>(cleared)
            };
            match cleared.await {
                Ok(true) => {
                    println!("{address}: flag cleared; automatic mail reaches it again");
                    ExitCode::SUCCESS
                }
                Ok(false) => {
                    eprintln!("ticketd: {address} is not flagged");
                    ExitCode::FAILURE
                }
                Err(e) => fail("cannot clear the flag", &e),
            }
        }
    }
}

fn normalized(raw: &str) -> Result<String, ExitCode> {
    address::normalize(raw).ok_or_else(|| {
        eprintln!("ticketd: `{raw}` is not an email address");
        ExitCode::from(super::exit::USAGE)
    })
}
