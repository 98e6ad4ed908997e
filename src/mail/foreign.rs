//! Other helpdesks' ticket numbers in a subject (`[Ticket#12345]`,
//! `[ServiceNow INC0012345]`, a bare `INC0012345`), so that a reply that
//! carries one finds the ticket it was first seen on. Pure, no I/O.

use std::sync::LazyLock;

use regex::Regex;

use super::tag::SubjectTag;

/// At most this many numbers are taken from one subject.
const MAX_REFERENCES: usize = 5;

/// A bracketed number with a system's name before it: `[Ticket#12345]`,
/// `[ServiceNow INC0012345]`, `[Case: 00012345]`, `[#SR-2231]`.
static BRACKETED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\[\s*(?P<system>[a-z][a-z0-9 ._-]{0,30}?)?\s*(?:#|:|no\.?|nr\.?)?\s*(?P<number>[a-z]{0,6}-?[0-9]{3,12})\s*\]",
    )
    .expect("foreign ticket pattern")
});

/// ServiceNow's record numbers, bracketed or not.
static SERVICENOW: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?P<number>(?:INC|RITM|REQ|CHG|PRB|TASK|CS|SCTASK)[0-9]{7,10})\b")
        .expect("ServiceNow pattern")
});

/// The other systems' ticket numbers in `subject`, normalized (lower case,
/// `system#number`), with our own tag left out; at most a handful.
pub fn references(subject: &str, own: &SubjectTag) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let subject = own.clean_subject(Some(subject));
    for caps in BRACKETED.captures_iter(&subject) {
        let system = caps
            .name("system")
            .map(|m| m.as_str().trim().to_ascii_lowercase())
            .unwrap_or_default();
        let number = caps["number"].to_ascii_lowercase();
        if system.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) {
            // A bare bracketed number names nothing in particular.
            continue;
        }
        push(&mut found, format!("{system}#{number}"));
    }
    for caps in SERVICENOW.captures_iter(&subject) {
        push(
            &mut found,
            format!("servicenow#{}", caps["number"].to_ascii_lowercase()),
        );
    }
    found.truncate(MAX_REFERENCES);
    found
}

fn push(found: &mut Vec<String>, reference: String) {
    if !found.contains(&reference) {
        found.push(reference);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(subject: &str) -> Vec<String> {
        references(subject, &SubjectTag::new("Support"))
    }

    #[test]
    fn other_systems_numbers_are_found_and_normalized() {
        assert_eq!(refs("Re: [Ticket#12345] Printer"), vec!["ticket#12345"]);
        assert_eq!(
            refs("[ServiceNow INC0012345] Outage"),
            vec!["servicenow#inc0012345"]
        );
        assert_eq!(refs("RE: INC0012345 outage"), vec!["servicenow#inc0012345"]);
        assert_eq!(refs("AW: [Case: 00012345] Lizenz"), vec!["case#00012345"]);
        assert_eq!(
            refs("[Ticket#12345] and [ticket # 12345]"),
            vec!["ticket#12345"]
        );
    }

    #[test]
    fn our_own_tag_and_plain_numbers_are_not_references() {
        assert!(refs("Re: [Support #42] Printer").is_empty());
        assert!(refs("Invoice [2026] and 12345").is_empty());
        assert!(refs("Meeting at 10:00").is_empty());
        assert_eq!(
            refs("Re: [Support #42] [Ticket#777] Printer"),
            vec!["ticket#777"]
        );
    }

    #[test]
    fn a_subject_full_of_numbers_yields_a_handful() {
        let subject = (0..50)
            .map(|i| format!("[T#{}] ", 1000 + i))
            .collect::<String>();
        assert_eq!(refs(&subject).len(), MAX_REFERENCES);
    }
}
