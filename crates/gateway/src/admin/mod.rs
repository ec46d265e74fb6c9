//! The admin API under `/admin/api/v1` (`[admin] enabled = true`): keys, OAuth clients and
//! grants, users, MCP sessions, audit and usage, as JSON; its OpenAPI document at
//! `/admin/api/v1/openapi.json`. The rules are the ones the CLI uses — the key service, the grant
//! revocation in `directory` — never a second copy.
//!
//! Every request is read strictly: query strings by the OAuth form reader (each parameter once,
//! unknown ones refused), JSON bodies canonicalized first (no duplicate keys at any depth) and
//! then read into types that refuse unknown fields. Who may call it is decided in `caller`: an
//! admin-role API key, or an admin's browser session with a CSRF token on every write. Every
//! action, refused ones included, is itself an audit record (`event = "admin"`).
//!
//! It holds narrow state ([`Admin`]: store handles and the key service); the gateway is read only
//! for what is its own (the key registry that authenticates operators, the web session, the MCP
//! session registry and the audit sink).

mod audit;
mod caller;
mod console;
mod directory;
mod keys;
pub mod openapi;
mod throttle;
pub mod views;

use crate::Gateway;
use crate::key_service::{KeyService, KeyServiceError};
use crate::server::Stores;
use axum::Router;
use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use mcpgate_core::audit::AuditRecord;
use mcpgate_core::sealed::SealingKey;
use mcpgate_store::oauth::{ClientStore, GrantStore};
use mcpgate_store::{AuditStore, CredentialStore, StoreError, UserStore};
use std::sync::Arc;
use std::time::Instant;

pub use caller::{CSRF_COOKIE, CSRF_HEADER, Operator};
pub use directory::revoke_grant;

/// Where the API is served.
pub const BASE: &str = "/admin/api/v1";
/// The largest JSON body the API reads.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What the admin API works on.
pub struct Admin {
    pub keys: KeyService,
    pub clients: Arc<dyn ClientStore>,
    pub grants: Arc<dyn GrantStore>,
    pub users: Arc<dyn UserStore>,
    pub credentials: Arc<dyn CredentialStore>,
    pub audit: Arc<dyn AuditStore>,
    /// Seals upstream credentials held for keys (`delegation.encryption_key_env`); none: the
    /// credential endpoints answer 409.
    pub sealing: Option<SealingKey>,
    pub broadcast: Arc<crate::shared::Broadcast>,
    /// Failed authentication per client address.
    pub throttle: throttle::Throttle,
}

impl Admin {
    /// New keys take their randomness from `entropy` (the gateway's).
    pub fn new(
        stores: &Stores,
        sealing: Option<SealingKey>,
        entropy: Arc<dyn mcpgate_core::entropy::Entropy>,
    ) -> Admin {
        Admin {
            keys: KeyService::for_stores(stores).with_entropy(entropy),
            clients: stores.clients.clone(),
            grants: stores.grants.clone(),
            users: stores.users.clone(),
            credentials: stores.credentials.clone(),
            audit: stores.audit.clone(),
            sealing,
            broadcast: stores.broadcast.clone(),
            throttle: throttle::Throttle::default(),
        }
    }
}

/// The routes (none when the API is off): every entry of [`openapi::ENDPOINTS`], nothing else.
pub fn routes(enabled: bool) -> Router<Arc<Gateway>> {
    if !enabled {
        return Router::new();
    }
    let mut router = Router::new();
    for e in openapi::ENDPOINTS {
        if let Some(m) = handler(e.method, e.path) {
            router = router.route(&format!("{BASE}{}", e.path), m);
        }
    }
    router
        .route(&format!("{BASE}/{{*rest}}"), axum::routing::any(not_found))
        .merge(console::routes(true))
}

