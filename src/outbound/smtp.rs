//! The SMTP transport: lettre's SMTP client on connections opened here with TCP_NODELAY (so
//! the end of a message never waits for a delayed ACK), over implicit TLS or STARTTLS (plain
//! only when configured), AUTH PLAIN/LOGIN or XOAUTH2, with a small pool of reused connections.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::Error as SmtpError;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, AsyncTokioStream, Certificate, CertificateStore, TlsParameters,
};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::transport::smtp::response::Response;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::Delivery;
use crate::config::{AuthMethod, Security, SmtpSettings};
use crate::credentials;
use crate::tls::client_config;

/// An idle connection is closed after this long unused.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a polite QUIT may take before the connection is simply closed.
const QUIT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct SmtpTransport {
    settings: SmtpSettings,
    /// Built on first use; rebuilt for every batch with XOAUTH2, whose tokens expire.
    setup: tokio::sync::Mutex<Option<Arc<Setup>>>,
    pool: Arc<Pool>,
    /// This host's fully qualified name, looked up once (off the async threads).
    host_name: tokio::sync::OnceCell<Option<String>>,
}

/// What opening a connection needs, prepared once.
struct Setup {
    /// The EHLO name; `None` when this host has no fully qualified name: then
    /// each connection greets with its own address literal (`[192.0.2.1]`).
    hello: Option<ClientId>,
    encryption: Encryption,
    login: Option<(Credentials, Vec<Mechanism>)>,
}

enum Encryption {
    Plain,
    Starttls(TlsParameters),
    Implicit(TlsConnector, ServerName<'static>),
}

/// Why sending over an open connection failed: the server's answer at a
/// stage of the transaction, or a local or network fault (temporary).
enum Failure {
    Smtp(SmtpError, Stage),
    /// The message cannot be sent to this server at all (an address it cannot take).
    Refused(String),
    Other(String),
}

/// Where in the mail transaction the server answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    MailFrom,
    RcptTo,
    Data,
}

/// Replies that mean our side is misconfigured (credentials, TLS), whatever the message.
const OPERATOR_FAULT_CODES: [u16; 5] = [454, 530, 534, 535, 538];

impl SmtpTransport {
    /// A transport for `settings` that keeps up to `pool_size` idle
    /// connections (as many as its caller sends in parallel).
    pub fn new(settings: SmtpSettings, pool_size: usize) -> SmtpTransport {
        SmtpTransport {
            settings,
            setup: tokio::sync::Mutex::new(None),
            pool: Arc::new(Pool {
                max_idle: pool_size.max(1),
                state: Mutex::default(),
            }),
            host_name: tokio::sync::OnceCell::new(),
        }
    }

    /// The name this transport gives in EHLO: `smtp.helo_name`, else the host's
    /// fully qualified name; `None` when there is neither (connections then
    /// greet with their address literal).
    pub async fn helo_name(&self) -> Option<String> {
        if let Some(name) = &self.settings.helo_name {
            return Some(name.clone());
        }
        self.host_name
            .get_or_init(|| async {
                tokio::task::spawn_blocking(crate::host::fully_qualified_name)
                    .await
                    .ok()
                    .flatten()
            })
            .await
            .clone()
    }

    /// Forgets credentials and connections when the credentials may have changed (XOAUTH2 tokens).
    pub async fn refresh(&self) {
        if self.settings.auth == AuthMethod::Xoauth2 {
            *self.setup.lock().await = None;
            quit_all(self.pool.clear()).await;
        }
    }

    /// Delivers one message to one recipient. A failure to connect, secure or
    /// authenticate is [`Delivery::Blocked`]: not the message's fault.
    pub async fn deliver(&self, mail_from: &str, recipient: &str, bytes: &[u8]) -> Delivery {
        let envelope = match (mail_from.parse(), recipient.parse()) {
            (Ok(from), Ok(to)) => match Envelope::new(Some(from), vec![to]) {
                Ok(e) => e,
                Err(e) => return Delivery::Permanent(format!("bad envelope: {e}")),
            },
            _ => {
                return Delivery::Permanent(format!(
                    "bad envelope address: {mail_from} → {recipient}"
                ));
            }
        };
        let (mut conn, reused) = match self.pool.take() {
            Some(conn) => (conn, true),
            None => match self.open().await {
                Ok(conn) => (conn, false),
                Err(reason) => return self.blocked(reason).await,
            },
        };
        let mut result = self.send(&mut conn, &envelope, bytes).await;
        if reused && result.as_ref().is_err_and(Failure::closed_by_server) {
            // The server closed the idle connection: once more, on a new one.
            tracing::debug!(host = %self.settings.host, "idle SMTP connection was closed; reconnecting");
            conn = match self.open().await {
                Ok(conn) => conn,
                Err(reason) => return self.blocked(reason).await,
            };
            result = self.send(&mut conn, &envelope, bytes).await;
        }
        match result {
            Ok(response) => {
                self.pool.put(conn);
                Delivery::Sent(
                    format!(
                        "{} {}",
                        response.code(),
                        response.message().collect::<Vec<_>>().join(" ")
                    )
                    .trim()
                    .to_string(),
                )
            }
            // The transaction was ended with QUIT, or the connection is gone.
            Err(f) => {
                let delivery = Delivery::from(f);
                if matches!(delivery, Delivery::Blocked(_)) {
                    self.forget_setup().await;
                }
                delivery
            }
        }
    }

