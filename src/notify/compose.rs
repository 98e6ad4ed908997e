//! A rendered notification as a complete RFC 5322 message, with the headers
//! that keep it in the customer's thread and keep auto-responders quiet.

use lettre::Message;
use lettre::message::header::ContentType;
use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart};

use super::templates::Rendered;

/// The header that marks our own mail; mail carrying it is never answered.
pub const LOOP_HEADER: &str = "X-Ticketd-Loop";

macro_rules! text_header {
    ($type:ident, $name:literal) => {
        #[derive(Debug, Clone)]
        struct $type(String);

        impl Header for $type {
            fn name() -> HeaderName {
                HeaderName::new_from_ascii_str($name)
            }

            fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
                Ok($type(s.to_string()))
            }

            fn display(&self) -> HeaderValue {
                HeaderValue::new(Self::name(), self.0.clone())
            }
        }
    };
}

text_header!(AutoSubmitted, "Auto-Submitted");
text_header!(AutoResponseSuppress, "X-Auto-Response-Suppress");
text_header!(TicketdLoop, "X-Ticketd-Loop");
text_header!(ThreadTopic, "Thread-Topic");
text_header!(ThreadIndexHeader, "Thread-Index");

pub struct Addressing<'a> {
    pub from_name: &'a str,
    pub from_address: &'a str,
    pub to_name: Option<&'a str>,
    pub to_address: &'a str,
    /// Without angle brackets.
    pub message_id: &'a str,
    /// The customer's latest message, without angle brackets.
    pub in_reply_to: Option<&'a str>,
    /// The thread so far, oldest first, without angle brackets.
    pub references: &'a [String],
    /// Automatic mail gets `Auto-Submitted: auto-replied` (RFC 3834).
    pub automatic: bool,
    /// Files sent along (a customer's attachments to agents, an agent's to customers).
    pub attachments: &'a [crate::mail::Attachment],
    /// Where answers go, when not to From (an internal note's to the comment address).
    pub reply_to: Option<&'a str>,
    /// Outlook's conversation: its topic and this mail's index in it.
    pub conversation: Option<Conversation<'a>>,
}

/// Outlook's `Thread-Topic` and `Thread-Index`.
#[derive(Debug, Clone, Copy)]
pub struct Conversation<'a> {
    pub topic: &'a str,
    /// Base64, as the header carries it.
    pub index: &'a str,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot compose the notification: {0}")]
pub struct ComposeError(String);

/// The bytes of one notification: `rendered` text and HTML as alternatives,
/// the attachments after them, addressed and threaded as `a` says; an address
/// that is not one is an error, nothing is half-built.
pub fn compose(a: &Addressing<'_>, rendered: &Rendered) -> Result<Vec<u8>, ComposeError> {
    let mailbox = |name: Option<&str>, address: &str| -> Result<Mailbox, ComposeError> {
        let address = address
            .parse()
            .map_err(|e| ComposeError(format!("`{address}` is not an address: {e}")))?;
        Ok(Mailbox::new(name.map(str::to_string), address))
    };
    let from = mailbox(Some(a.from_name), a.from_address)?;
    let reply_to = match a.reply_to {
        Some(address) => mailbox(Some(a.from_name), address)?,
        None => from.clone(),
    };
    let mut builder = Message::builder()
        .from(from)
        .reply_to(reply_to)
        .to(mailbox(a.to_name, a.to_address)?)
        .subject(rendered.subject.clone())
        .message_id(Some(format!("<{}>", a.message_id)))
        .date_now()
        .header(TicketdLoop(a.from_address.to_string()))
        .header(AutoResponseSuppress("All".to_string()));
    if let Some(parent) = a.in_reply_to {
        builder = builder.in_reply_to(format!("<{parent}>"));
    }
    if !a.references.is_empty() {
        let chain: Vec<String> = a.references.iter().map(|id| format!("<{id}>")).collect();
        builder = builder.references(chain.join(" "));
    }
    if a.automatic {
        builder = builder.header(AutoSubmitted("auto-replied".to_string()));
    }
    if let Some(conversation) = a.conversation {
        builder = builder
            .header(ThreadTopic(conversation.topic.to_string()))
            .header(ThreadIndexHeader(conversation.index.to_string()));
    }
    // lettre inserts a CR before each bare LF one insert at a time, which is
    // quadratic in the number of lines: hand it CRLF already, converted in one pass.
    let body = MultiPart::alternative_plain_html(
        crlf_line_endings(&rendered.text),
        crlf_line_endings(&rendered.html),
    );
    let body = if a.attachments.is_empty() {
        body
    } else {
        let mut mixed = MultiPart::mixed().multipart(body);
        for file in a.attachments {
            mixed = mixed.singlepart(attachment_part(file));
        }
        mixed
    };
    let message = builder
        .multipart(body)
        .map_err(|e| ComposeError(e.to_string()))?;
    Ok(message.formatted())
}

