//! One clear log line per outage, and one retry policy: a source, the outbox
//! sender or the daemon that keeps failing the same way (a full disk, a wrong
//! password) says so once, retries quietly with exponential backoff (the
//! `backon` crate, with jitter), and says when it works again.

use std::time::{Duration, Instant};

use backon::BackoffBuilder;
use tracing::{debug, error, info, warn};

/// While an outage lasts, how often it is mentioned again above debug level.
const REMINDER: Duration = Duration::from_secs(600);

/// The retry policy: waits doubling from `min` up to `max`, each with a random
/// part (so that many daemons do not retry in step), never giving up.
pub fn backoff(min: Duration, max: Duration) -> backon::ExponentialBackoff {
    backon::ExponentialBuilder::default()
        .with_min_delay(min)
        .with_max_delay(max.max(min))
        .with_jitter()
        .without_max_times()
        .build()
}

/// What one worker (a mailbox, a Maildir, the outbox) knows of its current outage.
#[derive(Debug)]
pub struct Outage {
    since: Option<Instant>,
    failures: u32,
    /// When the outage was last logged above debug level.
    told: Option<Instant>,
    min: Duration,
    max: Duration,
    backoff: backon::ExponentialBackoff,
}

impl Outage {
    /// No outage yet; retries will wait from `min` up to `max` (see [`backoff`]).
    pub fn new(min: Duration, max: Duration) -> Outage {
        Outage {
            since: None,
            failures: 0,
            told: None,
            min,
            max,
            backoff: backoff(min, max),
        }
    }

    /// Logs a failure (see [`Outage::failed_waiting`]) and returns how long to
    /// wait before the next try, by the retry policy.
    pub fn failed(&mut self, error: &str) -> Duration {
        let wait = self.backoff.next().unwrap_or(self.max);
        self.failed_waiting(error, wait);
        wait
    }

    /// Starts the waits from `min` again, for a failure after a long spell
    /// of working (an IMAP session that ran for a while and then dropped).
    pub fn restart_backoff(&mut self) {
        self.backoff = backoff(self.min, self.max);
    }

    /// Logs a failure that waits `retry_in` whatever the policy (a wrong
    /// password is not tried again every second): as an error when it starts
    /// an outage, as a warning every ten minutes while it lasts (whatever its
    /// words: a full disk fails in several ways), quietly (debug) otherwise.
    /// Returns how many failures in a row this makes.
    pub fn failed_waiting(&mut self, error: &str, retry_in: Duration) -> u32 {
        self.failures = self.failures.saturating_add(1);
        let since = *self.since.get_or_insert_with(Instant::now);
        let retry = retry_in.as_secs_f64();
        match self.told {
            None => {
                error!(
                    "{error}; retrying in {retry:.1} s (while this lasts, repeats are logged at \
                     debug level)"
                );
                self.told = Some(Instant::now());
            }
            Some(told) if told.elapsed() >= REMINDER => {
                warn!(
                    failures = self.failures,
                    "still failing after {:.0} s: {error}; retrying in {retry:.1} s",
                    since.elapsed().as_secs_f64()
                );
                self.told = Some(Instant::now());
            }
            Some(_) => debug!(
                failures = self.failures,
                "still failing: {error}; retrying in {retry:.1} s"
            ),
        }
        self.failures
    }

    /// Ends an outage, logging how long it lasted; nothing when there was none.
    pub fn recovered(&mut self) {
        if let Some(since) = self.since.take() {
            info!(
                failures = self.failures,
                "working again after {:.1} s",
                since.elapsed().as_secs_f64()
            );
        }
        self.failures = 0;
        self.told = None;
        self.restart_backoff();
    }

    /// Failures in a row so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outage() -> Outage {
        Outage::new(Duration::from_secs(1), Duration::from_secs(8))
    }

    #[test]
    fn an_outage_counts_failures_until_it_ends() {
        let mut outage = outage();
        outage.recovered();
        assert_eq!(
            outage.failed_waiting("disk full", Duration::from_secs(1)),
            1
        );
        assert_eq!(
            outage.failed_waiting("disk full", Duration::from_secs(2)),
            2
        );
        assert_eq!(
            outage.failed_waiting("another error", Duration::from_secs(2)),
            3
        );
        assert!(outage.told.is_some());
        outage.recovered();
        assert_eq!(outage.failures(), 0);
        assert_eq!(
            outage.failed_waiting("disk full", Duration::from_secs(1)),
            1
        );
    }

    #[test]
    fn waits_grow_to_the_maximum_and_start_over_after_a_recovery() {
        let mut outage = outage();
        let waits: Vec<Duration> = (0..8).map(|_| outage.failed("down")).collect();
        // Jitter adds up to the wait again: each stays within [base, 2 × base].
        assert!(waits[0] >= Duration::from_secs(1) && waits[0] <= Duration::from_secs(2));
        assert!(waits[7] >= Duration::from_secs(8) && waits[7] <= Duration::from_secs(16));
        outage.recovered();
        assert!(outage.failed("down") <= Duration::from_secs(2));
    }
}
