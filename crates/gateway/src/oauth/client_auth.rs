//! Who is calling the token and revocation endpoints: the client, authenticated the way it
//! registered (`none`, `client_secret_basic`, `client_secret_post`). One way per request; a
//! client presenting two, or a secret it has none of, is refused.

use super::form::Form;
use super::{OAuthError, OAuthServer};
use axum::http::{HeaderMap, header};
use base64::Engine;
use mcpgate_core::keys::hash_hex;
use mcpgate_store::oauth::ClientRecord;

/// The client id and secret from `Authorization: Basic` (RFC 6749 §2.3.1: each form-encoded).
fn basic(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(v) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(OAuthError::new("invalid_request", "more than one Authorization header"));
    }
    let v = v
        .to_str()
        .map_err(|_| OAuthError::new("invalid_request", "the Authorization header is not text"))?;
    let Some((scheme, rest)) = v.split_once(' ') else {
        return Err(OAuthError::new(
            "invalid_request",
            "the Authorization header is malformed",
        ));
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::new(
            "invalid_request",
            "only Basic client authentication is read from Authorization",
        ));
    }
    let bad = || {
        let mut e = OAuthError::new("invalid_client", "the Basic credentials are malformed");
        e.basic_challenge = true;
        e
    };
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .map_err(|_| bad())?;
    let text = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = text.split_once(':').ok_or_else(bad)?;
    // Each part form-decoded on its own (`+` is a space, then %XX); anything that does not decode
    // cleanly is refused, never read as something shorter.
    let undo = |s: &str| -> Option<String> {
        let spaced: Vec<u8> = s.bytes().map(|b| if b == b'+' { b' ' } else { b }).collect();
        let bytes: Vec<u8> = percent_encoding::percent_decode(&spaced).collect();
        let text = String::from_utf8(bytes).ok()?;
        (!text.is_empty() && !text.chars().any(char::is_control)).then_some(text)
    };
    match (undo(id), undo(secret)) {
        (Some(id), Some(secret)) => Ok(Some((id, secret))),
        _ => Err(bad()),
    }
}

fn same_hash(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The calling client, authenticated.
pub async fn authenticate(o: &OAuthServer, headers: &HeaderMap, f: &Form) -> Result<ClientRecord, OAuthError> {
    let basic = basic(headers)?;
    let used_basic = basic.is_some();
    let refuse = |msg: &str| OAuthError::new("invalid_client", msg.to_string());
    if f.has("client_assertion") || f.has("client_assertion_type") {
        if used_basic || f.has("client_secret") {
            return Err(OAuthError::new(
                "invalid_request",
                "authenticate the client one way, not two",
            ));
        }
        if f.get("client_assertion_type") != Some(super::assertion::ASSERTION_TYPE) {
            return Err(refuse("client_assertion_type must be the JWT bearer type"));
        }
        let assertion = f.get("client_assertion").unwrap_or("");
        return match super::assertion::verify(o, assertion, f.get("client_id")).await {
            Ok(c) => Ok(c),
            Err(why) => {
                tracing::info!(reason = %why, "client assertion refused");
                Err(refuse("the client assertion was not accepted"))
            }
        };
    }
    let (client_id, secret, method) = match (basic, f.get("client_secret")) {
        (Some(_), Some(_)) => {
            return Err(OAuthError::new(
                "invalid_request",
                "send the client secret one way, not two",
            ));
        }
        (Some((id, secret)), None) => {
            if f.get("client_id").is_some_and(|fid| fid != id) {
                return Err(OAuthError::new(
                    "invalid_request",
                    "client_id differs from the Basic credentials",
                ));
            }
            (id, Some(secret), "client_secret_basic")
        }
        (None, Some(secret)) => (
            f.get("client_id")
                .ok_or_else(|| refuse("client_id is missing"))?
                .to_string(),
            Some(secret.to_string()),
            "client_secret_post",
        ),
        (None, None) => (
            f.get("client_id")
                .ok_or_else(|| refuse("client_id is missing"))?
                .to_string(),
            None,
            "none",
        ),
    };
    let client = match o.client(&client_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return Err(refuse("unknown client")),
        Err(super::ClientLookup::Document(why)) => {
            tracing::info!(reason = %why, "token: client metadata document refused");
            return Err(refuse("the client's metadata document could not be used"));
        }
        Err(super::ClientLookup::Store(e)) => return Err(OAuthError::store(e)),
    };
    if client.auth_method != method {
        return Err(refuse(&format!(
            "this client authenticates with {}, not {method}",
            client.auth_method
        )));
    }
    if let Some(secret) = secret {
        let ok = client
            .secret_hash
            .as_deref()
            .is_some_and(|h| same_hash(h, &hash_hex(&secret)));
        if !ok {
            return Err(refuse("the client secret is wrong"));
        }
    }
    Ok(client)
}
