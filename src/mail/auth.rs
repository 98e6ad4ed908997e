//! What a message's `Authentication-Results` headers (RFC 8601) prove about
//! its sender, read the way our own MTA wrote them. Pure: no I/O.
//!
//! Anybody can write an `Authentication-Results` header into a message; only
//! the one our own MTA added is worth anything. MTAs prepend their headers, so
//! the topmost header with our authserv-id is ours, and headers naming any
//! other authserv-id are ignored.

use serde::Serialize;

/// One `method=result` of a header, with its properties (`header.d`, `header.from`…).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodResult {
    pub method: String,
    pub result: String,
    pub properties: Vec<(String, String)>,
}

impl MethodResult {
    /// The value of a property (`header.d`), case-insensitively by name.
    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// One `Authentication-Results` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Results {
    /// `None` for a header that names no authserv-id (Microsoft 365 writes those).
    pub authserv_id: Option<String>,
    pub methods: Vec<MethodResult>,
}

/// Reads one header value. Comments are dropped; what cannot be read is left out.
pub fn parse(value: &str) -> Results {
    let cleaned = strip_comments(value);
    let mut segments = split_outside_quotes(&cleaned, ';').into_iter();
    let first = segments.next().unwrap_or_default();
    let first = first.trim();
    let (authserv_id, first_method) = if first.contains('=') {
        (None, Some(first.to_string()))
    } else {
        let id = first.split_whitespace().next().unwrap_or("");
        (
            (!id.is_empty()).then(|| unquote(id).to_ascii_lowercase()),
            None,
        )
    };
    let methods = first_method
        .into_iter()
        .chain(segments)
        .filter_map(|segment| method_result(&segment))
        .collect();
    Results {
        authserv_id,
        methods,
    }
}

fn method_result(segment: &str) -> Option<MethodResult> {
    // `dkim = pass header.d = example.com` is written without the spaces too.
    let compact = segment
        .split('=')
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("=");
    let mut words = split_outside_quotes(&compact, ' ')
        .into_iter()
        .filter(|w| !w.trim().is_empty());
    let head = words.next()?;
    let (method, result) = head.split_once('=')?;
    let method = method.trim().to_ascii_lowercase();
    if method.is_empty() || method == "none" {
        return None;
    }
    let properties = words
        .filter_map(|word| {
            let (key, value) = word.split_once('=')?;
            Some((
                key.trim().to_ascii_lowercase(),
                unquote(value.trim()).to_string(),
            ))
        })
        .collect();
    Some(MethodResult {
        method,
        result: result.trim().to_ascii_lowercase(),
        properties,
    })
}

/// Drops `( … )` comments (which nest) outside quoted strings.
fn strip_comments(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let (mut depth, mut quoted, mut escaped) = (0usize, false, false);
    for c in value.chars() {
        if escaped {
            escaped = false;
            if depth == 0 {
                out.push(c);
            }
            continue;
        }
        match c {
            '\\' => {
                escaped = true;
                if depth == 0 {
                    out.push(c);
                }
            }
            '"' if depth == 0 => {
                quoted = !quoted;
                out.push(c);
            }
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => {
                depth -= 1;
                out.push(' ');
            }
            _ if depth == 0 => out.push(if c.is_whitespace() { ' ' } else { c }),
            _ => {}
        }
    }
    out
}

fn split_outside_quotes(text: &str, separator: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut quoted = false;
    for c in text.chars() {
        if c == '"' {
            quoted = !quoted;
        }
        if c == separator && !quoted {
            parts.push(String::new());
        } else if let Some(last) = parts.last_mut() {
            last.push(c);
        }
    }
    parts
}

fn unquote(value: &str) -> &str {
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
}

/// What the headers prove, for `ticketd parse --json` and for a held agent mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// The DMARC result of the header used (`pass`, `fail`…).
    pub dmarc: Option<String>,
    /// The DKIM result of the header used, with the signing domain.
    pub dkim: Option<String>,
    /// The authserv-id of the header used; `""` for one that names none.
    pub authserv_id: Option<String>,
    /// Whether the sender is proven.
    pub trusted: bool,
    /// Why, in words.
    pub reason: String,
}

