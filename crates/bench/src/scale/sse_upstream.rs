//! An upstream for the SSE run: the fast upstream's idea (hyper, no session table) plus the
//! standalone GET stream of Streamable HTTP. `initialize` issues a session id; a GET with that id
//! and `Accept: text/event-stream` gets a stream that sends one event at once (so a client sees
//! the stream is open end to end) and then a heartbeat event every `beat`, until the client goes.
//! Other requests: notifications get 202, `ping` and `tools/list` an answer, DELETE 200.

use anyhow::{Context, Result};
use bytes::Bytes;
use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use super::http::SESSION;

struct State {
    nonce: String,
    issued: AtomicU64,
    open_streams: AtomicU64,
    beat: Duration,
}

impl State {
    fn known(&self, session: &HeaderValue) -> bool {
        let Some(n) = session.to_str().ok().and_then(|s| s.strip_prefix(self.nonce.as_str())) else {
            return false;
        };
        n.parse::<u64>().is_ok_and(|n| n < self.issued.load(Ordering::Relaxed))
    }
}

type Resp = Response<BoxBody<Bytes, Infallible>>;

pub async fn run(listen: &str, beat: Duration) -> Result<()> {
    let addr: std::net::SocketAddr = listen
        .parse()
        .with_context(|| format!("--listen {listen:?}: not IP:PORT"))?;
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    let listener = socket.listen(4096)?;
    eprintln!("sse upstream listening on http://{}/mcp", listener.local_addr()?);
    let nanos = super::epoch_ns();
    let state = Arc::new(State {
        nonce: format!("scale-{:x}-{}-", nanos as u64, std::process::id()),
        issued: AtomicU64::new(0),
        open_streams: AtomicU64::new(0),
        beat,
    });
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // Out of descriptors, most likely: wait, then accept again.
                eprintln!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| handle(state.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

fn full(status: StatusCode, content_type: Option<&'static str>, body: Vec<u8>) -> Resp {
    let mut r = Response::new(Full::new(Bytes::from(body)).boxed());
    *r.status_mut() = status;
    if let Some(ct) = content_type {
        r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    r
}

fn result(id: &RawValue, result: &str) -> Vec<u8> {
    format!(r#"{{"jsonrpc":"2.0","id":{},"result":{result}}}"#, id.get()).into_bytes()
}

fn error(id: Option<&RawValue>, code: i32, message: &str) -> Vec<u8> {
    format!(
        r#"{{"jsonrpc":"2.0","id":{},"error":{{"code":{code},"message":{}}}}}"#,
        id.map_or("null", |i| i.get()),
        serde_json::Value::from(message)
    )
    .into_bytes()
}

/// One SSE event carrying an MCP logging notification.
fn event(n: u64) -> Bytes {
    Bytes::from(format!(
        "event: message\ndata: {{\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{{\"level\":\"debug\",\"data\":\"beat {n}\"}}}}\n\n"
    ))
}

/// The body of a standalone GET stream: the first event at once, then one per tick. No task or
/// channel per stream: the body polls its own interval, and is dropped when the client goes.
struct Events {
    first: bool,
    n: u64,
    tick: tokio::time::Interval,
    state: Arc<State>,
}

impl Drop for Events {
    fn drop(&mut self) {
        self.state.open_streams.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Body for Events {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.first {
            self.first = false;
            return Poll::Ready(Some(Ok(Frame::data(event(0)))));
        }
        match self.tick.poll_tick(cx) {
            Poll::Ready(_) => {
                self.n += 1;
                let n = self.n;
                Poll::Ready(Some(Ok(Frame::data(event(n)))))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[derive(Deserialize)]
struct Req<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    method: Option<String>,
}

async fn handle(state: Arc<State>, req: Request<Incoming>) -> Result<Resp, hyper::Error> {
    if req.uri().path() != "/mcp" {
        return Ok(full(StatusCode::NOT_FOUND, None, Vec::new()));
    }
    let session = req.headers().get(SESSION).cloned();
    let known = session.as_ref().is_some_and(|s| state.known(s));
    match *req.method() {
        Method::GET => {
            if !known {
                return Ok(full(StatusCode::NOT_FOUND, None, Vec::new()));
            }
            state.open_streams.fetch_add(1, Ordering::Relaxed);
            let start = tokio::time::Instant::now() + state.beat;
            let mut tick = tokio::time::interval_at(start, state.beat);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let body = Events {
                first: true,
                n: 0,
                tick,
                state: state.clone(),
            };
            let mut r = Response::new(body.boxed());
            r.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
            r.headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            return Ok(r);
        }
        Method::DELETE => {
            let status = if known { StatusCode::OK } else { StatusCode::NOT_FOUND };
            return Ok(full(status, None, Vec::new()));
        }
        Method::POST => {}
        _ => {
            let mut r = full(StatusCode::METHOD_NOT_ALLOWED, None, Vec::new());
            r.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, POST, DELETE"));
            return Ok(r);
        }
    }
    let body = req.into_body().collect().await?.to_bytes();
    let Ok(msg) = serde_json::from_slice::<Req>(&body) else {
        return Ok(full(
            StatusCode::BAD_REQUEST,
            Some("application/json"),
            error(None, -32700, "parse error"),
        ));
    };
    let (Some(method), Some(id)) = (msg.method.as_deref(), msg.id) else {
        // A notification or a response from the client.
        return Ok(full(StatusCode::ACCEPTED, None, Vec::new()));
    };
    if method == "initialize" {
        let n = state.issued.fetch_add(1, Ordering::Relaxed);
        let answer = result(
            id,
            r#"{"protocolVersion":"2025-06-18","capabilities":{"logging":{}},"serverInfo":{"name":"mcpgate-scale-sse-upstream","version":"0.1.0"}}"#,
        );
        let mut r = full(StatusCode::OK, Some("application/json"), answer);
        if let Ok(v) = HeaderValue::from_str(&format!("{}{n}", state.nonce)) {
            r.headers_mut().insert(SESSION, v);
        }
        return Ok(r);
    }
    if !known {
        return Ok(full(
            StatusCode::NOT_FOUND,
            Some("application/json"),
            error(Some(id), -32001, "unknown session"),
        ));
    }
    let answer = match method {
        "ping" => result(id, "{}"),
        "tools/list" => result(id, r#"{"tools":[]}"#),
        _ => error(Some(id), -32601, "method not found"),
    };
    Ok(full(StatusCode::OK, Some("application/json"), answer))
}
