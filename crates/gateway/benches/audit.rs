//! Micro-benchmarks of the audit trail: what a request pays to queue its record (`enqueue`, its
//! CPU on the request path), how long a lone request then waits for its record to be committed
//! (`enqueue_and_wait`: one SQLite commit), and what the writer pays per record to put a batch
//! into the SQLite store (`store_append`, in a temporary file; the per-commit cost is why the
//! writer paces commits under load).
//! Run: `cargo bench -p mcpgate-gateway --bench audit`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use divan::Bencher;
use mcpgate_core::audit::AuditRecord;
use mcpgate_gateway::audit::AuditSink;
use mcpgate_gateway::config::AuditConfig;
use mcpgate_store::AuditStore;
use mcpgate_store::sqlite::SqliteStore;
use std::sync::Arc;

fn main() {
    divan::main();
}

fn record(i: u64) -> AuditRecord {
    AuditRecord {
        time_ms: 1_790_000_000_000 + i as i64,
        request_id: format!("req-{i:016x}"),
        event: "call".into(),
        principal: Some("key:k3f9a1b2c4d5".into()),
        key_id: Some("k3f9a1b2c4d5".into()),
        user_id: Some("alice".into()),
        tenant: Some("acme".into()),
        auth_method: Some("api_key".into()),
        client_addr: Some("127.0.0.1".into()),
        mcp_method: Some("tools/call".into()),
        tool: Some("echo".into()),
        decision: "allow".into(),
        reason: "ok".into(),
        status: 200,
        latency_us: 312,
        client_id: None,
    }
}

fn sink(dir: &tempfile::TempDir, rt: &tokio::runtime::Runtime) -> AuditSink {
    let store: Arc<dyn AuditStore> = Arc::new(SqliteStore::open(&dir.path().join("audit.db")).unwrap());
    let cfg = AuditConfig {
        store: true,
        jsonl: None,
        retention: None,
        commit_before_response: false,
    };
    rt.block_on(async {
        AuditSink::start(
            &cfg,
            Some(store),
            std::sync::Arc::new(mcpgate_gateway::clock::SystemClock),
        )
    })
    .unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// One record queued by a request, with the writer running and writing to SQLite as in
/// `mcpgate serve` (the record is built outside the timed part, as the pipeline builds it anyway).
#[divan::bench]
fn enqueue(bencher: Bencher) {
    queue_records(bencher, false);
}

/// One record queued and its commit awaited, the writer idle: what a lone request waits before
/// its response is released.
#[divan::bench]
fn enqueue_and_wait(bencher: Bencher) {
    queue_records(bencher, true);
}

fn queue_records(bencher: Bencher, wait: bool) {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let sink = sink(&dir, &rt);
    let mut i = 0;
    bencher
        .with_inputs(|| {
            i += 1;
            record(i)
        })
        .bench_local_values(|r| {
            let committed = sink.record(r);
            if wait {
                rt.block_on(committed);
            }
        });
    rt.block_on(sink.close());
}

/// Per record, a batch of `n` appended to the SQLite store in one transaction (the writer's cost).
#[divan::bench(args = [1, 4, 16, 64, 512])]
fn store_append(bencher: Bencher, n: u64) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("audit.db")).unwrap();
    // The writer thread's way of calling the store: block on it (the work runs on the blocking pool).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mut i = 0;
    bencher
        .counter(divan::counter::ItemsCount::new(n))
        .with_inputs(|| {
            i += n;
            (i..i + n).map(record).collect::<Vec<_>>()
        })
        .bench_local_values(|batch| rt.block_on(store.append(&batch)).unwrap());
}
