//! Nothing is acknowledged before it is on disk. The system calls of the
//! pipe, of the daemon on a Maildir and of the daemon on Dovecot are traced
//! with strace: every write to the store's log must be synced before the
//! acknowledgement that follows it (exit 0, the rename into `cur/`, IMAP's
//! `UID STORE`). And when the sync fails, nothing of the batch is acknowledged.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::dovecot::Dovecot;
use crate::support::syscalls::{self, Event};
use crate::support::{Backend, Env, Msg, count_files, deliver_to_maildir, run_piped, wait_until};

/// No automatic mail and no agent notices: the only writes are the messages'.
const QUIET: &str = "[notify]\nmax_auto_per_sender_per_hour = 0\nnotify_agents = false\n";

fn message(n: usize) -> Vec<u8> {
    Msg::new(
        &format!("Customer {n} <c{n}@acme.example>"),
        &format!("Question {n}"),
        &format!("d{n}@acme.example"),
    )
    .bytes()
}

/// Reads a trace and checks it: `expected` acknowledgements, each after a sync
/// of every log write before it.
fn check_trace(
    trace: &Path,
    database: &Path,
    expected: usize,
    is_ack: impl Fn(&str, &str) -> bool,
) {
    let text = std::fs::read_to_string(trace).expect("trace");
    let events: Vec<Event> = syscalls::events(&text, &database.display().to_string(), is_ack);
    assert!(
        events.iter().any(|e| e.kind == syscalls::Kind::LogWrite),
        "the trace shows no write to the log; is the store path right?"
    );
    assert_eq!(
        syscalls::acknowledgements(&events),
        expected,
        "acknowledgements"
    );
    let unsynced = syscalls::unsynced_acknowledgements(&events);
    assert!(
        unsynced.is_empty(),
        "acknowledged before the log was synced:\n{}",
        unsynced.join("\n")
    );
}

fn skip_without_strace() -> bool {
    if syscalls::strace_works() {
        return false;
    }
    crate::support::skip(
        "strace cannot trace here (install Debian's strace; ptrace must be allowed)",
    );
    true
}

#[test]
fn pipe_mode_syncs_the_log_before_it_exits_zero() {
    if skip_without_strace() {
        return;
    }
    let env = Env::with_config(Backend::Sqlite, &format!("maildir = []\n\n{QUIET}"));
    // As behind Postfix, the daemon has the store open: closing the pipe's
    // connection does not checkpoint, so only an explicit sync makes it durable.
    let daemon = env.start_daemon();
    wait_until(Duration::from_secs(10), "the daemon to start", || {
        daemon.log_text().contains("ticketd is running")
    });
    for n in 0..6 {
        let trace = env.path().join(format!("pipe{n}.trace"));
        let mut cmd = env.command_wrapped(&syscalls::strace_prefix(&trace));
        cmd.arg("ingest");
        let out = run_piped(cmd, &message(n));
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        check_trace(&trace, &env.path().join("ticketd.db"), 1, |name, _| {
            name == "exit_group"
        });
    }
    assert_eq!(env.tickets().len(), 6);
    // A copy of a message another process recorded (and may not have synced) is
    // acknowledged only after a sync too.
    let trace = env.path().join("again.trace");
    let mut cmd = env.command_wrapped(&syscalls::strace_prefix(&trace));
    cmd.arg("ingest");
    let out = run_piped(cmd, &message(0));
    assert_eq!(out.status.code(), Some(0));
    let text = std::fs::read_to_string(&trace).expect("trace");
    let database = env.path().join("ticketd.db").display().to_string();
    let events = syscalls::events(&text, &database, |name, _| name == "exit_group");
    let exit = events
        .iter()
        .find(|e| matches!(e.kind, syscalls::Kind::Ack(_)))
        .expect("the exit");
    assert!(
        events
            .iter()
            .any(|e| e.kind == syscalls::Kind::Sync && e.end < exit.start),
        "a duplicate was acknowledged without a sync"
    );
}

/// Stops a daemon that runs under strace, letting strace write its trace out.
fn stop_traced(mut daemon: crate::support::Daemon) {
    let ticketd = daemon.ticketd_pid();
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(ticketd.to_string())
        .status();
    daemon.wait_exit(Duration::from_secs(20));
}

