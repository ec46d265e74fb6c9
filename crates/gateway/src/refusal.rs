//! Every way the gateway refuses or fails a request, and the one place that turns each into an
//! HTTP response: status, headers the spec wants, and a JSON-RPC error body that tells the caller
//! what to do. No message here ever contains a credential.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use mcpgate_core::jsonrpc::{self, code};
use serde_json::value::RawValue;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The body is not a JSON-RPC message the gateway accepts.
    Malformed {
        code: i64,
        message: String,
    },
    UnsupportedMediaType,
    NotAcceptable,
    PayloadTooLarge {
        limit: usize,
    },
    ForbiddenHost,
    ForbiddenOrigin,
    /// A session id the gateway does not know (expired, deleted, or never issued).
    SessionNotFound,
    /// A non-initialize request without a session id where the upstream needs one.
    SessionRequired,
    TooManySessions,
    /// The upstream could not be reached or failed; the detail is for logs only.
    UpstreamUnavailable {
        detail: String,
    },
    UpstreamTimeout,
    MethodNotAllowed,
    MethodNotFound {
        method: String,
    },
}

impl Refusal {
    fn parts(&self) -> (StatusCode, i64, String) {
        match self {
            Refusal::Malformed { code, message } => (StatusCode::BAD_REQUEST, *code, message.clone()),
            Refusal::UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                code::INVALID_REQUEST,
                "send the JSON-RPC message with Content-Type: application/json".into(),
            ),
            Refusal::NotAcceptable => (
                StatusCode::NOT_ACCEPTABLE,
                code::INVALID_REQUEST,
                "the Accept header must allow application/json and text/event-stream".into(),
            ),
            Refusal::PayloadTooLarge { limit } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                code::INVALID_REQUEST,
                format!("the request body is larger than the gateway's limit of {limit} bytes"),
            ),
            Refusal::ForbiddenHost => (
                StatusCode::FORBIDDEN,
                code::FORBIDDEN,
                "this Host is not allowed; add it to http.allowed_hosts if it is yours".into(),
            ),
            Refusal::ForbiddenOrigin => (
                StatusCode::FORBIDDEN,
                code::FORBIDDEN,
                "this Origin is not allowed; add it to http.allowed_origins if it is yours".into(),
            ),
            Refusal::SessionNotFound => (
                StatusCode::NOT_FOUND,
                code::SESSION_NOT_FOUND,
                "session not found or expired; send initialize again to start a new session".into(),
            ),
            Refusal::SessionRequired => (
                StatusCode::BAD_REQUEST,
                code::INVALID_REQUEST,
                "missing Mcp-Session-Id header; send initialize first and echo the session id it returns".into(),
            ),
            Refusal::TooManySessions => (
                StatusCode::SERVICE_UNAVAILABLE,
                code::UPSTREAM_UNAVAILABLE,
                "the gateway has reached its session limit; close unused sessions or retry later".into(),
            ),
            Refusal::UpstreamUnavailable { .. } => (
                StatusCode::BAD_GATEWAY,
                code::UPSTREAM_UNAVAILABLE,
                "the upstream MCP server is unavailable; retry shortly".into(),
            ),
            Refusal::UpstreamTimeout => (
                StatusCode::GATEWAY_TIMEOUT,
                code::UPSTREAM_UNAVAILABLE,
                "the upstream MCP server did not answer in time".into(),
            ),
            Refusal::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                code::INVALID_REQUEST,
                "use POST to send messages, GET to open the server stream, DELETE to end a session".into(),
            ),
            Refusal::MethodNotFound { method } => (
                StatusCode::OK,
                code::METHOD_NOT_FOUND,
                format!("method not supported by this server: {}", printable(method)),
            ),
        }
    }

    /// A short, stable label for metrics and audit (bounded cardinality).
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::Malformed { .. } => "malformed",
            Refusal::UnsupportedMediaType => "unsupported_media_type",
            Refusal::NotAcceptable => "not_acceptable",
            Refusal::PayloadTooLarge { .. } => "too_large",
            Refusal::ForbiddenHost => "forbidden_host",
            Refusal::ForbiddenOrigin => "forbidden_origin",
            Refusal::SessionNotFound => "session_not_found",
            Refusal::SessionRequired => "session_required",
            Refusal::TooManySessions => "too_many_sessions",
            Refusal::UpstreamUnavailable { .. } => "upstream_unavailable",
            Refusal::UpstreamTimeout => "upstream_timeout",
            Refusal::MethodNotAllowed => "method_not_allowed",
            Refusal::MethodNotFound { .. } => "method_not_found",
        }
    }

    pub fn into_response(self, id: Option<&RawValue>) -> Response {
        let (status, rpc_code, message) = self.parts();
        json_response(status, jsonrpc::error_body(id, rpc_code, &message, None))
    }
}

/// A method name echoed back, cut short and stripped of control characters.
fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(64).collect()
}

pub fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}
