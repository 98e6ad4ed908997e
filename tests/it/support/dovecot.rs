//! A real Dovecot IMAP server for tests: a child process with a generated
//! configuration on free loopback ports (plain with STARTTLS, and implicit TLS
//! with a certificate from a CA made at test time), mail in a temporary directory.
//!
//! Messages are put in and read back over IMAP with async-imap, as a mail
//! client would, so Dovecot notices them like any delivered mail.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_imap::Session;
use futures::TryStreamExt;

const DOVECOT: &str = "/usr/sbin/dovecot";

/// One message as the test sees it in a mailbox.
#[derive(Debug)]
pub struct ImapMessage {
    pub uid: u32,
    pub flags: Vec<String>,
    pub body: Vec<u8>,
}

pub struct Dovecot {
    dir: tempfile::TempDir,
    child: std::sync::Mutex<Option<Child>>,
    plain_port: u16,
    tls_port: u16,
    users: Vec<(String, String)>,
    runtime: tokio::runtime::Runtime,
}

impl Dovecot {
    /// Starts Dovecot with these users (user, password); returns once both ports answer.
    pub fn start(users: &[(&str, &str)]) -> Dovecot {
        assert!(
            Path::new(DOVECOT).exists(),
            "{DOVECOT} is missing: install Debian's dovecot-imapd (scripts/test does)"
        );
        let dir = tempfile::tempdir().expect("temp dir for Dovecot");
        let dovecot = Dovecot {
            plain_port: free_port(),
            tls_port: free_port(),
            users: users
                .iter()
                .map(|(u, p)| (u.to_string(), p.to_string()))
                .collect(),
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime for the IMAP test client"),
            child: std::sync::Mutex::new(None),
            dir,
        };
        dovecot.write_configuration();
        dovecot.spawn();
        dovecot
    }

    pub fn host(&self) -> &str {
        "127.0.0.1"
    }

    /// The name in the server certificate.
    pub fn tls_host(&self) -> &str {
        "localhost"
    }

    /// Plain IMAP, offering STARTTLS.
    pub fn plain_port(&self) -> u16 {
        self.plain_port
    }

    /// IMAP over implicit TLS.
    pub fn tls_port(&self) -> u16 {
        self.tls_port
    }

    /// The CA that signed the server certificate.
    pub fn ca_pem_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Stops Dovecot with all its processes, as a service manager would: the
    /// connections of clients end too (Dovecot's own SIGTERM leaves them open).
    pub fn stop(&self) {
        let Some(mut child) = self.child.lock().expect("Dovecot child lock").take() else {
            return;
        };
        let group = format!("-{}", child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline && !matches!(child.try_wait(), Ok(Some(_))) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = child.kill();
        let _ = child.wait();
        self.wait_port_closed();
    }

    /// Starts Dovecot again on the same ports with the same mail.
    pub fn restart(&self) {
        self.stop();
        self.spawn();
    }

    /// APPENDs `messages` to `mailbox` of `user`, creating the mailbox when missing.
    pub fn append(&self, user: &str, mailbox: &str, messages: &[Vec<u8>]) {
        self.with_session(user, async |session| {
            if !mailbox.eq_ignore_ascii_case("INBOX") {
                let _ = session.create(mailbox).await;
            }
            for message in messages {
                session
                    .append(mailbox, None, None, message)
                    .await
                    .unwrap_or_else(|e| panic!("APPEND to {mailbox} failed: {e}"));
            }
        });
    }

    /// The messages in `mailbox` (empty when it does not exist).
    pub fn messages(&self, user: &str, mailbox: &str) -> Vec<ImapMessage> {
        self.with_session(user, async |session| {
            let Ok(selected) = session.examine(mailbox).await else {
                return Vec::new();
            };
            if selected.exists == 0 {
                return Vec::new();
            }
            let fetches: Vec<_> = session
                .fetch("1:*", "(UID FLAGS BODY.PEEK[])")
                .await
                .expect("FETCH")
                .try_collect()
                .await
                .expect("FETCH responses");
            fetches
                .iter()
                .map(|f| ImapMessage {
                    uid: f.uid.unwrap_or(0),
                    flags: f.flags().map(|flag| format!("{flag:?}")).collect(),
                    body: f.body().unwrap_or_default().to_vec(),
                })
                .collect()
        })
    }

    /// How many messages `mailbox` holds (0 when it does not exist).
    pub fn count(&self, user: &str, mailbox: &str) -> usize {
        self.with_session(user, async |session| {
            session
                .status(mailbox, "(MESSAGES)")
                .await
                .map_or(0, |status| status.exists as usize)
        })
    }

    pub fn uid_validity(&self, user: &str, mailbox: &str) -> u32 {
        self.with_session(user, async |session| {
            session
                .status(mailbox, "(UIDVALIDITY)")
                .await
                .expect("STATUS UIDVALIDITY")
                .uid_validity
                .expect("a UIDVALIDITY")
        })
    }

    /// Makes Dovecot forget the UIDs of `mailbox`, as after a restore from backup:
    /// it assigns a new UIDVALIDITY and numbers the messages afresh.
    pub fn reset_uid_validity(&self, user: &str, mailbox: &str) {
        self.stop();
        let mut maildir = self.dir.path().join("mail").join(user);
        if !mailbox.eq_ignore_ascii_case("INBOX") {
            maildir = maildir.join(format!(".{mailbox}"));
        }
        for entry in std::fs::read_dir(&maildir)
            .expect("read the maildir")
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "dovecot-uidlist" || name.starts_with("dovecot.index") {
                std::fs::remove_file(entry.path()).expect("remove Dovecot's UID state");
            }
        }
        self.spawn();
    }

