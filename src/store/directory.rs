//! Who is who: organizations (with domains and shared notification addresses), contacts and agents.

use serde::Serialize;
use sqlx::FromRow;

use super::{Conn, StoreError, conflict, flag};
use crate::config::Role;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Organization {
    pub id: i64,
    pub name: String,
    pub parent_id: Option<i64>,
    pub shares_tickets: bool,
    pub language: Option<String>,
}

#[derive(FromRow)]
struct OrganizationRow {
    id: i64,
    name: String,
    parent_id: Option<i64>,
    shares_tickets: i64,
    language: Option<String>,
}

impl From<OrganizationRow> for Organization {
    fn from(r: OrganizationRow) -> Self {
        Organization {
            id: r.id,
            name: r.name,
            parent_id: r.parent_id,
            shares_tickets: r.shares_tickets != 0,
            language: r.language,
        }
    }
}

/// An organization with what `org list` shows.
#[derive(Debug, Clone, Serialize)]
pub struct OrganizationListing {
    pub id: i64,
    pub name: String,
    pub parent: Option<String>,
    pub domains: Vec<String>,
    pub shares_tickets: bool,
    pub notify: Vec<String>,
    pub language: Option<String>,
    pub contacts: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ContactState {
    Active,
    Locked,
    Inactive,
}

impl ContactState {
    pub const ALL: [ContactState; 3] = [
        ContactState::Active,
        ContactState::Locked,
        ContactState::Inactive,
    ];

    /// The one spelling stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            ContactState::Active => "active",
            ContactState::Locked => "locked",
            ContactState::Inactive => "inactive",
        }
    }
}

decoded_fail_closed!(ContactState, "contact state");
decoded_fail_closed!(Role, "contact role");

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Contact {
    pub id: i64,
    pub email: String,
    pub name: Option<String>,
    pub organization_id: Option<i64>,
    pub roles: Vec<Role>,
    pub state: ContactState,
    pub language: Option<String>,
}

#[derive(FromRow)]
struct ContactRow {
    id: i64,
    email: String,
    name: Option<String>,
    organization_id: Option<i64>,
    roles: String,
    state: String,
    language: Option<String>,
}

impl TryFrom<ContactRow> for Contact {
    type Error = StoreError;

    fn try_from(r: ContactRow) -> Result<Contact, StoreError> {
        Ok(Contact {
            id: r.id,
            email: r.email,
            name: r.name,
            organization_id: r.organization_id,
            roles: parse_roles(&r.roles)?,
            state: ContactState::try_from(r.state.as_str())?,
            language: r.language,
        })
    }
}

