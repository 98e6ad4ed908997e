//! What templates see: the variables of every notification, and sample values to test-render with.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct TicketView {
    pub id: i64,
    pub subject: String,
    pub status: String,
    pub queue: String,
    /// `[Support #12]`
    pub tag: String,
    /// low, normal, high or urgent.
    pub priority: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Person {
    pub address: String,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MessageView {
    pub author_address: String,
    pub author_name: Option<String>,
    pub subject: String,
    /// The visible part of the message (quotes and signature removed), at
    /// most `notify.max_quoted_chars` of it.
    pub text: String,
    /// True when `text` is cut short: the rest is on the ticket.
    pub truncated: bool,
    /// Files of the message not sent along (over `notify.max_attachment_bytes_to_agents`).
    pub attachments_omitted: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OrganizationView {
    pub name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatusView {
    pub old: String,
    pub new: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct HeldView {
    /// locked, inactive, role_not_permitted, unknown_sender or rejected.
    pub code: String,
    pub subject: String,
    /// For `commands_rejected`: each command line that failed, and why.
    pub problems: Vec<String>,
    /// For `commands_rejected`: the commands there are.
    pub allowed: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SupportView {
    /// The queue's display name.
    pub name: String,
    /// The queue's address (replies go there).
    pub address: String,
    /// The queue's comment address, where agents' mail is an internal note.
    pub comment_address: Option<String>,
}

/// Everything a template may use; fields that do not apply to an event are
/// empty, and `ticket` is none for a notice about a held message (no ticket).
#[derive(Debug, Clone, Serialize)]
pub struct Context {
    pub ticket: Option<TicketView>,
    pub recipient: Person,
    pub requester: Person,
    pub organization: Option<OrganizationView>,
    pub message: MessageView,
    pub status: StatusView,
    pub held: HeldView,
    pub support: SupportView,
}

/// A full context for test renders.
pub fn sample(status: &str, held: &str) -> Context {
    let jane = Person {
        address: "jane@customer.example".into(),
        name: Some("Jane Doe".into()),
    };
    Context {
        ticket: Some(TicketView {
            id: 42,
            subject: "Printer on floor 3 shows E42".into(),
            status: status.into(),
            queue: "support".into(),
            tag: "[Support #42]".into(),
            priority: "normal".into(),
        }),
        recipient: jane.clone(),
        requester: jane,
        organization: Some(OrganizationView {
            name: "Customer Ltd".into(),
        }),
        message: MessageView {
            author_address: "jane@customer.example".into(),
            author_name: Some("Jane Doe".into()),
            subject: "Printer on floor 3 shows E42".into(),
            text: "The printer shows error E42 since this morning.\nCould you help?".into(),
            truncated: false,
            attachments_omitted: Vec::new(),
        },
        status: StatusView {
            old: "open".into(),
            new: status.into(),
        },
        held: HeldView {
            code: held.into(),
            subject: "Printer on floor 3 shows E42".into(),
            problems: vec!["`#status done`: unknown status `done`".into()],
            allowed: "#status open|pending|on-hold|solved|closed".into(),
        },
        support: SupportView {
            name: "Example Support".into(),
            address: "support@example.com".into(),
            comment_address: Some("support-notes@example.com".into()),
        },
    }
}
