//! Apply: carry out a [`Decision`] inside the message's transaction.

use super::admin;
use super::commands::{self, Command, LineError};
use super::decide::{Append, Author, Create, CreateForwarded, Decision, HoldCode, Record};
use super::service::{Actor, Announce, AuthorKind, Opening, Posting, TicketService};
use super::{IngestError, Outcome, Report};
use crate::config::Role;
use crate::mail::forward::{Forwarded, unforwarded_subject};
use crate::mail::thread_index::ThreadIndex;
use crate::mail::{Classification, InboundMail};
use crate::notify::{HeldNotice, People, Written};
use crate::store::directory::{Contact, ContactState, NewContact};
use crate::store::events::{self, Event};
use crate::store::intake::{self, NewHeld};
use crate::store::queues::Queue;
use crate::store::tickets::{self, NewTicket};
use crate::store::{Conn, outbox};

/// A held message an operator released, and who did.
#[derive(Debug, Clone, Copy)]
pub struct Release<'a> {
    pub held_id: i64,
    pub by: Actor<'a>,
}

/// What `apply` needs besides the decision.
pub struct Input<'a> {
    pub mail: &'a InboundMail,
    pub classification: Classification,
    pub queue: &'a Queue,
    /// The subject a new ticket gets (tag removed).
    pub new_subject: &'a str,
    /// Set when an operator released this held message.
    pub released: Option<Release<'a>>,
    /// An agent's words without the command lines (for anyone else: unused).
    pub agent_text: &'a str,
    /// The customer's mail an agent forwarded, for [`Decision::CreateForwarded`].
    pub forwarded: Option<&'a Forwarded>,
    /// An agent's command lines that cannot apply, for [`HoldCode::CommandsRejected`].
    pub rejected: &'a [LineError],
    /// Other helpdesks' ticket numbers in the subject, kept with the ticket.
    pub foreign: &'a [String],
    /// Who the mail's addresses are, as the pipeline found them.
    pub people: &'a People,
    pub service: &'a TicketService<'a>,
}

/// Carries out `decision` on `conn`, inside the caller's transaction: the
/// message is held (with its audit event and, for codes that merit it, a
/// notice to the sender), or opens a ticket, or is added to one — always
/// through the ticket service, so every change is audited and notified.
/// Nothing is written when it fails; the caller rolls back.
pub async fn apply(
    conn: &mut Conn,
    decision: &Decision,
    input: &Input<'_>,
) -> Result<Report, IngestError> {
    let service = input.service;
    let now = service.now;
    match decision {
        Decision::Hold {
            code,
            reason,
            bounced,
            bounce_outbox_id,
        } => {
            let report = hold(conn, *code, reason, input).await?;
            flag_bounced(conn, bounced, *bounce_outbox_id, None, now).await?;
            Ok(report)
        }
        Decision::Create(decided) => create(conn, input, decided).await,
        Decision::CreateForwarded(decided) => create_forwarded(conn, input, decided).await,
        Decision::Append(decided) => append(conn, input, decided).await,
        Decision::Record(decided) => record(conn, input, decided).await,
    }
}

/// Opens a ticket for the sender with their message (and an agent's commands).
async fn create(
    conn: &mut Conn,
    input: &Input<'_>,
    decided: &Create,
) -> Result<Report, IngestError> {
    let Create {
        author,
        organization_id,
        follows_up,
        participants,
        priority,
        commands,
    } = decided;
    let service = input.service;
    let mut people = input.people.clone();
    let (author_id, author_email) = resolve_author(conn, author, service.now, &mut people).await?;
    let by_agent = matches!(author, Author::Agent { .. });
    let ticket_id = service
        .open(
            conn,
            &Opening {
                ticket: NewTicket {
                    queue_id: input.queue.id,
                    organization_id: *organization_id,
                    requester_email: &author_email,
                    requester_contact_id: (!by_agent).then_some(author_id),
                    subject: input.new_subject,
                    follows_up: *follows_up,
                    priority: *priority,
                    conversation_id: Some(&conversation(input.mail)),
                },
                participants,
            },
            Actor {
                name: &author_email,
            },
        )
        .await?;
    let text = if by_agent {
        input.agent_text
    } else {
        &input.mail.visible_text
    };
    let posting = posting(input, author, author_id, text, false, &people);
    service
        .add_message(conn, ticket_id, &posting, Announce::NewTicket { by_agent })
        .await?;
    conclude(
        conn,
        input,
        ticket_id,
        commands,
        &author_email,
        Outcome::Created,
    )
    .await
}

