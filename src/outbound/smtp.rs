//! The SMTP transport: lettre over TLS or STARTTLS (plain only when configured),
//! AUTH PLAIN/LOGIN or XOAUTH2, with a pool of reused connections.

use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use tokio::sync::Mutex;

use super::Delivery;
use crate::config::{AuthMethod, Security, SmtpSettings};
use crate::credentials;

pub struct SmtpTransport {
    settings: SmtpSettings,
    /// Built on first use; rebuilt for every batch with XOAUTH2, whose tokens expire.
    transport: Mutex<Option<AsyncSmtpTransport<Tokio1Executor>>>,
}

impl SmtpTransport {
    pub fn new(settings: SmtpSettings) -> SmtpTransport {
        SmtpTransport {
            settings,
            transport: Mutex::new(None),
        }
    }

    /// Forgets the transport when its credentials may have changed (XOAUTH2 tokens).
    pub async fn refresh(&self) {
        if self.settings.auth == AuthMethod::Xoauth2 {
            *self.transport.lock().await = None;
        }
    }

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
        let transport = {
            let mut slot = self.transport.lock().await;
            match slot.as_ref() {
                Some(t) => t.clone(),
                None => match self.build().await {
                    Ok(t) => slot.insert(t).clone(),
                    Err(e) => return Delivery::Temporary(e),
                },
            }
        };
        match transport.send_raw(&envelope, bytes).await {
            Ok(response) => Delivery::Sent(
                format!(
                    "{} {}",
                    response.code(),
                    response.message().collect::<Vec<_>>().join(" ")
                )
                .trim()
                .to_string(),
            ),
            Err(e) if e.is_permanent() => Delivery::Permanent(describe(&e)),
            Err(e) => Delivery::Temporary(describe(&e)),
        }
    }

    async fn build(&self) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
        let s = &self.settings;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(s.host.clone())
            .port(s.port())
            .timeout(Some(Duration::from_secs(s.timeout_secs.max(1))))
            .pool_config(PoolConfig::new().max_size(4));
        let tls = || -> Result<TlsParameters, String> {
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
        };
        builder = match s.security {
            Security::Tls => builder.tls(Tls::Wrapper(tls()?)),
            Security::Starttls => builder.tls(Tls::Required(tls()?)),
            Security::Plain => builder.tls(Tls::None),
        };
        if let Some(user) = &s.user {
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
            builder = builder
                .credentials(Credentials::new(user.clone(), secret))
                .authentication(mechanisms);
        }
        Ok(builder.build())
    }
}

/// The server's own words when there are some ("550 5.1.1 No such user").
fn describe(e: &lettre::transport::smtp::Error) -> String {
    match e.status() {
        Some(code) => format!("{code} {e}"),
        None => e.to_string(),
    }
}
