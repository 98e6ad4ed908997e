//! Visible reply: the new part of a message, without quoted history and signatures.
//!
//! The text is read top-down for the first sign of history: an attribution line
//! ("On … wrote:" and its forms in other languages and clients), a mail-header
//! block (Outlook's "From:/Sent:/To:/Subject:"), an "Original Message" line, a
//! signature delimiter, a long underscore line, or a `>`-quoted block. What comes
//! after an attribution is dropped unless the sender answered between the quotes
//! (an inline reply), in which case their answers are kept and the quotes dropped.
//! Trailing mobile footers ("Sent from my iPhone") and separator lines go last.

use std::sync::LazyLock;

use regex::Regex;

/// Lines examined for history: past them, the rest of a very long message is
/// kept as the sender's without looking (the full body is always stored too).
pub const MAX_LINES_EXAMINED: usize = 10_000;

/// Returns the part of `text` the sender wrote this time.
pub fn visible_reply(text: &str) -> String {
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
        return text.trim_matches('\n').to_string();
    }
    trim_tail(&mut kept);
    let start = kept
        .iter()
        .position(|l| !l.trim().is_empty())
        .unwrap_or(kept.len());
    kept[start..]
        .iter()
        .map(|l| l.trim_end())
        .collect::<Vec<_>>()
        .join("\n")
}

/// What the scan found at a line.
#[derive(Debug, PartialEq)]
enum Mark {
    /// History or signature starts here: drop this line and everything after.
    Cut,
    /// An attribution line (or lines) ending at the given index.
    Attribution { end: usize },
    /// A `>`-quoted line.
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
                }
                return true;
            }
            Some(Mark::Quote) => {
                let quoted_end = quote_block_end(lines, i);
                let next = skip_blank(lines, quoted_end);
                if !answers_follow(lines, next) {
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

/// Whether line `i` starts text of the sender's own (an answer below a quote)
/// rather than the end of the message, a signature or more history.
fn answers_follow(lines: &[&str], i: usize) -> bool {
    i < lines.len() && mark(lines, i).is_none() && !is_mobile_footer(lines[i].trim())
}

fn skip_blank(lines: &[&str], mut i: usize) -> usize {
    while i < lines.len() && lines[i].trim().is_empty() {
        i += 1;
    }
    i
}

/// The index after the `>`-quoted block starting at `start`. An unquoted line
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

fn is_quote(line: &str) -> bool {
    line.trim_start().starts_with('>')
}

fn mark(lines: &[&str], i: usize) -> Option<Mark> {
    let line = lines[i].trim();
    if line.is_empty() {
        return None;
    }
    if line.starts_with('>') {
        return Some(Mark::Quote);
    }
    if line == "--" || line == "__" || is_underscore_rule(line) {
        return Some(Mark::Cut);
    }
    if line.len() > 400 {
        return None;
    }
    if FORWARD.is_match(line) {
        return Some(Mark::Forward);
    }
    if ORIGINAL_MESSAGE.is_match(line) || header_block_at(lines, i) {
        return Some(Mark::Cut);
    }
    attribution_at(lines, i).map(|end| Mark::Attribution { end })
}

fn is_underscore_rule(line: &str) -> bool {
    line.len() >= 10 && line.chars().all(|c| c == '_')
}

/// "-----Original Message-----" in the languages Outlook speaks.
static ORIGINAL_MESSAGE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^-{2,}\s*(original message|ursprüngliche nachricht|message d'origine|mensaje original|ursprungligt meddelande|originalmeddelande|oorspronkelijk bericht|messaggio originale|mensagem original|oprindelig meddelelse|opprinnelig melding|元のメッセージ)\s*-{2,}$",
    )
    .expect("valid regex")
});

/// The start of a forwarded message, which is content the sender chose to send.
static FORWARD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^(-{2,}\s*(forwarded message|weitergeleitete nachricht|message transféré|mensaje reenviado|vidarebefordrat meddelande|doorgestuurd bericht|messaggio inoltrato|転送されたメッセージ)\s*-{2,}|begin forwarded message:|début du message réexpédié :?|anfang der weitergeleiteten nachricht:)$",
    )
    .expect("valid regex")
});

/// Which header a header-like line ("From:", "*Sent:*", "De :", "差出人:") names.
#[derive(Clone, Copy, PartialEq)]
enum HeaderKey {
    From,
    Date,
    To,
    Subject,
    Cc,
}

