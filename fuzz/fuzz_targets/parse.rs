//! Any bytes through MIME repair, parsing, sanitizing, classification and visible-reply extraction.
#![no_main]

use std::sync::Once;

use libfuzzer_sys::fuzz_target;

/// mail-parser has an internal `debug_assert!` that some structures trip (its
/// release builds go on). `ticketd::mail::parse` catches that panic and holds
/// the message; libFuzzer's hook would abort first, so panics raised inside
/// mail-parser are let through to that guard. Every other panic still aborts.
fn let_mail_parser_panics_reach_the_guard() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let inside_mail_parser = info
                .location()
                .is_some_and(|l| l.file().contains("/mail-parser-"));
            if !inside_mail_parser {
                abort(info);
            }
        }));
    });
}

fuzz_target!(|data: &[u8]| {
    let_mail_parser_panics_reach_the_guard();
    let mail = ticketd::mail::parse(data);
    // The visible part is cut from the text, never invented.
    assert!(mail.visible_text.len() <= mail.text.len() + 1);
});
