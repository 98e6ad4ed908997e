//! Notifications: an event on a ticket → its recipients → rendered templates → outbox rows,
//! written in the transaction that caused them.

pub mod compose;
pub mod context;
pub mod reminders;
pub mod templates;

use std::sync::Arc;

use tracing::{error, warn};

use crate::config::Settings;
use crate::ingest::thread::SubjectTag;
use crate::mail::{InboundMail, address};
use crate::store::directory::{self, Agent, Contact};
use crate::store::outbox::{self, NewOutbox};
use crate::store::queues::Queue;
use crate::store::tickets::{self, Status, Ticket};
use crate::store::{Conn, StoreError, now};
use context::{
    Context, HeldView, MessageView, OrganizationView, Person, StatusView, SupportView, TicketView,
};
use templates::{TemplateError, Templates};

/// The notice codes a held message's sender is told about; others (automatic
/// mail, oversized, unprocessable) get no answer.
pub const NOTICE_HOLD_CODES: [&str; 5] = [
    "locked",
    "inactive",
    "role_not_permitted",
    "unknown_sender",
    "rejected",
];

pub struct Notifier {
    templates: Templates,
    settings: Arc<Settings>,
    queues: Vec<Queue>,
    tag: SubjectTag,
    own_addresses: Vec<String>,
}

/// Who on the customer side a notification is for (see `Notifier::customer_side`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Audience {
    /// An acknowledgement of what may be a stranger's message.
    Acknowledgement,
    /// Everyone on the ticket's customer side.
    Everyone,
}

/// One mail to send: who gets it, in which language, and whether it is automatic.
struct Delivery {
    event: &'static str,
    recipient: Person,
    language: String,
    automatic: bool,
}

impl Notifier {
    /// Loads and checks the templates.
    pub fn new(settings: Arc<Settings>, queues: Vec<Queue>) -> Result<Notifier, TemplateError> {
        Ok(Notifier {
            templates: Templates::load(settings.notify.templates_dir.as_deref())?,
            tag: SubjectTag::new(&settings.tickets.tag),
            own_addresses: settings.own_addresses(),
            settings,
            queues,
        })
    }

    pub fn templates(&self) -> &Templates {
        &self.templates
    }

    /// A new ticket: the acknowledgement to the customer side, and agents are told.
    pub async fn ticket_created(
        &self,
        conn: &mut Conn,
        ticket_id: i64,
        trigger: &InboundMail,
        by_agent: bool,
    ) -> Result<(), StoreError> {
        let Some(facts) = self.facts(conn, ticket_id).await? else {
            return Ok(());
        };
        let message = message_view(trigger, self.settings.notify.max_quoted_chars);
        if !by_agent {
            let acknowledged = self
                .customer_side(conn, &facts, Audience::Acknowledgement)
                .await?;
            for (recipient, language) in acknowledged {
                let delivery = Delivery {
                    event: "ticket_received",
                    recipient,
                    language,
                    automatic: true,
                };
                self.send(conn, &facts, delivery, Some(trigger), &message, None, None)
                    .await?;
            }
        }
        let agents = self.agents_to_tell(conn, trigger).await?;
        self.tell_agents(conn, &facts, agents, "agent_new_ticket", trigger, &message)
            .await
    }

