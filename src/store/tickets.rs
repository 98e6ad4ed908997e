//! Tickets, their participants, messages and attachments.

use serde::Serialize;
use sqlx::FromRow;

use super::{Conn, StoreError, flag};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    New,
    Open,
    Pending,
    OnHold,
    Solved,
    Closed,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Status::New,
        Status::Open,
        Status::Pending,
        Status::OnHold,
        Status::Solved,
        Status::Closed,
    ];

    /// The one spelling stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Open => "open",
            Status::Pending => "pending",
            Status::OnHold => "on_hold",
            Status::Solved => "solved",
            Status::Closed => "closed",
        }
    }
}

impl std::str::FromStr for Status {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase().replace('-', "_");
        Status::ALL
            .into_iter()
            .find(|st| st.as_str() == wanted)
            .ok_or_else(|| {
                format!(
                    "unknown status `{s}` (expected new, open, pending, on_hold, solved or closed)"
                )
            })
    }
}

decoded_fail_closed!(Status, "ticket status", shown);

/// How urgent a ticket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    Normal,
    High,
    Urgent,
}

impl Priority {
    pub const ALL: [Priority; 4] = [
        Priority::Low,
        Priority::Normal,
        Priority::High,
        Priority::Urgent,
    ];

    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }
}

impl std::str::FromStr for Priority {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        Priority::ALL
            .into_iter()
            .find(|p| p.as_str() == wanted)
            .ok_or_else(|| format!("unknown priority `{s}` (expected low, normal, high or urgent)"))
    }
}

decoded_fail_closed!(Priority, "ticket priority", shown);

/// A ticket with the names of what it points at.
#[derive(Debug, Clone, Serialize)]
pub struct Ticket {
    pub id: i64,
    pub status: Status,
    pub subject: String,
    pub requester: String,
    pub requester_contact_id: Option<i64>,
    pub organization_id: Option<i64>,
    pub organization: Option<String>,
    pub organization_shares_tickets: bool,
    /// The organization's language for its contacts' mail.
    #[serde(skip)]
    pub organization_language: Option<String>,
    pub queue_id: i64,
    pub queue: String,
    pub follows_up: Option<i64>,
    pub priority: Priority,
    pub assignee_id: Option<i64>,
    /// The assigned agent's address.
    pub assignee: Option<String>,
    /// The ticket this one was merged into.
    pub merged_into: Option<i64>,
    /// Outlook's conversation GUID (hex) its notifications carry.
    #[serde(skip)]
    pub conversation_id: Option<String>,
    pub message_count: i64,
    #[serde(serialize_with = "super::serialize_time")]
    pub created_at: i64,
    #[serde(serialize_with = "super::serialize_time")]
    pub updated_at: i64,
}

const TICKET_SELECT: &str = "SELECT t.id, t.status, t.subject, t.requester_email,
        t.requester_contact_id, t.organization_id, o.name AS organization,
        COALESCE(o.shares_tickets, 0) AS organization_shares_tickets,
        o.language AS organization_language, t.queue_id, q.name AS queue,
        t.follows_up, (SELECT COUNT(*) FROM messages m WHERE m.ticket_id = t.id) AS message_count,
        t.created_at, t.updated_at, t.priority, t.assignee_id, a.email AS assignee, t.merged_into,
        t.conversation_id
    FROM tickets t
    JOIN queues q ON q.id = t.queue_id
    LEFT JOIN organizations o ON o.id = t.organization_id
    LEFT JOIN agents a ON a.id = t.assignee_id";

#[derive(FromRow)]
struct TicketRow {
    id: i64,
    status: String,
    subject: String,
    requester_email: String,
    requester_contact_id: Option<i64>,
    organization_id: Option<i64>,
    organization: Option<String>,
    organization_shares_tickets: i64,
    organization_language: Option<String>,
    queue_id: i64,
    queue: String,
    follows_up: Option<i64>,
    message_count: i64,
    created_at: i64,
    updated_at: i64,
    priority: String,
    assignee_id: Option<i64>,
    assignee: Option<String>,
    merged_into: Option<i64>,
    conversation_id: Option<String>,
}

