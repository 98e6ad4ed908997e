//! A real Dovecot IMAP server for integration tests and benchmarks: `dovecot -F` as a child
//! process with a generated configuration, its state, logs and mail in a temporary directory,
//! on free loopback ports (plain IMAP offering STARTTLS, and implicit TLS), with a server
//! certificate signed by a CA made at test time.
//!
//! Tests read and write mail through the server itself with a small synchronous IMAP client
//! (APPEND with MULTIAPPEND and LITERAL+, so thousands of messages go in one round trip), so
//! Dovecot's IDLE sees every change the way it sees a delivery.
//!
//! The file is self-contained (it uses no other test module) so benches can include it with
//! `#[path = "../tests/it/support/dovecot.rs"] mod dovecot;`.

// Each peer includes it itself: benches include the peers one by one with `#[path]`.
#[allow(clippy::duplicate_mod)]
#[path = "test_ca.rs"]
mod test_ca;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::wait;

/// The host the servers listen on.
const HOST: &str = "127.0.0.1";
/// The name in the server certificate (it also covers 127.0.0.1).
const TLS_HOST: &str = "localhost";
/// How long `start`/`restart` wait for both ports to greet.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Messages per APPEND command (MULTIAPPEND); each command is one transaction in Dovecot.
const APPEND_CHUNK: usize = 500;
/// Timeout of any single read or write of the test client.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// One message as read back from a mailbox.
#[derive(Clone, Debug)]
pub struct ImapMessage {
    pub uid: u32,
    /// As Dovecot reports them, e.g. `\Seen`.
    pub flags: Vec<String>,
    pub body: Vec<u8>,
}

/// A Dovecot instance; dropping it stops the server and removes everything.
pub struct Dovecot {
    dir: tempfile::TempDir,
    config: PathBuf,
    log: PathBuf,
    ca_path: PathBuf,
    users: Vec<(String, String)>,
    plain_port: u16,
    tls_port: u16,
    child: Mutex<Option<Child>>,
}

impl Dovecot {
    /// Starts Dovecot with these `(user, password)` accounts; returns once both ports greet.
    pub fn start(users: &[(&str, &str)]) -> Dovecot {
        Dovecot::start_in(&std::env::temp_dir(), users)
    }

    /// Like [`Dovecot::start`], with its directory (mail included) under `parent`, e.g. a
    /// tmpfs so that a benchmark measures IMAP and not the file system.
    pub fn start_in(parent: &Path, users: &[(&str, &str)]) -> Dovecot {
        let binary = dovecot_binary();
        let dir = tempfile::Builder::new()
            .prefix("ticketd-dovecot-")
            .tempdir_in(parent)
            .expect("temp dir for Dovecot");
        let root = dir.path().to_path_buf();
        let (mail_uid, mail_gid) = mail_owner();
        // The tempdir is 0700; Dovecot's unprivileged processes must reach into it.
        set_mode(&root, 0o755);
        for sub in ["base", "state", "home", "tls"] {
            std::fs::create_dir_all(root.join(sub)).expect("Dovecot directories");
            set_mode(&root.join(sub), 0o755);
        }
        std::os::unix::fs::chown(root.join("home"), Some(mail_uid), Some(mail_gid))
            .expect("give the mail home to the mail user");

        let ca_path = root.join("tls/ca.pem");
        let (cert_path, key_path) = tls_material(&root.join("tls"), &ca_path);

        let passwd = root.join("passwd");
        let mut lines = String::new();
        for (user, password) in users {
            assert!(
                !user.contains(':') && !password.contains(':') && !password.contains('\n'),
                "test users and passwords may not contain ':' or newlines"
            );
            lines.push_str(&format!("{user}:{{PLAIN}}{password}\n"));
        }
        std::fs::write(&passwd, lines).expect("write the Dovecot passwd file");
        set_mode(&passwd, 0o644);

        let mut dovecot = Dovecot {
            config: root.join("dovecot.conf"),
            log: root.join("dovecot.log"),
            dir,
            ca_path,
            users: users
                .iter()
                .map(|(u, p)| (u.to_string(), p.to_string()))
                .collect(),
            plain_port: 0,
            tls_port: 0,
            child: Mutex::new(None),
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            [dovecot.plain_port, dovecot.tls_port] = wait::free_ports();
            let text = config_text(&ConfigParams {
                root: &root,
                passwd: &passwd,
                cert: &cert_path,
                key: &key_path,
                plain_port: dovecot.plain_port,
                tls_port: dovecot.tls_port,
                mail_uid,
                mail_gid,
            });
            std::fs::write(&dovecot.config, text).expect("write the Dovecot configuration");
            match dovecot.launch(&binary) {
                Ok(()) => return dovecot,
                // Another process may have taken a port between our probe and Dovecot's bind.
                Err(e) if attempt < 3 => {
                    eprintln!(
                        "Dovecot did not start ({e}); trying other ports\n{}",
                        dovecot.log_tail()
                    );
                    dovecot.halt();
                }
                Err(e) => panic!("Dovecot did not start: {e}\n{}", dovecot.log_tail()),
            }
        }
    }

