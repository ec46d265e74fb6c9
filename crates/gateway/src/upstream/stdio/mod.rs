//! stdio upstream: the gateway runs the MCP server as a child process and serves it over
//! Streamable HTTP. Each MCP session gets its own child, so one caller's elicitation or log
//! message can never reach another caller, and a crash takes down one session's calls only.

mod child;
mod routing;
mod session;

use super::{Forward, SESSION_HEADER};
use crate::config::StdioConfig;
use crate::metrics::Metrics;
use crate::refusal::Refusal;
use axum::http::HeaderValue;
use axum::response::Response;
use mcpgate_core::entropy::Entropy;
use mcpgate_core::jsonrpc::{Kind, code};
use session::Session;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

pub use session::accepted;

pub struct StdioUpstream {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: Arc<StdioConfig>,
    /// Where session ids come from.
    entropy: Arc<dyn Entropy>,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    metrics: Arc<Metrics>,
    last_spawn_error: Mutex<Option<String>>,
}

impl Inner {
    fn sessions(&self) -> MutexGuard<'_, HashMap<String, Arc<Session>>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn remove(&self, id: &str) -> Option<Arc<Session>> {
        let s = self.sessions().remove(id);
        if let Some(s) = &s {
            s.closed.cancel();
            self.metrics.sessions.dec();
        }
        s
    }
}

impl StdioUpstream {
    pub fn new(cfg: StdioConfig, metrics: Arc<Metrics>, entropy: Arc<dyn Entropy>) -> Self {
        let inner = Arc::new(Inner {
            cfg: Arc::new(cfg),
            entropy,
            sessions: Mutex::new(HashMap::new()),
            metrics,
            last_spawn_error: Mutex::new(None),
        });
        tokio::spawn(reap_idle(Arc::downgrade(&inner)));
        StdioUpstream { inner }
    }

    pub async fn post(&self, f: Forward<'_>) -> Result<Response, Refusal> {
        let is_init = f.msg.kind == Kind::Request && f.msg.method() == "initialize";
        let Some(id) = f.session else {
            return if is_init {
                self.start_session(f).await
            } else {
                Err(Refusal::SessionRequired)
            };
        };
        if is_init {
            return Err(Refusal::Malformed {
                code: code::INVALID_REQUEST,
                message: "initialize starts a new session; send it without an Mcp-Session-Id header".into(),
            });
        }
        let session = self.inner.sessions().get(id).cloned().ok_or(Refusal::SessionNotFound)?;
        session.touch();
        match f.msg.kind {
            Kind::Request => session.call(f.msg).await,
            Kind::Notification => session.notify(f.msg, f.body),
            Kind::Response => session.respond(f.body),
        }
    }

    async fn start_session(&self, f: Forward<'_>) -> Result<Response, Refusal> {
        if self.inner.sessions().len() >= self.inner.cfg.max_sessions {
            return Err(Refusal::TooManySessions);
        }
        let id = new_session_id(self.inner.entropy.as_ref());
        let (tx, rx) = mpsc::unbounded_channel();
        let session = Arc::new(Session::new(id.clone(), tx, self.inner.cfg.request_timeout));
        let (started_tx, started_rx) = oneshot::channel();
        tokio::spawn(child::supervise(
            session.clone(),
            self.inner.cfg.clone(),
            rx,
            self.inner.metrics.clone(),
            started_tx,
        ));
        match started_rx.await {
            Ok(Ok(())) => *self.inner.last_spawn_error.lock().unwrap_or_else(|e| e.into_inner()) = None,
            Ok(Err(why)) => {
                tracing::error!("{why}");
                *self.inner.last_spawn_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(why.clone());
                self.inner.metrics.upstream_errors.inc();
                return Err(Refusal::UpstreamUnavailable { detail: why });
            }
            Err(_) => {
                return Err(Refusal::UpstreamUnavailable {
                    detail: "supervisor ended".into(),
                });
            }
        }
        self.inner.sessions().insert(id.clone(), session.clone());
        self.inner.metrics.sessions.inc();
        let mut resp = match session.call(f.msg).await {
            Ok(r) => r,
            Err(e) => {
                self.inner.remove(&id);
                return Err(e);
            }
        };
        if let Ok(v) = HeaderValue::from_str(&id) {
            resp.headers_mut().insert(SESSION_HEADER, v);
        }
        Ok(resp)
    }

    pub fn get(&self, session: Option<&str>) -> Result<Response, Refusal> {
        let id = session.ok_or(Refusal::SessionRequired)?;
        let s = self.inner.sessions().get(id).cloned().ok_or(Refusal::SessionNotFound)?;
        s.touch();
        Ok(s.open_stream())
    }

    pub fn delete(&self, session: &str) -> Result<Response, Refusal> {
        match self.inner.remove(session) {
            Some(_) => Ok(accepted_ok()),
            None => Err(Refusal::SessionNotFound),
        }
    }

    pub fn ready(&self) -> bool {
        self.inner
            .last_spawn_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_none()
            && resolvable(&self.inner.cfg.program)
    }

    pub fn status(&self) -> serde_json::Value {
        serde_json::json!({
            "kind": "stdio",
            "program": self.inner.cfg.program,
            "sessions": self.inner.sessions().len(),
            "last_spawn_error": *self.inner.last_spawn_error.lock().unwrap_or_else(|e| e.into_inner()),
        })
    }

    pub fn shutdown(&self) {
        let ids: Vec<String> = self.inner.sessions().keys().cloned().collect();
        for id in ids {
            self.inner.remove(&id);
        }
    }
}

fn accepted_ok() -> Response {
    let mut r = accepted();
    *r.status_mut() = axum::http::StatusCode::OK;
    r
}

/// 128 random bits, hex: unguessable, and visible ASCII as the spec requires.
pub fn new_session_id(entropy: &dyn Entropy) -> String {
    entropy.hex_id(16)
}

/// Whether `program` names an executable file, directly or through PATH.
fn resolvable(program: &str) -> bool {
    let p = std::path::Path::new(program);
    if p.components().count() > 1 {
        return p.is_file();
    }
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}

async fn reap_idle(inner: Weak<Inner>) {
    let mut tick = tokio::time::interval(Duration::from_secs(30));
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        let limit = inner.cfg.idle_timeout;
        let idle: Vec<String> = inner
            .sessions()
            .iter()
            .filter(|(_, s)| s.idle_for(limit))
            .map(|(id, _)| id.clone())
            .collect();
        for id in idle {
            tracing::info!(session = %session::short(&id), "closing idle session");
            inner.remove(&id);
        }
    }
}
