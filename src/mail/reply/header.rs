//! Quote headers: the lines a client writes above the history it quotes.
//!
//! Three forms: an attribution ("On <date>, <name> <addr> wrote:" — optional
//! date, name and address parts around a localized "wrote" verb, name-first or
//! date-first, possibly wrapped over a few lines), a block of mail headers
//! (Outlook's "From:/Sent:/To:/Subject:" in its languages) and an "Original
//! Message" separator line. Forward markers are recognized here too, because
//! a forwarded message is content rather than history.

use std::sync::LazyLock;

use regex::Regex;

use super::is_quote;

/// Longest line (in bytes) read as a quote header; longer lines are prose.
pub(super) const MAX_HEADER_LINE: usize = 400;
/// Most lines an attribution is wrapped over.
const MAX_ATTRIBUTION_LINES: usize = 3;
/// Most lines, blank ones included, of an attribution that opens like one ("On …").
const MAX_OPENED_ATTRIBUTION_LINES: usize = 6;
/// Longest text (in bytes) of a wrapped attribution.
const MAX_ATTRIBUTION_LEN: usize = 600;

/// A line dressed as a separator: dashes, `*bold*` or `_underline_` around words.
fn undecorated(line: &str) -> &str {
    line.trim()
        .trim_matches(|c: char| matches!(c, '*' | '_') || c.is_whitespace())
}

/// "-----Original Message-----" and its translations, with any dashes and emphasis.
static ORIGINAL_MESSAGE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)^-{2,}\s*(
            original\ message|original-nachricht|originalnachricht|ursprüngliche\ nachricht
          | message\ d'origine|message\ original|mensaje\ original|mensagem\ original
          | ursprungligt\ meddelande|originalmeddelande|oorspronkelijk\ bericht
          | origineel\ bericht|messaggio\ originale|oprindelig\ meddelelse|opprinnelig\ melding
          | oryginalna\ wiadomość|wiadomość\ oryginalna|původní\ zpráva|pôvodná\ správa
          | исходное\ сообщение|оригинальное\ сообщение|вихідне\ повідомлення|оригінальне\ повідомлення
          | alkuperäinen\ viesti|eredeti\ üzenet|orijinal\ mesaj|αρχικό\ μήνυμα|mesaj\ original
          | 原始邮件|原始郵件|原始信件|元のメッセージ|원본\ 메시지|원래\ 메시지
        )\s*-{2,}$",
    )
    .expect("valid regex")
});

/// An "Original Message" separator line.
pub(super) fn is_original_message(line: &str) -> bool {
    ORIGINAL_MESSAGE.is_match(undecorated(line))
}

/// The start of a forwarded message, which is content the sender chose to send.
static FORWARD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)^(
            -{2,}\s*(forwarded\ message|weitergeleitete\ nachricht|message\ transféré|mensaje\ reenviado
              |mensagem\ encaminhada|vidarebefordrat\ meddelande|doorgestuurd\ bericht|messaggio\ inoltrato
              |videresendt\ meddelelse|przekazana\ wiadomość|пересланное\ сообщение|转发的邮件|転送されたメッセージ
              |전달된\ 메시지)\s*-{2,}
          | begin\ forwarded\ message:|début\ du\ message\ réexpédié\ :?|anfang\ der\ weitergeleiteten\ nachricht:
        )$",
    )
    .expect("valid regex")
});

/// The first line of a forwarded message.
pub(super) fn is_forward(line: &str) -> bool {
    FORWARD.is_match(undecorated(line))
}

/// Which header a header-like line ("From:", "*Sent:*", "De :", "差出人:") names.
#[derive(Clone, Copy, PartialEq, Debug)]
enum HeaderKey {
    From,
    Date,
    To,
    Subject,
    Cc,
}

