//! Ingest throughput: 10,000 generated messages (new tickets and replies) into a SQLite file,
//! synced to disk once per batch of 50 as the daemon's sources do before acknowledging.
//!
//! Run with `cargo bench --bench ingest`; criterion reports messages per second.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ticketd::config::Settings;
use ticketd::ingest::worker::IngestWorker;
use ticketd::mail::RawMessage;

const MESSAGES: usize = 10_000;

/// Messages come in threes: a new ticket, a reply to it by In-Reply-To, a reply by subject tag.
fn generate() -> Vec<Vec<u8>> {
    (0..MESSAGES)
        .map(|i| {
            let first = i - i % 3;
            let ticket = first / 3 + 1;
            let sender = format!("customer{}@org{}.example", first % 400, first % 40);
            let (subject, threading) = match i % 3 {
                0 => (format!("Printer problem {i}"), String::new()),
                1 => (
                    format!("Re: Printer problem {first}"),
                    format!("In-Reply-To: <m{first}@bench.example>\r\nReferences: <m{first}@bench.example>\r\n"),
                ),
                _ => (format!("Re: [Support #{ticket}] Printer problem {first}"), String::new()),
            };
            let body = format!(
                "Hello,\r\n\r\nthis is message {i}. The printer on floor {} shows error E{}.\r\nCould you help?\r\n\r\nRegards,\r\nCustomer\r\n\r\nOn Mon, 23 Nov 2026 at 09:00, Support <support@example.com> wrote:\r\n> quoted earlier text\r\n> more quoted text\r\n",
                i % 7,
                i % 97
            );
            format!(
                "From: Customer <{sender}>\r\nTo: support@example.com\r\nSubject: {subject}\r\nMessage-ID: <m{i}@bench.example>\r\n{threading}Date: Mon, 23 Nov 2026 10:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}"
            )
            .into_bytes()
        })
        .collect()
}

fn ingest_all(runtime: &tokio::runtime::Runtime, messages: &[Vec<u8>]) -> Duration {
    let dir = tempfile::tempdir().expect("temp dir");
    let vars = vec![
        (
            "TICKETD__STORE__URL".to_string(),
            format!("sqlite://{}", dir.path().join("bench.db").display()),
        ),
        (
            "TICKETD__DATA__DIR".to_string(),
            dir.path().join("data").display().to_string(),
        ),
    ];
    let settings = Arc::new(Settings::load_with_env(None, &vars).expect("settings"));
    runtime.block_on(async {
        let worker = IngestWorker::start(settings, None)
            .await
            .expect("ingest worker");
        let start = Instant::now();
        // As the daemon's sources do: a batch of 50 handed over at once, results awaited in
        // order, then made durable (one sync) before the batch would be acknowledged.
        for batch in messages.chunks(50) {
            let reports = futures::future::join_all(
                batch
                    .iter()
                    .map(|raw| worker.ingest(RawMessage::whole(raw.clone()), "bench", None)),
            )
            .await;
            for report in reports {
                report.unwrap_or_else(|e| panic!("ingest failed: {e}"));
            }
            worker
                .sync()
                .await
                .unwrap_or_else(|e| panic!("sync failed: {e}"));
        }
        let elapsed = start.elapsed();
        worker.shutdown().await;
        elapsed
    })
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let messages = generate();
    let mut group = c.benchmark_group("ingest");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(60));
    group.throughput(Throughput::Elements(MESSAGES as u64));
    group.bench_function("sqlite_10000_messages", |b| {
        b.iter_custom(|iterations| {
            (0..iterations)
                .map(|_| ingest_all(&runtime, &messages))
                .sum()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
