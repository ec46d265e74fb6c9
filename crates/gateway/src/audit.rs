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
//! store recovers); a record the store refused is logged and counted in `dropped`.

use crate::config::AuditConfig;
use mcpgate_core::audit::AuditRecord;
use mcpgate_store::AuditStore;
use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
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
    last_warn_ms: AtomicI64,
    ceiling: Duration,
    stop: CancellationToken,
}

impl AuditSink {
    pub fn start(cfg: &AuditConfig, store: Option<Arc<dyn AuditStore>>) -> Result<AuditSink, String> {
        Self::start_with(cfg, store, CEILING)
    }

    fn start_with(
        cfg: &AuditConfig,
        store: Option<Arc<dyn AuditStore>>,
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
            tokio::spawn(prune_loop(Arc::downgrade(&store), keep, stop.clone()));
        }
        let dropped = Arc::new(AtomicU64::new(0));
        let tx = if store.is_some() || file.is_some() {
            let (tx, rx) = std::sync::mpsc::sync_channel(CAPACITY);
            let writer = Writer {
                store,
                runtime: tokio::runtime::Handle::try_current()
                    .map_err(|_| "the audit writer must start inside a Tokio runtime".to_string())?,
                file,
                dropped: dropped.clone(),
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
            last_warn_ms: AtomicI64::new(i64::MIN),
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
        let now = crate::clock::unix_ms();
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
async fn prune_loop(store: std::sync::Weak<dyn AuditStore>, keep: Duration, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let Some(store) = store.upgrade() else { return };
        let before = crate::clock::unix_ms() - keep.as_millis() as i64;
        match store.prune(before).await {
            Ok(n) if n > 0 => tracing::info!("audit: deleted {n} record(s) past the retention period"),
            Err(e) => tracing::warn!("audit: cannot prune old records: {e}"),
            _ => {}
        }
    }
}

/// The writer thread's state.
struct Writer {
    store: Option<Arc<dyn AuditStore>>,
    /// The runtime the store's async calls run on (the writer is a thread of its own).
    runtime: tokio::runtime::Handle,
    file: Option<std::fs::File>,
    dropped: Arc<AtomicU64>,
}

#[derive(Default)]
struct Batch {
    records: Vec<AuditRecord>,
    waiting: Vec<oneshot::Sender<()>>,
}

impl Batch {
    /// Takes a message in; returns the close request if it was one.
    fn take(&mut self, msg: Msg) -> Option<oneshot::Sender<()>> {
        match msg {
            Msg::Record(r, done) => {
                self.records.push(*r);
                self.waiting.extend(done);
                None
            }
            Msg::Close(ack) => Some(ack),
        }
    }
}

impl Writer {
    fn run(mut self, rx: Receiver<Msg>) {
        let mut batch = Batch {
            records: Vec::with_capacity(BATCH),
            waiting: Vec::with_capacity(BATCH),
        };
        let mut last_start = Instant::now();
        // A message that arrived during the previous commit.
        let mut early: Option<Msg> = None;
        // The previous commit took a full batch: the queue holds more, commit again at once.
        let mut full = false;
        loop {
            let (first, busy) = match early.take() {
                Some(msg) => (msg, true),
                // Err: every sender is gone (the sink was dropped without `close`), queue empty.
                None => match rx.recv() {
                    Ok(msg) => (msg, false),
                    Err(_) => return,
                },
            };
            let mut close = batch.take(first);
            if close.is_none() && !full {
                let pause = if batch.waiting.is_empty() {
                    // No response waits for this record: gather for LINGER from the previous
                    // commit (busy) or from now (the writer was idle).
                    LINGER.saturating_sub(if busy { last_start.elapsed() } else { Duration::ZERO })
                } else if busy {
                    // Responses wait, and they come faster than commits: gather them for the
                    // rest of the gap.
                    MIN_GAP.saturating_sub(last_start.elapsed())
                } else {
                    Duration::ZERO
                };
                if !pause.is_zero() {
                    std::thread::sleep(pause);
                }
            }
            while close.is_none() && batch.records.len() < BATCH {
                match rx.try_recv() {
                    Ok(msg) => close = batch.take(msg),
                    Err(_) => break,
                }
            }
            full = batch.records.len() >= BATCH;
            last_start = Instant::now();
            self.commit(&mut batch);
            if let Some(ack) = close {
                // Requests that finished while the server stopped queued behind the close.
                while let Ok(msg) = rx.try_recv() {
                    if let Some(other) = batch.take(msg) {
                        let _ = other.send(());
                    }
                    if batch.records.len() >= BATCH {
                        self.commit(&mut batch);
                    }
                }
                self.commit(&mut batch);
                // Closed before answering, so a record queued after `close` returns is refused
                // (and counted) at once rather than left in a queue no one reads.
                drop(rx);
                let _ = ack.send(());
                return;
            }
            early = rx.try_recv().ok();
        }
    }

    /// Writes the batch, then releases its requests. A record not written is counted and its
    /// request released all the same: the answer is already decided, and holding it would turn an
    /// audit failure into an outage.
    fn commit(&mut self, batch: &mut Batch) {
        if batch.records.is_empty() {
            return;
        }
        let mut written = true;
        if let Some(s) = &self.store
            && let Err(e) = self.runtime.block_on(s.append(&batch.records))
        {
            tracing::error!("cannot write audit records: {e}");
            written = false;
        }
        if let Some(f) = self.file.as_mut() {
            let mut buf = Vec::with_capacity(batch.records.len() * 256);
            for r in &batch.records {
                if serde_json::to_writer(&mut buf, r).is_ok() {
                    buf.push(b'\n');
                }
            }
            // Once `write_all` returns the lines are the kernel's: a killed process loses none.
            if let Err(e) = f.write_all(&buf) {
                tracing::error!("cannot write the audit file: {e}");
                written = false;
            }
        }
        if written {
            for done in batch.waiting.drain(..) {
                let _ = done.send(());
            }
        } else {
            self.dropped.fetch_add(batch.records.len() as u64, Ordering::Relaxed);
            batch.waiting.clear();
        }
        batch.records.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicBool;

    /// A store in memory that can be held (a stalled disk) or made to refuse writes.
    #[derive(Default)]
    struct Mem {
        records: Mutex<Vec<AuditRecord>>,
        appends: AtomicU64,
        hold: Mutex<()>,
        fail: AtomicBool,
    }

    impl Mem {
        fn ids(&self) -> Vec<String> {
            let records = self.records.lock().unwrap();
            records.iter().map(|r| r.request_id.clone()).collect()
        }
    }

    #[mcpgate_store::async_trait]
    impl AuditStore for Mem {
        async fn append(&self, records: &[AuditRecord]) -> mcpgate_store::Result<()> {
            let _held = self.hold.lock().unwrap();
            if self.fail.load(Ordering::SeqCst) {
                return Err(mcpgate_store::StoreError::Backend("disk full".into()));
            }
            self.appends.fetch_add(1, Ordering::SeqCst);
            self.records.lock().unwrap().extend_from_slice(records);
            Ok(())
        }
        async fn query(&self, _: &mcpgate_core::audit::AuditQuery) -> mcpgate_store::Result<Vec<AuditRecord>> {
            Ok(self.records.lock().unwrap().clone())
        }
        async fn prune(&self, _: i64) -> mcpgate_store::Result<usize> {
            Ok(0)
        }
    }

    fn rec(id: &str) -> AuditRecord {
        AuditRecord {
            time_ms: 1,
            request_id: id.into(),
            event: "call".into(),
            principal: None,
            key_id: None,
            user_id: None,
            tenant: None,
            auth_method: None,
            client_addr: None,
            mcp_method: Some("tools/call".into()),
            tool: Some("echo".into()),
            decision: "allow".into(),
            reason: "ok".into(),
            status: 200,
            latency_us: 1,
        }
    }

    fn to_store() -> AuditConfig {
        AuditConfig {
            store: true,
            jsonl: None,
            retention: None,
            commit_before_response: false,
        }
    }

    fn sink(mem: &Arc<Mem>, ceiling: Duration) -> Arc<AuditSink> {
        let store: Arc<dyn AuditStore> = mem.clone();
        Arc::new(AuditSink::start_with(&to_store(), Some(store), ceiling).unwrap())
    }

    /// With no waiter, records are gathered, not committed one by one as they come: 2,000 records
    /// queued in a burst take a handful of transactions (a full batch each, or what came in one
    /// linger), and every one of them is committed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn queued_records_are_gathered_into_few_commits() {
        let mem = Arc::new(Mem::default());
        let sink = sink(&mem, Duration::from_secs(30));
        for i in 0..2000 {
            sink.queue(rec(&format!("g{i}")));
            if i % 100 == 0 {
                tokio::task::yield_now().await;
            }
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while mem.ids().len() < 2000 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(mem.ids().len(), 2000, "every queued record committed");
        let appends = mem.appends.load(Ordering::SeqCst);
        assert!(
            (4..=12).contains(&appends),
            "2,000 queued records took {appends} commits"
        );
    }

    /// The default rule: a queued record has no waiter and is committed soon after, all the same.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_queued_record_is_committed_without_a_waiter() {
        let mem = Arc::new(Mem::default());
        let sink = sink(&mem, Duration::from_secs(30));
        for i in 0..100 {
            sink.queue(rec(&format!("q{i}")));
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while mem.ids().len() < 100 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(mem.ids().len(), 100, "queued records committed without anyone waiting");
        assert_eq!(sink.dropped.load(Ordering::Relaxed), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_record_is_in_the_store_when_its_wait_ends() {
        let mem = Arc::new(Mem::default());
        let sink = sink(&mem, Duration::from_secs(30));
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let (sink, mem) = (sink.clone(), mem.clone());
                tokio::spawn(async move {
                    let id = format!("r{i}");
                    sink.record(rec(&id)).await;
                    assert!(mem.ids().contains(&id), "{id} released before it was committed");
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        // Waiting together, they were committed together, not one transaction each.
        let appends = mem.appends.load(Ordering::SeqCst);
        assert!(appends < 50, "200 concurrent records took {appends} commits");
        assert_eq!(sink.late.load(Ordering::SeqCst), 0);
        assert_eq!(sink.dropped.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    // The held lock is the stalled disk: only the writer thread's append waits on it.
    #[allow(clippy::await_holding_lock)]
    async fn a_stalled_store_holds_a_response_no_longer_than_the_ceiling() {
        let mem = Arc::new(Mem::default());
        let sink = sink(&mem, Duration::from_millis(100));
        let held = mem.hold.lock().unwrap();
        let started = Instant::now();
        sink.record(rec("a")).await;
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(100), "released after {waited:?}");
        assert!(waited < Duration::from_secs(5), "released after {waited:?}");
        assert_eq!(sink.late.load(Ordering::SeqCst), 1);
        assert!(mem.ids().is_empty());
        // Late is not lost: the record is written once the store answers.
        drop(held);
        sink.close().await;
        assert_eq!(mem.ids(), ["a"]);
        assert_eq!(sink.dropped.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_refused_write_releases_its_requests_and_is_counted() {
        let mem = Arc::new(Mem::default());
        mem.fail.store(true, Ordering::SeqCst);
        let sink = sink(&mem, Duration::from_secs(30));
        let started = Instant::now();
        sink.record(rec("a")).await;
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(sink.dropped.load(Ordering::SeqCst), 1);
        assert_eq!(sink.late.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn close_writes_everything_queued() {
        let mem = Arc::new(Mem::default());
        let sink = sink(&mem, Duration::from_secs(30));
        for i in 0..2000 {
            // Not awaited: queued only.
            drop(sink.record(rec(&format!("r{i}"))));
        }
        sink.close().await;
        assert_eq!(mem.ids().len(), 2000);
        // After close there is no writer: a record is counted, and nothing waits.
        sink.record(rec("after")).await;
        assert_eq!(sink.dropped.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn the_file_has_the_line_when_the_wait_ends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let cfg = AuditConfig {
            store: false,
            jsonl: Some(path.clone()),
            retention: None,
            commit_before_response: false,
        };
        let sink = AuditSink::start(&cfg, None).unwrap();
        sink.record(rec("in-the-file")).await;
        let text = std::fs::read_to_string(&path).unwrap();
        let line: AuditRecord = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(line, rec("in-the-file"));
    }

    #[tokio::test]
    async fn with_nowhere_to_write_nothing_waits() {
        let cfg = AuditConfig {
            store: false,
            jsonl: None,
            retention: None,
            commit_before_response: false,
        };
        let mem: Arc<dyn AuditStore> = Arc::new(Mem::default());
        let sink = AuditSink::start(&cfg, Some(mem)).unwrap();
        assert!(sink.tx.is_none());
        sink.record(rec("a")).await;
        assert_eq!(sink.dropped.load(Ordering::SeqCst), 0);
        sink.close().await;
    }
}