/// A contact as `contact list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ContactListing {
    pub email: String,
    pub name: Option<String>,
    pub organization: Option<String>,
    pub roles: Vec<Role>,
    pub state: ContactState,
    pub language: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewContact {
    pub email: String,
    pub name: Option<String>,
    pub organization_id: Option<i64>,
    pub roles: Vec<Role>,
    pub language: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Agent {
    pub id: i64,
    pub email: String,
    pub name: Option<String>,
    pub active: bool,
    pub is_admin: bool,
}

#[derive(FromRow)]
struct AgentRow {
    id: i64,
    email: String,
    name: Option<String>,
    active: i64,
    is_admin: i64,
}

impl From<AgentRow> for Agent {
    fn from(r: AgentRow) -> Self {
        Agent {
            id: r.id,
            email: r.email,
            name: r.name,
            active: r.active != 0,
            is_admin: r.is_admin != 0,
        }
    }
}

/// Roles as stored: sorted, without repeats, joined with commas.
pub fn roles_text(roles: &[Role]) -> String {
    let mut sorted: Vec<Role> = roles.to_vec();
    sorted.sort();
    sorted.dedup();
    sorted
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// The roles stored as `admin,support`; an unknown one is an error.
fn parse_roles(text: &str) -> Result<Vec<Role>, StoreError> {
    text.split(',')
        .filter(|r| !r.is_empty())
        .map(Role::try_from)
        .collect()
}

// ---- organizations ----

/// Adds an organization and returns its id; a taken name is a conflict.
pub async fn create_organization(
    conn: &mut Conn,
    name: &str,
    parent_id: Option<i64>,
    shares_tickets: bool,
    language: Option<&str>,
    now: i64,
) -> Result<i64, StoreError> {
    sqlx::query_scalar::<_, i64>(
        "INSERT INTO organizations (name, parent_id, shares_tickets, language, created_at)
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(name)
    .bind(parent_id)
    .bind(flag(shares_tickets))
    .bind(language)
    .bind(now)
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| {
        conflict(e, || {
            format!("an organization named `{name}` exists already")
        })
    })
}

/// Gives an organization a mail domain; a domain already given is a conflict.
pub async fn add_organization_domain(
    conn: &mut Conn,
    organization_id: i64,
    domain: &str,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO organization_domains (domain, organization_id) VALUES ($1, $2)")
        .bind(domain)
        .bind(organization_id)
        .execute(&mut *conn)
        .await
        .map_err(|e| {
            conflict(e, || {
                format!("the domain `{domain}` belongs to another organization already")
            })
        })?;
    Ok(())
}

/// Adds a shared address that receives the organization's notifications.
pub async fn add_organization_notify_address(
    conn: &mut Conn,
    organization_id: i64,
    address: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO organization_notify_addresses (organization_id, address) VALUES ($1, $2)
         ON CONFLICT DO NOTHING",
    )
    .bind(organization_id)
    .bind(address)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The organization with this exact name, if any.
pub async fn organization_by_name(
    conn: &mut Conn,
    name: &str,
) -> Result<Option<Organization>, StoreError> {
    let row: Option<OrganizationRow> = sqlx::query_as(
        "SELECT id, name, parent_id, shares_tickets, language FROM organizations WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(Into::into))
}

/// The organization with this id, if any.
pub async fn organization_by_id(
    conn: &mut Conn,
    id: i64,
) -> Result<Option<Organization>, StoreError> {
    let row: Option<OrganizationRow> = sqlx::query_as(
        "SELECT id, name, parent_id, shares_tickets, language FROM organizations WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(Into::into))
}

/// The organization whose domain list holds the domain `$2`, or the
/// closest parent domain of it (`labs.acme.test` before `acme.test`).
const DOMAIN_OWNER: &str = "SELECT d.organization_id FROM organization_domains d
     WHERE d.domain = $2
        OR substr($2, length($2) - length(d.domain)) = '.' || d.domain
     ORDER BY length(d.domain) DESC LIMIT 1";

/// Writes an organization's own row as `org` holds it (its name, parent,
/// sharing and language).
pub async fn update_organization(conn: &mut Conn, org: &Organization) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE organizations SET name = $1, parent_id = $2, shares_tickets = $3, language = $4
         WHERE id = $5",
    )
    .bind(&org.name)
    .bind(org.parent_id)
    .bind(flag(org.shares_tickets))
    .bind(&org.language)
    .bind(org.id)
    .execute(&mut *conn)
    .await
    .map_err(|e| {
        conflict(e, || {
            format!("an organization named `{}` exists already", org.name)
        })
    })?;
    Ok(())
}

/// An organization's lists of values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrganizationList {
    /// Its mail domains.
    Domains,
    /// Its shared notification addresses.
    Notify,
}

impl OrganizationList {
    fn table_and_column(self) -> (&'static str, &'static str) {
        match self {
            OrganizationList::Domains => ("organization_domains", "domain"),
            OrganizationList::Notify => ("organization_notify_addresses", "address"),
        }
    }
}

/// Takes `value` off one of an organization's lists; false when it was not on it.
pub async fn remove_from_organization(
    conn: &mut Conn,
    list: OrganizationList,
    organization_id: i64,
    value: &str,
) -> Result<bool, StoreError> {
    let (table, column) = list.table_and_column();
    let done = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM {table} WHERE organization_id = $1 AND {column} = $2"
    )))
    .bind(organization_id)
    .bind(value)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// The organization's mail domains, sorted.
pub async fn organization_domains(
    conn: &mut Conn,
    organization_id: i64,
) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT domain FROM organization_domains WHERE organization_id = $1 ORDER BY domain",
    )
    .bind(organization_id)
    .fetch_all(&mut *conn)
    .await?)
}

/// What refers to an organization.
#[derive(Debug, Clone, Default, Serialize, FromRow)]
pub struct Usage {
    pub contacts: i64,
    pub tickets: i64,
    pub open_tickets: i64,
    pub children: i64,
}

/// How many contacts, tickets (open ones: not solved or closed) and child
/// organizations refer to the organization.
pub async fn organization_usage(
    conn: &mut Conn,
    organization_id: i64,
) -> Result<Usage, StoreError> {
    Ok(sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM contacts WHERE organization_id = $1) AS contacts,
                (SELECT COUNT(*) FROM tickets WHERE organization_id = $1) AS tickets,
                (SELECT COUNT(*) FROM tickets WHERE organization_id = $1
                    AND status NOT IN ('solved', 'closed')) AS open_tickets,
                (SELECT COUNT(*) FROM organizations WHERE parent_id = $1) AS children",
    )
    .bind(organization_id)
    .fetch_one(&mut *conn)
    .await?)
}

