//! A full disk: the store and data directory on a small tmpfs that fills up.
//! Pipe mode defers (75) what it cannot record; the daemon acknowledges no
//! IMAP message without its ticket, logs the outage once, and resumes by itself
//! when space is back. Every message ends as a ticket exactly once.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::dovecot::Dovecot;
use crate::support::{BIN, Msg, run_piped, wait_until};

const MESSAGES: usize = 3000;

/// No automatic mail, no agent notices: only the messages fill the disk.
const QUIET: &str = "[notify]\nmax_auto_per_sender_per_hour = 0\nnotify_agents = false\n";

/// A tmpfs mounted for one test; unmounted when dropped.
struct SmallDisk {
    mount: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounts a tmpfs of `megabytes`, or says why it cannot.
    fn mount(megabytes: u32) -> Result<SmallDisk, String> {
        if !nix::unistd::Uid::effective().is_root() {
            return Err("needs root to mount a tmpfs".into());
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mount = dir.path().join("disk");
        std::fs::create_dir(&mount).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={megabytes}m,mode=0755"),
                "tmpfs",
            ])
            .arg(&mount)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mounting a tmpfs is not allowed here: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(SmallDisk { mount, _dir: dir })
    }

    fn path(&self) -> &Path {
        &self.mount
    }

    fn available(&self) -> u64 {
        let stat = nix::sys::statvfs::statvfs(&self.mount).expect("statvfs");
        stat.blocks_available() * stat.fragment_size()
    }

    /// Fills the disk with a ballast file until only `free` bytes are left.
    fn fill_leaving(&self, free: u64) -> PathBuf {
        let ballast = self.mount.join("ballast");
        let size = self.available().saturating_sub(free);
        let mut file = std::fs::File::create(&ballast).expect("ballast");
        let chunk = vec![0u8; 1 << 20];
        let mut written = 0;
        while written < size {
            let n = chunk.len().min((size - written) as usize);
            file.write_all(&chunk[..n]).expect("write ballast");
            written += n as u64;
        }
        ballast
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
    }
}

/// A child process killed when the test ends, even by a failed assertion.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A configuration beside the disk: store and data directory on it.
fn config(dir: &Path, disk: &Path, extra: &str) -> PathBuf {
    let path = dir.join("ticketd.toml");
    std::fs::write(
        &path,
        format!(
            "maildir = []\n\n{extra}\n\n[store]\nurl = \"sqlite://{}/ticketd.db\"\n\n[data]\ndir = \"{}/data\"\n\n{QUIET}",
            disk.display(),
            disk.display()
        ),
    )
    .expect("config");
    path
}

/// A customer's message of about 2 KB, distinct by `n`.
fn message(n: usize) -> Vec<u8> {
    Msg::new(
        &format!("Customer {n} <c{n}@acme.example>"),
        &format!("Question {n}"),
        &format!("full{n}@acme.example"),
    )
    .body(&format!(
        "Hello,\n\n{}\n",
        "the printer on floor 3 is broken again. ".repeat(45)
    ))
    .bytes()
}

