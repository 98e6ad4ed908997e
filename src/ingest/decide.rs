//! Decide: what to do with one message, from facts loaded beforehand. Pure, so every rule is unit-tested.

use crate::config::{CcPolicy, ForwardedMail, Role, UnknownSenderPolicy};
use crate::mail::Classification;
use crate::mail::forward::Forwarded;
use crate::store::directory::{Agent, Contact, ContactState, Organization};
use crate::store::queues::Queue;
use crate::store::tickets::{Priority, Status};

use super::commands::{Command, Parsed};
use super::thread;

/// Who sent the message, as far as the directory knows.
#[derive(Debug, Clone)]
pub enum Sender {
    /// The message has no usable sender address.
    Missing,
    Agent(Agent),
    Contact {
        contact: Contact,
        organization: Option<Organization>,
    },
    /// No contact yet; `organization` is the one whose domain list holds the sender's domain.
    Unknown {
        address: String,
        name: Option<String>,
        organization: Option<Organization>,
    },
}

impl Sender {
    /// The sender's address; `None` when the message names none.
    pub fn address(&self) -> Option<&str> {
        match self {
            Sender::Missing => None,
            Sender::Agent(a) => Some(&a.email),
            Sender::Contact { contact, .. } => Some(&contact.email),
            Sender::Unknown { address, .. } => Some(address),
        }
    }

    /// The sender's organization (a contact's, or the one owning an unknown sender's domain).
    pub fn organization(&self) -> Option<&Organization> {
        match self {
            Sender::Contact { organization, .. } | Sender::Unknown { organization, .. } => {
                organization.as_ref()
            }
            _ => None,
        }
    }
}

/// An existing ticket the message points at (by header or tag), with what
/// decides whether this sender may add to it.
pub use super::thread::Candidate;

/// A To/Cc address of the message that is neither ours nor the sender.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub address: String,
    pub organization_id: Option<i64>,
    pub is_agent: bool,
}

pub struct Context<'a> {
    pub classification: Classification,
    pub size: usize,
    pub max_size: u64,
    pub sender: &'a Sender,
    pub queue: &'a Queue,
    pub candidates: &'a [Candidate],
    pub recipients: &'a [Recipient],
    pub unknown_sender: UnknownSenderPolicy,
    pub cc_policy: CcPolicy,
    /// At most this many copied addresses become participants (`tickets.max_participants_per_message`).
    pub max_participants: usize,
    /// An operator released this message: accept an unknown sender and a large message.
    pub operator_approved: bool,
    /// For a bounce: the mail of ours it reports on, when we know it.
    pub bounce_of: Option<&'a BouncedMail>,
    /// Why the message's MIME structure could not be read, if it could not.
    pub parse_failure: Option<&'a str>,
    /// For mail from an agent's address: whether it proves to be the agent's, and why.
    pub agent_check: Option<&'a AgentCheck>,
    /// An agent's commands and the text they leave (empty for anyone else).
    pub commands: &'a Parsed,
    /// The message was sent to a queue's comment address.
    pub to_comment_address: bool,
    /// The customer's mail an agent forwarded, when this is such a forward.
    pub forwarded: Option<&'a Forwarded>,
    /// The forwarded customer found in the directory (a contact, or unknown).
    pub forwarded_sender: Option<&'a Sender>,
    pub forwarded_mail: ForwardedMail,
    /// The priority the sender's client set (`X-Priority`, `Importance`).
    pub priority: Option<Priority>,
}

/// Whether a mail from an agent's address proves to be the agent's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentCheck {
    pub trusted: bool,
    /// The check's result in words (`dmarc=pass`, `our mail server found dmarc=fail…`).
    pub reason: String,
}

/// A notification of ours that a delivery report is about (see [`super::bounce`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BouncedMail {
    /// The ticket it was about; `None` for a notice about a held message.
    pub ticket_id: Option<i64>,
    /// Set when the report proved itself by reaching this notification's return path.
    pub outbox_id: Option<i64>,
    /// The addresses the report proves undeliverable: empty when it proves
    /// nothing, only reports a delay, or concerns an agent.
    pub failed_recipients: Vec<String>,
}

pub use crate::store::intake::HoldCode;

