//! Notifications end to end: `ticketd run` delivering to a real SMTP server on loopback.

use std::time::Duration;

use futures::StreamExt;
use ticketd::config::{AuthMethod, Security, SmtpSettings};
use ticketd::outbound::Delivery;
use ticketd::outbound::sender::PARALLEL;
use ticketd::outbound::smtp::SmtpTransport;

use crate::support::smtp::{Received, Reply, SmtpOptions, SmtpServer};
use crate::support::{Backend, Daemon, Env, Msg, deliver_to_maildir, wait_until};

const JANE: &str = "Jane Doe <jane@acme.example>";

/// SQLite, the Maildir `inbox` as source, notifications to `smtp` (plain, loopback).
fn env_with_smtp(smtp: &SmtpServer, extra: &str) -> Env {
    Env::with_config(
        Backend::Sqlite,
        &format!(
            "[daemon]\nmaildir_poll_millis = 50\n\n[[maildir]]\npath = \"inbox\"\n\n\
             [smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"plain\"\ntimeout_secs = 5\n\n\
             [outbox]\nretry_base_secs = 1\nmax_age_hours = 1\nmaildir = \"sent\"\n\n{extra}\n",
            smtp.port()
        ),
    )
}

struct Running {
    env: Env,
    daemon: Daemon,
    seq: std::cell::Cell<u32>,
}

impl Running {
    fn start(env: Env) -> Running {
        let daemon = env.start_daemon();
        wait_until(Duration::from_secs(10), "the daemon to start", || {
            daemon.log_text().contains("ticketd is running")
        });
        Running {
            env,
            daemon,
            seq: std::cell::Cell::new(0),
        }
    }

    /// Delivers a message through the Maildir source and waits until it is recorded.
    fn receive(&self, msg: &Msg) {
        let n = self.seq.get() + 1;
        self.seq.set(n);
        let before = self.recorded();
        deliver_to_maildir(
            &self.env.path().join("inbox"),
            &format!("1700000000.{n}.host"),
            &msg.bytes(),
        );
        wait_until(
            Duration::from_secs(10),
            "the message to be recorded",
            || self.recorded() > before,
        );
    }

    /// Files the Maildir source has finished with.
    fn recorded(&self) -> usize {
        crate::support::count_files(&self.env.path().join("inbox/cur"))
    }
}

fn header(mail: &Received, name: &str) -> Option<String> {
    let text = mail.text();
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    let mut value: Option<String> = None;
    for line in head.split("\r\n") {
        if let Some(v) = value.as_mut()
            && (line.starts_with(' ') || line.starts_with('\t'))
        {
            v.push_str(line.trim_start());
            continue;
        }
        if value.is_some() {
            break;
        }
        if let Some((n, v)) = line.split_once(':')
            && n.eq_ignore_ascii_case(name)
        {
            value = Some(v.trim().to_string());
        }
    }
    value
}

fn to(messages: &[Received], address: &str) -> Vec<Received> {
    messages
        .iter()
        .filter(|m| m.rcpt_to.iter().any(|r| r == address))
        .cloned()
        .collect()
}

