//! Changes outside tickets — the directory (organizations, contacts, agents),
//! bounce flags and held messages — each written with its audit event in the
//! caller's transaction. The command line and the pipeline both come here.

use super::service::Actor;
use crate::config::Role;
use crate::store::directory::{self, ContactState, NewContact, Organization, OrganizationList};
use crate::store::events::{self, Event};
use crate::store::{Conn, StoreError, intake, outbox, tickets};

/// An organization to add.
pub struct NewOrganization<'a> {
    pub name: &'a str,
    /// The parent organization, by name.
    pub parent: Option<&'a str>,
    pub shares_tickets: bool,
    pub language: Option<&'a str>,
    /// Mail domains, normalized.
    pub domains: &'a [String],
    /// Shared addresses that receive the organization's notifications, normalized.
    pub notify: &'a [String],
}

/// The id of the organization named `name`; an unknown name is `NotFound`.
pub async fn organization_id(conn: &mut Conn, name: &str) -> Result<i64, StoreError> {
    Ok(organization(conn, name).await?.id)
}

/// Adds an organization with its domains and shared addresses; returns its id.
pub async fn add_organization(
    conn: &mut Conn,
    org: &NewOrganization<'_>,
    actor: Actor<'_>,
    now: i64,
) -> Result<i64, StoreError> {
    let parent_id = match org.parent {
        Some(parent) => Some(organization_id(conn, parent).await?),
        None => None,
    };
    let id = directory::create_organization(
        conn,
        org.name,
        parent_id,
        org.shares_tickets,
        org.language,
        now,
    )
    .await?;
    for domain in org.domains {
        directory::add_organization_domain(conn, id, domain).await?;
    }
    for address in org.notify {
        directory::add_organization_notify_address(conn, id, address).await?;
    }
    let event = Event {
        organization_id: Some(id),
        actor: actor.name,
        action: "organization_created",
        new_value: Some(org.name),
        ..Event::default()
    };
    events::record(conn, &event, now).await?;
    Ok(id)
}

/// Adds a contact (active); returns its id. An address that is a contact
/// already is a `Conflict` naming who holds it.
pub async fn add_contact(
    conn: &mut Conn,
    contact: &NewContact,
    actor: Actor<'_>,
    now: i64,
) -> Result<i64, StoreError> {
    address_free(conn, &contact.email).await?;
    let id = directory::create_contact(conn, contact, now).await?;
    let event = Event {
        contact_id: Some(id),
        organization_id: contact.organization_id,
        actor: actor.name,
        action: "contact_created",
        new_value: Some(&contact.email),
        ..Event::default()
    };
    events::record(conn, &event, now).await?;
    Ok(id)
}

/// Sets a contact's state (audited when it changes); returns the state it had.
pub async fn set_contact_state(
    conn: &mut Conn,
    email: &str,
    state: ContactState,
    actor: Actor<'_>,
    now: i64,
) -> Result<ContactState, StoreError> {
    let before = directory::set_contact_state(conn, email, state, now).await?;
    if before.state != state {
        let event = Event {
            contact_id: Some(before.id),
            actor: actor.name,
            action: "contact_state_changed",
            old_value: Some(before.state.as_str()),
            new_value: Some(state.as_str()),
            ..Event::default()
        };
        events::record(conn, &event, now).await?;
    }
    Ok(before.state)
}

/// An agent to add.
pub struct NewAgent<'a> {
    /// The address the agent answers from, normalized.
    pub email: &'a str,
    pub name: Option<&'a str>,
    pub is_admin: bool,
}

/// Adds an active agent; returns its id.
pub async fn add_agent(
    conn: &mut Conn,
    agent: &NewAgent<'_>,
    actor: Actor<'_>,
    now: i64,
) -> Result<i64, StoreError> {
    let id = directory::create_agent(conn, agent.email, agent.name, agent.is_admin, now).await?;
    let event = Event {
        actor: actor.name,
        action: "agent_created",
        new_value: Some(agent.email),
        ..Event::default()
    };
    events::record(conn, &event, now).await?;
    Ok(id)
}

