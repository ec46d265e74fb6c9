//! `[auth.jwt]`: the table as written ([`RawJwt`]) and validated into what the verifier runs with
//! ([`JwtConfig`]). Validation refuses to start without what the checks need — a long enough
//! secret, an https issuer (plain http to loopback only), an audience whenever an issuer's keys
//! are trusted — and every error names the field and the fix.

use super::{ASYMMETRIC_ALGS, DEFAULT_LEEWAY_S, DEFAULT_MIN_REFRESH_S, HMAC_ALGS, MAX_LEEWAY_S, MIN_SECRET_BYTES};
use crate::auth::claims::{ClaimMap, claim_path};
use crate::auth::fetch::check_url;
use crate::auth::jwks::KeySource;
use jsonwebtoken::{Algorithm, AlgorithmFamily};
use mcpgate_core::redact::Secret;
use serde::Deserialize;
use std::str::FromStr;

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
    pub(super) secret: Option<Secret>,
    pub(super) issuer: Option<String>,
    pub(super) source: Option<KeySource>,
    pub(super) audience: Vec<String>,
    pub(super) algorithms: Vec<Algorithm>,
    pub(super) leeway: i64,
    pub(super) claims: ClaimMap,
    pub(super) min_refresh_s: u64,
}

impl JwtConfig {
    /// One line for the start-up log: what is verified, with which algorithms, for which audience.
    pub fn describe(&self) -> String {
        let keys = match (&self.secret, &self.source) {
            (Some(_), Some(_)) => "a shared secret and the issuer's keys",
            (Some(_), None) => "a shared secret",
            _ => "the issuer's keys",
        };
        let algs: Vec<String> = self.algorithms.iter().map(|a| format!("{a:?}")).collect();
        let audience = if self.audience.is_empty() {
            "any (the check is off)".to_string()
        } else {
            self.audience.join(", ")
        };
        format!(
            "bearer JWTs are verified with {keys} ({}); audience: {audience}",
            algs.join(", ")
        )
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::jwt::tests::{RESOURCE, SECRET, env};

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
}
