//! One clear log line per outage: a source or the outbox sender that keeps
//! failing the same way (a full disk, a wrong password) says so once, retries
//! quietly with backoff, and says when it works again.

use std::time::{Duration, Instant};

use tracing::{debug, error, info};

/// What one worker (a mailbox, a Maildir, the outbox) knows of its current outage.
#[derive(Debug, Default)]
pub struct Outage {
    since: Option<Instant>,
    failures: u32,
    last: Option<String>,
}

impl Outage {
    /// Logs a failure: as an error when it starts an outage or differs from
    /// the last one, quietly (debug) when it repeats. Returns how many
    /// failures in a row this makes.
    pub fn failed(&mut self, error: &str, retry_in: Duration) -> u32 {
        self.failures = self.failures.saturating_add(1);
        self.since.get_or_insert_with(Instant::now);
        if self.last.as_deref() == Some(error) {
            debug!(
                failures = self.failures,
                "still failing: {error}; retrying in {:.1} s",
                retry_in.as_secs_f64()
            );
        } else {
            error!(
                "{error}; retrying in {:.1} s (while this lasts, repeats are logged at debug level)",
                retry_in.as_secs_f64()
            );
            self.last = Some(error.to_string());
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
        self.last = None;
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
        outage.recovered();
        assert_eq!(outage.failures(), 0);
        assert_eq!(outage.failed("disk full", Duration::from_secs(1)), 1);
    }
}
