//! A recording upstream: a transparent HTTP proxy in front of an MCP server that keeps every
//! request it forwards, to prove whether the upstream was called at all and what reached it,
//! byte for byte.

use crate::fake::LocalServer;
use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use std::sync::{Arc, Mutex};

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
    _server: LocalServer,
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
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state = RecorderState {
            target: target.to_string(),
            client: reqwest::Client::new(),
            seen: seen.clone(),
        };
        let app = axum::Router::new().fallback(recorder_forward).with_state(state);
        let server = LocalServer::start(app).await;
        Recorder {
            url: format!("{}/mcp", server.base),
            seen,
            _server: server,
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
