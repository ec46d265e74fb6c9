//! `/token` (authorization_code, refresh_token) and `/revoke` (RFC 7009).
//!
//! Codes are single use: a second exchange revokes the grant the first one made. Refresh tokens
//! rotate on every use; presenting one already replaced revokes the whole grant, except once
//! within `oauth.refresh_grace_s` of its use (a client racing itself). Access tokens are ES256
//! JWTs with `aud` = the MCP URL, lasting `oauth.access_token_ttl_s`; revoking a grant ends its
//! access tokens on every gateway at once when Redis carries the notice, else at their next read
//! of the revoked grants (`OAuthServer::watch_revocations`, about a second by default).

use super::form::Form;
use super::signer::ACCESS_TOKEN_TYP;
use super::{OAuthError, OAuthServer, client_auth, no_store, same_resource};
use crate::Gateway;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use mcpgate_core::keys::hash_hex;
use mcpgate_store::oauth::{ClientRecord, CodeTake, GrantRecord, Rotation};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::sync::Arc;

fn secs(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// Reads a form POST strictly.
async fn read_form(req: Request<Body>) -> Result<(axum::http::request::Parts, Form), OAuthError> {
    let (parts, body) = req.into_parts();
    let form_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
    if !form_type {
        return Err(OAuthError::new(
            "invalid_request",
            "send application/x-www-form-urlencoded",
        ));
    }
    let bytes = axum::body::to_bytes(body, super::form::MAX_FORM_BYTES)
        .await
        .map_err(|_| OAuthError::new("invalid_request", "the request body is too large"))?;
    let form = Form::parse(&bytes).map_err(|e| OAuthError::new("invalid_request", e.to_string()))?;
    Ok((parts, form))
}

/// A token response for `grant`: a fresh access token, and `refresh` when there is one.
fn issue(o: &OAuthServer, grant: &GrantRecord, refresh: Option<&str>) -> Result<Response, OAuthError> {
    let now = o.clock.unix_s();
    let ttl = secs(o.settings.access_token_ttl);
    let claims = json!({
        "iss": o.settings.issuer,
        "sub": grant.subject.user_id,
        "aud": grant.resource,
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
        "jti": o.entropy.hex_id(16),
        "client_id": grant.client_id,
        "scope": grant.scopes.join(" "),
        "gid": grant.grant_id,
        "tenant": grant.subject.tenant,
        "role": grant.subject.role.as_str(),
        // Only what was granted: the scopes (which the user holds), never everything the
        // signed-in key may do.
        "permissions": grant.scopes.iter().filter(|s| s.as_str() != "offline_access").collect::<Vec<_>>(),
        "via": grant.subject.via,
    });
    let token = o.signer().sign(&claims).map_err(|e| {
        tracing::error!(error = %e, "could not sign an access token");
        OAuthError::new("server_error", "could not issue a token")
    })?;
    let mut body = json!({
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": ttl,
        "scope": grant.scopes.join(" "),
    });
    if let Some(r) = refresh {
        body["refresh_token"] = json!(r);
    }
    let mut resp = (StatusCode::OK, axum::Json(body)).into_response();
    no_store(&mut resp);
    Ok(resp)
}

fn check_resource(f: &Form, grant_resource: &str) -> Result<(), OAuthError> {
    match f.get("resource") {
        Some(r) if !same_resource(r, grant_resource) => Err(OAuthError::new(
            "invalid_target",
            "resource differs from the one the grant is for",
        )),
        _ => Ok(()),
    }
}

/// RFC 7636 §4.1: 43 to 128 unreserved characters.
fn is_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

async fn revoke_grant(o: &OAuthServer, grant_id: &str, why: &str) {
    o.forget_grant(grant_id);
    match o.grants.revoke_grant(grant_id, o.clock.unix_s()).await {
        Ok(_) => {
            o.announce_revocation();
            tracing::warn!(grant_id, "{why}: the grant is revoked");
        }
        Err(e) => tracing::error!(error = %e, grant_id, "{why}, and the grant could not be revoked"),
    }
}

async fn by_code(o: &OAuthServer, client: &ClientRecord, f: &Form) -> Result<Response, OAuthError> {
    let (Some(code), Some(redirect_uri), Some(verifier)) =
        (f.get("code"), f.get("redirect_uri"), f.get("code_verifier"))
    else {
        return Err(OAuthError::new(
            "invalid_request",
            "code, redirect_uri and code_verifier are required",
        ));
    };
    let now = o.clock.unix_s();
    let rec = match o
        .grants
        .take_code(&hash_hex(code), now)
        .await
        .map_err(OAuthError::store)?
    {
        CodeTake::Fresh(rec) => rec,
        CodeTake::Reused(rec) => {
            revoke_grant(o, &rec.grant_id, "an authorization code was used twice").await;
            return Err(OAuthError::new(
                "invalid_grant",
                "the code was already used; what it issued is revoked",
            ));
        }
        CodeTake::Unknown => return Err(OAuthError::new("invalid_grant", "the code is unknown or expired")),
    };
    if rec.client_id != client.client_id {
        return Err(OAuthError::new(
            "invalid_grant",
            "the code was issued to another client",
        ));
    }
    if rec.redirect_uri != redirect_uri {
        return Err(OAuthError::new(
            "invalid_grant",
            "redirect_uri differs from the authorization request's",
        ));
    }
    if !is_verifier(verifier) || s256(verifier) != rec.code_challenge {
        return Err(OAuthError::new(
            "invalid_grant",
            "the code_verifier does not match the code_challenge",
        ));
    }
    check_resource(f, &rec.resource)?;
    // The key the user signed in with must still be valid (revoked or expired since the code was
    // issued: no grant), and the grant ends when the key does.
    let key_end = match o.sign_in(&rec.subject.via) {
        super::SignIn::Ended => {
            return Err(OAuthError::new(
                "invalid_grant",
                "the key used to sign in is no longer valid",
            ));
        }
        super::SignIn::Key(k) => k.expires_at,
        // A provider sign-in is good for `oauth.sign_in_max_age_s` from when it happened (the
        // person's last sign-in, recorded; not when a session made from it is used): then the
        // person signs in there again (and their rules are applied again).
        super::SignIn::Other if rec.subject.via.starts_with("provider:") => {
            let signed_in = match &o.users {
                Some(users) => users
                    .get_user(&rec.subject.user_id)
                    .await
                    .map_err(OAuthError::store)?
                    .map(|u| u.last_sign_in),
                None => None,
            };
            Some(
                signed_in
                    .unwrap_or(now)
                    .min(now)
                    .saturating_add(secs(o.settings.sign_in_max_age)),
            )
        }
        super::SignIn::Other => None,
    };
    let grant_end = (now + secs(o.settings.refresh_token_ttl)).min(key_end.unwrap_or(i64::MAX));
    if grant_end <= now {
        return Err(OAuthError::new(
            "invalid_grant",
            "the sign-in behind this code is too old: sign in again",
        ));
    }
    let grant = GrantRecord {
        grant_id: rec.grant_id,
        client_id: rec.client_id,
        subject: rec.subject,
        scopes: rec.scopes,
        resource: rec.resource,
        created_at: now,
        expires_at: grant_end,
        revoked_at: None,
    };
    let refresh = client
        .grant_types
        .iter()
        .any(|g| g == "refresh_token")
        .then(|| o.secret("mcpr_"));
    o.grants
        .create_grant(&grant, refresh.as_deref().map(hash_hex).as_deref(), grant.expires_at)
        .await
        .map_err(OAuthError::store)?;
    tracing::info!(client_id = %grant.client_id, user = %grant.subject.user_id, grant_id = %grant.grant_id, "tokens issued");
    issue(o, &grant, refresh.as_deref())
}

/// `client_credentials` (seed 002's token manager): a confidential client acting as itself. Its
/// scopes are at most those it registered; no refresh token (it asks again).
async fn by_client(o: &OAuthServer, client: &ClientRecord, f: &Form) -> Result<Response, OAuthError> {
    if client.kind != mcpgate_store::oauth::ClientKind::Configured {
        return Err(OAuthError::new(
            "unauthorized_client",
            "client_credentials is only for clients an operator registered",
        ));
    }
    if client.secret_hash.is_none() {
        return Err(OAuthError::new(
            "unauthorized_client",
            "client_credentials needs a confidential client",
        ));
    }
    let asked: Vec<String> = f
        .get("scope")
        .map(|s| s.split(' ').filter(|x| !x.is_empty()).map(str::to_string).collect())
        .unwrap_or_default();
    let held = client.scope.clone().unwrap_or_default();
    let scopes = super::grantable(&asked, &o.settings.default_scopes, &held, None);
    let resource = match f.get("resource") {
        Some(r) if !same_resource(r, &o.resource) => {
            return Err(OAuthError::new(
                "invalid_target",
                "this server issues tokens only for its own MCP URL",
            ));
        }
        _ => o.resource.clone(),
    };
    let now = o.clock.unix_s();
    let grant = GrantRecord {
        grant_id: o.entropy.hex_id(16),
        client_id: client.client_id.clone(),
        subject: mcpgate_store::oauth::Subject {
            user_id: client.client_id.clone(),
            tenant: None,
            role: mcpgate_core::principal::Role::User,
            permissions: held,
            via: format!("client:{}", client.client_id),
        },
        scopes,
        resource,
        created_at: now,
        expires_at: now + secs(o.settings.access_token_ttl),
        revoked_at: None,
    };
    o.grants
        .create_grant(&grant, None, 0)
        .await
        .map_err(OAuthError::store)?;
    issue(o, &grant, None)
}

async fn by_refresh(o: &OAuthServer, client: &ClientRecord, f: &Form) -> Result<Response, OAuthError> {
    let Some(old) = f.get("refresh_token") else {
        return Err(OAuthError::new("invalid_request", "refresh_token is required"));
    };
    let old_hash = hash_hex(old);
    let unknown = || OAuthError::new("invalid_grant", "the refresh token is unknown, expired or revoked");
    let Some(grant) = o.grants.grant_of_refresh(&old_hash).await.map_err(OAuthError::store)? else {
        return Err(unknown());
    };
    if grant.client_id != client.client_id {
        return Err(OAuthError::new(
            "invalid_grant",
            "the refresh token was issued to another client",
        ));
    }
    if matches!(o.sign_in(&grant.subject.via), super::SignIn::Ended) {
        revoke_grant(o, &grant.grant_id, "the key a grant was signed in with ended").await;
        return Err(OAuthError::new(
            "invalid_grant",
            "the key used to sign in is no longer valid",
        ));
    }
    check_resource(f, &grant.resource)?;
    // RFC 6749 §6: a refresh may ask for less than the grant (that access token carries only
    // it; the grant keeps the rest), never more.
    let asked: Option<Vec<String>> = f.get("scope").map(|scope| {
        let mut v: Vec<String> = scope.split(' ').filter(|s| !s.is_empty()).map(str::to_string).collect();
        v.sort();
        v.dedup();
        v
    });
    if asked
        .as_ref()
        .is_some_and(|a| a.iter().any(|s| !grant.scopes.contains(s)))
    {
        return Err(OAuthError::new(
            "invalid_scope",
            "a refresh cannot widen the grant's scopes",
        ));
    }
    let now = o.clock.unix_s();
    let new = o.secret("mcpr_");
    let until = (now + secs(o.settings.refresh_token_ttl)).min(grant.expires_at);
    match o
        .grants
        .rotate_refresh(&old_hash, &hash_hex(&new), until, now, secs(o.settings.refresh_grace))
        .await
        .map_err(OAuthError::store)?
    {
        Rotation::Rotated(mut g) => {
            if let Some(a) = asked.filter(|a| !a.is_empty()) {
                g.scopes = a;
            }
            issue(o, &g, Some(&new))
        }
        Rotation::Reused { grant_id } => {
            revoke_grant(o, &grant_id, "a replaced refresh token was presented again").await;
            Err(OAuthError::new(
                "invalid_grant",
                "the refresh token was already used; the grant is revoked",
            ))
        }
        Rotation::Ended { .. } | Rotation::Unknown => Err(unknown()),
    }
}

pub async fn token(State(gw): State<Arc<Gateway>>, req: Request<Body>) -> Response {
    let Some(o) = gw.oauth.clone() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let result = async {
        let (parts, f) = read_form(req).await?;
        let client = client_auth::authenticate(&o, &parts.headers, &f).await?;
        let grant_type = f.get("grant_type").unwrap_or("");
        if !client.grant_types.iter().any(|g| g == grant_type) {
            return Err(match grant_type {
                "authorization_code" | "refresh_token" | "client_credentials" => {
                    OAuthError::new("unauthorized_client", "this client may not use this grant type")
                }
                _ => OAuthError::new(
                    "unsupported_grant_type",
                    "use authorization_code, refresh_token or client_credentials",
                ),
            });
        }
        match grant_type {
            "authorization_code" => by_code(&o, &client, &f).await,
            "refresh_token" => by_refresh(&o, &client, &f).await,
            "client_credentials" => by_client(&o, &client, &f).await,
            _ => Err(OAuthError::new(
                "unsupported_grant_type",
                "use authorization_code, refresh_token or client_credentials",
            )),
        }
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// The grant an access token of ours belongs to, if it was issued to `client_id` (signature
/// checked; expiry not: an expired token may still be revoked, to no effect).
fn grant_of_access(o: &OAuthServer, token: &str, client_id: &str) -> Option<String> {
    let claims = claims_of_ours(o, token)?;
    (claims.get("client_id")?.as_str()? == client_id)
        .then(|| claims.get("gid")?.as_str().map(str::to_string))
        .flatten()
}

/// The claims of an access token this server signed (signature and issuer checked; expiry left
/// to the caller: an expired token may still be revoked, to no effect).
fn claims_of_ours(o: &OAuthServer, token: &str) -> Option<serde_json::Value> {
    let header = jsonwebtoken::decode_header(token).ok()?;
    // Our access tokens only: a web session (signed by the same keys) is not one.
    if header.typ.as_deref() != Some(ACCESS_TOKEN_TYP) {
        return None;
    }
    let signer = o.signer();
    let key = signer.verifying_key(header.kid.as_deref()?)?;
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    v.validate_exp = false;
    v.validate_aud = false;
    v.set_issuer(&[&o.settings.issuer]);
    Some(jsonwebtoken::decode::<serde_json::Value>(token, key, &v).ok()?.claims)
}

/// `POST /introspect` (RFC 7662), for resource servers: only confidential clients may ask (a
/// public client could otherwise test stolen tokens). Access tokens of ours are described while
/// valid; anything else — refresh tokens included — is `{"active": false}`.
pub async fn introspect(State(gw): State<Arc<Gateway>>, req: Request<Body>) -> Response {
    let Some(o) = gw.oauth.clone() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let result = async {
        let (parts, f) = read_form(req).await?;
        let client = client_auth::authenticate(&o, &parts.headers, &f).await?;
        // Resource servers an operator registered: a self-registered client could otherwise
        // learn about other clients' tokens.
        if client.secret_hash.is_none() || client.kind != mcpgate_store::oauth::ClientKind::Configured {
            return Err(OAuthError::new(
                "invalid_client",
                "introspection is for confidential clients an operator registered",
            ));
        }
        let Some(token) = f.get("token") else {
            return Err(OAuthError::new("invalid_request", "token is required"));
        };
        let body = match describe_access(&o, token).await {
            Some(v) => v,
            None => json!({"active": false}),
        };
        let mut r = (StatusCode::OK, axum::Json(body)).into_response();
        no_store(&mut r);
        Ok(r)
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// An access token of ours, valid now (signature, expiry, issuer, grant not revoked).
async fn describe_access(o: &OAuthServer, token: &str) -> Option<serde_json::Value> {
    let c = claims_of_ours(o, token)?;
    let now = o.clock.unix_s();
    if c.get("exp")?.as_i64()? <= now {
        return None;
    }
    let gid = c.get("gid")?.as_str()?;
    if o.is_revoked(gid) {
        return None;
    }
    let grant = o.grants.get_grant(gid).await.ok()??;
    if grant.revoked_at.is_some() {
        return None;
    }
    Some(json!({
        "active": true,
        "token_type": "Bearer",
        "scope": c.get("scope"),
        "client_id": c.get("client_id"),
        "sub": c.get("sub"),
        "aud": c.get("aud"),
        "iss": c.get("iss"),
        "exp": c.get("exp"),
        "iat": c.get("iat"),
        "jti": c.get("jti"),
    }))
}

/// `POST /revoke`: 200 whether or not the token was known (RFC 7009 §2.2), but only the client
/// a token was issued to can revoke it.
pub async fn revoke(State(gw): State<Arc<Gateway>>, req: Request<Body>) -> Response {
    let Some(o) = gw.oauth.clone() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let result = async {
        let (parts, f) = read_form(req).await?;
        let client = client_auth::authenticate(&o, &parts.headers, &f).await?;
        let Some(token) = f.get("token") else {
            return Err(OAuthError::new("invalid_request", "token is required"));
        };
        let grant_id = match o
            .grants
            .grant_of_refresh(&hash_hex(token))
            .await
            .map_err(OAuthError::store)?
        {
            Some(g) if g.client_id == client.client_id => Some(g.grant_id),
            Some(_) => None,
            None => grant_of_access(&o, token, &client.client_id),
        };
        if let Some(id) = grant_id {
            o.forget_grant(&id);
            o.grants
                .revoke_grant(&id, o.clock.unix_s())
                .await
                .map_err(OAuthError::store)?;
            o.announce_revocation();
            tracing::info!(grant_id = %id, client_id = %client.client_id, "grant revoked by its client");
        }
        let mut r = StatusCode::OK.into_response();
        no_store(&mut r);
        Ok(r)
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}
