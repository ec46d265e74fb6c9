//! OAuth protected-resource metadata (RFC 9728): tells MCP clients which authorization servers
//! issue tokens for this gateway and which scopes it knows, and every challenge points at it
//! (`WWW-Authenticate: Bearer resource_metadata="…"`), as the MCP authorization spec requires.

use crate::Gateway;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

impl Gateway {
    /// The resource identifier clients put in `resource` (RFC 8707) and tokens carry in `aud`.
    pub fn resource(&self) -> String {
        format!("{}/mcp", self.config.public_url)
    }

    pub fn resource_metadata_url(&self) -> String {
        format!("{}/.well-known/oauth-protected-resource/mcp", self.config.public_url)
    }

    /// This gateway's own authorization server first (when on), then the configured ones, else
    /// the JWT issuer.
    fn authorization_servers(&self) -> Vec<String> {
        let mut s = self.config.auth.authorization_servers.clone();
        if let Some(o) = &self.oauth {
            s.retain(|x| x != &o.settings.issuer);
            s.insert(0, o.settings.issuer.clone());
            return s;
        }
        if s.is_empty()
            && let Some(iss) = self.auth.jwt.as_ref().and_then(|j| j.issuer())
        {
            s.push(iss.to_string());
        }
        s
    }

    /// The same list the authorization server publishes, when it is on (clients ask for what
    /// this says; two lists that disagree made the SDK ask for `offline_access` alone).
    fn scopes_supported(&self) -> Vec<String> {
        if let Some(o) = &self.oauth {
            return o.scopes_supported.clone();
        }
        let mut s = self.config.policy.scopes_supported();
        s.extend(self.config.auth.required_scopes.iter().cloned());
        s.sort();
        s.dedup();
        s
    }
}

pub async fn protected_resource(State(gw): State<Arc<Gateway>>) -> Response {
    let body = serde_json::json!({
        "resource": gw.resource(),
        "authorization_servers": gw.authorization_servers(),
        "scopes_supported": gw.scopes_supported(),
        "bearer_methods_supported": ["header"],
        "resource_name": "mcpgate",
    });
    let mut r = axum::Json(body).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=300"));
    r
}

/// Adds `resource_metadata` to every Bearer challenge the gateway sends: one place, so no 401
/// path can forget it.
pub async fn add_resource_metadata(State(gw): State<Arc<Gateway>>, mut resp: Response) -> Response {
    if !matches!(resp.status(), StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        return resp;
    }
    let Some(challenge) = resp
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
    else {
        return resp;
    };
    // Only Bearer challenges point at the resource's metadata (the token endpoint's Basic
    // challenge is about client credentials).
    if challenge.contains("resource_metadata=") || !challenge.starts_with("Bearer") {
        return resp;
    }
    let with = format!("{challenge}, resource_metadata=\"{}\"", gw.resource_metadata_url());
    if let Ok(v) = HeaderValue::from_str(&with) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}
