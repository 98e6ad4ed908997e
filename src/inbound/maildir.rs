//! A Maildir as a source: every file in `new/` is one message; after its commit it moves to `cur/`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, info_span, warn};

use crate::config::{DaemonSettings, MaildirSettings};
use crate::ingest::worker::IngestWorker;
use crate::ingest::{IngestError, Report};

pub struct MaildirSource {
    pub settings: MaildirSettings,
    pub daemon: DaemonSettings,
    pub worker: Arc<IngestWorker>,
    pub shutdown: CancellationToken,
}

impl MaildirSource {
    pub async fn run(self) {
        let span = info_span!("maildir", path = %self.settings.path.display());
        async {
            let poll = Duration::from_millis(self.daemon.maildir_poll_millis.max(10));
            let mut failures: u32 = 0;
            while !self.shutdown.is_cancelled() {
                let delay = match self.scan().await {
                    Ok(()) => {
                        failures = 0;
                        poll
                    }
                    Err(e) => {
                        failures = failures.saturating_add(1);
                        let wait = poll
                            .saturating_mul(2u32.saturating_pow(failures.min(10)))
                            .min(Duration::from_secs(self.daemon.reconnect_max_secs.max(1)));
                        warn!(error = %e, "retrying in {:.1} s", wait.as_secs_f64());
                        wait
                    }
                };
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = self.shutdown.cancelled() => break,
                }
            }
            info!("stopped");
        }
        .instrument(span)
        .await
    }

    fn dir(&self, sub: &str) -> PathBuf {
        self.settings.path.join(sub)
    }

    /// Processes what is in `new/` now, in name order (Maildir names start with the time).
    async fn scan(&self) -> Result<(), String> {
        for sub in ["new", "cur", "tmp"] {
            let dir = self.dir(sub);
            tokio::fs::create_dir_all(&dir)
                .await
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let mut names = Vec::new();
        let mut entries = tokio::fs::read_dir(self.dir("new"))
            .await
            .map_err(|e| format!("cannot read {}: {e}", self.dir("new").display()))?;
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(|e| format!("cannot read {}: {e}", self.dir("new").display()))?
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') && entry.file_type().await.is_ok_and(|t| t.is_file()) {
                names.push(name);
            }
        }
        names.sort();
        for batch in names.chunks(self.daemon.fetch_batch.max(1) as usize) {
            if self.shutdown.is_cancelled() {
                break;
            }
            self.process_batch(batch).await?;
        }
        Ok(())
    }

    async fn process_batch(&self, names: &[String]) -> Result<(), String> {
        let source = format!("maildir:{}", self.settings.path.display());
        let queue = self.settings.queue.as_deref();
        let results = futures::future::join_all(names.iter().map(|name| {
            let source = &source;
            async move {
                let path = self.dir("new").join(name);
                let raw = match tokio::fs::read(&path).await {
                    Ok(raw) => raw,
                    // Taken by someone else meanwhile: nothing to do.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
                };
                let result = match self.worker.ingest(raw.clone(), source, queue).await {
                    Err(e) if !e.is_transient() => {
                        error!(file = %name, error = %e, "cannot process; keeping it as a held message");
                        self.worker.hold_unprocessable(raw, source, queue, &e.to_string()).await
                    }
                    other => other,
                };
                finish(&self.settings.path, name, result).await
            }
            .instrument(info_span!("file", name = %name))
        }))
        .await;
        for result in results {
            result?;
        }
        Ok(())
    }
}

/// Moves a committed message to `cur/` (flagged seen); leaves it in `new/` when it was not committed.
async fn finish(
    maildir: &Path,
    name: &str,
    result: Result<Report, IngestError>,
) -> Result<Option<Report>, String> {
    let report = result.map_err(|e| format!("{name} stays in new/ for the next attempt: {e}"))?;
    let from = maildir.join("new").join(name);
    let to = maildir.join("cur").join(seen_name(name));
    tokio::fs::rename(&from, &to)
        .await
        .map_err(|e| format!("cannot move {} to cur/: {e}", from.display()))?;
    Ok(Some(report))
}

/// The Maildir name of a message once seen: `<name>:2,S` (keeping flags it had).
fn seen_name(name: &str) -> String {
    match name.split_once(":2,") {
        Some((base, flags)) if flags.contains('S') => format!("{base}:2,{flags}"),
        Some((base, flags)) => {
            let mut all: Vec<char> = flags.chars().chain(['S']).collect();
            all.sort_unstable();
            format!("{base}:2,{}", all.into_iter().collect::<String>())
        }
        None => format!("{name}:2,S"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_names_follow_the_maildir_convention() {
        assert_eq!(seen_name("123.abc.host"), "123.abc.host:2,S");
        assert_eq!(seen_name("123.abc.host:2,F"), "123.abc.host:2,FS");
        assert_eq!(seen_name("123.abc.host:2,S"), "123.abc.host:2,S");
    }
}
