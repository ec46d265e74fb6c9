//! The web session (seed 004): once a person has signed in on the gateway's pages, the browser
//! holds a short-lived mcpgate JWT in an `HttpOnly`, `SameSite=Lax` cookie (`__Host-` and
//! `Secure` on https), renewed while in use. It lets the authorization server skip the sign-in
//! (and, with `oauth.consent = "remember"`, the consent page for a client already allowed), and
//! authenticates the gateway's own pages and APIs (`GET /auth/me` when the request carries no
//! credential header; `POST /auth/logout`).
//!
//! It is never a credential for `/mcp`: the `/mcp` chain reads no cookie, and the JWT is not an
//! access token — its `typ` is [`SESSION_TYP`] and its audience `{issuer}/auth/session`, both of
//! which the access-token verifier refuses. Each use checks the sign-in behind it again: a session
//! made with an API key ends when the key does, and carries the key's current permissions; one
//! made at a provider ends when that provider is no longer configured. However active, a session
//! ends `oauth.sign_in_max_age_s` after the sign-in (`auth_time`, kept across renewals).

use super::form::Form;
use super::{OAuthServer, SignIn, cookies, page};
use crate::Gateway;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mcpgate_core::principal::Role;
use mcpgate_store::oauth::Subject;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The `typ` of a web-session JWT.
pub const SESSION_TYP: &str = "mcpgate-session+jwt";
/// The session cookie (`__Host-` prefixed on https; see `cookies::name`).
pub const COOKIE: &str = "mcpgate_session";

#[derive(Serialize, Deserialize)]
struct Claims {
    iss: String,
    aud: String,
    sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tenant: Option<String>,
    role: String,
    #[serde(default)]
    permissions: Vec<String>,
    via: String,
    /// When the person signed in (kept across renewals): the session ends
    /// `oauth.sign_in_max_age_s` after it, however active.
    auth_time: i64,
    iat: i64,
    exp: i64,
}

/// A signed-in browser.
pub struct WebSession {
    pub subject: Subject,
    /// When the person signed in.
    pub auth_time: i64,
    pub issued_at: i64,
    pub expires_at: i64,
}

fn audience(o: &OAuthServer) -> String {
    o.endpoint("/auth/session")
}

/// The `Set-Cookie` that signs this browser in as `subject`, who has just signed in (none if
/// signing fails, logged).
pub fn issue(o: &OAuthServer, subject: &Subject) -> Option<HeaderValue> {
    issue_at(o, subject, o.clock.unix_s())
}

/// A session cookie for a sign-in at `auth_time`: it lives `oauth.session_ttl_s`, never past
/// `auth_time + oauth.sign_in_max_age_s`.
fn issue_at(o: &OAuthServer, subject: &Subject, auth_time: i64) -> Option<HeaderValue> {
    let now = o.clock.unix_s();
    let last = auth_time.saturating_add(i64::try_from(o.settings.sign_in_max_age.as_secs()).unwrap_or(i64::MAX));
    let ttl = o
        .settings
        .session_ttl
        .as_secs()
        .min(u64::try_from(last - now).unwrap_or(0));
    if ttl == 0 {
        return None;
    }
    let claims = Claims {
        iss: o.settings.issuer.clone(),
        aud: audience(o),
        sub: subject.user_id.clone(),
        tenant: subject.tenant.clone(),
        role: subject.role.as_str().to_string(),
        permissions: subject.permissions.clone(),
        via: subject.via.clone(),
        auth_time,
        iat: now,
        exp: now.saturating_add(i64::try_from(ttl).unwrap_or(3600)),
    };
    let value = serde_json::to_value(&claims).ok()?;
    match o.signer().sign_typed(SESSION_TYP, &value) {
        Ok(jwt) => cookies::set(o, &cookies::name(o, COOKIE), &jwt, ttl),
        Err(e) => {
            tracing::warn!(error = %e, "could not sign a web session");
            None
        }
    }
}

/// The `Set-Cookie` that signs this browser out.
pub fn clear(o: &OAuthServer) -> Option<HeaderValue> {
    cookies::set(o, &cookies::name(o, COOKIE), "", 0)
}

/// The browser's session, if it holds a valid one whose sign-in still stands.
pub fn read(o: &OAuthServer, headers: &HeaderMap) -> Option<WebSession> {
    let c: Claims = cookies::read_signed(o, headers, COOKIE, SESSION_TYP, &audience(o), &["sub"])?;
    let now = o.clock.unix_s();
    let max_age = i64::try_from(o.settings.sign_in_max_age.as_secs()).unwrap_or(i64::MAX);
    if c.exp <= now || c.iat > now + 60 || c.auth_time > c.iat || now >= c.auth_time.saturating_add(max_age) {
        return None;
    }
    let subject = match o.sign_in(&c.via) {
        SignIn::Key(k) => Subject {
            user_id: k.user_id,
            tenant: k.tenant,
            role: k.role,
            permissions: k.permissions,
            via: c.via,
        },
        SignIn::Ended => return None,
        SignIn::Other => Subject {
            user_id: c.sub,
            tenant: c.tenant,
            role: Role::parse(&c.role)?,
            permissions: c.permissions,
            via: c.via,
        },
    };
    Some(WebSession {
        subject,
        auth_time: c.auth_time,
        issued_at: c.iat,
        expires_at: c.exp,
    })
}