/// The handler of one endpoint.
fn handler(method: &str, path: &str) -> Option<MethodRouter<Arc<Gateway>>> {
    use axum::routing::{delete, get, post, put};
    Some(match (method, path) {
        ("GET", "/openapi.json") => get(openapi::document),
        ("GET", "/session") => get(caller::session),
        ("GET", "/keys") => get(keys::list),
        ("POST", "/keys") => post(keys::create),
        ("GET", "/keys/{id}") => get(keys::show),
        ("POST", "/keys/{id}/rotate") => post(keys::rotate),
        ("POST", "/keys/{id}/revoke") => post(keys::revoke),
        ("PUT", "/keys/{id}/credential") => put(keys::hold_credential),
        ("DELETE", "/keys/{id}/credential") => delete(keys::clear_credential),
        ("GET", "/clients") => get(directory::clients),
        ("GET", "/clients/{id}") => get(directory::client),
        ("DELETE", "/clients/{id}") => delete(directory::remove_client),
        ("GET", "/grants") => get(directory::grants),
        ("POST", "/grants/{id}/revoke") => post(directory::revoke),
        ("GET", "/users") => get(directory::users),
        ("GET", "/users/{id}") => get(directory::user),
        ("GET", "/sessions") => get(directory::sessions),
        ("DELETE", "/sessions/{id}") => delete(directory::end_session),
        ("GET", "/audit") => get(audit::search),
        ("GET", "/usage") => get(audit::usage),
        _ => return None,
    })
}

async fn not_found() -> Response {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such admin endpoint").into_response()
}

/// A refusal or failure: `{"error": code, "message": text}` with its status. Messages tell the
/// operator what to do; none holds a secret (store errors are logged, not shown).
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Not audited (a throttled address's refusals after the first of its window).
    pub quiet: bool,
    /// `Retry-After` (seconds), for 429 and 503.
    pub retry_after_s: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            quiet: false,
            retry_after_s: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            axum::Json(serde_json::json!({"error": self.code, "message": self.message})),
        )
            .into_response();
        no_store(&mut r);
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"mcpgate-admin\""),
            );
        }
        let retry = match (self.retry_after_s, self.status) {
            (Some(s), _) => Some(s),
            (None, StatusCode::SERVICE_UNAVAILABLE) => Some(5),
            _ => None,
        };
        if let Some(v) = retry.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        r
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Unavailable(_) => {
                tracing::warn!(error = %e, "admin: the store is unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "the store cannot answer now; try again shortly",
                )
            }
            StoreError::Duplicate(_) => ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string()),
            other => {
                tracing::error!(error = %other, "admin: the store refused");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "store_error",
                    "the store refused the request; see the gateway's log",
                )
            }
        }
    }
}

impl From<KeyServiceError> for ApiError {
    fn from(e: KeyServiceError) -> ApiError {
        match e {
            KeyServiceError::NotFound(_) => ApiError::not_found(e.to_string()),
            KeyServiceError::Revoked(_) => ApiError::new(StatusCode::CONFLICT, "revoked", e.to_string()),
            KeyServiceError::NoCredential(_) => ApiError::not_found(e.to_string()),
            KeyServiceError::EmptyCredential => ApiError::bad_request(e.to_string()),
            KeyServiceError::Sealing(_) => {
                tracing::error!(error = %e, "admin: sealing a credential failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "sealing_failed",
                    "the credential could not be sealed; see the gateway's log",
                )
            }
            KeyServiceError::Store(s) => s.into(),
        }
    }
}

