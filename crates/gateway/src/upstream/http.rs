//! HTTP upstream: a passthrough. The body goes up as received (the pipeline has already read what
//! it needs); the answer — JSON or an SSE stream — comes back chunk by chunk as it arrives, never
//! buffered whole. Connections are pooled by the HTTP client.

use super::{Forward, LAST_EVENT_HEADER, PROTOCOL_HEADER, SESSION_HEADER};
use crate::config::HttpUpstreamConfig;
use crate::metrics::Metrics;
use crate::refusal::Refusal;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use std::sync::Arc;
use std::time::Duration;

pub struct HttpUpstream {
    cfg: HttpUpstreamConfig,
    client: reqwest::Client,
    metrics: Arc<Metrics>,
}

/// Response headers worth returning to the client; the rest (upstream auth challenges, cookies,
/// server banners) stay behind the gateway.
const PASS_BACK: &[&str] = &["content-type", SESSION_HEADER, PROTOCOL_HEADER, "cache-control"];

impl HttpUpstream {
    pub fn new(cfg: HttpUpstreamConfig, metrics: Arc<Metrics>) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .connect_timeout(cfg.connect_timeout)
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(90))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(HttpUpstream { cfg, client, metrics })
    }

    fn request(&self, method: reqwest::Method, client_headers: &HeaderMap) -> reqwest::RequestBuilder {
        let mut rb = self
            .client
            .request(method, self.cfg.url.clone())
            .header(header::ACCEPT, "application/json, text/event-stream");
        for name in [SESSION_HEADER, PROTOCOL_HEADER, LAST_EVENT_HEADER] {
            if let Some(v) = client_headers.get(name) {
                rb = rb.header(name, v.clone());
            }
        }
        rb
    }

    pub async fn post(&self, f: Forward<'_>) -> Result<Response, Refusal> {
        let mut rb = self
            .request(reqwest::Method::POST, f.client_headers)
            .header(header::CONTENT_TYPE, "application/json");
        for (k, v) in f.inject {
            rb = rb.header(k.clone(), v.clone());
        }
        self.send(rb.body(f.body.clone())).await
    }

    pub async fn get(&self, _session: Option<&str>, headers: &HeaderMap) -> Result<Response, Refusal> {
        self.send(self.request(reqwest::Method::GET, headers)).await
    }

    pub async fn delete(&self, _session: &str, headers: &HeaderMap) -> Result<Response, Refusal> {
        self.send(self.request(reqwest::Method::DELETE, headers)).await
    }

    async fn send(&self, rb: reqwest::RequestBuilder) -> Result<Response, Refusal> {
        let resp = match tokio::time::timeout(self.cfg.request_timeout, rb.send()).await {
            Err(_) => {
                self.metrics.upstream_errors.inc();
                return Err(Refusal::UpstreamTimeout);
            }
            Ok(Err(e)) => {
                self.metrics.upstream_errors.inc();
                return Err(Refusal::UpstreamUnavailable {
                    detail: without_url(&e),
                });
            }
            Ok(Ok(r)) => r,
        };
        let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        let mut headers = HeaderMap::new();
        for name in PASS_BACK {
            if let Some(v) = resp.headers().get(*name)
                && let Ok(v) = HeaderValue::from_bytes(v.as_bytes())
            {
                headers.insert(*name, v);
            }
        }
        let mut out = Response::new(Body::from_stream(resp.bytes_stream()));
        *out.status_mut() = status;
        *out.headers_mut() = headers;
        Ok(out)
    }

    pub async fn ready(&self) -> bool {
        let url = &self.cfg.url;
        let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
            return false;
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        matches!(
            tokio::time::timeout(self.cfg.connect_timeout, tokio::net::TcpStream::connect((host, port))).await,
            Ok(Ok(_))
        )
    }

    pub fn status(&self) -> serde_json::Value {
        serde_json::json!({ "kind": "http", "url": redacted_url(&self.cfg.url) })
    }
}

/// The upstream URL with any userinfo and query removed: it may carry a credential.
fn redacted_url(url: &reqwest::Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.to_string()
}

/// A reqwest error's text without the URL it embeds (which could carry a credential).
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_connect() {
        "connection failed"
    } else if e.is_timeout() {
        "timed out"
    } else if e.is_request() {
        "request failed"
    } else {
        "error"
    };
    kind.to_string()
}
