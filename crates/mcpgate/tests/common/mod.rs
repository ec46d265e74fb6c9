//! Shared harness for the end-to-end tests: real processes on loopback (the `mcpgate` binary and
//! the `mcpgate-example-server` upstream), a real MCP client (rmcp) and raw HTTP (reqwest).
//!
//! Every process is owned by a [`Proc`] guard that stops it on drop, and every wait is bounded.

#![allow(dead_code)]
// Sampling is deprecated by the 2026-07-28 protocol (SEP-2577), but the gateway must still carry it.
#![allow(deprecated)]

use rmcp::model::{
    ClientCapabilities, ClientConfig, CreateMessageRequestParams, CreateMessageResult, ElicitRequestParams,
    ElicitResult, ElicitationAction, ElicitationCapability, ProgressNotificationParam, ProtocolVersion,
    SamplingCapability, SamplingMessage,
};
use rmcp::service::{NotificationContext, RequestContext, RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::common::client_side_sse::BoxedSseResponse;
use rmcp::transport::streamable_http_client::{
    StreamableHttpClient, StreamableHttpClientTransportConfig, StreamableHttpError, StreamableHttpPostResponse,
};
use rmcp::{ClientHandler, ErrorData, ServiceExt};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Upper bound for anything that should take well under a second on an idle machine; generous
/// because the tests run in parallel on small, loaded CI machines.
pub const STEP: Duration = Duration::from_secs(30);
/// Upper bound for a process to start and answer.
pub const START: Duration = Duration::from_secs(60);

/// Fails the test with `what` if `fut` does not finish within `limit` (never hangs).
pub async fn within<T>(limit: Duration, what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(limit, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {limit:?}: {what}"),
    }
}

/// Polls `check` every 25 ms until it returns `Some`, or fails after `limit`.
pub async fn poll_until<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("condition not met within {limit:?}: {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A short random hex string, so concurrent tests and calls never share payloads.
pub fn nonce() -> String {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    format!("{:016x}", h.finish())
}

// ---- binaries ---------------------------------------------------------------------------------

pub fn gateway_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_mcpgate"))
}

/// The example upstream, from the same target directory and profile as the gateway. Cargo does
/// not build another package's binaries for this test, so it is built here once per run (a no-op
/// when it is fresh; this also keeps a stale binary from being tested). `MCPGATE_EXAMPLE_BIN`
/// overrides the path and skips the build.
pub fn example_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("MCPGATE_EXAMPLE_BIN") {
            return PathBuf::from(p);
        }
        let gw = gateway_bin();
        let bin = gw.with_file_name("mcpgate-example-server");
        let profile_dir = gw.parent().expect("profile dir");
        let target_dir = profile_dir.parent().expect("target dir");
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => "dev",
            Some(other) => other,
        };
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
        let out = Command::new(cargo)
            .args(["build", "--quiet", "-p", "mcpgate-demo", "--bin"])
            .arg("mcpgate-example-server")
            .arg("--profile")
            .arg(profile)
            .arg("--manifest-path")
            .arg(&manifest)
            .arg("--target-dir")
            .arg(target_dir)
            .stdout(Stdio::null())
            .output()
            .expect("run cargo build for mcpgate-example-server");
        assert!(
            out.status.success(),
            "cargo build -p mcpgate-demo --bin mcpgate-example-server failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(bin.is_file(), "{} missing after build", bin.display());
        bin
    })
}

// ---- processes --------------------------------------------------------------------------------

