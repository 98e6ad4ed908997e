//! Threading that survives clients and relays which drop the subject tag and
//! the headers: the keyed reply address of every notification.

use serde_json::Value;

use crate::on_both_backends;
use crate::support::{Backend, Env, Msg, outcome, ticket_of};

/// The raw notification of `kind` sent to `recipient`, from the outbox.
fn notification(env: &Env, kind: &str, recipient: &str) -> String {
    let Value::Array(entries) = env.json(&["outbox", "list", "--json"]) else {
        panic!("outbox list is not an array");
    };
    let entry = entries
        .iter()
        .find(|e| e["kind"] == kind && e["recipient"] == recipient)
        .unwrap_or_else(|| panic!("no {kind} to {recipient} in {entries:?}"));
    let id = entry["id"].as_i64().expect("outbox id").to_string();
    env.ok(&["outbox", "show", &id, "--raw"])
}

/// The address in the mail's Reply-To header.
fn reply_to(mail: &str) -> String {
    let line = mail
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("reply-to:"))
        .unwrap_or_else(|| panic!("no Reply-To in {mail}"));
    let start = line.find('<').map_or(9, |at| at + 1);
    let end = line.rfind('>').unwrap_or(line.len());
    line[start..end].trim().to_string()
}

fn a_reply_to_the_keyed_address_threads_and_a_copied_or_changed_token_does_not(backend: Backend) {
    let env = Env::new(backend).with_acme();
    let first = env.ingest(&Msg::new("Jane Doe <jane@acme.example>", "Printer", "p1@acme").bytes());
    let ticket = ticket_of(&first);
    let ack = notification(&env, "ticket_received", "jane@acme.example");
    let keyed = reply_to(&ack);
    assert!(
        keyed.starts_with(&format!("support+t{ticket}-")) && keyed.ends_with("@example.com"),
        "{keyed}"
    );

    // Without the keyed address such a mail is a ticket of its own…
    let plain = Msg::new("jane@acme.example", "something else entirely", "p0@acme");
    let report = env.ingest(&plain.bytes());
    assert_eq!(outcome(&report), "created", "{report}");

    // …with it, from a client that keeps neither the tag nor the headers, a reply.
    let reply = Msg::new("jane@acme.example", "something else entirely", "p2@acme")
        .header("To", &keyed)
        .body("It works again, thanks.\n");
    let report = env.ingest(&reply.bytes());
    assert_eq!(outcome(&report), "appended", "{report}");
    assert_eq!(ticket_of(&report), ticket);

    // The same address in a stranger's hands proves nothing.
    let copied = Msg::new(
        "mallory@elsewhere.example",
        "something else",
        "m1@elsewhere",
    )
    .header("To", &keyed);
    let report = env.ingest(&copied.bytes());
    assert_eq!(outcome(&report), "created", "{report}");
    assert_ne!(ticket_of(&report), ticket);

    // Nor does a token with one character changed, even from Jane.
    let at = keyed.find('-').expect("token") + 1;
    let mut changed = keyed.clone().into_bytes();
    changed[at] = if changed[at] == b'0' { b'1' } else { b'0' };
    let changed = String::from_utf8(changed).expect("ascii");
    let forged = Msg::new("jane@acme.example", "another thing", "p3@acme").header("To", &changed);
    let report = env.ingest(&forged.bytes());
    assert_eq!(outcome(&report), "created", "{report}");
    assert_ne!(ticket_of(&report), ticket);
}

fn a_colleague_may_use_the_keyed_address_only_when_the_organization_shares(backend: Backend) {
    let env = Env::new(backend);
    env.ok(&[
        "org",
        "add",
        "Acme",
        "--domain",
        "acme.example",
        "--shares-tickets",
    ]);
    env.ok(&["org", "add", "Solo", "--domain", "solo.example"]);
    for (who, org) in [
        ("jane@acme.example", "Acme"),
        ("omar@acme.example", "Acme"),
        ("sam@solo.example", "Solo"),
        ("sue@solo.example", "Solo"),
    ] {
        env.ok(&["contact", "add", who, "--org", org]);
    }
    for (asker, colleague, joins) in [
        ("jane@acme.example", "omar@acme.example", true),
        ("sam@solo.example", "sue@solo.example", false),
    ] {
        let first = env.ingest(&Msg::new(asker, "Printer", &format!("{asker}.1")).bytes());
        let ticket = ticket_of(&first);
        let keyed = reply_to(&notification(&env, "ticket_received", asker));
        let reply = Msg::new(colleague, "fwd", &format!("{colleague}.2")).header("To", &keyed);
        let report = env.ingest(&reply.bytes());
        assert_eq!(ticket_of(&report) == ticket, joins, "{colleague}: {report}");
    }
}

