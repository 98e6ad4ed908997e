//! Thread: which existing ticket a message may belong to — by headers, by a
//! keyed reply address, by subject tag — and whether its sender may add to it.

use crate::mail::InboundMail;
use crate::mail::reply_token::Token;
use crate::mail::tag::SubjectTag;
use crate::mail::thread_index::ThreadIndex;
use crate::store::{Conn, StoreError, directory, tickets};

pub use crate::store::tickets::Candidate;

/// How many Message-IDs of a long References chain are looked up (the most recent ones).
pub const MAX_REFERENCES: usize = 30;

/// Message-IDs that may name an earlier message of the thread: In-Reply-To
/// first, then References from the most recent back, without repeats.
pub fn referenced_ids(mail: &InboundMail) -> Vec<&str> {
    let mut ids: Vec<&str> = Vec::new();
    let refs = mail.references.iter().rev().take(MAX_REFERENCES);
    for id in mail.in_reply_to.iter().chain(refs) {
        if !ids.contains(&id.as_str()) {
            ids.push(id);
        }
    }
    ids
}

/// What marks a message as part of a ticket's thread besides its headers.
pub struct Marks<'a> {
    pub tag: &'a SubjectTag,
    /// The key of keyed reply addresses.
    pub reply_key: &'a [u8],
    /// Other helpdesks' ticket numbers in the subject (see [`crate::mail::foreign`]).
    pub foreign: &'a [String],
}

/// Who asks to join a thread.
#[derive(Debug, Clone, Copy)]
pub struct Asker<'a> {
    /// The sender's address, or "".
    pub address: &'a str,
    /// The sender's organization.
    pub organization_id: Option<i64>,
    /// The sender's organization when the sender is its admin contact (who
    /// counts as a member of its child organizations for sharing).
    pub admin_of: Option<i64>,
}

/// Tickets the message points at, as seen by `sender`: by
/// In-Reply-To/References, then by a keyed reply address made for the sender
/// (or for a colleague, when their organization shares tickets), then by
/// subject tag; when none of these names a ticket, by Outlook's conversation
/// (`Thread-Index`) and by another helpdesk's number in the subject. A merged
/// ticket is replaced by the one it was merged into; no ticket twice.
pub async fn candidates(
    conn: &mut Conn,
    mail: &InboundMail,
    marks: &Marks<'_>,
    sender: Asker<'_>,
) -> Result<Vec<Candidate>, StoreError> {
    let address = sender.address;
    let mut found_tickets: Vec<Candidate> = Vec::new();
    for id in referenced_ids(mail) {
        if let Some(found) = tickets::thread_by_message_id(conn, id, address).await? {
            found_tickets.push(found);
        }
    }
    for token in reply_tokens(mail) {
        if let Some(mut found) =
            tickets::thread_by_ticket_id(conn, token.ticket_id, address).await?
        {
            found.sender_is_parent_admin = parent_admin(conn, &found, sender).await?;
            if !token_counts(conn, &token, &found, sender, marks.reply_key).await? {
                continue;
            }
            found_tickets.push(found);
        }
    }
    if let Some(tagged) = mail.subject.as_deref().and_then(|s| marks.tag.ticket_id(s))
        && let Some(found) = tickets::thread_by_ticket_id(conn, tagged, address).await?
    {
        found_tickets.push(found);
    }
    if found_tickets.is_empty() {
        let conversation = mail.thread_index.as_deref().and_then(ThreadIndex::parse);
        if let Some(index) = conversation
            && let Some(found) =
                tickets::thread_by_conversation(conn, &index.conversation_id(), address).await?
        {
            found_tickets.push(found);
        }
        for reference in marks.foreign {
            if let Some(found) = tickets::thread_by_reference(conn, reference, address).await? {
                found_tickets.push(found);
            }
        }
    }
    let mut candidates: Vec<Candidate> = Vec::new();
    for found in found_tickets {
        if let Some(mut found) = survivor(conn, found, address).await?
            && !candidates.iter().any(|c| c.ticket_id == found.ticket_id)
        {
            found.sender_is_parent_admin = parent_admin(conn, &found, sender).await?;
            candidates.push(found);
        }
    }
    Ok(candidates)
}

/// Whether the sender is the admin contact of a parent organization of the ticket's.
async fn parent_admin(
    conn: &mut Conn,
    ticket: &Candidate,
    sender: Asker<'_>,
) -> Result<bool, StoreError> {
    match (sender.admin_of, ticket.organization_id) {
        (Some(admin_of), Some(org)) if admin_of != org => {
            directory::is_ancestor(conn, admin_of, org).await
        }
        _ => Ok(false),
    }
}

