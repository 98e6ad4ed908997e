//! HTML bodies: sanitizing what we keep (ammonia) and rendering text when there is no text part.
//!
//! The HTML parser's work grows with the square of the nesting depth and its
//! memory with the number of elements, so a hostile body of a few megabytes
//! could cost minutes and gigabytes. [`check_limits`] measures both in one
//! linear pass first; HTML past the limits is not parsed at all: its text is
//! taken by a plain linear tag stripper and no HTML is kept.

use std::sync::LazyLock;

/// Deepest nesting of elements parsed as HTML.
pub const MAX_DEPTH: usize = 256;
/// Most elements parsed as HTML.
pub const MAX_ELEMENTS: usize = 50_000;

/// Elements that never contain anything.
const VOID: [&str; 14] = [
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
    "track", "wbr",
];
/// Elements a sibling of their kind closes (`<p>`, `<li>`, `<td>`…): they do not nest.
const SELF_CLOSING_SIBLINGS: [&str; 16] = [
    "p", "li", "dt", "dd", "tr", "td", "th", "option", "optgroup", "thead", "tbody", "tfoot",
    "colgroup", "rb", "rt", "rp",
];

/// Why an HTML body is too costly to parse, if it is.
pub fn check_limits(html: &str) -> Result<(), String> {
    let bytes = html.as_bytes();
    let (mut depth, mut deepest, mut elements) = (0usize, 0usize, 0usize);
    let mut i = 0;
    while let Some(offset) = memchr(b'<', &bytes[i..]) {
        i += offset + 1;
        let rest = &bytes[i..];
        if rest.starts_with(b"!--") {
            i += find(rest, b"-->").map_or(rest.len(), |end| end + 3);
            continue;
        }
        let closing = rest.first() == Some(&b'/');
        let name_start = usize::from(closing);
        let name_len = rest[name_start..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
        if name_len == 0 {
            continue;
        }
        let name =
            String::from_utf8_lossy(&rest[name_start..name_start + name_len]).to_ascii_lowercase();
        let end = memchr(b'>', rest).unwrap_or(rest.len());
        let self_closed = end > 0 && rest[end - 1] == b'/';
        i += end;
        if closing {
            depth = depth.saturating_sub(1);
            continue;
        }
        elements += 1;
        if elements > MAX_ELEMENTS {
            return Err(format!("it has more than {MAX_ELEMENTS} HTML elements"));
        }
        let nests = !self_closed
            && !VOID.contains(&name.as_str())
            && !SELF_CLOSING_SIBLINGS.contains(&name.as_str());
        if nests {
            depth += 1;
            deepest = deepest.max(depth);
            if deepest > MAX_DEPTH {
                return Err(format!("its HTML nests deeper than {MAX_DEPTH} elements"));
            }
        }
    }
    Ok(())
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|b| *b == needle)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The text of HTML too costly to parse: tags dropped (block elements end a
/// line), the common entities decoded, in one linear pass.
pub fn strip_tags(html: &str) -> String {
    const BLOCKS: [&str; 14] = [
        "p",
        "div",
        "br",
        "tr",
        "li",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "table",
        "blockquote",
        "hr",
    ];
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        out.push_str(&decode_entities(&rest[..open]));
        let tag = &rest[open + 1..];
        let close = tag.find('>').unwrap_or(tag.len());
        let name: String = tag[..close]
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        if BLOCKS.contains(&name.as_str()) && !out.ends_with('\n') {
            out.push('\n');
        }
        rest = tag.get(close + 1..).unwrap_or("");
    }
    out.push_str(&decode_entities(rest));
    out.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

fn decode_entities(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains('&') {
        return text.into();
    }
    text.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
        .into()
}

/// Scripts, styles, event handlers, forms and remote images removed; `cid:` images kept.
static SANITIZER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut builder = ammonia::Builder::default();
    builder
        .add_url_schemes(["cid"])
        .link_rel(Some("noopener noreferrer nofollow"))
        .attribute_filter(|element, attribute, value| {
            let is_image_source = matches!(
                (element, attribute),
                ("img", "src") | ("img", "srcset") | ("source", "srcset")
            );
            if is_image_source && !value.trim_start().to_ascii_lowercase().starts_with("cid:") {
                None
            } else {
                Some(value.into())
            }
        });
    builder
});

