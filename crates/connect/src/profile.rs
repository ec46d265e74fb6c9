//! Named environments (seed 002's development / staging / production) in `connect.toml`, and the
//! one place where flags and a profile become the URL and the chain of credentials a connection
//! uses.
//!
//! ```toml
//! [profiles.staging]
//! url = "https://staging.example.com/mcp"
//! tenant = "acme"
//! headers = { "X-Env" = "staging" }
//! key = "env:STAGING_KEY"              # secrets: env:NAME only, never the value
//! fallback_key = "env:STAGING_KEY_2"
//! ```
//!
//! The file is read from `$MCPGATE_CONFIG_DIR`, else `$XDG_CONFIG_HOME/mcpgate`, else
//! `~/.config/mcpgate` (on every Unix, macOS included), and only when a profile is asked for
//! (`--profile`, else `MCPGATE_PROFILE`). It holds no secret: every secret field, and every header
//! whose name says it carries a credential, must be `env:NAME`, so the file can be shared and
//! committed. It must not be writable by group or others (whoever can write it chooses where your
//! keys are sent).
//!
//! Precedence: a flag replaces the profile's field; headers and JWT claims merge by name, the
//! flag's winning; and a flag choosing how `Authorization` is made (`--bearer`, `--jwt-secret`,
//! `--client-credentials`) replaces the profile's choice of it entirely.

use crate::auth::{
    Audience, Auth, Bearer, Chain, ClientCredentials, ClientCredentialsConfig, Headers, Hmac, Jwt, JwtConfig, KeyPair,
    SetupError, TokenAuth, headers::is_credential_name, parse_claim, parse_ttl,
};
use crate::secret::Secret;
use http::HeaderName;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The profile file's name in the config directory.
pub const FILE_NAME: &str = "connect.toml";
/// Chooses a profile when `--profile` is not given.
pub const PROFILE_ENV: &str = "MCPGATE_PROFILE";
/// Overrides the config directory.
pub const CONFIG_DIR_ENV: &str = "MCPGATE_CONFIG_DIR";

/// The connection flags, as the command line gave them (each `None`/empty/false when not given).
#[derive(Debug, Default, Clone)]
pub struct Flags {
    pub url: Option<String>,
    pub profile: Option<String>,
    /// `"Name: value"`, value literal or `env:NAME`.
    pub headers: Vec<String>,
    pub tenant: Option<String>,
    pub bearer: Option<String>,
    pub key: Option<String>,
    pub fallback_key: Option<String>,
    pub key_header: Option<String>,
    pub jwt_secret: Option<String>,
    /// `k=v` or `k:=JSON`.
    pub jwt_claims: Vec<String>,
    pub jwt_ttl: Option<String>,
    /// A URL, or `none`.
    pub jwt_audience: Option<String>,
    pub hmac_secret: Option<String>,
    pub hmac_key_id: Option<String>,
    pub hmac_key_header: Option<String>,
    pub client_credentials: bool,
    pub token_url: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub scope: Option<String>,
    /// `basic` (default) or `post`.
    pub token_auth: Option<String>,
    /// RFC 8707 `resource` of the client-credentials request: the MCP URL unless given, `none`
    /// to omit.
    pub resource: Option<String>,
    pub retry_403: bool,
}

/// What a connection uses.
pub struct Resolved {
    pub url: String,
    pub auth: Arc<dyn Auth>,
    pub retry_403: bool,
    /// The profile used, if any.
    pub profile: Option<String>,
}

impl std::fmt::Debug for Resolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolved")
            .field("url", &self.url)
            .field("auth", &self.auth.describe())
            .field("retry_403", &self.retry_403)
            .field("profile", &self.profile)
            .finish()
    }
}

