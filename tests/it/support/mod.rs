//! Test support: a private ticketd installation (config, SQLite file or PostgreSQL database) driven through the binary.

#![allow(dead_code)]

pub mod dovecot;
pub mod hostile;
pub mod postfix;
pub mod postgres;
pub mod smtp;
pub mod syscalls;
pub mod wait;

pub use wait::wait_until;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_ticketd");

/// The authserv-id the test installations take for their own mail server's.
pub const AUTHSERV_ID: &str = "mx.test";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The user name the tests' commands run as, which the audit log shows.
pub const OPERATOR: &str = "ops-jane";

/// One ticketd installation in a temporary directory.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub store_url: String,
    _database: Option<postgres::TestDatabase>,
}

impl Env {
    pub fn new(backend: Backend) -> Env {
        Env::with_config(backend, "")
    }

    /// `extra` is TOML appended to the generated configuration.
    pub fn with_config(backend: Backend, extra: &str) -> Env {
        let dir = tempfile::tempdir().expect("temp dir");
        let (store_url, database) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}", dir.path().join("ticketd.db").display()),
                None,
            ),
            Backend::Postgres => {
                let db = postgres::TestDatabase::create();
                (db.url.clone(), Some(db))
            }
        };
        let config = dir.path().join("ticketd.toml");
        // `extra` goes first so that its top-level keys (`maildir = []`) stay top-level.
        let mut text = format!(
            "{extra}\n\n[store]\nurl = \"{store_url}\"\n\n[data]\ndir = \"{}\"\n",
            dir.path().join("data").display()
        );
        // Our mail server, as far as agents' mail is concerned, is `mx.test` (see [`Msg::verified`]).
        if !extra.contains("[agents]") {
            text.push_str(&format!("\n[agents]\nauthserv_id = \"{AUTHSERV_ID}\"\n"));
        }
        std::fs::write(&config, text).expect("write config");
        Env {
            dir,
            config,
            store_url,
            _database: database,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The PostgreSQL database of a `Backend::Postgres` installation.
    pub fn database(&self) -> Option<&postgres::TestDatabase> {
        self._database.as_ref()
    }

    pub fn command(&self) -> Command {
        self.command_wrapped(&[])
    }

    /// `ticketd --config …` run by another program (`strace …`, `fiu-run -x`).
    pub fn command_wrapped(&self, prefix: &[String]) -> Command {
        let mut cmd = match prefix.split_first() {
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(BIN);
                cmd
            }
            None => Command::new(BIN),
        };
        cmd.arg("--config").arg(&self.config);
        // The audit log names the operator by user name.
        cmd.env("USER", OPERATOR).env_remove("SUDO_USER");
        cmd.env_remove("TICKETD_CONFIG");
        for (key, _) in std::env::vars() {
            if key.starts_with("TICKETD__") {
                cmd.env_remove(key);
            }
        }
        cmd.current_dir(self.dir.path());
        cmd
    }

    /// Runs `ticketd --config … args`, feeding `stdin`.
    pub fn run_with_input(&self, args: &[&str], stdin: &[u8]) -> Output {
        let mut cmd = self.command();
        cmd.args(args);
        run_piped(cmd, stdin)
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with_input(args, b"")
    }

    /// Runs a command that must succeed; returns its standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "ticketd {args:?} failed with {:?}\nstdout: {}\nstderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let out = self.ok(args);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("ticketd {args:?} printed no JSON ({e}): {out}"))
    }

    /// Pipes one message into `ticketd ingest --json`; returns its report line.
    pub fn ingest(&self, raw: &[u8]) -> Value {
        let out = self.run_with_input(&["ingest", "--json"], raw);
        assert!(
            out.status.success(),
            "ingest failed with {:?}: {}{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let line = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str(line.trim())
            .unwrap_or_else(|e| panic!("bad ingest line ({e}): {line}"))
    }

    pub fn ticket(&self, id: i64) -> Value {
        self.json(&["ticket", "show", &id.to_string(), "--json"])
    }

    pub fn tickets(&self) -> Vec<Value> {
        match self.json(&["ticket", "list", "--json"]) {
            Value::Array(items) => items,
            other => panic!("ticket list is not an array: {other}"),
        }
    }

    pub fn held(&self) -> Vec<Value> {
        match self.json(&["held", "list", "--json"]) {
            Value::Array(items) => items,
            other => panic!("held list is not an array: {other}"),
        }
    }

    /// The usual directory: organization Acme (acme.example), contact Jane, agent Alex.
    pub fn with_acme(self) -> Env {
        self.ok(&[
            "org",
            "add",
            "Acme",
            "--domain",
            "acme.example",
            "--notify",
            "helpdesk@acme.example",
        ]);
        self.ok(&[
            "contact",
            "add",
            "jane@acme.example",
            "--org",
            "Acme",
            "--name",
            "Jane Doe",
        ]);
        self.ok(&["agent", "add", "alex@example.com", "--name", "Alex Agent"]);
        self
    }
}

/// Reads the ticket number out of an ingest report.
pub fn ticket_of(report: &Value) -> i64 {
    report["ticket"]
        .as_i64()
        .unwrap_or_else(|| panic!("report has no ticket: {report}"))
}

pub fn outcome(report: &Value) -> &str {
    report["outcome"].as_str().unwrap_or("")
}

/// A message built header by header.
#[derive(Clone)]
pub struct Msg {
    headers: Vec<(String, String)>,
    body: String,
}

