//! Identity delegation (seed 003): the upstream is called with the *user's* credential, never the
//! caller's own. The credential comes from the verified token's claims, else from one the gateway
//! holds (sealed) for the caller's key, else from a static fallback in the environment; it goes
//! upstream as a header built from a template and/or as a tool argument, with optional identity
//! headers. The caller's credential never appears here: only configured headers are forwarded.

use crate::config::DelegationConfig;
use axum::http::{HeaderName, HeaderValue};
use mcpgate_core::principal::Principal;
use mcpgate_core::redact::Secret;

pub struct Delegation {
    pub cfg: DelegationConfig,
    fallback: Option<Secret>,
}

impl Delegation {
    pub fn new(cfg: DelegationConfig, env: &dyn Fn(&str) -> Option<String>) -> Delegation {
        let fallback = cfg
            .env_fallback
            .iter()
            .find_map(|n| env(n).filter(|v| !v.is_empty()))
            .map(Secret::new);
        Delegation { cfg, fallback }
    }

    /// The credential to use upstream for `p`, in order: token claim, held, fallback.
    pub fn resolve(&self, p: &Principal, held: impl FnOnce(&str) -> Option<Secret>) -> Option<Secret> {
        p.upstream_credential()
            .cloned()
            .or_else(|| p.key_id().and_then(held))
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
