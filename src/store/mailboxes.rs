//! IMAP cursors: per source and mailbox, the UIDVALIDITY and the last UID acknowledged.

use super::{Conn, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub uidvalidity: u32,
    pub last_uid: u32,
}

/// How far an IMAP mailbox of `source` has been read, if it has been.
pub async fn cursor(
    conn: &mut Conn,
    source: &str,
    mailbox: &str,
) -> Result<Option<Cursor>, StoreError> {
    let row: Option<(i64, i64)> = sqlx::query_as(
        "SELECT uidvalidity, last_uid FROM mailbox_state WHERE source = $1 AND mailbox = $2",
    )
    .bind(source)
    .bind(mailbox)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((uidvalidity, last_uid)) = row else {
        return Ok(None);
    };
    let stored = |value: i64| {
        u32::try_from(value)
            .map_err(|_| StoreError::Corrupt(format!("IMAP cursor value `{value}` out of range")))
    };
    Ok(Some(Cursor {
        uidvalidity: stored(uidvalidity)?,
        last_uid: stored(last_uid)?,
    }))
}

/// Records how far an IMAP mailbox of `source` has been read.
pub async fn save_cursor(
    conn: &mut Conn,
    source: &str,
    mailbox: &str,
    cursor: Cursor,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO mailbox_state (source, mailbox, uidvalidity, last_uid, updated_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (source, mailbox) DO UPDATE SET uidvalidity = excluded.uidvalidity,
             last_uid = excluded.last_uid, updated_at = excluded.updated_at",
    )
    .bind(source)
    .bind(mailbox)
    .bind(i64::from(cursor.uidvalidity))
    .bind(i64::from(cursor.last_uid))
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