    /// A message added to a ticket: an agent's answer goes to the customer side;
    /// a customer's reply goes to the agents.
    pub async fn message_added(
        &self,
        conn: &mut Conn,
        ticket_id: i64,
        trigger: &InboundMail,
        by_agent: bool,
    ) -> Result<(), StoreError> {
        // A customer's reply goes to the agents only: with none to tell, there is nothing to look up.
        let agents = if by_agent {
            Vec::new()
        } else {
            let agents = self.agents_to_tell(conn, trigger).await?;
            if agents.is_empty() {
                return Ok(());
            }
            agents
        };
        let Some(facts) = self.facts(conn, ticket_id).await? else {
            return Ok(());
        };
        let message = message_view(trigger, self.settings.notify.max_quoted_chars);
        if by_agent {
            for (recipient, language) in
                self.customer_side(conn, &facts, Audience::Everyone).await?
            {
                // Written by a person: not automatic, not rate-limited.
                let delivery = Delivery {
                    event: "agent_reply",
                    recipient,
                    language,
                    automatic: false,
                };
                self.send(conn, &facts, delivery, Some(trigger), &message, None, None)
                    .await?;
            }
            Ok(())
        } else {
            self.tell_agents(
                conn,
                &facts,
                agents,
                "agent_customer_reply",
                trigger,
                &message,
            )
            .await
        }
    }

    /// A status set by an operator or agent: the customer side hears of pending, solved and closed.
    pub async fn status_changed(
        &self,
        conn: &mut Conn,
        ticket_id: i64,
        old: Status,
        new: Status,
    ) -> Result<(), StoreError> {
        if !matches!(new, Status::Pending | Status::Solved | Status::Closed) || old == new {
            return Ok(());
        }
        let Some(facts) = self.facts(conn, ticket_id).await? else {
            return Ok(());
        };
        let status = StatusView {
            old: old.as_str().into(),
            new: new.as_str().into(),
        };
        let message = empty_message(&facts.ticket.subject);
        for (recipient, language) in self.customer_side(conn, &facts, Audience::Everyone).await? {
            let delivery = Delivery {
                event: "status_changed",
                recipient,
                language,
                automatic: true,
            };
            self.send(conn, &facts, delivery, None, &message, Some(&status), None)
                .await?;
        }
        Ok(())
    }

    /// A reminder for a ticket awaiting the customer.
    pub async fn reminder(&self, conn: &mut Conn, ticket_id: i64) -> Result<(), StoreError> {
        let Some(facts) = self.facts(conn, ticket_id).await? else {
            return Ok(());
        };
        let message = empty_message(&facts.ticket.subject);
        for (recipient, language) in self.customer_side(conn, &facts, Audience::Everyone).await? {
            let delivery = Delivery {
                event: "reminder",
                recipient,
                language,
                automatic: true,
            };
            self.send(conn, &facts, delivery, None, &message, None, None)
                .await?;
        }
        Ok(())
    }

    /// Tells the sender of a held message why and what to do, for the codes that merit it.
    pub async fn message_held(
        &self,
        conn: &mut Conn,
        held_id: i64,
        trigger: &InboundMail,
        code: &str,
        queue: &Queue,
    ) -> Result<(), StoreError> {
        if !NOTICE_HOLD_CODES.contains(&code) {
            return Ok(());
        }
        let Some(from) = &trigger.from else {
            return Ok(());
        };
        let contact = directory::contact_by_email(conn, &from.address).await?;
        let org_language = match contact.as_ref().and_then(|c| c.organization_id) {
            Some(id) => directory::organization_by_id(conn, id)
                .await?
                .and_then(|o| o.language),
            None => None,
        };
        let language = self.language(contact.as_ref(), org_language.as_deref());
        let subject = shorten(
            trigger.subject.as_deref().unwrap_or("(no subject)"),
            MAX_SUBJECT_CHARS,
        );
        let person = Person {
            address: from.address.clone(),
            name: from.name.clone(),
        };
        let facts = Facts {
            ticket: TicketView {
                id: 0,
                subject: subject.clone(),
                status: String::new(),
                queue: queue.name.clone(),
                tag: String::new(),
            },
            ticket_id: None,
            held_id: Some(held_id),
            requester: person.clone(),
            requester_contact: contact,
            organization: None,
            organization_language: org_language,
            organization_id: None,
            queue: queue.clone(),
            thread: trigger.message_id.iter().cloned().collect(),
        };
        let held = HeldView {
            code: code.into(),
            subject,
        };
        let delivery = Delivery {
            event: "message_held",
            recipient: person,
            language,
            automatic: true,
        };
        self.send(
            conn,
            &facts,
            delivery,
            Some(trigger),
            &message_view(trigger, self.settings.notify.max_quoted_chars),
            None,
            Some(&held),
        )
        .await
    }

