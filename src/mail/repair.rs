//! Repairs broken mail before MIME parsing: junk before the headers, nested
//! multiparts that are never closed, raw 8-bit header bytes in a legacy charset,
//! and characters split between two encoded words.
//!
//! Real mail is often not what RFC 5322/2046 say. A lenient parser copes with
//! most of it; these defects make it lose the structure or the text, so
//! they are mended here on a copy (the stored raw message is never changed).

use std::borrow::Cow;

use base64::Engine as _;

/// Returns the message as the MIME parser should see it; borrowed when nothing needed mending.
pub fn repair(raw: &[u8]) -> Cow<'_, [u8]> {
    // Some Windows tools save messages with a UTF-8 byte-order mark in front.
    let raw = raw.strip_prefix(b"\xef\xbb\xbf").unwrap_or(raw);
    let (start, headerless) = locate_headers(raw);
    let body = &raw[start..];
    if headerless {
        // A message with no header fields: everything is body.
        let mut out = Vec::with_capacity(body.len() + 2);
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(body);
        return Cow::Owned(out);
    }
    match rewrite(body) {
        Some(fixed) => Cow::Owned(fixed),
        None => Cow::Borrowed(body),
    }
}

/// Where the header block starts, and whether there is none at all. Skips blank
/// lines, an mbox `From ` line, and one line of junk (e.g. `---- Original email
/// message ----`) when header fields follow it.
fn locate_headers(raw: &[u8]) -> (usize, bool) {
    let mut pos = 0;
    while pos < raw.len() && matches!(raw[pos], b'\r' | b'\n' | b' ' | b'\t') {
        pos += 1;
    }
    let line_end = |from: usize| {
        raw[from..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw.len(), |i| from + i + 1)
    };
    let first_end = line_end(pos);
    let first = &raw[pos..first_end];
    if is_header_field(first) {
        return (pos, false);
    }
    if first.starts_with(b"From ") || is_header_field(&raw[first_end..line_end(first_end)]) {
        return (first_end, false);
    }
    (pos, true)
}

/// `Name: value`, where the name is printable ASCII without spaces.
pub fn is_header_field(line: &[u8]) -> bool {
    match line.iter().position(|&b| b == b':') {
        Some(colon) if colon > 0 => line[..colon].iter().all(|&b| (33..=126).contains(&b)),
        _ => false,
    }
}

struct Line<'a> {
    /// The line without its ending.
    text: &'a [u8],
    /// The line with its ending.
    whole: &'a [u8],
}

fn lines(data: &[u8]) -> impl Iterator<Item = Line<'_>> {
    let mut rest = data;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map_or(rest.len(), |i| i + 1);
        let whole = &rest[..end];
        rest = &rest[end..];
        let mut text = whole;
        while let [head @ .., b'\n' | b'\r'] = text {
            text = head;
        }
        Some(Line { text, whole })
    })
}

enum Edit {
    /// Insert closing delimiters for these boundaries before line `at`.
    CloseBefore { at: usize, boundaries: Vec<Vec<u8>> },
    /// Line `at` is a header line in a legacy charset.
    Transcode { at: usize },
    /// Line `at` has encoded words labelled ISO-2022-JP that hold Shift_JIS bytes.
    Relabel { at: usize },
    /// The header field on lines `at..at + lines` is written anew as `field`.
    Replace {
        at: usize,
        lines: usize,
        field: Vec<u8>,
    },
}

/// The header field being read: its first line, how many lines, and its unfolded text.
struct Field {
    at: usize,
    lines: usize,
    text: Vec<u8>,
    edited: bool,
}

impl Field {
    /// An edit that joins split encoded words, when the field needs one.
    fn finish(self) -> Option<Edit> {
        if self.edited || !self.text.is_ascii() {
            return None;
        }
        let text = std::str::from_utf8(&self.text).ok()?;
        let mut field = join_split_encoded_words(text)?.into_bytes();
        field.extend_from_slice(b"\r\n");
        Some(Edit::Replace {
            at: self.at,
            lines: self.lines,
            field,
        })
    }
}

