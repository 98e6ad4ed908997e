//! `ticketd parse`: shows what the pipeline sees in one message.

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;
use ticketd::ingest::verify::Verifier;
use ticketd::mail::auth::Verdict;
use ticketd::mail::{self, Classification, Mailbox};

use super::error::CliError;

#[derive(Debug, Args)]
pub struct ParseArgs {
    /// Print JSON instead of a readable summary.
    #[arg(long)]
    pub json: bool,
    /// The message file (RFC 5322); `-` reads standard input.
    pub file: PathBuf,
}

#[derive(Serialize)]
struct AttachmentView<'a> {
    filename: Option<&'a str>,
    content_type: &'a str,
    size: usize,
    inline: bool,
}

#[derive(Serialize)]
struct ParseView<'a> {
    from: Option<&'a Mailbox>,
    to: &'a [Mailbox],
    cc: &'a [Mailbox],
    subject: Option<&'a str>,
    message_id: Option<&'a str>,
    in_reply_to: Option<&'a str>,
    references: &'a [String],
    text: &'a str,
    visible_text: &'a str,
    html: Option<&'a str>,
    attachments: Vec<AttachmentView<'a>>,
    classification: Classification,
    /// What proves the From address, as `[agents] trust` checks an agent's mail.
    authentication: Verdict,
    /// Why the MIME structure could not be read (the message would be held).
    #[serde(skip_serializing_if = "Option::is_none")]
    parse_failure: Option<&'a str>,
}

pub fn run(args: ParseArgs, config_file: Option<&std::path::Path>) -> Result<(), CliError> {
    let raw = super::read_input(&args.file).map_err(|e| CliError::NoInput(e.to_string()))?;
    if let Err(e) = mail::parse::check_is_message(&raw) {
        return Err(CliError::NotAMessage(format!(
            "{}: not an email message: {e}",
            args.file.display()
        )));
    }
    let settings = super::load_settings(config_file, false).map_err(CliError::Reported)?;
    let parsed = mail::parse(&raw);
    let classification = mail::classify::classify(&parsed, &settings.own_addresses());
    let verifier = Verifier::new(&settings.agents);
    let authentication = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(verifier.verdict(&parsed, &raw)),
        Err(e) => {
            return Err(CliError::Internal(format!(
                "cannot start the async runtime: {e}"
            )));
        }
    };
    let view = ParseView {
        from: parsed.from.as_ref(),
        to: &parsed.to,
        cc: &parsed.cc,
        subject: parsed.subject.as_deref(),
        message_id: parsed.message_id.as_deref(),
        in_reply_to: parsed.in_reply_to.first().map(String::as_str),
        references: &parsed.references,
        text: &parsed.text,
        visible_text: &parsed.visible_text,
        html: parsed.html.as_deref(),
        attachments: parsed
            .attachments
            .iter()
            .map(|a| AttachmentView {
                filename: a.filename.as_deref(),
                content_type: &a.content_type,
                size: a.content.len(),
                inline: a.inline,
            })
            .collect(),
        classification,
        authentication,
        parse_failure: parsed.parse_failure.as_deref(),
    };
    if args.json {
        super::print_json(&view)?;
    } else {
        print_summary(&view);
    }
    Ok(())
}

fn print_summary(v: &ParseView<'_>) {
    let who = |m: &Mailbox| match &m.name {
        Some(n) => format!("{n} <{}>", m.address),
        None => m.address.clone(),
    };
    let list = |l: &[Mailbox]| l.iter().map(who).collect::<Vec<_>>().join(", ");
    println!(
        "From:           {}",
        v.from.map(who).unwrap_or_else(|| "(none)".into())
    );
    println!("To:             {}", list(v.to));
    if !v.cc.is_empty() {
        println!("Cc:             {}", list(v.cc));
    }
    println!("Subject:        {}", v.subject.unwrap_or("(none)"));
    println!("Message-ID:     {}", v.message_id.unwrap_or("(none)"));
    if let Some(irt) = v.in_reply_to {
        println!("In-Reply-To:    {irt}");
    }
    println!("Classification: {}", v.classification.as_str());
    println!(
        "Sender proven:  {} ({})",
        if v.authentication.trusted {
            "yes"
        } else {
            "no"
        },
        v.authentication.reason
    );
    if let Some(failure) = v.parse_failure {
        println!("Not readable:   {failure}");
    }
    for a in &v.attachments {
        println!(
            "Attachment:     {} ({}, {} bytes{})",
            a.filename.unwrap_or("(unnamed)"),
            a.content_type,
            a.size,
            if a.inline { ", inline" } else { "" }
        );
    }
    println!("\n--- visible reply ---\n{}", v.visible_text);
}
