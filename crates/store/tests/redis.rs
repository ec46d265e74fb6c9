//! The conformance suite's rate-limit, replay and session parts against a real redis-server that
//! these tests start themselves (127.0.0.1, a free port, no persistence, a temporary directory;
//! `mcpgate_store::redis::testing`), each suite under a key prefix of its own; and the change
//! notices replicas send each other (`redis::changes`). Without `redis-server` on PATH the tests
//! fail, unless `MCPGATE_TEST_NO_REDIS=1`.

#![cfg(feature = "redis-testing")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mcpgate_core::principal::Limits;
use mcpgate_core::ratelimit::Now;
use mcpgate_store::redis::RedisStore;
use mcpgate_store::redis::changes::{Change, Heard, Listener};
use mcpgate_store::redis::testing::{Server, server};
use mcpgate_store::{LimitStore, ReplayStore, SessionStore, conformance};
use std::sync::Arc;
use std::time::Duration;

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

/// What a listener heard, as it comes.
fn listener(store: &RedisStore) -> (Listener, tokio::sync::mpsc::UnboundedReceiver<Heard>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let l = store.listen(move |h| {
        let _ = tx.send(h);
    });
    (l, rx)
}

/// The next event within `within` that `want` accepts (others skipped); panics naming `what`.
async fn next_where(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Heard>,
    within: Duration,
    what: &str,
    want: impl Fn(&Heard) -> bool,
) -> Heard {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(h)) if want(&h) => return h,
            Ok(Some(_)) => {}
            Ok(None) => panic!("{what}: the listener stopped"),
            Err(_) => panic!("{what}: nothing within {within:?}"),
        }
    }
}

/// Subscribed, then every kind reported changed (notices may have been missed before).
async fn subscribed(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Heard>, what: &str) {
    next_where(rx, Duration::from_secs(10), what, |h| matches!(h, Heard::Subscribed)).await;
    for c in Change::ALL {
        let h = next_where(rx, Duration::from_secs(1), what, |_| true).await;
        assert!(
            matches!(h, Heard::Changed(x) if x == c),
            "{what}: after subscribing: {h:?}"
        );
    }
}

/// Nothing more heard for a moment.
async fn quiet(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Heard>, what: &str) {
    if let Ok(Some(h)) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
        panic!("{what}: heard {h:?}");
    }
}

/// `PUBLISH channel payload` from a plain connection (any client may write to the channel).
fn publish_raw(server: &Server, channel: &str, payloads: &[&[u8]]) {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let mut out = Vec::new();
    for p in payloads {
        out.extend_from_slice(
            format!(
                "*3\r\n$7\r\nPUBLISH\r\n${}\r\n{channel}\r\n${}\r\n",
                channel.len(),
                p.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(p);
        out.extend_from_slice(b"\r\n");
    }
    c.write_all(&out).unwrap();
    // One integer reply per command.
    let mut seen = 0;
    let mut buf = [0u8; 4096];
    while seen < payloads.len() {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0, "redis closed the connection");
        seen += buf[..n].iter().filter(|b| **b == b'\n').count();
    }
}

/// Two listeners on one Redis hear a notice a third store publishes, once each, and nothing
/// else: not garbage on their channel, not notices of another prefix. The payload is one word.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_listeners_hear_a_notice_published_by_a_third() {
    let Some(server) = server("two_listeners_hear_a_notice") else {
        return;
    };
    let prefix = server.fresh_prefix();
    let a = RedisStore::connect(&server.url(), &prefix).await.unwrap();
    let b = RedisStore::connect(&server.url(), &prefix).await.unwrap();
    let c = RedisStore::connect(&server.url(), &prefix).await.unwrap();
    let other = fresh(&server).await;
    let (_la, mut ra) = listener(&a);
    let (_lb, mut rb) = listener(&b);
    subscribed(&mut ra, "A").await;
    subscribed(&mut rb, "B").await;

    let started = std::time::Instant::now();
    assert_eq!(c.publish(Change::Grants).await.unwrap(), 2, "two listeners");
    for (name, rx) in [("A", &mut ra), ("B", &mut rb)] {
        let h = next_where(rx, Duration::from_secs(1), name, |_| true).await;
        assert!(matches!(h, Heard::Changed(Change::Grants)), "{name}: {h:?}");
    }
    println!("a notice reached two listeners in {} µs", started.elapsed().as_micros());

    assert_eq!(
        other.publish(Change::Keys).await.unwrap(),
        0,
        "another prefix has no listener"
    );
    publish_raw(
        &server,
        &c.changes_channel(),
        &[
            b"",
            b"KEYS",
            b"keys ",
            b"grants:g-123",
            b"\xff\x00garbage",
            &[b'k'; 100_000],
        ],
    );
    quiet(&mut ra, "A, after garbage").await;
    quiet(&mut rb, "B, after garbage").await;
    c.publish(Change::Clients).await.unwrap();
    let h = next_where(&mut ra, Duration::from_secs(1), "A", |_| true).await;
    assert!(matches!(h, Heard::Changed(Change::Clients)), "{h:?}");
}

