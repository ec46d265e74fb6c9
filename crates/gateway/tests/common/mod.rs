//! In-process harness for the gateway's integration tests: the demo upstream on a loopback socket,
//! a gateway built from TOML (no process environment read: an env closure is injected), driven
//! through `router().oneshot(…)` with no socket of its own.
//!
//! Every test builds its own [`Setup`] (own temp dir, own store, own upstream, own gateway), so
//! tests are independent and may run in parallel.

#![allow(dead_code)]

use axum::body::Body;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use mcpgate_core::audit::{AuditQuery, AuditRecord};
use mcpgate_core::keys::{self, KeyRecord};
use mcpgate_core::principal::{Limits, Role};
use mcpgate_gateway::Gateway;
use mcpgate_gateway::clock::{Clock, ManualClock, SystemClock};
use mcpgate_gateway::config::Config;
use mcpgate_gateway::config::raw::{Overrides, RawConfig};
use mcpgate_store::sqlite::SqliteStore;
use mcpgate_store::{AuditStore, KeyStore};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tower::ServiceExt;

/// The protocol revision the helpers speak.
pub const PROTOCOL: &str = "2025-06-18";
/// Bound on any single request through the gateway: a hang fails the test instead of blocking it.
pub const REQUEST_LIMIT: Duration = Duration::from_secs(15);

pub fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Starts the demo upstream (Streamable HTTP) on 127.0.0.1:0 on the current runtime; returns its
/// MCP URL.
pub async fn start_demo() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind demo");
    let addr = listener.local_addr().expect("demo addr");
    tokio::spawn(mcpgate_demo::serve_http(listener, mcpgate_demo::Profile::Demo));
    format!("http://{addr}/mcp")
}

/// A URL on which nothing listens (a port bound then released).
pub async fn dead_url(path: &str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}{path}")
}

// ---- keys -------------------------------------------------------------------------------------

/// What a store key grants. Defaults: role `user`, permissions `["*"]`, no limits, no tenant.
#[derive(Clone, Debug)]
pub struct KeySpec {
    pub user: String,
    pub role: Role,
    pub permissions: Vec<String>,
    pub limits: Limits,
    pub tenant: Option<String>,
    pub expires_at: Option<i64>,
    pub revoked: bool,
}

pub fn key(user: &str) -> KeySpec {
    KeySpec {
        user: user.to_string(),
        role: Role::User,
        permissions: vec!["*".into()],
        limits: Limits::default(),
        tenant: None,
        expires_at: None,
        revoked: false,
    }
}

impl KeySpec {
    pub fn role(mut self, r: Role) -> Self {
        self.role = r;
        self
    }
    pub fn perms(mut self, p: &[&str]) -> Self {
        self.permissions = p.iter().map(|s| s.to_string()).collect();
        self
    }
    pub fn limits(mut self, l: Limits) -> Self {
        self.limits = l;
        self
    }
    pub fn tenant(mut self, t: &str) -> Self {
        self.tenant = Some(t.to_string());
        self
    }
    pub fn expires_at(mut self, t: i64) -> Self {
        self.expires_at = Some(t);
        self
    }
    pub fn revoked(mut self) -> Self {
        self.revoked = true;
        self
    }
}

/// A key as the user holds it, plus what the store keeps of it.
#[derive(Clone, Debug)]
pub struct Issued {
    pub key: String,
    pub key_id: String,
    pub hash: String,
    pub user: String,
}

impl Issued {
    /// The secret part of `mcp_<keyId>_<secret>` (or the whole key for other shapes).
    pub fn secret_part(&self) -> &str {
        let prefix = format!("mcp_{}_", self.key_id);
        self.key.strip_prefix(&prefix).unwrap_or(&self.key)
    }
    pub fn x_api_key(&self) -> (&'static str, &str) {
        ("x-api-key", self.key.as_str())
    }
    pub fn bearer(&self) -> (&'static str, String) {
        ("authorization", format!("Bearer {}", self.key))
    }
}

