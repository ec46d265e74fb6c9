//! Authentication: turns what a request carries into a [`Principal`], or a reason it cannot.
//!
//! Every method implements [`Authenticator`] and answers with an [`Outcome`]: not mine,
//! authenticated as P, or refused (with an [`AuthFailure`], the one failure type, turned into a
//! response in one place: `refusal.rs`). [`Auth::authenticate`] holds the order of the methods and
//! why, in one function: a signature first, a JWT to the token verifier only (and only from a
//! bearer), the key registry for everything else (local, microseconds), introspection or the
//! external verifier only for credentials the registry does not know (a network call, behind the
//! ceilings of auth/outbound.rs), the default key only when nothing was presented, and the default
//! role last. A new method: a module here implementing [`Authenticator`], and one line in the
//! chain.

pub mod api_keys;
pub mod cache;
mod claims;
pub mod external;
pub mod extract;
pub mod fetch;
pub mod hmac;
pub mod introspect;
pub mod issued;
pub mod jwks;
pub mod jwt;
pub mod outbound;
pub mod settings;
pub mod token_error;

use api_keys::KeyRegistry;
use axum::http::HeaderMap;
use external::ExternalVerifier;
use extract::{Location, Presented};
use mcpgate_core::principal::Principal;
use settings::AuthConfig;
use std::future::Future;
use std::sync::Arc;

/// What one authentication method makes of a request.
// Unboxed on purpose: an outcome is moved once, on the request path, where a box would cost an
// allocation per request.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Outcome {
    /// Not a credential this method reads: the chain asks the next one.
    NotMine,
    /// The method vouches for the caller.
    Authenticated(Principal),
    /// This method's credential, refused: the chain stops here.
    Refused(AuthFailure),
}

/// What a request offers the methods.
#[derive(Clone, Copy)]
pub struct Attempt<'a> {
    pub headers: &'a HeaderMap,
    /// The exact bytes received (empty for GET and DELETE): what an HMAC signature covers.
    pub body: &'a [u8],
    /// The credential found in the places this gateway reads (`X-API-Key`, bearer, the opt-in
    /// query parameter or tool argument); the chain fills in the default key when there is none.
    pub presented: Option<&'a Presented>,
    /// Unix seconds.
    pub now: i64,
}

