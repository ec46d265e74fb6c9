//! The cookies of the gateway's own pages (the consent form's CSRF token, the web session):
//! `__Host-` names with `Secure` when the issuer is https (plain names on an http loopback
//! issuer, where browsers refuse `Secure`), `HttpOnly`, `SameSite=Lax`, `Path=/`; read strictly.

use super::OAuthServer;
use axum::http::{HeaderMap, HeaderValue, header};

/// Whether the issuer is https (cookies then `Secure` and `__Host-`).
fn secure(o: &OAuthServer) -> bool {
    o.settings.issuer.starts_with("https://")
}

/// The cookie called `base` on this gateway: `__Host-<base>` on https.
pub fn name(o: &OAuthServer, base: &str) -> String {
    if secure(o) {
        format!("__Host-{base}")
    } else {
        base.to_string()
    }
}

/// A `Set-Cookie` value for `name` (from [`name`]); `max_age_s` 0 clears it.
pub fn set(o: &OAuthServer, name: &str, value: &str, max_age_s: u64) -> Option<HeaderValue> {
    let secure = if secure(o) { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_s}{secure}"
    ))
    .ok()
}

/// The value of the cookie `name`; none when absent, unreadable or sent twice (ambiguous: a
/// sibling site may have planted a second one).
pub fn read(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut found = None;
    for v in headers.get_all(header::COOKIE) {
        for part in v.to_str().ok()?.split(';') {
            if let Some((k, val)) = part.trim().split_once('=')
                && k == name
            {
                if found.is_some() {
                    return None;
                }
                found = Some(val.to_string());
            }
        }
    }
    found
}

/// The claims of the ES256 JWT of type `typ` that this gateway signed into the cookie `base`
/// for `audience` (issuer ours); its `exp` is checked on the gateway's clock. `required` names
/// the claims that must be present besides `exp`, `iss` and `aud`.
pub fn read_signed<T: serde::de::DeserializeOwned>(
    o: &OAuthServer,
    headers: &HeaderMap,
    base: &str,
    typ: &str,
    audience: &str,
    required: &[&str],
) -> Option<T> {
    let jwt = read(headers, &name(o, base))?;
    let header = jsonwebtoken::decode_header(&jwt).ok()?;
    if header.alg != jsonwebtoken::Algorithm::ES256 || header.typ.as_deref() != Some(typ) {
        return None;
    }
    let signer = o.signer();
    let key = signer.verifying_key(header.kid.as_deref()?)?;
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    // Expiry against the gateway's clock, below (the library reads the system's).
    v.validate_exp = false;
    v.leeway = 0;
    v.set_issuer(&[&o.settings.issuer]);
    v.set_audience(&[audience]);
    let mut needed = vec!["exp", "iss", "aud"];
    needed.extend_from_slice(required);
    v.set_required_spec_claims(&needed);
    let claims = jsonwebtoken::decode::<serde_json::Value>(&jwt, key, &v).ok()?.claims;
    let exp = claims.get("exp")?.as_i64()?;
    if exp <= o.clock.unix_s() {
        return None;
    }
    serde_json::from_value(claims).ok()
}

/// Whether `origin` (an `Origin` header) is the issuer's.
pub fn same_origin(o: &OAuthServer, origin: &str) -> bool {
    reqwest::Url::parse(&o.settings.issuer).is_ok_and(|u| u.origin().ascii_serialization() == origin)
}

/// Refuses a state-changing request another site sent: its `Origin` (when the browser sent one)
/// must be ours, and `Sec-Fetch-Site` (when sent) same-origin.
pub fn from_our_pages(o: &OAuthServer, headers: &HeaderMap) -> bool {
    let origin_ok = headers
        .get(header::ORIGIN)
        .is_none_or(|v| v.to_str().is_ok_and(|v| same_origin(o, v)));
    let site_ok = headers
        .get("sec-fetch-site")
        .is_none_or(|v| matches!(v.to_str(), Ok("same-origin" | "none")));
    origin_ok && site_ok
}

/// Equal in time that does not depend on where they differ.
pub fn same_bytes(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
