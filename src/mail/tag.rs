//! The subject tag `[<tag> #<id>]` that names a ticket: found, written and stripped.

use regex::Regex;

/// Finds and removes `[<tag> #<id>]` in subjects.
#[derive(Debug, Clone)]
pub struct SubjectTag {
    pattern: Regex,
    tag: String,
}

impl SubjectTag {
    /// A matcher for the configured tag text (`[tickets] tag`).
    pub fn new(tag: &str) -> SubjectTag {
        let pattern = Regex::new(&format!(
            r"(?i)\[\s*{}\s*#\s*(\d{{1,18}})\s*\]",
            regex::escape(tag.trim())
        ))
        .expect("an escaped tag always makes a valid pattern");
        SubjectTag {
            pattern,
            tag: tag.trim().to_string(),
        }
    }

    /// The ticket id in the subject's tag, if any.
    pub fn ticket_id(&self, subject: &str) -> Option<i64> {
        self.pattern
            .captures(subject)
            .and_then(|c| c.get(1))
            .and_then(|m| m.as_str().parse().ok())
    }

    /// `[<tag> #<id>]` for a ticket.
    pub fn format(&self, ticket_id: i64) -> String {
        format!("[{} #{ticket_id}]", self.tag)
    }

    /// A subject for a new ticket: any tag removed, whitespace tidied, never empty.
    pub fn clean_subject(&self, subject: Option<&str>) -> String {
        let stripped = self.pattern.replace_all(subject.unwrap_or(""), " ");
        let tidy = stripped.split_whitespace().collect::<Vec<_>>().join(" ");
        if tidy.is_empty() {
            "(no subject)".to_string()
        } else {
            tidy
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_is_found_case_insensitively_and_stripped() {
        let tag = SubjectTag::new("Support");
        assert_eq!(tag.ticket_id("Re: [Support #42] printer"), Some(42));
        assert_eq!(tag.ticket_id("RE: [support#7]"), Some(7));
        assert_eq!(tag.ticket_id("[Sales #42] printer"), None);
        assert_eq!(tag.ticket_id("Support 42"), None);
        assert_eq!(
            tag.clean_subject(Some("Re: [Support #42]  printer ")),
            "Re: printer"
        );
        assert_eq!(tag.clean_subject(None), "(no subject)");
        assert_eq!(tag.format(5), "[Support #5]");
    }
}