    /// A connection could not be opened: the next attempt reads the
    /// credentials and certificates anew (the operator may have fixed them).
    async fn blocked(&self, reason: String) -> Delivery {
        self.forget_setup().await;
        Delivery::Blocked(reason)
    }

    async fn forget_setup(&self) {
        *self.setup.lock().await = None;
    }

    async fn send(
        &self,
        conn: &mut Pooled,
        envelope: &Envelope,
        bytes: &[u8],
    ) -> Result<Response, Failure> {
        match tokio::time::timeout(self.timeout(), transact(&mut conn.conn, envelope, bytes)).await
        {
            Ok(result) => result,
            Err(_) => Err(Failure::Other(format!(
                "{}: no answer within {} s while sending",
                self.settings.host,
                self.timeout().as_secs()
            ))),
        }
    }

    /// A new connection, greeted, encrypted and authenticated as configured;
    /// the error says what failed.
    async fn open(&self) -> Result<Pooled, String> {
        let setup = self.setup().await?;
        let generation = self.pool.generation();
        let s = &self.settings;
        let address = format!("{}:{}", s.host, s.port());
        let stream = match tokio::time::timeout(self.timeout(), TcpStream::connect(&address)).await
        {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(format!("cannot connect to {address}: {e}")),
            Err(_) => {
                return Err(format!(
                    "cannot connect to {address}: no answer within {} s",
                    self.timeout().as_secs()
                ));
            }
        };
        stream
            .set_nodelay(true)
            .map_err(|e| format!("{address}: cannot set TCP_NODELAY: {e}"))?;
        let hello = match &setup.hello {
            Some(name) => name.clone(),
            None => match stream.local_addr() {
                Ok(local) => match local.ip() {
                    std::net::IpAddr::V4(ip) => ClientId::Ipv4(ip),
                    std::net::IpAddr::V6(ip) => ClientId::Ipv6(ip),
                },
                Err(_) => ClientId::default(),
            },
        };
        let smtp = |step: &str, e: SmtpError| format!("{address}: {step} failed: {}", describe(&e));
        let handshake = async {
            let mut conn = match &setup.encryption {
                Encryption::Plain => {
                    AsyncSmtpConnection::connect_with_transport(Box::new(stream), &hello)
                        .await
                        .map_err(|e| smtp("greeting", e))?
                }
                Encryption::Starttls(params) => {
                    let mut conn =
                        AsyncSmtpConnection::connect_with_transport(Box::new(stream), &hello)
                            .await
                            .map_err(|e| smtp("greeting", e))?;
                    if !conn.can_starttls() {
                        conn.abort().await;
                        return Err(format!(
                            "{address} does not offer STARTTLS; not sending without encryption \
                             (smtp.security = \"starttls\")"
                        ));
                    }
                    conn.starttls(params.clone(), &hello)
                        .await
                        .map_err(|e| smtp("STARTTLS", e))?;
                    conn
                }
                Encryption::Implicit(connector, name) => {
                    let tls = connector
                        .connect(name.clone(), stream)
                        .await
                        .map_err(|e| format!("TLS with {address}: {e}"))?;
                    AsyncSmtpConnection::connect_with_transport(Box::new(ImplicitTls(tls)), &hello)
                        .await
                        .map_err(|e| smtp("greeting", e))?
                }
            };
            if let Some((credentials, mechanisms)) = &setup.login {
                conn.auth(mechanisms, credentials).await.map_err(|e| {
                    format!(
                        "{address}: authentication as {} failed: {}; check smtp.user and smtp.password",
                        self.settings.user.as_deref().unwrap_or(""),
                        describe(&e)
                    )
                })?;
            }
            Ok(conn)
        };
        match tokio::time::timeout(self.timeout(), handshake).await {
            Ok(conn) => conn.map(|conn| Pooled { conn, generation }),
            Err(_) => Err(format!(
                "{address}: no answer within {} s while greeting",
                self.timeout().as_secs()
            )),
        }
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.settings.timeout_secs.max(1))
    }

    async fn setup(&self) -> Result<Arc<Setup>, String> {
        let mut slot = self.setup.lock().await;
        if let Some(setup) = slot.as_ref() {
            return Ok(Arc::clone(setup));
        }
        let s = &self.settings;
        let encryption = match s.security {
            Security::Plain => Encryption::Plain,
            Security::Starttls => Encryption::Starttls(starttls_parameters(s)?),
            Security::Tls => {
                let name = ServerName::try_from(s.host.clone())
                    .map_err(|e| format!("smtp.host {:?} is no TLS server name: {e}", s.host))?;
                let config =
                    client_config(s.ca_file.as_deref()).map_err(|e| format!("smtp: {e}"))?;
                Encryption::Implicit(TlsConnector::from(config), name)
            }
        };
        let login = match &s.user {
            None => None,
            Some(user) => {
                let (secret, mechanisms) = match s.auth {
                    AuthMethod::Xoauth2 => (
                        credentials::oauth_token(
                            s.oauth_token_file.as_deref(),
                            s.oauth_token_command.as_deref(),
                        )
                        .await
                        .map_err(|e| format!("smtp: {e}"))?,
                        vec![Mechanism::Xoauth2],
                    ),
                    AuthMethod::Plain => (
                        credentials::password(s.password.as_deref(), s.password_file.as_deref())
                            .map_err(|e| format!("smtp: {e}"))?,
                        vec![Mechanism::Plain],
                    ),
                    AuthMethod::Login => (
                        credentials::password(s.password.as_deref(), s.password_file.as_deref())
                            .map_err(|e| format!("smtp: {e}"))?,
                        vec![Mechanism::Plain, Mechanism::Login],
                    ),
                };
                Some((Credentials::new(user.clone(), secret), mechanisms))
            }
        };
        let hello = self.helo_name().await.map(ClientId::Domain);
        let setup = Arc::new(Setup {
            hello,
            encryption,
            login,
        });
        *slot = Some(Arc::clone(&setup));
        Ok(setup)
    }
}

