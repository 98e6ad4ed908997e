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
use crate::mail::verp;
use crate::outage::Outage;
use crate::store::outbox::{self, AttemptResult, Due};
use crate::store::{Store, StoreError, now};

/// Messages taken from the outbox at a time.
const BATCH: i64 = 100;
/// Deliveries under way at once (the SMTP transport keeps up to as many idle connections).
pub(crate) const PARALLEL: usize = 4;
/// Longest wait between two attempts for one message.
const MAX_RETRY_DELAY_SECS: i64 = 6 * 3600;
/// Longest wait while delivery is blocked by something the operator can fix,
/// so that mail moves soon after the fix.
const MAX_BLOCKED_DELAY_SECS: i64 = 300;

pub struct OutboxSender {
    store: Store,
    transport: Transport,
    settings: OutboxSettings,
    /// Signs each notification's return path (see [`crate::mail::verp`]).
    bounce_key: Vec<u8>,
    /// Woken when a notification is enqueued, so it goes out at once.
    wake: Arc<Notify>,
    shutdown: CancellationToken,
    /// Results of deliveries whose recording failed (a full disk): recorded
    /// before anything else is sent, so that nothing goes out twice.
    unrecorded: tokio::sync::Mutex<Vec<(i64, AttemptResult)>>,
}

impl OutboxSender {
    /// A sender for the outbox of `store`, through `transport`. `wake` is
    /// notified when something is enqueued; `shutdown` ends [`OutboxSender::run`].
    pub fn new(
        store: Store,
        transport: Transport,
        settings: OutboxSettings,
        bounce_key: Vec<u8>,
        wake: Arc<Notify>,
        shutdown: CancellationToken,
    ) -> OutboxSender {
        OutboxSender {
            store,
            transport,
            settings,
            bounce_key,
            wake,
            shutdown,
            unrecorded: tokio::sync::Mutex::new(Vec::new()),
        }
    }