/// The end of a ticket's message: the agent's commands on the ticket (which
/// may merge it away; a status the message set is applied already when it
/// was appended), a released message's hold resolved, the report.
async fn conclude(
    conn: &mut Conn,
    input: &Input<'_>,
    ticket_id: i64,
    commands: &[Command],
    author_email: &str,
    outcome: Outcome,
) -> Result<Report, IngestError> {
    for reference in input.foreign {
        tickets::add_reference(conn, ticket_id, reference).await?;
    }
    let status_applied = outcome == Outcome::Appended;
    let ticket_id = agent_commands(
        conn,
        input,
        ticket_id,
        commands,
        author_email,
        status_applied,
    )
    .await?;
    finish_release(conn, input, ticket_id).await?;
    Ok(Report::new(outcome, Some(ticket_id), None))
}

/// Opens a ticket for the customer whose mail an agent forwarded: the customer's words as theirs,
/// the agent's as an internal note.
async fn create_forwarded(
    conn: &mut Conn,
    input: &Input<'_>,
    decided: &CreateForwarded,
) -> Result<Report, IngestError> {
    let CreateForwarded {
        customer,
        organization_id,
        agent,
        priority,
        commands,
    } = decided;
    let service = input.service;
    let now = service.now;
    let forwarded = input.forwarded.ok_or_else(|| {
        IngestError::Invalid("a forward was decided on without the forwarded mail".into())
    })?;
    let mut people = input.people.clone();
    let (customer_id, customer_email) = resolve_author(conn, customer, now, &mut people).await?;
    let (agent_id, agent_email) = resolve_author(conn, agent, now, &mut people).await?;
    let subject = forwarded
        .subject
        .clone()
        .unwrap_or_else(|| unforwarded_subject(input.new_subject));
    let ticket_id = service
        .open(
            conn,
            &Opening {
                ticket: NewTicket {
                    queue_id: input.queue.id,
                    organization_id: *organization_id,
                    requester_email: &customer_email,
                    requester_contact_id: Some(customer_id),
                    subject: &subject,
                    follows_up: None,
                    priority: *priority,
                    conversation_id: Some(&conversation(&InboundMail::default())),
                },
                participants: &[],
            },
            Actor { name: &agent_email },
        )
        .await?;
    // The customer's words as the customer's message, without the
    // agent's mail's identity (its Message-ID is the agent's).
    let customer_mail = InboundMail {
        from: Some(forwarded.sender.clone()),
        subject: Some(subject.clone()),
        text: forwarded.text.clone(),
        visible_text: forwarded.text.clone(),
        ..InboundMail::default()
    };
    service
        .add_message(
            conn,
            ticket_id,
            &Posting {
                mail: &customer_mail,
                author_kind: AuthorKind::Contact,
                author_id: Some(customer_id),
                text: &forwarded.text,
                attachments: &forwarded.attachments,
                internal: false,
                classification: input.classification.as_str(),
                raw_stored: false,
                people: &people,
            },
            Announce::Nobody,
        )
        .await?;
    let note = Posting {
        attachments: &[],
        ..posting(input, agent, agent_id, input.agent_text, true, &people)
    };
    service
        .add_message(
            conn,
            ticket_id,
            &note,
            Announce::NewTicket { by_agent: true },
        )
        .await?;
    conclude(
        conn,
        input,
        ticket_id,
        commands,
        &agent_email,
        Outcome::Created,
    )
    .await
}

