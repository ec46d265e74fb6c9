//! The MCP client of the process tests: rmcp's, with a handler that answers elicitation with a
//! fixed name and sampling with a canned summary ([`TestClient`]), over an HTTP client that
//! records the session id it used and the outcome of its DELETE ([`SpyHttp`]).

// Sampling is deprecated by the 2026-07-28 protocol (SEP-2577), but the gateway must still carry it.
#![allow(deprecated)]

use crate::time::{START, STEP, within};
use rmcp::model::{
    ClientCapabilities, ClientConfig, CreateMessageRequestParams, CreateMessageResult, ElicitRequestParams,
    ElicitResult, ElicitationAction, ElicitationCapability, ProgressNotificationParam, ProtocolVersion,
    SamplingCapability, SamplingMessage,
};
use rmcp::service::{NotificationContext, RequestContext, RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::common::client_side_sse::BoxedSseResponse;
use rmcp::transport::streamable_http_client::{
    StreamableHttpClient, StreamableHttpClientTransportConfig, StreamableHttpError, StreamableHttpPostResponse,
};
use rmcp::{ClientHandler, ErrorData, ServiceExt};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What the test client saw from the server side during calls.
#[derive(Default)]
pub struct Seen {
    pub progress: Mutex<Vec<(ProgressNotificationParam, Instant)>>,
    pub elicitations: AtomicUsize,
    pub samplings: AtomicUsize,
    pub sampled_prompts: Mutex<Vec<String>>,
}

/// An MCP client that answers elicitation with a fixed name and sampling with a canned summary.
#[derive(Clone)]
pub struct TestClient {
    pub name: String,
    pub seen: Arc<Seen>,
    pub protocol: ProtocolVersion,
}

pub const MODEL_REPLY_PREFIX: &str = "SUMMARY:";

impl TestClient {
    pub fn new(name: &str) -> Self {
        TestClient {
            name: name.to_string(),
            seen: Arc::default(),
            // The last version with `initialize` and server→client requests: what the gateway's
            // session layer, id remapping and stream routing exist for.
            protocol: ProtocolVersion::V_2025_11_25,
        }
    }

    /// The same client offering another protocol version in `initialize`.
    pub fn with_protocol(mut self, v: ProtocolVersion) -> Self {
        self.protocol = v;
        self
    }

    pub fn progress_count(&self) -> usize {
        self.seen.progress.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl ClientHandler for TestClient {
    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        self.seen.elicitations.fetch_add(1, Ordering::SeqCst);
        match request {
            ElicitRequestParams::FormElicitationParams { .. } => {
                Ok(ElicitResult::new(ElicitationAction::Accept).with_content(json!({ "name": self.name })))
            }
            _ => Ok(ElicitResult::new(ElicitationAction::Decline)),
        }
    }

    async fn create_message(
        &self,
        params: CreateMessageRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, ErrorData> {
        self.seen.samplings.fetch_add(1, Ordering::SeqCst);
        let prompt = serde_json::to_string(&params.messages).unwrap_or_default();
        self.seen
            .sampled_prompts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(prompt);
        Ok(CreateMessageResult::new(
            SamplingMessage::assistant_text(format!("{MODEL_REPLY_PREFIX}{}", self.name)),
            "e2e-test-model".to_string(),
        )
        .with_stop_reason(CreateMessageResult::STOP_REASON_END_TURN))
    }

    async fn on_progress(&self, params: ProgressNotificationParam, _context: NotificationContext<RoleClient>) {
        self.seen
            .progress
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((params, Instant::now()));
    }

    fn get_info(&self) -> ClientConfig {
        let mut caps = ClientCapabilities::default();
        caps.elicitation = Some(ElicitationCapability::default());
        caps.sampling = Some(SamplingCapability::default());
        let mut info = ClientConfig::default();
        info.capabilities = caps;
        info.protocol_version = self.protocol.clone();
        info
    }
}

/// A reqwest-backed HTTP client for rmcp's transport that records the session id it used and
/// the outcome of its DELETE, so tests can check the session afterwards with raw HTTP.
#[derive(Clone)]
pub struct SpyHttp {
    inner: reqwest::Client,
    pub session: Arc<Mutex<Option<String>>>,
    pub deleted: Arc<Mutex<Option<Result<(), String>>>>,
}

impl SpyHttp {
    pub fn new() -> Self {
        SpyHttp {
            inner: reqwest::Client::builder().no_proxy().build().expect("reqwest client"),
            session: Arc::default(),
            deleted: Arc::default(),
        }
    }

    pub fn session_id(&self) -> Option<String> {
        self.session.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn delete_outcome(&self) -> Option<Result<(), String>> {
        self.deleted.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Notes the session id the server answered with, if any.
    fn note_reply(&self, r: StreamableHttpPostResponse) -> StreamableHttpPostResponse {
        if let StreamableHttpPostResponse::Json(_, s) | StreamableHttpPostResponse::Sse(_, s) = &r {
            self.note_session(s.as_deref());
        }
        r
    }

    fn note_session(&self, s: Option<&str>) {
        if let Some(s) = s {
            *self.session.lock().unwrap_or_else(|e| e.into_inner()) = Some(s.to_string());
        }
    }
}

impl Default for SpyHttp {
    fn default() -> Self {
        Self::new()
    }
}

type H = HashMap<reqwest::header::HeaderName, reqwest::header::HeaderValue>;

impl StreamableHttpClient for SpyHttp {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: rmcp::model::ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: H,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        self.note_session(session_id.as_deref());
        let r = self
            .inner
            .post_message(uri, message, session_id, auth_header, custom_headers)
            .await?;
        Ok(self.note_reply(r))
    }

    async fn post_message_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        message: rmcp::model::ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: H,
        max_sse_event_size: usize,
    ) -> Result<StreamableHttpPostResponse, StreamableHttpError<Self::Error>> {
        self.note_session(session_id.as_deref());
        let r = self
            .inner
            .post_message_with_max_sse_event_size(
                uri,
                message,
                session_id,
                auth_header,
                custom_headers,
                max_sse_event_size,
            )
            .await?;
        Ok(self.note_reply(r))
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: H,
    ) -> Result<(), StreamableHttpError<Self::Error>> {
        let r = self
            .inner
            .delete_session(uri, session_id, auth_header, custom_headers)
            .await;
        *self.deleted.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(r.as_ref().map(|_| ()).map_err(|e| e.to_string()));
        r
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: H,
    ) -> Result<BoxedSseResponse, StreamableHttpError<Self::Error>> {
        self.inner
            .get_stream(uri, session_id, last_event_id, auth_header, custom_headers)
            .await
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: H,
        max_sse_event_size: usize,
    ) -> Result<BoxedSseResponse, StreamableHttpError<Self::Error>> {
        self.inner
            .get_stream_with_max_sse_event_size(
                uri,
                session_id,
                last_event_id,
                auth_header,
                custom_headers,
                max_sse_event_size,
            )
            .await
    }
}

pub type Client = RunningService<RoleClient, TestClient>;

/// Connects an rmcp client to `url` (initialize + initialized), bounded by [`START`]. The key
/// goes in `Authorization: Bearer` (raw requests use `X-API-Key`: both places are exercised).
pub async fn connect(url: &str, key: Option<&str>, handler: TestClient) -> (Client, SpyHttp) {
    let spy = SpyHttp::new();
    let mut config = StreamableHttpClientTransportConfig::with_uri(url.to_string())
        // A crash test must see the error, not a transparent new session.
        .reinit_on_expired_session(false);
    if let Some(k) = key {
        config = config.auth_header(k);
    }
    let transport = StreamableHttpClientTransport::with_client(spy.clone(), config);
    let client = within(START, "rmcp client initialize", handler.serve(transport))
        .await
        .unwrap_or_else(|e| panic!("rmcp client could not initialize against {url}: {e}"));
    (client, spy)
}

/// Calls tool `name` with `args` and returns the concatenated text of its result.
pub async fn call_text(client: &Client, name: &str, args: Value) -> Result<String, String> {
    let args = match args {
        Value::Object(m) => m,
        Value::Null => serde_json::Map::new(),
        other => panic!("tool arguments must be an object, got {other}"),
    };
    let params = rmcp::model::CallToolRequestParams::new(name.to_string()).with_arguments(args);
    let r = within(STEP, &format!("tools/call {name}"), client.call_tool(params))
        .await
        .map_err(|e| e.to_string())?;
    let text: String = r
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect();
    if r.is_error == Some(true) {
        return Err(format!("tool error: {text}"));
    }
    Ok(text)
}
