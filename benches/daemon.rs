//! End to end: `ticketd run` (release build) reading a real Dovecot over IMAP into a SQLite file.
//!
//! Run with `cargo bench --bench daemon`. It reports
//! (a) a backlog of 10,000 messages appended at once: time until all are in the database, and
//!     messages per second;
//! (b) with the daemon in IDLE, single messages appended one at a time: latency from the end of
//!     the APPEND to the message being committed (p50, p99, max);
//! (c) the daemon's peak resident memory (VmHWM).
//! Targets (issue): at least 1,000 messages/s, p99 under 1 s, peak RSS under 64 MiB.
//! `DAEMON_BENCH_MESSAGES` and `DAEMON_BENCH_SAMPLES` change the sizes.

#[path = "../tests/it/support/dovecot.rs"]
#[allow(dead_code)]
mod dovecot;
#[path = "../tests/it/support/wait.rs"]
#[allow(dead_code)]
mod wait;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::{Connection, SqliteConnection};

const BIN: &str = env!("CARGO_BIN_EXE_ticketd");
const USER: &str = "support";
const PASSWORD: &str = "bench-password";

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Messages come in threes: a new ticket and two replies to it by In-Reply-To.
fn message(i: usize, tag: &str) -> Vec<u8> {
    let first = i - i % 3;
    let sender = format!("customer{}@org{}.example", first % 400, first % 40);
    let (subject, threading) = if i.is_multiple_of(3) {
        (format!("Printer problem {tag}{i}"), String::new())
    } else {
        (
            format!("Re: Printer problem {tag}{first}"),
            format!(
                "In-Reply-To: <{tag}m{first}@bench.example>\r\nReferences: <{tag}m{first}@bench.example>\r\n"
            ),
        )
    };
    format!(
        "From: Customer <{sender}>\r\nTo: support@example.com\r\nSubject: {subject}\r\n\
         Message-ID: <{tag}m{i}@bench.example>\r\n{threading}Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n\
         Hello,\r\n\r\nthis is message {i}. The printer on floor {} shows error E{}.\r\nCould you help?\r\n\r\n\
         Regards,\r\nCustomer\r\n\r\nOn Mon, 23 Nov 2026 at 09:00, Support <support@example.com> wrote:\r\n\
         > quoted earlier text\r\n> more quoted text\r\n",
        i % 7,
        i % 97
    )
    .into_bytes()
}

struct Installation {
    _dir: tempfile::TempDir,
    config: PathBuf,
    db: PathBuf,
    log: PathBuf,
}

impl Installation {
    fn new(dovecot: &dovecot::Dovecot) -> Installation {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("ticketd.db");
        let config = dir.path().join("ticketd.toml");
        let text = format!(
            "maildir = []\n\n[store]\nurl = \"sqlite://{}\"\n\n[data]\ndir = \"{}\"\n\n\
             [daemon]\nidle_timeout_secs = 300\nreconnect_max_secs = 1\n{}\n\
             [[imap]]\nhost = \"{}\"\nport = {}\nsecurity = \"plain\"\nuser = \"{USER}\"\npassword = \"{PASSWORD}\"\n",
            db.display(),
            dir.path().join("data").display(),
            // The shipped default unless DAEMON_BENCH_FETCH_BATCH says otherwise.
            std::env::var("DAEMON_BENCH_FETCH_BATCH")
                .map(|n| format!("fetch_batch = {n}\n"))
                .unwrap_or_default(),
            dovecot.host(),
            dovecot.plain_port(),
        );
        std::fs::write(&config, text).expect("write the configuration");
        let log = dir.path().join("daemon.log");
        let installation = Installation {
            _dir: dir,
            config,
            db,
            log,
        };
        let status = installation
            .command()
            .arg("migrate")
            .stdout(Stdio::null())
            .status()
            .expect("run ticketd migrate");
        assert!(status.success(), "ticketd migrate failed");
        installation
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("--config").arg(&self.config);
        cmd.env_remove("TICKETD_CONFIG");
        for (key, _) in std::env::vars() {
            if key.starts_with("TICKETD__") {
                cmd.env_remove(key);
            }
        }
        cmd
    }