/// lettre's TLS parameters for STARTTLS, trusting `smtp.ca_file` when set.
fn starttls_parameters(s: &SmtpSettings) -> Result<TlsParameters, String> {
    let mut params = TlsParameters::builder(s.host.clone());
    if let Some(path) = &s.ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| format!("cannot read smtp.ca_file {}: {e}", path.display()))?;
        let cert = Certificate::from_pem(&pem)
            .map_err(|e| format!("smtp.ca_file {}: {e}", path.display()))?;
        params = params
            .certificate_store(CertificateStore::None)
            .add_root_certificate(cert);
    }
    params
        .build_rustls()
        .map_err(|e| format!("TLS setup for {}: {e}", s.host))
}

impl Failure {
    /// Whether a reused connection failed because the server had closed it (or is closing it,
    /// 421) rather than because of this message: then a new connection gets one more try.
    fn closed_by_server(&self) -> bool {
        match self {
            Failure::Smtp(e, _) => match e.status() {
                Some(code) => u16::from(code) == 421,
                None => !e.is_client(),
            },
            Failure::Refused(_) | Failure::Other(_) => false,
        }
    }
}

impl From<Failure> for Delivery {
    fn from(f: Failure) -> Delivery {
        match f {
            Failure::Smtp(e, stage) => {
                let code = e.status().map(u16::from);
                let text = describe(&e);
                if code.is_some_and(|c| OPERATOR_FAULT_CODES.contains(&c)) {
                    Delivery::Blocked(format!(
                        "{text}; the server wants authentication or TLS: check the [smtp] settings"
                    ))
                } else if e.is_permanent() && stage == Stage::MailFrom {
                    Delivery::Blocked(format!(
                        "{text}; the server refuses our envelope sender: check the queue's \
                         envelope_sender and the [smtp] account"
                    ))
                } else if e.is_permanent() {
                    Delivery::Permanent(text)
                } else {
                    Delivery::Temporary(text)
                }
            }
            Failure::Refused(text) => Delivery::Permanent(text),
            Failure::Other(text) => Delivery::Temporary(text),
        }
    }
}

