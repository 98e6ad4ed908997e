//! A real SMTP server on loopback for integration tests: it speaks RFC 5321 (with PIPELINING,
//! AUTH PLAIN/LOGIN, STARTTLS and implicit TLS) to unmodified clients such as lettre, and keeps
//! every message it accepts so tests can read them back.
//!
//! The server runs on a background thread with its own tokio runtime, so it works the same from
//! synchronous tests and from `#[tokio::test]`s. Failure replies set with [`SmtpServer::set_reply`]
//! and [`SmtpServer::set_reply_for`] answer `RCPT TO`; [`SmtpServer::set_data_reply`] answers the
//! end of `DATA` (the final `.`). A message is stored only once that final `.` got a 250.

// Each peer includes these itself: benches include the peers one by one with `#[path]`.
#[allow(clippy::duplicate_mod)]
#[path = "test_ca.rs"]
mod test_ca;
#[allow(clippy::duplicate_mod)]
#[path = "wait.rs"]
mod wait;

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{Ipv4Addr, TcpListener as StdTcpListener};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::prelude::{BASE64_STANDARD, Engine as _};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{
    AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, ReadBuf,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// The name the server gives itself in its greeting and EHLO reply.
pub const SERVER_NAME: &str = "smtp.ticketd.test";
/// Largest message accepted (advertised as `SIZE`); larger ones get 552.
pub const MAX_MESSAGE_SIZE: usize = 50 * 1024 * 1024;
/// Longest command line read; a longer one gets 500 and the connection is closed.
const MAX_COMMAND_LINE: usize = 4096;
/// Message data is read in lines of at most this many bytes (longer lines arrive in pieces).
const MAX_DATA_CHUNK: usize = 64 * 1024;
/// How many protocol lines are kept for failure messages.
const TRANSCRIPT_LINES: usize = 200;

/// One message accepted with 250 after its final `.`.
#[derive(Clone, Debug)]
pub struct Received {
    /// The reverse path of `MAIL FROM`, without angle brackets (empty for `<>`).
    pub mail_from: String,
    /// The accepted `RCPT TO` forward paths, in order, without angle brackets.
    pub rcpt_to: Vec<String>,
    /// The message as sent, dot-unstuffed, without the terminating `.` line. Per RFC 5321 the
    /// CRLF before the final `.` belongs to the data, so this always ends with CRLF.
    pub data: Vec<u8>,
    /// The number of the connection it came over (1 for the first accepted connection).
    pub connection: usize,
    /// The user name that authenticated on that connection, if any.
    pub authenticated_as: Option<String>,
    /// Whether the connection was encrypted (STARTTLS or implicit TLS) when the message came.
    pub tls: bool,
}

impl Received {
    /// The data as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

/// How the server answers a recipient (or the end of a message's data).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    Accept,
    /// A 4xx code (e.g. 451) and its text (e.g. `4.3.0 Try again later`).
    TempFail(u16, String),
    /// A 5xx code (e.g. 550) and its text (e.g. `5.1.1 No such user`).
    PermFail(u16, String),
}

impl Reply {
    fn check(&self) {
        match self {
            Reply::Accept => {}
            Reply::TempFail(code, _) => assert!(
                (400..500).contains(code),
                "Reply::TempFail needs a 4xx code, got {code}"
            ),
            Reply::PermFail(code, _) => assert!(
                (500..600).contains(code),
                "Reply::PermFail needs a 5xx code, got {code}"
            ),
        }
    }
}

/// Where a failure reply was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Answer to `RCPT TO`.
    Rcpt,
    /// Answer to the final `.` of `DATA`.
    Data,
}

/// A recipient or message the server refused because of a configured [`Reply`].
#[derive(Clone, Debug)]
pub struct Rejection {
    pub stage: Stage,
    pub mail_from: String,
    /// The refused recipient (`Stage::Rcpt`) or all accepted recipients (`Stage::Data`).
    pub recipients: Vec<String>,
    pub code: u16,
    pub connection: usize,
}

/// What the server offers. `SmtpOptions::default()` is plain SMTP without authentication.
#[derive(Clone, Debug, Default)]
pub struct SmtpOptions {
    /// Require `AUTH` (PLAIN or LOGIN) with this user name and password before `MAIL`.
    /// With `starttls` on, AUTH is offered only after the upgrade (like Postfix's
    /// `smtpd_tls_auth_only`); before it `AUTH` gets 538.
    pub auth: Option<(String, String)>,
    /// Offer `STARTTLS`.
    pub starttls: bool,
    /// Speak TLS from the first byte (like port 465).
    pub implicit_tls: bool,
}