/// Judges the `Authentication-Results` headers of a message (topmost first)
/// for a mail from `from`: the topmost header whose authserv-id is one of
/// `ours` (`""` for a header that names none) must show `dmarc=pass`, or
/// `dkim=pass` signed by a domain aligned with the From domain.
pub fn judge(headers: &[String], ours: &[String], from: &str) -> Verdict {
    let ours: Vec<String> = ours
        .iter()
        .map(|id| id.trim().to_ascii_lowercase())
        .collect();
    let used = headers.iter().map(|h| parse(h)).find(|results| {
        let id = results.authserv_id.as_deref().unwrap_or("");
        ours.iter().any(|o| o == id)
    });
    let Some(results) = used else {
        return Verdict {
            dmarc: None,
            dkim: None,
            authserv_id: None,
            trusted: false,
            reason: format!(
                "no Authentication-Results header of our mail server ({})",
                ours.iter()
                    .map(|o| if o.is_empty() {
                        "no authserv-id"
                    } else {
                        o.as_str()
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
    };
    let from_domain = from
        .rsplit_once('@')
        .map_or("", |(_, d)| d)
        .to_ascii_lowercase();
    let dmarc = results
        .methods
        .iter()
        .find(|m| m.method == "dmarc")
        .map(|m| m.result.clone());
    let dkim_results: Vec<&MethodResult> = results
        .methods
        .iter()
        .filter(|m| m.method == "dkim")
        .collect();
    let aligned_dkim = dkim_results.iter().find(|m| {
        m.result == "pass" && signing_domain(m).is_some_and(|d| aligned(&d, &from_domain))
    });
    let dkim = aligned_dkim
        .or(dkim_results.first())
        .map(|m| match signing_domain(m) {
            Some(d) => format!("{} (header.d={d})", m.result),
            None => m.result.clone(),
        });
    let (trusted, reason) = if dmarc.as_deref() == Some("pass") {
        (true, "dmarc=pass".to_string())
    } else if let Some(m) = aligned_dkim {
        (
            true,
            format!(
                "dkim=pass for {}, aligned with the From domain",
                signing_domain(m).unwrap_or_default()
            ),
        )
    } else {
        (
            false,
            format!(
                "our mail server found dmarc={} and no DKIM signature aligned with {from_domain}",
                dmarc.as_deref().unwrap_or("none")
            ),
        )
    };
    Verdict {
        dmarc,
        dkim,
        authserv_id: Some(results.authserv_id.unwrap_or_default()),
        trusted,
        reason,
    }
}

/// The domain that signed: `header.d`, else the domain of `header.i`.
fn signing_domain(result: &MethodResult) -> Option<String> {
    result
        .property("header.d")
        .map(str::to_string)
        .or_else(|| {
            result
                .property("header.i")
                .and_then(|i| i.rsplit_once('@'))
                .map(|(_, d)| d.to_string())
        })
        .map(|d| d.trim_end_matches('.').to_ascii_lowercase())
}

/// Relaxed alignment: the signing domain is the From domain or one of its
/// parents (or children), and no bare top-level domain.
pub fn aligned(signing: &str, from: &str) -> bool {
    if !signing.contains('.') || from.is_empty() {
        return false;
    }
    signing == from
        || from.ends_with(&format!(".{signing}"))
        || signing.ends_with(&format!(".{from}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn gmail_headers_are_read_with_their_comments_dropped() {
        let header = "mx.google.com;\r\n       dkim=pass header.i=@example.com header.s=s1 header.b=AbC;\r\n       spf=pass (google.com: domain of agent@example.com designates 192.0.2.1 as permitted sender) smtp.mailfrom=agent@example.com;\r\n       dmarc=pass (p=NONE sp=NONE dis=NONE) header.from=example.com";
        let results = parse(header);
        assert_eq!(results.authserv_id.as_deref(), Some("mx.google.com"));
        let methods: Vec<&str> = results.methods.iter().map(|m| m.method.as_str()).collect();
        assert_eq!(methods, ["dkim", "spf", "dmarc"]);
        assert_eq!(
            results.methods[2].property("header.from"),
            Some("example.com")
        );
        let verdict = judge(
            &[header.to_string()],
            &ours(&["mx.google.com"]),
            "agent@example.com",
        );
        assert!(verdict.trusted, "{verdict:?}");
        assert_eq!(verdict.dmarc.as_deref(), Some("pass"));
    }

    #[test]
    fn microsoft_365_headers_name_no_authserv_id() {
        let header = "spf=pass (sender IP is 192.0.2.1) smtp.mailfrom=example.com; dkim=pass (signature was verified) header.d=example.com;dmarc=pass action=none header.from=example.com;compauth=pass reason=100";
        let results = parse(header);
        assert_eq!(results.authserv_id, None);
        assert_eq!(results.methods.len(), 4);
        assert!(judge(&[header.into()], &ours(&[""]), "agent@example.com").trusted);
        assert!(
            !judge(
                &[header.into()],
                &ours(&["mx.example.com"]),
                "agent@example.com"
            )
            .trusted
        );
    }

    #[test]
    fn a_local_opendkim_and_opendmarc_are_read() {
        let dmarc = "mail.example.com; dmarc=fail (p=reject dis=none) header.from=example.com";
        let dkim = "mail.example.com; dkim=pass (2048-bit key; unprotected) header.d=example.com header.i=@example.com header.b=\"AbC;=\"";
        // Topmost first: OpenDMARC's header above OpenDKIM's; only the topmost counts.
        let verdict = judge(
            &[dmarc.into(), dkim.into()],
            &ours(&["mail.example.com"]),
            "agent@example.com",
        );
        assert!(!verdict.trusted);
        assert_eq!(verdict.dmarc.as_deref(), Some("fail"));
        // rspamd writes one header with both.
        let rspamd = "mail.example.com; dkim=pass header.d=example.com header.s=dkim header.b=x; spf=pass smtp.mailfrom=agent@example.com; dmarc=pass (policy=none) header.from=example.com";
        assert!(
            judge(
                &[rspamd.into()],
                &ours(&["mail.example.com"]),
                "agent@example.com"
            )
            .trusted
        );
    }

    #[test]
    fn a_dkim_pass_counts_only_when_aligned_with_the_from_domain() {
        let ok = "mx.example.com; dkim=pass header.d=example.com; dmarc=none";
        assert!(
            judge(
                &[ok.into()],
                &ours(&["mx.example.com"]),
                "agent@mail.example.com"
            )
            .trusted
        );
        let foreign = "mx.example.com; dkim=pass header.d=evil.test; dmarc=none";
        let verdict = judge(
            &[foreign.into()],
            &ours(&["mx.example.com"]),
            "agent@example.com",
        );
        assert!(!verdict.trusted);
        assert_eq!(verdict.dkim.as_deref(), Some("pass (header.d=evil.test)"));
        let tld = "mx.example.com; dkim=pass header.d=com";
        assert!(
            !judge(
                &[tld.into()],
                &ours(&["mx.example.com"]),
                "agent@example.com"
            )
            .trusted
        );
    }

    #[test]
    fn headers_of_other_servers_are_ignored_however_they_read() {
        let forged = "mx.example.com; dmarc=pass header.from=example.com";
        let ours_says = "mx.ours.test; dmarc=fail header.from=example.com";
        // A forged header below ours (written by the sender) is not ours.
        let verdict = judge(
            &[ours_says.into(), forged.into()],
            &ours(&["mx.ours.test"]),
            "agent@example.com",
        );
        assert!(!verdict.trusted);
        // Without any header of ours nothing is proven.
        let verdict = judge(
            &[forged.into()],
            &ours(&["mx.ours.test"]),
            "agent@example.com",
        );
        assert!(!verdict.trusted);
        assert!(
            verdict.reason.contains("no Authentication-Results"),
            "{}",
            verdict.reason
        );
        assert!(!judge(&[], &ours(&["mx.ours.test"]), "agent@example.com").trusted);
    }
}
