//! Dynamic client registration (RFC 7591) of a public native client: no secret
//! (`token_endpoint_auth_method: none`), the code and refresh grants, and a loopback redirect.
//! The redirect is registered without a port (RFC 8252 §7.3: the server must accept any port on
//! a loopback redirect, as mcpgate does); a server that refuses that gets the exact URI of this
//! run's listener instead, and that port is then used every time.

use super::net;

/// The loopback redirect registered when the server takes any port.
pub(super) const PORTLESS_REDIRECT: &str = "http://127.0.0.1/callback";

/// Why registration failed.
#[derive(Debug)]
pub(super) enum RegisterError {
    /// The server refused what was asked (a 4xx other than 401/403): another redirect may do.
    Refused(String),
    /// Anything else (unreachable, a registration that needs an initial access token, no
    /// `client_id` in the answer).
    Failed(String),
}

impl RegisterError {
    pub fn message(&self) -> &str {
        match self {
            RegisterError::Refused(m) | RegisterError::Failed(m) => m,
        }
    }
}

/// Registers a client named `client_name` with `redirect_uri`; its `client_id`.
pub(super) async fn register(
    http: &reqwest::Client,
    endpoint: &str,
    client_name: &str,
    redirect_uri: &str,
) -> Result<String, RegisterError> {
    let body = serde_json::json!({
        "client_name": client_name,
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    });
    let a = net::post(http, endpoint, "application/json", body.to_string())
        .await
        .map_err(RegisterError::Failed)?;
    match a.status {
        200 | 201 => {}
        401 | 403 => {
            let (_, msg) = net::refusal("the registration endpoint", &a, &[]);
            return Err(RegisterError::Failed(format!(
                "{msg}: it takes registrations only with an initial access token; register a client there and pass its id (--client-id)"
            )));
        }
        400..=499 => {
            return Err(RegisterError::Refused(
                net::refusal("the registration endpoint", &a, &[]).1,
            ));
        }
        _ => {
            return Err(RegisterError::Failed(
                net::refusal("the registration endpoint", &a, &[]).1,
            ));
        }
    }
    let json = a.json().unwrap_or_default();
    let Some(client_id) = json.get("client_id").and_then(|v| v.as_str()).filter(|s| !s.is_empty()) else {
        return Err(RegisterError::Failed(
            "the registration endpoint's answer has no client_id".into(),
        ));
    };
    if json.get("client_secret").is_some() {
        // Asked for a public client; a secret given anyway is not kept (it would have to be stored).
        tracing::warn!(
            "the authorization server gave the registered client a secret although none was asked for; it is not kept"
        );
    }
    Ok(client_id.to_string())
}