/// A fresh cookie when more than half the session's life has gone (it is in use).
pub fn renewal(o: &OAuthServer, s: &WebSession) -> Option<HeaderValue> {
    let now = o.clock.unix_s();
    (now - s.issued_at > (s.expires_at - s.issued_at) / 2)
        .then(|| issue_at(o, &s.subject, s.auth_time))
        .flatten()
}

fn json(status: StatusCode, body: serde_json::Value) -> Response {
    let mut r = (status, axum::Json(body)).into_response();
    super::no_store(&mut r);
    r
}

/// 401 for a browser whose session cookie is not (or no longer) valid.
pub fn not_signed_in() -> Response {
    json(
        StatusCode::UNAUTHORIZED,
        serde_json::json!({"error": "not_signed_in", "error_description": "this browser holds no valid session"}),
    )
}

/// `GET /auth/me` for a browser (a request with no credential header): who its session is
/// signed in as, `None` when it holds no valid session.
pub fn me(o: &OAuthServer, headers: &HeaderMap) -> Option<Response> {
    let s = read(o, headers)?;
    let kind = s.subject.via.split_once(':').map_or("", |(k, _)| k);
    let mut r = json(
        StatusCode::OK,
        serde_json::json!({
            "user_id": s.subject.user_id,
            "tenant": s.subject.tenant,
            "role": s.subject.role.as_str(),
            "permissions": s.subject.permissions,
            "auth_method": "session",
            "signed_in_with": kind,
            "expires_at": s.expires_at,
        }),
    );
    if let Some(c) = renewal(o, &s) {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    Some(r)
}

/// `POST /auth/logout`: ends this browser's session; back to `return_to` (a path on this
/// gateway) or a page saying so. Refused from other sites.
pub async fn logout(State(gw): State<Arc<Gateway>>, req: Request<Body>) -> Response {
    let Some(o) = gw.oauth.clone() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let (parts, body) = req.into_parts();
    if !cookies::from_our_pages(&o, &parts.headers) {
        return page::error(
            StatusCode::FORBIDDEN,
            "The sign-out request came from another site.",
            "Sign out from this gateway's own pages.",
        );
    }
    let bytes = match axum::body::to_bytes(body, super::form::MAX_FORM_BYTES).await {
        Ok(b) => b,
        Err(_) => return page::error(StatusCode::PAYLOAD_TOO_LARGE, "The request is too large.", "Try again."),
    };
    let form = match Form::parse(&bytes) {
        Ok(f) => f,
        Err(e) => {
            return page::error(
                StatusCode::BAD_REQUEST,
                &format!("The request is malformed: {e}."),
                "Try again.",
            );
        }
    };
    let mut r = match form.get("return_to").filter(|t| is_local_path(t)) {
        Some(to) => {
            let mut r = StatusCode::SEE_OTHER.into_response();
            if let Ok(v) = HeaderValue::from_str(to) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
        None if form.get("return_to").is_some() => {
            return page::error(
                StatusCode::BAD_REQUEST,
                "The address to return to is not on this gateway.",
                "Sign out again from this gateway's own pages.",
            );
        }
        None => page::render(
            StatusCode::OK,
            "Signed out",
            "<h1>Signed out</h1><div class=\"box\"><p>This browser is no longer signed in to this gateway.</p></div>",
        ),
    };
    if let Some(c) = clear(&o) {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    super::no_store(&mut r);
    r
}

/// A path on this gateway: `/…`, not `//host` or `/\host` (which browsers read as another
/// site), printable ASCII only.
pub fn is_local_path(p: &str) -> bool {
    p.starts_with('/')
        && !p.starts_with("//")
        && !p.starts_with("/\\")
        && p.len() <= 2048
        && p.bytes().all(|b| (0x21..0x7f).contains(&b) && b != b'\\')
}

#[cfg(test)]
mod tests {
    use super::is_local_path;

    #[test]
    fn only_paths_on_this_gateway_are_returned_to() {
        assert!(is_local_path("/authorize?client_id=x&state=y"));
        for bad in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "/a\\b",
            "/a b",
            "/a\nb",
            "",
            "javascript:alert(1)",
        ] {
            assert!(!is_local_path(bad), "{bad:?}");
        }
    }
}