/// Lets automatic mail reach `address` again; false when it was not flagged.
pub async fn clear_bounce_flag(
    conn: &mut Conn,
    address: &str,
    actor: Actor<'_>,
    now: i64,
) -> Result<bool, StoreError> {
    let cleared = outbox::clear_bounce_flag(conn, address).await?;
    if cleared {
        let event = Event {
            actor: actor.name,
            action: "bounce_flag_cleared",
            new_value: Some(address),
            ..Event::default()
        };
        events::record(conn, &event, now).await?;
    }
    Ok(cleared)
}

/// Makes a failed or waiting notification due now, audited; false when
/// there is no such notification or it was sent.
pub async fn retry_notification(
    conn: &mut Conn,
    id: i64,
    actor: Actor<'_>,
    now: i64,
) -> Result<bool, StoreError> {
    let Some((entry, _)) = outbox::get(conn, id).await? else {
        return Ok(false);
    };
    if !outbox::retry(conn, id, now).await? {
        return Ok(false);
    }
    let named = format!("notification #{id}");
    let event = Event {
        ticket_id: entry.ticket_id,
        actor: actor.name,
        action: "notification_retried",
        old_value: Some(entry.status.as_str()),
        new_value: Some(&named),
        ..Event::default()
    };
    events::record(conn, &event, now).await?;
    Ok(true)
}

/// Takes a held message off the review list (its raw copy is kept); a
/// message resolved before is a `Conflict`, an unknown one `NotFound`.
pub async fn discard_held(
    conn: &mut Conn,
    id: i64,
    actor: Actor<'_>,
    now: i64,
) -> Result<(), StoreError> {
    let held = intake::held(conn, id)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("no held message #{id}")))?;
    if let Some(resolution) = held.resolution {
        return Err(StoreError::Conflict(format!(
            "held message #{id} was {resolution} already"
        )));
    }
    intake::resolve_held(conn, id, "discarded", None, now).await?;
    let event = Event {
        held_id: Some(id),
        actor: actor.name,
        action: "message_discarded",
        old_value: Some(held.reason_code.as_str()),
        ..Event::default()
    };
    events::record(conn, &event, now).await?;
    Ok(())
}

/// `Conflict` when `email` is a contact's address, naming the contact and its organization.
pub async fn address_free(conn: &mut Conn, email: &str) -> Result<(), StoreError> {
    let Some(holder) = directory::contact_by_email(conn, email).await? else {
        return Ok(());
    };
    let organization = match holder.organization_id {
        Some(id) => directory::organization_by_id(conn, id)
            .await?
            .map(|o| format!("of organization `{}`", o.name)),
        None => None,
    };
    Err(StoreError::Conflict(format!(
        "`{email}` exists already: it is contact {}{}",
        holder
            .name
            .as_deref()
            .map_or_else(|| email.to_string(), |n| format!("\"{n}\" <{email}>")),
        organization.map(|o| format!(" {o}")).unwrap_or_default()
    )))
}

/// The organization named `name`; an unknown name is `NotFound`.
pub async fn organization(conn: &mut Conn, name: &str) -> Result<Organization, StoreError> {
    directory::organization_by_name(conn, name)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("no organization named `{name}`")))
}

/// Changes to an organization; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct OrganizationEdit<'a> {
    pub rename: Option<&'a str>,
    /// `Some(None)` takes the parent away.
    pub parent: Option<Option<&'a str>>,
    pub shares_tickets: Option<bool>,
    pub language: Option<&'a str>,
    /// Domains to add and to remove, normalized.
    pub add_domains: &'a [String],
    pub remove_domains: &'a [String],
    /// Shared addresses to add and to remove, normalized.
    pub add_notify: &'a [String],
    pub remove_notify: &'a [String],
}

