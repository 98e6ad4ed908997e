//! Changes outside tickets — the directory (organizations, contacts, agents),
//! bounce flags and held messages — each written with its audit event in the
//! caller's transaction. The command line and the pipeline both come here.

use super::service::Actor;
use crate::store::directory::{self, ContactState, NewContact};
use crate::store::events::{self, Event};
use crate::store::{Conn, StoreError, intake, outbox};

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
    directory::organization_by_name(conn, name)
        .await?
        .map(|o| o.id)
        .ok_or_else(|| StoreError::NotFound(format!("no organization named `{name}`")))
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

/// Adds a contact (active); returns its id.
pub async fn add_contact(
    conn: &mut Conn,
    contact: &NewContact,
    actor: Actor<'_>,
    now: i64,
) -> Result<i64, StoreError> {
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
