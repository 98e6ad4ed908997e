//! The one primitive of our signed addresses (VERP return paths, keyed reply
//! addresses): HMAC-SHA256 with ticketd's key over a purpose and its fields.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The MAC state over `parts`, in order, with `key`; callers finalize or verify it.
pub fn mac(key: &[u8], parts: &[&[u8]]) -> Hmac<Sha256> {
    // HMAC takes keys of any length; an empty key is refused only by the type, never here.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| <Hmac<Sha256> as KeyInit>::new(&Default::default()));
    for part in parts {
        mac.update(part);
    }
    mac
}

/// The first `hex_digits` hex digits of the MAC over `parts`.
pub fn mac_hex(key: &[u8], parts: &[&[u8]], hex_digits: usize) -> String {
    let tag = mac(key, parts).finalize().into_bytes();
    hex::encode(&tag[..hex_digits / 2])
}
