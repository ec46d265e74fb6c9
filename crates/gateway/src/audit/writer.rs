//! The writer thread: takes everything queued, commits it as one batch to the store and/or the
//! file, then tells every waiter of that batch (group commit), pacing commits as [`super`] says.

use super::{BATCH, LINGER, MIN_GAP, Msg};
use mcpgate_core::audit::AuditRecord;
use mcpgate_store::AuditStore;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// The writer thread's state.
pub(super) struct Writer {
    pub(super) store: Option<Arc<dyn AuditStore>>,
    /// The runtime the store's async calls run on (the writer is a thread of its own).
    pub(super) runtime: tokio::runtime::Handle,
    pub(super) file: Option<std::fs::File>,
    pub(super) dropped: Arc<AtomicU64>,
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
