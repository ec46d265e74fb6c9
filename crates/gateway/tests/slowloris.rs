//! The server loop against slow and idle clients, on real loopback sockets through
//! `mcpgate_gateway::serve`: half-sent request heads, idle kept-alive connections (HTTP/1.1 and
//! h2c), dribbled bodies, oversized heads, a full connection table, graceful shutdown, SSE
//! streams that must outlive every timer, the Host/Origin check and credential on the gateway's
//! own pages, and the per-principal session and stream caps.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use mcpgate_core::principal::Role;
use mcpgate_testkit::apikey::*;
use mcpgate_testkit::harness::*;
use mcpgate_testkit::time::eventually;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A gateway served on a real listener (127.0.0.1:0), with the harness's [`Gw`] beside it for
/// in-process calls on the same gateway (same sessions, keys and audit).
struct Served {
    gw: Gw,
    addr: SocketAddr,
    listening: Listening,
}

async fn serve(setup: Setup) -> Served {
    let gw = setup.start().await;
    let listening = gw.listen().await;
    Served {
        addr: listening.addr,
        gw,
        listening,
    }
}

impl Served {
    /// Signals shutdown; returns how long `serve` took to return.
    async fn shut_down(self) -> Duration {
        self.listening.shut_down().await
    }
}

/// One HTTP/1.1 exchange on a fresh connection (`Connection: close`): status and body.
async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut c = TcpStream::connect(addr).await.expect("connect");
    let mut head = format!("GET {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str("Host: localhost\r\n");
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    c.write_all(head.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(REQUEST_LIMIT, c.read_to_end(&mut raw))
        .await
        .expect("answer in time")
        .expect("read");
    parse_response(&raw)
}

/// Reads a response head, then its body if it has a Content-Length (a stream has none: only
/// the head is read, the connection stays usable for more).
async fn read_head_and_known_body(c: &mut TcpStream) -> Vec<u8> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 2048];
    loop {
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            match length {
                Some(n) if raw.len() < end + 4 + n => {}
                _ => return raw,
            }
        }
        let n = tokio::time::timeout(REQUEST_LIMIT, c.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed mid-response: {:?}", String::from_utf8_lossy(&raw));
        raw.extend_from_slice(&buf[..n]);
    }
}