impl TryFrom<TicketRow> for Ticket {
    type Error = StoreError;

    fn try_from(r: TicketRow) -> Result<Ticket, StoreError> {
        Ok(Ticket {
            id: r.id,
            status: Status::try_from(r.status.as_str())?,
            subject: r.subject,
            requester: r.requester_email,
            requester_contact_id: r.requester_contact_id,
            organization_id: r.organization_id,
            organization: r.organization,
            organization_shares_tickets: r.organization_shares_tickets != 0,
            organization_language: r.organization_language,
            queue_id: r.queue_id,
            queue: r.queue,
            follows_up: r.follows_up,
            message_count: r.message_count,
            created_at: r.created_at,
            updated_at: r.updated_at,
            priority: Priority::try_from(r.priority.as_str())?,
            assignee_id: r.assignee_id,
            assignee: r.assignee,
            merged_into: r.merged_into,
            conversation_id: r.conversation_id,
        })
    }
}

/// The ticket with this id, if any.
pub async fn get(conn: &mut Conn, id: i64) -> Result<Option<Ticket>, StoreError> {
    let row: Option<TicketRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{TICKET_SELECT} WHERE t.id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(Ticket::try_from).transpose()
}

/// Which tickets [`list`] returns; `None` is any.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub status: Option<Status>,
    pub organization_id: Option<i64>,
    pub assignee_id: Option<i64>,
    pub priority: Option<Priority>,
    /// Only tickets this address asked.
    pub requester: Option<String>,
    /// With `organization_id`: its child organizations' tickets too.
    pub with_children: bool,
    /// Only tickets opened at or after this time (Unix seconds).
    pub since: Option<i64>,
}

/// Moves the tickets a person asked and takes part in from address `old` to `new`.
pub async fn move_person(conn: &mut Conn, old: &str, new: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE participants SET email = $2 WHERE email = $1")
        .bind(old)
        .bind(new)
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE tickets SET requester_email = $2 WHERE requester_email = $1")
        .bind(old)
        .bind(new)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Tickets, newest first, as `filter` says; at most `limit` of them when given.
pub async fn list(
    conn: &mut Conn,
    filter: &Filter,
    limit: Option<i64>,
) -> Result<Vec<Ticket>, StoreError> {
    let rows: Vec<TicketRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{TICKET_SELECT} WHERE ($1 IS NULL OR t.status = $1)
            AND ($2 IS NULL OR t.organization_id = $2
                 OR ($7 = 1 AND t.organization_id IN (
                     WITH RECURSIVE tree(id) AS (
                         SELECT CAST($2 AS BIGINT)
                         UNION SELECT c.id FROM organizations c JOIN tree ON c.parent_id = tree.id)
                     SELECT id FROM tree)))
            AND ($8 IS NULL OR t.created_at >= $8)
            AND ($3 IS NULL OR t.assignee_id = $3)
            AND ($4 IS NULL OR t.priority = $4)
            AND ($6 IS NULL OR t.requester_email = $6)
         ORDER BY t.id DESC LIMIT $5"
    )))
    .bind(filter.status.map(Status::as_str))
    .bind(filter.organization_id)
    .bind(filter.assignee_id)
    .bind(filter.priority.map(Priority::as_str))
    .bind(limit.unwrap_or(i64::MAX))
    .bind(filter.requester.as_deref())
    .bind(i64::from(filter.with_children))
    .bind(filter.since)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter().map(Ticket::try_from).collect()
}

#[derive(Debug, Clone)]
pub struct NewTicket<'a> {
    pub queue_id: i64,
    pub organization_id: Option<i64>,
    pub requester_email: &'a str,
    pub requester_contact_id: Option<i64>,
    pub subject: &'a str,
    pub follows_up: Option<i64>,
    pub priority: Priority,
    /// Outlook's conversation GUID (hex) the ticket belongs to.
    pub conversation_id: Option<&'a str>,
}

