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
use mcpgate_core::jsonrpc::{Kind, code};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct HttpUpstream {
    cfg: HttpUpstreamConfig,
    client: reqwest::Client,
    metrics: Arc<Metrics>,
    /// `session \0 id` of every request whose answer is still streaming.
    in_flight: Arc<Mutex<HashSet<String>>>,
}

/// Frees an in-flight id when its answer is done (or abandoned).
struct InFlight {
    set: Arc<Mutex<HashSet<String>>>,
    key: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.set.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.key);
    }
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
        Ok(HttpUpstream {
            cfg,
            client,
            metrics,
            in_flight: Arc::new(Mutex::new(HashSet::new())),
        })
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
        // Ids are not remapped on this path (the bytes pass through), so a second request with
        // an id still in flight in the same session is refused: the upstream could not tell the
        // two answers apart.
        // Requests without a session come from different clients and cannot collide.
        let in_flight = match (f.msg.kind, f.msg.id, f.session) {
            (Kind::Request, Some(id), Some(session)) => {
                let key = format!("{session}\u{0}{}", id.get());
                if !self
                    .in_flight
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key.clone())
                {
                    return Err(Refusal::Malformed {
                        code: code::INVALID_REQUEST,
                        message: "a request with this id is still in flight in this session; use a new id".into(),
                    });
                }
                Some(InFlight {
                    set: self.in_flight.clone(),
                    key,
                })
            }
            _ => None,
        };
        let mut rb = self
            .request(reqwest::Method::POST, f.client_headers)
            .header(header::CONTENT_TYPE, "application/json");
        for (k, v) in f.inject {
            rb = rb.header(k.clone(), v.clone());
        }
        self.send(rb.body(f.body.clone()), in_flight).await
    }

    pub async fn get(&self, _session: Option<&str>, headers: &HeaderMap) -> Result<Response, Refusal> {
        self.send(self.request(reqwest::Method::GET, headers), None).await
    }

    pub async fn delete(&self, _session: &str, headers: &HeaderMap) -> Result<Response, Refusal> {
        self.send(self.request(reqwest::Method::DELETE, headers), None).await
    }

    /// Sends and streams the answer back. A POST's answer (`in_flight` set) must end within the
    /// request timeout; the server stream of a GET may stay open.
    async fn send(&self, rb: reqwest::RequestBuilder, in_flight: Option<InFlight>) -> Result<Response, Refusal> {
        let deadline = tokio::time::Instant::now() + self.cfg.request_timeout;
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
        let body = resp.bytes_stream();
        let mut out = match in_flight {
            None => Response::new(Body::from_stream(body)),
            Some(guard) => {
                let bounded =
                    futures_util::stream::unfold((Box::pin(body), guard), move |(mut body, guard)| async move {
                        match tokio::time::timeout_at(deadline, futures_util::StreamExt::next(&mut body)).await {
                            Ok(Some(chunk)) => Some((chunk, (body, guard))),
                            // Ended, or out of time: the stream closes and the id is free again.
                            Ok(None) | Err(_) => None,
                        }
                    });
                Response::new(Body::from_stream(bounded))
            }
        };
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
