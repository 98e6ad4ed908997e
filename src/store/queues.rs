//! Queues: the configuration is the source of truth; the table gives tickets a stable id to point at.

use sqlx::Row;

use super::directory::roles_text;
use super::{Conn, StoreError};
use crate::config::{QueueSettings, Role};
use crate::mail::address;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queue {
    pub id: i64,
    pub name: String,
    /// Normalized addresses that route here.
    pub addresses: Vec<String>,
    pub allowed_roles: Vec<Role>,
}

/// Writes the configured queues into the table (insert or update by name) and
/// returns them with their ids. Queues removed from the configuration stay in
/// the table, since old tickets still point at them.
pub async fn sync(conn: &mut Conn, configured: &[QueueSettings]) -> Result<Vec<Queue>, StoreError> {
    let mut queues = Vec::with_capacity(configured.len());
    for q in configured {
        let addresses: Vec<String> = q
            .addresses
            .iter()
            .filter_map(|a| address::normalize(a))
            .collect();
        let row = sqlx::query(
            "INSERT INTO queues (name, addresses, allowed_roles) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET addresses = excluded.addresses,
                 allowed_roles = excluded.allowed_roles
             RETURNING id",
        )
        .bind(&q.name)
        .bind(addresses.join("\n"))
        .bind(roles_text(&q.allowed_roles))
        .fetch_one(&mut *conn)
        .await?;
        queues.push(Queue {
            id: row.get(0),
            name: q.name.clone(),
            addresses,
            allowed_roles: q.allowed_roles.clone(),
        });
    }
    Ok(queues)
}