static HEADER_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^\*?\s*(From|Von|De|Fra|Från|Van|Da|Od|Frå|Lähettäjä|差出人|送信者|Sent|Date|Datum|Gesendet|Envoyé|Sendt|Skickat|Enviado|Enviada|Fecha|Data|Verzonden|Wysłano|Lähetetty|送信日時|日付|To|An|À|A|Para|Til|Till|Aan|Do|Vastaanottaja|宛先|Subject|Betreff|Objet|Asunto|Emne|Ämne|Onderwerp|Oggetto|Assunto|Temat|Aihe|件名|Cc|CC|Kopie|Copie|Kopia|Kopi|Kopio)\s*\*?\s*[:：]",
    )
    .expect("valid regex")
});

fn header_key(line: &str) -> Option<HeaderKey> {
    let line = line.trim();
    // Cheap test first: a header name is short and followed by a colon.
    let head: String = line.chars().take(20).collect();
    if !head.contains(':') && !head.contains('：') {
        return None;
    }
    let name = HEADER_LINE.captures(line)?.get(1)?.as_str();
    Some(match name {
        "From" | "Von" | "De" | "Fra" | "Från" | "Van" | "Da" | "Od" | "Frå" | "Lähettäjä"
        | "差出人" | "送信者" => HeaderKey::From,
        "Sent" | "Date" | "Datum" | "Gesendet" | "Envoyé" | "Sendt" | "Skickat" | "Enviado"
        | "Enviada" | "Fecha" | "Data" | "Verzonden" | "Wysłano" | "Lähetetty" | "送信日時"
        | "日付" => HeaderKey::Date,
        "Subject" | "Betreff" | "Objet" | "Asunto" | "Emne" | "Ämne" | "Onderwerp" | "Oggetto"
        | "Assunto" | "Temat" | "Aihe" | "件名" => HeaderKey::Subject,
        "Cc" | "CC" | "Kopie" | "Copie" | "Kopia" | "Kopi" | "Kopio" => HeaderKey::Cc,
        _ => HeaderKey::To,
    })
}

/// A block of quoted mail headers starts at `i`: a From or Date line followed,
/// within a few lines, by at least one other header line.
fn header_block_at(lines: &[&str], i: usize) -> bool {
    let Some(first) = header_key(lines[i]) else {
        return false;
    };
    if !matches!(first, HeaderKey::From | HeaderKey::Date) {
        return false;
    }
    let mut seen = vec![first];
    let mut continuations = 0;
    for line in lines.iter().skip(i + 1).take(8) {
        if line.trim().is_empty() {
            break;
        }
        match header_key(line) {
            Some(key) if !seen.contains(&key) => seen.push(key),
            Some(_) => {}
            None => {
                continuations += 1;
                if continuations > 2 {
                    break;
                }
            }
        }
    }
    seen.len() >= 2
}

/// "On <date>, <name> wrote:" on one line, in the languages we serve and a few more.
static ATTRIBUTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)^(
            (on|am|le|el|den|på|op|em|il|w\ dniu|vào|dne|el\ día)\s.*
              (wrote|sent|schrieb|a\ écrit|a\ ecrit|escribió|escribio|skrev|schreef|geschreven|escreveu|ha\ scritto|napisał|napisal|đã\ viết|napsal)
              \s*:\s*$
          | (on|am|le|el|den|på|op|em|il|w\ dniu|vào|dne|el\ día)\s.*\bwrote$
          | (am|den|på|op)\s.*\b(schrieb|skrev|schreef)\s.{0,160}:$
          | .*\b(wrote|a\ écrit|escribió|skrev|schrieb)\s*:$
          | .*\bwrote$
          | .*(のメッセージ|のメール|書きました|さんは書きました)\s*[:：]$
        )",
    )
    .expect("valid regex")
});

/// Words that open an attribution which a client may wrap over several lines.
static ATTRIBUTION_OPENING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(on|am|le|el|den|på|op|em|il|w dniu|vào|dne)\s.*\d").expect("valid regex")
});

/// A date-first attribution ("2014-10-17 11:28 GMT+03:00 Name <addr>:", "2026年3月12日(木) 10:14 Name <addr>:").
static DATED_ATTRIBUTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(\d{4}[-/.年]\d{1,2}[-/.月]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})\D.*(@|<).*(>|:|：)$",
    )
    .expect("valid regex")
});

