//! Agents by mail, end to end: customers' mail from a real Dovecot, notices
//! through the loopback SMTP server, on SQLite and PostgreSQL — verified
//! agents answer, command, note, assign, merge and forward; forged agent mail
//! changes nothing.

use std::time::Duration;

use serde_json::Value;

use crate::on_both_backends;
use crate::support::dovecot::Dovecot;
use crate::support::smtp::{Received, SmtpServer};
use crate::support::{Backend, Daemon, Env, Msg, wait_until};

const USER: &str = "support";
const PASSWORD: &str = "s3cret-imap";
const JANE: &str = "Jane Doe <jane@acme.example>";
const ALEX: &str = "Alex Agent <alex@example.com>";
const BEA: &str = "Bea Agent <bea@example.com>";

/// A running helpdesk: Dovecot's INBOX in, the SMTP server out.
struct Desk {
    dovecot: Dovecot,
    smtp: SmtpServer,
    env: Env,
    _daemon: Daemon,
    delivered: std::cell::Cell<usize>,
}

impl Desk {
    fn start(backend: Backend) -> Desk {
        let dovecot = Dovecot::start(&[(USER, PASSWORD)]);
        let smtp = SmtpServer::start();
        let env = Env::with_config(
            backend,
            &format!(
                "maildir = []\n\n\
                 [daemon]\nidle_timeout_secs = 60\npoll_interval_secs = 1\nreconnect_max_secs = 1\nconnect_timeout_secs = 5\n\n\
                 [[imap]]\nhost = \"{}\"\nport = {}\nsecurity = \"plain\"\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n\n\
                 [smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"plain\"\ntimeout_secs = 5\n\n\
                 [outbox]\nretry_base_secs = 1\nmax_age_hours = 1\nmaildir = \"sent\"\n\n\
                 [[queues]]\nname = \"support\"\naddresses = [\"support@example.com\"]\n\
                 comment_addresses = [\"support-notes@example.com\"]\nfrom_name = \"Support\"\n",
                dovecot.host(),
                dovecot.plain_port(),
                smtp.port()
            ),
        )
        .with_acme();
        env.ok(&["agent", "add", "bea@example.com", "--name", "Bea Agent"]);
        let daemon = env.start_daemon();
        wait_until(Duration::from_secs(15), "the daemon to start", || {
            daemon.log_text().contains("ticketd is running")
        });
        Desk {
            dovecot,
            smtp,
            env,
            _daemon: daemon,
            delivered: std::cell::Cell::new(0),
        }
    }

    /// Puts a message in the INBOX and waits until ticketd has filed it.
    fn deliver(&self, raw: &[u8]) {
        let n = self.delivered.get() + 1;
        self.delivered.set(n);
        self.dovecot.append(USER, "INBOX", &[raw.to_vec()]);
        wait_until(Duration::from_secs(20), "the message to be filed", || {
            self.dovecot.count(USER, "Processed") >= n
        });
    }

    /// Every notification enqueued so far, oldest first: (kind, recipient, ticket, Message-ID).
    fn outbox(&self) -> Vec<Notice> {
        let Value::Array(rows) = self
            .env
            .json(&["outbox", "list", "--json", "--limit", "1000"])
        else {
            panic!("outbox list is not an array");
        };
        let mut notices: Vec<Notice> = rows
            .iter()
            .map(|r| Notice {
                id: r["id"].as_i64().unwrap_or(0),
                kind: r["kind"].as_str().unwrap_or("").to_string(),
                recipient: r["recipient"].as_str().unwrap_or("").to_string(),
                message_id: r["message_id"].as_str().unwrap_or("").to_string(),
            })
            .collect();
        notices.sort_by_key(|n| n.id);
        notices
    }

    /// The notifications enqueued after the first `since`.
    fn new_notices(&self, since: usize) -> Vec<Notice> {
        self.outbox().into_iter().skip(since).collect()
    }

    /// Waits for the mail with `message_id` to arrive at the SMTP server.
    fn received(&self, message_id: &str) -> Received {
        let mut found = None;
        wait_until(
            Duration::from_secs(20),
            "the notification to be sent",
            || {
                found = self.smtp.messages().into_iter().find(|m| {
                    ticketd::mail::parse(&m.data).message_id.as_deref() == Some(message_id)
                });
                found.is_some()
            },
        );
        found.expect("found")
    }

    fn held(&self) -> Vec<Value> {
        self.env.held()
    }
}

