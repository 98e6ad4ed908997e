//! A real SMTP server on loopback for integration tests: it speaks RFC 5321 (with PIPELINING,
//! AUTH PLAIN/LOGIN, STARTTLS and implicit TLS) to unmodified clients such as lettre, and keeps
//! every message it accepts so tests can read them back.
//!
//! The server runs on a background thread with its own tokio runtime, so it works the same from
//! synchronous tests and from `#[tokio::test]`s. Failure replies set with [`SmtpServer::set_reply`]
//! and [`SmtpServer::set_reply_for`] answer `RCPT TO`; [`SmtpServer::set_data_reply`] answers the
//! end of `DATA` (the final `.`). A message is stored only once that final `.` got a 250.
//!
//! The wire format (commands and their parameters, DATA dot-unstuffing, the EHLO reply) is
//! `smtp-proto`'s; this file keeps only the session rules a test can rely on.

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
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::prelude::{BASE64_STANDARD, Engine as _};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use smtp_proto::request::receiver::{
    DataReceiver, DummyDataReceiver, LineReceiver, RequestReceiver,
};
use smtp_proto::response::generate::BitToString;
use smtp_proto::{
    AUTH_LOGIN, AUTH_PLAIN, EXT_8BIT_MIME, EXT_AUTH, EXT_PIPELINING, EXT_SIZE, EXT_SMTP_UTF8,
    EXT_START_TLS, EhloResponse, MAIL_BODY_7BIT, MAIL_BODY_8BITMIME, MAIL_SMTPUTF8, MailFrom,
    Request,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;

/// The name the server gives itself in its greeting and EHLO reply.
pub const SERVER_NAME: &str = "smtp.ticketd.test";
/// Largest message accepted (advertised as `SIZE`); larger ones get 552.
pub const MAX_MESSAGE_SIZE: usize = 50 * 1024 * 1024;
/// Bytes read from a connection at a time.
const READ_CHUNK: usize = 64 * 1024;
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
        self.shared.lock().rcpt_reply = reply;
    }

    /// The answer to `RCPT TO` for one recipient (compared ASCII case-insensitively); it
    /// overrides [`SmtpServer::set_reply`], `Reply::Accept` included.
    pub fn set_reply_for(&self, recipient: &str, reply: Reply) {
        reply.check();
        self.shared
            .lock()
            .per_recipient
            .insert(recipient.to_ascii_lowercase(), reply);
    }

    /// The answer to the final `.` of `DATA`, from the next message on. Default: `Accept`.
    pub fn set_data_reply(&self, reply: Reply) {
        reply.check();
        self.shared.lock().data_reply = reply;
    }

    /// Back to accepting everything.
    pub fn clear_replies(&self) {
        let mut state = self.shared.lock();
        state.rcpt_reply = Reply::Accept;
        state.data_reply = Reply::Accept;
        state.per_recipient.clear();
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
        // The old socket may take a moment to be released on a busy machine.
        let mut bound = None;
        let mut last_error = None;
        wait::poll(Duration::from_secs(10), || {
            match StdTcpListener::bind((Ipv4Addr::LOCALHOST, self.port)) {
                Ok(listener) => bound = Some(listener),
                Err(e) => last_error = Some(e),
            }
            bound.is_some()
        });
        let listener = bound.unwrap_or_else(|| {
            panic!(
                "SMTP test server cannot listen again on 127.0.0.1:{}: {last_error:?}",
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
                let id = {
                    let mut state = shared.lock();
                    state.connections += 1;
                    state.open += 1;
                    state.connections
                };
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
        self.0.lock().open -= 1;
    }
}

/// What the connection does once the replies so far are sent.
enum Flow {
    Continue,
    Close,
    StartTls,
}

/// How the bytes that come next are read.
enum Mode {
    Command,
    /// Message data up to the final `.`, dot-unstuffed into `Session::data`.
    Data(DataReceiver),
    /// The rest of a message already over [`MAX_MESSAGE_SIZE`], read to its final `.` and dropped.
    TooBig(DummyDataReceiver),
    /// The client's answer to a 334 challenge.
    Sasl(Sasl, LineReceiver<()>),
}

/// Where a SASL exchange stands.
enum Sasl {
    Plain,
    LoginName,
    LoginPassword(Vec<u8>),
}

/// The state of one SMTP connection. It turns the bytes read into replies, so pipelined
/// commands are answered in one write.
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
    requests: RequestReceiver,
    mode: Mode,
    data: Vec<u8>,
    /// Replies not yet written.
    out: Vec<u8>,
}

impl Session {
    fn new(id: usize, shared: Arc<Shared>, config: Arc<Config>) -> Session {
        let mut session = Session {
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
            requests: RequestReceiver::default(),
            mode: Mode::Command,
            data: Vec::new(),
            out: Vec::new(),
        };
        session.reply(220, &format!("{SERVER_NAME} ESMTP ticketd test server"));
        session
    }

    async fn serve(mut self, stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        let result = if self.config.implicit_tls {
            match self.acceptor().accept(stream).await {
                Ok(tls) => {
                    self.tls = true;
                    self.converse(tls).await.map(drop)
                }
                Err(e) => Err(e),
            }
        } else {
            match self.converse(stream).await {
                Ok(Some(tcp)) => match self.acceptor().accept(tcp).await {
                    Ok(tls) => {
                        self.started_tls();
                        self.converse(tls).await.map(drop)
                    }
                    Err(e) => Err(e),
                },
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            }
        };
        match result {
            Ok(()) => self.log("closed".to_string()),
            Err(e) => self.log(format!("connection error: {e}")),
        }
    }

    /// Reads, answers and writes until the connection ends (`None`) or the client asked for
    /// STARTTLS (the stream is handed back for the handshake).
    async fn converse<S>(&mut self, mut stream: S) -> io::Result<Option<S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut input = vec![0; READ_CHUNK];
        let mut flow = Flow::Continue;
        loop {
            stream.write_all(&self.out).await?;
            stream.flush().await?;
            self.out.clear();
            match flow {
                Flow::Continue => {}
                Flow::Close => {
                    let _ = stream.shutdown().await;
                    return Ok(None);
                }
                Flow::StartTls => return Ok(Some(stream)),
            }
            let n = stream.read(&mut input).await?;
            if n == 0 {
                if matches!(self.mode, Mode::Data(_) | Mode::TooBig(_)) {
                    self.log("C: <connection closed before the end of data>".to_string());
                }
                return Ok(None);
            }
            flow = self.feed(&input[..n]);
        }
    }

    /// Answers what `input` completes; a partial command or data line waits for more.
    fn feed(&mut self, input: &[u8]) -> Flow {
        let mut bytes = input.iter();
        while !bytes.as_slice().is_empty() {
            let flow = match &mut self.mode {
                Mode::Command => match self.requests.ingest(&mut bytes).map(Request::into_owned) {
                    Ok(request) => self.command(request),
                    // Everything was read (a partial line is kept): wait for more.
                    Err(smtp_proto::Error::NeedsMoreData { .. }) => return Flow::Continue,
                    Err(smtp_proto::Error::ResponseTooLong) => {
                        self.reply(500, "5.5.2 Line too long");
                        Flow::Close
                    }
                    Err(e) => {
                        self.log(format!("C: <{e:?}>"));
                        self.refuse(e);
                        Flow::Continue
                    }
                },
                Mode::Data(receiver) => {
                    if receiver.ingest(&mut bytes, &mut self.data) {
                        self.data_end(false);
                    } else if self.data.len() > MAX_MESSAGE_SIZE {
                        self.mode = Mode::TooBig(DummyDataReceiver::new_data(receiver));
                        self.data = Vec::new();
                    }
                    Flow::Continue
                }
                Mode::TooBig(receiver) => {
                    if receiver.ingest(&mut bytes) {
                        self.data_end(true);
                    }
                    Flow::Continue
                }
                Mode::Sasl(_, line) => {
                    if line.ingest(&mut bytes) {
                        let response = std::mem::take(&mut line.buf);
                        self.log("C: <SASL response>".to_string());
                        if let Mode::Sasl(step, _) =
                            std::mem::replace(&mut self.mode, Mode::Command)
                        {
                            self.sasl(step, &response);
                        }
                    }
                    Flow::Continue
                }
            };
            if let Flow::StartTls = flow
                && !bytes.as_slice().is_empty()
            {
                // RFC 3207: nothing sent before the handshake may be acted on.
                let pending = bytes.as_slice().len();
                self.log(format!(
                    "discarded {pending} bytes sent before the TLS handshake"
                ));
            }
            if !matches!(flow, Flow::Continue) {
                return flow;
            }
        }
        Flow::Continue
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

    /// Queues reply lines (already numbered and CRLF-terminated) and logs them.
    fn send(&mut self, lines: &[u8]) {
        for line in String::from_utf8_lossy(lines).lines() {
            self.log(format!("S: {line}"));
        }
        self.out.extend_from_slice(lines);
    }

    fn reply(&mut self, code: u16, text: &str) {
        let text = text.replace(['\r', '\n'], " ");
        self.send(format!("{code} {text}\r\n").as_bytes());
    }

    /// The reply to a command `smtp-proto` could not parse.
    fn refuse(&mut self, error: smtp_proto::Error) {
        match error {
            smtp_proto::Error::UnknownCommand => self.reply(500, "5.5.2 Command unrecognized"),
            smtp_proto::Error::SyntaxError { syntax } => {
                self.reply(501, &format!("5.5.4 Syntax: {syntax}"))
            }
            smtp_proto::Error::UnsupportedParameter { param } => {
                self.reply(555, &format!("5.5.4 Unsupported parameter {param}"))
            }
            smtp_proto::Error::InvalidParameter { param } => {
                self.reply(501, &format!("5.5.4 Invalid value for {param}"))
            }
            smtp_proto::Error::InvalidSenderAddress
            | smtp_proto::Error::InvalidRecipientAddress => {
                self.reply(501, "5.1.3 Bad address syntax")
            }
            other => self.reply(500, &format!("5.5.2 {other:?}")),
        }
    }

    fn reset(&mut self) {
        self.mail_from = None;
        self.rcpt_to.clear();
        self.rcpt_refused = 0;
    }

    /// RFC 3207: everything learnt before the upgrade is forgotten.
    fn started_tls(&mut self) {
        self.log("TLS established".to_string());
        self.tls = true;
        self.greeted = false;
        self.esmtp = false;
        self.authenticated_as = None;
        self.requests = RequestReceiver::default();
        self.reset();
    }

    fn auth_offered(&self) -> bool {
        self.config.auth.is_some() && (self.tls || !self.config.starttls)
    }

    fn command(&mut self, request: Request<String>) -> Flow {
        self.log(format!("C: {}", summary(&request)));
        match request {
            Request::Ehlo { host } => self.hello(&host, true),
            Request::Helo { host } => self.hello(&host, false),
            Request::Mail { from } => self.mail(from),
            Request::Rcpt { to } => {
                if to.flags != 0 || to.orcpt.is_some() || to.rrvs != 0 {
                    self.reply(555, "5.5.4 RCPT parameters are not supported");
                } else {
                    self.rcpt(to.address);
                }
            }
            Request::Data => self.data(),
            Request::Auth {
                mechanism,
                initial_response,
            } => self.auth(mechanism, &initial_response),
            Request::Rset => {
                self.reset();
                self.reply(250, "2.0.0 OK");
            }
            Request::Noop { .. } => self.reply(250, "2.0.0 OK"),
            Request::Vrfy { .. } => self.reply(252, "2.5.2 Cannot VRFY user, but will accept"),
            Request::Quit => {
                self.reply(221, "2.0.0 Bye");
                return Flow::Close;
            }
            Request::StartTls => {
                if self.tls {
                    self.reply(503, "5.5.1 TLS is already active");
                } else if !self.config.starttls {
                    self.reply(502, "5.5.1 STARTTLS is not offered");
                } else {
                    self.reply(220, "2.0.0 Ready to start TLS");
                    return Flow::StartTls;
                }
            }
            Request::Lhlo { .. } => self.reply(500, "5.5.2 Command unrecognized"),
            Request::Expn { .. }
            | Request::Help { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. }
            | Request::Bdat { .. }
            | Request::Burl { .. } => self.reply(502, "5.5.1 Command not implemented"),
        }
        Flow::Continue
    }

    fn hello(&mut self, host: &str, esmtp: bool) {
        self.reset();
        self.greeted = true;
        self.esmtp = esmtp;
        if !esmtp {
            return self.reply(250, &format!("{SERVER_NAME} Hello {host}"));
        }
        let mut ehlo = EhloResponse::new(SERVER_NAME);
        ehlo.capabilities = EXT_8BIT_MIME | EXT_SIZE | EXT_PIPELINING | EXT_SMTP_UTF8;
        ehlo.size = MAX_MESSAGE_SIZE;
        if self.auth_offered() {
            ehlo.capabilities |= EXT_AUTH;
            ehlo.auth_mechanisms = AUTH_PLAIN | AUTH_LOGIN;
        }
        if self.config.starttls && !self.tls {
            ehlo.capabilities |= EXT_START_TLS;
        }
        let mut lines = Vec::new();
        // Writing to a Vec cannot fail.
        let _ = ehlo.write(&mut lines);
        self.send(&lines);
    }

    fn mail(&mut self, from: MailFrom<String>) {
        if !self.greeted {
            return self.reply(503, "5.5.1 Send EHLO or HELO first");
        }
        if self.mail_from.is_some() {
            return self.reply(503, "5.5.1 Nested MAIL command");
        }
        if self.config.auth.is_some() && self.authenticated_as.is_none() {
            return self.reply(530, "5.7.0 Authentication required");
        }
        // Only what EHLO advertised: BODY, SIZE, SMTPUTF8 (and AUTH=, which RFC 4954 allows).
        let advertised = MAIL_BODY_7BIT | MAIL_BODY_8BITMIME | MAIL_SMTPUTF8;
        let any = from.flags != 0 || from.size != 0 || from.auth.is_some();
        let other = from.flags & !advertised != 0
            || from.env_id.is_some()
            || from.trans_id.is_some()
            || from.solicit.is_some()
            || from.mtrk.is_some()
            || (from.by, from.hold_for, from.hold_until, from.mt_priority) != (0, 0, 0, 0);
        if other || (any && !self.esmtp) {
            return self.reply(555, "5.5.4 Unsupported MAIL parameter");
        }
        if from.size > MAX_MESSAGE_SIZE {
            return self.reply(552, "5.3.4 Message size exceeds fixed limit");
        }
        self.mail_from = Some(from.address);
        self.reply(250, "2.1.0 OK");
    }

    fn rcpt(&mut self, address: String) {
        let Some(mail_from) = self.mail_from.clone() else {
            return self.reply(503, "5.5.1 Need MAIL before RCPT");
        };
        if address.is_empty() {
            return self.reply(501, "5.5.4 Syntax: RCPT TO:<address>");
        }
        let reply = self.shared.lock().rcpt_reply(&address);
        match reply {
            Reply::Accept => {
                self.rcpt_to.push(address);
                self.reply(250, "2.1.5 OK");
            }
            Reply::TempFail(code, text) | Reply::PermFail(code, text) => {
                self.rcpt_refused += 1;
                self.shared.lock().rejections.push(Rejection {
                    stage: Stage::Rcpt,
                    mail_from,
                    recipients: vec![address],
                    code,
                    connection: self.id,
                });
                self.reply(code, &text);
            }
        }
    }

    fn data(&mut self) {
        if self.mail_from.is_none() {
            return self.reply(503, "5.5.1 Need MAIL before DATA");
        }
        if self.rcpt_to.is_empty() {
            return if self.rcpt_refused > 0 {
                self.reply(554, "5.5.1 No valid recipients")
            } else {
                self.reply(503, "5.5.1 Need RCPT before DATA")
            };
        }
        self.reply(354, "End data with <CR><LF>.<CR><LF>");
        let mut receiver = DataReceiver::new();
        // The receiver unstuffs a dot only after a CRLF it saw: the DATA line's counts too.
        self.data.clear();
        receiver.ingest(&mut b"\r\n".iter(), &mut self.data);
        self.data.clear();
        self.mode = Mode::Data(receiver);
    }

    /// The final `.` came: store the message or refuse it as configured.
    fn data_end(&mut self, too_big: bool) {
        self.mode = Mode::Command;
        let data = std::mem::take(&mut self.data);
        self.log(format!("C: <{} bytes of data> .", data.len()));
        let (Some(mail_from), recipients) =
            (self.mail_from.take(), std::mem::take(&mut self.rcpt_to))
        else {
            return;
        };
        self.reset();
        if too_big {
            return self.reply(552, "5.3.4 Message too big");
        }
        let received = Received {
            mail_from,
            rcpt_to: recipients,
            data,
            connection: self.id,
            authenticated_as: self.authenticated_as.clone(),
            tls: self.tls,
        };
        // Decide and store under one lock so a concurrent `set_data_reply` applies whole.
        let outcome = {
            let mut state = self.shared.lock();
            match state.data_reply.clone() {
                Reply::Accept => {
                    state.messages.push(received);
                    Ok(state.messages.len())
                }
                Reply::TempFail(code, text) | Reply::PermFail(code, text) => {
                    state.rejections.push(Rejection {
                        stage: Stage::Data,
                        mail_from: received.mail_from,
                        recipients: received.rcpt_to,
                        code,
                        connection: received.connection,
                    });
                    Err((code, text))
                }
            }
        };
        match outcome {
            Ok(number) => self.reply(250, &format!("2.0.0 OK queued as {number}")),
            Err((code, text)) => self.reply(code, &text),
        }
    }

    fn auth(&mut self, mechanism: u64, initial_response: &str) {
        if self.config.auth.is_none() {
            return self.reply(502, "5.5.1 AUTH is not offered");
        }
        if !self.greeted || !self.esmtp {
            return self.reply(503, "5.5.1 Send EHLO first");
        }
        if !self.auth_offered() {
            return self.reply(
                538,
                "5.7.11 Encryption required for requested authentication mechanism",
            );
        }
        if self.authenticated_as.is_some() {
            return self.reply(503, "5.5.1 Already authenticated");
        }
        if self.mail_from.is_some() {
            return self.reply(503, "5.5.1 AUTH not allowed during a mail transaction");
        }
        let step = match mechanism {
            AUTH_PLAIN => Sasl::Plain,
            AUTH_LOGIN => Sasl::LoginName,
            _ => return self.reply(504, "5.5.4 Unrecognized authentication mechanism"),
        };
        if initial_response.is_empty() {
            self.challenge(step);
        } else {
            self.sasl(step, initial_response.as_bytes());
        }
    }

    /// Sends the 334 challenge for `step` and waits for the client's answer.
    fn challenge(&mut self, step: Sasl) {
        let prompt = match step {
            Sasl::Plain => "",
            Sasl::LoginName => "VXNlcm5hbWU6",
            Sasl::LoginPassword(_) => "UGFzc3dvcmQ6",
        };
        self.reply(334, prompt);
        self.mode = Mode::Sasl(step, LineReceiver::new(()));
    }

    /// Takes one base64 SASL response (an initial response or the answer to a challenge).
    fn sasl(&mut self, step: Sasl, response: &[u8]) {
        let decoded = match response.trim_ascii() {
            b"*" => return self.reply(501, "5.0.0 Authentication cancelled"),
            b"=" => Ok(Vec::new()),
            text => BASE64_STANDARD.decode(text),
        };
        let Ok(bytes) = decoded else {
            return self.reply(501, "5.5.2 Cannot decode the response");
        };
        match step {
            Sasl::Plain => match bytes.split(|&b| b == 0).collect::<Vec<_>>().as_slice() {
                [authzid, authcid, pass] if authzid.is_empty() || authzid == authcid => {
                    self.check_password(authcid, pass)
                }
                _ => self.reply(501, "5.5.2 Cannot decode the response"),
            },
            Sasl::LoginName => self.challenge(Sasl::LoginPassword(bytes)),
            Sasl::LoginPassword(name) => self.check_password(&name, &bytes),
        }
    }

    fn check_password(&mut self, name: &[u8], pass: &[u8]) {
        let user = match &self.config.auth {
            Some((user, password)) if user.as_bytes() == name && password.as_bytes() == pass => {
                user.clone()
            }
            _ => return self.reply(535, "5.7.8 Authentication credentials invalid"),
        };
        self.log(format!("authenticated as {user}"));
        self.authenticated_as = Some(user);
        self.reply(235, "2.7.0 Authentication successful");
    }
}

/// A command for the transcript, without credentials.
fn summary(request: &Request<String>) -> String {
    match request {
        Request::Ehlo { host } | Request::Helo { host } => format!("{} {host}", request.name()),
        Request::Mail { from } => format!("MAIL FROM:<{}>", from.address),
        Request::Rcpt { to } => format!("RCPT TO:<{}>", to.address),
        Request::Auth { mechanism, .. } => format!("AUTH {} …", mechanism.to_mechanism()),
        other => other.name().to_string(),
    }
}

/// Standard base64 with padding (for raw SASL exchanges in tests).
pub fn base64_encode(bytes: &[u8]) -> String {
    BASE64_STANDARD.encode(bytes)
}
