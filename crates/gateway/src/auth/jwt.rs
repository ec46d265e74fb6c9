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
use super::claims::claim_path;
use super::jwks::{JwksCache, KeySource, check_url};
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, EncodingKey, Header, Validation};
use mcpgate_core::keys::hash_hex;
use mcpgate_core::principal::{AuthMethod, Principal};
use mcpgate_core::redact::Secret;
use serde::Deserialize;
use serde_json::Value;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

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

/// Why a bearer token was not accepted. `Invalid` carries a short stable reason for the audit
/// record; no variant ever holds any part of the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Reasons: `malformed`, `alg_not_allowed`, `alg_key_mismatch`, `bad_signature`,
    /// `unknown_kid`, `no_matching_key`, `missing_exp`, `not_yet_valid`, `iat_in_future`,
    /// `wrong_issuer`, `wrong_audience`, `missing_subject`, `inactive`, `not_access_token`.
    Invalid(&'static str),
    Expired,
    /// The issuer's keys (or the introspection endpoint) could not be reached and nothing cached
    /// can decide: answer 503, never a false 401.
    IssuerUnavailable,
}

impl TokenError {
    pub fn reason(self) -> &'static str {
        match self {
            TokenError::Invalid(r) => r,
            TokenError::Expired => "expired",
            TokenError::IssuerUnavailable => "issuer_unavailable",
        }
    }
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for TokenError {}

/// `[auth.jwt]` as written.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJwt {
    /// Environment variable holding the HS* secret (seeds 001/002 use `JWT_SECRET`).
    pub secret_env: Option<String>,
    /// Expected `iss`, exactly.
    pub issuer: Option<String>,
    /// Find `jwks_uri` at `{issuer}/.well-known/openid-configuration` (default: true when
    /// `issuer` is set and `jwks_url` is not).
    pub discovery: Option<bool>,
    pub jwks_url: Option<String>,
    /// Accepted `aud` values (default: the gateway's resource URL). `[]` turns the check off,
    /// allowed only with `secret_env` alone.
    pub audience: Option<Vec<String>>,
    /// Allow-list (default: HS256/384/512 with a secret; RS*, PS*, ES256/384, EdDSA with keys).
    pub algorithms: Option<Vec<String>>,
    /// Clock skew allowed on `exp`, `nbf`, `iat` (default 30, at most 300).
    pub leeway_s: Option<u64>,
    /// Dotted claim paths (defaults: `sub`, `tenant_id`, `roles`, `scope` + `scp`,
    /// `permissions`, `name`).
    pub subject_claim: Option<String>,
    pub tenant_claim: Option<String>,
    pub roles_claim: Option<String>,
    pub scopes_claim: Option<String>,
    pub permissions_claim: Option<String>,
    pub name_claim: Option<String>,
    /// Paths tried in order for the user's upstream credential (seed 003's three by default).
    pub upstream_credential_claims: Option<Vec<String>>,
    /// Floor between JWKS fetches (default 30, at least 1).
    pub jwks_min_refresh_s: Option<u64>,
}

/// `[auth.jwt]` validated.
#[derive(Debug, Clone)]
pub struct JwtConfig {
    secret: Option<Secret>,
    issuer: Option<String>,
    source: Option<KeySource>,
    audience: Vec<String>,
    algorithms: Vec<Algorithm>,
    leeway: i64,
    claims: ClaimMap,
    min_refresh_s: u64,
}

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

