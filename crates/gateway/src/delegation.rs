//! Identity delegation (seed 003): the upstream is called with the *user's* credential, never the
//! caller's own. The credential comes from the verified token's claims, else from one the gateway
//! holds (sealed) for the caller's key, else from a static fallback in the environment; it goes
//! upstream as a header built from a template and/or as a tool argument, with optional identity
//! headers. The caller's credential never appears here: only configured headers are forwarded.
//! With `delegation.source = "provider:<id>"` the credential is the person's own token at that
//! sign-in provider, held by the authorization server (`oauth::providers::held`).

use crate::config::DelegationConfig;
use axum::http::{HeaderName, HeaderValue};
use mcpgate_core::principal::Principal;
use mcpgate_core::redact::Secret;

pub struct Delegation {
    pub cfg: DelegationConfig,
    fallback: Option<Secret>,
    /// With `delegation.source = "provider:<id>"`: the provider's name and where to sign in.
    pub sign_in: Option<(String, String)>,
}

impl Delegation {
    pub fn new(cfg: DelegationConfig, env: &dyn Fn(&str) -> Option<String>) -> Delegation {
        let fallback = cfg
            .env_fallback
            .iter()
            .find_map(|n| env(n).filter(|v| !v.is_empty()))
            .map(Secret::new);
        Delegation {
            cfg,
            fallback,
            sign_in: None,
        }
    }

    /// The credential to use upstream for `p`: with a provider source, only the token held for
    /// the sign-in at that provider behind `p`'s OAuth token (while it is good at `now`); else,
    /// in order, token claim, held for the key, fallback. `held` reads the credentials the
    /// gateway holds, by owner.
    pub fn resolve(&self, p: &Principal, now: i64, held: impl Fn(&str) -> Option<Secret>) -> Option<Secret> {
        if let Some(provider) = &self.cfg.provider {
            let owner = crate::oauth::providers::held::owner_for(provider, p)?;
            return held(&owner).and_then(|h| crate::oauth::providers::held::usable(&h, now));
        }
        p.upstream_credential()
            .cloned()
            .or_else(|| p.key_id().and_then(&held))
            .or_else(|| self.fallback.clone())
    }

    /// Headers for the upstream: the credential (if a header is configured) and identity headers.
    pub fn headers(&self, p: &Principal, credential: Option<&Secret>) -> Vec<(HeaderName, HeaderValue)> {
        let mut out = Vec::new();
        if let (Some((name, template)), Some(c)) = (&self.cfg.header, credential)
            && let Ok(mut v) = HeaderValue::from_str(&template.replace("{credential}", c.expose()))
        {
            v.set_sensitive(true);
            out.push((name.clone(), v));
        }
        if self.cfg.identity_headers {
            let mut add = |name: &'static str, value: &str| {
                if let Ok(v) = HeaderValue::from_str(value) {
                    out.push((HeaderName::from_static(name), v));
                }
            };
            add("x-mcp-user-id", p.user_id());
            if let Some(t) = p.tenant() {
                add("x-mcp-tenant-id", t);
            }
            add("x-mcp-role", p.role().as_str());
            add("x-mcp-permissions", &p.permissions().join(","));
        }
        out
    }
}
