//! Notifications: an event on a ticket → its recipients → rendered templates → outbox rows,
//! written in the transaction that caused them.

pub mod compose;
pub mod context;
pub mod people;
pub mod recipients;
pub mod reminders;
pub mod templates;

use std::sync::Arc;

use tracing::{error, warn};

use crate::config::Settings;
use crate::credentials::{self, CredentialError};
use crate::mail::tag::SubjectTag;
use crate::mail::thread_index::ThreadIndex;
use crate::mail::{InboundMail, address, reply_token};
use crate::store::directory::{self, Agent, Contact};
use crate::store::intake::HoldCode;
use crate::store::outbox::{self, NewOutbox, Notice};
use crate::store::queues::{self, Queue};
use crate::store::tickets::{self, Status, Ticket};
use crate::store::{Conn, Store, StoreError, now};
pub use people::People;

use context::{
    Context, HeldView, MessageView, OrganizationView, Person, StatusView, SupportView, TicketView,
};
use recipients::{Event, Participant, Side};
use templates::{TemplateError, Templates};

/// A held message whose sender is told about it.
#[derive(Clone, Copy)]
pub struct HeldNotice<'a> {
    pub held_id: i64,
    /// The message as received.
    pub trigger: &'a InboundMail,
    /// Who its sender is, when the pipeline looked it up.
    pub people: &'a People,
    /// The queue it was held in (its address answers).
    pub queue: &'a Queue,
}

/// Why a notifier could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Templates(#[from] TemplateError),
    #[error("cannot load the reply token secret: {0}")]
    Secret(#[from] CredentialError),
}

pub struct Notifier {
    templates: Templates,
    /// The key of keyed reply addresses.
    reply_key: Vec<u8>,
    settings: Arc<Settings>,
    queues: Vec<Queue>,
    tag: SubjectTag,
    own_addresses: Vec<String>,
}

/// Who wrote a message added to a ticket, which decides who hears of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// A customer: the ticket's agents are told.
    ByCustomer,
    /// An agent in public: the customer side gets the agent's words.
    ByAgent,
    /// An agent's internal note: the other agents only.
    InternalNote,
}

/// The message a notification is about: the mail (for threading, its author
/// and its files) and the text shown of it.
#[derive(Clone, Copy)]
pub struct Trigger<'a> {
    pub mail: &'a InboundMail,
    /// What recipients see of it: the visible text, without an agent's commands.
    pub text: &'a str,
    /// Who the mail's addresses are, as the pipeline found them.
    pub people: &'a People,
}

/// One mail to send: who gets it, in which language, and whether it is automatic.
struct Delivery {
    event: Notice,
    recipient: Person,
    language: String,
    automatic: bool,
    /// The display name of From, when not the queue's (`"Jane Doe via Support"`).
    from_name: Option<String>,
    /// Files sent along.
    attachments: Vec<crate::mail::Attachment>,
    /// Where answers go, when not to the queue.
    reply_to: Option<String>,
}

impl Delivery {
    fn new(event: Notice, recipient: Person, language: String, automatic: bool) -> Self {
        Delivery {
            event,
            recipient,
            language,
            automatic,
            from_name: None,
            attachments: Vec::new(),
            reply_to: None,
        }
    }
}

impl Notifier {
    /// Brings the stored queues in line with the configuration (writing only
    /// when it changed), then loads and checks the templates: what every
    /// caller (the pipeline, the daemon's reminders, the command line) needs.
    pub async fn open(store: &Store, settings: Arc<Settings>) -> Result<Notifier, OpenError> {
        let queues = {
            let mut conn = store.conn().await?;
            queues::load(&mut conn, &settings.queues).await?
        };
        Notifier::new(settings, queues)
    }

