//! JWT bearer tokens (seeds 002, 003): HS256/384/512 with a shared secret (`JWT_SECRET`), and
//! RS*/PS*/ES*/EdDSA with the issuer's keys from a JWKS URL or OIDC discovery ([`super::jwks`]).
//! Sits in the authentication chain for `Authorization: Bearer` values that look like a JWT.
//!
//! Checks, in order: size and shape; the header's `alg` against the configured allow-list (never
//! `none`); the key — the HMAC secret for HS*, otherwise a JWKS key whose type and `alg` allow
//! this algorithm; the signature; then `exp` (required), `nbf`, `iat` (each with leeway), `iss`
//! (exact) and `aud` (one of the accepted audiences). Claims are mapped to a [`Principal`] by
//! configurable dotted paths ([`super::claims`]). A verified token is cached by its SHA-256
//! until its `exp` (never later), so a warm request costs a hash and a map lookup instead of a
//! signature check.
//!
//! Time is the caller's `now` (Unix seconds). Neither the token nor the secret is ever logged,
//! returned or put in an error.

use super::cache::TtlCache;
use super::fetch::check_url;
use super::jwks::JwksCache;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey, Header, Validation};
use mcpgate_core::keys::hash_hex;
use mcpgate_core::principal::{AuthMethod, Principal};
use serde::Deserialize;
use serde_json::Value;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

mod config;

pub use config::{JwtConfig, RawJwt};

// The claim mapping is its own module (shared with introspection); these keep the paths that
// introspection and the public API name them by.
pub(crate) use super::claims::ClaimMap;
pub use super::claims::DEFAULT_UPSTREAM_CREDENTIAL_CLAIMS;

pub const DEFAULT_LEEWAY_S: u64 = 30;
pub const MAX_LEEWAY_S: u64 = 300;
pub const DEFAULT_MIN_REFRESH_S: u64 = 30;
/// RFC 7518 §3.2: an HMAC key at least as long as the hash output.
pub const MIN_SECRET_BYTES: usize = 32;
/// Longer bearer values are refused before any parsing.
pub(crate) const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Verified tokens remembered; when full, expired entries go, then everything.
const MAX_CACHED: usize = 10_000;
/// Even a long-lived token is re-verified this often, so a key withdrawn from the JWKS stops
/// working within this bound.
const MAX_CACHE_AGE_S: i64 = 600;
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);

pub use super::token_error::TokenError;

const HMAC_ALGS: [Algorithm; 3] = [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];
pub(crate) const ASYMMETRIC_ALGS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

pub struct JwtVerifier {
    cfg: JwtConfig,
    hmac: Option<DecodingKey>,
    jwks: Option<Arc<JwksCache>>,
    cache: TtlCache<Principal>,
}

#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    kid: Option<String>,
    crit: Option<Value>,
}

/// Pins jsonwebtoken's process-wide crypto provider to aws-lc. With exactly one backend feature
/// this is what it picks anyway; should another crate ever enable a second backend, this keeps
/// verification from panicking on first use (FIELD-NOTES).
fn pin_crypto_provider() {
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
}

impl JwtVerifier {
    pub fn new(cfg: JwtConfig) -> Result<Self, String> {
        pin_crypto_provider();
        let hmac = cfg
            .secret
            .as_ref()
            .map(|s| DecodingKey::from_secret(s.expose().as_bytes()));
        let jwks = match &cfg.source {
            None => None,
            Some(source) => {
                let client = reqwest::Client::builder()
                    .timeout(HTTP_TIMEOUT)
                    .connect_timeout(Duration::from_secs(3))
                    .user_agent(concat!("mcpgate/", env!("CARGO_PKG_VERSION")))
                    .redirect(reqwest::redirect::Policy::custom(|attempt| {
                        // A few redirects, never to a plain-http non-loopback URL.
                        if attempt.previous().len() >= 3 || check_url("redirect", attempt.url().as_str()).is_err() {
                            attempt.stop()
                        } else {
                            attempt.follow()
                        }
                    }))
                    .build()
                    .map_err(|e| format!("cannot build the JWKS HTTP client: {e}"))?;
                let asymmetric = cfg
                    .algorithms
                    .iter()
                    .copied()
                    .filter(|a| a.family() != AlgorithmFamily::Hmac)
                    .collect();
                Some(Arc::new(JwksCache::new(
                    source.clone(),
                    client,
                    asymmetric,
                    cfg.min_refresh_s,
                )))
            }
        };
        Ok(JwtVerifier {
            cfg,
            hmac,
            jwks,
            cache: TtlCache::new(MAX_CACHED),
        })
    }