#[test]
fn the_daemon_syncs_the_log_before_it_files_a_maildir_message() {
    if skip_without_strace() {
        return;
    }
    let env = Env::with_config(
        Backend::Sqlite,
        &format!("[daemon]\nmaildir_poll_millis = 20\n\n[[maildir]]\npath = \"inbox\"\n\n{QUIET}"),
    );
    let trace = env.path().join("daemon.trace");
    let daemon = env.start_daemon_wrapped(&syscalls::strace_prefix(&trace), "daemon.log");
    wait_until(Duration::from_secs(30), "the daemon to start", || {
        daemon.log_text().contains("ticketd is running")
    });
    let inbox = env.path().join("inbox");
    let count = 12;
    for n in 0..count {
        deliver_to_maildir(&inbox, &format!("1700000000.{n}.host"), &message(n));
        wait_until(Duration::from_secs(20), "the message to be filed", || {
            count_files(&inbox.join("cur")) == n + 1
        });
    }
    stop_traced(daemon);
    check_trace(
        &trace,
        &env.path().join("ticketd.db"),
        count,
        |name, args| name.starts_with("rename") && args.contains("/inbox/new/"),
    );
}

#[test]
fn the_daemon_syncs_the_log_before_it_flags_an_imap_message() {
    if skip_without_strace() {
        return;
    }
    let dovecot = Dovecot::start(&[("support", "pw")]);
    let env = Env::with_config(
        Backend::Sqlite,
        &format!(
            "maildir = []\n\n[daemon]\nidle_timeout_secs = 60\nreconnect_max_secs = 1\n\n\
             [[imap]]\nhost = \"{}\"\nport = {}\nsecurity = \"plain\"\nuser = \"support\"\n\
             password = \"pw\"\n\n{QUIET}",
            dovecot.host(),
            dovecot.plain_port()
        ),
    );
    let trace = env.path().join("daemon.trace");
    let daemon = env.start_daemon_wrapped(&syscalls::strace_prefix(&trace), "daemon.log");
    wait_until(Duration::from_secs(30), "the daemon to idle", || {
        daemon.log_text().contains("idle=true")
    });
    let count = 8;
    for n in 0..count {
        dovecot.append("support", "INBOX", &[message(n)]);
        wait_until(Duration::from_secs(20), "the message to be moved", || {
            dovecot.count("support", "Processed") == n + 1
        });
    }
    stop_traced(daemon);
    check_trace(
        &trace,
        &env.path().join("ticketd.db"),
        count,
        |name, args| {
            matches!(name, "write" | "writev" | "sendto" | "sendmsg")
                && args.contains("TCP")
                && args.contains("UID STORE")
        },
    );
}

/// A read transaction held open on the SQLite file by another connection.
/// While it lasts no checkpoint can copy the log back, so the log cannot
/// restart: the writer's commits only append to it and need no sync of their
/// own (restarting the log syncs its new header, which would make the commits
/// themselves fail under an injected sync failure, not the batch's sync).
struct PinnedSnapshot {
    release: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl PinnedSnapshot {
    fn hold(database: &Path) -> PinnedSnapshot {
        use sqlx::Connection;
        let url = format!("sqlite://{}", database.display());
        let (release, released) = std::sync::mpsc::channel::<()>();
        let (held_tx, held) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let mut conn = sqlx::SqliteConnection::connect(&url)
                    .await
                    .expect("open the store");
                sqlx::query("BEGIN")
                    .execute(&mut conn)
                    .await
                    .expect("begin");
                sqlx::query("SELECT count(*) FROM tickets")
                    .fetch_one(&mut conn)
                    .await
                    .expect("read");
                held_tx.send(()).expect("signal");
                let _ = released.recv();
                sqlx::query("COMMIT").execute(&mut conn).await.expect("end");
                conn.close().await.expect("close");
            });
        });
        held.recv().expect("the snapshot to be held");
        PinnedSnapshot { release, thread }
    }

    fn release(self) {
        let _ = self.release.send(());
        self.thread.join().expect("reader thread");
    }
}

