//! The gateway under test ([`Gw`]): requests through its router with the MCP headers filled in,
//! every response kept for leak searches, and the same gateway on a loopback listener when a
//! test needs the wire ([`Listening`]).

use super::{PROTOCOL, REQUEST_LIMIT, Resp};
use axum::body::Body;
use http::Request;
use http_body_util::BodyExt;
use mcpgate_core::audit::{AuditQuery, AuditRecord};
use mcpgate_gateway::Gateway;
use mcpgate_gateway::clock::ManualClock;
use mcpgate_store::AuditStore;
use mcpgate_store::sqlite::SqliteStore;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower::ServiceExt;

pub struct Gw {
    pub gw: Arc<Gateway>,
    /// A second handle on the gateway's SQLite file, as the CLI would hold (none for a gateway on
    /// another store: [`Gw::on`]).
    store: Option<SqliteStore>,
    /// Set by `Setup::manual_clock`.
    pub clock: Option<Arc<ManualClock>>,
    pub upstream_url: String,
    next_id: AtomicU64,
    /// Every response seen (status, headers, body), for leak checks.
    seen: Mutex<Vec<String>>,
    _dir: tempfile::TempDir,
}

pub type Headers<'a> = &'a [(&'a str, &'a str)];

impl Gw {
    pub(super) fn new(
        gw: Arc<Gateway>,
        store: SqliteStore,
        clock: Option<Arc<ManualClock>>,
        upstream_url: String,
        dir: tempfile::TempDir,
    ) -> Gw {
        Gw {
            gw,
            store: Some(store),
            clock,
            upstream_url,
            next_id: AtomicU64::new(1),
            seen: Mutex::new(Vec::new()),
            _dir: dir,
        }
    }

    /// Moves the gateway's manual clock (see `Setup::manual_clock`).
    pub fn advance(&self, by: Duration) {
        self.clock
            .as_ref()
            .expect("advance needs Setup::manual_clock()")
            .advance(by);
    }

    pub fn store(&self) -> &SqliteStore {
        self.store
            .as_ref()
            .expect("this gateway has no SQLite store (Gw::on): use its own store")
    }

    /// A gateway built elsewhere (another store, e.g. PostgreSQL), driven like the others.
    pub fn on(gw: Arc<Gateway>, upstream_url: String) -> Gw {
        Gw {
            gw,
            store: None,
            clock: None,
            upstream_url,
            next_id: AtomicU64::new(1),
            seen: Mutex::new(Vec::new()),
            _dir: tempfile::tempdir().expect("tempdir"),
        }
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
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(format!("{} {:?}\n{}", parts.status, parts.headers, text));
        Resp::new(parts.status, parts.headers, text)
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
        self.post_raw(uri, headers, body.to_string().into_bytes()).await
    }

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

    /// A JSON-RPC notification (no id) to `uri` in `session`.
    pub async fn notify_at(&self, uri: &str, headers: Headers<'_>, session: &str, method: &str) -> Resp {
        let body = json!({ "jsonrpc": "2.0", "method": method });
        let h: Vec<(&str, &str)> = headers
            .iter()
            .copied()
            .chain([("mcp-session-id", session), ("mcp-protocol-version", PROTOCOL)])
            .collect();
        self.post(uri, &h, &body).await
    }

    pub async fn notify(&self, headers: Headers<'_>, session: &str, method: &str) -> Resp {
        self.notify_at("/mcp", headers, session, method).await
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
            .notify_at(uri, headers, &session, "notifications/initialized")
            .await;
        assert!(
            n.status.is_success(),
            "notifications/initialized: {} {}",
            n.status,
            n.text
        );
        session
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

    /// Every response this harness received (status, headers and body), one after another: a
    /// place to search for secrets.
    pub fn responses(&self) -> String {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).join("\n")
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

    /// Serves this same gateway (same sessions, keys and audit) on a listener on 127.0.0.1:0,
    /// with the gateway's own `serve`: what a client on the wire meets.
    pub async fn listen(&self) -> Listening {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(mcpgate_gateway::serve(self.gw.clone(), listener, async move {
            let _ = stopped.await;
        }));
        Listening {
            addr,
            stop: Some(stop),
            task,
        }
    }
}

/// Audit records as JSON, one a line: a place to search for secrets.
pub fn audit_text(records: &[AuditRecord]) -> String {
    records
        .iter()
        .map(|r| serde_json::to_string(r).expect("an audit record serializes"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A gateway served on a loopback listener by [`Gw::listen`]; aborted when dropped.
pub struct Listening {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Listening {
    /// Signals shutdown; returns how long `serve` took to return.
    pub async fn shut_down(mut self) -> Duration {
        let t = Instant::now();
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        tokio::time::timeout(Duration::from_secs(30), &mut self.task)
            .await
            .expect("serve returned")
            .expect("serve task")
            .expect("serve result");
        t.elapsed()
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.task.abort();
    }
}
