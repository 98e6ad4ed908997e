//! Directory import: organizations and contacts from rows an operator
//! supplied (a CSV file), every bad row reported with its line and reason,
//! nothing applied when any row is bad unless partial, each change audited.

use std::collections::{HashMap, HashSet};

use super::admin::{self, NewOrganization, OrganizationEdit};
use super::service::Actor;
use crate::config::Role;
use crate::mail::address;
use crate::store::directory::{self, ContactState, NewContact};
use crate::store::{Conn, StoreError};

/// One organization row as read.
#[derive(Debug, Clone, Default)]
pub struct OrganizationRow {
    /// The row's line in the file, for the report.
    pub line: u64,
    pub name: String,
    pub parent: Option<String>,
    pub domains: Vec<String>,
    pub shares_tickets: bool,
    pub notify: Vec<String>,
    pub language: Option<String>,
}

/// One contact row as read.
#[derive(Debug, Clone, Default)]
pub struct ContactRow {
    pub line: u64,
    pub email: String,
    pub name: Option<String>,
    pub organization: Option<String>,
    /// Role names as written.
    pub roles: Vec<String>,
    /// The state as written (default active).
    pub state: Option<String>,
    pub language: Option<String>,
}

/// A row that was not imported, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub line: u64,
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Default)]
pub struct Imported {
    /// Rows applied.
    pub applied: usize,
    /// Rows refused, in file order.
    pub rejected: Vec<Rejected>,
}

/// Whether an import with refused rows applies the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Nothing is applied when any row is refused.
    AllOrNothing,
    /// The good rows are applied.
    Partial,
}

/// Imports organizations (parents may come in any order), in the caller's
/// transaction.
pub async fn organizations(
    conn: &mut Conn,
    rows: &[OrganizationRow],
    mode: Mode,
    actor: Actor<'_>,
    now: i64,
) -> Result<Imported, StoreError> {
    let mut rejected: Vec<Rejected> = Vec::new();
    let mut clean: Vec<OrganizationRow> = Vec::new();
    let mut names: HashSet<String> = HashSet::new();
    let mut domains: HashMap<String, String> = HashMap::new();
    for row in rows {
        match check_organization(conn, row, &mut names, &mut domains).await? {
            Ok(row) => clean.push(row),
            Err(reason) => rejected.push(Rejected {
                line: row.line,
                reason,
            }),
        }
    }
    refuse_unknown_parents(conn, &mut clean, &mut rejected).await?;
    if mode == Mode::AllOrNothing && !rejected.is_empty() {
        return Ok(Imported {
            applied: 0,
            rejected,
        });
    }
    for row in &clean {
        let org = NewOrganization {
            name: &row.name,
            parent: None,
            shares_tickets: row.shares_tickets,
            language: row.language.as_deref(),
            domains: &row.domains,
            notify: &row.notify,
        };
        admin::add_organization(conn, &org, actor, now).await?;
    }
    for row in &clean {
        if let Some(parent) = &row.parent {
            let edit = OrganizationEdit {
                parent: Some(Some(parent)),
                ..OrganizationEdit::default()
            };
            admin::edit_organization(conn, &row.name, &edit, actor, now).await?;
        }
    }
    rejected.sort_by_key(|r| r.line);
    Ok(Imported {
        applied: clean.len(),
        rejected,
    })
}

/// The row with its values normalized, or why it cannot be imported.
async fn check_organization(
    conn: &mut Conn,
    row: &OrganizationRow,
    names: &mut HashSet<String>,
    domains: &mut HashMap<String, String>,
) -> Result<Result<OrganizationRow, String>, StoreError> {
    let name = row.name.trim().to_string();
    if name.is_empty() {
        return Ok(Err("the name is empty".into()));
    }
    if !names.insert(name.clone()) {
        return Ok(Err(format!("organization `{name}` is in the file twice")));
    }
    if directory::organization_by_name(conn, &name)
        .await?
        .is_some()
    {
        return Ok(Err(format!("organization `{name}` exists already")));
    }
    let mut clean = OrganizationRow {
        name: name.clone(),
        parent: row.parent.clone().filter(|p| !p.trim().is_empty()),
        ..row.clone()
    };
    clean.domains.clear();
    for domain in &row.domains {
        let Some(domain) = address::normalize_domain(domain) else {
            return Ok(Err(format!("`{domain}` is not a mail domain")));
        };
        if let Some(owner) = directory::domain_owner(conn, &domain).await? {
            return Ok(Err(format!("domain `{domain}` belongs to `{owner}`")));
        }
        if let Some(other) = domains.insert(domain.clone(), name.clone()) {
            return Ok(Err(format!(
                "domain `{domain}` is listed for `{other}` too"
            )));
        }
        clean.domains.push(domain);
    }
    clean.notify.clear();
    for notify in &row.notify {
        match address::normalize(notify) {
            Some(a) => clean.notify.push(a),
            None => return Ok(Err(format!("`{notify}` is not an email address"))),
        }
    }
    Ok(Ok(clean))
}