/// Why flags and profile do not make a connection. Never carries a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// A flag or field is missing, malformed, or names an unset variable.
    #[error("{0}")]
    Setup(#[from] SetupError),
    /// The profile file could not be used.
    #[error("{path}: {why}")]
    File { path: PathBuf, why: String },
    #[error("profile {name:?} is not in {path}; {known}")]
    Unknown { name: String, path: PathBuf, known: String },
    #[error("no MCP server URL: give it as the argument, or choose a profile with a url (--profile or {PROFILE_ENV})")]
    NoUrl,
    /// Two settings want the same header.
    #[error("{0}")]
    Conflict(String),
}

/// Where `connect.toml` lives: `$MCPGATE_CONFIG_DIR`, else `$XDG_CONFIG_HOME/mcpgate`, else
/// `$HOME/.config/mcpgate` (`%APPDATA%\mcpgate` on Windows without `HOME`).
pub fn config_dir(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let set = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = set(CONFIG_DIR_ENV) {
        return Some(dir);
    }
    // The XDG spec: a relative value is invalid and ignored.
    if let Some(xdg) = set("XDG_CONFIG_HOME").filter(|p| p.is_absolute()) {
        return Some(xdg.join("mcpgate"));
    }
    if let Some(home) = set("HOME") {
        return Some(home.join(".config").join("mcpgate"));
    }
    set("APPDATA").map(|d| d.join("mcpgate"))
}

/// Flags over the profile (`flags.profile`, else env `MCPGATE_PROFILE` when set); `env` reads
/// variables; `config_dir` overrides the directory (tests).
pub fn resolve(
    flags: Flags,
    env: &dyn Fn(&str) -> Option<String>,
    config_dir: Option<&Path>,
) -> Result<Resolved, ProfileError> {
    let name = flags
        .profile
        .clone()
        .or_else(|| env(PROFILE_ENV))
        .filter(|n| !n.trim().is_empty());
    let profile = match &name {
        Some(name) => {
            let dir = match config_dir {
                Some(d) => d.to_path_buf(),
                None => self::config_dir(env).ok_or_else(|| {
                    SetupError::new(
                        "--profile",
                        format!("no config directory: set {CONFIG_DIR_ENV}, XDG_CONFIG_HOME or HOME"),
                    )
                })?,
            };
            load(&dir.join(FILE_NAME), name)?
        }
        None => RawProfile::default(),
    };
    let (merged, flag_claims) = merge(flags, profile)?;
    build(merged, &flag_claims, env, name)
}

// ---- the file -------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    profiles: BTreeMap<String, RawProfile>,
}

/// One `[profiles.NAME]` table: the flags' names with `_` for `-`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    url: Option<String>,
    tenant: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "secret_ref")]
    key: Option<String>,
    #[serde(default, deserialize_with = "secret_ref")]
    fallback_key: Option<String>,
    key_header: Option<String>,
    #[serde(default, deserialize_with = "secret_ref")]
    bearer: Option<String>,
    #[serde(default, deserialize_with = "secret_ref")]
    jwt_secret: Option<String>,
    #[serde(default)]
    jwt_claims: toml::Table,
    jwt_ttl: Option<Ttl>,
    jwt_audience: Option<String>,
    #[serde(default, deserialize_with = "secret_ref")]
    hmac_secret: Option<String>,
    hmac_key_id: Option<String>,
    hmac_key_header: Option<String>,
    #[serde(default)]
    client_credentials: bool,
    token_url: Option<String>,
    client_id: Option<String>,
    #[serde(default, deserialize_with = "secret_ref")]
    client_secret: Option<String>,
    scope: Option<String>,
    token_auth: Option<String>,
    /// RFC 8707 `resource` on token requests (no flag): the MCP URL unless given; `"none"` omits it.
    resource: Option<String>,
    #[serde(default)]
    retry_403: bool,
}

/// `jwt_ttl = "1h"` or `jwt_ttl = 3600`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Ttl {
    Seconds(u64),
    Text(String),
}