/// The names mail clients print for each quoted header, in the languages they speak.
const HEADER_NAMES: [(HeaderKey, &[&str]); 5] = [
    (
        HeaderKey::From,
        &[
            "From",
            "Von",
            "De",
            "Fra",
            "Från",
            "Van",
            "Da",
            "Od",
            "Frå",
            "Lähettäjä",
            "Feladó",
            "Kimden",
            "От",
            "От кого",
            "Від",
            "Від кого",
            "Από",
            "差出人",
            "送信者",
            "发件人",
            "寄件者",
            "보낸 사람",
            "Expéditeur",
            "Remitente",
            "Mittente",
        ],
    ),
    (
        HeaderKey::Date,
        &[
            "Sent",
            "Date",
            "Datum",
            "Gesendet",
            "Envoyé",
            "Sendt",
            "Skickat",
            "Enviado",
            "Enviada",
            "Enviado el",
            "Enviado em",
            "Fecha",
            "Data",
            "Inviato",
            "Verzonden",
            "Verstuurd",
            "Wysłano",
            "Wysłane",
            "Odesláno",
            "Lähetetty",
            "Elküldve",
            "Gönderildi",
            "Tarih",
            "Отправлено",
            "Дата",
            "Надіслано",
            "Ημερομηνία",
            "Στάλθηκε",
            "送信日時",
            "日付",
            "发送时间",
            "日期",
            "時間",
            "傳送時間",
            "寄件日期",
            "보낸 날짜",
            "날짜",
        ],
    ),
    (
        HeaderKey::To,
        &[
            "To",
            "An",
            "À",
            "A",
            "Para",
            "Til",
            "Till",
            "Aan",
            "Do",
            "Komu",
            "Vastaanottaja",
            "Címzett",
            "Kime",
            "Кому",
            "Προς",
            "宛先",
            "收件人",
            "收件者",
            "받는 사람",
            "Destinataire",
            "Destinatario",
        ],
    ),
    (
        HeaderKey::Subject,
        &[
            "Subject",
            "Betreff",
            "Objet",
            "Asunto",
            "Emne",
            "Ämne",
            "Onderwerp",
            "Oggetto",
            "Assunto",
            "Temat",
            "Předmět",
            "Aihe",
            "Tárgy",
            "Konu",
            "Тема",
            "Θέμα",
            "件名",
            "主题",
            "主旨",
            "제목",
        ],
    ),
    (
        HeaderKey::Cc,
        &[
            "Cc",
            "CC",
            "Kopie",
            "Copie",
            "Kopia",
            "Kopi",
            "Kopio",
            "Másolat",
            "Копия",
            "Копія",
            "抄送",
            "副本",
            "참조",
        ],
    ),
];

/// A header name, optionally bold (`*From:*`), then a colon (ASCII or full-width).
static HEADER_LINE: LazyLock<Regex> = LazyLock::new(|| {
    let mut names: Vec<&str> = HEADER_NAMES
        .iter()
        .flat_map(|(_, names)| names.iter().copied())
        .collect();
    // Longest first, so "Enviado el" is preferred over "Enviado".
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    let names: Vec<String> = names.iter().map(|n| regex::escape(n)).collect();
    Regex::new(&format!(r"^\*?\s*({})\s*\*?\s*[:：]", names.join("|"))).expect("valid regex")
});

fn header_key(line: &str) -> Option<HeaderKey> {
    let line = line.trim();
    // Cheap test first: a header name is short and followed by a colon.
    let head: String = line.chars().take(24).collect();
    if !head.contains(':') && !head.contains('：') {
        return None;
    }
    let name = HEADER_LINE.captures(line)?.get(1)?.as_str();
    HEADER_NAMES
        .iter()
        .find(|(_, names)| names.contains(&name))
        .map(|(key, _)| *key)
}

/// A block of quoted mail headers starts at `i`: a From or Date line followed,
/// within a few lines, by at least one other header line.
pub(super) fn header_block_at(lines: &[&str], i: usize) -> bool {
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

/// Words that open an attribution ("On", "Am", "Le", "Il giorno", "W dniu", "在"…).
const OPENINGS: &str =
    r"(on|am|le|el|el\ día|den|på|op|em|il|il\ giorno|w\ dniu|dnia|vào|dne|στις|在|於)";

/// An attribution's opening word followed by a date or time.
static OPENING: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!(r"(?ix)^{OPENINGS}\s.*\d")).expect("valid regex"));

