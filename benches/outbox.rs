//! Outbox throughput: rendered notifications delivered to an SMTP server on loopback,
//! over reused connections. Run with `cargo bench --bench outbox`.

#[path = "../tests/it/support/smtp.rs"]
#[allow(dead_code)]
mod smtp;

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ticketd::config::Settings;
use ticketd::notify::compose::{Addressing, compose};
use ticketd::notify::templates::Rendered;
use ticketd::outbound::Transport;
use ticketd::outbound::sender::OutboxSender;
use ticketd::outbound::smtp::SmtpTransport;
use ticketd::store::outbox::{self, NewOutbox};
use ticketd::store::{Store, now};

const MESSAGES: usize = 2_000;

fn deliver_all(runtime: &tokio::runtime::Runtime, server: &smtp::SmtpServer) -> Duration {
    let dir = tempfile::tempdir().expect("temp dir");
    let vars = vec![
        (
            "TICKETD__STORE__URL".to_string(),
            format!("sqlite://{}", dir.path().join("bench.db").display()),
        ),
        (
            "TICKETD__DATA__DIR".to_string(),
            dir.path().display().to_string(),
        ),
    ];
    let mut settings = Settings::load_with_env(None, &vars).expect("settings");
    settings.smtp = Some(ticketd::config::SmtpSettings {
        host: "127.0.0.1".into(),
        port: Some(server.port()),
        security: ticketd::config::Security::Plain,
        user: None,
        password: None,
        password_file: None,
        auth: ticketd::config::AuthMethod::Login,
        oauth_token_file: None,
        oauth_token_command: None,
        ca_file: None,
        timeout_secs: 10,
        helo_name: None,
    });
    let settings = Arc::new(settings);
    runtime.block_on(async {
        let store = Store::open(&settings.store).await.expect("store");
        let rendered = Rendered {
            subject: "[Support #1] Printer".into(),
            text: "Hello,\n\nwe have received your message.\n".into(),
            html: "<p>Hello,</p><p>we have received your message.</p>".into(),
        };
        let mut tx = store.begin().await.expect("tx");
        for i in 0..MESSAGES {
            let recipient = format!("customer{i}@acme.example");
            let message_id = format!("bench.{i}@example.com");
            let bytes = compose(
                &Addressing {
                    from_name: "Support",
                    from_address: "support@example.com",
                    to_name: None,
                    to_address: &recipient,
                    message_id: &message_id,
                    in_reply_to: None,
                    references: &[],
                    automatic: true,
                    attachments: &[],
                    reply_to: None,
                    conversation: None,
                },
                &rendered,
            )
            .expect("compose");
            outbox::enqueue(
                &mut tx,
                &NewOutbox {
                    ticket_id: None,
                    held_id: None,
                    kind: ticketd::store::outbox::Notice::TicketReceived,
                    automatic: true,
                    mail_from: "support@example.com",
                    recipient: &recipient,
                    message_id: &message_id,
                    subject: &rendered.subject,
                    bytes: &bytes,
                },
                now(),
            )
            .await
            .expect("enqueue");
        }
        tx.commit().await.expect("commit");
        let smtp_settings = settings.smtp.clone().expect("smtp");
        let sender = OutboxSender::new(
            store.clone(),
            Transport::Smtp(Box::new(SmtpTransport::new(
                smtp_settings,
                ticketd::outbound::sender::PARALLEL,
            ))),
            settings.outbox.clone(),
            b"bench bounce key".to_vec(),
            Arc::new(tokio::sync::Notify::new()),
            tokio_util::sync::CancellationToken::new(),
        );
        let start = Instant::now();
        let mut sent = 0;
        while sent < MESSAGES {
            let round = sender.deliver_due().await.expect("deliver");
            assert!(round.sent > 0, "messages left undelivered: {round:?}");
            sent += round.sent;
        }
        let elapsed = start.elapsed();
        store.close().await;
        elapsed
    })
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let server = smtp::SmtpServer::start();
    let mut group = c.benchmark_group("outbox");
    group.sample_size(10);
    group.throughput(Throughput::Elements(MESSAGES as u64));
    group.bench_function("smtp_loopback_2000_messages", |b| {
        b.iter_custom(|iterations| {
            (0..iterations)
                .map(|_| deliver_all(&runtime, &server))
                .sum()
        })
    });
    group.finish();
    println!(
        "SMTP connections opened over the whole run: {} for {} messages",
        server.connections(),
        server.messages().len()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
