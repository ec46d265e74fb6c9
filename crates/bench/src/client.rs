//! The MCP Streamable HTTP client side shared by `load` and `probe`: one keep-alive HTTP/1.1
//! connection (hyper's low-level `conn` API, no pool) carrying one MCP session.

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, HOST};
use http::{HeaderName, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub const SESSION_HEADER: HeaderName = HeaderName::from_static("mcp-session-id");
pub const PROTOCOL_HEADER: HeaderName = HeaderName::from_static("mcp-protocol-version");
pub const PROTOCOL_VERSION: &str = "2025-06-18";

pub const HMAC_TIMESTAMP: HeaderName = HeaderName::from_static("x-timestamp");
pub const HMAC_SIGNATURE: HeaderName = HeaderName::from_static("x-signature");
pub const HMAC_CLIENT: HeaderName = HeaderName::from_static("x-api-key");

/// Signs requests as the gateway's `[auth.hmac]` clients do (seed 002): `X-API-Key: ID`,
/// `X-Timestamp: <unix s>`, `X-Signature: hex(HMAC-SHA256(secret, "{ts}.{body}"))` over the exact
/// body bytes sent (the empty body for DELETE).
pub struct Signer {
    client: HeaderValue,
    key: aws_lc_rs::hmac::Key,
}

impl Signer {
    pub fn new(client: &str, secret: &[u8]) -> Result<Self> {
        Ok(Self {
            client: HeaderValue::from_str(client).context("bad HMAC client id")?,
            key: aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret),
        })
    }

    /// `--hmac-client ID --hmac-secret-env VAR`: both or neither.
    pub fn from_flags(client: Option<String>, secret_env: Option<String>) -> Result<Option<Self>> {
        match (client, secret_env) {
            (None, None) => Ok(None),
            (Some(c), Some(var)) => {
                let secret = std::env::var(&var)
                    .ok()
                    .filter(|s| !s.is_empty())
                    .with_context(|| format!("--hmac-secret-env: environment variable {var} is not set"))?;
                Ok(Some(Self::new(&c, secret.as_bytes())?))
            }
            _ => bail!("--hmac-client and --hmac-secret-env go together"),
        }
    }

    /// The three headers for `body` at `timestamp` (Unix seconds).
    pub fn headers(&self, timestamp: u64, body: &[u8]) -> [(HeaderName, HeaderValue); 3] {
        let ts = timestamp.to_string();
        let mut ctx = aws_lc_rs::hmac::Context::with_key(&self.key);
        ctx.update(ts.as_bytes());
        ctx.update(b".");
        ctx.update(body);
        let sig = hex::encode(ctx.sign().as_ref());
        [
            (HMAC_CLIENT, self.client.clone()),
            (HMAC_TIMESTAMP, HeaderValue::from(timestamp)),
            // Hex digits only: always a valid header value.
            (
                HMAC_SIGNATURE,
                HeaderValue::from_str(&sig).unwrap_or(HeaderValue::from_static("")),
            ),
        ]
    }
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A string no other message carries, in this process or another (pid, start time, counter):
/// makes the bodies of setup messages (`initialize`, `notifications/initialized`) unique, since
/// the gateway accepts a signed body only once.
pub fn nonce() -> String {
    static START: std::sync::OnceLock<u128> = std::sync::OnceLock::new();
    static N: AtomicU64 = AtomicU64::new(0);
    let start = START.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    });
    format!("{}-{start:x}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// Where to send, parsed once and shared by every connection.
pub struct Target {
    connect: String,
    host: HeaderValue,
    path: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    signer: Option<Signer>,
}

impl Target {
    pub fn parse(url: &str, headers: &[String], signer: Option<Signer>) -> Result<Arc<Self>> {
        let uri: http::Uri = url.parse().with_context(|| format!("bad URL {url:?}"))?;
        if uri.scheme_str() != Some("http") {
            bail!("only http:// URLs are supported (the rig talks to loopback): {url}");
        }
        let auth = uri.authority().context("URL has no host")?;
        let port = auth.port_u16().unwrap_or(80);
        let connect = format!("{}:{port}", auth.host());
        let host = HeaderValue::from_str(auth.as_str())?;
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        let headers = crate::args::header_pairs(headers)?;
        Ok(Arc::new(Self {
            connect,
            host,
            path,
            headers,
            signer,
        }))
    }
}

/// One HTTP response, body fully read.
pub struct Reply {
    pub status: StatusCode,
    pub sse: bool,
    pub session: Option<HeaderValue>,
    pub body: Bytes,
}

impl Reply {
    /// The JSON-RPC response message in the body: the body itself for `application/json`, or the
    /// first SSE event (`data:` lines) that is a response (has an id and a result or an error).
    pub fn message(&self) -> Result<Cow<'_, [u8]>> {
        if !self.sse {
            return Ok(Cow::Borrowed(&self.body));
        }
        let text = std::str::from_utf8(&self.body).context("SSE body is not UTF-8")?;
        let mut data = String::new();
        let mut have = false;
        for line in text.split('\n').chain(std::iter::once("")) {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.is_empty() {
                if have {
                    if is_response(data.as_bytes()) {
                        return Ok(Cow::Owned(std::mem::take(&mut data).into_bytes()));
                    }
                    data.clear();
                    have = false;
                }
            } else if let Some(d) = line.strip_prefix("data:") {
                if have {
                    data.push('\n');
                }
                data.push_str(d.strip_prefix(' ').unwrap_or(d));
                have = true;
            }
        }
        bail!("SSE stream ended without a JSON-RPC response")
    }
}

