//! One clear log line per outage: a source or the outbox sender that keeps
//! failing the same way (a full disk, a wrong password) says so once, retries
//! quietly with backoff, and says when it works again.

use std::time::{Duration, Instant};

use tracing::{debug, error, info, warn};

/// While an outage lasts, how often it is mentioned again above debug level.
const REMINDER: Duration = Duration::from_secs(600);

/// What one worker (a mailbox, a Maildir, the outbox) knows of its current outage.
#[derive(Debug, Default)]
pub struct Outage {
    since: Option<Instant>,
    failures: u32,
    /// When the outage was last logged above debug level.
    told: Option<Instant>,
}

impl Outage {
    /// Logs a failure: as an error when it starts an outage, as a warning
    /// every ten minutes while it lasts (whatever its words: a full disk
    /// fails in several ways), quietly (debug) otherwise. Returns how many
    /// failures in a row this makes.
    pub fn failed(&mut self, error: &str, retry_in: Duration) -> u32 {
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
    }

    /// Failures in a row so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_counts_failures_until_it_ends() {
        let mut outage = Outage::default();
        outage.recovered();
        assert_eq!(outage.failed("disk full", Duration::from_secs(1)), 1);
        assert_eq!(outage.failed("disk full", Duration::from_secs(2)), 2);
        assert_eq!(outage.failed("another error", Duration::from_secs(2)), 3);
        assert!(outage.told.is_some());
        outage.recovered();
        assert_eq!(outage.failures(), 0);
        assert_eq!(outage.failed("disk full", Duration::from_secs(1)), 1);
    }
}
