//! What came in: raw messages (kept by hash, the key to exactly-once) and held messages.

use serde::Serialize;
use sqlx::FromRow;

use super::{Conn, StoreError, flag};
use crate::mail::Classification;

pub struct NewRaw<'a> {
    pub sha256: &'a str,
    pub message_id: Option<&'a str>,
    /// The sender's normalized address, `""` when there is none.
    pub from_address: &'a str,
    /// What is kept in the row: the message (or its beginning), or nothing when
    /// it is kept in a file of the data directory (`in_file`).
    pub bytes: &'a [u8],
    /// The whole message's size.
    pub size: u64,
    /// Only the beginning of the message was read.
    pub truncated: bool,
    pub in_file: bool,
    pub source: &'a str,
}

/// Records a raw message. Returns `false` when it is already known: the same
/// bytes, or the same Message-ID from the same sender (a second delivery).
pub async fn record_raw(conn: &mut Conn, raw: &NewRaw<'_>, now: i64) -> Result<bool, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO raw_messages (sha256, message_id, from_address, size, bytes, source, received_at,
                                   truncated, in_file)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT DO NOTHING",
    )
    .bind(raw.sha256)
    .bind(raw.message_id)
    .bind(raw.from_address)
    .bind(i64::try_from(raw.size).unwrap_or(i64::MAX))
    .bind(raw.bytes)
    .bind(raw.source)
    .bind(now)
    .bind(flag(raw.truncated))
    .bind(flag(raw.in_file))
    .execute(&mut *conn)
    .await?;
    Ok(inserted.rows_affected() > 0)
}

/// The ticket an earlier copy of this message went to, if it went to one.
pub async fn ticket_of_known_message(
    conn: &mut Conn,
    sha256: &str,
    message_id: Option<&str>,
    from_address: &str,
) -> Result<Option<i64>, StoreError> {
    let ticket: Option<Option<i64>> = sqlx::query_scalar(
        "SELECT COALESCE(
             (SELECT m.ticket_id FROM messages m WHERE m.raw_sha256 = r.sha256 ORDER BY m.id LIMIT 1),
             (SELECT h.ticket_id FROM held_messages h WHERE h.raw_sha256 = r.sha256
              ORDER BY h.id DESC LIMIT 1))
         FROM raw_messages r
         WHERE r.sha256 = $1 OR (r.message_id = $2 AND r.from_address = $3)
         LIMIT 1",
    )
    .bind(sha256)
    .bind(message_id)
    .bind(from_address)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(ticket.flatten())
}

/// A raw message as recorded: its bytes are in the row unless `in_file`.
#[derive(Debug, Clone)]
pub struct StoredRaw {
    pub bytes: Vec<u8>,
    pub size: u64,
    pub truncated: bool,
    pub in_file: bool,
}

/// The raw message recorded under `sha256`.
pub async fn raw_message(conn: &mut Conn, sha256: &str) -> Result<Option<StoredRaw>, StoreError> {
    let row: Option<(Vec<u8>, i64, i64, i64)> = sqlx::query_as(
        "SELECT bytes, size, truncated, in_file FROM raw_messages WHERE sha256 = $1",
    )
    .bind(sha256)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((bytes, size, truncated, in_file)) = row else {
        return Ok(None);
    };
    Ok(Some(StoredRaw {
        bytes,
        size: u64::try_from(size)
            .map_err(|_| StoreError::Corrupt(format!("raw message size `{size}`")))?,
        truncated: truncated != 0,
        in_file: in_file != 0,
    }))
}

/// Why a message is held, stored as `reason_code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldCode {
    TooLarge,
    NoSender,
    AutoReply,
    Bounce,
    Loop,
    Spam,
    Locked,
    Inactive,
    RoleNotPermitted,
    UnknownSender,
    Rejected,
    /// Input a source delivered that the pipeline could not process (not a message, a bug).
    Unprocessable,
    /// Reading it took longer than `limits.message_budget_secs`.
    TooCostly,
    /// From an agent's address, without proof that the agent sent it.
    AgentUnverified,
    /// An agent's commands did not all parse: nothing of the mail was applied.
    CommandsRejected,
}

impl HoldCode {
    pub const ALL: [HoldCode; 15] = [
        HoldCode::TooLarge,
        HoldCode::NoSender,
        HoldCode::AutoReply,
        HoldCode::Bounce,
        HoldCode::Loop,
        HoldCode::Spam,
        HoldCode::Locked,
        HoldCode::Inactive,
        HoldCode::RoleNotPermitted,
        HoldCode::UnknownSender,
        HoldCode::Rejected,
        HoldCode::Unprocessable,
        HoldCode::TooCostly,
        HoldCode::AgentUnverified,
        HoldCode::CommandsRejected,
    ];

    /// The one spelling stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            HoldCode::TooLarge => "too_large",
            HoldCode::NoSender => "no_sender",
            HoldCode::AutoReply => "auto_reply",
            HoldCode::Bounce => "bounce",
            HoldCode::Loop => "loop",
            HoldCode::Spam => "spam",
            HoldCode::Locked => "locked",
            HoldCode::Inactive => "inactive",
            HoldCode::RoleNotPermitted => "role_not_permitted",
            HoldCode::UnknownSender => "unknown_sender",
            HoldCode::Rejected => "rejected",
            HoldCode::Unprocessable => "unprocessable",
            HoldCode::TooCostly => "too_costly",
            HoldCode::AgentUnverified => "agent_unverified",
            HoldCode::CommandsRejected => "commands_rejected",
        }
    }

    /// Whether the sender is told why (`message_held`): a person who can do
    /// something about it. Automatic mail, oversized or unreadable input get
    /// no answer, and a refused agent gets `commands_rejected` instead.
    pub fn tells_sender(self) -> bool {
        matches!(
            self,
            HoldCode::Locked
                | HoldCode::Inactive
                | HoldCode::RoleNotPermitted
                | HoldCode::UnknownSender
                | HoldCode::Rejected
        )
    }

    /// The code for mail that was classified as not written by a person.
    pub fn for_classification(c: Classification) -> HoldCode {
        match c {
            Classification::AutoReply => HoldCode::AutoReply,
            Classification::Bounce => HoldCode::Bounce,
            Classification::Loop => HoldCode::Loop,
            _ => HoldCode::Spam,
        }
    }
}

