//! Keyed reply addresses: notifications answer to `<local>+t<ticket>-<mac>@<domain>`
//! of the queue address, the MAC over ticket and recipient with a key only
//! ticketd has, so a reply proves which ticket it answers and to whom the
//! address was given. Pure, no I/O.

use hmac::Mac;

use super::keyed;

/// What starts the token in the local part's detail.
const MARKER: &str = "t";
/// Hex digits of the MAC kept in the address (80 bits).
const MAC_HEX: usize = 20;

/// The reply address of ticket `ticket_id` for `recipient`, built on the
/// queue's address `base` (`support@example.com` →
/// `support+t42-0123456789abcdef0123@example.com`). A `base` without `@` is
/// returned unchanged.
pub fn address(base: &str, ticket_id: i64, recipient: &str, key: &[u8]) -> String {
    match base.rsplit_once('@') {
        Some((local, domain)) => {
            let mac = mac(ticket_id, recipient, key);
            format!("{local}+{MARKER}{ticket_id}-{mac}@{domain}")
        }
        None => base.to_string(),
    }
}

/// A token read from an address: the ticket it names and the MAC it carries,
/// not yet checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub ticket_id: i64,
    mac: Vec<u8>,
}

impl Token {
    /// The token in `address`, if it has the shape of one (any case).
    pub fn read(address: &str) -> Option<Token> {
        let address = address.to_ascii_lowercase();
        let (local, _domain) = address.rsplit_once('@')?;
        let (_, detail) = local.rsplit_once('+')?;
        let (id, given) = detail.strip_prefix(MARKER)?.split_once('-')?;
        if id.is_empty() || id.len() > 18 || !id.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if given.len() != MAC_HEX {
            return None;
        }
        Some(Token {
            ticket_id: id.parse().ok()?,
            mac: hex::decode(given).ok()?,
        })
    }

    /// Whether the token was made with `key` for `recipient` (compared in constant time).
    pub fn made_for(&self, recipient: &str, key: &[u8]) -> bool {
        let (ticket, recipient) = covered(self.ticket_id, recipient);
        let parts: [&[u8]; 4] = [
            b"ticketd-reply:",
            ticket.as_bytes(),
            b":",
            recipient.as_bytes(),
        ];
        keyed::mac(key, &parts)
            .verify_truncated_left(&self.mac)
            .is_ok()
    }
}

/// What the MAC covers: the purpose, the ticket and the recipient (any case).
fn covered(ticket_id: i64, recipient: &str) -> (String, String) {
    (ticket_id.to_string(), recipient.trim().to_ascii_lowercase())
}

fn mac(ticket_id: i64, recipient: &str, key: &[u8]) -> String {
    let (ticket, recipient) = covered(ticket_id, recipient);
    let parts: [&[u8]; 4] = [
        b"ticketd-reply:",
        ticket.as_bytes(),
        b":",
        recipient.as_bytes(),
    ];
    keyed::mac_hex(key, &parts, MAC_HEX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn a_reply_address_names_its_ticket_and_its_recipient() {
        let reply = address("support@example.com", 42, "jane@acme.example", KEY);
        assert!(reply.starts_with("support+t42-"), "{reply}");
        assert!(reply.ends_with("@example.com"), "{reply}");
        let token = Token::read(&reply).expect("token");
        assert_eq!(token.ticket_id, 42);
        assert!(token.made_for("jane@acme.example", KEY));
        assert!(token.made_for("Jane@Acme.Example", KEY));
        // Mail systems may change the case of the address.
        let shouted = Token::read(&reply.to_ascii_uppercase()).expect("token");
        assert!(shouted.made_for("jane@acme.example", KEY));
    }

    #[test]
    fn another_recipient_key_ticket_or_a_changed_digit_proves_nothing() {
        let reply = address("support@example.com", 42, "jane@acme.example", KEY);
        let token = Token::read(&reply).expect("token");
        assert!(!token.made_for("mallory@evil.example", KEY));
        assert!(!token.made_for("jane@acme.example", b"another key"));
        let other_ticket = Token::read(&reply.replace("+t42-", "+t43-")).expect("shape");
        assert!(!other_ticket.made_for("jane@acme.example", KEY));
        let at = reply.find('-').expect("dash") + 1;
        let mut changed = reply.clone().into_bytes();
        changed[at] = if changed[at] == b'0' { b'1' } else { b'0' };
        let changed = String::from_utf8(changed).expect("ascii");
        let forged = Token::read(&changed).expect("shape");
        assert!(!forged.made_for("jane@acme.example", KEY));
    }

    #[test]
    fn addresses_without_a_token_have_none() {
        for plain in [
            "support@example.com",
            "support+status@example.com",
            "support+t42@example.com",
            "support+t-0123456789abcdef0123@example.com",
            "support+tx42-0123456789abcdef0123@example.com",
            "support+t42-0123@example.com",
            "support+t42-zz23456789abcdef0123@example.com",
            "support+bounce-42-0123456789abcdef@example.com",
        ] {
            assert_eq!(Token::read(plain), None, "{plain}");
        }
    }

    #[test]
    fn a_local_part_with_its_own_plus_keeps_it() {
        let reply = address("help+eu@example.com", 7, "a@b.example", KEY);
        assert!(reply.starts_with("help+eu+t7-"), "{reply}");
        let token = Token::read(&reply).expect("token");
        assert!(token.made_for("a@b.example", KEY));
    }
}
