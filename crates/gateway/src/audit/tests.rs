//! The audit writer's behaviour against a store that can stall or refuse.

use super::*;
use crate::clock::SystemClock;
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

/// A store in memory that can be held (a stalled disk) or made to refuse writes.
#[derive(Default)]
struct Mem {
    records: Mutex<Vec<AuditRecord>>,
    appends: AtomicU64,
    hold: Mutex<()>,
    fail: AtomicBool,
    /// Unreachable (PostgreSQL stopped): every append fails as unavailable.
    down: AtomicBool,
    /// A record with this id is refused (with any others in its batch).
    poison: Mutex<Option<String>>,
    /// The boundaries `prune` was called with.
    pruned_before: Mutex<Vec<i64>>,
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
        if self.down.load(Ordering::SeqCst) {
            return Err(mcpgate_store::StoreError::Unavailable("connection refused".into()));
        }
        if let Some(bad) = self.poison.lock().unwrap().as_deref()
            && records.iter().any(|r| r.request_id == bad)
        {
            return Err(mcpgate_store::StoreError::Backend("invalid byte sequence".into()));
        }
        self.appends.fetch_add(1, Ordering::SeqCst);
        self.records.lock().unwrap().extend_from_slice(records);
        Ok(())
    }
    async fn search(&self, _: &mcpgate_core::audit::AuditQuery) -> mcpgate_store::Result<Vec<(u64, AuditRecord)>> {
        let records = self.records.lock().unwrap();
        Ok((1u64..)
            .zip(records.iter().cloned())
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect())
    }
    async fn prune(&self, before_ms: i64) -> mcpgate_store::Result<usize> {
        self.pruned_before.lock().unwrap().push(before_ms);
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
        client_id: None,
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
    Arc::new(AuditSink::start_with(&to_store(), Some(store), Arc::new(SystemClock), ceiling).unwrap())
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
    let sink = AuditSink::start(&cfg, None, Arc::new(SystemClock)).unwrap();
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
    let sink = AuditSink::start(&cfg, Some(mem), Arc::new(SystemClock)).unwrap();
    assert!(sink.tx.is_none());
    sink.record(rec("a")).await;
    assert_eq!(sink.dropped.load(Ordering::SeqCst), 0);
    sink.close().await;
}

#[tokio::test]
async fn retention_prunes_at_start_before_the_injected_clock_minus_the_period() {
    let cfg = AuditConfig {
        store: true,
        jsonl: None,
        retention: Some(Duration::from_secs(7 * 86_400)),
        commit_before_response: false,
    };
    // A clock far from the machine's: the boundary can only come from it.
    let clock = Arc::new(crate::clock::ManualClock::at(1_000_000_000_000));
    let mem = Arc::new(Mem::default());
    let sink = AuditSink::start(&cfg, Some(mem.clone()), clock).unwrap();
    let started = Instant::now();
    while mem.pruned_before.lock().unwrap().is_empty() && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        *mem.pruned_before.lock().unwrap(),
        vec![1_000_000_000_000 - 7 * 86_400 * 1000]
    );
    sink.close().await;
}

