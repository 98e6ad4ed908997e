//! `ticketd org|contact|agent`: the directory of who may write in and who answers.

use clap::Subcommand;
use ticketd::config::Role;
use ticketd::ingest::admin::{self, NewAgent, NewOrganization};
use ticketd::mail::address;
use ticketd::store::directory::{self, ContactState, NewContact};
use ticketd::store::{Store, now};

use super::error::{CliError, Context};
use super::paging::{self, Paging};
use super::{Ctx, email_address, in_transaction, print_json};

#[derive(Debug, Subcommand)]
pub enum OrgCommand {
    /// Add an organization.
    Add {
        /// Its name (unique).
        name: String,
        /// A mail domain of the organization; unknown senders from it join it. Repeatable.
        #[arg(long = "domain", value_name = "DOMAIN")]
        domains: Vec<String>,
        /// The parent organization (by name).
        #[arg(long, value_name = "NAME")]
        parent: Option<String>,
        /// Members may see and follow up each other's tickets.
        #[arg(long)]
        shares_tickets: bool,
        /// A shared address (distribution list) that receives the organization's notifications. Repeatable.
        #[arg(long = "notify", value_name = "ADDRESS")]
        notify: Vec<String>,
        /// Language of notifications (en, fr, es, ja, sv).
        #[arg(long)]
        language: Option<String>,
    },
    /// List organizations.
    List {
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ContactCommand {
    /// Add a contact.
    Add {
        /// The contact's email address.
        email: String,
        /// The organization the contact belongs to (by name).
        #[arg(long, value_name = "NAME")]
        org: Option<String>,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// A role: admin, support, billing or license. Repeatable; default support.
        #[arg(long = "role", value_name = "ROLE", value_parser = parse_role)]
        roles: Vec<Role>,
        /// Language of notifications (en, fr, es, ja, sv).
        #[arg(long)]
        language: Option<String>,
    },
    /// List contacts, by address.
    List {
        /// Only contacts of this organization (by name).
        #[arg(long, value_name = "NAME")]
        org: Option<String>,
        #[command(flatten)]
        paging: Paging,
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Lock a contact: their mail is held until unlocked.
    Lock {
        /// The contact's email address.
        email: String,
    },
    /// Unlock a locked contact.
    Unlock {
        /// The contact's email address.
        email: String,
    },
    /// Deactivate a contact: their mail is held until activated.
    Deactivate {
        /// The contact's email address.
        email: String,
    },
    /// Activate a deactivated contact.
    Activate {
        /// The contact's email address.
        email: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Add an agent.
    Add {
        /// The agent's email address (the one they answer from).
        email: String,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// The agent administers ticketd.
        #[arg(long)]
        admin: bool,
    },
    /// List agents.
    List {
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
}

/// Runs an `org` subcommand.
pub async fn run_org(ctx: &Ctx, cmd: OrgCommand) -> Result<(), CliError> {
    let store = ctx.store().await?;
    match cmd {
        OrgCommand::Add {
            name,
            domains,
            parent,
            shares_tickets,
            notify,
            language,
        } => {
            let domains = domains
                .iter()
                .map(|d| {
                    address::normalize_domain(d)
                        .ok_or_else(|| CliError::Usage(format!("`{d}` is not a mail domain")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let notify = notify
                .iter()
                .map(|a| email_address(a))
                .collect::<Result<Vec<_>, _>>()?;
            let name = name.trim();
            let org = NewOrganization {
                name,
                parent: parent.as_deref(),
                shares_tickets,
                language: language.as_deref(),
                domains: &domains,
                notify: &notify,
            };
            let id = in_transaction(&store, async |tx| {
                admin::add_organization(tx, &org, ctx.operator(), now()).await
            })
            .await
            .context("cannot add the organization")?;
            println!("organization `{name}` added (id {id})");
            Ok(())
        }
        OrgCommand::List { json } => {
            let mut conn = store.conn().await.context("cannot list organizations")?;
            let list = directory::list_organizations(&mut conn)
                .await
                .context("cannot list organizations")?;
            if json {
                return print_json(&list);
            }
            print_organizations(&list);
            Ok(())
        }
    }
}

fn print_organizations(list: &[directory::OrganizationListing]) {
    if list.is_empty() {
        println!("no organizations");
    }
    for o in list {
        println!(
            "{:<24} domains: {:<30} contacts: {:<4} shares tickets: {}{}{}",
            o.name,
            o.domains.join(","),
            o.contacts,
            if o.shares_tickets { "yes" } else { "no" },
            o.parent
                .as_deref()
                .map(|p| format!("  parent: {p}"))
                .unwrap_or_default(),
            if o.notify.is_empty() {
                String::new()
            } else {
                format!("  notify: {}", o.notify.join(","))
            }
        );
    }
}

/// Runs a `contact` subcommand.
pub async fn run_contact(ctx: &Ctx, cmd: ContactCommand) -> Result<(), CliError> {
    let store = ctx.store().await?;
    match cmd {
        ContactCommand::Add {
            email,
            org,
            name,
            roles,
            language,
        } => {
            let email = email_address(&email)?;
            let roles = if roles.is_empty() {
                vec![Role::Support]
            } else {
                roles
            };
            in_transaction(&store, async |tx| {
                let organization_id = match &org {
                    Some(o) => Some(admin::organization_id(tx, o).await?),
                    None => None,
                };
                let contact = NewContact {
                    email: email.clone(),
                    name,
                    organization_id,
                    roles,
                    language,
                };
                admin::add_contact(tx, &contact, ctx.operator(), now()).await
            })
            .await
            .context("cannot add the contact")?;
            println!("contact {email} added");
            Ok(())
        }
        ContactCommand::List { org, paging, json } => {
            let rows = paging.rows(json);
            let mut conn = store.conn().await.context("cannot list contacts")?;
            let org_id = match &org {
                Some(o) => Some(
                    admin::organization_id(&mut conn, o)
                        .await
                        .context("cannot list contacts")?,
                ),
                None => None,
            };
            let mut list = directory::list_contacts(&mut conn, org_id, paging::fetch(rows))
                .await
                .context("cannot list contacts")?;
            paging::cut(&mut list, rows);
            list.sort_by(|a, b| a.email.cmp(&b.email));
            if json {
                return print_json(&list);
            }
            print_contacts(&list);
            Ok(())
        }
        ContactCommand::Lock { email } => {
            set_state(ctx, &store, &email, ContactState::Locked).await
        }
        ContactCommand::Unlock { email } | ContactCommand::Activate { email } => {
            set_state(ctx, &store, &email, ContactState::Active).await
        }
        ContactCommand::Deactivate { email } => {
            set_state(ctx, &store, &email, ContactState::Inactive).await
        }
    }
}

fn print_contacts(list: &[directory::ContactListing]) {
    if list.is_empty() {
        println!("no contacts");
    }
    for c in list {
        let roles: Vec<&str> = c.roles.iter().map(|r| r.as_str()).collect();
        println!(
            "{:<36} {:<8} {:<24} {:<20} {}",
            c.email,
            c.state.as_str(),
            c.organization.as_deref().unwrap_or("-"),
            roles.join(","),
            c.name.as_deref().unwrap_or("")
        );
    }
}

async fn set_state(
    ctx: &Ctx,
    store: &Store,
    email: &str,
    state: ContactState,
) -> Result<(), CliError> {
    let email = email_address(email)?;
    let old = in_transaction(store, async |tx| {
        admin::set_contact_state(tx, &email, state, ctx.operator(), now()).await
    })
    .await
    .context("cannot change the contact")?;
    println!("contact {email}: {} → {}", old.as_str(), state.as_str());
    Ok(())
}

/// Runs an `agent` subcommand.
pub async fn run_agent(ctx: &Ctx, cmd: AgentCommand) -> Result<(), CliError> {
    let store = ctx.store().await?;
    match cmd {
        AgentCommand::Add { email, name, admin } => {
            let email = email_address(&email)?;
            let agent = NewAgent {
                email: &email,
                name: name.as_deref(),
                is_admin: admin,
            };
            in_transaction(&store, async |tx| {
                admin::add_agent(tx, &agent, ctx.operator(), now()).await
            })
            .await
            .context("cannot add the agent")?;
            println!("agent {email} added");
            Ok(())
        }
        AgentCommand::List { json } => {
            let mut conn = store.conn().await.context("cannot list agents")?;
            let list = directory::list_agents(&mut conn)
                .await
                .context("cannot list agents")?;
            if json {
                return print_json(&list);
            }
            if list.is_empty() {
                println!("no agents");
            }
            for a in &list {
                println!(
                    "{:<36} {:<8} {}{}",
                    a.email,
                    if a.active { "active" } else { "inactive" },
                    a.name.as_deref().unwrap_or(""),
                    if a.is_admin { " (admin)" } else { "" }
                );
            }
            Ok(())
        }
    }
}
