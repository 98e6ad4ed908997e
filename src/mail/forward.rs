//! A forwarded message inside another: who originally sent it, what it said,
//! and what the forwarder wrote above it. Gmail's and Outlook's inline
//! forwards, Apple Mail's, and a message attached as `message/rfc822`. Pure.

use std::sync::LazyLock;

use regex::Regex;

use super::{InboundMail, Mailbox, address, parse};

/// What a forward carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarded {
    /// The original sender.
    pub sender: Mailbox,
    /// The original subject, when the forward shows it.
    pub subject: Option<String>,
    /// The original message's text.
    pub text: String,
    /// What the forwarder wrote above the forward.
    pub note: String,
    /// The original message's files: an attached message's own, or the
    /// forwarding mail's for an inline forward.
    pub attachments: Vec<super::Attachment>,
}

/// The line that starts an inline forward, in the clients and languages seen.
static FORWARD_MARKER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^\s*(-{2,}\s*(forwarded message|original message|weitergeleitete nachricht|ursprüngliche nachricht|message transféré|message d'origine|mensaje reenviado|mensaje original|vidarebefordrat meddelande|ursprungligt meddelande|doorgestuurd bericht|oorspronkelijk bericht|messaggio inoltrato|messaggio originale|転送されたメッセージ|元のメッセージ)\s*-{2,}|begin forwarded message:|début du message réexpédié\s*:?|anfang der weitergeleiteten nachricht:|_{10,})\s*$",
    )
    .expect("valid regex")
});

/// A header line of a forward's header block: `From: …`, `*De :* …`, `差出人: …`.
static HEADER_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*\*?\s*([\p{L}-]+)\s*\*?\s*[:：]\s*\*?\s*(.*)$").expect("valid regex")
});

const FROM_NAMES: [&str; 11] = [
    "from",
    "von",
    "de",
    "fra",
    "från",
    "van",
    "da",
    "od",
    "差出人",
    "送信者",
    "lähettäjä",
];
const SUBJECT_NAMES: [&str; 10] = [
    "subject",
    "betreff",
    "objet",
    "asunto",
    "emne",
    "ämne",
    "onderwerp",
    "oggetto",
    "assunto",
    "件名",
];

/// The forwarded message in `mail`, if it is a forward: an attached message
/// first, else an inline forward in the text.
pub fn forwarded(mail: &InboundMail) -> Option<Forwarded> {
    attached(mail).or_else(|| {
        inline(&mail.text).map(|f| Forwarded {
            attachments: mail.attachments.clone(),
            ..f
        })
    })
}

fn attached(mail: &InboundMail) -> Option<Forwarded> {
    let part = mail
        .attachments
        .iter()
        .find(|a| a.content_type == "message/rfc822")?;
    let inner = parse(&part.content);
    Some(Forwarded {
        sender: inner.from?,
        subject: inner.subject,
        text: inner.visible_text,
        note: mail.visible_text.trim().to_string(),
        attachments: inner.attachments,
    })
}

fn inline(text: &str) -> Option<Forwarded> {
    let lines: Vec<&str> = text.lines().collect();
    let marker = lines.iter().position(|l| FORWARD_MARKER.is_match(l))?;
    let note = lines[..marker].join("\n").trim().to_string();
    let mut sender = None;
    let mut subject = None;
    let mut i = marker + 1;
    // The header block: header lines, maybe blank lines before it.
    while i < lines.len() && lines[i].trim().is_empty() {
        i += 1;
    }
    while i < lines.len() {
        let Some(caps) = HEADER_LINE.captures(lines[i]) else {
            break;
        };
        let name = caps[1].to_lowercase();
        let value = caps[2].trim().trim_matches('*').trim();
        if FROM_NAMES.contains(&name.as_str()) {
            sender = mailbox(value);
        } else if SUBJECT_NAMES.contains(&name.as_str()) {
            subject = Some(value.to_string());
        }
        i += 1;
    }
    let sender = sender?;
    let text = lines[i..].join("\n").trim().to_string();
    Some(Forwarded {
        sender,
        subject,
        text,
        note,
        attachments: Vec::new(),
    })
}