async fn wait_for(mem: &Mem, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while mem.ids().len() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The store unreachable (PostgreSQL stopped): records are kept, responses waiting for them are
/// released at the ceiling, and once it answers every record is written, in order, without a
/// restart and without traffic to trigger it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_wait_in_memory_while_the_store_is_unavailable_and_are_written_in_order_after() {
    let mem = Arc::new(Mem::default());
    let sink = sink(&mem, Duration::from_millis(100));
    sink.record(rec("before")).await;
    assert_eq!(mem.ids(), ["before"]);
    mem.down.store(true, Ordering::SeqCst);
    let started = Instant::now();
    sink.record(rec("d0")).await;
    assert!(
        started.elapsed() >= Duration::from_millis(100),
        "released before the ceiling"
    );
    for i in 1..1500 {
        sink.queue(rec(&format!("d{i}")));
    }
    // Every record reached the writer and waits there; none written, none dropped.
    let deadline = Instant::now() + Duration::from_secs(10);
    while sink.buffered.load(Ordering::SeqCst) < 1500 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(sink.buffered.load(Ordering::SeqCst), 1500);
    assert_eq!(mem.ids(), ["before"]);
    assert_eq!(sink.dropped.load(Ordering::SeqCst), 0);
    assert_eq!(sink.late.load(Ordering::SeqCst), 1);
    mem.down.store(false, Ordering::SeqCst);
    // No new record: the writer's own retry writes them.
    wait_for(&mem, 1501).await;
    let mut expected = vec!["before".to_string()];
    expected.extend((0..1500).map(|i| format!("d{i}")));
    assert_eq!(mem.ids(), expected, "all written, in the order they came");
    // The writer lowers its count just after the store took the batch: wait for it too.
    let deadline = Instant::now() + Duration::from_secs(10);
    while sink.buffered.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(sink.buffered.load(Ordering::SeqCst), 0);
    assert_eq!(sink.dropped.load(Ordering::SeqCst), 0);
    // And the writer is back to normal: a record waited for is committed before release.
    sink.record(rec("after")).await;
    assert_eq!(mem.ids().last().map(String::as_str), Some("after"));
    assert_eq!(sink.late.load(Ordering::SeqCst), 1);
}

/// The buffer is bounded: past it records are dropped and counted, never memory without end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_buffer_is_bounded_and_what_it_cannot_hold_is_counted() {
    let mem = Arc::new(Mem::default());
    mem.down.store(true, Ordering::SeqCst);
    let sink = sink(&mem, Duration::from_millis(100));
    let total = MAX_BUFFERED + 5_000;
    for i in 0..total {
        sink.queue(rec(&format!("b{i}")));
        if i % 1000 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while (sink.buffered.load(Ordering::SeqCst) + sink.dropped.load(Ordering::SeqCst)) < total as u64
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(sink.buffered.load(Ordering::SeqCst), MAX_BUFFERED as u64);
    assert_eq!(sink.dropped.load(Ordering::SeqCst), 5_000);
    mem.down.store(false, Ordering::SeqCst);
    wait_for(&mem, MAX_BUFFERED).await;
    let ids = mem.ids();
    assert_eq!(ids.len(), MAX_BUFFERED);
    // The oldest were kept.
    assert_eq!(ids.first().map(String::as_str), Some("b0"));
    assert_eq!(ids.last().cloned(), Some(format!("b{}", MAX_BUFFERED - 1)));
}

/// A record the store refuses (it answered: not unreachable) costs only itself, not its batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_record_does_not_take_its_batch_with_it() {
    let mem = Arc::new(Mem::default());
    *mem.poison.lock().unwrap() = Some("bad".into());
    let sink = sink(&mem, Duration::from_secs(30));
    for i in 0..50 {
        sink.queue(rec(&format!("p{i}")));
    }
    sink.queue(rec("bad"));
    for i in 50..100 {
        sink.queue(rec(&format!("p{i}")));
    }
    sink.close().await;
    let expected: Vec<String> = (0..100).map(|i| format!("p{i}")).collect();
    assert_eq!(mem.ids(), expected);
    assert_eq!(sink.dropped.load(Ordering::SeqCst), 1);
}

/// Unavailable at shutdown: one last try, then what is left is counted as lost (not hidden).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_still_waiting_at_shutdown_are_counted_as_dropped() {
    let mem = Arc::new(Mem::default());
    mem.down.store(true, Ordering::SeqCst);
    let sink = sink(&mem, Duration::from_millis(50));
    for i in 0..10 {
        sink.queue(rec(&format!("s{i}")));
    }
    sink.close().await;
    assert!(mem.ids().is_empty());
    assert_eq!(sink.dropped.load(Ordering::SeqCst), 10);
    assert_eq!(sink.buffered.load(Ordering::SeqCst), 0);
}