    /// Renders an event for a ticket without sending it (`ticketd template render`).
    pub async fn preview(
        &self,
        conn: &mut Conn,
        event: &str,
        ticket_id: i64,
        language: Option<&str>,
    ) -> Result<templates::Rendered, PreviewError> {
        let facts = self
            .facts(conn, ticket_id)
            .await?
            .ok_or(PreviewError::NoTicket(ticket_id))?;
        let language = match language {
            Some(l) => l.to_string(),
            None => self.language(
                facts.requester_contact.as_ref(),
                facts.organization_language.as_deref(),
            ),
        };
        let messages = tickets::messages(conn, ticket_id).await?;
        let last = messages.iter().rev().find(|m| m.direction == "inbound");
        let text = last.map(|m| m.visible_text.as_str()).unwrap_or_default();
        let max_quoted = self.settings.notify.max_quoted_chars;
        let message = MessageView {
            author_address: last
                .and_then(|m| m.author.address.clone())
                .unwrap_or_default(),
            author_name: last.and_then(|m| m.author.name.clone()),
            subject: shorten(
                last.and_then(|m| m.subject.as_deref())
                    .unwrap_or(&facts.ticket.subject),
                MAX_SUBJECT_CHARS,
            ),
            text: shorten(text, max_quoted),
            truncated: text.chars().nth(max_quoted).is_some(),
        };
        let ctx = Context {
            ticket: facts.ticket.clone(),
            recipient: facts.requester.clone(),
            requester: facts.requester.clone(),
            organization: facts.organization.clone(),
            message,
            status: StatusView {
                old: "open".into(),
                new: facts.ticket.status.clone(),
            },
            held: HeldView {
                code: "locked".into(),
                subject: facts.ticket.subject.clone(),
            },
            support: self.support(&facts.queue),
        };
        Ok(self.templates.render(event, &language, &ctx)?)
    }

    /// The active agents to tell of `trigger`: not its author, none of our own
    /// addresses; nobody when agent notifications are off.
    async fn agents_to_tell(
        &self,
        conn: &mut Conn,
        trigger: &InboundMail,
    ) -> Result<Vec<Agent>, StoreError> {
        if !self.settings.notify.notify_agents {
            return Ok(Vec::new());
        }
        let author = trigger.from.as_ref().map(|f| f.address.as_str());
        let mut agents = directory::list_agents(conn).await?;
        agents.retain(|agent| {
            agent.active && Some(agent.email.as_str()) != author && !self.is_own(&agent.email)
        });
        Ok(agents)
    }

    async fn tell_agents(
        &self,
        conn: &mut Conn,
        facts: &Facts,
        agents: Vec<Agent>,
        event: &'static str,
        trigger: &InboundMail,
        message: &MessageView,
    ) -> Result<(), StoreError> {
        for agent in agents {
            let delivery = Delivery {
                event,
                recipient: Person {
                    address: agent.email.clone(),
                    name: agent.name.clone(),
                },
                language: self.settings.notify.default_language.clone(),
                automatic: true,
            };
            self.send(conn, facts, delivery, Some(trigger), message, None, None)
                .await?;
        }
        Ok(())
    }