fn parse_response(raw: &[u8]) -> (u16, String) {
    let text = String::from_utf8_lossy(raw);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Reads (and discards) until the peer closes; how long that took, or `None` if still open
/// after `limit`.
async fn time_to_close(c: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let t = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.checked_sub(t.elapsed())?;
        match tokio::time::timeout(left, c.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(t.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

fn assert_closed_near(what: &str, took: Option<Duration>, low: f64, high: f64) {
    let took = took.unwrap_or_else(|| panic!("{what}: still open after {high} s"));
    println!("{what}: closed after {:.3} s", took.as_secs_f64());
    assert!(
        (low..=high).contains(&took.as_secs_f64()),
        "{what}: closed after {took:?}, expected between {low} and {high} s"
    );
}

/// Raises this process's descriptor soft limit to the hard limit when it is below `want`.
fn raise_fd_limit(want: u64) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let lim = getrlimit(Resource::Nofile);
    if lim.current.is_none_or(|c| c >= want) {
        return;
    }
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: lim.maximum,
            maximum: lim.maximum,
        },
    )
    .expect("raise RLIMIT_NOFILE to the hard limit");
    let now = getrlimit(Resource::Nofile).current;
    assert!(
        now.is_none_or(|c| c >= want),
        "this test needs {want} descriptors; the hard limit allows {now:?}"
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

// (a) ------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_while_a_thousand_heads_hang() {
    const HALF_OPEN: usize = 1000;
    // Both ends of every connection live in this process.
    raise_fd_limit(2 * HALF_OPEN as u64 + 256);
    let s = serve(Setup::new("[http]\nheader_read_timeout_s = 2")).await;
    let started = Instant::now();
    let mut hanging = Vec::with_capacity(HALF_OPEN);
    for i in 0..HALF_OPEN {
        let mut c = TcpStream::connect(s.addr).await.expect("connect");
        c.write_all(format!("GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow-{i}: ").as_bytes())
            .await
            .expect("write");
        hanging.push(c);
    }
    let all_open = Instant::now();
    println!(
        "{HALF_OPEN} half-sent heads open after {:.0} ms",
        ms(all_open - started)
    );
    // Let the server accept and start reading all of them.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut times = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let (status, body) = get(s.addr, "/healthz", &[]).await;
        times.push(t.elapsed());
        assert_eq!((status, body.as_str()), (200, "ok"));
    }
    let mut sorted = times.clone();
    sorted.sort();
    let (median, max) = (sorted[sorted.len() / 2], sorted[sorted.len() - 1]);
    println!(
        "/healthz on a fresh connection with {HALF_OPEN} half-sent heads open: median {:.2} ms, max {:.2} ms, all {:?}",
        ms(median),
        ms(max),
        times.iter().map(|d| format!("{:.2}", ms(*d))).collect::<Vec<_>>()
    );
    assert!(median < Duration::from_millis(100), "median {median:?}");
    // Even on a loaded machine, every probe far below the head timeout that frees the hanging
    // connections: they did not have to go first.
    assert!(max < Duration::from_secs(1), "max {max:?}");
    // The youngest hanging connections are held, not refused...
    for c in hanging.iter_mut().rev().take(10) {
        assert_eq!(
            time_to_close(c, Duration::from_millis(20)).await,
            None,
            "a half-sent head was dropped before its timeout"
        );
    }
    // ...and every one is closed by the head timeout (2 s), which frees the server's descriptors.
    let deadline = all_open + Duration::from_secs(5);
    for (i, c) in hanging.iter_mut().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            time_to_close(c, left).await.is_some(),
            "half-sent head #{i} still open 5 s after the last was sent"
        );
    }
    println!(
        "all {HALF_OPEN} closed by the server {:.2} s after the last was opened",
        (Instant::now() - all_open).as_secs_f64()
    );
    s.shut_down().await;
}

// (b) ------------------------------------------------------------------------------------------

#[tokio::test]
async fn half_sent_head_is_closed_at_the_header_timeout() {
    let s = serve(Setup::new("[http]\nheader_read_timeout_s = 1\nidle_timeout_s = 60")).await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    assert_closed_near(
        "half-sent head",
        time_to_close(&mut c, Duration::from_secs(5)).await,
        0.9,
        3.0,
    );
    // A connection that sends nothing at all is closed by the same time.
    let mut silent = TcpStream::connect(s.addr).await.unwrap();
    assert_closed_near(
        "silent connection",
        time_to_close(&mut silent, Duration::from_secs(5)).await,
        0.9,
        3.0,
    );
    // So is an h2c connection stuck in its preface (hyper does not time that itself).
    let mut preface = TcpStream::connect(s.addr).await.unwrap();
    preface.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    assert_closed_near(
        "partial h2 preface",
        time_to_close(&mut preface, Duration::from_secs(5)).await,
        0.9,
        3.0,
    );
    s.shut_down().await;
}

// (c) ------------------------------------------------------------------------------------------

/// One kept-alive HTTP/1.1 exchange; returns the connection, open.
async fn keep_alive_exchange(addr: SocketAddr) -> TcpStream {
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 1024];
    while !raw.ends_with(b"\r\n\r\nok") {
        let n = tokio::time::timeout(REQUEST_LIMIT, c.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed before the answer: {:?}", String::from_utf8_lossy(&raw));
        raw.extend_from_slice(&buf[..n]);
    }
    assert!(raw.starts_with(b"HTTP/1.1 200"));
    c
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    let s = serve(Setup::new("[http]\nheader_read_timeout_s = 10\nidle_timeout_s = 1")).await;
    let mut c = keep_alive_exchange(s.addr).await;
    assert_closed_near(
        "idle HTTP/1.1",
        time_to_close(&mut c, Duration::from_secs(5)).await,
        0.9,
        3.0,
    );

    // h2c (prior knowledge): the idle timer is ours alone.
    let stream = TcpStream::connect(s.addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .expect("h2c handshake");
    let conn = tokio::spawn(conn);
    let req = http::Request::get(format!("http://{}/healthz", s.addr))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = send.send_request(req).await.expect("h2c request");
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"ok");
    let t = Instant::now();
    let _ = tokio::time::timeout(Duration::from_secs(5), conn)
        .await
        .expect("h2c connection still open after 5 s");
    assert_closed_near("idle h2c", Some(t.elapsed()), 0.9, 3.0);
    s.shut_down().await;
}