/// Adds a new ticket (status `new`) and returns its id.
pub async fn create(conn: &mut Conn, t: &NewTicket<'_>, now: i64) -> Result<i64, StoreError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO tickets (queue_id, organization_id, requester_email, requester_contact_id,
                              subject, status, follows_up, priority, created_at, updated_at,
                              conversation_id)
         VALUES ($1, $2, $3, $4, $5, 'new', $6, $8, $7, $7, $9) RETURNING id",
    )
    .bind(t.queue_id)
    .bind(t.organization_id)
    .bind(t.requester_email)
    .bind(t.requester_contact_id)
    .bind(t.subject)
    .bind(t.follows_up)
    .bind(now)
    .bind(t.priority.as_str())
    .bind(t.conversation_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(id)
}

/// Sets a ticket's status (no audit event: the ticket service writes it).
pub async fn set_status(
    conn: &mut Conn,
    id: i64,
    status: Status,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE tickets SET status = $1, updated_at = $2 WHERE id = $3")
        .bind(status.as_str())
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Sets the priority.
pub async fn set_priority(
    conn: &mut Conn,
    id: i64,
    priority: Priority,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE tickets SET priority = $1, updated_at = $2 WHERE id = $3")
        .bind(priority.as_str())
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Assigns the ticket to an agent, or to nobody.
pub async fn set_assignee(
    conn: &mut Conn,
    id: i64,
    agent_id: Option<i64>,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE tickets SET assignee_id = $1, updated_at = $2 WHERE id = $3")
        .bind(agent_id)
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Moves the messages and participants of ticket `from` to `into` and closes
/// `from` with a link to `into`.
pub async fn merge(conn: &mut Conn, from: i64, into: i64, now: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE messages SET ticket_id = $1 WHERE ticket_id = $2")
        .bind(into)
        .bind(from)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO participants (ticket_id, email, kind)
         SELECT $1, email, 'cc' FROM participants WHERE ticket_id = $2
         ON CONFLICT DO NOTHING",
    )
    .bind(into)
    .bind(from)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM participants WHERE ticket_id = $1")
        .bind(from)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "UPDATE tickets SET merged_into = $1, status = 'closed', updated_at = $2 WHERE id = $3",
    )
    .bind(into)
    .bind(now)
    .bind(from)
    .execute(&mut *conn)
    .await?;
    touch(conn, into, now).await
}

/// The ticket that holds `id` now: itself, or the one it was merged into
/// (followed through later merges).
pub async fn survivor(conn: &mut Conn, id: i64) -> Result<i64, StoreError> {
    let mut current = id;
    // A merge never points back; the bound only guards against a damaged store.
    for _ in 0..32 {
        let next: Option<Option<i64>> =
            sqlx::query_scalar("SELECT merged_into FROM tickets WHERE id = $1")
                .bind(current)
                .fetch_optional(&mut *conn)
                .await?;
        match next.flatten() {
            Some(into) if into != current => current = into,
            _ => break,
        }
    }
    Ok(current)
}

/// Marks a ticket updated at `now`.
pub async fn touch(conn: &mut Conn, id: i64, now: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE tickets SET updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A ticket a message points at, with what threading needs to know about it.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub ticket_id: i64,
    pub status: Status,
    pub organization_id: Option<i64>,
    pub organization_shares_tickets: bool,
    /// Whether the sender is a participant of the ticket.
    pub sender_is_participant: bool,
    /// Whether the sender is an admin contact of a parent organization of the
    /// ticket's (who counts as a member of it for sharing).
    pub sender_is_parent_admin: bool,
    /// The ticket it was merged into, if it was.
    pub merged_into: Option<i64>,
}

#[derive(FromRow)]
struct CandidateRow {
    id: i64,
    status: String,
    organization_id: Option<i64>,
    shares_tickets: i64,
    participant: i64,
    merged_into: Option<i64>,
}

impl TryFrom<CandidateRow> for Candidate {
    type Error = StoreError;

    fn try_from(r: CandidateRow) -> Result<Candidate, StoreError> {
        Ok(Candidate {
            ticket_id: r.id,
            status: Status::try_from(r.status.as_str())?,
            organization_id: r.organization_id,
            organization_shares_tickets: r.shares_tickets != 0,
            sender_is_participant: r.participant != 0,
            sender_is_parent_admin: false,
            merged_into: r.merged_into,
        })
    }
}

/// The ticket holding the message with this Message-ID (one we received or
/// one we sent), as seen by `sender`.
pub async fn thread_by_message_id(
    conn: &mut Conn,
    message_id: &str,
    sender: &str,
) -> Result<Option<Candidate>, StoreError> {
    candidate_where(
        conn,
        "t.id = COALESCE(
             (SELECT m.ticket_id FROM messages m WHERE m.message_id = $1 ORDER BY m.id LIMIT 1),
             (SELECT x.ticket_id FROM outbox x WHERE x.message_id = $1))",
        message_id,
        sender,
    )
    .await
}

