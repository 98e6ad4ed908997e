//! DKIM checked in-process (`[agents] trust = "dkim"`, the `dkim` cargo
//! feature), for mail servers that write no `Authentication-Results`: an
//! agent's mail must carry a valid signature of a domain aligned with its From.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::verify::DomainKey;
use mail_auth::{
    AuthenticatedMessage, DkimResult, MessageAuthenticator, Parameters, ResolverCache, Txt,
};

use crate::mail::auth::{Verdict, aligned};

/// How long the DNS may take to answer for one message.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// Keys fetched from the DNS (until their TTL runs out), and keys given by hand.
#[derive(Default)]
pub struct KeyCache(Mutex<HashMap<Box<str>, (Txt, Instant)>>);

impl ResolverCache<Box<str>, Txt> for KeyCache {
    fn get<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(name)
            .filter(|(_, until)| *until > Instant::now())
            .map(|(txt, _)| txt.clone())
    }

    fn remove<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(name).map(|(txt, _)| txt)
    }

    fn insert(&self, key: Box<str>, value: Txt, valid_until: Instant) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded: a flood of signatures naming random selectors cannot grow it for ever.
        if map.len() >= 10_000 {
            let now = Instant::now();
            map.retain(|_, (_, until)| *until > now);
            if map.len() >= 10_000 {
                map.clear();
            }
        }
        map.insert(key, (value, valid_until));
    }
}

/// Verifies DKIM signatures with the system's resolver and a key cache.
pub struct DkimVerifier {
    /// Made on first use, inside the async runtime.
    authenticator: OnceLock<Option<MessageAuthenticator>>,
    keys: KeyCache,
}

impl DkimVerifier {
    /// A verifier that asks the system's resolver (`/etc/resolv.conf`).
    pub fn system() -> DkimVerifier {
        DkimVerifier {
            authenticator: OnceLock::new(),
            keys: KeyCache::default(),
        }
    }

    /// Adds the key record `record` (`v=DKIM1; k=…; p=…`) for
    /// `selector._domainkey.domain`, as if the DNS had answered it: for tests
    /// and for keys an operator pins.
    pub fn with_key(self, selector: &str, domain: &str, record: &str) -> Result<Self, String> {
        let key = DomainKey::parse(record.as_bytes())
            .map_err(|e| format!("not a DKIM key record: {e}"))?;
        let name = format!("{selector}._domainkey.{domain}.").to_ascii_lowercase();
        let forever = Instant::now() + Duration::from_secs(100 * 365 * 86_400);
        self.keys
            .insert(name.into_boxed_str(), Txt::from(key), forever);
        Ok(self)
    }

    fn authenticator(&self) -> Option<&MessageAuthenticator> {
        self.authenticator
            .get_or_init(|| match MessageAuthenticator::new_system_conf() {
                Ok(a) => Some(a),
                Err(e) => {
                    tracing::error!(error = %e, "no DNS resolver for DKIM checks");
                    None
                }
            })
            .as_ref()
    }