#[tokio::test]
async fn idle_http1_is_also_bounded_by_the_header_timeout() {
    // hyper re-arms its head timer when a kept-alive HTTP/1.1 connection goes idle, so the
    // smaller of the two timeouts closes it (README documents this).
    let s = serve(Setup::new("[http]\nheader_read_timeout_s = 1\nidle_timeout_s = 60")).await;
    let mut c = keep_alive_exchange(s.addr).await;
    assert_closed_near(
        "idle HTTP/1.1, head timer",
        time_to_close(&mut c, Duration::from_secs(5)).await,
        0.9,
        3.0,
    );
    s.shut_down().await;
}

// (d) ------------------------------------------------------------------------------------------

#[tokio::test]
async fn slow_body_is_cut_at_the_body_timeout() {
    let setup = Setup::new("[http]\nbody_timeout_s = 1\nheader_read_timeout_s = 10\nidle_timeout_s = 60");
    let alice = setup.key(key("alice"));
    let s = serve(setup).await;
    let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nX-API-Key: {}\r\nContent-Length: {}\r\n\r\n",
        alice.key,
        body.len()
    );
    c.write_all(head.as_bytes()).await.unwrap();
    // One byte every 200 ms: the whole body would take 12 s.
    let t = Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    for b in body {
        if c.write_all(&[*b]).await.is_err() {
            break;
        }
        match tokio::time::timeout(Duration::from_millis(200), c.read(&mut buf)).await {
            Err(_) => {}
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                answer.extend_from_slice(&buf[..n]);
                break;
            }
        }
    }
    let took = t.elapsed();
    let text = String::from_utf8_lossy(&answer);
    println!("slow body: {:?} after {:.2} s", text.lines().next(), took.as_secs_f64());
    assert!(text.starts_with("HTTP/1.1 408"), "slow body: {text:?}");
    assert!(
        (0.9..3.0).contains(&took.as_secs_f64()),
        "cut after {took:?}, body_timeout_s = 1"
    );
    s.shut_down().await;
}

// (e) ------------------------------------------------------------------------------------------

#[tokio::test]
async fn sse_streams_outlive_every_timer() {
    let setup = Setup::new("[http]\nheader_read_timeout_s = 1\nidle_timeout_s = 1");
    let alice = setup.key(key("alice"));
    let s = serve(setup).await;
    let headers = [alice.x_api_key()];
    let session = s.gw.initialize(&headers).await;
    let hold = Duration::from_millis(3500);

    // HTTP/1.1
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    let head = format!(
        "GET /mcp HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\nX-API-Key: {}\r\n\
         Mcp-Session-Id: {session}\r\nMcp-Protocol-Version: {PROTOCOL}\r\n\r\n",
        alice.key
    );
    c.write_all(head.as_bytes()).await.unwrap();
    let mut first = [0u8; 1024];
    let n = tokio::time::timeout(REQUEST_LIMIT, c.read(&mut first))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&first[..n]).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 200"), "GET stream: {text}");
    assert!(text.contains("text/event-stream"), "GET stream: {text}");
    assert_eq!(
        time_to_close(&mut c, hold).await,
        None,
        "the HTTP/1.1 SSE stream was cut by a timer"
    );

    // h2c
    let stream = TcpStream::connect(s.addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .expect("h2c handshake");
    let conn = tokio::spawn(conn);
    let req = http::Request::get(format!("http://{}/mcp", s.addr))
        .header("accept", "text/event-stream")
        .header("x-api-key", &alice.key)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", PROTOCOL)
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = send.send_request(req).await.expect("h2c GET");
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let t = Instant::now();
    while let Some(left) = hold.checked_sub(t.elapsed()) {
        match tokio::time::timeout(left, body.frame()).await {
            Err(_) => break,
            Ok(Some(Ok(_))) => {}
            Ok(end) => panic!("the h2c SSE stream ended after {:?}: {end:?}", t.elapsed()),
        }
    }
    assert!(!conn.is_finished(), "the h2c connection closed under an open stream");
    drop(body);
    s.shut_down().await;
}

