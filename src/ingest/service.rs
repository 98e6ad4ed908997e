//! The ticket service: every change to a ticket — opening it, a message or
//! internal note, status, priority, assignee, participants, merge — applied,
//! written to the audit log and notified in the caller's transaction. The
//! pipeline, the command line and agents' mail commands all go through it.

use crate::blobs::BlobStore;
use crate::mail::{Attachment, InboundMail, Mailbox};
use crate::notify::{Notifier, People, Trigger, Written};
use crate::store::directory::{self, Agent};
use crate::store::events::{self, Event};
use crate::store::tickets::{self, NewAttachment, NewMessage, NewTicket, Priority, Status, Ticket};
use crate::store::{Conn, StoreError};

use super::commands::{Assignee, Command, LineError};

/// Why a change was refused.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The change makes no sense (an unknown agent, a merge into itself…).
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot store an attachment: {0}")]
    Files(#[source] std::io::Error),
}

/// Who makes a change, as the audit log names them.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    /// `system`, the operator's user name, or the address of the agent or contact.
    pub name: &'a str,
}

impl Actor<'static> {
    /// ticketd itself: the pipeline's and the daemon's own changes.
    pub const SYSTEM: Actor<'static> = Actor { name: "system" };
}

/// The operator at the command line, as the audit log names them: the user
/// who ran `sudo` (`SUDO_USER`), else the user (`USER`), else `operator`.
pub fn operator_name() -> String {
    ["SUDO_USER", "USER"]
        .iter()
        .filter_map(|key| std::env::var(key).ok())
        .map(|name| name.trim().to_string())
        .find(|name| !name.is_empty())
        .unwrap_or_else(|| "operator".to_string())
}

/// A ticket to open.
pub struct Opening<'a> {
    pub ticket: NewTicket<'a>,
    /// Copied addresses that become participants besides the requester.
    pub participants: &'a [String],
}

/// Who wrote a message, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorKind {
    Contact,
    Agent,
    Unknown,
}

impl AuthorKind {
    fn as_str(self) -> &'static str {
        match self {
            AuthorKind::Contact => "contact",
            AuthorKind::Agent => "agent",
            AuthorKind::Unknown => "unknown",
        }
    }
}

/// A message to add to a ticket.
pub struct Posting<'a> {
    pub mail: &'a InboundMail,
    pub author_kind: AuthorKind,
    pub author_id: Option<i64>,
    /// What is kept as its visible text (an agent's without the command lines).
    pub text: &'a str,
    pub attachments: &'a [Attachment],
    pub internal: bool,
    pub classification: &'a str,
    /// Whether the mail's raw copy is stored (not for a note typed at the command line).
    pub raw_stored: bool,
    /// Who the mail's addresses are, as the caller resolved them.
    pub people: &'a People,
}

/// Whom a new message is announced to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announce {
    /// Nobody (automatic mail recorded on a ticket).
    Nobody,
    /// The ticket's first message: acknowledged and told as a new ticket.
    NewTicket { by_agent: bool },
    /// A message on an existing ticket.
    Message(Written),
}

/// The service, for one transaction's changes at one moment.
pub struct TicketService<'a> {
    pub notifier: &'a Notifier,
    pub blobs: &'a BlobStore,
    /// Attachments larger than this are recorded but not stored.
    pub max_attachment_bytes: u64,
    pub now: i64,
}