    /// The requester, the organization's notification addresses and the
    /// participants — nobody else, never one of ours, never an agent — each
    /// with a language. For an [`Audience::Acknowledgement`] only participants
    /// who are known contacts, and at most `notify.max_auto_per_message` in all.
    async fn customer_side(
        &self,
        conn: &mut Conn,
        facts: &Facts,
        audience: Audience,
    ) -> Result<Vec<(Person, String)>, StoreError> {
        let mut addresses: Vec<(String, bool)> = vec![(facts.requester.address.clone(), false)];
        if let Some(org) = facts.organization_id {
            let listed = directory::organization_notify_addresses(conn, org).await?;
            addresses.extend(listed.into_iter().map(|a| (a, false)));
        }
        if let Some(ticket_id) = facts.ticket_id {
            let participants = tickets::participants(conn, ticket_id).await?;
            addresses.extend(participants.into_iter().map(|a| (a, true)));
        }
        let limit = match audience {
            Audience::Acknowledgement => self.settings.notify.max_auto_per_message,
            Audience::Everyone => usize::MAX,
        };
        let mut out: Vec<(Person, String)> = Vec::new();
        for (address, participant) in addresses {
            if out.len() >= limit {
                warn!(
                    ticket = facts.ticket_id,
                    limit,
                    "acknowledgement not sent to further addresses: notify.max_auto_per_message"
                );
                break;
            }
            if self.is_own(&address) || out.iter().any(|(p, _)| p.address == address) {
                continue;
            }
            let found = directory::identify(conn, &address, address::domain(&address)).await?;
            if found.agent.is_some() {
                continue;
            }
            if participant && audience == Audience::Acknowledgement && found.contact.is_none() {
                // Copied by whoever wrote: not acknowledged to an address nobody registered.
                continue;
            }
            let org_language = found.organization.as_ref().and_then(|o| o.language.clone());
            let language = self.language(
                found.contact.as_ref(),
                org_language
                    .as_deref()
                    .or(facts.organization_language.as_deref()),
            );
            let name = found.contact.and_then(|c| c.name);
            out.push((Person { address, name }, language));
        }
        Ok(out)
    }

    /// The contact's language, else the organization's, else the default.
    fn language(&self, contact: Option<&Contact>, organization: Option<&str>) -> String {
        let wanted = [contact.and_then(|c| c.language.as_deref()), organization];
        self.templates
            .pick_language(&wanted, &self.settings.notify.default_language)
            .to_string()
    }

    fn is_own(&self, address: &str) -> bool {
        self.own_addresses.iter().any(|a| a == address)
    }

    fn support(&self, queue: &Queue) -> SupportView {
        let configured = self.settings.queues.iter().find(|q| q.name == queue.name);
        SupportView {
            name: configured
                .and_then(|q| q.from_name.clone())
                .unwrap_or_else(|| "Support".into()),
            address: self.sender_address(queue).to_string(),
        }
    }

    /// The envelope sender of the queue's notifications: `envelope_sender` when
    /// configured, else the queue's own address. The outbox sender turns it
    /// into a return path per notification (VERP).
    fn envelope_sender<'a>(&'a self, queue: &'a Queue) -> &'a str {
        self.settings
            .queues
            .iter()
            .find(|q| q.name == queue.name)
            .and_then(|q| q.envelope_sender.as_deref())
            .unwrap_or_else(|| self.sender_address(queue))
    }

    /// The queue's first address, else the first address of any queue.
    fn sender_address<'a>(&'a self, queue: &'a Queue) -> &'a str {
        queue
            .addresses
            .first()
            .or_else(|| self.queues.iter().find_map(|q| q.addresses.first()))
            .map(String::as_str)
            .unwrap_or("ticketd@localhost")
    }