/// Redis stopped under a listener: it says so once, keeps trying, subscribes again when Redis is
/// back, reports every kind as changed (notices were missed), and hears the next notice. A
/// listener started while Redis is down does the same. Nothing it says names the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_listener_survives_redis_restarting() {
    let Some(server) = Server::start_own("a_listener_survives_redis_restarting") else {
        return;
    };
    let store = RedisStore::connect(&server.url(), "n:").await.unwrap();
    let (_l, mut rx) = listener(&store);
    subscribed(&mut rx, "at start").await;

    server.stop();
    let lost = next_where(&mut rx, Duration::from_secs(10), "stopped", |_| true).await;
    let Heard::Lost(e) = &lost else {
        panic!("after Redis stopped: {lost:?}")
    };
    assert!(!e.to_string().contains("127.0.0.1"), "{e}");
    let e = store.publish(Change::Keys).await.unwrap_err().to_string();
    assert!(e.contains("publish a change notice") && !e.contains("127.0.0.1"), "{e}");
    // A password in the URL is never in what the listener says.
    let with_password =
        RedisStore::open(&format!("redis://mcpgate:S3CRET-pw@127.0.0.1:{}/", server.port), "n:").unwrap();
    let (_pw, mut pw_rx) = listener(&with_password);
    let h = next_where(&mut pw_rx, Duration::from_secs(5), "with a password", |_| true).await;
    assert!(
        matches!(&h, Heard::Lost(e) if !e.to_string().contains("S3CRET")),
        "{h:?}"
    );
    assert!(!format!("{with_password:?}").contains("S3CRET"));
    // A listener started while Redis is down.
    let late = RedisStore::open(&server.url(), "n:").unwrap();
    let (_late, mut late_rx) = listener(&late);
    let h = next_where(&mut late_rx, Duration::from_secs(5), "late, Redis down", |_| true).await;
    assert!(matches!(h, Heard::Lost(_)), "{h:?}");
    // Said once per outage, however long it lasts.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    quiet(&mut rx, "while Redis is down").await;
    quiet(&mut late_rx, "late, while Redis is down").await;

    server.restart();
    let back = std::time::Instant::now();
    subscribed(&mut rx, "after the restart").await;
    subscribed(&mut late_rx, "late, after the restart").await;
    println!(
        "subscribed again {} ms after Redis restarted",
        back.elapsed().as_millis()
    );
    // While Redis was down, the publisher's shared connection failed; the first notice after
    // it is back goes through (the store tries again on a lost connection).
    assert_eq!(
        store.publish(Change::Keys).await.unwrap(),
        2,
        "the first publish after the restart"
    );
    for (name, rx) in [("first", &mut rx), ("late", &mut late_rx)] {
        let h = next_where(rx, Duration::from_secs(1), name, |_| true).await;
        assert!(matches!(h, Heard::Changed(Change::Keys)), "{name}: {h:?}");
    }
}

/// Ten thousand notices in a burst are all read (the listener keeps up) and quickly.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_listener_keeps_up_with_a_flood() {
    let Some(server) = server("a_listener_keeps_up_with_a_flood") else {
        return;
    };
    let store = fresh(&server).await;
    let (_l, mut rx) = listener(&store);
    subscribed(&mut rx, "flood").await;
    let channel = store.changes_channel();
    let started = std::time::Instant::now();
    let flood: Vec<&[u8]> = (0..10_000)
        .map(|i| if i % 2 == 0 { &b"keys"[..] } else { b"junk" })
        .collect();
    publish_raw(&server, &channel, &flood);
    for _ in 0..5_000 {
        let h = next_where(&mut rx, Duration::from_secs(5), "flood", |_| true).await;
        assert!(matches!(h, Heard::Changed(Change::Keys)), "{h:?}");
    }
    println!(
        "10000 notices (half garbage) published and read in {} ms",
        started.elapsed().as_millis()
    );
    quiet(&mut rx, "after the flood").await;
}
