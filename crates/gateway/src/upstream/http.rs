//! HTTP upstream: a passthrough. The body goes up as received (the pipeline has already read what
//! it needs); the answer — JSON or an SSE stream — comes back chunk by chunk as it arrives, never
//! buffered whole. Connections are kept alive and pooled by hyper's client (HTTP/1.1, TLS by
//! rustls with the platform's trust roots).

use super::{Forward, LAST_EVENT_HEADER, PASS_BACK, PROTOCOL_HEADER, SESSION_HEADER};
use crate::config::HttpUpstreamConfig;
use crate::metrics::Metrics;
use crate::refusal::Refusal;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use base64::Engine;
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use mcpgate_core::jsonrpc::{self, Kind};
use rustls_platform_verifier::BuilderVerifierExt;
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

pub struct HttpUpstream {
    cfg: HttpUpstreamConfig,
    client: Client<Connector, Full<Bytes>>,
    /// The upstream URL without userinfo, parsed once.
    uri: http::Uri,
    /// `Authorization: Basic` from the URL's userinfo, if it has one.
    basic_auth: Option<HeaderValue>,
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
pub struct IdRestorer {
    buf: Vec<u8>,
    gateway_id: String,
    client_id: Box<serde_json::value::RawValue>,
}

impl IdRestorer {
    /// Restores `client_id` in answers whose id is `gateway_id` (JSON text, e.g. `"mcpgate-7"`).
    pub fn new(gateway_id: String, client_id: Box<serde_json::value::RawValue>) -> Self {
        IdRestorer {
            buf: Vec::new(),
            gateway_id,
            client_id,
        }
    }