#[test]
fn the_acknowledgement_arrives_with_the_tag_our_message_id_and_the_thread() {
    let smtp = SmtpServer::start();
    let env = env_with_smtp(&smtp, "").with_acme();
    let running = Running::start(env);
    running.receive(&Msg::new(JANE, "Printer on fire", "m1@acme.example"));
    let received = smtp.wait_for(3, Duration::from_secs(15));
    let ack = to(&received, "jane@acme.example");
    assert_eq!(ack.len(), 1, "{received:?}");
    let ack = &ack[0];
    // The return path names this one notification (VERP).
    assert!(
        ack.mail_from.starts_with("support+bounce-") && ack.mail_from.ends_with("@example.com"),
        "{}",
        ack.mail_from
    );
    let subject = header(ack, "Subject").expect("subject");
    assert!(subject.contains("[Support #1]"), "{subject}");
    assert_eq!(
        header(ack, "In-Reply-To").as_deref(),
        Some("<m1@acme.example>")
    );
    assert_eq!(
        header(ack, "References").as_deref(),
        Some("<m1@acme.example>")
    );
    assert_eq!(
        header(ack, "Auto-Submitted").as_deref(),
        Some("auto-replied")
    );
    assert_eq!(
        header(ack, "X-Auto-Response-Suppress").as_deref(),
        Some("All")
    );
    assert_eq!(
        header(ack, "X-Ticketd-Loop").as_deref(),
        Some("support@example.com")
    );
    // Answers go to the queue's keyed reply address for this ticket and recipient.
    assert!(
        header(ack, "Reply-To")
            .is_some_and(|r| r.contains("support+t") && r.contains("@example.com")),
        "{:?}",
        header(ack, "Reply-To")
    );
    assert!(header(ack, "Content-Type").is_some_and(|c| c.contains("multipart/alternative")));
    // The Message-ID is the one stored in the outbox, so a reply to it threads.
    let outbox = running.env.json(&["outbox", "list", "--json"]);
    let stored = outbox
        .as_array()
        .and_then(|a| a.iter().find(|o| o["recipient"] == "jane@acme.example"))
        .expect("outbox entry")["message_id"]
        .as_str()
        .expect("message_id")
        .to_string();
    assert_eq!(header(ack, "Message-ID"), Some(format!("<{stored}>")));
    let reply = Msg::new(JANE, "Re: Printer on fire", "m2@acme.example").in_reply_to(&stored);
    running.receive(&reply);
    assert_eq!(
        running.env.ticket(1)["message_count"],
        2,
        "the reply to our mail threads onto the ticket"
    );
    // The agent was told too, and the distribution list got the acknowledgement.
    assert_eq!(to(&received, "alex@example.com").len(), 1);
    assert_eq!(to(&received, "helpdesk@acme.example").len(), 1);
}

#[test]
fn the_distribution_list_gets_the_notice_and_other_organizations_never_do() {
    let smtp = SmtpServer::start();
    let env = env_with_smtp(&smtp, "").with_acme();
    env.ok(&[
        "org",
        "add",
        "Other",
        "--domain",
        "other.example",
        "--notify",
        "list@other.example",
    ]);
    env.ok(&["contact", "add", "bob@other.example", "--org", "Other"]);
    let running = Running::start(env);
    running.receive(&Msg::new(JANE, "Printer", "m1@acme.example"));
    running.receive(&Msg::new(
        "bob@other.example",
        "Scanner",
        "b1@other.example",
    ));
    running.env.ok(&["ticket", "set-status", "1", "solved"]);
    // Jane + Acme's list (ack, solved), Bob + Other's list (ack), the agent twice.
    smtp.wait_for(8, Duration::from_secs(20));
    std::thread::sleep(Duration::from_millis(500));
    let received = smtp.messages();
    let about_jane: Vec<&Received> = received
        .iter()
        .filter(|m| m.text().contains("Printer"))
        .collect();
    let customer_side: Vec<&str> = about_jane
        .iter()
        .flat_map(|m| m.rcpt_to.iter().map(String::as_str))
        .filter(|r| *r != "alex@example.com")
        .collect();
    assert!(
        customer_side
            .iter()
            .all(|r| *r == "jane@acme.example" || *r == "helpdesk@acme.example"),
        "{customer_side:?}"
    );
    assert_eq!(
        customer_side
            .iter()
            .filter(|r| **r == "helpdesk@acme.example")
            .count(),
        2
    );
    for m in &received {
        if m.rcpt_to.iter().any(|r| r.ends_with("@other.example")) {
            assert!(
                !m.text().contains("Printer"),
                "Other's people got Acme's ticket: {}",
                m.text()
            );
        }
    }
    assert_eq!(
        received.len(),
        8,
        "{:?}",
        received
            .iter()
            .map(|m| (&m.rcpt_to, header(m, "Subject")))
            .collect::<Vec<_>>()
    );
}

#[test]
fn an_smtp_outage_delays_mail_and_it_is_delivered_exactly_once_after() {
    let mut smtp = SmtpServer::start();
    let env = env_with_smtp(&smtp, "[notify]\nnotify_agents = false\n").with_acme();
    smtp.stop();
    let running = Running::start(env);
    running.receive(&Msg::new(JANE, "Printer", "m1@acme.example"));
    wait_until(Duration::from_secs(15), "a failed attempt", || {
        let out = running.env.json(&["outbox", "show", "1", "--json"]);
        out["attempts"].as_array().is_some_and(|a| !a.is_empty())
            && out["entry"]["status"] == "pending"
    });
    smtp.restart();
    let delivered = smtp.wait_for(2, Duration::from_secs(20));
    assert_eq!(to(&delivered, "jane@acme.example").len(), 1);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        to(&smtp.messages(), "jane@acme.example").len(),
        1,
        "exactly once"
    );
    let out = running.env.json(&["outbox", "show", "1", "--json"]);
    assert_eq!(out["entry"]["status"], "sent");
    let attempts = out["attempts"].as_array().expect("attempts");
    assert!(attempts.len() >= 2, "{attempts:?}");
    assert_eq!(
        attempts.last().map(|a| a["ok"].clone()),
        Some(serde_json::json!(1))
    );
}

