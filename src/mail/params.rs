//! RFC 2231 parameter values (`filename*=utf-8''…`, `filename*0*=…; filename*1*=…`):
//! continuations joined as bytes first, then decoded with the charset of the first segment.
//!
//! The MIME parser decodes each segment on its own, which breaks a multi-byte
//! character or an ISO-2022-JP escape run cut between two segments, and loses
//! the charset for every segment after the first. Only extended (`*`) forms are
//! read here; a plain `filename="…"` is left to the MIME parser.

use std::borrow::Cow;

/// One `name*N*=value` item of a header value.
struct Segment {
    index: u32,
    /// Percent-encoded (the name ends in `*`).
    encoded: bool,
    value: Vec<u8>,
}

/// The extended value of parameter `name` in a raw header value (the part after
/// `Content-Disposition:`), decoded; `None` when the parameter has no extended form.
pub fn extended_param(raw_value: &[u8], name: &str) -> Option<String> {
    let mut segments: Vec<Segment> = Vec::new();
    for (key, value) in items(raw_value) {
        let Some(rest) = strip_prefix_ignore_case(&key, name) else {
            continue;
        };
        let Some(rest) = rest.strip_prefix('*') else {
            continue; // the plain form, or another parameter sharing the prefix
        };
        let (index, encoded) = match rest {
            "" => (0, true),
            _ => {
                let (digits, encoded) = match rest.strip_suffix('*') {
                    Some(d) => (d, true),
                    None => (rest, false),
                };
                let Ok(index) = digits.parse::<u32>() else {
                    continue;
                };
                (index, encoded)
            }
        };
        if segments.iter().any(|s| s.index == index) {
            continue; // a repeated segment: the first one counts
        }
        segments.push(Segment {
            index,
            encoded,
            value,
        });
    }
    if segments.is_empty() {
        return None;
    }
    segments.sort_by_key(|s| s.index);
    let mut charset: Option<String> = None;
    let mut bytes = Vec::new();
    for (position, segment) in segments.iter().enumerate() {
        let mut value = segment.value.as_slice();
        if position == 0 && segment.encoded {
            // charset'language'value; a value without the two quotes is taken as it is.
            let mut fields = value.splitn(3, |&b| b == b'\'');
            if let (Some(cs), Some(_lang), Some(rest)) =
                (fields.next(), fields.next(), fields.next())
            {
                charset =
                    Some(String::from_utf8_lossy(cs).trim().to_string()).filter(|c| !c.is_empty());
                value = rest;
            }
        }
        if segment.encoded {
            bytes.extend(percent_encoding::percent_decode(value));
        } else {
            bytes.extend_from_slice(value);
        }
    }
    let decoded = decode(&bytes, charset.as_deref());
    let decoded = decoded.trim();
    (!decoded.is_empty()).then(|| decoded.to_string())
}

/// Text in `charset` (an RFC 2231 label, perhaps with a `*language` suffix);
/// UTF-8 when the label is missing or unknown, and a guess when that fails.
fn decode<'a>(bytes: &'a [u8], charset: Option<&str>) -> Cow<'a, str> {
    let label = charset.map(|c| c.split('*').next().unwrap_or(c).trim());
    let encoding = label.and_then(|l| encoding_rs::Encoding::for_label(l.as_bytes()));
    if let Some(encoding) = encoding {
        return encoding.decode_without_bom_handling(bytes).0;
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => {
            super::guess_encoding(bytes)
                .decode_without_bom_handling(bytes)
                .0
        }
    }
}

fn strip_prefix_ignore_case<'a>(key: &'a str, prefix: &str) -> Option<&'a str> {
    let head = key.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &key[prefix.len()..])
}

/// The `key=value` items after the first `;` of a header value, folding and
/// comments removed, quoted strings unquoted.
fn items(raw_value: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = raw_value;
    // Skip the type (`attachment`, `text/plain`) up to the first `;` outside quotes.
    match next_separator(rest) {
        Some(at) => rest = &rest[at + 1..],
        None => return out,
    }
    loop {
        let end = next_separator(rest).unwrap_or(rest.len());
        let item = &rest[..end];
        if let Some(eq) = item.iter().position(|&b| b == b'=') {
            let key = String::from_utf8_lossy(item[..eq].trim_ascii()).into_owned();
            let value = unquote(item[eq + 1..].trim_ascii());
            if !key.is_empty() {
                out.push((key, value));
            }
        }
        if end >= rest.len() {
            break;
        }
        rest = &rest[end + 1..];
    }
    out
}

