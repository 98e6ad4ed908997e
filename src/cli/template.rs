//! `ticketd template`: preview a notification as a ticket's customer would get it.

use std::process::ExitCode;

use clap::Subcommand;
use ticketd::notify::templates::EVENTS;
use ticketd::notify::{Notifier, OpenError, PreviewError};

use super::{Ctx, exit, fail};

#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// Render one event's template for a ticket, without sending anything.
    Render {
        /// The event: ticket_received, agent_reply, status_changed, message_held, reminder,
        /// agent_new_ticket, agent_customer_reply, agent_note or commands_rejected.
        #[arg(value_parser = EVENTS)]
        event: String,
        /// The ticket whose data fills the template.
        #[arg(long)]
        ticket: i64,
        /// Language (default: the requester's, the organization's, then notify.default_language).
        #[arg(long)]
        lang: Option<String>,
        /// Print the HTML part instead of the text part.
        #[arg(long)]
        html: bool,
    },
}

pub async fn run(ctx: &Ctx, cmd: TemplateCommand) -> ExitCode {
    let TemplateCommand::Render {
        event,
        ticket,
        lang,
        html,
    } = cmd;
    let (store, mut conn) = match ctx.connection().await {
        Ok(opened) => opened,
        Err(code) => return code,
    };
    let notifier = match Notifier::open(&store, ctx.settings.clone()).await {
        Ok(n) => n,
        Err(OpenError::Store(e)) => return fail("cannot load the queues", &e),
        Err(OpenError::Templates(e)) => {
            eprintln!("ticketd: {e}");
            return ExitCode::from(exit::CONFIG);
        }
    };
    if let Some(l) = &lang
        && !notifier.templates().languages().any(|known| known == l)
    {
        let known: Vec<&str> = notifier.templates().languages().collect();
        eprintln!(
            "ticketd: no templates in language `{l}` (available: {})",
            known.join(", ")
        );
        return ExitCode::from(exit::USAGE);
    }
    match notifier
        .preview(&mut conn, &event, ticket, lang.as_deref())
        .await
    {
        Ok(rendered) => {
            println!("Subject: {}\n", rendered.subject);
            print!("{}", if html { &rendered.html } else { &rendered.text });
            ExitCode::SUCCESS
        }
        Err(PreviewError::Store(e)) => fail("cannot render", &e),
        Err(e) => {
            eprintln!("ticketd: {e}");
            ExitCode::FAILURE
        }
    }
}
