//! Small HTTP/1.1 pieces: a target URL parsed once, one-shot requests, and `wait-status` (poll
//! until a request gets the wanted status: a gateway that answers, a revoked key refused).

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, HOST};
use http::{HeaderName, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::time::{Duration, Instant};

pub const SESSION: HeaderName = HeaderName::from_static("mcp-session-id");
pub const PROTOCOL: HeaderName = HeaderName::from_static("mcp-protocol-version");
pub const PROTOCOL_VERSION: &str = "2025-06-18";

pub const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"mcpgate-scale","version":"0.1.0"}}}"#;
pub const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

/// `http://host:port/path`, split for raw connections.
#[derive(Clone)]
pub struct Target {
    pub connect: String,
    pub authority: String,
    pub path: String,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl Target {
    pub fn parse(url: &str, headers: &[String]) -> Result<Self> {
        let uri: http::Uri = url.parse().with_context(|| format!("bad URL {url:?}"))?;
        if uri.scheme_str() != Some("http") {
            bail!("only http:// URLs (loopback): {url}");
        }
        let auth = uri.authority().context("URL has no host")?;
        let headers = super::args::header_pairs(headers)?;
        Ok(Self {
            connect: format!("{}:{}", auth.host(), auth.port_u16().unwrap_or(80)),
            authority: auth.as_str().to_owned(),
            path: uri.path_and_query().map_or("/", |p| p.as_str()).to_owned(),
            headers,
        })
    }

    /// A request to this target: Host, Accept, the configured headers, the session if any.
    pub fn request(
        &self,
        method: Method,
        accept: &'static str,
        session: Option<&HeaderValue>,
        body: Bytes,
    ) -> Result<Request<Full<Bytes>>> {
        let mut b = Request::builder()
            .method(method)
            .uri(self.path.as_str())
            .header(HOST, self.authority.as_str())
            .header(ACCEPT, accept)
            .header(PROTOCOL, PROTOCOL_VERSION);
        if !body.is_empty() {
            b = b.header(CONTENT_TYPE, "application/json");
        }
        if let Some(s) = session {
            b = b.header(SESSION, s.clone());
        }
        for (k, v) in &self.headers {
            b = b.header(k, v.clone());
        }
        Ok(b.body(Full::new(body))?)
    }
}

/// A new keep-alive HTTP/1.1 connection to `t`.
pub async fn connect(t: &Target) -> Result<SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(&t.connect)
        .await
        .with_context(|| format!("connect {}", t.connect))?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Sends `req` and reads the whole answer.
pub async fn exchange(
    sender: &mut SendRequest<Full<Bytes>>,
    req: Request<Full<Bytes>>,
) -> Result<(StatusCode, http::HeaderMap, Bytes)> {
    sender.ready().await?;
    let resp = sender.send_request(req).await?;
    let (parts, body) = resp.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok((parts.status, parts.headers, body))
}

pub struct WaitOpts {
    pub target: Target,
    pub method: Method,
    pub body: Bytes,
    pub want: StatusCode,
    pub timeout: Duration,
    pub interval: Duration,
    /// Epoch ns at which the span started (`date +%s%N` in the script); `None`: when this started.
    pub since_ns: Option<u128>,
}

#[derive(serde::Serialize)]
pub struct Waited {
    pub status: u16,
    /// From `since_ns` (or this command's start) to the first answer with the wanted status.
    pub elapsed_ms: f64,
    pub attempts: u64,
    /// Attempts that could not connect (the gateway not yet listening).
    pub refused_connects: u64,
    pub body: serde_json::Value,
}

/// Repeats the request (a new connection each time, so nothing is cached on our side) until it
/// gets `want`; the first attempt that connects may wait in the listen queue until the server
/// answers, which is what a client of a starting gateway experiences.
pub async fn wait_status(o: WaitOpts) -> Result<Waited> {
    let started = Instant::now();
    let since = o.since_ns.unwrap_or_else(super::epoch_ns);
    let mut attempts = 0u64;
    let mut refused = 0u64;
    let mut last = String::from("no attempt");
    while started.elapsed() < o.timeout {
        attempts += 1;
        let left = o.timeout.saturating_sub(started.elapsed());
        let attempt = async {
            let mut s = connect(&o.target).await?;
            let accept = "application/json, text/event-stream";
            let req = o.target.request(o.method.clone(), accept, None, o.body.clone())?;
            exchange(&mut s, req).await
        };
        match tokio::time::timeout(left, attempt).await {
            Ok(Ok((status, _, body))) => {
                if status == o.want {
                    let elapsed_ms = (super::epoch_ns().saturating_sub(since)) as f64 / 1e6;
                    let body = serde_json::from_slice(&body).unwrap_or_else(|_| {
                        serde_json::Value::String(String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned())
                    });
                    return Ok(Waited {
                        status: status.as_u16(),
                        elapsed_ms: super::round1(elapsed_ms),
                        attempts,
                        refused_connects: refused,
                        body,
                    });
                }
                last = format!("HTTP {status}");
            }
            Ok(Err(e)) => {
                if format!("{e:#}").contains("connect") {
                    refused += 1;
                }
                last = format!("{e:#}");
            }
            Err(_) => break,
        }
        tokio::time::sleep(o.interval).await;
    }
    bail!(
        "no HTTP {} within {:?} ({attempts} attempts; last: {last})",
        o.want.as_u16(),
        o.timeout
    )
}
