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
pub const PARALLEL: usize = 4;
/// Longest wait between two attempts for one message.
const MAX_RETRY_DELAY_SECS: i64 = 6 * 3600;
/// Longest wait while delivery is blocked by something the operator can fix,
/// so that mail moves soon after the fix.
const MAX_BLOCKED_DELAY_SECS: i64 = 300;

/// What one round of [`OutboxSender::deliver_due`] did.
#[derive(Debug, Default)]
pub struct Round {
    /// Notifications tried.
    pub attempted: usize,
    /// Of those, accepted by the server.
    pub sent: usize,
    /// Why delivery is blocked, when an attempt showed it is.
    pub blocked: Option<String>,
}

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

    /// Delivers until shutdown; an unavailable store, and delivery blocked by
    /// something the operator must fix, are retried with backoff and told once.
    pub async fn run(self) {
        async {
            let mut store_outage = Outage::new(Duration::from_secs(2), Duration::from_secs(256));
            let mut blocked = Outage::new(
                Duration::from_secs(self.settings.retry_base_secs.max(1)),
                Duration::from_secs(MAX_BLOCKED_DELAY_SECS as u64),
            );
            while !self.shutdown.is_cancelled() {
                let wait = match self.deliver_due().await {
                    Ok(Round {
                        blocked: Some(reason),
                        ..
                    }) => {
                        store_outage.recovered();
                        blocked.failed(&format!(
                            "notifications cannot be delivered: {reason}; they are kept and \
                             retried, never failed, until this is fixed"
                        ))
                    }
                    // Nothing due: look again in a second. Messages queued by another
                    // process (`ticketd ingest` from an MTA, `ticket set-status`)
                    // wake no one here.
                    Ok(round) => {
                        store_outage.recovered();
                        if round.sent > 0 {
                            blocked.recovered();
                        }
                        if round.attempted == 0 {
                            Duration::from_secs(1)
                        } else {
                            Duration::ZERO
                        }
                    }
                    Err(e) => store_outage.failed(&format!("the outbox is unavailable: {e}")),
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

    /// Delivers one batch of due messages, up to [`PARALLEL`] at a time. Once
    /// one attempt shows delivery blocked (a refused password, no server),
    /// no further attempt starts: the rest wait for the next round rather than
    /// each trying its own login. Results that cannot be recorded are kept
    /// and recorded first next time.
    pub async fn deliver_due(&self) -> Result<Round, StoreError> {
        let mut unrecorded = self.unrecorded.lock().await;
        if !unrecorded.is_empty() {
            self.record(&unrecorded).await?;
            unrecorded.clear();
        }
        let due = {
            let mut conn = self.store.conn().await?;
            outbox::due(&mut conn, now(), BATCH).await?
        };
        let mut round = Round::default();
        if due.is_empty() {
            return Ok(round);
        }
        if let Transport::Smtp(smtp) = &self.transport {
            smtp.refresh().await;
        }
        let mut waiting = due.iter();
        let mut running = futures::stream::FuturesUnordered::new();
        running.extend(
            waiting
                .by_ref()
                .take(PARALLEL)
                .map(|item| self.attempt(item)),
        );
        let mut results: Vec<(i64, AttemptResult)> = Vec::with_capacity(due.len());
        while let Some((item, delivery, result)) = running.next().await {
            match (&delivery, &result) {
                (_, AttemptResult::Sent { .. }) => {
                    round.sent += 1;
                    info!(id = item.id, recipient = %item.recipient, "notification sent")
                }
                (Delivery::Blocked(reason), _) => {
                    round.blocked.get_or_insert_with(|| reason.clone());
                }
                (_, AttemptResult::Retry { error, .. }) => {
                    warn!(id = item.id, recipient = %item.recipient, %error, "delivery failed; will retry")
                }
                (_, AttemptResult::Failed { error }) => {
                    error!(id = item.id, recipient = %item.recipient, %error, "delivery failed for good")
                }
            }
            results.push((item.id, result));
            if round.blocked.is_none()
                && let Some(next) = waiting.next()
            {
                running.push(self.attempt(next));
            }
        }
        round.attempted = results.len();
        if let Err(e) = self.record(&results).await {
            *unrecorded = results;
            return Err(e);
        }
        Ok(round)
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

    async fn attempt<'a>(&self, item: &'a Due) -> (&'a Due, Delivery, AttemptResult) {
        let return_path = verp::return_path(&item.mail_from, item.id, &self.bounce_key);
        let delivery = self
            .transport
            .deliver(&return_path, &item.recipient, &item.bytes)
            .await;
        let result = judge(&self.settings, item, &delivery, now());
        (item, delivery, result)
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
