//! The operator's directory: organizations and their domains, contacts, the audit log.

use crate::on_both_backends;
use crate::support::{Backend, Env, Msg, OPERATOR, ticket_of};

fn the_most_specific_domain_names_an_unknown_senders_organization(backend: Backend) {
    let env = Env::new(backend);
    env.ok(&["org", "add", "Acme", "--domain", "acme.test"]);
    env.ok(&[
        "org",
        "add",
        "Acme Labs",
        "--domain",
        "labs.acme.test",
        "--parent",
        "Acme",
    ]);
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
);
