//! Keys only ticketd knows, made when the schema is created (see the `secrets` migration).

use super::{Conn, StoreError};

/// The key that signs notifications' return paths (see [`crate::mail::verp`]).
pub async fn bounce_key(conn: &mut Conn) -> Result<Vec<u8>, StoreError> {
    let row: Option<String> = sqlx::query_scalar("SELECT value FROM secrets WHERE name = 'bounce'")
        .fetch_optional(&mut *conn)
        .await?;
    let value = match row {
        Some(value) => value,
        None => {
            return Err(StoreError::Setup(
                "the bounce key is missing from the secrets table; run `ticketd migrate`".into(),
            ));
        }
    };
    hex::decode(value.trim())
        .ok()
        .filter(|key| key.len() >= 16)
        .ok_or_else(|| StoreError::Setup("the bounce key in the secrets table is damaged".into()))
}