/// A running (or stopped) SMTP server on 127.0.0.1; dropping it stops it.
pub struct SmtpServer {
    port: u16,
    shared: Arc<Shared>,
    config: Arc<Config>,
    tls_files: Option<TlsFiles>,
    running: Option<Running>,
}

struct Running {
    shutdown: oneshot::Sender<()>,
    thread: JoinHandle<()>,
}

struct Config {
    auth: Option<(String, String)>,
    starttls: bool,
    implicit_tls: bool,
    acceptor: Option<TlsAcceptor>,
}

struct TlsFiles {
    _dir: tempfile::TempDir,
    ca_path: PathBuf,
    ca_pem: String,
}

struct Shared(Mutex<State>);

struct State {
    messages: Vec<Received>,
    rejections: Vec<Rejection>,
    connections: usize,
    open: usize,
    rcpt_reply: Reply,
    data_reply: Reply,
    per_recipient: HashMap<String, Reply>,
    transcript: VecDeque<String>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn update<T>(&self, change: impl FnOnce(&mut State) -> T) -> T {
        change(&mut self.lock())
    }

    fn log(&self, connection: usize, line: String) {
        let mut state = self.lock();
        if state.transcript.len() == TRANSCRIPT_LINES {
            state.transcript.pop_front();
        }
        state.transcript.push_back(format!("[{connection}] {line}"));
    }
}

impl State {
    fn rcpt_reply(&self, recipient: &str) -> Reply {
        self.per_recipient
            .get(&recipient.to_ascii_lowercase())
            .unwrap_or(&self.rcpt_reply)
            .clone()
    }

    /// A summary for failure messages.
    fn report(&self) -> String {
        let mut out = format!(
            "{} message(s), {} rejection(s), {} connection(s) accepted, {} open\n",
            self.messages.len(),
            self.rejections.len(),
            self.connections,
            self.open
        );
        for m in &self.messages {
            out.push_str(&format!(
                "  message on connection {}: from <{}> to {:?}, {} bytes\n",
                m.connection,
                m.mail_from,
                m.rcpt_to,
                m.data.len()
            ));
        }
        for r in &self.rejections {
            out.push_str(&format!("  rejection: {r:?}\n"));
        }
        out.push_str("last protocol lines:\n");
        for line in &self.transcript {
            out.push_str("  ");
            out.push_str(line);
            out.push('\n');
        }
        out
    }
}

impl SmtpServer {
    /// Plain SMTP, no authentication, on a free loopback port.
    pub fn start() -> SmtpServer {
        SmtpServer::start_with(SmtpOptions::default())
    }

    /// What `options` asks for, on a free loopback port.
    pub fn start_with(options: SmtpOptions) -> SmtpServer {
        let (tls_files, acceptor) = if options.starttls || options.implicit_tls {
            let (files, acceptor) = tls_material();
            (Some(files), Some(acceptor))
        } else {
            (None, None)
        };
        let listener = StdTcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .expect("bind the SMTP test server to a free port on 127.0.0.1");
        let port = listener
            .local_addr()
            .expect("local address of the SMTP test server")
            .port();
        let mut server = SmtpServer {
            port,
            shared: Arc::new(Shared(Mutex::new(State {
                messages: Vec::new(),
                rejections: Vec::new(),
                connections: 0,
                open: 0,
                rcpt_reply: Reply::Accept,
                data_reply: Reply::Accept,
                per_recipient: HashMap::new(),
                transcript: VecDeque::new(),
            }))),
            config: Arc::new(Config {
                auth: options.auth,
                starttls: options.starttls,
                implicit_tls: options.implicit_tls,
                acceptor,
            }),
            tls_files,
            running: None,
        };
        server.run(listener);
        server
    }

