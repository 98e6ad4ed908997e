//! Commands an agent writes at the top of a reply (`#status solved`,
//! `#assign me`…): parsed before anything is applied, all or nothing. Pure.
//!
//! Command lines are the lines at the top of the agent's visible text that
//! start with `#` and a letter; the first other line ends them, so a `#` in
//! the middle of the text is text. They are removed from what a customer sees.

use crate::mail::address;
use crate::store::tickets::{Priority, Status};

/// One command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Status(Status),
    Priority(Priority),
    Assign(Assignee),
    /// Add (`true`) or remove a copied participant.
    Cc {
        add: bool,
        address: String,
    },
    /// The reply is an internal note: agents only.
    Note,
    /// Merge this ticket into that one.
    Merge(i64),
}

/// Whom `#assign` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assignee {
    Agent(String),
    Me,
    Nobody,
}

/// A command line that does not parse, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: String,
    pub reason: String,
}

/// The commands of a reply and the text left for the customer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    pub commands: Vec<Command>,
    /// The line each command was read from, in the same order.
    pub lines: Vec<String>,
    pub errors: Vec<LineError>,
    /// The visible text without the command lines.
    pub text: String,
}

impl Parsed {
    /// Whether the reply is an internal note (`#note`).
    pub fn is_note(&self) -> bool {
        self.commands.contains(&Command::Note)
    }

    /// The status a `#status` command sets, the last one if several.
    pub fn status(&self) -> Option<Status> {
        self.commands.iter().rev().find_map(|c| match c {
            Command::Status(s) => Some(*s),
            _ => None,
        })
    }
}

/// What each command allows, for the answer to a mistake.
pub const HELP: &str = "#status open|pending|on-hold|solved|closed, #priority low|normal|high|urgent, \
     #assign <agent address>|me|none, #cc +<address> or #cc -<address>, #note, #merge <ticket number>";

/// Reads the command lines at the top of `visible_text`.
pub fn parse(visible_text: &str) -> Parsed {
    let mut parsed = Parsed::default();
    let mut lines = visible_text.lines().peekable();
    while let Some(line) = lines.peek() {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            lines.next();
            continue;
        }
        if !is_command_line(trimmed) {
            break;
        }
        match command(trimmed) {
            Ok(c) => {
                parsed.commands.push(c);
                parsed.lines.push(trimmed.to_string());
            }
            Err(reason) => parsed.errors.push(LineError {
                line: trimmed.to_string(),
                reason,
            }),
        }
        lines.next();
    }
    parsed.text = lines.collect::<Vec<_>>().join("\n").trim().to_string();
    parsed
}

fn is_command_line(line: &str) -> bool {
    line.strip_prefix('#')
        .and_then(|rest| rest.chars().next())
        .is_some_and(|c| c.is_ascii_alphabetic())
}