/// Adds the message to its ticket: a customer's reply, an agent's answer or note, the status it
/// sets and the commands it carries.
async fn append(
    conn: &mut Conn,
    input: &Input<'_>,
    decided: &Append,
) -> Result<Report, IngestError> {
    let Append {
        ticket_id,
        author,
        status_change,
        participants,
        internal,
        commands,
    } = decided;
    let service = input.service;
    let mut people = input.people.clone();
    let (author_id, author_email) = resolve_author(conn, author, service.now, &mut people).await?;
    let actor = Actor {
        name: &author_email,
    };
    for address in participants {
        tickets::add_participant(conn, *ticket_id, address, "cc").await?;
    }
    let by_agent = matches!(author, Author::Agent { .. });
    // An agent's mail of commands alone says nothing to anyone: it is
    // kept as a note, and a status it sets is told as such.
    let commands_only = by_agent
        && !internal
        && input.agent_text.trim().is_empty()
        && input.mail.attachments.is_empty();
    let (text, stored_internal, announce) = match (by_agent, internal, commands_only) {
        (false, _, _) => (
            input.mail.visible_text.as_str(),
            false,
            Announce::Message(Written::ByCustomer),
        ),
        (true, true, _) => (
            input.agent_text,
            true,
            Announce::Message(Written::InternalNote),
        ),
        (true, false, true) => (input.agent_text, true, Announce::Nobody),
        (true, false, false) => (input.agent_text, false, Announce::Message(Written::ByAgent)),
    };
    let posting = posting(input, author, author_id, text, stored_internal, &people);
    // The status first, so that the answer shows the ticket as it now is.
    if let Some((_, to)) = status_change {
        service
            .set_status(conn, *ticket_id, *to, actor, commands_only)
            .await?;
    }
    service
        .add_message(conn, *ticket_id, &posting, announce)
        .await?;
    conclude(
        conn,
        input,
        *ticket_id,
        commands,
        &author_email,
        Outcome::Appended,
    )
    .await
}

/// Keeps automatic mail on its ticket, changing nothing (a proven bounce flags the addresses it
/// names).
async fn record(
    conn: &mut Conn,
    input: &Input<'_>,
    decided: &Record,
) -> Result<Report, IngestError> {
    let Record {
        ticket_id,
        author,
        bounced,
        bounce_outbox_id,
    } = decided;
    let service = input.service;
    let now = service.now;
    let author_id = match author {
        Some(Author::Agent { id, .. } | Author::Contact { id, .. }) => Some(*id),
        _ => None,
    };
    let kind = match author {
        Some(Author::Agent { .. }) => AuthorKind::Agent,
        Some(_) => AuthorKind::Contact,
        None => AuthorKind::Unknown,
    };
    let posting = Posting {
        mail: input.mail,
        author_kind: kind,
        author_id,
        text: &input.mail.visible_text,
        attachments: &input.mail.attachments,
        internal: false,
        classification: input.classification.as_str(),
        raw_stored: true,
        people: input.people,
    };
    service
        .add_message(conn, *ticket_id, &posting, Announce::Nobody)
        .await?;
    flag_bounced(conn, bounced, *bounce_outbox_id, Some(*ticket_id), now).await?;
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

/// The mail as a message of `author` (row `author_id`) showing `text`, with
/// the people the pipeline knows.
fn posting<'a>(
    input: &'a Input<'a>,
    author: &Author,
    author_id: i64,
    text: &'a str,
    internal: bool,
    people: &'a People,
) -> Posting<'a> {
    Posting {
        mail: input.mail,
        author_kind: match author {
            Author::Agent { .. } => AuthorKind::Agent,
            Author::Contact { .. } | Author::NewContact { .. } => AuthorKind::Contact,
        },
        author_id: Some(author_id),
        text,
        attachments: &input.mail.attachments,
        internal,
        classification: input.classification.as_str(),
        raw_stored: true,
        people,
    }
}

