//! Self-tests of the SMTP test server: lettre (the client ticketd uses) talks to it unmodified,
//! and a raw socket checks the protocol corners lettre never exercises.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::support::smtp::{Reply, SmtpOptions, SmtpServer, Stage, base64_encode};

const WAIT: Duration = Duration::from_secs(5);
const USER: &str = "ticket";
const PASSWORD: &str = "s3cret";

type Transport = AsyncSmtpTransport<Tokio1Executor>;

fn mailbox(address: &str) -> Mailbox {
    address.parse().expect("test address")
}

fn message(to: &[&str], subject: &str, body: &str) -> Message {
    let mut builder = Message::builder()
        .from(mailbox("support@example.com"))
        .subject(subject);
    for address in to {
        builder = builder.to(mailbox(address));
    }
    builder.body(body.to_string()).expect("build test message")
}

/// Plain SMTP straight to the server's port (what ticketd does with `tls = "none"`).
fn plain(server: &SmtpServer) -> Transport {
    Transport::builder_dangerous("127.0.0.1")
        .port(server.port())
        .timeout(Some(WAIT))
        .build()
}

/// TLS parameters that trust the server's test CA and nothing else.
fn trusting_test_ca(server: &SmtpServer, host: &str) -> TlsParameters {
    let pem = std::fs::read(server.ca_pem_path().expect("the TLS server has a test CA"))
        .expect("read the test CA certificate");
    TlsParameters::builder(host.to_string())
        .certificate_store(CertificateStore::None)
        .add_root_certificate(Certificate::from_pem(&pem).expect("parse the test CA"))
        .build_rustls()
        .expect("TLS parameters trusting the test CA")
}

fn credentials(password: &str) -> Credentials {
    Credentials::new(USER.to_string(), password.to_string())
}

fn auth_options() -> SmtpOptions {
    SmtpOptions {
        auth: Some((USER.to_string(), PASSWORD.to_string())),
        ..SmtpOptions::default()
    }
}

#[tokio::test]
async fn lettre_message_arrives_with_its_envelope_and_dot_unstuffed_data() {
    let server = SmtpServer::start();
    let email = message(
        &["jane@acme.example", "helpdesk@acme.example"],
        "[Support #1] Printer on fire",
        "Hello,\n.leading dot\n..two dots\n.\nthe end\n",
    );
    let formatted = email.formatted();
    plain(&server)
        .send(email)
        .await
        .expect("lettre sends over plain SMTP");

    let received = server.wait_for(1, WAIT);
    let m = &received[0];
    assert_eq!(m.mail_from, "support@example.com");
    assert_eq!(m.rcpt_to, ["jane@acme.example", "helpdesk@acme.example"]);
    assert_eq!(
        (m.connection, m.tls, m.authenticated_as.as_deref()),
        (1, false, None)
    );
    // lettre always writes CRLF . CRLF after the message, so the data is the message plus CRLF.
    assert_eq!(m.data, [formatted.as_slice(), b"\r\n"].concat());
    let text = m.text();
    for line in [
        "\r\n.leading dot\r\n",
        "\r\n..two dots\r\n",
        "\r\n.\r\nthe end\r\n",
    ] {
        assert!(
            text.contains(line),
            "{line:?} missing from the data:\n{text}"
        );
    }
}

#[tokio::test]
async fn pooled_transport_sends_several_messages_over_one_connection() {
    let server = SmtpServer::start();
    let transport = plain(&server);
    for n in 1..=3 {
        transport
            .send(message(
                &["jane@acme.example"],
                &format!("note {n}"),
                "hi\n",
            ))
            .await
            .expect("send over the pooled transport");
        // lettre hands a used connection back to its pool from a spawned task: let it run,
        // or the next send finds the pool empty and opens a second connection.
        tokio::task::yield_now().await;
    }
    let received = server.wait_for(3, WAIT);
    assert_eq!(server.connections(), 1, "{:?}", server.transcript());
    assert!(received.iter().all(|m| m.connection == 1));
    let subjects: Vec<bool> = (1..=3)
        .map(|n| {
            received[n - 1]
                .text()
                .contains(&format!("Subject: note {n}"))
        })
        .collect();
    assert_eq!(subjects, [true, true, true]);
}

