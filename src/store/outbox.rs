//! The outbox: rendered notifications waiting for delivery, their attempts, and addresses that bounce.

use serde::Serialize;
use sqlx::FromRow;

use super::{Conn, StoreError, flag};

/// Which notification a mail is, stored as the outbox's `kind`: one template
/// pair (`<name>.txt.j2`, `<name>.html.j2`) each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Notice {
    TicketReceived,
    AgentReply,
    StatusChanged,
    MessageHeld,
    Reminder,
    AgentNewTicket,
    AgentCustomerReply,
    AgentNote,
    CommandsRejected,
}

impl Notice {
    pub const ALL: [Notice; 9] = [
        Notice::TicketReceived,
        Notice::AgentReply,
        Notice::StatusChanged,
        Notice::MessageHeld,
        Notice::Reminder,
        Notice::AgentNewTicket,
        Notice::AgentCustomerReply,
        Notice::AgentNote,
        Notice::CommandsRejected,
    ];

    /// The one spelling stored, and the template's name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Notice::TicketReceived => "ticket_received",
            Notice::AgentReply => "agent_reply",
            Notice::StatusChanged => "status_changed",
            Notice::MessageHeld => "message_held",
            Notice::Reminder => "reminder",
            Notice::AgentNewTicket => "agent_new_ticket",
            Notice::AgentCustomerReply => "agent_customer_reply",
            Notice::AgentNote => "agent_note",
            Notice::CommandsRejected => "commands_rejected",
        }
    }

    /// Whether it tells a ticket's agents about the ticket (and so is not held
    /// to the customer side's hourly limit). `agent_reply` is an agent's words
    /// to a customer; `commands_rejected` answers one sender, as
    /// `message_held` does.
    pub fn for_agents(self) -> bool {
        matches!(
            self,
            Notice::AgentNewTicket | Notice::AgentCustomerReply | Notice::AgentNote
        )
    }
}

decoded_fail_closed!(Notice, "notification kind", shown);

/// Where an outbox entry stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxStatus {
    /// Waiting for its (next) attempt.
    Pending,
    Sent,
    /// Given up: `outbox retry` makes it pending again.
    Failed,
}

impl OutboxStatus {
    pub const ALL: [OutboxStatus; 3] = [
        OutboxStatus::Pending,
        OutboxStatus::Sent,
        OutboxStatus::Failed,
    ];

    /// The one spelling stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::Sent => "sent",
            OutboxStatus::Failed => "failed",
        }
    }
}

decoded_fail_closed!(OutboxStatus, "outbox status", shown);

pub struct NewOutbox<'a> {
    pub ticket_id: Option<i64>,
    pub held_id: Option<i64>,
    pub kind: Notice,
    pub automatic: bool,
    pub mail_from: &'a str,
    pub recipient: &'a str,
    pub message_id: &'a str,
    pub subject: &'a str,
    pub bytes: &'a [u8],
}

/// Queues a rendered notification, due now; returns its id.
pub async fn enqueue(conn: &mut Conn, item: &NewOutbox<'_>, now: i64) -> Result<i64, StoreError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO outbox (ticket_id, held_id, kind, automatic, mail_from, recipient, message_id,
                             subject, bytes, status, attempts, next_attempt_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', 0, $10, $10) RETURNING id",
    )
    .bind(item.ticket_id)
    .bind(item.held_id)
    .bind(item.kind.as_str())
    .bind(flag(item.automatic))
    .bind(item.mail_from)
    .bind(item.recipient)
    .bind(item.message_id)
    .bind(item.subject)
    .bind(item.bytes)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    Ok(id)
}

/// A message ready to go out.
#[derive(Debug, Clone, FromRow)]
pub struct Due {
    pub id: i64,
    pub mail_from: String,
    pub recipient: String,
    pub bytes: Vec<u8>,
    pub attempts: i64,
    pub created_at: i64,
}

/// Pending messages whose time has come, oldest first.
pub async fn due(conn: &mut Conn, now: i64, limit: i64) -> Result<Vec<Due>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, mail_from, recipient, bytes, attempts, created_at FROM outbox
         WHERE status = 'pending' AND next_attempt_at <= $1
         ORDER BY next_attempt_at, id LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?)
}

/// What became of one delivery attempt.
#[derive(Debug, Clone)]
pub enum AttemptResult {
    Sent {
        reply: String,
    },
    /// Try again at `next_attempt_at`.
    Retry {
        error: String,
        next_attempt_at: i64,
    },
    Failed {
        error: String,
    },
}

