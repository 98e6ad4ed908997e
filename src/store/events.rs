//! The audit log: who changed what, when.

use serde::Serialize;
use sqlx::FromRow;

use super::{Conn, StoreError};

/// One audit event. Only the ids that apply are set.
#[derive(Debug, Clone, Default)]
pub struct Event<'a> {
    pub ticket_id: Option<i64>,
    pub contact_id: Option<i64>,
    pub organization_id: Option<i64>,
    pub held_id: Option<i64>,
    /// `system` for ticketd's own changes, the operator's user name for the
    /// command line, or the address of the agent or contact who caused it.
    pub actor: &'a str,
    pub action: &'a str,
    pub old_value: Option<&'a str>,
    pub new_value: Option<&'a str>,
}

#[derive(Debug, Clone, Serialize, FromRow)]
pub struct EventRecord {
    pub id: i64,
    pub ticket_id: Option<i64>,
    pub contact_id: Option<i64>,
    pub organization_id: Option<i64>,
    pub held_id: Option<i64>,
    pub actor: String,
    pub action: String,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    #[serde(serialize_with = "super::serialize_time")]
    pub at: i64,
}

/// Appends one audit event, at `now`.
pub async fn record(conn: &mut Conn, event: &Event<'_>, now: i64) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO events (ticket_id, contact_id, organization_id, held_id, actor, action,
                             old_value, new_value, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(event.ticket_id)
    .bind(event.contact_id)
    .bind(event.organization_id)
    .bind(event.held_id)
    .bind(event.actor)
    .bind(event.action)
    .bind(event.old_value)
    .bind(event.new_value)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The events of one ticket, oldest first.
pub async fn for_ticket(conn: &mut Conn, ticket_id: i64) -> Result<Vec<EventRecord>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, ticket_id, contact_id, organization_id, held_id, actor, action, old_value,
                new_value, at
         FROM events WHERE ticket_id = $1 ORDER BY id",
    )
    .bind(ticket_id)
    .fetch_all(&mut *conn)
    .await?)
}

/// Which events [`search`] returns; `None` is any.
#[derive(Debug, Clone, Default)]
pub struct Filter<'a> {
    pub ticket_id: Option<i64>,
    /// Events about the contact, or about tickets they requested.
    pub contact_id: Option<i64>,
    /// Events about the organization, its contacts or its tickets.
    pub organization_id: Option<i64>,
    pub actor: Option<&'a str>,
    /// At or after this time (Unix seconds).
    pub since: Option<i64>,
}

/// Events as `filter` says, newest first; at most `limit` of them when given.
pub async fn search(
    conn: &mut Conn,
    filter: &Filter<'_>,
    limit: Option<i64>,
) -> Result<Vec<EventRecord>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT e.id, e.ticket_id, e.contact_id, e.organization_id, e.held_id, e.actor, e.action,
                e.old_value, e.new_value, e.at
         FROM events e
         WHERE ($1 IS NULL OR e.ticket_id = $1)
           AND ($2 IS NULL OR e.contact_id = $2
                OR e.ticket_id IN (SELECT t.id FROM tickets t WHERE t.requester_contact_id = $2))
           AND ($3 IS NULL OR e.organization_id = $3
                OR e.ticket_id IN (SELECT t.id FROM tickets t WHERE t.organization_id = $3)
                OR e.contact_id IN (SELECT c.id FROM contacts c WHERE c.organization_id = $3))
           AND ($4 IS NULL OR e.actor = $4)
           AND ($5 IS NULL OR e.at >= $5)
         ORDER BY e.id DESC LIMIT $6",
    )
    .bind(filter.ticket_id)
    .bind(filter.contact_id)
    .bind(filter.organization_id)
    .bind(filter.actor)
    .bind(filter.since)
    .bind(limit.unwrap_or(i64::MAX))
    .fetch_all(&mut *conn)
    .await?)
}