/// The names of the organization's direct children, sorted.
pub async fn organization_children(
    conn: &mut Conn,
    organization_id: i64,
) -> Result<Vec<String>, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT name FROM organizations WHERE parent_id = $1 ORDER BY name")
            .bind(organization_id)
            .fetch_all(&mut *conn)
            .await?,
    )
}

/// Deletes an organization with its domains and shared addresses; the
/// caller checks first that nothing else refers to it.
pub async fn delete_organization(conn: &mut Conn, organization_id: i64) -> Result<(), StoreError> {
    for list in [OrganizationList::Domains, OrganizationList::Notify] {
        let (table, _) = list.table_and_column();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE organization_id = $1"
        )))
        .bind(organization_id)
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query("DELETE FROM organizations WHERE id = $1")
        .bind(organization_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Writes a contact's row as `contact` holds it (all but its state), at `now`.
pub async fn update_contact(
    conn: &mut Conn,
    contact: &Contact,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE contacts SET email = $1, name = $2, organization_id = $3, roles = $4,
                             language = $5, updated_at = $6
         WHERE id = $7",
    )
    .bind(&contact.email)
    .bind(&contact.name)
    .bind(contact.organization_id)
    .bind(roles_text(&contact.roles))
    .bind(&contact.language)
    .bind(now)
    .bind(contact.id)
    .execute(&mut *conn)
    .await
    .map_err(|e| {
        conflict(e, || {
            format!("a contact `{}` exists already", contact.email)
        })
    })?;
    Ok(())
}

/// The name of the organization whose list holds exactly `domain`, if any.
pub async fn domain_owner(conn: &mut Conn, domain: &str) -> Result<Option<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT o.name FROM organization_domains d JOIN organizations o ON o.id = d.organization_id
         WHERE d.domain = $1",
    )
    .bind(domain)
    .fetch_optional(&mut *conn)
    .await?)
}

/// Whether `ancestor` is a parent, grandparent… of organization `organization`.
pub async fn is_ancestor(
    conn: &mut Conn,
    ancestor: i64,
    organization: i64,
) -> Result<bool, StoreError> {
    let found: Option<i64> = sqlx::query_scalar(
        "WITH RECURSIVE up(id, depth) AS (
             SELECT parent_id, 1 FROM organizations WHERE id = $2
             UNION ALL
             SELECT o.parent_id, up.depth + 1 FROM organizations o JOIN up ON o.id = up.id
             WHERE up.depth < 100)
         SELECT id FROM up WHERE id = $1 LIMIT 1",
    )
    .bind(ancestor)
    .bind(organization)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(found.is_some())
}

/// The organization's shared notification addresses, sorted.
pub async fn organization_notify_addresses(
    conn: &mut Conn,
    organization_id: i64,
) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT address FROM organization_notify_addresses WHERE organization_id = $1 ORDER BY address",
    )
    .bind(organization_id)
    .fetch_all(&mut *conn)
    .await?)
}

/// Every organization by name, with its parent's name, domains, notification
/// addresses and number of contacts.
pub async fn list_organizations(conn: &mut Conn) -> Result<Vec<OrganizationListing>, StoreError> {
    let orgs: Vec<OrganizationRow> = sqlx::query_as(
        "SELECT id, name, parent_id, shares_tickets, language FROM organizations ORDER BY name",
    )
    .fetch_all(&mut *conn)
    .await?;
    let domains: Vec<(i64, String)> =
        sqlx::query_as("SELECT organization_id, domain FROM organization_domains ORDER BY domain")
            .fetch_all(&mut *conn)
            .await?;
    let notify: Vec<(i64, String)> = sqlx::query_as(
        "SELECT organization_id, address FROM organization_notify_addresses ORDER BY address",
    )
    .fetch_all(&mut *conn)
    .await?;
    let counts: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT organization_id, COUNT(*) FROM contacts WHERE organization_id IS NOT NULL
         GROUP BY organization_id",
    )
    .fetch_all(&mut *conn)
    .await?;
    let names: std::collections::HashMap<i64, String> =
        orgs.iter().map(|o| (o.id, o.name.clone())).collect();
    let pick = |rows: &[(i64, String)], id: i64| -> Vec<String> {
        rows.iter()
            .filter(|(org, _)| *org == id)
            .map(|(_, value)| value.clone())
            .collect()
    };
    Ok(orgs
        .into_iter()
        .map(|o| OrganizationListing {
            id: o.id,
            parent: o.parent_id.and_then(|p| names.get(&p).cloned()),
            domains: pick(&domains, o.id),
            notify: pick(&notify, o.id),
            shares_tickets: o.shares_tickets != 0,
            contacts: counts
                .iter()
                .find(|(org, _)| *org == o.id)
                .map(|(_, count)| *count)
                .unwrap_or(0),
            name: o.name,
            language: o.language,
        })
        .collect())
}

