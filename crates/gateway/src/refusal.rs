//! Every way the gateway refuses or fails a request, and the one place that turns each into an
//! HTTP response: status, headers the spec wants, and a JSON-RPC error body that tells the caller
//! what to do. No message here ever contains a credential.

use crate::auth::AuthFailure;
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use mcpgate_core::hmac::HmacError;
use mcpgate_core::jsonrpc::{self, code};
use mcpgate_core::ratelimit::Limited;
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
    /// No usable credential: 401 with a `WWW-Authenticate` challenge.
    Unauthenticated {
        failure: Option<AuthFailure>,
    },
    /// The external key verifier could not answer.
    VerifierUnavailable,
    /// The rate-limit store could not count the request: refused rather than let through
    /// uncounted. The detail is for logs only.
    LimitsUnavailable {
        detail: String,
    },
    /// The session store could not say who owns a session (or record a new one): refused rather
    /// than let a session through unchecked. The detail is for logs only.
    SessionsUnavailable {
        detail: String,
    },
    /// The gateway's ceiling on calls to a verifier was reached (auth/outbound.rs).
    VerifierBusy {
        retry_after_s: u64,
    },
    /// Authenticated, but the policy says no; the message says what is missing.
    Forbidden {
        message: String,
    },
    /// An OAuth scope is missing: 403 with `insufficient_scope` so clients can step up.
    InsufficientScope {
        scopes: Vec<String>,
    },
    RateLimited(Limited),
    TenantMismatch,
    SessionOwnedByOther,
    /// An upstream answer the gateway had to read (a list to filter) was not readable.
    UpstreamGarbled,
    /// Identity delegation found no upstream credential for the caller (seed 003).
    NoUpstreamCredential,
    /// `delegation.source = "provider:<id>"` and no valid token at that provider is held for
    /// the caller: where to sign in there.
    ProviderSignInNeeded {
        provider: String,
        url: String,
    },
    /// The request body did not arrive within `http.body_timeout_s`.
    BodyTimeout,
    /// A cap on sessions or open streams (per caller or in all).
    Cap(crate::sessions::CapReached),
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
                format!("method not supported by this server: {}", printable(method, 64)),
            ),
            Refusal::Unauthenticated { failure } => {
                let message = match failure {
                    None => "missing API key or token: send the key in the X-API-Key header (or Authorization: Bearer <key>), or sign in with OAuth where this server offers it (the WWW-Authenticate header names its metadata)".to_string(),
                    Some(AuthFailure::Malformed(why)) => format!("unreadable credential: {why}"),
                    Some(AuthFailure::Invalid | AuthFailure::Revoked) => {
                        "invalid API key: check it, or ask for a new one (mcpgate keys create)".to_string()
                    }
                    Some(AuthFailure::Expired) => "expired API key: rotate it (mcpgate keys rotate) or ask for a new one".to_string(),
                    Some(AuthFailure::VerifierUnavailable) => "the key verifier is unavailable; retry shortly".to_string(),
                    // Sent as VerifierBusy (503) by `into_response`; kept for completeness.
                    Some(AuthFailure::VerifierBusy { .. }) => "the key verifier is busy; retry shortly".to_string(),
                    Some(AuthFailure::JwtAsKey) => "a JWT was sent where an API key was expected: send an API key here, \
                        or the token as Authorization: Bearer <token>"
                        .into(),
                    Some(AuthFailure::JwtWithoutVerifier) => "a JWT was sent but no JWT verifier is configured: \
                        use an API key (X-API-Key), or ask the administrator to set up [auth.jwt]"
                        .into(),
                    Some(AuthFailure::Token("expired")) => {
                        "expired token: get a new one from your identity provider and retry".into()
                    }
                    Some(AuthFailure::Token(reason)) => {
                        format!("invalid token ({reason}): get a new token from your identity provider for this resource")
                    }
                    Some(AuthFailure::Hmac(e)) => match e {
                        HmacError::Malformed => "X-Timestamp must be Unix seconds and X-Signature 64 hex characters".into(),
                        HmacError::Skewed => "X-Timestamp is outside the accepted window; check the client's clock".into(),
                        HmacError::BadSignature => {
                            "X-Signature does not match: sign \"{X-Timestamp}.{raw body}\" with HMAC-SHA256".into()
                        }
                        HmacError::Replayed => "this signature was already used; sign every request anew".into(),
                    },
                };
                (StatusCode::UNAUTHORIZED, code::UNAUTHORIZED, message)
            }
            Refusal::VerifierUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                code::UPSTREAM_UNAVAILABLE,
                "the key verifier is unavailable; retry shortly".into(),
            ),
            Refusal::LimitsUnavailable { .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                code::UPSTREAM_UNAVAILABLE,
                "the gateway cannot count requests against limits right now; retry shortly".into(),
            ),
            Refusal::SessionsUnavailable { .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                code::UPSTREAM_UNAVAILABLE,
                "the gateway cannot check sessions right now; retry shortly".into(),
            ),
            Refusal::VerifierBusy { retry_after_s } => (
                StatusCode::SERVICE_UNAVAILABLE,
                code::UPSTREAM_UNAVAILABLE,
                format!("the key verifier is busy checking other new credentials; retry after {retry_after_s} s"),
            ),
            Refusal::Forbidden { message } => (StatusCode::FORBIDDEN, code::FORBIDDEN, message.clone()),
            Refusal::InsufficientScope { scopes } => (
                StatusCode::FORBIDDEN,
                code::FORBIDDEN,
                format!("insufficient scope: this call needs the scope(s) {}; request them and retry", scopes.join(" ")),
            ),
            Refusal::RateLimited(l) => {
                let whose = match &l.tool {
                    Some(t) => format!("for tool {}", printable(t, 64)),
                    None => "for this key".to_string(),
                };
                let message = if l.window == "daily quota" {
                    format!("daily quota of {} requests {whose} is used up (insufficient credits); retry after {} s", l.limit, l.retry_after_s)
                } else {
                    format!("rate limit exceeded: {} limit of {} requests {whose}; retry after {} s", l.window, l.limit, l.retry_after_s)
                };
                (StatusCode::TOO_MANY_REQUESTS, code::RATE_LIMITED, message)
            }
            Refusal::TenantMismatch => (
                StatusCode::FORBIDDEN,
                code::FORBIDDEN,
                "X-Tenant-ID does not match the tenant of your credential; drop the header or use a credential of that tenant".into(),
            ),
            Refusal::SessionOwnedByOther => (
                StatusCode::FORBIDDEN,
                code::FORBIDDEN,
                "this session belongs to another principal; send initialize to start your own".into(),
            ),
            Refusal::NoUpstreamCredential => (
                StatusCode::FORBIDDEN,
                code::FORBIDDEN,
                "No API token provided: your credential carries no upstream key and the gateway holds none for it; \
                 ask an administrator to set one (mcpgate keys set-upstream-credential)"
                    .into(),
            ),
            Refusal::ProviderSignInNeeded { provider, url } => (
                StatusCode::FORBIDDEN,
                code::FORBIDDEN,
                format!(
                    "this tool acts with your own {provider} account and the gateway holds no valid {provider} token for you: \
                     sign in at {url} in a browser, then call again"
                ),
            ),
            Refusal::UpstreamGarbled => (
                StatusCode::BAD_GATEWAY,
                code::UPSTREAM_UNAVAILABLE,
                "the upstream MCP server sent an answer the gateway could not read".into(),
            ),
            Refusal::BodyTimeout => (
                StatusCode::REQUEST_TIMEOUT,
                code::INVALID_REQUEST,
                "the request body did not arrive in time; send it whole, promptly".into(),
            ),
            Refusal::Cap(c) => {
                let status = match c {
                    crate::sessions::CapReached::Streams { .. } => StatusCode::SERVICE_UNAVAILABLE,
                    _ => StatusCode::TOO_MANY_REQUESTS,
                };
                (status, code::RATE_LIMITED, c.to_string())
            }
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
            Refusal::Unauthenticated { failure: None } => "missing_credential",
            Refusal::Unauthenticated { failure: Some(f) } => f.reason(),
            Refusal::VerifierUnavailable => "verifier_unavailable",
            Refusal::LimitsUnavailable { .. } => "limits_unavailable",
            Refusal::SessionsUnavailable { .. } => "sessions_unavailable",
            Refusal::VerifierBusy { .. } => "verifier_busy",
            Refusal::Forbidden { .. } => "forbidden",
            Refusal::InsufficientScope { .. } => "insufficient_scope",
            Refusal::RateLimited(_) => "rate_limited",
            Refusal::TenantMismatch => "tenant_mismatch",
            Refusal::SessionOwnedByOther => "session_owner_mismatch",
            Refusal::UpstreamGarbled => "upstream_garbled",
            Refusal::NoUpstreamCredential => "no_upstream_credential",
            Refusal::ProviderSignInNeeded { .. } => "provider_sign_in_needed",
            Refusal::BodyTimeout => "body_timeout",
            Refusal::Cap(crate::sessions::CapReached::SessionsPerPrincipal { .. }) => "sessions_per_principal",
            Refusal::Cap(crate::sessions::CapReached::StreamsPerPrincipal { .. }) => "streams_per_principal",
            Refusal::Cap(crate::sessions::CapReached::Streams { .. }) => "streams",
        }
    }

    pub fn into_response(self, id: Option<&RawValue>) -> Response {
        // A verifier that could not answer is never a credential problem, however the caller
        // wrapped it: 503, no challenge.
        let this = match self {
            Refusal::Unauthenticated { failure: Some(f) } => Refusal::from(f),
            other => other,
        };
        this.respond(id)
    }

    fn respond(self, id: Option<&RawValue>) -> Response {
        let (status, rpc_code, message) = self.parts();
        let mut resp = json_response(status, jsonrpc::error_body(id, rpc_code, &message, None));
        let challenge = match &self {
            Refusal::Unauthenticated { failure: None } => Some("Bearer realm=\"mcpgate\"".to_string()),
            Refusal::Unauthenticated { failure: Some(_) } => {
                Some("Bearer realm=\"mcpgate\", error=\"invalid_token\", error_description=\"the credential is invalid or expired\"".to_string())
            }
            Refusal::InsufficientScope { scopes } => {
                Some(format!("Bearer realm=\"mcpgate\", error=\"insufficient_scope\", scope=\"{}\"", scopes.join(" ")))
            }
            _ => None,
        };
        if let Some(c) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, c);
        }
        match &self {
            Refusal::RateLimited(l) => {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(l.retry_after_s));
            }
            Refusal::VerifierBusy { retry_after_s } => {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_s));
            }
            Refusal::VerifierUnavailable
            | Refusal::LimitsUnavailable { .. }
            | Refusal::SessionsUnavailable { .. }
            | Refusal::UpstreamUnavailable { .. }
            | Refusal::TooManySessions
            | Refusal::Cap(_) => {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            _ => {}
        }
        resp
    }
}

impl From<crate::sessions::SessionError> for Refusal {
    fn from(e: crate::sessions::SessionError) -> Refusal {
        match e {
            crate::sessions::SessionError::Cap(c) => Refusal::Cap(c),
            crate::sessions::SessionError::Store(e) => Refusal::SessionsUnavailable { detail: e.to_string() },
        }
    }
}

impl From<AuthFailure> for Refusal {
    /// The refusal for a failed authentication: 503 when a verifier could not answer, else 401.
    fn from(f: AuthFailure) -> Refusal {
        match f {
            AuthFailure::VerifierUnavailable => Refusal::VerifierUnavailable,
            AuthFailure::VerifierBusy { retry_after_s } => Refusal::VerifierBusy { retry_after_s },
            f => Refusal::Unauthenticated { failure: Some(f) },
        }
    }
}

/// Caller-chosen text as the gateway repeats it (in an error message, an audit record): control
/// characters dropped, at most `max` characters.
pub(crate) fn printable(s: &str, max: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(max).collect()
}

pub fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}
