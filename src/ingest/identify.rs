//! Identify: the sender and the copied addresses, looked up in the directory
//! once; what was found is kept in [`People`] for the notifications.

use super::decide::{Recipient, Sender};
use crate::mail::{InboundMail, Mailbox, address};
use crate::notify::People;
use crate::store::{Conn, StoreError, directory};

/// The sender as an agent, a contact (with its organization) or an unknown
/// address (with the organization its domain belongs to).
pub async fn sender(
    conn: &mut Conn,
    mail: &InboundMail,
    people: &mut People,
) -> Result<Sender, StoreError> {
    let Some(from) = &mail.from else {
        return Ok(Sender::Missing);
    };
    by_address(conn, from, people).await
}

/// The owner of `mailbox` as an agent, a contact or an unknown address.
pub async fn by_address(
    conn: &mut Conn,
    mailbox: &Mailbox,
    people: &mut People,
) -> Result<Sender, StoreError> {
    let address = mailbox.address.as_str();
    let found = directory::identify(conn, address, address::domain(address)).await?;
    people.insert(address, found.clone());
    Ok(match found {
        directory::Identity {
            agent: Some(agent), ..
        } if agent.active => Sender::Agent(agent),
        directory::Identity {
            contact: Some(contact),
            organization,
            ..
        } => Sender::Contact {
            contact,
            organization,
        },
        directory::Identity { organization, .. } => Sender::Unknown {
            address: address.to_string(),
            name: mailbox.name.clone(),
            organization,
        },
    })
}

/// To and Cc addresses that are neither ours nor the sender's, with their organization.
pub async fn recipients(
    conn: &mut Conn,
    mail: &InboundMail,
    own_addresses: &[String],
    people: &mut People,
) -> Result<Vec<Recipient>, StoreError> {
    let sender = mail.from.as_ref().map(|f| f.address.as_str());
    let mut out: Vec<Recipient> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for mailbox in mail.to.iter().chain(mail.cc.iter()) {
        let addr = mailbox.address.as_str();
        if Some(addr) == sender || own_addresses.iter().any(|a| a == addr) || !seen.insert(addr) {
            continue;
        }
        let found = directory::identify(conn, addr, address::domain(addr)).await?;
        out.push(Recipient {
            address: addr.to_string(),
            organization_id: found.organization.as_ref().map(|o| o.id),
            is_agent: found.agent.is_some(),
        });
        people.insert(addr, found);
    }
    Ok(out)
}
