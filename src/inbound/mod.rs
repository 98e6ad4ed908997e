//! Sources of inbound mail: IMAP mailboxes and Maildirs. Each hands messages to the
//! ingest worker and acknowledges them to its source only after they are committed.

pub mod imap;
pub mod maildir;
