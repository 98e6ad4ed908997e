//! Delivery reports: which notification of ours one is about, and what it proves.
//!
//! Anybody can write a report that quotes one of our Message-IDs. Only a report
//! sent to a notification's own return path (see [`crate::mail::verp`]) with the
//! right MAC proves that this notification failed, and then it flags only that
//! notification's recipient. Any other report about our mail is recorded on its
//! ticket and changes nothing. Agents are never flagged by mail.

use crate::mail::parse::DeliveryReport;
use crate::mail::{InboundMail, verp};
use crate::store::outbox::{self, Notification};
use crate::store::{Conn, StoreError, directory};

use super::decide::BouncedMail;

/// Finds the notification a delivery report is about: proven by a signed
/// return path among the recipients, else merely named by a Message-ID.
pub async fn find(
    conn: &mut Conn,
    mail: &InboundMail,
    key: &[u8],
) -> Result<Option<BouncedMail>, StoreError> {
    for address in return_path_candidates(mail) {
        if let Some(id) = verp::verify(address, key)
            && let Some(notification) = outbox::notification(conn, id).await?
        {
            let to_agent = notification.kind.for_agents()
                || directory::agent_by_email(conn, &notification.recipient)
                    .await?
                    .is_some();
            return Ok(Some(proven(
                &notification,
                &mail.signals.delivery_report,
                to_agent,
            )));
        }
    }
    let report = &mail.signals.delivery_report;
    let named = report
        .message_ids
        .iter()
        .chain(mail.in_reply_to.iter())
        .chain(mail.references.iter());
    for id in named {
        if let Some(notification) = outbox::by_message_id(conn, id).await? {
            return Ok(Some(unproven(&notification)));
        }
    }
    Ok(None)
}

/// Where a report to one of our return paths shows it: the envelope recipient
/// the MTA recorded (Delivered-To, X-Original-To), else To and Cc.
fn return_path_candidates(mail: &InboundMail) -> impl Iterator<Item = &str> {
    mail.delivered_to
        .iter()
        .map(String::as_str)
        .chain(mail.to.iter().map(|m| m.address.as_str()))
        .chain(mail.cc.iter().map(|m| m.address.as_str()))
}

/// A report that reached `notification`'s signed return path: a permanent
/// failure (`Action: failed`, or a 5.x.x status when there is no action)
/// flags its one recipient, unless an agent; a delay, or a report that says
/// neither, flags nobody.
pub fn proven(notification: &Notification, report: &DeliveryReport, to_agent: bool) -> BouncedMail {
    let failed = match report.action.as_deref() {
        Some(action) => action == "failed",
        None => report.status.as_deref().is_some_and(|s| s.starts_with('5')),
    };
    BouncedMail {
        ticket_id: notification.ticket_id,
        outbox_id: Some(notification.id),
        failed_recipients: if failed && !to_agent {
            vec![notification.recipient.clone()]
        } else {
            Vec::new()
        },
    }
}

/// A report that names our mail but did not reach its return path: kept on the
/// ticket, proves nothing.
pub fn unproven(notification: &Notification) -> BouncedMail {
    BouncedMail {
        ticket_id: notification.ticket_id,
        outbox_id: None,
        failed_recipients: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notification(kind: &str, recipient: &str) -> Notification {
        Notification {
            id: 42,
            ticket_id: Some(7),
            kind: outbox::Notice::try_from(kind).expect("a notice"),
            recipient: recipient.into(),
        }
    }

    fn report(action: Option<&str>, recipients: &[&str]) -> DeliveryReport {
        DeliveryReport {
            message_ids: Vec::new(),
            recipients: recipients.iter().map(|r| r.to_string()).collect(),
            action: action.map(str::to_string),
            status: None,
        }
    }

    #[test]
    fn a_proven_failure_flags_only_that_notifications_recipient() {
        let sent = notification("ticket_received", "alice@acme.test");
        // The report lists more addresses than the notification went to: they are ignored.
        let verdict = proven(
            &sent,
            &report(Some("failed"), &["alice@acme.test", "agent@example.com"]),
            false,
        );
        assert_eq!(verdict.failed_recipients, vec!["alice@acme.test"]);
        assert_eq!(verdict.ticket_id, Some(7));
        assert_eq!(verdict.outbox_id, Some(42));
    }

    #[test]
    fn a_delay_flags_nobody() {
        let sent = notification("ticket_received", "alice@acme.test");
        let verdict = proven(&sent, &report(Some("delayed"), &["alice@acme.test"]), false);
        assert!(verdict.failed_recipients.is_empty());
    }

    #[test]
    fn a_report_that_says_neither_failed_nor_a_permanent_status_flags_nobody() {
        let sent = notification("ticket_received", "alice@acme.test");
        let mut unclear = report(None, &["alice@acme.test"]);
        assert!(proven(&sent, &unclear, false).failed_recipients.is_empty());
        unclear.status = Some("4.4.7".into());
        assert!(proven(&sent, &unclear, false).failed_recipients.is_empty());
        unclear.status = Some("5.1.1".into());
        assert_eq!(
            proven(&sent, &unclear, false).failed_recipients,
            vec!["alice@acme.test"]
        );
    }

    #[test]
    fn agents_are_never_flagged_by_mail() {
        let sent = notification("agent_new_ticket", "agent@example.com");
        let verdict = proven(&sent, &report(Some("failed"), &[]), true);
        assert!(verdict.failed_recipients.is_empty());
        assert_eq!(verdict.ticket_id, Some(7), "the report is still recorded");
    }

    #[test]
    fn an_unproven_report_is_recorded_and_flags_nobody() {
        let sent = notification("ticket_received", "alice@acme.test");
        let verdict = unproven(&sent);
        assert!(verdict.failed_recipients.is_empty());
        assert_eq!(verdict.outbox_id, None);
        assert_eq!(verdict.ticket_id, Some(7));
    }
}
