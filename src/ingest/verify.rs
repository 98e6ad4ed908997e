//! Verify: whether a mail from an agent's address proves to be the agent's,
//! by `[agents] trust` — our own mail server's `Authentication-Results`, a
//! DKIM signature checked here, or (closed networks only) the From line.

use crate::config::{AgentSettings, AgentTrust};
use crate::mail::InboundMail;
use crate::mail::auth::{self, Verdict};

use super::decide::AgentCheck;

/// Checks agents' mail as configured.
pub struct Verifier {
    trust: AgentTrust,
    /// The authserv-ids whose `Authentication-Results` count (`""`: a header naming none).
    authserv_ids: Vec<String>,
    #[cfg(feature = "dkim")]
    dkim: super::dkim::DkimVerifier,
}

impl Verifier {
    /// A verifier for `settings`; without configured authserv-ids, this host's
    /// fully qualified name (and its short name) are ours.
    pub fn new(settings: &AgentSettings) -> Verifier {
        let authserv_ids = match &settings.authserv_id {
            Some(ids) => ids.values(),
            None => crate::host::fully_qualified_name()
                .into_iter()
                .chain(crate::host::name())
                .collect(),
        };
        Verifier {
            trust: settings.trust,
            authserv_ids,
            #[cfg(feature = "dkim")]
            dkim: super::dkim::DkimVerifier::system(),
        }
    }

    /// A verifier that trusts exactly these authserv-ids (for tests and `ticketd parse`).
    pub fn with_authserv_ids(trust: AgentTrust, authserv_ids: Vec<String>) -> Verifier {
        Verifier {
            trust,
            authserv_ids,
            #[cfg(feature = "dkim")]
            dkim: super::dkim::DkimVerifier::system(),
        }
    }

    /// Uses `dkim` to check signatures (tests give one with a resolver cache).
    #[cfg(feature = "dkim")]
    pub fn with_dkim(mut self, dkim: super::dkim::DkimVerifier) -> Verifier {
        self.dkim = dkim;
        self
    }

    /// What the message proves about its From address, as `trust` says; `raw`
    /// is the message as received (for a DKIM check).
    pub async fn verdict(&self, mail: &InboundMail, raw: &[u8]) -> Verdict {
        let from = mail.from.as_ref().map(|f| f.address.as_str()).unwrap_or("");
        match self.trust {
            AgentTrust::Dmarc => auth::judge(
                &mail.signals.authentication_results,
                &self.authserv_ids,
                from,
            ),
            AgentTrust::Sender => Verdict {
                dmarc: None,
                dkim: None,
                authserv_id: None,
                trusted: true,
                reason: "agents.trust = \"sender\": the From address is trusted".into(),
            },
            AgentTrust::Dkim => self.dkim_verdict(raw, from).await,
        }
    }

    /// The check as the decision takes it.
    pub async fn check(&self, mail: &InboundMail, raw: &[u8]) -> AgentCheck {
        let verdict = self.verdict(mail, raw).await;
        AgentCheck {
            trusted: verdict.trusted,
            reason: verdict.reason,
        }
    }

    #[cfg(feature = "dkim")]
    async fn dkim_verdict(&self, raw: &[u8], from: &str) -> Verdict {
        self.dkim.verdict(raw, from).await
    }

    #[cfg(not(feature = "dkim"))]
    async fn dkim_verdict(&self, _raw: &[u8], _from: &str) -> Verdict {
        Verdict {
            dmarc: None,
            dkim: None,
            authserv_id: None,
            trusted: false,
            reason: "agents.trust = \"dkim\" but this ticketd was built without the `dkim` \
                     feature"
                .into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::parse;

    fn mail(headers: &str) -> InboundMail {
        parse(
            format!("{headers}From: Alex <alex@example.com>\r\nSubject: s\r\n\r\nbody\r\n")
                .as_bytes(),
        )
    }

    #[tokio::test]
    async fn only_our_servers_header_counts() {
        let v = Verifier::with_authserv_ids(AgentTrust::Dmarc, vec!["mx.example.com".into()]);
        let ours =
            mail("Authentication-Results: mx.example.com; dmarc=pass header.from=example.com\r\n");
        assert!(v.check(&ours, b"").await.trusted);
        let forged = mail(
            "Authentication-Results: mx.attacker.test; dmarc=pass header.from=example.com\r\n",
        );
        assert!(!v.check(&forged, b"").await.trusted);
        let failed =
            mail("Authentication-Results: mx.example.com; dmarc=fail header.from=example.com\r\n");
        let check = v.check(&failed, b"").await;
        assert!(!check.trusted);
        assert!(check.reason.contains("fail"), "{}", check.reason);
        assert!(!v.check(&mail(""), b"").await.trusted);
    }

    #[cfg(feature = "dkim")]
    #[tokio::test]
    async fn dkim_trust_checks_the_signature_itself() {
        use base64::Engine;
        use mail_auth::common::crypto::Ed25519Key;
        use mail_auth::common::headers::HeaderWriter;
        use mail_auth::dkim::DkimSigner;

        let pkcs8 = Ed25519Key::generate_pkcs8().expect("a key");
        let key = Ed25519Key::from_pkcs8_der(&pkcs8).expect("the key");
        let public = base64::engine::general_purpose::STANDARD.encode(key.public_key());
        let message = "From: Alex <alex@example.com>\r\nSubject: s\r\n\r\nbody\r\n";
        let signature = DkimSigner::from_key(key)
            .domain("example.com")
            .selector("sel")
            .headers(["From", "Subject"])
            .sign(message.as_bytes())
            .expect("signed");
        let raw = format!("{}{message}", signature.to_header());
        let dkim = super::super::dkim::DkimVerifier::system()
            .with_key(
                "sel",
                "example.com",
                &format!("v=DKIM1; k=ed25519; p={public}"),
            )
            .expect("record");
        let v = Verifier::with_authserv_ids(AgentTrust::Dkim, vec![]).with_dkim(dkim);
        assert!(
            v.check(&parse(raw.as_bytes()), raw.as_bytes())
                .await
                .trusted
        );
        // A header claiming a pass counts for nothing in this mode.
        let claimed =
            mail("Authentication-Results: mx.example.com; dmarc=pass header.from=example.com\r\n");
        assert!(!v.check(&claimed, message.as_bytes()).await.trusted);
    }

    #[tokio::test]
    async fn sender_trust_believes_the_from_line() {
        let v = Verifier::with_authserv_ids(AgentTrust::Sender, vec![]);
        assert!(v.check(&mail(""), b"").await.trusted);
    }
}
