//! `ticketd ingest` as a mail server's pipe runs it: as the service user, from
//! the MTA's own working directory, with every failure but "no message at all"
//! deferring (75) so that no customer's mail is bounced.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::support::{BIN, Backend, Env, Msg, run_piped};

/// The uid and gid of `nobody`, a user every Debian system has.
const NOBODY: u32 = 65534;

fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// Runs `ticketd` with `args` and `stdin`, optionally as `nobody`, in `cwd`.
fn run_ticketd(config: &Path, args: &[&str], stdin: &[u8], as_nobody: bool, cwd: &Path) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("--config").arg(config).args(args).current_dir(cwd);
    cmd.env_remove("TICKETD_CONFIG");
    for (key, _) in std::env::vars() {
        if key.starts_with("TICKETD__") {
            cmd.env_remove(key);
        }
    }
    if as_nobody {
        cmd.uid(NOBODY).gid(NOBODY);
    }
    run_piped(cmd, stdin)
}

fn message(n: u32) -> Vec<u8> {
    Msg::new(
        "Jane <jane@acme.example>",
        "Printer",
        &format!("mta{n}@acme.example"),
    )
    .bytes()
}

fn open_to_everyone(path: &Path) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn every_failure_but_bad_input_defers_with_75_and_a_one_line_reason() {
    if !is_root() {
        crate::support::skip("needs root to run ingest as another user");
        return;
    }
    let env = Env::new(Backend::Sqlite);
    env.ok(&["migrate"]);
    open_to_everyone(env.path());
    let started = Instant::now();
    // The configuration is unreadable by the pipe's user.
    std::fs::set_permissions(&env.config, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let out = run_ticketd(&env.config, &["ingest"], &message(1), true, env.path());
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    let reason = stderr(&out);
    assert!(
        reason.contains("deferred") && reason.contains("Permission denied"),
        "{reason}"
    );
    assert_eq!(reason.trim().lines().count(), 1, "{reason}");
    std::fs::set_permissions(&env.config, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    // An unknown key.
    let bad = env.path().join("bad.toml");
    std::fs::write(&bad, "[tickets]\ntagg = \"Support\"\n").expect("write");
    let out = run_ticketd(&bad, &["ingest"], &message(2), false, env.path());
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    assert!(stderr(&out).contains("tagg"), "{}", stderr(&out));
    // A store the pipe's user cannot write (it belongs to root).
    let out = run_ticketd(&env.config, &["ingest"], &message(3), true, env.path());
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("deferred") && stderr(&out).contains("not writable by nobody"),
        "{}",
        stderr(&out)
    );
    // A wrong flag in the pipe's command line.
    let out = run_ticketd(
        &env.config,
        &["ingest", "--jsn"],
        &message(4),
        false,
        env.path(),
    );
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    // None of these waited for the store's lock timeout (10 s by default).
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert!(env.tickets().is_empty());
    // Input that is no message at all is the one thing that is refused for good.
    let out = run_ticketd(&env.config, &["ingest"], b"", false, env.path());
    assert_eq!(out.status.code(), Some(65));
}

#[test]
fn a_locked_store_defers_and_the_retried_message_becomes_one_ticket() {
    let env = Env::new(Backend::Sqlite);
    env.ok(&["migrate"]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let db = env.path().join("ticketd.db");
    // Another process holds SQLite's write lock.
    let lock = runtime.block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
            .await
            .expect("connect");
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut conn)
            .await
            .expect("lock");
        conn
    });
    let mut cmd = env.command();
    cmd.arg("ingest")
        .env("TICKETD__STORE__CONNECT_TIMEOUT_SECS", "1");
    let out = run_piped(cmd, &message(1));
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    assert!(stderr(&out).contains("deferred"), "{}", stderr(&out));
    runtime.block_on(async {
        use sqlx::Connection;
        lock.close().await.expect("unlock");
    });
    // The MTA tries again: one ticket.
    assert_eq!(env.ingest(&message(1))["outcome"], "created");
    assert_eq!(env.ingest(&message(1))["outcome"], "duplicate");
    assert_eq!(env.tickets().len(), 1);
}

