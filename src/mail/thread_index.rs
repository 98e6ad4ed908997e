//! Outlook's conversation index (`Thread-Index`, MS-OXOMSG 2.2.1.3): a 22-byte
//! header block (a reserved byte, 40 bits of FILETIME, the conversation's
//! GUID), then a 5-byte child block per reply. Pure, no I/O.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

const HEADER_LEN: usize = 22;
const CHILD_LEN: usize = 5;
/// 100-nanosecond intervals between 1601-01-01 and 1970-01-01.
const FILETIME_UNIX_EPOCH: u64 = 116_444_736_000_000_000;

/// A decoded conversation index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadIndex(Vec<u8>);

impl ThreadIndex {
    /// The index in a `Thread-Index` header value; `None` when it is not
    /// base64 of a header block and whole child blocks.
    pub fn parse(header: &str) -> Option<ThreadIndex> {
        let compact: String = header.split_whitespace().collect();
        let bytes = STANDARD.decode(compact).ok()?;
        (bytes.len() >= HEADER_LEN && (bytes.len() - HEADER_LEN).is_multiple_of(CHILD_LEN))
            .then_some(ThreadIndex(bytes))
    }

    /// A new conversation `conversation` (a GUID) started at `unix_secs`.
    pub fn start(conversation: [u8; 16], unix_secs: i64) -> ThreadIndex {
        let mut bytes = Vec::with_capacity(HEADER_LEN + CHILD_LEN);
        bytes.push(0x01);
        bytes.extend_from_slice(&(filetime(unix_secs) >> 24).to_be_bytes()[3..]);
        bytes.extend_from_slice(&conversation);
        ThreadIndex(bytes)
    }

    /// The conversation's GUID as 32 hex digits: what every message of the conversation shares.
    pub fn conversation_id(&self) -> String {
        hex::encode(&self.0[6..HEADER_LEN])
    }

    /// How many replies deep the index is.
    pub fn depth(&self) -> usize {
        (self.0.len() - HEADER_LEN) / CHILD_LEN
    }

    /// The index of a reply to this message written at `unix_secs`: this one
    /// with a child block for the time since the conversation began.
    /// `random` fills the block's four random bits.
    pub fn reply(&self, unix_secs: i64, random: u8) -> ThreadIndex {
        let mut start = [0u8; 8];
        start[3..].copy_from_slice(&self.0[1..6]);
        let began = u64::from_be_bytes(start) << 24;
        let delta = filetime(unix_secs).saturating_sub(began);
        // Short gaps keep finer time (bit 18 up), long ones coarser (bit 23 up).
        let (code, time) = if delta < 1 << 49 {
            (0u64, (delta >> 18) & 0x7fff_ffff)
        } else {
            (1u64, (delta >> 23) & 0x7fff_ffff)
        };
        let block = (code << 39) | (time << 8) | (u64::from(random & 0x0f) << 4);
        let mut bytes = self.0.clone();
        bytes.extend_from_slice(&block.to_be_bytes()[3..]);
        ThreadIndex(bytes)
    }

    /// The `Thread-Index` header value.
    pub fn to_header(&self) -> String {
        STANDARD.encode(&self.0)
    }
}

/// Unix seconds as a FILETIME (100 ns since 1601); times before 1970 count as 1970.
fn filetime(unix_secs: i64) -> u64 {
    u64::try_from(unix_secs)
        .unwrap_or(0)
        .saturating_mul(10_000_000)
        .saturating_add(FILETIME_UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUID: [u8; 16] = *b"0123456789abcdef";

    #[test]
    fn a_reply_extends_the_index_by_one_child_block_of_the_same_conversation() {
        let start = ThreadIndex::start(GUID, 1_764_000_000);
        assert_eq!(start.0.len(), 22);
        assert_eq!(start.depth(), 0);
        let reply = start.reply(1_764_000_600, 0x0a);
        assert_eq!(reply.0.len(), 27);
        assert_eq!(&reply.0[..22], &start.0[..]);
        assert_eq!(reply.conversation_id(), start.conversation_id());
        assert_eq!(reply.conversation_id(), hex::encode(GUID));
        let again = ThreadIndex::parse(&reply.to_header()).expect("round trip");
        assert_eq!(again, reply);
        assert_eq!(again.reply(1_764_001_000, 0).depth(), 2);
    }

    #[test]
    fn a_reply_block_counts_the_time_since_the_conversation_began() {
        let start = ThreadIndex::start(GUID, 1_764_000_000);
        let soon = start.reply(1_764_000_000 + 3600, 0);
        let later = start.reply(1_764_000_000 + 7200, 0);
        // The time bits sit between the code bit and the random and sequence nibbles.
        let time = |i: &ThreadIndex| {
            let mut b = [0u8; 8];
            b[3..].copy_from_slice(&i.0[22..27]);
            (u64::from_be_bytes(b) >> 8) & 0x7fff_ffff
        };
        assert!(
            time(&later) > time(&soon),
            "{} {}",
            time(&later),
            time(&soon)
        );
        let decades = start.reply(1_764_000_000 + 20 * 365 * 86_400, 0);
        assert_eq!(decades.0[22] >> 7, 1, "a long gap sets the code bit");
    }

    #[test]
    fn what_is_no_index_is_refused() {
        for bad in ["", "not base64!", "AQIDBA==", &STANDARD.encode([1u8; 25])] {
            assert_eq!(ThreadIndex::parse(bad), None, "{bad}");
        }
        let whole = "AdyTR0uVl5iZmpucnZ6foKGio6Slpg==";
        let folded = format!("{}\r\n {}", &whole[..12], &whole[12..]);
        assert!(ThreadIndex::parse(whole).is_some());
        assert_eq!(ThreadIndex::parse(&folded), ThreadIndex::parse(whole));
    }
}
