//! A message as a source read it: all of it, or only its beginning when it is
//! larger than the size limit (the source read no further).

use sha2::{Digest, Sha256};

/// The bytes read of one message and its whole size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMessage {
    bytes: Vec<u8>,
    size: u64,
}

impl RawMessage {
    /// A message read whole.
    pub fn whole(bytes: Vec<u8>) -> RawMessage {
        let size = bytes.len() as u64;
        RawMessage { bytes, size }
    }

    /// The first bytes of a message of `size` bytes.
    pub fn truncated(mut prefix: Vec<u8>, size: u64) -> RawMessage {
        prefix.truncate(usize::try_from(size).unwrap_or(usize::MAX));
        RawMessage {
            bytes: prefix,
            size,
        }
    }

    /// What was read: the message, or its beginning.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The whole message's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// True when only the beginning was read.
    pub fn is_truncated(&self) -> bool {
        (self.bytes.len() as u64) < self.size
    }

    /// The key that recognizes this message when it comes again: the SHA-256 of
    /// its bytes, or of what was read and the size when only the beginning was
    /// (every source reads the same beginning of the same message).
    pub fn sha256(&self) -> String {
        let mut hash = Sha256::new();
        hash.update(&self.bytes);
        if self.is_truncated() {
            hash.update(format!(
                "\ntruncated at {} of {} bytes",
                self.bytes.len(),
                self.size
            ));
        }
        hex::encode(hash.finalize())
    }

    /// The bytes read, giving up the message.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::parse::sha256_hex;

    #[test]
    fn a_whole_message_is_keyed_by_its_bytes_and_a_cut_one_by_what_was_read() {
        let whole = RawMessage::whole(b"From: a@b\r\n\r\nhi\r\n".to_vec());
        assert!(!whole.is_truncated());
        assert_eq!(whole.sha256(), sha256_hex(whole.bytes()));
        let cut = RawMessage::truncated(b"From: a@b\r\n\r\nhi".to_vec(), 1 << 30);
        assert!(cut.is_truncated());
        assert_eq!(cut.size(), 1 << 30);
        assert_ne!(cut.sha256(), sha256_hex(cut.bytes()));
        let same = RawMessage::truncated(b"From: a@b\r\n\r\nhi".to_vec(), 1 << 30);
        assert_eq!(cut.sha256(), same.sha256());
    }
}
