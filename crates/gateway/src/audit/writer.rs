//! The writer thread: takes everything queued, commits it as one batch to the store and/or the
//! file, then tells every waiter of that batch (group commit), pacing commits as [`super`] says.

use super::{BATCH, LINGER, MAX_BUFFERED, MIN_GAP, Msg, RETRY_FIRST, RETRY_MAX};
use mcpgate_core::audit::AuditRecord;
use mcpgate_store::{AuditStore, StoreError};
use std::collections::VecDeque;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// The writer thread's state.
pub(super) struct Writer {
    pub(super) store: Option<Arc<dyn AuditStore>>,
    /// The runtime the store's async calls run on (the writer is a thread of its own).
    pub(super) runtime: tokio::runtime::Handle,
    pub(super) file: Option<std::fs::File>,
    pub(super) dropped: Arc<AtomicU64>,
    /// Records waiting in memory while the store is unavailable, in order.
    pub(super) buffered: Arc<AtomicU64>,
    pub(super) outage: Outage,
}

/// Records the store could not take because it was unavailable ([`StoreError::Unavailable`]):
/// kept, in order, up to [`MAX_BUFFERED`], and written first when it answers again. While they
/// wait, new records join them (nothing overtakes), and the store is tried again after a backoff
/// rather than at every commit.
#[derive(Default)]
pub(super) struct Outage {
    records: VecDeque<AuditRecord>,
    /// Responses waiting for a buffered record: told once it is written (the sink releases them
    /// at its ceiling before that, counted as late).
    waiting: Vec<oneshot::Sender<()>>,
    /// When to try the store again, and the pause after that if it still fails.
    retry_at: Option<Instant>,
    pause: Duration,
    /// Records dropped because the buffer was full, during this outage.
    overflowed: u64,
}

impl Outage {
    fn active(&self) -> bool {
        !self.records.is_empty()
    }

    /// How long until the next try, when records wait.
    pub(super) fn due_in(&self) -> Option<Duration> {
        if !self.active() {
            return None;
        }
        Some(
            self.retry_at
                .map_or(Duration::ZERO, |t| t.saturating_duration_since(Instant::now())),
        )
    }