    pub fn host(&self) -> &str {
        HOST
    }

    /// The name the server certificate is issued to (verify TLS against this).
    pub fn tls_host(&self) -> &str {
        TLS_HOST
    }

    /// Plain IMAP; it also offers STARTTLS.
    pub fn plain_port(&self) -> u16 {
        self.plain_port
    }

    /// IMAP over implicit TLS (IMAPS).
    pub fn tls_port(&self) -> u16 {
        self.tls_port
    }

    /// The PEM file of the test CA that signed the server certificate.
    pub fn ca_pem_path(&self) -> &Path {
        &self.ca_path
    }

    /// The directory holding the configuration, state, log and mail.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The process id of the Dovecot master, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child().as_ref().map(|c| c.id())
    }

    fn child(&self) -> MutexGuard<'_, Option<Child>> {
        self.child.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Dovecot's own log (errors, logins).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the server (SIGTERM, then SIGKILL after 10 s); connections are closed. Mail stays.
    pub fn stop(&mut self) {
        self.halt();
    }

    /// Starts the server again on the same ports with the same mail.
    pub fn restart(&mut self) {
        self.relaunch();
    }

    fn halt(&self) {
        let Some(mut child) = self.child().take() else {
            return;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .stderr(Stdio::null())
            .status();
        let exited = wait::poll(Duration::from_secs(10), || {
            !matches!(child.try_wait(), Ok(None))
        });
        if !exited {
            let _ = child.kill();
            let _ = child.wait();
        }
        // The master is gone; wait for the ports to be free again so a restart can bind them.
        wait::poll(Duration::from_secs(10), || {
            TcpStream::connect((HOST, self.plain_port)).is_err()
                && TcpStream::connect((HOST, self.tls_port)).is_err()
        });
    }

    fn relaunch(&self) {
        self.halt();
        let binary = dovecot_binary();
        if let Err(e) = self.launch(&binary) {
            panic!("Dovecot did not restart: {e}\n{}", self.log_tail());
        }
    }

    /// Appends messages to `mailbox` (created if missing) through IMAP APPEND.
    pub fn append(&self, user: &str, mailbox: &str, messages: &[Vec<u8>]) {
        if messages.is_empty() {
            return;
        }
        let mut client = self.client(user);
        let mailbox = quote(mailbox);
        // CREATE fails harmlessly when the mailbox exists (INBOX always does).
        let _ = client.command(&format!("CREATE {mailbox}"));
        for chunk in messages.chunks(APPEND_CHUNK) {
            client.append(&mailbox, chunk).unwrap_or_else(|e| {
                panic!("APPEND to {mailbox} as {user}: {e}\n{}", self.log_tail())
            });
        }
        client.logout();
    }

    /// Every message of `mailbox`, by UID; empty if the mailbox does not exist.
    pub fn messages(&self, user: &str, mailbox: &str) -> Vec<ImapMessage> {
        let mut client = self.client(user);
        if client
            .command(&format!("EXAMINE {}", quote(mailbox)))
            .is_err()
        {
            client.logout();
            return Vec::new();
        }
        let responses = client
            .command("UID FETCH 1:* (UID FLAGS BODY.PEEK[])")
            .unwrap_or_else(|e| panic!("FETCH from {mailbox}: {e}"));
        client.logout();
        let mut messages: Vec<ImapMessage> =
            responses.iter().filter_map(|r| parse_fetch(r)).collect();
        messages.sort_by_key(|m| m.uid);
        messages
    }

    /// The number of messages in `mailbox`; 0 if it does not exist.
    pub fn count(&self, user: &str, mailbox: &str) -> usize {
        self.status(user, mailbox, "MESSAGES").unwrap_or(0) as usize
    }

    /// The UIDVALIDITY of `mailbox`.
    pub fn uid_validity(&self, user: &str, mailbox: &str) -> u32 {
        self.status(user, mailbox, "UIDVALIDITY")
            .unwrap_or_else(|| panic!("no UIDVALIDITY for {user}'s {mailbox}")) as u32
    }

    /// Makes Dovecot give `mailbox` a new UIDVALIDITY (and renumber its messages from 1):
    /// with the server stopped, its UID list is replaced and its indexes removed.
    pub fn reset_uid_validity(&self, user: &str, mailbox: &str) {
        let old = self.uid_validity(user, mailbox);
        self.halt();
        let maildir = self.maildir(user, mailbox);
        assert!(maildir.is_dir(), "no maildir {}", maildir.display());
        let root = self.maildir(user, "INBOX");
        for dir in [&maildir, &root] {
            for entry in std::fs::read_dir(dir).expect("read the maildir").flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let mailbox_index = dir == &maildir && name.starts_with("dovecot.index");
                // The mailbox list index caches every mailbox's UIDVALIDITY.
                let list_index = dir == &root && name.starts_with("dovecot.list.index");
                if mailbox_index || list_index {
                    std::fs::remove_file(entry.path()).expect("remove a Dovecot index");
                }
            }
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or(0);
        let new = now.max(old.wrapping_add(1)).max(1);
        // An empty version-3 list: every file in the maildir gets a new UID from 1.
        let uidlist = maildir.join("dovecot-uidlist");
        std::fs::write(&uidlist, format!("3 V{new} N1\n")).expect("write dovecot-uidlist");
        let (uid, gid) = mail_owner();
        let _ = std::os::unix::fs::chown(&uidlist, Some(uid), Some(gid));
        self.relaunch();
    }

    fn maildir(&self, user: &str, mailbox: &str) -> PathBuf {
        let root = self.dir.path().join("home").join(user).join("Maildir");
        if mailbox.eq_ignore_ascii_case("INBOX") {
            root
        } else {
            root.join(format!(".{}", mailbox.replace('/', ".")))
        }
    }

    fn status(&self, user: &str, mailbox: &str, item: &str) -> Option<u64> {
        let mut client = self.client(user);
        let responses = client.command(&format!("STATUS {} ({item})", quote(mailbox)));
        client.logout();
        let responses = responses.ok()?;
        responses.iter().find_map(|r| {
            let tokens = parse_tokens(r).ok()?;
            if !matches!(tokens.get(1), Some(Token::Atom(a)) if a.eq_ignore_ascii_case("STATUS")) {
                return None;
            }
            let Some(Token::List(items)) = tokens.last() else {
                return None;
            };
            items.chunks(2).find_map(|pair| match pair {
                [Token::Atom(name), value] if name.eq_ignore_ascii_case(item) => {
                    value.text().parse().ok()
                }
                _ => None,
            })
        })
    }

    fn client(&self, user: &str) -> Client {
        let password = self
            .users
            .iter()
            .find(|(u, _)| u == user)
            .map(|(_, p)| p.clone())
            .unwrap_or_else(|| panic!("{user} is not a user of this Dovecot"));
        let mut client = Client::connect(self.plain_port)
            .unwrap_or_else(|e| panic!("connect to Dovecot: {e}\n{}", self.log_tail()));
        client
            .command(&format!("LOGIN {} {}", quote(user), quote(&password)))
            .unwrap_or_else(|e| panic!("LOGIN as {user}: {e}\n{}", self.log_tail()));
        client
    }

    fn launch(&self, binary: &Path) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("dovecot.stderr"))
            .map_err(|e| e.to_string())?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(binary)
            .arg("-F")
            .arg("-c")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
        *self.child() = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            {
                let mut guard = self.child();
                if let Some(child) = guard.as_mut()
                    && let Ok(Some(status)) = child.try_wait()
                {
                    *guard = None;
                    return Err(format!("dovecot exited with {status}"));
                }
            }
            if greets(self.plain_port) && tls_accepts(self.tls_port) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("no greeting within {START_TIMEOUT:?}"));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn log_tail(&self) -> String {
        let mut text = String::new();
        for name in ["dovecot.stderr", "dovecot.log"] {
            let content = std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
            let lines: Vec<&str> = content.lines().collect();
            let start = lines.len().saturating_sub(40);
            text.push_str(&format!("--- {name} ---\n{}\n", lines[start..].join("\n")));
        }
        text
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
    }
}