/// A generated key that no registry knows.
pub fn unknown_key() -> Issued {
    let k = keys::generate();
    Issued {
        key: k.key.expose().to_string(),
        key_id: k.key_id,
        hash: k.hash,
        user: "nobody".into(),
    }
}

/// Waits for a store call from synchronous test code (the store's work runs on the runtime's
/// blocking pool, so this thread can simply park until it is done).
pub fn wait<F: std::future::Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::task::Waker::from(std::sync::Arc::new(Unpark(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

pub fn insert_key(store: &SqliteStore, spec: &KeySpec) -> Issued {
    let k = keys::generate();
    let record = KeyRecord {
        key_id: k.key_id.clone(),
        hash: k.hash.clone(),
        name: format!("test key of {}", spec.user),
        user_id: spec.user.clone(),
        tenant: spec.tenant.clone(),
        role: spec.role,
        permissions: spec.permissions.clone(),
        limits: spec.limits,
        expires_at: spec.expires_at,
        created_at: now_s(),
        revoked: spec.revoked,
        source: "store".into(),
    };
    wait(store.insert_key(&record)).expect("insert key");
    Issued {
        key: k.key.expose().to_string(),
        key_id: k.key_id,
        hash: k.hash,
        user: spec.user.clone(),
    }
}

// ---- setup ------------------------------------------------------------------------------------

/// A gateway being prepared: its temp dir and store exist, keys can be inserted and environment
/// variables set before [`Setup::start`] builds it.
pub struct Setup {
    dir: tempfile::TempDir,
    store: SqliteStore,
    toml: String,
    env: HashMap<String, String>,
    upstream: Option<String>,
    /// The TOML names a stdio upstream (`[upstream] command`): no demo server, no URL override.
    stdio: bool,
    /// Time for the gateway: the system's, or a manual clock the test moves.
    clock: Option<Arc<ManualClock>>,
}

impl Setup {
    pub fn new(toml: &str) -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("mcpgate.db")).expect("open store");
        Setup {
            dir,
            store,
            toml: toml.to_string(),
            env: HashMap::new(),
            upstream: None,
            stdio: false,
            clock: None,
        }
    }

    /// The gateway reads time from a manual clock (starting at the system's now) that the test
    /// moves with `Gw::advance`, instead of sleeping past refresh floors and windows.
    pub fn manual_clock(mut self) -> Setup {
        self.clock = Some(Arc::new(ManualClock::starting_now()));
        self
    }

    /// Inserts a store key now (before the gateway loads its registry).
    pub fn key(&self, spec: KeySpec) -> Issued {
        insert_key(&self.store, &spec)
    }

    pub fn env(&mut self, name: &str, value: &str) -> &mut Self {
        self.env.insert(name.to_string(), value.to_string());
        self
    }

    /// Uses this upstream URL instead of starting a demo server.
    pub fn upstream(&mut self, url: &str) -> &mut Self {
        self.upstream = Some(url.to_string());
        self
    }

    /// The TOML's `[upstream] command` is the upstream (a stdio child).
    pub fn upstream_cmd(&mut self) -> &mut Self {
        self.stdio = true;
        self
    }

    pub async fn start(self) -> Gw {
        let upstream_url = match (self.upstream, self.stdio) {
            (_, true) => String::new(),
            (Some(u), false) => u,
            (None, false) => start_demo().await,
        };
        let store_path = self.dir.path().join("mcpgate.db");
        let mut raw = RawConfig::from_toml(&self.toml).unwrap_or_else(|e| panic!("bad test TOML: {e}\n{}", self.toml));
        raw.apply_overrides(&Overrides {
            upstream_url: (!upstream_url.is_empty()).then(|| upstream_url.clone()),
            store_path: Some(store_path.display().to_string()),
            ..Overrides::default()
        });
        let config = Config::validate(raw).unwrap_or_else(|e| panic!("invalid test config: {e}\n{}", self.toml));
        let env = self.env;
        let clock: Arc<dyn Clock> = match &self.clock {
            Some(c) => c.clone(),
            None => Arc::new(SystemClock),
        };
        let gw = Gateway::with_clock(config, &|k| env.get(k).cloned(), clock)
            .await
            .unwrap_or_else(|e| panic!("Gateway::new: {e}"));
        Gw {
            gw,
            store: self.store,
            clock: self.clock,
            upstream_url,
            next_id: AtomicU64::new(1),
            seen: Mutex::new(Vec::new()),
            _dir: self.dir,
        }
    }
}

// ---- responses --------------------------------------------------------------------------------

#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    /// The JSON body, or the JSON-RPC response among the events of an SSE body; `Null` if none.
    pub body: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn code(&self) -> Option<i64> {
        self.body["error"]["code"].as_i64()
    }
    pub fn message(&self) -> String {
        self.body["error"]["message"].as_str().unwrap_or_default().to_string()
    }
    pub fn is_ok(&self) -> bool {
        self.status == StatusCode::OK && self.body.get("result").is_some()
    }
    /// Fails with the whole response when the call did not succeed.
    pub fn ok(&self, what: &str) -> &Self {
        assert!(
            self.is_ok(),
            "{what}: expected a result, got {} {}",
            self.status,
            self.text
        );
        self
    }
    /// The first text content of a tool result.
    pub fn tool_text(&self) -> String {
        self.body["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or_else(|| panic!("no tool text in {}", self.text))
            .to_string()
    }
    pub fn tool_json(&self) -> Value {
        serde_json::from_str(&self.tool_text()).unwrap_or_else(|e| panic!("tool text is not JSON ({e}): {}", self.text))
    }
    pub fn tool_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.body["result"]["tools"]
            .as_array()
            .unwrap_or_else(|| panic!("no tools in {}", self.text))
            .iter()
            .filter_map(|t| t["name"].as_str().map(str::to_string))
            .collect();
        v.sort();
        v
    }
    /// Asserts a JSON-RPC refusal: HTTP status, error code, and message fragments (all required).
    pub fn refused(&self, what: &str, status: u16, code: i64, says: &[&str]) -> &Self {
        assert_eq!(self.status.as_u16(), status, "{what}: status; body {}", self.text);
        assert_eq!(
            self.code(),
            Some(code),
            "{what}: JSON-RPC error code; body {}",
            self.text
        );
        let msg = self.message();
        for s in says {
            assert!(msg.contains(s), "{what}: message {msg:?} should mention {s:?}");
        }
        self
    }
}

