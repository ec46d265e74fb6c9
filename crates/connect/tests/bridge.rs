//! The bridge end to end: a real loopback MCP server (axum, 127.0.0.1:0) scripted per test, the
//! bridge's stdin and stdout as in-memory pipes, and assertions on what each side saw.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use async_trait::async_trait;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use axum::routing::any;
use mcpgate_connect::bridge::{self, BridgeError, Options};
use mcpgate_connect::retry::Policy;
use mcpgate_connect::{Auth, AuthError};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, Lines};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

// ---- the scripted server ----

/// One request the server received.
#[derive(Clone, Debug)]
struct Seen {
    method: Method,
    headers: HeaderMap,
    body: Bytes,
    at: Instant,
}

impl Seen {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    fn rpc(&self) -> String {
        self.json()["method"].as_str().unwrap_or_default().to_string()
    }
    fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|v| v.to_str().unwrap().to_string())
    }
    /// A result answering this request.
    fn result(&self, result: Value) -> Value {
        json!({"jsonrpc": "2.0", "id": self.json()["id"], "result": result})
    }
}

type Handler = Arc<dyn Fn(&Seen) -> Response + Send + Sync>;
type Log = Arc<Mutex<Vec<Seen>>>;

struct Server {
    url: String,
    log: Log,
}

impl Server {
    fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }
    /// POSTs of JSON-RPC `method`.
    fn posts(&self, method: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.method == Method::POST && s.rpc() == method)
            .collect()
    }
    fn of(&self, method: Method) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| s.method == method).collect()
    }
}

async fn serve(handler: impl Fn(&Seen) -> Response + Send + Sync + 'static) -> Server {
    let log: Log = Arc::default();
    let handler: Handler = Arc::new(handler);
    let app = Router::new()
        .route("/mcp", any(record))
        .with_state((log.clone(), handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Server {
        url: format!("http://{addr}/mcp"),
        log,
    }
}

async fn record(
    State((log, handler)): State<(Log, Handler)>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let seen = Seen {
        method,
        headers,
        body,
        at: Instant::now(),
    };
    log.lock().unwrap().push(seen.clone());
    handler(&seen)
}

fn reply(status: StatusCode, content_type: Option<&str>, body: impl Into<Body>) -> Response {
    let mut builder = Response::builder().status(status);
    if let Some(ct) = content_type {
        builder = builder.header("content-type", ct);
    }
    builder.body(body.into()).unwrap()
}

fn json_reply(value: &Value) -> Response {
    reply(StatusCode::OK, Some("application/json"), value.to_string())
}

fn status(status: StatusCode) -> Response {
    reply(status, None, Body::empty())
}

fn sse_reply(text: impl Into<String>) -> Response {
    reply(StatusCode::OK, Some("text/event-stream"), text.into())
}

/// An event stream fed by the test as it goes; it ends when the sender is dropped.
fn sse_live(rx: mpsc::UnboundedReceiver<String>) -> Response {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|text| (Ok::<_, std::convert::Infallible>(text), rx))
    });
    reply(StatusCode::OK, Some("text/event-stream"), Body::from_stream(stream))
}

fn event(id: &str, data: &Value) -> String {
    format!("id: {id}\ndata: {data}\n\n")
}

/// A plain MCP server: session `s-1`, version 2025-11-25, no standalone stream, tools/list and
/// an echoing tools/call.
fn plain(seen: &Seen) -> Response {
    match (seen.method.clone(), seen.rpc().as_str()) {
        (Method::POST, "initialize") => {
            let mut r = json_reply(&seen.result(json!({
                "protocolVersion": "2025-11-25", "capabilities": {}, "serverInfo": {"name": "t", "version": "1"}
            })));
            r.headers_mut()
                .insert("mcp-session-id", HeaderValue::from_static("s-1"));
            r
        }
        (Method::POST, "ping") => json_reply(&seen.result(json!({}))),
        (Method::POST, "tools/list") => json_reply(&seen.result(json!({"tools": []}))),
        (Method::POST, "tools/call") => json_reply(&seen.result(json!({
            "content": [{"type": "text", "text": seen.json()["params"]["arguments"]["text"]}]
        }))),
        (Method::POST, m) if m.starts_with("notifications/") => status(StatusCode::ACCEPTED),
        (Method::DELETE, _) => status(StatusCode::OK),
        _ => status(StatusCode::METHOD_NOT_ALLOWED),
    }
}

// ---- credentials ----

struct NoAuth;

