//! `ticketd run`: wires the sources to the ingest worker, tells systemd how it is
//! doing, and shuts down cleanly on SIGTERM/SIGINT.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::Settings;
use crate::inbound::imap::ImapSource;
use crate::inbound::maildir::MaildirSource;
use crate::ingest::IngestError;
use crate::ingest::worker::IngestWorker;
use crate::notify::Notifier;
use crate::notify::reminders::Reminders;
use crate::outage::Outage;
use crate::outbound::Transport;
use crate::outbound::maildir::MaildirTransport;
use crate::outbound::sender::OutboxSender;
use crate::outbound::smtp::SmtpTransport;
use crate::store::{Store, secrets};

/// How long sources get to finish the message in flight after a stop signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);

/// Runs until SIGTERM or SIGINT. Errors only when it cannot start at all.
pub async fn run(settings: Arc<Settings>) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    spawn_signal_listener(shutdown.clone())?;

    let wake_outbox = Arc::new(Notify::new());
    let Some((worker, store, bounce_key)) = open_store(&settings, &shutdown, &wake_outbox).await
    else {
        info!("stopped before the store was reachable");
        return Ok(());
    };
    let worker = Arc::new(worker);

    let mut sources = JoinSet::new();
    for imap in &settings.imap {
        let source = ImapSource {
            settings: imap.clone(),
            daemon: settings.daemon.clone(),
            max_message_bytes: settings.limits.max_message_bytes,
            worker: worker.clone(),
            store: store.clone(),
            shutdown: shutdown.clone(),
        };
        sources.spawn(source.run());
    }
    for maildir in &settings.maildir {
        let source = MaildirSource {
            settings: maildir.clone(),
            daemon: settings.daemon.clone(),
            max_message_bytes: settings.limits.max_message_bytes,
            worker: worker.clone(),
            shutdown: shutdown.clone(),
        };
        sources.spawn(source.run());
    }
    if sources.is_empty() {
        warn!("no [[imap]] or [[maildir]] source is configured: nothing to read");
    }
    let transport = match &settings.smtp {
        Some(smtp) => {
            let transport = SmtpTransport::new(smtp.clone(), crate::outbound::sender::PARALLEL);
            match transport.helo_name().await {
                Some(helo) => {
                    info!(host = %smtp.host, port = smtp.port(), %helo, "notifications go out by SMTP")
                }
                None => warn!(
                    host = %smtp.host,
                    port = smtp.port(),
                    "notifications go out by SMTP; this host has no fully qualified name, so it \
                     greets with its IP address: set smtp.helo_name if the server refuses that"
                ),
            }
            Transport::Smtp(Box::new(transport))
        }
        None => {
            info!(maildir = %settings.outbox.maildir.display(), "no [smtp] server: notifications are written to a Maildir");
            Transport::Maildir(MaildirTransport::new(settings.outbox.maildir.clone()))
        }
    };
    let sender = OutboxSender::new(
        store.clone(),
        transport,
        settings.outbox.clone(),
        bounce_key,
        wake_outbox.clone(),
        shutdown.clone(),
    );
    let mut background = JoinSet::new();
    background.spawn(sender.run());
    match reminders(&settings, &store, &wake_outbox, &shutdown).await {
        Ok(r) => {
            background.spawn(r.run());
        }
        Err(e) => warn!(error = %e, "reminders are off"),
    }
    info!(
        imap = settings.imap.len(),
        maildir = settings.maildir.len(),
        "ticketd is running"
    );
    notify_systemd(&[sd_notify::NotifyState::Ready]);
    let watchdog = spawn_watchdog(shutdown.clone());

    shutdown.cancelled().await;
    notify_systemd(&[sd_notify::NotifyState::Stopping]);
    info!("stopping: finishing messages in flight");
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while sources.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(
            "sources did not stop within {} s; leaving anyway (unacknowledged mail is fetched again next time)",
            SHUTDOWN_GRACE.as_secs()
        );
        sources.abort_all();
    }
    if let Some(w) = watchdog {
        w.abort();
    }
    if let Ok(worker) = Arc::try_unwrap(worker) {
        let _ = tokio::time::timeout(Duration::from_secs(1), worker.shutdown()).await;
    }
    store.close().await;
    info!("stopped");
    Ok(())
}

/// Opens the ingest worker, a store for the sources' cursors and the outbox,
/// and reads the bounce key, retrying while the database is unreachable.
/// `None` when stopped meanwhile.
async fn open_store(
    settings: &Arc<Settings>,
    shutdown: &CancellationToken,
    committed: &Arc<Notify>,
) -> Option<(IngestWorker, Store, Vec<u8>)> {
    let mut outage = Outage::new(
        Duration::from_secs(1),
        Duration::from_secs(settings.daemon.reconnect_max_secs.max(1)),
    );
    loop {
        let attempt = async {
            let worker = IngestWorker::start(settings.clone(), Some(committed.clone())).await?;
            let store = Store::connect(&settings.store).await?;
            let key = secrets::bounce_key(&mut *store.conn().await?).await?;
            Ok::<_, IngestError>((worker, store, key))
        };
        let delay = match attempt.await {
            Ok(opened) => {
                outage.recovered();
                return Some(opened);
            }
            Err(e) => outage.failed(&format!("cannot open the store: {e}")),
        };
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.cancelled() => return None,
        }
    }
}

async fn reminders(
    settings: &Arc<Settings>,
    store: &Store,
    wake_outbox: &Arc<Notify>,
    shutdown: &CancellationToken,
) -> Result<Reminders, IngestError> {
    Ok(Reminders {
        store: store.clone(),
        notifier: Notifier::open(store, settings.clone()).await?,
        after_hours: settings.notify.reminder_after_hours,
        wake_outbox: wake_outbox.clone(),
        shutdown: shutdown.clone(),
    })
}

fn spawn_signal_listener(shutdown: CancellationToken) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => info!("SIGTERM received"),
            _ = int.recv() => info!("SIGINT received"),
        }
        shutdown.cancel();
    });
    Ok(())
}

fn notify_systemd(states: &[sd_notify::NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        warn!(error = %e, "cannot notify systemd");
    }
}

/// Pings systemd's watchdog at half its interval, when the unit sets `WatchdogSec`.
fn spawn_watchdog(shutdown: CancellationToken) -> Option<tokio::task::JoinHandle<()>> {
    let interval = sd_notify::watchdog_enabled().filter(|d| !d.is_zero())?;
    let period = interval / 2;
    Some(tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        loop {
            tokio::select! {
                _ = ticks.tick() => notify_systemd(&[sd_notify::NotifyState::Watchdog]),
                _ = shutdown.cancelled() => break,
            }
        }
    }))
}