/// Applies an agent's commands (other than `#status` and `#note`, which the
/// decision carries) and returns the ticket that holds the thread after them.
async fn agent_commands(
    conn: &mut Conn,
    input: &Input<'_>,
    ticket_id: i64,
    commands: &[Command],
    agent: &str,
    status_applied: bool,
) -> Result<i64, IngestError> {
    if commands.is_empty() {
        return Ok(ticket_id);
    }
    let service = input.service;
    if !status_applied
        && let Some(status) = commands.iter().rev().find_map(|c| match c {
            Command::Status(s) => Some(*s),
            _ => None,
        })
    {
        service
            .set_status(conn, ticket_id, status, Actor { name: agent }, false)
            .await?;
    }
    Ok(service
        .apply_commands(conn, ticket_id, commands, agent)
        .await?)
}

async fn hold(
    conn: &mut Conn,
    code: HoldCode,
    reason: &str,
    input: &Input<'_>,
) -> Result<Report, IngestError> {
    let now = input.service.now;
    let notifier = input.service.notifier;
    let held_id = match input.released.map(|r| r.held_id) {
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
                now,
            )
            .await?;
            events::record(
                conn,
                &Event {
                    held_id: Some(id),
                    actor: Actor::SYSTEM.name,
                    action: "message_held",
                    new_value: Some(code.as_str()),
                    ..Event::default()
                },
                now,
            )
            .await?;
            let notice = HeldNotice {
                held_id: id,
                trigger: input.mail,
                people: input.people,
                queue: input.queue,
            };
            if code == HoldCode::CommandsRejected {
                let problems = input
                    .rejected
                    .iter()
                    .map(|e| format!("{}: {}", e.line, e.reason))
                    .collect();
                notifier
                    .commands_rejected(conn, &notice, problems, commands::HELP)
                    .await?;
            } else {
                notifier.message_held(conn, &notice, code).await?;
            }
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
                actor: Actor::SYSTEM.name,
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

/// The author's row id and address, creating the contact when it is new
/// (and telling `people` who it is now).
async fn resolve_author(
    conn: &mut Conn,
    author: &Author,
    now: i64,
    people: &mut People,
) -> Result<(i64, String), IngestError> {
    Ok(match author {
        Author::Agent { id, email } | Author::Contact { id, email } => (*id, email.clone()),
        Author::NewContact {
            email,
            name,
            organization_id,
        } => {
            let new = NewContact {
                email: email.clone(),
                name: name.clone(),
                organization_id: *organization_id,
                roles: vec![Role::Support],
                language: None,
            };
            let id = admin::add_contact(conn, &new, Actor::SYSTEM, now).await?;
            let mut identity = people.get(email).cloned().unwrap_or_default();
            identity.contact = Some(Contact {
                id,
                email: new.email,
                name: new.name,
                organization_id: new.organization_id,
                roles: new.roles,
                state: ContactState::Active,
                language: new.language,
            });
            people.insert(email, identity);
            (id, email.clone())
        }
    })
}

/// The Outlook conversation a new ticket joins: the mail's own, else a new one.
fn conversation(mail: &InboundMail) -> String {
    mail.thread_index
        .as_deref()
        .and_then(ThreadIndex::parse)
        .map(|index| index.conversation_id())
        .unwrap_or_else(|| hex::encode(rand::random::<[u8; 16]>()))
}

/// Marks a released held message as resolved into `ticket_id`.
async fn finish_release(
    conn: &mut Conn,
    input: &Input<'_>,
    ticket_id: i64,
) -> Result<(), IngestError> {
    let Some(Release { held_id, by }) = input.released else {
        return Ok(());
    };
    intake::resolve_held(
        conn,
        held_id,
        "released",
        Some(ticket_id),
        input.service.now,
    )
    .await?;
    let ticket = ticket_id.to_string();
    events::record(
        conn,
        &Event {
            ticket_id: Some(ticket_id),
            held_id: Some(held_id),
            actor: by.name,
            action: "message_released",
            new_value: Some(&ticket),
            ..Event::default()
        },
        input.service.now,
    )
    .await?;
    Ok(())
}
