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
    /// When the consent page is shown: `always`, `remember` (once per user and client, until
    /// the grant is revoked or more is asked; the default) or `skip` (never for clients the
    /// operator registered; others as `remember`). A request whose redirect URI is not https
    /// always shows it (RFC 8252 §8.6).
    pub consent: Option<ConsentMode>,
    /// How long a browser stays signed in after its last sign-in or use (the web session).
    pub session_ttl_s: Option<u64>,
    /// How long one sign-in lasts before the person must sign in again, however active: a web
    /// session is not renewed past it, and a grant made by a provider sign-in ends then.
    pub sign_in_max_age_s: Option<u64>,
    /// A signing key signs for this many days before a new one takes over.
    pub signing_key_rotation_days: Option<u64>,
    /// Where people may sign in (`[[oauth.providers]]`: GitHub, Google, any OIDC issuer).
    #[serde(default)]
    pub providers: Vec<super::providers::settings::RawProvider>,
    /// Who people signed in at a provider become here (`[[oauth.identities]]`; first match).
    #[serde(default)]
    pub identities: Vec<super::providers::settings::RawIdentity>,
    /// Where providers send the browser back (default `{issuer}/auth/oauth/callback`; seed 004's
    /// `MCP_OAUTH_REDIRECT_URI`). Register this URL at each provider.
    pub provider_redirect_uri: Option<String>,
}

/// When the consent page is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsentMode {
    /// On every authorization.
    Always,
    /// Once per user and client, until revoked (or the client asks for more).
    Remember,
    /// Never for clients the operator registered (`mcpgate clients add`, vouched for); self-registered
    /// and CIMD clients as `Remember`.
    Skip,
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
    pub consent: ConsentMode,
    pub session_ttl: Duration,
    pub sign_in_max_age: Duration,
    pub signing_key_rotation: Duration,
    pub providers: Vec<super::providers::settings::ProviderSettings>,
    pub identities: Vec<super::providers::settings::IdentityRule>,
    pub provider_redirect_uri: String,
}

pub const DEFAULT_ACCESS_TTL_S: u64 = 600;
pub const DEFAULT_REFRESH_TTL_S: u64 = 30 * 24 * 3600;
pub const DEFAULT_CODE_TTL_S: u64 = 60;
pub const DEFAULT_GRACE_S: u64 = 10;
pub const DEFAULT_SESSION_TTL_S: u64 = 3600;
pub const DEFAULT_SIGN_IN_MAX_AGE_S: u64 = 7 * 86_400;

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
        let consent = raw.consent.unwrap_or(ConsentMode::Remember);
        if consent == ConsentMode::Skip {
            tracing::warn!(
                "oauth.consent = \"skip\": a signed-in browser is sent through /authorize to the operator-registered \
                 clients (mcpgate clients add) without seeing a consent page; any site can start that. Other clients \
                 are asked as with \"remember\"."
            );
        }
        let rotation_days = raw.signing_key_rotation_days.unwrap_or(30);
        if !(1..=365).contains(&rotation_days) {
            return Err((
                "oauth.signing_key_rotation_days",
                format!("must be between 1 and 365, got {rotation_days}"),
            ));
        }
        let providers = super::providers::settings::validate_providers(raw.providers, &raw.identities)?;
        let identities = super::providers::settings::validate_identities(raw.identities, &providers)?;
        if !providers.is_empty() && identities.is_empty() {
            tracing::warn!("oauth.providers are set but no oauth.identities: nobody who signs in there is admitted");
        }
        let provider_redirect_uri = match raw.provider_redirect_uri {
            Some(u) => {
                let url = crate::auth::fetch::check_url("oauth.provider_redirect_uri", &u)
                    .map_err(|e| ("oauth.provider_redirect_uri", e))?;
                if !url.as_str().starts_with(&issuer)
                    || url.path() != format!("{}/auth/oauth/callback", url_path(&issuer))
                {
                    return Err((
                        "oauth.provider_redirect_uri",
                        format!("must be {issuer}/auth/oauth/callback (the provider's callback lands here)"),
                    ));
                }
                u
            }
            None => format!("{issuer}/auth/oauth/callback"),
        };
        Ok(Some(OAuthSettings {
            providers,
            identities,
            provider_redirect_uri,
            cimd,
            consent,
            session_ttl: within(
                "oauth.session_ttl_s",
                raw.session_ttl_s,
                DEFAULT_SESSION_TTL_S,
                300,
                7 * 86_400,
            )?,
            sign_in_max_age: within(
                "oauth.sign_in_max_age_s",
                raw.sign_in_max_age_s,
                DEFAULT_SIGN_IN_MAX_AGE_S,
                300,
                365 * 86_400,
            )?,
            signing_key_rotation: Duration::from_secs(rotation_days * 86_400),
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

fn url_path(issuer: &str) -> String {
    reqwest::Url::parse(issuer)
        .map(|u| u.path().trim_end_matches('/').to_string())
        .unwrap_or_default()
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
pub fn is_scope_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}