/// `ticketd ingest` of one message, as an MTA's pipe: exit code and stderr.
fn pipe(config: &Path, raw: &[u8]) -> (Option<i32>, String) {
    let mut cmd = Command::new(BIN);
    cmd.arg("--config").arg(config).arg("ingest");
    let out = run_piped(cmd, raw);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `ticketd migrate`: creates the store before the disk is filled.
fn migrate(config: &Path) {
    let out = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .arg("migrate")
        .output()
        .expect("migrate");
    assert!(out.status.success(), "{out:?}");
}

/// The subjects of every ticket, each once (a repeat fails the test).
fn ticket_subjects(config: &Path) -> HashSet<String> {
    let out = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(["ticket", "list", "--json"])
        .output()
        .expect("ticket list");
    assert!(
        out.status.success(),
        "ticket list failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tickets: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let mut subjects = HashSet::new();
    for ticket in tickets.as_array().cloned().unwrap_or_default() {
        let subject = ticket["subject"].as_str().unwrap_or("").to_string();
        assert!(
            subjects.insert(subject.clone()),
            "two tickets for {subject}"
        );
    }
    subjects
}

fn expected_subjects() -> HashSet<String> {
    (0..MESSAGES).map(|n| format!("Question {n}")).collect()
}

#[test]
fn pipe_mode_defers_on_a_full_disk_and_each_message_is_one_ticket_after_space_is_freed() {
    let disk = match SmallDisk::mount(40) {
        Ok(disk) => disk,
        Err(why) => {
            crate::support::skip(&why);
            return;
        }
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config(dir.path(), disk.path(), "");
    migrate(&config);
    let ballast = disk.fill_leaving(5 << 20);
    // Two pipes at a time, as an MTA runs several deliveries at once.
    let deferred: Vec<usize> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..2)
            .map(|worker| {
                let config = &config;
                scope.spawn(move || {
                    let mut deferred = Vec::new();
                    for n in (worker..MESSAGES).step_by(2) {
                        match pipe(config, &message(n)) {
                            (Some(0), _) => {}
                            (Some(75), reason) => {
                                assert!(reason.contains("deferred"), "{reason}");
                                deferred.push(n);
                            }
                            (code, reason) => panic!("message {n}: exit {code:?}: {reason}"),
                        }
                    }
                    deferred
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("worker"))
            .collect()
    });
    assert!(
        !deferred.is_empty() && deferred.len() < MESSAGES,
        "the disk should fill part way: {} of {MESSAGES} deferred",
        deferred.len()
    );
    // The MTA tries again once space is back: each is recorded, none twice.
    std::fs::remove_file(ballast).expect("free space");
    for n in &deferred {
        let (code, reason) = pipe(&config, &message(*n));
        assert_eq!(code, Some(0), "message {n} after space came back: {reason}");
    }
    assert_eq!(ticket_subjects(&config), expected_subjects());
}

#[test]
fn the_daemon_acknowledges_nothing_unrecorded_on_a_full_disk_and_resumes_by_itself() {
    let disk = match SmallDisk::mount(128) {
        Ok(disk) => disk,
        Err(why) => {
            crate::support::skip(&why);
            return;
        }
    };
    let dovecot = Dovecot::start(&[("support", "pw")]);
    dovecot.append(
        "support",
        "INBOX",
        &(0..MESSAGES).map(message).collect::<Vec<_>>(),
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config(
        dir.path(),
        disk.path(),
        &format!(
            "[daemon]\nidle_timeout_secs = 60\nreconnect_max_secs = 1\n\n\
             [[imap]]\nhost = \"{}\"\nport = {}\nsecurity = \"plain\"\nuser = \"support\"\npassword = \"pw\"\n",
            dovecot.host(),
            dovecot.plain_port()
        ),
    );
    migrate(&config);
    let ballast = disk.fill_leaving(3 << 20);
    let log = dir.path().join("daemon.log");
    let daemon = KillOnDrop(
        Command::new(BIN)
            .arg("--config")
            .arg(&config)
            .arg("run")
            .env("RUST_LOG", "info,ticketd=debug")
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("spawn daemon"),
    );
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_until(Duration::from_secs(60), "the disk to fill", || {
        log_text().contains("disk is full")
    });
    // Let it retry for a while against the full disk.
    wait_until(Duration::from_secs(30), "several retries", || {
        log_text().matches("still failing").count() >= 3
    });
    // Every message moved to Processed has its ticket.
    let tickets = ticket_subjects(&config);
    let processed = dovecot.messages("support", "Processed");
    assert!(processed.len() < MESSAGES, "the disk filled before the end");
    for message in &processed {
        let text = String::from_utf8_lossy(&message.body);
        let subject = text
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .unwrap_or("")
            .to_string();
        assert!(
            tickets.contains(&subject),
            "{subject} acknowledged without its ticket"
        );
    }
    // One error for the outage, not one per message or per attempt.
    let loud = log_text()
        .lines()
        .filter(|l| (l.contains("ERROR") || l.contains("WARN")) && l.contains("disk is full"))
        .count();
    assert!(
        loud <= 3,
        "{loud} loud lines about the full disk:\n{}",
        log_text()
    );
    std::fs::remove_file(ballast).expect("free space");
    let resumed = (0..1200).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        dovecot.count("support", "Processed") == MESSAGES
    });
    let tail: Vec<String> = log_text()
        .lines()
        .filter(|l| !l.contains("DEBUG") || l.contains("still failing"))
        .map(str::to_string)
        .collect();
    assert!(
        resumed,
        "not every message was processed after space came back:\n{}",
        tail[tail.len().saturating_sub(40)..].join("\n")
    );
    assert_eq!(dovecot.count("support", "INBOX"), 0);
    drop(daemon);
    assert_eq!(ticket_subjects(&config), expected_subjects());
    assert!(log_text().contains("working again"), "{}", log_text());
}
