//! A Maildir as a source: every file in `new/` is one message; after its commit it moves to `cur/`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, info, info_span};

use crate::config::{DaemonSettings, MaildirSettings};
use crate::ingest::worker::IngestWorker;
use crate::ingest::{IngestError, kept_of_oversized};
use crate::mail::RawMessage;
use crate::outage::Outage;

pub struct MaildirSource {
    pub settings: MaildirSettings,
    pub daemon: DaemonSettings,
    /// `limits.max_message_bytes`: past it only a message's beginning is read.
    pub max_message_bytes: u64,
    pub worker: Arc<IngestWorker>,
    pub shutdown: CancellationToken,
}

impl MaildirSource {
    pub async fn run(self) {
        let span = info_span!("maildir", path = %self.settings.path.display());
        async {
            let poll = Duration::from_millis(self.daemon.maildir_poll_millis.max(10));
            let mut outage = Outage::new(
                poll.saturating_mul(2),
                Duration::from_secs(self.daemon.reconnect_max_secs.max(1)),
            );
            while !self.shutdown.is_cancelled() {
                let delay = match self.scan().await {
                    Ok(()) => {
                        outage.recovered();
                        poll
                    }
                    Err(e) => outage.failed(&e),
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

    /// Ingests a batch, makes what it committed durable, then moves those files to
    /// `cur/`. When the sync fails nothing moves; files that failed stay in `new/`.
    async fn process_batch(&self, names: &[String]) -> Result<(), String> {
        let results = futures::future::join_all(names.iter().map(|name| {
            self.ingest_file(name)
                .instrument(info_span!("file", name = %name))
        }))
        .await;
        let mut committed = Vec::new();
        let mut failure = None;
        for (name, result) in names.iter().zip(results) {
            match result {
                Ok(true) => committed.push(name),
                Ok(false) => {}
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        if !committed.is_empty() {
            self.worker
                .sync()
                .await
                .map_err(|e| format!("messages stay in new/: {e}"))?;
            for name in committed {
                acknowledge(&self.settings.path, name).await?;
            }
        }
        match failure {
            Some(e) => Err(format!("messages stay in new/: {e}")),
            None => Ok(()),
        }
    }

    /// Reads and ingests one file. `Ok(false)` when another reader took it meanwhile.
    async fn ingest_file(&self, name: &str) -> Result<bool, IngestError> {
        let source = format!("maildir:{}", self.settings.path.display());
        let queue = self.settings.queue.as_deref();
        let path = self.dir("new").join(name);
        let raw = match read_file(&path, self.max_message_bytes).await {
            Ok(raw) => raw,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(IngestError::Files(e)),
        };
        self.worker
            .ingest_or_hold(&raw, &source, queue)
            .await
            .map(|_| true)
    }
}

/// A message file, or only its beginning when it is larger than `max_bytes`.
async fn read_file(path: &Path, max_bytes: u64) -> std::io::Result<RawMessage> {
    use tokio::io::AsyncReadExt;
    let file = tokio::fs::File::open(path).await?;
    let size = file.metadata().await?.len();
    let keep = if size > max_bytes {
        kept_of_oversized(max_bytes) as u64
    } else {
        size
    };
    let mut bytes = Vec::with_capacity(usize::try_from(keep).unwrap_or(0));
    file.take(keep).read_to_end(&mut bytes).await?;
    Ok(if size > max_bytes {
        RawMessage::truncated(bytes, size)
    } else {
        RawMessage::whole(bytes)
    })
}

/// Moves a committed (and synced) message to `cur/`, flagged seen. A file that
/// is gone was taken by another reader of this Maildir: nothing to do.
async fn acknowledge(maildir: &Path, name: &str) -> Result<(), String> {
    let from = maildir.join("new").join(name);
    let to = maildir.join("cur").join(seen_name(name));
    match tokio::fs::rename(&from, &to).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            debug!(file = %name, "already moved by another reader");
            Ok(())
        }
        // Not the file's name: one error for the outage, not one per file.
        Err(e) => Err(format!("cannot move messages from new/ to cur/: {e}")),
    }
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
