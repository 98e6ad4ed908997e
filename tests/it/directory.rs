//! The operator's directory: organizations and their domains, contacts, the audit log.

use crate::on_both_backends;
use crate::support::{Backend, Env, Msg, ticket_of};

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

on_both_backends!(the_most_specific_domain_names_an_unknown_senders_organization);