#[test]
fn a_550_is_recorded_as_failed_with_the_server_text() {
    let smtp = SmtpServer::start();
    smtp.set_reply_for(
        "jane@acme.example",
        Reply::PermFail(550, "5.1.1 <jane@acme.example>: no such user here".into()),
    );
    let env = env_with_smtp(&smtp, "[notify]\nnotify_agents = false\n").with_acme();
    let running = Running::start(env);
    running.receive(&Msg::new(JANE, "Printer", "m1@acme.example"));
    wait_until(Duration::from_secs(15), "the failure", || {
        let failed = running
            .env
            .json(&["outbox", "list", "--status", "failed", "--json"]);
        failed.as_array().is_some_and(|a| !a.is_empty())
    });
    let failed = running
        .env
        .json(&["outbox", "list", "--status", "failed", "--json"]);
    let error = failed[0]["last_error"].as_str().unwrap_or("");
    assert!(
        error.contains("550") && error.contains("no such user here"),
        "{error}"
    );
    assert_eq!(
        failed[0]["attempts"], 1,
        "a permanent failure is not retried"
    );
    let retried = running
        .env
        .ok(&["outbox", "retry", &failed[0]["id"].to_string()]);
    assert!(retried.contains("sent again"));
}

#[test]
fn two_auto_responders_answering_each_other_stop_within_the_rate_limit() {
    let smtp = SmtpServer::start();
    let env = env_with_smtp(
        &smtp,
        "[notify]\nnotify_agents = false\nmax_auto_per_sender_per_hour = 3\n",
    );
    let running = Running::start(env);
    // A badly behaved responder: no Auto-Submitted, a new subject every time.
    let robot = "Robot <robot@bots.example>";
    running.receive(&Msg::new(robot, "Thanks for your mail", "r0@bots.example"));
    let mut answered = 0;
    loop {
        let acks = to(&smtp.messages(), "robot@bots.example").len();
        if acks == answered {
            // Give ticketd time to answer; silence means the loop is broken.
            std::thread::sleep(Duration::from_secs(2));
            if to(&smtp.messages(), "robot@bots.example").len() == answered {
                break;
            }
            continue;
        }
        answered = acks;
        assert!(answered <= 3, "more than the limit");
        running.receive(&Msg::new(
            robot,
            &format!("Auto answer {answered}"),
            &format!("r{answered}@bots.example"),
        ));
    }
    assert_eq!(answered, 3);
    assert_eq!(
        running.env.tickets().len(),
        4,
        "every message is still recorded"
    );
    assert!(
        running
            .daemon
            .log_text()
            .contains("max_auto_per_sender_per_hour")
    );
}

#[test]
fn automatic_mail_and_mailing_lists_get_no_automatic_answer() {
    let smtp = SmtpServer::start();
    let env = env_with_smtp(&smtp, "[notify]\nnotify_agents = false\n").with_acme();
    let running = Running::start(env);
    running.receive(
        &Msg::new(JANE, "Out of Office: Printer", "o1@acme.example")
            .header("Auto-Submitted", "auto-replied"),
    );
    running.receive(
        &Msg::new("list-user@lists.example", "Digest", "l1@lists.example")
            .header("List-Id", "<users.lists.example>"),
    );
    running.receive(&Msg::new(JANE, "A real question", "q1@acme.example"));
    smtp.wait_for(2, Duration::from_secs(15));
    std::thread::sleep(Duration::from_secs(1));
    let received = smtp.messages();
    assert!(
        to(&received, "list-user@lists.example").is_empty(),
        "no answer to list mail"
    );
    assert_eq!(
        to(&received, "jane@acme.example").len(),
        1,
        "only the real question is acknowledged"
    );
    assert!(
        received
            .iter()
            .all(|m| header(m, "Subject").is_some_and(|s| s.contains("A real question")))
    );
}