#[async_trait]
impl Auth for NoAuth {
    async fn headers(&self, _: &Method, _: &str, _: &[u8]) -> Result<HeaderMap, AuthError> {
        Ok(HeaderMap::new())
    }
    async fn unauthorized(&self, _: &HeaderMap, _: Option<&str>) -> bool {
        false
    }
    fn describe(&self) -> String {
        "none".into()
    }
}

/// `X-Key: key-N`; a refusal moves to N+1 when `can_renew`.
#[derive(Default)]
struct Renewing {
    generation: AtomicUsize,
    can_renew: bool,
    asked: Mutex<Vec<(Option<String>, Option<String>)>>,
}

#[async_trait]
impl Auth for Renewing {
    async fn headers(&self, _: &Method, _: &str, _: &[u8]) -> Result<HeaderMap, AuthError> {
        let mut h = HeaderMap::new();
        let key = format!("key-{}", self.generation.load(Ordering::SeqCst));
        h.insert("x-key", HeaderValue::from_str(&key).unwrap());
        Ok(h)
    }
    async fn unauthorized(&self, sent: &HeaderMap, challenge: Option<&str>) -> bool {
        let sent = sent.get("x-key").map(|v| v.to_str().unwrap().to_string());
        self.asked.lock().unwrap().push((sent, challenge.map(String::from)));
        if self.can_renew {
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
        self.can_renew
    }
    fn describe(&self) -> String {
        "renewing test key".into()
    }
}

/// A primary key (`key-0`) and a fallback (`key-1`), switched once, as seed 002's rotation.
#[derive(Default)]
struct Rotating {
    on_fallback: AtomicBool,
}

#[async_trait]
impl Auth for Rotating {
    async fn headers(&self, _: &Method, _: &str, _: &[u8]) -> Result<HeaderMap, AuthError> {
        let mut h = HeaderMap::new();
        let key = if self.on_fallback.load(Ordering::SeqCst) {
            "key-1"
        } else {
            "key-0"
        };
        h.insert("x-key", HeaderValue::from_static(key));
        Ok(h)
    }
    async fn unauthorized(&self, sent: &HeaderMap, _: Option<&str>) -> bool {
        let sent_primary = sent.get("x-key").is_some_and(|v| v == "key-0");
        // Moved on already (another refused message did it), or move now; the fallback refused
        // is the end.
        if sent_primary {
            self.on_fallback.store(true, Ordering::SeqCst);
        }
        sent_primary
    }
    fn describe(&self) -> String {
        "rotating test keys".into()
    }
}

// ---- the host side ----

/// Retries fast enough for tests.
fn opts(url: &str, auth: Arc<dyn Auth>) -> Options {
    let mut o = Options::new(url, auth);
    o.retry = Policy {
        max_attempts: 3,
        base: Duration::from_millis(20),
        cap: Duration::from_millis(100),
        ..Policy::default()
    };
    o.connect_timeout = Duration::from_secs(5);
    o
}

struct Host {
    stdin: DuplexStream,
    stdout: Lines<BufReader<DuplexStream>>,
    run: JoinHandle<Result<(), BridgeError>>,
}

/// Every line the bridge writes must be one JSON-RPC 2.0 message.
fn check_line(line: &str) -> Value {
    let value: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line:?}"));
    assert_eq!(value["jsonrpc"], "2.0", "not JSON-RPC: {line}");
    assert!(!line.contains('\n'));
    value
}

impl Host {
    fn start(opts: Options) -> Host {
        let (stdin, bridge_in) = tokio::io::duplex(1 << 20);
        let (bridge_out, stdout) = tokio::io::duplex(1 << 20);
        Host {
            stdin,
            stdout: BufReader::new(stdout).lines(),
            run: tokio::spawn(bridge::run(opts, bridge_in, bridge_out)),
        }
    }