    /// Delivers until shutdown; an unavailable store is retried with backoff.
    pub async fn run(self) {
        async {
            let mut outage = Outage::default();
            while !self.shutdown.is_cancelled() {
                let wait = match self.deliver_due().await {
                    // Nothing due: look again in a second. Messages queued by another
                    // process (`ticketd ingest` from an MTA, `ticket set-status`)
                    // wake no one here.
                    Ok(0) => {
                        outage.recovered();
                        Duration::from_secs(1)
                    }
                    Ok(_) => {
                        outage.recovered();
                        Duration::ZERO
                    }
                    Err(e) => {
                        let wait =
                            Duration::from_secs(2u64.saturating_pow(outage.failures().min(7) + 1));
                        outage.failed(&format!("the outbox is unavailable: {e}"), wait);
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
    /// Results that cannot be recorded are kept and recorded first next time.
    pub async fn deliver_due(&self) -> Result<usize, StoreError> {
        let mut unrecorded = self.unrecorded.lock().await;
        if !unrecorded.is_empty() {
            self.record(&unrecorded).await?;
            unrecorded.clear();
        }
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
        let results: Vec<(i64, Delivery, AttemptResult)> = futures::stream::iter(attempts)
            .buffered(PARALLEL)
            .collect()
            .await;
        let mut blocked = None;
        for (item, (_, delivery, result)) in due.iter().zip(&results) {
            match (delivery, result) {
                (_, AttemptResult::Sent { .. }) => {
                    info!(id = item.id, recipient = %item.recipient, "notification sent")
                }
                (Delivery::Blocked(reason), _) => {
                    blocked.get_or_insert(reason);
                }
                (_, AttemptResult::Retry { error, .. }) => {
                    warn!(id = item.id, recipient = %item.recipient, %error, "delivery failed; will retry")
                }
                (_, AttemptResult::Failed { error }) => {
                    error!(id = item.id, recipient = %item.recipient, %error, "delivery failed for good")
                }
            }
        }
        if let Some(reason) = blocked {
            let waiting = results
                .iter()
                .filter(|(_, d, _)| matches!(d, Delivery::Blocked(_)))
                .count();
            error!(
                waiting,
                "notifications cannot be delivered: {reason}; they are kept and retried (never failed) \
                 until this is fixed"
            );
        }
        let results: Vec<(i64, AttemptResult)> = results
            .into_iter()
            .map(|(id, _, result)| (id, result))
            .collect();
        if let Err(e) = self.record(&results).await {
            *unrecorded = results;
            return Err(e);
        }
        Ok(due.len())
    }

    async fn record(&self, results: &[(i64, AttemptResult)]) -> Result<(), StoreError> {
        let mut tx = self.store.begin().await?;
        let at = now();
        for (id, result) in results {
            outbox::record_attempt(&mut tx, *id, result, at).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn attempt(&self, item: &Due) -> (i64, Delivery, AttemptResult) {
        let return_path = verp::return_path(&item.mail_from, item.id, &self.bounce_key);
        let delivery = self
            .transport
            .deliver(&return_path, &item.recipient, &item.bytes)
            .await;
        let result = judge(&self.settings, item, &delivery, now());
        (item.id, delivery, result)
    }
}

/// What an attempt means for the message at time `t`: sent, failed for good,
/// or tried again later. Blocked delivery never fails, however old the message.
fn judge(settings: &OutboxSettings, item: &Due, delivery: &Delivery, t: i64) -> AttemptResult {
    match delivery {
        Delivery::Sent(reply) => AttemptResult::Sent {
            reply: reply.clone(),
        },
        Delivery::Permanent(error) => AttemptResult::Failed {
            error: error.clone(),
        },
        Delivery::Blocked(error) => AttemptResult::Retry {
            next_attempt_at: t + retry_delay(settings.retry_base_secs, item.attempts)
                .min(MAX_BLOCKED_DELAY_SECS),
            error: error.clone(),
        },
        Delivery::Temporary(error) => {
            let max_age =
                i64::try_from(settings.max_age_hours.saturating_mul(3600)).unwrap_or(i64::MAX);
            if t.saturating_sub(item.created_at) >= max_age {
                AttemptResult::Failed {
                    error: format!(
                        "gave up after {} attempts over {} hours: {error}",
                        item.attempts + 1,
                        settings.max_age_hours
                    ),
                }
            } else {
                AttemptResult::Retry {
                    next_attempt_at: t + retry_delay(settings.retry_base_secs, item.attempts),
                    error: error.clone(),
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

    fn due(created_at: i64, attempts: i64) -> Due {
        Due {
            id: 1,
            mail_from: "support@example.com".into(),
            recipient: "jane@acme.example".into(),
            bytes: Vec::new(),
            attempts,
            created_at,
        }
    }

    #[test]
    fn blocked_delivery_waits_however_old_the_message_and_temporary_gives_up() {
        let settings = OutboxSettings {
            retry_base_secs: 60,
            max_age_hours: 48,
            maildir: "sent".into(),
        };
        let now = 1_000_000_000;
        let old = due(now - 100 * 3600, 30);
        let blocked = Delivery::Blocked("535 5.7.8 authentication failed".into());
        match judge(&settings, &old, &blocked, now) {
            AttemptResult::Retry {
                next_attempt_at, ..
            } => assert!(next_attempt_at - now <= MAX_BLOCKED_DELAY_SECS),
            other => panic!("a blocked delivery failed: {other:?}"),
        }
        let temporary = Delivery::Temporary("451 4.3.0 try later".into());
        assert!(matches!(
            judge(&settings, &old, &temporary, now),
            AttemptResult::Failed { .. }
        ));
        assert!(matches!(
            judge(&settings, &due(now, 0), &temporary, now),
            AttemptResult::Retry { .. }
        ));
    }

    #[test]
    fn retry_delay_doubles_up_to_six_hours() {
        assert_eq!(retry_delay(60, 0), 60);
        assert_eq!(retry_delay(60, 1), 120);
        assert_eq!(retry_delay(60, 3), 480);
        assert_eq!(retry_delay(60, 40), MAX_RETRY_DELAY_SECS);
    }
}