/// The JSON-RPC response among the events of an SSE body.
pub fn json_in_sse(text: &str) -> Value {
    let mut found = Value::Null;
    let mut data = String::new();
    for line in text.lines().chain(std::iter::once("")) {
        if line.is_empty() {
            if !data.is_empty() {
                if let Ok(v) = serde_json::from_str::<Value>(&data)
                    && (v.get("result").is_some() || v.get("error").is_some())
                {
                    found = v;
                }
                data.clear();
            }
        } else if let Some(d) = line.strip_prefix("data:") {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(d.strip_prefix(' ').unwrap_or(d));
        }
    }
    found
}

// ---- the gateway under test -------------------------------------------------------------------

pub struct Gw {
    pub gw: Arc<Gateway>,
    /// A second handle on the gateway's SQLite file, as the CLI would hold.
    store: SqliteStore,
    /// Set by `Setup::manual_clock`.
    pub clock: Option<Arc<ManualClock>>,
    pub upstream_url: String,
    next_id: AtomicU64,
    /// Every response seen (status, headers, body), for leak checks.
    pub seen: Mutex<Vec<String>>,
    _dir: tempfile::TempDir,
}

pub type Headers<'a> = &'a [(&'a str, &'a str)];

impl Gw {
    /// Moves the gateway's manual clock (see `Setup::manual_clock`).
    pub fn advance(&self, by: Duration) {
        self.clock
            .as_ref()
            .expect("advance needs Setup::manual_clock()")
            .advance(by);
    }
}

impl Gw {
    pub fn store(&self) -> &SqliteStore {
        &self.store
    }