    async fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\n").as_bytes()).await;
    }

    async fn send_raw(&mut self, bytes: &[u8]) {
        self.stdin.write_all(bytes).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    async fn recv_line(&mut self) -> String {
        tokio::time::timeout(Duration::from_secs(15), self.stdout.next_line())
            .await
            .expect("no line from the bridge within 15 s")
            .unwrap()
            .expect("stdout ended")
    }

    async fn recv(&mut self) -> Value {
        let line = self.recv_line().await;
        check_line(&line)
    }

    /// initialize (id 0) and notifications/initialized; returns the initialize answer.
    async fn handshake(&mut self) -> Value {
        self.send(r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"host","version":"1"}}}"#).await;
        let answer = self.recv().await;
        assert_eq!(answer["id"], 0);
        self.send(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
            .await;
        answer
    }

    /// Ends stdin; returns the lines written after, once the bridge has exited with Ok.
    async fn finish(mut self) -> Vec<Value> {
        self.stdin.shutdown().await.unwrap();
        drop(self.stdin);
        let mut rest = Vec::new();
        let read = async {
            while let Some(line) = self.stdout.next_line().await.unwrap() {
                rest.push(check_line(&line));
            }
        };
        tokio::time::timeout(Duration::from_secs(20), read)
            .await
            .expect("stdout did not end");
        let result = tokio::time::timeout(Duration::from_secs(20), self.run)
            .await
            .expect("run did not return");
        result.unwrap().expect("run returned an error");
        rest
    }
}

/// Waits until `cond` holds (the server side of an exchange may lag the host's view).
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    for _ in 0..200 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("never happened: {what}");
}

// ---- the tests ----

#[tokio::test]
async fn json_answer_is_written_as_one_line() {
    let server = serve(|seen| match seen.rpc().as_str() {
        // A pretty-printed answer: line breaks between tokens.
        "tools/list" => reply(
            StatusCode::OK,
            Some("application/json; charset=utf-8"),
            serde_json::to_string_pretty(&seen.result(json!({"tools": [{"name": "echo", "inputSchema": {}}]})))
                .unwrap(),
        ),
        _ => plain(seen),
    })
    .await;
    let mut host = Host::start(opts(&server.url, Arc::new(NoAuth)));
    let init = host.handshake().await;
    assert_eq!(init["result"]["protocolVersion"], "2025-11-25");
    host.send(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#).await;
    let line = host.recv_line().await;
    let answer = check_line(&line);
    assert_eq!(answer["id"], 1);
    assert_eq!(answer["result"]["tools"][0]["name"], "echo");
    assert!(host.finish().await.is_empty());
}

#[tokio::test]
async fn session_id_and_version_are_sent_after_initialize() {
    let server = serve(plain).await;
    let mut host = Host::start(opts(&server.url, Arc::new(NoAuth)));
    host.handshake().await;
    host.send(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}}"#)
        .await;
    assert_eq!(host.recv().await["result"]["content"][0]["text"], "hi");
    assert!(host.finish().await.is_empty());

    let init = &server.posts("initialize")[0];
    assert_eq!(init.header("mcp-session-id"), None);
    assert_eq!(init.header("mcp-protocol-version"), None);
    assert_eq!(
        init.header("accept").as_deref(),
        Some("application/json, text/event-stream")
    );
    assert_eq!(init.header("content-type").as_deref(), Some("application/json"));
    for later in [
        &server.posts("notifications/initialized")[0],
        &server.posts("tools/call")[0],
    ] {
        assert_eq!(later.header("mcp-session-id").as_deref(), Some("s-1"));
        assert_eq!(later.header("mcp-protocol-version").as_deref(), Some("2025-11-25"));
    }
    let call = &server.posts("tools/call")[0];
    assert_eq!(call.header("mcp-method").as_deref(), Some("tools/call"));
    assert_eq!(call.header("mcp-name").as_deref(), Some("echo"));
    // The standalone stream was asked for with the session, after initialization; 405 ended it.
    let gets = server.of(Method::GET);
    assert_eq!(gets.len(), 1, "405 is not asked again");
    assert_eq!(gets[0].header("accept").as_deref(), Some("text/event-stream"));
    assert_eq!(gets[0].header("mcp-session-id").as_deref(), Some("s-1"));
}