    /// Renders, composes and enqueues one mail, unless the loop rules forbid it.
    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        conn: &mut Conn,
        facts: &Facts,
        delivery: Delivery,
        trigger: Option<&InboundMail>,
        message: &MessageView,
        status: Option<&StatusView>,
        held: Option<&HeldView>,
    ) -> Result<(), StoreError> {
        let to = delivery.recipient.address.as_str();
        if delivery.automatic
            && !self
                .automatic_allowed(conn, to, trigger, delivery.event)
                .await?
        {
            return Ok(());
        }
        let ctx = Context {
            ticket: facts.ticket.clone(),
            recipient: delivery.recipient.clone(),
            requester: facts.requester.clone(),
            organization: facts.organization.clone(),
            message: message.clone(),
            status: status.cloned().unwrap_or(StatusView {
                old: String::new(),
                new: facts.ticket.status.clone(),
            }),
            held: held.cloned().unwrap_or(HeldView {
                code: String::new(),
                subject: String::new(),
            }),
            support: self.support(&facts.queue),
        };
        let rendered = match self
            .templates
            .render(delivery.event, &delivery.language, &ctx)
        {
            Ok(r) => r,
            Err(e) => {
                error!(event = delivery.event, recipient = to, error = %e, "notification not sent: its template failed");
                return Ok(());
            }
        };
        let from = self.sender_address(&facts.queue);
        let message_id = new_message_id(delivery.event, facts, address::domain(from));
        let (in_reply_to, references) = threading(&facts.thread, trigger);
        let bytes = compose::compose(
            &compose::Addressing {
                from_name: &ctx.support.name,
                from_address: from,
                to_name: delivery.recipient.name.as_deref(),
                to_address: to,
                message_id: &message_id,
                in_reply_to: in_reply_to.as_deref(),
                references: &references,
                automatic: delivery.automatic,
            },
            &rendered,
        );
        let bytes = match bytes {
            Ok(b) => b,
            Err(e) => {
                error!(event = delivery.event, recipient = to, error = %e, "notification not sent");
                return Ok(());
            }
        };
        outbox::enqueue(
            conn,
            &NewOutbox {
                ticket_id: facts.ticket_id,
                held_id: facts.held_id,
                kind: delivery.event,
                automatic: delivery.automatic,
                mail_from: self.envelope_sender(&facts.queue),
                recipient: to,
                message_id: &message_id,
                subject: &rendered.subject,
                bytes: &bytes,
            },
            now(),
        )
        .await?;
        Ok(())
    }

    /// The loop rules for automatic mail: not to list mail's sender, not to an
    /// address that bounced, not more than the hourly limit to one address.
    async fn automatic_allowed(
        &self,
        conn: &mut Conn,
        to: &str,
        trigger: Option<&InboundMail>,
        event: &str,
    ) -> Result<bool, StoreError> {
        if let Some(mail) = trigger
            && mail.from.as_ref().is_some_and(|f| f.address == to)
            && (mail.signals.list_id.is_some() || mail.signals.precedence.is_some())
        {
            warn!(
                recipient = to,
                event, "no automatic mail to mailing-list mail"
            );
            return Ok(false);
        }
        let flag_lifetime = i64::try_from(self.settings.notify.bounce_flag_days)
            .unwrap_or(i64::MAX / 86_400)
            .saturating_mul(86_400);
        let history =
            outbox::automatic_history(conn, to, now() - 3600, now().saturating_sub(flag_lifetime))
                .await?;
        if history.bounced {
            warn!(
                recipient = to,
                event,
                "no automatic mail: a delivery report proved mail to this address fails \
                 (`ticketd address clear {to}` lifts the flag)"
            );
            return Ok(false);
        }
        if event.starts_with("agent_") {
            return Ok(true);
        }
        let limit = i64::from(self.settings.notify.max_auto_per_sender_per_hour);
        let sent = history.sent_since;
        if sent >= limit {
            warn!(
                recipient = to,
                event,
                limit,
                "automatic mail suppressed: notify.max_auto_per_sender_per_hour reached for this address"
            );
            return Ok(false);
        }
        Ok(true)
    }

    async fn facts(&self, conn: &mut Conn, ticket_id: i64) -> Result<Option<Facts>, StoreError> {
        let Some(ticket) = tickets::get(conn, ticket_id).await? else {
            return Ok(None);
        };
        let contact = directory::contact_by_email(conn, &ticket.requester).await?;
        let organization = match ticket.organization_id {
            Some(id) => directory::organization_by_id(conn, id).await?,
            None => None,
        };
        let queue = self
            .queues
            .iter()
            .find(|q| q.id == ticket.queue_id)
            .or_else(|| self.queues.first())
            .cloned()
            .ok_or_else(|| StoreError::NotFound("no queue is configured".into()))?;
        let thread = tickets::inbound_message_ids(conn, ticket_id).await?;
        Ok(Some(Facts {
            ticket: self.ticket_view(&ticket),
            ticket_id: Some(ticket_id),
            held_id: None,
            requester: Person {
                address: ticket.requester.clone(),
                name: contact.as_ref().and_then(|c| c.name.clone()),
            },
            requester_contact: contact,
            organization: organization.as_ref().map(|o| OrganizationView {
                name: o.name.clone(),
            }),
            organization_language: organization.as_ref().and_then(|o| o.language.clone()),
            organization_id: ticket.organization_id,
            queue,
            thread,
        }))
    }

    fn ticket_view(&self, t: &Ticket) -> TicketView {
        TicketView {
            id: t.id,
            subject: shorten(&t.subject, MAX_SUBJECT_CHARS),
            status: t.status.as_str().into(),
            queue: t.queue.clone(),
            tag: self.tag.format(t.id),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error("no ticket #{0}")]
    NoTicket(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Template(#[from] TemplateError),
}

/// What every mail about one ticket (or one held message) shares.
struct Facts {
    ticket: TicketView,
    ticket_id: Option<i64>,
    held_id: Option<i64>,
    requester: Person,
    requester_contact: Option<Contact>,
    organization: Option<OrganizationView>,
    organization_language: Option<String>,
    organization_id: Option<i64>,
    queue: Queue,
    /// Message-IDs of the customer's messages, oldest first.
    thread: Vec<String>,
}

/// The most characters of any subject a notification shows.
const MAX_SUBJECT_CHARS: usize = 200;

/// `text` cut to `max` characters with `…` when longer.
fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// What a notification shows of `mail`: at most `max_quoted` characters of its
/// visible text (`truncated` says the rest is on the ticket) and a short subject.
fn message_view(mail: &InboundMail, max_quoted: usize) -> MessageView {
    let truncated = mail.visible_text.chars().nth(max_quoted).is_some();
    MessageView {
        author_address: mail
            .from
            .as_ref()
            .map(|f| f.address.clone())
            .unwrap_or_default(),
        author_name: mail.from.as_ref().and_then(|f| f.name.clone()),
        subject: shorten(
            mail.subject.as_deref().unwrap_or_default(),
            MAX_SUBJECT_CHARS,
        ),
        text: if truncated {
            shorten(&mail.visible_text, max_quoted)
        } else {
            mail.visible_text.clone()
        },
        truncated,
    }
}

fn empty_message(subject: &str) -> MessageView {
    MessageView {
        author_address: String::new(),
        author_name: None,
        subject: subject.into(),
        text: String::new(),
        truncated: false,
    }
}

/// In-Reply-To: the message that caused this mail, else the customer's latest;
/// References: the customer's messages of the thread (the last 20).
fn threading(thread: &[String], trigger: Option<&InboundMail>) -> (Option<String>, Vec<String>) {
    let mut references: Vec<String> = thread.iter().rev().take(20).rev().cloned().collect();
    let parent = trigger
        .and_then(|m| m.message_id.clone())
        .or_else(|| thread.last().cloned());
    if let Some(p) = &parent
        && !references.contains(p)
    {
        references.push(p.clone());
    }
    (parent, references)
}

fn new_message_id(event: &str, facts: &Facts, domain: &str) -> String {
    let subject = match (facts.ticket_id, facts.held_id) {
        (Some(t), _) => format!("t{t}"),
        (None, Some(h)) => format!("h{h}"),
        _ => "x".into(),
    };
    let domain = if domain.is_empty() {
        "ticketd.invalid"
    } else {
        domain
    };
    format!(
        "ticketd.{event}.{subject}.{:016x}@{domain}",
        rand::random::<u64>()
    )
}