/// Who the message is recorded as coming from, and whether a contact must be created first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Author {
    Agent {
        id: i64,
        email: String,
    },
    Contact {
        id: i64,
        email: String,
    },
    NewContact {
        email: String,
        name: Option<String>,
        organization_id: Option<i64>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Hold {
        code: HoldCode,
        reason: String,
        /// Addresses to flag: a proven delivery report about a notice that has no ticket.
        bounced: Vec<String>,
        bounce_outbox_id: Option<i64>,
    },
    Create(Create),
    /// A verified agent forwarded a customer's mail: a ticket for the customer,
    /// with the agent's words above the forward as an internal note.
    CreateForwarded(CreateForwarded),
    Append(Append),
    /// Automatic mail on its ticket: kept there, changes nothing (but a
    /// bounce flags the addresses our mail could not reach).
    Record(Record),
}

/// A new ticket for the sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Create {
    pub author: Author,
    pub organization_id: Option<i64>,
    pub follows_up: Option<i64>,
    pub participants: Vec<String>,
    pub priority: Priority,
    /// An agent's commands, all of which parsed, for the new ticket.
    pub commands: Vec<Command>,
}

/// A new ticket for the customer whose mail an agent forwarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateForwarded {
    pub customer: Author,
    pub organization_id: Option<i64>,
    pub agent: Author,
    pub priority: Priority,
    pub commands: Vec<Command>,
}

/// A message added to an existing ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Append {
    pub ticket_id: i64,
    pub author: Author,
    /// The ticket's status before and after, when it changes.
    pub status_change: Option<(Status, Status)>,
    pub participants: Vec<String>,
    /// An agent's internal note: agents only.
    pub internal: bool,
    /// An agent's commands, all of which parsed.
    pub commands: Vec<Command>,
}

/// Automatic mail kept on its ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub ticket_id: i64,
    pub author: Option<Author>,
    pub bounced: Vec<String>,
    /// The notification a proven delivery report is about.
    pub bounce_outbox_id: Option<i64>,
}

/// A hold code's reason with what an agent's commands got wrong.
fn rejected_commands(parsed: &Parsed) -> String {
    let lines: Vec<String> = parsed
        .errors
        .iter()
        .map(|e| format!("`{}`: {}", e.line, e.reason))
        .collect();
    format!(
        "the commands did not all parse, so nothing was applied: {}",
        lines.join("; ")
    )
}

fn hold(code: HoldCode, reason: impl Into<String>) -> Decision {
    Decision::Hold {
        code,
        reason: reason.into(),
        bounced: Vec::new(),
        bounce_outbox_id: None,
    }
}