/// `Jane Doe <jane@acme.test>`, `"Jane" jane@acme.test`, `jane@acme.test`,
/// Outlook's `Jane Doe [mailto:jane@acme.test]`.
fn mailbox(value: &str) -> Option<Mailbox> {
    let value = value.replace("[mailto:", "<").replace(']', ">");
    let address = address::normalize(&value).or_else(|| {
        value
            .split_whitespace()
            .find(|w| w.contains('@'))
            .and_then(address::normalize)
    })?;
    let name = value
        .split('<')
        .next()
        .map(|n| n.trim().trim_matches('"').trim().to_string())
        .filter(|n| !n.is_empty() && !n.contains('@'));
    Some(Mailbox { address, name })
}

/// A subject without the `Fwd:`/`FW:`/`WG:`/`TR:`/`RV:`/`VB:` it got on the way.
pub fn unforwarded_subject(subject: &str) -> String {
    static PREFIX: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)^\s*((fwd?|wg|tr|rv|vs|vb|enc|i|転送)\s*:\s*)+").expect("valid regex")
    });
    PREFIX.replace(subject, "").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(text: &str) -> InboundMail {
        let raw = format!(
            "From: Alex Agent <alex@example.com>\r\nTo: support@example.com\r\nSubject: Fwd: Printer\r\n\r\n{text}"
        );
        parse(raw.as_bytes())
    }

    #[test]
    fn a_gmail_forward_names_the_customer() {
        let m = mail(
            "Please look at this one.\r\n\r\n---------- Forwarded message ---------\r\n\
             From: Jane Doe <jane@acme.test>\r\nDate: Mon, 23 Nov 2026 at 10:00\r\n\
             Subject: Printer on fire\r\nTo: Alex Agent <alex@example.com>\r\n\r\n\
             The printer is on fire.\r\n",
        );
        let f = forwarded(&m).expect("a forward");
        assert_eq!(f.sender.address, "jane@acme.test");
        assert_eq!(f.sender.name.as_deref(), Some("Jane Doe"));
        assert_eq!(f.subject.as_deref(), Some("Printer on fire"));
        assert_eq!(f.text, "The printer is on fire.");
        assert_eq!(f.note, "Please look at this one.");
    }

    #[test]
    fn an_outlook_forward_names_the_customer() {
        let m = mail(
            "FYI\r\n\r\n________________________________\r\n\
             From: Jane Doe <jane@acme.test>\r\nSent: Monday, November 23, 2026 10:00 AM\r\n\
             To: Alex Agent <alex@example.com>\r\nSubject: Printer\r\n\r\nIt jams.\r\n",
        );
        let f = forwarded(&m).expect("a forward");
        assert_eq!(f.sender.address, "jane@acme.test");
        assert_eq!(f.text, "It jams.");
        assert_eq!(f.note, "FYI");
        let classic = mail(
            "-----Original Message-----\r\nFrom: Jane Doe [mailto:jane@acme.test]\r\n\
             Sent: Monday\r\nSubject: Scanner\r\n\r\nIt is broken.\r\n",
        );
        let f = forwarded(&classic).expect("a forward");
        assert_eq!(f.sender.address, "jane@acme.test");
        assert_eq!(f.subject.as_deref(), Some("Scanner"));
    }

    #[test]
    fn an_attached_message_names_its_sender() {
        let raw = "From: Alex Agent <alex@example.com>\r\nTo: support@example.com\r\nSubject: Fw: Printer\r\n\
                   MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
                   --b\r\nContent-Type: text/plain\r\n\r\nSee below.\r\n\
                   --b\r\nContent-Type: message/rfc822\r\n\r\n\
                   From: Jane Doe <jane@acme.test>\r\nSubject: Printer\r\n\r\nThe printer jams.\r\n\
                   --b--\r\n";
        let f = forwarded(&parse(raw.as_bytes())).expect("a forward");
        assert_eq!(f.sender.address, "jane@acme.test");
        assert_eq!(f.text.trim(), "The printer jams.");
        assert_eq!(f.note, "See below.");
    }

    #[test]
    fn a_plain_mail_is_no_forward_and_subjects_lose_their_prefixes() {
        assert_eq!(forwarded(&mail("Hello, a question.\r\n")), None);
        assert_eq!(unforwarded_subject("Fwd: FW: Printer"), "Printer");
        assert_eq!(unforwarded_subject("WG: Drucker"), "Drucker");
        assert_eq!(unforwarded_subject("Printer"), "Printer");
    }
}