/// The decoded `Thread-Index` of a mail.
fn thread_index(mail: &str) -> Vec<u8> {
    use base64::Engine;
    let value: String = mail
        .lines()
        .skip_while(|l| !l.to_ascii_lowercase().starts_with("thread-index:"))
        .enumerate()
        .take_while(|(i, l)| *i == 0 || l.starts_with(' ') || l.starts_with('\t'))
        .map(|(i, l)| {
            if i == 0 {
                &l["thread-index:".len()..]
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .concat();
    base64::engine::general_purpose::STANDARD
        .decode(value.split_whitespace().collect::<String>())
        .unwrap_or_else(|e| panic!("Thread-Index `{value}`: {e}"))
}

fn outlook_threads_by_its_conversation_index(backend: Backend) {
    use base64::Engine;
    let env = Env::new(backend).with_acme();
    // An Outlook header block: reserved byte, 40 bits of time, the conversation's GUID.
    let mut customers = vec![0x01, 0x01, 0xdc, 0x93, 0x47, 0x4b];
    customers.extend_from_slice(b"conversation-id!");
    let encoded = base64::engine::general_purpose::STANDARD.encode(&customers);
    let first =
        Msg::new("jane@acme.example", "Printer", "o1@acme").header("Thread-Index", &encoded);
    let ticket = ticket_of(&env.ingest(&first.bytes()));
    let ack = notification(&env, "ticket_received", "jane@acme.example");
    let index = thread_index(&ack);
    assert_eq!(index.len(), customers.len() + 5, "one child block");
    assert_eq!(&index[..customers.len()], &customers[..]);
    assert!(
        ack.lines().any(|l| l.starts_with("Thread-Topic: Printer")),
        "{ack}"
    );

    // A relay dropped References, the tag and the subject: the conversation remains.
    let mut later = index.clone();
    later.extend_from_slice(&[0, 0, 0, 1, 0]);
    let later = base64::engine::general_purpose::STANDARD.encode(&later);
    let reply =
        Msg::new("jane@acme.example", "RE: status?", "o2@acme").header("Thread-Index", &later);
    let report = env.ingest(&reply.bytes());
    assert_eq!(outcome(&report), "appended", "{report}");
    assert_eq!(ticket_of(&report), ticket);

    // The same conversation index from a stranger proves nothing.
    let copied = Msg::new("mallory@elsewhere.example", "RE: status?", "o3@elsewhere")
        .header("Thread-Index", &later);
    let report = env.ingest(&copied.bytes());
    assert_eq!(outcome(&report), "created", "{report}");
}

fn another_helpdesks_number_threads_a_later_reply(backend: Backend) {
    let env = Env::new(backend).with_acme();
    let first = Msg::new("jane@acme.example", "[Ticket#12345] Printer", "f1@acme");
    let ticket = ticket_of(&env.ingest(&first.bytes()));
    let reply = Msg::new(
        "jane@acme.example",
        "AW: [Ticket#12345] still broken",
        "f2@acme",
    );
    let report = env.ingest(&reply.bytes());
    assert_eq!(outcome(&report), "appended", "{report}");
    assert_eq!(ticket_of(&report), ticket);
    let other = Msg::new("jane@acme.example", "[Ticket#99999] Scanner", "f3@acme");
    let report = env.ingest(&other.bytes());
    assert_eq!(outcome(&report), "created", "{report}");
    let stranger = Msg::new(
        "mallory@elsewhere.example",
        "[Ticket#12345] hi",
        "f4@elsewhere",
    );
    let report = env.ingest(&stranger.bytes());
    assert_eq!(outcome(&report), "created", "{report}");
    assert_ne!(ticket_of(&report), ticket);
}

on_both_backends!(
    a_reply_to_the_keyed_address_threads_and_a_copied_or_changed_token_does_not,
    a_colleague_may_use_the_keyed_address_only_when_the_organization_shares,
    outlook_threads_by_its_conversation_index,
    another_helpdesks_number_threads_a_later_reply,
);
