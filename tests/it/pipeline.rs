//! End-to-end: messages piped into `ticketd ingest`, inspected with `ticketd ticket|held`, on SQLite and PostgreSQL.

use crate::on_both_backends;
use crate::support::{Backend, Env, Msg, outcome, ticket_of};

const JANE: &str = "Jane Doe <jane@acme.example>";

on_both_backends!(
    new_ticket_is_created_with_requester_organization_and_queue,
    reply_by_in_reply_to_appends_to_the_ticket,
    reply_by_subject_tag_appends_to_the_ticket,
    stranger_copying_tag_or_message_id_gets_a_ticket_of_their_own,
    colleague_follows_up_only_when_the_organization_shares_tickets,
    customer_reply_reopens_pending_and_solved_tickets,
    reply_to_closed_ticket_opens_a_linked_ticket,
    duplicate_delivery_changes_nothing,
    same_message_id_to_two_queue_addresses_is_one_message,
    locked_contact_is_held_then_released_after_unlock,
    deactivated_contact_and_missing_role_are_held,
    unknown_sender_policies_create_hold_and_reject,
    automatic_mail_never_opens_or_reopens_a_ticket,
    copied_colleagues_become_participants,
    oversized_message_is_held_and_kept,
    large_raw_message_is_kept_in_the_data_directory,
    message_the_mime_parser_cannot_read_is_held_not_a_crash,
    audit_log_records_creation_status_and_holds,
    agent_reply_appends_and_sets_pending,
    recipient_address_routes_to_its_queue,
    operators_assign_prioritize_note_and_merge_through_the_same_service,
    client_priority_headers_set_a_new_tickets_priority,
);

fn new_ticket_is_created_with_requester_organization_and_queue(backend: Backend) {
    let env = Env::new(backend).with_acme();
    let report = env.ingest(&Msg::new(JANE, "Printer on fire", "m1@acme.example").bytes());
    assert_eq!(outcome(&report), "created", "{report}");
    assert!(report["reason"].is_null());
    let id = ticket_of(&report);
    let ticket = env.ticket(id);
    assert_eq!(ticket["status"], "new");
    assert_eq!(ticket["subject"], "Printer on fire");
    assert_eq!(ticket["requester"], "jane@acme.example");
    assert_eq!(ticket["organization"], "Acme");
    assert_eq!(ticket["queue"], "support");
    assert_eq!(ticket["message_count"], 1);
    let message = &ticket["messages"][0];
    assert_eq!(message["author"]["address"], "jane@acme.example");
    assert_eq!(message["author"]["name"], "Jane Doe");
    assert_eq!(message["direction"], "inbound");
    assert_eq!(message["internal"], false);
    assert_eq!(message["visible_text"], "Hello,\n\nplease help.");

    let list = env.tickets();
    assert_eq!(list.len(), 1);
    for field in [
        "id",
        "status",
        "subject",
        "requester",
        "organization",
        "queue",
        "message_count",
    ] {
        assert!(
            list[0].get(field).is_some(),
            "ticket list lacks {field}: {}",
            list[0]
        );
    }
    let by_org = env.json(&[
        "ticket", "list", "--org", "Acme", "--status", "new", "--json",
    ]);
    assert_eq!(by_org.as_array().map(Vec::len), Some(1));
    let none = env.json(&["ticket", "list", "--status", "closed", "--json"]);
    assert_eq!(none.as_array().map(Vec::len), Some(0));
}

fn reply_by_in_reply_to_appends_to_the_ticket(backend: Backend) {
    let env = Env::new(backend).with_acme();
    let id = ticket_of(&env.ingest(&Msg::new(JANE, "Printer", "m1@acme.example").bytes()));
    let reply = Msg::new(JANE, "Re: Printer", "m2@acme.example")
        .in_reply_to("m1@acme.example")
        .body("It works again.\n\nOn Mon, 23 Nov 2026 at 10:00, Support <support@example.com> wrote:\n> Hello,\n> please help.\n");
    let report = env.ingest(&reply.bytes());
    assert_eq!(outcome(&report), "appended", "{report}");
    assert_eq!(ticket_of(&report), id);
    let ticket = env.ticket(id);
    assert_eq!(ticket["message_count"], 2);
    assert_eq!(ticket["messages"][1]["visible_text"], "It works again.");
    assert_eq!(env.tickets().len(), 1);
}