/// The position of the next `;` that is not inside a quoted string.
fn next_separator(value: &[u8]) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, &b) in value.iter().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b';' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

/// A parameter value without its quotes and escapes, line folding removed.
fn unquote(value: &[u8]) -> Vec<u8> {
    let unfolded: Vec<u8> = value
        .iter()
        .copied()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect();
    let Some(inner) = unfolded
        .strip_prefix(b"\"")
        .map(|v| v.strip_suffix(b"\"").unwrap_or(v))
    else {
        // A token ends at whitespace or a comment.
        let end = unfolded
            .iter()
            .position(|&b| b == b'(' || b.is_ascii_whitespace())
            .unwrap_or(unfolded.len());
        return unfolded[..end].to_vec();
    };
    let mut out = Vec::with_capacity(inner.len());
    let mut escaped = false;
    for &b in inner {
        if !escaped && b == b'\\' {
            escaped = true;
            continue;
        }
        escaped = false;
        out.push(b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_extended_value_is_decoded_with_its_charset() {
        let raw = b" attachment; filename=\"Angebot_M_ller.pdf\";\r\n filename*=utf-8''Angebot%20M%C3%BCller.pdf\r\n";
        assert_eq!(
            extended_param(raw, "filename").as_deref(),
            Some("Angebot Müller.pdf")
        );
    }

    #[test]
    fn continuations_carry_the_first_charset_and_mix_quoted_segments() {
        let raw = b" attachment;\r\n filename*0*=iso-8859-1''Preis%FCbersicht%20Dru;\r\n filename*1*=cker%20M%E4rz;\r\n filename*2=\" 2026.xlsx\"\r\n";
        assert_eq!(
            extended_param(raw, "filename").as_deref(),
            Some("Preisübersicht Drucker März 2026.xlsx")
        );
    }

    #[test]
    fn iso_2022_jp_segments_are_joined_before_decoding() {
        let raw = b" attachment;\r\n filename*0*=iso-2022-jp''%1B%24B8%2B%40Q;\r\n filename*1*=%3Dq%1B%28B%5F2026%1B%24BG%2F%1B%28B3%1B%24B7n%1B%28B%2Epdf\r\n";
        assert_eq!(
            extended_param(raw, "filename").as_deref(),
            Some("見積書_2026年3月.pdf")
        );
    }

    #[test]
    fn out_of_order_segments_are_sorted() {
        let raw = b" attachment; filename*1=\"b.txt\"; filename*0=\"a\"";
        assert_eq!(extended_param(raw, "filename").as_deref(), Some("ab.txt"));
    }

    #[test]
    fn plain_parameters_and_lookalike_names_are_not_extended() {
        assert_eq!(
            extended_param(b" attachment; filename=\"a.txt\"", "filename"),
            None
        );
        assert_eq!(
            extended_param(b" text/plain; name*=utf-8''x; charset=utf-8", "filename"),
            None
        );
        assert_eq!(
            extended_param(b" attachment; filenamex*=utf-8''x", "filename"),
            None
        );
        assert_eq!(extended_param(b"attachment", "filename"), None);
    }

    #[test]
    fn quoted_semicolons_and_unknown_charsets_do_not_break_parsing() {
        let raw = b" attachment; note=\"a;b\"; filename*=x-unknown''Gr%FC%DFe.txt";
        let name = extended_param(raw, "filename").expect("a name");
        assert!(name.starts_with("Gr") && name.ends_with(".txt"), "{name}");
        assert!(!name.contains('\u{fffd}'), "{name}");
        assert_eq!(
            extended_param(b" attachment; filename*=''a%ZZ.txt", "filename").as_deref(),
            Some("a%ZZ.txt")
        );
    }
}
