//! Queues: the configuration is the source of truth; the table gives tickets a stable id to point at.

use sqlx::FromRow;

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

#[derive(FromRow)]
struct QueueRow {
    id: i64,
    name: String,
    addresses: String,
    allowed_roles: String,
}

/// The configured queues with their ids, read from the table when it already
/// matches the configuration (no write: a locked store still reads), else
/// written with [`sync`].
pub async fn load(conn: &mut Conn, configured: &[QueueSettings]) -> Result<Vec<Queue>, StoreError> {
    let rows: Vec<QueueRow> =
        sqlx::query_as("SELECT id, name, addresses, allowed_roles FROM queues")
            .fetch_all(&mut *conn)
            .await?;
    let mut queues = Vec::with_capacity(configured.len());
    for q in configured {
        let addresses = normalized(q);
        let stored = rows.iter().find(|row| {
            row.name == q.name
                && row.addresses == addresses.join("\n")
                && row.allowed_roles == roles_text(&q.allowed_roles)
        });
        match stored {
            Some(row) => queues.push(Queue {
                id: row.id,
                name: q.name.clone(),
                addresses,
                allowed_roles: q.allowed_roles.clone(),
            }),
            None => return sync(conn, configured).await,
        }
    }
    Ok(queues)
}

fn normalized(q: &QueueSettings) -> Vec<String> {
    q.addresses
        .iter()
        .filter_map(|a| address::normalize(a))
        .collect()
}

/// Writes the configured queues into the table (insert or update by name) and
/// returns them with their ids. Queues removed from the configuration stay in
/// the table, since old tickets still point at them.
pub async fn sync(conn: &mut Conn, configured: &[QueueSettings]) -> Result<Vec<Queue>, StoreError> {
    let mut queues = Vec::with_capacity(configured.len());
    for q in configured {
        let addresses = normalized(q);
        let ids: Vec<i64> = sqlx::query_scalar(
            "INSERT INTO queues (name, addresses, allowed_roles) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET addresses = excluded.addresses,
                 allowed_roles = excluded.allowed_roles
             RETURNING id",
        )
        .bind(&q.name)
        .bind(addresses.join("\n"))
        .bind(roles_text(&q.allowed_roles))
        // Run to its end, not only to its row: outside a transaction the
        // statement commits when it ends, and a commit that fails (a failed
        // sync) must be an error here, not a queue id that was never stored.
        .fetch_all(&mut *conn)
        .await?;
        let id = *ids
            .first()
            .ok_or_else(|| StoreError::Setup(format!("queue `{}` was not written", q.name)))?;
        queues.push(Queue {
            id,
            name: q.name.clone(),
            addresses,
            allowed_roles: q.allowed_roles.clone(),
        });
    }
    Ok(queues)
}