fn reply_by_subject_tag_appends_to_the_ticket(backend: Backend) {
    let env = Env::new(backend).with_acme();
    let id = ticket_of(&env.ingest(&Msg::new(JANE, "Printer", "m1@acme.example").bytes()));
    let subject = format!("RE: [Support #{id}] Printer");
    let report = env.ingest(&Msg::new(JANE, &subject, "m2@acme.example").bytes());
    assert_eq!(outcome(&report), "appended", "{report}");
    assert_eq!(ticket_of(&report), id);
}

fn stranger_copying_tag_or_message_id_gets_a_ticket_of_their_own(backend: Backend) {
    let env = Env::new(backend).with_acme();
    let id = ticket_of(&env.ingest(&Msg::new(JANE, "Printer", "m1@acme.example").bytes()));
    let tagged = Msg::new(
        "Eve <eve@evil.example>",
        &format!("Re: [Support #{id}] Printer"),
        "e1@evil.example",
    );
    let report = env.ingest(&tagged.bytes());
    assert_eq!(outcome(&report), "created", "{report}");
    let eve_ticket = ticket_of(&report);
    assert_ne!(eve_ticket, id);
    // The copied tag does not follow the stranger into their own ticket.
    assert_eq!(env.ticket(eve_ticket)["subject"], "Re: Printer");

    let threaded = Msg::new("Eve <eve@evil.example>", "Re: Printer", "e2@evil.example")
        .in_reply_to("m1@acme.example");
    let report = env.ingest(&threaded.bytes());
    assert_eq!(outcome(&report), "created", "{report}");
    assert_ne!(ticket_of(&report), id);
    assert_eq!(
        env.ticket(id)["message_count"],
        1,
        "Jane's ticket must stay untouched"
    );
}

fn colleague_follows_up_only_when_the_organization_shares_tickets(backend: Backend) {
    let env = Env::new(backend);
    env.ok(&["org", "add", "Private", "--domain", "private.example"]);
    env.ok(&[
        "org",
        "add",
        "Shared",
        "--domain",
        "shared.example",
        "--shares-tickets",
    ]);
    let private =
        ticket_of(&env.ingest(&Msg::new("a@private.example", "Q", "p1@private.example").bytes()));
    let shared =
        ticket_of(&env.ingest(&Msg::new("a@shared.example", "Q", "s1@shared.example").bytes()));

    let colleague = Msg::new(
        "b@private.example",
        &format!("Re: [Support #{private}] Q"),
        "p2@private.example",
    );
    let report = env.ingest(&colleague.bytes());
    assert_eq!(outcome(&report), "created");
    assert_ne!(ticket_of(&report), private);

    let colleague = Msg::new(
        "b@shared.example",
        &format!("Re: [Support #{shared}] Q"),
        "s2@shared.example",
    );
    let report = env.ingest(&colleague.bytes());
    assert_eq!(outcome(&report), "appended", "{report}");
    assert_eq!(ticket_of(&report), shared);
}

fn customer_reply_reopens_pending_and_solved_tickets(backend: Backend) {
    let env = Env::new(backend).with_acme();
    let id = ticket_of(&env.ingest(&Msg::new(JANE, "Printer", "m1@acme.example").bytes()));
    for (n, status) in ["pending", "solved"].into_iter().enumerate() {
        env.ok(&["ticket", "set-status", &id.to_string(), status]);
        let reply = Msg::new(JANE, "Re: Printer", &format!("r{n}@acme.example"))
            .in_reply_to("m1@acme.example");
        let report = env.ingest(&reply.bytes());
        assert_eq!(outcome(&report), "appended");
        assert_eq!(
            env.ticket(id)["status"],
            "open",
            "after a reply on a {status} ticket"
        );
    }
}