impl TicketService<'_> {
    /// Opens a ticket with its requester and participants; returns its number.
    pub async fn open(
        &self,
        conn: &mut Conn,
        opening: &Opening<'_>,
        actor: Actor<'_>,
    ) -> Result<i64, ServiceError> {
        let t = &opening.ticket;
        let ticket_id = tickets::create(conn, t, self.now).await?;
        tickets::add_participant(conn, ticket_id, t.requester_email, "requester").await?;
        for address in opening.participants {
            tickets::add_participant(conn, ticket_id, address, "cc").await?;
        }
        let followed = t.follows_up.map(|id| format!("follows up #{id}"));
        self.audit(
            conn,
            ticket_id,
            actor,
            Change {
                action: "ticket_created",
                old: None,
                new: Some(followed.as_deref().unwrap_or(Status::New.as_str())),
            },
        )
        .await?;
        if t.priority != Priority::Normal {
            self.audit(
                conn,
                ticket_id,
                actor,
                Change {
                    action: "priority_changed",
                    old: Some(Priority::Normal.as_str()),
                    new: Some(t.priority.as_str()),
                },
            )
            .await?;
        }
        Ok(ticket_id)
    }

    /// Stores a message (and its files) on a ticket and announces it.
    pub async fn add_message(
        &self,
        conn: &mut Conn,
        ticket_id: i64,
        posting: &Posting<'_>,
        announce: Announce,
    ) -> Result<i64, ServiceError> {
        let mail = posting.mail;
        let references = (!mail.references.is_empty()).then(|| mail.references.join(" "));
        let row = tickets::add_message(
            conn,
            &NewMessage {
                ticket_id,
                direction: "inbound",
                author_kind: posting.author_kind.as_str(),
                author_id: posting.author_id,
                author_email: mail.from.as_ref().map(|f| f.address.as_str()),
                author_name: mail.from.as_ref().and_then(|f| f.name.as_deref()),
                message_id: mail.message_id.as_deref(),
                in_reply_to: mail.in_reply_to.first().map(String::as_str),
                references: references.as_deref(),
                subject: mail.subject.as_deref(),
                body_text: &mail.text,
                body_html: mail.html.as_deref(),
                visible_text: posting.text,
                internal: posting.internal,
                classification: posting.classification,
                raw_sha256: posting.raw_stored.then_some(mail.sha256.as_str()),
            },
            self.now,
        )
        .await?;
        for attachment in posting.attachments {
            let sha = attachment.sha256();
            let stored = (attachment.content.len() as u64) <= self.max_attachment_bytes;
            if stored {
                self.blobs
                    .put(&sha, &attachment.content)
                    .await
                    .map_err(ServiceError::Files)?;
            }
            tickets::add_attachment(
                conn,
                &NewAttachment {
                    message_row_id: row,
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
        tickets::touch(conn, ticket_id, self.now).await?;
        if announce == Announce::Nobody {
            return Ok(row);
        }
        let ticket = self.ticket(conn, ticket_id).await?;
        let trigger = Trigger {
            mail,
            text: posting.text,
            people: posting.people,
        };
        match announce {
            Announce::Nobody => {}
            Announce::NewTicket { by_agent } => {
                self.notifier
                    .ticket_created(conn, &ticket, trigger, by_agent)
                    .await?
            }
            Announce::Message(written) => {
                self.notifier
                    .message_added(conn, &ticket, trigger, written)
                    .await?
            }
        }
        Ok(row)
    }

    /// Sets the status; the customer side hears of it when `tell_customers`
    /// (not when an agent's answer carrying the change already tells them).
    /// Returns the old status when it changed.
    pub async fn set_status(
        &self,
        conn: &mut Conn,
        ticket_id: i64,
        status: Status,
        actor: Actor<'_>,
        tell_customers: bool,
    ) -> Result<Option<Status>, ServiceError> {
        let ticket = self.ticket(conn, ticket_id).await?;
        if ticket.status == status {
            return Ok(None);
        }
        if ticket.merged_into.is_some() && status != Status::Closed {
            return Err(ServiceError::Refused(format!(
                "ticket #{ticket_id} was merged into #{}; change that one",
                ticket.merged_into.unwrap_or_default()
            )));
        }
        tickets::set_status(conn, ticket_id, status, self.now).await?;
        self.audit(
            conn,
            ticket_id,
            actor,
            Change {
                action: "status_changed",
                old: Some(ticket.status.as_str()),
                new: Some(status.as_str()),
            },
        )
        .await?;
        let old = ticket.status;
        if tell_customers {
            let changed = Ticket {
                status,
                updated_at: self.now,
                ..ticket
            };
            self.notifier.status_changed(conn, &changed, old).await?;
        }
        Ok(Some(old))
    }

    /// Sets the priority. Returns the old one when it changed.
    pub async fn set_priority(
        &self,
        conn: &mut Conn,
        ticket_id: i64,
        priority: Priority,
        actor: Actor<'_>,
    ) -> Result<Option<Priority>, ServiceError> {
        let ticket = self.ticket(conn, ticket_id).await?;
        if ticket.priority == priority {
            return Ok(None);
        }
        tickets::set_priority(conn, ticket_id, priority, self.now).await?;
        self.audit(
            conn,
            ticket_id,
            actor,
            Change {
                action: "priority_changed",
                old: Some(ticket.priority.as_str()),
                new: Some(priority.as_str()),
            },
        )
        .await?;
        Ok(Some(ticket.priority))
    }

    /// Assigns the ticket to an active agent (by address), or to nobody.
    /// Returns false when nothing changed.
    pub async fn assign(
        &self,
        conn: &mut Conn,
        ticket_id: i64,
        agent: Option<&str>,
        actor: Actor<'_>,
    ) -> Result<bool, ServiceError> {
        let ticket = self.ticket(conn, ticket_id).await?;
        let agent = match agent {
            Some(address) => Some(active_agent(conn, address).await?),
            None => None,
        };
        if ticket.assignee_id == agent.as_ref().map(|a| a.id) {
            return Ok(false);
        }
        tickets::set_assignee(conn, ticket_id, agent.as_ref().map(|a| a.id), self.now).await?;
        self.audit(
            conn,
            ticket_id,
            actor,
            Change {
                action: "assigned",
                old: ticket.assignee.as_deref(),
                new: Some(agent.as_ref().map_or("nobody", |a| a.email.as_str())),
            },
        )
        .await?;
        Ok(true)
    }

    /// Adds a copied participant. Returns false when it was one already.
    pub async fn add_participant(
        &self,
        conn: &mut Conn,
        ticket_id: i64,
        address: &str,
        actor: Actor<'_>,
    ) -> Result<bool, ServiceError> {
        if directory::agent_by_email(conn, address).await?.is_some() {
            return Err(ServiceError::Refused(format!(
                "{address} is an agent; agents are told as agents, not copied as customers"
            )));
        }
        let added = tickets::add_participant(conn, ticket_id, address, "cc").await?;
        if added {
            self.audit(
                conn,
                ticket_id,
                actor,
                Change {
                    action: "participant_added",
                    old: None,
                    new: Some(address),
                },
            )
            .await?;
        }
        Ok(added)
    }

    /// Removes a copied participant (never the requester). Returns false when it was none.
    pub async fn remove_participant(
        &self,
        conn: &mut Conn,
        ticket_id: i64,
        address: &str,
        actor: Actor<'_>,
    ) -> Result<bool, ServiceError> {
        let removed = tickets::remove_participant(conn, ticket_id, address).await?;
        if removed {
            self.audit(
                conn,
                ticket_id,
                actor,
                Change {
                    action: "participant_removed",
                    old: Some(address),
                    new: None,
                },
            )
            .await?;
        }
        Ok(removed)
    }

    /// An internal note typed by the agent `agent` (an address) outside mail:
    /// kept on the ticket and told to the other agents.
    pub async fn add_note(
        &self,
        conn: &mut Conn,
        ticket_id: i64,
        agent: &str,
        text: &str,
    ) -> Result<i64, ServiceError> {
        let agent = active_agent(conn, agent).await?;
        let ticket = self.ticket(conn, ticket_id).await?;
        let mail = InboundMail {
            from: Some(Mailbox {
                address: agent.email.clone(),
                name: agent.name.clone(),
            }),
            subject: Some(ticket.subject),
            text: text.to_string(),
            visible_text: text.trim().to_string(),
            ..InboundMail::default()
        };
        let posting = Posting {
            mail: &mail,
            author_kind: AuthorKind::Agent,
            author_id: Some(agent.id),
            text: &mail.visible_text,
            attachments: &[],
            internal: true,
            classification: "normal",
            raw_stored: false,
            people: &People::default(),
        };
        let written = Announce::Message(Written::InternalNote);
        self.add_message(conn, ticket_id, &posting, written).await
    }

    /// Merges ticket `from` into `into`: its messages and participants move,
    /// it closes with a link, and later mail to it lands on `into`. Returns
    /// the ticket that holds the thread now.
    pub async fn merge(
        &self,
        conn: &mut Conn,
        from: i64,
        into: i64,
        actor: Actor<'_>,
    ) -> Result<i64, ServiceError> {
        let into = merge_target(conn, from, into).await?;
        tickets::merge(conn, from, into, self.now).await?;
        let (from_text, into_text) = (format!("#{from}"), format!("#{into}"));
        self.audit(
            conn,
            from,
            actor,
            Change {
                action: "merged_into",
                old: None,
                new: Some(&into_text),
            },
        )
        .await?;
        self.audit(
            conn,
            into,
            actor,
            Change {
                action: "merged_from",
                old: None,
                new: Some(&from_text),
            },
        )
        .await?;
        Ok(into)
    }

    /// Applies an agent's commands to a ticket, each an audit event with the
    /// agent as actor. `#status` and `#note` are the caller's (they decide
    /// how the message itself is told); `#merge` goes last, after the
    /// message is on the ticket, so that it moves with the thread.
    pub async fn apply_commands(
        &self,
        conn: &mut Conn,
        ticket_id: i64,
        commands: &[Command],
        agent: &str,
    ) -> Result<i64, ServiceError> {
        let actor = Actor { name: agent };
        let mut merge = None;
        for command in commands {
            match command {
                Command::Status(_) | Command::Note => {}
                Command::Priority(p) => {
                    self.set_priority(conn, ticket_id, *p, actor).await?;
                }
                Command::Assign(who) => {
                    let address = match who {
                        Assignee::Agent(a) => Some(a.as_str()),
                        Assignee::Me => Some(agent),
                        Assignee::Nobody => None,
                    };
                    self.assign(conn, ticket_id, address, actor).await?;
                }
                Command::Cc { add: true, address } => {
                    self.add_participant(conn, ticket_id, address, actor)
                        .await?;
                }
                Command::Cc {
                    add: false,
                    address,
                } => {
                    self.remove_participant(conn, ticket_id, address, actor)
                        .await?;
                }
                Command::Merge(into) => merge = Some(*into),
            }
        }
        match merge {
            Some(into) => self.merge(conn, ticket_id, into, actor).await,
            None => Ok(ticket_id),
        }
    }

    async fn ticket(&self, conn: &mut Conn, id: i64) -> Result<tickets::Ticket, ServiceError> {
        tickets::get(conn, id)
            .await?
            .ok_or_else(|| ServiceError::Refused(format!("no ticket #{id}")))
    }

    async fn audit(
        &self,
        conn: &mut Conn,
        ticket_id: i64,
        actor: Actor<'_>,
        change: Change<'_>,
    ) -> Result<(), ServiceError> {
        let Change {
            action,
            old: old_value,
            new: new_value,
        } = change;
        events::record(
            conn,
            &Event {
                ticket_id: Some(ticket_id),
                actor: actor.name,
                action,
                old_value,
                new_value,
                ..Event::default()
            },
            self.now,
        )
        .await?;
        Ok(())
    }
}

/// The active agent with `address`, or why there is none.
async fn active_agent(conn: &mut Conn, address: &str) -> Result<Agent, ServiceError> {
    match directory::agent_by_email(conn, address).await? {
        Some(agent) if agent.active => Ok(agent),
        Some(_) => Err(ServiceError::Refused(format!(
            "agent {address} is deactivated"
        ))),
        None => Err(ServiceError::Refused(format!("{address} is not an agent"))),
    }
}

/// The ticket a merge of `from` into `into` lands on (`into`, or what it
/// was merged into since), or why the merge cannot be.
async fn merge_target(conn: &mut Conn, from: i64, into: i64) -> Result<i64, ServiceError> {
    let Some(source) = tickets::get(conn, from).await? else {
        return Err(ServiceError::Refused(format!("no ticket #{from}")));
    };
    if let Some(already) = source.merged_into {
        return Err(ServiceError::Refused(format!(
            "ticket #{from} was merged into #{already} already"
        )));
    }
    if tickets::get(conn, into).await?.is_none() {
        return Err(ServiceError::Refused(format!("no ticket #{into}")));
    }
    let survivor = tickets::survivor(conn, into).await?;
    if survivor == from {
        return Err(ServiceError::Refused(format!(
            "ticket #{from} cannot be merged into itself"
        )));
    }
    Ok(survivor)
}

/// What is wrong with commands that parsed but cannot apply to `ticket_id`
/// (`None`: the mail opens a new ticket) for `agent`: an unknown agent, a
/// merge target that is no ticket… Nothing is changed.
pub async fn check_commands(
    conn: &mut Conn,
    ticket_id: Option<i64>,
    commands: &[Command],
    lines: &[String],
) -> Result<Vec<LineError>, StoreError> {
    let mut errors = Vec::new();
    for (command, line) in commands.iter().zip(lines) {
        let problem = match command {
            Command::Assign(Assignee::Agent(address)) => match active_agent(conn, address).await {
                Ok(_) => None,
                Err(ServiceError::Store(e)) => return Err(e),
                Err(e) => Some(e.to_string()),
            },
            Command::Cc { add: true, address } => directory::agent_by_email(conn, address)
                .await?
                .map(|_| format!("{address} is an agent: agents are told as agents")),
            Command::Merge(into) => match ticket_id {
                None => Some("this mail opens a new ticket: there is nothing to merge".into()),
                Some(from) => match merge_target(conn, from, *into).await {
                    Ok(_) => None,
                    Err(ServiceError::Store(e)) => return Err(e),
                    Err(e) => Some(e.to_string()),
                },
            },
            _ => None,
        };
        if let Some(reason) = problem {
            errors.push(LineError {
                line: line.clone(),
                reason,
            });
        }
    }
    Ok(errors)
}

/// One audited change: what happened, the value before and after.
#[derive(Clone, Copy)]
struct Change<'a> {
    action: &'a str,
    old: Option<&'a str>,
    new: Option<&'a str>,
}
