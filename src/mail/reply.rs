//! Visible reply: the new part of a message, without quoted history, signatures and footers.
//!
//! A reply is read as a small model: the sender's words, then a quote header
//! ([`header`]: an attribution in any of the languages clients write it, an
//! Outlook header block, an "Original Message" line), then the quoted history
//! (`>`- or `|`-quoted lines, or unquoted below a header), with trailers
//! ([`trailer`]: signature delimiters, mobile footers, tracker marks) below the
//! words. The text is read top-down for the first sign of history; what comes
//! after it is dropped unless the sender answered between the quotes (an inline
//! reply), in which case their answers are kept and the quotes dropped. The
//! scan is linear: each line is looked at with a bounded lookahead.

mod header;
mod html;
mod trailer;

pub use trailer::without_signoff;

use header::{attribution_at, glued_reply, header_block_at, introduces_quote};
use trailer::{is_mobile_footer, trim_tail};

/// Lines examined for history: past them, the rest of a very long message is
/// kept as the sender's without looking (the full body is always stored too).
pub const MAX_LINES_EXAMINED: usize = 10_000;

/// Most lines of the paragraph above a final quote read as its header.
const MAX_QUOTE_HEADER_LINES: usize = 3;

/// Returns the part of `text` the sender wrote this time. A message that is
/// nothing but a quote is returned whole: the quote is what the sender sent.
pub fn visible_reply(text: &str) -> String {
    scan(text).0
}

/// The visible reply, and whether history was found in the text.
fn scan(text: &str) -> (String, bool) {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    // Only the examined lines are split: a message of millions of short lines
    // costs no index of them all.
    let head_end = text
        .match_indices('\n')
        .nth(MAX_LINES_EXAMINED - 1)
        .map_or(text.len(), |(at, _)| at);
    let (head, tail) = text.split_at(head_end);
    let lines: Vec<&str> = head.split('\n').collect();
    let mut kept = Vec::with_capacity(lines.len());
    let stopped = visible_lines(&lines, &mut kept);
    if !stopped && !tail.is_empty() {
        // Nothing marked history in the examined lines: the rest is kept unexamined.
        return (text.trim_matches('\n').to_string(), false);
    }
    trim_tail(&mut kept);
    let start = kept
        .iter()
        .position(|l| !l.trim().is_empty())
        .unwrap_or(kept.len());
    let visible = kept[start..]
        .iter()
        .map(|l| l.trim_end())
        .collect::<Vec<_>>()
        .join("\n");
    if visible.is_empty() {
        return (text.trim_matches('\n').to_string(), stopped);
    }
    (visible, stopped)
}

/// The visible reply of a message that has an HTML body beside (or behind)
/// `text`: the text rules first; where the HTML marks its quote in a container
/// (the way Gmail and Outlook do, whatever the language of the header above
/// it) and the text rules found no history nor signature, the text is cut
/// where the container starts.
pub fn visible_reply_with_html(text: &str, html: Option<&str>) -> String {
    let (visible, found_history) = scan(text);
    if found_history {
        return visible;
    }
    let Some(before) = html.and_then(html::before_quote) else {
        return visible;
    };
    let own = visible_reply(&crate::mail::html::to_text(before));
    cut_like(&visible, &own).unwrap_or(visible)
}

/// `visible` cut after its first characters that spell `own`, when `own` is a
/// shorter start of it once whitespace is ignored; `None` when the two differ.
fn cut_like(visible: &str, own: &str) -> Option<String> {
    let mut wanted = own.chars().filter(|c| !c.is_whitespace()).peekable();
    wanted.peek()?;
    let mut end = 0;
    let mut chars = visible.char_indices().filter(|(_, c)| !c.is_whitespace());
    for want in wanted {
        let (at, got) = chars.next()?;
        if got != want {
            return None;
        }
        end = at + got.len_utf8();
    }
    chars.next()?;
    let mut lines: Vec<&str> = visible[..end].split('\n').collect();
    trim_tail(&mut lines);
    Some(lines.join("\n"))
}

/// What the scan found at a line.
#[derive(Debug, PartialEq)]
enum Mark {
    /// History or signature starts here: drop this line and everything after.
    Cut,
    /// An attribution line (or lines) ending at the given index.
    Attribution { end: usize },
    /// A quoted line.
    Quote,
    /// A forwarded message starts: what follows is content, not history.
    Forward,
}

