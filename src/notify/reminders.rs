//! Reminders: tickets awaiting the customer for `notify.reminder_after_hours` get one reminder per wait.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::Notifier;
use crate::store::{Store, StoreError, now, tickets};

/// How often the scheduler looks for tickets to remind about.
const EVERY: Duration = Duration::from_secs(300);

pub struct Reminders {
    pub store: Store,
    pub notifier: Notifier,
    pub after_hours: u64,
    pub wake_outbox: Arc<Notify>,
    pub shutdown: CancellationToken,
}

impl Reminders {
    /// Reminds customers of tickets pending longer than `after_hours`, once
    /// each, checking every few minutes until `shutdown`; a store failure is
    /// logged and tried again at the next check.
    pub async fn run(self) {
        if self.after_hours == 0 {
            return;
        }
        loop {
            match self.send_due().await {
                Ok(0) => {}
                Ok(n) => {
                    info!(tickets = n, "reminders queued");
                    self.wake_outbox.notify_one();
                }
                Err(e) => warn!(error = %e, "cannot send reminders now"),
            }
            tokio::select! {
                _ = tokio::time::sleep(EVERY) => {}
                _ = self.shutdown.cancelled() => return,
            }
        }
    }

    /// Queues reminders for every ticket that has waited long enough; returns how many.
    pub async fn send_due(&self) -> Result<usize, StoreError> {
        let before =
            now() - i64::try_from(self.after_hours.saturating_mul(3600)).unwrap_or(i64::MAX / 2);
        let due = {
            let mut conn = self.store.conn().await?;
            tickets::due_for_reminder(&mut conn, before, 100).await?
        };
        for ticket_id in &due {
            let mut tx = self.store.begin().await?;
            if let Some(ticket) = tickets::get(&mut tx, *ticket_id).await? {
                self.notifier.reminder(&mut tx, &ticket).await?;
            }
            tickets::mark_reminded(&mut tx, *ticket_id, now()).await?;
            tx.commit().await?;
        }
        Ok(due.len())
    }
}