/// Applies `edit` to the organization named `name`, each change audited;
/// returns what changed, one line each. A parent that would make a cycle is
/// a `Conflict`, a domain or address to remove that is not there `NotFound`.
pub async fn edit_organization(
    conn: &mut Conn,
    name: &str,
    edit: &OrganizationEdit<'_>,
    actor: Actor<'_>,
    now: i64,
) -> Result<Vec<String>, StoreError> {
    let before = organization(conn, name).await?;
    let mut after = before.clone();
    let mut changes: Vec<(&str, String, String)> = Vec::new();
    if let Some(new_name) = edit.rename.map(str::trim).filter(|n| *n != before.name) {
        after.name = new_name.to_string();
        changes.push((
            "organization_renamed",
            before.name.clone(),
            after.name.clone(),
        ));
    }
    if let Some(parent) = edit.parent {
        let parent = match parent {
            Some(parent) => Some(parent_without_cycle(conn, &before, parent).await?),
            None => None,
        };
        if parent.as_ref().map(|p| p.id) != before.parent_id {
            let old = match before.parent_id {
                Some(id) => directory::organization_by_id(conn, id)
                    .await?
                    .map(|o| o.name),
                None => None,
            };
            after.parent_id = parent.as_ref().map(|p| p.id);
            let new = parent.map(|p| p.name).unwrap_or_default();
            changes.push(("organization_parent_changed", old.unwrap_or_default(), new));
        }
    }
    if let Some(shares) = edit.shares_tickets.filter(|s| *s != before.shares_tickets) {
        after.shares_tickets = shares;
        changes.push((
            "organization_sharing_changed",
            (!shares).to_string(),
            shares.to_string(),
        ));
    }
    if let Some(language) = edit
        .language
        .filter(|l| Some(*l) != before.language.as_deref())
    {
        after.language = Some(language.to_string());
        let old = before.language.clone().unwrap_or_default();
        changes.push(("organization_language_changed", old, language.to_string()));
    }
    directory::update_organization(conn, &after).await?;
    for domain in edit.add_domains {
        directory::add_organization_domain(conn, before.id, domain).await?;
        changes.push(("organization_domain_added", String::new(), domain.clone()));
    }
    for domain in edit.remove_domains {
        if !directory::remove_from_organization(conn, OrganizationList::Domains, before.id, domain)
            .await?
        {
            return Err(StoreError::NotFound(format!(
                "`{domain}` is not a domain of `{name}`"
            )));
        }
        changes.push(("organization_domain_removed", domain.clone(), String::new()));
    }
    for address in edit.add_notify {
        directory::add_organization_notify_address(conn, before.id, address).await?;
        changes.push(("organization_notify_added", String::new(), address.clone()));
    }
    for address in edit.remove_notify {
        if !directory::remove_from_organization(conn, OrganizationList::Notify, before.id, address)
            .await?
        {
            return Err(StoreError::NotFound(format!(
                "`{address}` is not a notification address of `{name}`"
            )));
        }
        changes.push((
            "organization_notify_removed",
            address.clone(),
            String::new(),
        ));
    }
    let about = Event {
        organization_id: Some(before.id),
        actor: actor.name,
        ..Event::default()
    };
    record_changes(conn, &about, &changes, now).await
}

/// Records each `(action, old, new)` as an event about what `about` names;
/// returns them as lines to show.
async fn record_changes(
    conn: &mut Conn,
    about: &Event<'_>,
    changes: &[(&str, String, String)],
    now: i64,
) -> Result<Vec<String>, StoreError> {
    let mut said = Vec::with_capacity(changes.len());
    for (action, old, new) in changes {
        let event = Event {
            action,
            old_value: Some(old.as_str()).filter(|v| !v.is_empty()),
            new_value: Some(new.as_str()).filter(|v| !v.is_empty()),
            ..about.clone()
        };
        events::record(conn, &event, now).await?;
        said.push(format!("{action}: {old} → {new}"));
    }
    Ok(said)
}

/// The organization `parent` names, when making it `org`'s parent makes no cycle.
async fn parent_without_cycle(
    conn: &mut Conn,
    org: &Organization,
    parent: &str,
) -> Result<Organization, StoreError> {
    let found = organization(conn, parent).await?;
    let mut at = Some(found.clone());
    let mut steps = 0;
    while let Some(current) = at {
        if current.id == org.id {
            return Err(StoreError::Conflict(format!(
                "`{parent}` cannot be the parent of `{}`: that makes a cycle of parents",
                org.name
            )));
        }
        steps += 1;
        if steps > 1_000 {
            return Err(StoreError::Corrupt(
                "the chain of parent organizations does not end".into(),
            ));
        }
        at = match current.parent_id {
            Some(id) => directory::organization_by_id(conn, id).await?,
            None => None,
        };
    }
    Ok(found)
}

