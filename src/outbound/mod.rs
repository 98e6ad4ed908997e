//! Outbound mail: the transports (SMTP with lettre, or a Maildir when no server
//! is configured) and the outbox sender that delivers with retries.

pub mod maildir;
pub mod sender;
pub mod smtp;

/// How one delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Accepted; the server's reply.
    Sent(String),
    /// Worth trying again later (4xx, connection trouble).
    Temporary(String),
    /// Refused for good (5xx).
    Permanent(String),
    /// Nothing can be delivered until the operator fixes something (no
    /// connection, TLS, authentication, a refused envelope sender): the
    /// message waits and is retried, and never counts as failed.
    Blocked(String),
}

/// Where notifications go.
pub enum Transport {
    Smtp(Box<smtp::SmtpTransport>),
    Maildir(maildir::MaildirTransport),
}

impl Transport {
    pub async fn deliver(&self, mail_from: &str, recipient: &str, bytes: &[u8]) -> Delivery {
        match self {
            Transport::Smtp(t) => t.deliver(mail_from, recipient, bytes).await,
            Transport::Maildir(t) => t.deliver(bytes).await,
        }
    }
}