fn is_response(msg: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Probe<'a> {
        #[serde(borrow)]
        id: Option<&'a RawValue>,
        #[serde(borrow)]
        result: Option<&'a RawValue>,
        #[serde(borrow)]
        error: Option<&'a RawValue>,
    }
    serde_json::from_slice::<Probe>(msg).is_ok_and(|p| p.id.is_some() && (p.result.is_some() || p.error.is_some()))
}

/// One keep-alive connection and the MCP session it carries.
pub struct Conn {
    target: Arc<Target>,
    sender: Option<SendRequest<Full<Bytes>>>,
    pub session: Option<HeaderValue>,
    protocol: HeaderValue,
}

impl Conn {
    pub fn new(target: Arc<Target>) -> Self {
        Self {
            target,
            sender: None,
            session: None,
            protocol: HeaderValue::from_static(PROTOCOL_VERSION),
        }
    }

    /// Share `other`'s MCP session on this connection.
    pub fn join(&mut self, other: &Conn) {
        self.session.clone_from(&other.session);
        self.protocol = other.protocol.clone();
    }

    /// Forget the transport (after an error or a timeout); the next request reconnects.
    pub fn reset(&mut self) {
        self.sender = None;
    }

    async fn sender(&mut self) -> Result<&mut SendRequest<Full<Bytes>>> {
        if let Some(s) = &mut self.sender
            && (s.is_closed() || s.ready().await.is_err())
        {
            self.sender = None;
        }
        if self.sender.is_none() {
            let stream = tokio::net::TcpStream::connect(&self.target.connect)
                .await
                .with_context(|| format!("connect {}", self.target.connect))?;
            stream.set_nodelay(true)?;
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            self.sender = Some(sender);
        }
        self.sender.as_mut().ok_or_else(|| anyhow!("no connection"))
    }

    pub async fn send(&mut self, method: Method, body: Bytes) -> Result<Reply> {
        let t = self.target.clone();
        let mut req = Request::builder()
            .method(method)
            .uri(t.path.as_str())
            .header(HOST, t.host.clone())
            .header(ACCEPT, HeaderValue::from_static("application/json, text/event-stream"))
            .header(PROTOCOL_HEADER, self.protocol.clone());
        if !body.is_empty() {
            req = req.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        if let Some(s) = &self.session {
            req = req.header(SESSION_HEADER, s.clone());
        }
        for (k, v) in &t.headers {
            req = req.header(k, v.clone());
        }
        if let Some(s) = &t.signer {
            for (k, v) in s.headers(unix_now(), &body) {
                req = req.header(k, v);
            }
        }
        let req = req.body(Full::new(body))?;
        let sender = self.sender().await?;
        let resp = match sender.send_request(req).await {
            Ok(r) => r,
            Err(e) => {
                self.sender = None;
                return Err(e.into());
            }
        };
        let (parts, body) = resp.into_parts();
        let body = match body.collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                self.sender = None;
                return Err(e.into());
            }
        };
        let sse = parts
            .headers
            .get(CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
        Ok(Reply {
            status: parts.status,
            sse,
            session: parts.headers.get(SESSION_HEADER).cloned(),
            body,
        })
    }

    pub async fn post(&mut self, body: Bytes) -> Result<Reply> {
        self.send(Method::POST, body).await
    }

