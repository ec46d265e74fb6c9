//! The SSE response stream of the call being served, as a tool sees it: the one ability rmcp does
//! not hand to tools, ending that stream mid-call and waiting for the client to resume it.
//!
//! The 2025-11-25 transport lets a server close a call's stream mid-call (after an SSE event
//! with an id and a `retry` hint); the client then reconnects with `GET` + `Last-Event-ID` and
//! receives the rest, including the result (SEP-1699). The conformance suite's
//! `server-sse-polling` scenario tests exactly that through `test_reconnection`, and a gateway
//! must carry it. The HTTP transport's session manager (`http::sessions`) attaches a
//! [`ResponseStream`] to each request and reports every resume to [`Resumes`]; this module sits
//! below both the transport and the tools, so neither depends on the other.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rmcp::transport::streamable_http_server::session::SessionId;
use rmcp::transport::streamable_http_server::session::local::{LocalSessionHandle, SessionError};
use tokio::sync::Notify;

/// Streams whose tool is waiting for the client to reconnect, keyed by session and stream.
#[derive(Debug, Default)]
pub(crate) struct Resumes {
    waiting: Mutex<HashMap<(SessionId, u64), Arc<Notify>>>,
}

impl Resumes {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(SessionId, u64), Arc<Notify>>> {
        // Only inserts and removes happen under this lock; a poisoned map is still consistent.
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Called for every `GET` with `Last-Event-ID`. rmcp's local event ids read
    /// `<index>/<stream id>` for request streams.
    pub(crate) fn resumed(&self, session: &SessionId, last_event_id: &str) {
        let Some(stream) = last_event_id
            .split_once('/')
            .and_then(|(_, stream)| stream.parse::<u64>().ok())
        else {
            return;
        };
        if let Some(notify) = self.lock().get(&(session.clone(), stream)) {
            // `notify_one` keeps a permit if the tool is not waiting yet.
            notify.notify_one();
        }
    }
}

/// The SSE response stream of the request being handled, as seen from a tool.
#[derive(Debug, Clone)]
pub(crate) struct ResponseStream {
    session: LocalSessionHandle,
    stream: u64,
    resumes: Arc<Resumes>,
}

impl ResponseStream {
    /// The handle for stream `stream` of `session`, reporting to `resumes`.
    pub(crate) fn new(session: LocalSessionHandle, stream: u64, resumes: Arc<Resumes>) -> Self {
        Self {
            session,
            stream,
            resumes,
        }
    }

    /// Ends the stream (after an event carrying the `retry` hint), then waits up to `wait` for the
    /// client to reconnect to it. Returns whether it did. The call's result, sent afterwards, is
    /// delivered on the resumed stream; answering before the client is back would let rmcp drop
    /// the stream's replay buffer, so callers should wait.
    pub(crate) async fn close_and_wait_for_resume(
        &self,
        retry: Duration,
        wait: Duration,
    ) -> Result<bool, SessionError> {
        let key = (self.session.id().clone(), self.stream);
        let notify = Arc::new(Notify::new());
        self.resumes.lock().insert(key.clone(), Arc::clone(&notify));
        let _registration = Registration {
            resumes: &self.resumes,
            key,
        };
        self.session.close_sse_stream(self.stream, Some(retry)).await?;
        Ok(tokio::time::timeout(wait, notify.notified()).await.is_ok())
    }
}

/// Removes a waiting entry however the wait ends (answer, timeout, cancelled call).
struct Registration<'a> {
    resumes: &'a Resumes,
    key: (SessionId, u64),
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.resumes.lock().remove(&self.key);
    }
}
