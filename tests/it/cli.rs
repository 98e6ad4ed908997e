//! The command line as an operator and an MTA meet it: exit codes, configuration errors, help.

use crate::support::{Backend, Env, Msg};

#[test]
fn not_a_message_exits_65_and_stores_nothing() {
    let env = Env::new(Backend::Sqlite);
    for input in [&b""[..], b"   \n\n", b"\0\x01\x02binary\0"] {
        let out = env.run_with_input(&["ingest", "--json"], input);
        assert_eq!(out.status.code(), Some(65), "{input:?}");
        let line: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json line");
        assert!(
            line["reason"]
                .as_str()
                .unwrap_or("")
                .contains("not an email message"),
            "{line}"
        );
    }
    assert!(env.tickets().is_empty());
}

#[test]
fn headerless_text_is_held_for_having_no_sender() {
    let env = Env::new(Backend::Sqlite);
    let report = env.ingest(b"just some words someone piped in\n");
    assert_eq!(report["outcome"], "held");
    assert_eq!(env.held()[0]["reason_code"], "no_sender");
}

#[test]
fn unreachable_store_exits_75_so_the_mta_retries() {
    let env = Env::new(Backend::Sqlite);
    let raw = Msg::new("jane@acme.example", "Hi", "x1@acme.example").bytes();
    let out = env
        .command()
        .args(["ingest", "--json"])
        .env("TICKETD__STORE__URL", "postgres://nobody@127.0.0.1:1/none")
        .env("TICKETD__STORE__CONNECT_TIMEOUT_SECS", "2")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().expect("stdin").write_all(&raw)?;
            child.wait_with_output()
        })
        .expect("run ticketd");
    assert_eq!(
        out.status.code(),
        Some(75),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("store"));
}

#[test]
fn unreadable_file_exits_66_and_other_files_are_still_ingested() {
    let env = Env::new(Backend::Sqlite);
    let good = env.path().join("good.eml");
    std::fs::write(
        &good,
        Msg::new("jane@acme.example", "Hi", "g1@acme.example").bytes(),
    )
    .expect("write");
    let out = env.run(&[
        "ingest",
        "--json",
        "/nonexistent/message.eml",
        good.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(66));
    assert_eq!(env.tickets().len(), 1);
}

#[test]
fn config_check_prints_effective_settings_with_secrets_masked() {
    let env = Env::with_config(Backend::Sqlite, "[tickets]\ntag = \"Help\"\n");
    let out = env
        .command()
        .args(["config", "check"])
        .env(
            "TICKETD__STORE__URL",
            "postgres://user:hunter2@db.example/ticketd",
        )
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("tag = \"Help\""), "{text}");
    assert!(text.contains("unknown_sender = \"create\""), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    assert!(
        text.contains("postgres://user:********@db.example/ticketd"),
        "{text}"
    );
}

#[test]
fn config_errors_name_the_key_and_exit_78() {
    for (toml, key) in [
        ("[tickets]\nunknown_sendr = \"hold\"\n", "unknown_sendr"),
        (
            "[tickets]\nunknown_sender = \"sometimes\"\n",
            "tickets.unknown_sender",
        ),
        (
            "[[queues]]\nname = \"q\"\naddresses = [\"not an address\"]\n",
            "queues[0].addresses[0]",
        ),
    ] {
        let env = Env::with_config(Backend::Sqlite, toml);
        let out = env.run(&["config", "check"]);
        assert_eq!(out.status.code(), Some(78), "{toml}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(key),
            "error for {toml:?} does not name {key}: {err}"
        );
    }
    let env = Env::new(Backend::Sqlite);
    let out = env
        .command()
        .args(["config", "check"])
        .env("TICKETD__STORE__URL", "mysql://x")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("store.url"));
}

#[test]
fn environment_variables_override_the_file() {
    let env = Env::new(Backend::Sqlite);
    let out = env
        .command()
        .args(["config", "check"])
        .env("TICKETD__TICKETS__TAG", "Helpdesk")
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&out.stdout).contains("tag = \"Helpdesk\""));
}

