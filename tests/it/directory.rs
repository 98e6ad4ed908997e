//! The operator's directory: organizations and their domains, contacts, the audit log.

use crate::on_both_backends;
use crate::support::{Backend, Env, Msg, OPERATOR, ticket_of};

/// Acme (acme.test) and its child Acme Labs (labs.acme.test), with `labs` extra flags.
fn acme_and_labs(backend: Backend, labs: &[&str]) -> Env {
    let env = Env::new(backend);
    env.ok(&["org", "add", "Acme", "--domain", "acme.test"]);
    let mut args = vec![
        "org",
        "add",
        "Acme Labs",
        "--domain",
        "labs.acme.test",
        "--parent",
        "Acme",
    ];
    args.extend_from_slice(labs);
    env.ok(&args);
    env
}

fn the_most_specific_domain_names_an_unknown_senders_organization(backend: Backend) {
    let env = acme_and_labs(backend, &[]);
    for (sender, organization) in [
        ("ann@labs.acme.test", Some("Acme Labs")),
        ("bob@eu.labs.acme.test", Some("Acme Labs")),
        ("cy@acme.test", Some("Acme")),
        ("dee@mail.acme.test", Some("Acme")),
        ("eve@notacme.test", None),
        ("fay@acme.test.example", None),
    ] {
        let report = env.ingest(&Msg::new(sender, "Printer", &format!("{sender}.1")).bytes());
        let ticket = env.ticket(ticket_of(&report));
        assert_eq!(ticket["organization"].as_str(), organization, "{sender}");
    }
}

