//! One MCP session over one stdio child: sending client messages to the child under remapped ids,
//! and dispatching what the child writes back to the right client stream.

use super::routing::{Out, Pending, Routing};
use crate::refusal::{Refusal, json_response};
use crate::sse;
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use futures_util::stream;
use mcpgate_core::jsonrpc::{self, Kind, Message, code};
use serde::Deserialize;
use serde_json::value::RawValue;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub struct Session {
    pub id: String,
    routing: Mutex<Routing>,
    to_child: mpsc::UnboundedSender<Bytes>,
    next_id: AtomicU64,
    /// The client's `initialize` params, replayed to a restarted child.
    init_params: Mutex<Option<Bytes>>,
    pub initialized: AtomicBool,
    pub closed: CancellationToken,
    last_used: Mutex<Instant>,
    request_timeout: Duration,
}

fn raw_u64(n: u64) -> Box<RawValue> {
    // A decimal integer is always valid JSON.
    RawValue::from_string(n.to_string()).unwrap_or_else(|_| Box::<RawValue>::default())
}

impl Session {
    pub fn new(id: String, to_child: mpsc::UnboundedSender<Bytes>, request_timeout: Duration) -> Self {
        Session {
            id,
            routing: Mutex::new(Routing::default()),
            to_child,
            next_id: AtomicU64::new(1),
            init_params: Mutex::new(None),
            initialized: AtomicBool::new(false),
            closed: CancellationToken::new(),
            last_used: Mutex::new(Instant::now()),
            request_timeout,
        }
    }