    pub fn id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub async fn send(&self, req: Request<Body>) -> Resp {
        let what = format!("{} {}", req.method(), req.uri());
        let resp = tokio::time::timeout(REQUEST_LIMIT, self.gw.router().oneshot(req))
            .await
            .unwrap_or_else(|_| panic!("timed out: {what}"))
            .unwrap_or_else(|e| match e {});
        let (parts, body) = resp.into_parts();
        let bytes = tokio::time::timeout(REQUEST_LIMIT, body.collect())
            .await
            .unwrap_or_else(|_| panic!("body timed out: {what}"))
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let is_sse = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("text/event-stream"));
        let body = if is_sse {
            json_in_sse(&text)
        } else {
            serde_json::from_str(&text).unwrap_or(Value::Null)
        };
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(format!("{} {:?}\n{}", parts.status, parts.headers, text));
        Resp {
            status: parts.status,
            headers: parts.headers,
            text,
            body,
        }
    }

    fn request(method: &str, uri: &str, headers: Headers<'_>) -> http::request::Builder {
        let mut b = Request::builder().method(method).uri(uri).header("host", "localhost");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b
    }

    /// POSTs a JSON body to `uri` with the usual MCP headers plus `headers`.
    pub async fn post(&self, uri: &str, headers: Headers<'_>, body: &Value) -> Resp {
        let req = Self::request("POST", uri, headers)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(Body::from(body.to_string()))
            .expect("request");
        self.send(req).await
    }

    pub async fn get(&self, uri: &str, headers: Headers<'_>) -> Resp {
        let req = Self::request("GET", uri, headers).body(Body::empty()).expect("request");
        self.send(req).await
    }

    pub async fn delete(&self, uri: &str, headers: Headers<'_>) -> Resp {
        let req = Self::request("DELETE", uri, headers)
            .body(Body::empty())
            .expect("request");
        self.send(req).await
    }

    /// A JSON-RPC request to `/mcp` (or `uri`), with the session and protocol headers when a
    /// session is given.
    pub async fn rpc_at(
        &self,
        uri: &str,
        headers: Headers<'_>,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Resp {
        let body = json!({ "jsonrpc": "2.0", "id": self.id(), "method": method, "params": params });
        let mut h: Vec<(&str, &str)> = headers.to_vec();
        if let Some(s) = session {
            h.push(("mcp-session-id", s));
            h.push(("mcp-protocol-version", PROTOCOL));
        }
        self.post(uri, &h, &body).await
    }

    pub async fn rpc(&self, headers: Headers<'_>, session: Option<&str>, method: &str, params: Value) -> Resp {
        self.rpc_at("/mcp", headers, session, method, params).await
    }

    pub async fn notify(&self, headers: Headers<'_>, session: &str, method: &str) -> Resp {
        let body = json!({ "jsonrpc": "2.0", "method": method });
        let h: Vec<(&str, &str)> = headers
            .iter()
            .copied()
            .chain([("mcp-session-id", session), ("mcp-protocol-version", PROTOCOL)])
            .collect();
        self.post("/mcp", &h, &body).await
    }

    pub async fn try_initialize_at(&self, uri: &str, headers: Headers<'_>) -> Resp {
        let params = json!({
            "protocolVersion": PROTOCOL,
            "capabilities": {},
            "clientInfo": { "name": "mcpgate-auth-tests", "version": "1" }
        });
        self.rpc_at(uri, headers, None, "initialize", params).await
    }

    pub async fn try_initialize(&self, headers: Headers<'_>) -> Resp {
        self.try_initialize_at("/mcp", headers).await
    }

    /// initialize + notifications/initialized; returns the session id.
    pub async fn initialize_at(&self, uri: &str, headers: Headers<'_>) -> String {
        let r = self.try_initialize_at(uri, headers).await;
        r.ok("initialize");
        let session = r
            .header("mcp-session-id")
            .unwrap_or_else(|| panic!("initialize returned no session id: {:?}", r.headers))
            .to_string();
        let n = self
            .post_notification_at(uri, headers, &session, "notifications/initialized")
            .await;
        assert!(
            n.status.is_success(),
            "notifications/initialized: {} {}",
            n.status,
            n.text
        );
        session
    }

    async fn post_notification_at(&self, uri: &str, headers: Headers<'_>, session: &str, method: &str) -> Resp {
        let body = json!({ "jsonrpc": "2.0", "method": method });
        let h: Vec<(&str, &str)> = headers
            .iter()
            .copied()
            .chain([("mcp-session-id", session), ("mcp-protocol-version", PROTOCOL)])
            .collect();
        self.post(uri, &h, &body).await
    }

    pub async fn initialize(&self, headers: Headers<'_>) -> String {
        self.initialize_at("/mcp", headers).await
    }

    pub async fn call_at(
        &self,
        uri: &str,
        headers: Headers<'_>,
        session: Option<&str>,
        tool: &str,
        args: Value,
    ) -> Resp {
        self.rpc_at(
            uri,
            headers,
            session,
            "tools/call",
            json!({ "name": tool, "arguments": args }),
        )
        .await
    }

    pub async fn call(&self, headers: Headers<'_>, session: Option<&str>, tool: &str, args: Value) -> Resp {
        self.call_at("/mcp", headers, session, tool, args).await
    }

    pub async fn list_tools(&self, headers: Headers<'_>, session: &str) -> Resp {
        self.rpc(headers, Some(session), "tools/list", json!({})).await
    }

    /// The whoami tool's structured answer.
    pub async fn whoami(&self, headers: Headers<'_>) -> Value {
        let r = self.call(headers, None, "whoami", json!({})).await;
        r.ok("whoami");
        r.body["result"]["structuredContent"].clone()
    }

    /// Flushes the audit writer (it stops; no more records are written) and reads every record.
    pub async fn audit(&self) -> Vec<AuditRecord> {
        self.gw.audit.close().await;
        self.store()
            .query(&AuditQuery {
                limit: 10_000,
                ..AuditQuery::default()
            })
            .await
            .expect("audit query")
    }
}