decoded_fail_closed!(HoldCode, "hold reason", shown);

pub struct NewHeld<'a> {
    pub raw_sha256: &'a str,
    pub reason_code: HoldCode,
    pub reason: &'a str,
    pub sender: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub queue_id: Option<i64>,
}

/// Records a held message and returns its id; its raw copy is already stored.
pub async fn hold(conn: &mut Conn, held: &NewHeld<'_>, now: i64) -> Result<i64, StoreError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO held_messages (raw_sha256, reason_code, reason, sender, subject, queue_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(held.raw_sha256)
    .bind(held.reason_code.as_str())
    .bind(held.reason)
    .bind(held.sender)
    .bind(held.subject)
    .bind(held.queue_id)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    Ok(id)
}

/// Replaces the reason of a message that is held again after a release attempt.
pub async fn update_hold_reason(
    conn: &mut Conn,
    id: i64,
    reason_code: HoldCode,
    reason: &str,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE held_messages SET reason_code = $1, reason = $2 WHERE id = $3")
        .bind(reason_code.as_str())
        .bind(reason)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

#[derive(Debug, Clone, Serialize)]
pub struct HeldMessage {
    pub id: i64,
    pub raw_sha256: String,
    pub reason_code: HoldCode,
    pub reason: String,
    pub sender: Option<String>,
    pub subject: Option<String>,
    pub queue_id: Option<i64>,
    pub ticket_id: Option<i64>,
    #[serde(serialize_with = "super::serialize_time")]
    pub created_at: i64,
    #[serde(serialize_with = "super::serialize_optional_time")]
    pub resolved_at: Option<i64>,
    pub resolution: Option<String>,
}

#[derive(FromRow)]
struct HeldRow {
    id: i64,
    raw_sha256: String,
    reason_code: String,
    reason: String,
    sender: Option<String>,
    subject: Option<String>,
    queue_id: Option<i64>,
    ticket_id: Option<i64>,
    created_at: i64,
    resolved_at: Option<i64>,
    resolution: Option<String>,
}

impl TryFrom<HeldRow> for HeldMessage {
    type Error = StoreError;

    fn try_from(r: HeldRow) -> Result<HeldMessage, StoreError> {
        Ok(HeldMessage {
            reason_code: HoldCode::try_from(r.reason_code.as_str())?,
            id: r.id,
            raw_sha256: r.raw_sha256,
            reason: r.reason,
            sender: r.sender,
            subject: r.subject,
            queue_id: r.queue_id,
            ticket_id: r.ticket_id,
            created_at: r.created_at,
            resolved_at: r.resolved_at,
            resolution: r.resolution,
        })
    }
}

/// The held message with this id, resolved or not, if any.
pub async fn held(conn: &mut Conn, id: i64) -> Result<Option<HeldMessage>, StoreError> {
    let row: Option<HeldRow> = sqlx::query_as(
        "SELECT id, raw_sha256, reason_code, reason, sender, subject, queue_id, ticket_id,
                created_at, resolved_at, resolution
         FROM held_messages WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(HeldMessage::try_from).transpose()
}

/// Held messages, oldest first; resolved ones only when asked; only the
/// newest `limit` when given.
pub async fn list_held(
    conn: &mut Conn,
    include_resolved: bool,
    limit: Option<i64>,
) -> Result<Vec<HeldMessage>, StoreError> {
    let rows: Vec<HeldRow> = sqlx::query_as(
        "SELECT id, raw_sha256, reason_code, reason, sender, subject, queue_id, ticket_id,
                created_at, resolved_at, resolution
         FROM held_messages WHERE ($1 = 1 OR resolved_at IS NULL) ORDER BY id DESC LIMIT $2",
    )
    .bind(i64::from(include_resolved))
    .bind(limit.unwrap_or(i64::MAX))
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter().rev().map(HeldMessage::try_from).collect()
}

/// Marks a held message released (into `ticket_id`) or discarded.
pub async fn resolve_held(
    conn: &mut Conn,
    id: i64,
    resolution: &str,
    ticket_id: Option<i64>,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE held_messages SET resolution = $1, ticket_id = COALESCE($2, ticket_id), resolved_at = $3
         WHERE id = $4",
    )
    .bind(resolution)
    .bind(ticket_id)
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_stored_hold_code_is_an_error_not_a_default() {
        for code in HoldCode::ALL {
            assert_eq!(HoldCode::try_from(code.as_str()).expect("known"), code);
        }
        assert!(matches!(
            HoldCode::try_from("quarantined"),
            Err(StoreError::Corrupt(m)) if m.contains("quarantined")
        ));
    }

    #[test]
    fn only_people_who_can_act_are_told_why_their_mail_is_held() {
        let told: Vec<&str> = HoldCode::ALL
            .into_iter()
            .filter(|c| c.tells_sender())
            .map(HoldCode::as_str)
            .collect();
        assert_eq!(
            told,
            [
                "locked",
                "inactive",
                "role_not_permitted",
                "unknown_sender",
                "rejected"
            ]
        );
    }
}