// (f) ------------------------------------------------------------------------------------------

const PAGES: [&str; 7] = [
    "/healthz",
    "/readyz",
    "/metrics",
    "/mcp/status",
    "/auth/me",
    "/.well-known/oauth-protected-resource",
    "/.well-known/oauth-protected-resource/mcp",
];

/// Public discovery documents: browser-based MCP clients fetch them from their own origin, so any
/// Origin may read them (CORS, no credentials) — but never through a foreign Host.
const DOCUMENTS: [&str; 2] = [
    "/.well-known/oauth-protected-resource",
    "/.well-known/oauth-protected-resource/mcp",
];

#[tokio::test]
async fn every_page_refuses_a_foreign_host_or_origin() {
    let setup = Setup::new("");
    let admin = setup.key(key("root").role(Role::Admin));
    let s = serve(setup).await;
    for page in PAGES {
        let (status, body) = get(s.addr, page, &[("Host", "evil.example"), admin.x_api_key()]).await;
        assert_eq!(status, 403, "{page} with Host evil.example: {body}");
        assert!(body.contains("allowed_hosts"), "{page}: {body}");
        let (status, body) = get(s.addr, page, &[("Origin", "http://evil.example"), admin.x_api_key()]).await;
        if DOCUMENTS.contains(&page) {
            assert_eq!(status, 200, "{page} is public to every origin: {body}");
        } else {
            assert_eq!(status, 403, "{page} with a foreign Origin: {body}");
        }
        let (status, body) = get(s.addr, page, &[admin.x_api_key()]).await;
        assert!(
            status == 200 || (page == "/readyz" && status == 503),
            "{page}: {status} {body}"
        );
    }
    // /metrics needs no credential unless asked.
    assert_eq!(get(s.addr, "/metrics", &[]).await.0, 200);
    s.shut_down().await;
}

#[tokio::test]
async fn metrics_can_require_an_admin() {
    let setup = Setup::new("[metrics]\nrequire_auth = true");
    let user = setup.key(key("alice"));
    let admin = setup.key(key("root").role(Role::Admin));
    let s = serve(setup).await;
    let (status, body) = get(s.addr, "/metrics", &[("Host", "evil.example"), admin.x_api_key()]).await;
    assert_eq!(status, 403, "foreign Host first: {body}");
    let (status, body) = get(s.addr, "/metrics", &[]).await;
    assert_eq!(status, 401, "no key: {body}");
    let (status, body) = get(s.addr, "/metrics", &[user.x_api_key()]).await;
    assert_eq!(status, 403, "user key: {body}");
    assert!(body.contains("admin"), "{body}");
    let (status, body) = get(s.addr, "/metrics", &[("X-API-Key", "mcp_nope_nope")]).await;
    assert_eq!(status, 401, "unknown key: {body}");
    let (status, body) = get(s.addr, "/metrics", &[admin.x_api_key()]).await;
    assert_eq!(status, 200, "admin key: {body}");
    assert!(body.contains("# EOF"), "{body}");
    for secret in [&user.key, &admin.key] {
        assert!(!body.contains(secret.as_str()));
    }
    s.shut_down().await;
}