    fn start_daemon(&self) -> Daemon {
        let log = std::fs::File::create(&self.log).expect("daemon log");
        let child = self
            .command()
            .arg("run")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn ticketd run");
        Daemon { child }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

struct Daemon {
    child: Child,
}

impl Daemon {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// (VmHWM, VmRSS) in KiB.
    fn memory_kib(&self) -> (u64, u64) {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmHWM:"), field("VmRSS:"))
    }

    /// User + system CPU time so far, in seconds.
    fn cpu_secs(&self) -> f64 {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        // Fields after the command name (which is in parentheses): utime is the 12th, stime the 13th.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        // USER_HZ is 100 on Linux.
        (ticks(11) + ticks(12)) as f64 / 100.0
    }

    fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && self.alive() {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Committed inbound messages (ticket messages and held ones), read straight from the file.
struct Counter {
    runtime: tokio::runtime::Runtime,
    conn: SqliteConnection,
}

impl Counter {
    fn open(db: &Path) -> Counter {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let conn = runtime
            .block_on(SqliteConnection::connect(&format!(
                "sqlite://{}?mode=ro",
                db.display()
            )))
            .expect("open the SQLite file read-only");
        Counter { runtime, conn }
    }

    fn count(&mut self) -> u64 {
        let conn = &mut self.conn;
        self.runtime
            .block_on(async {
                sqlx::query_scalar::<_, i64>(
                    "SELECT (SELECT count(*) FROM messages WHERE direction = 'inbound') \
                          + (SELECT count(*) FROM held_messages)",
                )
                .fetch_one(conn)
                .await
            })
            .expect("count messages") as u64
    }

    fn tickets(&mut self) -> u64 {
        let conn = &mut self.conn;
        self.runtime
            .block_on(async {
                sqlx::query_scalar::<_, i64>("SELECT count(*) FROM tickets")
                    .fetch_one(conn)
                    .await
            })
            .expect("count tickets") as u64
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Polls `done` every `every` until it holds; panics with the daemon log after `limit`.
fn wait_for(
    what: &str,
    limit: Duration,
    every: Duration,
    mut done: impl FnMut() -> bool,
    log: impl Fn() -> String,
) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}; daemon log:\n{}",
            log()
        );
        std::thread::sleep(every);
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument that does not name us means skip.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if !args.is_empty() && !args.iter().any(|a| "daemon".contains(a.as_str())) {
        return;
    }
    let backlog = env_number("DAEMON_BENCH_MESSAGES", 10_000);
    let samples = env_number("DAEMON_BENCH_SAMPLES", 200);

    // Dovecot's mail on a tmpfs when there is one: creating and unlinking tens of thousands of
    // Maildir files on a disk file system (ext4's inode allocation after many deletions in
    // earlier runs) can cost more than everything else, and varies from run to run.
    let shm = Path::new("/dev/shm");
    let mail_parent = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let dovecot = dovecot::Dovecot::start_in(&mail_parent, &[(USER, PASSWORD)]);
    let installation = Installation::new(&dovecot);
    let mut counter = Counter::open(&installation.db);
    let mut daemon = installation.start_daemon();
    wait_for(
        "the daemon to connect",
        Duration::from_secs(30),
        Duration::from_millis(20),
        || installation.log_text().contains("connected"),
        || installation.log_text(),
    );
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_millis(500) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let (_, rss_idle) = daemon.memory_kib();

    // (a) Backlog: everything appended at once (one MULTIAPPEND per 500 messages), as fast as
    // Dovecot takes it; the clock starts with the first APPEND, the daemon picks mail up as it
    // lands.
    let messages: Vec<Vec<u8>> = (0..backlog).map(|i| message(i, "a")).collect();
    let bytes: usize = messages.iter().map(Vec::len).sum();
    let cpu_start = daemon.cpu_secs();
    let start = Instant::now();
    dovecot.append(USER, "INBOX", &messages);
    let appended = start.elapsed();
    let committed_during_append = counter.count();
    let cpu_at_append = daemon.cpu_secs();
    wait_for(
        "the backlog in the database",
        Duration::from_secs(600),
        // Sparingly: the machine may have few cores, and the daemon and Dovecot need them.
        Duration::from_millis(50),
        || counter.count() >= backlog as u64,
        || installation.log_text(),
    );
    let elapsed = start.elapsed();
    let cpu_backlog = daemon.cpu_secs() - cpu_start;
    let cpu_after_append = daemon.cpu_secs() - cpu_at_append;
    let committed = counter.count();
    let tickets = counter.tickets();
    wait_for(
        "INBOX to empty",
        Duration::from_secs(120),
        Duration::from_millis(100),
        || dovecot.count(USER, "INBOX") == 0,
        || installation.log_text(),
    );
    let (hwm_backlog, _) = daemon.memory_kib();

    // (b) Latency under IDLE: one message at a time, the next once the previous is committed.
    let mut latencies = Vec::with_capacity(samples);
    for i in 0..samples {
        // Let the daemon finish acknowledging and go back to IDLE.
        std::thread::sleep(Duration::from_millis(30));
        let before = counter.count();
        let raw = message(i * 3, "b");
        dovecot.append(USER, "INBOX", &[raw]);
        let done = Instant::now();
        wait_for(
            "a single message in the database",
            Duration::from_secs(60),
            // A cheap indexed count on a read-only connection; fine enough for milliseconds.
            Duration::from_millis(2),
            || counter.count() > before,
            || installation.log_text(),
        );
        latencies.push(done.elapsed());
    }
    latencies.sort();
    let (hwm, rss_end) = daemon.memory_kib();
    assert!(
        daemon.alive(),
        "the daemon died:\n{}",
        installation.log_text()
    );
    drop(daemon);

    let rate = committed as f64 / elapsed.as_secs_f64();
    let p50 = percentile(&latencies, 50.0);
    let p99 = percentile(&latencies, 99.0);
    let max = latencies.last().copied().unwrap_or_default();
    let mib = |kib: u64| kib as f64 / 1024.0;
    let verdict = |ok: bool| if ok { "ok" } else { "MISSED" };
    println!();
    println!(
        "ticketd run against Dovecot (IMAP on loopback, mail under {}, SQLite store in {}, release build)",
        mail_parent.display(),
        std::env::temp_dir().display()
    );
    println!(
        "(a) backlog: {backlog} messages ({:.1} MiB; new tickets and In-Reply-To replies)",
        bytes as f64 / (1024.0 * 1024.0)
    );
    println!(
        "    APPEND took {:.2} s; all {committed} committed after {:.2} s ({tickets} tickets)",
        appended.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    println!(
        "    {committed_during_append} committed by the end of the APPEND; daemon CPU {cpu_backlog:.1} s ({cpu_after_append:.1} s after the APPEND)"
    );
    println!(
        "    throughput: {rate:.0} messages/s end to end   [target >= 1000: {}]",
        verdict(rate >= 1000.0)
    );
    println!("(b) latency APPEND done -> committed, daemon in IDLE, {samples} samples:");
    println!(
        "    p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms   [target p99 < 1 s: {}]",
        p50.as_secs_f64() * 1000.0,
        p99.as_secs_f64() * 1000.0,
        max.as_secs_f64() * 1000.0,
        verdict(p99 < Duration::from_secs(1))
    );
    println!(
        "(c) memory: peak RSS (VmHWM) {:.1} MiB (after the backlog {:.1} MiB; idle at start {:.1} MiB, at end {:.1} MiB)   [target < 64 MiB: {}]",
        mib(hwm),
        mib(hwm_backlog),
        mib(rss_idle),
        mib(rss_end),
        verdict(mib(hwm) < 64.0)
    );
}
