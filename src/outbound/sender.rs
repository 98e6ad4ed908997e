//! The outbox sender: delivers due notifications, retries temporary failures with
//! exponential backoff up to `outbox.max_age_hours`, records every attempt.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, info_span, warn};

use super::{Delivery, Transport};
use crate::config::OutboxSettings;
use crate::store::outbox::{self, AttemptResult, Due};
use crate::store::{Store, StoreError, now};

/// Messages taken from the outbox at a time.
const BATCH: i64 = 100;
/// Deliveries under way at once (the SMTP transport keeps up to as many idle connections).
pub(crate) const PARALLEL: usize = 4;
/// Longest wait between two attempts for one message.
const MAX_RETRY_DELAY_SECS: i64 = 6 * 3600;

pub struct OutboxSender {
    pub store: Store,
    pub transport: Transport,
    pub settings: OutboxSettings,
    /// Woken when a notification is enqueued, so it goes out at once.
    pub wake: Arc<Notify>,
    pub shutdown: CancellationToken,
}

impl OutboxSender {
    pub async fn run(self) {
        async {
            let mut failures: u32 = 0;
            while !self.shutdown.is_cancelled() {
                let wait = match self.deliver_due().await {
                    // Nothing due: look again in a second. Messages queued by another
                    // process (`ticketd ingest` from an MTA, `ticket set-status`)
                    // wake no one here.
                    Ok(0) => {
                        failures = 0;
                        Duration::from_secs(1)
                    }
                    Ok(_) => Duration::ZERO,
                    Err(e) => {
                        failures = failures.saturating_add(1);
                        let wait = Duration::from_secs(2u64.saturating_pow(failures.min(8)));
                        warn!(error = %e, "outbox unavailable; retrying in {} s", wait.as_secs());
                        wait
                    }
                };
                if wait.is_zero() {
                    continue;
                }
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = self.wake.notified() => {}
                    _ = self.shutdown.cancelled() => break,
                }
            }
            info!("stopped");
        }
        .instrument(info_span!("outbox"))
        .await
    }

    /// Delivers one batch of due messages; returns how many were attempted.
    pub async fn deliver_due(&self) -> Result<usize, StoreError> {
        let due = {
            let mut conn = self.store.conn().await?;
            outbox::due(&mut conn, now(), BATCH).await?
        };
        if due.is_empty() {
            return Ok(0);
        }
        if let Transport::Smtp(smtp) = &self.transport {
            smtp.refresh().await;
        }
        let attempts: Vec<_> = due.iter().map(|item| self.attempt(item)).collect();
        let results: Vec<(i64, AttemptResult)> = futures::stream::iter(attempts)
            .buffered(PARALLEL)
            .collect()
            .await;
        let mut tx = self.store.begin().await?;
        let at = now();
        for (id, result) in &results {
            outbox::record_attempt(&mut tx, *id, result, at).await?;
        }
        tx.commit().await?;
        for (item, (_, result)) in due.iter().zip(&results) {
            match result {
                AttemptResult::Sent { .. } => {
                    info!(id = item.id, recipient = %item.recipient, "notification sent")
                }
                AttemptResult::Retry { error, .. } => {
                    warn!(id = item.id, recipient = %item.recipient, %error, "delivery failed; will retry")
                }
                AttemptResult::Failed { error } => {
                    error!(id = item.id, recipient = %item.recipient, %error, "delivery failed for good")
                }
            }
        }
        Ok(results.len())
    }

    async fn attempt(&self, item: &Due) -> (i64, AttemptResult) {
        let delivery = self
            .transport
            .deliver(&item.mail_from, &item.recipient, &item.bytes)
            .await;
        (item.id, self.judge(item, delivery))
    }

    fn judge(&self, item: &Due, delivery: Delivery) -> AttemptResult {
        let t = now();
        match delivery {
            Delivery::Sent(reply) => AttemptResult::Sent { reply },
            Delivery::Permanent(error) => AttemptResult::Failed { error },
            Delivery::Temporary(error) => {
                let max_age = i64::try_from(self.settings.max_age_hours.saturating_mul(3600))
                    .unwrap_or(i64::MAX);
                if t.saturating_sub(item.created_at) >= max_age {
                    AttemptResult::Failed {
                        error: format!(
                            "gave up after {} attempts over {} hours: {error}",
                            item.attempts + 1,
                            self.settings.max_age_hours
                        ),
                    }
                } else {
                    AttemptResult::Retry {
                        next_attempt_at: t + retry_delay(
                            self.settings.retry_base_secs,
                            item.attempts,
                        ),
                        error,
                    }
                }
            }
        }
    }
}

/// `base`, `2 × base`, `4 × base`… after the 1st, 2nd, 3rd failure; at most six hours.
pub fn retry_delay(base_secs: u64, attempts_so_far: i64) -> i64 {
    let base = i64::try_from(base_secs)
        .unwrap_or(MAX_RETRY_DELAY_SECS)
        .max(1);
    let factor = 1i64
        .checked_shl(attempts_so_far.clamp(0, 30) as u32)
        .unwrap_or(i64::MAX);
    base.saturating_mul(factor).min(MAX_RETRY_DELAY_SECS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_doubles_up_to_six_hours() {
        assert_eq!(retry_delay(60, 0), 60);
        assert_eq!(retry_delay(60, 1), 120);
        assert_eq!(retry_delay(60, 3), 480);
        assert_eq!(retry_delay(60, 40), MAX_RETRY_DELAY_SECS);
    }
}
