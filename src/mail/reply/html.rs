//! HTML quote containers: where Gmail, Outlook, Apple Mail, Thunderbird, Yahoo
//! and others mark the quoted history in the HTML they send, whatever the
//! language of the header above it.

use std::sync::LazyLock;

use regex::Regex;

/// The opening tag of a container a mail client puts its quoted history in
/// (`<div class="gmail_quote">`, `<div id="divRplyFwdMsg">`, `<blockquote
/// type="cite">`…), with the `<hr>` Outlook draws just before its own.
static QUOTE_CONTAINER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)(<hr\b[^>]{0,300}>\s*)?<(div|blockquote|table|span|section)\b[^>]{0,300}?\b(class|id|type|name)\s*=\s*["']?(gmail_quote|divRplyFwdMsg|appendonsend|cite|moz-cite-prefix|yahoo_quoted|OLK_SRC_BODY_SECTION|protonmail_quote|zmail_extra|mail-editor-reference-message-container|messageReplySection|reply-quote)\b"#,
    )
    .expect("valid regex")
});

/// The HTML before the first quote container, if there is one.
pub(super) fn before_quote(html: &str) -> Option<&str> {
    QUOTE_CONTAINER
        .find(html)
        .map(|found| &html[..found.start()])
}

#[cfg(test)]
mod tests {
    use super::before_quote;

    #[test]
    fn quote_containers_of_common_clients_are_found() {
        for (html, before) in [
            (
                r#"<div>Thanks</div><div class="gmail_quote"><div class="gmail_attr">Old</div></div>"#,
                "<div>Thanks</div>",
            ),
            (
                r#"<p>Done</p><hr style="display:inline-block" tabindex="-1"><div id="divRplyFwdMsg" dir="ltr">Old</div>"#,
                "<p>Done</p>",
            ),
            (
                r#"<p>Yes</p><blockquote type="cite">Old</blockquote>"#,
                "<p>Yes</p>",
            ),
            (
                r#"<p>Ok</p><div class="moz-cite-prefix">Old</div>"#,
                "<p>Ok</p>",
            ),
        ] {
            assert_eq!(before_quote(html), Some(before), "{html}");
        }
        assert_eq!(
            before_quote("<p>Just <b>words</b></p><hr><p>more</p>"),
            None
        );
    }
}