/// The latest ticket of Outlook conversation `conversation_id`, as seen by `sender`.
pub async fn thread_by_conversation(
    conn: &mut Conn,
    conversation_id: &str,
    sender: &str,
) -> Result<Option<Candidate>, StoreError> {
    candidate_where(
        conn,
        "t.id = (SELECT c.id FROM tickets c WHERE c.conversation_id = $1 ORDER BY c.id DESC LIMIT 1)",
        conversation_id,
        sender,
    )
    .await
}

/// The latest ticket another helpdesk's number `reference` was seen on, as seen by `sender`.
pub async fn thread_by_reference(
    conn: &mut Conn,
    reference: &str,
    sender: &str,
) -> Result<Option<Candidate>, StoreError> {
    candidate_where(
        conn,
        "t.id = (SELECT r.ticket_id FROM ticket_references r WHERE r.reference = $1
                 ORDER BY r.ticket_id DESC LIMIT 1)",
        reference,
        sender,
    )
    .await
}

/// Records that another helpdesk's number `reference` names `ticket_id` too.
pub async fn add_reference(
    conn: &mut Conn,
    ticket_id: i64,
    reference: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO ticket_references (ticket_id, reference) VALUES ($1, $2)
         ON CONFLICT DO NOTHING",
    )
    .bind(ticket_id)
    .bind(reference)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The ticket `condition` picks (with `$1` bound to `key`), as seen by `sender` (`$2`).
async fn candidate_where(
    conn: &mut Conn,
    condition: &str,
    key: &str,
    sender: &str,
) -> Result<Option<Candidate>, StoreError> {
    let row: Option<CandidateRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{CANDIDATE_SELECT} WHERE {condition}"
    )))
    .bind(key)
    .bind(sender)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(Candidate::try_from).transpose()
}

const CANDIDATE_SELECT: &str =
    "SELECT t.id, t.status, t.organization_id, COALESCE(o.shares_tickets, 0) AS shares_tickets,
            (SELECT COUNT(*) FROM participants p WHERE p.ticket_id = t.id AND p.email = $2)
                AS participant,
            t.merged_into
     FROM tickets t
     LEFT JOIN organizations o ON o.id = t.organization_id";

/// A ticket by number, as seen by `sender`.
pub async fn thread_by_ticket_id(
    conn: &mut Conn,
    ticket_id: i64,
    sender: &str,
) -> Result<Option<Candidate>, StoreError> {
    let row: Option<CandidateRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{CANDIDATE_SELECT} WHERE t.id = $1"
    )))
    .bind(ticket_id)
    .bind(sender)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(Candidate::try_from).transpose()
}

/// Message-IDs of the ticket's inbound messages, oldest first (for In-Reply-To and References).
pub async fn inbound_message_ids(
    conn: &mut Conn,
    ticket_id: i64,
) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT message_id FROM messages
         WHERE ticket_id = $1 AND direction = 'inbound' AND message_id IS NOT NULL ORDER BY id",
    )
    .bind(ticket_id)
    .fetch_all(&mut *conn)
    .await?)
}

/// Pending tickets untouched since `before` and not reminded since their last change.
pub async fn due_for_reminder(
    conn: &mut Conn,
    before: i64,
    limit: i64,
) -> Result<Vec<i64>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM tickets
         WHERE status = 'pending' AND updated_at < $1
           AND (reminded_at IS NULL OR reminded_at < updated_at)
         ORDER BY id LIMIT $2",
    )
    .bind(before)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?)
}

