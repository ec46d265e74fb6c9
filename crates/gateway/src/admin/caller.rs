//! Who may call the admin API, decided in one place.
//!
//! 1. A credential header (`X-API-Key`, or `Authorization: Bearer`) must be an API key from the
//!    key registry whose role is `admin`. Nothing else is taken: not a JWT or an issued access
//!    token (those authorize MCP calls, not the gateway's own administration), not the server's
//!    default key, not a key in the query string. A browser never sends these headers on its
//!    own, so no CSRF check is needed.
//! 2. Without one, an admin's browser session (the web session cookie of `oauth::session`). A
//!    browser attaches that cookie to requests other sites make it send, so every write from a
//!    session must come from our own pages (`Origin`/`Sec-Fetch-Site`) and carry the CSRF token
//!    in `X-CSRF-Token` equal to the `mcpgate_admin_csrf` cookie (double submit: another site can
//!    neither read the cookie nor set a custom header on a cross-site request without a CORS
//!    preflight this API never grants).

use super::{ApiError, json};
use crate::Gateway;
use crate::auth::extract::{self, Found};
use crate::oauth::{cookies, session};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use mcpgate_core::principal::Role;
use std::sync::Arc;

/// The cookie holding a browser's CSRF token.
pub const CSRF_COOKIE: &str = "mcpgate_admin_csrf";
/// The header a browser's write must repeat it in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a CSRF cookie lives (a day; a new one is issued by `GET /admin/api/v1/session`).
const CSRF_LIFE_S: u64 = 24 * 3600;

/// An authenticated operator.
#[derive(Debug, Clone)]
pub struct Operator {
    /// `key:<key id>` or `session:<user id>` (for the audit).
    pub principal: String,
    pub user_id: String,
    pub tenant: Option<String>,
    pub key_id: Option<String>,
    /// `api_key` or `session`.
    pub via: &'static str,
}

fn unauthenticated(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
}

fn not_admin() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        "the admin API needs an admin-role API key or an admin's session",
    )
}

/// The operator behind an API request; `write` for requests that change something (a browser
/// session then sends the CSRF token in `X-CSRF-Token`).
pub async fn operator(gw: &Gateway, parts: &Parts, write: bool) -> Result<Operator, ApiError> {
    let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    identify(gw, parts, write, sent)
}

/// The client's address (none where the server gives none, as in tests through the router).
pub fn client_addr(parts: &Parts) -> Option<std::net::IpAddr> {
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
}

/// 429 for an address over its limit of failed authentications (`super::throttle`).
pub fn too_many(b: super::throttle::Blocked) -> ApiError {
    ApiError {
        quiet: !b.first,
        retry_after_s: Some(b.retry_after_s),
        ..ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_failures",
            "too many failed sign-ins from this address; wait and try again",
        )
    }
}

/// Whether `who` may try to authenticate now; counts a failure when `failed`.
pub fn throttled(gw: &Gateway, who: Option<std::net::IpAddr>) -> Result<(), ApiError> {
    match gw
        .admin
        .as_deref()
        .and_then(|a| a.throttle.check(who, gw.clock.unix_ms()))
    {
        Some(b) => Err(too_many(b)),
        None => Ok(()),
    }
}

/// Counts a failed authentication from `who`; the refusal to answer when the throttle has no
/// room to count it.
pub fn count_failure(gw: &Gateway, who: Option<std::net::IpAddr>) -> Option<ApiError> {
    let a = gw.admin.as_deref()?;
    (!a.throttle.failed(who, gw.clock.unix_ms())).then(|| {
        too_many(super::throttle::Blocked {
            retry_after_s: 60,
            first: true,
        })
    })
}

/// The operator behind a request, with the CSRF token as sent (the header's, or a console
/// form's field). A presented credential that fails counts against the client's address.
pub fn identify(gw: &Gateway, parts: &Parts, write: bool, csrf_sent: Option<&str>) -> Result<Operator, ApiError> {
    let who = client_addr(parts);
    throttled(gw, who)?;
    let presented = !matches!(extract::from_headers(&parts.headers), Found::None);
    let result = check(gw, parts, write, csrf_sent);
    if let Err(e) = &result
        && presented
        && e.status == StatusCode::UNAUTHORIZED
        && let Some(full) = count_failure(gw, who)
    {
        return Err(full);
    }
    result
}