/// One authentication method (API key registry, external verifier, JWT, introspection, HMAC).
pub trait Authenticator: Send + Sync {
    fn authenticate(&self, attempt: &Attempt<'_>) -> impl Future<Output = Outcome> + Send;
}

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
    /// Access tokens this gateway's authorization server issued (`[oauth]`).
    pub issued: Option<issued::IssuedTokens>,
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
        clock: Arc<dyn crate::clock::Clock>,
    ) -> Result<Auth, String> {
        let external = cfg
            .external
            .clone()
            .map(|c| ExternalVerifier::with_clock(c, clock.clone()))
            .transpose()?;
        let default_key = extract::default_key(&cfg.default_key_env, env);
        let hmac = cfg.hmac.clone().map(|h| hmac::HmacAuth::new(h, env)).transpose()?;
        let jwt = match cfg.jwt.clone() {
            Some(raw) => {
                let secret_env = raw.secret_env.clone();
                let jwt = jwt::JwtConfig::validate(raw, resource, env)?;
                match secret_env {
                    Some(name) => tracing::info!("{} (secret from {name})", jwt.describe()),
                    None => tracing::info!("{}", jwt.describe()),
                }
                Some(jwt::JwtVerifier::new(jwt)?)
            }
            None => None,
        };
        let introspection = cfg
            .introspection
            .clone()
            .map(|s| introspect::IntrospectionVerifier::from_section(s, clock.clone(), env))
            .transpose()?;
        Ok(Auth {
            cfg,
            keys,
            external,
            hmac,
            jwt,
            issued: None,
            introspection,
            default_key,
        })
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

    /// Who the caller is. `Ok(None)`: nothing presented and no default role — the policy decides
    /// whether that is enough. Every refusal is logged at debug level on `mcpgate::auth`
    /// (`DEBUG=auth:*`) with where the credential came from, the key id when it has one, and the
    /// reason — never the credential.
    pub async fn authenticate(&self, attempt: &Attempt<'_>) -> Result<Option<Principal>, AuthFailure> {
        // The server-side default key stands in for a credential the request does not carry.
        let presented = attempt.presented.or(self.default_key.as_ref());
        let attempt = Attempt { presented, ..*attempt };
        let result = self.chain(&attempt).await;
        if let Err(f) = &result {
            if attempt.headers.contains_key(hmac::SIGNATURE) {
                let client = self.hmac.as_ref().and_then(|h| h.client_id(attempt.headers));
                log_refusal("hmac", client.as_deref(), *f);
            } else {
                let key_id = presented.and_then(|p| mcpgate_core::keys::key_id_of(p.secret.expose()));
                log_refusal(presented.map_or("none", |p| p.from.as_str()), key_id, *f);
            }
        }
        result
    }

    /// The methods, in their order, and why this order. The first method that recognises the
    /// credential decides: no other method may accept what one has refused.
    async fn chain(&self, a: &Attempt<'_>) -> Result<Option<Principal>, AuthFailure> {
        // 1. A signed request (seed 002) is checked over the exact bytes received, before
        //    anything else; a gateway without `[auth.hmac]` refuses one rather than ignore the
        //    signature and judge the client id as if it were a key.
        if a.headers.contains_key(hmac::SIGNATURE) {
            return match &self.hmac {
                Some(h) => decided(h.authenticate(a).await),
                None => Err(AuthFailure::Malformed(
                    "this gateway does not accept HMAC-signed requests",
                )),
            };
        }
        let Some(p) = a.presented else {
            // 6. Nothing presented: the default role, when one is configured.
            return Ok(self
                .cfg
                .default_role
                .map(|role| Principal::anonymous(role, self.cfg.default_permissions.clone())));
        };
        // 2. A JWT goes to the token verifier only, and only from a bearer: never to the key
        //    registry, the external verifier or introspection. A token minted for this gateway
        //    must not reach a vendor's API, and every made-up one would cost an outbound call.
        //    (With a JWT verifier, a bearer of roughly JWT shape goes to it, to be told what is
        //    wrong.)
        let secret = p.secret.expose();
        let bearer = p.from == Location::Bearer;
        // 2a. A token this gateway's authorization server issued (its header names one of our
        //     signing keys): decided here, never by another verifier.
        if bearer
            && let Some(issued) = &self.issued
            && issued.is_ours(secret)
        {
            return decided(issued.authenticate(a).await);
        }
        if extract::is_jwt(secret) || (bearer && self.jwt.is_some() && jwt::JwtVerifier::looks_like_jwt(secret)) {
            return match (&self.jwt, bearer) {
                (Some(jwt), true) => decided(jwt.authenticate(a).await),
                (None, true) => Err(AuthFailure::JwtWithoutVerifier),
                (_, false) => Err(AuthFailure::JwtAsKey),
            };
        }
        // 3. The key registry: local, microseconds; it knows revoked and expired keys.
        // 4. Introspection, for an opaque bearer token the registry does not know (a network
        //    call, behind the ceilings of auth/outbound.rs).
        // 5. The external verifier, for a key the registry does not know (the same ceilings).
        // Each is asked only when those before it said "not mine".
        macro_rules! ask {
            ($method:expr) => {
                match $method.authenticate(a).await {
                    Outcome::NotMine => {}
                    decisive => return decided(decisive),
                }
            };
        }
        ask!(self.keys);
        if let Some(i) = &self.introspection {
            ask!(i);
        }
        if let Some(e) = &self.external {
            ask!(e);
        }
        Err(AuthFailure::Invalid)
    }
}

/// A decisive outcome as the chain's answer (a method that let its own credential pass as "not
/// mine" leaves it refused, never accepted).
fn decided(outcome: Outcome) -> Result<Option<Principal>, AuthFailure> {
    match outcome {
        Outcome::Authenticated(p) => Ok(Some(p)),
        Outcome::Refused(f) => Err(f),
        Outcome::NotMine => Err(AuthFailure::Invalid),
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

pub(crate) fn token_failure(e: jwt::TokenError) -> AuthFailure {
    match e {
        jwt::TokenError::Invalid(reason) => AuthFailure::Token(reason),
        jwt::TokenError::Expired => AuthFailure::Token("expired"),
        jwt::TokenError::IssuerUnavailable => AuthFailure::VerifierUnavailable,
    }
}
