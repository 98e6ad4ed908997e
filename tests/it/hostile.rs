//! One hostile message costs little: every message of the hostile set goes
//! through the binary and is ingested or held within a generous bound,
//! signs up at most 20 participants and causes at most 10 automatic mails; the
//! daemon goes on with the mail behind it.

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::hostile::{self, Hostile};
use crate::support::{Backend, Env, count_files, deliver_to_maildir, wait_until};

/// A store with one agent and the organization that owns acme.test.
fn env(extra: &str) -> Env {
    let env = Env::with_config(Backend::Sqlite, extra);
    env.ok(&["agent", "add", "agent@example.com", "--name", "Agent"]);
    env.ok(&["org", "add", "Acme", "--domain", "acme.test"]);
    env
}

/// Pipes a hostile message into `ingest --json`, written piece by piece.
fn ingest(env: &Env, message: &Hostile) -> (Value, Duration) {
    let started = Instant::now();
    let mut child = env
        .command()
        .args(["ingest", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ingest");
    let mut stdin = child.stdin.take().expect("stdin");
    std::thread::scope(|scope| {
        scope.spawn(move || {
            message.write_to(&mut |piece| {
                let _ = stdin.write_all(piece);
            });
        });
    });
    let out = child.wait_with_output().expect("wait");
    let took = started.elapsed();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}: {}",
        message.name,
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("a report");
    (report, took)
}

#[test]
fn every_hostile_message_is_ingested_or_held_quickly_and_amplifies_nothing() {
    let env = env("maildir = []\n");
    for message in hostile::all() {
        let (report, took) = ingest(&env, &message);
        let outcome = report["outcome"].as_str().unwrap_or("");
        assert!(
            outcome == "created" || outcome == "held",
            "{}: {report}",
            message.name
        );
        assert!(
            took < Duration::from_secs(30),
            "{} took {took:?}",
            message.name
        );
        let Some(ticket) = report["ticket"].as_i64() else {
            continue;
        };
        let shown = env.ticket(ticket);
        let requester = shown["requester"].as_str().unwrap_or("");
        let copied = shown["participants"]
            .as_array()
            .map_or(0, |all| all.iter().filter(|p| *p != requester).count());
        assert!(copied <= 20, "{}: {copied} participants", message.name);
        if message.name == "cc_262k_colleagues" {
            assert_eq!(
                copied, 20,
                "colleagues at the sender's domain join, twenty of them"
            );
        }
        let outbox = env.json(&["outbox", "list", "--limit", "100000", "--json"]);
        let mails: Vec<&Value> = outbox
            .as_array()
            .expect("a list")
            .iter()
            .filter(|m| m["ticket_id"].as_i64() == Some(ticket))
            .collect();
        assert!(mails.len() <= 10, "{}: {} mails", message.name, mails.len());
        for mail in mails {
            let subject = mail["subject"].as_str().unwrap_or("");
            assert!(
                subject.chars().count() <= 240,
                "{}: a subject of {} characters",
                message.name,
                subject.chars().count()
            );
        }
    }
    let held = env.held();
    let oversized = held
        .iter()
        .find(|h| h["subject"] == "oversized_684mb")
        .expect("the oversized message is held");
    assert_eq!(oversized["reason_code"], "too_large");
}

#[test]
fn the_daemon_goes_on_with_the_mail_behind_a_hostile_message() {
    let env = env(
        "[daemon]\nmaildir_poll_millis = 50\n\n[[maildir]]\npath = \"inbox\"\n\n\
         [notify]\nnotify_agents = false\n",
    );
    let daemon = env.start_daemon();
    wait_until(Duration::from_secs(10), "the daemon to start", || {
        daemon.log_text().contains("ticketd is running")
    });
    let inbox = env.path().join("inbox");
    let hostile = hostile::all()
        .into_iter()
        .find(|m| m.name == "table_cells_1m")
        .expect("a hostile message");
    deliver_to_maildir(&inbox, "1700000000.1.host", &hostile.bytes());
    deliver_to_maildir(&inbox, "1700000000.2.host", &hostile::ordinary(1));
    let started = Instant::now();
    wait_until(
        Duration::from_secs(5),
        "the ordinary message's ticket",
        || env.tickets().iter().any(|t| t["subject"] == "Printer 1"),
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    wait_until(Duration::from_secs(30), "both files to be filed", || {
        count_files(&inbox.join("cur")) == 2
    });
}
