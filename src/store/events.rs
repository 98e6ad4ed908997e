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
    /// `ticketd` for the pipeline, `operator` for the command line, or the mail address that caused it.
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

/// The most recent events of any kind, newest first.
pub async fn recent(conn: &mut Conn, limit: i64) -> Result<Vec<EventRecord>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, ticket_id, contact_id, organization_id, held_id, actor, action, old_value,
                new_value, at
         FROM events ORDER BY id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?)
}