/// Scans the structure once; rebuilds the message only when an edit is needed.
fn rewrite(data: &[u8]) -> Option<Vec<u8>> {
    let mut edits: Vec<Edit> = Vec::new();
    let mut open: Vec<Vec<u8>> = Vec::new();
    let mut in_header = true;
    let mut header_block: Vec<u8> = Vec::new();
    let mut top_level_charset: Option<String> = None;
    let mut first_block = true;
    let mut field: Option<Field> = None;

    for (index, line) in lines(data).enumerate() {
        if in_header {
            let continues = line.text.first().is_some_and(|b| *b == b' ' || *b == b'\t');
            if continues && let Some(open_field) = field.as_mut() {
                open_field.lines += 1;
                open_field.text.extend_from_slice(line.text);
            } else {
                edits.extend(field.take().and_then(Field::finish));
                if !line.text.is_empty() {
                    field = Some(Field {
                        at: index,
                        lines: 1,
                        text: line.text.to_vec(),
                        edited: false,
                    });
                }
            }
            if line.text.is_empty() {
                let declared = header_param(&header_block, b"content-type", b"boundary");
                if first_block {
                    top_level_charset = header_param(&header_block, b"content-type", b"charset")
                        .map(|c| String::from_utf8_lossy(&c).into_owned());
                    first_block = false;
                }
                if is_multipart(&header_block)
                    && let Some(boundary) = declared
                {
                    open.push(boundary);
                }
                header_block.clear();
                in_header = false;
                continue;
            }
            if !line.text.is_ascii() && std::str::from_utf8(line.text).is_err() {
                edits.push(Edit::Transcode { at: index });
                field.iter_mut().for_each(|f| f.edited = true);
            } else if has_mislabelled_japanese(line.text) {
                edits.push(Edit::Relabel { at: index });
                field.iter_mut().for_each(|f| f.edited = true);
            }
            header_block.extend_from_slice(line.whole);
            continue;
        }
        if open.is_empty() || !line.text.starts_with(b"--") {
            continue;
        }
        let Some((depth, closing)) = match_delimiter(line.text, &open) else {
            continue;
        };
        if depth + 1 < open.len() {
            let unclosed: Vec<Vec<u8>> = open.drain(depth + 1..).rev().collect();
            edits.push(Edit::CloseBefore {
                at: index,
                boundaries: unclosed,
            });
        }
        if closing {
            open.pop();
        } else {
            in_header = true;
        }
    }
    if edits.is_empty() {
        return None;
    }
    Some(apply_edits(data, &edits, top_level_charset.as_deref()))
}

/// Which open boundary (index into `open`, innermost last) a `--…` line is, and whether it closes.
fn match_delimiter(line: &[u8], open: &[Vec<u8>]) -> Option<(usize, bool)> {
    let after_dashes = &line[2..];
    open.iter().enumerate().rev().find_map(|(depth, boundary)| {
        let rest = after_dashes.strip_prefix(boundary.as_slice())?;
        let (closing, tail) = match rest.strip_prefix(b"--") {
            Some(tail) => (true, tail),
            None => (false, rest),
        };
        tail.iter()
            .all(|b| b.is_ascii_whitespace())
            .then_some((depth, closing))
    })
}

fn apply_edits(data: &[u8], edits: &[Edit], charset_hint: Option<&str>) -> Vec<u8> {
    let encoding = legacy_header_encoding(data, edits, charset_hint);
    let mut out = Vec::with_capacity(data.len() + 256);
    let mut edits = edits.iter().peekable();
    let mut replaced_until = 0;
    for (index, line) in lines(data).enumerate() {
        let mut transcode = false;
        let mut relabel = false;
        while let Some(edit) = edits.peek() {
            match edit {
                Edit::CloseBefore { at, boundaries } if *at == index => {
                    for boundary in boundaries {
                        out.extend_from_slice(b"--");
                        out.extend_from_slice(boundary);
                        out.extend_from_slice(b"--\r\n");
                    }
                }
                Edit::Transcode { at } if *at == index => transcode = true,
                Edit::Relabel { at } if *at == index => relabel = true,
                Edit::Replace { at, lines, field } if *at == index => {
                    out.extend_from_slice(field);
                    replaced_until = at + lines;
                }
                _ => break,
            }
            edits.next();
        }
        if index < replaced_until {
            continue;
        }
        if transcode {
            let (decoded, _) = encoding.decode_without_bom_handling(line.whole);
            out.extend_from_slice(decoded.as_bytes());
        } else if relabel {
            let text = String::from_utf8_lossy(line.whole);
            let fixed = ISO_2022_JP_WORD.replace_all(&text, |word: &regex::Captures<'_>| {
                if base64_has_8bit(&word[2]) {
                    format!("=?Shift_JIS?B?{}?=", &word[2])
                } else {
                    word[0].to_string()
                }
            });
            out.extend_from_slice(fixed.as_bytes());
        } else {
            out.extend_from_slice(line.whole);
        }
    }
    out
}

