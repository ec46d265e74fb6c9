//! rmcp's in-memory session manager, plus one ability it does not hand to tools: ending the SSE
//! response stream of the call being served (SEP-1699; why and how: `response_stream.rs`).
//!
//! rmcp can close such a stream (`LocalSessionHandle::close_sse_stream`) but needs the stream's
//! internal id, which only the session manager knows. So this wrapper does
//! what `LocalSessionManager::create_stream` does, and on the way attaches a [`ResponseStream`]
//! handle to each request's extensions, where the tool finds it in its `RequestContext`.
//! Everything else is delegated unchanged.

use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{ClientJsonRpcMessage, GetExtensions, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::session::local::{LocalSessionManager, LocalSessionManagerError};
use rmcp::transport::streamable_http_server::session::{
    EventStore, RestoreOutcome, ServerSseMessage, SessionId, SessionManager,
};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;

use crate::response_stream::{ResponseStream, Resumes};

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
            request.request.extensions_mut().insert(ResponseStream::new(
                session.clone(),
                stream,
                Arc::clone(&self.resumes),
            ));
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
