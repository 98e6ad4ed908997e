//! `ticketd run` with a Maildir source and the Maildir outbox: the set-up a newcomer runs with no servers.

use std::time::Duration;

use crate::support::{Backend, Env, Msg, count_files, deliver_to_maildir, wait_until};

fn maildir_env() -> Env {
    Env::with_config(
        Backend::Sqlite,
        "[daemon]\nmaildir_poll_millis = 50\n\n[[maildir]]\npath = \"inbox\"\n\n[outbox]\nmaildir = \"sent\"\nretry_base_secs = 1\nmax_age_hours = 1\n",
    )
}

#[test]
fn a_message_dropped_into_the_maildir_becomes_a_ticket_and_is_acknowledged() {
    let env = maildir_env();
    let daemon = env.start_daemon();
    let inbox = env.path().join("inbox");
    deliver_to_maildir(
        &inbox,
        "1700000000.1.host",
        &Msg::new("Jane <jane@acme.example>", "Printer", "m1@acme.example").bytes(),
    );
    wait_until(Duration::from_secs(10), "the ticket", || {
        !env.tickets().is_empty()
    });
    wait_until(
        Duration::from_secs(5),
        "the message to move to cur/",
        || count_files(&inbox.join("cur")) == 1,
    );
    assert_eq!(count_files(&inbox.join("new")), 0);
    assert!(
        std::fs::read_dir(inbox.join("cur"))
            .expect("cur")
            .any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().ends_with(":2,S")))
    );
    // The acknowledgement goes to the Maildir outbox: there is no SMTP server.
    wait_until(Duration::from_secs(10), "the acknowledgement", || {
        count_files(&env.path().join("sent/new")) >= 1
    });
    let sent = std::fs::read_dir(env.path().join("sent/new"))
        .expect("sent")
        .filter_map(Result::ok)
        .next()
        .expect("a file");
    let text = std::fs::read_to_string(sent.path()).expect("read");
    assert!(text.contains("[Support #1]"), "{text}");
    assert!(text.contains("In-Reply-To: <m1@acme.example>"), "{text}");
    drop(daemon);
}

#[test]
fn input_that_is_no_message_is_kept_as_held_and_acknowledged() {
    let env = maildir_env();
    let _daemon = env.start_daemon();
    let inbox = env.path().join("inbox");
    deliver_to_maildir(&inbox, "1700000000.2.host", b"");
    wait_until(Duration::from_secs(10), "the held message", || {
        !env.held().is_empty()
    });
    assert_eq!(env.held()[0]["reason_code"], "unprocessable");
    wait_until(Duration::from_secs(5), "the file to move to cur/", || {
        count_files(&inbox.join("cur")) == 1
    });
}

#[test]
fn sigterm_stops_the_daemon_cleanly_within_ten_seconds() {
    let env = maildir_env();
    let mut daemon = env.start_daemon();
    wait_until(Duration::from_secs(10), "the daemon to start", || {
        daemon.log_text().contains("ticketd is running")
    });
    daemon.signal("TERM");
    let (code, took) = daemon.wait_exit(Duration::from_secs(10));
    assert_eq!(code, Some(0), "{}", daemon.log_text());
    assert!(took < Duration::from_secs(10));
    assert!(daemon.log_text().contains("stopped"));
}

#[test]
fn sigint_stops_the_daemon_too() {
    let env = maildir_env();
    let mut daemon = env.start_daemon();
    wait_until(Duration::from_secs(10), "the daemon to start", || {
        daemon.log_text().contains("ticketd is running")
    });
    daemon.signal("INT");
    assert_eq!(daemon.wait_exit(Duration::from_secs(10)).0, Some(0));
}

#[test]
fn json_logs_carry_a_span_per_message() {
    let env = maildir_env();
    let log = env.path().join("json.log");
    let file = std::fs::File::create(&log).expect("log");
    let mut child = env
        .command()
        .args(["--log-format", "json", "run"])
        .stderr(file)
        .spawn()
        .expect("spawn");
    deliver_to_maildir(
        &env.path().join("inbox"),
        "1700000000.3.host",
        &Msg::new("jane@acme.example", "Hi", "j1@acme.example").bytes(),
    );
    wait_until(Duration::from_secs(10), "the ticket", || {
        !env.tickets().is_empty()
    });
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).expect("read log");
    let line = text
        .lines()
        .find(|l| l.contains("message processed"))
        .unwrap_or_else(|| panic!("no message line in {text}"));
    let value: serde_json::Value = serde_json::from_str(line).expect("a JSON log line");
    let span = &value["span"];
    assert_eq!(span["message_id"], "j1@acme.example", "{line}");
    assert_eq!(span["outcome"], "created", "{line}");
    assert_eq!(span["ticket"], 1, "{line}");
}

#[test]
fn two_daemons_on_one_maildir_take_each_message_once_and_log_no_retries() {
    let env = maildir_env();
    let first = env.start_daemon_wrapped(&[], "first.log");
    let second = env.start_daemon_wrapped(&[], "second.log");
    for daemon in [&first, &second] {
        wait_until(Duration::from_secs(10), "the daemons to start", || {
            daemon.log_text().contains("ticketd is running")
        });
    }
    let inbox = env.path().join("inbox");
    let count = 200;
    for n in 0..count {
        deliver_to_maildir(
            &inbox,
            &format!("1700000000.{n}.host"),
            &Msg::new(
                &format!("Customer {n} <c{n}@acme.example>"),
                &format!("Question {n}"),
                &format!("two{n}@acme.example"),
            )
            .bytes(),
        );
    }
    wait_until(Duration::from_secs(60), "every message filed", || {
        count_files(&inbox.join("cur")) == count
    });
    assert_eq!(count_files(&inbox.join("new")), 0);
    let tickets = env.tickets();
    assert_eq!(tickets.len(), count);
    // A file the other daemon moved first is not an error to retry.
    for daemon in [&first, &second] {
        let log = daemon.log_text();
        assert!(
            !log.contains("No such file") && !log.contains("retrying in"),
            "{log}"
        );
    }
}

#[test]
fn a_maildir_message_over_the_size_limit_is_read_only_in_part_and_held() {
    let env = Env::with_config(
        Backend::Sqlite,
        "[daemon]\nmaildir_poll_millis = 50\n\n[[maildir]]\npath = \"inbox\"\n\n\
         [limits]\nmax_message_bytes = 20000\n",
    );
    let _daemon = env.start_daemon();
    let inbox = env.path().join("inbox");
    let big = Msg::new("Jane <jane@acme.example>", "Huge log", "huge@acme.example")
        .body(&"0123456789abcdef\n".repeat(10_000))
        .bytes();
    deliver_to_maildir(&inbox, "1700000000.1.host", &big);
    wait_until(Duration::from_secs(10), "the message to be filed", || {
        count_files(&inbox.join("cur")) == 1
    });
    let held = env.held();
    assert_eq!(held[0]["reason_code"], "too_large");
    let id = held[0]["id"].as_i64().expect("id").to_string();
    let kept = env.run(&["held", "show", &id, "--raw"]);
    assert_eq!(kept.stdout, big[..20_000]);
}