/// A reply and an attribution glued on one line ("bla--- On … wrote:").
static GLUED_ATTRIBUTION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)-{2,}\s*on\s.*\bwrote:\s*$").expect("valid regex"));

/// The sender's text on the line of a glued attribution, before its dashes.
fn glued_reply(line: &str) -> Option<&str> {
    let found = GLUED_ATTRIBUTION.find(line)?;
    let before = line[..found.start()].trim_end();
    let text = before.trim();
    (!text.is_empty() && !ATTRIBUTION_OPENING.is_match(text)).then_some(before)
}

/// The last index of an attribution starting at `i`, if there is one.
fn attribution_at(lines: &[&str], i: usize) -> Option<usize> {
    let line = lines[i].trim().trim_matches(|c| c == '-' || c == ' ');
    if line.is_empty() {
        return None;
    }
    let followed_by_quote = |end: usize| {
        let next = skip_blank(lines, end + 1);
        next < lines.len() && is_quote(lines[next])
    };
    let ends_like_one = line.ends_with(':') || line.ends_with('：') || line.ends_with("wrote");
    if ends_like_one && ATTRIBUTION.is_match(line) {
        let opening = line.split_whitespace().next().unwrap_or("");
        // "Peter wrote:" alone is an attribution only when a quote follows it;
        // "On … wrote:" and its translations always are.
        let starts_like_one = ATTRIBUTION_OPENING.is_match(line)
            || matches!(
                opening.to_lowercase().as_str(),
                "on" | "le" | "el" | "am" | "den"
            );
        if starts_like_one || followed_by_quote(i) {
            return Some(i);
        }
        return None;
    }
    if line.ends_with("wrote:") && GLUED_ATTRIBUTION.is_match(line) {
        return Some(i);
    }
    if line.chars().next().is_some_and(|c| c.is_ascii_digit()) {
        let joined = join(lines, i, 2);
        if let Some((text, end)) = joined
            .iter()
            .find(|(text, _)| DATED_ATTRIBUTION.is_match(text))
            && (text.ends_with(':') || text.ends_with('：') || followed_by_quote(*end))
        {
            return Some(*end);
        }
    }
    // A sentence of the sender's ("On floor 3 it works again.") opens no attribution,
    // nor does a line whose "attribution" below is one of its own.
    if ATTRIBUTION_OPENING.is_match(line) && !line.ends_with(['.', '!', '?']) {
        return join(lines, i, 5)
            .into_iter()
            .skip(1)
            .find(|(text, _)| ATTRIBUTION.is_match(text))
            .filter(|(_, end)| !opens_attribution_alone(lines[*end]))
            .map(|(_, end)| end);
    }
    None
}

/// A line that is a whole attribution by itself ("Le … a écrit :").
fn opens_attribution_alone(line: &str) -> bool {
    let line = line.trim().trim_matches(|c| c == '-' || c == ' ');
    ATTRIBUTION_OPENING.is_match(line) && ATTRIBUTION.is_match(line)
}

/// Lines `i..=i+k` joined with spaces, for k in 0..=extra.
fn join(lines: &[&str], i: usize, extra: usize) -> Vec<(String, usize)> {
    let mut joined = String::new();
    let mut out = Vec::new();
    for (end, line) in lines.iter().enumerate().skip(i).take(extra + 1) {
        if !joined.is_empty() {
            joined.push(' ');
        }
        joined.push_str(line.trim());
        out.push((joined.trim().to_string(), end));
    }
    out
}

/// "Sent from my iPhone" and the footers other mobile clients add.
static MOBILE_FOOTER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)^(
            sent\ from\ my\ [\w-]+(\ [\w-]+){0,3}
          | sent\ (from|with|via)\ (outlook|mail|yahoo\ mail|samsung\ mobile|acompli|aol|proton\ ?mail|blackberry|gmail)(\ for\ [\w\ ]+)?
          | get\ outlook\ for\ (ios|android)
          | envoyé\ de\ mon\ [\w-]+(\ [\w-]+){0,2}
          | enviado\ desde\ mi\ [\w-]+(\ [\w-]+){0,2}
          | skickat\ från\ min\ [\w-]+(\ [\w-]+){0,2}
          | sendt\ fra\ min\ [\w-]+(\ [\w-]+){0,2}
          | von\ meinem\ [\w-]+(\ [\w-]+){0,2}\ gesendet
          | gesendet\ von\ meinem\ [\w-]+(\ [\w-]+){0,2}
          | verzonden\ (met|vanaf)\ mijn\ [\w-]+(\ [\w-]+){0,2}
          | inviato\ da\ [\w-]+(\ [\w-]+){0,2}
          | (iphone|ipad|android|ｉＰｈｏｎｅ)\ ?から送信
        )[.!]?$",
    )
    .expect("valid regex")
});

