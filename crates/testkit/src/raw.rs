//! Raw JSON-RPC over HTTP (reqwest) against a gateway on the wire: exactly the bytes and
//! headers a test chooses, the reply's status, headers and JSON-RPC message. And the parsing of
//! SSE bodies every harness shares.

use crate::time::{STEP, within};
use serde_json::{Value, json};

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