    /// Loads and checks the templates and the reply token secret, for `queues` as stored.
    pub fn new(settings: Arc<Settings>, queues: Vec<Queue>) -> Result<Notifier, OpenError> {
        let tickets = &settings.tickets;
        let reply_key = credentials::reply_token_secret(
            tickets.reply_token_secret.as_deref(),
            tickets.reply_token_secret_file.as_deref(),
            &settings.data.dir,
        )?;
        Ok(Notifier {
            templates: Templates::load(settings.notify.templates_dir.as_deref())?,
            reply_key,
            tag: SubjectTag::new(&settings.tickets.tag),
            own_addresses: settings.own_addresses(),
            settings,
            queues,
        })
    }

    /// The configured queues, as stored (with their ids).
    pub fn queues(&self) -> &[Queue] {
        &self.queues
    }

    /// The key that signs and checks keyed reply addresses.
    pub fn reply_key(&self) -> &[u8] {
        &self.reply_key
    }

    /// The loaded templates (shipped, with the operator's on top).
    pub fn templates(&self) -> &Templates {
        &self.templates
    }

    /// A new ticket: a customer's is acknowledged to the customer side; the
    /// queue's agents are told, with the customer's files.
    pub async fn ticket_created(
        &self,
        conn: &mut Conn,
        ticket: &Ticket,
        trigger: Trigger<'_>,
        by_agent: bool,
    ) -> Result<(), StoreError> {
        let event = if by_agent {
            Event::CreatedByAgent
        } else {
            Event::Created
        };
        self.notify(conn, ticket, event, Some(trigger), None).await
    }

    /// A message added to a ticket, told as [`recipients`] decides for who wrote it.
    pub async fn message_added(
        &self,
        conn: &mut Conn,
        ticket: &Ticket,
        trigger: Trigger<'_>,
        written: Written,
    ) -> Result<(), StoreError> {
        let event = match written {
            Written::ByCustomer => Event::CustomerReply,
            Written::ByAgent => Event::AgentReply,
            Written::InternalNote => Event::InternalNote,
        };
        self.notify(conn, ticket, event, Some(trigger), None).await
    }

    /// A status set by an operator or agent (`ticket` shows the new one):
    /// the customer side hears of pending, solved and closed.
    pub async fn status_changed(
        &self,
        conn: &mut Conn,
        ticket: &Ticket,
        old: Status,
    ) -> Result<(), StoreError> {
        let new = ticket.status;
        if !matches!(new, Status::Pending | Status::Solved | Status::Closed) || old == new {
            return Ok(());
        }
        let status = StatusView {
            old: old.as_str().into(),
            new: new.as_str().into(),
        };
        self.notify(conn, ticket, Event::StatusChanged, None, Some(&status))
            .await
    }

    /// A reminder for a ticket awaiting the customer.
    pub async fn reminder(&self, conn: &mut Conn, ticket: &Ticket) -> Result<(), StoreError> {
        self.notify(conn, ticket, Event::Reminder, None, None).await
    }