pub fn no_store(r: &mut Response) {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// A JSON answer, never cached.
pub fn json(status: StatusCode, body: serde_json::Value) -> Response {
    let mut r = (status, axum::Json(body)).into_response();
    no_store(&mut r);
    r
}

/// The admin state, or 404 when the gateway runs without it.
fn admin(gw: &Gateway) -> Result<&Admin, ApiError> {
    gw.admin
        .as_deref()
        .ok_or_else(|| ApiError::not_found("the admin API is off"))
}

/// The query string, strictly: each parameter once, only `allowed` names.
fn query(parts: &Parts, allowed: &[&str]) -> Result<crate::oauth::form::Form, ApiError> {
    let raw = parts.uri.query().unwrap_or("");
    let form = crate::oauth::form::Form::parse(raw.as_bytes()).map_err(|e| ApiError::bad_request(e.to_string()))?;
    for name in form.names() {
        if !allowed.contains(&name) {
            return Err(ApiError::bad_request(format!(
                "unknown parameter {}; this endpoint takes {}",
                crate::refusal::printable(name, 40),
                if allowed.is_empty() {
                    "none".to_string()
                } else {
                    allowed.join(", ")
                }
            )));
        }
    }
    Ok(form)
}

/// A JSON body, strictly: `application/json`, at most [`MAX_BODY_BYTES`], no duplicate keys at any
/// depth, then read into `T` (whose fields refuse unknown names). An empty body reads as `{}`.
async fn body<T: serde::de::DeserializeOwned>(parts: &Parts, body: Body) -> Result<T, ApiError> {
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the body is larger than {MAX_BODY_BYTES} bytes"),
        )
    })?;
    let bytes = if bytes.iter().all(u8::is_ascii_whitespace) {
        axum::body::Bytes::from_static(b"{}")
    } else {
        let json = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as application/json",
            ));
        }
        bytes
    };
    let strict = mcpgate_core::jsonrpc::canonical::canonicalize(&bytes)
        .map_err(|e| ApiError::bad_request(format!("the body is not strict JSON: {e}")))?;
    serde_json::from_slice(&strict).map_err(|e| ApiError::bad_request(format!("the body does not fit: {e}")))
}

/// One admin action, for the audit: what was asked, of what, by whom, and how it ended.
pub struct Action<'a> {
    pub name: &'static str,
    pub target: Option<&'a str>,
    pub started: Instant,
}

impl<'a> Action<'a> {
    pub fn new(name: &'static str, target: Option<&'a str>) -> Action<'a> {
        Action {
            name,
            target,
            started: Instant::now(),
        }
    }
}

/// Writes the action's record and waits for it (an admin change is never answered before its
/// audit record is committed, up to the sink's ceiling), then answers `outcome`.
async fn audited(
    gw: &Gateway,
    parts: &Parts,
    operator: Option<&Operator>,
    action: Action<'_>,
    outcome: Result<Response, ApiError>,
) -> Response {
    let (status, reason, quiet) = match &outcome {
        Ok(r) => (r.status(), "ok", false),
        Err(e) => (e.status, e.code, e.quiet),
    };
    if !quiet {
        note(gw, parts, operator, action, status, reason).await;
    }
    match outcome {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// The audit record of one admin action, committed (up to the sink's ceiling) when this returns.
async fn note(
    gw: &Gateway,
    parts: &Parts,
    operator: Option<&Operator>,
    action: Action<'_>,
    status: StatusCode,
    reason: &str,
) {
    let decision = if status.is_success() || status.is_redirection() {
        "allow"
    } else if status.is_client_error() {
        "deny"
    } else {
        "error"
    };
    let record = AuditRecord {
        time_ms: gw.clock.unix_ms(),
        request_id: gw.entropy.hex_id(8),
        event: "admin".into(),
        principal: operator.map(|o| o.principal.clone()),
        key_id: operator.and_then(|o| o.key_id.clone()),
        user_id: operator.map(|o| o.user_id.clone()),
        tenant: operator.and_then(|o| o.tenant.clone()),
        auth_method: operator.map(|o| o.via.to_string()),
        client_addr: parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip().to_string()),
        mcp_method: Some(format!("admin/{}", action.name)),
        tool: action.target.map(|t| crate::refusal::printable(t, 128)),
        decision: decision.into(),
        reason: reason.into(),
        status: status.as_u16(),
        latency_us: action.started.elapsed().as_micros() as u64,
        client_id: None,
    };
    gw.audit.record(record).await;
}

/// Runs an action for an operator: authenticated (`write` asks for the CSRF check of a browser
/// session), performed, audited.
async fn act<F>(gw: &Gateway, parts: &Parts, write: bool, action: Action<'_>, run: F) -> Response
where
    F: AsyncFnOnce(&Admin, &Operator) -> Result<Response, ApiError>,
{
    let operator = match caller::operator(gw, parts, write).await {
        Ok(o) => o,
        Err(e) => return audited(gw, parts, None, action, Err(e)).await,
    };
    let outcome = match admin(gw) {
        Ok(a) => run(a, &operator).await,
        Err(e) => Err(e),
    };
    audited(gw, parts, Some(&operator), action, outcome).await
}