/// The localized "wrote" of an attribution; CJK verbs are glued to the name.
static WROTE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)
        \b(wrote|writes|schrieb|geschrieben|geschreven|a\ écrit|a\ ecrit|escribió|escribio|skrev|schreef|ha\ scritto|scrisse
          |escreveu|napisał(\(a\)|a)?|napisal|napsal(\(a\)|a)?|kirjoitti|írta|yazdı|έγραψε|a\ scris|đã\ viết
          |пише|написав(\(ла\)|ла)?|написал(\(а\)|а)?|писал|пишет|كتب|כתב|כתבה)\b
        | 写道|寫道|작성|書きました|のメッセージ",
    )
    .expect("valid regex")
});

/// Something that dates or addresses a header: an address, or a time of day.
static ADDRESS_OR_TIME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\S@\S|\d{1,2}[:.]\d{2}\b").expect("valid regex"));

/// A date-first header without a verb ("2014-10-17 11:28 GMT+03:00 Name <addr>:",
/// "2026年3月12日(木) 10:14 Name <addr>:", "2013/7/20 Name <addr>").
static DATED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(\d{4}[-/.年]\s?\d{1,2}[-/.月]\s?\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})\D.*(@|<).*(>|:|：)$",
    )
    .expect("valid regex")
});

/// Gmail's date-first header as some clients leave it: date, time, GMT offset, a name.
static DATED_GMT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\d{4}-\d{2}-\d{2}\s+\d{1,2}:\d{2}\s+GMT[+-]\d{1,2}:?\d{2}\s+\S")
        .expect("valid regex")
});

/// How sure a line is to be an attribution.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Attribution {
    /// Dated or addressed, or opened like one: history follows, quoted or not.
    Sure,
    /// "Peter wrote:": an attribution only when a quote follows it.
    IfQuoteFollows,
}

/// Whether `text` (an attribution possibly joined from wrapped lines) is one.
fn attribution(text: &str) -> Option<Attribution> {
    let ends_with_colon = text.ends_with(':') || text.ends_with('：');
    if DATED_GMT.is_match(text) {
        return Some(Attribution::Sure);
    }
    if (ends_with_colon || text.ends_with('>')) && DATED.is_match(text) {
        return Some(if ends_with_colon {
            Attribution::Sure
        } else {
            Attribution::IfQuoteFollows
        });
    }
    let wrote = if ends_with_colon {
        WROTE.find(text)?
    } else if text.ends_with("wrote") {
        // Some clients drop the colon after the English verb.
        WROTE.find_iter(text).last()?
    } else {
        return None;
    };
    // The verb closes the header: what follows it is at most a date in words.
    if text.len() - wrote.end() > 160 {
        return None;
    }
    let opened = OPENING.is_match(text);
    if opened || ADDRESS_OR_TIME.is_match(text) {
        Some(Attribution::Sure)
    } else {
        Some(Attribution::IfQuoteFollows)
    }
}

/// A reply and an attribution glued on one line ("bla--- On … wrote:").
static GLUED_ATTRIBUTION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)-{2,}\s*on\s.*\bwrote:\s*$").expect("valid regex"));

/// The sender's text on the line of a glued attribution, before its dashes.
pub(super) fn glued_reply(line: &str) -> Option<&str> {
    let found = GLUED_ATTRIBUTION.find(line)?;
    let before = line[..found.start()].trim_end();
    let text = before.trim();
    (!text.is_empty() && !OPENING.is_match(text)).then_some(before)
}

/// A line stripped of the dashes some clients draw around an attribution.
fn header_text(line: &str) -> &str {
    line.trim().trim_matches(|c| c == '-' || c == ' ')
}

/// Whether an attribution may start on `line` and continue on the next ones.
fn may_open_wrapped(line: &str) -> bool {
    let addressed = line.contains('@');
    let sentence_end = line.ends_with(['.', '!', '?']);
    (addressed && (WROTE.is_match(line) || line.contains('<')))
        || (line.starts_with(|c: char| c.is_ascii_digit()) && !sentence_end)
}

