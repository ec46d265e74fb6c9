//! The audit trail under a crash: a real `mcpgate serve` is killed with SIGKILL in the middle of
//! concurrent load, and every response a client received before the kill must have its audit
//! record in the store (README, "Audit"): with `audit.commit_before_response` a record is
//! committed before its response is released, so the loss window is zero; by default records
//! are committed within about 10 ms of their response, and the stated window is 50 ms.
//!
//! Run with `cargo test --release -p mcpgate --test audit_kill -- --nocapture` (it prints the
//! counts: responses, records, missing, window).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Received, gateway_bin, join, kill_9, spawn_load};
use mcpgate_core::audit::AuditQuery;
use mcpgate_store::AuditStore;
use mcpgate_store::sqlite::SqliteStore;
use mcpgate_testkit::process::*;
use mcpgate_testkit::time::*;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Concurrent clients, each on its own MCP session.
const CONNECTIONS: usize = 16;
/// How long the load runs before the kill.
const LOAD: Duration = Duration::from_secs(2);
/// The stated loss window by default: responses released less than this before the kill may
/// lack their record.
const DEFAULT_WINDOW: Duration = Duration::from_millis(50);
/// Every this many requests a client sends a made-up key, so refusals (`auth` records, answered
/// by the gateway itself) are under the same rule as calls that went upstream.
const BAD_KEY_EVERY: u64 = 7;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_no_record_of_an_answered_request() {
    kill_9_under_load(true, Duration::ZERO).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_under_load_loses_records_only_within_the_stated_window() {
    kill_9_under_load(false, DEFAULT_WINDOW).await;
}

async fn kill_9_under_load(commit_before_response: bool, window: Duration) {
    // A stdio upstream answers in one JSON body, so the gateway releases whole answers, and fast.
    let config = tempfile::tempdir().expect("temp dir");
    let path = config.path().join("audit.toml");
    std::fs::write(
        &path,
        format!("[audit]\ncommit_before_response = {commit_before_response}\n"),
    )
    .expect("write config");
    let upstream = format!("{} --stdio --profile demo", shell_quote(example_bin()));
    let path = path.display().to_string();
    let mut stack = Stack::gateway(
        gateway_bin(),
        Kind::Stdio,
        &["--upstream-cmd", &upstream, "--config", &path],
        None,
    )
    .await;
    let raw = stack.raw();
    let run = nonce();

    // Sessions first, so the load is calls only.
    let mut sessions = Vec::new();
    for _ in 0..CONNECTIONS {
        sessions.push(within(START, "open a session", raw.open_session()).await);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let clients = spawn_load(&raw, sessions, &format!("ak-{run}-"), BAD_KEY_EVERY, stop.clone());

    tokio::time::sleep(LOAD).await;
    let killed_at = kill_9(stack.gw.pid());
    stop.store(true, Ordering::Relaxed);

    let mut received = Vec::new();
    let mut sent = HashSet::new();
    for client in join(clients, "a client stops after the kill").await {
        if let Some((at, e)) = client.failed {
            // Before the kill, a failure would mean the load was not what this test says.
            assert!(at >= killed_at, "a request failed before the kill: {e}");
        }
        received.extend(client.received);
        sent.extend(client.sent);
    }
    poll_until(STEP, "the killed gateway is gone", || {
        let gone = !stack.gw.is_running();
        async move { gone.then_some(()) }
    })
    .await;

    // The store as the next start of the gateway would find it (SQLite recovers its WAL on open).
    let store = SqliteStore::open(&stack.dir.path().join("mcpgate.db")).expect("open the store after the kill");
    let records = store
        .query(&AuditQuery {
            limit: 10_000_000,
            ..AuditQuery::default()
        })
        .await
        .expect("query the audit records");
    let prefix = format!("ak-{run}-");
    let recorded: HashMap<&str, u16> = records
        .iter()
        .filter(|r| r.request_id.starts_with(&prefix))
        .map(|r| (r.request_id.as_str(), r.status))
        .collect();

    // Exempt: responses released within the stated window before the kill. None when the window
    // is zero: whatever a client received, even from the socket after the kill, was released.
    let must_have: Vec<&Received> = received
        .iter()
        .filter(|r| window.is_zero() || r.at + window <= killed_at)
        .collect();
    let missing: Vec<&Received> = must_have
        .iter()
        .copied()
        .filter(|r| !recorded.contains_key(r.id.as_str()))
        .collect();
    let answered: HashSet<&str> = received.iter().map(|r| r.id.as_str()).collect();
    // Requests in flight at the kill whose record was committed but whose answer never arrived.
    let unanswered = recorded.keys().filter(|id| !answered.contains(*id)).count();
    let refused = received.iter().filter(|r| r.status == 401).count();
    let newest = received.iter().map(|r| r.at).max();
    println!(
        "audit_kill: responses={} (refusals {refused}) records={} missing={} window={}ms; \
         sent={} records_without_a_received_response={unanswered}; last response {:?} before the kill",
        received.len(),
        recorded.len(),
        missing.len(),
        window.as_millis(),
        sent.len(),
        newest.map(|t| killed_at.saturating_duration_since(t)),
    );

    // The load was real: both calls that went upstream and refusals, from every client.
    assert!(
        received.len() >= 10 * CONNECTIONS,
        "too few responses before the kill to judge: {}",
        received.len()
    );
    assert!(refused > 0, "no refusal among the responses");
    assert!(
        received.iter().any(|r| r.status == 200),
        "no call succeeded before the kill"
    );
    // No record invented: each one belongs to a request this test sent.
    for id in recorded.keys() {
        assert!(sent.contains(*id), "a record for a request never sent: {id}");
    }
    // Each record says what its response said.
    for r in &received {
        if let Some(s) = recorded.get(r.id.as_str()) {
            assert_eq!(
                *s, r.status,
                "the record of {} has another status than its response",
                r.id
            );
        }
    }
    let examples: Vec<String> = missing
        .iter()
        .take(5)
        .map(|r| {
            format!(
                "{} ({}, {:?} before the kill)",
                r.id,
                r.status,
                killed_at.saturating_duration_since(r.at)
            )
        })
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} responses received before the kill have no audit record, e.g. {examples:?}",
        missing.len(),
        must_have.len()
    );
}