#[tokio::test]
async fn rcpt_and_data_failures_reach_lettre_as_transient_or_permanent() {
    let server = SmtpServer::start();
    let transport = plain(&server);
    let send = |to: &'static str| transport.send(message(&[to], "hello", "hi\n"));

    server.set_reply(Reply::TempFail(451, "4.3.0 Try again later".into()));
    let e = send("jane@acme.example").await.expect_err("451 at RCPT");
    assert!(e.is_transient(), "451 is transient for lettre: {e}");
    assert_eq!(e.status().map(u16::from), Some(451));

    server.set_reply(Reply::PermFail(550, "5.1.1 No such user".into()));
    let e = send("jane@acme.example").await.expect_err("550 at RCPT");
    assert!(e.is_permanent(), "550 is permanent for lettre: {e}");
    assert_eq!(e.status().map(u16::from), Some(550));

    server.set_reply(Reply::Accept);
    server.set_reply_for(
        "Gone@Acme.example",
        Reply::PermFail(550, "5.1.1 Gone".into()),
    );
    send("jane@acme.example")
        .await
        .expect("others are accepted");
    let e = send("gone@acme.example")
        .await
        .expect_err("550 for one recipient");
    assert!(e.is_permanent(), "{e}");

    server.set_data_reply(Reply::TempFail(452, "4.3.1 Out of storage".into()));
    let e = send("jane@acme.example")
        .await
        .expect_err("452 after the data");
    assert!(e.is_transient(), "{e}");

    let rejections = server.wait_for_rejections(4, WAIT);
    let seen: Vec<(Stage, u16)> = rejections.iter().map(|r| (r.stage, r.code)).collect();
    assert_eq!(
        seen,
        [
            (Stage::Rcpt, 451),
            (Stage::Rcpt, 550),
            (Stage::Rcpt, 550),
            (Stage::Data, 452)
        ]
    );
    assert_eq!(rejections[2].recipients, ["gone@acme.example"]);
    let stored = server.messages();
    assert_eq!(
        stored.len(),
        1,
        "only the accepted message is kept: {stored:?}"
    );
}

#[tokio::test]
async fn auth_plain_and_login_accept_the_password_and_refuse_a_wrong_one() {
    let server = SmtpServer::start_with(auth_options());
    let with = |mechanism: Mechanism, password: &str| {
        Transport::builder_dangerous("127.0.0.1")
            .port(server.port())
            .timeout(Some(WAIT))
            .credentials(credentials(password))
            .authentication(vec![mechanism])
            .build()
    };

    for mechanism in [Mechanism::Plain, Mechanism::Login] {
        with(mechanism, PASSWORD)
            .send(message(&["jane@acme.example"], "authenticated", "hi\n"))
            .await
            .unwrap_or_else(|e| panic!("{mechanism:?} with the right password: {e}"));
        let e = with(mechanism, "wrong")
            .send(message(&["jane@acme.example"], "refused", "hi\n"))
            .await
            .expect_err("a wrong password is refused");
        assert_eq!(e.status().map(u16::from), Some(535), "{mechanism:?}: {e}");
    }
    let e = plain(&server)
        .send(message(&["jane@acme.example"], "anonymous", "hi\n"))
        .await
        .expect_err("MAIL without AUTH is refused");
    assert_eq!(e.status().map(u16::from), Some(530), "{e}");

    let received = server.wait_for(2, WAIT);
    assert_eq!(received.len(), 2);
    assert!(
        received
            .iter()
            .all(|m| m.authenticated_as.as_deref() == Some(USER))
    );
}

