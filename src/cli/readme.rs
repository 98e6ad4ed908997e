//! The README's command table checked against the commands themselves: every
//! subcommand and every flag `--help` knows is in the table, so the two
//! cannot drift apart unnoticed.

use std::collections::BTreeMap;

/// The command table of the README: for each command path ("ticket list",
/// "run"), the text of the code spans that name it.
fn documented(readme: &str) -> BTreeMap<String, String> {
    let mut found: BTreeMap<String, String> = BTreeMap::new();
    for row in readme.lines().filter(|l| l.starts_with("| `ticketd ")) {
        let Some(first_cell) = row.split(" | ").next() else {
            continue;
        };
        for span in first_cell.split('`').skip(1).step_by(2) {
            let words: Vec<&str> = span
                .split_whitespace()
                .skip_while(|w| *w == "ticketd")
                .collect();
            let Some(group) = words.first() else { continue };
            let subcommands = words
                .get(1)
                .filter(|w| {
                    w.chars()
                        .all(|c| c.is_ascii_lowercase() || c == '-' || c == '/')
                })
                .map(|w| w.split('/').collect::<Vec<_>>());
            let paths = match subcommands {
                Some(subs) => subs.iter().map(|s| format!("{group} {s}")).collect(),
                None => vec![(*group).to_string()],
            };
            for path in paths {
                let text = found.entry(path).or_default();
                text.push(' ');
                text.push_str(span);
            }
        }
    }
    found
}

/// Every leaf command with its long flags (global ones left out).
fn commands(command: &clap::Command, prefix: &str, out: &mut Vec<(String, Vec<String>)>) {
    let mut leaf = true;
    for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
        leaf = false;
        let path = if prefix.is_empty() {
            sub.get_name().to_string()
        } else {
            format!("{prefix} {}", sub.get_name())
        };
        commands(sub, &path, out);
    }
    if leaf && !prefix.is_empty() {
        let flags = command
            .get_arguments()
            .filter(|a| !a.is_global_set())
            .filter_map(|a| a.get_long())
            .filter(|l| !["help", "version", "config", "log-format"].contains(l))
            .map(|l| format!("--{l}"))
            .collect();
        out.push((prefix.to_string(), flags));
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn every_command_and_flag_is_in_the_readme_table() {
        let table = documented(include_str!("../../README.md"));
        let mut leaves = Vec::new();
        commands(&super::super::Cli::command(), "", &mut leaves);
        assert!(leaves.len() > 20, "{leaves:?}");
        let mut missing = Vec::new();
        for (path, flags) in leaves {
            let Some(text) = table.get(&path) else {
                missing.push(format!("`ticketd {path}`"));
                continue;
            };
            for flag in flags {
                let named = text
                    .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                    .any(|w| w == flag);
                if !named {
                    missing.push(format!("`ticketd {path} {flag}`"));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "missing from the README's command table:\n{}",
            missing.join("\n")
        );
    }

    #[test]
    fn every_argument_and_flag_says_what_it_is() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if ["help", "version"].contains(&id) {
                    continue;
                }
                if arg
                    .get_help()
                    .is_none_or(|h| h.to_string().trim().is_empty())
                {
                    missing.push(format!("ticketd {path} <{id}>"));
                }
            }
            for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
                if sub.get_about().is_none() {
                    missing.push(format!("ticketd {path} {} (no about)", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::super::Cli::command(), "", &mut missing);
        assert!(
            missing.is_empty(),
            "without help text:\n{}",
            missing.join("\n")
        );
    }

    #[test]
    fn the_table_reader_understands_groups_and_slashes() {
        let table = documented(
            "| `ticketd held list/show [--json]`, `held discard ID` | x |\n\
             | `ticketd run` | y |\n",
        );
        assert!(table["held list"].contains("--json"));
        assert!(table["held show"].contains("--json"));
        assert!(!table["held discard"].contains("--json"));
        assert!(table.contains_key("run"));
    }
}
