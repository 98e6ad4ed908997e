//! Any text through visible-reply extraction.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let visible = ticketd::mail::reply::visible_reply(text);
    let twice = ticketd::mail::reply::visible_reply(&visible);
    assert!(twice.len() <= visible.len());
});
