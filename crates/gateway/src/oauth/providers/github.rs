//! GitHub (OAuth 2, not OpenID): who signed in comes from its REST API with the user's token —
//! `/user`, `/user/emails` (verified addresses only), and `/user/orgs` and `/user/teams` when an
//! identity rule names an organization or team. Enterprise installations and tests override
//! the endpoints and `api_base`.

use super::mapping::Identity;
use super::settings::{Condition, IdentityRule, ProviderSettings};
use mcpgate_core::redact::Secret;
use serde::Deserialize;

pub enum Error {
    Unreachable(String),
    Refused(String),
}

pub fn authorization_endpoint(s: &ProviderSettings) -> Result<reqwest::Url, String> {
    let u = s
        .authorization_endpoint
        .as_deref()
        .unwrap_or("https://github.com/login/oauth/authorize");
    reqwest::Url::parse(u).map_err(|e| e.to_string())
}

pub fn token_endpoint(s: &ProviderSettings) -> Result<reqwest::Url, String> {
    let u = s
        .token_endpoint
        .as_deref()
        .unwrap_or("https://github.com/login/oauth/access_token");
    reqwest::Url::parse(u).map_err(|e| e.to_string())
}

#[derive(Deserialize)]
struct User {
    id: u64,
    login: String,
}

#[derive(Deserialize)]
struct Email {
    email: String,
    #[serde(default)]
    primary: bool,
    #[serde(default)]
    verified: bool,
}

#[derive(Deserialize)]
struct Org {
    login: String,
}

#[derive(Deserialize)]
struct Team {
    slug: String,
    organization: Org,
}

async fn get<T: serde::de::DeserializeOwned>(
    client: &reqwest::Client,
    s: &ProviderSettings,
    path: &str,
    token: &Secret,
) -> Result<T, Error> {
    let url = format!("{}{path}", s.api_base);
    let resp = client
        .get(&url)
        .header(reqwest::header::ACCEPT, "application/vnd.github+json")
        .header("x-github-api-version", "2022-11-28")
        .bearer_auth(token.expose())
        .send()
        .await
        .map_err(|e| Error::Unreachable(format!("GitHub {path}: {}", e.without_url())))?;
    let status = resp.status();
    if status.is_server_error() {
        return Err(Error::Unreachable(format!("GitHub {path}: HTTP {status}")));
    }
    if !status.is_success() {
        return Err(Error::Refused(format!("GitHub {path}: HTTP {status}")));
    }
    let body = crate::auth::fetch::read_limited(resp, super::MAX_ANSWER)
        .await
        .map_err(Error::Unreachable)?;
    serde_json::from_slice(&body).map_err(|e| Error::Refused(format!("GitHub {path}: {e}")))
}

pub async fn identity(
    s: &ProviderSettings,
    client: &reqwest::Client,
    token: &Secret,
    rules: &[IdentityRule],
) -> Result<Identity, Error> {
    let user: User = get(client, s, "/user", token).await?;
    let mut emails: Vec<Email> = get(client, s, "/user/emails?per_page=100", token).await?;
    // The primary address first.
    emails.sort_by_key(|e| !e.primary);
    let mine = |r: &IdentityRule| r.provider == s.id;
    let wants = |f: fn(&Condition) -> bool| rules.iter().filter(|r| mine(r)).any(|r| r.conditions.iter().any(f));
    let orgs = if wants(|c| matches!(c, Condition::GithubOrg(_))) {
        let orgs: Vec<Org> = get(client, s, "/user/orgs?per_page=100", token).await?;
        orgs.into_iter().map(|o| o.login.to_ascii_lowercase()).collect()
    } else {
        Vec::new()
    };
    let teams = if wants(|c| matches!(c, Condition::GithubTeam(_))) {
        let teams: Vec<Team> = get(client, s, "/user/teams?per_page=100", token).await?;
        teams
            .into_iter()
            .map(|t| format!("{}/{}", t.organization.login, t.slug).to_ascii_lowercase())
            .collect()
    } else {
        Vec::new()
    };
    Ok(Identity {
        provider: s.id.clone(),
        subject: user.id.to_string(),
        emails: emails
            .into_iter()
            .filter(|e| e.verified && e.email.contains('@'))
            .map(|e| e.email.to_ascii_lowercase())
            .collect(),
        login: Some(user.login),
        orgs,
        teams,
        claims: serde_json::Value::Null,
        email_domains: None,
    })
}
