//! Apply: carry out a [`Decision`] inside the message's transaction.

use super::decide::{Author, Decision};
use super::{IngestError, Outcome, Report};
use crate::blobs::BlobStore;
use crate::config::Role;
use crate::mail::{Classification, InboundMail};
use crate::notify::Notifier;
use crate::store::directory::{self, NewContact};
use crate::store::events::{self, Event};
use crate::store::intake::{self, NewHeld};
use crate::store::queues::Queue;
use crate::store::tickets::{self, NewAttachment, NewMessage, NewTicket, Status};
use crate::store::{Conn, outbox};

/// What `apply` needs besides the decision.
pub struct Input<'a> {
    pub mail: &'a InboundMail,
    pub classification: Classification,
    pub queue: &'a Queue,
    /// The subject a new ticket gets (tag removed).
    pub new_subject: &'a str,
    /// Set when an operator released this held message.
    pub released_from: Option<i64>,
    pub blobs: &'a BlobStore,
    pub max_attachment_bytes: u64,
    pub notifier: &'a Notifier,
    pub now: i64,
}

const PIPELINE: &str = "ticketd";

pub async fn apply(
    conn: &mut Conn,
    decision: &Decision,
    input: &Input<'_>,
) -> Result<Report, IngestError> {
    match decision {
        Decision::Hold {
            code,
            reason,
            bounced,
            bounce_outbox_id,
        } => {
            let report = hold(conn, code.as_str(), reason, input).await?;
            flag_bounced(conn, bounced, *bounce_outbox_id, None, input.now).await?;
            Ok(report)
        }
        Decision::Create {
            author,
            organization_id,
            follows_up,
            participants,
        } => {
            let (author_id, author_email) = resolve_author(conn, author, input.now).await?;
            let contact_id = match author {
                Author::Agent { .. } => None,
                _ => Some(author_id),
            };
            let ticket_id = tickets::create(
                conn,
                &NewTicket {
                    queue_id: input.queue.id,
                    organization_id: *organization_id,
                    requester_email: &author_email,
                    requester_contact_id: contact_id,
                    subject: input.new_subject,
                    follows_up: *follows_up,
                },
                input.now,
            )
            .await?;
            tickets::add_participant(conn, ticket_id, &author_email, "requester").await?;
            for address in participants {
                tickets::add_participant(conn, ticket_id, address, "cc").await?;
            }
            add_message(conn, ticket_id, author, author_id, input).await?;
            let followed = follows_up.map(|id| format!("follows up #{id}"));
            events::record(
                conn,
                &Event {
                    ticket_id: Some(ticket_id),
                    organization_id: *organization_id,
                    actor: &author_email,
                    action: "ticket_created",
                    new_value: Some(followed.as_deref().unwrap_or(Status::New.as_str())),
                    ..Event::default()
                },
                input.now,
            )
            .await?;
            finish_release(conn, input, ticket_id).await?;
            let by_agent = matches!(author, Author::Agent { .. });
            input
                .notifier
                .ticket_created(conn, ticket_id, input.mail, by_agent)
                .await?;
            Ok(Report::new(Outcome::Created, Some(ticket_id), None))
        }
        Decision::Append {
            ticket_id,
            author,
            status_change,
            participants,
        } => {
            let (author_id, author_email) = resolve_author(conn, author, input.now).await?;
            for address in participants {
                tickets::add_participant(conn, *ticket_id, address, "cc").await?;
            }
            add_message(conn, *ticket_id, author, author_id, input).await?;
            match status_change {
                Some((from, to)) => {
                    tickets::set_status(conn, *ticket_id, *to, input.now).await?;
                    events::record(
                        conn,
                        &Event {
                            ticket_id: Some(*ticket_id),
                            actor: &author_email,
                            action: "status_changed",
                            old_value: Some(from.as_str()),
                            new_value: Some(to.as_str()),
                            ..Event::default()
                        },
                        input.now,
                    )
                    .await?;
                }
                None => tickets::touch(conn, *ticket_id, input.now).await?,
            }
            finish_release(conn, input, *ticket_id).await?;
            let by_agent = matches!(author, Author::Agent { .. });
            input
                .notifier
                .message_added(conn, *ticket_id, input.mail, by_agent)
                .await?;
            Ok(Report::new(Outcome::Appended, Some(*ticket_id), None))
        }
        Decision::Record {
            ticket_id,
            author,
            bounced,
            bounce_outbox_id,
        } => {
            let author_id = match author {
                Some(Author::Agent { id, .. } | Author::Contact { id, .. }) => Some(*id),
                _ => None,
            };
            let kind = match author {
                Some(Author::Agent { .. }) => "agent",
                Some(_) => "contact",
                None => "unknown",
            };
            insert_message(conn, *ticket_id, kind, author_id, input).await?;
            flag_bounced(
                conn,
                bounced,
                *bounce_outbox_id,
                Some(*ticket_id),
                input.now,
            )
            .await?;
            finish_release(conn, input, *ticket_id).await?;
            let reason = format!(
                "{} recorded on ticket #{ticket_id}; it changes nothing",
                input.classification.describe()
            );
            Ok(Report::new(
                Outcome::Ignored,
                Some(*ticket_id),
                Some(reason),
            ))
        }
    }
}

