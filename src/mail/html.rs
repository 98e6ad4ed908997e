//! HTML bodies: sanitizing what we keep (ammonia) and rendering text when there is no text part.

use std::sync::LazyLock;

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

/// Sanitized HTML: safe to show to an agent in a browser.
pub fn sanitize(html: &str) -> String {
    SANITIZER.clean(html).to_string()
}

/// Plain text rendering of an HTML body, for mail that has no text part.
/// Block quotes come out as `> ` lines, so quoted history stays recognizable.
pub fn to_text(html: &str) -> String {
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
        let clean = sanitize(dirty);
        assert!(!clean.contains("script"), "{clean}");
        assert!(!clean.contains("onclick"), "{clean}");
        assert!(!clean.contains("tracker.example.net"), "{clean}");
        assert!(!clean.contains("javascript"), "{clean}");
        assert!(!clean.contains("<style"), "{clean}");
        assert!(clean.contains("cid:logo@x"), "{clean}");
        assert!(clean.contains("Hello"), "{clean}");
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