/// Appends to `out` the lines of `lines` that are the sender's own, and says
/// whether the scan stopped at history (true) or read every line (false).
/// Below an attribution whose quote the sender answered, quoted lines are
/// history even between answers.
fn visible_lines<'a>(lines: &[&'a str], out: &mut Vec<&'a str>) -> bool {
    let mut answering = false;
    let mut i = 0;
    while i < lines.len() {
        match mark(lines, i) {
            None => {
                out.push(lines[i]);
                i += 1;
            }
            Some(Mark::Forward) => {
                out.extend_from_slice(&lines[i..]);
                return true;
            }
            Some(Mark::Cut) => return true,
            Some(Mark::Attribution { end }) => {
                out.extend(glued_reply(lines[i]));
                let after = skip_blank(lines, end + 1);
                if after < lines.len() && is_quote(lines[after]) {
                    let quoted_end = skip_blank(lines, quote_block_end(lines, after));
                    if answers_follow(lines, quoted_end) {
                        answering = true;
                        i = quoted_end;
                        continue;
                    }
                } else if !has_words(out) && answers_follow(lines, after) {
                    // A header above unquoted text and nothing of the sender's
                    // before it: the sender wrote below it.
                    answering = true;
                    i = after;
                    continue;
                }
                return true;
            }
            Some(Mark::Quote) => {
                let quoted_end = quote_block_end(lines, i);
                let next = skip_blank(lines, quoted_end);
                if !answers_follow(lines, next) {
                    drop_quote_header(out);
                    return true;
                }
                if answering {
                    i = next;
                } else {
                    // A quote in the middle of the sender's own text is part of what they wrote.
                    out.extend_from_slice(&lines[i..quoted_end]);
                    i = quoted_end;
                }
            }
        }
    }
    false
}

fn has_words(lines: &[&str]) -> bool {
    lines.iter().any(|l| !l.trim().is_empty())
}

/// Drops from `out` the paragraph that introduces the quote ending the
/// message, when it reads as a quote header in any language.
fn drop_quote_header(out: &mut Vec<&str>) {
    let mut end = out.len();
    while end > 0 && out[end - 1].trim().is_empty() {
        end -= 1;
    }
    let mut start = end;
    while start > 0 && !out[start - 1].trim().is_empty() && end - start < MAX_QUOTE_HEADER_LINES {
        start -= 1;
    }
    let whole_paragraph = start == 0 || out[start - 1].trim().is_empty();
    if start < end && whole_paragraph && introduces_quote(&out[start..end]) {
        out.truncate(start);
    }
}

/// Whether line `i` starts text of the sender's own (an answer below a quote)
/// rather than the end of the message, a signature or more history.
fn answers_follow(lines: &[&str], i: usize) -> bool {
    i < lines.len() && mark(lines, i).is_none() && !is_mobile_footer(lines[i])
}

fn skip_blank(lines: &[&str], mut i: usize) -> usize {
    while i < lines.len() && lines[i].trim().is_empty() {
        i += 1;
    }
    i
}

/// The index after the quoted block starting at `start`. An unquoted line
/// squeezed between two quoted lines is a quoted line its client wrapped.
fn quote_block_end(lines: &[&str], start: usize) -> usize {
    let mut i = start;
    while i < lines.len() {
        if is_quote(lines[i]) {
            i += 1;
        } else if !lines[i].trim().is_empty() && i + 1 < lines.len() && is_quote(lines[i + 1]) {
            i += 2;
        } else {
            break;
        }
    }
    i
}

/// A quoted line: `>`-quoted, or `|`-quoted as some clients do (a line that
/// also ends with `|` is a table row, not a quote).
fn is_quote(line: &str) -> bool {
    let line = line.trim();
    line.starts_with('>') || (line.starts_with('|') && (line.len() == 1 || !line.ends_with('|')))
}

fn mark(lines: &[&str], i: usize) -> Option<Mark> {
    let line = lines[i].trim();
    if line.is_empty() {
        return None;
    }
    if is_quote(line) {
        return Some(Mark::Quote);
    }
    if line == "--" || line == "__" || is_underscore_rule(line) {
        return Some(Mark::Cut);
    }
    if line.len() > header::MAX_HEADER_LINE {
        return None;
    }
    if header::is_forward(line) {
        return Some(Mark::Forward);
    }
    if header::is_original_message(line) || header_block_at(lines, i) {
        return Some(Mark::Cut);
    }
    attribution_at(lines, i).map(|end| Mark::Attribution { end })
}

fn is_underscore_rule(line: &str) -> bool {
    line.len() >= 10 && line.chars().all(|c| c == '_')
}

#[cfg(test)]
mod tests {
    use super::{MAX_LINES_EXAMINED, visible_reply, visible_reply_with_html};

    #[test]
    fn a_hundred_thousand_answered_quotes_take_no_stack_and_few_lines() {
        let block = "On Mon, Jan 1, 2024 at 10:00 AM Bob <b@x.test> wrote:\n> q\nanswer\n";
        let text = block.repeat(100_000);
        let visible = visible_reply(&text);
        assert!(visible.starts_with("answer"), "{}", &visible[..40]);
        assert!(!visible.contains("> q"));
    }