    fn back_off(&mut self) {
        self.pause = if self.pause.is_zero() {
            RETRY_FIRST
        } else {
            (self.pause * 2).min(RETRY_MAX)
        };
        self.retry_at = Some(Instant::now() + self.pause);
    }
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
    pub(super) fn run(mut self, rx: Receiver<Msg>) {
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
                None => match self.outage.due_in() {
                    // Err: every sender is gone (the sink was dropped without `close`), queue
                    // empty: a last try for what the store could not take.
                    None => match rx.recv() {
                        Ok(msg) => (msg, false),
                        Err(_) => return self.retry_buffered(),
                    },
                    // Records wait for the store: try it again when due, even with no traffic.
                    Some(due) => match rx.recv_timeout(due) {
                        Ok(msg) => (msg, false),
                        Err(RecvTimeoutError::Timeout) => {
                            self.retry_buffered();
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => return self.retry_buffered(),
                    },
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
                if self.outage.active() {
                    // One last try; what the store still cannot take is lost with the process.
                    self.outage.retry_at = None;
                    self.retry_buffered();
                    let lost = self.outage.records.len();
                    if lost > 0 {
                        tracing::error!(
                            records = lost,
                            "audit: the store is unavailable at shutdown; buffered records are lost"
                        );
                        self.dropped.fetch_add(lost as u64, Ordering::Relaxed);
                        self.buffered.store(0, Ordering::Relaxed);
                    }
                }
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
    /// audit failure into an outage. Records the store is unavailable for are kept instead
    /// ([`Outage`]), and their requests released at the sink's ceiling.
    fn commit(&mut self, batch: &mut Batch) {
        if batch.records.is_empty() {
            return;
        }
        let mut file_ok = true;
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
                file_ok = false;
            }
        }
        if self.store.is_some() && self.outage.due_in() == Some(Duration::ZERO) {
            self.retry_buffered();
        }
        let stored = match &self.store {
            None => Stored::Yes,
            // Records are buffered: these join them, behind, until the next try.
            Some(_) if self.outage.active() => Stored::Later,
            Some(s) => {
                let s = s.clone();
                self.append(s.as_ref(), &batch.records)
            }
        };
        match stored {
            Stored::Later | Stored::Partial(..) => {
                if let Stored::Partial(done, refused) = stored {
                    self.dropped.fetch_add(refused, Ordering::Relaxed);
                    batch.records.drain(..done);
                }
                self.buffer(batch.records.drain(..));
                if file_ok {
                    self.outage.waiting.append(&mut batch.waiting);
                } else {
                    batch.waiting.clear();
                }
            }
            Stored::Yes if file_ok => {
                for done in batch.waiting.drain(..) {
                    let _ = done.send(());
                }
            }
            Stored::Yes => batch.waiting.clear(),
            Stored::Refused(n) => {
                self.dropped.fetch_add(n, Ordering::Relaxed);
                batch.waiting.clear();
            }
        }
        if !file_ok && self.store.is_none() {
            self.dropped.fetch_add(batch.records.len() as u64, Ordering::Relaxed);
        }
        batch.records.clear();
    }

    /// Appends `records`; when the store refuses a batch of several, each record is tried alone,
    /// so one it cannot take does not cost the others.
    fn append(&self, store: &dyn AuditStore, records: &[AuditRecord]) -> Stored {
        match self.runtime.block_on(store.append(records)) {
            Ok(()) => Stored::Yes,
            Err(StoreError::Unavailable(e)) => {
                // Once per outage: the retries that follow fail the same way.
                if !self.outage.active() {
                    tracing::warn!("audit: the store is unavailable ({e}); keeping records in memory until it answers");
                }
                Stored::Later
            }
            Err(e) if records.len() == 1 => {
                tracing::error!("audit: the store refused a record: {e}");
                Stored::Refused(1)
            }
            Err(e) => {
                tracing::error!(
                    "audit: the store refused a batch of {} records ({e}); writing them one by one",
                    records.len()
                );
                let mut refused = 0;
                for (i, r) in records.iter().enumerate() {
                    match self.runtime.block_on(store.append(std::slice::from_ref(r))) {
                        Ok(()) => {}
                        Err(StoreError::Unavailable(_)) => {
                            // Gone in the middle: the rest waits with the outage. The ones written
                            // are in the store; those refused are counted.
                            return Stored::Partial(i, refused);
                        }
                        Err(_) => refused += 1,
                    }
                }
                if refused > 0 {
                    tracing::error!("audit: the store refused {refused} record(s)");
                }
                Stored::Refused(refused)
            }
        }
    }

    /// Keeps records for a later try; beyond [`MAX_BUFFERED`] they are dropped and counted.
    fn buffer(&mut self, records: impl Iterator<Item = AuditRecord>) {
        if !self.outage.active() {
            self.outage.back_off();
        }
        for r in records {
            if self.outage.records.len() >= MAX_BUFFERED {
                if self.outage.overflowed == 0 {
                    tracing::error!(
                        "audit: {MAX_BUFFERED} records wait for the store; further records are dropped until it answers"
                    );
                }
                self.outage.overflowed += 1;
                self.dropped.fetch_add(1, Ordering::Relaxed);
            } else {
                self.outage.records.push_back(r);
            }
        }
        self.buffered.store(self.outage.records.len() as u64, Ordering::Relaxed);
    }

    /// Tries to write the buffered records, oldest first, a batch at a time; stops at the first
    /// sign the store is still unavailable and tries again after a longer pause.
    fn retry_buffered(&mut self) {
        let Some(store) = self.store.clone() else { return };
        let mut written = 0usize;
        while self.outage.active() {
            let n = self.outage.records.len().min(BATCH);
            let chunk: Vec<AuditRecord> = self.outage.records.range(..n).cloned().collect();
            match self.append(store.as_ref(), &chunk) {
                Stored::Later => {
                    self.outage.back_off();
                    break;
                }
                Stored::Partial(done, refused) => {
                    self.dropped.fetch_add(refused, Ordering::Relaxed);
                    self.outage.records.drain(..done);
                    written += done;
                    self.outage.back_off();
                    break;
                }
                Stored::Yes => {
                    self.outage.records.drain(..n);
                    written += n;
                }
                Stored::Refused(refused) => {
                    self.dropped.fetch_add(refused, Ordering::Relaxed);
                    self.outage.records.drain(..n);
                    written += n.saturating_sub(refused as usize);
                }
            }
        }
        self.buffered.store(self.outage.records.len() as u64, Ordering::Relaxed);
        if !self.outage.active() {
            if written > 0 || self.outage.overflowed > 0 {
                tracing::info!(
                    written,
                    dropped = self.outage.overflowed,
                    "audit: the store answers again; buffered records written"
                );
            }
            for done in self.outage.waiting.drain(..) {
                let _ = done.send(());
            }
            self.outage = Outage::default();
        }
    }
}

/// What became of a batch given to the store.
enum Stored {
    Yes,
    /// The store is unavailable: keep them.
    Later,
    /// This many were refused (and are not coming back); the rest were written.
    Refused(u64),
    /// Unavailable after the first `.0` were written (of which `.1` refused).
    Partial(usize, u64),
}
