//! `[oauth]`: the authorization server's settings, as the file writes them and as validated.

use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOAuth {
    /// On when the section is present, unless set false.
    pub enabled: Option<bool>,
    /// The issuer identifier (default: `public_url`). Metadata is served for it and tokens carry
    /// it in `iss`; it must be the URL clients reach this gateway at.
    pub issuer: Option<String>,
    pub access_token_ttl_s: Option<u64>,
    pub refresh_token_ttl_s: Option<u64>,
    pub code_ttl_s: Option<u64>,
    /// How long a refresh token, once used, still works one more time (two requests of one client
    /// racing to refresh).
    pub refresh_grace_s: Option<u64>,
    /// What a client that asks for no scope gets (at most what the user holds).
    pub default_scopes: Option<Vec<String>>,
    /// An API key in `X-API-Key` on the authorize request signs in and consents at once
    /// (headless agents, tests).
    pub header_sign_in: Option<bool>,
    /// Dynamic client registration (RFC 7591) at `/register`.
    pub registration: Option<bool>,
    /// The variable holding the key that seals signing keys in the store (the one `delegation`
    /// uses by default). Unset: signing keys live in this process only and are made anew at
    /// each start (access tokens then end with the process; refresh tokens survive).
    pub signing_key_env: Option<String>,
    /// Clients whose `client_id` is the https URL of their metadata document (CIMD; ChatGPT and
    /// Claude use it when offered). On by default.
    pub client_metadata_documents: Option<bool>,
    /// Only documents on these hosts (and their subdomains) are accepted; empty: any public host.
    #[serde(default)]
    pub cimd_allowed_hosts: Vec<String>,
    #[serde(default)]
    pub cimd_denied_hosts: Vec<String>,
    /// Private networks (CIDR) documents may still be fetched from — tests and private
    /// deployments only; plain http is allowed only to these.
    #[serde(default)]
    pub cimd_trusted_networks: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct OAuthSettings {
    pub issuer: String,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub code_ttl: Duration,
    pub refresh_grace: Duration,
    pub default_scopes: Vec<String>,
    pub header_sign_in: bool,
    pub registration: bool,
    pub signing_key_env: String,
    pub cimd: super::cimd::CimdPolicy,
}

pub const DEFAULT_ACCESS_TTL_S: u64 = 600;
pub const DEFAULT_REFRESH_TTL_S: u64 = 30 * 24 * 3600;
pub const DEFAULT_CODE_TTL_S: u64 = 60;
pub const DEFAULT_GRACE_S: u64 = 10;

fn within(
    field: &'static str,
    value: Option<u64>,
    default: u64,
    min: u64,
    max: u64,
) -> Result<Duration, (&'static str, String)> {
    let v = value.unwrap_or(default);
    if !(min..=max).contains(&v) {
        return Err((field, format!("must be between {min} and {max} seconds, got {v}")));
    }
    Ok(Duration::from_secs(v))
}

impl OAuthSettings {
    /// `None` when the section is absent or turned off. Errors name the field.
    pub fn validate(raw: Option<RawOAuth>, public_url: &str) -> Result<Option<OAuthSettings>, (&'static str, String)> {
        let Some(raw) = raw else { return Ok(None) };
        if raw.enabled == Some(false) {
            return Ok(None);
        }
        let issuer = raw
            .issuer
            .unwrap_or_else(|| public_url.to_string())
            .trim_end_matches('/')
            .to_string();
        let url =
            reqwest::Url::parse(&issuer).map_err(|e| ("oauth.issuer", format!("{issuer:?} is not a URL ({e})")))?;
        let loopback = crate::auth::fetch::check_url("oauth.issuer", &issuer).is_ok() && url.scheme() == "http";
        if url.scheme() != "https" && !loopback {
            return Err(("oauth.issuer", "must be an https URL (http only for localhost)".into()));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(("oauth.issuer", "must have no query or fragment (RFC 8414)".into()));
        }
        let default_scopes = raw.default_scopes.unwrap_or_else(|| vec!["read".into()]);
        if let Some(bad) = default_scopes.iter().find(|s| !is_scope_token(s)) {
            return Err((
                "oauth.default_scopes",
                format!("{bad:?} is not a scope (RFC 6749 §3.3)"),
            ));
        }
        let mut trusted = Vec::new();
        for n in &raw.cimd_trusted_networks {
            trusted.push(
                crate::guarded_fetch::Network::parse(n)
                    .map_err(|e| ("oauth.cimd_trusted_networks", format!("{n:?}: {e}")))?,
            );
        }
        if !trusted.is_empty() {
            tracing::warn!(
                "oauth.cimd_trusted_networks is set: client metadata documents may be fetched from those private networks"
            );
        }
        let cimd = super::cimd::CimdPolicy {
            enabled: raw.client_metadata_documents.unwrap_or(true),
            allowed_hosts: raw.cimd_allowed_hosts,
            denied_hosts: raw.cimd_denied_hosts,
            // The CIMD draft: a server MUST NOT follow redirects for a metadata document (a
            // redirect would also step around the host allow list).
            fetch: crate::guarded_fetch::FetchPolicy {
                trusted_networks: trusted,
                max_redirects: 0,
                ..Default::default()
            },
        };
        Ok(Some(OAuthSettings {
            cimd,
            issuer,
            access_token_ttl: within(
                "oauth.access_token_ttl_s",
                raw.access_token_ttl_s,
                DEFAULT_ACCESS_TTL_S,
                30,
                86_400,
            )?,
            refresh_token_ttl: within(
                "oauth.refresh_token_ttl_s",
                raw.refresh_token_ttl_s,
                DEFAULT_REFRESH_TTL_S,
                300,
                365 * 86_400,
            )?,
            code_ttl: within("oauth.code_ttl_s", raw.code_ttl_s, DEFAULT_CODE_TTL_S, 10, 600)?,
            refresh_grace: within("oauth.refresh_grace_s", raw.refresh_grace_s, DEFAULT_GRACE_S, 0, 60)?,
            default_scopes,
            header_sign_in: raw.header_sign_in.unwrap_or(true),
            registration: raw.registration.unwrap_or(true),
            signing_key_env: raw.signing_key_env.unwrap_or_else(|| "MCPGATE_ENCRYPTION_KEY".into()),
        }))
    }
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
pub fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}