/// Everything the directory knows about one address, in one query: the agent
/// with that address, the contact with it, and the contact's organization (or,
/// for an address that is no contact, the organization owning its domain).
#[derive(Debug, Clone, Default)]
pub struct Identity {
    pub agent: Option<Agent>,
    pub contact: Option<Contact>,
    pub organization: Option<Organization>,
}

/// Who `email` is (see [`Identity`]); `domain` is its domain, for the
/// organization of an address that is no contact.
pub async fn identify(conn: &mut Conn, email: &str, domain: &str) -> Result<Identity, StoreError> {
    let row: IdentityRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT a.id AS agent_id, a.email AS agent_email, a.name AS agent_name,
                a.active AS agent_active, a.is_admin AS agent_is_admin,
                c.id AS contact_id, c.email AS contact_email, c.name AS contact_name,
                c.organization_id AS contact_organization_id, c.roles AS contact_roles,
                c.state AS contact_state, c.language AS contact_language,
                o.id AS org_id, o.name AS org_name, o.parent_id AS org_parent_id,
                o.shares_tickets AS org_shares_tickets, o.language AS org_language
         FROM (SELECT 1 AS one) x
         LEFT JOIN agents a ON a.email = $1
         LEFT JOIN contacts c ON c.email = $1
         LEFT JOIN organizations o ON o.id = CASE
             WHEN c.id IS NOT NULL THEN c.organization_id
             ELSE ({DOMAIN_OWNER})
         END"
    )))
    .bind(email)
    .bind(domain)
    .fetch_one(&mut *conn)
    .await?;
    let agent = match (row.agent_id, row.agent_email) {
        (Some(id), Some(email)) => Some(Agent {
            id,
            email,
            name: row.agent_name,
            active: row.agent_active.unwrap_or(0) != 0,
            is_admin: row.agent_is_admin.unwrap_or(0) != 0,
        }),
        _ => None,
    };
    let contact = match (row.contact_id, row.contact_email) {
        (Some(id), Some(email)) => Some(Contact {
            id,
            email,
            name: row.contact_name,
            organization_id: row.contact_organization_id,
            roles: parse_roles(row.contact_roles.as_deref().unwrap_or(""))?,
            state: ContactState::try_from(row.contact_state.as_deref().unwrap_or(""))?,
            language: row.contact_language,
        }),
        _ => None,
    };
    let organization = match (row.org_id, row.org_name) {
        (Some(id), Some(name)) => Some(Organization {
            id,
            name,
            parent_id: row.org_parent_id,
            shares_tickets: row.org_shares_tickets.unwrap_or(0) != 0,
            language: row.org_language,
        }),
        _ => None,
    };
    Ok(Identity {
        agent,
        contact,
        organization,
    })
}

/// One row of [`identify`]: each part is all NULL when there is none.
#[derive(FromRow)]
struct IdentityRow {
    agent_id: Option<i64>,
    agent_email: Option<String>,
    agent_name: Option<String>,
    agent_active: Option<i64>,
    agent_is_admin: Option<i64>,
    contact_id: Option<i64>,
    contact_email: Option<String>,
    contact_name: Option<String>,
    contact_organization_id: Option<i64>,
    contact_roles: Option<String>,
    contact_state: Option<String>,
    contact_language: Option<String>,
    org_id: Option<i64>,
    org_name: Option<String>,
    org_parent_id: Option<i64>,
    org_shares_tickets: Option<i64>,
    org_language: Option<String>,
}

// ---- contacts ----

/// The contact with this address, if any.
pub async fn contact_by_email(conn: &mut Conn, email: &str) -> Result<Option<Contact>, StoreError> {
    let row: Option<ContactRow> = sqlx::query_as(
        "SELECT id, email, name, organization_id, roles, state, language FROM contacts WHERE email = $1",
    )
    .bind(email)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(Contact::try_from).transpose()
}