#[test]
fn relative_paths_resolve_against_the_configuration_not_the_working_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("ticketd.toml");
    std::fs::write(
        &config,
        "[store]\nurl = \"sqlite://state/ticketd.db\"\n[data]\ndir = \"state/files\"\n",
    )
    .expect("write");
    // The MTA runs the pipe in its queue directory; an operator anywhere else.
    let elsewhere = tempfile::tempdir().expect("temp dir");
    let out = run_ticketd(&config, &["ingest"], &message(1), false, elsewhere.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(dir.path().join("state/ticketd.db").exists());
    assert!(!elsewhere.path().join("state").exists());
    let out = run_ticketd(&config, &["config", "check"], b"", false, Path::new("/"));
    let shown = String::from_utf8_lossy(&out.stdout);
    let expected = format!("sqlite://{}", dir.path().join("state/ticketd.db").display());
    assert!(shown.contains(&expected), "{shown}");
    assert!(
        shown.contains(&dir.path().join("state/files").display().to_string()),
        "{shown}"
    );
    let out = run_ticketd(
        &config,
        &["ticket", "list", "--json"],
        b"",
        false,
        Path::new("/"),
    );
    let tickets: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(tickets.as_array().map(Vec::len), Some(1));
}

#[test]
fn the_shipped_example_configuration_is_valid_and_names_absolute_paths() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.toml");
    let out = run_ticketd(&example, &["config", "check"], b"", false, Path::new("/"));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("sqlite:///var/lib/ticketd/ticketd.db"),
        "{shown}"
    );
    assert!(shown.contains("\"/var/lib/ticketd/data\""), "{shown}");
    assert!(!shown.contains("/etc/ticketd/data"), "{shown}");
}

/// Every file and directory under `dir` with its owner's uid.
fn owners(dir: &Path) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        for entry in std::fs::read_dir(&path).expect("read dir").flatten() {
            let meta = entry.metadata().expect("metadata");
            out.push((entry.path().display().to_string(), meta.uid()));
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    out
}

#[test]
fn commands_run_as_root_on_the_service_users_store_run_as_that_user() {
    if !is_root() {
        crate::support::skip("needs root");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    open_to_everyone(dir.path());
    let state = dir.path().join("state");
    std::fs::create_dir(&state).expect("state dir");
    std::os::unix::fs::chown(&state, Some(NOBODY), Some(NOBODY)).expect("chown");
    let config = dir.path().join("ticketd.toml");
    std::fs::write(
        &config,
        "[store]\nurl = \"sqlite://state/ticketd.db\"\n[data]\ndir = \"state/data\"\n\
         [tickets]\nunknown_sender = \"hold\"\n",
    )
    .expect("write");
    // The operator, as root: migrate, then release a held message with an attachment.
    let out = run_ticketd(&config, &["migrate"], b"", false, dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("running as nobody"),
        "{}",
        stderr(&out)
    );
    let with_attachment = b"From: Jane <jane@acme.example>\r\nTo: support@example.com\r\n\
        Subject: Logs\r\nMessage-ID: <att1@acme.example>\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n\
        See the log.\r\n--b\r\nContent-Type: text/plain; name=log.txt\r\n\
        Content-Disposition: attachment; filename=log.txt\r\n\r\nline 1\r\nline 2\r\n--b--\r\n";
    let out = run_ticketd(
        &config,
        &["ingest", "--json"],
        with_attachment,
        true,
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = run_ticketd(&config, &["held", "release", "1"], b"", false, dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Nothing root made is left in the way of the daemon and the pipe.
    let root_owned: Vec<_> = owners(&state)
        .into_iter()
        .filter(|(_, uid)| *uid != NOBODY)
        .collect();
    assert!(root_owned.is_empty(), "{root_owned:?}");
    assert!(state.join("data/attachments").exists());
    let out = run_ticketd(&config, &["ingest"], &message(9), true, dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // A store owned by a uid with no user entry: refused, with the command to run instead.
    std::os::unix::fs::chown(&state, Some(4242), None).expect("chown");
    std::os::unix::fs::chown(state.join("ticketd.db"), Some(4242), None).expect("chown");
    let out = run_ticketd(&config, &["ticket", "list"], b"", false, dir.path());
    assert_eq!(out.status.code(), Some(77), "{}", stderr(&out));
    assert!(stderr(&out).contains("sudo -u '#4242'"), "{}", stderr(&out));
}
