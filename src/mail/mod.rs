//! Pure mail handling: parsing, addresses, HTML, visible-reply extraction and classification. No I/O.

pub mod address;
pub mod classify;
pub mod html;
pub mod params;
pub mod parse;
pub mod repair;
pub mod reply;

pub use classify::Classification;
pub use parse::{Attachment, InboundMail, Mailbox, parse};
