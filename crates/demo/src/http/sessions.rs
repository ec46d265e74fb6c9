//! rmcp's in-memory session manager, plus one ability it does not hand to tools: ending the SSE
//! response stream of the call being served.
//!
//! The 2025-11-25 transport lets a server close a call's stream mid-call (after an SSE event
//! with an id and a `retry` hint); the client then reconnects with `GET` + `Last-Event-ID` and
//! receives the rest, including the result (SEP-1699). The conformance suite's
//! `server-sse-polling` scenario tests exactly that through `test_reconnection`, and a gateway
//! must carry it. rmcp can close such a stream (`LocalSessionHandle::close_sse_stream`) but
//! needs the stream's internal id, which only the session manager knows. So this wrapper does
//! what `LocalSessionManager::create_stream` does, and on the way attaches a [`ResponseStream`]
//! handle to each request's extensions, where the tool finds it in its `RequestContext`.
//! Everything else is delegated unchanged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rmcp::model::{ClientJsonRpcMessage, GetExtensions, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::session::local::{
    LocalSessionHandle, LocalSessionManager, LocalSessionManagerError, SessionError,
};
use rmcp::transport::streamable_http_server::session::{
    EventStore, RestoreOutcome, ServerSseMessage, SessionId, SessionManager,
};
use tokio::sync::Notify;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;

/// How long a session may sit idle before rmcp drops it. rmcp's default is 5 minutes; a gateway
/// typically holds one upstream session for as long as its client stays connected, so a demo
/// left alone over a coffee would otherwise greet its next call with 404 "session not found".
const SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// rmcp's local session manager with [`ResponseStream`] handles attached to requests.
#[derive(Debug)]
pub(crate) struct Sessions {
    inner: LocalSessionManager,
    resumes: Arc<Resumes>,
}

impl Default for Sessions {
    fn default() -> Self {
        let mut inner = LocalSessionManager::default();
        inner.session_config.keep_alive = Some(SESSION_IDLE_TIMEOUT);
        Self {
            inner,
            resumes: Arc::default(),
        }
    }
}

/// Streams whose tool is waiting for the client to reconnect, keyed by session and stream.
#[derive(Debug, Default)]
struct Resumes {
    waiting: Mutex<HashMap<(SessionId, u64), Arc<Notify>>>,
}

impl Resumes {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(SessionId, u64), Arc<Notify>>> {
        // Only inserts and removes happen under this lock; a poisoned map is still consistent.
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Called for every `GET` with `Last-Event-ID`. rmcp's local event ids read
    /// `<index>/<stream id>` for request streams.
    fn resumed(&self, session: &SessionId, last_event_id: &str) {
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

impl SessionManager for Sessions {
    type Error = LocalSessionManagerError;
    type Transport = <LocalSessionManager as SessionManager>::Transport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        self.inner.create_session().await
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        self.inner.initialize_session(id, message).await
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        self.inner.has_session(id).await
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        self.inner.close_session(id).await
    }

    /// `LocalSessionManager::create_stream`, with the stream handle attached to the request.
    async fn create_stream(
        &self,
        id: &SessionId,
        mut message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        let session = self
            .inner
            .sessions
            .read()
            .await
            .get(id)
            .cloned()
            .ok_or_else(|| LocalSessionManagerError::SessionNotFound(id.clone()))?;
        let receiver = session.establish_request_wise_channel().await?;
        if let (ClientJsonRpcMessage::Request(request), Some(stream)) = (&mut message, receiver.http_request_id) {
            request.request.extensions_mut().insert(ResponseStream {
                session: session.clone(),
                stream,
                resumes: Arc::clone(&self.resumes),
            });
        }
        session.push_message(message, receiver.http_request_id).await?;
        Ok(ReceiverStream::new(receiver.inner))
    }

    async fn accept_message(&self, id: &SessionId, message: ClientJsonRpcMessage) -> Result<(), Self::Error> {
        self.inner.accept_message(id, message).await
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner.create_standalone_stream(id).await
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        let resumes = Arc::clone(&self.resumes);
        let stream = self.inner.resume(id, last_event_id.clone()).await?;
        resumes.resumed(id, &last_event_id);
        Ok(stream)
    }

    async fn restore_session(&self, id: SessionId) -> Result<RestoreOutcome<Self::Transport>, Self::Error> {
        self.inner.restore_session(id).await
    }

    fn event_store(&self) -> Option<Arc<dyn EventStore>> {
        self.inner.event_store()
    }
}