    #[test]
    fn lines_past_the_examined_ones_are_kept_as_they_are() {
        let mut text = "line\n".repeat(MAX_LINES_EXAMINED);
        text.push_str("On Mon, Jan 1, 2024 at 10:00 AM Bob <b@x.test> wrote:\n> old\n");
        let visible = visible_reply(&text);
        assert!(visible.ends_with("> old"), "not examined, not cut");
        let short = "line\nOn Mon, Jan 1, 2024 at 10:00 AM Bob <b@x.test> wrote:\n> old\n";
        assert_eq!(visible_reply(short), "line");
    }

    #[test]
    fn gmail_attribution_and_quotes_are_cut() {
        let text = "Thanks, that fixed it.\n\nOn Mon, 23 Nov 2026 at 10:00, Support <support@example.com> wrote:\n> Hello,\n> try again.\n";
        assert_eq!(visible_reply(text), "Thanks, that fixed it.");
    }

    #[test]
    fn attribution_wrapped_over_lines_is_cut() {
        let text = "Yes.\n\nOn Fri, May 6, 2011 at 6:03 PM, Roman from Hacker News\n<roman@example.com> wrote:\n\n> Test.\n";
        assert_eq!(visible_reply(text), "Yes.");
    }

    #[test]
    fn attributions_in_other_languages_are_cut() {
        for attribution in [
            "Le lun. 23 nov. 2026 à 10:00, Support <support@example.com> a écrit :",
            "El lun, 23 nov 2026 a las 10:00, Support (<support@example.com>) escribió:",
            "Am Mo., 23. Nov. 2026 um 10:00 Uhr schrieb Support <support@example.com>:",
            "Den mån 23 nov. 2026 kl 10:00 skrev Support <support@example.com>:",
            "2026年11月23日(月) 10:00 Support <support@example.com>:",
        ] {
            let text = format!("Merci.\n\n{attribution}\n> Bonjour\n");
            assert_eq!(visible_reply(&text), "Merci.", "{attribution}");
        }
    }

    #[test]
    fn outlook_header_blocks_and_original_message_are_cut() {
        let block = "Done.\n\n________________________________\nFrom: Support <support@example.com>\nSent: Monday, November 23, 2026 10:00 AM\nTo: Jane\nSubject: RE: Printer\n\nHello";
        assert_eq!(visible_reply(block), "Done.");
        let original = "Done.\n\n-----Original Message-----\nFrom: Support\nHello";
        assert_eq!(visible_reply(original), "Done.");
        let german = "Erledigt.\n\nVon: Support <support@example.com>\nGesendet: Montag, 23. November 2026 10:00\nAn: Jane\nBetreff: AW: Drucker\n";
        assert_eq!(visible_reply(german), "Erledigt.");
    }

    #[test]
    fn text_glued_to_an_attribution_is_kept() {
        let text =
            "reply\nbla-bla - bla--- On Wed, Apr 4, 2012 at 3:59 PM, me@domain.com wrote:\n> Hi";
        assert_eq!(visible_reply(text), "reply\nbla-bla - bla");
        let alone = "reply\n--- On Wed, Apr 4, 2012 at 3:59 PM, me@domain.com wrote:\n> Hi";
        assert_eq!(visible_reply(alone), "reply");
        let inside = "reply\nOn Wed, Apr 4, 2012, Jane -- on behalf of me@domain.com wrote:\n> Hi";
        assert_eq!(visible_reply(inside), "reply");
    }

    #[test]
    fn inline_answers_between_quotes_are_kept() {
        let text = "On Mon, Support wrote:\n> Is it on?\n\nYes it is.\n\n> Is it plugged in?\n\nAlso yes.\n\n-- \nJane";
        assert_eq!(visible_reply(text), "Yes it is.\n\nAlso yes.");
    }

    #[test]
    fn signatures_and_mobile_footers_are_dropped() {
        assert_eq!(visible_reply("Hi\n\n-- \nJane Doe\nACME"), "Hi");
        assert_eq!(visible_reply("Hi\n\nSent from my iPhone"), "Hi");
        assert_eq!(visible_reply("Hej\n\nSkickat från min iPhone"), "Hej");
        assert_eq!(
            visible_reply("Hi\n\nSent from my desk, which is easier."),
            "Hi\n\nSent from my desk, which is easier."
        );
    }

    #[test]
    fn forwarded_messages_are_content() {
        let text = "FYI\n\n---------- Forwarded message ----------\nFrom: bob@example.com\nDate: Tue, Sep 4, 2012\nTo: rob@example.com\n\nText";
        assert_eq!(visible_reply(text), text);
    }