/// Moves rows whose parent is neither in the store nor among the good rows,
/// or whose parents make a cycle, to `rejected`.
async fn refuse_unknown_parents(
    conn: &mut Conn,
    clean: &mut Vec<OrganizationRow>,
    rejected: &mut Vec<Rejected>,
) -> Result<(), StoreError> {
    loop {
        let known: HashMap<String, Option<String>> = clean
            .iter()
            .map(|r| (r.name.clone(), r.parent.clone()))
            .collect();
        let mut refused: Option<(usize, String)> = None;
        for (i, row) in clean.iter().enumerate() {
            let Some(parent) = &row.parent else { continue };
            if !known.contains_key(parent)
                && directory::organization_by_name(conn, parent)
                    .await?
                    .is_none()
            {
                refused = Some((i, format!("unknown parent organization `{parent}`")));
                break;
            }
            if makes_cycle(&known, &row.name) {
                refused = Some((i, format!("the parents of `{}` make a cycle", row.name)));
                break;
            }
        }
        match refused {
            Some((i, reason)) => {
                let row = clean.remove(i);
                rejected.push(Rejected {
                    line: row.line,
                    reason,
                });
            }
            None => return Ok(()),
        }
    }
}

/// Whether following parents from `name` within the file comes back to it.
fn makes_cycle(parents: &HashMap<String, Option<String>>, name: &str) -> bool {
    let mut at = parents.get(name).cloned().flatten();
    for _ in 0..=parents.len() {
        match at {
            Some(current) if current == name => return true,
            Some(current) => at = parents.get(&current).cloned().flatten(),
            None => return false,
        }
    }
    false
}

/// Imports contacts into existing organizations, in the caller's transaction.
pub async fn contacts(
    conn: &mut Conn,
    rows: &[ContactRow],
    mode: Mode,
    actor: Actor<'_>,
    now: i64,
) -> Result<Imported, StoreError> {
    let mut rejected: Vec<Rejected> = Vec::new();
    let mut clean: Vec<(NewContact, ContactState)> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for row in rows {
        match check_contact(conn, row, &mut seen).await? {
            Ok(contact) => clean.push(contact),
            Err(reason) => rejected.push(Rejected {
                line: row.line,
                reason,
            }),
        }
    }
    if mode == Mode::AllOrNothing && !rejected.is_empty() {
        return Ok(Imported {
            applied: 0,
            rejected,
        });
    }
    for (contact, state) in &clean {
        admin::add_contact(conn, contact, actor, now).await?;
        if *state != ContactState::Active {
            admin::set_contact_state(conn, &contact.email, *state, actor, now).await?;
        }
    }
    Ok(Imported {
        applied: clean.len(),
        rejected,
    })
}

/// The contact to add with its state, or why the row cannot be imported.
async fn check_contact(
    conn: &mut Conn,
    row: &ContactRow,
    seen: &mut HashSet<String>,
) -> Result<Result<(NewContact, ContactState), String>, StoreError> {
    let Some(email) = address::normalize(&row.email) else {
        return Ok(Err(format!("`{}` is not an email address", row.email)));
    };
    if !seen.insert(email.clone()) {
        return Ok(Err(format!("`{email}` is in the file twice")));
    }
    if let Err(e) = admin::address_free(conn, &email).await {
        return match e {
            StoreError::Conflict(reason) => Ok(Err(reason)),
            other => Err(other),
        };
    }
    let organization_id = match row.organization.as_deref().filter(|o| !o.trim().is_empty()) {
        Some(name) => match directory::organization_by_name(conn, name.trim()).await? {
            Some(org) => Some(org.id),
            None => return Ok(Err(format!("unknown organization `{name}`"))),
        },
        None => None,
    };
    let mut roles = Vec::new();
    for role in row.roles.iter().filter(|r| !r.trim().is_empty()) {
        match role.parse::<Role>() {
            Ok(role) => roles.push(role),
            Err(reason) => return Ok(Err(reason)),
        }
    }
    if roles.is_empty() {
        roles.push(Role::Support);
    }
    let state = match row
        .state
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => ContactState::Active,
        Some(state) => match ContactState::try_from(state) {
            Ok(state) => state,
            Err(_) => {
                return Ok(Err(format!(
                    "unknown state `{state}` (expected active, locked or inactive)"
                )));
            }
        },
    };
    let contact = NewContact {
        email,
        name: row.name.clone().filter(|n| !n.trim().is_empty()),
        organization_id,
        roles,
        language: row.language.clone().filter(|l| !l.trim().is_empty()),
    };
    Ok(Ok((contact, state)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_that_come_back_to_themselves_are_a_cycle() {
        let parents: HashMap<String, Option<String>> = [
            ("a".to_string(), Some("b".to_string())),
            ("b".to_string(), Some("a".to_string())),
            ("c".to_string(), Some("a".to_string())),
            ("d".to_string(), None),
        ]
        .into_iter()
        .collect();
        assert!(makes_cycle(&parents, "a"));
        assert!(makes_cycle(&parents, "b"));
        assert!(!makes_cycle(&parents, "c"));
        assert!(!makes_cycle(&parents, "d"));
    }
}