fn the_audit_log_names_who_changed_what(backend: Backend) {
    let env = Env::new(backend).with_acme();
    let report = env.ingest(&Msg::new("jane@acme.example", "Printer", "a1@acme").bytes());
    let ticket = ticket_of(&report).to_string();
    env.ok(&["ticket", "set-status", &ticket, "pending"]);
    env.ok(&["contact", "lock", "jane@acme.example"]);
    let events = |args: &[&str]| -> Vec<(String, String)> {
        let mut all = vec!["audit", "--json"];
        all.extend_from_slice(args);
        match env.json(&all) {
            serde_json::Value::Array(items) => items
                .iter()
                .map(|e| {
                    (
                        e["action"].as_str().unwrap_or("").to_string(),
                        e["actor"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect(),
            other => panic!("audit is not an array: {other}"),
        }
    };
    let on_ticket = events(&["--ticket", &ticket]);
    assert_eq!(
        on_ticket,
        vec![
            ("status_changed".to_string(), OPERATOR.to_string()),
            (
                "ticket_created".to_string(),
                "jane@acme.example".to_string()
            ),
        ]
    );
    let by_operator = events(&["--actor", OPERATOR]);
    assert!(by_operator.contains(&("contact_state_changed".into(), OPERATOR.into())));
    assert!(by_operator.contains(&("organization_created".into(), OPERATOR.into())));
    assert!(by_operator.contains(&("agent_created".into(), OPERATOR.into())));
    let jane = events(&["--contact", "jane@acme.example"]);
    assert!(
        jane.contains(&("contact_state_changed".into(), OPERATOR.into())),
        "{jane:?}"
    );
    assert!(
        jane.contains(&("ticket_created".into(), "jane@acme.example".into())),
        "{jane:?}"
    );
    let acme = events(&["--org", "Acme"]);
    assert!(
        acme.contains(&("organization_created".into(), OPERATOR.into())),
        "{acme:?}"
    );
    assert!(
        acme.contains(&("status_changed".into(), OPERATOR.into())),
        "{acme:?}"
    );
    assert!(events(&["--since", "2999-01-01"]).is_empty());
    let refused = env.run(&["audit", "--since", "yesterday"]);
    assert_eq!(refused.status.code(), Some(2));
    let text = env.ok(&["audit", "--ticket", &ticket]);
    assert!(
        text.contains("status_changed") && text.contains("→ pending"),
        "{text}"
    );
}

on_both_backends!(
    the_most_specific_domain_names_an_unknown_senders_organization,
    the_audit_log_names_who_changed_what,
    organizations_and_contacts_are_edited_shown_and_removed_with_care,
    the_directory_goes_out_as_csv_and_comes_back_unchanged,
    a_bad_csv_reports_every_bad_line_and_changes_nothing,
    a_parent_organizations_admin_follows_up_a_sharing_childs_tickets,
);

fn organizations_and_contacts_are_edited_shown_and_removed_with_care(backend: Backend) {
    let env = Env::new(backend).with_acme();
    env.ok(&["org", "add", "Acme Group"]);
    env.ok(&["org", "add", "Acme Labs", "--parent", "Acme"]);
    env.ok(&[
        "org",
        "edit",
        "Acme",
        "--domain",
        "+acme.test",
        "--domain",
        "-acme.example",
        "--parent",
        "Acme Group",
        "--shares-tickets",
        "true",
        "--notify",
        "-helpdesk@acme.example",
    ]);
    let shown = env.json(&["org", "show", "Acme", "--json"]);
    assert_eq!(shown["domains"], serde_json::json!(["acme.test"]));
    assert_eq!(shown["parent"], "Acme Group");
    assert_eq!(shown["children"], serde_json::json!(["Acme Labs"]));
    assert_eq!(shown["shares_tickets"], true);
    assert_eq!(shown["notify"], serde_json::json!([]));
    assert_eq!(shown["contacts"], 1);
    // A cycle of parents is refused and changes nothing.
    let cycle = env.run(&["org", "edit", "Acme Group", "--parent", "Acme Labs"]);
    assert_eq!(cycle.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&cycle.stderr).contains("cycle"));
    assert_eq!(
        env.json(&["org", "show", "Acme Group", "--json"])["parent"],
        serde_json::Value::Null
    );
    // Removing what is in use says what uses it; an unused one goes.
    let report = env.ingest(&Msg::new("jane@acme.example", "Printer", "r1@acme").bytes());
    ticket_of(&report);
    let refused = env.run(&["org", "remove", "Acme"]);
    assert_eq!(refused.status.code(), Some(1));
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(
        why.contains("1 contact(s), 1 ticket(s), 1 child organization(s)"),
        "{why}"
    );
    env.ok(&["org", "remove", "Acme Labs"]);
    assert_eq!(
        env.run(&["org", "show", "Acme Labs"]).status.code(),
        Some(1)
    );

    // One address is one contact, in any case, and the refusal names the holder.
    env.ok(&["contact", "add", "omar@acme.test", "--org", "Acme"]);
    for taken in [
        vec!["contact", "add", "JANE@acme.example"],
        vec![
            "contact",
            "edit",
            "omar@acme.test",
            "--email",
            "Jane <jane@ACME.example>",
        ],
    ] {
        let out = env.run(&taken);
        assert_eq!(out.status.code(), Some(1), "{taken:?}");
        let why = String::from_utf8_lossy(&out.stderr);
        assert!(why.contains("Jane Doe") && why.contains("Acme"), "{why}");
    }
    env.ok(&[
        "contact",
        "edit",
        "jane@acme.example",
        "--role",
        "+billing",
        "--role",
        "-support",
        "--name",
        "Jane Q. Doe",
        "--email",
        "jane.doe@acme.example",
    ]);
    let jane = env.json(&["contact", "show", "jane.doe@acme.example", "--json"]);
    assert_eq!(jane["roles"], serde_json::json!(["billing"]));
    assert_eq!(jane["name"], "Jane Q. Doe");
    assert_eq!(jane["organization"], "Acme");
    // Her ticket moved with her address.
    assert_eq!(jane["tickets"].as_array().map(Vec::len), Some(1), "{jane}");
    let actions: Vec<&str> = jane["audit"]
        .as_array()
        .expect("audit")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for action in [
        "contact_email_changed",
        "contact_name_changed",
        "contact_roles_changed",
    ] {
        assert!(actions.contains(&action), "{action}: {actions:?}");
    }
    let bad = env.run(&[
        "contact",
        "edit",
        "jane.doe@acme.example",
        "--role",
        "billing",
    ]);
    assert_eq!(bad.status.code(), Some(64));
}

fn the_directory_goes_out_as_csv_and_comes_back_unchanged(backend: Backend) {
    let source = Env::new(backend);
    source.ok(&[
        "org",
        "add",
        "Group",
        "--domain",
        "group.test",
        "--language",
        "fr",
    ]);
    source.ok(&[
        "org",
        "add",
        "Acme",
        "--parent",
        "Group",
        "--domain",
        "acme.test",
        "--shares-tickets",
    ]);
    source.ok(&[
        "org",
        "add",
        "Acme Labs",
        "--parent",
        "Acme",
        "--notify",
        "labs@acme.test",
    ]);
    for (email, state, role) in [
        ("ann@acme.test", None, "admin"),
        ("bob@acme.test", Some("lock"), "billing"),
        ("cy@acme.test", Some("deactivate"), "license"),
        ("dee@group.test", None, "support"),
    ] {
        source.ok(&[
            "contact", "add", email, "--org", "Acme", "--role", role, "--role", "support",
            "--name", "A, \"B\"",
        ]);
        if let Some(state) = state {
            source.ok(&["contact", state, email]);
        }
    }
    let orgs = source.ok(&["export", "orgs"]);
    let contacts = source.ok(&["export", "contacts"]);
    assert!(
        orgs.starts_with("name,parent,domains,shares_tickets,notify,language\n"),
        "{orgs}"
    );
    assert!(
        contacts.starts_with("email,name,organization,roles,state,language\n"),
        "{contacts}"
    );

    // Into an empty store, children before their parents.
    let target = Env::new(backend);
    let mut lines: Vec<&str> = orgs.lines().collect();
    lines[1..].reverse();
    let reversed = target.path().join("orgs.csv");
    std::fs::write(&reversed, lines.join("\n")).expect("write");
    let contacts_file = target.path().join("contacts.csv");
    std::fs::write(&contacts_file, &contacts).expect("write");
    target.ok(&["import", "orgs", reversed.to_str().expect("path")]);
    target.ok(&["import", "contacts", contacts_file.to_str().expect("path")]);
    assert_eq!(target.ok(&["export", "orgs"]), orgs);
    assert_eq!(target.ok(&["export", "contacts"]), contacts);
    // Running it again refuses every row and changes nothing.
    let again = target.run(&["import", "contacts", contacts_file.to_str().expect("path")]);
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(target.ok(&["export", "contacts"]), contacts);
}

fn a_bad_csv_reports_every_bad_line_and_changes_nothing(backend: Backend) {
    let env = Env::new(backend).with_acme();
    let file = env.path().join("contacts.csv");
    std::fs::write(
        &file,
        "roles,email,organization\n\
         support,new@acme.example,Acme\n\
         support,not-an-address,Acme\n\
         wizard,x@acme.example,Acme\n\
         support,y@acme.example,Nowhere\n\
         support,jane@acme.example,Acme\n\
         admin,new@acme.example,Acme\n",
    )
    .expect("write");
    let path = file.to_str().expect("path");
    let before = env.ok(&["export", "contacts"]);
    let out = env.run(&["import", "contacts", path]);
    assert_eq!(out.status.code(), Some(1));
    let report = String::from_utf8_lossy(&out.stderr);
    for (line, why) in [
        (3, "not an email address"),
        (4, "unknown role `wizard`"),
        (5, "unknown organization `Nowhere`"),
        (6, "Jane Doe"),
        (7, "in the file twice"),
    ] {
        assert!(
            report
                .lines()
                .any(|l| l.contains(&format!("contacts.csv:{line}:")) && l.contains(why)),
            "line {line} ({why}): {report}"
        );
    }
    assert_eq!(env.ok(&["export", "contacts"]), before);
    let dry = env.run(&["import", "contacts", path, "--dry-run", "--partial"]);
    assert_eq!(dry.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&dry.stdout).contains("would import 1 contacts"));
    assert_eq!(env.ok(&["export", "contacts"]), before);
    let partial = env.run(&["import", "contacts", path, "--partial"]);
    assert_eq!(partial.status.code(), Some(1));
    assert!(env.ok(&["export", "contacts"]).contains("new@acme.example"));
}

fn a_parent_organizations_admin_follows_up_a_sharing_childs_tickets(backend: Backend) {
    let env = acme_and_labs(backend, &["--shares-tickets"]);
    env.ok(&[
        "contact",
        "add",
        "boss@acme.test",
        "--org",
        "Acme",
        "--role",
        "admin",
    ]);
    env.ok(&["contact", "add", "clerk@acme.test", "--org", "Acme"]);
    env.ok(&["contact", "add", "lab@labs.acme.test", "--org", "Acme Labs"]);
    let first = env.ingest(&Msg::new("lab@labs.acme.test", "Centrifuge", "c1@labs").bytes());
    let ticket = ticket_of(&first);
    let tag = format!("Re: [Support #{ticket}] Centrifuge");
    let boss = env.ingest(&Msg::new("boss@acme.test", &tag, "c2@acme").bytes());
    assert_eq!(ticket_of(&boss), ticket, "the parent's admin joins: {boss}");
    let clerk = env.ingest(&Msg::new("clerk@acme.test", &tag, "c3@acme").bytes());
    assert_ne!(
        ticket_of(&clerk),
        ticket,
        "a parent's plain contact does not: {clerk}"
    );
}