    /// Enqueues the mails of one event on a ticket, to whom [`recipients`] says.
    async fn notify(
        &self,
        conn: &mut Conn,
        ticket: &Ticket,
        event: Event,
        trigger: Option<Trigger<'_>>,
        status: Option<&StatusView>,
    ) -> Result<(), StoreError> {
        let nobody = People::default();
        let people = trigger.map_or(&nobody, |t| t.people);
        let facts = self.facts(conn, ticket, people).await?;
        let author = trigger.and_then(|t| t.mail.from.as_ref().map(|f| f.address.as_str()));
        let agents = directory::list_agents(conn).await?;
        let addressees = self
            .addressees(conn, &facts, &agents, event, author)
            .await?;
        if addressees.is_empty() {
            return Ok(());
        }
        let max_quoted = self.settings.notify.max_quoted_chars;
        let mut message = match trigger {
            Some(t) => message_view(t.mail, t.text, max_quoted),
            None => empty_message(facts.ticket().map_or("", |t| t.subject.as_str())),
        };
        let agent_files = match trigger {
            Some(t) => self.files_for_agents(t.mail, &mut message),
            None => Vec::new(),
        };
        let customer_event = match event {
            Event::Created => Some(Notice::TicketReceived),
            Event::AgentReply => Some(Notice::AgentReply),
            Event::StatusChanged => Some(Notice::StatusChanged),
            Event::Reminder => Some(Notice::Reminder),
            Event::CreatedByAgent | Event::CustomerReply | Event::InternalNote => None,
        };
        let agent_event = match event {
            Event::Created | Event::CreatedByAgent => Some(Notice::AgentNewTicket),
            Event::CustomerReply => Some(Notice::AgentCustomerReply),
            Event::InternalNote => Some(Notice::AgentNote),
            Event::AgentReply | Event::StatusChanged | Event::Reminder => None,
        };
        let mail = trigger.map(|t| t.mail);
        for addressee in addressees {
            let delivery = match addressee.side {
                Side::Customer => {
                    let Some(name) = customer_event else { continue };
                    let (person, language) = self
                        .customer(conn, &facts, people, &addressee.address)
                        .await?;
                    let mut delivery = Delivery::new(name, person, language, addressee.automatic);
                    if event == Event::AgentReply {
                        delivery.attachments =
                            mail.map(|m| m.attachments.clone()).unwrap_or_default();
                    }
                    delivery
                }
                Side::Agent => {
                    let Some(name) = agent_event else { continue };
                    let person = Person {
                        address: addressee.address.clone(),
                        name: agents
                            .iter()
                            .find(|a| a.email == addressee.address)
                            .and_then(|a| a.name.clone()),
                    };
                    let language = self.settings.notify.default_language.clone();
                    let mut delivery = Delivery::new(name, person, language, true);
                    delivery.from_name = Some(format!(
                        "{} via {}",
                        message
                            .author_name
                            .as_deref()
                            .unwrap_or(&message.author_address),
                        self.support(&facts.queue).name
                    ));
                    delivery.attachments = agent_files.clone();
                    if event == Event::InternalNote {
                        // Answers to a note stay among agents.
                        delivery.reply_to = self.support(&facts.queue).comment_address;
                    }
                    delivery
                }
            };
            let content = Content {
                message: &message,
                status,
                held: None,
            };
            self.send(conn, &facts, delivery, mail, &content).await?;
        }
        Ok(())
    }

    /// The customer's files that go to agents, up to
    /// `notify.max_attachment_bytes_to_agents` in all; the names of the rest
    /// are listed in `message`.
    fn files_for_agents(
        &self,
        mail: &InboundMail,
        message: &mut MessageView,
    ) -> Vec<crate::mail::Attachment> {
        let mut budget = self.settings.notify.max_attachment_bytes_to_agents;
        let mut sent = Vec::new();
        for file in &mail.attachments {
            let size = file.content.len() as u64;
            if size <= budget {
                budget -= size;
                sent.push(file.clone());
            } else {
                message.attachments_omitted.push(
                    file.filename
                        .clone()
                        .unwrap_or_else(|| file.content_type.clone()),
                );
            }
        }
        sent
    }