    /// `initialize` + `notifications/initialized`; keeps the session id and protocol version.
    pub async fn initialize(&mut self, client_name: &str) -> Result<()> {
        self.session = None;
        // Signed: every body must be unique (the gateway refuses a replayed signature).
        let signed = self.target.signer.is_some();
        let meta = if signed {
            format!(r#","_meta":{{"bench/nonce":"{}"}}"#, nonce())
        } else {
            String::new()
        };
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":0,"method":"initialize","params":{{"protocolVersion":"{PROTOCOL_VERSION}","capabilities":{{}},"clientInfo":{{"name":{},"version":"0.1.0"}}{meta}}}}}"#,
            serde_json::to_string(client_name)?
        );
        let reply = self.post(Bytes::from(body)).await.context("initialize")?;
        if reply.status != StatusCode::OK {
            bail!("initialize: HTTP {} {}", reply.status, snippet(&reply.body));
        }
        #[derive(Deserialize)]
        struct InitResult {
            #[serde(rename = "protocolVersion")]
            protocol_version: String,
        }
        #[derive(Deserialize)]
        struct InitResp {
            result: Option<InitResult>,
            error: Option<serde_json::Value>,
        }
        let msg = reply.message()?;
        let r: InitResp = serde_json::from_slice(&msg).context("initialize: bad response")?;
        if let Some(e) = r.error {
            bail!("initialize: JSON-RPC error {e}");
        }
        let result = r.result.context("initialize: no result")?;
        self.protocol = HeaderValue::from_str(&result.protocol_version)?;
        self.session = reply.session;
        let note = if signed {
            Bytes::from(format!(
                r#"{{"jsonrpc":"2.0","method":"notifications/initialized","params":{{"_meta":{{"bench/nonce":"{}"}}}}}}"#,
                nonce()
            ))
        } else {
            Bytes::from_static(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
        };
        let reply = self.post(note).await.context("notifications/initialized")?;
        if !reply.status.is_success() {
            bail!(
                "notifications/initialized: HTTP {} {}",
                reply.status,
                snippet(&reply.body)
            );
        }
        Ok(())
    }

    /// DELETE the session (best effort). Signed, it is refused as a replay when another
    /// connection sent its DELETE in the same second (same empty body, same timestamp).
    pub async fn close_session(&mut self) {
        if self.session.is_some() {
            let _ = self.send(Method::DELETE, Bytes::new()).await;
        }
    }
}

pub fn snippet(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(&b[..b.len().min(200)]);
    s.replace('\n', " ")
}

/// The outcome of one `tools/call echo`.
pub enum Outcome {
    Ok,
    /// The response belongs to another request (wrong id or wrong text).
    Crossed(String),
    Error(String),
}

/// Check that `reply` answers the echo call with id `want_id` (JSON text) and text `want_text`.
pub fn check_echo(reply: &Reply, want_id: &str, want_text: &str) -> Outcome {
    #[derive(Deserialize)]
    struct Content<'a> {
        #[serde(borrow)]
        text: Option<Cow<'a, str>>,
    }
    #[derive(Deserialize)]
    struct CallResult<'a> {
        #[serde(borrow)]
        content: Vec<Content<'a>>,
    }
    #[derive(Deserialize)]
    struct CallResp<'a> {
        #[serde(borrow)]
        id: Option<&'a RawValue>,
        #[serde(borrow)]
        result: Option<CallResult<'a>>,
        #[serde(borrow)]
        error: Option<&'a RawValue>,
    }
    if reply.status != StatusCode::OK {
        return Outcome::Error(format!("HTTP {} {}", reply.status, snippet(&reply.body)));
    }
    let msg = match reply.message() {
        Ok(m) => m,
        Err(e) => return Outcome::Error(format!("{e:#}")),
    };
    let r: CallResp = match serde_json::from_slice(&msg) {
        Ok(r) => r,
        Err(e) => return Outcome::Error(format!("bad JSON-RPC response ({e}): {}", snippet(&msg))),
    };
    let id = r.id.map_or("null", |i| i.get());
    if id != want_id {
        return Outcome::Crossed(format!("sent id {want_id}, got id {id}"));
    }
    if let Some(e) = r.error {
        return Outcome::Error(format!("JSON-RPC error {}", e.get()));
    }
    let text = r.result.and_then(|r| r.content.into_iter().next()).and_then(|c| c.text);
    match text {
        Some(t) if t == want_text => Outcome::Ok,
        Some(t) => Outcome::Crossed(format!("id {want_id}: sent text {want_text:?}, got {t:?}")),
        None => Outcome::Error(format!("id {want_id}: no text content: {}", snippet(&msg))),
    }
}