/// Records an attempt and its consequence for the message.
pub async fn record_attempt(
    conn: &mut Conn,
    id: i64,
    result: &AttemptResult,
    now: i64,
) -> Result<(), StoreError> {
    let (ok, reply) = match result {
        AttemptResult::Sent { reply } => (true, reply.as_str()),
        AttemptResult::Retry { error, .. } | AttemptResult::Failed { error } => {
            (false, error.as_str())
        }
    };
    sqlx::query("INSERT INTO outbox_attempts (outbox_id, at, ok, reply) VALUES ($1, $2, $3, $4)")
        .bind(id)
        .bind(now)
        .bind(flag(ok))
        .bind(reply)
        .execute(&mut *conn)
        .await?;
    let update = match result {
        AttemptResult::Sent { .. } => sqlx::query(
            "UPDATE outbox SET status = 'sent', attempts = attempts + 1, sent_at = $1, last_error = NULL
             WHERE id = $2",
        )
        .bind(now)
        .bind(id),
        AttemptResult::Retry {
            error,
            next_attempt_at,
        } => sqlx::query(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $1, last_error = $2 WHERE id = $3",
        )
        .bind(*next_attempt_at)
        .bind(error.as_str())
        .bind(id),
        AttemptResult::Failed { error } => sqlx::query(
            "UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = $1 WHERE id = $2",
        )
        .bind(error.as_str())
        .bind(id),
    };
    update.execute(&mut *conn).await?;
    Ok(())
}

#[derive(Debug, Clone, Serialize)]
pub struct OutboxEntry {
    pub id: i64,
    pub ticket_id: Option<i64>,
    pub kind: Notice,
    pub recipient: String,
    pub subject: String,
    pub message_id: String,
    pub status: OutboxStatus,
    pub attempts: i64,
    #[serde(serialize_with = "super::serialize_time")]
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    #[serde(serialize_with = "super::serialize_time")]
    pub created_at: i64,
    #[serde(serialize_with = "super::serialize_optional_time")]
    pub sent_at: Option<i64>,
}

#[derive(FromRow)]
struct OutboxRow {
    id: i64,
    ticket_id: Option<i64>,
    kind: String,
    recipient: String,
    subject: String,
    message_id: String,
    status: String,
    attempts: i64,
    next_attempt_at: i64,
    last_error: Option<String>,
    created_at: i64,
    sent_at: Option<i64>,
}

impl TryFrom<OutboxRow> for OutboxEntry {
    type Error = StoreError;

    fn try_from(r: OutboxRow) -> Result<OutboxEntry, StoreError> {
        Ok(OutboxEntry {
            kind: Notice::try_from(r.kind.as_str())?,
            status: OutboxStatus::try_from(r.status.as_str())?,
            id: r.id,
            ticket_id: r.ticket_id,
            recipient: r.recipient,
            subject: r.subject,
            message_id: r.message_id,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
            last_error: r.last_error,
            created_at: r.created_at,
            sent_at: r.sent_at,
        })
    }
}

/// Outbox entries, newest first, optionally of one status; at most `limit` when given.
pub async fn list(
    conn: &mut Conn,
    status: Option<OutboxStatus>,
    limit: Option<i64>,
) -> Result<Vec<OutboxEntry>, StoreError> {
    let rows: Vec<OutboxRow> = sqlx::query_as(
        "SELECT id, ticket_id, kind, recipient, subject, message_id, status, attempts, next_attempt_at,
                last_error, created_at, sent_at
         FROM outbox WHERE ($1 IS NULL OR status = $1) ORDER BY id DESC LIMIT $2",
    )
    .bind(status.map(OutboxStatus::as_str))
    .bind(limit.unwrap_or(i64::MAX))
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter().map(OutboxEntry::try_from).collect()
}

/// One outbox entry with the bytes it sends, if there is one.
pub async fn get(conn: &mut Conn, id: i64) -> Result<Option<(OutboxEntry, Vec<u8>)>, StoreError> {
    let entry: Option<OutboxRow> = sqlx::query_as(
        "SELECT id, ticket_id, kind, recipient, subject, message_id, status, attempts, next_attempt_at,
                last_error, created_at, sent_at
         FROM outbox WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(entry) = entry.map(OutboxEntry::try_from).transpose()? else {
        return Ok(None);
    };
    let bytes: Vec<u8> = sqlx::query_scalar("SELECT bytes FROM outbox WHERE id = $1")
        .bind(id)
        .fetch_one(&mut *conn)
        .await?;
    Ok(Some((entry, bytes)))
}

#[derive(FromRow)]
struct HistoryRow {
    bounces: i64,
    sent: i64,
}

/// One delivery attempt: when, whether the server took the message, and its reply.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    #[serde(serialize_with = "super::serialize_time")]
    pub at: i64,
    /// Shown as 1 or 0, as the stored flag.
    #[serde(serialize_with = "serialize_flag")]
    pub ok: bool,
    pub reply: String,
}