/// One mail transaction (MAIL, RCPT, DATA), each step's refusal told apart.
/// As lettre's own `send`, it ends the session on any error.
async fn transact(
    conn: &mut AsyncSmtpConnection,
    envelope: &Envelope,
    bytes: &[u8],
) -> Result<Response, Failure> {
    let mut options = Vec::new();
    let addresses_ascii = envelope
        .from()
        .into_iter()
        .chain(envelope.to())
        .all(|a| AsRef::<str>::as_ref(a).is_ascii());
    if !addresses_ascii {
        if !conn.server_info().supports_feature(Extension::SmtpUtfEight) {
            conn.abort().await;
            return Err(Failure::Refused(
                "the server does not take non-ASCII addresses (no SMTPUTF8)".into(),
            ));
        }
        options.push(MailParameter::SmtpUtfEight);
    }
    if !bytes.is_ascii() {
        if !conn.server_info().supports_feature(Extension::EightBitMime) {
            conn.abort().await;
            return Err(Failure::Refused(
                "the server does not take 8-bit messages (no 8BITMIME)".into(),
            ));
        }
        options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    let steps = async {
        conn.command(Mail::new(envelope.from().cloned(), options))
            .await
            .map_err(|e| (e, Stage::MailFrom))?;
        for recipient in envelope.to() {
            conn.command(Rcpt::new(recipient.clone(), Vec::new()))
                .await
                .map_err(|e| (e, Stage::RcptTo))?;
        }
        conn.command(Data).await.map_err(|e| (e, Stage::Data))?;
        conn.message(bytes).await.map_err(|e| (e, Stage::Data))
    };
    match steps.await {
        Ok(response) => Ok(response),
        Err((e, stage)) => {
            conn.abort().await;
            Err(Failure::Smtp(e, stage))
        }
    }
}

/// The server's own words when there are some ("550 5.1.1 No such user").
fn describe(e: &SmtpError) -> String {
    match e.status() {
        Some(code) => format!("{code} {e}"),
        None => e.to_string(),
    }
}

/// A connection and the pool generation it was opened in.
struct Pooled {
    conn: AsyncSmtpConnection,
    generation: u64,
}

/// Connections waiting for the next message, newest last.
struct Pool {
    /// Idle connections kept at most.
    max_idle: usize,
    state: Mutex<PoolState>,
}

#[derive(Default)]
struct PoolState {
    idle: Vec<(Pooled, Instant)>,
    /// Moved on by `clear`: connections opened before are not taken back.
    generation: u64,
    /// Whether a task is closing idle connections as they expire.
    reaping: bool,
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// The most recently used idle connection that is still sound.
    fn take(&self) -> Option<Pooled> {
        let mut state = self.lock();
        while let Some((pooled, since)) = state.idle.pop() {
            if !pooled.conn.has_broken() && since.elapsed() < IDLE_TIMEOUT {
                return Some(pooled);
            }
        }
        None
    }

    /// Keeps a connection for the next message, unless the pool is full or was cleared since.
    fn put(self: &Arc<Self>, pooled: Pooled) {
        let mut state = self.lock();
        if pooled.generation != state.generation || state.idle.len() >= self.max_idle {
            drop(state);
            tokio::spawn(quit_all(vec![pooled]));
            return;
        }
        state.idle.push((pooled, Instant::now()));
        if !state.reaping {
            state.reaping = true;
            tokio::spawn(reap(Arc::downgrade(self)));
        }
    }

    /// Takes every idle connection out; those in use are not taken back.
    fn clear(&self) -> Vec<Pooled> {
        let mut state = self.lock();
        state.generation += 1;
        state.idle.drain(..).map(|(pooled, _)| pooled).collect()
    }
}

/// Closes idle connections as they expire; ends when none is left or the transport is gone.
async fn reap(pool: Weak<Pool>) {
    loop {
        let (expired, next) = {
            let Some(pool) = pool.upgrade() else { return };
            let mut state = pool.lock();
            let (expired, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut state.idle)
                .into_iter()
                .partition(|(_, since)| since.elapsed() >= IDLE_TIMEOUT);
            state.idle = kept;
            let next = state
                .idle
                .iter()
                .map(|(_, since)| *since + IDLE_TIMEOUT)
                .min();
            state.reaping = next.is_some();
            (expired, next)
        };
        quit_all(expired.into_iter().map(|(pooled, _)| pooled).collect()).await;
        match next {
            Some(at) => tokio::time::sleep_until(at.into()).await,
            None => return,
        }
    }
}

/// Says QUIT on each connection, not waiting long for an answer.
async fn quit_all(connections: Vec<Pooled>) {
    for mut pooled in connections {
        if !pooled.conn.has_broken() {
            let _ = tokio::time::timeout(QUIT_TIMEOUT, pooled.conn.quit()).await;
        }
    }
}

/// A TLS stream from the first byte (SMTPS), in the shape lettre's client takes.
#[derive(Debug)]
struct ImplicitTls(TlsStream<TcpStream>);

impl AsyncTokioStream for ImplicitTls {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

impl AsyncRead for ImplicitTls {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for ImplicitTls {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}