    fn with_session<T>(
        &self,
        user: &str,
        work: impl AsyncFnOnce(&mut Session<tokio::net::TcpStream>) -> T,
    ) -> T {
        let password = self
            .users
            .iter()
            .find(|(u, _)| u == user)
            .map(|(_, p)| p.clone())
            .unwrap_or_else(|| panic!("no Dovecot test user {user}"));
        let port = self.plain_port;
        self.runtime.block_on(async move {
            let stream = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
                .await
                .expect("connect to Dovecot");
            let mut client = async_imap::Client::new(stream);
            client
                .read_response()
                .await
                .expect("Dovecot greeting")
                .expect("a greeting");
            let mut session = client
                .login(user, &password)
                .await
                .map_err(|(e, _)| e)
                .expect("log in to Dovecot");
            let out = work(&mut session).await;
            let _ = session.logout().await;
            out
        })
    }

    fn write_configuration(&self) {
        let dir = self.dir.path();
        for sub in ["run", "state", "mail", "home"] {
            std::fs::create_dir_all(dir.join(sub)).expect("Dovecot directories");
        }
        let (ca_pem, cert_pem, key_pem) = certificates();
        std::fs::write(dir.join("ca.pem"), ca_pem).expect("write the CA");
        std::fs::write(dir.join("server.pem"), cert_pem).expect("write the certificate");
        std::fs::write(dir.join("server.key"), key_pem).expect("write the key");
        let users: String = self
            .users
            .iter()
            .map(|(u, p)| format!("{u}:{{PLAIN}}{p}\n"))
            .collect();
        std::fs::write(dir.join("users"), users).expect("write the user file");

        let mut uid = id(&["-u"]);
        let mut gid = id(&["-g"]);
        // As root, Dovecot's helpers and the mail run as the package's own users
        // (Dovecot refuses mail owned by root); as anyone else, all runs as that user.
        let (login_user, internal_user, chroot) = if uid == 0 {
            uid = id(&["-u", "dovecot"]);
            gid = id(&["-g", "dovecot"]);
            for sub in ["mail", "home"] {
                let _ = Command::new("chown")
                    .arg("-R")
                    .arg(format!("{uid}:{gid}"))
                    .arg(dir.join(sub))
                    .status();
            }
            ("dovenull".to_string(), "dovecot".to_string(), "")
        } else {
            let me = whoami();
            (me.clone(), me, "chroot =")
        };
        let dh = Path::new("/usr/share/dovecot/dh.pem");
        let dh = if dh.exists() {
            format!("ssl_dh = <{}\n", dh.display())
        } else {
            String::new()
        };
        let d = dir.display();
        let config = format!(
            "base_dir = {d}/run\n\
             state_dir = {d}/state\n\
             log_path = {d}/dovecot.log\n\
             protocols = imap\n\
             listen = 127.0.0.1\n\
             ssl = yes\n\
             ssl_cert = <{d}/server.pem\n\
             ssl_key = <{d}/server.key\n\
             {dh}\
             disable_plaintext_auth = no\n\
             auth_mechanisms = plain login\n\
             mail_location = maildir:{d}/mail/%u\n\
             mail_fsync = never\n\
             first_valid_uid = 0\n\
             default_login_user = {login_user}\n\
             default_internal_user = {internal_user}\n\
             imap_idle_notify_interval = 1 secs\n\
             passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {d}/users\n}}\n\
             userdb {{\n  driver = static\n  args = uid={uid} gid={gid} home={d}/home/%u\n}}\n\
             service imap-login {{\n  {chroot}\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {plain}\n  }}\n  inet_listener imaps {{\n    address = 127.0.0.1\n    port = {tls}\n    ssl = yes\n  }}\n}}\n\
             service anvil {{\n  {chroot}\n}}\n",
            plain = self.plain_port,
            tls = self.tls_port,
        );
        std::fs::write(dir.join("dovecot.conf"), config).expect("write dovecot.conf");
        // Dovecot's helpers read the configuration and certificates as their own users.
        let _ = Command::new("chmod").args(["-R", "a+rX"]).arg(dir).status();
    }

    fn spawn(&self) {
        let config = self.dir.path().join("dovecot.conf");
        let child = Command::new(DOVECOT)
            .process_group(0)
            .arg("-F")
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.dir.path().join("dovecot.stderr"))
                    .expect("Dovecot stderr file"),
            ))
            .spawn()
            .expect("start dovecot");
        *self.child.lock().expect("Dovecot child lock") = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        for port in [self.plain_port, self.tls_port] {
            while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
                let exited = self
                    .child
                    .lock()
                    .expect("Dovecot child lock")
                    .as_mut()
                    .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))));
                if exited || Instant::now() > deadline {
                    panic!("Dovecot did not start:\n{}", self.log());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    fn wait_port_closed(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect((Ipv4Addr::LOCALHOST, self.plain_port)).is_ok()
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Dovecot's log and standard error, for failure messages.
    pub fn log(&self) -> String {
        ["dovecot.log", "dovecot.stderr"]
            .iter()
            .map(|f| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn id(args: &[&str]) -> u32 {
    let out = Command::new("id").args(args).output().expect("run id");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("numeric id")
}

fn whoami() -> String {
    let out = Command::new("id").arg("-un").output().expect("run id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// (CA certificate, server certificate for localhost and 127.0.0.1, server key), all PEM.
fn certificates() -> (String, String, String) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().expect("generate the test CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "ticketd IMAP test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).expect("self-sign the CA");
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().expect("generate the server key");
    let mut params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("server certificate parameters");
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params
        .signed_by(&server_key, &issuer)
        .expect("sign the server certificate");
    (ca_cert.pem(), cert.pem(), server_key.serialize_pem())
}
