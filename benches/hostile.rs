//! Hostile messages through the release `ticketd ingest`, one process each: the
//! time and peak resident memory of each (targets: under 2 s and 256 MiB).
//!
//! Run with `cargo bench --bench hostile`. The messages are generated here
//! (`tests/it/support/hostile.rs`); the store has one agent and the
//! organization that owns the Cc'd colleagues' domain.

#[path = "../tests/it/support/hostile.rs"]
#[allow(dead_code)]
mod hostile;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ticketd");
const MAX_SECS: f64 = 2.0;
const MAX_RSS_MIB: f64 = 256.0;

fn ticketd(config: &std::path::Path, args: &[&str]) {
    let status = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(args)
        .stdout(Stdio::null())
        .status()
        .expect("run ticketd");
    assert!(status.success(), "ticketd {args:?}");
}

/// Runs `ingest` on one message; its wall time, peak RSS (MiB) and report.
/// The child is reaped by `wait4`, which std does not know of.
#[allow(clippy::zombie_processes)]
fn measure(config: &std::path::Path, message: &hostile::Hostile) -> (Duration, f64, String) {
    let started = Instant::now();
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .arg("ingest")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ingest");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut report = String::new();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            message.write_to(&mut |piece| {
                let _ = stdin.write_all(piece);
            });
        });
        let _ = stdout.read_to_string(&mut report);
    });
    // wait4 reports the child's own peak resident set.
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, with pointers to live locals.
    let waited = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert!(waited > 0, "wait4 failed");
    let took = started.elapsed();
    (
        took,
        usage.ru_maxrss as f64 / 1024.0,
        report.trim().to_string(),
    )
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("ticketd.toml");
    std::fs::write(&config, "maildir = []\n").expect("config");
    ticketd(&config, &["migrate"]);
    ticketd(&config, &["agent", "add", "agent@example.com"]);
    ticketd(&config, &["org", "add", "Acme", "--domain", "acme.test"]);
    println!("hostile messages through `ticketd ingest` (release build), one process each");
    println!(
        "{:<24} {:>10} {:>9} {:>10}  outcome",
        "message", "size", "seconds", "peak MiB"
    );
    let mut worst = (0.0f64, 0.0f64);
    for message in hostile::all() {
        let (took, rss, report) = measure(&config, &message);
        let secs = took.as_secs_f64();
        worst = (worst.0.max(secs), worst.1.max(rss));
        let outcome = report
            .split_once(": ")
            .map_or(report.as_str(), |(_, rest)| rest)
            .split(':')
            .next()
            .unwrap_or("");
        println!(
            "{:<24} {:>10} {:>9.2} {:>10.1}  {outcome}",
            message.name, message.size, secs, rss
        );
    }
    println!(
        "worst: {:.2} s [target < {MAX_SECS} s: {}], {:.1} MiB [target < {MAX_RSS_MIB} MiB: {}]",
        worst.0,
        if worst.0 < MAX_SECS { "ok" } else { "MISSED" },
        worst.1,
        if worst.1 < MAX_RSS_MIB {
            "ok"
        } else {
            "MISSED"
        }
    );
}