#[test]
fn a_failed_sync_acknowledges_nothing_of_its_batch() {
    let fiu_run = Command::new("fiu-run").arg("-h").output();
    if fiu_run.is_err() {
        crate::support::skip("fiu-run is missing (Debian package fiu-utils)");
        return;
    }
    let env = Env::with_config(
        Backend::Sqlite,
        &format!(
            "[daemon]\nmaildir_poll_millis = 20\nreconnect_max_secs = 1\n\n\
             [[maildir]]\npath = \"inbox\"\n\n{QUIET}"
        ),
    );
    let control = env.path().join("fiu");
    let prefix: Vec<String> = vec![
        "fiu-run".into(),
        "-x".into(),
        "-f".into(),
        control.display().to_string(),
    ];
    let daemon = env.start_daemon_wrapped(&prefix, "daemon.log");
    wait_until(Duration::from_secs(20), "the daemon to start", || {
        daemon.log_text().contains("ticketd is running")
    });
    let fiu_ctrl = |command: &str| {
        let out = Command::new("fiu-ctrl")
            .arg("-f")
            .arg(&control)
            .arg("-c")
            .arg(command)
            .arg(daemon.pid().to_string())
            .output()
            .expect("fiu-ctrl");
        assert!(out.status.success(), "fiu-ctrl {command}: {out:?}");
    };
    let inbox = env.path().join("inbox");
    // A first message, filed while syncs work, puts frames in the log that
    // the pinned snapshot keeps there.
    let snapshot = PinnedSnapshot::hold(&env.path().join("ticketd.db"));
    deliver_to_maildir(&inbox, "1700000000.first.host", &message(100));
    wait_until(
        Duration::from_secs(20),
        "the first message to be filed",
        || count_files(&inbox.join("cur")) == 1,
    );
    // From now on every fsync and fdatasync of the daemon fails (EIO).
    fiu_ctrl("enable name=posix/io/sync/*,failinfo=5");
    let count = 10;
    for n in 0..count {
        deliver_to_maildir(&inbox, &format!("1700000000.{n}.host"), &message(n));
    }
    // The messages are committed (another process sees them)...
    wait_until(Duration::from_secs(20), "the tickets", || {
        env.tickets().len() == count + 1
    });
    wait_until(
        Duration::from_secs(10),
        "the sync failure to be reported",
        || daemon.log_text().contains("cannot make the store durable"),
    );
    snapshot.release();
    // ...but none is acknowledged while the sync keeps failing.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(count_files(&inbox.join("cur")), 1, "{}", daemon.log_text());
    assert_eq!(count_files(&inbox.join("new")), count);
    fiu_ctrl("disable name=posix/io/sync/*");
    wait_until(Duration::from_secs(20), "every message to be filed", || {
        count_files(&inbox.join("cur")) == count + 1
    });
    // Read again and recognized: each is still one ticket.
    assert_eq!(env.tickets().len(), count + 1);
    let log = daemon.log_text();
    let errors = log
        .lines()
        .filter(|l| l.contains("ERROR") && l.contains("cannot make the store durable"))
        .count();
    assert_eq!(
        errors, 1,
        "one error for the outage, not one per attempt:\n{log}"
    );
}

#[test]
fn pipe_mode_defers_when_its_sync_fails_and_the_retry_is_one_ticket() {
    if Command::new("fiu-run").arg("-h").output().is_err() {
        crate::support::skip("fiu-run is missing (Debian package fiu-utils)");
        return;
    }
    let env = Env::with_config(Backend::Sqlite, &format!("maildir = []\n\n{QUIET}"));
    env.ok(&["migrate"]);
    // Every fsync and fdatasync of this ingest fails (EIO).
    let prefix: Vec<String> = [
        "fiu-run",
        "-x",
        "-c",
        "enable name=posix/io/sync/*,failinfo=5",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut cmd = env.command_wrapped(&prefix);
    cmd.arg("ingest");
    let out = run_piped(cmd, &message(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "{stderr}");
    // The batch's sync fails, or (when the log is new) the commit that must
    // sync the log's header does: either way, deferred.
    assert!(
        stderr.contains("deferred")
            && (stderr.contains("cannot make the store durable")
                || stderr.contains("disk I/O error")),
        "{stderr}"
    );
    // The MTA delivers it again: recognized (when the failed run's commit
    // went through and only its sync failed) or recorded now; one ticket.
    let report = env.ingest(&message(1));
    assert!(
        report["outcome"] == "duplicate" || report["outcome"] == "created",
        "{report}"
    );
    assert_eq!(env.tickets().len(), 1);
}

#[test]
fn postgres_without_synchronous_commit_is_warned_about() {
    let env = Env::new(Backend::Postgres);
    env.ok(&["migrate"]);
    env.database()
        .expect("a PostgreSQL database")
        .administer("ALTER DATABASE {db} SET synchronous_commit = off");
    let mut cmd = env.command();
    cmd.arg("ingest").env("RUST_LOG", "warn");
    let out = run_piped(cmd, &message(2));
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("synchronous_commit = off"), "{stderr}");
}