/// The charset of raw 8-bit header bytes: the message's declared charset when
/// it decodes them cleanly, else a guess from the bytes themselves.
fn legacy_header_encoding(
    data: &[u8],
    edits: &[Edit],
    charset_hint: Option<&str>,
) -> &'static encoding_rs::Encoding {
    let mut sample = Vec::new();
    let mut wanted = edits.iter().filter_map(|e| match e {
        Edit::Transcode { at } => Some(*at),
        Edit::CloseBefore { .. } | Edit::Relabel { .. } | Edit::Replace { .. } => None,
    });
    let mut next = wanted.next();
    for (index, line) in lines(data).enumerate() {
        let Some(at) = next else { break };
        if index == at {
            sample.extend_from_slice(line.text);
            sample.push(b'\n');
            next = wanted.next();
        }
    }
    let declared = charset_hint
        .and_then(|c| encoding_rs::Encoding::for_label(c.trim().as_bytes()))
        .filter(|e| *e != encoding_rs::UTF_8);
    if let Some(encoding) = declared {
        let (_, had_errors) = encoding.decode_without_bom_handling(&sample);
        if !had_errors {
            return encoding;
        }
    }
    super::guess_encoding(&sample)
}

/// An RFC 2047 encoded word: charset, encoding (B or Q), payload.
static ENCODED_WORD: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=").expect("valid regex")
});

/// Joins runs of adjacent encoded words of one charset when a character is
/// split between them (each word should stand alone, but many mailers cut the
/// bytes wherever the line is full). Returns the field anew, unfolded, or `None`
/// when every word decodes on its own.
fn join_split_encoded_words(field: &str) -> Option<String> {
    // Two encoded words at least.
    field.matches("=?").nth(1)?;
    let words: Vec<regex::Captures<'_>> = ENCODED_WORD.captures_iter(field).collect();
    let mut out = String::with_capacity(field.len());
    let mut copied = 0;
    let mut changed = false;
    let mut i = 0;
    while i < words.len() {
        let charset = &words[i][1];
        let mut end = i + 1;
        while end < words.len()
            && words[end][1].eq_ignore_ascii_case(charset)
            && field[words[end - 1].get(0)?.end()..words[end].get(0)?.start()]
                .chars()
                .all(char::is_whitespace)
        {
            end += 1;
        }
        let run = &words[i..end];
        i = end;
        let label = charset.split('*').next().unwrap_or(charset);
        let Some(encoding) = encoding_rs::Encoding::for_label(label.as_bytes()) else {
            continue;
        };
        if run.len() < 2 {
            continue;
        }
        let payloads: Vec<Vec<u8>> = run.iter().map(|w| word_bytes(&w[2], &w[3])).collect();
        let alone_broken = payloads
            .iter()
            .any(|p| encoding.decode_without_bom_handling(p).1);
        let joined = payloads.concat();
        if !alone_broken || encoding.decode_without_bom_handling(&joined).1 {
            continue;
        }
        let (start, stop) = (run[0].get(0)?.start(), run[run.len() - 1].get(0)?.end());
        out.push_str(&field[copied..start]);
        out.push_str(&format!(
            "=?{charset}?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(&joined)
        ));
        copied = stop;
        changed = true;
    }
    if !changed {
        return None;
    }
    out.push_str(&field[copied..]);
    Some(out)
}