#[derive(Debug, Clone)]
struct Notice {
    id: i64,
    kind: String,
    recipient: String,
    message_id: String,
}

fn who(notices: &[Notice]) -> Vec<(String, String)> {
    notices
        .iter()
        .map(|n| (n.kind.clone(), n.recipient.clone()))
        .collect()
}

fn pair(kind: &str, recipient: &str) -> (String, String) {
    (kind.to_string(), recipient.to_string())
}

/// Jane's mail with a PDF attached and an inline image.
fn janes_mail_with_files() -> Vec<u8> {
    let head = "From: Jane Doe <jane@acme.example>\r\nTo: support@example.com\r\n\
                Subject: Printer jams\r\nMessage-ID: <m1@acme.example>\r\n\
                Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n\
                Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n";
    let body = "--outer\r\nContent-Type: multipart/related; boundary=\"rel\"\r\n\r\n\
                --rel\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
                <p>The printer jams on every page.</p><img src=\"cid:shot@acme.example\">\r\n\
                --rel\r\nContent-Type: image/png\r\nContent-ID: <shot@acme.example>\r\n\
                Content-Disposition: inline; filename=\"shot.png\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\
                iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==\r\n\
                --rel--\r\n\
                --outer\r\nContent-Type: application/pdf\r\n\
                Content-Disposition: attachment; filename=\"error-log.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n\
                JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PD4+CmVuZG9iagp0cmFpbGVyCjw8Pj4KJSVFT0YK\r\n\
                --outer--\r\n";
    format!("{head}{body}").into_bytes()
}

/// The file names of a received mail's attachments and inline parts.
fn file_names(mail: &Received) -> Vec<String> {
    let parsed = mail_parser::MessageParser::default()
        .parse(&mail.data)
        .expect("a message");
    parsed
        .attachments()
        .filter_map(|a| mail_parser::MimeHeaders::attachment_name(a).map(str::to_string))
        .collect()
}

fn text_of(mail: &Received) -> String {
    ticketd::mail::parse(&mail.data).text
}

fn display_from(mail: &Received) -> String {
    let parsed = ticketd::mail::parse(&mail.data);
    parsed.from.and_then(|f| f.name).unwrap_or_default()
}

/// An agent's answer in Outlook's shape: the words, a sign-off, then the
/// notification under a rule and a header block.
fn outlook_answer(from: &str, to_notice: &str, id: &str, subject: &str, words: &str) -> Msg {
    Msg::new(from, &format!("RE: {subject}"), id)
        .in_reply_to(to_notice)
        .body(&format!(
            "{words}\n\nKind regards\nAlex Agent | Example Support\n\n\
             ________________________________\n\
             From: Jane Doe via Support <support@example.com>\n\
             Sent: Monday, November 23, 2026 10:01\n\
             To: Alex Agent <alex@example.com>\n\
             Subject: {subject}\n\n\
             New ticket #1 in queue support\nThe printer jams on every page.\n"
        ))
}

/// An agent's answer in Gmail's shape: the words, a `-- ` signature, an attribution and quotes.
fn gmail_answer(from: &str, to_notice: &str, id: &str, subject: &str, words: &str) -> Msg {
    Msg::new(from, &format!("Re: {subject}"), id)
        .in_reply_to(to_notice)
        .body(&format!(
            "{words}\n\n-- \nBea Agent\nExample Support\n\n\
             On Mon, 23 Nov 2026 at 10:05, Jane Doe via Support <support@example.com> wrote:\n\
             > It jams again.\n>\n> Jane\n"
        ))
}

