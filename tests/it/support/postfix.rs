//! A private Postfix for tests: its own configuration and queue directories in
//! a temporary directory, an SMTP listener on a free loopback port, logging to
//! a file. Needs root and Debian's `postfix` package; stopped when dropped.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub struct Postfix {
    pub config_dir: PathBuf,
    pub port: u16,
    log: PathBuf,
}

/// The services a Postfix needs to receive mail, queue it and run a pipe,
/// none chrooted (the queue directory is a fresh temporary one).
const MASTER_CF: &str = "\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
";

impl Postfix {
    /// Why a private Postfix cannot run here, if it cannot.
    pub fn unavailable() -> Option<String> {
        if !nix::unistd::Uid::effective().is_root() {
            return Some("needs root to start Postfix".into());
        }
        if !Path::new("/usr/sbin/postfix").exists() {
            return Some("Postfix is not installed (Debian package postfix)".into());
        }
        None
    }

    /// Starts Postfix in `dir` for the domain `example.com`, with `main_extra`
    /// and `master_extra` appended to its main.cf and master.cf.
    pub fn start(dir: &Path, main_extra: &str, master_extra: &str) -> Postfix {
        let config_dir = dir.join("postfix");
        let queue = dir.join("queue");
        let data = dir.join("postfix-data");
        for d in [&config_dir, &queue, &data] {
            std::fs::create_dir_all(d).expect("postfix directories");
        }
        let postfix_user = nix::unistd::User::from_name("postfix")
            .ok()
            .flatten()
            .expect("the postfix user (created by the package)");
        std::os::unix::fs::chown(&data, Some(postfix_user.uid.as_raw()), None).expect("chown");
        let port = super::wait::free_ports::<1>()[0];
        let log = dir.join("maillog");
        let main = format!(
            "compatibility_level = 3.6\nqueue_directory = {queue}\ndata_directory = {data}\n\
             mail_owner = postfix\nsetgid_group = postdrop\nmyhostname = mx.example.com\n\
             mydomain = example.com\nmydestination = example.com\ninet_interfaces = 127.0.0.1\n\
             inet_protocols = ipv4\nmynetworks = 127.0.0.0/8\nmaillog_file = {log}\n\
             maillog_file_prefixes = {dir}\nalias_maps =\nalias_database =\n\
             smtp_dns_support_level = disabled\nbiff = no\n\n{main_extra}\n",
            queue = queue.display(),
            data = data.display(),
            log = log.display(),
            dir = dir.display(),
        );
        std::fs::write(config_dir.join("main.cf"), main).expect("main.cf");
        let master = format!("127.0.0.1:{port} inet n - n - - smtpd\n{MASTER_CF}{master_extra}\n");
        std::fs::write(config_dir.join("master.cf"), master).expect("master.cf");
        let postfix = Postfix {
            config_dir,
            port,
            log,
        };
        postfix.command("postfix", &["start"]);
        crate::support::wait_until(Duration::from_secs(20), "Postfix to listen", || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        postfix
    }

    /// Runs a Postfix command (`postfix`, `postmap`, `postqueue`…) on this instance.
    pub fn command(&self, program: &str, args: &[&str]) -> String {
        let out = Command::new(program)
            .arg("-c")
            .arg(&self.config_dir)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log_text()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Messages waiting in the queue (`postqueue -p`).
    pub fn queued(&self) -> usize {
        let listing = self.command("postqueue", &["-p"]);
        if listing.contains("Mail queue is empty") {
            return 0;
        }
        listing
            .lines()
            .filter(|l| l.chars().next().is_some_and(|c| c.is_ascii_hexdigit()))
            .count()
    }

    /// Sends one message over SMTP: `data` to the envelope recipients `rcpt`.
    pub fn send(&self, from: &str, rcpt: &[&str], data: &[u8]) {
        let stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to Postfix");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut writer = stream;
        expect_reply(&mut reader, "220");
        let mut say = |command: &str, code: &str| {
            writer
                .write_all(format!("{command}\r\n").as_bytes())
                .expect("send");
            expect_reply(&mut reader, code);
        };
        say("EHLO client.test", "250");
        say(&format!("MAIL FROM:<{from}>"), "250");
        for r in rcpt {
            say(&format!("RCPT TO:<{r}>"), "250");
        }
        say("DATA", "354");
        let mut body = String::new();
        for line in String::from_utf8_lossy(data).lines() {
            if line.starts_with('.') {
                body.push('.');
            }
            body.push_str(line);
            body.push_str("\r\n");
        }
        body.push('.');
        say(&body, "250");
        say("QUIT", "221");
    }
}

/// Reads one (possibly multi-line) SMTP reply and checks its code.
fn expect_reply(reader: &mut BufReader<TcpStream>, code: &str) {
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).expect("SMTP reply");
        assert!(line.starts_with(code), "expected {code}, got {line:?}");
        if line.as_bytes().get(3) != Some(&b'-') {
            return;
        }
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new("postfix")
            .arg("-c")
            .arg(&self.config_dir)
            .arg("stop")
            .output();
    }
}