#[tokio::test]
async fn starttls_and_implicit_tls_verify_the_certificate_against_the_test_ca() {
    let server = SmtpServer::start_with(SmtpOptions {
        starttls: true,
        ..auth_options()
    });
    Transport::starttls_relay("localhost")
        .expect("STARTTLS relay")
        .port(server.port())
        .timeout(Some(WAIT))
        .tls(Tls::Required(trusting_test_ca(&server, "localhost")))
        .credentials(credentials(PASSWORD))
        .build()
        .send(message(&["jane@acme.example"], "over STARTTLS", "hi\n"))
        .await
        .expect("STARTTLS, then AUTH, then the message");
    let m = &server.wait_for(1, WAIT)[0];
    assert!(m.tls, "the message came after the upgrade");
    assert_eq!(m.authenticated_as.as_deref(), Some(USER));

    // Without the test CA the certificate must not verify.
    let e = Transport::starttls_relay("localhost")
        .expect("STARTTLS relay")
        .port(server.port())
        .timeout(Some(WAIT))
        .credentials(credentials(PASSWORD))
        .build()
        .send(message(&["jane@acme.example"], "untrusted", "hi\n"))
        .await
        .expect_err("an unknown CA is refused");
    // lettre reports a failed upgrade as a connection error, not `is_tls()`.
    assert!(e.to_string().contains("invalid peer certificate"), "{e}");
    assert_eq!(server.messages().len(), 1);

    let wrapped = SmtpServer::start_with(SmtpOptions {
        implicit_tls: true,
        ..SmtpOptions::default()
    });
    Transport::relay("127.0.0.1")
        .expect("implicit TLS relay")
        .port(wrapped.port())
        .timeout(Some(WAIT))
        .tls(Tls::Wrapper(trusting_test_ca(&wrapped, "127.0.0.1")))
        .build()
        .send(message(&["jane@acme.example"], "implicit TLS", "hi\n"))
        .await
        .expect("implicit TLS to the IP address in the certificate");
    assert!(wrapped.wait_for(1, WAIT)[0].tls);
}

#[tokio::test]
async fn stopped_server_refuses_mail_and_restarts_on_the_same_port() {
    let mut server = SmtpServer::start();
    let port = server.port();
    let transport = plain(&server);
    let send =
        |subject: &'static str| transport.send(message(&["jane@acme.example"], subject, "hi\n"));

    send("before").await.expect("server up");
    server.stop();
    assert_eq!(server.open_connections(), 0, "stop closes every connection");
    let e = send("while down").await.expect_err("server down");
    assert!(
        !e.is_permanent(),
        "a refused connection is no permanent failure: {e}"
    );

    server.restart();
    assert_eq!(server.port(), port);
    send("after")
        .await
        .expect("the same transport recovers after the restart");
    let received = server.wait_for(2, WAIT);
    assert!(received[0].text().contains("Subject: before"));
    assert!(received[1].text().contains("Subject: after"));
    assert_eq!(server.connections(), 2, "{:?}", server.transcript());
    assert_eq!(received[1].connection, 2);
}

/// A blocking SMTP client that writes exactly what it is told.
struct Raw {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Raw {
    fn connect(server: &SmtpServer) -> Raw {
        let stream = TcpStream::connect(("127.0.0.1", server.port())).expect("connect");
        stream.set_read_timeout(Some(WAIT)).expect("read timeout");
        let mut raw = Raw {
            reader: BufReader::new(stream.try_clone().expect("clone the stream")),
            writer: stream,
        };
        assert_eq!(raw.read().0, 220, "greeting");
        raw
    }

    fn write(&mut self, bytes: &str) {
        self.writer
            .write_all(bytes.as_bytes())
            .expect("write to the server");
    }

    /// One reply: its code and its lines' texts.
    fn read(&mut self) -> (u16, Vec<String>) {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).expect("read a reply");
            assert!(
                line.ends_with("\r\n") && line.len() >= 6,
                "bad reply line {line:?}"
            );
            let code = line[..3].parse().expect("reply code");
            lines.push(line[4..line.len() - 2].to_string());
            if &line[3..4] == " " {
                return (code, lines);
            }
        }
    }

    /// Sends one command and checks the code of its reply.
    fn expect(&mut self, command: &str, code: u16) -> Vec<String> {
        self.write(&format!("{command}\r\n"));
        let (got, lines) = self.read();
        assert_eq!(got, code, "{command:?} got {got} {lines:?}");
        lines
    }
}