/// A secret field's value, which must be a string; a mistyped one is refused without echoing it
/// (serde's own message would quote a number).
fn secret_ref<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match toml::Value::deserialize(d)? {
        toml::Value::String(s) => Ok(Some(s)),
        _ => Err(serde::de::Error::custom(
            "a secret is written as the string \"env:NAME\"",
        )),
    }
}

/// The fields that hold secrets, by their name in the file.
fn secret_fields(p: &RawProfile) -> [(&'static str, &Option<String>); 6] {
    [
        ("key", &p.key),
        ("fallback_key", &p.fallback_key),
        ("bearer", &p.bearer),
        ("jwt_secret", &p.jwt_secret),
        ("hmac_secret", &p.hmac_secret),
        ("client_secret", &p.client_secret),
    ]
}

fn load(path: &Path, name: &str) -> Result<RawProfile, ProfileError> {
    let file_error = |why: String| ProfileError::File {
        path: path.to_path_buf(),
        why,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(file_error(format!(
                "not found, so profile {name:?} cannot be read; create it with a [profiles.{name}] table"
            )));
        }
        Err(e) => return Err(file_error(format!("cannot be read ({e})"))),
    };
    check_permissions(path)?;
    let file: RawFile = toml::from_str(&text).map_err(|e| {
        // The message without the source excerpt toml adds: the offending line may hold a value.
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        match line {
            Some(l) => file_error(format!("line {l}: {}", e.message().trim())),
            None => file_error(e.message().trim().to_string()),
        }
    })?;
    // Every profile is checked, not only the one used: a secret written in the file is the
    // mistake to stop, wherever it is.
    for (pname, p) in &file.profiles {
        for (field, value) in secret_fields(p) {
            if let Some(v) = value
                && !v.starts_with("env:")
            {
                return Err(file_error(format!(
                    "profiles.{pname}.{field}: secrets are never written in this file; write \"env:NAME\" and set NAME in the environment"
                )));
            }
        }
        for (header, value) in &p.headers {
            if is_credential_name(header) && !value.starts_with("env:") {
                return Err(file_error(format!(
                    "profiles.{pname}.headers.{header}: this header carries a credential; write \"env:NAME\" and set NAME in the environment"
                )));
            }
        }
    }
    let known: Vec<&str> = file.profiles.keys().map(String::as_str).collect();
    let mut profiles = file.profiles.clone();
    profiles.remove(name).ok_or_else(|| ProfileError::Unknown {
        name: name.to_string(),
        path: path.to_path_buf(),
        known: if known.is_empty() {
            "it defines no profile".into()
        } else {
            format!("known profiles: {}", known.join(", "))
        },
    })
}

