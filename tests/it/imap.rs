//! `ticketd run` against a real Dovecot: IDLE, backlogs, crashes, server restarts, UIDVALIDITY, bad passwords, TLS.

use std::time::Duration;

use crate::support::dovecot::Dovecot;
use crate::support::{Backend, Env, Msg, wait_until};

const USER: &str = "support";
const PASSWORD: &str = "s3cret-imap";

/// An installation with `extra` as its configuration and no Maildir source, so only the IMAP
/// source runs (`Env::with_config` puts `extra` first, so `maildir = []` stays top-level).
fn imap_only(extra: &str) -> Env {
    Env::with_config(Backend::Sqlite, &format!("maildir = []\n\n{extra}"))
}

/// An installation reading the Dovecot user's INBOX (plain IMAP on loopback), no Maildir source.
fn env_for(dovecot: &Dovecot, imap_extra: &str) -> Env {
    imap_only(&format!(
        "[daemon]\nidle_timeout_secs = 60\npoll_interval_secs = 1\nreconnect_max_secs = 1\nauth_failure_backoff_secs = 1\nconnect_timeout_secs = 5\n\n\
             [[imap]]\nhost = \"{}\"\nport = {}\nsecurity = \"plain\"\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n{imap_extra}\n",
        dovecot.host(),
        dovecot.plain_port()
    ))
}

fn message(n: usize) -> Vec<u8> {
    Msg::new(
        &format!("Customer {n} <c{n}@acme.example>"),
        &format!("Question {n}"),
        &format!("q{n}@acme.example"),
    )
    .bytes()
}

fn messages(range: std::ops::Range<usize>) -> Vec<Vec<u8>> {
    range.map(message).collect()
}

#[test]
fn a_message_appended_while_the_daemon_idles_becomes_a_ticket() {
    let dovecot = Dovecot::start(&[(USER, PASSWORD)]);
    let env = env_for(&dovecot, "");
    let daemon = env.start_daemon();
    wait_until(Duration::from_secs(10), "the daemon to idle", || {
        daemon.log_text().contains("idle=true")
    });
    dovecot.append(USER, "INBOX", &[message(1)]);
    wait_until(Duration::from_secs(10), "the ticket", || {
        env.tickets().len() == 1
    });
    wait_until(Duration::from_secs(5), "the message to move", || {
        dovecot.count(USER, "Processed") == 1
    });
    assert_eq!(dovecot.count(USER, "INBOX"), 0);
    let processed = dovecot.messages(USER, "Processed");
    assert!(
        processed[0].flags.iter().any(|f| f.contains("Seen")),
        "{:?}",
        processed[0].flags
    );
}

#[test]
fn a_backlog_of_1000_messages_is_ingested_exactly_once_and_moved_to_processed() {
    let dovecot = Dovecot::start(&[(USER, PASSWORD)]);
    dovecot.append(USER, "INBOX", &messages(0..1000));
    let env = env_for(&dovecot, "");
    let _daemon = env.start_daemon();
    wait_until(
        Duration::from_secs(120),
        "1000 messages in Processed",
        || dovecot.count(USER, "Processed") == 1000,
    );
    assert_eq!(dovecot.count(USER, "INBOX"), 0);
    let tickets = env.tickets();
    assert_eq!(tickets.len(), 1000);
    let mut subjects: Vec<String> = tickets
        .iter()
        .map(|t| t["subject"].as_str().unwrap_or("").to_string())
        .collect();
    subjects.sort();
    subjects.dedup();
    assert_eq!(subjects.len(), 1000, "every message once");
    assert!(
        dovecot
            .messages(USER, "Processed")
            .iter()
            .all(|m| m.flags.iter().any(|f| f.contains("Seen")))
    );
}

#[test]
fn killed_mid_batch_and_restarted_every_message_is_a_ticket_exactly_once() {
    let dovecot = Dovecot::start(&[(USER, PASSWORD)]);
    dovecot.append(USER, "INBOX", &messages(0..400));
    let env = env_for(&dovecot, "");
    let mut daemon = env.start_daemon();
    wait_until(Duration::from_secs(60), "some tickets", || {
        !env.tickets().is_empty()
    });
    daemon.kill();
    let before = env.tickets().len();
    assert!(
        before < 400,
        "the kill came too late to test anything ({before} done)"
    );
    let _again = env.start_daemon();
    wait_until(Duration::from_secs(120), "INBOX to empty", || {
        dovecot.count(USER, "INBOX") == 0
    });
    wait_until(Duration::from_secs(10), "all tickets", || {
        env.tickets().len() >= 400
    });
    assert_eq!(env.tickets().len(), 400, "no message twice");
    assert_eq!(dovecot.count(USER, "Processed"), 400);
}

#[test]
fn the_daemon_reconnects_after_dovecot_restarts() {
    let mut dovecot = Dovecot::start(&[(USER, PASSWORD)]);
    let env = env_for(&dovecot, "");
    let daemon = env.start_daemon();
    dovecot.append(USER, "INBOX", &[message(1)]);
    // Generous limits: the whole suite shares two cores with this Dovecot.
    wait_until(Duration::from_secs(30), "the first ticket", || {
        env.tickets().len() == 1
    });
    dovecot.stop();
    wait_until(Duration::from_secs(30), "the daemon to notice", || {
        daemon.log_text().contains("retrying in")
    });
    dovecot.restart();
    dovecot.append(USER, "INBOX", &[message(2)]);
    wait_until(Duration::from_secs(30), "the second ticket", || {
        env.tickets().len() == 2
    });
}