    /// Who gets mail about `event` (`agents` being every agent), loaded and
    /// decided by [`recipients`].
    async fn addressees(
        &self,
        conn: &mut Conn,
        facts: &Facts,
        agents: &[Agent],
        event: Event,
        author: Option<&str>,
    ) -> Result<Vec<recipients::Addressee>, StoreError> {
        let Some(ticket_id) = facts.ticket_id() else {
            return Ok(Vec::new());
        };
        let participants: Vec<Participant> = tickets::participant_facts(conn, ticket_id)
            .await?
            .into_iter()
            .filter(|p| p.email != facts.requester.address)
            .map(|p| Participant {
                address: p.email,
                known_contact: p.known_contact,
            })
            .collect();
        let organization_notify = match facts.organization_id {
            Some(org) => directory::organization_notify_addresses(conn, org).await?,
            None => Vec::new(),
        };
        let all_agents: Vec<String> = agents.iter().map(|a| a.email.clone()).collect();
        let active = |email: &str| agents.iter().any(|a| a.email == email && a.active);
        let queue_agents: Vec<String> = if self.settings.notify.notify_agents {
            match self
                .settings
                .queues
                .iter()
                .find(|q| q.name == facts.queue.name)
                .and_then(|q| q.agents.as_ref())
            {
                Some(listed) => listed.iter().filter(|a| active(a)).cloned().collect(),
                None => agents
                    .iter()
                    .filter(|a| a.active)
                    .map(|a| a.email.clone())
                    .collect(),
            }
        } else {
            Vec::new()
        };
        let assignee = facts
            .assignee
            .as_deref()
            .filter(|a| active(a) && self.settings.notify.notify_agents);
        let flag_lifetime = i64::try_from(self.settings.notify.bounce_flag_days)
            .unwrap_or(i64::MAX / 86_400)
            .saturating_mul(86_400);
        let no_automatic: Vec<String> =
            outbox::bounce_flags(conn, now().saturating_sub(flag_lifetime), None)
                .await?
                .into_iter()
                .map(|f| f.address)
                .collect();
        Ok(recipients::recipients(
            event,
            &recipients::Facts {
                requester: &facts.requester.address,
                participants: &participants,
                organization_notify: &organization_notify,
                queue_agents: &queue_agents,
                assignee,
                author,
                own_addresses: &self.own_addresses,
                all_agents: &all_agents,
                no_automatic: &no_automatic,
                max_automatic: self.settings.notify.max_auto_per_message,
            },
        ))
    }

    /// A customer-side recipient with their name and language, looked up
    /// only when the pipeline did not resolve the address.
    async fn customer(
        &self,
        conn: &mut Conn,
        facts: &Facts,
        people: &People,
        address: &str,
    ) -> Result<(Person, String), StoreError> {
        let found = match people.get(address) {
            Some(known) => known.clone(),
            None => directory::identify(conn, address, address::domain(address)).await?,
        };
        let org_language = found.organization.as_ref().and_then(|o| o.language.clone());
        let language = self.language(
            found.contact.as_ref(),
            org_language
                .as_deref()
                .or(facts.organization_language.as_deref()),
        );
        let name = found.contact.and_then(|c| c.name);
        Ok((
            Person {
                address: address.to_string(),
                name,
            },
            language,
        ))
    }

    /// Tells the sender of a held message why and what to do, for the codes that merit it.
    pub async fn message_held(
        &self,
        conn: &mut Conn,
        notice: &HeldNotice<'_>,
        code: HoldCode,
    ) -> Result<(), StoreError> {
        if !code.tells_sender() {
            return Ok(());
        }
        let held = HeldView {
            code: code.as_str().into(),
            subject: String::new(),
            problems: Vec::new(),
            allowed: String::new(),
        };
        self.notice_to_sender(conn, notice, Notice::MessageHeld, held)
            .await
    }

    /// Answers an agent whose commands did not all parse: each bad line
    /// (`problems`) and what is `allowed`; nothing of the mail was applied.
    pub async fn commands_rejected(
        &self,
        conn: &mut Conn,
        notice: &HeldNotice<'_>,
        problems: Vec<String>,
        allowed: &str,
    ) -> Result<(), StoreError> {
        let held = HeldView {
            code: HoldCode::CommandsRejected.as_str().into(),
            subject: String::new(),
            problems,
            allowed: allowed.into(),
        };
        self.notice_to_sender(conn, notice, Notice::CommandsRejected, held)
            .await
    }

