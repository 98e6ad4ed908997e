//! `ticketd template`: preview a notification as a ticket's customer would get it.

use clap::Subcommand;
use ticketd::notify::templates::EVENTS;
use ticketd::notify::{Notifier, PreviewError};

use super::Ctx;
use super::error::CliError;

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

/// Renders a template for a ticket.
pub async fn run(ctx: &Ctx, cmd: TemplateCommand) -> Result<(), CliError> {
    let TemplateCommand::Render {
        event,
        ticket,
        lang,
        html,
    } = cmd;
    let (store, mut conn) = ctx.connection().await?;
    let notifier = Notifier::open(&store, ctx.settings.clone()).await?;
    if let Some(l) = &lang
        && !notifier.templates().languages().any(|known| known == l)
    {
        let known: Vec<&str> = notifier.templates().languages().collect();
        return Err(CliError::Usage(format!(
            "no templates in language `{l}` (available: {})",
            known.join(", ")
        )));
    }
    let rendered = notifier
        .preview(&mut conn, &event, ticket, lang.as_deref())
        .await
        .map_err(|e| match e {
            PreviewError::Store(e) => CliError::store("cannot render")(e),
            e => CliError::Refused(e.to_string()),
        })?;
    println!("Subject: {}\n", rendered.subject);
    print!("{}", if html { &rendered.html } else { &rendered.text });
    Ok(())
}
