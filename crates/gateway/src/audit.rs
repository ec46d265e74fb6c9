//! The audit writer. Appending is a channel send that never waits on the request path; a
//! background task batches records into the store and/or a JSON-lines file. On a clean shutdown
//! the channel is drained before the process exits, so no record is lost.

use crate::config::AuditConfig;
use mcpgate_core::audit::AuditRecord;
use mcpgate_store::AuditStore;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const CAPACITY: usize = 65_536;
const BATCH: usize = 512;
/// After writing a partial batch, the writer waits this long before taking the next one, so that
/// under load records are written in large batches (one transaction and one thread hand-off per
/// batch, not per request); a record waits at most this long before it is written.
const LINGER: std::time::Duration = std::time::Duration::from_millis(20);

pub struct AuditSink {
    tx: mpsc::Sender<AuditRecord>,
    pub dropped: AtomicU64,
    stop: CancellationToken,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl AuditSink {
    pub fn start(cfg: &AuditConfig, store: Option<Arc<dyn AuditStore>>) -> Result<AuditSink, String> {
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
        let (tx, rx) = mpsc::channel(CAPACITY);
        let stop = CancellationToken::new();
        if let (Some(store), Some(keep)) = (store.clone(), cfg.retention) {
            tokio::spawn(prune_loop(Arc::downgrade(&store), keep, stop.clone()));
        }
        let writer = tokio::spawn(write_loop(rx, store, file, stop.clone()));
        Ok(AuditSink {
            tx,
            dropped: AtomicU64::new(0),
            stop,
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Queues a record; if the writer is that far behind, counts it as dropped instead of waiting.
    pub fn record(&self, r: AuditRecord) {
        if self.tx.try_send(r).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Writes everything queued, then stops the writer.
    pub async fn close(&self) {
        self.stop.cancel();
        if let Some(w) = self.writer.lock().await.take() {
            let _ = w.await;
        }
    }
}

/// Deletes records past the retention period: at start, then hourly.
async fn prune_loop(store: std::sync::Weak<dyn AuditStore>, keep: std::time::Duration, stop: CancellationToken) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let Some(store) = store.upgrade() else { return };
        let before = crate::clock::unix_ms() - keep.as_millis() as i64;
        match tokio::task::spawn_blocking(move || store.prune(before)).await {
            Ok(Ok(n)) if n > 0 => tracing::info!("audit: deleted {n} record(s) past the retention period"),
            Ok(Err(e)) => tracing::warn!("audit: cannot prune old records: {e}"),
            _ => {}
        }
    }
}

async fn write_loop(
    mut rx: mpsc::Receiver<AuditRecord>,
    store: Option<Arc<dyn AuditStore>>,
    mut file: Option<std::fs::File>,
    stop: CancellationToken,
) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let n = tokio::select! {
            n = rx.recv_many(&mut batch, BATCH) => n,
            _ = stop.cancelled() => {
                while let Ok(r) = rx.try_recv() {
                    batch.push(r);
                }
                0
            }
        };
        if !batch.is_empty() {
            let records = std::mem::take(&mut batch);
            let store = store.clone();
            let mut f = file.take();
            let (back, f_back) = tokio::task::spawn_blocking(move || {
                if let Some(s) = &store
                    && let Err(e) = s.append(&records)
                {
                    tracing::error!("cannot write audit records: {e}");
                }
                if let Some(f) = f.as_mut() {
                    let mut buf = Vec::with_capacity(records.len() * 256);
                    for r in &records {
                        if serde_json::to_writer(&mut buf, r).is_ok() {
                            buf.push(b'\n');
                        }
                    }
                    if let Err(e) = f.write_all(&buf) {
                        tracing::error!("cannot write the audit file: {e}");
                    }
                }
                (records, f)
            })
            .await
            .unwrap_or_default();
            file = f_back;
            batch = back;
            batch.clear();
        }
        if n == 0 {
            return;
        }
        if n < BATCH {
            tokio::select! {
                _ = tokio::time::sleep(LINGER) => {}
                _ = stop.cancelled() => {}
            }
        }
    }
}