    /// A notice about a held message to its sender.
    async fn notice_to_sender(
        &self,
        conn: &mut Conn,
        notice: &HeldNotice<'_>,
        event: Notice,
        mut held: HeldView,
    ) -> Result<(), StoreError> {
        let HeldNotice {
            held_id,
            trigger,
            people,
            queue,
        } = *notice;
        let Some(from) = &trigger.from else {
            return Ok(());
        };
        let (contact, org_language) = match people.get(&from.address) {
            Some(known) => (
                known.contact.clone(),
                known.organization.as_ref().and_then(|o| o.language.clone()),
            ),
            None => {
                let contact = directory::contact_by_email(conn, &from.address).await?;
                let language = match contact.as_ref().and_then(|c| c.organization_id) {
                    Some(id) => directory::organization_by_id(conn, id)
                        .await?
                        .and_then(|o| o.language),
                    None => None,
                };
                (contact, language)
            }
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
            about: About::Held(held_id),
            requester: person.clone(),
            requester_contact: contact,
            organization: None,
            organization_language: org_language,
            organization_id: None,
            assignee: None,
            queue: queue.clone(),
            // The sender's thread, so that an answer to this notice finds its ticket.
            thread: trigger
                .references
                .iter()
                .chain(trigger.message_id.iter())
                .cloned()
                .collect(),
            conversation: None,
        };
        held.subject = subject;
        let delivery = Delivery::new(event, person, language, true);
        let message = message_view(
            trigger,
            &trigger.visible_text,
            self.settings.notify.max_quoted_chars,
        );
        let content = Content {
            message: &message,
            status: None,
            held: Some(&held),
        };
        self.send(conn, &facts, delivery, Some(trigger), &content)
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
        let stored = tickets::get(conn, ticket_id)
            .await?
            .ok_or(PreviewError::NoTicket(ticket_id))?;
        let facts = self.facts(conn, &stored, &People::default()).await?;
        let ticket = facts
            .ticket()
            .cloned()
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
                    .unwrap_or(&ticket.subject),
                MAX_SUBJECT_CHARS,
            ),
            text: shorten(text, max_quoted),
            truncated: text.chars().nth(max_quoted).is_some(),
            attachments_omitted: Vec::new(),
        };
        let ctx = Context {
            recipient: facts.requester.clone(),
            requester: facts.requester.clone(),
            organization: facts.organization.clone(),
            message,
            status: StatusView {
                old: "open".into(),
                new: ticket.status.clone(),
            },
            held: HeldView {
                code: "locked".into(),
                subject: ticket.subject.clone(),
                problems: Vec::new(),
                allowed: String::new(),
            },
            support: self.support(&facts.queue),
            ticket: Some(ticket),
        };
        Ok(self.templates.render(event, &language, &ctx)?)
    }

    /// The contact's language, else the organization's, else the default.
    fn language(&self, contact: Option<&Contact>, organization: Option<&str>) -> String {
        let wanted = [contact.and_then(|c| c.language.as_deref()), organization];
        self.templates
            .pick_language(&wanted, &self.settings.notify.default_language)
            .to_string()
    }

    fn support(&self, queue: &Queue) -> SupportView {
        let configured = self.settings.queues.iter().find(|q| q.name == queue.name);
        SupportView {
            name: configured
                .and_then(|q| q.from_name.clone())
                .unwrap_or_else(|| "Support".into()),
            address: self.sender_address(queue).to_string(),
            comment_address: configured.and_then(|q| q.comment_addresses.first().cloned()),
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
    async fn send(
        &self,
        conn: &mut Conn,
        facts: &Facts,
        delivery: Delivery,
        trigger: Option<&InboundMail>,
        content: &Content<'_>,
    ) -> Result<(), StoreError> {
        let Content {
            message,
            status,
            held,
        } = *content;
        let to = delivery.recipient.address.as_str();
        if delivery.automatic
            && !self
                .automatic_allowed(conn, to, trigger, delivery.event)
                .await?
        {
            return Ok(());
        }
        let ctx = Context {
            ticket: facts.ticket().cloned(),
            recipient: delivery.recipient.clone(),
            requester: facts.requester.clone(),
            organization: facts.organization.clone(),
            message: message.clone(),
            status: status.cloned().unwrap_or(StatusView {
                old: String::new(),
                new: facts.ticket().map(|t| t.status.clone()).unwrap_or_default(),
            }),
            held: held.cloned().unwrap_or(HeldView {
                code: String::new(),
                subject: String::new(),
                problems: Vec::new(),
                allowed: String::new(),
            }),
            support: self.support(&facts.queue),
        };
        let rendered = match self.templates.render(
            delivery.event.as_str(),
            &delivery.language,
            &ctx,
        ) {
            Ok(r) => r,
            Err(e) => {
                error!(event = %delivery.event, recipient = to, error = %e, "notification not sent: its template failed");
                return Ok(());
            }
        };
        let from = self.sender_address(&facts.queue);
        // Answers come back to an address that names the ticket and this recipient.
        let keyed_reply = match (&delivery.reply_to, facts.ticket_id()) {
            (None, Some(ticket_id)) => Some(reply_token::address(
                from,
                ticket_id,
                &delivery.recipient.address,
                &self.reply_key,
            )),
            _ => None,
        };
        let message_id = new_message_id(delivery.event, facts, address::domain(from));
        let (in_reply_to, references) = threading(&facts.thread, trigger);
        let index = conversation_index(facts, trigger);
        let topic = facts
            .ticket()
            .map(|t| t.subject.clone())
            .unwrap_or_else(|| message.subject.clone());
        let bytes = compose::compose(
            &compose::Addressing {
                from_name: delivery.from_name.as_deref().unwrap_or(&ctx.support.name),
                from_address: from,
                to_name: delivery.recipient.name.as_deref(),
                to_address: to,
                message_id: &message_id,
                in_reply_to: in_reply_to.as_deref(),
                references: &references,
                automatic: delivery.automatic,
                attachments: &delivery.attachments,
                reply_to: delivery.reply_to.as_deref().or(keyed_reply.as_deref()),
                conversation: index.as_deref().map(|index| compose::Conversation {
                    topic: &topic,
                    index,
                }),
            },
            &rendered,
        );
        let bytes = match bytes {
            Ok(b) => b,
            Err(e) => {
                error!(event = %delivery.event, recipient = to, error = %e, "notification not sent");
                return Ok(());
            }
        };
        outbox::enqueue(
            conn,
            &NewOutbox {
                ticket_id: facts.ticket_id(),
                held_id: facts.held_id(),
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
        event: Notice,
    ) -> Result<bool, StoreError> {
        if let Some(mail) = trigger
            && mail.from.as_ref().is_some_and(|f| f.address == to)
            && (mail.signals.list_id.is_some() || mail.signals.precedence.is_some())
        {
            warn!(
                recipient = to,
                event = %event, "no automatic mail to mailing-list mail"
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
                event = %event,
                "no automatic mail: a delivery report proved mail to this address fails \
                 (`ticketd address clear {to}` lifts the flag)"
            );
            return Ok(false);
        }
        if event.for_agents() {
            return Ok(true);
        }
        let limit = i64::from(self.settings.notify.max_auto_per_sender_per_hour);
        let sent = history.sent_since;
        if sent >= limit {
            warn!(
                recipient = to,
                event = %event,
                limit,
                "automatic mail suppressed: notify.max_auto_per_sender_per_hour reached for this address"
            );
            return Ok(false);
        }
        Ok(true)
    }

    /// What every mail about `ticket` shares; the requester's contact is
    /// read only when `people` does not know it.
    async fn facts(
        &self,
        conn: &mut Conn,
        ticket: &Ticket,
        people: &People,
    ) -> Result<Facts, StoreError> {
        let contact = match people.get(&ticket.requester) {
            Some(known) => known.contact.clone(),
            None => directory::contact_by_email(conn, &ticket.requester).await?,
        };
        let queue = self
            .queues
            .iter()
            .find(|q| q.id == ticket.queue_id)
            .or_else(|| self.queues.first())
            .cloned()
            .ok_or_else(|| StoreError::NotFound("no queue is configured".into()))?;
        let thread = tickets::inbound_message_ids(conn, ticket.id).await?;
        Ok(Facts {
            about: About::Ticket(self.ticket_view(ticket)),
            requester: Person {
                address: ticket.requester.clone(),
                name: contact.as_ref().and_then(|c| c.name.clone()),
            },
            requester_contact: contact,
            organization: ticket
                .organization
                .as_ref()
                .map(|name| OrganizationView { name: name.clone() }),
            organization_language: ticket.organization_language.clone(),
            organization_id: ticket.organization_id,
            assignee: ticket.assignee.clone(),
            queue,
            thread,
            conversation: ticket
                .conversation_id
                .clone()
                .map(|id| (id, ticket.created_at)),
        })
    }

    fn ticket_view(&self, t: &Ticket) -> TicketView {
        TicketView {
            id: t.id,
            subject: shorten(&t.subject, MAX_SUBJECT_CHARS),
            status: t.status.as_str().into(),
            queue: t.queue.clone(),
            tag: self.tag.format(t.id),
            priority: t.priority.as_str().into(),
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
    about: About,
    requester: Person,
    requester_contact: Option<Contact>,
    organization: Option<OrganizationView>,
    organization_language: Option<String>,
    organization_id: Option<i64>,
    /// The assigned agent's address.
    assignee: Option<String>,
    queue: Queue,
    /// Message-IDs of the customer's messages, oldest first.
    thread: Vec<String>,
    /// Outlook's conversation GUID (hex) and when it began (Unix seconds).
    conversation: Option<(String, i64)>,
}

/// What one mail says beyond the facts: the message it is about, a status
/// change, why a message is held.
#[derive(Clone, Copy)]
struct Content<'a> {
    message: &'a MessageView,
    status: Option<&'a StatusView>,
    held: Option<&'a HeldView>,
}

/// What a notification is about: a ticket, or a held message (which has none).
enum About {
    Ticket(TicketView),
    Held(i64),
}

impl Facts {
    fn ticket(&self) -> Option<&TicketView> {
        match &self.about {
            About::Ticket(ticket) => Some(ticket),
            About::Held(_) => None,
        }
    }

    fn ticket_id(&self) -> Option<i64> {
        self.ticket().map(|t| t.id)
    }

    fn held_id(&self) -> Option<i64> {
        match self.about {
            About::Held(id) => Some(id),
            About::Ticket(_) => None,
        }
    }
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
fn message_view(mail: &InboundMail, text: &str, max_quoted: usize) -> MessageView {
    let truncated = text.chars().nth(max_quoted).is_some();
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
            shorten(text, max_quoted)
        } else {
            text.to_string()
        },
        truncated,
        attachments_omitted: Vec::new(),
    }
}

fn empty_message(subject: &str) -> MessageView {
    MessageView {
        author_address: String::new(),
        author_name: None,
        subject: subject.into(),
        text: String::new(),
        truncated: false,
        attachments_omitted: Vec::new(),
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

/// Outlook's `Thread-Index` of a notification: the customer's mail's index
/// extended by one reply, else the ticket's conversation from its start with
/// one reply; none when neither is known.
fn conversation_index(facts: &Facts, trigger: Option<&InboundMail>) -> Option<String> {
    let customers = trigger
        .and_then(|m| m.thread_index.as_deref())
        .and_then(ThreadIndex::parse);
    let parent = match (customers, &facts.conversation) {
        (Some(index), _) => index,
        (None, Some((id, began))) => {
            let guid: [u8; 16] = hex::decode(id).ok()?.try_into().ok()?;
            ThreadIndex::start(guid, *began)
        }
        (None, None) => return None,
    };
    Some(parent.reply(now(), rand::random::<u8>()).to_header())
}

fn new_message_id(event: Notice, facts: &Facts, domain: &str) -> String {
    let subject = match &facts.about {
        About::Ticket(t) => format!("t{}", t.id),
        About::Held(h) => format!("h{h}"),
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