/// Decides, from facts loaded beforehand and without any I/O, what becomes of
/// a message. Promises: oversized, unreadable, automatic (auto-reply, bounce,
/// loop, spam) and unproven-agent mail is held, except a proven bounce of our
/// own notice; a message joins an existing ticket only when its sender may add
/// to it ([`thread::may_add`]), else it opens a ticket of its own; locked and
/// inactive contacts, refused roles and unknown senders (by policy) are held
/// with a reason; an agent's commands apply all or nothing.
pub fn decide(ctx: &Context<'_>) -> Decision {
    if ctx.size as u64 > ctx.max_size && !ctx.operator_approved {
        return hold(
            HoldCode::TooLarge,
            format!(
                "the message is {} bytes, more than limits.max_message_bytes ({}); its headers \
                 and beginning are kept, and releasing it files what was kept",
                ctx.size, ctx.max_size
            ),
        );
    }
    if let Some(failure) = ctx.parse_failure
        && !ctx.operator_approved
    {
        return hold(
            HoldCode::Unprocessable,
            format!("{failure}; release it to file it with its body as plain text"),
        );
    }
    if ctx.classification != Classification::Normal {
        if let (Classification::Bounce, Some(ours)) = (ctx.classification, ctx.bounce_of) {
            return match ours.ticket_id {
                Some(ticket_id) => Decision::Record(Record {
                    ticket_id,
                    author: None,
                    bounced: ours.failed_recipients.clone(),
                    bounce_outbox_id: ours.outbox_id,
                }),
                None => Decision::Hold {
                    code: HoldCode::Bounce,
                    reason: format!(
                        "{} about a notice of ours that belongs to no ticket",
                        ctx.classification.describe()
                    ),
                    bounced: ours.failed_recipients.clone(),
                    bounce_outbox_id: ours.outbox_id,
                },
            };
        }
        return match first_permitted(ctx) {
            Some(c) => Decision::Record(Record {
                ticket_id: c.ticket_id,
                author: known_author(ctx.sender),
                bounced: Vec::new(),
                bounce_outbox_id: None,
            }),
            None => hold(
                HoldCode::for_classification(ctx.classification),
                format!("{}; it opens no ticket", ctx.classification.describe()),
            ),
        };
    }
    let author = match ctx.sender {
        Sender::Missing => {
            return hold(
                HoldCode::NoSender,
                "the message has no sender address (From, Sender or Reply-To)",
            );
        }
        Sender::Agent(agent) => {
            return decide_for_agent(ctx, agent);
        }
        Sender::Contact { contact, .. } => match contact.state {
            ContactState::Locked => {
                return hold(
                    HoldCode::Locked,
                    format!(
                        "contact {} is locked; unlock it, then release this message",
                        contact.email
                    ),
                );
            }
            ContactState::Inactive => {
                return hold(
                    HoldCode::Inactive,
                    format!(
                        "contact {} is deactivated; activate it, then release this message",
                        contact.email
                    ),
                );
            }
            ContactState::Active => Author::Contact {
                id: contact.id,
                email: contact.email.clone(),
            },
        },
        Sender::Unknown {
            address,
            name,
            organization,
        } => {
            let policy = if ctx.operator_approved {
                UnknownSenderPolicy::Create
            } else {
                ctx.unknown_sender
            };
            match policy {
                UnknownSenderPolicy::Hold => {
                    return hold(
                        HoldCode::UnknownSender,
                        format!(
                            "{address} is not a known contact (tickets.unknown_sender = hold); add the contact or release this message"
                        ),
                    );
                }
                UnknownSenderPolicy::Reject => {
                    return hold(
                        HoldCode::Rejected,
                        format!(
                            "{address} is not a known contact (tickets.unknown_sender = reject)"
                        ),
                    );
                }
                UnknownSenderPolicy::Create => Author::NewContact {
                    email: address.clone(),
                    name: name.clone(),
                    organization_id: organization.as_ref().map(|o| o.id),
                },
            }
        }
    };

    let sender_org = ctx.sender.organization().map(|o| o.id);
    if let Some(candidate) = first_permitted(ctx) {
        if candidate.status != Status::Closed {
            let status_change = matches!(candidate.status, Status::Pending | Status::Solved)
                .then_some((candidate.status, Status::Open));
            return Decision::Append(Append {
                ticket_id: candidate.ticket_id,
                author,
                status_change,
                participants: participants(ctx, candidate.organization_id),
                internal: false,
                commands: Vec::new(),
            });
        }
        return create(ctx, author, sender_org, Some(candidate.ticket_id));
    }
    create(ctx, author, sender_org, None)
}

/// A new ticket, if the sender's roles allow one in this queue.
fn create(
    ctx: &Context<'_>,
    author: Author,
    organization_id: Option<i64>,
    follows_up: Option<i64>,
) -> Decision {
    let roles: &[Role] = match ctx.sender {
        Sender::Contact { contact, .. } => &contact.roles,
        _ => &[Role::Support],
    };
    if !roles.iter().any(|r| ctx.queue.allowed_roles.contains(r)) {
        let allowed = ctx
            .queue
            .allowed_roles
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        return hold(
            HoldCode::RoleNotPermitted,
            format!(
                "{} may not open tickets in queue {} (allowed roles: {allowed}); give the contact one of them, then release this message",
                ctx.sender.address().unwrap_or("the sender"),
                ctx.queue.name
            ),
        );
    }
    Decision::Create(Create {
        author,
        organization_id,
        follows_up,
        participants: participants(ctx, organization_id),
        priority: ctx.priority.unwrap_or(Priority::Normal),
        commands: Vec::new(),
    })
}

