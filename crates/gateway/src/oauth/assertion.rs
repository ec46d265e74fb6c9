//! `private_key_jwt` client authentication (RFC 7523 §2.2, OpenID Connect Core §9): the client
//! signs a short JWT with its own key; ChatGPT does this with the keys its metadata document
//! publishes.
//!
//! Checks: an asymmetric algorithm only (never `none` or HMAC); `iss` = `sub` = the client id
//! (and the form's `client_id`, when given); `aud` names this token endpoint or the issuer;
//! `exp` required and at most five minutes ahead; `jti` required and used once (the store's
//! replay set, so every replica refuses a replay); the key from the client's `jwks`, or its
//! `jwks_uri` fetched through the SSRF guard and cached.

use super::OAuthServer;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use mcpgate_store::oauth::ClientRecord;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const MAX_LIFETIME_S: i64 = 300;
const LEEWAY_S: u64 = 30;
/// A fetched JWKS is kept this long at most (less when its `Cache-Control` says so).
const JWKS_CACHE: Duration = Duration::from_secs(300);

/// The algorithms a client may sign an assertion with: the asymmetric ones the JWT verifier takes.
pub const ALGORITHMS: [Algorithm; 9] = crate::auth::jwt::ASYMMETRIC_ALGS;

/// Fetched key sets by URL: (until, keys).
#[derive(Default)]
pub struct JwksCache(Mutex<HashMap<String, (i64, JwkSet)>>);

#[derive(Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    exp: i64,
    jti: String,
    /// One audience, ours: an array could carry another server's name beside ours, so an
    /// assertion meant for one server could be replayed at another.
    aud: serde_json::Value,
}

fn unverified_issuer(assertion: &str) -> Option<String> {
    use base64::Engine;
    let payload = assertion.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get("iss")?.as_str().map(str::to_string)
}

async fn keys_of(o: &OAuthServer, client: &ClientRecord, refresh: bool) -> Result<JwkSet, String> {
    if let Some(inline) = &client.jwks {
        return serde_json::from_str(inline).map_err(|_| "the client's jwks is not a JWK set".to_string());
    }
    let Some(uri) = &client.jwks_uri else {
        return Err("the client publishes no keys (jwks or jwks_uri)".into());
    };
    let now = o.clock.unix_s();
    if !refresh
        && let Some((until, set)) = o.jwks_cache.0.lock().unwrap_or_else(|e| e.into_inner()).get(uri)
        && *until > now
    {
        return Ok(set.clone());
    }
    let fetched = crate::guarded_fetch::fetch(uri, &o.settings.cimd.fetch)
        .await
        .map_err(|e| format!("fetching the client's jwks_uri failed: {e}"))?;
    let set: JwkSet =
        serde_json::from_slice(&fetched.body).map_err(|_| "the client's jwks_uri is not a JWK set".to_string())?;
    let life = fetched.max_age.unwrap_or(JWKS_CACHE).min(JWKS_CACHE);
    o.jwks_cache.0.lock().unwrap_or_else(|e| e.into_inner()).insert(
        uri.clone(),
        (now + i64::try_from(life.as_secs()).unwrap_or(300), set.clone()),
    );
    Ok(set)
}

/// The client the assertion authenticates, or why not (for the log; the caller answers
/// `invalid_client`).
pub async fn verify(o: &OAuthServer, assertion: &str, form_client_id: Option<&str>) -> Result<ClientRecord, String> {
    if assertion.len() > 8 * 1024 {
        return Err("the client assertion is too large".into());
    }
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| "the client assertion is not a JWT".to_string())?;
    if !ALGORITHMS.contains(&header.alg) {
        return Err(format!(
            "algorithm {:?} is not accepted for client assertions",
            header.alg
        ));
    }
    let client_id = unverified_issuer(assertion).ok_or("the client assertion has no iss")?;
    if form_client_id.is_some_and(|f| f != client_id) {
        return Err("client_id differs from the assertion's issuer".into());
    }
    let client = match o.client(&client_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return Err("unknown client".into()),
        Err(super::ClientLookup::Document(why)) => return Err(why),
        Err(super::ClientLookup::Store(e)) => return Err(format!("store: {e}")),
    };
    if client.auth_method != "private_key_jwt" {
        return Err(format!(
            "this client authenticates with {}, not private_key_jwt",
            client.auth_method
        ));
    }
    let mut set = keys_of(o, &client, false).await?;
    let find = |set: &JwkSet| match &header.kid {
        Some(kid) => set.find(kid).cloned(),
        None if set.keys.len() == 1 => set.keys.first().cloned(),
        None => None,
    };
    let jwk = match find(&set) {
        Some(k) => k,
        None if client.jwks.is_none() => {
            // A key rotated since the cached copy: fetch once more.
            set = keys_of(o, &client, true).await?;
            find(&set).ok_or("no key of the client matches the assertion's kid")?
        }
        None => return Err("no key of the client matches the assertion's kid".into()),
    };
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| "the client's key is unusable".to_string())?;
    let mut v = Validation::new(header.alg);
    v.leeway = LEEWAY_S;
    v.validate_nbf = true;
    v.set_issuer(&[&client_id]);
    v.set_audience(&[o.endpoint("/token"), o.settings.issuer.clone()]);
    v.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    let claims = jsonwebtoken::decode::<Claims>(assertion, &key, &v)
        .map_err(|e| format!("the client assertion is not valid: {e}"))?
        .claims;
    if !claims.aud.is_string() {
        return Err("the assertion's aud must be one string: this server's token endpoint or issuer".into());
    }
    if claims.sub != client_id || claims.iss != client_id {
        return Err("the assertion's sub and iss must both be the client id".into());
    }
    let now = o.clock.unix_s();
    if claims.exp > now + MAX_LIFETIME_S + i64::try_from(LEEWAY_S).unwrap_or(30) {
        return Err("the client assertion lives longer than 5 minutes".into());
    }
    if claims.jti.is_empty() || claims.jti.len() > 256 {
        return Err("the client assertion needs a jti".into());
    }
    let replay_key = format!("private_key_jwt\0{client_id}\0{}", claims.jti);
    let first = o
        .replay
        .claim(
            replay_key.as_bytes(),
            claims.exp + i64::try_from(LEEWAY_S).unwrap_or(30),
            now,
        )
        .await
        .map_err(|e| format!("replay store: {e}"))?;
    if !first {
        return Err("the client assertion was already used (jti replayed)".into());
    }
    Ok(client)
}
