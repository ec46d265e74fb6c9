//! The conformance suite's rate-limit, replay and session parts against a real redis-server that
//! these tests start themselves (127.0.0.1, a free port, no persistence, a temporary directory;
//! `mcpgate_store::redis::testing`), each suite under a key prefix of its own. Without
//! `redis-server` on PATH the tests fail, unless `MCPGATE_TEST_NO_REDIS=1`.

#![cfg(feature = "redis-testing")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mcpgate_core::principal::Limits;
use mcpgate_core::ratelimit::Now;
use mcpgate_store::redis::RedisStore;
use mcpgate_store::redis::testing::{Server, server};
use mcpgate_store::{LimitStore, ReplayStore, SessionStore, conformance};
use std::sync::Arc;

async fn fresh(server: &Server) -> Arc<RedisStore> {
    Arc::new(
        RedisStore::connect(&server.url(), &server.fresh_prefix())
            .await
            .expect("connect to the throwaway Redis"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_passes_the_limits_suite() {
    let Some(server) = server("redis_passes_the_limits_suite") else {
        return;
    };
    conformance::limits(fresh(&server).await).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_passes_the_replay_suite() {
    let Some(server) = server("redis_passes_the_replay_suite") else {
        return;
    };
    conformance::replay(fresh(&server).await).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_passes_the_sessions_suite() {
    let Some(server) = server("redis_passes_the_sessions_suite") else {
        return;
    };
    conformance::sessions(fresh(&server).await).await.unwrap();
}

/// Two stores on one Redis (two gateways): a limit is one limit, a claim made through one is a
/// replay through the other, a session opened through one is known to the other; prefixes keep
/// deployments apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_on_one_redis_agree() {
    let Some(server) = server("two_stores_on_one_redis_agree") else {
        return;
    };
    let prefix = server.fresh_prefix();
    let a = RedisStore::connect(&server.url(), &prefix).await.unwrap();
    let b = RedisStore::connect(&server.url(), &prefix).await.unwrap();
    let other = fresh(&server).await;
    let now = Now {
        mono_us: 1_000_000,
        unix_s: 1_700_000_000,
    };
    let two = Limits {
        per_minute: Some(2),
        ..Limits::default()
    };
    assert!(a.check("k", &two, None, now).await.unwrap().is_ok());
    assert!(b.check("k", &two, None, now).await.unwrap().is_ok());
    assert!(a.check("k", &two, None, now).await.unwrap().is_err());
    assert!(b.check("k", &two, None, now).await.unwrap().is_err());
    assert!(other.check("k", &two, None, now).await.unwrap().is_ok());
    assert!(a.claim(b"sig", 1_000, 10).await.unwrap());
    assert!(!b.claim(b"sig", 1_000, 11).await.unwrap());
    assert!(other.claim(b"sig", 1_000, 11).await.unwrap());
    a.open("s1", Some("key:x"), None, 5).await.unwrap();
    assert_eq!(
        b.touch("s1", 6).await.unwrap().and_then(|s| s.owner).as_deref(),
        Some("key:x")
    );
    assert!(other.touch("s1", 6).await.unwrap().is_none());
}

/// Redis stopped: every call fails (an error, quickly — never a false "admitted" or "first
/// use"); started again: the same store works, without being rebuilt.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_store_fails_while_redis_is_down_and_recovers_without_a_restart() {
    let Some(server) = Server::start_own("a_store_fails_while_redis_is_down") else {
        return;
    };
    let store = RedisStore::connect(&server.url(), "f:").await.unwrap();
    let now = Now {
        mono_us: 1_000_000,
        unix_s: 1_700_000_000,
    };
    let one = Limits {
        per_minute: Some(100),
        ..Limits::default()
    };
    assert!(store.check("k", &one, None, now).await.unwrap().is_ok());
    server.stop();
    let started = std::time::Instant::now();
    let err = store.check("k", &one, None, now).await.unwrap_err().to_string();
    assert!(err.contains("redis: rate-limit check: not reachable"), "{err}");
    assert!(!err.contains("127.0.0.1"), "the error names the server: {err}");
    assert!(store.claim(b"x", 100, 10).await.is_err());
    assert!(store.touch("s", 1).await.is_err());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(8),
        "failing took {:?}",
        started.elapsed()
    );
    server.restart();
    let mut back = false;
    for _ in 0..100 {
        if store.check("k", &one, None, now).await.is_ok_and(|r| r.is_ok()) {
            back = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(back, "the store did not recover after Redis came back");
    assert!(store.claim(b"x", 100, 10).await.unwrap());
}