/// The bytes an encoded word's payload stands for.
fn word_bytes(encoding: &str, payload: &str) -> Vec<u8> {
    if encoding.eq_ignore_ascii_case("b") {
        return LENIENT_BASE64.decode(payload).unwrap_or_default();
    }
    let bytes = payload.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'_' => out.push(b' '),
            b'=' => match bytes.get(i + 1..i + 3).and_then(|hex| {
                mail_parser::decoders::quoted_printable::quoted_printable_decode_char(
                    hex[0], hex[1],
                )
            }) {
                Some(b) => {
                    out.push(b);
                    i += 2;
                }
                None => out.push(b'='),
            },
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// Base64 that does not insist on padding, as mailers write it.
const LENIENT_BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// A base64 encoded word labelled ISO-2022-JP; group 2 is its payload.
static ISO_2022_JP_WORD: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"=\?(?i:(iso-2022-jp))\?[bB]\?([A-Za-z0-9+/=]+)\?=").expect("valid regex")
});

/// ISO-2022-JP is 7-bit: Japanese mailers that write Shift_JIS bytes under its
/// label make the decoder produce garbage, so such words are relabelled.
fn has_mislabelled_japanese(line: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(line) else {
        return false;
    };
    text.len() < 4096
        && text.contains("=?")
        && ISO_2022_JP_WORD
            .captures_iter(text)
            .any(|word| base64_has_8bit(&word[2]))
}

fn base64_has_8bit(payload: &str) -> bool {
    LENIENT_BASE64
        .decode(payload)
        .is_ok_and(|bytes| bytes.iter().any(|b| *b >= 0x80))
}

fn is_multipart(block: &[u8]) -> bool {
    header_value(block, b"content-type").is_some_and(|v| {
        v.iter()
            .skip_while(|b| b.is_ascii_whitespace())
            .take(10)
            .map(u8::to_ascii_lowercase)
            .eq(b"multipart/".iter().copied())
    })
}

/// The unfolded value of a header field in a header block.
fn header_value(block: &[u8], name: &[u8]) -> Option<Vec<u8>> {
    let mut value: Option<Vec<u8>> = None;
    for line in lines(block) {
        let continuation = line.text.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        match (&mut value, continuation) {
            (Some(v), true) => v.extend_from_slice(line.text),
            (Some(_), false) => break,
            (None, _) => {
                let Some(colon) = line.text.iter().position(|&b| b == b':') else {
                    continue;
                };
                if line.text[..colon].trim_ascii().eq_ignore_ascii_case(name) {
                    value = Some(line.text[colon + 1..].to_vec());
                }
            }
        }
    }
    value
}

