//! `[[oauth.providers]]` and `[[oauth.identities]]`: where people sign in, and who they become
//! here. Validated at load; secrets are named by environment variable and read at start.

use mcpgate_core::principal::Role;
use serde::Deserialize;

/// A sign-in provider as the file writes it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    /// `oidc` (any OpenID Provider: discovery, ID token), `google` (OIDC at Google), `github`.
    pub kind: ProviderKind,
    /// In `/auth/oauth/{id}/start` and in identities' `via` (default: the kind).
    pub id: Option<String>,
    /// On the sign-in button (default: by kind, or the id).
    pub name: Option<String>,
    pub client_id: String,
    /// The variable holding the client secret (none: a public client, PKCE only).
    pub client_secret_env: Option<String>,
    /// The OpenID Provider's issuer (required for `oidc`; Google's by default).
    pub issuer: Option<String>,
    /// Scopes asked of the provider (default: `openid email profile` for OIDC; `read:user
    /// user:email` for GitHub, plus `read:org` when a rule names an org or team).
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Endpoint overrides (enterprise installations, tests); OIDC ones are discovered otherwise.
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub jwks_uri: Option<String>,
    /// GitHub's REST API base (default `https://api.github.com`).
    pub api_base: Option<String>,
}

impl RawProvider {
    /// A GitHub provider with the defaults (seed 004's `MCP_OAUTH_GITHUB_CLIENT_ID`).
    pub fn github(client_id: &str, client_secret_env: Option<String>) -> RawProvider {
        RawProvider {
            kind: ProviderKind::Github,
            id: None,
            name: None,
            client_id: client_id.to_string(),
            client_secret_env,
            issuer: None,
            scopes: vec![],
            authorization_endpoint: None,
            token_endpoint: None,
            jwks_uri: None,
            api_base: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Oidc,
    Google,
    Github,
}

/// One identity rule as the file writes it: conditions (all must hold), and who the person
/// becomes. Rules are tried in order; the first that matches decides.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIdentity {
    /// Only people signed in through this provider (its id).
    pub provider: Option<String>,
    /// The provider's subject (`sub`; GitHub's numeric user id).
    pub subject: Option<String>,
    /// A verified e-mail address (compared without case).
    pub email: Option<String>,
    /// The domain of a verified e-mail address.
    pub email_domain: Option<String>,
    /// GitHub: a member of this organization.
    pub github_org: Option<String>,
    /// GitHub: a member of this team, `org/team-slug`.
    pub github_team: Option<String>,
    /// An ID-token claim (a string, or a list of strings such as `groups`) holding `value`.
    pub claim: Option<String>,
    pub value: Option<String>,
    /// Anyone who signs in through `provider` — the explicit opt-in to "any GitHub user".
    #[serde(default)]
    pub anyone: bool,
    /// The user id here: a template over `{provider}`, `{sub}`, `{email}`, `{login}` (default:
    /// the verified e-mail, else `{provider}:{sub}`).
    pub user_id: Option<String>,
    pub tenant: Option<String>,
    pub role: Option<String>,
    #[serde(default)]
    pub permissions: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ProviderSettings {
    pub id: String,
    pub kind: ProviderKind,
    pub name: String,
    pub client_id: String,
    pub client_secret_env: Option<String>,
    pub issuer: Option<String>,
    pub scopes: Vec<String>,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub jwks_uri: Option<String>,
    pub api_base: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    Subject(String),
    Email(String),
    EmailDomain(String),
    GithubOrg(String),
    GithubTeam(String),
    Claim(String, String),
}

#[derive(Debug, Clone)]
pub struct IdentityRule {
    /// The provider the rule is for: a subject, an address or a claim means something only as
    /// one provider says it.
    pub provider: String,
    /// All must hold; empty only with `anyone`.
    pub conditions: Vec<Condition>,
    pub user_id: Option<String>,
    pub tenant: Option<String>,
    pub role: Role,
    pub permissions: Vec<String>,
}

type Invalid = (&'static str, String);

fn url_ok(field: &'static str, text: &str) -> Result<String, Invalid> {
    crate::auth::fetch::check_url(field, text).map_err(|e| (field, e))?;
    Ok(text.trim_end_matches('/').to_string())
}

fn is_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub fn validate_providers(raw: Vec<RawProvider>, rules: &[RawIdentity]) -> Result<Vec<ProviderSettings>, Invalid> {
    let mut out: Vec<ProviderSettings> = Vec::new();
    for p in raw {
        let id = p.id.clone().unwrap_or_else(|| {
            match p.kind {
                ProviderKind::Oidc => "oidc",
                ProviderKind::Google => "google",
                ProviderKind::Github => "github",
            }
            .to_string()
        });
        if !is_id(&id) || id == "callback" || id == "login" {
            return Err((
                "oauth.providers.id",
                format!("{id:?}: letters, digits, - and _ only (and not `callback` or `login`)"),
            ));
        }
        if out.iter().any(|o| o.id == id) {
            return Err(("oauth.providers.id", format!("{id:?} is used twice")));
        }
        if p.client_id.trim().is_empty() {
            return Err(("oauth.providers.client_id", format!("{id}: must not be empty")));
        }
        let issuer = match (p.kind, p.issuer.as_deref()) {
            (ProviderKind::Oidc, None) => {
                return Err((
                    "oauth.providers.issuer",
                    format!("{id}: an oidc provider needs its issuer"),
                ));
            }
            (ProviderKind::Github, Some(_)) => {
                return Err((
                    "oauth.providers.issuer",
                    format!("{id}: GitHub is not an OpenID Provider; set api_base and the endpoints instead"),
                ));
            }
            (ProviderKind::Google, None) => Some("https://accounts.google.com".to_string()),
            (_, Some(i)) => Some(url_ok("oauth.providers.issuer", i)?),
            (ProviderKind::Github, None) => None,
        };
        let github = p.kind == ProviderKind::Github;
        let needs_org = rules
            .iter()
            .any(|r| r.provider.as_deref() == Some(id.as_str()) && (r.github_org.is_some() || r.github_team.is_some()));
        let scopes = if !p.scopes.is_empty() {
            p.scopes.clone()
        } else if github {
            let mut s = vec!["read:user".to_string(), "user:email".to_string()];
            if needs_org {
                s.push("read:org".into());
            }
            s
        } else {
            vec!["openid".into(), "email".into(), "profile".into()]
        };
        if !github && !scopes.iter().any(|s| s == "openid") {
            return Err((
                "oauth.providers.scopes",
                format!("{id}: an OpenID sign-in needs the openid scope"),
            ));
        }
        if let Some(bad) = scopes.iter().find(|s| !super::super::settings::is_scope_token(s)) {
            return Err(("oauth.providers.scopes", format!("{id}: {bad:?} is not a scope")));
        }
        let opt = |field: &'static str, v: &Option<String>| v.as_deref().map(|u| url_ok(field, u)).transpose();
        let name = p.name.clone().unwrap_or_else(|| match p.kind {
            ProviderKind::Github => "GitHub".into(),
            ProviderKind::Google => "Google".into(),
            ProviderKind::Oidc => id.clone(),
        });
        out.push(ProviderSettings {
            name,
            kind: p.kind,
            client_id: p.client_id.clone(),
            client_secret_env: p.client_secret_env.clone(),
            issuer,
            scopes,
            authorization_endpoint: opt("oauth.providers.authorization_endpoint", &p.authorization_endpoint)?,
            token_endpoint: opt("oauth.providers.token_endpoint", &p.token_endpoint)?,
            jwks_uri: opt("oauth.providers.jwks_uri", &p.jwks_uri)?,
            api_base: match &p.api_base {
                Some(b) => url_ok("oauth.providers.api_base", b)?,
                None => "https://api.github.com".into(),
            },
            id,
        });
        if github {
            let last = out.last();
            if last.is_some_and(|l| l.authorization_endpoint.is_none() != l.token_endpoint.is_none()) {
                return Err((
                    "oauth.providers.token_endpoint",
                    "a GitHub provider overrides both endpoints or neither".into(),
                ));
            }
        }
    }
    Ok(out)
}

pub fn validate_identities(
    raw: Vec<RawIdentity>,
    providers: &[ProviderSettings],
) -> Result<Vec<IdentityRule>, Invalid> {
    let mut out = Vec::new();
    for (i, r) in raw.into_iter().enumerate() {
        let at = |what: &str| format!("rule {}: {what}", i + 1);
        let Some(provider) = r.provider.clone() else {
            return Err((
                "oauth.identities.provider",
                at(
                    "name the provider the rule is for (a subject, an e-mail or a claim is only as good as who says it)",
                ),
            ));
        };
        let Some(kind) = providers.iter().find(|x| x.id == provider).map(|x| x.kind) else {
            return Err(("oauth.identities.provider", at(&format!("no provider {provider:?}"))));
        };
        if (r.github_org.is_some() || r.github_team.is_some()) && kind != ProviderKind::Github {
            return Err((
                "oauth.identities.github_org",
                at("github_org and github_team need a GitHub provider"),
            ));
        }
        if let Some(c) = r.claim.as_deref()
            && matches!(c, "email" | "email_verified" | "sub" | "hd")
        {
            return Err((
                "oauth.identities.claim",
                at(&format!(
                    "match {c:?} with `email`, `email_domain` or `subject` (they check that the address is verified)"
                )),
            ));
        }
        let mut conditions = Vec::new();
        if let Some(s) = r.subject {
            conditions.push(Condition::Subject(s));
        }
        if let Some(e) = r.email {
            conditions.push(Condition::Email(e.to_ascii_lowercase()));
        }
        if let Some(d) = r.email_domain {
            conditions.push(Condition::EmailDomain(d.trim_start_matches('@').to_ascii_lowercase()));
        }
        if let Some(o) = r.github_org {
            conditions.push(Condition::GithubOrg(o.to_ascii_lowercase()));
        }
        if let Some(t) = r.github_team {
            if t.split('/').count() != 2 || t.split('/').any(str::is_empty) {
                return Err(("oauth.identities.github_team", at("write it as org/team-slug")));
            }
            conditions.push(Condition::GithubTeam(t.to_ascii_lowercase()));
        }
        match (r.claim, r.value) {
            (Some(c), Some(v)) => conditions.push(Condition::Claim(c, v)),
            (None, None) => {}
            _ => return Err(("oauth.identities.claim", at("claim and value go together"))),
        }
        if conditions.is_empty() && !r.anyone {
            return Err((
                "oauth.identities",
                at(
                    "names no condition; to admit everyone who can sign in at a provider, say anyone = true and name the provider",
                ),
            ));
        }
        if r.anyone && !conditions.is_empty() {
            return Err((
                "oauth.identities.anyone",
                at("anyone = true goes with a provider and no other condition"),
            ));
        }
        let role = match r.role.as_deref() {
            None => Role::User,
            Some(x) => Role::parse(x).ok_or(("oauth.identities.role", at(&format!("unknown role {x:?}"))))?,
        };
        if r.anyone {
            tracing::warn!(
                provider = %provider,
                "oauth.identities: anyone who can sign in at this provider is admitted"
            );
        }
        out.push(IdentityRule {
            provider,
            conditions,
            user_id: r.user_id,
            tenant: r.tenant,
            role,
            permissions: r.permissions,
        });
    }
    Ok(out)
}