/// Polls `check` every 50 ms until it is true, or fails after `limit`.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if check().await {
            return;
        }
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// seed 001's `MCP_API_KEYS` JSON for one key.
pub fn seed_keys_json(key: &str, user: &str, role: &str, perms: &[&str], per_minute: Option<u32>) -> String {
    let mut entry = json!({
        "name": format!("{user} connector"),
        "userId": user,
        "role": role,
        "permissions": perms,
    });
    if let Some(n) = per_minute {
        entry["rateLimit"] = json!({ "requestsPerMinute": n, "requestsPerHour": 1000 });
    }
    json!({ key: entry }).to_string()
}

// ---- added for tests/tokens.rs: raw bodies, the store before start, a recording upstream,
// ---- log capture and leak search -------------------------------------------------------------

impl Setup {
    /// The store the gateway will open, to prepare state (held credentials, keys) before start.
    pub fn store(&self) -> &SqliteStore {
        &self.store
    }
}

impl Gw {
    /// Sends exactly these body bytes (HMAC signatures cover the raw body), with the usual MCP
    /// headers plus `headers`.
    pub async fn send_raw(&self, method: &str, uri: &str, headers: Headers<'_>, body: Vec<u8>) -> Resp {
        let req = Self::request(method, uri, headers)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(Body::from(body))
            .expect("request");
        self.send(req).await
    }

    pub async fn post_raw(&self, uri: &str, headers: Headers<'_>, body: Vec<u8>) -> Resp {
        self.send_raw("POST", uri, headers, body).await
    }
}

/// One request as the upstream received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub http_method: String,
    /// The JSON-RPC method of the body, if it has one.
    pub rpc_method: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// A transparent HTTP proxy in front of an upstream that records every request it forwards:
/// proves whether the upstream was called at all, and what reached it byte for byte.
pub struct Recorder {
    /// Point the gateway here.
    pub url: String,
    seen: Arc<Mutex<Vec<Recorded>>>,
}

#[derive(Clone)]
struct RecorderState {
    target: String,
    client: reqwest::Client,
    seen: Arc<Mutex<Vec<Recorded>>>,
}