async fn hold(
    conn: &mut Conn,
    code: &str,
    reason: &str,
    input: &Input<'_>,
) -> Result<Report, IngestError> {
    let held_id = match input.released_from {
        Some(id) => {
            intake::update_hold_reason(conn, id, code, reason).await?;
            id
        }
        None => {
            let id = intake::hold(
                conn,
                &NewHeld {
                    raw_sha256: &input.mail.sha256,
                    reason_code: code,
                    reason,
                    sender: input.mail.from.as_ref().map(|f| f.address.as_str()),
                    subject: input.mail.subject.as_deref(),
                    queue_id: Some(input.queue.id),
                },
                input.now,
            )
            .await?;
            events::record(
                conn,
                &Event {
                    held_id: Some(id),
                    actor: PIPELINE,
                    action: "message_held",
                    new_value: Some(code),
                    ..Event::default()
                },
                input.now,
            )
            .await?;
            input
                .notifier
                .message_held(conn, id, input.mail, code, input.queue)
                .await?;
            id
        }
    };
    let mut report = Report::new(Outcome::Held, None, Some(reason.to_string()));
    report.held_id = Some(held_id);
    Ok(report)
}

/// Flags the addresses a proven delivery report names, each with an audit event.
async fn flag_bounced(
    conn: &mut Conn,
    addresses: &[String],
    outbox_id: Option<i64>,
    ticket_id: Option<i64>,
    now: i64,
) -> Result<(), IngestError> {
    for address in addresses {
        let reason = match (outbox_id, ticket_id) {
            (Some(id), Some(ticket)) => {
                format!("delivery of notification {id} failed (report on ticket #{ticket})")
            }
            (Some(id), None) => format!("delivery of notification {id} failed"),
            (None, _) => "delivery failed".to_string(),
        };
        outbox::flag_bounced(conn, address, &reason, outbox_id, now).await?;
        events::record(
            conn,
            &Event {
                ticket_id,
                actor: PIPELINE,
                action: "address_bounced",
                new_value: Some(address),
                ..Event::default()
            },
            now,
        )
        .await?;
    }
    Ok(())
}

/// The author's row id and address, creating the contact when it is new.
async fn resolve_author(
    conn: &mut Conn,
    author: &Author,
    now: i64,
) -> Result<(i64, String), IngestError> {
    Ok(match author {
        Author::Agent { id, email } | Author::Contact { id, email } => (*id, email.clone()),
        Author::NewContact {
            email,
            name,
            organization_id,
        } => {
            let id = directory::create_contact(
                conn,
                &NewContact {
                    email: email.clone(),
                    name: name.clone(),
                    organization_id: *organization_id,
                    roles: vec![Role::Support],
                    language: None,
                },
                now,
            )
            .await?;
            events::record(
                conn,
                &Event {
                    contact_id: Some(id),
                    organization_id: *organization_id,
                    actor: PIPELINE,
                    action: "contact_created",
                    new_value: Some(email),
                    ..Event::default()
                },
                now,
            )
            .await?;
            (id, email.clone())
        }
    })
}

async fn add_message(
    conn: &mut Conn,
    ticket_id: i64,
    author: &Author,
    author_id: i64,
    input: &Input<'_>,
) -> Result<i64, IngestError> {
    let kind = match author {
        Author::Agent { .. } => "agent",
        _ => "contact",
    };
    insert_message(conn, ticket_id, kind, Some(author_id), input).await
}

async fn insert_message(
    conn: &mut Conn,
    ticket_id: i64,
    author_kind: &str,
    author_id: Option<i64>,
    input: &Input<'_>,
) -> Result<i64, IngestError> {
    let mail = input.mail;
    let references = (!mail.references.is_empty()).then(|| mail.references.join(" "));
    let message_row = tickets::add_message(
        conn,
        &NewMessage {
            ticket_id,
            direction: "inbound",
            author_kind,
            author_id,
            author_email: mail.from.as_ref().map(|f| f.address.as_str()),
            author_name: mail.from.as_ref().and_then(|f| f.name.as_deref()),
            message_id: mail.message_id.as_deref(),
            in_reply_to: mail.in_reply_to.first().map(String::as_str),
            references: references.as_deref(),
            subject: mail.subject.as_deref(),
            body_text: &mail.text,
            body_html: mail.html.as_deref(),
            visible_text: &mail.visible_text,
            internal: false,
            classification: input.classification.as_str(),
            raw_sha256: Some(&mail.sha256),
        },
        input.now,
    )
    .await?;
    for attachment in &mail.attachments {
        let sha = attachment.sha256();
        let stored = (attachment.content.len() as u64) <= input.max_attachment_bytes;
        if stored {
            input
                .blobs
                .put(&sha, &attachment.content)
                .await
                .map_err(IngestError::Files)?;
        }
        tickets::add_attachment(
            conn,
            &NewAttachment {
                message_row_id: message_row,
                filename: attachment.filename.as_deref(),
                content_type: &attachment.content_type,
                size: attachment.content.len() as i64,
                sha256: &sha,
                stored,
                inline: attachment.inline,
                content_id: attachment.content_id.as_deref(),
            },
        )
        .await?;
    }
    Ok(message_row)
}

/// Marks a released held message as resolved into `ticket_id`.
async fn finish_release(
    conn: &mut Conn,
    input: &Input<'_>,
    ticket_id: i64,
) -> Result<(), IngestError> {
    let Some(held_id) = input.released_from else {
        return Ok(());
    };
    intake::resolve_held(conn, held_id, "released", Some(ticket_id), input.now).await?;
    let ticket = ticket_id.to_string();
    events::record(
        conn,
        &Event {
            ticket_id: Some(ticket_id),
            held_id: Some(held_id),
            actor: "operator",
            action: "message_released",
            new_value: Some(&ticket),
            ..Event::default()
        },
        input.now,
    )
    .await?;
    Ok(())
}
