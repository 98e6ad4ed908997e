//! Who is told of what: one pure function from an event and a ticket's facts
//! to the addresses that get a mail, so that every rule about leaks and loops
//! is in one place and unit-tested.

/// What happened to a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A customer opened the ticket: acknowledged to the customer side, agents told.
    Created,
    /// An agent opened the ticket (or a message was recorded on its behalf): agents told.
    CreatedByAgent,
    /// A customer added a message: agents told.
    CustomerReply,
    /// An agent answered in public: the customer side gets the agent's words.
    AgentReply,
    /// An agent wrote an internal note: the other agents only.
    InternalNote,
    /// The status changed to one customers hear of (pending, solved, closed).
    StatusChanged,
    /// A ticket awaits the customer's reply for a while.
    Reminder,
}

/// Which side of the ticket an address is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Customer,
    Agent,
}

/// One address that gets a mail about the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addressee {
    pub address: String,
    pub side: Side,
    /// Written by no person (an acknowledgement, a notice): subject to the loop rules.
    pub automatic: bool,
}

/// A participant of the ticket (requester or copied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    pub address: String,
    /// A registered contact, not merely an address someone copied.
    pub known_contact: bool,
}

/// What the decision needs to know; loaded beforehand.
#[derive(Debug, Clone, Default)]
pub struct Facts<'a> {
    pub requester: &'a str,
    /// Participants other than the requester.
    pub participants: &'a [Participant],
    /// The ticket's own organization's notification addresses.
    pub organization_notify: &'a [String],
    /// The active agents of the ticket's queue.
    pub queue_agents: &'a [String],
    /// The ticket's assignee, when it has one.
    pub assignee: Option<&'a str>,
    /// Who caused the event: not mailed their own words.
    pub author: Option<&'a str>,
    /// Addresses that are ticketd's own (queues and `mail.own_addresses`).
    pub own_addresses: &'a [String],
    /// Every agent's address: never on the customer side.
    pub all_agents: &'a [String],
    /// Addresses that get no automatic mail (a proven delivery failure, muted).
    pub no_automatic: &'a [String],
    /// Automatic customer mail caused by one inbound message, at most.
    pub max_automatic: usize,
}

/// Who gets a mail about `event`, in order, each once:
/// * the customer side is the requester, the organization's own notification
///   addresses and the participants — an acknowledgement only to participants
///   who are known contacts — never an agent, never one of ours;
/// * agents are the assignee when there is one, else the queue's agents;
/// * an internal note reaches agents only, whatever else is true;
/// * the author of a message is not mailed their own words (an acknowledgement
///   of a customer's new ticket is not their words: it goes to them);
/// * automatic mail skips addresses in `no_automatic`, and automatic customer
///   mail stops at `max_automatic` addresses.
pub fn recipients(event: Event, facts: &Facts<'_>) -> Vec<Addressee> {
    let customers = match event {
        Event::Created => customer_side(facts, true, true, None),
        Event::AgentReply => customer_side(facts, false, false, facts.author),
        Event::StatusChanged | Event::Reminder => customer_side(facts, false, true, None),
        Event::CreatedByAgent | Event::CustomerReply | Event::InternalNote => Vec::new(),
    };
    let agents = match event {
        Event::Created | Event::CreatedByAgent | Event::CustomerReply | Event::InternalNote => {
            agent_side(facts)
        }
        Event::AgentReply | Event::StatusChanged | Event::Reminder => Vec::new(),
    };
    let mut out: Vec<Addressee> = Vec::new();
    for addressee in customers.into_iter().chain(agents) {
        if !out.iter().any(|a| a.address == addressee.address) {
            out.push(addressee);
        }
    }
    out
}

fn customer_side(
    facts: &Facts<'_>,
    known_only: bool,
    automatic: bool,
    author: Option<&str>,
) -> Vec<Addressee> {
    let participants = facts
        .participants
        .iter()
        .filter(|p| p.known_contact || !known_only)
        .map(|p| p.address.as_str());
    let candidates = std::iter::once(facts.requester)
        .chain(facts.organization_notify.iter().map(String::as_str))
        .chain(participants);
    let mut out: Vec<Addressee> = Vec::new();
    for address in candidates {
        if automatic && out.len() >= facts.max_automatic {
            break;
        }
        let excluded = address.is_empty()
            || Some(address) == author
            || facts.own_addresses.iter().any(|a| a == address)
            || facts.all_agents.iter().any(|a| a == address)
            || (automatic && facts.no_automatic.iter().any(|a| a == address))
            || out.iter().any(|a| a.address == address);
        if !excluded {
            out.push(Addressee {
                address: address.to_string(),
                side: Side::Customer,
                automatic,
            });
        }
    }
    out
}

