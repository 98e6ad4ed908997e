//! Reading `strace -f -yy` output: the writes to the store's log, its syncs, and
//! acknowledgements, in the order they happened; and the check that no
//! acknowledgement came while a write to the log was not yet synced.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

/// The `strace` command line to put in front of a program: every thread, file
/// descriptors decoded (paths, sockets), enough of each write to see commands.
pub fn strace_prefix(output: &Path) -> Vec<String> {
    [
        "strace",
        "-f",
        "-yy",
        "-qq",
        "-s",
        "120",
        "-e",
        "trace=write,pwrite64,writev,pwritev,sendto,sendmsg,fsync,fdatasync,rename,renameat,renameat2,exit_group",
        "-o",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([output.display().to_string()])
    .collect()
}

/// Whether strace can trace here (ptrace may be forbidden in a container).
pub fn strace_works() -> bool {
    Command::new("strace")
        .args(["-f", "-qq", "-o", "/dev/null", "true"])
        .status()
        .is_ok_and(|s| s.success())
}

/// What a traced system call did, as far as the check cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A write to the SQLite log (`…-wal`).
    LogWrite,
    /// A successful fsync/fdatasync of the log (or of the database file).
    Sync,
    /// An acknowledgement to a source, with the line that shows it.
    Ack(String),
}

#[derive(Debug, Clone)]
pub struct Event {
    pub kind: Kind,
    /// Line numbers where the call started and returned.
    pub start: usize,
    pub end: usize,
}

/// Reads the trace; `is_ack(name, arguments)` says which calls acknowledge a message.
pub fn events(trace: &str, database: &str, is_ack: impl Fn(&str, &str) -> bool) -> Vec<Event> {
    let log = format!("{database}-wal>");
    let db = format!("{database}>");
    let mut unfinished: HashMap<String, (String, String, usize)> = HashMap::new();
    let mut out = Vec::new();
    for (index, line) in trace.lines().enumerate() {
        let Some((pid, rest)) = line.split_once(' ') else {
            continue;
        };
        let rest = rest.trim_start();
        // One call: `name(args) = ret`, or split in `name(args <unfinished ...>` and
        // `<... name resumed>args) = ret`.
        let (name, args, result, start) = if let Some(resumed) = rest.strip_prefix("<... ") {
            let Some((name, tail)) = resumed.split_once(" resumed>") else {
                continue;
            };
            let Some((_, first, start)) = unfinished.remove(pid) else {
                continue;
            };
            let (args, result) = split_result(tail);
            (name.to_string(), format!("{first}{args}"), result, start)
        } else if let Some((name, tail)) = rest.split_once('(') {
            if let Some(args) = tail.strip_suffix(" <unfinished ...>") {
                unfinished.insert(pid.to_string(), (name.to_string(), args.to_string(), index));
                continue;
            }
            let (args, result) = split_result(tail);
            (name.to_string(), args, result, index)
        } else {
            continue;
        };
        let first_arg = args.split(", ").next().unwrap_or("");
        let kind = match name.as_str() {
            "write" | "pwrite64" | "writev" | "pwritev" if first_arg.ends_with(&log) => {
                Some(Kind::LogWrite)
            }
            "fsync" | "fdatasync"
                if (first_arg.ends_with(&log) || first_arg.ends_with(&db)) && result == "0" =>
            {
                Some(Kind::Sync)
            }
            _ if is_ack(&name, &args) => Some(Kind::Ack(line.to_string())),
            _ => None,
        };
        if let Some(kind) = kind {
            out.push(Event {
                kind,
                start,
                end: index,
            });
        }
    }
    out.sort_by_key(|e| e.end);
    out
}

/// `args)    = ret` → (`args`, `ret`); strace pads before `=` to align results.
fn split_result(tail: &str) -> (String, String) {
    match tail.rsplit_once(" = ") {
        Some((args, result)) => {
            let args = args.trim_end();
            (
                args.strip_suffix(')').unwrap_or(args).to_string(),
                result.split_whitespace().next().unwrap_or("").to_string(),
            )
        }
        None => (tail.trim_end_matches(')').to_string(), String::new()),
    }
}

/// The acknowledgements that started while a write to the log that had
/// returned before them was not yet covered by a sync that started after
/// that write returned and returned before the acknowledgement started.
pub fn unsynced_acknowledgements(events: &[Event]) -> Vec<String> {
    let mut acks: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(e.kind, Kind::Ack(_)))
        .collect();
    acks.sort_by_key(|e| e.start);
    let mut bad = Vec::new();
    for ack in acks {
        let uncovered = events
            .iter()
            .filter(|w| w.kind == Kind::LogWrite && w.end < ack.start)
            .any(|write| {
                !events
                    .iter()
                    .any(|s| s.kind == Kind::Sync && s.start > write.end && s.end < ack.start)
            });
        if uncovered && let Kind::Ack(line) = &ack.kind {
            bad.push(line.clone());
        }
    }
    bad
}

/// How many acknowledgements the trace shows.
pub fn acknowledgements(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e.kind, Kind::Ack(_)))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "\
10 pwrite64(5</d/t.db-wal>, \"x\", 4096, 0) = 4096
11 rename(\"/d/inbox/new/1\", \"/d/inbox/cur/1:2,S\") = 0
10 pwrite64(5</d/t.db-wal>, \"x\", 4096, 4096) = 4096
12 fdatasync(7</d/t.db-wal> <unfinished ...>
10 pwrite64(5</d/t.db-wal>, \"x\", 4096, 8192) = 4096
12 <... fdatasync resumed>)          = 0
11 rename(\"/d/inbox/new/2\", \"/d/inbox/cur/2:2,S\") = 0
13 fsync(8</d/t.db-wal>)               = 0
11 rename(\"/d/inbox/new/3\", \"/d/inbox/cur/3:2,S\") = 0
";

    #[test]
    fn a_sync_split_over_two_lines_covers_the_writes_before_it() {
        let trace = "\
10 pwrite64(5</d/t.db-wal>, \"x\", 4096, 0) = 4096
12 fdatasync(7</d/t.db-wal> <unfinished ...>
10 write(2</d/log>, \"a\", 1) = 1
12 <... fdatasync resumed>)          = 0
11 rename(\"/d/inbox/new/0\", \"/d/inbox/cur/0:2,S\") = 0
";
        let events = events(trace, "/d/t.db", |name, args| {
            name == "rename" && args.contains("/inbox/new/")
        });
        assert_eq!(acknowledgements(&events), 1);
        assert!(unsynced_acknowledgements(&events).is_empty(), "{events:?}");
    }

    #[test]
    fn an_acknowledgement_before_the_sync_is_found() {
        let events = events(TRACE, "/d/t.db", |name, args| {
            name == "rename" && args.contains("/inbox/new/")
        });
        assert_eq!(acknowledgements(&events), 3);
        let bad = unsynced_acknowledgements(&events);
        // The first rename came before any sync; the second came after a sync that
        // started after the second write, but the third write was not covered; a
        // sync after the third write covers the last rename.
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert!(bad[0].contains("new/1"));
        assert!(bad[1].contains("new/2"));
    }
}