/// Removes an organization nothing refers to; one that contacts, tickets or
/// child organizations refer to is a `Conflict` naming how many.
pub async fn remove_organization(
    conn: &mut Conn,
    name: &str,
    actor: Actor<'_>,
    now: i64,
) -> Result<(), StoreError> {
    let org = organization(conn, name).await?;
    let usage = directory::organization_usage(conn, org.id).await?;
    if usage.contacts + usage.tickets + usage.children > 0 {
        return Err(StoreError::Conflict(format!(
            "`{name}` is still in use: {} contact(s), {} ticket(s), {} child organization(s)",
            usage.contacts, usage.tickets, usage.children
        )));
    }
    directory::delete_organization(conn, org.id).await?;
    let event = Event {
        actor: actor.name,
        action: "organization_removed",
        old_value: Some(name),
        ..Event::default()
    };
    events::record(conn, &event, now).await?;
    Ok(())
}

/// Changes to a contact; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct ContactEdit<'a> {
    pub name: Option<&'a str>,
    pub organization: Option<&'a str>,
    pub add_roles: &'a [Role],
    pub remove_roles: &'a [Role],
    pub language: Option<&'a str>,
    /// A new address, normalized.
    pub email: Option<&'a str>,
}

/// Applies `edit` to the contact with address `email`, each change audited;
/// returns what changed, one line each. A new address that is a contact's
/// already is a `Conflict` naming who holds it.
pub async fn edit_contact(
    conn: &mut Conn,
    email: &str,
    edit: &ContactEdit<'_>,
    actor: Actor<'_>,
    now: i64,
) -> Result<Vec<String>, StoreError> {
    let before = directory::contact_by_email(conn, email)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("no contact `{email}`")))?;
    let mut after = before.clone();
    let mut changes: Vec<(&str, String, String)> = Vec::new();
    if let Some(new) = edit.email.filter(|e| *e != before.email) {
        address_free(conn, new).await?;
        after.email = new.to_string();
        changes.push((
            "contact_email_changed",
            before.email.clone(),
            new.to_string(),
        ));
    }
    if let Some(name) = edit.name.filter(|n| Some(*n) != before.name.as_deref()) {
        after.name = Some(name.to_string());
        let old = before.name.clone().unwrap_or_default();
        changes.push(("contact_name_changed", old, name.to_string()));
    }
    if let Some(org_name) = edit.organization {
        let org = organization(conn, org_name).await?;
        if Some(org.id) != before.organization_id {
            let old = match before.organization_id {
                Some(id) => directory::organization_by_id(conn, id)
                    .await?
                    .map(|o| o.name),
                None => None,
            };
            after.organization_id = Some(org.id);
            changes.push((
                "contact_organization_changed",
                old.unwrap_or_default(),
                org.name,
            ));
        }
    }
    after.roles.extend_from_slice(edit.add_roles);
    after.roles.retain(|r| !edit.remove_roles.contains(r));
    after.roles.sort();
    after.roles.dedup();
    if after.roles != before.roles {
        changes.push((
            "contact_roles_changed",
            directory::roles_text(&before.roles),
            directory::roles_text(&after.roles),
        ));
    }
    if let Some(language) = edit
        .language
        .filter(|l| Some(*l) != before.language.as_deref())
    {
        after.language = Some(language.to_string());
        let old = before.language.clone().unwrap_or_default();
        changes.push(("contact_language_changed", old, language.to_string()));
    }
    directory::update_contact(conn, &after, now).await?;
    if after.email != before.email {
        tickets::move_person(conn, &before.email, &after.email).await?;
    }
    let about = Event {
        contact_id: Some(before.id),
        organization_id: after.organization_id,
        actor: actor.name,
        ..Event::default()
    };
    record_changes(conn, &about, &changes, now).await
}