#[test]
fn a_uidvalidity_change_rescans_the_mailbox_without_doubling_anything() {
    let dovecot = Dovecot::start(&[(USER, PASSWORD)]);
    let env = env_for(&dovecot, "");
    {
        let mut daemon = env.start_daemon();
        dovecot.append(USER, "INBOX", &messages(0..3));
        wait_until(Duration::from_secs(20), "three tickets", || {
            env.tickets().len() == 3
        });
        wait_until(Duration::from_secs(5), "INBOX to empty", || {
            dovecot.count(USER, "INBOX") == 0
        });
        daemon.signal("TERM");
        daemon.wait_exit(Duration::from_secs(10));
    }
    // New mail arrives with low UIDs under a new UIDVALIDITY, with a copy of one already handled.
    let old = dovecot.uid_validity(USER, "INBOX");
    dovecot.append(USER, "INBOX", &[message(3), message(4), message(0)]);
    dovecot.reset_uid_validity(USER, "INBOX");
    assert_ne!(dovecot.uid_validity(USER, "INBOX"), old);
    let daemon = env.start_daemon();
    wait_until(Duration::from_secs(20), "INBOX to empty", || {
        dovecot.count(USER, "INBOX") == 0
    });
    assert_eq!(
        env.tickets().len(),
        5,
        "two new tickets, the copy recognized"
    );
    assert!(
        daemon.log_text().contains("UIDVALIDITY changed"),
        "{}",
        daemon.log_text()
    );
}

#[test]
fn a_wrong_password_is_a_clear_error_and_the_daemon_keeps_trying() {
    let dovecot = Dovecot::start(&[(USER, PASSWORD)]);
    let env = imap_only(&format!(
        "[daemon]\nauth_failure_backoff_secs = 1\n\n[[imap]]\nhost = \"{}\"\nport = {}\nsecurity = \"plain\"\nuser = \"{USER}\"\npassword = \"wrong\"\n",
        dovecot.host(),
        dovecot.plain_port()
    ));
    let mut daemon = env.start_daemon();
    wait_until(Duration::from_secs(10), "two authentication errors", || {
        daemon
            .log_text()
            .matches("authentication as support failed")
            .count()
            >= 2
    });
    let log = daemon.log_text();
    assert!(log.contains("check the user and password"), "{log}");
    daemon.signal("TERM");
    assert_eq!(
        daemon.wait_exit(Duration::from_secs(10)).0,
        Some(0),
        "still alive and stops cleanly"
    );
}

#[test]
fn tls_with_a_configured_ca_is_verified_and_works() {
    let dovecot = Dovecot::start(&[(USER, PASSWORD)]);
    let env = imap_only(&format!(
        "[[imap]]\nhost = \"{}\"\nport = {}\nsecurity = \"tls\"\nca_file = \"{}\"\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n",
        dovecot.tls_host(),
        dovecot.tls_port(),
        dovecot.ca_pem_path().display()
    ));
    let _daemon = env.start_daemon();
    dovecot.append(USER, "INBOX", &[message(1)]);
    wait_until(Duration::from_secs(10), "the ticket over TLS", || {
        env.tickets().len() == 1
    });
}

#[test]
fn tls_without_trusting_the_ca_is_refused() {
    let dovecot = Dovecot::start(&[(USER, PASSWORD)]);
    let env = imap_only(&format!(
        "[daemon]\nreconnect_max_secs = 1\n\n[[imap]]\nhost = \"{}\"\nport = {}\nsecurity = \"tls\"\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n",
        dovecot.tls_host(),
        dovecot.tls_port(),
    ));
    let daemon = env.start_daemon();
    dovecot.append(USER, "INBOX", &[message(1)]);
    wait_until(Duration::from_secs(10), "a TLS error", || {
        daemon.log_text().contains("TLS with")
    });
    assert!(env.tickets().is_empty());
}

#[test]
fn starttls_upgrades_the_plain_port() {
    let dovecot = Dovecot::start(&[(USER, PASSWORD)]);
    let env = imap_only(&format!(
        "[[imap]]\nhost = \"{}\"\nport = {}\nsecurity = \"starttls\"\nca_file = \"{}\"\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\nauth = \"plain\"\n",
        dovecot.tls_host(),
        dovecot.plain_port(),
        dovecot.ca_pem_path().display()
    ));
    let _daemon = env.start_daemon();
    dovecot.append(USER, "INBOX", &[message(1)]);
    wait_until(Duration::from_secs(10), "the ticket over STARTTLS", || {
        env.tickets().len() == 1
    });
}

#[test]
fn a_message_over_the_size_limit_is_fetched_only_in_part_and_held() {
    let dovecot = Dovecot::start(&[(USER, PASSWORD)]);
    let big = Msg::new("Jane <jane@acme.example>", "Huge log", "huge@acme.example")
        .body(&"0123456789abcdef\n".repeat(10_000))
        .bytes();
    dovecot.append(USER, "INBOX", &[big.clone(), message(1)]);
    let env = env_for(&dovecot, "");
    let config = std::fs::read_to_string(&env.config).expect("config");
    std::fs::write(
        &env.config,
        format!("{config}\n[limits]\nmax_message_bytes = 20000\n"),
    )
    .expect("config");
    let _daemon = env.start_daemon();
    wait_until(Duration::from_secs(30), "both messages handled", || {
        dovecot.count(USER, "Processed") == 2
    });
    assert_eq!(env.tickets().len(), 1, "the ordinary one is a ticket");
    let held = env.held();
    assert_eq!(held[0]["reason_code"], "too_large");
    let id = held[0]["id"].as_i64().expect("id").to_string();
    let kept = env.run(&["held", "show", &id, "--raw"]);
    assert_eq!(
        kept.stdout.len(),
        20_000,
        "only the beginning was fetched and kept"
    );
    assert_eq!(kept.stdout, big[..20_000]);
}