async fn recorder_forward(
    axum::extract::State(s): axum::extract::State<RecorderState>,
    req: Request<Body>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (parts, body) = req.into_parts();
    let bytes = body.collect().await.map(|c| c.to_bytes()).unwrap_or_default();
    let rpc_method = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v["method"].as_str().map(str::to_string));
    s.seen.lock().unwrap_or_else(|e| e.into_inner()).push(Recorded {
        http_method: parts.method.to_string(),
        rpc_method,
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: String::from_utf8_lossy(&bytes).into_owned(),
    });
    let mut url = s.target.clone();
    if let Some(q) = parts.uri.query() {
        url = format!("{url}?{q}");
    }
    let mut rb = s.client.request(parts.method.clone(), url);
    for (k, v) in &parts.headers {
        if !matches!(
            k.as_str(),
            "host" | "content-length" | "connection" | "transfer-encoding"
        ) {
            rb = rb.header(k.clone(), v.clone());
        }
    }
    let resp = match rb.body(bytes).send().await {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_GATEWAY, format!("recorder: {e}")).into_response(),
    };
    let mut out = axum::response::Response::builder().status(resp.status());
    for (k, v) in resp.headers() {
        if !matches!(k.as_str(), "content-length" | "connection" | "transfer-encoding") {
            out = out.header(k.clone(), v.clone());
        }
    }
    out.body(Body::from_stream(resp.bytes_stream()))
        .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
}

impl Recorder {
    /// Starts the proxy on 127.0.0.1:0, forwarding to `target` (an MCP URL).
    pub async fn start(target: &str) -> Recorder {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind recorder");
        let addr = listener.local_addr().expect("recorder addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state = RecorderState {
            target: target.to_string(),
            client: reqwest::Client::new(),
            seen: seen.clone(),
        };
        let app = axum::Router::new().fallback(recorder_forward).with_state(state);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Recorder {
            url: format!("http://{addr}/mcp"),
            seen,
        }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// How many requests with this JSON-RPC method reached the upstream.
    pub fn count(&self, rpc_method: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.rpc_method.as_deref() == Some(rpc_method))
            .count()
    }

    /// Everything the upstream received (headers and bodies), for searching.
    pub fn dump(&self) -> String {
        self.requests()
            .iter()
            .map(|r| format!("{} {:?}\n{}", r.http_method, r.headers, r.body))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Log output captured from a TRACE subscriber installed for the current thread (use a
/// `current_thread` runtime so the gateway, its upstream and their tasks all log through it).
pub struct LogCapture {
    buf: Arc<Mutex<Vec<u8>>>,
    _guard: tracing::dispatcher::DefaultGuard,
    _second: tracing::Dispatch,
}

#[derive(Clone)]
struct CaptureWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogCapture {
    pub fn install() -> LogCapture {
        let _ = tracing_log::LogTracer::init();
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = CaptureWriter(buf.clone());
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        // A second live dispatcher makes tracing-core compute callsite interest over every
        // dispatcher; with only one, a callsite first hit on another test's thread (no
        // subscriber) is cached as "never" and this subscriber would miss it.
        let second = tracing::Dispatch::new(tracing_subscriber::registry());
        let guard = tracing::dispatcher::set_default(&tracing::Dispatch::new(subscriber));
        LogCapture {
            buf,
            _guard: guard,
            _second: second,
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

/// Every (secret, place) pair where the secret occurs, with some context around it.
pub fn find_leaks(secrets: &[(String, String)], places: &[(&str, &str)]) -> Vec<String> {
    let mut leaks = Vec::new();
    for (what, secret) in secrets {
        assert!(
            !secret.is_empty(),
            "empty secret {what}: the search would match anything"
        );
        for (place, text) in places {
            if let Some(at) = text.find(secret.as_str()) {
                let from = text[..at].char_indices().rev().nth(200).map_or(0, |(i, _)| i);
                let excerpt: String = text[from..].chars().take(300).collect();
                leaks.push(format!("{what} in {place}: …{excerpt}…"));
            }
        }
    }
    leaks
}