impl JwtConfig {
    /// `resource` is the gateway's own resource URL, the default audience. Errors name the field.
    pub fn validate(raw: RawJwt, resource: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<JwtConfig, String> {
        let secret = match raw.secret_env {
            None => None,
            Some(name) => {
                let value = env(&name)
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| format!("auth.jwt.secret_env: environment variable {name} is not set"))?;
                if value.len() < MIN_SECRET_BYTES {
                    return Err(format!(
                        "auth.jwt.secret_env: {name} holds {} bytes; HS256 needs at least {MIN_SECRET_BYTES} \
                         (RFC 7518 §3.2) — generate one with `openssl rand -base64 48`",
                        value.len()
                    ));
                }
                Some(Secret::new(value))
            }
        };
        let issuer = match raw.issuer {
            None => None,
            Some(i) => {
                check_url("auth.jwt.issuer", &i)?;
                Some(i)
            }
        };
        let discovery = raw.discovery.unwrap_or(issuer.is_some() && raw.jwks_url.is_none());
        let source = match (raw.jwks_url, discovery, &issuer) {
            (Some(_), true, _) => {
                return Err("auth.jwt.discovery: set either jwks_url or discovery = true, not both".into());
            }
            (Some(u), false, _) => Some(KeySource::Url(check_url("auth.jwt.jwks_url", &u)?)),
            (None, true, Some(i)) => Some(KeySource::Discovery { issuer: i.clone() }),
            (None, true, None) => return Err("auth.jwt.discovery: needs auth.jwt.issuer".into()),
            (None, false, _) => None,
        };
        if secret.is_none() && source.is_none() && issuer.is_some() {
            return Err("auth.jwt.discovery: false leaves no keys; set jwks_url (or secret_env for HS256)".into());
        }
        if secret.is_none() && source.is_none() {
            return Err("auth.jwt: set secret_env (HS256) or issuer / jwks_url (RS, PS, ES, EdDSA)".into());
        }
        let algorithms = match raw.algorithms {
            None => {
                let mut a = Vec::new();
                if secret.is_some() {
                    a.extend(HMAC_ALGS);
                }
                if source.is_some() {
                    a.extend(ASYMMETRIC_ALGS);
                }
                a
            }
            Some(list) if list.is_empty() => {
                return Err("auth.jwt.algorithms: empty; leave it out for the default".into());
            }
            Some(list) => {
                let mut out = Vec::new();
                for name in list {
                    let alg = Algorithm::from_str(&name).map_err(|_| {
                        format!(
                            "auth.jwt.algorithms: {name:?} is not accepted (\"none\" never is); use HS256, HS384, \
                             HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 or EdDSA"
                        )
                    })?;
                    if alg.family() == AlgorithmFamily::Hmac && secret.is_none() {
                        return Err(format!("auth.jwt.algorithms: {name} needs auth.jwt.secret_env"));
                    }
                    if alg.family() != AlgorithmFamily::Hmac && source.is_none() {
                        return Err(format!("auth.jwt.algorithms: {name} needs auth.jwt.issuer or jwks_url"));
                    }
                    if !out.contains(&alg) {
                        out.push(alg);
                    }
                }
                out
            }
        };
        let audience = match raw.audience {
            None => vec![resource.to_string()],
            Some(list) if list.is_empty() && source.is_some() => {
                return Err(
                    "auth.jwt.audience: [] turns the audience check off, which is allowed only with \
                            secret_env alone: an issuer signs tokens for other services too"
                        .into(),
                );
            }
            Some(list) if list.iter().any(|a| a.is_empty()) => {
                return Err("auth.jwt.audience: empty entry".into());
            }
            Some(list) => list,
        };
        let leeway = raw.leeway_s.unwrap_or(DEFAULT_LEEWAY_S);
        if leeway > MAX_LEEWAY_S {
            return Err(format!(
                "auth.jwt.leeway_s: {leeway} is more than {MAX_LEEWAY_S} seconds"
            ));
        }
        let min_refresh_s = raw.jwks_min_refresh_s.unwrap_or(DEFAULT_MIN_REFRESH_S);
        if min_refresh_s == 0 {
            return Err(
                "auth.jwt.jwks_min_refresh_s: must be at least 1, or unknown kids could hammer the issuer".into(),
            );
        }
        let upstream_credential = match raw.upstream_credential_claims {
            None => ClaimMap::default().upstream_credential,
            Some(list) => list
                .into_iter()
                .map(|p| claim_path("upstream_credential_claims", Some(p), ""))
                .collect::<Result<_, _>>()?,
        };
        let claims = ClaimMap {
            subject: vec![claim_path("subject_claim", raw.subject_claim, "sub")?],
            tenant: claim_path("tenant_claim", raw.tenant_claim, "tenant_id")?,
            roles: claim_path("roles_claim", raw.roles_claim, "roles")?,
            scopes: raw
                .scopes_claim
                .map(|s| claim_path("scopes_claim", Some(s), ""))
                .transpose()?,
            permissions: claim_path("permissions_claim", raw.permissions_claim, "permissions")?,
            name: vec![claim_path("name_claim", raw.name_claim, "name")?],
            upstream_credential,
        };
        Ok(JwtConfig {
            secret,
            issuer,
            source,
            audience,
            algorithms,
            leeway: i64::try_from(leeway).unwrap_or(0),
            claims,
            min_refresh_s,
        })
    }

    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }
    pub fn algorithms(&self) -> &[Algorithm] {
        &self.algorithms
    }
    /// Empty: the audience is not checked.
    pub fn audience(&self) -> &[String] {
        &self.audience
    }
}

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
        let (principal, exp) = self.verify_uncached(token, now_unix).await.inspect_err(|e| {
            tracing::debug!(target: "mcpgate::auth", reason = e.reason(), "JWT refused");
        })?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use mcpgate_core::principal::Role;
    use serde_json::json;

    const SECRET: &str = "0123456789abcdef0123456789abcdef-test";
    const RESOURCE: &str = "https://gw.example.com/mcp";

    fn env(name: &str) -> Option<String> {
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
        assert_eq!((p.id.as_str(), p.user_id.as_str()), ("jwt:user_123", "user_123"));
        assert_eq!(p.tenant.as_deref(), Some("tenant_456"));
        assert_eq!(p.role, Role::User);
        assert_eq!(p.scopes, Some(vec![]));
        assert_eq!(p.expires_at, Some(now + 3600));
        assert_eq!(p.method, AuthMethod::Jwt);
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
    fn config_errors_name_the_field() {
        let check = |raw: RawJwt, want: &str| {
            let e = JwtConfig::validate(raw, RESOURCE, &env).unwrap_err();
            assert!(e.starts_with(want), "{e}");
        };
        let hs = || RawJwt {
            secret_env: Some("JWT_SECRET".into()),
            ..Default::default()
        };
        check(RawJwt::default(), "auth.jwt:");
        check(
            RawJwt {
                secret_env: Some("NOPE".into()),
                ..Default::default()
            },
            "auth.jwt.secret_env: environment variable NOPE",
        );
        let short = |_: &str| Some("short".to_string());
        let e = JwtConfig::validate(hs(), RESOURCE, &short).unwrap_err();
        assert!(e.starts_with("auth.jwt.secret_env:") && !e.contains("short"), "{e}");
        check(
            RawJwt {
                algorithms: Some(vec!["none".into()]),
                ..hs()
            },
            "auth.jwt.algorithms: \"none\"",
        );
        check(
            RawJwt {
                algorithms: Some(vec!["RS256".into()]),
                ..hs()
            },
            "auth.jwt.algorithms: RS256 needs",
        );
        check(
            RawJwt {
                issuer: Some("http://idp.example.com".into()),
                ..Default::default()
            },
            "auth.jwt.issuer: must be an https URL",
        );
        check(
            RawJwt {
                issuer: Some("https://idp.example.com".into()),
                audience: Some(vec![]),
                ..Default::default()
            },
            "auth.jwt.audience:",
        );
        check(
            RawJwt {
                discovery: Some(true),
                ..hs()
            },
            "auth.jwt.discovery: needs auth.jwt.issuer",
        );
        check(
            RawJwt {
                subject_claim: Some("metadata..id".into()),
                ..hs()
            },
            "auth.jwt.subject_claim:",
        );
        check(
            RawJwt {
                leeway_s: Some(3600),
                ..hs()
            },
            "auth.jwt.leeway_s:",
        );
        check(
            RawJwt {
                jwks_min_refresh_s: Some(0),
                ..hs()
            },
            "auth.jwt.jwks_min_refresh_s:",
        );
        let cfg = JwtConfig::validate(hs(), RESOURCE, &env).unwrap();
        assert_eq!(cfg.algorithms(), &HMAC_ALGS);
        assert_eq!(cfg.audience(), &[RESOURCE.to_string()]);
        assert!(!format!("{cfg:?}").contains(SECRET));
        let cfg = JwtConfig::validate(
            RawJwt {
                issuer: Some("https://idp.example.com".into()),
                ..hs()
            },
            RESOURCE,
            &env,
        )
        .unwrap();
        assert_eq!(cfg.algorithms().len(), 12);
        assert!(matches!(cfg.source, Some(KeySource::Discovery { .. })));
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