/// A line that is a whole attribution by itself and opens like one ("Le … a écrit :").
fn opens_attribution_alone(line: &str) -> bool {
    let line = header_text(line);
    OPENING.is_match(line) && attribution(line).is_some()
}

/// The last index of an attribution starting at `i`, if there is one.
pub(super) fn attribution_at(lines: &[&str], i: usize) -> Option<usize> {
    let first = header_text(lines[i]);
    if first.is_empty() || first.len() > MAX_HEADER_LINE {
        return None;
    }
    if first.ends_with("wrote:") && GLUED_ATTRIBUTION.is_match(first) {
        return Some(i);
    }
    // An attribution opened like one may be wrapped around blank lines too.
    let (extra, over_blanks) = if OPENING.is_match(first) && !first.ends_with(['.', '!', '?']) {
        (MAX_OPENED_ATTRIBUTION_LINES - 1, true)
    } else if may_open_wrapped(first) {
        (MAX_ATTRIBUTION_LINES - 1, false)
    } else {
        (0, false)
    };
    for (text, end) in joined(lines, i, extra, over_blanks) {
        // A later line that is an attribution by itself is found on its own.
        if end > i && opens_attribution_alone(lines[end]) {
            return None;
        }
        match attribution(&text) {
            Some(Attribution::Sure) => return Some(end),
            Some(Attribution::IfQuoteFollows) if quote_follows(lines, end) => return Some(end),
            _ => {}
        }
    }
    None
}

fn quote_follows(lines: &[&str], end: usize) -> bool {
    lines
        .iter()
        .skip(end + 1)
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| is_quote(l))
}

/// Lines `i..=i+k` joined with spaces, for k in 0..=extra; a blank line ends
/// the join unless `over_blanks`.
fn joined(lines: &[&str], i: usize, extra: usize, over_blanks: bool) -> Vec<(String, usize)> {
    let mut text = String::new();
    let mut out = Vec::new();
    for (end, line) in lines.iter().enumerate().skip(i).take(extra + 1) {
        let line = header_text(line);
        if line.is_empty() && over_blanks {
            continue;
        }
        if line.is_empty() || text.len() + line.len() > MAX_ATTRIBUTION_LEN {
            break;
        }
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(line);
        out.push((text.clone(), end));
    }
    out
}

/// Whether the paragraph `lines` (the last one above a quote that ends the
/// message) introduces that quote: it ends with a colon and carries an address,
/// or a date and a time — whatever the language of its words.
pub(super) fn introduces_quote(lines: &[&str]) -> bool {
    let text = lines.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ");
    if text.len() > MAX_ATTRIBUTION_LEN || !(text.ends_with(':') || text.ends_with('：')) {
        return false;
    }
    text.contains('@') || (DATE.is_match(&text) && TIME.is_match(&text))
}

static DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\d{4}|\d{1,2}[./-]\d{1,2}|\d{1,2}\.?\s+\p{L}{3,}").expect("valid regex")
});
static TIME: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\d{1,2}:\d{2}").expect("valid regex"));

#[cfg(test)]
mod tests {
    use super::{attribution_at, header_block_at, introduces_quote, is_original_message};

    fn cuts(text: &str) -> Option<usize> {
        let lines: Vec<&str> = text.lines().collect();
        attribution_at(&lines, 0)
    }