/// Records that the ticket's customer was reminded, so it is not reminded again.
pub async fn mark_reminded(conn: &mut Conn, ticket_id: i64, now: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE tickets SET reminded_at = $1 WHERE id = $2")
        .bind(now)
        .bind(ticket_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

// ---- participants ----

/// Adds a participant of `kind` (requester or cc); false when it was one already.
pub async fn add_participant(
    conn: &mut Conn,
    ticket_id: i64,
    email: &str,
    kind: &str,
) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT INTO participants (ticket_id, email, kind) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(ticket_id)
    .bind(email)
    .bind(kind)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Removes a copied participant. Returns false when the address was none (or
/// is the requester, who stays).
pub async fn remove_participant(
    conn: &mut Conn,
    ticket_id: i64,
    email: &str,
) -> Result<bool, StoreError> {
    let done =
        sqlx::query("DELETE FROM participants WHERE ticket_id = $1 AND email = $2 AND kind = 'cc'")
            .bind(ticket_id)
            .bind(email)
            .execute(&mut *conn)
            .await?;
    Ok(done.rows_affected() > 0)
}

/// A participant and whether it is a registered contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParticipantFacts {
    pub email: String,
    pub known_contact: bool,
}

/// The participants of a ticket with whether each is a known contact.
pub async fn participant_facts(
    conn: &mut Conn,
    ticket_id: i64,
) -> Result<Vec<ParticipantFacts>, StoreError> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT p.email, COUNT(c.id) FROM participants p
         LEFT JOIN contacts c ON c.email = p.email
         WHERE p.ticket_id = $1 GROUP BY p.email, p.kind ORDER BY p.kind DESC, p.email",
    )
    .bind(ticket_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(email, contacts)| ParticipantFacts {
            email,
            known_contact: contacts > 0,
        })
        .collect())
}

/// The ticket's participants' addresses, requester first.
pub async fn participants(conn: &mut Conn, ticket_id: i64) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT email FROM participants WHERE ticket_id = $1 ORDER BY kind DESC, email",
    )
    .bind(ticket_id)
    .fetch_all(&mut *conn)
    .await?)
}

// ---- messages ----

#[derive(Debug, Clone)]
pub struct NewMessage<'a> {
    pub ticket_id: i64,
    pub direction: &'a str,
    pub author_kind: &'a str,
    pub author_id: Option<i64>,
    pub author_email: Option<&'a str>,
    pub author_name: Option<&'a str>,
    pub message_id: Option<&'a str>,
    pub in_reply_to: Option<&'a str>,
    pub references: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub body_text: &'a str,
    pub body_html: Option<&'a str>,
    pub visible_text: &'a str,
    pub internal: bool,
    pub classification: &'a str,
    pub raw_sha256: Option<&'a str>,
}

/// Adds a message to a ticket and returns its row id.
pub async fn add_message(conn: &mut Conn, m: &NewMessage<'_>, now: i64) -> Result<i64, StoreError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO messages (ticket_id, direction, author_kind, author_id, author_email, author_name,
                               message_id, in_reply_to, reference_ids, subject, body_text, body_html,
                               visible_text, internal, classification, raw_sha256, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
         RETURNING id",
    )
    .bind(m.ticket_id)
    .bind(m.direction)
    .bind(m.author_kind)
    .bind(m.author_id)
    .bind(m.author_email)
    .bind(m.author_name)
    .bind(m.message_id)
    .bind(m.in_reply_to)
    .bind(m.references)
    .bind(m.subject)
    .bind(m.body_text)
    .bind(m.body_html)
    .bind(m.visible_text)
    .bind(flag(m.internal))
    .bind(m.classification)
    .bind(m.raw_sha256)
    .bind(now)
    .fetch_one(&mut *conn)
    .await?;
    Ok(id)
}

#[derive(Debug, Clone)]
pub struct NewAttachment<'a> {
    pub message_row_id: i64,
    pub filename: Option<&'a str>,
    pub content_type: &'a str,
    pub size: i64,
    pub sha256: &'a str,
    pub stored: bool,
    pub inline: bool,
    pub content_id: Option<&'a str>,
}

