//! Parsing throughput: parse + sanitize + visible reply over the project's fixture corpus.
//!
//! Run with `cargo bench --bench parse`; criterion reports bytes per second.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn corpus() -> Vec<Vec<u8>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/mail");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("tests/fixtures/mail exists")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read(p).expect("read fixture"))
        .collect()
}

fn bench(c: &mut Criterion) {
    let messages = corpus();
    let bytes: usize = messages.iter().map(Vec::len).sum();
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function(format!("fixture_corpus_{}_messages", messages.len()), |b| {
        b.iter(|| {
            for raw in &messages {
                let mail = ticketd::mail::parse(std::hint::black_box(raw));
                std::hint::black_box(&mail.visible_text);
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
