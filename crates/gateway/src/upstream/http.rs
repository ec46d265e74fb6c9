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
use bytes::Bytes;
use mcpgate_core::jsonrpc::{self, Kind};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct HttpUpstream {
    cfg: HttpUpstreamConfig,
    client: reqwest::Client,
    metrics: Arc<Metrics>,
    /// `session \0 id` of every request whose answer is still streaming.
    in_flight: Arc<Mutex<HashSet<String>>>,
    remapped: std::sync::atomic::AtomicU64,
}

/// Frees an in-flight id when its answer is done (or abandoned).
struct InFlight {
    set: Arc<Mutex<HashSet<String>>>,
    key: String,
    /// Set when the request went up under a gateway id.
    restore: Option<IdRestorer>,
}

/// Puts the client's id back into the answer to a request sent under a gateway id: line by line,
/// so SSE streams keep streaming (a JSON answer is one line).
struct IdRestorer {
    buf: Vec<u8>,
    gateway_id: String,
    client_id: Box<serde_json::value::RawValue>,
}

impl IdRestorer {
    /// Complete lines of `chunk` (after what is buffered), rewritten; the rest waits.
    fn push(&mut self, chunk: &[u8]) -> Bytes {
        self.buf.extend_from_slice(chunk);
        let Some(end) = self.buf.iter().rposition(|b| *b == b'\n') else {
            return Bytes::new();
        };
        let rest = self.buf.split_off(end + 1);
        let lines = std::mem::replace(&mut self.buf, rest);
        let mut out = Vec::with_capacity(lines.len() + 16);
        for line in lines.split_inclusive(|b| *b == b'\n') {
            self.rewrite(line, &mut out);
        }
        Bytes::from(out)
    }

    fn finish(&mut self) -> Bytes {
        let rest = std::mem::take(&mut self.buf);
        let mut out = Vec::with_capacity(rest.len());
        self.rewrite(&rest, &mut out);
        Bytes::from(out)
    }

    fn rewrite(&self, line: &[u8], out: &mut Vec<u8>) {
        let body_end = line.len() - line.iter().rev().take_while(|b| matches!(b, b'\n' | b'\r')).count();
        let (content, ending) = line.split_at(body_end);
        let (prefix, json) = match content.strip_prefix(b"data:") {
            Some(j) => content.split_at(content.len() - j.len()),
            None => (&content[..0], content),
        };
        match jsonrpc::Message::parse(json) {
            Ok(m) if m.kind == Kind::Response && m.id.map(|i| i.get()) == Some(self.gateway_id.as_str()) => {
                out.extend_from_slice(prefix);
                if prefix.ends_with(b":") {
                    out.push(b' ');
                }
                out.extend_from_slice(&jsonrpc::response_with_id(&m, &self.client_id));
                out.extend_from_slice(ending);
            }
            _ => out.extend_from_slice(line),
        }
    }
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
            remapped: std::sync::atomic::AtomicU64::new(0),
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
        // The bytes pass through with the client's ids. A request whose id is still in flight in
        // its session (a client reusing ids) is sent under a gateway id instead, and its answer
        // gets the client's id back, so the upstream can never confuse the two answers.
        // Requests without a session come from different clients and cannot collide.
        let mut body = f.body.clone();
        let in_flight = match (f.msg.kind, f.msg.id, f.session) {
            (Kind::Request, Some(id), Some(session)) => {
                let mut set = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
                let key = format!("{session}\u{0}{}", id.get());
                if set.insert(key.clone()) {
                    Some(InFlight {
                        set: self.in_flight.clone(),
                        key,
                        restore: None,
                    })
                } else {
                    let n = self.remapped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let gateway_id = format!("\"mcpgate-{n}\"");
                    let raw = serde_json::value::RawValue::from_string(gateway_id.clone())
                        .map_err(|_| Refusal::UpstreamGarbled)?;
                    body = Bytes::from(jsonrpc::with_id(f.msg, &raw));
                    let key = format!("{session}\u{0}{gateway_id}");
                    set.insert(key.clone());
                    Some(InFlight {
                        set: self.in_flight.clone(),
                        key,
                        restore: Some(IdRestorer {
                            buf: Vec::new(),
                            gateway_id,
                            client_id: id.to_owned(),
                        }),
                    })
                }
            }
            _ => None,
        };
        let mut rb = self
            .request(reqwest::Method::POST, f.client_headers)
            .header(header::CONTENT_TYPE, "application/json");
        for (k, v) in f.inject {
            rb = rb.header(k.clone(), v.clone());
        }
        self.send(rb.body(body), in_flight).await
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
                let bounded = futures_util::stream::unfold(Some((Box::pin(body), guard)), move |state| async move {
                    let (mut body, mut guard) = state?;
                    match tokio::time::timeout_at(deadline, futures_util::StreamExt::next(&mut body)).await {
                        Ok(Some(Ok(chunk))) => {
                            let chunk = match guard.restore.as_mut() {
                                Some(r) => r.push(&chunk),
                                None => chunk,
                            };
                            Some((Ok(chunk), Some((body, guard))))
                        }
                        Ok(Some(Err(e))) => Some((Err(e), None)),
                        // Ended, or out of time: the stream closes and the id is free again.
                        Ok(None) | Err(_) => {
                            let rest = guard.restore.as_mut().map(IdRestorer::finish).filter(|b| !b.is_empty());
                            rest.map(|b| (Ok(b), None))
                        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn restorer() -> IdRestorer {
        IdRestorer {
            buf: Vec::new(),
            gateway_id: "\"mcpgate-7\"".into(),
            client_id: serde_json::value::RawValue::from_string("1".into()).unwrap(),
        }
    }

    #[test]
    fn restores_the_client_id_in_sse_and_json_answers() {
        let mut r = restorer();
        let sse = b"id: 0\nretry: 3000\n\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{}}\n\ndata: {\"jsonrpc\":\"2.0\",\"id\":\"mcpgate-7\",\"result\":{\"x\":1}}\n\n";
        let (a, b) = sse.split_at(40);
        let mut out = r.push(a).to_vec();
        out.extend_from_slice(&r.push(b));
        out.extend_from_slice(&r.finish());
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"x\":1}}\n\n"),
            "{text}"
        );
        assert!(text.contains("notifications/progress") && text.starts_with("id: 0\nretry: 3000\n\n"));
        let mut r = restorer();
        let mut out = r
            .push(br#"{"jsonrpc":"2.0","id":"mcpgate-7","error":{"code":1,"message":"m"}}"#)
            .to_vec();
        out.extend_from_slice(&r.finish());
        assert_eq!(out, br#"{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":"m"}}"#);
        let mut r = restorer();
        let other = br#"{"jsonrpc":"2.0","id":"other","result":{}}"#;
        let mut out = r.push(other).to_vec();
        out.extend_from_slice(&r.finish());
        assert_eq!(out, other);
    }
}