fn the_agent_console(backend: Backend) {
    let desk = Desk::start(backend);

    // A customer's mail: acknowledged, and every agent of the queue told, with her files.
    desk.deliver(&janes_mail_with_files());
    let notices = desk.outbox();
    assert_eq!(
        who(&notices),
        [
            pair("ticket_received", "jane@acme.example"),
            pair("ticket_received", "helpdesk@acme.example"),
            pair("agent_new_ticket", "alex@example.com"),
            pair("agent_new_ticket", "bea@example.com"),
        ]
    );
    let alex_notice = notices[2].clone();
    let to_alex = desk.received(&alex_notice.message_id);
    assert_eq!(display_from(&to_alex), "Jane Doe via Support");
    let mut files = file_names(&to_alex);
    files.sort();
    assert_eq!(files, ["error-log.pdf", "shot.png"]);
    let text = text_of(&to_alex);
    assert!(text.contains("The printer jams on every page."), "{text}");
    assert!(text.contains("Status: new · Priority: normal"), "{text}");
    assert!(
        text.contains("Requester: Jane Doe <jane@acme.example> (Acme)"),
        "{text}"
    );
    let subject = ticketd::mail::parse(&to_alex.data)
        .subject
        .unwrap_or_default();

    // Forged mail in Alex's name changes nothing and reaches nobody.
    let count = desk.outbox().len();
    let forged = [
        Msg::new(ALEX, &format!("Re: {subject}"), "forged1@attacker.example")
            .in_reply_to(&alex_notice.message_id)
            .header(
                "Authentication-Results",
                "mx.test; dmarc=fail header.from=example.com",
            )
            .body("#status closed\n\nPlease send your password to me."),
        Msg::new(ALEX, &format!("Re: {subject}"), "forged2@attacker.example")
            .in_reply_to(&alex_notice.message_id)
            .body("#status closed\n\nPlease send your password to me."),
        // A header from a server that is not ours counts for nothing.
        Msg::new(ALEX, &format!("Re: {subject}"), "forged3@attacker.example")
            .in_reply_to(&alex_notice.message_id)
            .header(
                "Authentication-Results",
                "mx.attacker.example; dmarc=pass header.from=example.com",
            )
            .body("#status closed\n\nPlease send your password to me."),
    ];
    for mail in &forged {
        desk.deliver(&mail.bytes());
    }
    let held = desk.held();
    assert_eq!(held.len(), 3, "{held:?}");
    assert!(
        held.iter().all(|h| h["reason_code"] == "agent_unverified"),
        "{held:?}"
    );
    assert!(
        held.iter()
            .any(|h| h["reason"].as_str().unwrap_or("").contains("dmarc=fail")),
        "the check's result is kept: {held:?}"
    );
    let ticket = desk.env.ticket(1);
    assert_eq!(ticket["status"], "new");
    assert_eq!(ticket["messages"].as_array().map(Vec::len), Some(1));
    assert_eq!(desk.outbox().len(), count, "nothing reached anyone");

    // Alex answers from Outlook and solves it: Jane gets only his words.
    let count = desk.outbox().len();
    desk.deliver(
        &outlook_answer(
            ALEX,
            &alex_notice.message_id,
            "a1@example.com",
            &subject,
            "#status solved\n\nThe printer is fixed; please restart it once more.",
        )
        .verified()
        .bytes(),
    );
    let ticket = desk.env.ticket(1);
    assert_eq!(ticket["status"], "solved");
    let new = desk.new_notices(count);
    assert_eq!(
        who(&new),
        [
            pair("agent_reply", "jane@acme.example"),
            pair("agent_reply", "helpdesk@acme.example"),
        ],
        "one answer, no separate status mail, no copy to agents"
    );
    let answer = desk.received(&new[0].message_id);
    let text = text_of(&answer);
    assert!(
        text.contains("The printer is fixed; please restart it once more."),
        "{text}"
    );
    for leaked in [
        "#status",
        "Kind regards",
        "From: Jane Doe via",
        "New ticket #1",
        "jams on every page",
    ] {
        assert!(
            !text.contains(leaked),
            "`{leaked}` reached the customer: {text}"
        );
    }
    assert!(text.contains("solved"), "{text}");

    // Jane writes again (the ticket reopens); Bea answers from Gmail and solves it.
    desk.deliver(
        &Msg::new(JANE, &format!("Re: {subject}"), "m2@acme.example")
            .in_reply_to(&new[0].message_id)
            .body("It jams again.\n")
            .bytes(),
    );
    assert_eq!(desk.env.ticket(1)["status"], "open");
    let bea_notice = desk
        .outbox()
        .into_iter()
        .rfind(|n| n.recipient == "bea@example.com")
        .expect("Bea told");
    assert_eq!(bea_notice.kind, "agent_customer_reply");
    let count = desk.outbox().len();
    desk.deliver(
        &gmail_answer(
            BEA,
            &bea_notice.message_id,
            "b1@example.com",
            &subject,
            "#status solved\n\nAll done on our side, the driver is updated.",
        )
        .verified()
        .bytes(),
    );
    assert_eq!(desk.env.ticket(1)["status"], "solved");
    let new = desk.new_notices(count);
    assert_eq!(new[0].recipient, "jane@acme.example");
    let text = text_of(&desk.received(&new[0].message_id));
    assert!(
        text.contains("All done on our side, the driver is updated."),
        "{text}"
    );
    for leaked in [
        "#status",
        "Bea Agent\nExample Support",
        "It jams again",
        "wrote:",
    ] {
        assert!(
            !text.contains(leaked),
            "`{leaked}` reached the customer: {text}"
        );
    }

    // An internal note, and a mail to the comment address: agents only.
    let count = desk.outbox().len();
    desk.deliver(
        &Msg::new(ALEX, &format!("Re: {subject}"), "n1@example.com")
            .in_reply_to(&alex_notice.message_id)
            .verified()
            .body("#note\nShe is on the old firmware; do not tell her about the beta.\n")
            .bytes(),
    );
    desk.deliver(
        &Msg::new(BEA, &format!("Re: {subject}"), "n2@example.com")
            .header("To", "support-notes@example.com")
            .verified()
            .body("Jane's colleague says the beta fixed theirs.\n")
            .bytes(),
    );
    let new = desk.new_notices(count);
    assert_eq!(
        who(&new),
        [
            pair("agent_note", "bea@example.com"),
            pair("agent_note", "alex@example.com")
        ]
    );
    let note = desk.received(&new[0].message_id);
    let raw = String::from_utf8_lossy(&note.data);
    assert!(
        raw.lines()
            .any(|l| l.starts_with("Reply-To:") && l.contains("<support-notes@example.com>")),
        "an answer to a note must stay internal: {raw}"
    );
    assert!(text_of(&note).contains("stays internal"));
    let ticket = desk.env.ticket(1);
    let messages = ticket["messages"].as_array().expect("messages");
    let notes: Vec<&Value> = messages.iter().filter(|m| m["internal"] == true).collect();
    assert_eq!(notes.len(), 2, "{messages:?}");
    assert_eq!(ticket["status"], "solved", "a note changes no status");

    // A bad command line applies nothing, and Alex is told which and why.
    let count = desk.outbox().len();
    let before = desk.env.ticket(1)["messages"].as_array().map(Vec::len);
    desk.deliver(
        &Msg::new(ALEX, &format!("Re: {subject}"), "c1@example.com")
            .in_reply_to(&alex_notice.message_id)
            .verified()
            .body("#status done\n#assign nobody@nowhere.example\n#priority high\n\nShould not go out.\n")
            .bytes(),
    );
    let new = desk.new_notices(count);
    assert_eq!(who(&new), [pair("commands_rejected", "alex@example.com")]);
    let text = text_of(&desk.received(&new[0].message_id));
    assert!(text.contains("#status done"), "{text}");
    assert!(
        text.contains("nobody@nowhere.example is not an agent"),
        "{text}"
    );
    assert!(text.contains("#priority low|normal|high|urgent"), "{text}");
    let ticket = desk.env.ticket(1);
    assert_eq!(ticket["priority"], "normal");
    assert_eq!(ticket["messages"].as_array().map(Vec::len), before);
    assert!(
        desk.held()
            .iter()
            .any(|h| h["reason_code"] == "commands_rejected")
    );

    // #assign, then Jane's reply tells only the assignee.
    desk.deliver(
        &Msg::new(ALEX, &format!("Re: {subject}"), "c2@example.com")
            .in_reply_to(&alex_notice.message_id)
            .verified()
            .body("#assign bea@example.com\n#priority high\n")
            .bytes(),
    );
    let ticket = desk.env.ticket(1);
    assert_eq!(ticket["assignee"], "bea@example.com");
    assert_eq!(ticket["priority"], "high");
    let events = ticket["events"].as_array().expect("events");
    assert!(
        events
            .iter()
            .any(|e| e["action"] == "assigned" && e["actor"] == "alex@example.com")
    );
    let count = desk.outbox().len();
    desk.deliver(
        &Msg::new(JANE, &format!("Re: {subject}"), "m3@acme.example")
            .in_reply_to("m2@acme.example")
            .body("Still jamming.\n")
            .bytes(),
    );
    assert_eq!(
        who(&desk.new_notices(count)),
        [pair("agent_customer_reply", "bea@example.com")]
    );

    // An operator releases a held forgery: applied as the agent's reply.
    let forged_id = desk
        .held()
        .iter()
        .find(|h| h["reason_code"] == "agent_unverified")
        .and_then(|h| h["id"].as_i64())
        .expect("a held forgery");
    desk.env.ok(&["held", "release", &forged_id.to_string()]);
    assert_eq!(desk.env.ticket(1)["status"], "closed");
}

