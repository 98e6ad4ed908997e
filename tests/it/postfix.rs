//! Behind a real Postfix, configured with the README's own lines: mail to a
//! queue address becomes a ticket through the pipe; while the store cannot be
//! written, Postfix defers the mail (nothing bounces), and after `postqueue -f`
//! each message is a ticket exactly once.

use std::path::Path;
use std::time::Duration;

use crate::support::postfix::Postfix;
use crate::support::{BIN, Msg, wait_until};

/// The README block whose first line is `first_line`, without its fences.
fn readme_block(first_line: &str) -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let start = readme
        .find(&format!("```\n{first_line}"))
        .unwrap_or_else(|| panic!("the README has no block starting with {first_line:?}"));
    let body = &readme[start + 4..];
    body[..body.find("```").expect("a closing fence")].to_string()
}

/// The README's line with this test's paths in place of the installed ones.
fn installed_here(text: &str, postfix_dir: &Path, binary: &Path, config: &Path) -> String {
    text.replace("/etc/postfix/", &format!("{}/", postfix_dir.display()))
        .replace("/usr/bin/ticketd", &binary.display().to_string())
        .replace("/etc/ticketd/ticketd.toml", &config.display().to_string())
}

fn tickets(config: &Path) -> Vec<serde_json::Value> {
    let out = std::process::Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(["ticket", "list", "--json"])
        .output()
        .expect("ticket list");
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
}

fn chown_tree(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).expect("chown");
    if path.is_dir() {
        for entry in std::fs::read_dir(path).expect("read dir").flatten() {
            chown_tree(&entry.path(), uid, gid);
        }
    }
}

#[test]
fn mail_through_postfix_becomes_tickets_and_is_deferred_not_bounced_while_the_store_is_unwritable()
{
    if let Some(why) = Postfix::unavailable() {
        crate::support::skip(&why);
        return;
    }
    let Ok(Some(service)) = nix::unistd::User::from_name("ticketd") else {
        crate::support::skip("the service user `ticketd` does not exist (scripts/test creates it)");
        return;
    };
    let (uid, gid) = (service.uid.as_raw(), service.gid.as_raw());
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    std::fs::set_permissions(root, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    // The installation: the binary, a configuration the pipe's user can read, a
    // store that belongs to it.
    let binary = root.join("ticketd");
    std::fs::copy(BIN, &binary).expect("copy the binary");
    let state = root.join("state");
    std::fs::create_dir(&state).expect("state");
    chown_tree(&state, uid, gid);
    let config = root.join("ticketd.toml");
    std::fs::write(
        &config,
        format!(
            "maildir = []\n\n[store]\nurl = \"sqlite://{state}/ticketd.db\"\n\n[data]\ndir = \"{state}/data\"\n\n\
             [limits]\nmax_message_bytes = 65536\n\n\
             [[queues]]\nname = \"support\"\naddresses = [\"support@example.com\"]\n\n\
             [[queues]]\nname = \"billing\"\naddresses = [\"billing@example.com\"]\n\
             allowed_roles = [\"admin\", \"support\", \"billing\"]\n",
            state = state.display()
        ),
    )
    .expect("config");
    let postfix_dir = root.join("postfix");
    let here = |text: &str| installed_here(text, &postfix_dir, &binary, &config);
    let postfix = Postfix::start(
        root,
        &here(&readme_block("# /etc/postfix/main.cf")),
        &here(&readme_block("# /etc/postfix/master.cf")),
    );
    let transport = postfix_dir.join("transport");
    std::fs::write(&transport, readme_block("# /etc/postfix/transport")).expect("transport");
    postfix.command("postmap", &[&transport.display().to_string()]);
    postfix.command("postfix", &["reload"]);
    std::thread::sleep(Duration::from_secs(1));

    let mail = |n: u32, to: &str| {
        Msg::new(
            "Jane <jane@acme.test>",
            &format!("Question {n}"),
            &format!("pf{n}@acme.test"),
        )
        .header("To", to)
        .bytes()
    };
    postfix.send(
        "jane@acme.test",
        &["support@example.com"],
        &mail(1, "support@example.com"),
    );
    // Bcc'd to a queue address: the envelope recipient picks the queue (the D flag).
    postfix.send(
        "jane@acme.test",
        &["billing@example.com"],
        &mail(2, "someone@acme.test"),
    );
    wait_until(Duration::from_secs(30), "two tickets", || {
        tickets(&config).len() == 2
    });
    let queues: Vec<String> = tickets(&config)
        .iter()
        .map(|t| {
            format!(
                "{} {}",
                t["subject"].as_str().unwrap_or(""),
                t["queue"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert!(
        queues.contains(&"Question 2 billing".to_string()),
        "{queues:?}"
    );
    // Larger than the store's limit but within Postfix's: it reaches ticketd and is held.
    let big = Msg::new("Jane <jane@acme.test>", "Huge log", "pfbig@acme.test")
        .body(&"0123456789abcdef\n".repeat(6000))
        .bytes();
    postfix.send("jane@acme.test", &["support@example.com"], &big);
    wait_until(Duration::from_secs(30), "the held message", || {
        postfix.log_text().contains("held message #1")
    });

    // The store becomes unwritable for the pipe's user: mail waits in Postfix's queue.
    chown_tree(&state, 0, 0);
    for n in 3..6 {
        postfix.send(
            "jane@acme.test",
            &["support@example.com"],
            &mail(n, "support@example.com"),
        );
    }
    wait_until(Duration::from_secs(30), "three deferrals", || {
        postfix.log_text().matches("status=deferred").count() >= 3
    });
    let log = postfix.log_text();
    // ticketd's one-line reason is what Postfix logs.
    assert!(
        log.contains("Command output: ticketd ingest: deferred:"),
        "{log}"
    );
    assert!(!log.contains("status=bounced"), "{log}");
    assert_eq!(postfix.queued(), 3);
    assert_eq!(tickets(&config).len(), 2);
    // Writable again; the operator flushes the queue: each becomes one ticket.
    chown_tree(&state, uid, gid);
    postfix.command("postqueue", &["-f"]);
    wait_until(Duration::from_secs(30), "five tickets", || {
        tickets(&config).len() == 5
    });
    wait_until(Duration::from_secs(30), "an empty queue", || {
        postfix.queued() == 0
    });
    std::thread::sleep(Duration::from_secs(1));
    let mut subjects: Vec<String> = tickets(&config)
        .iter()
        .map(|t| t["subject"].as_str().unwrap_or("").to_string())
        .collect();
    subjects.sort();
    assert_eq!(
        subjects,
        [
            "Question 1",
            "Question 2",
            "Question 3",
            "Question 4",
            "Question 5"
        ]
    );
    assert!(
        !postfix.log_text().contains("status=bounced"),
        "{}",
        postfix.log_text()
    );
}
