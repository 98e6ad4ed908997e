//! Any bytes through MIME repair, parsing, sanitizing, classification and visible-reply extraction.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mail = ticketd::mail::parse(data);
    // The visible part is cut from the text, never invented.
    assert!(mail.visible_text.len() <= mail.text.len() + 1);
});