#[cfg(unix)]
fn check_permissions(path: &Path) -> Result<(), ProfileError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let refuse = |why: String| ProfileError::File {
        path: path.to_path_buf(),
        why,
    };
    let meta = std::fs::metadata(path).map_err(|e| refuse(format!("cannot be read ({e})")))?;
    // This process's user: the owner of a file it creates (no `unsafe` for geteuid).
    let me = tempfile::tempfile()
        .and_then(|f| f.metadata())
        .map(|m| m.uid())
        .map_err(|e| refuse(format!("cannot tell who owns it ({e})")))?;
    if meta.uid() != me && meta.uid() != 0 {
        return Err(refuse(format!(
            "belongs to another user (uid {}), who could send your keys elsewhere",
            meta.uid()
        )));
    }
    // Whoever may write the directory may put another file in its place.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(d) = std::fs::metadata(dir)
        && d.permissions().mode() & 0o022 != 0
        && d.permissions().mode() & 0o1000 == 0
    {
        return Err(refuse(format!(
            "is in {}, which other users can write to (mode {:o}); run chmod go-w on it",
            dir.display(),
            d.permissions().mode() & 0o777
        )));
    }
    let mode = meta.permissions().mode();
    if mode & 0o022 != 0 {
        return Err(ProfileError::File {
            path: path.to_path_buf(),
            why: format!(
                "is writable by other users (mode {:o}), who could send your keys elsewhere; run chmod go-w on it",
                mode & 0o777
            ),
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_: &Path) -> Result<(), ProfileError> {
    Ok(())
}

// ---- flags over the profile -----------------------------------------------------------------

/// Flags and profile in one: flags win field by field. The flags' JWT claims come back apart
/// (they are `k=v` text, the profile's are typed TOML values).
fn merge(f: Flags, mut p: RawProfile) -> Result<(RawProfile, Vec<String>), ProfileError> {
    let flag_headers = f
        .headers
        .iter()
        .map(|spec| Headers::split_flag(spec))
        .collect::<Result<Vec<_>, _>>()?;
    // A flag choosing how Authorization is made replaces the profile's choice, whatever it was.
    if f.bearer.is_some() || f.jwt_secret.is_some() || f.client_credentials {
        p.bearer = None;
        p.jwt_secret = None;
        p.jwt_claims.clear();
        p.jwt_ttl = None;
        p.jwt_audience = None;
        p.client_credentials = false;
        p.token_url = None;
        p.client_id = None;
        p.client_secret = None;
        p.scope = None;
        p.token_auth = None;
    }
    let mut headers = p.headers;
    for (name, value) in flag_headers {
        headers.retain(|n, _| !n.eq_ignore_ascii_case(&name));
        headers.insert(name, value);
    }
    let merged = RawProfile {
        url: f.url.or(p.url),
        tenant: f.tenant.or(p.tenant),
        headers,
        key: f.key.or(p.key),
        fallback_key: f.fallback_key.or(p.fallback_key),
        key_header: f.key_header.or(p.key_header),
        bearer: f.bearer.or(p.bearer),
        jwt_secret: f.jwt_secret.or(p.jwt_secret),
        jwt_claims: p.jwt_claims,
        jwt_ttl: f.jwt_ttl.map(Ttl::Text).or(p.jwt_ttl),
        jwt_audience: f.jwt_audience.or(p.jwt_audience),
        hmac_secret: f.hmac_secret.or(p.hmac_secret),
        hmac_key_id: f.hmac_key_id.or(p.hmac_key_id),
        hmac_key_header: f.hmac_key_header.or(p.hmac_key_header),
        client_credentials: f.client_credentials || p.client_credentials,
        token_url: f.token_url.or(p.token_url),
        client_id: f.client_id.or(p.client_id),
        client_secret: f.client_secret.or(p.client_secret),
        scope: f.scope.or(p.scope),
        token_auth: f.token_auth.or(p.token_auth),
        resource: f.resource.or(p.resource),
        retry_403: f.retry_403 || p.retry_403,
    };
    Ok((merged, f.jwt_claims))
}

/// Requires `value` when `needed`, naming both flags.
fn need<'a>(value: &'a Option<String>, flag: &str, by: &str) -> Result<&'a str, SetupError> {
    value
        .as_deref()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| SetupError::new(by, format!("needs {flag}")))
}

/// Refuses `value` unless `allowed`: a setting that would be silently ignored.
fn only_with(value: bool, flag: &str, needs: &str) -> Result<(), SetupError> {
    if value {
        Err(SetupError::new(flag, format!("has no effect without {needs}")))
    } else {
        Ok(())
    }
}

