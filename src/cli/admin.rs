//! `ticketd org|contact|agent`: the directory of who may write in and who answers.

use clap::Subcommand;
use serde::Serialize;
use ticketd::config::Role;
use ticketd::ingest::admin::{self, ContactEdit, NewAgent, NewOrganization, OrganizationEdit};
use ticketd::mail::address;
use ticketd::store::directory::{self, ContactState, NewContact};
use ticketd::store::events::{self, EventRecord};
use ticketd::store::tickets::{self, Filter, Ticket};
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
    /// Change an organization; every change is audited.
    #[command(
        after_help = "Example:\n  ticketd org edit Acme --domain +acme.example --domain -old.example \\\n    \
        --parent \"Acme Group\" --shares-tickets true --notify +helpdesk@acme.example"
    )]
    Edit {
        /// The organization's name.
        name: String,
        /// A new name.
        #[arg(long, value_name = "NAME")]
        rename: Option<String>,
        /// `+DOMAIN` adds a mail domain, `-DOMAIN` removes one. Repeatable.
        #[arg(long = "domain", value_name = "+D|-D", allow_hyphen_values = true)]
        domains: Vec<String>,
        /// The parent organization (by name).
        #[arg(long, value_name = "NAME", conflicts_with = "no_parent")]
        parent: Option<String>,
        /// Make it an organization without a parent.
        #[arg(long)]
        no_parent: bool,
        /// Whether members see and follow up each other's tickets.
        #[arg(long, value_name = "true|false")]
        shares_tickets: Option<bool>,
        /// `+ADDRESS` adds a shared notification address, `-ADDRESS` removes one. Repeatable.
        #[arg(long = "notify", value_name = "+A|-A", allow_hyphen_values = true)]
        notify: Vec<String>,
        /// Language of notifications (en, fr, es, ja, sv).
        #[arg(long)]
        language: Option<String>,
    },
    /// Remove an organization no contact, ticket or child organization refers to.
    Remove {
        /// The organization's name.
        name: String,
    },
    /// Show an organization: domains, parent, children, contacts and open tickets.
    Show {
        /// The organization's name.
        name: String,
        /// Print a JSON object.
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
    /// Change a contact; every change is audited.
    #[command(
        after_help = "Example:\n  ticketd contact edit jane@acme.example --role +billing --role -license \\\n    \
        --email jane.doe@acme.example"
    )]
    Edit {
        /// The contact's email address.
        email: String,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// The organization the contact belongs to (by name).
        #[arg(long, value_name = "NAME")]
        org: Option<String>,
        /// `+ROLE` adds a role, `-ROLE` removes one (admin, support, billing, license). Repeatable.
        #[arg(long = "role", value_name = "+R|-R", allow_hyphen_values = true)]
        roles: Vec<String>,
        /// Language of notifications (en, fr, es, ja, sv).
        #[arg(long)]
        language: Option<String>,
        /// A new address (refused when another contact has it).
        #[arg(long = "email", value_name = "NEW")]
        new_email: Option<String>,
    },
    /// Show a contact with their tickets and audit trail.
    Show {
        /// The contact's email address.
        email: String,
        /// Print a JSON object.
        #[arg(long)]
        json: bool,
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
        OrgCommand::Edit {
            name,
            rename,
            domains,
            parent,
            no_parent,
            shares_tickets,
            notify,
            language,
        } => {
            let (add_domains, remove_domains) =
                signed(&domains, "domain", address::normalize_domain)?;
            let (add_notify, remove_notify) = signed(&notify, "address", address::normalize)?;
            let edit = OrganizationEdit {
                rename: rename.as_deref(),
                parent: if no_parent {
                    Some(None)
                } else {
                    parent.as_deref().map(Some)
                },
                shares_tickets,
                language: language.as_deref(),
                add_domains: &add_domains,
                remove_domains: &remove_domains,
                add_notify: &add_notify,
                remove_notify: &remove_notify,
            };
            let said = in_transaction(&store, async |tx| {
                admin::edit_organization(tx, &name, &edit, ctx.operator(), now()).await
            })
            .await
            .context("cannot change the organization")?;
            print_changes(&format!("organization `{name}`"), &said);
            Ok(())
        }
        OrgCommand::Remove { name } => {
            in_transaction(&store, async |tx| {
                admin::remove_organization(tx, &name, ctx.operator(), now()).await
            })
            .await
            .context("cannot remove the organization")?;
            println!("organization `{name}` removed");
            Ok(())
        }
        OrgCommand::Show { name, json } => show_organization(&store, &name, json).await,
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

/// `+X` and `-X` values split into what to add and what to remove, each
/// normalized by `normalize`; anything else is a usage error naming `what`.
fn signed(
    values: &[String],
    what: &str,
    normalize: impl Fn(&str) -> Option<String>,
) -> Result<(Vec<String>, Vec<String>), CliError> {
    let (mut add, mut remove) = (Vec::new(), Vec::new());
    for value in values {
        let (list, raw) = match (value.strip_prefix('+'), value.strip_prefix('-')) {
            (Some(raw), _) => (&mut add, raw),
            (_, Some(raw)) => (&mut remove, raw),
            _ => {
                return Err(CliError::Usage(format!(
                    "`{value}`: write +{what} to add or -{what} to remove"
                )));
            }
        };
        let clean = normalize(raw)
            .ok_or_else(|| CliError::Usage(format!("`{raw}` is not a valid {what}")))?;
        list.push(clean);
    }
    Ok((add, remove))
}

/// `+ROLE` and `-ROLE` values as roles to add and to remove.
fn signed_roles(values: &[String]) -> Result<(Vec<Role>, Vec<Role>), CliError> {
    let (add, remove) = signed(values, "role", |r| Some(r.trim().to_string()))?;
    let parse = |names: Vec<String>| {
        names
            .iter()
            .map(|n| n.parse::<Role>().map_err(CliError::Usage))
            .collect::<Result<Vec<_>, _>>()
    };
    Ok((parse(add)?, parse(remove)?))
}

fn print_changes(what: &str, said: &[String]) {
    if said.is_empty() {
        println!("{what}: nothing changed");
    }
    for line in said {
        println!("{what}: {line}");
    }
}

/// An organization as `org show` prints it.
#[derive(Serialize)]
struct OrganizationView {
    name: String,
    parent: Option<String>,
    children: Vec<String>,
    domains: Vec<String>,
    notify: Vec<String>,
    shares_tickets: bool,
    language: Option<String>,
    contacts: i64,
    tickets: i64,
    open_tickets: i64,
}

async fn show_organization(store: &Store, name: &str, json: bool) -> Result<(), CliError> {
    const LOADING: &str = "cannot show the organization";
    let mut conn = store.conn().await.context(LOADING)?;
    let org = admin::organization(&mut conn, name)
        .await
        .context(LOADING)?;
    let parent = match org.parent_id {
        Some(id) => directory::organization_by_id(&mut conn, id)
            .await
            .context(LOADING)?
            .map(|p| p.name),
        None => None,
    };
    let usage = directory::organization_usage(&mut conn, org.id)
        .await
        .context(LOADING)?;
    let view = OrganizationView {
        children: directory::organization_children(&mut conn, org.id)
            .await
            .context(LOADING)?,
        domains: directory::organization_domains(&mut conn, org.id)
            .await
            .context(LOADING)?,
        notify: directory::organization_notify_addresses(&mut conn, org.id)
            .await
            .context(LOADING)?,
        name: org.name,
        parent,
        shares_tickets: org.shares_tickets,
        language: org.language,
        contacts: usage.contacts,
        tickets: usage.tickets,
        open_tickets: usage.open_tickets,
    };
    if json {
        return print_json(&view);
    }
    println!("Organization:   {}", view.name);
    println!(
        "Parent:         {}",
        view.parent.as_deref().unwrap_or("(none)")
    );
    println!("Children:       {}", view.children.join(", "));
    println!("Domains:        {}", view.domains.join(", "));
    println!("Notify:         {}", view.notify.join(", "));
    println!(
        "Shares tickets: {}",
        if view.shares_tickets { "yes" } else { "no" }
    );
    println!(
        "Language:       {}",
        view.language.as_deref().unwrap_or("(default)")
    );
    println!("Contacts:       {}", view.contacts);
    println!(
        "Tickets:        {} ({} open)",
        view.tickets, view.open_tickets
    );
    Ok(())
}

/// A contact as `contact show` prints it.
#[derive(Serialize)]
struct ContactView {
    #[serde(flatten)]
    contact: directory::Contact,
    organization: Option<String>,
    tickets: Vec<TicketLine>,
    audit: Vec<EventRecord>,
}

#[derive(Serialize)]
struct TicketLine {
    id: i64,
    status: tickets::Status,
    subject: String,
}

impl From<Ticket> for TicketLine {
    fn from(t: Ticket) -> Self {
        TicketLine {
            id: t.id,
            status: t.status,
            subject: t.subject,
        }
    }
}

async fn show_contact(store: &Store, email: &str, json: bool) -> Result<(), CliError> {
    const LOADING: &str = "cannot show the contact";
    let email = email_address(email)?;
    let mut conn = store.conn().await.context(LOADING)?;
    let contact = directory::contact_by_email(&mut conn, &email)
        .await
        .context(LOADING)?
        .ok_or_else(|| CliError::Refused(format!("no contact `{email}`")))?;
    let organization = match contact.organization_id {
        Some(id) => directory::organization_by_id(&mut conn, id)
            .await
            .context(LOADING)?
            .map(|o| o.name),
        None => None,
    };
    let filter = Filter {
        requester: Some(email.clone()),
        ..Filter::default()
    };
    let tickets = tickets::list(&mut conn, &filter, None)
        .await
        .context(LOADING)?;
    let audit_filter = events::Filter {
        contact_id: Some(contact.id),
        ..events::Filter::default()
    };
    let audit = events::search(&mut conn, &audit_filter, None)
        .await
        .context(LOADING)?;
    let view = ContactView {
        contact,
        organization,
        tickets: tickets.into_iter().map(TicketLine::from).collect(),
        audit,
    };
    if json {
        return print_json(&view);
    }
    let c = &view.contact;
    let roles: Vec<&str> = c.roles.iter().map(|r| r.as_str()).collect();
    println!("Contact:      {}", c.email);
    println!("Name:         {}", c.name.as_deref().unwrap_or(""));
    println!(
        "Organization: {}",
        view.organization.as_deref().unwrap_or("(none)")
    );
    println!("Roles:        {}", roles.join(", "));
    println!("State:        {}", c.state.as_str());
    println!(
        "Language:     {}",
        c.language.as_deref().unwrap_or("(default)")
    );
    println!("\nTickets:");
    for t in &view.tickets {
        println!("  #{:<6} {:<8} {}", t.id, t.status.as_str(), t.subject);
    }
    println!("\nAudit:");
    for e in &view.audit {
        println!(
            "  {}  {:<24} {:<28} {} → {}",
            super::timestamp(e.at),
            e.actor,
            e.action,
            e.old_value.as_deref().unwrap_or(""),
            e.new_value.as_deref().unwrap_or("")
        );
    }
    Ok(())
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
        ContactCommand::Edit {
            email,
            name,
            org,
            roles,
            language,
            new_email,
        } => {
            let email = email_address(&email)?;
            let new_email = new_email.as_deref().map(email_address).transpose()?;
            let (add_roles, remove_roles) = signed_roles(&roles)?;
            let edit = ContactEdit {
                name: name.as_deref(),
                organization: org.as_deref(),
                add_roles: &add_roles,
                remove_roles: &remove_roles,
                language: language.as_deref(),
                email: new_email.as_deref(),
            };
            let said = in_transaction(&store, async |tx| {
                admin::edit_contact(tx, &email, &edit, ctx.operator(), now()).await
            })
            .await
            .context("cannot change the contact")?;
            print_changes(&format!("contact {email}"), &said);
            Ok(())
        }
        ContactCommand::Show { email, json } => show_contact(&store, &email, json).await,
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