/// Sanitized HTML, safe to show to an agent in a browser; `None` for HTML past
/// the limits (see [`check_limits`]), which is not kept.
pub fn sanitize(html: &str) -> Option<String> {
    check_limits(html).ok()?;
    Some(SANITIZER.clean(html).to_string())
}

/// Plain text rendering of an HTML body, for mail that has no text part.
/// Block quotes come out as `> ` lines, so quoted history stays recognizable.
/// HTML past the limits is stripped of its tags instead of parsed.
pub fn to_text(html: &str) -> String {
    if check_limits(html).is_err() {
        return strip_tags(html);
    }
    let rendered = html2text::config::plain_no_decorate()
        .link_footnotes(false)
        .string_from_read(html.as_bytes(), 10_000);
    match rendered {
        Ok(text) => text
            .lines()
            .map(str::trim_end)
            .collect::<Vec<_>>()
            .join("\n")
            .trim_matches('\n')
            .to_string(),
        // html2text only fails on I/O errors, and reading from memory has none;
        // fall back to the sanitizer with no tags at all.
        Err(_) => ammonia::Builder::empty().clean(html).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitizer_removes_scripts_handlers_and_remote_images() {
        let dirty = r#"<p onclick="steal()">Hello<script>alert(1)</script></p>
            <style>p{}</style><img src="https://tracker.example.net/p.gif?id=1" width=1>
            <img src="cid:logo@x"><a href="javascript:evil()">x</a>"#;
        let clean = sanitize(dirty).expect("within the limits");
        assert!(!clean.contains("script"), "{clean}");
        assert!(!clean.contains("onclick"), "{clean}");
        assert!(!clean.contains("tracker.example.net"), "{clean}");
        assert!(!clean.contains("javascript"), "{clean}");
        assert!(!clean.contains("<style"), "{clean}");
        assert!(clean.contains("cid:logo@x"), "{clean}");
        assert!(clean.contains("Hello"), "{clean}");
    }

    #[test]
    fn deep_or_huge_html_is_refused_in_one_pass() {
        let deep = format!("{}x{}", "<div>".repeat(100_000), "</div>".repeat(100_000));
        assert!(check_limits(&deep).is_err());
        let unclosed = "<b>x".repeat(1_000_000);
        assert!(check_limits(&unclosed).is_err());
        let cells = format!("<table><tr>{}</tr></table>", "<td>x</td>".repeat(1_000_000));
        assert!(check_limits(&cells).is_err());
        // Ordinary mail: siblings that close each other, void elements, comments.
        let ordinary = format!(
            "<html><body><!-- <b><b><b> -->{}<br><img src=cid:x><table>{}</table></body></html>",
            "<p>para".repeat(5_000),
            "<tr><td>a<td>b".repeat(2_000)
        );
        assert_eq!(check_limits(&ordinary), Ok(()));
    }

    #[test]
    fn html_past_the_limits_gives_text_and_no_html() {
        let deep = format!(
            "{}deep words{}",
            "<div>".repeat(1_000),
            "</div>".repeat(1_000)
        );
        assert_eq!(sanitize(&deep), None);
        assert_eq!(to_text(&deep), "deep words");
    }

    #[test]
    fn stripped_text_keeps_words_and_lines() {
        let text = strip_tags("<div>Hello &amp; <b>welcome</b></div><p>Second<br>line</p>");
        assert_eq!(text, "Hello & welcome\nSecond\nline");
    }

    #[test]
    fn text_rendering_keeps_words_and_quotes() {
        let text =
            to_text("<p>Hi <b>there</b></p><blockquote>old words</blockquote><script>x()</script>");
        assert!(text.contains("Hi there"), "{text}");
        assert!(text.contains("> old words"), "{text}");
        assert!(!text.contains("x()"), "{text}");
    }
}