#[tokio::test]
async fn metrics_refuses_the_anonymous_default_role() {
    // Callers without a credential run as admin here; `require_auth` still wants a credential.
    let s = serve(Setup::new(
        "[auth]\ndefault_role = \"admin\"\n[metrics]\nrequire_auth = true",
    ))
    .await;
    assert_eq!(get(s.addr, "/metrics", &[]).await.0, 401);
    s.shut_down().await;
}

// More limits -------------------------------------------------------------------------------

#[tokio::test]
async fn oversized_head_gets_431() {
    let s = serve(Setup::new("[http]\nmax_header_bytes = 8192")).await;
    let big = "a".repeat(10_000);
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    let head = format!("GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: {big}\r\n\r\n");
    // The server may close before reading it all; that is a refusal too.
    let _ = c.write_all(head.as_bytes()).await;
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(REQUEST_LIMIT, c.read_to_end(&mut raw))
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&raw);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 431"),
        "a 10 kB head: {text:?}"
    );
    println!("10 kB head with max_header_bytes = 8192: {:?}", text.lines().next());
    // A head under the limit is served.
    let (status, _) = get(s.addr, "/healthz", &[("X-Fine", &"b".repeat(4000))]).await;
    assert_eq!(status, 200);
    s.shut_down().await;
}

#[tokio::test]
async fn connections_beyond_the_cap_are_closed_at_once() {
    let s = serve(Setup::new("[http]\nmax_connections = 5\nheader_read_timeout_s = 30")).await;
    let mut held = Vec::new();
    for _ in 0..5 {
        let mut c = TcpStream::connect(s.addr).await.unwrap();
        c.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
        held.push(c);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = TcpStream::connect(s.addr).await.unwrap();
    let took = time_to_close(&mut extra, Duration::from_secs(2)).await;
    let took = took.expect("the sixth connection should be closed at once");
    println!("sixth connection closed after {:.1} ms", ms(took));
    assert!(took < Duration::from_millis(500), "{took:?}");
    // A freed place is used again.
    drop(held.pop());
    eventually(Duration::from_secs(5), "a freed connection slot is reused", || async {
        let Ok(mut c) = TcpStream::connect(s.addr).await else {
            return false;
        };
        if c.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .is_err()
        {
            return false;
        }
        let mut raw = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(2), c.read_to_end(&mut raw)).await;
        raw.starts_with(b"HTTP/1.1 200")
    })
    .await;
    s.shut_down().await;
}

#[tokio::test]
async fn shutdown_finishes_calls_then_drops_streams() {
    let setup = Setup::new("[http]\nshutdown_grace_s = 2");
    let alice = setup.key(key("alice"));
    let s = serve(setup).await;
    let headers = [alice.x_api_key()];
    let session = s.gw.initialize(&headers).await;
    // An open SSE stream, which never ends by itself.
    let mut sse = TcpStream::connect(s.addr).await.unwrap();
    let head = format!(
        "GET /mcp HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\nX-API-Key: {}\r\n\
         Mcp-Session-Id: {session}\r\nMcp-Protocol-Version: {PROTOCOL}\r\n\r\n",
        alice.key
    );
    sse.write_all(head.as_bytes()).await.unwrap();
    let mut buf = [0u8; 512];
    let n = sse.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    // A call in flight when shutdown starts: `slow` takes 3 × 300 ms.
    let body = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"slow","arguments":{"steps":3,"delay_ms":300}}}"#;
    let mut call = TcpStream::connect(s.addr).await.unwrap();
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nX-API-Key: {}\r\nMcp-Session-Id: {session}\r\n\
         Mcp-Protocol-Version: {PROTOCOL}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        alice.key,
        body.len()
    );
    call.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let addr = s.addr;
    let answer = tokio::spawn(async move {
        let mut raw = Vec::new();
        let _ = tokio::time::timeout(REQUEST_LIMIT, call.read_to_end(&mut raw)).await;
        String::from_utf8_lossy(&raw).into_owned()
    });
    let took = s.shut_down().await;
    println!("serve returned {:.2} s after the shutdown signal", took.as_secs_f64());
    let answer = answer.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "in-flight call: {answer}");
    assert!(answer.contains(r#""id":7"#) && answer.contains("result"), "{answer}");
    // The SSE stream held serve open for the grace period, then was dropped.
    assert!(
        took >= Duration::from_millis(1800) && took < Duration::from_secs(5),
        "serve returned after {took:?} (grace 2 s)"
    );
    assert!(
        time_to_close(&mut sse, Duration::from_secs(2)).await.is_some(),
        "stream dropped"
    );
    // Nothing listens any more.
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "still accepting after shutdown"
    );
}