/// A delivery report as an MTA writes it: to `to`, about `message_id`, failed for `failed`.
fn delivery_report(n: u32, to: &str, message_id: &str, failed: &[&str]) -> Vec<u8> {
    let recipients: String = failed
        .iter()
        .map(|r| format!("Final-Recipient: rfc822; {r}\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"))
        .collect();
    format!(
        "From: Mail Delivery System <MAILER-DAEMON@mx.evil.test>\r\nTo: {to}\r\n\
         Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn{n}@mx.evil.test>\r\n\
         In-Reply-To: <{message_id}>\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n\
         --b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.evil.test\r\n\r\n\
         {recipients}--b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <{message_id}>\r\n\
         Subject: [Support #1] Printer\r\n\r\n--b--\r\n"
    )
    .into_bytes()
}

/// Addresses `ticketd address list` shows as flagged.
fn flagged(env: &Env) -> Vec<String> {
    env.json(&["address", "list", "--json"])
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|f| f["address"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn forged_delivery_reports_flag_nobody_and_a_proven_one_flags_only_its_recipient() {
    let smtp = SmtpServer::start();
    let env = env_with_smtp(&smtp, "").with_acme();
    let running = Running::start(env);
    running.receive(&Msg::new(JANE, "Printer", "m1@acme.example"));
    // Jane's acknowledgement, the distribution list's notice, the agent's notice.
    let received = smtp.wait_for(3, Duration::from_secs(15));
    let sent_to = |address: &str| {
        let mail = to(&received, address).pop().expect("a notification");
        let id = header(&mail, "Message-ID").expect("message id");
        (mail.mail_from, id.trim_matches(['<', '>']).to_string())
    };
    let (jane_path, jane_ack) = sent_to("jane@acme.example");
    let (agent_path, agent_notice) = sent_to("alex@example.com");
    assert_ne!(
        jane_path, agent_path,
        "each notification has its own return path"
    );
    let reports = running.recorded();
    let inbox = running.env.path().join("inbox");
    let deliver = |n: u32, raw: Vec<u8>| {
        deliver_to_maildir(&inbox, &format!("1700000000.{}.dsn", 90 + n), &raw);
    };
    // A stranger who saw the acknowledgement's Message-ID forges reports: to the
    // support address, and to a return path with a made-up key.
    deliver(
        1,
        delivery_report(
            1,
            "support@example.com",
            &jane_ack,
            &["jane@acme.example", "alex@example.com"],
        ),
    );
    let (marked, _) = jane_path.rsplit_once('-').expect("a keyed return path");
    let forged_path = format!("{marked}-0123456789abcdef@example.com");
    deliver(
        2,
        delivery_report(2, &forged_path, &jane_ack, &["jane@acme.example"]),
    );
    // A real report about the agent's notice: agents are never flagged by mail.
    deliver(
        3,
        delivery_report(3, &agent_path, &agent_notice, &["alex@example.com"]),
    );
    wait_until(Duration::from_secs(15), "three reports", || {
        running.recorded() >= reports + 3
    });
    assert!(
        flagged(&running.env).is_empty(),
        "{:?}",
        flagged(&running.env)
    );
    let ticket = running.env.ticket(1);
    let bounces = ticket["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter(|m| m["classification"] == "bounce")
        .count();
    assert_eq!(bounces, 3, "every report is kept on the ticket");
    // The genuine report on Jane's acknowledgement, listing the distribution list too.
    deliver(
        4,
        delivery_report(
            4,
            &jane_path,
            &jane_ack,
            &["jane@acme.example", "helpdesk@acme.example"],
        ),
    );
    wait_until(Duration::from_secs(15), "the genuine report", || {
        running.recorded() >= reports + 4
    });
    assert_eq!(flagged(&running.env), vec!["jane@acme.example"]);
    let ticket = running.env.ticket(1);
    assert!(
        ticket["events"]
            .as_array()
            .expect("events")
            .iter()
            .any(|e| e["action"] == "address_bounced" && e["new_value"] == "jane@acme.example")
    );
    assert_eq!(ticket["status"], "new", "a report changes no status");
    // Automatic mail to Jane stops; the distribution list still hears.
    running.env.ok(&["ticket", "set-status", "1", "pending"]);
    wait_until(Duration::from_secs(15), "the status notice", || {
        to(&smtp.messages(), "helpdesk@acme.example").len() == 2
    });
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(to(&smtp.messages(), "jane@acme.example").len(), 1);
    // The operator lifts the flag: Jane hears again.
    let cleared = running.env.ok(&["address", "clear", "Jane@Acme.example"]);
    assert!(cleared.contains("jane@acme.example"), "{cleared}");
    assert!(flagged(&running.env).is_empty());
    running.env.ok(&["ticket", "set-status", "1", "solved"]);
    wait_until(Duration::from_secs(15), "Jane's status notice", || {
        to(&smtp.messages(), "jane@acme.example").len() == 2
    });
}

#[test]
fn customers_hear_in_their_own_language() {
    let smtp = SmtpServer::start();
    let env = env_with_smtp(&smtp, "[notify]\nnotify_agents = false\n").with_acme();
    env.ok(&[
        "contact",
        "add",
        "marie@acme.example",
        "--org",
        "Acme",
        "--language",
        "fr",
    ]);
    env.ok(&[
        "org",
        "add",
        "Nihon",
        "--domain",
        "nihon.example",
        "--language",
        "ja",
    ]);
    let running = Running::start(env);
    running.receive(&Msg::new(
        "marie@acme.example",
        "Imprimante",
        "f1@acme.example",
    ));
    running.receive(&Msg::new(
        "taro@nihon.example",
        "プリンター",
        "j1@nihon.example",
    ));
    // Marie, Acme's distribution list and Taro: one acknowledgement each.
    let received = smtp.wait_for(3, Duration::from_secs(15));
    let french = to(&received, "marie@acme.example");
    let japanese = to(&received, "taro@nihon.example");
    assert_eq!(french.len(), 1);
    assert_eq!(japanese.len(), 1);
    let decoded = |m: &Received| ticketd::mail::parse(&m.data).text;
    assert!(
        decoded(&french[0]).contains("Bonjour"),
        "{}",
        decoded(&french[0])
    );
    assert!(
        decoded(&japanese[0]).contains("お問い合わせ"),
        "{}",
        decoded(&japanese[0])
    );
}

#[test]
fn a_held_sender_is_told_what_to_do_next() {
    let smtp = SmtpServer::start();
    let env = env_with_smtp(&smtp, "[notify]\nnotify_agents = false\n").with_acme();
    env.ok(&["contact", "lock", "jane@acme.example"]);
    let running = Running::start(env);
    running.receive(&Msg::new(JANE, "Printer", "m1@acme.example"));
    let received = smtp.wait_for(1, Duration::from_secs(15));
    let notice = ticketd::mail::parse(&received[0].data);
    assert_eq!(received[0].rcpt_to, vec!["jane@acme.example"]);
    assert!(notice.text.contains("locked"), "{}", notice.text);
    assert!(
        notice
            .subject
            .as_deref()
            .is_some_and(|s| s.contains("Printer"))
    );
}

#[test]
fn an_agents_mailed_answer_reaches_the_customer_as_a_person_wrote_it() {
    let smtp = SmtpServer::start();
    let env = env_with_smtp(&smtp, "[notify]\nnotify_agents = false\n").with_acme();
    let running = Running::start(env);
    running.receive(&Msg::new(JANE, "Printer", "m1@acme.example"));
    smtp.wait_for(2, Duration::from_secs(15));
    running.receive(
        &Msg::new(
            "Alex Agent <alex@example.com>",
            "Re: [Support #1] Printer",
            "a1@example.com",
        )
        .verified()
        .body("Please switch it off and on again.\n\nOn Mon, Jane wrote:\n> Printer\n"),
    );
    let received = smtp.wait_for(4, Duration::from_secs(15));
    let answer = to(&received, "jane@acme.example")
        .into_iter()
        .find(|m| m.text().contains("switch it off"))
        .expect("the answer");
    assert_eq!(header(&answer, "Auto-Submitted"), None, "a person wrote it");
    assert!(
        !ticketd::mail::parse(&answer.data)
            .text
            .contains("> Printer"),
        "the quote is not sent back"
    );
    assert_eq!(running.env.ticket(1)["status"], "pending");
}

#[test]
fn starttls_and_authentication_with_a_configured_ca() {
    let smtp = SmtpServer::start_with(SmtpOptions {
        auth: Some(("ticketd".into(), "smtp-pass".into())),
        starttls: true,
        ..SmtpOptions::default()
    });
    let ca = smtp.ca_pem_path().expect("test CA").display().to_string();
    let env = Env::with_config(
        Backend::Sqlite,
        &format!(
            "[daemon]\nmaildir_poll_millis = 50\n\n[[maildir]]\npath = \"inbox\"\n\n\
             [smtp]\nhost = \"localhost\"\nport = {}\nsecurity = \"starttls\"\nca_file = \"{ca}\"\nuser = \"ticketd\"\npassword = \"smtp-pass\"\n\n\
             [notify]\nnotify_agents = false\n",
            smtp.port()
        ),
    );
    let running = Running::start(env);
    running.receive(&Msg::new(JANE, "Printer", "m1@acme.example"));
    let received = smtp.wait_for(1, Duration::from_secs(15));
    assert!(received[0].tls);
    assert_eq!(received[0].authenticated_as.as_deref(), Some("ticketd"));
}

/// Settings for the SMTP transport alone, talking to `smtp` as `security` says.
fn transport_settings(smtp: &SmtpServer, host: &str, security: Security) -> SmtpSettings {
    SmtpSettings {
        host: host.into(),
        port: Some(smtp.port()),
        security,
        user: None,
        password: None,
        password_file: None,
        auth: AuthMethod::Login,
        oauth_token_file: None,
        oauth_token_command: None,
        ca_file: None,
        timeout_secs: 5,
        helo_name: None,
    }
}

/// A small rendered notification to `customer{n}@acme.example`.
fn notification(n: usize) -> (String, Vec<u8>) {
    let to = format!("customer{n}@acme.example");
    let bytes = format!(
        "From: Support <support@example.com>\r\nTo: {to}\r\nSubject: [Support #{n}] Printer\r\n\
         Message-ID: <notice.{n}@example.com>\r\n\r\nWe have received your message.\r\n"
    );
    (to, bytes.into_bytes())
}

async fn send(transport: &SmtpTransport, n: usize) -> Delivery {
    let (to, bytes) = notification(n);
    transport.deliver("support@example.com", &to, &bytes).await
}

#[tokio::test]
async fn notifications_one_after_another_share_one_smtp_connection() {
    let smtp = SmtpServer::start();
    let transport = SmtpTransport::new(
        transport_settings(&smtp, "127.0.0.1", Security::Plain),
        PARALLEL,
    );
    for n in 0..10 {
        let delivery = send(&transport, n).await;
        assert!(matches!(delivery, Delivery::Sent(_)), "{delivery:?}");
    }
    let received = smtp.wait_for(10, Duration::from_secs(5));
    assert_eq!(smtp.connections(), 1, "{:?}", smtp.transcript());
    assert!(received.iter().all(|m| m.connection == 1));
}

#[tokio::test]
async fn notifications_four_at_a_time_use_at_most_four_smtp_connections() {
    let smtp = SmtpServer::start();
    let transport = SmtpTransport::new(
        transport_settings(&smtp, "127.0.0.1", Security::Plain),
        PARALLEL,
    );
    let deliveries: Vec<Delivery> = futures::stream::iter(0..40)
        .map(|n| send(&transport, n))
        .buffered(4)
        .collect()
        .await;
    assert!(
        deliveries.iter().all(|d| matches!(d, Delivery::Sent(_))),
        "{deliveries:?}"
    );
    smtp.wait_for(40, Duration::from_secs(5));
    assert!(smtp.connections() <= 4, "{:?}", smtp.transcript());
}

#[tokio::test]
async fn a_connection_the_smtp_server_closed_is_replaced_and_the_mail_sent_once() {
    let mut smtp = SmtpServer::start();
    let transport = SmtpTransport::new(
        transport_settings(&smtp, "127.0.0.1", Security::Plain),
        PARALLEL,
    );
    assert!(matches!(send(&transport, 1).await, Delivery::Sent(_)));
    // The server goes away and comes back: the pooled connection is closed under us.
    smtp.stop();
    smtp.restart();
    let delivery = send(&transport, 2).await;
    assert!(matches!(delivery, Delivery::Sent(_)), "{delivery:?}");
    let received = smtp.wait_for(2, Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(smtp.messages().len(), 2, "exactly once");
    assert_eq!(to(&received, "customer2@acme.example").len(), 1);
    assert_eq!(received[1].connection, 2, "over a new connection");
    assert_eq!(smtp.connections(), 2, "{:?}", smtp.transcript());
}

#[tokio::test]
async fn implicit_tls_verifies_the_server_certificate_and_authenticates() {
    let smtp = SmtpServer::start_with(SmtpOptions {
        auth: Some(("ticketd".into(), "smtp-pass".into())),
        implicit_tls: true,
        ..SmtpOptions::default()
    });
    let mut settings = transport_settings(&smtp, "localhost", Security::Tls);
    settings.user = Some("ticketd".into());
    settings.password = Some("smtp-pass".into());
    // Without the test CA the certificate is not trusted: nothing is sent.
    let untrusted = SmtpTransport::new(settings.clone(), PARALLEL);
    match send(&untrusted, 1).await {
        Delivery::Blocked(error) => assert!(error.contains("certificate"), "{error}"),
        other => panic!("sent without a trusted certificate: {other:?}"),
    }
    settings.ca_file = smtp.ca_pem_path().map(|p| p.to_path_buf());
    let transport = SmtpTransport::new(settings, PARALLEL);
    for n in 2..4 {
        let delivery = send(&transport, n).await;
        assert!(matches!(delivery, Delivery::Sent(_)), "{delivery:?}");
    }
    let received = smtp.wait_for(2, Duration::from_secs(5));
    assert_eq!(received.len(), 2);
    assert!(received.iter().all(|m| m.tls));
    assert!(
        received
            .iter()
            .all(|m| m.authenticated_as.as_deref() == Some("ticketd"))
    );
    assert_eq!(received[0].connection, received[1].connection);
}

#[tokio::test]
async fn starttls_configured_but_not_offered_sends_nothing() {
    let smtp = SmtpServer::start();
    let transport = SmtpTransport::new(
        transport_settings(&smtp, "127.0.0.1", Security::Starttls),
        PARALLEL,
    );
    match send(&transport, 1).await {
        Delivery::Blocked(error) => assert!(error.contains("STARTTLS"), "{error}"),
        other => panic!("sent without STARTTLS: {other:?}"),
    }
    assert!(smtp.messages().is_empty());
}

/// The daemon on the Maildir `inbox`, sending through `smtp` as user `ticketd`
/// with the password in the file `smtp-password` (beside the configuration).
fn env_with_smtp_login(smtp: &SmtpServer) -> Env {
    Env::with_config(
        Backend::Sqlite,
        &format!(
            "[daemon]\nmaildir_poll_millis = 50\n\n[[maildir]]\npath = \"inbox\"\n\n\
             [smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"plain\"\ntimeout_secs = 5\n\
             user = \"ticketd\"\npassword_file = \"smtp-password\"\n\n\
             [outbox]\nretry_base_secs = 1\nmax_age_hours = 1\nmaildir = \"sent\"\n\n\
             [notify]\nnotify_agents = false\n",
            smtp.port()
        ),
    )
}

#[test]
fn a_refused_password_keeps_notifications_waiting_until_it_is_fixed_then_sends_once() {
    let smtp = SmtpServer::start_with(SmtpOptions {
        auth: Some(("ticketd".into(), "right-pass".into())),
        ..SmtpOptions::default()
    });
    let env = env_with_smtp_login(&smtp).with_acme();
    let password = env.path().join("smtp-password");
    std::fs::write(&password, "wrong-pass\n").expect("password file");
    let running = Running::start(env);
    running.receive(&Msg::new(JANE, "Printer", "m1@acme.example"));
    let pending = |env: &Env| -> Vec<serde_json::Value> {
        env.json(&["outbox", "list", "--json"])
            .as_array()
            .expect("a list")
            .clone()
    };
    // The server answers 535 again and again: the notifications wait, none fails.
    wait_until(Duration::from_secs(20), "several refused attempts", || {
        pending(&running.env)
            .iter()
            .all(|n| n["attempts"].as_i64().unwrap_or(0) >= 3)
    });
    for notification in pending(&running.env) {
        assert_eq!(notification["status"], "pending", "{notification}");
        let error = notification["last_error"].as_str().unwrap_or("");
        assert!(error.contains("535"), "{error}");
    }
    assert!(smtp.messages().is_empty());
    let log = running.daemon.log_text();
    assert!(
        log.contains("notifications cannot be delivered") && log.contains("535"),
        "{log}"
    );
    // The operator fixes the password: each notification goes out exactly once.
    std::fs::write(&password, "right-pass\n").expect("password file");
    let received = smtp.wait_for(2, Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(smtp.messages().len(), 2, "{:?}", smtp.messages());
    assert_eq!(to(&received, "jane@acme.example").len(), 1);
    assert!(pending(&running.env).iter().all(|n| n["status"] == "sent"));
}

#[test]
fn the_helo_name_and_the_queues_envelope_sender_are_the_configured_ones() {
    let smtp = SmtpServer::start();
    let env = env_with_smtp(
        &smtp,
        "[[queues]]\nname = \"support\"\naddresses = [\"support@example.com\"]\n\
         envelope_sender = \"bounces@mail.example.com\"\n",
    )
    .with_acme();
    // `[smtp]` is already written: set the EHLO name through the environment.
    let daemon = {
        let log = env.path().join("daemon.log");
        let file = std::fs::File::create(&log).expect("log");
        let child = env
            .command()
            .arg("run")
            .env("TICKETD__SMTP__HELO_NAME", "helpdesk.example.com")
            .stdout(std::process::Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn");
        (child, log)
    };
    let mut child = daemon.0;
    deliver_to_maildir(
        &env.path().join("inbox"),
        "1700000000.1.host",
        &Msg::new(JANE, "Printer", "m1@acme.example").bytes(),
    );
    let received = smtp.wait_for(3, Duration::from_secs(15));
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        smtp.transcript()
            .iter()
            .any(|line| line.contains("EHLO helpdesk.example.com")),
        "{:?}",
        smtp.transcript()
    );
    for mail in &received {
        assert!(
            mail.mail_from.starts_with("bounces+bounce-")
                && mail.mail_from.ends_with("@mail.example.com"),
            "{}",
            mail.mail_from
        );
    }
    // Each notification has its own return path.
    let mut paths: Vec<&str> = received.iter().map(|m| m.mail_from.as_str()).collect();
    paths.dedup();
    assert_eq!(paths.len(), received.len());
}

#[test]
fn copied_strangers_are_not_acknowledged_and_long_text_is_quoted_in_part() {
    let smtp = SmtpServer::start();
    let env = env_with_smtp(&smtp, "").with_acme();
    env.ok(&["contact", "add", "carol@acme.example", "--org", "Acme"]);
    let running = Running::start(env);
    // Copied: a registered colleague and a colleague nobody registered.
    let long = "The printer jams on every page. ".repeat(1_000);
    running.receive(
        &Msg::new(JANE, "Printer", "m1@acme.example")
            .header("Cc", "carol@acme.example, dave@acme.example")
            .body(&long),
    );
    // Jane, Carol and the distribution list are acknowledged; the agent hears.
    let received = smtp.wait_for(4, Duration::from_secs(20));
    std::thread::sleep(Duration::from_secs(1));
    let received = smtp
        .messages()
        .into_iter()
        .chain(received)
        .collect::<Vec<_>>();
    assert!(
        to(&received, "dave@acme.example").is_empty(),
        "{received:?}"
    );
    assert_eq!(to(&smtp.messages(), "carol@acme.example").len(), 1);
    let ticket = running.env.ticket(1);
    let participants = ticket["participants"].as_array().expect("participants");
    assert!(participants.iter().any(|p| p == "dave@acme.example"));
    // The agent's notice quotes at most notify.max_quoted_chars and says where the rest is.
    let notice = to(&smtp.messages(), "alex@example.com")
        .pop()
        .expect("agent notice");
    let parsed = mail_parser::MessageParser::default()
        .parse(&notice.data)
        .expect("a message");
    let text = parsed.body_text(0).expect("a text part");
    assert!(
        text.contains("The rest of this message is on ticket #1"),
        "{text}"
    );
    let quoted = text.matches("The printer jams").count();
    assert!(
        quoted > 100 && quoted * 32 <= 20_001,
        "{quoted} of 1000 sentences quoted"
    );
    // An agent's answer reaches every participant: a person wrote it.
    running.receive(
        &Msg::new(
            "Alex Agent <alex@example.com>",
            "Re: [Support #1] Printer",
            "a1@example.com",
        )
        .in_reply_to("m1@acme.example")
        .verified()
        .body("Please restart it."),
    );
    wait_until(Duration::from_secs(15), "the answer to Dave", || {
        !to(&smtp.messages(), "dave@acme.example").is_empty()
    });
}