#[derive(FromRow)]
struct AttemptRow {
    at: i64,
    ok: i64,
    reply: String,
}

impl TryFrom<AttemptRow> for Attempt {
    type Error = StoreError;

    fn try_from(r: AttemptRow) -> Result<Attempt, StoreError> {
        let ok = match r.ok {
            1 => true,
            0 => false,
            other => {
                return Err(StoreError::Corrupt(format!(
                    "unknown delivery attempt result `{other}`"
                )));
            }
        };
        Ok(Attempt {
            at: r.at,
            ok,
            reply: r.reply,
        })
    }
}

fn serialize_flag<S: serde::Serializer>(ok: &bool, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_i64(i64::from(*ok))
}

/// The delivery attempts of one outbox entry, oldest first.
pub async fn attempts(conn: &mut Conn, id: i64) -> Result<Vec<Attempt>, StoreError> {
    let rows: Vec<AttemptRow> = sqlx::query_as(
        "SELECT at, ok, reply FROM outbox_attempts WHERE outbox_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter().map(Attempt::try_from).collect()
}

/// Makes a failed or waiting message due now. Returns false when there is no such message or it was sent.
pub async fn retry(conn: &mut Conn, id: i64, now: i64) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE outbox SET status = 'pending', next_attempt_at = $1 WHERE id = $2 AND status <> 'sent'",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// What the loop rules need to know of an address: whether it is flagged
/// for a proven delivery failure, and how many automatic mails it was sent since a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutomaticHistory {
    pub bounced: bool,
    pub sent_since: i64,
}

/// Whether `recipient` carries a bounce flag set at `flagged_since` or later,
/// and the automatic mails to it created since `since` (for the rate limit), in one query.
pub async fn automatic_history(
    conn: &mut Conn,
    recipient: &str,
    since: i64,
    flagged_since: i64,
) -> Result<AutomaticHistory, StoreError> {
    let row: HistoryRow = sqlx::query_as(
        "SELECT
             (SELECT COUNT(*) FROM bounced_addresses WHERE address = $1 AND at >= $3) AS bounces,
             (SELECT COUNT(*) FROM outbox WHERE recipient = $1 AND automatic = 1 AND created_at >= $2)
                 AS sent",
    )
    .bind(recipient)
    .bind(since)
    .bind(flagged_since)
    .fetch_one(&mut *conn)
    .await?;
    Ok(AutomaticHistory {
        bounced: row.bounces > 0,
        sent_since: row.sent,
    })
}

/// A notification we enqueued: what a delivery report about it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub id: i64,
    pub ticket_id: Option<i64>,
    pub kind: Notice,
    pub recipient: String,
}

#[derive(FromRow)]
struct NotificationRow {
    id: i64,
    ticket_id: Option<i64>,
    kind: String,
    recipient: String,
}

impl TryFrom<NotificationRow> for Notification {
    type Error = StoreError;

    fn try_from(r: NotificationRow) -> Result<Notification, StoreError> {
        Ok(Notification {
            kind: Notice::try_from(r.kind.as_str())?,
            id: r.id,
            ticket_id: r.ticket_id,
            recipient: r.recipient,
        })
    }
}

/// The notification with outbox id `id`.
pub async fn notification(conn: &mut Conn, id: i64) -> Result<Option<Notification>, StoreError> {
    let row: Option<NotificationRow> =
        sqlx::query_as("SELECT id, ticket_id, kind, recipient FROM outbox WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    row.map(Notification::try_from).transpose()
}

/// The notification that carried a Message-ID.
pub async fn by_message_id(
    conn: &mut Conn,
    message_id: &str,
) -> Result<Option<Notification>, StoreError> {
    let row: Option<NotificationRow> =
        sqlx::query_as("SELECT id, ticket_id, kind, recipient FROM outbox WHERE message_id = $1")
            .bind(message_id)
            .fetch_optional(&mut *conn)
            .await?;
    row.map(Notification::try_from).transpose()
}

/// Flags `address`: no automatic mail reaches it until the flag expires or is cleared.
pub async fn flag_bounced(
    conn: &mut Conn,
    address: &str,
    reason: &str,
    outbox_id: Option<i64>,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO bounced_addresses (address, reason, outbox_id, at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (address) DO UPDATE SET reason = excluded.reason, outbox_id = excluded.outbox_id,
             at = excluded.at",
    )
    .bind(address)
    .bind(reason)
    .bind(outbox_id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// An address flagged for a delivery failure.
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct BounceFlag {
    pub address: String,
    pub reason: String,
    /// The notification whose delivery report set the flag.
    pub outbox_id: Option<i64>,
    #[serde(rename = "flagged_at", serialize_with = "super::serialize_time")]
    pub at: i64,
}

/// Flags set at `since` or later (older ones have expired), by address;
/// only `address`'s when one is given.
pub async fn bounce_flags(
    conn: &mut Conn,
    since: i64,
    address: Option<&str>,
) -> Result<Vec<BounceFlag>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT address, reason, outbox_id, at FROM bounced_addresses
         WHERE at >= $1 AND ($2 IS NULL OR address = $2) ORDER BY address",
    )
    .bind(since)
    .bind(address)
    .fetch_all(&mut *conn)
    .await?)
}

