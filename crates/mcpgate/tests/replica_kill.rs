//! Two gateway replicas on one PostgreSQL, one of them killed with SIGKILL in the middle of
//! concurrent load: every response acknowledged by the killed replica has its audit record in the
//! database, with the status the client saw, and the other replica keeps answering, before and
//! after the kill, every request it is sent — its records all there as well.
//!
//! "Acknowledged" means a response whose status line and headers the client received while
//! `audit.commit_before_response` is on: the gateway commits the record (one `INSERT`, committed
//! when PostgreSQL answers it) before it releases the response, so a `kill -9` can lose only the
//! records of requests not yet answered — the loss window is zero. By default (the setting off) a
//! record trails its response by about 10 ms, and the stated loss window is 50 ms (`audit_kill`
//! tests both rules on SQLite). Records of requests in flight at the kill may or may not be there;
//! neither is wrong.
//!
//! The replicas are real `mcpgate serve` processes, each with its own stdio upstream and
//! `MCP_API_KEYS` key, given `--store <a SQLite file>` as every test stack is: `store.url` in the
//! configuration file takes precedence, which the test checks (the records are in PostgreSQL, the
//! SQLite file was never created). Without PostgreSQL's binaries the test fails, unless
//! `MCPGATE_TEST_NO_POSTGRES=1`, when it says so and passes.
//!
//! Run with `cargo test --profile ci -p mcpgate --test replica_kill -- --nocapture` (it prints the
//! counts: responses and records of each replica, missing, B's requests after the kill).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{ClientRun, Received, gateway_bin, join, kill_9, spawn_load};
use mcpgate_core::audit::{AuditQuery, AuditRecord};
use mcpgate_store::AuditStore;
use mcpgate_store::postgres::PostgresStore;
use mcpgate_store::postgres::testing::server;
use mcpgate_testkit::process::*;
use mcpgate_testkit::raw::raw_client;
use mcpgate_testkit::time::*;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Concurrent clients per replica, each on its own MCP session.
const CONNECTIONS: usize = 8;
/// How long both replicas are loaded before A is killed.
const LOAD: Duration = Duration::from_secs(2);
/// How long B is loaded after the kill.
const AFTER: Duration = Duration::from_secs(1);
/// Every this many requests a client sends a made-up key: refusals (answered by the gateway
/// itself) are under the same rule as calls that went upstream.
const BAD_KEY_EVERY: u64 = 7;
/// Fewest responses (or requests) per client in a phase for the run to say anything.
const AT_LEAST_PER_CLIENT: usize = 10;

/// Starts one replica: `mcpgate serve` on the shared configuration, with its own upstream.
async fn replica(config: &str) -> Stack {
    let upstream = format!("{} --stdio --profile demo", shell_quote(example_bin()));
    Stack::gateway(
        gateway_bin(),
        Kind::Stdio,
        &["--upstream-cmd", &upstream, "--config", config],
        None,
    )
    .await
}

/// Opens the load's sessions on `stack` first, so the load is calls only.
async fn sessions(stack: &Stack) -> Vec<String> {
    let raw = stack.raw();
    let mut out = Vec::new();
    for _ in 0..CONNECTIONS {
        out.push(within(START, "open a session", raw.open_session()).await);
    }
    out
}

/// Every response the clients received, and the id of every request they sent.
fn tally(runs: &[ClientRun]) -> (Vec<&Received>, HashSet<&str>) {
    let received = runs.iter().flat_map(|r| &r.received).collect();
    let sent = runs.iter().flat_map(|r| &r.sent).map(String::as_str).collect();
    (received, sent)
}