fn dovecot_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("DOVECOT") {
        return PathBuf::from(path);
    }
    for candidate in [
        "/usr/sbin/dovecot",
        "/usr/local/sbin/dovecot",
        "/opt/homebrew/sbin/dovecot",
    ] {
        if Path::new(candidate).exists() {
            return PathBuf::from(candidate);
        }
    }
    panic!("Dovecot is needed for this test: install dovecot-imapd (or set DOVECOT to the binary)")
}

fn current_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    // A file we just made belongs to us.
    let probe = tempfile::NamedTempFile::new().expect("probe file");
    probe.as_file().metadata().expect("probe metadata").uid()
}

/// `(uid, gid)` of a passwd entry.
fn passwd_entry(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() >= 4 && fields[0] == name {
            Some((fields[2].parse().ok()?, fields[3].parse().ok()?))
        } else {
            None
        }
    })
}

fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() >= 4 && fields[2].parse() == Ok(uid)).then(|| fields[0].to_string())
    })
}

/// Who owns the mail: the current user, or (as root, which Dovecot refuses for mail) the
/// `dovecot` system user the package creates.
fn mail_owner() -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    let uid = current_uid();
    if uid != 0 {
        let probe = tempfile::NamedTempFile::new().expect("probe file");
        return (
            uid,
            probe.as_file().metadata().expect("probe metadata").gid(),
        );
    }
    passwd_entry("dovecot")
        .expect("running as root needs the `dovecot` system user (from the dovecot-core package)")
}