/// One attachment as a MIME part: an inline image keeps its Content-ID, so a
/// client shows it where the HTML that refers to it would.
fn attachment_part(file: &crate::mail::Attachment) -> lettre::message::SinglePart {
    let content_type = ContentType::parse(&file.content_type)
        .unwrap_or_else(|_| ContentType::parse("application/octet-stream").expect("valid type"));
    let name = file.filename.clone().unwrap_or_else(|| "attachment".into());
    let attachment = match (&file.content_id, file.inline) {
        (Some(cid), true) => Attachment::new_inline_with_name(cid.clone(), name),
        _ => Attachment::new(name),
    };
    attachment.body(file.content.clone(), content_type)
}

/// `text` with every line ending as CRLF.
fn crlf_line_endings(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 16);
    let mut previous = '\0';
    for c in text.chars() {
        if c == '\n' && previous != '\r' {
            out.push('\r');
        }
        out.push(c);
        previous = c;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail;

    #[test]
    fn line_endings_become_crlf_once() {
        assert_eq!(crlf_line_endings("a\nb\r\nc\n"), "a\r\nb\r\nc\r\n");
        assert_eq!(crlf_line_endings("\n"), "\r\n");
    }

    #[test]
    fn composed_mail_threads_and_is_marked_automatic() {
        let rendered = Rendered {
            subject: "[Support #7] Printer".into(),
            text: "Hello Jane\n".into(),
            html: "<p>Hello Jane</p>".into(),
        };
        let bytes = compose(
            &Addressing {
                from_name: "Example Support",
                from_address: "support@example.com",
                to_name: Some("Jane Doe"),
                to_address: "jane@customer.example",
                message_id: "n1.7@example.com",
                in_reply_to: Some("c2@customer.example"),
                references: &[
                    "c1@customer.example".to_string(),
                    "c2@customer.example".to_string(),
                ],
                automatic: true,
                attachments: &[],
                reply_to: None,
                conversation: None,
            },
            &rendered,
        )
        .expect("compose");
        let parsed = mail::parse(&bytes);
        assert_eq!(parsed.message_id.as_deref(), Some("n1.7@example.com"));
        assert_eq!(parsed.in_reply_to, vec!["c2@customer.example"]);
        assert_eq!(
            parsed.references,
            vec!["c1@customer.example", "c2@customer.example"]
        );
        assert_eq!(parsed.subject.as_deref(), Some("[Support #7] Printer"));
        assert_eq!(
            parsed.signals.auto_submitted.as_deref(),
            Some("auto-replied")
        );
        assert_eq!(
            parsed.signals.loop_header.as_deref(),
            Some("support@example.com")
        );
        assert!(parsed.text.contains("Hello Jane"));
        assert!(
            parsed
                .html
                .as_deref()
                .is_some_and(|h| h.contains("Hello Jane"))
        );
        // Our own notification coming back is recognized as a loop.
        let class = mail::classify::classify(&parsed, &["support@example.com".to_string()]);
        assert_eq!(class, mail::Classification::Loop);
        let raw = String::from_utf8_lossy(&bytes);
        assert!(raw.contains("X-Auto-Response-Suppress: All"), "{raw}");
        assert!(
            raw.contains("Reply-To: \"Example Support\" <support@example.com>")
                || raw.contains("Reply-To: Example Support <support@example.com>"),
            "{raw}"
        );
    }

    #[test]
    fn attachments_and_inline_images_go_along() {
        let rendered = Rendered {
            subject: "[Support #7] Printer".into(),
            text: "See the files.\n".into(),
            html: "<p>See the files.</p>".into(),
        };
        let files = [
            mail::Attachment {
                filename: Some("log.pdf".into()),
                content_type: "application/pdf".into(),
                content: b"%PDF-1.4 test".to_vec(),
                inline: false,
                content_id: None,
            },
            mail::Attachment {
                filename: Some("shot.png".into()),
                content_type: "image/png".into(),
                content: vec![0x89, b'P', b'N', b'G'],
                inline: true,
                content_id: Some("shot@acme.example".into()),
            },
        ];
        let bytes = compose(
            &Addressing {
                from_name: "Jane Doe via Support",
                from_address: "support@example.com",
                to_name: None,
                to_address: "alex@example.com",
                message_id: "n2.7@example.com",
                in_reply_to: None,
                references: &[],
                automatic: true,
                attachments: &files,
                reply_to: Some("support-notes@example.com"),
                conversation: None,
            },
            &rendered,
        )
        .expect("compose");
        let raw = String::from_utf8_lossy(&bytes);
        assert!(
            raw.lines()
                .any(|l| l.starts_with("Reply-To:") && l.contains("<support-notes@example.com>")),
            "Reply-To goes to the comment address: {raw}"
        );
        let parsed = mail::parse(&bytes);
        assert!(parsed.text.contains("See the files."));
        assert_eq!(parsed.attachments.len(), 2, "{:?}", parsed.attachments);
        assert_eq!(parsed.attachments[0].content, b"%PDF-1.4 test");
        let image = &parsed.attachments[1];
        assert_eq!(image.content_id.as_deref(), Some("shot@acme.example"));
        assert_eq!(image.content, files[1].content);
        assert_eq!(
            parsed.from.and_then(|f| f.name).as_deref(),
            Some("Jane Doe via Support")
        );
    }
}