    /// Three base64url segments with a JSON-object header: cheap, decides which authenticator
    /// gets a bearer value, proves nothing.
    pub fn looks_like_jwt(token: &str) -> bool {
        let b64url = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        let mut parts = token.split('.');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(h), Some(p), Some(s), None) => {
                token.len() <= MAX_TOKEN_BYTES
                    && h.starts_with("eyJ")
                    && !p.is_empty()
                    && b64url(h)
                    && b64url(p)
                    && b64url(s)
            }
            _ => false,
        }
    }

    /// The configured issuer, for protected-resource metadata.
    pub fn issuer(&self) -> Option<&str> {
        self.cfg.issuer()
    }

    /// Fetches the issuer's keys now (start-up, `config check`); verification works without it.
    pub async fn prefetch(&self, now_unix: i64) -> Result<(), String> {
        match &self.jwks {
            None => Ok(()),
            Some(j) => j.refresh(now_unix, 0).await,
        }
    }

    /// JWKS fetch attempts so far (metrics).
    pub fn jwks_fetch_count(&self) -> u64 {
        self.jwks.as_ref().map_or(0, |j| j.fetch_count())
    }

    pub async fn verify(&self, token: &str, now_unix: i64) -> Result<Principal, TokenError> {
        if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::Invalid("malformed"));
        }
        let hash = hash_hex(token);
        if let Some(principal) = self.cache.get(&hash, now_unix) {
            return Ok(principal);
        }
        // A refusal is logged once, by the chain (auth/mod.rs `log_refusal`).
        let (principal, exp) = self.verify_uncached(token, now_unix).await?;
        // Never past `exp`, even though the uncached path grants leeway.
        let until = exp.min(now_unix.saturating_add(MAX_CACHE_AGE_S));
        self.cache.insert(hash, principal.clone(), until, now_unix);
        Ok(principal)
    }

    async fn verify_uncached(&self, token: &str, now: i64) -> Result<(Principal, i64), TokenError> {
        let header = parse_header(token)?;
        let alg = Algorithm::from_str(&header.alg).map_err(|_| TokenError::Invalid("alg_not_allowed"))?;
        if !self.cfg.algorithms.contains(&alg) {
            return Err(TokenError::Invalid("alg_not_allowed"));
        }
        let claims = if alg.family() == AlgorithmFamily::Hmac {
            // The HMAC secret is the only key an HS* token is ever checked with.
            let key = self.hmac.as_ref().ok_or(TokenError::Invalid("alg_not_allowed"))?;
            decode(token, key, alg)?
        } else {
            let jwks = self.jwks.as_ref().ok_or(TokenError::Invalid("alg_not_allowed"))?;
            let keys = jwks.keys_for(header.kid.as_deref(), alg, now).await?;
            let mut outcome = Err(TokenError::Invalid("bad_signature"));
            for k in keys {
                outcome = decode(token, &k.key, alg);
                if outcome.is_ok() {
                    break;
                }
            }
            outcome?
        };
        let exp = self.check_claims(&claims, now)?;
        let principal = self.cfg.claims.principal(&claims, AuthMethod::Jwt, "jwt", Some(exp))?;
        Ok((principal, exp))
    }

    /// Returns `exp`.
    fn check_claims(&self, claims: &Value, now: i64) -> Result<i64, TokenError> {
        let leeway = self.cfg.leeway;
        let exp = numeric(claims, "exp")?.ok_or(TokenError::Invalid("missing_exp"))?;
        if now >= exp.saturating_add(leeway) {
            return Err(TokenError::Expired);
        }
        if numeric(claims, "nbf")?.is_some_and(|nbf| nbf > now.saturating_add(leeway)) {
            return Err(TokenError::Invalid("not_yet_valid"));
        }
        if numeric(claims, "iat")?.is_some_and(|iat| iat > now.saturating_add(leeway)) {
            return Err(TokenError::Invalid("iat_in_future"));
        }
        if let Some(iss) = &self.cfg.issuer
            && claims.get("iss").and_then(Value::as_str) != Some(iss.as_str())
        {
            return Err(TokenError::Invalid("wrong_issuer"));
        }
        if !self.cfg.audience.is_empty() {
            let accepted = |a: &Value| a.as_str().is_some_and(|a| self.cfg.audience.iter().any(|x| x == a));
            let ok = match claims.get("aud") {
                Some(Value::Array(list)) => list.iter().any(accepted),
                Some(a) => accepted(a),
                None => false,
            };
            if !ok {
                return Err(TokenError::Invalid("wrong_audience"));
            }
        }
        Ok(exp)
    }
}