fn agent_side(facts: &Facts<'_>) -> Vec<Addressee> {
    let agents: Vec<&str> = match facts.assignee {
        Some(assignee) => vec![assignee],
        None => facts.queue_agents.iter().map(String::as_str).collect(),
    };
    agents
        .into_iter()
        .filter(|a| Some(*a) != facts.author && !facts.own_addresses.iter().any(|o| o == a))
        .filter(|a| !facts.no_automatic.iter().any(|n| n == a))
        .map(|address| Addressee {
            address: address.to_string(),
            side: Side::Agent,
            automatic: true,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Ticket {
        participants: Vec<Participant>,
        organization_notify: Vec<String>,
        queue_agents: Vec<String>,
        all_agents: Vec<String>,
        own: Vec<String>,
        no_automatic: Vec<String>,
    }

    fn ticket() -> Ticket {
        Ticket {
            participants: vec![
                Participant {
                    address: "carol@acme.test".into(),
                    known_contact: true,
                },
                Participant {
                    address: "dave@acme.test".into(),
                    known_contact: false,
                },
            ],
            organization_notify: vec!["helpdesk@acme.test".into()],
            queue_agents: vec!["alex@example.com".into(), "bea@example.com".into()],
            all_agents: vec![
                "alex@example.com".into(),
                "bea@example.com".into(),
                "chris@example.com".into(),
            ],
            own: vec!["support@example.com".into()],
            no_automatic: vec![],
        }
    }

    fn facts<'a>(t: &'a Ticket, author: Option<&'a str>) -> Facts<'a> {
        Facts {
            requester: "jane@acme.test",
            participants: &t.participants,
            organization_notify: &t.organization_notify,
            queue_agents: &t.queue_agents,
            assignee: None,
            author,
            own_addresses: &t.own,
            all_agents: &t.all_agents,
            no_automatic: &t.no_automatic,
            max_automatic: 10,
        }
    }

    fn addresses(list: &[Addressee]) -> Vec<&str> {
        list.iter().map(|a| a.address.as_str()).collect()
    }

    #[test]
    fn a_new_ticket_is_acknowledged_to_known_people_and_told_to_the_queues_agents() {
        let t = ticket();
        let got = recipients(Event::Created, &facts(&t, Some("jane@acme.test")));
        assert_eq!(
            addresses(&got),
            [
                "jane@acme.test",
                "helpdesk@acme.test",
                "carol@acme.test",
                "alex@example.com",
                "bea@example.com"
            ],
            "Dave is nobody's contact"
        );
        assert!(got.iter().all(|a| a.automatic));
    }

    #[test]
    fn an_internal_note_reaches_agents_only_and_not_its_author() {
        let t = ticket();
        let got = recipients(Event::InternalNote, &facts(&t, Some("alex@example.com")));
        assert_eq!(addresses(&got), ["bea@example.com"]);
        assert!(got.iter().all(|a| a.side == Side::Agent));
    }

    #[test]
    fn an_agents_answer_reaches_every_participant_as_a_persons_mail() {
        let t = ticket();
        let got = recipients(Event::AgentReply, &facts(&t, Some("alex@example.com")));
        assert_eq!(
            addresses(&got),
            [
                "jane@acme.test",
                "helpdesk@acme.test",
                "carol@acme.test",
                "dave@acme.test"
            ]
        );
        assert!(got.iter().all(|a| !a.automatic && a.side == Side::Customer));
    }

    #[test]
    fn an_assigned_ticket_tells_only_its_assignee() {
        let t = ticket();
        let mut f = facts(&t, Some("jane@acme.test"));
        f.assignee = Some("bea@example.com");
        let got = recipients(Event::CustomerReply, &f);
        assert_eq!(addresses(&got), ["bea@example.com"]);
    }

    #[test]
    fn agents_and_our_own_addresses_are_never_on_the_customer_side() {
        let mut t = ticket();
        t.participants.push(Participant {
            address: "chris@example.com".into(),
            known_contact: true,
        });
        t.participants.push(Participant {
            address: "support@example.com".into(),
            known_contact: true,
        });
        let got = recipients(Event::StatusChanged, &facts(&t, None));
        assert_eq!(
            addresses(&got),
            [
                "jane@acme.test",
                "helpdesk@acme.test",
                "carol@acme.test",
                "dave@acme.test"
            ]
        );
    }

    #[test]
    fn flagged_addresses_get_no_automatic_mail_but_an_agents_words() {
        let mut t = ticket();
        t.no_automatic = vec!["jane@acme.test".into()];
        let automatic = recipients(Event::StatusChanged, &facts(&t, None));
        assert!(!addresses(&automatic).contains(&"jane@acme.test"));
        let written = recipients(Event::AgentReply, &facts(&t, Some("alex@example.com")));
        assert!(addresses(&written).contains(&"jane@acme.test"));
    }

    #[test]
    fn no_other_organization_and_no_more_than_the_automatic_limit() {
        let mut t = ticket();
        t.participants = (0..30)
            .map(|n| Participant {
                address: format!("c{n}@acme.test"),
                known_contact: true,
            })
            .collect();
        let mut f = facts(&t, Some("jane@acme.test"));
        f.max_automatic = 10;
        let got = recipients(Event::Created, &f);
        let customers = got.iter().filter(|a| a.side == Side::Customer).count();
        assert_eq!(customers, 10);
        // Only the ticket's own organization's list is ever a recipient.
        assert!(
            got.iter().all(|a| !a.address.ends_with("@other.test")),
            "{got:?}"
        );
    }

    #[test]
    fn a_customers_reply_goes_to_agents_and_never_back_to_them() {
        let t = ticket();
        let got = recipients(Event::CustomerReply, &facts(&t, Some("jane@acme.test")));
        assert!(got.iter().all(|a| a.side == Side::Agent));
        assert!(!addresses(&got).contains(&"jane@acme.test"));
    }
}
