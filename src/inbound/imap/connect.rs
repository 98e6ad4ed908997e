//! Opening an authenticated IMAP session: TCP, TLS or STARTTLS, the greeting, LOGIN/PLAIN/XOAUTH2.

use std::time::Duration;

use async_imap::{Client, Session};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_util::either::Either;

use crate::config::{AuthMethod, ImapSettings, Security};
use crate::credentials;
use crate::tls;

/// A plain or TLS connection; both speak IMAP the same way.
pub type Stream = Either<TcpStream, TlsStream<TcpStream>>;
pub type ImapSession = Session<Stream>;

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot connect to {0}: {1}")]
    Network(String, String),
    #[error("TLS with {0} failed: {1}")]
    Tls(String, String),
    #[error("{0}")]
    Setup(String),
    /// The server refused the credentials: retrying soon will not help.
    #[error("authentication as {user} failed at {server}: {message}")]
    Auth {
        user: String,
        server: String,
        message: String,
    },
    #[error("IMAP error from {0}: {1}")]
    Protocol(String, String),
}

fn server(settings: &ImapSettings) -> String {
    format!("{}:{}", settings.host, settings.port())
}

/// Connects, secures and logs in, all within `timeout`.
pub async fn open(settings: &ImapSettings, timeout: Duration) -> Result<ImapSession, ConnectError> {
    match tokio::time::timeout(timeout, open_inner(settings)).await {
        Ok(result) => result,
        Err(_) => Err(ConnectError::Network(
            server(settings),
            format!("no answer within {} s", timeout.as_secs()),
        )),
    }
}

async fn open_inner(settings: &ImapSettings) -> Result<ImapSession, ConnectError> {
    let server = server(settings);
    let tcp = TcpStream::connect((settings.host.as_str(), settings.port()))
        .await
        .map_err(|e| ConnectError::Network(server.clone(), e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    let client = match settings.security {
        Security::Tls => {
            let tls = secure(settings, tcp).await?;
            greet(Client::new(Either::Right(tls)), &server).await?
        }
        Security::Plain => greet(Client::new(Either::Left(tcp)), &server).await?,
        Security::Starttls => {
            let mut client = greet(Client::new(Either::Left(tcp)), &server).await?;
            client
                .run_command_and_check_ok("STARTTLS", None)
                .await
                .map_err(|e| ConnectError::Tls(server.clone(), format!("STARTTLS refused: {e}")))?;
            let Either::Left(tcp) = client.into_inner() else {
                return Err(ConnectError::Setup("STARTTLS on a TLS connection".into()));
            };
            Client::new(Either::Right(secure(settings, tcp).await?))
        }
    };
    login(client, settings, &server).await
}

async fn secure(
    settings: &ImapSettings,
    tcp: TcpStream,
) -> Result<TlsStream<TcpStream>, ConnectError> {
    let config = tls::client_config(settings.ca_file.as_deref()).map_err(ConnectError::Setup)?;
    let name = rustls::pki_types::ServerName::try_from(settings.host.clone())
        .map_err(|e| ConnectError::Setup(format!("`{}` is not a host name: {e}", settings.host)))?;
    TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| ConnectError::Tls(server(settings), e.to_string()))
}

/// Reads the server greeting, which async-imap leaves to the caller.
async fn greet(mut client: Client<Stream>, server: &str) -> Result<Client<Stream>, ConnectError> {
    match client.read_response().await {
        Ok(Some(_)) => Ok(client),
        Ok(None) => Err(ConnectError::Network(
            server.to_string(),
            "the server closed the connection before greeting".into(),
        )),
        Err(e) => Err(ConnectError::Network(server.to_string(), e.to_string())),
    }
}

struct SaslResponse(Vec<u8>);

impl async_imap::Authenticator for SaslResponse {
    type Response = Vec<u8>;

    fn process(&mut self, _challenge: &[u8]) -> Vec<u8> {
        // Sent once; a second challenge (an XOAUTH2 error report) gets an empty answer.
        std::mem::take(&mut self.0)
    }
}

async fn login(
    client: Client<Stream>,
    settings: &ImapSettings,
    server: &str,
) -> Result<ImapSession, ConnectError> {
    let auth_error = |e: async_imap::error::Error| match e {
        async_imap::error::Error::No(message) | async_imap::error::Error::Bad(message) => {
            ConnectError::Auth {
                user: settings.user.clone(),
                server: server.to_string(),
                message,
            }
        }
        other => ConnectError::Protocol(server.to_string(), other.to_string()),
    };
    let secret = |e: credentials::CredentialError| {
        ConnectError::Setup(format!("imap {}: {e}", settings.label()))
    };
    let result = match settings.auth {
        AuthMethod::Login => {
            let password = credentials::password(
                settings.password.as_deref(),
                settings.password_file.as_deref(),
            )
            .map_err(secret)?;
            client.login(&settings.user, password).await
        }
        AuthMethod::Plain => {
            let password = credentials::password(
                settings.password.as_deref(),
                settings.password_file.as_deref(),
            )
            .map_err(secret)?;
            let response = format!("\0{}\0{password}", settings.user).into_bytes();
            client.authenticate("PLAIN", SaslResponse(response)).await
        }
        AuthMethod::Xoauth2 => {
            let token = credentials::oauth_token(
                settings.oauth_token_file.as_deref(),
                settings.oauth_token_command.as_deref(),
            )
            .await
            .map_err(secret)?;
            let response = credentials::xoauth2_response(&settings.user, &token).into_bytes();
            client.authenticate("XOAUTH2", SaslResponse(response)).await
        }
    };
    result.map_err(|(e, _client)| auth_error(e))
}
