//! Access tokens this gateway's own authorization server issued (`oauth/`): checked on the
//! request path with the signer's public keys held in memory — no store read per request. A
//! bearer whose header names one of those keys is ours to decide (nobody else's verifier sees
//! it); everything else is "not mine".
//!
//! Checks: ES256 only, a key of ours, signature, `exp` and `nbf` (30 s leeway), `iss` = our
//! issuer, `aud` = our MCP URL; then the grant must not be revoked (the set
//! `OAuthServer::watch_revocations` keeps fresh, so revocation takes about a second). Verified
//! tokens are remembered by their SHA-256 until `exp`, as other JWTs are.

use super::cache::TtlCache;
use super::{Attempt, AuthFailure, Authenticator, Outcome};
use crate::oauth::OAuthServer;
use jsonwebtoken::{Algorithm, Validation};
use mcpgate_core::keys::hash_hex;
use mcpgate_core::principal::{AuthMethod, Principal, Role, Verified};
use serde::Deserialize;
use std::sync::Arc;

const LEEWAY_S: i64 = 30;

#[derive(Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
    #[serde(default)]
    nbf: Option<i64>,
    gid: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    tenant: Option<String>,
    role: String,
    #[serde(default)]
    permissions: Vec<String>,
    client_id: String,
    /// How the user signed in (`key:<id>`), so the token shares the key's limits, sessions and
    /// held credential, and ends with the key.
    #[serde(default)]
    via: String,
}

pub struct IssuedTokens {
    server: Arc<OAuthServer>,
    /// Token hash → (principal, grant id, sign-in).
    cache: TtlCache<(Principal, String, String)>,
}

impl IssuedTokens {
    pub fn new(server: Arc<OAuthServer>) -> IssuedTokens {
        IssuedTokens {
            server,
            cache: TtlCache::new(10_000),
        }
    }

    /// Whether the bearer names one of our keys (header only, no signature check yet).
    pub fn is_ours(&self, token: &str) -> bool {
        jsonwebtoken::decode_header(token)
            .ok()
            .and_then(|h| h.kid)
            .is_some_and(|kid| self.server.signer().verifying_key(&kid).is_some())
    }

    fn verify(&self, token: &str) -> Result<(Principal, String, String, i64), AuthFailure> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthFailure::Token("malformed_token"))?;
        if header.alg != Algorithm::ES256 {
            return Err(AuthFailure::Token("wrong_algorithm"));
        }
        // RFC 9068 §4: an access token says so (a web session, signed by the same keys, does not).
        if header.typ.as_deref() != Some(crate::oauth::signer::ACCESS_TOKEN_TYP) {
            return Err(AuthFailure::Token("not_an_access_token"));
        }
        let signer = self.server.signer();
        let key = header
            .kid
            .as_deref()
            .and_then(|k| signer.verifying_key(k))
            .ok_or(AuthFailure::Token("unknown_key"))?;
        let mut v = Validation::new(Algorithm::ES256);
        // Times are checked below against the gateway's clock (the library reads the system's).
        v.validate_exp = false;
        v.leeway = 0;
        v.set_issuer(&[&self.server.settings.issuer]);
        v.set_audience(&[&self.server.resource]);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, key, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::ExpiredSignature => AuthFailure::Token("expired_token"),
                ErrorKind::InvalidAudience => AuthFailure::Token("wrong_audience"),
                ErrorKind::InvalidIssuer => AuthFailure::Token("wrong_issuer"),
                ErrorKind::ImmatureSignature => AuthFailure::Token("token_not_yet_valid"),
                ErrorKind::InvalidSignature => AuthFailure::Token("bad_signature"),
                _ => AuthFailure::Token("invalid_token"),
            }
        })?;
        let c = data.claims;
        let now = self.server.clock.unix_s();
        if c.exp.saturating_add(LEEWAY_S) < now {
            return Err(AuthFailure::Token("expired_token"));
        }
        if c.nbf.is_some_and(|nbf| nbf > now.saturating_add(LEEWAY_S)) {
            return Err(AuthFailure::Token("token_not_yet_valid"));
        }
        let role = Role::parse(&c.role).ok_or(AuthFailure::Token("invalid_token"))?;
        // The principal is the credential signed in with: a token counts against its key's
        // limits and may use the sessions it opened, and delegation finds its held credential.
        let id = if c.via.is_empty() {
            format!("oauth:{}", c.sub)
        } else {
            c.via.clone()
        };
        let mut verified = Verified::new(id, c.sub.clone(), role, AuthMethod::OAuth);
        if let super::super::oauth::SignIn::Key(k) = self.server.sign_in(&c.via) {
            verified.key_id = Some(k.key_id.clone());
            verified.limits = k.limits;
        }
        verified.name = Some(c.sub.clone());
        verified.tenant = c.tenant;
        verified.permissions = c.permissions;
        verified.scopes = Some(
            c.scope
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        );
        verified.expires_at = Some(c.exp);
        verified.client_id = Some(c.client_id);
        Ok((Principal::verified(verified), c.gid, c.via, c.exp))
    }
}

impl Authenticator for IssuedTokens {
    async fn authenticate(&self, a: &Attempt<'_>) -> Outcome {
        let Some(p) = a.presented else {
            return Outcome::NotMine;
        };
        let token = p.secret.expose();
        if !self.is_ours(token) {
            return Outcome::NotMine;
        }
        let hash = hash_hex(token);
        let (principal, gid, via) = match self.cache.get(&hash, a.now) {
            Some(hit) => hit,
            None => match self.verify(token) {
                Ok((principal, gid, via, exp)) => {
                    self.cache
                        .insert(hash, (principal.clone(), gid.clone(), via.clone()), exp, a.now);
                    (principal, gid, via)
                }
                Err(f) => return Outcome::Refused(f),
            },
        };
        // The key signed in with, revoked or expired since: the token ends with it.
        if matches!(self.server.sign_in(&via), crate::oauth::SignIn::Ended) {
            return Outcome::Refused(AuthFailure::Token("sign_in_key_ended"));
        }
        if principal.expires_at().is_some_and(|exp| exp < a.now) {
            return Outcome::Refused(AuthFailure::Token("expired_token"));
        }
        if self.server.is_revoked(&gid) {
            return Outcome::Refused(AuthFailure::Token("revoked_token"));
        }
        Outcome::Authenticated(principal)
    }
}
