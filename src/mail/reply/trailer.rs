//! Trailers: what a client or the sender appends below the words — mobile
//! footers ("Sent from my iPhone", "Get Outlook for iOS"), tracker marks,
//! separator lines — and the sign-off taken off an agent's answer.

use std::sync::LazyLock;

use regex::Regex;

/// "Sent from my iPhone", "Sent with ProtonMail", "Get Outlook for Android" and
/// the footers mobile clients write in other languages: an app or device name
/// of a few words, no sentence punctuation.
static MOBILE_FOOTER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)^(
            sent\ (from|with|via|using)\ (my\ )?[\w&'-]+(\ [\w&'-]+){0,5}
          | get\ [\w'&-]+(\ [\w'&-]+)?\ for\ [\w'&-]+(\ [\w'&-]+)?
          | envoyé\ (de|depuis)\ (mon|ma)\ [\w'&-]+(\ [\w'&-]+){0,3}
          | (enviado|enviada)\ (desde|do|de)\ (mi|meu|minha|o|a)\ [\w'&-]+(\ [\w'&-]+){0,3}
          | skickat\ från\ (min|mitt)\ [\w'&-]+(\ [\w'&-]+){0,3}
          | sendt\ fra\ (min|mitt)\ [\w'&-]+(\ [\w'&-]+){0,3}
          | von\ meinem\ [\w'&-]+(\ [\w'&-]+){0,3}\ gesendet
          | gesendet\ (von|mit)\ (meinem\ )?[\w'&-]+(\ [\w'&-]+){0,3}
          | verzonden\ (met|vanaf|van)\ (mijn\ )?[\w'&-]+(\ [\w'&-]+){0,3}
          | inviato\ da\ [\w'&-]+(\ [\w'&-]+){0,3}
          | wysłane\ z\ [\w'&-]+(\ [\w'&-]+){0,3}
          | odesláno\ z\ [\w'&-]+(\ [\w'&-]+){0,3}
          | lähetetty\ [\w'&-]+(\ [\w'&-]+){0,3}
          | отправлено\ (с|из)\ [\w'&-]+(\ [\w'&-]+){0,3}
          | надіслано\ з\ [\w'&-]+(\ [\w'&-]+){0,3}
          | (iphone|ipad|android|ｉＰｈｏｎｅ)\ ?から送信
          | 发自我的\ ?[\w'&-]+(\ [\w'&-]+)?
          | 從我的\ ?[\w'&-]+(\ [\w'&-]+)?\ ?傳送
          | [\w'&-]+에서\ 보냄
        )[.!]?$",
    )
    .expect("valid regex")
});

/// A link a footer carries after its words ("Get Outlook for iOS<https://…>").
static TRAILING_LINK: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\s*[<\[(]https?://[^\s>\])]*[>\])]$").expect("valid regex"));

/// Whether `line` is a footer a mail client appends.
pub(super) fn is_mobile_footer(line: &str) -> bool {
    let line = line.trim();
    if line.len() >= 120 {
        return false;
    }
    let words = TRAILING_LINK.replace(line, "");
    MOBILE_FOOTER.is_match(words.trim())
}

/// A blank line, a line drawn with rule characters only, or the invisible
/// mark some mail trackers add ("ᐧ").
pub(super) fn is_separator(line: &str) -> bool {
    line.trim().chars().all(|c| {
        matches!(
            c,
            '-' | '_'
                | '='
                | '*'
                | '#'
                | '~'
                | '+'
                | '—'
                | '–'
                | '─'
                | 'ᐧ'
                | '\u{200b}'
                | '\u{feff}'
        ) || c.is_whitespace()
    })
}

/// Drops what trails the sender's words: blank and separator lines and mobile footers.
pub(super) fn trim_tail(lines: &mut Vec<&str>) {
    loop {
        while lines.last().is_some_and(|l| is_separator(l)) {
            lines.pop();
        }
        match lines.last() {
            Some(last) if is_mobile_footer(last) => {
                lines.pop();
            }
            _ => return,
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

#[cfg(test)]
mod tests {
    use super::{is_mobile_footer, is_separator, trim_tail, without_signoff};

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
    fn mobile_footers_of_many_clients_and_languages_are_found() {
        for line in [
            "Sent from my iPhone",
            "Sent from my Samsung Galaxy smartphone.",
            "Sent from Outlook Mobile",
            "Sent from TypeApp",
            "Sent with ProtonMail Secure Email.",
            "Sent from Yahoo Mail on Android",
            "Get Outlook for iOS",
            "Get Outlook for Android<https://aka.example/ghei36>",
            "Envoyé de mon iPad",
            "Enviado desde mi teléfono",
            "Enviado do meu iPhone",
            "Von meinem iPhone gesendet",
            "Verzonden vanaf mijn iPhone",
            "Inviato da iPhone",
            "Wysłane z iPhone'a",
            "Отправлено с iPhone",
            "Надіслано з iPhone",
            "发自我的iPhone",
            "iPhone에서 보냄",
        ] {
            assert!(is_mobile_footer(line), "{line}");
        }
        for line in [
            "Sent from my desk, which is easier.",
            "I sent from my phone yesterday",
        ] {
            assert!(!is_mobile_footer(line), "{line}");
        }
    }

    #[test]
    fn tracker_marks_and_rules_trail_as_separators() {
        assert!(is_separator("ᐧ"));
        assert!(is_separator("~~~~~"));
        assert!(is_separator("++++"));
        assert!(!is_separator("-Jo"));
        let mut lines = vec!["Hi", "", "ᐧ", "", "Sent from TypeApp", ""];
        trim_tail(&mut lines);
        assert_eq!(lines, vec!["Hi"]);
    }
}