fn reply_to_closed_ticket_opens_a_linked_ticket(backend: Backend) {
    let env = Env::new(backend).with_acme();
    let id = ticket_of(&env.ingest(&Msg::new(JANE, "Printer", "m1@acme.example").bytes()));
    env.ok(&["ticket", "set-status", &id.to_string(), "closed"]);
    let reply = Msg::new(JANE, "Re: Printer", "m2@acme.example").in_reply_to("m1@acme.example");
    let report = env.ingest(&reply.bytes());
    assert_eq!(outcome(&report), "created", "{report}");
    let new_id = ticket_of(&report);
    assert_ne!(new_id, id);
    assert_eq!(env.ticket(new_id)["follows_up"], id);
    assert_eq!(env.ticket(id)["status"], "closed");
    assert_eq!(env.ticket(id)["message_count"], 1);
}

fn duplicate_delivery_changes_nothing(backend: Backend) {
    let env = Env::new(backend).with_acme();
    let raw = Msg::new(JANE, "Printer", "m1@acme.example").bytes();
    let first = env.ingest(&raw);
    let again = env.ingest(&raw);
    assert_eq!(outcome(&again), "duplicate", "{again}");
    assert_eq!(again["ticket"], first["ticket"]);
    assert_eq!(env.tickets().len(), 1);
    assert_eq!(env.ticket(ticket_of(&first))["message_count"], 1);

    // Several files in one call: each reported, the copy found.
    let path = env.path().join("m.eml");
    std::fs::write(&path, &raw).expect("write");
    let out = env.ok(&[
        "ingest",
        "--json",
        path.to_str().expect("utf-8 path"),
        path.to_str().expect("utf-8 path"),
    ]);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(
        lines
            .iter()
            .all(|l| l["outcome"] == "duplicate" && l["file"].as_str().is_some())
    );
}

fn same_message_id_to_two_queue_addresses_is_one_message(backend: Backend) {
    let env = Env::with_config(
        backend,
        "[[queues]]\nname = \"support\"\naddresses = [\"support@example.com\"]\n\n[[queues]]\nname = \"billing\"\naddresses = [\"billing@example.com\"]\nallowed_roles = [\"admin\", \"support\", \"billing\"]\n",
    )
    .with_acme();
    let msg = Msg::new(JANE, "Invoice and printer", "both@acme.example")
        .header("Cc", "billing@example.com");
    let first = env.ingest(
        &msg.clone()
            .add_header("Delivered-To", "support@example.com")
            .bytes(),
    );
    let second = env.ingest(
        &msg.add_header("Delivered-To", "billing@example.com")
            .bytes(),
    );
    assert_eq!(outcome(&first), "created");
    assert_eq!(outcome(&second), "duplicate", "{second}");
    assert_eq!(env.tickets().len(), 1);
}

fn locked_contact_is_held_then_released_after_unlock(backend: Backend) {
    let env = Env::new(backend).with_acme();
    env.ok(&["contact", "lock", "jane@acme.example"]);
    let report = env.ingest(&Msg::new(JANE, "Printer", "m1@acme.example").bytes());
    assert_eq!(outcome(&report), "held", "{report}");
    assert!(report["ticket"].is_null());
    assert!(
        report["reason"].as_str().unwrap_or("").contains("locked"),
        "{report}"
    );
    assert!(env.tickets().is_empty());
    let held = env.held();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0]["reason_code"], "locked");
    let held_id = held[0]["id"].as_i64().expect("held id").to_string();

    let still = env.ok(&["held", "release", &held_id]);
    assert!(still.contains("still held"), "{still}");
    assert!(env.tickets().is_empty());

    env.ok(&["contact", "unlock", "jane@acme.example"]);
    let released = env.ok(&["held", "release", &held_id]);
    assert!(released.contains("created ticket #"), "{released}");
    assert_eq!(env.tickets().len(), 1);
    assert!(env.held().is_empty());
    let again = env.run(&["held", "release", &held_id]);
    assert!(
        !again.status.success(),
        "a released message cannot be released twice"
    );
}