    #[test]
    fn quote_headers_in_other_languages_and_forms_are_cut() {
        for header in [
            "Ada Example <ada@example.test> schrieb am Di., 3. März 2026\num 10:00 Uhr:",
            "3 mar 2026 10:00 \"Ada Example\" <ada@example.test> napisał(a):",
            "3 берез. 2026 р. 10:00 \"Ada Example\" <ada@example.test> пише:",
            "Op 3 mrt. 2026 om 10:00 heeft Ada Example <ada@example.test> het volgende geschreven:",
            "在 2026年3月3日 10:00，Ada Example <ada@example.test> 写道：",
            "2026년 3월 3일 (화) 오전 10:00, Ada Example <ada@example.test>님이 작성:",
            "2026-03-03 10:00 GMT+01:00 Ada Example",
            "Ada Example <ada@example.test> wrote:",
            // A language no list knows: the paragraph above the final quote still reads as its header.
            "3. märts 2026 10:00 kirjutas Ada Example <ada@example.test>:",
        ] {
            let text = format!("Thanks, it works.\n\n{header}\n\n> Old words\n> more old words\n");
            assert_eq!(visible_reply(&text), "Thanks, it works.", "{header}");
        }
        let unquoted = "Thanks.\n\nAda Example <ada@example.test> wrote:\n\nOld words, not quoted.";
        assert_eq!(visible_reply(unquoted), "Thanks.");
    }

    #[test]
    fn original_message_lines_in_other_languages_and_dress_are_cut() {
        for line in [
            "*-------- Original Message --------*",
            "-------- Исходное сообщение --------",
            "------------------ 原始邮件 ------------------",
        ] {
            let text = format!("Done.\n\n{line}\n\nOld words.");
            assert_eq!(visible_reply(&text), "Done.", "{line}");
        }
    }

    #[test]
    fn pipe_quoted_history_is_cut_but_tables_are_kept() {
        let text = "Not saved.\n\n\n2026/3/3 Ada Example <ada@example.test>\n\n| Ada replied:\n| ------\n|\n| Old words\n|\n";
        assert_eq!(visible_reply(text), "Not saved.");
        let table = "Results:\n\n| a | b |\n| 1 | 2 |";
        assert_eq!(visible_reply(table), table);
    }

    #[test]
    fn a_quote_alone_is_what_the_sender_sent() {
        assert_eq!(visible_reply("> Only a quote.\n"), "> Only a quote.");
    }

    #[test]
    fn a_header_above_the_senders_unquoted_text_is_dropped() {
        let text = "On 3 Mar 2026 10:00, \"Ada Example\" <ada@example.test> wrote:\n\nMy answer below it.\n\nOn 2 Mar 2026 9:00, Bo <bo@example.test> wrote:\n\n> question\nanswer";
        assert_eq!(visible_reply(text), "My answer below it.\n\nanswer");
    }

    #[test]
    fn footers_tracker_marks_and_dash_signed_names() {
        assert_eq!(visible_reply("Hi\n\nSent from TypeApp"), "Hi");
        assert_eq!(visible_reply("Hi\n\nGet Outlook for iOS"), "Hi");
        assert_eq!(visible_reply("Hi\n\nᐧ\n--\n~~~~"), "Hi");
        // A name signed with a dash is the sender's words, kept.
        assert_eq!(visible_reply("Hi\n\n-Jo Example"), "Hi\n\n-Jo Example");
    }

    #[test]
    fn an_html_quote_container_cuts_what_the_text_rules_kept() {
        let text = "Done, thanks.\n\nKaksipäiväinen viesti lähettäjältä Ada\nOld words";
        let html = r#"<p>Done, thanks.</p><div class="gmail_quote"><p>Kaksipäiväinen viesti lähettäjältä Ada</p><p>Old words</p></div>"#;
        assert_eq!(visible_reply_with_html(text, Some(html)), "Done, thanks.");
        assert_eq!(visible_reply_with_html(text, None), text);
        let other = "<p>Something else entirely</p><div class=\"gmail_quote\">x</div>";
        assert_eq!(
            visible_reply_with_html(text, Some(other)),
            text,
            "no common start"
        );
        let inline = r#"<div class="gmail_quote">Old question</div><p>Answer</p>"#;
        assert_eq!(
            visible_reply_with_html(text, Some(inline)),
            text,
            "nothing above the quote"
        );
    }

    #[test]
    fn text_without_history_is_untouched() {
        let text = "On Monday the printer broke.\nIt said: paper jam.\n\n- first\n- second";
        assert_eq!(visible_reply(text), text);
        assert_eq!(visible_reply("a -- b\n\nc"), "a -- b\n\nc");
    }
}
