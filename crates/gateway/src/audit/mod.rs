//! The audit writer. The request path queues its record (a channel send) and gets a
//! [`Committed`] back; one writer thread takes everything queued, appends it to the store (one
//! SQLite transaction) and/or the JSON-lines file, then resolves every `Committed` of that batch
//! together (group commit). By default the response does not wait: its record is committed within
//! about [`LINGER`] + one commit (the stated loss window on `kill -9` is 50 ms). With
//! `audit.commit_before_response` the pipeline awaits `Committed` before releasing the response,
//! so a `kill -9` can lose only records of requests not yet answered.
//!
//! Why commits are paced: a SQLite commit costs ~25 µs of CPU whatever its size, plus ~2 µs a
//! record. Committing as soon as the previous commit ends would, at 25k req/s, commit one or two
//! records at a time and spend ~25 µs of CPU per request. By default no response waits, so the
//! writer gathers records for [`LINGER`] before each commit (at most 100 commits a second, and
//! the request path rarely has to wake it). When responses wait (`commit_before_response`) and
//! records arrived while the writer was committing, it waits until [`MIN_GAP`] after the start of
//! that commit and takes them all in the next one: at most one commit per `MIN_GAP` under load,
//! and a response waits up to `MIN_GAP` + one commit; a waited-for record that finds the writer
//! idle is committed at once, so a lone client waits one commit (~30 µs). A commit that took a
//! full [`BATCH`] is followed by the next at once, whatever the rule.
//!
//! A store that cannot commit must not stop the gateway: a response waits at most [`CEILING`]
//! for its record, then is released and counted in `late` (the record is still written when the
//! store recovers). A store that is unreachable (PostgreSQL down: `StoreError::Unavailable`)
//! gets its records later: the writer keeps them in memory, in order, up to [`MAX_BUFFERED`],
//! tries again after 100 ms doubling to 2 s, and writes them first once it answers. A record the
//! store refused (it answered no) is logged and counted in `dropped`, as are records past the
//! buffer and those still buffered at shutdown.

mod writer;

use crate::clock::Clock;
use crate::config::AuditConfig;
use mcpgate_core::audit::AuditRecord;
use mcpgate_store::AuditStore;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

const CAPACITY: usize = 65_536;
/// Records per transaction at most: bounds how long one commit holds the store.
const BATCH: usize = 512;
/// When records arrived during a commit, the next commit starts no sooner than this after the
/// start of that one (so under load there is at most one commit per gap).
const MIN_GAP: Duration = Duration::from_millis(1);
/// With no response waiting (the default rule), records are gathered this long before a commit:
/// at most 100 commits a second at any rate up to ~50k req/s, instead of one per
/// [`MIN_GAP`] and a writer woken for nearly every record.
const LINGER: Duration = Duration::from_millis(10);
/// Records kept in memory at most while the store is unavailable (about 50 MB of typical
/// records); beyond, records are dropped and counted.
const MAX_BUFFERED: usize = 100_000;
/// The first pause before the store is tried again after it was unavailable; it doubles up to
/// [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);
/// The longest a response waits for its record to be committed.
const CEILING: Duration = Duration::from_secs(1);
/// At most one warning about late records per this many milliseconds.
const WARN_EVERY_MS: i64 = 10_000;

enum Msg {
    /// A record, and who to tell once it is committed (dropped unsent if it could not be).
    /// Boxed: the queue holds 65,536 slots, each the size of its largest message.
    Record(Box<AuditRecord>, Option<oneshot::Sender<()>>),
    /// Write everything queued, answer, stop.
    Close(oneshot::Sender<()>),
}

pub struct AuditSink {
    /// `None` when records go nowhere (no store, no file): nothing to queue or wait for.
    tx: Option<SyncSender<Msg>>,
    /// Records never written: the queue was full, or the store or file refused them.
    pub dropped: Arc<AtomicU64>,
    /// Responses released before their record was committed (the store took over [`CEILING`]).
    pub late: AtomicU64,
    /// Records kept in memory because the store is unavailable (0 when it answers).
    pub buffered: Arc<AtomicU64>,
    last_warn_ms: AtomicI64,
    clock: Arc<dyn Clock>,
    ceiling: Duration,
    stop: CancellationToken,
}

impl AuditSink {
    /// Starts the writer; `clock` dates the retention boundary and the late-record warnings.
    pub fn start(
        cfg: &AuditConfig,
        store: Option<Arc<dyn AuditStore>>,
        clock: Arc<dyn Clock>,
    ) -> Result<AuditSink, String> {
        Self::start_with(cfg, store, clock, CEILING)
    }

