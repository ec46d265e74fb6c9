//! Authorization server metadata (RFC 8414), served at `/.well-known/oauth-authorization-server`
//! and `/.well-known/openid-configuration`, in the root form and the path-insertion form an
//! issuer with a path needs (and the OIDC path-appended form); `/jwks` publishes the keys.

use super::OAuthServer;
use crate::Gateway;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;

impl OAuthServer {
    pub fn metadata(&self) -> serde_json::Value {
        let mut doc = json!({
            "issuer": self.settings.issuer,
            "authorization_endpoint": self.endpoint("/authorize"),
            "token_endpoint": self.endpoint("/token"),
            "jwks_uri": self.endpoint("/jwks"),
            "revocation_endpoint": self.endpoint("/revoke"),
            "introspection_endpoint": self.endpoint("/introspect"),
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post", "private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": super::assertion::ALGORITHMS.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>(),
            "revocation_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
            "scopes_supported": self.scopes_supported,
            "authorization_response_iss_parameter_supported": true,
            "client_id_metadata_document_supported": self.settings.cimd.enabled,
        });
        if self.settings.registration {
            doc["registration_endpoint"] = json!(self.endpoint("/register"));
        }
        doc
    }
}

/// Cached for a minute: a new signing key is published `signer::PUBLISH_BEFORE_USE_S` (3 min)
/// before it signs and each replica re-reads the ring every minute, so a cached key set (a
/// minute old at most) always holds the key a fresh token was signed with.
fn json_cached(body: serde_json::Value) -> Response {
    let mut r = axum::Json(body).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=60"));
    r
}

pub async fn authorization_server(State(gw): State<Arc<Gateway>>) -> Response {
    match &gw.oauth {
        Some(o) => json_cached(o.metadata()),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

pub async fn jwks(State(gw): State<Arc<Gateway>>) -> Response {
    match &gw.oauth {
        Some(o) => json_cached(serde_json::to_value(o.signer().jwks()).unwrap_or_default()),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The paths the metadata is served at for an issuer whose path is `base` (`""` or `/x`).
pub fn metadata_paths(base: &str) -> Vec<String> {
    let mut paths = vec![
        format!("/.well-known/oauth-authorization-server{base}"),
        format!("/.well-known/openid-configuration{base}"),
    ];
    if !base.is_empty() {
        paths.push(format!("{base}/.well-known/openid-configuration"));
        paths.push(format!("{base}/.well-known/oauth-authorization-server"));
    }
    paths
}