/// Adds an active contact and returns its id; a taken address is a conflict.
pub async fn create_contact(
    conn: &mut Conn,
    contact: &NewContact,
    now: i64,
) -> Result<i64, StoreError> {
    sqlx::query_scalar::<_, i64>(
        "INSERT INTO contacts (email, name, organization_id, roles, state, language, created_at, updated_at)
         VALUES ($1, $2, $3, $4, 'active', $5, $6, $6) RETURNING id",
    )
    .bind(&contact.email)
    .bind(&contact.name)
    .bind(contact.organization_id)
    .bind(roles_text(&contact.roles))
    .bind(&contact.language)
    .bind(now)
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| conflict(e, || format!("a contact `{}` exists already", contact.email)))
}

/// Sets a contact's state; returns the contact as it was before.
pub async fn set_contact_state(
    conn: &mut Conn,
    email: &str,
    state: ContactState,
    now: i64,
) -> Result<Contact, StoreError> {
    let before = contact_by_email(conn, email)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("no contact `{email}`")))?;
    sqlx::query("UPDATE contacts SET state = $1, updated_at = $2 WHERE id = $3")
        .bind(state.as_str())
        .bind(now)
        .bind(before.id)
        .execute(&mut *conn)
        .await?;
    Ok(before)
}

/// Contacts, newest first, of one organization when given; at most `limit` when given.
pub async fn list_contacts(
    conn: &mut Conn,
    organization_id: Option<i64>,
    limit: Option<i64>,
) -> Result<Vec<ContactListing>, StoreError> {
    let rows: Vec<ContactListingRow> = sqlx::query_as(
        "SELECT c.email, c.name, o.name AS organization, c.roles, c.state, c.language
         FROM contacts c LEFT JOIN organizations o ON o.id = c.organization_id
         WHERE ($1 IS NULL OR c.organization_id = $1)
         ORDER BY c.id DESC LIMIT $2",
    )
    .bind(organization_id)
    .bind(limit.unwrap_or(i64::MAX))
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            Ok(ContactListing {
                roles: parse_roles(&r.roles)?,
                state: ContactState::try_from(r.state.as_str())?,
                email: r.email,
                name: r.name,
                organization: r.organization,
                language: r.language,
            })
        })
        .collect()
}

#[derive(FromRow)]
struct ContactListingRow {
    email: String,
    name: Option<String>,
    organization: Option<String>,
    roles: String,
    state: String,
    language: Option<String>,
}

// ---- agents ----

/// The agent with this address, active or not, if any.
pub async fn agent_by_email(conn: &mut Conn, email: &str) -> Result<Option<Agent>, StoreError> {
    let row: Option<AgentRow> =
        sqlx::query_as("SELECT id, email, name, active, is_admin FROM agents WHERE email = $1")
            .bind(email)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(row.map(Into::into))
}

/// Adds an active agent and returns its id; a taken address is a conflict.
pub async fn create_agent(
    conn: &mut Conn,
    email: &str,
    name: Option<&str>,
    is_admin: bool,
    now: i64,
) -> Result<i64, StoreError> {
    sqlx::query_scalar::<_, i64>(
        "INSERT INTO agents (email, name, active, is_admin, created_at) VALUES ($1, $2, 1, $3, $4)
         RETURNING id",
    )
    .bind(email)
    .bind(name)
    .bind(flag(is_admin))
    .bind(now)
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| conflict(e, || format!("an agent `{email}` exists already")))
}

/// Every agent, active or not, by address.
pub async fn list_agents(conn: &mut Conn) -> Result<Vec<Agent>, StoreError> {
    let rows: Vec<AgentRow> =
        sqlx::query_as("SELECT id, email, name, active, is_admin FROM agents ORDER BY email")
            .fetch_all(&mut *conn)
            .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_sorted_and_deduplicated() {
        let text = roles_text(&[Role::Support, Role::Admin, Role::Support]);
        assert_eq!(text, "admin,support");
        assert_eq!(
            parse_roles(&text).expect("known roles"),
            vec![Role::Admin, Role::Support]
        );
        assert_eq!(parse_roles("").expect("none"), Vec::<Role>::new());
    }

    #[test]
    fn an_unknown_stored_role_or_state_is_an_error_not_a_default() {
        for role in Role::ALL {
            assert_eq!(Role::try_from(role.as_str()).expect("known"), role);
        }
        assert!(matches!(
            parse_roles("admin,owner"),
            Err(StoreError::Corrupt(m)) if m.contains("owner")
        ));
        for state in ContactState::ALL {
            assert_eq!(
                ContactState::try_from(state.as_str()).expect("known"),
                state
            );
        }
        for unknown in ["banned", "Active", ""] {
            assert!(matches!(
                ContactState::try_from(unknown),
                Err(StoreError::Corrupt(_))
            ));
        }
    }
}