fn decide_for_agent(ctx: &Context<'_>, agent: &Agent) -> Decision {
    let check = ctx.agent_check.cloned().unwrap_or(AgentCheck {
        trusted: false,
        reason: "not checked".into(),
    });
    if !check.trusted && !ctx.operator_approved {
        return hold(
            HoldCode::AgentUnverified,
            format!(
                "from agent {}, but nothing proves the agent sent it ({}); release it if they did",
                agent.email, check.reason
            ),
        );
    }
    if !ctx.commands.errors.is_empty() {
        return hold(HoldCode::CommandsRejected, rejected_commands(ctx.commands));
    }
    let author = Author::Agent {
        id: agent.id,
        email: agent.email.clone(),
    };
    let internal = ctx.to_comment_address || ctx.commands.is_note();
    let commands_only = !ctx.commands.commands.is_empty() && ctx.commands.text.trim().is_empty();
    match ctx.candidates.first() {
        Some(c) => {
            let wanted = match (ctx.commands.status(), internal) {
                (Some(status), _) => Some(status),
                (None, true) => None,
                // Commands alone say nothing to the customer: nothing to wait for.
                (None, false) if commands_only => None,
                // An agent's public answer waits for the customer.
                (None, false) => {
                    matches!(c.status, Status::New | Status::Open).then_some(Status::Pending)
                }
            };
            Decision::Append(Append {
                ticket_id: c.ticket_id,
                author,
                status_change: wanted.filter(|s| *s != c.status).map(|s| (c.status, s)),
                participants: participants(ctx, c.organization_id),
                internal,
                commands: ctx.commands.commands.clone(),
            })
        }
        None => match (ctx.forwarded, ctx.forwarded_sender, ctx.forwarded_mail) {
            (Some(_), Some(customer), ForwardedMail::OriginalSender) => {
                let customer_author = match customer {
                    Sender::Contact { contact, .. } => Author::Contact {
                        id: contact.id,
                        email: contact.email.clone(),
                    },
                    Sender::Unknown {
                        address,
                        name,
                        organization,
                    } => Author::NewContact {
                        email: address.clone(),
                        name: name.clone(),
                        organization_id: organization.as_ref().map(|o| o.id),
                    },
                    // An agent forwarding an agent's mail: the agent's own ticket.
                    _ => return create_by_agent(ctx, author),
                };
                Decision::CreateForwarded(CreateForwarded {
                    customer: customer_author,
                    organization_id: customer.organization().map(|o| o.id),
                    agent: author,
                    priority: ctx.priority.unwrap_or(Priority::Normal),
                    commands: ctx.commands.commands.clone(),
                })
            }
            _ => create_by_agent(ctx, author),
        },
    }
}

fn create_by_agent(ctx: &Context<'_>, author: Author) -> Decision {
    Decision::Create(Create {
        author,
        organization_id: None,
        follows_up: None,
        participants: participants(ctx, None),
        priority: ctx.priority.unwrap_or(Priority::Normal),
        commands: ctx.commands.commands.clone(),
    })
}

/// The first ticket this sender may add to (see [`thread::may_add`]).
fn first_permitted<'c>(ctx: &'c Context<'_>) -> Option<&'c Candidate> {
    let is_agent = matches!(ctx.sender, Sender::Agent(_));
    let sender_org = ctx.sender.organization().map(|o| o.id);
    ctx.candidates
        .iter()
        .find(|c| thread::may_add(c, is_agent, sender_org))
}

fn known_author(sender: &Sender) -> Option<Author> {
    match sender {
        Sender::Agent(a) => Some(Author::Agent {
            id: a.id,
            email: a.email.clone(),
        }),
        Sender::Contact { contact, .. } => Some(Author::Contact {
            id: contact.id,
            email: contact.email.clone(),
        }),
        _ => None,
    }
}