    fn routing(&self) -> MutexGuard<'_, Routing> {
        // A poisoned lock only means another task panicked mid-update; the map is still usable.
        self.routing.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn touch(&self) {
        *self.last_used.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    /// Idle: nothing in flight, no server stream open, and unused for `limit`.
    pub fn idle_for(&self, limit: Duration) -> bool {
        let r = self.routing();
        let last = *self.last_used.lock().unwrap_or_else(|e| e.into_inner());
        r.in_flight() == 0 && r.get_stream.is_none() && last.elapsed() >= limit
    }

    pub fn init_params(&self) -> Option<Bytes> {
        self.init_params.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn send_line(&self, mut line: Vec<u8>) -> bool {
        line.push(b'\n');
        self.to_child.send(Bytes::from(line)).is_ok()
    }

    /// Sends a request to the child and answers with its response: plain JSON when the child
    /// answers at once, an SSE stream when it first sends notifications or requests of its own.
    pub async fn call(self: &Arc<Self>, msg: &Message<'_>) -> Result<Response, Refusal> {
        let client_id: Box<RawValue> = msg.id.map(|r| r.to_owned()).unwrap_or_default();
        if msg.method() == "initialize" {
            let params = msg.params.map(|p| Bytes::copy_from_slice(p.get().as_bytes()));
            *self.init_params.lock().unwrap_or_else(|e| e.into_inner()) = params;
        }
        let (gid, mut rx) = self.register(client_id.clone(), msg.progress_token().map(|t| t.get().to_string()));
        if !self.send_line(jsonrpc::with_id(msg, &raw_u64(gid))) {
            self.routing().remove(gid);
            return Err(Refusal::UpstreamUnavailable {
                detail: "session closed".into(),
            });
        }
        let guard = CallGuard {
            session: self.clone(),
            gid,
        };
        let deadline = tokio::time::Instant::now() + self.request_timeout;
        let first = match tokio::time::timeout_at(deadline, rx.recv()).await {
            Err(_) => return Err(Refusal::UpstreamTimeout),
            Ok(None) => {
                return Err(Refusal::UpstreamUnavailable {
                    detail: "session closed".into(),
                });
            }
            Ok(Some(first)) => first,
        };
        let first = match first {
            Out::Final(body) => {
                drop(guard);
                return Ok(json_response(StatusCode::OK, body.to_vec()));
            }
            Out::Event(ev) => ev,
        };
        // The call streams: the events so far, the rest as they come, the response last.
        let head = stream::iter([Ok::<_, std::convert::Infallible>(sse::event(&first))]);
        let state = Some((rx, guard, client_id));
        let tail = stream::unfold(state, move |state| async move {
            let (mut rx, guard, client_id) = state?;
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(Out::Event(ev))) => Some((Ok(sse::event(&ev)), Some((rx, guard, client_id)))),
                Ok(Some(Out::Final(body))) => Some((Ok(sse::event(&body)), None)),
                Ok(None) => None,
                Err(_) => {
                    let body = jsonrpc::error_body(
                        Some(&client_id),
                        code::UPSTREAM_UNAVAILABLE,
                        "the upstream MCP server did not answer in time",
                        None,
                    );
                    Some((Ok(sse::event(&body)), None))
                }
            }
        });
        let mut resp = Response::new(Body::from_stream(futures_util::StreamExt::chain(head, tail)));
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(sse::CONTENT_TYPE));
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        Ok(resp)
    }

    fn register(
        &self,
        client_id: Box<RawValue>,
        progress_token: Option<String>,
    ) -> (u64, mpsc::UnboundedReceiver<Out>) {
        let gid = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        self.routing().insert(
            gid,
            Pending {
                client_id,
                tx,
                progress_token,
            },
        );
        (gid, rx)
    }

    /// Sends the remembered `initialize` to a restarted child and waits for its answer.
    pub async fn replay_initialize(&self, stdin: &mut (impl tokio::io::AsyncWrite + Unpin)) -> Result<(), String> {
        use tokio::io::AsyncWriteExt;
        let Some(params) = self.init_params() else {
            return Ok(());
        };
        let (gid, mut rx) = self.register(raw_u64(0), None);
        let mut line = Vec::with_capacity(params.len() + 64);
        line.extend_from_slice(
            format!("{{\"jsonrpc\":\"2.0\",\"id\":{gid},\"method\":\"initialize\",\"params\":").as_bytes(),
        );
        line.extend_from_slice(&params);
        line.extend_from_slice(b"}\n");
        stdin.write_all(&line).await.map_err(|e| e.to_string())?;
        let answered = tokio::time::timeout(Duration::from_secs(30), rx.recv()).await;
        self.routing().remove(gid);
        match answered {
            Ok(Some(Out::Final(_))) => {}
            _ => return Err("the restarted upstream did not answer initialize".into()),
        }
        if self.initialized.load(Ordering::Relaxed) {
            stdin
                .write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n")
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// A client notification: forwarded, with a cancelled request's id mapped to the child's.
    pub fn notify(&self, msg: &Message<'_>, body: &[u8]) -> Result<Response, Refusal> {
        let line = match msg.method() {
            "notifications/initialized" => {
                self.initialized.store(true, Ordering::Relaxed);
                body.to_vec()
            }
            "notifications/cancelled" => {
                #[derive(Deserialize)]
                struct P<'a> {
                    #[serde(borrow, rename = "requestId")]
                    request_id: &'a RawValue,
                    #[serde(default)]
                    reason: Option<String>,
                }
                let parsed = msg.params.and_then(|p| serde_json::from_str::<P<'_>>(p.get()).ok());
                let gid = parsed
                    .as_ref()
                    .and_then(|p| self.routing().find_by_client_id(p.request_id.get()));
                match (gid, parsed) {
                    (Some(gid), Some(p)) => serde_json::to_vec(&serde_json::json!({
                        "jsonrpc": "2.0",
                        "method": "notifications/cancelled",
                        "params": { "requestId": gid, "reason": p.reason },
                    }))
                    .unwrap_or_default(),
                    // Not a call of this session: nothing to cancel.
                    _ => return Ok(accepted()),
                }
            }
            _ => body.to_vec(),
        };
        if self.send_line(line) {
            Ok(accepted())
        } else {
            Err(Refusal::UpstreamUnavailable {
                detail: "session closed".into(),
            })
        }
    }

    /// A client's answer to a request the child sent (elicitation, sampling, roots).
    pub fn respond(&self, body: &[u8]) -> Result<Response, Refusal> {
        if self.send_line(body.to_vec()) {
            Ok(accepted())
        } else {
            Err(Refusal::UpstreamUnavailable {
                detail: "session closed".into(),
            })
        }
    }

    /// Opens the server stream (GET): messages from the child that belong to no call.
    pub fn open_stream(self: &Arc<Self>) -> Response {
        let (tx, rx) = mpsc::unbounded_channel();
        let token = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.routing().get_stream = Some((token, tx));
        let guard = StreamGuard {
            session: self.clone(),
            token,
        };
        let ticks = tokio::time::interval(Duration::from_secs(15));
        let body = stream::unfold((rx, guard, ticks), |(mut rx, guard, mut ticks)| async move {
            tokio::select! {
                m = rx.recv() => match m {
                    Some(Out::Event(ev) | Out::Final(ev)) => Some((Ok::<_, std::convert::Infallible>(sse::event(&ev)), (rx, guard, ticks))),
                    None => None,
                },
                _ = ticks.tick() => Some((Ok(sse::keep_alive()), (rx, guard, ticks))),
            }
        });
        let mut resp = Response::new(Body::from_stream(body));
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(sse::CONTENT_TYPE));
        resp.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        resp
    }

    /// Dispatches one line the child wrote on stdout.
    pub fn on_child_line(&self, line: &[u8]) {
        // Read strictly like client messages, and pass on the canonical form: what reaches a
        // client is exactly what the gateway routed (one SSE `data:` line, no raw separators).
        let canonical = match jsonrpc::read(line) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(session = %short(&self.id), error = %e, "upstream wrote a line that is not strict JSON-RPC; ignored");
                return;
            }
        };
        let line = canonical.as_slice();
        let msg = match Message::parse(line) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(session = %short(&self.id), error = %e, "upstream wrote a line that is not JSON-RPC; ignored");
                return;
            }
        };
        match msg.kind {
            Kind::Response => {
                let gid = msg.id.and_then(|r| r.get().parse::<u64>().ok());
                let pending = gid.and_then(|g| self.routing().remove(g));
                if let Some(p) = pending {
                    let body = jsonrpc::response_with_id(&msg, &p.client_id);
                    let _ = p.tx.send(Out::Final(Bytes::from(body)));
                }
            }
            Kind::Notification => {
                let r = self.routing();
                let target = match msg.method() {
                    "notifications/progress" => progress_token_of(&msg)
                        .and_then(|t| r.by_progress(&t))
                        .or_else(|| r.get_stream()),
                    "notifications/message" => r.current_stream(),
                    _ => r.get_stream(),
                };
                if let Some(tx) = target {
                    let _ = tx.send(Out::Event(Bytes::copy_from_slice(line)));
                }
            }
            Kind::Request => {
                let id = msg.id.map(|r| r.to_owned()).unwrap_or_default();
                if msg.method() == "ping" {
                    let ok = RawValue::from_string("{}".into()).unwrap_or_default();
                    self.send_line(jsonrpc::result_body(&id, &ok));
                    return;
                }
                let delivered = self
                    .routing()
                    .current_stream()
                    .map(|tx| tx.send(Out::Event(Bytes::copy_from_slice(line))).is_ok());
                if delivered != Some(true) {
                    self.send_line(jsonrpc::error_body(
                        Some(&id),
                        code::INTERNAL_ERROR,
                        "no client stream is open to carry this request",
                        None,
                    ));
                }
            }
        }
    }

    /// Fails every call in flight with an error that says why (the child exited).
    pub fn fail_all(&self, why: &str) {
        for p in self.routing().drain() {
            let body = jsonrpc::error_body(Some(&p.client_id), code::UPSTREAM_UNAVAILABLE, why, None);
            let _ = p.tx.send(Out::Final(Bytes::from(body)));
        }
    }

    fn cancel(&self, gid: u64) {
        if self.routing().remove(gid).is_some() {
            let line = format!(
                "{{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":{{\"requestId\":{gid},\"reason\":\"the client went away or the call timed out\"}}}}"
            );
            self.send_line(line.into_bytes());
        }
    }
}

fn progress_token_of(msg: &Message<'_>) -> Option<String> {
    #[derive(Deserialize)]
    struct P<'a> {
        #[serde(borrow, rename = "progressToken")]
        token: &'a RawValue,
    }
    let p: P<'_> = serde_json::from_str(msg.params?.get()).ok()?;
    Some(p.token.get().to_string())
}

pub fn accepted() -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::ACCEPTED;
    r
}

/// The first characters of a session id, enough to follow it in logs.
pub fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// Cancels the call at the child when its client goes away before the answer.
struct CallGuard {
    session: Arc<Session>,
    gid: u64,
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.session.cancel(self.gid);
    }
}

struct StreamGuard {
    session: Arc<Session>,
    token: u64,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let mut r = self.session.routing();
        if matches!(r.get_stream, Some((t, _)) if t == self.token) {
            r.get_stream = None;
        }
    }
}