fn parse_header(token: &str) -> Result<RawHeader, TokenError> {
    let malformed = TokenError::Invalid("malformed");
    let (h, rest) = token.split_once('.').ok_or(malformed)?;
    if rest.bytes().filter(|b| *b == b'.').count() != 1 {
        return Err(malformed);
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(h)
        .map_err(|_| malformed)?;
    let header: RawHeader = serde_json::from_slice(&bytes).map_err(|_| malformed)?;
    // RFC 7515 §4.1.11: extensions marked critical must be understood; this verifier knows none.
    if header.crit.is_some() {
        return Err(TokenError::Invalid("unsupported_crit"));
    }
    Ok(header)
}

/// Signature and shape only: the time, issuer and audience checks are ours, done with the
/// caller's `now`.
fn decode(token: &str, key: &DecodingKey, alg: Algorithm) -> Result<Value, TokenError> {
    let mut v = Validation::new(alg);
    v.required_spec_claims.clear();
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    let claims = jsonwebtoken::decode::<Value>(token, key, &v)
        .map_err(|e| match e.kind() {
            ErrorKind::InvalidSignature => TokenError::Invalid("bad_signature"),
            ErrorKind::InvalidAlgorithm
            | ErrorKind::InvalidAlgorithmName
            | ErrorKind::InvalidKeyFormat
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidEddsaKey => TokenError::Invalid("alg_key_mismatch"),
            _ => TokenError::Invalid("malformed"),
        })?
        .claims;
    if !claims.is_object() {
        return Err(TokenError::Invalid("malformed"));
    }
    Ok(claims)
}

/// A NumericDate claim: absent, or a number (fractions dropped); anything else is malformed.
fn numeric(claims: &Value, name: &str) -> Result<Option<i64>, TokenError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f.floor() as i64))
            .map(Some)
            .ok_or(TokenError::Invalid("malformed")),
        Some(_) => Err(TokenError::Invalid("malformed")),
    }
}

/// An HS256 token over `claims` (a JSON object), for `mcpgate token mint`.
pub fn mint_hs256(secret: &[u8], claims: &Value) -> Result<String, String> {
    if secret.len() < MIN_SECRET_BYTES {
        return Err(format!(
            "the secret has {} bytes; HS256 needs at least {MIN_SECRET_BYTES}",
            secret.len()
        ));
    }
    if !claims.is_object() {
        return Err("claims must be a JSON object".into());
    }
    pin_crypto_provider();
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .map_err(|e| format!("cannot sign: {e}"))
}