#[tokio::test]
async fn notification_gets_202_and_nothing_is_written() {
    let server = serve(plain).await;
    let mut host = Host::start(opts(&server.url, Arc::new(NoAuth)));
    host.handshake().await;
    host.send(r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":9}}"#)
        .await;
    host.send(r#"{"jsonrpc":"2.0","id":"p","method":"ping"}"#).await;
    // The next line is the ping's answer: nothing for the notification, before or after it.
    let next = host.recv().await;
    assert_eq!(next, json!({"jsonrpc": "2.0", "id": "p", "result": {}}));
    assert!(host.finish().await.is_empty());
    assert_eq!(server.posts("notifications/cancelled").len(), 1);
}

#[tokio::test]
async fn the_exact_bytes_of_a_line_reach_the_server() {
    let server = serve(plain).await;
    let mut host = Host::start(opts(&server.url, Arc::new(NoAuth)));
    host.handshake().await;
    let line = "{ \"params\" :{\"arguments\":{ \"text\":\"caf\\u00e9 \\u2603 \\\"q\\\"\",\"n\":1.50e0}, \"name\":\"echo\"},\t\"method\":\"tools/call\",\"id\":\"x-1\" , \"jsonrpc\":\"2.0\"}";
    host.send_raw(format!("{line}\r\n").as_bytes()).await;
    let answer = host.recv().await;
    assert_eq!(answer["id"], "x-1");
    assert_eq!(answer["result"]["content"][0]["text"], "café ☃ \"q\"");
    host.finish().await;
    assert_eq!(&server.posts("tools/call")[0].body[..], line.as_bytes());
}

#[tokio::test]
async fn sse_answer_carries_a_server_request_whose_answer_is_posted() {
    // tools/call opens a stream that asks the host a question (elicitation) and answers the call
    // once the host's answer has been POSTed.
    let stream: Arc<Mutex<Option<mpsc::UnboundedSender<String>>>> = Arc::default();
    let accepted = Arc::new(AtomicUsize::new(0));
    let server = {
        let (stream, accepted) = (stream.clone(), accepted.clone());
        serve(move |seen| {
            let body = seen.json();
            match seen.rpc().as_str() {
                "tools/call" => {
                    let (tx, rx) = mpsc::unbounded_channel();
                    tx.send("id: 1\ndata: \n\n".into()).unwrap();
                    let ask = json!({"jsonrpc": "2.0", "id": "elicit-1", "method": "elicitation/create",
                        "params": {"message": "name?", "requestedSchema": {"type": "object", "properties": {}}}});
                    tx.send(event("2", &ask)).unwrap();
                    *stream.lock().unwrap() = Some(tx);
                    sse_live(rx)
                }
                "" if body["id"] == "elicit-1" && body.get("result").is_some() => {
                    let tx = stream.lock().unwrap().take().unwrap();
                    let done = json!({"jsonrpc": "2.0", "id": 5, "result": {"content": [
                        {"type": "text", "text": format!("hello {}", body["result"]["content"]["name"].as_str().unwrap())}]}});
                    tx.send(event("3", &done)).unwrap();
                    accepted.fetch_add(1, Ordering::SeqCst);
                    status(StatusCode::ACCEPTED)
                }
                _ => plain(seen),
            }
        })
        .await
    };
    let mut host = Host::start(opts(&server.url, Arc::new(NoAuth)));
    host.handshake().await;
    host.send(r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"ask","arguments":{}}}"#)
        .await;
    let ask = host.recv().await;
    assert_eq!(ask["method"], "elicitation/create");
    assert_eq!(ask["id"], "elicit-1");
    let answer = r#"{"jsonrpc":"2.0","id":"elicit-1","result":{"action":"accept","content":{"name":"ana"}}}"#;
    host.send(answer).await;
    let done = host.recv().await;
    assert_eq!(done["id"], 5);
    assert_eq!(done["result"]["content"][0]["text"], "hello ana");
    assert!(host.finish().await.is_empty(), "the 202 to the answer writes nothing");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    let posted: Vec<_> = server
        .of(Method::POST)
        .into_iter()
        .filter(|s| s.json()["id"] == "elicit-1")
        .collect();
    assert_eq!(posted.len(), 1);
    assert_eq!(&posted[0].body[..], answer.as_bytes());
    assert_eq!(posted[0].header("mcp-session-id").as_deref(), Some("s-1"));
}

#[tokio::test]
async fn lost_session_is_initialized_again_once() {
    // After `forget`, the server answers 404 to session s-1 and gives s-2 to a new initialize.
    let forget = Arc::new(AtomicBool::new(false));
    let inits = Arc::new(AtomicUsize::new(0));
    let server = {
        let (forget, inits) = (forget.clone(), inits.clone());
        serve(move |seen| {
            if seen.rpc() == "initialize" {
                let n = inits.fetch_add(1, Ordering::SeqCst) + 1;
                let mut r = json_reply(&seen.result(json!({"protocolVersion": "2025-11-25", "capabilities": {}})));
                r.headers_mut()
                    .insert("mcp-session-id", HeaderValue::from_str(&format!("s-{n}")).unwrap());
                return r;
            }
            if forget.load(Ordering::SeqCst) && seen.header("mcp-session-id").as_deref() == Some("s-1") {
                return status(StatusCode::NOT_FOUND);
            }
            plain(seen)
        })
        .await
    };
    let mut host = Host::start(opts(&server.url, Arc::new(NoAuth)));
    host.handshake().await;
    host.send(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#).await;
    assert_eq!(host.recv().await["id"], 1);
    forget.store(true, Ordering::SeqCst);
    host.send(r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#).await;
    host.send(r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}"#)
        .await;
    let mut answered = [host.recv().await, host.recv().await];
    answered.sort_by_key(|a| a["id"].as_i64());
    assert_eq!(answered[0]["id"], 2);
    assert!(answered[0]["result"]["tools"].is_array(), "{}", answered[0]);
    assert_eq!(answered[1]["id"], 3);
    assert_eq!(answered[1]["result"]["content"][0]["text"], "x");
    assert!(
        host.finish().await.is_empty(),
        "one response per request, none for the replayed initialize"
    );

    let again = server.posts("initialize");
    assert_eq!(again.len(), 2, "exactly one new initialize");
    assert_eq!(again[1].json()["id"], "mcpgate-connect-reinit-1");
    assert_eq!(again[1].json()["params"]["clientInfo"]["name"], "host");
    assert_eq!(again[1].header("mcp-session-id"), None);
    let initialized = server.posts("notifications/initialized");
    assert_eq!(initialized.len(), 2);
    assert_eq!(initialized[1].header("mcp-session-id").as_deref(), Some("s-2"));
    assert!(initialized[1].at >= again[1].at);
    for method in ["tools/list", "tools/call"] {
        let last = server.posts(method).pop().unwrap();
        assert_eq!(
            last.header("mcp-session-id").as_deref(),
            Some("s-2"),
            "{method} sent again in the new session"
        );
    }
    assert_eq!(
        server.posts("tools/call").len(),
        2,
        "the refused call is sent once more, not more"
    );
    let delete = server.of(Method::DELETE);
    assert_eq!(delete[0].header("mcp-session-id").as_deref(), Some("s-2"));
}

#[tokio::test]
async fn dropped_stream_is_resumed_with_last_event_id() {
    let server = serve(|seen| match (seen.method.clone(), seen.rpc().as_str()) {
        // A priming event, a reconnection delay, then the connection ends without an answer.
        (Method::POST, "tools/call") => sse_reply("id: ev-1\nretry: 300\ndata: \n\n"),
        (Method::GET, _) if seen.header("last-event-id").as_deref() == Some("ev-1") => {
            let done = json!({"jsonrpc": "2.0", "id": 8, "result": {"content": []}});
            sse_reply(event("ev-2", &done))
        }
        _ => plain(seen),
    })
    .await;
    let mut host = Host::start(opts(&server.url, Arc::new(NoAuth)));
    host.handshake().await;
    host.send(r#"{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"slow","arguments":{}}}"#)
        .await;
    let done = host.recv().await;
    assert_eq!(done["id"], 8);
    assert!(done["result"]["content"].is_array());
    assert!(host.finish().await.is_empty());

    let resumed: Vec<_> = server
        .of(Method::GET)
        .into_iter()
        .filter(|g| g.header("last-event-id").is_some())
        .collect();
    assert_eq!(resumed.len(), 1);
    assert_eq!(resumed[0].header("last-event-id").as_deref(), Some("ev-1"));
    assert_eq!(resumed[0].header("mcp-session-id").as_deref(), Some("s-1"));
    assert_eq!(resumed[0].header("accept").as_deref(), Some("text/event-stream"));
    let waited = resumed[0].at - server.posts("tools/call")[0].at;
    assert!(
        waited >= Duration::from_millis(300),
        "retry: 300 honoured, waited {waited:?}"
    );
    assert_eq!(server.posts("tools/call").len(), 1, "resumed, not sent again");
}

#[tokio::test]
async fn rate_limited_request_waits_for_retry_after() {
    let calls = Arc::new(AtomicUsize::new(0));
    let server = {
        let calls = calls.clone();
        serve(move |seen| {
            if seen.rpc() == "tools/call" && calls.fetch_add(1, Ordering::SeqCst) == 0 {
                let mut r = status(StatusCode::TOO_MANY_REQUESTS);
                r.headers_mut().insert("retry-after", HeaderValue::from_static("1"));
                return r;
            }
            plain(seen)
        })
        .await
    };
    let mut host = Host::start(opts(&server.url, Arc::new(NoAuth)));
    host.handshake().await;
    host.send(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"ok"}}}"#)
        .await;
    assert_eq!(host.recv().await["result"]["content"][0]["text"], "ok");
    host.finish().await;
    let posts = server.posts("tools/call");
    assert_eq!(posts.len(), 2);
    let waited = posts[1].at - posts[0].at;
    assert!(
        waited >= Duration::from_secs(1),
        "Retry-After: 1 honoured, waited {waited:?}"
    );
}

#[tokio::test]
async fn bad_gateway_is_retried_only_for_idempotent_methods() {
    let lists = Arc::new(AtomicUsize::new(0));
    let server = {
        let lists = lists.clone();
        serve(move |seen| match seen.rpc().as_str() {
            "tools/call" => status(StatusCode::BAD_GATEWAY),
            "tools/list" if lists.fetch_add(1, Ordering::SeqCst) == 0 => status(StatusCode::BAD_GATEWAY),
            _ => plain(seen),
        })
        .await
    };
    let mut host = Host::start(opts(&server.url, Arc::new(NoAuth)));
    host.handshake().await;
    host.send(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"charge","arguments":{}}}"#)
        .await;
    let failed = host.recv().await;
    assert_eq!(failed["id"], 1);
    assert_eq!(failed["error"]["code"], -32050);
    let message = failed["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("502") && message.contains("may already have run"),
        "{message}"
    );
    host.send(r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#).await;
    let listed = host.recv().await;
    assert_eq!(listed["id"], 2);
    assert!(listed["result"]["tools"].is_array());
    host.finish().await;
    assert_eq!(
        server.posts("tools/call").len(),
        1,
        "a tools/call is not sent twice after 502"
    );
    assert_eq!(server.posts("tools/list").len(), 2, "a tools/list is");
}

#[tokio::test]
async fn service_unavailable_is_retried_for_any_method() {
    let calls = Arc::new(AtomicUsize::new(0));
    let server = {
        let calls = calls.clone();
        serve(move |seen| {
            if seen.rpc() == "tools/call" && calls.fetch_add(1, Ordering::SeqCst) == 0 {
                // No Retry-After: the backoff decides.
                return status(StatusCode::SERVICE_UNAVAILABLE);
            }
            plain(seen)
        })
        .await
    };
    let mut host = Host::start(opts(&server.url, Arc::new(NoAuth)));
    host.handshake().await;
    host.send(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"ok"}}}"#)
        .await;
    assert_eq!(host.recv().await["result"]["content"][0]["text"], "ok");
    host.finish().await;
    assert_eq!(
        server.posts("tools/call").len(),
        2,
        "503 means not run: a tools/call is sent again"
    );
}

