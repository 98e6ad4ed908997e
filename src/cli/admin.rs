//! `ticketd org|contact|agent`: the directory of who may write in and who answers.

use std::process::ExitCode;

use clap::Subcommand;
use ticketd::config::Role;
use ticketd::ingest::service::Actor;
use ticketd::mail::address;
use ticketd::store::directory::{self, ContactState, NewContact};
use ticketd::store::events::{self, Event};
use ticketd::store::{Store, StoreError, now};

use super::paging::{self, Paging};
use super::{Ctx, fail, print_json};

const OPERATOR: &str = Actor::OPERATOR.name;

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

fn normalized(email: &str) -> Result<String, ExitCode> {
    address::normalize(email).ok_or_else(|| {
        eprintln!("ticketd: `{email}` is not an email address");
        ExitCode::from(super::exit::USAGE)
    })
}

async fn organization_id(store: &Store, name: &str) -> Result<i64, StoreError> {
    let mut conn = store.conn().await?;
    directory::organization_by_name(&mut conn, name)
        .await?
        .map(|o| o.id)
        .ok_or_else(|| StoreError::NotFound(format!("no organization named `{name}`")))
}

pub async fn run_org(ctx: &Ctx, cmd: OrgCommand) -> ExitCode {
    let store = match ctx.store().await {
        Ok(s) => s,
        Err(code) => return code,
    };
    match cmd {
        OrgCommand::Add {
            name,
            domains,
            parent,
            shares_tickets,
            notify,
            language,
        } => {
            let mut clean_domains = Vec::new();
            for d in &domains {
                match address::normalize_domain(d) {
                    Some(d) => clean_domains.push(d),
                    None => {
                        eprintln!("ticketd: `{d}` is not a mail domain");
                        return ExitCode::from(super::exit::USAGE);
                    }
                }
            }
            let mut clean_notify = Vec::new();
            for a in &notify {
                match normalized(a) {
                    Ok(a) => clean_notify.push(a),
                    Err(code) => return code,
                }
            }
            let result = async {
                let parent_id = match &parent {
                    Some(p) => Some(organization_id(&store, p).await?),
                    None => None,
                };
                let mut tx = store.begin().await?;
                let t = now();
                let id = directory::create_organization(
                    &mut tx,
                    name.trim(),
                    parent_id,
                    shares_tickets,
                    language.as_deref(),
                    t,
                )
                .await?;
                for d in &clean_domains {
                    directory::add_organization_domain(&mut tx, id, d).await?;
                }
                for a in &clean_notify {
                    directory::add_organization_notify_address(&mut tx, id, a).await?;
                }
                events::record(
                    &mut tx,
                    &Event {
                        organization_id: Some(id),
                        actor: OPERATOR,
                        action: "organization_created",
                        new_value: Some(name.trim()),
                        ..Event::default()
                    },
                    t,
                )
                .await?;
                tx.commit().await?;
                Ok::<_, StoreError>(id)
            }
            .await;
            match result {
                Ok(id) => {
                    println!("organization `{}` added (id {id})", name.trim());
                    ExitCode::SUCCESS
                }
                Err(e) => fail("cannot add the organization", &e),
            }
        }
        OrgCommand::List { json } => {
            let list = async {
                let mut conn = store.conn().await?;
                directory::list_organizations(&mut conn).await
            }
            .await;
            let list = match list {
                Ok(l) => l,
                Err(e) => return fail("cannot list organizations", &e),
            };
            if json {
                return print_json(&list);
            }
            if list.is_empty() {
                println!("no organizations");
            }
            for o in &list {
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
            ExitCode::SUCCESS
        }
    }
}

pub async fn run_contact(ctx: &Ctx, cmd: ContactCommand) -> ExitCode {
    let store = match ctx.store().await {
        Ok(s) => s,
        Err(code) => return code,
    };
    match cmd {
        ContactCommand::Add {
            email,
            org,
            name,
            roles,
            language,
        } => {
            let email = match normalized(&email) {
                Ok(e) => e,
                Err(code) => return code,
            };
            let roles = if roles.is_empty() {
                vec![Role::Support]
            } else {
                roles
            };
            let result = async {
                let organization_id = match &org {
                    Some(o) => Some(organization_id(&store, o).await?),
                    None => None,
                };
                let mut tx = store.begin().await?;
                let t = now();
                let id = directory::create_contact(
                    &mut tx,
                    &NewContact {
                        email: email.clone(),
                        name: name.clone(),
                        organization_id,
                        roles,
                        language,
                    },
                    t,
                )
                .await?;
                events::record(
                    &mut tx,
                    &Event {
                        contact_id: Some(id),
                        organization_id,
                        actor: OPERATOR,
                        action: "contact_created",
                        new_value: Some(&email),
                        ..Event::default()
                    },
                    t,
                )
                .await?;
                tx.commit().await?;
                Ok::<_, StoreError>(())
            }
            .await;
            match result {
                Ok(()) => {
                    println!("contact {email} added");
                    ExitCode::SUCCESS
                }
                Err(e) => fail("cannot add the contact", &e),
            }
        }
        ContactCommand::List { org, paging, json } => {
            let rows = paging.rows(json);
            let list = async {
                let org_id = match &org {
                    Some(o) => Some(organization_id(&store, o).await?),
                    None => None,
                };
                let mut conn = store.conn().await?;
                directory::list_contacts(&mut conn, org_id, paging::fetch(rows)).await
            }
            .await;
            let mut list = match list {
                Ok(l) => l,
                Err(e) => return fail("cannot list contacts", &e),
            };
            paging::cut(&mut list, rows);
            list.sort_by(|a, b| a.email.cmp(&b.email));
            if json {
                return print_json(&list);
            }
            if list.is_empty() {
                println!("no contacts");
            }
            for c in &list {
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
            ExitCode::SUCCESS
        }
        ContactCommand::Lock { email } => set_state(&store, &email, ContactState::Locked).await,
        ContactCommand::Unlock { email } | ContactCommand::Activate { email } => {
            set_state(&store, &email, ContactState::Active).await
        }
        ContactCommand::Deactivate { email } => {
            set_state(&store, &email, ContactState::Inactive).await
        }
    }
}

async fn set_state(store: &Store, email: &str, state: ContactState) -> ExitCode {
    let email = match normalized(email) {
        Ok(e) => e,
        Err(code) => return code,
    };
    let result = async {
        let mut tx = store.begin().await?;
        let t = now();
        let before = directory::set_contact_state(&mut tx, &email, state, t).await?;
        if before.state != state {
            events::record(
                &mut tx,
                &Event {
                    contact_id: Some(before.id),
                    actor: OPERATOR,
                    action: "contact_state_changed",
                    old_value: Some(before.state.as_str()),
                    new_value: Some(state.as_str()),
                    ..Event::default()
                },
                t,
            )
            .await?;
        }
        tx.commit().await?;
        Ok::<_, StoreError>(before.state)
    }
    .await;
    match result {
        Ok(old) => {
            println!("contact {email}: {} → {}", old.as_str(), state.as_str());
            ExitCode::SUCCESS
        }
        Err(e) => fail("cannot change the contact", &e),
    }
}

pub async fn run_agent(ctx: &Ctx, cmd: AgentCommand) -> ExitCode {
    let store = match ctx.store().await {
        Ok(s) => s,
        Err(code) => return code,
    };
    match cmd {
        AgentCommand::Add { email, name, admin } => {
            let email = match normalized(&email) {
                Ok(e) => e,
                Err(code) => return code,
            };
            let result = async {
                let mut tx = store.begin().await?;
                let id =
                    directory::create_agent(&mut tx, &email, name.as_deref(), admin, now()).await?;
                tx.commit().await?;
                Ok::<_, StoreError>(id)
            }
            .await;
            match result {
                Ok(_) => {
                    println!("agent {email} added");
                    ExitCode::SUCCESS
                }
                Err(e) => fail("cannot add the agent", &e),
            }
        }
        AgentCommand::List { json } => {
            let list = async {
                let mut conn = store.conn().await?;
                directory::list_agents(&mut conn).await
            }
            .await;
            let list = match list {
                Ok(l) => l,
                Err(e) => return fail("cannot list agents", &e),
            };
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
            ExitCode::SUCCESS
        }
    }
}
