//! Authentication: turns what a request carries into a [`Principal`], or a reason it cannot.
//! One place holds the order of the methods and why: a JWT to the token verifier only (and only
//! from a bearer), the registry first for everything else (local, microseconds), introspection
//! or the external verifier only for credentials the registry does not know (a network call,
//! behind the ceilings of auth/outbound.rs), the default key only when nothing was presented, and
//! the default role last.

pub mod cache;
mod claims;
pub mod external;
pub mod extract;
pub mod hmac;
pub mod introspect;
pub mod jwks;
pub mod jwt;
pub mod outbound;
pub mod registry;

use crate::config::AuthConfig;
use external::{ExternalError, ExternalVerifier};
use extract::{Location, Presented};
use mcpgate_core::keys::KeyError;
use mcpgate_core::principal::{AuthMethod, Principal};
use registry::KeyRegistry;
use std::sync::Arc;

/// Why a presented credential was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    Malformed(&'static str),
    Invalid,
    Revoked,
    Expired,
    /// The external verifier could not answer: 503, never a false 401.
    VerifierUnavailable,
    /// The gateway's ceiling on calls to a verifier was reached: 503 with `Retry-After`.
    VerifierBusy {
        retry_after_s: u64,
    },
    /// A JWT where an API key was expected (X-API-Key, query, tool argument, default key).
    JwtAsKey,
    /// A bearer JWT, but no `[auth.jwt]` to verify it.
    JwtWithoutVerifier,
    Hmac(mcpgate_core::hmac::HmacError),
    /// A bearer token (JWT or introspected) was refused; the reason is for audit.
    Token(&'static str),
}

impl AuthFailure {
    pub fn reason(self) -> &'static str {
        match self {
            AuthFailure::Malformed(_) => "malformed_credential",
            AuthFailure::Invalid => "invalid_key",
            AuthFailure::Revoked => "revoked_key",
            AuthFailure::Expired => "expired_key",
            AuthFailure::VerifierUnavailable => "verifier_unavailable",
            AuthFailure::VerifierBusy { .. } => "verifier_busy",
            AuthFailure::JwtAsKey => "jwt_as_key",
            AuthFailure::JwtWithoutVerifier => "jwt_without_verifier",
            AuthFailure::Hmac(e) => e.reason(),
            AuthFailure::Token(reason) => reason,
        }
    }
}

pub struct Auth {
    pub cfg: AuthConfig,
    pub keys: Arc<KeyRegistry>,
    external: Option<ExternalVerifier>,
    pub hmac: Option<hmac::HmacAuth>,
    pub jwt: Option<jwt::JwtVerifier>,
    introspection: Option<introspect::IntrospectionVerifier>,
    /// Read once at start-up; changing it needs a restart.
    default_key: Option<Presented>,
}

impl Auth {
    /// `resource` is the gateway's MCP URL: the audience tokens must carry by default.
    pub fn new(
        cfg: AuthConfig,
        keys: Arc<KeyRegistry>,
        resource: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Auth, String> {
        let external = cfg.external.clone().map(ExternalVerifier::new).transpose()?;
        let default_key = extract::default_key(&cfg.default_key_env, env);
        let hmac = cfg.hmac.clone().map(|h| hmac::HmacAuth::new(h, env)).transpose()?;
        let jwt = match cfg.jwt.clone() {
            Some(raw) => {
                let from_env = raw.secret_env.as_deref() == Some(crate::config::raw::env::JWT_SECRET);
                let jwt = jwt::JwtConfig::validate(raw, resource, env)?;
                tracing::info!(
                    "{}{}",
                    jwt.describe(),
                    if from_env { " (secret from JWT_SECRET)" } else { "" }
                );
                Some(jwt::JwtVerifier::new(jwt)?)
            }
            None => None,
        };
        let introspection = cfg
            .introspection
            .clone()
            .map(|s| introspect::IntrospectionVerifier::from_section(s, Arc::new(outbound::SystemClock), env))
            .transpose()?;
        Ok(Auth {
            cfg,
            keys,
            external,
            hmac,
            jwt,
            introspection,
            default_key,
        })
    }

    /// A request signed per seed 002, when it carries `X-Signature`; `None` when it does not.
    pub fn verify_signed(
        &self,
        headers: &axum::http::HeaderMap,
        body: &[u8],
        now: i64,
    ) -> Option<Result<Principal, AuthFailure>> {
        let signature = headers.get(hmac::SIGNATURE)?;
        let Some(h) = &self.hmac else {
            return Some(Err(AuthFailure::Malformed(
                "this gateway does not accept HMAC-signed requests",
            )));
        };
        fn text(v: Option<&axum::http::HeaderValue>) -> Option<&str> {
            v.and_then(|v| v.to_str().ok()).map(str::trim)
        }
        let (Some(sig), Some(ts), Some(client)) = (
            text(Some(signature)),
            text(headers.get(hmac::TIMESTAMP)),
            text(headers.get(&h.key_id_header)),
        ) else {
            return Some(Err(AuthFailure::Malformed(
                "a signed request needs X-Timestamp, X-Signature and the client id header",
            )));
        };
        let result = match h.verify(client, ts, sig, body, now) {
            Ok(p) => {
                tracing::debug!(target: "mcpgate::auth", client = %client, "signed request accepted");
                Ok(p)
            }
            Err(None) => Err(AuthFailure::Malformed(
                "the key-id header names no configured HMAC client",
            )),
            Err(Some(e)) => Err(AuthFailure::Hmac(e)),
        };
        if let Err(f) = &result {
            // The client id is a configured name or what the caller sent: printable, bounded.
            let shown: String = client.chars().filter(|c| c.is_ascii_graphic()).take(64).collect();
            log_refusal("hmac", Some(&shown), *f);
        }
        Some(result)
    }

    pub fn single_user_mode(&self) -> bool {
        self.default_key.is_some()
    }

    /// The names of the methods this gateway accepts, for `/mcp/status`.
    pub fn methods(&self) -> Vec<&'static str> {
        let mut m = vec!["api_key"];
        if self.cfg.allow_query_key {
            m.push("query_api_key");
        }
        if self.cfg.allow_tool_arg_key {
            m.push("tool_argument_api_key");
        }
        if self.external.is_some() {
            m.push("external_key");
        }
        if self.default_key.is_some() {
            m.push("default_key");
        }
        if self.cfg.default_role.is_some() {
            m.push("anonymous");
        }
        if self.hmac.is_some() {
            m.push("hmac");
        }
        if self.jwt.is_some() {
            m.push("jwt");
        }
        if self.introspection.is_some() {
            m.push("introspection");
        }
        m
    }