#[test]
fn raw_session_handles_pipelining_sequence_errors_and_unknown_commands() {
    let server = SmtpServer::start();
    let mut c = Raw::connect(&server);
    c.expect("MAIL FROM:<a@example.com>", 503);
    c.expect("FROB", 500);
    c.expect("HELP", 502);
    c.expect("VRFY jane", 252);
    c.expect("AUTH PLAIN", 502);
    c.expect("STARTTLS", 502);
    let ehlo = c.expect("EHLO client.example", 250);
    for extension in ["8BITMIME", "PIPELINING", "SMTPUTF8"] {
        assert!(
            ehlo.iter().any(|l| l == extension),
            "{extension} in {ehlo:?}"
        );
    }
    assert!(ehlo.iter().any(|l| l.starts_with("SIZE ")), "{ehlo:?}");
    assert!(
        !ehlo
            .iter()
            .any(|l| l.starts_with("AUTH") || l == "STARTTLS"),
        "{ehlo:?}"
    );
    c.expect("RCPT TO:<b@example.com>", 503);
    c.expect("DATA", 503);
    c.expect("MAIL FROM:<a@example.com> SIZE=999999999999", 552);
    c.expect("MAIL FROM:<a@example.com> FROB=1", 555);
    c.expect("MAIL FROM:a@example.com", 501);

    // One write holding a whole transaction (RFC 2920): replies come back in order.
    c.write("MAIL FROM:<> BODY=8BITMIME\r\nRCPT TO:<b@example.com>\r\nRCPT TO: <c@example.com>\r\nDATA\r\n");
    let codes: Vec<u16> = (0..4).map(|_| c.read().0).collect();
    assert_eq!(codes, [250, 250, 250, 354]);
    c.write("Subject: raw\r\n\r\n..dot\r\n...\r\n.\r\n");
    assert_eq!(c.read().0, 250);
    c.expect("DATA", 503);
    c.expect("MAIL FROM:<a@example.com>", 250);
    c.expect("MAIL FROM:<a@example.com>", 503);
    c.expect("RSET", 250);
    c.expect("NOOP", 250);
    c.expect("QUIT", 221);

    let m = &server.wait_for(1, WAIT)[0];
    assert_eq!(m.mail_from, "");
    assert_eq!(m.rcpt_to, ["b@example.com", "c@example.com"]);
    assert_eq!(m.text(), "Subject: raw\r\n\r\n.dot\r\n..\r\n");
    server.wait_for_no_open_connections(WAIT);
}

#[test]
fn raw_auth_plain_continuation_and_login_initial_response() {
    assert_eq!(base64_encode(b"\0ticket\0s3cret"), "AHRpY2tldABzM2NyZXQ=");
    let server = SmtpServer::start_with(auth_options());

    let mut c = Raw::connect(&server);
    c.expect("AUTH PLAIN", 503);
    let ehlo = c.expect("EHLO client.example", 250);
    assert!(ehlo.iter().any(|l| l == "AUTH PLAIN LOGIN"), "{ehlo:?}");
    c.expect("MAIL FROM:<a@example.com>", 530);
    c.expect("AUTH CRAM-MD5", 504);
    assert_eq!(c.expect("AUTH PLAIN", 334), [""]);
    c.expect("*", 501);
    c.expect("AUTH PLAIN", 334);
    c.expect("not base64!", 501);
    c.expect("AUTH PLAIN", 334);
    c.expect(
        &base64_encode(format!("\0{USER}\0{PASSWORD}").as_bytes()),
        235,
    );
    c.expect("AUTH PLAIN", 503);
    c.expect("MAIL FROM:<a@example.com>", 250);

    let mut c = Raw::connect(&server);
    c.expect("EHLO client.example", 250);
    let prompt = c.expect(
        &format!("AUTH LOGIN {}", base64_encode(USER.as_bytes())),
        334,
    );
    assert_eq!(prompt, [base64_encode(b"Password:")]);
    c.expect(&base64_encode(b"wrong"), 535);
    let prompt = c.expect("AUTH LOGIN", 334);
    assert_eq!(prompt, [base64_encode(b"Username:")]);
    c.expect(&base64_encode(USER.as_bytes()), 334);
    c.expect(&base64_encode(PASSWORD.as_bytes()), 235);

    // With STARTTLS offered, AUTH waits for the upgrade.
    let tls_server = SmtpServer::start_with(SmtpOptions {
        starttls: true,
        ..auth_options()
    });
    let mut c = Raw::connect(&tls_server);
    let ehlo = c.expect("EHLO client.example", 250);
    assert!(ehlo.iter().any(|l| l == "STARTTLS"), "{ehlo:?}");
    assert!(!ehlo.iter().any(|l| l.starts_with("AUTH")), "{ehlo:?}");
    c.expect("AUTH PLAIN", 538);
}