/// Lifts the flag of `address`. Returns false when it had none.
pub async fn clear_bounce_flag(conn: &mut Conn, address: &str) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM bounced_addresses WHERE address = $1")
        .bind(address)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StoreSettings;
    use crate::store::Store;

    /// A fresh store in memory, migrated.
    async fn memory_store() -> Store {
        Store::open(&StoreSettings {
            url: "sqlite::memory:".into(),
            max_connections: 1,
            connect_timeout_secs: 5,
        })
        .await
        .expect("store")
    }

    #[test]
    fn an_unknown_attempt_result_is_an_error_and_known_ones_show_as_flags() {
        let row = |ok| AttemptRow {
            at: 1,
            ok,
            reply: "250 ok".into(),
        };
        assert!(matches!(
            Attempt::try_from(row(2)),
            Err(StoreError::Corrupt(_))
        ));
        let sent = Attempt::try_from(row(1)).expect("known");
        assert!(sent.ok);
        let json = serde_json::to_value(&sent).expect("json");
        assert_eq!(json["ok"], 1);
        assert!(!Attempt::try_from(row(0)).expect("known").ok);
    }

    #[tokio::test]
    async fn a_bounce_flag_counts_until_it_expires_and_can_be_cleared() {
        let store = memory_store().await;
        let mut conn = store.conn().await.expect("conn");
        let jane = "jane@acme.example";
        flag_bounced(&mut conn, jane, "delivery failed", Some(7), 1_000)
            .await
            .expect("flag");
        let history = automatic_history(&mut conn, jane, 0, 500).await;
        assert!(history.expect("history").bounced);
        // Set before the flag lifetime began: expired.
        let history = automatic_history(&mut conn, jane, 0, 1_001).await;
        assert!(!history.expect("history").bounced);
        let listed = bounce_flags(&mut conn, 500, None).await.expect("list");
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].outbox_id, Some(7));
        assert!(
            bounce_flags(&mut conn, 2_000, None)
                .await
                .expect("list")
                .is_empty()
        );
        assert!(clear_bounce_flag(&mut conn, jane).await.expect("clear"));
        assert!(
            !clear_bounce_flag(&mut conn, jane)
                .await
                .expect("clear again")
        );
        assert!(
            !automatic_history(&mut conn, jane, 0, 0)
                .await
                .expect("history")
                .bounced
        );
    }

    #[test]
    fn an_unknown_stored_kind_or_status_is_an_error_not_a_default() {
        for notice in Notice::ALL {
            assert_eq!(Notice::try_from(notice.as_str()).expect("known"), notice);
        }
        for status in OutboxStatus::ALL {
            assert_eq!(
                OutboxStatus::try_from(status.as_str()).expect("known"),
                status
            );
        }
        assert!(matches!(
            Notice::try_from("weekly_digest"),
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            OutboxStatus::try_from("sending"),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[tokio::test]
    async fn a_row_of_a_newer_version_is_reported_not_misread() {
        let store = memory_store().await;
        let mut conn = store.conn().await.expect("conn");
        let id = enqueue(
            &mut conn,
            &NewOutbox {
                ticket_id: None,
                held_id: None,
                kind: Notice::Reminder,
                automatic: true,
                mail_from: "support@example.com",
                recipient: "jane@acme.example",
                message_id: "n1@example.com",
                subject: "s",
                bytes: b"x",
            },
            1,
        )
        .await
        .expect("enqueue");
        let listed = list(&mut conn, Some(OutboxStatus::Pending), Some(10)).await;
        assert_eq!(listed.expect("list")[0].kind, Notice::Reminder);
        sqlx::query("UPDATE outbox SET kind = 'weekly_digest' WHERE id = $1")
            .bind(id)
            .execute(&mut *conn)
            .await
            .expect("update");
        let error = list(&mut conn, None, None).await.expect_err("unknown kind");
        assert!(
            error
                .to_string()
                .contains("notification kind `weekly_digest`"),
            "{error}"
        );
    }
}