fn command(line: &str) -> Result<Command, String> {
    let body = line.trim_start_matches('#');
    let mut words = body.split_whitespace();
    let name = words.next().unwrap_or("").to_ascii_lowercase();
    let args: Vec<&str> = words.collect();
    let one = |what: &str| -> Result<&str, String> {
        match args.as_slice() {
            [only] => Ok(*only),
            [] => Err(format!("#{name} needs {what}")),
            _ => Err(format!("#{name} takes one {what}, not {}", args.len())),
        }
    };
    match name.as_str() {
        "status" => {
            let value = one("status")?;
            let status: Status = value.parse().map_err(|_| {
                format!("unknown status `{value}`: open, pending, on-hold, solved or closed")
            })?;
            if status == Status::New {
                return Err(
                    "a ticket cannot be made new again: open, pending, on-hold, solved or closed"
                        .into(),
                );
            }
            Ok(Command::Status(status))
        }
        "priority" => {
            let value = one("priority")?;
            value
                .parse()
                .map(Command::Priority)
                .map_err(|_| format!("unknown priority `{value}`: low, normal, high or urgent"))
        }
        "assign" => {
            let value = one("agent")?;
            match value.to_ascii_lowercase().as_str() {
                "me" => Ok(Command::Assign(Assignee::Me)),
                "none" | "nobody" => Ok(Command::Assign(Assignee::Nobody)),
                _ => address::normalize(value)
                    .map(|a| Command::Assign(Assignee::Agent(a)))
                    .ok_or_else(|| format!("`{value}` is not an agent's address, `me` or `none`")),
            }
        }
        "cc" => {
            let value = one("+address or -address")?;
            let (add, rest) = match value.split_at_checked(1) {
                Some(("+", rest)) => (true, rest),
                Some(("-", rest)) => (false, rest),
                _ => {
                    return Err(format!(
                        "`{value}`: write +address to add or -address to remove"
                    ));
                }
            };
            address::normalize(rest)
                .map(|address| Command::Cc { add, address })
                .ok_or_else(|| format!("`{rest}` is not an email address"))
        }
        "note" if args.is_empty() => Ok(Command::Note),
        "note" => Err("#note stands alone on its line; the note is the text below".into()),
        "merge" => {
            let value = one("ticket number")?;
            value
                .trim_start_matches('#')
                .parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .map(Command::Merge)
                .ok_or_else(|| format!("`{value}` is not a ticket number"))
        }
        _ => Err(format!("unknown command #{name}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_parses() {
        let parsed = parse(
            "#status solved\n#priority urgent\n#assign bob@example.com\n#assign me\n#assign none\n\
             #cc +Carol@Acme.test\n#cc -dave@acme.test\n#merge 12\n#note\n\nThe words.",
        );
        assert_eq!(parsed.errors, []);
        assert_eq!(
            parsed.commands,
            [
                Command::Status(Status::Solved),
                Command::Priority(Priority::Urgent),
                Command::Assign(Assignee::Agent("bob@example.com".into())),
                Command::Assign(Assignee::Me),
                Command::Assign(Assignee::Nobody),
                Command::Cc {
                    add: true,
                    address: "carol@acme.test".into()
                },
                Command::Cc {
                    add: false,
                    address: "dave@acme.test".into()
                },
                Command::Merge(12),
                Command::Note,
            ]
        );
        assert_eq!(parsed.text, "The words.");
        assert!(parsed.is_note());
        assert_eq!(parsed.status(), Some(Status::Solved));
    }

    #[test]
    fn statuses_are_written_as_people_write_them() {
        for (word, status) in [
            ("open", Status::Open),
            ("pending", Status::Pending),
            ("on-hold", Status::OnHold),
            ("On_Hold", Status::OnHold),
            ("SOLVED", Status::Solved),
            ("closed", Status::Closed),
        ] {
            assert_eq!(
                parse(&format!("#status {word}")).status(),
                Some(status),
                "{word}"
            );
        }
    }

    #[test]
    fn bad_values_are_named_with_what_is_allowed() {
        let parsed = parse(
            "#status done\n#priority 5\n#assign someone\n#cc carol@acme.test\n#cc +nobody\n\
             #merge abc\n#frobnicate\n#status\n#note now\n#status new\nText.",
        );
        assert!(parsed.commands.is_empty());
        let reasons: Vec<&str> = parsed.errors.iter().map(|e| e.reason.as_str()).collect();
        assert_eq!(parsed.errors.len(), 10, "{reasons:?}");
        assert!(reasons[0].contains("unknown status `done`"));
        assert!(reasons[1].contains("low, normal, high or urgent"));
        assert!(reasons[3].contains("+address"));
        assert!(reasons[6].contains("unknown command #frobnicate"));
        assert!(reasons[7].contains("needs"));
        assert_eq!(parsed.text, "Text.");
    }

    #[test]
    fn commands_after_text_are_text() {
        let parsed = parse("Thanks, done.\n#status solved\n");
        assert!(parsed.commands.is_empty());
        assert!(parsed.errors.is_empty());
        assert_eq!(parsed.text, "Thanks, done.\n#status solved");
        // A hash and a number is text too.
        let parsed = parse("#1 the printer\n#2 the scanner");
        assert!(parsed.commands.is_empty() && parsed.errors.is_empty());
    }

    #[test]
    fn no_commands_leave_the_text_as_it_is() {
        let parsed = parse("\n\nHello,\n\nplease restart it.\n");
        assert_eq!(
            parsed,
            Parsed {
                commands: vec![],
                lines: vec![],
                errors: vec![],
                text: "Hello,\n\nplease restart it.".into(),
            }
        );
    }
}
