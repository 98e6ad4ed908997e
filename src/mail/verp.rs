//! VERP return paths: each notification leaves from its own address,
//! `<local>+bounce-<outbox id>-<mac>@<domain>`, whose MAC only we can compute,
//! so a delivery report proves which notification it is about. Pure, no I/O.

use hmac::Mac;

use super::keyed;

/// What separates the envelope sender's local part from the notification's marker.
const MARKER: &str = "+bounce-";
/// Hex digits of the MAC kept in the address (64 bits).
const MAC_HEX: usize = 16;

/// The return path of outbox entry `id`, built on the queue's envelope sender
/// `base` (`support@example.com` → `support+bounce-42-0123456789abcdef@example.com`).
/// A `base` without `@` is returned unchanged.
pub fn return_path(base: &str, id: i64, key: &[u8]) -> String {
    match base.rsplit_once('@') {
        Some((local, domain)) => format!("{local}{MARKER}{id}-{}@{domain}", mac(id, key)),
        None => base.to_string(),
    }
}

/// The outbox entry a return path names, when its MAC is right for `key`;
/// `None` for any other address, a forged MAC or no MAC at all.
pub fn verify(address: &str, key: &[u8]) -> Option<i64> {
    let address = address.to_ascii_lowercase();
    let (local, _domain) = address.rsplit_once('@')?;
    let (_, marked) = local.rsplit_once(MARKER)?;
    let (id, given) = marked.split_once('-')?;
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) || given.len() != MAC_HEX {
        return None;
    }
    let id: i64 = id.parse().ok()?;
    let given = hex::decode(given).ok()?;
    keyed::mac(key, &parts(&id.to_string()))
        .verify_truncated_left(&given)
        .ok()?;
    Some(id)
}

fn parts(id: &str) -> [&[u8]; 2] {
    [b"ticketd-bounce:", id.as_bytes()]
}

fn mac(id: i64, key: &[u8]) -> String {
    keyed::mac_hex(key, &parts(&id.to_string()), MAC_HEX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn a_return_path_names_its_notification_and_proves_it() {
        let path = return_path("support@example.com", 42, KEY);
        assert!(path.starts_with("support+bounce-42-"), "{path}");
        assert!(path.ends_with("@example.com"), "{path}");
        assert_eq!(verify(&path, KEY), Some(42));
        // Mail systems may change the case of the address.
        assert_eq!(verify(&path.to_ascii_uppercase(), KEY), Some(42));
    }

    #[test]
    fn forged_or_missing_macs_prove_nothing() {
        let path = return_path("support@example.com", 42, KEY);
        assert_eq!(verify(&path, b"another key"), None);
        let other_id = path.replace("-42-", "-43-");
        assert_eq!(verify(&other_id, KEY), None);
        assert_eq!(verify("support+bounce-42@example.com", KEY), None);
        assert_eq!(verify("support+bounce-42-@example.com", KEY), None);
        assert_eq!(
            verify("support+bounce-42-0000000000000000@example.com", KEY),
            None
        );
        assert_eq!(verify("support@example.com", KEY), None);
        assert_eq!(verify("support+bounce--1-00@example.com", KEY), None);
    }

    #[test]
    fn a_local_part_with_its_own_plus_keeps_it() {
        let path = return_path("help+eu@example.com", 7, KEY);
        assert!(path.starts_with("help+eu+bounce-7-"), "{path}");
        assert_eq!(verify(&path, KEY), Some(7));
    }
}