    fn start_with(
        cfg: &AuditConfig,
        store: Option<Arc<dyn AuditStore>>,
        clock: Arc<dyn Clock>,
        ceiling: Duration,
    ) -> Result<AuditSink, String> {
        let file = match &cfg.jsonl {
            Some(path) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| format!("cannot open the audit file {}: {e}", path.display()))?,
            ),
            None => None,
        };
        let store = if cfg.store { store } else { None };
        let stop = CancellationToken::new();
        if let (Some(store), Some(keep)) = (store.clone(), cfg.retention) {
            tokio::spawn(prune_loop(Arc::downgrade(&store), keep, clock.clone(), stop.clone()));
        }
        let dropped = Arc::new(AtomicU64::new(0));
        let buffered = Arc::new(AtomicU64::new(0));
        let tx = if store.is_some() || file.is_some() {
            let (tx, rx) = std::sync::mpsc::sync_channel(CAPACITY);
            let writer = writer::Writer {
                store,
                runtime: tokio::runtime::Handle::try_current()
                    .map_err(|_| "the audit writer must start inside a Tokio runtime".to_string())?,
                file,
                dropped: dropped.clone(),
                buffered: buffered.clone(),
                outage: writer::Outage::default(),
            };
            // A thread of its own, not the runtime's blocking pool: it blocks on the queue and
            // on SQLite, and a hand-off per commit would cost more than the commit's bookkeeping.
            std::thread::Builder::new()
                .name("mcpgate-audit".into())
                .spawn(move || writer.run(rx))
                .map_err(|e| format!("cannot start the audit writer: {e}"))?;
            Some(tx)
        } else {
            None
        };
        Ok(AuditSink {
            tx,
            dropped,
            late: AtomicU64::new(0),
            buffered,
            last_warn_ms: AtomicI64::new(i64::MIN),
            clock,
            ceiling,
            stop,
        })
    }

    /// Queues a record without waiting. Await what it returns before releasing the response the
    /// record is about; if the writer is that far behind, the record is counted as dropped and
    /// there is nothing to wait for.
    pub fn record(&self, r: AuditRecord) -> Committed<'_> {
        let Some(tx) = &self.tx else {
            return Committed::done(self);
        };
        let (done, wait) = oneshot::channel();
        if tx.try_send(Msg::Record(Box::new(r), Some(done))).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return Committed::done(self);
        }
        Committed {
            sink: self,
            wait: Some(wait),
            ceiling: None,
        }
    }

    /// Queues a record for the next commit, with no one waiting for it (the default rule: the
    /// response does not wait); if the writer is that far behind, the record is counted as dropped.
    pub fn queue(&self, r: AuditRecord) {
        if let Some(tx) = &self.tx
            && tx.try_send(Msg::Record(Box::new(r), None)).is_err()
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Writes everything queued, then stops the writer.
    pub async fn close(&self) {
        self.stop.cancel();
        let Some(tx) = self.tx.clone() else { return };
        let (ack, acked) = oneshot::channel();
        // The queue may be full: the send may block, so it runs where blocking is allowed.
        let sent = tokio::task::spawn_blocking(move || tx.send(Msg::Close(ack)).is_ok())
            .await
            .unwrap_or(false);
        if sent {
            let _ = acked.await;
        }
    }

    fn note_late(&self) {
        self.late.fetch_add(1, Ordering::Relaxed);
        let now = self.clock.unix_ms();
        let last = self.last_warn_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= WARN_EVERY_MS
            && self
                .last_warn_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                "audit: the store did not commit within {:?}; responses are being released before their \
                 records are committed ({} so far)",
                self.ceiling,
                self.late.load(Ordering::Relaxed)
            );
        }
    }
}

/// Resolves once the record is committed, once it is known it never will be (counted in
/// `dropped`), or after the ceiling (counted in `late`). Dropping it does not cancel the record.
#[must_use = "await it before releasing the response the record is about"]
pub struct Committed<'a> {
    sink: &'a AuditSink,
    wait: Option<oneshot::Receiver<()>>,
    /// Armed on the first poll that finds the record not yet committed.
    ceiling: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<'a> Committed<'a> {
    fn done(sink: &'a AuditSink) -> Committed<'a> {
        Committed {
            sink,
            wait: None,
            ceiling: None,
        }
    }
}

impl Future for Committed<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let Some(wait) = this.wait.as_mut() else {
            return Poll::Ready(());
        };
        // Ok: committed. Err: the writer gave up on it (and counted it); either way, done.
        if Pin::new(wait).poll(cx).is_ready() {
            this.wait = None;
            return Poll::Ready(());
        }
        let limit = this.sink.ceiling;
        let ceiling = this.ceiling.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        if ceiling.as_mut().poll(cx).is_ready() {
            this.wait = None;
            this.sink.note_late();
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

/// Deletes records past the retention period: at start, then hourly.
async fn prune_loop(
    store: std::sync::Weak<dyn AuditStore>,
    keep: Duration,
    clock: Arc<dyn Clock>,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let Some(store) = store.upgrade() else { return };
        let before = clock.unix_ms() - keep.as_millis() as i64;
        match store.prune(before).await {
            Ok(n) if n > 0 => tracing::info!("audit: deleted {n} record(s) past the retention period"),
            Err(e) => tracing::warn!("audit: cannot prune old records: {e}"),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