    /// Whether `raw` carries a valid DKIM signature aligned with `from`'s domain.
    pub async fn verdict(&self, raw: &[u8], from: &str) -> Verdict {
        let untrusted = |dkim: Option<String>, reason: String| Verdict {
            dmarc: None,
            dkim,
            authserv_id: None,
            trusted: false,
            reason,
        };
        let Some(authenticator) = self.authenticator() else {
            return untrusted(None, "no DNS resolver to fetch DKIM keys".into());
        };
        let Some(message) = AuthenticatedMessage::parse(raw) else {
            return untrusted(None, "the message cannot be read for a DKIM check".into());
        };
        let from_domain = from
            .rsplit_once('@')
            .map_or("", |(_, d)| d)
            .to_ascii_lowercase();
        let checked = tokio::time::timeout(
            LOOKUP_TIMEOUT,
            authenticator.verify_dkim(Parameters::new(&message).with_txt_cache(&self.keys)),
        )
        .await;
        let Ok(outputs) = checked else {
            return untrusted(
                None,
                "the DNS did not answer for the DKIM key in time".into(),
            );
        };
        let mut seen: Vec<String> = Vec::new();
        for output in &outputs {
            let domain = output
                .signature()
                .map(|s| s.d.to_ascii_lowercase())
                .unwrap_or_default();
            let result = match output.result() {
                DkimResult::Pass => "pass",
                DkimResult::Neutral(_) => "neutral",
                DkimResult::Fail(_) => "fail",
                DkimResult::PermError(_) => "permerror",
                DkimResult::TempError(_) => "temperror",
                DkimResult::None => "none",
            };
            let described = format!("{result} (header.d={domain})");
            if result == "pass" && aligned(&domain, &from_domain) {
                return Verdict {
                    dmarc: None,
                    dkim: Some(described.clone()),
                    authserv_id: None,
                    trusted: true,
                    reason: format!("dkim={described}, aligned with {from_domain}"),
                };
            }
            seen.push(described);
        }
        let reason = if seen.is_empty() {
            "no DKIM signature".to_string()
        } else {
            format!(
                "no passing DKIM signature of {from_domain} (dkim={})",
                seen.join(", ")
            )
        };
        untrusted(seen.into_iter().next(), reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use mail_auth::common::crypto::Ed25519Key;
    use mail_auth::common::headers::HeaderWriter;
    use mail_auth::dkim::DkimSigner;

    const MESSAGE: &str = "From: Alex Agent <alex@example.com>\r\nTo: support@example.com\r\n\
                           Subject: Re: [Support #1] Printer\r\n\r\n#status solved\r\n\r\nFixed.\r\n";

    /// A fresh test key: the verifier that knows it, and the message signed with it for `domain`.
    fn signed(domain: &str, message: &str) -> (DkimVerifier, Vec<u8>) {
        let pkcs8 = Ed25519Key::generate_pkcs8().expect("a key");
        let key = Ed25519Key::from_pkcs8_der(&pkcs8).expect("the key");
        let public = base64::engine::general_purpose::STANDARD.encode(key.public_key());
        let signature = DkimSigner::from_key(key)
            .domain(domain)
            .selector("test")
            .headers(["From", "To", "Subject"])
            .sign(message.as_bytes())
            .expect("signed");
        let verifier = DkimVerifier::system()
            .with_key("test", domain, &format!("v=DKIM1; k=ed25519; p={public}"))
            .expect("record");
        let raw = format!("{}{message}", signature.to_header()).into_bytes();
        (verifier, raw)
    }

    #[tokio::test]
    async fn a_valid_aligned_signature_proves_the_sender() {
        let (verifier, raw) = signed("example.com", MESSAGE);
        let verdict = verifier.verdict(&raw, "alex@example.com").await;
        assert!(verdict.trusted, "{verdict:?}");
        assert!(verdict.dkim.as_deref().unwrap_or("").starts_with("pass"));
    }

    #[tokio::test]
    async fn a_changed_body_or_another_domain_proves_nothing() {
        let (verifier, raw) = signed("example.com", MESSAGE);
        let tampered = String::from_utf8_lossy(&raw).replace("Fixed.", "Send me your password.");
        let verdict = verifier
            .verdict(tampered.as_bytes(), "alex@example.com")
            .await;
        assert!(!verdict.trusted, "{verdict:?}");
        assert!(
            verdict.reason.contains("no passing DKIM signature"),
            "{verdict:?}"
        );
        let (verifier, raw) = signed("attacker.test", MESSAGE);
        let verdict = verifier.verdict(&raw, "alex@example.com").await;
        assert!(
            !verdict.trusted,
            "a signature of another domain: {verdict:?}"
        );
        let verdict = DkimVerifier::system()
            .verdict(MESSAGE.as_bytes(), "alex@example.com")
            .await;
        assert!(!verdict.trusted);
        assert_eq!(verdict.reason, "no DKIM signature");
    }
}
