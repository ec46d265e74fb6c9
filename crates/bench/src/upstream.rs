//! A fast, minimal MCP server: `initialize`, `notifications/*`, `ping`, `tools/list` (one tool,
//! `echo`) and `tools/call echo`.
//!
//! - Streamable HTTP (`run`): answered as `application/json`. Sessions cost nothing: an id is this
//!   process's nonce plus a counter, so any id it issued is accepted without a lookup table.
//! - stdio (`run_stdio`): newline-delimited JSON-RPC on stdin/stdout, the same answers (for the
//!   gateways that only proxy stdio servers). Requests are answered in order, one line each;
//!   notifications and responses get no answer. Output is flushed whenever no complete request is
//!   left in the input buffer, so a burst of pipelined requests costs few writes.

use anyhow::{Context, Result};
use bytes::Bytes;
use http::header::{ALLOW, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::io::{BufRead, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::client::SESSION_HEADER;

const SUPPORTED: [&str; 3] = ["2025-03-26", "2025-06-18", "2025-11-25"];
const LATEST: &str = "2025-11-25";
const TOOLS: &str = r#"{"tools":[{"name":"echo","description":"Echo the text back.","inputSchema":{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]}}]}"#;

struct State {
    nonce: String,
    issued: AtomicU64,
}

impl State {
    fn known(&self, session: &HeaderValue) -> bool {
        let Some(n) = session.to_str().ok().and_then(|s| s.strip_prefix(self.nonce.as_str())) else {
            return false;
        };
        n.parse::<u64>().is_ok_and(|n| n < self.issued.load(Ordering::Relaxed))
    }
}

pub async fn run(listen: &str) -> Result<()> {
    let listener = listen_on(listen).await?;
    eprintln!("listening on http://{}/mcp", listener.local_addr()?);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let state = Arc::new(State {
        nonce: format!("bench-{:x}-{}-", nanos as u64, std::process::id()),
        issued: AtomicU64::new(0),
    });
    accept_each(listener, |stream| {
        let state = state.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| handle(state.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    })
    .await
}

/// Accepts connections forever (with TCP_NODELAY) and hands each to `serve`.
pub async fn accept_each(listener: tokio::net::TcpListener, mut serve: impl FnMut(tokio::net::TcpStream)) -> ! {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                serve(stream);
            }
            Err(e) => {
                eprintln!("accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

/// A loopback-style listener with a deep accept queue: `TcpListener::bind` gives 128, and a
/// burst of new connections beyond that (the probe opens hundreds at once) gets SYNs dropped
/// and 1 s retransmit stalls.
pub async fn listen_on(listen: &str) -> Result<tokio::net::TcpListener> {
    let addr = tokio::net::lookup_host(listen)
        .await?
        .next()
        .context("--listen resolves to no address")?;
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    Ok(socket.listen(4096)?)
}

type Resp = Response<Full<Bytes>>;

fn empty(status: StatusCode) -> Resp {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = status;
    r
}

fn json(status: StatusCode, body: Vec<u8>) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn result(id: &RawValue, result: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(40 + id.get().len() + result.len());
    v.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    v.extend_from_slice(id.get().as_bytes());
    v.extend_from_slice(br#","result":"#);
    v.extend_from_slice(result);
    v.push(b'}');
    v
}

fn error(id: Option<&RawValue>, code: i32, message: &str) -> Vec<u8> {
    format!(
        r#"{{"jsonrpc":"2.0","id":{},"error":{{"code":{code},"message":{}}}}}"#,
        id.map_or("null", |i| i.get()),
        serde_json::Value::from(message)
    )
    .into_bytes()
}

#[derive(Deserialize)]
struct Req<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow)]
    params: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct InitParams<'a> {
    #[serde(borrow, rename = "protocolVersion")]
    protocol_version: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct CallParams<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow)]
    arguments: Option<EchoArgs<'a>>,
}

#[derive(Deserialize)]
struct EchoArgs<'a> {
    #[serde(borrow)]
    text: Option<Cow<'a, str>>,
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Resp, hyper::Error> {
    if req.uri().path() != "/mcp" {
        return Ok(empty(StatusCode::NOT_FOUND));
    }
    let session = req.headers().get(SESSION_HEADER).cloned();
    match *req.method() {
        Method::POST => {}
        Method::DELETE => {
            return Ok(match session {
                Some(s) if state.known(&s) => empty(StatusCode::OK),
                Some(_) => empty(StatusCode::NOT_FOUND),
                None => empty(StatusCode::BAD_REQUEST),
            });
        }
        _ => {
            let mut r = empty(StatusCode::METHOD_NOT_ALLOWED);
            r.headers_mut().insert(ALLOW, HeaderValue::from_static("POST, DELETE"));
            return Ok(r);
        }
    }
    let body = req.into_body().collect().await?.to_bytes();
    let Ok(msg) = serde_json::from_slice::<Req>(&body) else {
        return Ok(json(
            StatusCode::BAD_REQUEST,
            error(None, -32700, "parse error (batches are not supported)"),
        ));
    };
    let Some(method) = msg.method.as_deref() else {
        // A response from the client (to a request this server never sends): accept it.
        return Ok(empty(StatusCode::ACCEPTED));
    };
    if method == "initialize" {
        let Some(id) = msg.id else {
            return Ok(json(
                StatusCode::BAD_REQUEST,
                error(None, -32600, "initialize must be a request"),
            ));
        };
        let body = initialize(id, msg.params);
        let n = state.issued.fetch_add(1, Ordering::Relaxed);
        let mut r = json(StatusCode::OK, body);
        if let Ok(v) = HeaderValue::from_str(&format!("{}{n}", state.nonce)) {
            r.headers_mut().insert(SESSION_HEADER, v);
        }
        return Ok(r);
    }
    match &session {
        None => {
            return Ok(json(
                StatusCode::BAD_REQUEST,
                error(msg.id, -32600, "missing Mcp-Session-Id"),
            ));
        }
        Some(s) if !state.known(s) => {
            return Ok(json(StatusCode::NOT_FOUND, error(msg.id, -32001, "unknown session")));
        }
        Some(_) => {}
    }
    let Some(id) = msg.id else {
        return Ok(empty(StatusCode::ACCEPTED));
    };
    Ok(json(StatusCode::OK, answer(method, id, msg.params)))
}

/// The `initialize` result: the client's protocol version when supported, else the latest.
fn initialize(id: &RawValue, params: Option<&RawValue>) -> Vec<u8> {
    let asked = params
        .and_then(|p| serde_json::from_str::<InitParams>(p.get()).ok())
        .and_then(|p| p.protocol_version.map(Cow::into_owned));
    let version = asked.as_deref().filter(|v| SUPPORTED.contains(v)).unwrap_or(LATEST);
    result(
        id,
        format!(
            r#"{{"protocolVersion":"{version}","capabilities":{{"tools":{{}}}},"serverInfo":{{"name":"mcpgate-bench-upstream","version":"{}"}}}}"#,
            env!("CARGO_PKG_VERSION")
        )
        .as_bytes(),
    )
}

/// The answer to a request other than `initialize` (a result or a JSON-RPC error).
fn answer(method: &str, id: &RawValue, params: Option<&RawValue>) -> Vec<u8> {
    match method {
        "tools/call" => match params.map(|p| serde_json::from_str::<CallParams>(p.get())) {
            Some(Ok(CallParams { name, arguments })) if name == "echo" => match arguments.and_then(|a| a.text) {
                Some(text) => {
                    let mut v = Vec::with_capacity(48 + text.len());
                    v.extend_from_slice(br#"{"content":[{"type":"text","text":"#);
                    if serde_json::to_writer(&mut v, &text).is_err() {
                        return error(Some(id), -32603, "encode");
                    }
                    v.extend_from_slice(b"}]}");
                    result(id, &v)
                }
                None => error(Some(id), -32602, "echo needs a string argument `text`"),
            },
            Some(Ok(c)) => error(Some(id), -32602, &format!("unknown tool {}", c.name)),
            _ => error(Some(id), -32602, "bad tools/call params"),
        },
        "tools/list" => result(id, TOOLS.as_bytes()),
        "ping" => result(id, b"{}"),
        _ => error(Some(id), -32601, "method not found"),
    }
}

/// One stdio message in, at most one line out: requests get their answer; notifications and
/// responses (no method) get none; a line that is not a JSON-RPC message gets a parse error.
fn stdio_reply(line: &[u8]) -> Option<Vec<u8>> {
    let Ok(msg) = serde_json::from_slice::<Req>(line) else {
        return Some(error(None, -32700, "parse error (batches are not supported)"));
    };
    let (method, id) = (msg.method.as_deref()?, msg.id?);
    Some(if method == "initialize" {
        initialize(id, msg.params)
    } else {
        answer(method, id, msg.params)
    })
}

/// The stdio server: reads newline-delimited JSON-RPC from stdin until it closes, writes one line
/// per request to stdout. Blocking I/O on the calling thread: one client, answered in order.
pub fn run_stdio() -> Result<()> {
    let stdin = std::io::stdin();
    // Larger than stdin's own buffer, so reads bypass it: `buffer()` below is all there is.
    let mut input = std::io::BufReader::with_capacity(256 * 1024, stdin.lock());
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(256 * 1024, stdout.lock());
    let mut line = Vec::with_capacity(4096);
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line).context("read stdin")? == 0 {
            out.flush().context("write stdout")?;
            return Ok(());
        }
        let msg = line.trim_ascii();
        if !msg.is_empty()
            && let Some(reply) = stdio_reply(msg)
        {
            out.write_all(&reply).context("write stdout")?;
            out.write_all(b"\n").context("write stdout")?;
        }
        // Flush once no complete request is waiting: answers to a pipelined burst go out together,
        // and a client waiting for its answer is never left waiting on a full buffer.
        if !input.buffer().contains(&b'\n') {
            out.flush().context("write stdout")?;
        }
    }
}