/// 401 unless `X-Key: key-1`.
fn wants_key_1(seen: &Seen) -> Response {
    if seen.header("x-key").as_deref() != Some("key-1") {
        let mut r = status(StatusCode::UNAUTHORIZED);
        r.headers_mut().insert(
            "www-authenticate",
            HeaderValue::from_static(r#"Bearer error="invalid_token""#),
        );
        return r;
    }
    plain(seen)
}

#[tokio::test]
async fn unauthorized_asks_the_provider_and_sends_once_more() {
    let server = serve(wants_key_1).await;
    let auth = Arc::new(Renewing {
        can_renew: true,
        ..Renewing::default()
    });
    let mut host = Host::start(opts(&server.url, auth.clone()));
    host.send(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#).await;
    let listed = host.recv().await;
    assert!(listed["result"]["tools"].is_array(), "{listed}");
    host.finish().await;
    let asked = auth.asked.lock().unwrap().clone();
    assert_eq!(
        asked,
        vec![(
            Some("key-0".to_string()),
            Some(r#"Bearer error="invalid_token""#.to_string())
        )]
    );
    let keys: Vec<_> = server.posts("tools/list").iter().map(|s| s.header("x-key")).collect();
    assert_eq!(keys, vec![Some("key-0".into()), Some("key-1".into())]);
}

/// Key rotation against a server that binds sessions to the credential that opened them (as
/// mcpgate does): the primary is revoked mid-session (401), the provider moves to the fallback,
/// the server refuses the old session under it (403), and the bridge starts a new session under
/// the new key — once, for every message in flight — so the host's session goes on.
#[tokio::test]
async fn a_session_opened_under_replaced_credentials_is_started_again() {
    let revoked = Arc::new(AtomicBool::new(false));
    let inits = Arc::new(AtomicUsize::new(0));
    let server = {
        let (revoked, inits) = (revoked.clone(), inits.clone());
        serve(move |seen| {
            let key = seen.header("x-key").unwrap_or_default();
            if revoked.load(Ordering::SeqCst) && key == "key-0" {
                return status(StatusCode::UNAUTHORIZED);
            }
            if seen.rpc() == "initialize" {
                let n = inits.fetch_add(1, Ordering::SeqCst) + 1;
                let mut r = json_reply(&seen.result(json!({"protocolVersion": "2025-11-25", "capabilities": {}})));
                // The session id names the key that opened it.
                r.headers_mut().insert(
                    "mcp-session-id",
                    HeaderValue::from_str(&format!("s-{n}-{key}")).unwrap(),
                );
                return r;
            }
            if let Some(session) = seen.header("mcp-session-id")
                && !session.ends_with(&key)
            {
                return status(StatusCode::FORBIDDEN);
            }
            plain(seen)
        })
        .await
    };
    let auth = Arc::new(Rotating::default());
    let mut host = Host::start(opts(&server.url, auth.clone()));
    host.handshake().await;
    host.send(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#).await;
    assert!(host.recv().await["result"]["tools"].is_array());
    revoked.store(true, Ordering::SeqCst);
    for id in 2..5 {
        host.send(&format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"t{id}"}}}}}}"#
        ))
        .await;
    }
    let mut answered: Vec<Value> = vec![host.recv().await, host.recv().await, host.recv().await];
    answered.sort_by_key(|a| a["id"].as_i64());
    for (a, id) in answered.iter().zip(2..5) {
        assert_eq!(a["id"], id);
        assert_eq!(a["result"]["content"][0]["text"], format!("t{id}"), "{a}");
    }
    assert!(host.finish().await.is_empty());
    let inits = server.posts("initialize");
    assert_eq!(inits.len(), 2, "one new session, however many messages were refused");
    assert_eq!(inits[1].header("x-key").as_deref(), Some("key-1"));
    assert!(auth.on_fallback.load(Ordering::SeqCst));
    let delete = server.of(Method::DELETE);
    assert_eq!(delete[0].header("mcp-session-id").as_deref(), Some("s-2-key-1"));
}