fn is_mobile_footer(line: &str) -> bool {
    line.len() < 80 && MOBILE_FOOTER.is_match(line)
}

/// A name signed with a leading dash ("-Abhishek"), alone on the last line.
static DASH_SIGNATURE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[-–—]{1,2}\p{L}[\p{L}.']*(\s[\p{L}.']+){0,2}$").expect("valid regex")
});

/// Drops what trails the sender's words: blank and separator lines, a mobile
/// footer, a dash-signed name.
fn trim_tail(lines: &mut Vec<&str>) {
    loop {
        while lines.last().is_some_and(|l| is_separator(l)) {
            lines.pop();
        }
        let Some(last) = lines.last().map(|l| l.trim()) else {
            return;
        };
        let alone = lines.len() >= 2 && lines[lines.len() - 2].trim().is_empty();
        if is_mobile_footer(last) || (alone && DASH_SIGNATURE.is_match(last)) {
            lines.pop();
        } else {
            return;
        }
    }
}

/// A valediction alone on its line: "Kind regards,", "Thanks!", "Cordialement".
static VALEDICTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^((kind|best|warm|warmest|many|with)\s+(regards|wishes|thanks)|regards|best|cheers|thanks|thank you|many thanks|all the best|cordialement|bien (à|a) vous|bien cordialement|salutations|saludos|un saludo|atentamente|mit freundlichen gr(ü|ue)(ß|ss)en|viele gr(ü|ue)(ß|ss)e|beste gr(ü|ue)(ß|ss)e|med vänliga hälsningar|vänliga hälsningar|hälsningar|mvh|よろしくお願いします|よろしくお願いいたします|以上、?よろしくお願いいたします)\s*[,.!。]?$",
    )
    .expect("valid regex")
});

/// The most lines a sign-off (a valediction and the name and title below it) has.
const MAX_SIGNOFF_LINES: usize = 5;

/// `text` without a closing sign-off: a valediction and at most a few short
/// lines below it (name, title, company). For an agent's answer, whose name
/// the notification signs anyway; a customer's words are kept as written.
pub fn without_signoff(text: &str) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    let start = lines.len().saturating_sub(MAX_SIGNOFF_LINES);
    let cut = (start..lines.len()).find(|&i| {
        VALEDICTION.is_match(lines[i].trim())
            && lines[i + 1..]
                .iter()
                .all(|l| l.trim().chars().count() <= 60)
            && lines[..i].iter().any(|l| !l.trim().is_empty())
    });
    match cut {
        Some(i) => lines[..i].join("\n").trim_end().to_string(),
        None => text.trim_end().to_string(),
    }
}

/// A blank line or a line drawn with `-`, `_`, `=` or `*` only.
fn is_separator(line: &str) -> bool {
    line.trim()
        .chars()
        .all(|c| matches!(c, '-' | '_' | '=' | '*' | '—' | '–') || c.is_whitespace())
}

#[cfg(test)]
mod tests {
    use super::{MAX_LINES_EXAMINED, visible_reply, without_signoff};

    #[test]
    fn a_signoff_is_taken_off_an_answer_but_words_are_kept() {
        assert_eq!(
            without_signoff("It is fixed.\n\nKind regards\nAlex Agent | Example Support\n"),
            "It is fixed."
        );
        assert_eq!(without_signoff("Fixed.\n\nCordialement,\nAlex"), "Fixed.");
        assert_eq!(
            without_signoff("Thanks!"),
            "Thanks!",
            "nothing before it: it is the words"
        );
        assert_eq!(
            without_signoff("Thanks for the logs.\nThe printer is fixed."),
            "Thanks for the logs.\nThe printer is fixed."
        );
        let long = "Fixed.\n\nBest,\nAlex\nThis line is far too long to be part of anybody's signature block, so it is text.";
        assert_eq!(without_signoff(long), long);
    }

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
    fn text_without_history_is_untouched() {
        let text = "On Monday the printer broke.\nIt said: paper jam.\n\n- first\n- second";
        assert_eq!(visible_reply(text), text);
        assert_eq!(visible_reply("a -- b\n\nc"), "a -- b\n\nc");
    }
}