fn merge_and_forward(backend: Backend) {
    let desk = Desk::start(backend);
    desk.deliver(&Msg::new(JANE, "Printer", "p1@acme.example").bytes());
    desk.deliver(&Msg::new(JANE, "Printer, again", "p2@acme.example").bytes());
    let notice_2 = desk
        .outbox()
        .into_iter()
        .find(|n| n.recipient == "alex@example.com" && n.message_id.contains(".t2."))
        .expect("Alex told of #2");

    // #merge moves the thread and closes the old ticket with a link.
    desk.deliver(
        &Msg::new(
            ALEX,
            "Re: [Support #2] New ticket: Printer, again",
            "g1@example.com",
        )
        .in_reply_to(&notice_2.message_id)
        .verified()
        .body("#merge 1\n\nMerging this into your first ticket.\n")
        .bytes(),
    );
    let old = desk.env.ticket(2);
    assert_eq!(old["merged_into"], 1);
    assert_eq!(old["status"], "closed");
    let survivor = desk.env.ticket(1);
    let subjects: Vec<&str> = survivor["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["subject"].as_str())
        .collect();
    assert!(subjects.contains(&"Printer, again"), "{subjects:?}");

    // A later reply to the old ticket lands on the survivor.
    let report_count = survivor["messages"].as_array().map(Vec::len).unwrap_or(0);
    desk.deliver(
        &Msg::new(JANE, "Re: [Support #2] Printer, again", "p3@acme.example")
            .in_reply_to("p2@acme.example")
            .body("Any news?\n")
            .bytes(),
    );
    let survivor = desk.env.ticket(1);
    assert_eq!(
        survivor["messages"].as_array().map(Vec::len),
        Some(report_count + 1)
    );
    assert_eq!(desk.env.tickets().len(), 2, "no new ticket");

    // Alex forwards a customer's mail (Gmail's inline forward): the ticket is the customer's.
    desk.deliver(
        &Msg::new(ALEX, "Fwd: Scanner offline", "f1@example.com")
            .verified()
            .body(
                "#priority urgent\nCarl called about this too; he is on site until noon.\n\n\
                 ---------- Forwarded message ---------\n\
                 From: Carl Customer <carl@acme.example>\n\
                 Date: Mon, Nov 23, 2026 at 9:12 AM\n\
                 Subject: Scanner offline\n\
                 To: Alex Agent <alex@example.com>\n\n\
                 The scanner on floor 2 has been offline since Friday.\n",
            )
            .bytes(),
    );
    let forwarded = desk
        .env
        .tickets()
        .into_iter()
        .find(|t| t["subject"] == "Scanner offline")
        .expect("a ticket for the forward");
    assert_eq!(forwarded["requester"], "carl@acme.example");
    assert_eq!(forwarded["organization"], "Acme");
    assert_eq!(forwarded["priority"], "urgent");
    let id = forwarded["id"].as_i64().expect("id");
    let ticket = desk.env.ticket(id);
    let messages = ticket["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(messages[0]["author"]["kind"], "contact");
    assert!(
        messages[0]["visible_text"]
            .as_str()
            .unwrap_or("")
            .contains("offline since Friday")
    );
    assert_eq!(messages[1]["internal"], true);
    assert_eq!(
        messages[1]["visible_text"],
        "Carl called about this too; he is on site until noon."
    );
    let contacts = desk.env.json(&["contact", "list", "--json"]);
    assert!(
        contacts
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["email"] == "carl@acme.example")),
        "{contacts}"
    );

    // An attached message (Outlook's "forward as attachment") works the same.
    let attached = "From: Alex Agent <alex@example.com>\r\nTo: support@example.com\r\n\
                    Subject: FW: Invoice question\r\nMessage-ID: <f2@example.com>\r\n\
                    MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n\
                    --b\r\nContent-Type: text/plain\r\n\r\nSee below.\r\n\
                    --b\r\nContent-Type: message/rfc822\r\n\r\n\
                    From: Dora <dora@other.example>\r\nTo: alex@example.com\r\n\
                    Subject: Invoice question\r\nMessage-ID: <d1@other.example>\r\n\r\n\
                    Why was I billed twice?\r\n\
                    --b--\r\n";
    desk.deliver(
        format!(
            "Authentication-Results: mx.test; dkim=pass header.d=example.com; dmarc=pass header.from=example.com\r\n{attached}"
        )
        .as_bytes(),
    );
    let dora = desk
        .env
        .tickets()
        .into_iter()
        .find(|t| t["requester"] == "dora@other.example")
        .expect("a ticket for Dora");
    assert_eq!(dora["subject"], "Invoice question");
}

on_both_backends!(the_agent_console, merge_and_forward);