/// Copied addresses that become participants, by `tickets.cc_participants`,
/// the first `max_participants` of them: one message cannot sign up a crowd.
fn participants(ctx: &Context<'_>, ticket_org: Option<i64>) -> Vec<String> {
    ctx.recipients
        .iter()
        .filter(|r| !r.is_agent)
        .filter(|r| match ctx.cc_policy {
            CcPolicy::None => false,
            CcPolicy::All => true,
            CcPolicy::Organization => ticket_org.is_some() && r.organization_id == ticket_org,
        })
        .take(ctx.max_participants)
        .map(|r| r.address.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue() -> Queue {
        Queue {
            id: 1,
            name: "support".into(),
            addresses: vec!["support@example.com".into()],
            allowed_roles: vec![Role::Admin, Role::Support],
        }
    }

    fn org(id: i64, shares: bool) -> Organization {
        Organization {
            id,
            name: format!("org{id}"),
            parent_id: None,
            shares_tickets: shares,
            language: None,
        }
    }

    fn contact(email: &str, org_id: Option<i64>, state: ContactState, roles: Vec<Role>) -> Sender {
        Sender::Contact {
            contact: Contact {
                id: 10,
                email: email.into(),
                name: None,
                organization_id: org_id,
                roles,
                state,
                language: None,
            },
            organization: org_id.map(|id| org(id, false)),
        }
    }

    fn active(email: &str) -> Sender {
        contact(email, Some(1), ContactState::Active, vec![Role::Support])
    }

    fn candidate(id: i64, status: Status, participant: bool) -> Candidate {
        Candidate {
            ticket_id: id,
            status,
            organization_id: Some(1),
            organization_shares_tickets: false,
            sender_is_participant: participant,
            sender_is_parent_admin: false,
            merged_into: None,
        }
    }

    struct Case {
        classification: Classification,
        sender: Sender,
        candidates: Vec<Candidate>,
        recipients: Vec<Recipient>,
        policy: UnknownSenderPolicy,
        cc: CcPolicy,
        approved: bool,
        size: usize,
        bounce_of: Option<BouncedMail>,
        parse_failure: Option<String>,
        agent_check: Option<AgentCheck>,
        commands: Parsed,
        to_comment_address: bool,
        forwarded: Option<Forwarded>,
        forwarded_sender: Option<Sender>,
        forwarded_mail: ForwardedMail,
        priority: Option<Priority>,
    }

    impl Case {
        fn new(sender: Sender) -> Case {
            Case {
                classification: Classification::Normal,
                sender,
                candidates: vec![],
                recipients: vec![],
                policy: UnknownSenderPolicy::Create,
                cc: CcPolicy::Organization,
                approved: false,
                size: 100,
                bounce_of: None,
                parse_failure: None,
                agent_check: Some(AgentCheck {
                    trusted: true,
                    reason: "dmarc=pass".into(),
                }),
                commands: Parsed::default(),
                to_comment_address: false,
                forwarded: None,
                forwarded_sender: None,
                forwarded_mail: ForwardedMail::OriginalSender,
                priority: None,
            }
        }

        fn decide(&self) -> Decision {
            let q = queue();
            decide(&Context {
                classification: self.classification,
                size: self.size,
                max_size: 1000,
                sender: &self.sender,
                queue: &q,
                candidates: &self.candidates,
                recipients: &self.recipients,
                unknown_sender: self.policy,
                cc_policy: self.cc,
                max_participants: 20,
                operator_approved: self.approved,
                bounce_of: self.bounce_of.as_ref(),
                parse_failure: self.parse_failure.as_deref(),
                agent_check: self.agent_check.as_ref(),
                commands: &self.commands,
                to_comment_address: self.to_comment_address,
                forwarded: self.forwarded.as_ref(),
                forwarded_sender: self.forwarded_sender.as_ref(),
                forwarded_mail: self.forwarded_mail,
                priority: self.priority,
            })
        }
    }

    fn hold_code(d: &Decision) -> Option<HoldCode> {
        match d {
            Decision::Hold { code, .. } => Some(*code),
            _ => None,
        }
    }

    #[test]
    fn known_contact_without_thread_creates_a_ticket() {
        let d = Case::new(active("jane@customer.example")).decide();
        assert!(
            matches!(
                d,
                Decision::Create(Create {
                    follows_up: None,
                    organization_id: Some(1),
                    ..
                })
            ),
            "{d:?}"
        );
    }

    #[test]
    fn participant_reply_appends_and_reopens_pending_or_solved() {
        for (status, expected) in [
            (Status::Pending, Some(Status::Open)),
            (Status::Solved, Some(Status::Open)),
            (Status::New, None),
            (Status::Open, None),
        ] {
            let mut case = Case::new(active("jane@customer.example"));
            case.candidates = vec![candidate(7, status, true)];
            match case.decide() {
                Decision::Append(Append {
                    ticket_id: 7,
                    status_change,
                    ..
                }) => assert_eq!(status_change.map(|(_, to)| to), expected),
                other => panic!("{status:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn stranger_with_copied_tag_gets_a_new_ticket() {
        let mut case = Case::new(contact(
            "eve@other.example",
            Some(2),
            ContactState::Active,
            vec![Role::Support],
        ));
        case.candidates = vec![candidate(7, Status::Open, false)];
        assert!(matches!(
            case.decide(),
            Decision::Create(Create {
                follows_up: None,
                ..
            })
        ));
    }

    #[test]
    fn colleague_may_follow_up_only_when_the_organization_shares_tickets() {
        let mut case = Case::new(active("bob@customer.example"));
        case.candidates = vec![candidate(7, Status::Open, false)];
        assert!(matches!(case.decide(), Decision::Create(Create { .. })));
        case.candidates[0].organization_shares_tickets = true;
        assert!(matches!(
            case.decide(),
            Decision::Append(Append { ticket_id: 7, .. })
        ));
    }

    #[test]
    fn reply_to_closed_ticket_opens_a_linked_ticket() {
        let mut case = Case::new(active("jane@customer.example"));
        case.candidates = vec![candidate(7, Status::Closed, true)];
        assert!(matches!(
            case.decide(),
            Decision::Create(Create {
                follows_up: Some(7),
                ..
            })
        ));
    }

    #[test]
    fn locked_inactive_and_unpermitted_contacts_are_held() {
        let d = Case::new(contact(
            "a@x.example",
            None,
            ContactState::Locked,
            vec![Role::Support],
        ))
        .decide();
        assert_eq!(hold_code(&d), Some(HoldCode::Locked));
        let d = Case::new(contact(
            "a@x.example",
            None,
            ContactState::Inactive,
            vec![Role::Support],
        ))
        .decide();
        assert_eq!(hold_code(&d), Some(HoldCode::Inactive));
        let d = Case::new(contact(
            "a@x.example",
            None,
            ContactState::Active,
            vec![Role::Billing],
        ))
        .decide();
        assert_eq!(hold_code(&d), Some(HoldCode::RoleNotPermitted));
    }

    #[test]
    fn locked_contact_is_held_even_on_its_own_ticket() {
        let mut case = Case::new(contact(
            "a@x.example",
            Some(1),
            ContactState::Locked,
            vec![Role::Support],
        ));
        case.candidates = vec![candidate(7, Status::Open, true)];
        assert_eq!(hold_code(&case.decide()), Some(HoldCode::Locked));
    }

    #[test]
    fn unknown_sender_follows_the_policy_unless_released() {
        let unknown = Sender::Unknown {
            address: "new@customer.example".into(),
            name: Some("New".into()),
            organization: Some(org(1, false)),
        };
        let mut case = Case::new(unknown);
        match case.decide() {
            Decision::Create(Create {
                author:
                    Author::NewContact {
                        organization_id, ..
                    },
                ..
            }) => {
                assert_eq!(organization_id, Some(1))
            }
            other => panic!("{other:?}"),
        }
        case.policy = UnknownSenderPolicy::Hold;
        assert_eq!(hold_code(&case.decide()), Some(HoldCode::UnknownSender));
        case.policy = UnknownSenderPolicy::Reject;
        assert_eq!(hold_code(&case.decide()), Some(HoldCode::Rejected));
        case.approved = true;
        assert!(matches!(case.decide(), Decision::Create(Create { .. })));
    }

    #[test]
    fn automatic_mail_never_opens_or_reopens() {
        for class in [
            Classification::AutoReply,
            Classification::Bounce,
            Classification::Loop,
            Classification::Spam,
        ] {
            let mut case = Case::new(active("jane@customer.example"));
            case.classification = class;
            assert!(matches!(case.decide(), Decision::Hold { .. }), "{class:?}");
            case.candidates = vec![candidate(7, Status::Solved, true)];
            assert!(
                matches!(case.decide(), Decision::Record(Record { ticket_id: 7, .. })),
                "{class:?}"
            );
        }
    }

    #[test]
    fn bounce_of_our_mail_is_recorded_on_its_ticket_and_flags_the_address() {
        let daemon = Sender::Unknown {
            address: "mailer-daemon@mx.customer.example".into(),
            name: None,
            organization: None,
        };
        let mut case = Case::new(daemon);
        case.classification = Classification::Bounce;
        assert!(matches!(
            case.decide(),
            Decision::Hold {
                code: HoldCode::Bounce,
                ..
            }
        ));
        case.bounce_of = Some(BouncedMail {
            ticket_id: Some(7),
            outbox_id: Some(42),
            failed_recipients: vec!["gone@customer.example".into()],
        });
        assert_eq!(
            case.decide(),
            Decision::Record(Record {
                ticket_id: 7,
                author: None,
                bounced: vec!["gone@customer.example".into()],
                bounce_outbox_id: Some(42),
            })
        );
        // A proven report about a held-message notice flags, and the report is held.
        case.bounce_of = Some(BouncedMail {
            ticket_id: None,
            outbox_id: Some(43),
            failed_recipients: vec!["victim@other.example".into()],
        });
        assert!(matches!(
            case.decide(),
            Decision::Hold { code: HoldCode::Bounce, ref bounced, bounce_outbox_id: Some(43), .. }
                if bounced == &["victim@other.example".to_string()]
        ));
    }

    #[test]
    fn mail_whose_structure_could_not_be_read_is_held_until_released() {
        let mut case = Case::new(active("jane@customer.example"));
        case.parse_failure = Some("the MIME structure could not be read (test)".into());
        assert_eq!(hold_code(&case.decide()), Some(HoldCode::Unprocessable));
        case.approved = true;
        assert!(matches!(case.decide(), Decision::Create(Create { .. })));
    }

    #[test]
    fn oversized_and_senderless_mail_is_held() {
        let mut case = Case::new(active("jane@customer.example"));
        case.size = 5000;
        assert_eq!(hold_code(&case.decide()), Some(HoldCode::TooLarge));
        case.approved = true;
        assert!(matches!(case.decide(), Decision::Create(Create { .. })));
        assert_eq!(
            hold_code(&Case::new(Sender::Missing).decide()),
            Some(HoldCode::NoSender)
        );
    }

    fn agent() -> Sender {
        Sender::Agent(Agent {
            id: 3,
            email: "agent@example.com".into(),
            name: None,
            active: true,
            is_admin: false,
        })
    }

    #[test]
    fn an_unproven_agent_mail_is_held_and_a_release_applies_it() {
        let mut case = Case::new(agent());
        case.candidates = vec![candidate(7, Status::Open, false)];
        case.agent_check = Some(AgentCheck {
            trusted: false,
            reason: "our mail server found dmarc=fail".into(),
        });
        match case.decide() {
            Decision::Hold { code, reason, .. } => {
                assert_eq!(code, HoldCode::AgentUnverified);
                assert!(reason.contains("dmarc=fail"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        case.agent_check = None;
        assert_eq!(hold_code(&case.decide()), Some(HoldCode::AgentUnverified));
        case.approved = true;
        assert!(matches!(
            case.decide(),
            Decision::Append(Append {
                ticket_id: 7,
                internal: false,
                ..
            })
        ));
    }

    #[test]
    fn an_agents_commands_decide_status_and_notes_and_a_bad_one_applies_nothing() {
        let mut case = Case::new(agent());
        case.candidates = vec![candidate(7, Status::Open, false)];
        case.commands = super::super::commands::parse("#status solved\n#priority high\nDone.");
        match case.decide() {
            Decision::Append(Append {
                status_change,
                internal,
                commands,
                ..
            }) => {
                assert_eq!(status_change, Some((Status::Open, Status::Solved)));
                assert!(!internal);
                assert_eq!(commands.len(), 2);
            }
            other => panic!("{other:?}"),
        }
        case.commands = super::super::commands::parse("#note\nCall them back.");
        assert!(matches!(
            case.decide(),
            Decision::Append(Append {
                internal: true,
                status_change: None,
                ..
            })
        ));
        case.commands = super::super::commands::parse("Thanks.");
        case.to_comment_address = true;
        assert!(matches!(
            case.decide(),
            Decision::Append(Append { internal: true, .. })
        ));
        case.commands = super::super::commands::parse("#status done\n#priority high\nDone.");
        match case.decide() {
            Decision::Hold { code, reason, .. } => {
                assert_eq!(code, HoldCode::CommandsRejected);
                assert!(reason.contains("#status done"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_forward_opens_the_ticket_for_the_original_sender() {
        let mut case = Case::new(agent());
        case.forwarded = Some(Forwarded {
            sender: crate::mail::Mailbox {
                address: "jane@customer.example".into(),
                name: None,
            },
            subject: Some("Printer".into()),
            text: "It is broken.".into(),
            note: "Jane called about this.".into(),
            attachments: vec![],
        });
        case.forwarded_sender = Some(active("jane@customer.example"));
        match case.decide() {
            Decision::CreateForwarded(CreateForwarded {
                customer,
                organization_id,
                agent,
                ..
            }) => {
                assert_eq!(
                    customer,
                    Author::Contact {
                        id: 10,
                        email: "jane@customer.example".into()
                    }
                );
                assert_eq!(organization_id, Some(1));
                assert!(matches!(agent, Author::Agent { id: 3, .. }));
            }
            other => panic!("{other:?}"),
        }
        case.forwarded_mail = ForwardedMail::Agent;
        assert!(matches!(
            case.decide(),
            Decision::Create(Create {
                author: Author::Agent { .. },
                ..
            })
        ));
    }

    #[test]
    fn a_customers_client_priority_is_kept() {
        let mut case = Case::new(active("jane@customer.example"));
        case.priority = Some(Priority::High);
        assert!(matches!(
            case.decide(),
            Decision::Create(Create {
                priority: Priority::High,
                ..
            })
        ));
        // A customer's `#status` line is text, never a command.
        case.commands = Parsed::default();
        assert!(
            matches!(case.decide(), Decision::Create(Create { commands, .. }) if commands.is_empty())
        );
    }

    #[test]
    fn agents_append_to_any_ticket_and_set_it_pending() {
        let mut case = Case::new(agent());
        case.candidates = vec![candidate(7, Status::Open, false)];
        assert!(matches!(
            case.decide(),
            Decision::Append(Append {
                ticket_id: 7,
                status_change: Some((Status::Open, Status::Pending)),
                ..
            })
        ));
    }

    #[test]
    fn copied_colleagues_become_participants_by_policy() {
        let mut case = Case::new(active("jane@customer.example"));
        case.recipients = vec![
            Recipient {
                address: "bob@customer.example".into(),
                organization_id: Some(1),
                is_agent: false,
            },
            Recipient {
                address: "eve@other.example".into(),
                organization_id: Some(2),
                is_agent: false,
            },
            Recipient {
                address: "agent@example.com".into(),
                organization_id: None,
                is_agent: true,
            },
        ];
        let parts = |d: Decision| match d {
            Decision::Create(Create { participants, .. }) => participants,
            other => panic!("{other:?}"),
        };
        assert_eq!(parts(case.decide()), vec!["bob@customer.example"]);
        case.cc = CcPolicy::All;
        assert_eq!(
            parts(case.decide()),
            vec!["bob@customer.example", "eve@other.example"]
        );
        case.cc = CcPolicy::None;
        assert!(parts(case.decide()).is_empty());
    }

    #[test]
    fn a_crowd_of_copied_colleagues_gives_at_most_twenty_participants() {
        let mut case = Case::new(active("jane@customer.example"));
        case.recipients = (0..500)
            .map(|n| Recipient {
                address: format!("colleague{n}@customer.example"),
                organization_id: Some(1),
                is_agent: false,
            })
            .collect();
        match case.decide() {
            Decision::Create(Create { participants, .. }) => {
                assert_eq!(participants.len(), 20);
                assert_eq!(participants[0], "colleague0@customer.example");
            }
            other => panic!("{other:?}"),
        }
    }
}