#[tokio::test]
async fn audit_keeps_the_client_address() {
    let setup = Setup::new("");
    let alice = setup.key(key("alice"));
    let s = serve(setup).await;
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}"#;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nX-API-Key: {}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        alice.key,
        body.len()
    );
    c.write_all(head.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(REQUEST_LIMIT, c.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(parse_response(&raw).0, 200, "{}", String::from_utf8_lossy(&raw));
    let records = s.gw.audit().await;
    assert!(
        records.iter().any(|r| r.client_addr.as_deref() == Some("127.0.0.1")),
        "no audit record with the peer address: {records:?}"
    );
    s.shut_down().await;
}

// Per-principal caps, end to end ---------------------------------------------------------------

/// Opens a GET stream on its own connection; the status, and the connection (open while the
/// stream lasts).
async fn open_stream(addr: SocketAddr, key: &str, session: &str) -> (u16, String, TcpStream) {
    let mut c = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "GET /mcp HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\nX-API-Key: {key}\r\n\
         Mcp-Session-Id: {session}\r\nMcp-Protocol-Version: {PROTOCOL}\r\n\r\n"
    );
    c.write_all(head.as_bytes()).await.unwrap();
    let raw = read_head_and_known_body(&mut c).await;
    let (status, body) = parse_response(&raw);
    (status, body, c)
}

#[tokio::test]
async fn open_streams_are_capped_per_principal_and_freed_on_disconnect() {
    let setup = Setup::new("[http]\nmax_streams_per_principal = 1");
    let alice = setup.key(key("alice"));
    let bob = setup.key(key("bob"));
    let s = serve(setup).await;
    let a1 = s.gw.initialize(&[alice.x_api_key()]).await;
    let a2 = s.gw.initialize(&[alice.x_api_key()]).await;
    let b1 = s.gw.initialize(&[bob.x_api_key()]).await;
    let (status, _, first) = open_stream(s.addr, &alice.key, &a1).await;
    assert_eq!(status, 200);
    let (status, body, _) = open_stream(s.addr, &alice.key, &a2).await;
    assert_eq!(status, 429, "second stream of alice: {body}");
    assert!(body.contains("open GET streams"), "{body}");
    let (status, _, _bob_stream) = open_stream(s.addr, &bob.key, &b1).await;
    assert_eq!(status, 200, "bob has his own count");
    // The client goes away: its place is freed.
    drop(first);
    eventually(Duration::from_secs(5), "the closed stream's place is freed", || async {
        open_stream(s.addr, &alice.key, &a2).await.0 == 200
    })
    .await;
    s.shut_down().await;
}

#[tokio::test]
async fn sessions_are_capped_per_principal() {
    let setup = Setup::new("[upstream]\nmax_sessions_per_principal = 2");
    let alice = setup.key(key("alice"));
    let bob = setup.key(key("bob"));
    let gw = setup.start().await;
    let h = [alice.x_api_key()];
    let first = gw.initialize(&h).await;
    gw.initialize(&h).await;
    let r = gw.try_initialize(&h).await;
    assert_eq!(r.status, 429, "third session of alice: {}", r.text);
    assert!(r.message().contains("open sessions"), "{}", r.text);
    gw.initialize(&[bob.x_api_key()]).await;
    // Ending one frees its place.
    let with_session = [alice.x_api_key(), ("mcp-session-id", first.as_str())];
    assert!(gw.delete("/mcp", &with_session).await.status.is_success());
    gw.initialize(&h).await;
}
