//! End to end: the real `mcpgate` binary in front of the real example upstream (stdio and HTTP),
//! driven over loopback by the official Rust MCP client (rmcp) and by raw HTTP.
//!
//! Run with `cargo test -p mcpgate --test e2e`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::gateway_bin;
use futures_util::future::join_all;
use mcpgate_testkit::client::*;
use mcpgate_testkit::process::*;
use mcpgate_testkit::raw::*;
use mcpgate_testkit::time::*;
use rmcp::ServiceError;
use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const DEMO_TOOLS: &[&str] = &["echo", "add", "slow", "ask_name", "summarize", "crash", "inspect"];

// ---- 1. the MCP features a gateway must carry, through both upstream kinds --------------------

async fn mcp_round_trips(kind: Kind) {
    let mut stack = Stack::new(gateway_bin(), kind).await;
    let name = format!("Ada-{}", nonce());
    let handler = TestClient::new(&name);
    let (client, spy) = stack.connect(handler.clone()).await;

    // tools/list
    let tools = within(STEP, "tools/list", client.list_all_tools())
        .await
        .expect("tools/list");
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    for want in DEMO_TOOLS {
        assert!(names.contains(want), "{kind:?}: tools/list lacks {want}: {names:?}");
    }

    // Plain calls: the exact text (non-ASCII included) and a computed result come back.
    let text = format!("héllo, wörld ✓ \"quoted\" {}", nonce());
    assert_eq!(
        call_text(&client, "echo", json!({ "text": text })).await,
        Ok(text.clone())
    );
    assert_eq!(
        call_text(&client, "add", json!({ "a": 2, "b": 40.5 })).await,
        Ok("42.5".to_string())
    );

    // Progress: every step's notification reaches this client, while the call is still running.
    let steps = 4;
    let started = Instant::now();
    let done = call_text(&client, "slow", json!({ "steps": steps, "delay_ms": 150 })).await;
    let finished = Instant::now();
    assert_eq!(done, Ok(format!("done after {steps} steps")), "{kind:?}");
    poll_until(STEP, "all progress notifications arrive", || {
        let n = handler.progress_count();
        async move { (n >= steps).then_some(()) }
    })
    .await;
    {
        let seen = handler.seen.progress.lock().unwrap();
        assert_eq!(seen.len(), steps, "{kind:?}: progress notifications: {seen:?}");
        let token = &seen[0].0.progress_token;
        for (i, (p, _)) in seen.iter().enumerate() {
            assert_eq!(&p.progress_token, token, "one call, one progress token");
            assert_eq!(p.progress, (i + 1) as f64, "{kind:?}: progress in order");
            assert_eq!(p.total, Some(steps as f64));
        }
        // Streamed, not buffered until the end: the first step arrived long before the result.
        let first = seen[0].1;
        assert!(
            first > started && first + Duration::from_millis(200) < finished,
            "{kind:?}: first progress at {:?}, call finished at {:?}: progress was not streamed",
            first - started,
            finished - started
        );
    }

    // Elicitation: the server asks this client mid-call; the answer reaches the tool.
    assert_eq!(
        call_text(&client, "ask_name", json!({})).await,
        Ok(format!("hello, {name}")),
        "{kind:?}"
    );
    assert_eq!(handler.seen.elicitations.load(Ordering::SeqCst), 1);

    // Sampling: the server asks this client's model; the prompt carried the input, the tool
    // returns the model's answer.
    let input = format!("The quick brown fox {}", nonce());
    assert_eq!(
        call_text(&client, "summarize", json!({ "text": input })).await,
        Ok(format!("{MODEL_REPLY_PREFIX}{name}")),
        "{kind:?}"
    );
    assert_eq!(handler.seen.samplings.load(Ordering::SeqCst), 1);
    assert!(
        handler.seen.sampled_prompts.lock().unwrap()[0].contains(&input),
        "the sampling request did not carry the tool's input"
    );

    // Session end: the client's DELETE succeeds, and the id is dead afterwards.
    let session = spy.session_id().expect("the client used a session id");
    within(STEP, "client close (DELETE)", client.cancel())
        .await
        .expect("client close");
    assert_eq!(spy.delete_outcome(), Some(Ok(())), "{kind:?}: DELETE failed");
    let raw = stack.raw();
    let r = raw
        .rpc(
            Some(&session),
            &json!({ "jsonrpc": "2.0", "id": 7, "method": "tools/list" }),
        )
        .await;
    assert_eq!(r.status, 404, "{kind:?}: deleted session still answers: {r:?}");
    assert_eq!(r.error_code(), Some(-32004), "{r:?}");
    assert_eq!(r.rpc.as_ref().unwrap()["id"], json!(7), "error echoes the id");
    let r = Raw::send(raw.request(reqwest::Method::DELETE).header("mcp-session-id", &session)).await;
    assert_eq!(r.status, 404, "{kind:?}: second DELETE: {r:?}");

    stack.assert_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_round_trips_stdio_upstream() {
    mcp_round_trips(Kind::Stdio).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_round_trips_http_upstream() {
    mcp_round_trips(Kind::Http).await;
}

/// The newest protocol the client knows (2026-07-28): the client offers it in `initialize`; the
/// server then asks for input with `input_required` results instead of requests of its own.
async fn newest_protocol_round_trips(kind: Kind) {
    let mut stack = Stack::new(gateway_bin(), kind).await;
    let name = format!("Grace-{}", nonce());
    let handler = TestClient::new(&name).with_protocol(rmcp::model::ProtocolVersion::LATEST);
    let (client, _spy) = stack.connect(handler.clone()).await;
    let text = format!("newest {}", nonce());
    assert_eq!(call_text(&client, "echo", json!({ "text": text })).await, Ok(text));
    assert_eq!(
        call_text(&client, "ask_name", json!({})).await,
        Ok(format!("hello, {name}")),
        "{kind:?}"
    );
    assert_eq!(
        call_text(&client, "summarize", json!({ "text": "abc" })).await,
        Ok(format!("{MODEL_REPLY_PREFIX}{name}")),
        "{kind:?}"
    );
    let _ = within(STEP, "close", client.cancel()).await;
    stack.assert_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newest_protocol_round_trips_stdio_upstream() {
    newest_protocol_round_trips(Kind::Stdio).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newest_protocol_round_trips_http_upstream() {
    newest_protocol_round_trips(Kind::Http).await;
}

// ---- 2. a crashing stdio upstream ---------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_upstream_crash_fails_the_call_and_restarts() {
    let mut stack = Stack::new(gateway_bin(), Kind::Stdio).await;
    let (client, _spy) = stack.connect(TestClient::new("crash")).await;
    let (bystander, _spy2) = stack.connect(TestClient::new("bystander")).await;
    assert_eq!(
        call_text(&client, "echo", json!({ "text": "before" })).await,
        Ok("before".into())
    );

    // The call that kills the process gets an error promptly (not a hang).
    let crash = CallToolRequestParams::new("crash").with_arguments(Default::default());
    let err = within(STEP, "the crash call to fail", client.call_tool(crash))
        .await
        .expect_err("a call whose upstream process died must fail");
    match &err {
        ServiceError::McpError(e) => assert_eq!(e.code.0, -32050, "{err}"),
        other => panic!("expected a JSON-RPC error from the gateway, got {other}"),
    }

    // Another session has its own process: unaffected.
    assert_eq!(
        call_text(&bystander, "echo", json!({ "text": "unaffected" })).await,
        Ok("unaffected".into())
    );

    // The same session works again once the process is restarted.
    let t0 = Instant::now();
    loop {
        let attempt = tokio::time::timeout(
            Duration::from_secs(5),
            call_text(&client, "echo", json!({ "text": "after" })),
        )
        .await;
        let last = match attempt {
            Ok(Ok(t)) => {
                assert_eq!(t, "after");
                break;
            }
            Ok(Err(e)) => e,
            Err(_) => "attempt timed out".to_string(),
        };
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the session did not recover within 10 s; last error: {last}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("session recovered {:?} after the crash", t0.elapsed());

    let metrics = stack.metrics().await;
    let restarts = metric_value(&metrics, "mcpgate_upstream_restarts_total")
        .unwrap_or_else(|| panic!("no mcpgate_upstream_restarts_total in:\n{metrics}"));
    assert!(restarts >= 1.0, "restarts = {restarts}");

    let _ = within(STEP, "close", client.cancel()).await;
    let _ = within(STEP, "close", bystander.cancel()).await;
    stack.assert_healthy().await;
}

/// The value of an unlabelled sample `name` in Prometheus/OpenMetrics text.
fn metric_value(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let mut parts = l.split_whitespace();
        (parts.next()? == name).then(|| parts.next()?.parse().ok())?
    })
}

// ---- 3. bad input -------------------------------------------------------------------------------

/// Asserts status and JSON-RPC error code of a refusal, and that the body is a JSON-RPC error.
fn assert_refused(what: &str, r: &Reply, status: u16, code: Option<i64>) {
    assert_eq!(r.status, status, "{what}: {r:?}");
    let msg = r
        .rpc
        .as_ref()
        .unwrap_or_else(|| panic!("{what}: body is not JSON: {:?}", r.body));
    assert_eq!(msg["jsonrpc"], "2.0", "{what}: {msg}");
    assert!(
        msg["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: error without a message: {msg}"
    );
    if let Some(code) = code {
        assert_eq!(r.error_code(), Some(code), "{what}: {msg}");
    }
}

async fn bad_input(kind: Kind) {
    let mut stack = Stack::new(gateway_bin(), kind).await;
    let raw = stack.raw();
    let ping = json!({ "jsonrpc": "2.0", "id": 1, "method": "ping" }).to_string();

    let r = Raw::send(raw.post().body(r#"{"jsonrpc":"2.0","id":1,"method":"#)).await;
    assert_refused("malformed JSON", &r, 400, Some(-32700));

    let r = Raw::send(raw.post().body(r#"{"hello":"world"}"#)).await;
    assert_refused("JSON that is not JSON-RPC", &r, 400, Some(-32600));

    let r = Raw::send(raw.post().body(r#"{"jsonrpc":"2.0","id":{"x":1},"method":"ping"}"#)).await;
    assert_refused("object as id", &r, 400, Some(-32600));

    let r = Raw::send(raw.post().body(format!("[{ping}]"))).await;
    assert_refused("batch", &r, 400, Some(-32600));

    let r = Raw::send(
        raw.request(reqwest::Method::POST)
            .header("content-type", "text/plain")
            .header("accept", ACCEPT_BOTH)
            .body(ping.clone()),
    )
    .await;
    assert_refused("text/plain", &r, 415, None);

    let r = Raw::send(
        raw.request(reqwest::Method::POST)
            .header("content-type", "application/json")
            .header("accept", "text/html")
            .body(ping.clone()),
    )
    .await;
    assert_refused("Accept: text/html", &r, 406, None);

    // Over the 4 MiB default limit by a little, so the unread rest fits in socket buffers and
    // the client reads the answer instead of a reset.
    let pad = "x".repeat(4 * 1024 * 1024 + 1024);
    let big = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"pad":"{pad}"}}}}"#);
    let r = Raw::send(raw.post().body(big)).await;
    assert_refused("oversize body", &r, 413, None);

    let r = raw
        .rpc(
            Some("0123456789abcdef0123456789abcdef"),
            &json!({ "jsonrpc": "2.0", "id": "abc", "method": "tools/list" }),
        )
        .await;
    assert_refused("unknown session", &r, 404, Some(-32004));
    assert_eq!(r.rpc.as_ref().unwrap()["id"], json!("abc"));

    let r = Raw::send(raw.post().header("host", "evil.example").body(ping.clone())).await;
    assert_refused("forbidden Host", &r, 403, Some(-32003));
    let r = Raw::send(raw.post().header("origin", "http://evil.example").body(ping.clone())).await;
    assert_refused("forbidden Origin", &r, 403, Some(-32003));
    let r = Raw::send(
        raw.request(reqwest::Method::GET)
            .header("host", "evil.example")
            .header("accept", "text/event-stream"),
    )
    .await;
    assert_refused("forbidden Host on GET", &r, 403, Some(-32003));
    // The same-site rule: an Origin on the gateway's own loopback host is fine.
    let r = Raw::send(
        raw.post()
            .header("origin", format!("http://localhost:{}", stack.addr.port()))
            .body(
                json!({
                    "jsonrpc": "2.0", "id": 1, "method": "initialize",
                    "params": {
                        "protocolVersion": "2025-11-25", "capabilities": {},
                        "clientInfo": { "name": "same-site", "version": "0" }
                    }
                })
                .to_string(),
            ),
    )
    .await;
    assert_eq!(r.status, 200, "same-site Origin refused: {r:?}");

    // No credential, or a wrong one: 401 with a challenge, before anything reaches the upstream.
    let anon = stack.raw_anonymous();
    let r = anon
        .rpc(None, &json!({ "jsonrpc": "2.0", "id": 4, "method": "tools/list" }))
        .await;
    assert_refused("no credential", &r, 401, Some(-32001));
    assert!(
        r.headers.get("www-authenticate").is_some(),
        "401 without challenge: {r:?}"
    );
    let wrong = Raw {
        key: Some(new_key()),
        ..stack.raw()
    };
    let r = wrong
        .rpc(None, &json!({ "jsonrpc": "2.0", "id": 4, "method": "tools/list" }))
        .await;
    assert_refused("unknown key", &r, 401, Some(-32001));
    assert!(
        !r.body.contains(wrong.key.as_deref().unwrap()),
        "the key is echoed: {r:?}"
    );

    // GET and DELETE without a session.
    let r = Raw::send(raw.request(reqwest::Method::GET).header("accept", "text/event-stream")).await;
    match kind {
        Kind::Stdio => assert_refused("GET without session", &r, 400, Some(-32600)),
        Kind::Http => assert!((400..500).contains(&r.status), "GET without session: {r:?}"),
    }
    let r = Raw::send(raw.request(reqwest::Method::DELETE)).await;
    assert_refused("DELETE without session", &r, 400, Some(-32600));
    let r = Raw::send(raw.request(reqwest::Method::PUT).body(ping.clone())).await;
    assert_refused("PUT", &r, 405, None);
    assert!(r.headers.get("allow").is_some(), "405 without Allow: {r:?}");

    // A request other than initialize without a session, on a stdio upstream.
    if kind == Kind::Stdio {
        let r = raw
            .rpc(None, &json!({ "jsonrpc": "2.0", "id": 3, "method": "tools/list" }))
            .await;
        assert_refused("tools/list without session", &r, 400, Some(-32600));
    }

    // The 2026-07-28 discovery probe, without a session.
    let discover = json!({
        "jsonrpc": "2.0", "id": 9, "method": "server/discover", "params": {}
    });
    let r = raw.rpc(None, &discover).await;
    match kind {
        Kind::Stdio => {
            assert_refused("server/discover (stdio)", &r, 200, Some(-32601));
            assert_eq!(r.rpc.as_ref().unwrap()["id"], json!(9));
        }
        Kind::Http => {
            assert!(r.status < 500, "server/discover (http): {r:?}");
            if r.status == 200 {
                let m = r.rpc.as_ref().expect("a JSON-RPC answer");
                assert_eq!(m["id"], json!(9), "{m}");
                assert!(m.get("result").is_some() || m.get("error").is_some(), "{m}");
            }
        }
    }

    // Still alive, still healthy, still serving.
    stack.assert_healthy().await;
    let session = raw.open_session().await;
    let r = raw
        .rpc(
            Some(&session),
            &json!({
                "jsonrpc": "2.0", "id": 5, "method": "tools/call",
                "params": { "name": "echo", "arguments": { "text": "still here" } }
            }),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(result_text(r.rpc.as_ref().unwrap()).as_deref(), Some("still here"));
    stack.assert_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_stdio_upstream() {
    bad_input(Kind::Stdio).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_http_upstream() {
    bad_input(Kind::Http).await;
}

/// Text that is not JSON at all is a parse error (-32700) in JSON-RPC 2.0, like truncated JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_json_body_is_a_parse_error() {
    let stack = Stack::new(gateway_bin(), Kind::Stdio).await;
    let raw = stack.raw();
    for body in ["this is not json", "nul", "}{"] {
        let r = Raw::send(raw.post().body(body)).await;
        assert_refused(&format!("body {body:?}"), &r, 400, Some(-32700));
    }
}

// ---- 4. no crossed wires ------------------------------------------------------------------------

async fn no_crossed_wires(kind: Kind) {
    const CLIENTS: usize = 32;
    const CALLS: usize = 25;
    let mut stack = Stack::new(gateway_bin(), kind).await;
    let run = nonce();
    let clients = within(
        START,
        "connect 32 clients",
        join_all((0..CLIENTS).map(|c| {
            let stack = &stack;
            async move { stack.connect(TestClient::new(&format!("client-{c}"))).await.0 }
        })),
    )
    .await;
    let results = within(
        Duration::from_secs(120),
        "32 x 25 concurrent echo calls",
        join_all(clients.iter().enumerate().map(|(c, client)| {
            let run = run.clone();
            async move {
                join_all((0..CALLS).map(|i| {
                    let text = format!("c{c}-{i}-{run}");
                    async move {
                        let got = call_text(client, "echo", json!({ "text": text })).await;
                        (text, got)
                    }
                }))
                .await
            }
        })),
    )
    .await;
    let mut wrong = Vec::new();
    for (text, got) in results.into_iter().flatten() {
        if got.as_deref() != Ok(text.as_str()) {
            wrong.push(format!("sent {text:?}, got {got:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{kind:?}: {} of {} calls got someone else's answer or failed:\n{}",
        wrong.len(),
        CLIENTS * CALLS,
        wrong.join("\n")
    );
    within(
        STEP,
        "close 32 clients",
        join_all(clients.into_iter().map(|c| c.cancel())),
    )
    .await;
    stack.assert_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_crossed_wires_stdio_upstream() {
    no_crossed_wires(Kind::Stdio).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_crossed_wires_http_upstream() {
    no_crossed_wires(Kind::Http).await;
}

/// 64 requests in flight at once in one session, all with JSON-RPC id 1: each answer carries
/// its own payload (the gateway sends them to the child under ids of its own).
async fn same_id_in_flight(kind: Kind) {
    const N: usize = 64;
    let mut stack = Stack::new(gateway_bin(), kind).await;
    let raw = stack.raw();
    let session = raw.open_session().await;
    let run = nonce();
    let replies = within(
        Duration::from_secs(120),
        "64 concurrent POSTs",
        join_all((0..N).map(|i| {
            let raw = raw.clone();
            let session = session.clone();
            let run = run.clone();
            async move {
                // Odd: `slow` for i steps of 5 ms, so the calls overlap; even: `echo`.
                let (params, want) = if i % 2 == 1 {
                    (
                        json!({ "name": "slow", "arguments": { "steps": i, "delay_ms": 5 } }),
                        format!("done after {i} steps"),
                    )
                } else {
                    let text = format!("same-id-{i}-{run}");
                    (json!({ "name": "echo", "arguments": { "text": text } }), text)
                };
                let msg = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params });
                (want, raw.rpc(Some(&session), &msg).await)
            }
        })),
    )
    .await;
    let mut wrong = Vec::new();
    for (want, r) in &replies {
        let got = r.rpc.as_ref().and_then(result_text);
        let id_ok = r.rpc.as_ref().is_some_and(|m| m["id"] == json!(1));
        if r.status != 200 || !id_ok || got.as_deref() != Some(want.as_str()) {
            wrong.push(format!("want {want:?}: status {}, body {}", r.status, r.body));
        }
    }
    assert!(
        wrong.is_empty(),
        "{kind:?}: {} of {N} same-id calls went wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    stack.assert_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_jsonrpc_id_in_flight_stdio_upstream() {
    same_id_in_flight(Kind::Stdio).await;
}

/// The HTTP upstream is a passthrough, but a request reusing an id still in flight in its session
/// goes up under a gateway id and gets its own id back: every call is answered with its own payload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_jsonrpc_id_in_flight_http_upstream() {
    same_id_in_flight(Kind::Http).await;
}

// ---- 5. operational endpoints -------------------------------------------------------------------

async fn get(url: String) -> (u16, String) {
    let r = within(STEP, &format!("GET {url}"), raw_client().get(&url).send())
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

async fn endpoints(kind: Kind) {
    let mut stack = Stack::new(gateway_bin(), kind).await;
    let (s, body) = get(format!("{}/healthz", stack.base)).await;
    assert_eq!((s, body.as_str()), (200, "ok"));
    let (s, body) = get(format!("{}/readyz", stack.base)).await;
    assert_eq!(s, 200, "{kind:?} /readyz: {body}");

    let (s, _) = get(format!("{}/mcp/status", stack.base)).await;
    assert_eq!(s, 401, "/mcp/status without a key");
    let (s, body) = stack.page("/mcp/status").await;
    assert_eq!(s, 200, "/mcp/status: {body}");
    let status: Value = serde_json::from_str(&body).expect("/mcp/status is JSON");
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"), "{status}");
    let want_kind = match kind {
        Kind::Stdio => "stdio",
        Kind::Http => "http",
    };
    assert_eq!(status["upstream"]["kind"], want_kind, "{status}");
    assert_eq!(status["ready"], true, "{status}");
    assert!(
        !body.contains("evil") && !body.contains("password"),
        "status leaks: {body}"
    );

    // One call, then the request counter exists and counted it.
    let raw = stack.raw();
    let session = raw.open_session().await;
    let r = raw
        .rpc(
            Some(&session),
            &json!({ "jsonrpc": "2.0", "id": 2, "method": "tools/list" }),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let metrics = stack.metrics().await;
    let line = metrics
        .lines()
        .find(|l| {
            l.starts_with("mcpgate_requests_total{")
                && l.contains("method=\"tools/list\"")
                && l.contains("outcome=\"ok\"")
        })
        .unwrap_or_else(|| panic!("no tools/list ok sample in:\n{metrics}"));
    let n: f64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("bad sample {line:?}"));
    assert!(n >= 1.0, "{line}");
    let (s, status) = stack.page("/mcp/status").await;
    assert_eq!(s, 200);
    let status: Value = serde_json::from_str(&status).unwrap();
    assert!(status["sessions"].as_u64() >= Some(1), "{status}");
    stack.assert_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_stdio_upstream() {
    endpoints(Kind::Stdio).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoints_http_upstream() {
    endpoints(Kind::Http).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_http_upstream_is_not_ready_and_fails_fast() {
    // A port that was just free: nothing listens there.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let upstream = format!("http://127.0.0.1:{port}/mcp");
    let mut stack = Stack::gateway(gateway_bin(), Kind::Http, &["--upstream-url", &upstream], None).await;
    let (s, body) = get(format!("{}/readyz", stack.base)).await;
    assert_eq!(s, 503, "/readyz with a closed upstream port: {body}");
    let (_, status) = stack.page("/mcp/status").await;
    let status: Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["ready"], false, "{status}");

    // A call gets a prompt 502 with a JSON-RPC error, not a hang.
    let r = stack
        .raw()
        .rpc(
            None,
            &json!({
                "jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {
                    "protocolVersion": "2025-11-25", "capabilities": {},
                    "clientInfo": { "name": "e2e", "version": "0" }
                }
            }),
        )
        .await;
    assert_refused("call to a closed upstream", &r, 502, Some(-32050));
    assert!(
        !r.body.contains(&port.to_string()),
        "the error leaks the upstream address: {}",
        r.body
    );
    stack.assert_healthy().await;
}

// ---- 6. config check ----------------------------------------------------------------------------

fn config_check(toml: &str) -> std::process::Output {
    config_check_with(toml, &[])
}

fn config_check_with(toml: &str, args: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mcpgate.toml");
    std::fs::write(&path, toml).unwrap();
    let mut cmd = std::process::Command::new(gateway_bin());
    cmd.args(["config", "check", "--config"])
        .arg(&path)
        .args(args)
        .env_remove("JWT_SECRET")
        .current_dir(dir.path());
    without_mcp_env(&mut cmd);
    cmd.env("NO_COLOR", "1").output().expect("run mcpgate config check")
}

#[test]
fn config_check_names_the_bad_field() {
    let out = config_check(
        "listen = \"127.0.0.1:3999\"\n[upstream]\nurl = \"http://127.0.0.1:9/mcp\"\nrequest_timeout = 5\n",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "unknown key accepted: {stderr}");
    assert!(stderr.contains("request_timeout"), "stderr: {stderr}");

    let out = config_check("listen = \"not an address\"\n[upstream]\nurl = \"http://127.0.0.1:9/mcp\"\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "bad listen accepted: {stderr}");
    assert!(stderr.contains("listen"), "stderr: {stderr}");

    let out = config_check("[upstream]\nurl = \"ftp://127.0.0.1/mcp\"\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "ftp upstream accepted: {stderr}");
    assert!(stderr.contains("upstream.url"), "stderr: {stderr}");
}

/// `config check` validates the auth sections too, as `serve` would (secrets from the
/// environment), and with `--online` reaches the JWT issuer's keys.
#[test]
fn config_check_validates_the_auth_sections() {
    let up = "[upstream]\nurl = \"http://127.0.0.1:9/mcp\"\n";
    for (toml, field) in [
        (
            "[auth.jwt]\nsecret_env = \"MCPGATE_E2E_UNSET_SECRET\"\n",
            "auth.jwt.secret_env",
        ),
        (
            "[auth.jwt]\njwks_url = \"http://127.0.0.1:9/jwks\"\nalgorithms = [\"none\"]\n",
            "auth.jwt.algorithms",
        ),
        ("[auth.hmac]\nskew_s = 300\n", "auth.hmac.clients"),
        (
            "[auth.hmac]\nskew_s = 0\nclients = [{ id = \"a\", secret_env = \"PATH\" }]\n",
            "auth.hmac.skew_s",
        ),
    ] {
        let out = config_check(&format!("{up}{toml}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "accepted:\n{toml}\n{stderr}");
        assert!(
            stderr.contains(field),
            "{field} not named for\n{toml}\nstderr: {stderr}"
        );
    }
    // Keys from a JWKS URL nobody answers: valid offline, refused online.
    let toml = format!("{up}[auth.jwt]\njwks_url = \"http://127.0.0.1:9/jwks\"\n");
    let out = config_check(&toml);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "offline: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("jwt"), "the methods are listed: {stdout}");
    let out = config_check_with(&toml, &["--online"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "online check passed with an unreachable JWKS: {stderr}"
    );
    assert!(stderr.contains("auth.jwt"), "stderr: {stderr}");
}

#[test]
fn config_check_accepts_a_good_config() {
    let out = config_check(
        "listen = \"127.0.0.1:3999\"\n[upstream]\nurl = \"http://127.0.0.1:9/mcp\"\nrequest_timeout_ms = 5000\n[http]\nallowed_hosts = [\"localhost\", \"mcp.example.com\"]\n",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("127.0.0.1:3999"), "stdout: {stdout}");
    assert!(stdout.contains("mcp.example.com"), "stdout: {stdout}");
}

// ---- 7. demo mode -------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_demo_answers_tools_list() {
    let mut stack = Stack::gateway(gateway_bin(), Kind::Stdio, &["--demo"], None).await;
    // The demo prints the keys it created; use its admin key, not the harness's.
    let line = stack.gw.wait_for_line("admin key (every tool):", START).await;
    let admin = line.split_whitespace().last().unwrap().to_string();
    assert!(admin.starts_with("mcp_"), "{line}");
    let r = stack
        .raw_anonymous()
        .rpc(None, &json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list" }))
        .await;
    assert_eq!(r.status, 401, "the demo lets anonymous callers in: {r:?}");
    let (client, _spy) = connect(&stack.url, Some(&admin), TestClient::new("demo")).await;
    let tools = within(STEP, "tools/list", client.list_all_tools())
        .await
        .expect("tools/list");
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert!(names.contains(&"echo"), "{names:?}");
    let text = format!("demo-{}", nonce());
    assert_eq!(call_text(&client, "echo", json!({ "text": text })).await, Ok(text));
    let _ = within(STEP, "close", client.cancel()).await;
    // The demo is also the authorization server, at the address it serves.
    let base = stack.url.trim_end_matches("/mcp").to_string();
    let get = |path: &'static str| {
        let url = format!("{base}{path}");
        async move {
            reqwest::get(url)
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let meta = get("/.well-known/oauth-authorization-server").await;
    assert_eq!(meta["issuer"], base.as_str(), "{meta}");
    assert_eq!(meta["code_challenge_methods_supported"], json!(["S256"]));
    let prm = get("/.well-known/oauth-protected-resource/mcp").await;
    assert_eq!(prm["authorization_servers"][0], base.as_str(), "{prm}");
    stack.assert_healthy().await;
}

// ---- 7. state on disk ---------------------------------------------------------------------------

/// Starts `mcpgate serve` on the store `db` in front of the stdio demo upstream.
async fn gateway_on(db: &std::path::Path, env: &[(&str, &str)]) -> (Proc, String) {
    let upstream = format!("{} --stdio --profile demo", shell_quote(example_bin()));
    let mut cmd = std::process::Command::new(gateway_bin());
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--upstream-cmd",
        &upstream,
        "--store",
    ])
    .arg(db);
    let mut gw = Proc::spawn_with_env("mcpgate", cmd, env);
    let url = gw.wait_for_listen_url().await;
    (gw, url.trim_end_matches("/mcp").to_string())
}

fn initialize_body() -> Value {
    json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": { "name": "e2e", "version": "1" } } })
}

async fn initialize_with(base: &str, key: &str) -> u16 {
    raw_client()
        .post(format!("{base}/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("x-api-key", key)
        .json(&initialize_body())
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

fn audit_rows(db: &std::path::Path) -> Vec<Value> {
    let out = std::process::Command::new(gateway_bin())
        .args(["audit", "--json", "--limit", "1000", "--store"])
        .arg(db)
        .output()
        .expect("mcpgate audit");
    assert!(out.status.success(), "audit: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("audit JSON line"))
        .collect()
}

/// Keys made with the CLI and the audit log live in the SQLite file: both survive a restart.
/// Seed 001's exact `MCP_API_KEYS` and its curl example against `/mcp/status` work too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_and_audit_survive_a_restart_and_seed_001_works() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("state.db");
    let out = std::process::Command::new(gateway_bin())
        .args([
            "keys",
            "create",
            "--name",
            "restart test",
            "--user",
            "carol",
            "--permissions",
            "*",
            "--store",
        ])
        .arg(&db)
        .output()
        .expect("keys create");
    assert!(
        out.status.success(),
        "keys create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(key.starts_with("mcp_"), "printed key: {key:?}");
    let seed_001 = r#"{
  "chatgpt-connector-key": {
    "name": "ChatGPT Connector",
    "userId": "connector-user",
    "role": "user",
    "permissions": ["*"],
    "rateLimit": { "requestsPerMinute": 100, "requestsPerHour": 1000 }
  }
}"#;
    let env = [("MCP_API_KEYS", seed_001)];

    let (mut gw, base) = gateway_on(&db, &env).await;
    // Seed 001: curl -H 'X-API-Key: chatgpt-connector-key' http://localhost:3210/mcp/status
    let status = raw_client()
        .get(format!("{base}/mcp/status"))
        .header("x-api-key", "chatgpt-connector-key")
        .send()
        .await
        .expect("status");
    assert_eq!(status.status(), 200);
    let body: Value = status.json().await.expect("status JSON");
    assert_eq!(body["name"], "mcpgate");
    assert_eq!(initialize_with(&base, &key).await, 200, "CLI-made key works");
    assert_eq!(
        initialize_with(&base, "chatgpt-connector-key").await,
        200,
        "seed 001 key works"
    );
    assert_eq!(initialize_with(&base, "wrong-key-123456").await, 401);
    gw.stop(Duration::from_secs(5));
    assert!(
        gw.stderr().contains("replace them with `mcpgate keys create`"),
        "weak seed key is warned about"
    );

    let first = audit_rows(&db);
    let by = |rows: &[Value], user: &str| rows.iter().filter(|r| r["user_id"] == user).count();
    assert_eq!(by(&first, "carol"), 1, "audit after a clean stop: {first:?}");
    assert_eq!(by(&first, "connector-user"), 1);
    assert!(first.iter().any(|r| r["decision"] == "deny" && r["status"] == 401));

    let (mut gw, base) = gateway_on(&db, &env).await;
    assert_eq!(
        initialize_with(&base, &key).await,
        200,
        "the stored key survives a restart"
    );
    gw.stop(Duration::from_secs(5));
    let second = audit_rows(&db);
    assert_eq!(by(&second, "carol"), 2, "old records kept, new ones added");
    for r in &second {
        let line = r.to_string();
        assert!(
            !line.contains(&key) && !line.contains("chatgpt-connector-key"),
            "no key in audit: {line}"
        );
    }
}

/// Mints an HS256 token with the CLI (`mcpgate token mint`), the secret in `JWT_SECRET`.
fn mint(secret: &str, sub: &str, aud: &str) -> String {
    let out = std::process::Command::new(gateway_bin())
        .args(["token", "mint", "--sub", sub, "--aud", aud, "--ttl", "10m"])
        .env("JWT_SECRET", secret)
        .output()
        .expect("mcpgate token mint");
    assert!(
        out.status.success(),
        "token mint: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

async fn initialize_bearer(base: &str, token: &str) -> (u16, String) {
    let r = raw_client()
        .post(format!("{base}/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("authorization", format!("Bearer {token}"))
        .json(&initialize_body())
        .send()
        .await
        .expect("initialize");
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

/// Seeds 001/002 as a new user follows them: no config file, only `export JWT_SECRET=…` and
/// `DEBUG=auth:*`. The secret alone turns on HS256 verification (audience: this gateway's
/// resource URL, said at start-up); every refused credential is logged with its reason and key
/// id, and never the credential. Without `JWT_SECRET`, a bearer JWT is told that no verifier is
/// configured (not "invalid API key").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_environment_variables_work_without_a_config_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("state.db");
    let secret = format!("e2e-jwt-secret-{}{}{}", nonce(), nonce(), nonce());
    let env = [("JWT_SECRET", secret.as_str()), ("DEBUG", "auth:*")];
    let (mut gw, base) = gateway_on(&db, &env).await;
    let started = gw.wait_for_line("bearer JWTs are verified", START).await;
    assert!(started.contains("JWT_SECRET") && started.contains("HS256"), "{started}");
    let resource = format!("{base}/mcp");
    assert!(started.contains(&resource), "the audience is the resource: {started}");

    let good = mint(&secret, "seed-user", &resource);
    let (status, body) = initialize_bearer(&base, &good).await;
    assert_eq!(status, 200, "JWT_SECRET alone verifies HS256: {body}");
    let other_aud = mint(&secret, "seed-user", "https://elsewhere.example/mcp");
    let (status, _) = initialize_bearer(&base, &other_aud).await;
    assert_eq!(status, 401, "a token for another audience");
    let forged = mint(&format!("{secret}-not"), "seed-user", &resource);
    let (status, _) = initialize_bearer(&base, &forged).await;
    assert_eq!(status, 401, "a token signed with another secret");

    // DEBUG=auth:* logs refusals (the case people turn it on for), never the credential.
    let refused_key = format!("mcp_e2erefused_{}{}{}", nonce(), nonce(), nonce());
    let refused_secret = refused_key.rsplit('_').next().unwrap_or_default().to_string();
    assert_eq!(initialize_with(&base, &refused_key).await, 401);
    assert_eq!(initialize_with(&base, &good).await, 401, "a JWT in X-API-Key");
    let refusal = gw.wait_for_line("key_id=\"e2erefused\"", START).await;
    assert!(
        refusal.contains("credential refused") && refusal.contains("invalid_key"),
        "{refusal}"
    );
    let jwt_line = gw.wait_for_line("jwt_as_key", START).await;
    assert!(
        jwt_line.contains("via=\"x-api-key\"") || jwt_line.contains("via=x-api-key"),
        "{jwt_line}"
    );
    gw.wait_for_line("bad_signature", START).await;
    gw.stop(Duration::from_secs(5));
    let logs = gw.stderr();
    for (what, s) in [
        ("the refused key's secret", refused_secret.as_str()),
        ("JWT_SECRET", secret.as_str()),
        ("a token", good.as_str()),
        ("a forged token", forged.as_str()),
    ] {
        assert!(!logs.contains(s), "{what} is in the logs:\n{logs}");
    }

    // No JWT_SECRET: a bearer JWT is told exactly what is missing.
    let (mut gw, base) = gateway_on(&db, &[]).await;
    let (status, body) = initialize_bearer(&base, &good).await;
    assert_eq!(status, 401);
    assert!(body.contains("no JWT verifier is configured"), "{body}");
    gw.stop(Duration::from_secs(5));
}