    #[test]
    fn attributions_in_many_languages_are_found() {
        for line in [
            "On Tue, Mar 3, 2026 at 10:00 AM Ada Example <ada@example.test> wrote:",
            "Am Di., 3. März 2026 um 10:00 Uhr schrieb Ada Example <ada@example.test>:",
            "Ada Example <ada@example.test> schrieb am Di., 3. März 2026, 10:00:",
            "Op di 3 mrt. 2026 om 10:00 schreef Ada Example <ada@example.test>:",
            "Den tir. 3. mar. 2026 kl. 10.00 skrev Ada Example <ada@example.test>:",
            "Il giorno mar 3 mar 2026 alle ore 10:00 Ada Example <ada@example.test> ha scritto:",
            "Em ter., 3 de mar. de 2026 às 10:00, Ada Example <ada@example.test> escreveu:",
            "wt., 3 mar 2026 o 10:00 Ada Example <ada@example.test> napisał(a):",
            "3 мар. 2026 г., в 10:00, \"Ada Example\" <ada@example.test> написал(а):",
            "3 берез. 2026 р. 10:00 \"Ada Example\" <ada@example.test> пише:",
            "在 2026年3月3日 10:00，Ada Example <ada@example.test> 写道：",
            "2026년 3월 3일 (화) 오전 10:00, Ada Example <ada@example.test>님이 작성:",
            "2026-03-03 10:00 GMT+01:00 Ada Example <ada@example.test>:",
            "2026-03-03 10:00 GMT+01:00 Ada Example",
            "Ada Example <ada@example.test> wrote:",
            "út 3. 3. 2026 v 10:00 odesílatel Ada Example <ada@example.test> napsal:",
        ] {
            assert_eq!(cuts(line), Some(0), "{line}");
        }
    }

    #[test]
    fn wrapped_attributions_end_on_their_last_line() {
        assert_eq!(
            cuts("Ada Example <ada@example.test> schrieb am Di., 3.\nMärz 2026 um 10:00 Uhr:"),
            Some(1)
        );
        assert_eq!(
            cuts("3 mar 2026 10:00 \"Ada Example\"\n<ada@example.test> napisał(a):"),
            Some(1)
        );
    }

    #[test]
    fn sentences_are_not_attributions() {
        for line in [
            "As I wrote yesterday, the printer is broken.",
            "On floor 3 it works again.",
            "2026-03-03 the printer broke.",
            "Peter wrote:",
        ] {
            assert_eq!(cuts(line), None, "{line}");
        }
        assert_eq!(cuts("Peter wrote:\n> old"), Some(0), "a quote follows");
    }

    #[test]
    fn header_blocks_in_many_languages_are_found() {
        for block in [
            "From: Ada\nSent: Tuesday\nTo: Bo\nSubject: Printer",
            "Da: Ada\nInviato: martedì\nA: Bo\nOggetto: Stampante",
            "От: Ada\nОтправлено: вторник\nКому: Bo\nТема: Принтер",
            "Від: Ada\nНадіслано: вівторок\nКому: Bo\nТема: Принтер",
            "发件人: Ada\n发送时间: 2026年3月3日\n收件人: Bo\n主题: 打印机",
            "보낸 사람: Ada\n보낸 날짜: 2026년 3월 3일\n받는 사람: Bo\n제목: 프린터",
            "Od: Ada\nOdesláno: úterý\nKomu: Bo\nPředmět: Tiskárna",
            "*From:* Ada\n*Sent:* Tuesday\n*To:* Bo",
        ] {
            let lines: Vec<&str> = block.lines().collect();
            assert!(header_block_at(&lines, 0), "{block}");
        }
    }

    #[test]
    fn original_message_separators_are_found() {
        for line in [
            "-----Original Message-----",
            "*-------- Original Message --------*",
            "-------- Исходное сообщение --------",
            "----- Oryginalna wiadomość -----",
            "------------------ 原始邮件 ------------------",
            "-------- Původní zpráva --------",
        ] {
            assert!(is_original_message(line), "{line}");
        }
        assert!(!is_original_message("This is not a ---------- delimiter."));
    }

    #[test]
    fn a_paragraph_introduces_a_quote_by_its_address_or_date_and_time() {
        assert!(introduces_quote(&["Ada <ada@example.test> kirjutas:"]));
        assert!(introduces_quote(&["3. märts 2026 10:00 kirjutas Ada:"]));
        assert!(!introduces_quote(&["It said:"]));
        assert!(!introduces_quote(&["The log from 2026 says:"]));
    }
}