/// `(login user, internal user)`: the package's users as root, else the current user.
fn service_users() -> (String, String) {
    let uid = current_uid();
    if uid == 0 {
        let login = if passwd_entry("dovenull").is_some() {
            "dovenull"
        } else {
            "dovecot"
        };
        (login.to_string(), "dovecot".to_string())
    } else {
        let me = user_name(uid)
            .or_else(|| std::env::var("USER").ok())
            .expect("the name of the current user");
        (me.clone(), me)
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

struct ConfigParams<'a> {
    root: &'a Path,
    passwd: &'a Path,
    cert: &'a Path,
    key: &'a Path,
    plain_port: u16,
    tls_port: u16,
    mail_uid: u32,
    mail_gid: u32,
}

fn config_text(p: &ConfigParams) -> String {
    let (login_user, internal_user) = service_users();
    let root = p.root.display();
    let stamp = p
        .root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(
        r#"# Generated by the ticketd test harness.
protocols = imap
listen = {HOST}
instance_name = ticketd-test-{stamp}
base_dir = {root}/base
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
debug_log_path = {root}/dovecot.log
default_login_user = {login_user}
default_internal_user = {internal_user}
default_internal_group = {internal_group}
first_valid_uid = {uid}
last_valid_uid = 0
first_valid_gid = {gid}
disable_plaintext_auth = no
auth_mechanisms = plain login
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
mail_location = maildir:~/Maildir
mail_fsync = never
mailbox_idle_check_interval = 1 secs
shutdown_clients = yes
login_greeting = Dovecot ready for ticketd tests.

passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {passwd}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}

service imap-login {{
  chroot =
  inet_listener imap {{
    address = {HOST}
    port = {plain}
  }}
  inet_listener imaps {{
    address = {HOST}
    port = {tls}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service submission-login {{
  inet_listener submission {{
    port = 0
  }}
}}
service lmtp {{
  unix_listener lmtp {{
    mode = 0600
  }}
}}
service anvil {{
  chroot =
}}
service stats {{
  chroot =
}}
"#,
        internal_group = if current_uid() == 0 {
            "dovecot".to_string()
        } else {
            internal_user.clone()
        },
        uid = p.mail_uid,
        gid = p.mail_gid,
        cert = p.cert.display(),
        key = p.key.display(),
        passwd = p.passwd.display(),
        plain = p.plain_port,
        tls = p.tls_port,
    )
}

/// Makes a test CA (written to `ca_path`) and a server certificate for `localhost` and
/// `127.0.0.1` signed by it; returns the paths of the server certificate and key.
fn tls_material(dir: &Path, ca_path: &Path) -> (PathBuf, PathBuf) {
    let certificates = test_ca::make("ticketd Dovecot test CA");
    std::fs::write(ca_path, &certificates.ca_pem).expect("write the test CA");
    let cert = dir.join("server.pem");
    let key = dir.join("server.key");
    std::fs::write(&cert, &certificates.server_pem).expect("write the server certificate");
    std::fs::write(&key, &certificates.server_key_pem).expect("write the server key");
    set_mode(ca_path, 0o644);
    set_mode(&cert, 0o644);
    // Dovecot's master (which reads `<file` settings) runs as us.
    set_mode(&key, 0o600);
    (cert, key)
}

/// Whether the plain port answers with an IMAP greeting.
fn greets(port: u16) -> bool {
    let Ok(stream) =
        TcpStream::connect_timeout(&(Ipv4Addr::LOCALHOST, port).into(), Duration::from_secs(1))
    else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with("* OK")
}

fn tls_accepts(port: u16) -> bool {
    TcpStream::connect_timeout(&(Ipv4Addr::LOCALHOST, port).into(), Duration::from_secs(1)).is_ok()
}

/// An IMAP quoted string.
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A minimal synchronous IMAP client for the harness (plain port, LOGIN).
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    tag: u32,
}

impl Client {
    fn connect(port: u16) -> io::Result<Client> {
        let stream = TcpStream::connect((HOST, port))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        let writer = stream.try_clone()?;
        let mut client = Client {
            reader: BufReader::new(stream),
            writer,
            tag: 0,
        };
        let greeting = client.read_response()?;
        if !greeting.starts_with(b"* OK") {
            return Err(io::Error::other(format!(
                "unexpected greeting {}",
                String::from_utf8_lossy(&greeting)
            )));
        }
        Ok(client)
    }

    fn next_tag(&mut self) -> String {
        self.tag += 1;
        format!("t{}", self.tag)
    }

    /// Sends one command; returns the untagged responses if it ends in OK.
    fn command(&mut self, command: &str) -> io::Result<Vec<Vec<u8>>> {
        let tag = self.next_tag();
        self.writer
            .write_all(format!("{tag} {command}\r\n").as_bytes())?;
        self.finish(&tag)
    }

    /// One APPEND of all `messages` (MULTIAPPEND, LITERAL+: no round trip per message).
    fn append(&mut self, mailbox: &str, messages: &[Vec<u8>]) -> io::Result<()> {
        let tag = self.next_tag();
        let size: usize = messages.iter().map(|m| m.len() + 24).sum();
        let mut out = Vec::with_capacity(size + 64);
        out.extend_from_slice(format!("{tag} APPEND {mailbox}").as_bytes());
        for message in messages {
            out.extend_from_slice(format!(" {{{}+}}\r\n", message.len()).as_bytes());
            out.extend_from_slice(message);
        }
        out.extend_from_slice(b"\r\n");
        self.writer.write_all(&out)?;
        self.finish(&tag).map(|_| ())
    }

    fn finish(&mut self, tag: &str) -> io::Result<Vec<Vec<u8>>> {
        let mut untagged = Vec::new();
        loop {
            let response = self.read_response()?;
            if response.starts_with(format!("{tag} ").as_bytes()) {
                let status = &response[tag.len() + 1..];
                if status.starts_with(b"OK") {
                    return Ok(untagged);
                }
                return Err(io::Error::other(
                    String::from_utf8_lossy(&response).trim_end().to_string(),
                ));
            }
            untagged.push(response);
        }
    }

    /// One response: a line, with any literals (`{n}` CRLF and n bytes) and the rest inline.
    fn read_response(&mut self) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        loop {
            let start = out.len();
            let n = self.reader.read_until(b'\n', &mut out)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the connection",
                ));
            }
            let line = &out[start..];
            match literal_length(line) {
                Some(len) => {
                    let at = out.len();
                    out.resize(at + len, 0);
                    self.reader.read_exact(&mut out[at..])?;
                }
                None => return Ok(out),
            }
        }
    }

    fn logout(mut self) {
        // No need to wait for BYE.
        let tag = self.next_tag();
        let _ = self
            .writer
            .write_all(format!("{tag} LOGOUT\r\n").as_bytes());
    }
}