/// Bearer JWTs. The chain hands it only bearer values of JWT shape; any other place is "not
/// mine" (the chain refuses a JWT there itself).
impl super::Authenticator for JwtVerifier {
    async fn authenticate(&self, a: &super::Attempt<'_>) -> super::Outcome {
        use super::Outcome;
        let Some(p) = a.presented.filter(|p| p.from == super::extract::Location::Bearer) else {
            return Outcome::NotMine;
        };
        match self.verify(p.secret.expose(), a.now).await {
            Ok(principal) => {
                tracing::debug!(target: "mcpgate::auth", user = %principal.user_id(), "token accepted");
                Outcome::Authenticated(principal)
            }
            Err(e) => Outcome::Refused(super::token_failure(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcpgate_core::principal::Role;
    use serde_json::json;

    pub(super) const SECRET: &str = "0123456789abcdef0123456789abcdef-test";
    pub(super) const RESOURCE: &str = "https://gw.example.com/mcp";

    pub(super) fn env(name: &str) -> Option<String> {
        (name == "JWT_SECRET").then(|| SECRET.to_string())
    }

    fn hs_verifier(raw: RawJwt) -> JwtVerifier {
        let raw = RawJwt {
            secret_env: Some("JWT_SECRET".into()),
            ..raw
        };
        JwtVerifier::new(JwtConfig::validate(raw, RESOURCE, &env).unwrap()).unwrap()
    }

    #[test]
    fn looks_like_jwt_is_shape_only() {
        let t = mint_hs256(SECRET.as_bytes(), &json!({"sub": "u"})).unwrap();
        assert!(JwtVerifier::looks_like_jwt(&t));
        assert!(JwtVerifier::looks_like_jwt("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1In0."));
        for not in ["mcp_abc_def", "a.b.c", "eyJ.b", "eyJ.b.c.d", "eyJ..c", "eyJ+.b.c", ""] {
            assert!(!JwtVerifier::looks_like_jwt(not), "{not}");
        }
    }

    #[tokio::test]
    async fn seed_002_token_maps_user_and_tenant() {
        let v = hs_verifier(RawJwt {
            subject_claim: Some("user_id".into()),
            audience: Some(vec![]),
            ..Default::default()
        });
        let now = 1_700_000_000;
        let t = mint_hs256(
            SECRET.as_bytes(),
            &json!({"user_id": "user_123", "tenant_id": "tenant_456", "iat": now, "exp": now + 3600}),
        )
        .unwrap();
        let p = v.verify(&t, now).await.unwrap();
        assert_eq!((p.id(), p.user_id()), ("jwt:user_123", "user_123"));
        assert_eq!(p.tenant(), Some("tenant_456"));
        assert_eq!(p.role(), Role::User);
        assert_eq!(p.scopes(), Some(&[][..]));
        assert_eq!(p.expires_at(), Some(now + 3600));
        assert_eq!(p.method(), AuthMethod::Jwt);
    }

    #[tokio::test]
    async fn claims_are_checked_with_the_callers_clock() {
        let v = hs_verifier(RawJwt::default());
        let now = 1_700_000_000;
        let mint = |c: Value| mint_hs256(SECRET.as_bytes(), &c).unwrap();
        let base = json!({"sub": "u", "aud": RESOURCE, "exp": now + 60});
        let with = |k: &str, val: Value| {
            let mut c = base.clone();
            c[k] = val;
            mint(c)
        };
        assert!(v.verify(&mint(base.clone()), now).await.is_ok());
        let table = [
            (with("exp", json!(now - 31)), TokenError::Expired),
            (with("exp", json!("soon")), TokenError::Invalid("malformed")),
            (with("nbf", json!(now + 31)), TokenError::Invalid("not_yet_valid")),
            (with("iat", json!(now + 31)), TokenError::Invalid("iat_in_future")),
            (
                with("aud", json!(["other", "x"])),
                TokenError::Invalid("wrong_audience"),
            ),
            (
                mint(json!({"sub": "u", "aud": RESOURCE})),
                TokenError::Invalid("missing_exp"),
            ),
            (
                mint(json!({"aud": RESOURCE, "exp": now + 60})),
                TokenError::Invalid("missing_subject"),
            ),
        ];
        for (token, want) in table {
            assert_eq!(v.verify(&token, now).await.unwrap_err(), want);
        }
        // Within leeway.
        assert!(v.verify(&with("exp", json!(now - 29)), now).await.is_ok());
        assert!(v.verify(&with("nbf", json!(now + 29)), now).await.is_ok());
        assert!(v.verify(&with("aud", json!(["other", RESOURCE])), now).await.is_ok());
    }

    #[test]
    fn mint_refuses_weak_secrets_and_non_objects() {
        assert!(mint_hs256(b"short", &json!({})).is_err());
        assert!(mint_hs256(SECRET.as_bytes(), &json!([1])).is_err());
    }

    #[test]
    fn reasons_are_stable() {
        assert_eq!(TokenError::Expired.to_string(), "expired");
        assert_eq!(TokenError::IssuerUnavailable.reason(), "issuer_unavailable");
        assert_eq!(TokenError::Invalid("bad_signature").reason(), "bad_signature");
    }
}