/// A child process, stopped on drop (SIGTERM, then SIGKILL), with its stderr captured.
pub struct Proc {
    pub name: String,
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Proc {
    pub fn spawn(name: &str, cmd: Command) -> Proc {
        Proc::spawn_with_env(name, cmd, &[])
    }

    /// Spawns with the test process's `MCP_*`/`MCPGATE_*` variables removed and `env` set.
    pub fn spawn_with_env(name: &str, mut cmd: Command, env: &[(&str, &str)]) -> Proc {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .env_remove("RUST_BACKTRACE");
        for (k, _) in std::env::vars_os() {
            let k_str = k.to_string_lossy();
            if k_str.starts_with("MCPGATE_") || k_str.starts_with("MCP_") {
                cmd.env_remove(k);
            }
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().expect("stderr piped");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                let mut s = sink.lock().unwrap_or_else(|e| e.into_inner());
                s.push_str(&line);
                s.push('\n');
            }
        });
        Proc {
            name: name.to_string(),
            child,
            stderr,
        }
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits until stderr contains `needle` and returns the first line containing it.
    pub async fn wait_for_line(&mut self, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(line) = self.stderr().lines().find(|l| l.contains(needle)) {
                return line.to_string();
            }
            if !self.is_running() {
                // Give the reader thread a moment to collect the last lines.
                tokio::time::sleep(Duration::from_millis(100)).await;
                panic!(
                    "{} exited before logging {needle:?}; stderr:\n{}",
                    self.name,
                    self.stderr()
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "{} did not log {needle:?} within {limit:?}; stderr:\n{}",
                    self.name,
                    self.stderr()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The `http://ADDR/mcp` URL a server logged as `listening on http://ADDR/mcp`.
    pub async fn wait_for_listen_url(&mut self) -> String {
        let line = self.wait_for_line("listening on http://", START).await;
        parse_listen_url(&line).unwrap_or_else(|| panic!("no URL in {line:?}"))
    }

    /// Stops the process: SIGTERM first (so the gateway stops its own children), SIGKILL if it
    /// has not exited within `grace`.
    pub fn stop(&mut self, grace: Duration) {
        if !self.is_running() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if !self.is_running() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(3));
        if std::thread::panicking() {
            let log = self.stderr();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("---- last stderr lines of {} ----", self.name);
            for l in tail.into_iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

/// `http://127.0.0.1:1234/mcp` from a log line containing `listening on http://127.0.0.1:1234/mcp`.
pub fn parse_listen_url(line: &str) -> Option<String> {
    let start = line.find("listening on http://")? + "listening on ".len();
    let rest = &line[start..];
    let end = rest.find("/mcp")? + "/mcp".len();
    Some(rest[..end].to_string())
}

// ---- gateway and upstreams ----------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `--upstream-cmd`: the gateway runs one example server per session over stdio.
    Stdio,
    /// `--upstream-url`: the gateway forwards to an example server in HTTP mode.
    Http,
}

/// A running gateway (and, for [`Kind::Http`], the upstream it forwards to).
pub struct Stack {
    pub gw: Proc,
    /// An admin API key the gateway accepts (from `MCP_API_KEYS`).
    pub key: String,
    /// `http://127.0.0.1:PORT/mcp`
    pub url: String,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub addr: SocketAddr,
    pub kind: Kind,
    pub upstream: Option<Proc>,
    pub upstream_url: Option<String>,
    /// The gateway's working directory and store; removed on drop (after the processes).
    pub dir: tempfile::TempDir,
}

/// A generated-format key (`mcp_<keyId>_<secret>`) with a long random secret.
pub fn new_key() -> String {
    format!("mcp_e2e{}_{}{}{}{}", nonce(), nonce(), nonce(), nonce(), nonce())
}

impl Stack {
    pub async fn new(kind: Kind) -> Stack {
        match kind {
            Kind::Stdio => {
                let cmd = format!("{} --stdio --profile demo", shell_quote(example_bin()));
                Stack::gateway(kind, &["--upstream-cmd", &cmd], None).await
            }
            Kind::Http => {
                let (up, url) = start_http_upstream().await;
                let mut s = Stack::gateway(kind, &["--upstream-url", &url], Some(up)).await;
                s.upstream_url = Some(url);
                s
            }
        }
    }

    /// Starts `mcpgate serve --listen 127.0.0.1:0 --store TMP/mcpgate.db ARGS` in a temporary
    /// directory, with one admin key in `MCP_API_KEYS`, and waits until `/healthz` answers 200.
    pub async fn gateway(kind: Kind, args: &[&str], upstream: Option<Proc>) -> Stack {
        let dir = tempfile::tempdir().expect("temp dir");
        let key = new_key();
        let keys = json!({ key.clone(): {
            "name": "e2e admin", "userId": "e2e", "role": "admin", "permissions": ["*"]
        }});
        let mut cmd = Command::new(gateway_bin());
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--store"])
            .arg(dir.path().join("mcpgate.db"))
            .args(args)
            .current_dir(dir.path());
        let mut gw = Proc::spawn_with_env("mcpgate", cmd, &[("MCP_API_KEYS", &keys.to_string())]);
        let url = gw.wait_for_listen_url().await;
        let base = url.trim_end_matches("/mcp").to_string();
        let addr: SocketAddr = base.trim_start_matches("http://").parse().expect("gateway address");
        let http = raw_client();
        let health = format!("{base}/healthz");
        poll_until(START, "gateway /healthz answers 200", || {
            let http = http.clone();
            let health = health.clone();
            async move {
                let r = http.get(&health).send().await.ok()?;
                (r.status() == 200).then_some(())
            }
        })
        .await;
        Stack {
            gw,
            key,
            url,
            base,
            addr,
            kind,
            upstream,
            upstream_url: None,
            dir,
        }
    }

    /// Raw HTTP that authenticates with the stack's admin key.
    pub fn raw(&self) -> Raw {
        Raw {
            http: raw_client(),
            url: self.url.clone(),
            key: Some(self.key.clone()),
        }
    }

    /// Raw HTTP without a credential.
    pub fn raw_anonymous(&self) -> Raw {
        Raw {
            key: None,
            ..self.raw()
        }
    }

    /// GET one of the gateway's own pages with the admin key.
    pub async fn page(&self, path: &str) -> (u16, String) {
        let url = format!("{}{path}", self.base);
        let r = within(
            STEP,
            &format!("GET {url}"),
            raw_client().get(&url).header("x-api-key", &self.key).send(),
        )
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let status = r.status().as_u16();
        (status, r.text().await.unwrap_or_default())
    }

    /// Connects an rmcp client with the stack's key.
    pub async fn connect(&self, handler: TestClient) -> (Client, SpyHttp) {
        connect(&self.url, Some(&self.key), handler).await
    }

    pub async fn metrics(&self) -> String {
        let r = raw_client()
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .expect("GET /metrics");
        assert_eq!(r.status(), 200, "/metrics status");
        r.text().await.expect("metrics body")
    }

    /// The gateway is still running, answers `/healthz`, and never logged a panic.
    pub async fn assert_healthy(&mut self) {
        assert!(self.gw.is_running(), "the gateway process exited");
        let r = within(
            STEP,
            "GET /healthz",
            raw_client().get(format!("{}/healthz", self.base)).send(),
        )
        .await
        .expect("GET /healthz");
        assert_eq!(r.status(), 200, "/healthz");
        let log = self.gw.stderr();
        assert!(!log.contains("panicked"), "the gateway logged a panic:\n{log}");
    }
}

pub async fn start_http_upstream() -> (Proc, String) {
    let mut cmd = Command::new(example_bin());
    cmd.args(["--http", "127.0.0.1:0", "--profile", "demo"])
        .current_dir(std::env::temp_dir());
    let mut up = Proc::spawn("mcpgate-example-server", cmd);
    let url = up.wait_for_listen_url().await;
    (up, url)
}

pub fn shell_quote(p: &Path) -> String {
    format!("'{}'", p.to_string_lossy().replace('\'', "'\\''"))
}

// ---- raw HTTP -----------------------------------------------------------------------------------

/// A reqwest client that never goes through a proxy (everything here is loopback).
pub fn raw_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(STEP)
        .build()
        .expect("reqwest client")
}

pub const ACCEPT_BOTH: &str = "application/json, text/event-stream";

/// Raw JSON-RPC over HTTP against the gateway.
#[derive(Clone)]
pub struct Raw {
    pub http: reqwest::Client,
    pub url: String,
    /// Sent as `X-API-Key` on every request when set.
    pub key: Option<String>,
}

/// A response: status, headers and the JSON-RPC message it carried (the final response of an
/// SSE stream, or the JSON body), if any.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
    pub rpc: Option<Value>,
}

impl Reply {
    pub fn error_code(&self) -> Option<i64> {
        self.rpc.as_ref()?.get("error")?.get("code")?.as_i64()
    }

    pub fn session(&self) -> Option<String> {
        self.headers
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

impl Raw {
    /// A request to the MCP endpoint carrying the key (if any) and nothing else.
    pub fn request(&self, method: reqwest::Method) -> reqwest::RequestBuilder {
        let rb = self.http.request(method, &self.url);
        match &self.key {
            Some(k) => rb.header("x-api-key", k),
            None => rb,
        }
    }

    /// A POST with the right content type and Accept.
    pub fn post(&self) -> reqwest::RequestBuilder {
        self.request(reqwest::Method::POST)
            .header("content-type", "application/json")
            .header("accept", ACCEPT_BOTH)
    }

    pub async fn send(rb: reqwest::RequestBuilder) -> Reply {
        let resp = within(STEP, "raw request", rb.send())
            .await
            .expect("raw request failed at the transport level");
        read_reply(resp).await
    }

    /// POSTs one JSON-RPC message, in `session` if given.
    pub async fn rpc(&self, session: Option<&str>, msg: &Value) -> Reply {
        let mut rb = self.post().body(msg.to_string());
        if let Some(s) = session {
            rb = rb
                .header("mcp-session-id", s)
                .header("mcp-protocol-version", "2025-11-25");
        }
        Raw::send(rb).await
    }

    /// `initialize` + `notifications/initialized`; returns the session id.
    pub async fn open_session(&self) -> String {
        let init = json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": { "name": "mcpgate-e2e-raw", "version": "0" }
            }
        });
        let r = self.rpc(None, &init).await;
        assert_eq!(r.status, 200, "initialize: {r:?}");
        assert!(
            r.rpc.as_ref().and_then(|m| m.get("result")).is_some(),
            "initialize result: {r:?}"
        );
        let session = r.session().expect("initialize returned an Mcp-Session-Id");
        let note = json!({ "jsonrpc": "2.0", "method": "notifications/initialized" });
        let r = self.rpc(Some(&session), &note).await;
        assert!(r.status == 202 || r.status == 200, "notifications/initialized: {r:?}");
        session
    }
}

async fn read_reply(resp: reqwest::Response) -> Reply {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let is_sse = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let body = within(STEP, "read response body", resp.text())
        .await
        .expect("response body");
    let rpc = if is_sse {
        sse_messages(&body)
            .into_iter()
            .rfind(|m| m.get("result").is_some() || m.get("error").is_some())
    } else {
        serde_json::from_str(&body).ok()
    };
    Reply {
        status,
        headers,
        body,
        rpc,
    }
}

/// The JSON messages in an SSE body (one per event; multi-line data joined with newlines).
pub fn sse_messages(body: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut data = String::new();
    for line in body.lines().chain(std::iter::once("")) {
        if line.is_empty() {
            if !data.is_empty() {
                if let Ok(v) = serde_json::from_str(&data) {
                    out.push(v);
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
    out
}

/// The text of a `tools/call` result message: its content's text blocks, joined.
pub fn result_text(rpc: &Value) -> Option<String> {
    let content = rpc.get("result")?.get("content")?.as_array()?;
    let texts: Vec<&str> = content
        .iter()
        .filter_map(|c| c.get("text").and_then(Value::as_str))
        .collect();
    Some(texts.join(""))
}

// ---- rmcp client --------------------------------------------------------------------------------

/// What the test client saw from the server side during calls.
#[derive(Default)]
pub struct Seen {
    pub progress: Mutex<Vec<(ProgressNotificationParam, Instant)>>,
    pub elicitations: AtomicUsize,
    pub samplings: AtomicUsize,
    pub sampled_prompts: Mutex<Vec<String>>,
}

/// An MCP client that answers elicitation with a fixed name and sampling with a canned summary.
#[derive(Clone)]
pub struct TestClient {
    pub name: String,
    pub seen: Arc<Seen>,
    pub protocol: ProtocolVersion,
}

pub const MODEL_REPLY_PREFIX: &str = "SUMMARY:";

impl TestClient {
    pub fn new(name: &str) -> Self {
        TestClient {
            name: name.to_string(),
            seen: Arc::default(),
            // The last version with `initialize` and server→client requests: what the gateway's
            // session layer, id remapping and stream routing exist for.
            protocol: ProtocolVersion::V_2025_11_25,
        }
    }

    /// The same client offering another protocol version in `initialize`.
    pub fn with_protocol(mut self, v: ProtocolVersion) -> Self {
        self.protocol = v;
        self
    }

    pub fn progress_count(&self) -> usize {
        self.seen.progress.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl ClientHandler for TestClient {
    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        self.seen.elicitations.fetch_add(1, Ordering::SeqCst);
        match request {
            ElicitRequestParams::FormElicitationParams { .. } => {
                Ok(ElicitResult::new(ElicitationAction::Accept).with_content(json!({ "name": self.name })))
            }
            _ => Ok(ElicitResult::new(ElicitationAction::Decline)),
        }
    }

    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, ErrorData> {
        self.seen.samplings.fetch_add(1, Ordering::SeqCst);
        let prompt = serde_json::to_string(&params.messages).unwrap_or_default();
        self.seen
            .sampled_prompts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(prompt);
        Ok(CreateMessageResult::new(
            SamplingMessage::assistant_text(format!("{MODEL_REPLY_PREFIX}{}", self.name)),
            "e2e-test-model".to_string(),
        )
        .with_stop_reason(CreateMessageResult::STOP_REASON_END_TURN))
    }

    async fn on_progress(&self, params: ProgressNotificationParam, _context: NotificationContext<RoleClient>) {
        self.seen
            .progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((params, Instant::now()));
    }

    fn get_info(&self) -> ClientConfig {
        let mut caps = ClientCapabilities::default();
        caps.elicitation = Some(ElicitationCapability::default());
        caps.sampling = Some(SamplingCapability::default());
        let mut info = ClientConfig::default();
        info.capabilities = caps;
        info.protocol_version = self.protocol.clone();
        info
    }
}

/// A reqwest-backed HTTP client for rmcp's transport that records the session id it used and
/// the outcome of its DELETE, so tests can check the session afterwards with raw HTTP.
#[derive(Clone)]
pub struct SpyHttp {
    inner: reqwest::Client,
    pub session: Arc<Mutex<Option<String>>>,
    pub deleted: Arc<Mutex<Option<Result<(), String>>>>,
}

impl SpyHttp {
    pub fn new() -> Self {
        SpyHttp {
            inner: reqwest::Client::builder().no_proxy().build().expect("reqwest client"),
            session: Arc::default(),
            deleted: Arc::default(),
        }
    }

    pub fn session_id(&self) -> Option<String> {
        self.session.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn delete_outcome(&self) -> Option<Result<(), String>> {
        self.deleted.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn note_session(&self, s: Option<&str>) {
        if let Some(s) = s {
            *self.session.lock().unwrap_or_else(|e| e.into_inner()) = Some(s.to_string());
        }
    }
}

impl Default for SpyHttp {
    fn default() -> Self {
        Self::new()
    }
}

type H = HashMap<reqwest::header::HeaderName, reqwest::header::HeaderValue>;

impl StreamableHttpClient for SpyHttp {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: rmcp::model::ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: H,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        self.note_session(session_id.as_deref());
        let r = self
            .inner
            .post_message(uri, message, session_id, auth_header, custom_headers)
            .await?;
        match &r {
            StreamableHttpPostResponse::Json(_, s) | StreamableHttpPostResponse::Sse(_, s) => {
                self.note_session(s.as_deref())
            }
            _ => {}
        }
        Ok(r)
    }

    async fn post_message_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        message: rmcp::model::ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: H,
        max_sse_event_size: usize,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        self.note_session(session_id.as_deref());
        let r = self
            .inner
            .post_message_with_max_sse_event_size(
                uri,
                message,
                session_id,
                auth_header,
                custom_headers,
                max_sse_event_size,
            )
            .await?;
        match &r {
            StreamableHttpPostResponse::Json(_, s) | StreamableHttpPostResponse::Sse(_, s) => {
                self.note_session(s.as_deref())
            }
            _ => {}
        }
        Ok(r)
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: H,
    ) -> Result<(), StreamableHttpError<Self::Error>> {
        let r = self
            .inner
            .delete_session(uri, session_id, auth_header, custom_headers)
            .await;
        *self.deleted.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(r.as_ref().map(|_| ()).map_err(|e| e.to_string()));
        r
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: H,
    ) -> Result<BoxedSseResponse, StreamableHttpError<Self::Error>> {
        self.inner
            .get_stream(uri, session_id, last_event_id, auth_header, custom_headers)
            .await
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: H,
        max_sse_event_size: usize,
    ) -> Result<BoxedSseResponse, StreamableHttpError<Self::Error>> {
        self.inner
            .get_stream_with_max_sse_event_size(
                uri,
                session_id,
                last_event_id,
                auth_header,
                custom_headers,
                max_sse_event_size,
            )
            .await
    }
}

pub type Client = RunningService<RoleClient, TestClient>;

/// Connects an rmcp client to `url` (initialize + initialized), bounded by [`START`]. The key
/// goes in `Authorization: Bearer` (raw requests use `X-API-Key`: both places are exercised).
pub async fn connect(url: &str, key: Option<&str>, handler: TestClient) -> (Client, SpyHttp) {
    let spy = SpyHttp::new();
    let mut config = StreamableHttpClientTransportConfig::with_uri(url.to_string())
        // A crash test must see the error, not a transparent new session.
        .reinit_on_expired_session(false);
    if let Some(k) = key {
        config = config.auth_header(k);
    }
    let transport = StreamableHttpClientTransport::with_client(spy.clone(), config);
    let client = within(START, "rmcp client initialize", handler.serve(transport))
        .await
        .unwrap_or_else(|e| panic!("rmcp client could not initialize against {url}: {e}"));
    (client, spy)
}

/// Calls tool `name` with `args` and returns the concatenated text of its result.
pub async fn call_text(client: &Client, name: &str, args: Value) -> Result<String, String> {
    let args = match args {
        Value::Object(m) => m,
        Value::Null => serde_json::Map::new(),
        other => panic!("tool arguments must be an object, got {other}"),
    };
    let params = rmcp::model::CallToolRequestParams::new(name.to_string()).with_arguments(args);
    let r = within(STEP, &format!("tools/call {name}"), client.call_tool(params))
        .await
        .map_err(|e| e.to_string())?;
    let text: String = r
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect();
    if r.is_error == Some(true) {
        return Err(format!("tool error: {text}"));
    }
    Ok(text)
}