impl Msg {
    pub fn new(from: &str, subject: &str, message_id: &str) -> Msg {
        Msg {
            headers: vec![
                ("From".into(), from.into()),
                ("To".into(), "support@example.com".into()),
                ("Subject".into(), subject.into()),
                ("Message-ID".into(), format!("<{message_id}>")),
                ("Date".into(), "Mon, 23 Nov 2026 10:00:00 +0000".into()),
            ],
            body: "Hello,\n\nplease help.\n".into(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Msg {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn add_header(mut self, name: &str, value: &str) -> Msg {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// As our mail server (`mx.test`) would pass it on after DMARC passed
    /// for the From domain: what an agent's genuine mail looks like.
    pub fn verified(self) -> Msg {
        let from = self
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("From"))
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let domain = from
            .rsplit('@')
            .next()
            .unwrap_or("")
            .trim_end_matches('>')
            .to_string();
        let mut msg = self;
        msg.headers.insert(
            0,
            (
                "Authentication-Results".into(),
                format!(
                    "{AUTHSERV_ID}; dkim=pass header.d={domain}; dmarc=pass header.from={domain}"
                ),
            ),
        );
        msg
    }

    pub fn in_reply_to(self, id: &str) -> Msg {
        self.header("In-Reply-To", &format!("<{id}>"))
            .header("References", &format!("<{id}>"))
    }

    pub fn body(mut self, body: &str) -> Msg {
        self.body = body.into();
        self
    }

    pub fn bytes(&self) -> Vec<u8> {
        let mut out = String::new();
        for (name, value) in &self.headers {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str("\r\n");
        out.push_str(&self.body.replace('\n', "\r\n"));
        out.into_bytes()
    }
}

/// Runs each scenario once on a SQLite file and once on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $scenario() { super::$scenario($crate::support::Backend::Sqlite) } )*
        }
        mod postgres {
            $( #[test] fn $scenario() { super::$scenario($crate::support::Backend::Postgres) } )*
        }
    };
}

/// `ticketd run` as a child process, killed when dropped.
pub struct Daemon {
    child: Option<std::process::Child>,
    pub log: PathBuf,
}

impl Env {
    /// Starts `ticketd run` with this installation's configuration; its log goes to `daemon.log`.
    pub fn start_daemon(&self) -> Daemon {
        self.start_daemon_wrapped(&[], "daemon.log")
    }

    /// Starts `ticketd run` under another program (see [`Env::command_wrapped`]),
    /// logging to `log_name` in the installation's directory.
    pub fn start_daemon_wrapped(&self, prefix: &[String], log_name: &str) -> Daemon {
        let log = self.path().join(log_name);
        let file = std::fs::File::create(&log).expect("daemon log");
        let child = self
            .command_wrapped(prefix)
            .arg("run")
            .env("RUST_LOG", "info,ticketd=debug")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn ticketd run");
        Daemon {
            child: Some(child),
            log,
        }
    }
}

impl Daemon {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The `ticketd` process: the child itself, or the child's child when it
    /// runs under a wrapper that forks (strace).
    pub fn ticketd_pid(&self) -> u32 {
        let pid = self.pid();
        descendants(pid).into_iter().next().unwrap_or(pid)
    }

    /// Sends a signal (`TERM`, `INT`, `KILL`).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process to exit; returns its exit code and how long it took.
    pub fn wait_exit(&mut self, limit: std::time::Duration) -> (Option<i32>, std::time::Duration) {
        let start = std::time::Instant::now();
        let Some(child) = self.child.as_mut() else {
            return (None, start.elapsed());
        };
        while start.elapsed() < limit {
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return (status.code(), start.elapsed());
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!(
            "ticketd run did not exit within {limit:?}; log:\n{}",
            self.log_text()
        );
    }

    /// SIGKILL, no questions asked (to a wrapper's children too, which would outlive it).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            for pid in descendants(child.id()) {
                let _ = Command::new("kill")
                    .arg("-KILL")
                    .arg(pid.to_string())
                    .status();
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `cmd` with `stdin` as its input and its output captured. A command
/// that exits before reading its input closes the pipe, as an MTA sees it.
pub fn run_piped(mut cmd: Command, stdin: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut input = child.stdin.take().expect("stdin");
    let _ = input.write_all(stdin);
    drop(input);
    child.wait_with_output().expect("wait")
}

/// The child processes of `pid`, from `/proc`.
pub fn descendants(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|children| {
            children
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// Says why a test cannot run here. With `TICKETD_TEST_REQUIRE_ALL` set
/// (scripts/test sets it when it runs as root, as CI does) a skip is a failure,
/// so that a machine that should run everything does.
pub fn skip(why: &str) {
    if std::env::var_os("TICKETD_TEST_REQUIRE_ALL").is_some() {
        panic!("this test cannot run here: {why} (TICKETD_TEST_REQUIRE_ALL forbids skipping)");
    }
    eprintln!("skipped: {why}");
}

/// Delivers a message into a Maildir the way an MTA does: write in tmp/, rename into new/.
pub fn deliver_to_maildir(maildir: &Path, name: &str, raw: &[u8]) {
    for sub in ["tmp", "new", "cur"] {
        std::fs::create_dir_all(maildir.join(sub)).expect("maildir dirs");
    }
    let tmp = maildir.join("tmp").join(name);
    std::fs::write(&tmp, raw).expect("write tmp");
    std::fs::rename(&tmp, maildir.join("new").join(name)).expect("rename into new");
}

pub fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn poll_says_whether_the_condition_came_to_hold() {
    use std::time::Duration;
    let mut tries = 0;
    assert!(wait::poll(Duration::from_secs(1), || {
        tries += 1;
        tries == 3
    }));
    assert!(!wait::poll(Duration::from_millis(60), || false));
    let [a, b] = wait::free_ports::<2>();
    assert_ne!(a, b);
}