fn build(
    p: RawProfile,
    flag_claims: &[String],
    env: &dyn Fn(&str) -> Option<String>,
    profile: Option<String>,
) -> Result<Resolved, ProfileError> {
    let url = p
        .url
        .clone()
        .filter(|u| !u.trim().is_empty())
        .ok_or(ProfileError::NoUrl)?;
    let parsed =
        reqwest::Url::parse(url.trim()).map_err(|e| SetupError::new("url", format!("{url:?} is not a URL ({e})")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(SetupError::new("url", format!("{url:?} is not an http or https URL")).into());
    }
    let url = url.trim().to_string();

    // Which provider sets which header, to refuse two setting the same one.
    let mut owners: Vec<(HeaderName, String)> = Vec::new();
    let mut chain: Vec<Arc<dyn Auth>> = Vec::new();

    // 1. Fixed headers and the tenant: plain values, first so that nothing else is shadowed.
    let mut headers = Headers::new();
    for (name, value) in &p.headers {
        if is_credential_name(name) && !value.starts_with("env:") {
            tracing::warn!(
                "--header {name}: the value is on the command line, visible to other users (ps); prefer env:NAME"
            );
        }
        headers = headers.with("--header", name, value, env)?;
    }
    for n in headers.names() {
        owners.push((n.clone(), format!("--header {n}")));
    }
    if let Some(t) = &p.tenant {
        headers = headers.tenant(t, env)?;
        owners.push((
            HeaderName::from_static(crate::auth::headers::TENANT_HEADER),
            "--tenant".into(),
        ));
    }
    if !headers.is_empty() {
        chain.push(Arc::new(headers));
    }

    // 2. The API key (and its fallback).
    if let Some(key) = &p.key {
        let primary = Secret::from_env_ref("--key", key, env).map_err(SetupError::from)?;
        let fallback = match &p.fallback_key {
            Some(f) => Some(Secret::from_env_ref("--fallback-key", f, env).map_err(SetupError::from)?),
            None => None,
        };
        let pair = KeyPair::new(&primary, fallback.as_ref(), p.key_header.as_deref())?;
        owners.push((pair.header_name().clone(), "--key".into()));
        chain.push(Arc::new(pair));
    } else {
        only_with(p.fallback_key.is_some(), "--fallback-key", "--key")?;
        only_with(p.key_header.is_some(), "--key-header", "--key")?;
    }

    // 3. Authorization: one of a fixed bearer token, a minted JWT, client credentials.
    let chosen: Vec<&str> = [
        (p.bearer.is_some(), "--bearer"),
        (p.jwt_secret.is_some(), "--jwt-secret"),
        (p.client_credentials, "--client-credentials"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, f)| *f)
    .collect();
    if chosen.len() > 1 {
        return Err(ProfileError::Conflict(format!(
            "{} all set the Authorization header; choose one",
            chosen.join(" and ")
        )));
    }
    if let Some(b) = &p.bearer {
        let token = Secret::from_env_ref("--bearer", b, env).map_err(SetupError::from)?;
        chain.push(Arc::new(Bearer::new(&token)?));
        owners.push((http::header::AUTHORIZATION, "--bearer".into()));
    }
    if let Some(s) = &p.jwt_secret {
        let secret = Secret::from_env_ref("--jwt-secret", s, env).map_err(SetupError::from)?;
        let claims = claims(&p.jwt_claims, flag_claims)?;
        let ttl = match &p.jwt_ttl {
            None => std::time::Duration::from_secs(3600),
            Some(Ttl::Seconds(n)) => parse_ttl(&n.to_string())?,
            Some(Ttl::Text(t)) => parse_ttl(t)?,
        };
        let audience = p.jwt_audience.as_deref().map(Audience::parse).unwrap_or_default();
        chain.push(Arc::new(Jwt::new(JwtConfig {
            secret,
            claims,
            ttl,
            audience,
        })?));
        owners.push((http::header::AUTHORIZATION, "--jwt-secret".into()));
    } else {
        only_with(
            !p.jwt_claims.is_empty() || !flag_claims.is_empty(),
            "--jwt-claim",
            "--jwt-secret",
        )?;
        only_with(p.jwt_ttl.is_some(), "--jwt-ttl", "--jwt-secret")?;
        only_with(p.jwt_audience.is_some(), "--jwt-audience", "--jwt-secret")?;
    }
    if p.client_credentials {
        let by = "--client-credentials";
        let secret = need(&p.client_secret, "--client-secret", by)?;
        let config = ClientCredentialsConfig {
            token_url: need(&p.token_url, "--token-url", by)?.trim().to_string(),
            client_id: need(&p.client_id, "--client-id", by)?.trim().to_string(),
            client_secret: Secret::from_env_ref("--client-secret", secret, env).map_err(SetupError::from)?,
            scope: p.scope.clone().filter(|s| !s.trim().is_empty()),
            resource: match p.resource.as_deref().map(str::trim) {
                None => Some(url.clone()),
                Some("none") | Some("") => None,
                Some(r) => Some(r.to_string()),
            },
            token_auth: match &p.token_auth {
                Some(t) => TokenAuth::parse(t)?,
                None => TokenAuth::Basic,
            },
        };
        chain.push(Arc::new(ClientCredentials::new(config)?));
        owners.push((http::header::AUTHORIZATION, by.into()));
    } else {
        for (set, flag) in [
            (p.token_url.is_some(), "--token-url"),
            (p.client_id.is_some(), "--client-id"),
            (p.client_secret.is_some(), "--client-secret"),
            (p.scope.is_some(), "--scope"),
            (p.token_auth.is_some(), "--token-auth"),
            (p.resource.is_some(), "resource"),
        ] {
            only_with(set, flag, "--client-credentials")?;
        }
    }

    // 4. The HMAC signature, last: it covers the body only, and its headers are its own.
    if let Some(s) = &p.hmac_secret {
        let secret = Secret::from_env_ref("--hmac-secret", s, env).map_err(SetupError::from)?;
        let key_id = need(&p.hmac_key_id, "--hmac-key-id", "--hmac-secret")?;
        let hmac = Hmac::new(secret, key_id, p.hmac_key_header.as_deref())?;
        owners.push((hmac.key_header().clone(), "--hmac-key-id".into()));
        for h in [crate::auth::hmac::TIMESTAMP_HEADER, crate::auth::hmac::SIGNATURE_HEADER] {
            owners.push((HeaderName::from_static(h), "--hmac-secret".into()));
        }
        chain.push(Arc::new(hmac));
    } else {
        only_with(p.hmac_key_id.is_some(), "--hmac-key-id", "--hmac-secret")?;
        only_with(p.hmac_key_header.is_some(), "--hmac-key-header", "--hmac-secret")?;
    }

    for (i, (name, by)) in owners.iter().enumerate() {
        if let Some((_, first)) = owners[..i].iter().find(|(n, _)| n == name) {
            return Err(ProfileError::Conflict(format!(
                "{first} and {by} both set the {name} header; keep one{}",
                if by == "--hmac-key-id" {
                    " (or move the key id with --hmac-key-header)"
                } else {
                    ""
                }
            )));
        }
    }

    let auth: Arc<dyn Auth> = match chain.len() {
        1 => chain.remove(0),
        _ => Arc::new(Chain(chain)),
    };
    Ok(Resolved {
        url,
        auth,
        retry_403: p.retry_403,
        profile,
    })
}

/// The profile's claims (TOML values, typed as written) with the flags' over them.
fn claims(table: &toml::Table, flags: &[String]) -> Result<Map<String, Value>, SetupError> {
    let mut out = Map::new();
    for (k, v) in table {
        crate::auth::jwt::check_claim_name("jwt_claims", k)?;
        let v = serde_json::to_value(v)
            .map_err(|e| SetupError::new("jwt_claims", format!("{k}: cannot be a JSON value ({e})")))?;
        out.insert(k.clone(), v);
    }
    for spec in flags {
        let (k, v) = parse_claim(spec)?;
        out.insert(k, v);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOME" => Some("/home/u".into()),
            "KEY" | "KEY2" | "TOKEN" | "JWT" | "HMAC" | "CS" => Some(format!("value-of-{name}")),
            _ => None,
        }
    }

    fn flags(url: &str) -> Flags {
        Flags {
            url: Some(url.into()),
            ..Flags::default()
        }
    }

    #[test]
    fn config_dir_order() {
        assert_eq!(config_dir(&env), Some(PathBuf::from("/home/u/.config/mcpgate")));
        let xdg = |n: &str| match n {
            "XDG_CONFIG_HOME" => Some("/x".to_string()),
            other => env(other),
        };
        assert_eq!(config_dir(&xdg), Some(PathBuf::from("/x/mcpgate")));
        let rel = |n: &str| match n {
            "XDG_CONFIG_HOME" => Some("x".to_string()),
            other => env(other),
        };
        assert_eq!(config_dir(&rel), Some(PathBuf::from("/home/u/.config/mcpgate")));
        let own = |n: &str| match n {
            CONFIG_DIR_ENV => Some("/c".to_string()),
            other => xdg(other),
        };
        assert_eq!(config_dir(&own), Some(PathBuf::from("/c")));
        assert_eq!(config_dir(&|_| None), None);
    }

    #[test]
    fn chain_order_and_description() {
        let f = Flags {
            headers: vec!["X-Env: dev".into()],
            tenant: Some("acme".into()),
            key: Some("env:KEY".into()),
            fallback_key: Some("env:KEY2".into()),
            jwt_secret: Some("env:JWT".into()),
            jwt_claims: vec!["user_id=u1".into()],
            hmac_secret: Some("env:HMAC".into()),
            hmac_key_id: Some("c1".into()),
            hmac_key_header: Some("X-Key-Id".into()),
            ..flags("https://mcp.example.com/mcp")
        };
        let r = resolve(f, &env, None).unwrap();
        assert_eq!(
            r.auth.describe(),
            "headers x-env, x-tenant-id + API key in x-api-key (fallback key ready) + \
             HS256 JWT (ttl 3600s, audience the MCP URL) + HMAC signature (key id in x-key-id)"
        );
        assert!(!format!("{r:?}").contains("value-of"));
    }

    #[test]
    fn conflicts_and_missing_pieces() {
        let cases: Vec<(Flags, &str)> = vec![
            (
                Flags {
                    bearer: Some("env:TOKEN".into()),
                    jwt_secret: Some("env:JWT".into()),
                    ..flags("https://x/mcp")
                },
                "--bearer and --jwt-secret all set the Authorization header",
            ),
            (
                Flags {
                    key: Some("env:KEY".into()),
                    hmac_secret: Some("env:HMAC".into()),
                    hmac_key_id: Some("c1".into()),
                    ..flags("https://x/mcp")
                },
                "--key and --hmac-key-id both set the x-api-key header",
            ),
            (
                Flags {
                    headers: vec!["Authorization: env:TOKEN".into()],
                    bearer: Some("env:TOKEN".into()),
                    ..flags("https://x/mcp")
                },
                "--header authorization and --bearer both set",
            ),
            (
                Flags {
                    fallback_key: Some("env:KEY2".into()),
                    ..flags("https://x/mcp")
                },
                "--fallback-key: has no effect without --key",
            ),
            (
                Flags {
                    client_credentials: true,
                    token_url: Some("https://as/token".into()),
                    client_secret: Some("env:CS".into()),
                    ..flags("https://x/mcp")
                },
                "--client-credentials: needs --client-id",
            ),
            (
                Flags {
                    bearer: Some("value-of-TOKEN".into()),
                    ..flags("https://x/mcp")
                },
                "--bearer: give the name of an environment variable",
            ),
            (
                Flags {
                    bearer: Some("env:NOPE".into()),
                    ..flags("https://x/mcp")
                },
                "--bearer: environment variable NOPE is not set",
            ),
            (flags("ftp://x"), "url:"),
            (Flags::default(), "no MCP server URL"),
        ];
        for (f, want) in cases {
            let e = resolve(f, &env, None).unwrap_err().to_string();
            assert!(e.contains(want), "{e} (wanted {want})");
            assert!(!e.contains("value-of"), "{e}");
        }
    }
}