#[test]
fn every_command_explains_itself() {
    let env = Env::new(Backend::Sqlite);
    for args in [
        vec!["--help"],
        vec!["parse", "--help"],
        vec!["ticket", "list", "--help"],
        vec!["ticket", "set-status", "--help"],
        vec!["ticket", "assign", "--help"],
        vec!["ticket", "set-priority", "--help"],
        vec!["ticket", "note", "--help"],
        vec!["ticket", "merge", "--help"],
        vec!["org", "add", "--help"],
        vec!["contact", "add", "--help"],
        vec!["agent", "add", "--help"],
        vec!["held", "release", "--help"],
        vec!["migrate", "--help"],
        vec!["config", "check", "--help"],
    ] {
        let out = env.ok(&args);
        assert!(out.contains("Usage:"), "{args:?}: {out}");
    }
    // Not from a terminal, `ingest --help` is an MTA's misconfigured pipe: the help is
    // shown, and the mail is deferred rather than reported delivered.
    let out = env.run(&["ingest", "--help"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("Usage:"));
    assert_eq!(out.status.code(), Some(75));
}

#[test]
fn migrate_creates_the_sqlite_file_and_is_idempotent() {
    let env = Env::new(Backend::Sqlite);
    env.ok(&["migrate"]);
    env.ok(&["migrate"]);
    assert!(env.path().join("ticketd.db").exists());
}

#[test]
fn commands_starting_together_on_a_fresh_database_all_migrate_it() {
    for _ in 0..3 {
        let env = Env::new(Backend::Sqlite);
        let children: Vec<_> = (0..6)
            .map(|_| {
                env.command()
                    .arg("migrate")
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("spawn ticketd migrate")
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().expect("wait for ticketd migrate");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert_eq!(env.json(&["org", "list", "--json"]), serde_json::json!([]));
    }
}

#[test]
fn directory_commands_reject_bad_input_clearly() {
    let env = Env::new(Backend::Sqlite).with_acme();
    let dup = env.run(&["org", "add", "Acme"]);
    assert_eq!(dup.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&dup.stderr).contains("exists already"));
    let taken = env.run(&["org", "add", "Other", "--domain", "acme.example"]);
    assert!(String::from_utf8_lossy(&taken.stderr).contains("belongs to another organization"));
    let bad = env.run(&["contact", "add", "not-an-address", "--org", "Acme"]);
    assert_eq!(bad.status.code(), Some(64));
    let no_org = env.run(&["contact", "add", "x@acme.example", "--org", "Nope"]);
    assert!(String::from_utf8_lossy(&no_org.stderr).contains("no organization named"));
    let bad_role = env.run(&["contact", "add", "x@acme.example", "--role", "wizard"]);
    assert!(!bad_role.status.success());
    let missing = env.run(&["contact", "lock", "ghost@acme.example"]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no contact"));
    let list = env.json(&["contact", "list", "--json"]);
    let jane = &list[0];
    for field in ["email", "name", "organization", "roles", "state"] {
        assert!(jane.get(field).is_some(), "contact list lacks {field}");
    }
    let agents = env.json(&["agent", "list", "--json"]);
    assert_eq!(agents[0]["email"], "alex@example.com");
}

#[test]
fn output_to_a_closed_pipe_ends_quietly() {
    let env = Env::new(Backend::Sqlite);
    let body = "The printer on floor 3 is broken again.\n".repeat(8000);
    let file = env.path().join("long.eml");
    std::fs::write(
        &file,
        Msg::new("jane@acme.example", "Long", "long@acme.example")
            .body(&body)
            .bytes(),
    )
    .expect("write the message");
    let mut child = env
        .command()
        .args(["parse", "--json"])
        .arg(&file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn ticketd parse");
    // The reader goes away before the 300 KB of JSON are written, like `| head`.
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait for ticketd parse");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn parse_shows_what_proves_the_sender() {
    let env = Env::new(Backend::Sqlite);
    let file = env.path().join("agent.eml");
    let parse = |msg: Msg| {
        std::fs::write(&file, msg.bytes()).expect("write");
        env.json(&["parse", "--json", file.to_str().expect("path")])["authentication"].clone()
    };
    let genuine = parse(Msg::new("alex@example.com", "Re: x", "a@example.com").verified());
    assert_eq!(genuine["trusted"], true, "{genuine}");
    assert_eq!(genuine["dmarc"], "pass");
    assert_eq!(genuine["authserv_id"], "mx.test");
    assert!(
        genuine["dkim"]
            .as_str()
            .unwrap_or("")
            .contains("example.com"),
        "{genuine}"
    );
    let foreign = parse(
        Msg::new("alex@example.com", "Re: x", "a@example.com").header(
            "Authentication-Results",
            "mx.elsewhere.example; dmarc=pass header.from=example.com",
        ),
    );
    assert_eq!(foreign["trusted"], false, "{foreign}");
    assert!(foreign["authserv_id"].is_null());
    let failed = parse(
        Msg::new("alex@example.com", "Re: x", "a@example.com").header(
            "Authentication-Results",
            "mx.test; dmarc=fail header.from=example.com",
        ),
    );
    assert_eq!(failed["trusted"], false);
    assert_eq!(failed["dmarc"], "fail");
}

#[test]
fn config_check_warns_of_trusting_the_from_line() {
    let env = Env::with_config(Backend::Sqlite, "[agents]\ntrust = \"sender\"\n");
    let out = env.run(&["config", "check"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: agents.trust = \"sender\""),
        "{stderr}"
    );
    let quiet = Env::new(Backend::Sqlite).run(&["config", "check"]);
    assert!(!String::from_utf8_lossy(&quiet.stderr).contains("warning"));
}

#[test]
fn listings_show_the_newest_fifty_unless_told_and_json_shows_every_row() {
    let env = Env::new(Backend::Sqlite);
    let dir = env.path().join("mail");
    std::fs::create_dir_all(&dir).expect("mail dir");
    let mut files = Vec::new();
    for n in 0..55 {
        let path = dir.join(format!("{n}.eml"));
        let raw = Msg::new(
            &format!("Customer {n} <c{n}@example.org>"),
            &format!("Question {n}"),
            &format!("q{n}@example.org"),
        )
        .bytes();
        std::fs::write(&path, raw).expect("write message");
        files.push(path.display().to_string());
    }
    let mut args = vec!["ingest"];
    args.extend(files.iter().map(String::as_str));
    env.ok(&args);

    let lines = |args: &[&str]| -> (Vec<String>, String) {
        let out = env.run(args);
        assert!(out.status.success(), "{args:?}: {out:?}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        (
            stdout.lines().map(str::to_string).collect(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (rows, notice) = lines(&["ticket", "list"]);
    assert_eq!(rows.len(), 50, "{rows:?}");
    assert!(rows[0].starts_with("#55 "), "newest first: {}", rows[0]);
    assert!(notice.contains("--limit N or --all"), "{notice}");
    let (rows, notice) = lines(&["ticket", "list", "--limit", "3"]);
    assert_eq!(rows.len(), 3);
    assert!(notice.contains("showing the newest 3"), "{notice}");
    let (rows, notice) = lines(&["ticket", "list", "--all"]);
    assert_eq!(rows.len(), 55);
    assert!(notice.is_empty(), "{notice}");
    let every = env.json(&["ticket", "list", "--json"]);
    assert_eq!(every.as_array().map(Vec::len), Some(55));
    let limited = env.json(&["ticket", "list", "--json", "--limit", "2"]);
    assert_eq!(limited.as_array().map(Vec::len), Some(2));
    assert_eq!(limited[0]["id"], 55);

    let (rows, _) = lines(&["contact", "list"]);
    assert_eq!(rows.len(), 50);
    assert!(
        !rows
            .iter()
            .any(|r| r.starts_with("c0@") || r.starts_with("c4@")),
        "the oldest contacts are the ones left out"
    );
    let contacts = env.json(&["contact", "list", "--json"]);
    assert_eq!(contacts.as_array().map(Vec::len), Some(55));
    let (rows, _) = lines(&["outbox", "list", "--limit", "4"]);
    assert_eq!(rows.len(), 4);
    let outbox = env.json(&["outbox", "list", "--json"]);
    assert_eq!(outbox.as_array().map(Vec::len), Some(55));

    let out = env.run(&["ticket", "list", "--all", "--limit", "3"]);
    assert_eq!(out.status.code(), Some(2), "--all and --limit conflict");

    // Held messages list oldest first; the page is the newest of them.
    let mut held = Vec::new();
    for n in 0..52 {
        let path = dir.join(format!("held-{n}.txt"));
        std::fs::write(&path, format!("words without headers {n}\n")).expect("write");
        held.push(path.display().to_string());
    }
    let mut args = vec!["ingest"];
    args.extend(held.iter().map(String::as_str));
    env.ok(&args);
    let (rows, notice) = lines(&["held", "list"]);
    assert_eq!(rows.len(), 50, "{rows:?}");
    assert!(
        rows[0].starts_with("#3 "),
        "the two oldest left out: {}",
        rows[0]
    );
    assert!(rows[49].starts_with("#52 "), "{}", rows[49]);
    assert!(notice.contains("--limit N or --all"), "{notice}");
    assert_eq!(env.held().len(), 52, "JSON lists every held message");
}