/// A parameter (`boundary`, `charset`) of a structured header field, unquoted.
fn header_param(block: &[u8], header: &[u8], param: &[u8]) -> Option<Vec<u8>> {
    let value = header_value(block, header)?;
    value.split(|&b| b == b';').skip(1).find_map(|item| {
        let eq = item.iter().position(|&b| b == b'=')?;
        if !item[..eq].trim_ascii().eq_ignore_ascii_case(param) {
            return None;
        }
        let raw = item[eq + 1..].trim_ascii();
        let unquoted = raw
            .strip_prefix(b"\"")
            .and_then(|r| r.iter().position(|&b| b == b'"').map(|end| &r[..end]))
            .unwrap_or(raw);
        (!unquoted.is_empty()).then(|| unquoted.to_vec())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_mail_is_not_copied() {
        let raw = b"From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b--\r\n";
        assert!(matches!(repair(raw), Cow::Borrowed(_)));
    }

    #[test]
    fn headerless_input_becomes_a_body() {
        let fixed = repair(b"Just some words\nand more words\n");
        assert!(fixed.starts_with(b"\r\nJust some words"));
    }

    #[test]
    fn junk_line_before_headers_is_skipped() {
        let fixed = repair(b"---- Original message ----\r\nFrom: a@example.com\r\n\r\nhi");
        assert!(fixed.starts_with(b"From: a@example.com"));
    }

    #[test]
    fn unclosed_inner_multipart_is_closed_at_the_outer_boundary() {
        let raw = b"Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n--outer\r\nContent-Type: multipart/alternative;\r\n\tboundary=\"inner\"\r\n\r\n--inner\r\nContent-Type: text/plain\r\n\r\ntext\r\n--outer\r\nContent-Type: text/plain\r\n\r\nsecond\r\n--outer--\r\n";
        let fixed = repair(raw);
        let text = String::from_utf8_lossy(&fixed);
        assert!(text.contains("text\r\n--inner--\r\n--outer\r\n"), "{text}");
    }

    #[test]
    fn raw_legacy_header_bytes_are_transcoded() {
        let raw = b"Subject: \xd4\xc5\xd3\xd4 \xd4\xc5\xd3\xd4 \xd4\xc5\xd3\xd4\r\nFrom: a@example.ru\r\n\r\nbody\r\n";
        let fixed = repair(raw);
        let text = std::str::from_utf8(&fixed).expect("utf-8 after repair");
        assert!(text.starts_with("Subject: тест тест тест"), "{text}");
    }

    #[test]
    fn shift_jis_under_an_iso_2022_jp_label_is_relabelled() {
        // "ツール" in Shift_JIS, labelled ISO-2022-JP as some Japanese mailers do.
        let raw = b"From: =?ISO-2022-JP?B?g2OBW4OL?= <bar@example.org>\r\nSubject: =?ISO-2022-JP?B?GyRCJUYlOSVIGyhC?=\r\n\r\nbody\r\n";
        let fixed = String::from_utf8_lossy(&repair(raw)).into_owned();
        assert!(
            fixed.starts_with("From: =?Shift_JIS?B?g2OBW4OL?="),
            "{fixed}"
        );
        assert!(
            fixed.contains("Subject: =?ISO-2022-JP?B?GyRCJUYlOSVIGyhC?="),
            "{fixed}"
        );
    }

    #[test]
    fn a_character_split_between_encoded_words_is_joined() {
        let raw = b"Subject: =?UTF-8?B?U3TD?=\r\n =?UTF-8?B?tnJ1bmcgaW0gR3Jvw59yYXVtYsO8cm8=?=\r\nFrom: a@example.com\r\n\r\nbody\r\n";
        let fixed = String::from_utf8_lossy(&repair(raw)).into_owned();
        let subject = fixed.lines().next().unwrap_or_default();
        assert!(!subject.contains("?= =?"), "{fixed}");
        let parsed = mail_parser::MessageParser::default().parse(fixed.as_bytes());
        assert_eq!(
            parsed.as_ref().and_then(|m| m.subject()),
            Some("Störung im Großraumbüro")
        );
        assert!(
            fixed.contains("\r\nFrom: a@example.com\r\n\r\nbody"),
            "{fixed}"
        );
    }

    #[test]
    fn q_encoded_halves_of_a_character_are_joined() {
        let raw =
            b"Subject: =?utf-8?Q?Gr=C3?= =?utf-8?Q?=BC=C3=9Fe_aus_K=C3=B6ln?=\r\n\r\nbody\r\n";
        let fixed = repair(raw);
        let parsed = mail_parser::MessageParser::default().parse(fixed.as_ref());
        assert_eq!(
            parsed.as_ref().and_then(|m| m.subject()),
            Some("Grüße aus Köln")
        );
    }

    #[test]
    fn encoded_words_that_stand_alone_are_left_as_they_are() {
        let raw = b"Subject: =?UTF-8?Q?Caf=C3=A9?= =?ISO-8859-1?Q?Gr=FC=DFe?=\r\n =?UTF-8?B?w7w=?=\r\n\r\nbody\r\n";
        assert!(matches!(repair(raw), Cow::Borrowed(_)));
    }

    #[test]
    fn declared_charset_is_preferred_for_raw_header_bytes() {
        let raw =
            b"Subject: Gr\xfc\xdfe\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\nbody\r\n";
        let fixed = repair(raw);
        assert!(String::from_utf8_lossy(&fixed).starts_with("Subject: Grüße"));
    }
}