/// A response to another request on a POST's stream (a server answering, or pre-empting, a
/// request the host sent elsewhere or never) is dropped; the host sees only this request's.
#[tokio::test]
async fn responses_to_other_requests_on_a_stream_are_dropped() {
    let server = serve(|seen| match seen.rpc().as_str() {
        "tools/list" => sse_reply(format!(
            "{}{}{}",
            event("a", &json!({"jsonrpc": "2.0", "id": 99, "result": {"forged": true}})),
            event(
                "b",
                &json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progress": 1}})
            ),
            event("c", &seen.result(json!({"tools": []}))),
        )),
        _ => plain(seen),
    })
    .await;
    let mut host = Host::start(opts(&server.url, Arc::new(NoAuth)));
    host.send(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#).await;
    let first = host.recv().await;
    assert_eq!(first["method"], "notifications/progress", "{first}");
    let answer = host.recv().await;
    assert_eq!(answer["id"], 1, "{answer}");
    assert!(host.finish().await.is_empty(), "nothing for id 99");
}

/// A redirect is never followed: the credentials (an API key, an HMAC signature, the tenant) and
/// the body would go to the host it names.
#[tokio::test]
async fn a_redirect_is_not_followed() {
    let elsewhere = serve(plain).await;
    let target = format!("{}/steal", elsewhere.url);
    let server = serve(move |_| {
        let mut r = status(StatusCode::TEMPORARY_REDIRECT);
        r.headers_mut()
            .insert("location", HeaderValue::from_str(&target).unwrap());
        r
    })
    .await;
    let auth = Arc::new(Renewing::default());
    let mut host = Host::start(opts(&server.url, auth));
    host.send(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#).await;
    let failed = host.recv().await;
    assert_eq!(failed["id"], 1);
    assert!(
        failed["error"]["message"]
            .as_str()
            .unwrap()
            .contains("redirects are not followed"),
        "{failed}"
    );
    host.finish().await;
    assert!(elsewhere.seen().is_empty(), "the redirect's target received a request");
    assert_eq!(server.posts("tools/list").len(), 1);
}

#[tokio::test]
async fn unauthorized_without_new_credentials_is_an_error() {
    let server = serve(wants_key_1).await;
    let auth = Arc::new(Renewing::default());
    let mut host = Host::start(opts(&server.url, auth.clone()));
    host.send(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#).await;
    let line = host.recv_line().await;
    let failed = check_line(&line);
    assert_eq!(failed["id"], 1);
    assert_eq!(failed["error"]["code"], -32001);
    assert_eq!(failed["error"]["message"], "the server refused the credentials (401)");
    assert!(!line.contains("key-0"), "no credential in the error");
    host.finish().await;
    assert_eq!(auth.asked.lock().unwrap().len(), 1);
    assert_eq!(server.posts("tools/list").len(), 1);
}

#[tokio::test]
async fn end_of_stdin_deletes_the_session() {
    let server = serve(plain).await;
    let auth = Arc::new(Renewing {
        generation: AtomicUsize::new(1),
        ..Renewing::default()
    });
    let mut host = Host::start(opts(&server.url, auth));
    host.handshake().await;
    assert!(host.finish().await.is_empty());
    let deletes = server.of(Method::DELETE);
    assert_eq!(deletes.len(), 1);
    assert_eq!(deletes[0].header("mcp-session-id").as_deref(), Some("s-1"));
    assert_eq!(deletes[0].header("mcp-protocol-version").as_deref(), Some("2025-11-25"));
    assert_eq!(deletes[0].header("x-key").as_deref(), Some("key-1"), "with credentials");
}

#[tokio::test]
async fn delete_refused_with_405_still_exits_ok() {
    let server = serve(|seen| match seen.method {
        Method::DELETE => status(StatusCode::METHOD_NOT_ALLOWED),
        _ => plain(seen),
    })
    .await;
    let mut host = Host::start(opts(&server.url, Arc::new(NoAuth)));
    host.handshake().await;
    assert!(host.finish().await.is_empty());
    assert_eq!(server.of(Method::DELETE).len(), 1);
}

#[tokio::test]
async fn invalid_lines_are_answered_and_not_sent() {
    let server = serve(plain).await;
    let mut host = Host::start(opts(&server.url, Arc::new(NoAuth)));
    host.send("not json").await;
    host.send(r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#).await;
    host.send(r#"{"jsonrpc":"2.0","id":7}"#).await;
    host.send("").await;
    host.send("42").await;
    let mut errors = Vec::new();
    for _ in 0..4 {
        let e = host.recv().await;
        errors.push((e["id"].clone(), e["error"]["code"].as_i64().unwrap()));
    }
    let mut expected = vec![
        (json!(7), -32600),
        (Value::Null, -32700),
        (Value::Null, -32600),
        (Value::Null, -32600),
    ];
    let key = |(id, code): &(Value, i64)| (id.to_string(), *code);
    errors.sort_by_key(key);
    expected.sort_by_key(key);
    assert_eq!(errors, expected);
    assert!(host.finish().await.is_empty(), "the empty line is skipped silently");
    assert!(server.seen().is_empty(), "nothing reached the server");
}

#[tokio::test]
async fn a_server_down_at_start_gives_json_rpc_errors() {
    // A port nothing listens on.
    let url = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        format!("http://{}/mcp", listener.local_addr().unwrap())
    };
    let mut host = Host::start(opts(&url, Arc::new(NoAuth)));
    host.send(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{}}}"#)
        .await;
    let failed = host.recv().await;
    assert_eq!(failed["id"], 1);
    assert_eq!(failed["error"]["code"], -32050);
    let message = failed["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("could not connect") && message.contains("3 attempts"),
        "{message}"
    );
    assert!(host.finish().await.is_empty());
}

#[tokio::test]
async fn the_standalone_stream_delivers_server_messages() {
    let server = serve(|seen| match seen.method {
        // Resumed: a stream that stays open and quiet.
        Method::GET if seen.header("last-event-id").is_some() => reply(
            StatusCode::OK,
            Some("text/event-stream"),
            Body::from_stream(futures_util::stream::pending::<Result<String, std::convert::Infallible>>()),
        ),
        Method::GET => {
            let note = json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"});
            sse_reply(format!("id: g-1\ndata: \n\n{}", event("g-2", &note)))
        }
        _ => plain(seen),
    })
    .await;
    let mut host = Host::start(opts(&server.url, Arc::new(NoAuth)));
    host.handshake().await;
    let note = host.recv().await;
    assert_eq!(note["method"], "notifications/tools/list_changed");
    // The stream ended; the bridge reconnects after the last event it saw.
    eventually("a reconnection with Last-Event-ID", || {
        server
            .of(Method::GET)
            .iter()
            .any(|g| g.header("last-event-id").as_deref() == Some("g-2"))
    })
    .await;
    assert!(host.finish().await.is_empty(), "the resumed stream replays nothing");
    assert_eq!(server.of(Method::GET).len(), 2);
}