/// The status every response must have: the gateway's refusal for a made-up key, else the call's.
fn expected(r: &Received) -> u16 {
    if r.bad_key { 401 } else { 200 }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_one_replica_loses_no_acknowledged_record_and_the_other_keeps_serving() {
    let Some(pg) = server("replica_kill") else {
        return;
    };
    let url = pg.fresh_database().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("replica.toml");
    std::fs::write(
        &config,
        format!("[store]\nurl = \"{url}\"\n\n[audit]\ncommit_before_response = true\n"),
    )
    .expect("write config");
    let config = config.display().to_string();
    // One after the other: the first brings the schema up to date.
    let mut a = replica(&config).await;
    let mut b = replica(&config).await;
    let (sessions_a, sessions_b) = (sessions(&a).await, sessions(&b).await);

    let run = nonce();
    let (prefix_a, prefix_b) = (format!("rk-{run}-a-"), format!("rk-{run}-b-"));
    let (stop_a, stop_b) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
    let load_a = spawn_load(&a.raw(), sessions_a, &prefix_a, BAD_KEY_EVERY, stop_a.clone());
    let load_b = spawn_load(&b.raw(), sessions_b, &prefix_b, BAD_KEY_EVERY, stop_b.clone());

    tokio::time::sleep(LOAD).await;
    let killed_at = kill_9(a.gw.pid());
    stop_a.store(true, Ordering::Relaxed);
    let runs_a = join(load_a, "a client of A stops after the kill").await;
    poll_until(STEP, "the killed replica is gone", || {
        let gone = !a.gw.is_running();
        async move { gone.then_some(()) }
    })
    .await;
    // B carries on alone for the rest of AFTER.
    tokio::time::sleep(AFTER.saturating_sub(killed_at.elapsed())).await;
    stop_b.store(true, Ordering::Relaxed);
    let runs_b = join(load_b, "a client of B stops").await;
    let stopped_at = Instant::now();

    // A is dead, not shut down: its port refuses, and it never logged a graceful stop.
    let health_a = raw_client().get(format!("{}/healthz", a.base)).send().await;
    assert!(health_a.is_err(), "the killed replica still answers /healthz");
    assert!(
        !a.gw.stderr().contains("mcpgate stopped"),
        "replica A shut down gracefully instead of being killed"
    );
    for r in &runs_a {
        if let Some((at, e)) = &r.failed {
            assert!(*at >= killed_at, "a request to A failed before the kill: {e}");
        }
    }
    assert!(
        runs_a.iter().any(|r| r.failed.is_some()),
        "no client of A saw the kill (every one was idle at that instant?)"
    );
    // B never failed and is healthy.
    for r in &runs_b {
        if let Some((at, e)) = &r.failed {
            panic!(
                "a request to B failed {} the kill: {e}",
                if *at >= killed_at { "after" } else { "before" }
            );
        }
    }
    b.assert_healthy().await;

    // The records as the database holds them (B is still running; nothing of ours is pending:
    // every request B was sent was answered, so its record was committed).
    let store = PostgresStore::connect(&url).await.expect("connect to the database");
    let records = store
        .query(&AuditQuery {
            limit: 10_000_000,
            ..AuditQuery::default()
        })
        .await
        .expect("query the audit records");
    let ours = format!("rk-{run}-");
    let mut recorded: HashMap<&str, u16> = HashMap::new();
    for r in records.iter().filter(|r| r.request_id.starts_with(&ours)) {
        assert!(
            recorded.insert(r.request_id.as_str(), r.status).is_none(),
            "two records of one request: {}",
            r.request_id
        );
    }
    // Besides the load, only the sessions' opening (initialize, then the notification), each
    // recorded once.
    let opening: Vec<&AuditRecord> = records.iter().filter(|r| !r.request_id.starts_with(&ours)).collect();
    for r in &opening {
        let method = r.mcp_method.as_deref().unwrap_or("");
        assert!(
            matches!(method, "initialize" | "notifications/initialized"),
            "a record of a request this test never sent: {} {method:?}",
            r.request_id
        );
    }
    assert_eq!(opening.len(), 2 * 2 * CONNECTIONS, "records of the sessions' opening");
    // PostgreSQL, not the SQLite file `--store` named.
    for (name, stack) in [("A", &a), ("B", &b)] {
        assert!(
            !stack.dir.path().join("mcpgate.db").exists(),
            "replica {name} created the SQLite store although store.url names PostgreSQL"
        );
    }

    let (received_a, sent_a) = tally(&runs_a);
    let (received_b, sent_b) = tally(&runs_b);
    let missing = |received: &[&Received]| -> Vec<String> {
        received
            .iter()
            .filter(|r| !recorded.contains_key(r.id.as_str()))
            .map(|r| {
                format!(
                    "{} ({}, received {:?} before the kill)",
                    r.id,
                    r.status,
                    killed_at.saturating_duration_since(r.at)
                )
            })
            .collect()
    };
    let (missing_a, missing_b) = (missing(&received_a), missing(&received_b));
    let answered: HashSet<&str> = received_a.iter().chain(&received_b).map(|r| r.id.as_str()).collect();
    let in_flight_recorded = recorded.keys().filter(|id| !answered.contains(*id)).count();
    let records_a = recorded.keys().filter(|id| id.starts_with(&prefix_a)).count();
    let records_b = recorded.keys().filter(|id| id.starts_with(&prefix_b)).count();
    let b_after: Vec<&&Received> = received_b.iter().filter(|r| r.sent_at > killed_at).collect();
    let b_before = received_b.iter().filter(|r| r.at < killed_at).count();
    let refusals = |rs: &[&Received]| rs.iter().filter(|r| r.bad_key).count();
    let newest_a = received_a.iter().map(|r| r.at).max().expect("A answered");
    let last_a = killed_at.saturating_duration_since(newest_a);
    println!(
        "replica_kill: A responses={} (refusals {}) records={records_a} missing={}, sent={} \
         ({} unanswered at the kill; {in_flight_recorded} of them recorded), last response {last_a:?} \
         before the kill; B responses={} (refusals {}, {b_before} before the kill) records={records_b} \
         missing={}, requests after the kill={} over {:?}; other records={}",
        received_a.len(),
        refusals(&received_a),
        missing_a.len(),
        sent_a.len(),
        sent_a.len() - received_a.len(),
        received_b.len(),
        refusals(&received_b),
        missing_b.len(),
        b_after.len(),
        stopped_at.saturating_duration_since(killed_at),
        opening.len(),
    );

    // The load was real: both replicas answered calls and refusals, A up to the kill, B before
    // and after it.
    let enough = AT_LEAST_PER_CLIENT * CONNECTIONS;
    assert!(
        received_a.len() >= enough,
        "too few responses from A: {}",
        received_a.len()
    );
    assert!(
        b_before >= enough,
        "too few responses from B before the kill: {b_before}"
    );
    assert!(
        b_after.len() >= enough / 2,
        "too few requests to B after the kill: {}",
        b_after.len()
    );
    for rs in [&received_a, &received_b] {
        assert!(rs.iter().any(|r| r.status == 200), "no call succeeded");
        assert!(rs.iter().any(|r| r.status == 401), "no refusal");
    }
    assert!(
        b_after.iter().any(|r| r.status == 200),
        "B answered no call after the kill"
    );
    assert!(
        last_a < Duration::from_millis(500),
        "A was not under load when it was killed (last response {last_a:?} before)"
    );
    // B answered every request it was sent, each as it should; A each it answered.
    assert_eq!(received_b.len(), sent_b.len(), "requests B never answered");
    for r in received_a.iter().chain(&received_b) {
        assert_eq!(r.status, expected(r), "{} was answered {}", r.id, r.status);
    }
    // No record invented: each belongs to a request this test sent, to the replica it was sent to.
    for id in recorded.keys() {
        assert!(
            sent_a.contains(id) || sent_b.contains(id),
            "a record for a request never sent: {id}"
        );
    }
    // Each record says what its response said.
    for r in received_a.iter().chain(&received_b) {
        if let Some(s) = recorded.get(r.id.as_str()) {
            assert_eq!(
                *s, r.status,
                "the record of {} has another status than its response",
                r.id
            );
        }
    }
    assert!(
        missing_a.is_empty(),
        "{} of {} responses from the killed replica have no audit record, e.g. {:?}",
        missing_a.len(),
        received_a.len(),
        &missing_a[..missing_a.len().min(5)]
    );
    assert!(
        missing_b.is_empty(),
        "{} of {} responses from the surviving replica have no audit record, e.g. {:?}",
        missing_b.len(),
        received_b.len(),
        &missing_b[..missing_b.len().min(5)]
    );
}