fn check(gw: &Gateway, parts: &Parts, write: bool, csrf_sent: Option<&str>) -> Result<Operator, ApiError> {
    match extract::from_headers(&parts.headers) {
        Found::Malformed(why) => Err(unauthenticated(why)),
        Found::Credential(p) => {
            let secret = p.secret.expose();
            if extract::is_jwt(secret) {
                return Err(unauthenticated(
                    "the admin API takes an admin-role API key, not a token",
                ));
            }
            let k = gw
                .auth
                .keys
                .verify(secret, gw.clock.unix_s())
                .map_err(|_| unauthenticated("the API key is not valid (unknown, revoked or expired)"))?;
            if k.role != Role::Admin {
                return Err(not_admin());
            }
            Ok(Operator {
                principal: format!("key:{}", k.key_id),
                user_id: k.user_id,
                tenant: k.tenant,
                key_id: Some(k.key_id),
                via: "api_key",
            })
        }
        Found::None => {
            let o = gw
                .oauth
                .as_deref()
                .ok_or_else(|| unauthenticated("send an admin-role API key in X-API-Key"))?;
            let s = session::read(o, &parts.headers)
                .ok_or_else(|| unauthenticated("send an admin-role API key in X-API-Key, or sign in"))?;
            if s.subject.role != Role::Admin {
                return Err(not_admin());
            }
            if write {
                let expected = cookies::read(&parts.headers, &cookies::name(o, CSRF_COOKIE));
                let token_ok = matches!((expected.as_deref(), csrf_sent), (Some(a), Some(b)) if !a.is_empty() && cookies::same_bytes(a, b));
                if !cookies::from_our_pages(o, &parts.headers) || !token_ok {
                    return Err(ApiError::new(
                        StatusCode::FORBIDDEN,
                        "csrf",
                        "a change from a browser session needs the X-CSRF-Token of GET /admin/api/v1/session, sent from this gateway's pages",
                    ));
                }
            }
            Ok(Operator {
                principal: format!("session:{}", s.subject.user_id),
                user_id: s.subject.user_id,
                tenant: s.subject.tenant,
                key_id: s.subject.via.strip_prefix("key:").map(str::to_string),
                via: "session",
            })
        }
    }
}

/// `GET /admin/api/v1/session`: who the caller is; for a browser session, the CSRF token its
/// writes must carry (the cookie's, or a new one).
pub async fn session(State(gw): State<Arc<Gateway>>, req: Request<Body>) -> Response {
    let (parts, _) = req.into_parts();
    let action = super::Action::new("session", None);
    if let Err(e) = super::query(&parts, &[]) {
        return super::audited(&gw, &parts, None, action, Err(e)).await;
    }
    let operator = match operator(&gw, &parts, false).await {
        Ok(o) => o,
        Err(e) => return super::audited(&gw, &parts, None, action, Err(e)).await,
    };
    let mut body = serde_json::json!({
        "user_id": operator.user_id,
        "tenant": operator.tenant,
        "key_id": operator.key_id,
        "via": operator.via,
    });
    let mut cookie = None;
    if operator.via == "session"
        && let Some(o) = gw.oauth.as_deref()
    {
        let name = cookies::name(o, CSRF_COOKIE);
        let token = match cookies::read(&parts.headers, &name).filter(|t| t.len() >= 32) {
            Some(t) => t,
            None => {
                let t = o.secret("");
                cookie = cookies::set(o, &name, &t, CSRF_LIFE_S);
                t
            }
        };
        body["csrf_token"] = token.into();
    }
    let mut r = json(StatusCode::OK, body);
    if let Some(c) = cookie {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    super::audited(&gw, &parts, Some(&operator), action, Ok(r.into_response())).await
}
