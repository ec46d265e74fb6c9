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
use mcpgate_core::entropy::Entropy;
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

/// A client about to be recorded, as a registration request or an operator describes it.
pub struct NewClient {
    pub kind: ClientKind,
    pub name: Option<String>,
    pub redirect_uris: Vec<String>,
    /// Default `client_secret_basic` (RFC 7591).
    pub auth_method: Option<String>,
    /// Default authorization_code + refresh_token.
    pub grant_types: Option<Vec<String>>,
    /// Space-separated, as the metadata writes it.
    pub scope: Option<String>,
}

impl NewClient {
    /// Checks everything and makes the record, with its secret (shown once) when confidential.
    /// Errors are an RFC 7591 code and a message.
    pub fn build(
        self,
        entropy: &dyn Entropy,
        now: i64,
    ) -> Result<(ClientRecord, Option<String>), (&'static str, String)> {
        let bad = |m: &str| ("invalid_client_metadata", m.to_string());
        if self.redirect_uris.is_empty() || self.redirect_uris.len() > MAX_REDIRECTS {
            return Err((
                "invalid_redirect_uri",
                format!("give 1 to {MAX_REDIRECTS} redirect_uris"),
            ));
        }
        for r in &self.redirect_uris {
            check_redirect(r).map_err(|e| ("invalid_redirect_uri", e))?;
        }
        let method = self.auth_method.unwrap_or_else(|| "client_secret_basic".into());
        if !matches!(method.as_str(), "none" | "client_secret_basic" | "client_secret_post") {
            return Err(bad(
                "token_endpoint_auth_method must be none, client_secret_basic or client_secret_post",
            ));
        }
        let grant_types = self
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
            return Err(bad(
                "grant_types may be authorization_code, refresh_token and client_credentials",
            ));
        }
        // A client that registers itself acts for nobody: client_credentials (acting as itself,
        // with the permissions it holds) is for clients an operator vouches for.
        if self.kind != ClientKind::Configured && grant_types.iter().any(|g| g == "client_credentials") {
            return Err(bad(
                "client_credentials is only for clients an operator registers (mcpgate clients add)",
            ));
        }
        if method == "none" && grant_types.iter().any(|g| g == "client_credentials") {
            return Err(bad("client_credentials needs a confidential client (a secret)"));
        }
        let scope = match self.scope {
            Some(s) => {
                let v: Vec<String> = s.split(' ').filter(|x| !x.is_empty()).map(str::to_string).collect();
                if v.iter().any(|x| !super::settings::is_scope_token(x)) {
                    return Err(bad("scope is not a list of scope tokens"));
                }
                Some(v)
            }
            None => None,
        };
        let name = self
            .name
            .map(|n| super::page::display_name(&n))
            .filter(|n| !n.is_empty());
        let secret = (method != "none").then(|| format!("mcps_{}", entropy.hex_id(32)));
        let client = ClientRecord {
            client_id: format!("mcpgate-{}", entropy.hex_id(16)),
            kind: self.kind,
            name,
            secret_hash: secret.as_deref().map(hash_hex),
            auth_method: method,
            redirect_uris: self.redirect_uris,
            grant_types,
            scope,
            jwks: None,
            jwks_uri: None,
            created_at: now,
            expires_at: None,
        };
        Ok((client, secret))
    }
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
    if m.response_types.is_some_and(|r| r.iter().any(|t| t != "code")) {
        return Err(invalid_metadata("response_types may only be code"));
    }
    let now = o.clock.unix_s();
    let (client, secret) = NewClient {
        kind: ClientKind::Registered,
        name: m.client_name,
        redirect_uris: m.redirect_uris,
        auth_method: m.token_endpoint_auth_method,
        grant_types: m.grant_types,
        scope: m.scope,
    }
    .build(o.entropy.as_ref(), now)
    .map_err(|(code, msg)| OAuthError::new(code, msg))?;
    let (name, method, grant_types, scope) = (
        client.name.clone(),
        client.auth_method.clone(),
        client.grant_types.clone(),
        client.scope.clone(),
    );
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