    fn run(&mut self, listener: StdTcpListener) {
        listener
            .set_nonblocking(true)
            .expect("make the SMTP test listener non-blocking");
        let (shutdown, stopped) = oneshot::channel::<()>();
        let shared = Arc::clone(&self.shared);
        let config = Arc::clone(&self.config);
        let thread = std::thread::Builder::new()
            .name(format!("smtp-test-{}", self.port))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("tokio runtime for the SMTP test server");
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(listener)
                        .expect("register the SMTP test listener with tokio");
                    tokio::select! {
                        () = accept_loop(listener, shared, config) => {}
                        _ = stopped => {}
                    }
                });
                // Dropping the runtime cancels every connection task, which closes its socket.
                drop(runtime);
            })
            .expect("spawn the SMTP test server thread");
        self.running = Some(Running { shutdown, thread });
    }

    /// The port it listens on, on 127.0.0.1 (the same after [`SmtpServer::restart`]).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The test CA's certificate (PEM) that signed the server certificate, when TLS is on.
    /// The server certificate names `localhost` and `127.0.0.1`.
    pub fn ca_pem_path(&self) -> Option<&Path> {
        self.tls_files.as_ref().map(|t| t.ca_path.as_path())
    }

    /// The same CA certificate as text.
    pub fn ca_pem(&self) -> Option<&str> {
        self.tls_files.as_ref().map(|t| t.ca_pem.as_str())
    }

    /// Every message accepted so far, in order (kept across `stop`/`restart`).
    pub fn messages(&self) -> Vec<Received> {
        self.shared.lock().messages.clone()
    }

    /// Every recipient or message refused because of a configured failure [`Reply`].
    pub fn rejections(&self) -> Vec<Rejection> {
        self.shared.lock().rejections.clone()
    }

    /// Waits until at least `count` messages were accepted; returns all of them.
    /// Panics, with what the server saw, when they do not come within `timeout`.
    #[track_caller]
    pub fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Received> {
        self.wait_until(timeout, &format!("expected {count} message(s)"), |s| {
            (s.messages.len() >= count).then(|| s.messages.clone())
        })
    }

    /// Waits until at least `count` rejections were given; returns all of them.
    #[track_caller]
    pub fn wait_for_rejections(&self, count: usize, timeout: Duration) -> Vec<Rejection> {
        self.wait_until(timeout, &format!("expected {count} rejection(s)"), |s| {
            (s.rejections.len() >= count).then(|| s.rejections.clone())
        })
    }

    /// Waits until no client connection is open (e.g. after a client's QUIT).
    #[track_caller]
    pub fn wait_for_no_open_connections(&self, timeout: Duration) {
        self.wait_until(timeout, "expected every connection to be closed", |s| {
            (s.open == 0).then_some(())
        })
    }

    #[track_caller]
    fn wait_until<T>(
        &self,
        timeout: Duration,
        what: &str,
        mut done: impl FnMut(&State) -> Option<T>,
    ) -> T {
        let mut out = None;
        wait::poll(timeout, || {
            out = done(&self.shared.lock());
            out.is_some()
        });
        let Some(out) = out else {
            let report = self.shared.lock().report();
            panic!(
                "SMTP test server on 127.0.0.1:{}: {what} within {timeout:?}; it has {report}",
                self.port
            );
        };
        out
    }

    /// The answer to `RCPT TO` for every recipient without an answer of its own
    /// ([`SmtpServer::set_reply_for`]), from the next `RCPT TO` on. Default: `Accept`.
    pub fn set_reply(&self, reply: Reply) {
        reply.check();
        self.shared.update(|s| s.rcpt_reply = reply);
    }

    /// The answer to `RCPT TO` for one recipient (compared ASCII case-insensitively); it
    /// overrides [`SmtpServer::set_reply`], `Reply::Accept` included.
    pub fn set_reply_for(&self, recipient: &str, reply: Reply) {
        reply.check();
        self.shared.update(|s| {
            s.per_recipient
                .insert(recipient.to_ascii_lowercase(), reply)
        });
    }

    /// The answer to the final `.` of `DATA`, from the next message on. Default: `Accept`.
    pub fn set_data_reply(&self, reply: Reply) {
        reply.check();
        self.shared.update(|s| s.data_reply = reply);
    }

    /// Back to accepting everything.
    pub fn clear_replies(&self) {
        self.shared.update(|s| {
            s.rcpt_reply = Reply::Accept;
            s.data_reply = Reply::Accept;
            s.per_recipient.clear();
        });
    }

    /// Connections accepted so far, across restarts (they are numbered from 1).
    pub fn connections(&self) -> usize {
        self.shared.lock().connections
    }

    /// Client connections open right now.
    pub fn open_connections(&self) -> usize {
        self.shared.lock().open
    }

    /// The last protocol lines (`[connection] C: …` / `S: …`), for debugging.
    pub fn transcript(&self) -> Vec<String> {
        self.shared.lock().transcript.iter().cloned().collect()
    }

    /// Closes the listener and every connection: the server is down (connections are refused)
    /// until [`SmtpServer::restart`]. Returns once everything is closed.
    pub fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            let _ = running.shutdown.send(());
            if running.thread.join().is_err() && !std::thread::panicking() {
                panic!("SMTP test server thread on port {} panicked", self.port);
            }
        }
    }

    /// Listens again on the same port, keeping received messages, counters and replies
    /// (stops first if running).
    pub fn restart(&mut self) {
        self.stop();
        let listener = StdTcpListener::bind((Ipv4Addr::LOCALHOST, self.port)).unwrap_or_else(|e| {
            panic!(
                "SMTP test server cannot listen again on 127.0.0.1:{}: {e}",
                self.port
            )
        });
        self.run(listener);
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The test CA and server certificate, and an acceptor serving that certificate.
fn tls_material() -> (TlsFiles, TlsAcceptor) {
    let certificates = test_ca::make("ticketd test CA");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions for the SMTP test server")
    .with_no_client_auth()
    .with_single_cert(
        vec![CertificateDer::from(certificates.server_der)],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certificates.server_key_der)),
    )
    .expect("TLS configuration for the SMTP test server");

    let dir = tempfile::tempdir().expect("temp dir for the SMTP test CA");
    let ca_path = dir.path().join("smtp-test-ca.pem");
    let ca_pem = certificates.ca_pem;
    std::fs::write(&ca_path, &ca_pem).expect("write the SMTP test CA certificate");
    (
        TlsFiles {
            _dir: dir,
            ca_path,
            ca_pem,
        },
        TlsAcceptor::from(Arc::new(config)),
    )
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, config: Arc<Config>) {
    loop {
        match listener.accept().await {
            Ok((stream, _peer)) => {
                let id = shared.update(|s| {
                    s.connections += 1;
                    s.open += 1;
                    s.connections
                });
                let open = OpenGuard(Arc::clone(&shared));
                let session = Session::new(id, Arc::clone(&shared), Arc::clone(&config));
                tokio::spawn(async move {
                    let _open = open;
                    session.serve(stream).await;
                });
            }
            Err(e) => {
                shared.log(0, format!("accept failed: {e}"));
                // Out of file descriptors and the like: do not spin.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Counts a connection as open until its task ends or is cancelled by `stop`.
struct OpenGuard(Arc<Shared>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.update(|s| s.open -= 1);
    }
}

/// The connection's byte stream, before or after the TLS upgrade.
enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

type Io = BufReader<Conn>;

/// What a read of one line gave.
enum Line {
    Text(String),
    /// Not valid UTF-8.
    Invalid,
    TooLong,
    Eof,
}

/// A SASL response line.
enum Sasl {
    Data(Vec<u8>),
    Cancelled,
    Invalid,
    Eof,
}

/// The state of one SMTP connection.
struct Session {
    id: usize,
    shared: Arc<Shared>,
    config: Arc<Config>,
    tls: bool,
    greeted: bool,
    esmtp: bool,
    authenticated_as: Option<String>,
    mail_from: Option<String>,
    rcpt_to: Vec<String>,
    rcpt_refused: usize,
}

impl Session {
    fn new(id: usize, shared: Arc<Shared>, config: Arc<Config>) -> Session {
        Session {
            id,
            shared,
            config,
            tls: false,
            greeted: false,
            esmtp: false,
            authenticated_as: None,
            mail_from: None,
            rcpt_to: Vec::new(),
            rcpt_refused: 0,
        }
    }

    async fn serve(mut self, stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        let conn = if self.config.implicit_tls {
            let acceptor = self.acceptor();
            match acceptor.accept(stream).await {
                Ok(tls) => {
                    self.tls = true;
                    Conn::Tls(Box::new(tls))
                }
                Err(e) => {
                    self.log(format!("TLS handshake failed: {e}"));
                    return;
                }
            }
        } else {
            Conn::Plain(stream)
        };
        match self.run(BufReader::new(conn)).await {
            Ok(()) => self.log("closed".to_string()),
            Err(e) => self.log(format!("connection error: {e}")),
        }
    }

    fn acceptor(&self) -> TlsAcceptor {
        self.config
            .acceptor
            .clone()
            .expect("TLS is configured whenever STARTTLS or implicit TLS is on")
    }

    fn log(&self, line: String) {
        self.shared.log(self.id, line);
    }

    fn reset(&mut self) {
        self.mail_from = None;
        self.rcpt_to.clear();
        self.rcpt_refused = 0;
    }

    fn auth_offered(&self) -> bool {
        self.config.auth.is_some() && (self.tls || !self.config.starttls)
    }

    async fn send(&self, io: &mut Io, code: u16, lines: &[&str]) -> io::Result<()> {
        let mut out = String::new();
        for (i, line) in lines.iter().enumerate() {
            let separator = if i + 1 == lines.len() { ' ' } else { '-' };
            let line = line.replace(['\r', '\n'], " ");
            self.log(format!("S: {code}{separator}{line}"));
            out.push_str(&format!("{code}{separator}{line}\r\n"));
        }
        io.write_all(out.as_bytes()).await?;
        io.flush().await
    }

    async fn reply(&self, io: &mut Io, code: u16, text: &str) -> io::Result<()> {
        self.send(io, code, &[text]).await
    }

    async fn read_line(&self, io: &mut Io) -> io::Result<Line> {
        let mut buf = Vec::new();
        let n = (&mut *io)
            .take(MAX_COMMAND_LINE as u64)
            .read_until(b'\n', &mut buf)
            .await?;
        if n == 0 {
            return Ok(Line::Eof);
        }
        if buf.last() != Some(&b'\n') {
            return Ok(if n == MAX_COMMAND_LINE {
                Line::TooLong
            } else {
                Line::Eof
            });
        }
        while matches!(buf.last(), Some(b'\n' | b'\r')) {
            buf.pop();
        }
        Ok(match String::from_utf8(buf) {
            Ok(text) => Line::Text(text),
            Err(_) => Line::Invalid,
        })
    }

    async fn run(&mut self, mut io: Io) -> io::Result<()> {
        self.reply(
            &mut io,
            220,
            &format!("{SERVER_NAME} ESMTP ticketd test server"),
        )
        .await?;
        loop {
            let line = match self.read_line(&mut io).await? {
                Line::Text(line) => line,
                Line::Invalid => {
                    self.log("C: <not UTF-8>".to_string());
                    self.reply(&mut io, 500, "5.5.2 Command is not valid UTF-8")
                        .await?;
                    continue;
                }
                Line::TooLong => {
                    self.reply(&mut io, 500, "5.5.2 Line too long").await?;
                    return Ok(());
                }
                Line::Eof => return Ok(()),
            };
            let (verb, arg) = match line.split_once(' ') {
                Some((verb, arg)) => (verb.to_ascii_uppercase(), arg.trim()),
                None => (line.to_ascii_uppercase(), ""),
            };
            if verb == "AUTH" {
                // Keep credentials out of the transcript.
                let mechanism = arg.split_whitespace().next().unwrap_or("");
                self.log(format!("C: AUTH {mechanism} …"));
            } else {
                self.log(format!("C: {line}"));
            }
            match verb.as_str() {
                "EHLO" | "HELO" => self.hello(&mut io, &verb, arg).await?,
                "MAIL" => self.mail(&mut io, arg).await?,
                "RCPT" => self.rcpt(&mut io, arg).await?,
                "DATA" => {
                    if !self.data(&mut io, arg).await? {
                        return Ok(());
                    }
                }
                "RSET" => {
                    self.reset();
                    self.reply(&mut io, 250, "2.0.0 OK").await?;
                }
                "NOOP" => self.reply(&mut io, 250, "2.0.0 OK").await?,
                "QUIT" => {
                    self.reply(&mut io, 221, "2.0.0 Bye").await?;
                    let _ = io.shutdown().await;
                    return Ok(());
                }
                "AUTH" => {
                    if !self.auth(&mut io, arg).await? {
                        return Ok(());
                    }
                }
                "STARTTLS" => {
                    if !arg.is_empty() {
                        self.reply(&mut io, 501, "5.5.4 STARTTLS takes no parameters")
                            .await?;
                    } else if self.tls {
                        self.reply(&mut io, 503, "5.5.1 TLS is already active")
                            .await?;
                    } else if !self.config.starttls {
                        self.reply(&mut io, 502, "5.5.1 STARTTLS is not offered")
                            .await?;
                    } else {
                        self.reply(&mut io, 220, "2.0.0 Ready to start TLS").await?;
                        let pending = io.buffer().len();
                        let Conn::Plain(tcp) = io.into_inner() else {
                            return Err(io::Error::other("STARTTLS on an encrypted stream"));
                        };
                        if pending > 0 {
                            // RFC 3207: nothing sent before the handshake may be acted on.
                            self.log(format!(
                                "discarded {pending} bytes sent before the TLS handshake"
                            ));
                        }
                        match self.acceptor().accept(tcp).await {
                            Ok(tls) => io = BufReader::new(Conn::Tls(Box::new(tls))),
                            Err(e) => {
                                self.log(format!("TLS handshake failed: {e}"));
                                return Ok(());
                            }
                        }
                        self.log("TLS established".to_string());
                        // RFC 3207: forget everything learnt before the upgrade.
                        self.tls = true;
                        self.greeted = false;
                        self.esmtp = false;
                        self.authenticated_as = None;
                        self.reset();
                    }
                }
                "VRFY" => {
                    self.reply(&mut io, 252, "2.5.2 Cannot VRFY user, but will accept")
                        .await?
                }
                "EXPN" | "HELP" | "TURN" | "ETRN" | "BDAT" | "ATRN" => {
                    self.reply(&mut io, 502, "5.5.1 Command not implemented")
                        .await?
                }
                _ => {
                    self.reply(&mut io, 500, "5.5.2 Command unrecognized")
                        .await?
                }
            }
        }
    }

    async fn hello(&mut self, io: &mut Io, verb: &str, arg: &str) -> io::Result<()> {
        if arg.is_empty() {
            return self
                .reply(io, 501, &format!("5.5.4 Syntax: {verb} hostname"))
                .await;
        }
        self.reset();
        self.greeted = true;
        self.esmtp = verb == "EHLO";
        let hello = format!("{SERVER_NAME} Hello {arg}");
        if !self.esmtp {
            return self.reply(io, 250, &hello).await;
        }
        let size = format!("SIZE {MAX_MESSAGE_SIZE}");
        let mut lines = vec![hello.as_str(), "8BITMIME", &size, "PIPELINING", "SMTPUTF8"];
        if self.auth_offered() {
            lines.push("AUTH PLAIN LOGIN");
        }
        if self.config.starttls && !self.tls {
            lines.push("STARTTLS");
        }
        self.send(io, 250, &lines).await
    }

    async fn mail(&mut self, io: &mut Io, arg: &str) -> io::Result<()> {
        if !self.greeted {
            return self.reply(io, 503, "5.5.1 Send EHLO or HELO first").await;
        }
        if self.mail_from.is_some() {
            return self.reply(io, 503, "5.5.1 Nested MAIL command").await;
        }
        if self.config.auth.is_some() && self.authenticated_as.is_none() {
            return self.reply(io, 530, "5.7.0 Authentication required").await;
        }
        let (address, params) = match parse_path(arg, "FROM:") {
            Some(parsed) => parsed,
            None => {
                return self
                    .reply(io, 501, "5.5.4 Syntax: MAIL FROM:<address>")
                    .await;
            }
        };
        for param in &params {
            let (key, value) = param.split_once('=').unwrap_or((param, ""));
            let ok = self.esmtp
                && match key.to_ascii_uppercase().as_str() {
                    "BODY" => {
                        value.eq_ignore_ascii_case("7BIT") || value.eq_ignore_ascii_case("8BITMIME")
                    }
                    "SIZE" => match value.parse::<usize>() {
                        Ok(size) if size > MAX_MESSAGE_SIZE => {
                            return self
                                .reply(io, 552, "5.3.4 Message size exceeds fixed limit")
                                .await;
                        }
                        Ok(_) => true,
                        Err(_) => false,
                    },
                    "SMTPUTF8" => value.is_empty(),
                    "AUTH" => true,
                    _ => false,
                };
            if !ok {
                return self
                    .reply(io, 555, &format!("5.5.4 Unsupported parameter {param}"))
                    .await;
            }
        }
        self.mail_from = Some(address);
        self.reply(io, 250, "2.1.0 OK").await
    }

    async fn rcpt(&mut self, io: &mut Io, arg: &str) -> io::Result<()> {
        let Some(mail_from) = self.mail_from.clone() else {
            return self.reply(io, 503, "5.5.1 Need MAIL before RCPT").await;
        };
        let (address, params) = match parse_path(arg, "TO:") {
            Some((address, params)) if !address.is_empty() => (address, params),
            _ => {
                return self.reply(io, 501, "5.5.4 Syntax: RCPT TO:<address>").await;
            }
        };
        if let Some(param) = params.first() {
            return self
                .reply(io, 555, &format!("5.5.4 Unsupported parameter {param}"))
                .await;
        }
        let reply = self.shared.lock().rcpt_reply(&address);
        match reply {
            Reply::Accept => {
                self.rcpt_to.push(address);
                self.reply(io, 250, "2.1.5 OK").await
            }
            Reply::TempFail(code, text) | Reply::PermFail(code, text) => {
                self.rcpt_refused += 1;
                let connection = self.id;
                self.shared.update(|s| {
                    s.rejections.push(Rejection {
                        stage: Stage::Rcpt,
                        mail_from,
                        recipients: vec![address],
                        code,
                        connection,
                    })
                });
                self.reply(io, code, &text).await
            }
        }
    }

    /// Returns false when the client went away in the middle of the data.
    async fn data(&mut self, io: &mut Io, arg: &str) -> io::Result<bool> {
        if !arg.is_empty() {
            self.reply(io, 501, "5.5.4 DATA takes no parameters")
                .await?;
            return Ok(true);
        }
        let Some(mail_from) = self.mail_from.clone() else {
            self.reply(io, 503, "5.5.1 Need MAIL before DATA").await?;
            return Ok(true);
        };
        if self.rcpt_to.is_empty() {
            if self.rcpt_refused > 0 {
                self.reply(io, 554, "5.5.1 No valid recipients").await?;
            } else {
                self.reply(io, 503, "5.5.1 Need RCPT before DATA").await?;
            }
            return Ok(true);
        }
        self.reply(io, 354, "End data with <CR><LF>.<CR><LF>")
            .await?;
        let Some((data, too_big)) = read_data(io).await? else {
            self.log("C: <connection closed before the end of data>".to_string());
            return Ok(false);
        };
        self.log(format!("C: <{} bytes of data> .", data.len()));
        let recipients = std::mem::take(&mut self.rcpt_to);
        self.reset();
        if too_big {
            self.reply(io, 552, "5.3.4 Message too big").await?;
            return Ok(true);
        }
        let connection = self.id;
        let received = Received {
            mail_from,
            rcpt_to: recipients,
            data,
            connection,
            authenticated_as: self.authenticated_as.clone(),
            tls: self.tls,
        };
        // Decide and store under one lock so a concurrent `set_data_reply` applies whole.
        let outcome = self.shared.update(|s| match s.data_reply.clone() {
            Reply::Accept => {
                s.messages.push(received);
                Ok(s.messages.len())
            }
            Reply::TempFail(code, text) | Reply::PermFail(code, text) => {
                s.rejections.push(Rejection {
                    stage: Stage::Data,
                    mail_from: received.mail_from,
                    recipients: received.rcpt_to,
                    code,
                    connection,
                });
                Err((code, text))
            }
        });
        match outcome {
            Ok(number) => {
                self.reply(io, 250, &format!("2.0.0 OK queued as {number}"))
                    .await?
            }
            Err((code, text)) => self.reply(io, code, &text).await?,
        }
        Ok(true)
    }

    /// Returns false when the client went away during the exchange.
    async fn auth(&mut self, io: &mut Io, arg: &str) -> io::Result<bool> {
        let Some((user, password)) = self.config.auth.clone() else {
            self.reply(io, 502, "5.5.1 AUTH is not offered").await?;
            return Ok(true);
        };
        if !self.greeted || !self.esmtp {
            self.reply(io, 503, "5.5.1 Send EHLO first").await?;
            return Ok(true);
        }
        if !self.auth_offered() {
            self.reply(
                io,
                538,
                "5.7.11 Encryption required for requested authentication mechanism",
            )
            .await?;
            return Ok(true);
        }
        if self.authenticated_as.is_some() {
            self.reply(io, 503, "5.5.1 Already authenticated").await?;
            return Ok(true);
        }
        if self.mail_from.is_some() {
            self.reply(io, 503, "5.5.1 AUTH not allowed during a mail transaction")
                .await?;
            return Ok(true);
        }
        let mut words = arg.split_whitespace();
        let mechanism = words.next().unwrap_or("").to_ascii_uppercase();
        let initial = words.next();
        if words.next().is_some() {
            self.reply(io, 501, "5.5.4 Syntax: AUTH mechanism [initial-response]")
                .await?;
            return Ok(true);
        }
        let given = match mechanism.as_str() {
            "PLAIN" => {
                let response = match initial {
                    Some(initial) => decode_sasl(initial),
                    None => self.read_sasl(io, "").await?,
                };
                match response {
                    Sasl::Data(bytes) => {
                        let parts: Vec<&[u8]> = bytes.split(|&b| b == 0).collect();
                        match parts.as_slice() {
                            [authzid, authcid, pass]
                                if authzid.is_empty() || authzid == authcid =>
                            {
                                credentials(authcid, pass)
                            }
                            _ => Err(Sasl::Invalid),
                        }
                    }
                    other => Err(other),
                }
            }
            "LOGIN" => {
                let name = match initial {
                    Some(initial) => decode_sasl(initial),
                    None => self.read_sasl(io, "VXNlcm5hbWU6").await?,
                };
                match name {
                    Sasl::Data(name) => match self.read_sasl(io, "UGFzc3dvcmQ6").await? {
                        Sasl::Data(pass) => credentials(&name, &pass),
                        other => Err(other),
                    },
                    other => Err(other),
                }
            }
            _ => {
                self.reply(io, 504, "5.5.4 Unrecognized authentication mechanism")
                    .await?;
                return Ok(true);
            }
        };
        match given {
            Ok((name, pass)) if name == user && pass == password => {
                self.log(format!("authenticated as {name}"));
                self.authenticated_as = Some(name);
                self.reply(io, 235, "2.7.0 Authentication successful")
                    .await?;
            }
            Ok(_) => {
                self.reply(io, 535, "5.7.8 Authentication credentials invalid")
                    .await?
            }
            Err(Sasl::Cancelled) => {
                self.reply(io, 501, "5.0.0 Authentication cancelled")
                    .await?
            }
            Err(Sasl::Eof) => return Ok(false),
            Err(_) => {
                self.reply(io, 501, "5.5.2 Cannot decode the response")
                    .await?
            }
        }
        Ok(true)
    }

    /// Sends a 334 challenge and reads the client's base64 answer.
    async fn read_sasl(&self, io: &mut Io, challenge: &str) -> io::Result<Sasl> {
        self.reply(io, 334, challenge).await?;
        Ok(match self.read_line(io).await? {
            Line::Text(line) => {
                self.log("C: <SASL response>".to_string());
                decode_sasl(line.trim())
            }
            Line::Invalid | Line::TooLong => Sasl::Invalid,
            Line::Eof => Sasl::Eof,
        })
    }
}

/// A user name and password from SASL bytes.
fn credentials(name: &[u8], pass: &[u8]) -> Result<(String, String), Sasl> {
    match (std::str::from_utf8(name), std::str::from_utf8(pass)) {
        (Ok(name), Ok(pass)) => Ok((name.to_string(), pass.to_string())),
        _ => Err(Sasl::Invalid),
    }
}

fn decode_sasl(text: &str) -> Sasl {
    match text {
        "*" => Sasl::Cancelled,
        "=" => Sasl::Data(Vec::new()),
        _ => BASE64_STANDARD
            .decode(text)
            .map_or(Sasl::Invalid, Sasl::Data),
    }
}

/// Reads message data up to the line `.` CRLF, undoing dot-stuffing. Returns the data and
/// whether it was over [`MAX_MESSAGE_SIZE`] (then the data is dropped), or `None` at EOF.
async fn read_data(io: &mut Io) -> io::Result<Option<(Vec<u8>, bool)>> {
    let mut data = Vec::new();
    let mut too_big = false;
    let mut at_line_start = true;
    let mut chunk = Vec::new();
    loop {
        chunk.clear();
        let n = (&mut *io)
            .take(MAX_DATA_CHUNK as u64)
            .read_until(b'\n', &mut chunk)
            .await?;
        if n == 0 {
            return Ok(None);
        }
        let mut content = chunk.as_slice();
        if at_line_start && content.first() == Some(&b'.') {
            if content == b".\r\n" {
                return Ok(Some((data, too_big)));
            }
            content = &content[1..];
        }
        at_line_start = chunk.last() == Some(&b'\n');
        if too_big {
            continue;
        }
        if data.len() + content.len() > MAX_MESSAGE_SIZE {
            too_big = true;
            data = Vec::new();
        } else {
            data.extend_from_slice(content);
        }
    }
}

/// Parses `FROM:<address> params…` / `TO:<address> params…` (a space after the colon and a
/// source route are tolerated). Returns the address without brackets and the parameters.
fn parse_path(arg: &str, keyword: &str) -> Option<(String, Vec<String>)> {
    let head = arg.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = arg[keyword.len()..].trim_start().strip_prefix('<')?;
    let end = rest.find('>')?;
    let mut address = &rest[..end];
    if address.starts_with('@') {
        address = address.split_once(':')?.1;
    }
    if address.contains(char::is_whitespace) {
        return None;
    }
    let params = rest[end + 1..]
        .split_whitespace()
        .map(str::to_string)
        .collect();
    Some((address.to_string(), params))
}

/// Standard base64 with padding (for raw SASL exchanges in tests).
pub fn base64_encode(bytes: &[u8]) -> String {
    BASE64_STANDARD.encode(bytes)
}