    /// Complete lines of `chunk` (after what is buffered), rewritten; the rest waits.
    pub fn push(&mut self, chunk: &[u8]) -> Bytes {
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

    pub fn finish(&mut self) -> Bytes {
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
            Ok(m) if m.kind == Kind::Response && m.id.is_some_and(|i| same_id(i.get(), &self.gateway_id)) => {
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

/// Whether an id the upstream wrote is the gateway's: the same text, or the same string written
/// with other escapes (`"mcpgate\u002d7"`).
fn same_id(written: &str, gateway_id: &str) -> bool {
    written == gateway_id
        || (written.starts_with('"')
            && serde_json::from_str::<String>(written).ok() == serde_json::from_str::<String>(gateway_id).ok())
}

/// The body of a POST's answer: the upstream's bytes as they arrive, ended at the request's
/// deadline, with the client's id put back if the request went up under a gateway id. Its
/// `InFlight` frees the id when the answer ends or the client goes away.
struct Answer {
    body: Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
    guard: InFlight,
    done: bool,
}

impl Answer {
    /// The end of the answer: what the id restorer still holds, then nothing.
    fn finish(&mut self) -> Option<Result<Frame<Bytes>, hyper::Error>> {
        self.done = true;
        let rest = self.guard.restore.as_mut().map(IdRestorer::finish)?;
        (!rest.is_empty()).then(|| Ok(Frame::data(rest)))
    }
}

impl http_body::Body for Answer {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        while !this.done {
            let frame = match Pin::new(&mut this.body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => frame,
                Poll::Ready(Some(Err(e))) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(None) => return Poll::Ready(this.finish()),
                // Out of time: the answer ends here, and its id is free again.
                Poll::Pending if this.deadline.as_mut().poll(cx).is_ready() => return Poll::Ready(this.finish()),
                Poll::Pending => return Poll::Pending,
            };
            // Trailers are not passed on; data is, rewritten if the id must be restored.
            let Ok(chunk) = frame.into_data() else { continue };
            let chunk = match this.guard.restore.as_mut() {
                Some(r) => r.push(&chunk),
                None => chunk,
            };
            if !chunk.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(chunk))));
            }
        }
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    /// The upstream's length when the bytes pass unchanged, so the client gets a
    /// `content-length` rather than a chunked answer.
    fn size_hint(&self) -> SizeHint {
        match self.guard.restore {
            None => self.body.size_hint(),
            Some(_) => SizeHint::default(),
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.set.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.key);
    }
}

impl HttpUpstream {
    pub fn new(cfg: HttpUpstreamConfig, metrics: Arc<Metrics>) -> Result<Self, String> {
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(cfg.connect_timeout));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|b| b.with_platform_verifier())
            .map_err(|e| format!("cannot set up TLS for the upstream: {e}"))?
            .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_timer(TokioTimer::new())
            .build(connector);
        let (uri, basic_auth) = split_userinfo(&cfg.url)?;
        Ok(HttpUpstream {
            cfg,
            client,
            uri,
            basic_auth,
            metrics,
            in_flight: Arc::new(Mutex::new(HashSet::new())),
            remapped: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// A request to the upstream URL carrying only the MCP headers of the client's request
    /// (session, protocol version, Last-Event-ID) and `extra`: never the client's credential.
    fn request(
        &self,
        method: http::Method,
        client_headers: &HeaderMap,
        extra: &[(header::HeaderName, HeaderValue)],
        body: Bytes,
    ) -> http::Request<Full<Bytes>> {
        let mut req = http::Request::new(Full::new(body));
        *req.method_mut() = method;
        *req.uri_mut() = self.uri.clone();
        let headers = req.headers_mut();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        if let Some(auth) = &self.basic_auth {
            headers.insert(header::AUTHORIZATION, auth.clone());
        }
        for name in [SESSION_HEADER, PROTOCOL_HEADER, LAST_EVENT_HEADER] {
            if let Some(v) = client_headers.get(name) {
                headers.insert(name, v.clone());
            }
        }
        for (k, v) in extra {
            headers.insert(k.clone(), v.clone());
        }
        req
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
        let mut req = self.request(http::Method::POST, &f.client.headers, f.inject, body);
        req.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        self.send(req, in_flight).await
    }

    pub async fn get(
        &self,
        headers: &HeaderMap,
        extra: &[(header::HeaderName, HeaderValue)],
    ) -> Result<Response, Refusal> {
        self.send(self.request(http::Method::GET, headers, extra, Bytes::new()), None)
            .await
    }

    pub async fn delete(
        &self,
        headers: &HeaderMap,
        extra: &[(header::HeaderName, HeaderValue)],
    ) -> Result<Response, Refusal> {
        self.send(self.request(http::Method::DELETE, headers, extra, Bytes::new()), None)
            .await
    }

    /// Sends and streams the answer back. A POST's answer (`in_flight` set) must end within the
    /// request timeout; the server stream of a GET may stay open.
    async fn send(&self, req: http::Request<Full<Bytes>>, in_flight: Option<InFlight>) -> Result<Response, Refusal> {
        // One timer for the whole exchange: the answer's head, then (for a POST) its body.
        let mut deadline = Box::pin(tokio::time::sleep(self.cfg.request_timeout));
        let resp = tokio::select! {
            r = self.client.request(req) => r,
            _ = deadline.as_mut() => {
                self.metrics.upstream_errors.inc();
                return Err(Refusal::UpstreamTimeout);
            }
        };
        let resp = resp.map_err(|e| {
            self.metrics.upstream_errors.inc();
            Refusal::UpstreamUnavailable {
                detail: without_url(&e),
            }
        })?;
        let status = resp.status();
        let mut headers = HeaderMap::new();
        for name in PASS_BACK {
            if let Some(v) = resp.headers().get(*name) {
                headers.insert(*name, v.clone());
            }
        }
        let body = resp.into_body();
        let mut out = match in_flight {
            None => Response::new(Body::new(body)),
            Some(guard) => Response::new(Body::new(Answer {
                body,
                deadline,
                guard,
                done: false,
            })),
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

/// The URL as hyper's client takes it (no userinfo), and the userinfo as a Basic credential.
fn split_userinfo(url: &reqwest::Url) -> Result<(http::Uri, Option<HeaderValue>), String> {
    let mut bare = url.clone();
    let _ = bare.set_username("");
    let _ = bare.set_password(None);
    let uri = bare
        .as_str()
        .parse::<http::Uri>()
        .map_err(|e| format!("upstream.url: not usable as an HTTP URI ({e})"))?;
    if url.username().is_empty() && url.password().is_none() {
        return Ok((uri, None));
    }
    let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
    let pair = format!("{}:{}", decode(url.username()), decode(url.password().unwrap_or("")));
    let b64 = base64::engine::general_purpose::STANDARD.encode(pair);
    let mut value = HeaderValue::from_str(&format!("Basic {b64}"))
        .map_err(|_| "upstream.url: the userinfo cannot be sent as a header".to_string())?;
    value.set_sensitive(true);
    Ok((uri, Some(value)))
}

/// The upstream URL with any userinfo and query removed: it may carry a credential.
fn redacted_url(url: &reqwest::Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.to_string()
}

/// What went wrong, without the URL (which could carry a credential) or the peer's text.
fn without_url(e: &hyper_util::client::legacy::Error) -> String {
    if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    }
    .to_string()
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
    fn userinfo_leaves_the_uri_and_becomes_a_basic_credential() {
        let url = reqwest::Url::parse("https://svc%40acme:p%3Ass@up.example:8443/mcp?x=1").unwrap();
        let (uri, auth) = split_userinfo(&url).unwrap();
        assert_eq!(uri.to_string(), "https://up.example:8443/mcp?x=1");
        let auth = auth.unwrap();
        assert!(auth.is_sensitive());
        let b64 = base64::engine::general_purpose::STANDARD.encode("svc@acme:p:ss");
        assert_eq!(auth.to_str().unwrap(), format!("Basic {b64}"));
        let (uri, auth) = split_userinfo(&reqwest::Url::parse("http://127.0.0.1:9/mcp").unwrap()).unwrap();
        assert_eq!((uri.to_string().as_str(), auth), ("http://127.0.0.1:9/mcp", None));
        assert_eq!(redacted_url(&url), "https://up.example:8443/mcp");
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
        // The gateway's id written with an escape is still the gateway's.
        let mut r = restorer();
        let mut out = r
            .push(br#"{"jsonrpc":"2.0","id":"mcpgate\u002d7","result":{}}"#)
            .to_vec();
        out.extend_from_slice(&r.finish());
        assert_eq!(out, br#"{"jsonrpc":"2.0","id":1,"result":{}}"#);
        let mut r = restorer();
        let other = br#"{"jsonrpc":"2.0","id":"other","result":{}}"#;
        let mut out = r.push(other).to_vec();
        out.extend_from_slice(&r.finish());
        assert_eq!(out, other);
    }
}
