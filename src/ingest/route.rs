//! Route: the address a message was sent to picks its queue.

use crate::config::QueueSettings;
use crate::mail::InboundMail;
use crate::mail::reply_token::Token;
use crate::store::queues::Queue;

/// The queue whose comment address (`[[queues]] comment_addresses`) the
/// message was sent to, if any: an agent's mail there is an internal note.
pub fn comment_queue<'q>(
    mail: &InboundMail,
    queues: &'q [Queue],
    configured: &[QueueSettings],
) -> Option<&'q Queue> {
    let configured = recipients(mail).find_map(|recipient| {
        let base = without_detail(recipient);
        configured.iter().find(|q| {
            q.comment_addresses
                .iter()
                .any(|a| a == recipient || *a == base)
        })
    })?;
    queues.iter().find(|q| q.name == configured.name)
}

/// Envelope recipients, then To, then Cc.
fn recipients(mail: &InboundMail) -> impl Iterator<Item = &str> {
    mail.delivered_to
        .iter()
        .map(String::as_str)
        .chain(mail.to.iter().map(|m| m.address.as_str()))
        .chain(mail.cc.iter().map(|m| m.address.as_str()))
}

/// The queue whose address received the message: envelope recipients first
/// (Delivered-To, X-Original-To), then To, then Cc; else the default queue.
/// A plus-address (`support+anything@…`) routes as its base address.
pub fn pick_queue<'q>(mail: &InboundMail, queues: &'q [Queue], default: &'q Queue) -> &'q Queue {
    for recipient in recipients(mail) {
        let base = without_detail(recipient);
        let untokened = without_reply_token(recipient);
        if let Some(queue) = queues.iter().find(|q| {
            q.addresses
                .iter()
                .any(|a| a == recipient || *a == base || Some(a) == untokened.as_ref())
        }) {
            return queue;
        }
    }
    default
}

/// A keyed reply address without its token (`help+eu+t7-…@x` → `help+eu@x`).
fn without_reply_token(address: &str) -> Option<String> {
    Token::read(address)?;
    let (local, domain) = address.rsplit_once('@')?;
    let (base, _) = local.rsplit_once('+')?;
    Some(format!("{base}@{domain}"))
}

/// `support+detail@example.com` → `support@example.com`; other addresses unchanged.
fn without_detail(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((local, domain)) => match local.split_once('+') {
            Some((base, _)) if !base.is_empty() => format!("{base}@{domain}"),
            _ => address.to_string(),
        },
        None => address.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Role;
    use crate::mail::parse;

    fn queue(id: i64, name: &str, address: &str) -> Queue {
        Queue {
            id,
            name: name.into(),
            addresses: vec![address.into()],
            allowed_roles: vec![Role::Admin, Role::Support],
        }
    }

    #[test]
    fn a_keyed_reply_address_routes_as_its_queue() {
        let queues = vec![
            queue(1, "support", "support@example.com"),
            queue(2, "europe", "help+eu@example.com"),
        ];
        let key = b"k";
        for (to, wanted) in [
            (
                crate::mail::reply_token::address("support@example.com", 4, "a@b.example", key),
                "support",
            ),
            (
                crate::mail::reply_token::address("help+eu@example.com", 4, "a@b.example", key),
                "europe",
            ),
        ] {
            let mail = parse(format!("From: a@b.example\r\nTo: {to}\r\n\r\nx").as_bytes());
            assert_eq!(pick_queue(&mail, &queues, &queues[0]).name, wanted, "{to}");
        }
    }

    #[test]
    fn recipient_address_picks_the_queue() {
        let queues = vec![
            queue(1, "support", "support@example.com"),
            queue(2, "billing", "billing@example.com"),
        ];
        let mail = parse(b"From: a@example.org\r\nTo: Billing <Billing@Example.com>\r\n\r\nx");
        assert_eq!(pick_queue(&mail, &queues, &queues[0]).name, "billing");
    }

    #[test]
    fn envelope_recipient_wins_over_to_and_cc() {
        let queues = vec![
            queue(1, "support", "support@example.com"),
            queue(2, "billing", "billing@example.com"),
        ];
        let mail = parse(
            b"Delivered-To: billing@example.com\r\nFrom: a@example.org\r\nTo: support@example.com\r\n\r\nx",
        );
        assert_eq!(pick_queue(&mail, &queues, &queues[0]).name, "billing");
    }

    #[test]
    fn a_plus_address_routes_as_its_base_address() {
        let queues = vec![
            queue(1, "support", "support@example.com"),
            queue(2, "billing", "billing@example.com"),
        ];
        let mail = parse(
            b"Delivered-To: billing+bounce-7-0011223344556677@example.com\r\nFrom: a@example.org\r\nTo: support@example.com\r\n\r\nx",
        );
        assert_eq!(pick_queue(&mail, &queues, &queues[0]).name, "billing");
    }

    #[test]
    fn unknown_recipient_goes_to_the_default_queue() {
        let queues = vec![
            queue(1, "support", "support@example.com"),
            queue(2, "billing", "billing@example.com"),
        ];
        let mail = parse(b"From: a@example.org\r\nTo: help@elsewhere.example\r\n\r\nx");
        assert_eq!(pick_queue(&mail, &queues, &queues[1]).name, "billing");
    }
}