fn deactivated_contact_and_missing_role_are_held(backend: Backend) {
    let env = Env::new(backend).with_acme();
    env.ok(&[
        "contact",
        "add",
        "bill@acme.example",
        "--org",
        "Acme",
        "--role",
        "billing",
    ]);
    env.ok(&["contact", "deactivate", "jane@acme.example"]);
    let report = env.ingest(&Msg::new(JANE, "Printer", "m1@acme.example").bytes());
    assert_eq!(outcome(&report), "held");
    assert!(
        report["reason"]
            .as_str()
            .unwrap_or("")
            .contains("deactivated"),
        "{report}"
    );
    let report = env.ingest(&Msg::new("bill@acme.example", "Printer", "b1@acme.example").bytes());
    assert_eq!(outcome(&report), "held");
    assert!(
        report["reason"]
            .as_str()
            .unwrap_or("")
            .contains("may not open tickets"),
        "{report}"
    );
    let codes: Vec<String> = env
        .held()
        .iter()
        .map(|h| h["reason_code"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(codes, vec!["inactive", "role_not_permitted"]);
    assert!(env.tickets().is_empty());
}

fn unknown_sender_policies_create_hold_and_reject(backend: Backend) {
    let env = Env::new(backend).with_acme();
    let report =
        env.ingest(&Msg::new("Newbie <new@acme.example>", "Hi", "n1@acme.example").bytes());
    assert_eq!(outcome(&report), "created");
    let contacts = env.json(&["contact", "list", "--org", "Acme", "--json"]);
    let newbie = contacts
        .as_array()
        .and_then(|c| c.iter().find(|c| c["email"] == "new@acme.example"))
        .cloned()
        .expect("new contact joined Acme by its domain");
    assert_eq!(newbie["state"], "active");
    assert_eq!(newbie["roles"], serde_json::json!(["support"]));
    assert_eq!(newbie["organization"], "Acme");
    assert_eq!(newbie["name"], "Newbie");

    for (policy, code) in [("hold", "unknown_sender"), ("reject", "rejected")] {
        let env = Env::with_config(
            backend,
            &format!("[tickets]\nunknown_sender = \"{policy}\"\n"),
        );
        let report =
            env.ingest(&Msg::new("who@nowhere.example", "Hi", "w1@nowhere.example").bytes());
        assert_eq!(outcome(&report), "held", "{policy}: {report}");
        assert_eq!(env.held()[0]["reason_code"], code);
        let contacts = env.json(&["contact", "list", "--json"]);
        assert_eq!(
            contacts.as_array().map(Vec::len),
            Some(0),
            "{policy} creates no contact"
        );
        // An operator's release approves the sender.
        let id = env.held()[0]["id"].as_i64().expect("id").to_string();
        assert!(env.ok(&["held", "release", &id]).contains("created ticket"));
    }
}

fn automatic_mail_never_opens_or_reopens_a_ticket(backend: Backend) {
    let env = Env::new(backend).with_acme();
    let id = ticket_of(&env.ingest(&Msg::new(JANE, "Printer", "m1@acme.example").bytes()));
    env.ok(&["ticket", "set-status", &id.to_string(), "solved"]);
    let kinds: [(&str, Msg); 5] = [
        (
            "auto_reply",
            Msg::new(JANE, "Out of Office: Printer", "a1@acme.example")
                .header("Auto-Submitted", "auto-replied"),
        ),
        (
            "auto_reply",
            Msg::new(JANE, "Re: Printer", "a2@acme.example").header("Precedence", "bulk"),
        ),
        (
            "bounce",
            Msg::new(
                "MAILER-DAEMON@mx.acme.example",
                "Undelivered Mail Returned to Sender",
                "b1@mx.acme.example",
            ),
        ),
        (
            "loop",
            Msg::new(
                "Support <support@example.com>",
                "Re: Printer",
                "l1@example.com",
            ),
        ),
        (
            "spam",
            Msg::new(JANE, "Cheap printers", "s1@acme.example").header("X-Spam-Flag", "YES"),
        ),
    ];
    for (n, (kind, msg)) in kinds.iter().enumerate() {
        // Unthreaded: held with its reason.
        let report = env.ingest(&msg.clone().bytes());
        assert_eq!(outcome(&report), "held", "{kind}: {report}");
        // Threaded onto the solved ticket: recorded there, status unchanged.
        let threaded = msg
            .clone()
            .header("Message-ID", &format!("<t{n}@acme.example>"))
            .in_reply_to("m1@acme.example");
        let report = env.ingest(&threaded.bytes());
        if *kind == "bounce" || *kind == "loop" {
            // Neither a mailer daemon nor our own address is a participant.
            assert_eq!(outcome(&report), "held", "{kind}: {report}");
        } else {
            assert_eq!(outcome(&report), "ignored", "{kind}: {report}");
            assert_eq!(ticket_of(&report), id);
        }
    }
    assert_eq!(env.tickets().len(), 1, "no automatic mail opened a ticket");
    let ticket = env.ticket(id);
    assert_eq!(ticket["status"], "solved", "no automatic mail reopened it");
    let classes: Vec<&str> = ticket["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["classification"].as_str())
        .collect();
    assert_eq!(classes, vec!["normal", "auto_reply", "auto_reply", "spam"]);
    let held: Vec<String> = env
        .held()
        .iter()
        .map(|h| h["reason_code"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        held,
        vec![
            "auto_reply",
            "auto_reply",
            "bounce",
            "bounce",
            "loop",
            "loop",
            "spam"
        ]
    );
}

fn copied_colleagues_become_participants(backend: Backend) {
    let env = Env::new(backend).with_acme();
    let msg = Msg::new(JANE, "Printer", "m1@acme.example").header(
        "Cc",
        "Bob <bob@acme.example>, eve@other.example, alex@example.com, support@example.com",
    );
    let id = ticket_of(&env.ingest(&msg.bytes()));
    let participants = env.ticket(id)["participants"].clone();
    assert_eq!(
        participants,
        serde_json::json!(["jane@acme.example", "bob@acme.example"])
    );
    // Bob, now a participant, may reply although Acme does not share tickets.
    let reply = Msg::new("bob@acme.example", "Re: Printer", "b1@acme.example")
        .in_reply_to("m1@acme.example");
    assert_eq!(outcome(&env.ingest(&reply.bytes())), "appended");
}

fn oversized_message_is_held_and_kept(backend: Backend) {
    let env = Env::with_config(backend, "[limits]\nmax_message_bytes = 20000\n").with_acme();
    let big =
        Msg::new(JANE, "Huge log", "big@acme.example").body(&"0123456789abcdef\n".repeat(4000));
    let raw = big.bytes();
    let report = env.ingest(&raw);
    assert_eq!(outcome(&report), "held", "{report}");
    assert!(
        report["reason"]
            .as_str()
            .unwrap_or("")
            .contains("max_message_bytes"),
        "{report}"
    );
    let held = env.held();
    assert_eq!(held[0]["reason_code"], "too_large");
    assert_eq!(held[0]["sender"], "jane@acme.example");
    assert_eq!(held[0]["subject"], "Huge log");
    let id = held[0]["id"].as_i64().expect("id").to_string();
    // Its headers and beginning are kept, no more than the limit; and its size.
    let kept = env.run(&["held", "show", &id, "--raw"]);
    assert_eq!(
        kept.stdout,
        raw[..20_000],
        "the beginning is kept byte for byte"
    );
    let shown = env.ok(&["held", "show", &id]);
    assert!(
        shown.contains(&format!(
            "{} bytes; only the first 20000 were kept",
            raw.len()
        )),
        "{shown}"
    );
    // Delivered again, it is recognized; released, what was kept becomes the ticket.
    assert_eq!(outcome(&env.ingest(&raw)), "duplicate");
    assert!(env.ok(&["held", "release", &id]).contains("created ticket"));
}

fn large_raw_message_is_kept_in_the_data_directory(backend: Backend) {
    let env = Env::with_config(backend, "[tickets]\nunknown_sender = \"hold\"\n");
    let large = Msg::new(
        "Stranger <stranger@other.example>",
        "Logs",
        "logs@other.example",
    )
    .body(&"0123456789abcdef\n".repeat(30_000))
    .bytes();
    assert_eq!(outcome(&env.ingest(&large)), "held");
    // Not in a database row: a file named by its hash under data/raw.
    let files: Vec<_> = walk(&env.path().join("data/raw"));
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(std::fs::read(&files[0]).expect("read"), large);
    let id = env.held()[0]["id"].as_i64().expect("id").to_string();
    let kept = env.run(&["held", "show", &id, "--raw"]);
    assert_eq!(kept.stdout, large, "the raw message is kept byte for byte");
    assert_eq!(outcome(&env.ingest(&large)), "duplicate");
    assert!(env.ok(&["held", "release", &id]).contains("created ticket"));
}

/// Every file below `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.path().is_dir() {
            files.extend(walk(&entry.path()));
        } else {
            files.push(entry.path());
        }
    }
    files
}

/// A structure that trips an internal assertion of the MIME parser (found by
/// fuzzing; it panics where debug assertions are on, as in these tests).
const MIME_PARSER_ASSERTION: &[u8] = b"From: Jane Doe <jane@acme.example>\r\nTo: support@example.com\r\n\
Subject: Broken forward\r\nMessage-ID: <broken@acme.example>\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: message/rfc822\r\n\r\n\
--b1-nc\nContent-Type: message/rfc822\r\nne@a\xff\xff\xffy.\r\n\r\n--b1--e.\r\n me.\r\n\r\n--b1--\r\n";

fn message_the_mime_parser_cannot_read_is_held_not_a_crash(backend: Backend) {
    let env = Env::new(backend).with_acme();
    let report = env.ingest(MIME_PARSER_ASSERTION);
    if !cfg!(debug_assertions) {
        // Without the assertion the parser reads it as best it can.
        assert_eq!(outcome(&report), "created", "{report}");
        return;
    }
    assert_eq!(outcome(&report), "held", "{report}");
    let reason = report["reason"].as_str().unwrap_or("");
    assert!(reason.contains("MIME structure"), "{report}");
    let held = env.held();
    assert_eq!(held[0]["reason_code"], "unprocessable");
    assert_eq!(held[0]["sender"], "jane@acme.example");
    assert_eq!(held[0]["subject"], "Broken forward");
    let id = held[0]["id"].as_i64().expect("id").to_string();
    assert!(env.ok(&["held", "release", &id]).contains("created ticket"));
    let ticket = env.tickets()[0].clone();
    assert_eq!(ticket["subject"], "Broken forward");
    // The pipeline is still alive for the next message.
    let next = env.ingest(&Msg::new(JANE, "Next", "next@acme.example").bytes());
    assert_eq!(outcome(&next), "created", "{next}");
}

fn audit_log_records_creation_status_and_holds(backend: Backend) {
    let env = Env::new(backend).with_acme();
    let id = ticket_of(
        &env.ingest(&Msg::new("Newbie <new@acme.example>", "Hi", "n1@acme.example").bytes()),
    );
    env.ok(&["ticket", "set-status", &id.to_string(), "pending"]);
    let reply =
        Msg::new("new@acme.example", "Re: Hi", "n2@acme.example").in_reply_to("n1@acme.example");
    env.ingest(&reply.bytes());
    let events = env.ticket(id)["events"].clone();
    let actions: Vec<(String, String, String)> = events
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or("").to_string(),
                e["actor"].as_str().unwrap_or("").to_string(),
                e["new_value"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        vec![
            (
                "ticket_created".to_string(),
                "new@acme.example".to_string(),
                "new".to_string()
            ),
            (
                "status_changed".to_string(),
                crate::support::OPERATOR.to_string(),
                "pending".to_string()
            ),
            (
                "status_changed".to_string(),
                "new@acme.example".to_string(),
                "open".to_string()
            ),
        ]
    );
    assert!(events[0]["at"].as_str().is_some_and(|t| t.ends_with('Z')));
}

fn agent_reply_appends_and_sets_pending(backend: Backend) {
    let env = Env::new(backend).with_acme();
    let id = ticket_of(&env.ingest(&Msg::new(JANE, "Printer", "m1@acme.example").bytes()));
    let reply = Msg::new(
        "Alex Agent <alex@example.com>",
        &format!("Re: [Support #{id}] Printer"),
        "x1@example.com",
    );
    // Nothing proves the agent wrote it: held, and the ticket unchanged.
    let forged = env.ingest(&reply.bytes());
    assert_eq!(outcome(&forged), "held", "{forged}");
    assert_eq!(env.ticket(id)["status"], "new");
    let report = env.ingest(
        &reply
            .header("Message-ID", "<x2@example.com>")
            .verified()
            .bytes(),
    );
    assert_eq!(outcome(&report), "appended", "{report}");
    let ticket = env.ticket(id);
    assert_eq!(ticket["status"], "pending");
    assert_eq!(ticket["messages"][1]["author"]["kind"], "agent");
}

fn recipient_address_routes_to_its_queue(backend: Backend) {
    let env = Env::with_config(
        backend,
        "[[queues]]\nname = \"support\"\naddresses = [\"support@example.com\"]\n\n[[queues]]\nname = \"billing\"\naddresses = [\"billing@example.com\"]\nallowed_roles = [\"admin\", \"support\", \"billing\"]\n",
    )
    .with_acme();
    let to_billing =
        Msg::new(JANE, "Invoice", "i1@acme.example").header("To", "Billing <billing@example.com>");
    let id = ticket_of(&env.ingest(&to_billing.bytes()));
    assert_eq!(env.ticket(id)["queue"], "billing");
    let elsewhere = Msg::new(JANE, "Hello", "h1@acme.example").header("To", "someone@example.org");
    let id = ticket_of(&env.ingest(&elsewhere.bytes()));
    assert_eq!(
        env.ticket(id)["queue"],
        "support",
        "the default queue takes the rest"
    );
}

fn operators_assign_prioritize_note_and_merge_through_the_same_service(backend: Backend) {
    let env = Env::new(backend).with_acme();
    env.ok(&["agent", "add", "bea@example.com", "--name", "Bea Agent"]);
    let first = ticket_of(&env.ingest(&Msg::new(JANE, "Printer", "o1@acme.example").bytes()));
    let second =
        ticket_of(&env.ingest(&Msg::new(JANE, "Printer again", "o2@acme.example").bytes()));
    let (first_s, second_s) = (first.to_string(), second.to_string());

    assert!(
        env.ok(&["ticket", "assign", &first_s, "bea@example.com"])
            .contains("assigned to bea@example.com")
    );
    assert!(
        env.ok(&["ticket", "set-priority", &first_s, "urgent"])
            .contains("normal → urgent")
    );
    let unknown = env.run(&["ticket", "assign", &first_s, "nobody@example.com"]);
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("nobody@example.com is not an agent")
    );
    let bad = env.run(&["ticket", "set-priority", &first_s, "asap"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("low, normal, high or urgent"));

    let listed = env.json(&[
        "ticket",
        "list",
        "--assignee",
        "bea@example.com",
        "--priority",
        "urgent",
        "--json",
    ]);
    let ids: Vec<i64> = listed
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|t| t["id"].as_i64())
        .collect();
    assert_eq!(ids, [first]);
    assert_eq!(listed[0]["assignee"], "bea@example.com");
    assert_eq!(listed[0]["priority"], "urgent");
    let none = env.json(&["ticket", "list", "--priority", "low", "--json"]);
    assert_eq!(none.as_array().map(Vec::len), Some(0));

    let note = env.path().join("note.txt");
    std::fs::write(&note, "Jane prefers a call.\n").expect("note");
    env.ok(&[
        "ticket",
        "note",
        &first_s,
        "--from",
        "alex@example.com",
        note.to_str().expect("path"),
    ]);
    let refused = env.run(&[
        "ticket",
        "note",
        &first_s,
        "--from",
        "jane@acme.example",
        note.to_str().expect("path"),
    ]);
    assert!(!refused.status.success(), "only agents write notes");

    env.ok(&["ticket", "merge", &second_s, &first_s]);
    let again = env.run(&["ticket", "merge", &second_s, &first_s]);
    assert!(!again.status.success(), "merged once");
    let itself = env.run(&["ticket", "merge", &first_s, &first_s]);
    assert!(String::from_utf8_lossy(&itself.stderr).contains("into itself"));

    let merged = env.ticket(second);
    assert_eq!(merged["merged_into"], first);
    assert_eq!(merged["status"], "closed");
    let ticket = env.ticket(first);
    assert_eq!(ticket["assignee"], "bea@example.com");
    assert_eq!(ticket["priority"], "urgent");
    assert!(ticket["merged_into"].is_null());
    let messages = ticket["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 3, "{messages:?}");
    let note = messages
        .iter()
        .find(|m| m["internal"] == true)
        .expect("the note");
    assert_eq!(note["visible_text"], "Jane prefers a call.");
    assert_eq!(note["author"]["kind"], "agent");
    let participants = ticket["participants"].as_array().expect("participants");
    assert!(participants.iter().any(|p| p == "jane@acme.example"));
    let events: Vec<(String, String)> = ticket["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or("").to_string(),
                e["actor"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    for action in ["assigned", "priority_changed", "merged_from"] {
        assert!(
            events.contains(&(action.to_string(), crate::support::OPERATOR.to_string())),
            "{action}: {events:?}"
        );
    }
    // The note went to the assignee only, never to Jane.
    let outbox = env.json(&["outbox", "list", "--json"]);
    let notes: Vec<&str> = outbox
        .as_array()
        .expect("outbox")
        .iter()
        .filter(|n| n["kind"] == "agent_note")
        .filter_map(|n| n["recipient"].as_str())
        .collect();
    assert_eq!(notes, ["bea@example.com"]);
}

fn client_priority_headers_set_a_new_tickets_priority(backend: Backend) {
    let env = Env::new(backend).with_acme();
    let urgent = Msg::new(JANE, "Down", "pr1@acme.example").header("X-Priority", "1 (Highest)");
    let id = ticket_of(&env.ingest(&urgent.bytes()));
    assert_eq!(
        env.ticket(id)["priority"],
        "high",
        "a customer's client asks for high, not urgent"
    );
    let low = Msg::new(JANE, "Whenever", "pr2@acme.example").header("Importance", "low");
    let id = ticket_of(&env.ingest(&low.bytes()));
    assert_eq!(env.ticket(id)["priority"], "low");
    let plain = ticket_of(&env.ingest(&Msg::new(JANE, "Question", "pr3@acme.example").bytes()));
    assert_eq!(env.ticket(plain)["priority"], "normal");
    // A customer's `#status` line is text.
    let sneaky = Msg::new(
        JANE,
        &format!("Re: [Support #{plain}] Question"),
        "pr4@acme.example",
    )
    .body("#status closed\n#assign me\n\nThanks.");
    env.ingest(&sneaky.bytes());
    let ticket = env.ticket(plain);
    assert_eq!(ticket["status"], "new");
    assert!(ticket["assignee"].is_null());
}