/// Keyed reply tokens among the message's recipients (envelope first).
fn reply_tokens(mail: &InboundMail) -> Vec<Token> {
    let mut tokens: Vec<Token> = Vec::new();
    let recipients = mail.delivered_to.iter().map(String::as_str).chain(
        mail.to
            .iter()
            .chain(mail.cc.iter())
            .map(|m| m.address.as_str()),
    );
    for token in recipients.filter_map(Token::read) {
        if !tokens.contains(&token) {
            tokens.push(token);
        }
    }
    tokens
}

/// Whether a token proves the sender's place on `ticket`: it was made for the
/// sender, or for another of the ticket's addressees while the sender is a
/// colleague in the ticket's organization, which shares tickets. A copied
/// or forged token proves nothing.
async fn token_counts(
    conn: &mut Conn,
    token: &Token,
    ticket: &Candidate,
    sender: Asker<'_>,
    key: &[u8],
) -> Result<bool, StoreError> {
    if !sender.address.is_empty() && token.made_for(sender.address, key) {
        return Ok(true);
    }
    let colleague = ticket.organization_shares_tickets
        && ticket.organization_id.is_some()
        && (ticket.organization_id == sender.organization_id || ticket.sender_is_parent_admin);
    if !colleague {
        return Ok(false);
    }
    let mut addressees = tickets::participants(conn, ticket.ticket_id).await?;
    if let Some(org) = ticket.organization_id {
        addressees.extend(directory::organization_notify_addresses(conn, org).await?);
    }
    Ok(addressees.iter().any(|a| token.made_for(a, key)))
}

/// The ticket that holds `found`'s thread now: itself, or the one it was merged into.
async fn survivor(
    conn: &mut Conn,
    found: Candidate,
    sender: &str,
) -> Result<Option<Candidate>, StoreError> {
    if found.merged_into.is_none() {
        return Ok(Some(found));
    }
    let id = tickets::survivor(conn, found.ticket_id).await?;
    tickets::thread_by_ticket_id(conn, id, sender).await
}

/// Whether a sender may add to `candidate`: an agent to any ticket; anyone
/// else to tickets they take part in, or of their own organization when it
/// shares tickets (a parent organization's admin counts as a member). A tag
/// or a Message-ID alone proves nothing.
pub fn may_add(candidate: &Candidate, sender_is_agent: bool, sender_org: Option<i64>) -> bool {
    let member = candidate.organization_id.is_some()
        && (candidate.organization_id == sender_org || candidate.sender_is_parent_admin);
    sender_is_agent
        || candidate.sender_is_participant
        || (candidate.organization_shares_tickets && member)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::parse;

    #[test]
    fn in_reply_to_comes_first_then_recent_references() {
        let mail = parse(
            b"From: a@example.org\r\nIn-Reply-To: <c@x>\r\nReferences: <a@x> <b@x> <c@x>\r\n\r\nx",
        );
        assert_eq!(referenced_ids(&mail), vec!["c@x", "b@x", "a@x"]);
    }

    fn candidate(participant: bool, org: Option<i64>, shares: bool) -> Candidate {
        Candidate {
            ticket_id: 1,
            status: crate::store::tickets::Status::Open,
            organization_id: org,
            organization_shares_tickets: shares,
            sender_is_participant: participant,
            sender_is_parent_admin: false,
            merged_into: None,
        }
    }

    #[test]
    fn a_parent_organizations_admin_counts_as_a_member_of_a_sharing_child() {
        let mut child_ticket = candidate(false, Some(2), true);
        child_ticket.sender_is_parent_admin = true;
        assert!(may_add(&child_ticket, false, Some(1)));
        child_ticket.organization_shares_tickets = false;
        assert!(!may_add(&child_ticket, false, Some(1)));
    }

    #[test]
    fn only_agents_participants_and_sharing_colleagues_may_add() {
        let stranger = None;
        assert!(may_add(&candidate(false, Some(1), false), true, stranger));
        assert!(may_add(&candidate(true, None, false), false, stranger));
        assert!(may_add(&candidate(false, Some(1), true), false, Some(1)));
        assert!(!may_add(&candidate(false, Some(1), false), false, Some(1)));
        assert!(!may_add(&candidate(false, Some(1), true), false, Some(2)));
        assert!(!may_add(&candidate(false, Some(1), true), false, stranger));
        assert!(!may_add(&candidate(false, None, true), false, stranger));
    }
}
