//! `POST /register`: dynamic client registration (RFC 7591), on unless `oauth.registration =
//! false`. Public clients (`none`) get no secret; confidential ones get one, shown once and kept
//! hashed. Redirect URIs must be https, or http to a loopback address (RFC 8252); nothing else
//! (no custom schemes, no fragments, no userinfo). A registered client's name is its own claim:
//! consent marks it unverified.

use super::{OAuthError, OAuthServer, no_store};
use crate::Gateway;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use mcpgate_core::keys::hash_hex;
use mcpgate_store::oauth::{ClientKind, ClientRecord};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

const MAX_BODY: usize = 16 * 1024;
const MAX_REDIRECTS: usize = 10;

/// The fields this server reads; others are ignored (RFC 7591 §2), but these must have the
/// right types.
#[derive(Deserialize)]
struct Metadata {
    redirect_uris: Vec<String>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
    #[serde(default)]
    grant_types: Option<Vec<String>>,
    #[serde(default)]
    response_types: Option<Vec<String>>,
    #[serde(default)]
    client_name: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

fn invalid_metadata(msg: &str) -> OAuthError {
    OAuthError::new("invalid_client_metadata", msg.to_string())
}

pub fn check_redirect(uri: &str) -> Result<(), String> {
    let u = reqwest::Url::parse(uri).map_err(|_| format!("{uri:?} is not a URL"))?;
    if u.fragment().is_some() || !u.username().is_empty() || u.password().is_some() {
        return Err("redirect URIs may not carry a fragment or user info".into());
    }
    let loopback = matches!(u.host_str(), Some("127.0.0.1") | Some("[::1]") | Some("localhost"));
    match u.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err("redirect URIs must be https, or http to a loopback address".into()),
    }
}

async fn register_inner(o: &OAuthServer, req: Request<Body>) -> Result<Response, OAuthError> {
    let (parts, body) = req.into_parts();
    let json_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    if !json_type {
        return Err(invalid_metadata("send the client metadata as application/json"));
    }
    let bytes = axum::body::to_bytes(body, MAX_BODY)
        .await
        .map_err(|_| invalid_metadata("the metadata is larger than 16 KiB"))?;
    // Strict: duplicate keys anywhere refused, like every JSON the gateway reads.
    let strict = mcpgate_core::jsonrpc::canonical::canonicalize(&bytes)
        .map_err(|e| invalid_metadata(&format!("the metadata is not strict JSON: {e}")))?;
    let m: Metadata = serde_json::from_slice(&strict).map_err(|e| invalid_metadata(&format!("{e}")))?;
    if m.redirect_uris.is_empty() || m.redirect_uris.len() > MAX_REDIRECTS {
        return Err(OAuthError::new(
            "invalid_redirect_uri",
            format!("give 1 to {MAX_REDIRECTS} redirect_uris"),
        ));
    }
    for r in &m.redirect_uris {
        check_redirect(r).map_err(|e| OAuthError::new("invalid_redirect_uri", e))?;
    }
    let method = m
        .token_endpoint_auth_method
        .unwrap_or_else(|| "client_secret_basic".into());
    if !matches!(method.as_str(), "none" | "client_secret_basic" | "client_secret_post") {
        return Err(invalid_metadata(
            "token_endpoint_auth_method must be none, client_secret_basic or client_secret_post",
        ));
    }
    let grant_types = m
        .grant_types
        .unwrap_or_else(|| vec!["authorization_code".into(), "refresh_token".into()]);
    if grant_types.is_empty()
        || grant_types.iter().any(|g| {
            !matches!(
                g.as_str(),
                "authorization_code" | "refresh_token" | "client_credentials"
            )
        })
    {
        return Err(invalid_metadata(
            "grant_types may be authorization_code, refresh_token and client_credentials",
        ));
    }
    if method == "none" && grant_types.iter().any(|g| g == "client_credentials") {
        return Err(invalid_metadata(
            "client_credentials needs a confidential client (a secret)",
        ));
    }
    if m.response_types.is_some_and(|r| r.iter().any(|t| t != "code")) {
        return Err(invalid_metadata("response_types may only be code"));
    }
    let scope = match m.scope {
        Some(s) => {
            let v: Vec<String> = s.split(' ').filter(|x| !x.is_empty()).map(str::to_string).collect();
            if v.iter().any(|x| !super::settings::is_scope_token(x)) {
                return Err(invalid_metadata("scope is not a list of scope tokens"));
            }
            Some(v)
        }
        None => None,
    };
    let name = m
        .client_name
        .map(|n| crate::refusal::printable(&n, 100))
        .filter(|n| !n.is_empty());
    let now = o.clock.unix_s();
    let secret = (method != "none").then(|| o.secret("mcps_"));
    let client = ClientRecord {
        client_id: format!("mcpgate-{}", o.entropy.hex_id(16)),
        kind: ClientKind::Registered,
        name: name.clone(),
        secret_hash: secret.as_deref().map(hash_hex),
        auth_method: method.clone(),
        redirect_uris: m.redirect_uris.clone(),
        grant_types: grant_types.clone(),
        scope: scope.clone(),
        jwks: None,
        jwks_uri: None,
        created_at: now,
        expires_at: None,
    };
    o.clients.insert_client(&client).await.map_err(OAuthError::store)?;
    tracing::info!(client_id = %client.client_id, name = name.as_deref().unwrap_or(""), "client registered");
    let mut body = json!({
        "client_id": client.client_id,
        "client_id_issued_at": now,
        "redirect_uris": client.redirect_uris,
        "token_endpoint_auth_method": method,
        "grant_types": grant_types,
        "response_types": ["code"],
    });
    if let Some(n) = name {
        body["client_name"] = json!(n);
    }
    if let Some(s) = scope {
        body["scope"] = json!(s.join(" "));
    }
    if let Some(s) = secret {
        body["client_secret"] = json!(s);
        body["client_secret_expires_at"] = json!(0);
    }
    let mut r = (StatusCode::CREATED, axum::Json(body)).into_response();
    no_store(&mut r);
    Ok(r)
}

pub async fn register(State(gw): State<Arc<Gateway>>, req: Request<Body>) -> Response {
    match &gw.oauth {
        Some(o) if o.settings.registration => register_inner(o, req).await.unwrap_or_else(IntoResponse::into_response),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}
