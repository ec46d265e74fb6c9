//! The token endpoint (RFC 6749 §4.1.3 and §6, with RFC 7636's `code_verifier` and RFC 8707's
//! `resource`): the code exchanged for tokens, and a refresh token for new ones. Public client
//! (`token_endpoint_auth_method: none`): `client_id` in the form, no secret.

use super::net;
use super::pkce::{Code, Verifier};
use std::fmt;

/// Tokens the endpoint granted. `Debug` shows none.
pub(super) struct Granted {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_in: Option<u64>,
    pub scope: Option<String>,
}

impl fmt::Debug for Granted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Granted")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// Why the endpoint gave no tokens.
#[derive(Debug)]
pub(super) enum TokenError {
    /// It answered with an error: the RFC 6749 code (`invalid_grant`: the code or refresh token
    /// is no longer good; `invalid_client`: the client is unknown there) and a one-line account.
    Refused { code: Option<String>, message: String },
    /// No usable answer (unreachable, not JSON, no access token).
    Failed(String),
}

impl TokenError {
    pub fn code(&self) -> Option<&str> {
        match self {
            TokenError::Refused { code, .. } => code.as_deref(),
            TokenError::Failed(_) => None,
        }
    }
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::Refused { message, .. } | TokenError::Failed(message) => f.write_str(message),
        }
    }
}

/// The authorization code exchanged (both the code and the verifier are spent here).
pub(super) async fn exchange(
    http: &reqwest::Client,
    endpoint: &str,
    code: Code,
    verifier: Verifier,
    redirect_uri: &str,
    client_id: &str,
    resource: &str,
) -> Result<Granted, TokenError> {
    let code = code.into_secret();
    let verifier = verifier.into_secret();
    let body = net::form(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", redirect_uri),
        ("code_verifier", &verifier),
        ("client_id", client_id),
        ("resource", resource),
    ]);
    call(http, endpoint, body, &[&code, &verifier]).await
}

/// New tokens for a refresh token (the scope is left out: the grant's own).
pub(super) async fn refresh(
    http: &reqwest::Client,
    endpoint: &str,
    refresh_token: &str,
    client_id: &str,
    resource: &str,
) -> Result<Granted, TokenError> {
    let body = net::form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", client_id),
        ("resource", resource),
    ]);
    call(http, endpoint, body, &[refresh_token]).await
}

async fn call(http: &reqwest::Client, endpoint: &str, body: String, secrets: &[&str]) -> Result<Granted, TokenError> {
    let a = net::post(http, endpoint, "application/x-www-form-urlencoded", body)
        .await
        .map_err(|e| TokenError::Failed(net::clean(&e, secrets)))?;
    if !(200..300).contains(&a.status) {
        let (code, message) = net::refusal("the token endpoint", &a, secrets);
        return Err(TokenError::Refused { code, message });
    }
    read_granted(&a.json(), secrets)
}

fn read_granted(json: &Option<serde_json::Value>, secrets: &[&str]) -> Result<Granted, TokenError> {
    let Some(json) = json else {
        return Err(TokenError::Failed(
            "the token endpoint answered, but not with JSON".into(),
        ));
    };
    let s = |k: &str| json.get(k).and_then(|v| v.as_str()).filter(|s| !s.is_empty());
    let Some(access) = s("access_token") else {
        return Err(TokenError::Failed(
            "the token endpoint's answer has no access_token".into(),
        ));
    };
    if let Some(kind) = s("token_type")
        && !kind.eq_ignore_ascii_case("bearer")
    {
        return Err(TokenError::Failed(format!(
            "the token endpoint gave a {} token; only Bearer tokens are supported",
            net::clean(kind, secrets)
        )));
    }
    // Some servers send the number as a string.
    let expires_in = match json.get("expires_in") {
        Some(serde_json::Value::Number(n)) => n.as_u64().or_else(|| n.as_f64().map(|f| f.max(0.0) as u64)),
        Some(serde_json::Value::String(v)) => v.trim().parse().ok(),
        _ => None,
    };
    Ok(Granted {
        access_token: access.to_string(),
        refresh_token: s("refresh_token").map(str::to_string),
        expires_in,
        scope: s("scope").map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn answers() {
        let j = serde_json::json!({"access_token":"AT-SECRET","token_type":"Bearer","expires_in":"30","refresh_token":"RT-SECRET","scope":"a b"});
        let g = read_granted(&Some(j), &[]).unwrap();
        assert_eq!(
            (g.expires_in, g.refresh_token.as_deref(), g.scope.as_deref()),
            (Some(30), Some("RT-SECRET"), Some("a b"))
        );
        let shown = format!("{g:?}");
        assert!(!shown.contains("AT-SECRET") && !shown.contains("RT-SECRET"), "{shown}");
        assert!(read_granted(&None, &[]).is_err());
        let dpop = serde_json::json!({"access_token":"at","token_type":"DPoP"});
        assert!(read_granted(&Some(dpop), &[]).is_err());
    }
}