/// Records an attachment of a message (its content is in the blob store).
pub async fn add_attachment(conn: &mut Conn, a: &NewAttachment<'_>) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO attachments (message_row_id, filename, content_type, size, sha256, stored,
                                  inline, content_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(a.message_row_id)
    .bind(a.filename)
    .bind(a.content_type)
    .bind(a.size)
    .bind(a.sha256)
    .bind(flag(a.stored))
    .bind(flag(a.inline))
    .bind(a.content_id)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, Serialize)]
pub struct Author {
    pub address: Option<String>,
    pub name: Option<String>,
    pub kind: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AttachmentInfo {
    pub filename: Option<String>,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
    pub stored: bool,
    pub inline: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct MessageView {
    pub id: i64,
    pub author: Author,
    pub direction: String,
    pub message_id: Option<String>,
    pub subject: Option<String>,
    pub visible_text: String,
    pub text: String,
    pub internal: bool,
    pub classification: String,
    #[serde(serialize_with = "super::serialize_time")]
    pub created_at: i64,
    pub attachments: Vec<AttachmentInfo>,
}

#[derive(FromRow)]
struct MessageRow {
    id: i64,
    author_kind: String,
    author_email: Option<String>,
    author_name: Option<String>,
    direction: String,
    message_id: Option<String>,
    subject: Option<String>,
    visible_text: String,
    body_text: String,
    internal: i64,
    classification: String,
    created_at: i64,
}

#[derive(FromRow)]
struct AttachmentRow {
    message_row_id: i64,
    filename: Option<String>,
    content_type: String,
    size: i64,
    sha256: String,
    stored: i64,
    inline: i64,
}

/// The messages of a ticket, oldest first, with their attachments.
pub async fn messages(conn: &mut Conn, ticket_id: i64) -> Result<Vec<MessageView>, StoreError> {
    let rows: Vec<MessageRow> = sqlx::query_as(
        "SELECT id, author_kind, author_email, author_name, direction, message_id, subject,
                visible_text, body_text, internal, classification, created_at
         FROM messages WHERE ticket_id = $1 ORDER BY id",
    )
    .bind(ticket_id)
    .fetch_all(&mut *conn)
    .await?;
    let attachments: Vec<AttachmentRow> = sqlx::query_as(
        "SELECT a.message_row_id, a.filename, a.content_type, a.size, a.sha256, a.stored, a.inline
         FROM attachments a JOIN messages m ON m.id = a.message_row_id
         WHERE m.ticket_id = $1 ORDER BY a.id",
    )
    .bind(ticket_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|m| MessageView {
            attachments: attachments
                .iter()
                .filter(|a| a.message_row_id == m.id)
                .map(|a| AttachmentInfo {
                    filename: a.filename.clone(),
                    content_type: a.content_type.clone(),
                    size: a.size,
                    sha256: a.sha256.clone(),
                    stored: a.stored != 0,
                    inline: a.inline != 0,
                })
                .collect(),
            id: m.id,
            author: Author {
                address: m.author_email,
                name: m.author_name,
                kind: m.author_kind,
            },
            direction: m.direction,
            message_id: m.message_id,
            subject: m.subject,
            visible_text: m.visible_text,
            text: m.body_text,
            internal: m.internal != 0,
            classification: m.classification,
            created_at: m.created_at,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_parse_from_their_names() {
        for s in Status::ALL {
            assert_eq!(s.as_str().parse::<Status>(), Ok(s));
        }
        assert_eq!("On-Hold".parse::<Status>(), Ok(Status::OnHold));
        assert!("done".parse::<Status>().is_err());
    }

    #[test]
    fn an_unknown_stored_status_or_priority_is_an_error_not_a_default() {
        for s in Status::ALL {
            assert_eq!(Status::try_from(s.as_str()).expect("known"), s);
        }
        // Only the stored spelling: what a person may type is for FromStr.
        for unknown in ["archived", "on-hold", "Open", ""] {
            assert!(matches!(
                Status::try_from(unknown),
                Err(StoreError::Corrupt(m)) if m.contains("ticket status")
            ));
        }
        for p in Priority::ALL {
            assert_eq!(Priority::try_from(p.as_str()).expect("known"), p);
        }
        assert!(matches!(
            Priority::try_from("critical"),
            Err(StoreError::Corrupt(_))
        ));
    }
}