/// The `n` of a line ending in `{n}` CRLF.
fn literal_length(line: &[u8]) -> Option<usize> {
    let line = line
        .strip_suffix(b"\r\n")
        .or_else(|| line.strip_suffix(b"\n"))?;
    let line = line.strip_suffix(b"}")?;
    let open = line.iter().rposition(|&b| b == b'{')?;
    std::str::from_utf8(&line[open + 1..]).ok()?.parse().ok()
}

#[derive(Debug, Clone)]
enum Token {
    Atom(String),
    Bytes(Vec<u8>),
    List(Vec<Token>),
}

impl Token {
    fn text(&self) -> String {
        match self {
            Token::Atom(a) => a.clone(),
            Token::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
            Token::List(_) => String::new(),
        }
    }
}

/// Tokens of one response: atoms, quoted strings, literals, parenthesized lists.
fn parse_tokens(input: &[u8]) -> Result<Vec<Token>, String> {
    let mut pos = 0;
    let tokens = parse_list(input, &mut pos, false)?;
    Ok(tokens)
}

fn parse_list(input: &[u8], pos: &mut usize, nested: bool) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    while *pos < input.len() {
        match input[*pos] {
            b' ' | b'\r' | b'\n' => *pos += 1,
            b'(' => {
                *pos += 1;
                tokens.push(Token::List(parse_list(input, pos, true)?));
            }
            b')' => {
                *pos += 1;
                if nested {
                    return Ok(tokens);
                }
            }
            b'"' => {
                *pos += 1;
                let mut s = Vec::new();
                while *pos < input.len() && input[*pos] != b'"' {
                    if input[*pos] == b'\\' {
                        *pos += 1;
                    }
                    if let Some(&b) = input.get(*pos) {
                        s.push(b);
                    }
                    *pos += 1;
                }
                *pos += 1;
                tokens.push(Token::Bytes(s));
            }
            b'{' => {
                let close = input[*pos..]
                    .iter()
                    .position(|&b| b == b'}')
                    .ok_or("unterminated literal length")?;
                let len: usize = std::str::from_utf8(&input[*pos + 1..*pos + close])
                    .ok()
                    .and_then(|s| s.trim_end_matches('+').parse().ok())
                    .ok_or("bad literal length")?;
                *pos += close + 1;
                if input.get(*pos..*pos + 2) == Some(b"\r\n") {
                    *pos += 2;
                }
                let end = (*pos + len).min(input.len());
                tokens.push(Token::Bytes(input[*pos..end].to_vec()));
                *pos = end;
            }
            _ => {
                let start = *pos;
                let mut depth = 0usize;
                while *pos < input.len() {
                    let b = input[*pos];
                    // `BODY[...]` may hold spaces and parentheses inside its brackets.
                    match b {
                        b'[' => depth += 1,
                        b']' => depth = depth.saturating_sub(1),
                        b' ' | b'(' | b')' | b'\r' | b'\n' if depth == 0 => break,
                        _ => {}
                    }
                    *pos += 1;
                }
                tokens.push(Token::Atom(
                    String::from_utf8_lossy(&input[start..*pos]).into_owned(),
                ));
            }
        }
    }
    Ok(tokens)
}

/// `* n FETCH (UID u FLAGS (...) BODY[] {len} ...)` → the message.
fn parse_fetch(response: &[u8]) -> Option<ImapMessage> {
    let tokens = parse_tokens(response).ok()?;
    if !matches!(tokens.get(2), Some(Token::Atom(a)) if a.eq_ignore_ascii_case("FETCH")) {
        return None;
    }
    let Some(Token::List(items)) = tokens.get(3) else {
        return None;
    };
    let mut message = ImapMessage {
        uid: 0,
        flags: Vec::new(),
        body: Vec::new(),
    };
    for pair in items.chunks(2) {
        let [Token::Atom(name), value] = pair else {
            continue;
        };
        match (name.to_ascii_uppercase().as_str(), value) {
            ("UID", v) => message.uid = v.text().parse().ok()?,
            ("FLAGS", Token::List(flags)) => {
                message.flags = flags.iter().map(Token::text).collect()
            }
            ("BODY[]", Token::Bytes(body)) => message.body = body.clone(),
            _ => {}
        }
    }
    Some(message)
}
