//! Pure mail handling: parsing, addresses, HTML, visible-reply extraction and classification. No I/O.

pub mod address;
pub mod auth;
pub mod classify;
pub mod foreign;
pub mod forward;
pub mod html;
pub mod keyed;
pub mod params;
pub mod parse;
pub mod raw;
pub mod repair;
pub mod reply;
pub mod reply_token;
pub mod tag;
pub mod thread_index;
pub mod tnef;
pub mod verp;

pub use classify::Classification;

/// The charset that `bytes` most likely are in, for text whose label is
/// missing, unknown or wrong.
pub(crate) fn guess_encoding(bytes: &[u8]) -> &'static encoding_rs::Encoding {
    let mut detector = chardetng::EncodingDetector::new();
    detector.feed(bytes, true);
    detector.guess(None, true)
}
pub use parse::{Attachment, InboundMail, Mailbox, parse};
pub use raw::RawMessage;