    /// `Ok(None)`: no credential and no default role — the policy decides whether that is enough.
    /// Every refusal is logged at debug level on `mcpgate::auth` (`DEBUG=auth:*`) with where the
    /// credential came from, the key id when it has one, and the reason — never the credential.
    pub async fn authenticate(
        &self,
        presented: Option<&Presented>,
        now: i64,
    ) -> Result<Option<Principal>, AuthFailure> {
        let result = self.decide(presented, now).await;
        if let Err(f) = &result {
            let p = presented.or(self.default_key.as_ref());
            let key_id = p.and_then(|p| mcpgate_core::keys::key_id_of(p.secret.expose()));
            log_refusal(p.map_or("none", |p| p.from.as_str()), key_id, *f);
        }
        result
    }

    async fn decide(&self, presented: Option<&Presented>, now: i64) -> Result<Option<Principal>, AuthFailure> {
        let presented = presented.or(self.default_key.as_ref());
        let Some(p) = presented else {
            return Ok(self.cfg.default_role.map(|role| {
                let mut a = Principal::anonymous(role);
                a.permissions = self.cfg.default_permissions.clone();
                a
            }));
        };
        // A JWT goes to the token verifier only, and only from a bearer: never to the key
        // registry, the external verifier or introspection. A token minted for this gateway must
        // not reach a vendor's API, and every made-up one would cost an outbound call. (With a
        // JWT verifier, a bearer of roughly JWT shape goes to it, to be told what is wrong.)
        let secret = p.secret.expose();
        let bearer = p.from == Location::Bearer;
        if extract::is_jwt(secret) || (bearer && self.jwt.is_some() && jwt::JwtVerifier::looks_like_jwt(secret)) {
            return match (&self.jwt, bearer) {
                (Some(jwt), true) => match jwt.verify(secret, now).await {
                    Ok(principal) => {
                        tracing::debug!(target: "mcpgate::auth", user = %principal.user_id, "token accepted");
                        Ok(Some(principal))
                    }
                    Err(e) => Err(token_failure(e)),
                },
                (None, true) => Err(AuthFailure::JwtWithoutVerifier),
                (_, false) => Err(AuthFailure::JwtAsKey),
            };
        }
        let method = if p.from == Location::DefaultEnv {
            AuthMethod::DefaultKey
        } else {
            AuthMethod::ApiKey
        };
        match self.keys.verify(secret, now) {
            Ok(record) => {
                tracing::debug!(target: "mcpgate::auth", key_id = %record.key_id, via = p.from.as_str(), "key accepted");
                Ok(Some(record.principal(method)))
            }
            Err(KeyError::Revoked) => Err(AuthFailure::Revoked),
            Err(KeyError::Expired) => Err(AuthFailure::Expired),
            Err(KeyError::Unknown) => {
                // An opaque bearer token the registry does not know: ask the token issuer.
                if p.from == Location::Bearer
                    && let Some(i) = &self.introspection
                {
                    return match i.introspect(secret, now).await {
                        Ok(Ok(principal)) => Ok(Some(principal)),
                        Ok(Err(e)) => Err(token_failure(e)),
                        Err(outbound::Unanswered::Unavailable) => Err(AuthFailure::VerifierUnavailable),
                        Err(outbound::Unanswered::Busy { retry_after_s }) => {
                            Err(AuthFailure::VerifierBusy { retry_after_s })
                        }
                    };
                }
                match &self.external {
                    None => Err(AuthFailure::Invalid),
                    Some(v) => match v.verify(&p.secret, now).await {
                        Ok(principal) => {
                            tracing::debug!(target: "mcpgate::auth", user = %principal.user_id, "key accepted by the external verifier");
                            Ok(Some(principal))
                        }
                        Err(ExternalError::Invalid) => Err(AuthFailure::Invalid),
                        Err(ExternalError::Unavailable) => Err(AuthFailure::VerifierUnavailable),
                        Err(ExternalError::Busy { retry_after_s }) => Err(AuthFailure::VerifierBusy { retry_after_s }),
                    },
                }
            }
        }
    }
}

/// One debug line per refused credential (`DEBUG=auth:*`): where it came from, its key id when
/// it has one, and the reason. Never the credential itself.
pub fn log_refusal(via: &str, key_id: Option<&str>, failure: AuthFailure) {
    tracing::debug!(
        target: "mcpgate::auth",
        via,
        key_id = key_id.unwrap_or("-"),
        reason = failure.reason(),
        "credential refused"
    );
}

fn token_failure(e: jwt::TokenError) -> AuthFailure {
    match e {
        jwt::TokenError::Invalid(reason) => AuthFailure::Token(reason),
        jwt::TokenError::Expired => AuthFailure::Token("expired"),
        jwt::TokenError::IssuerUnavailable => AuthFailure::VerifierUnavailable,
    }
}
