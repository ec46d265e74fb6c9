//! `[auth]` validated: roles, the default-key variables, the external verifier's call and answer
//! mapping, the authorization servers named in the resource metadata. The JWT, HMAC and
//! introspection sections are checked when the gateway starts (their secrets come from the
//! environment), by the modules that run them.

use super::{ConfigError, err, raw};
use crate::auth::outbound::OutboundLimits;
use crate::auth::settings::{AuthConfig, ExternalConfig};
use mcpgate_core::principal::Role;
use std::path::PathBuf;
use std::time::Duration;

pub(super) fn parse_role(field: &'static str, r: &str) -> Result<Role, ConfigError> {
    Role::parse(r).ok_or_else(|| {
        err(
            field,
            format!("{r:?} is not a role; use guest, user, developer or admin"),
        )
    })
}

pub(super) fn validate_auth(a: raw::RawAuth) -> Result<AuthConfig, ConfigError> {
    let default_role = match a.default_role.as_deref() {
        None | Some("") | Some("none") => None,
        Some(r) => Some(parse_role("auth.default_role (MCP_DEFAULT_ROLE)", r)?),
    };
    for name in &a.default_key_env {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(err(
                "auth.default_key_env",
                format!("{name:?} is not an environment variable name"),
            ));
        }
    }
    let external = match a.external {
        None => None,
        Some(e) => {
            let url = reqwest::Url::parse(&e.url)
                .map_err(|x| err("auth.external.url", format!("{:?} is not a URL ({x})", e.url)))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(err("auth.external.url", "must start with http:// or https://"));
            }
            let header_text = e.header.unwrap_or_else(|| "authorization".into());
            let header = axum::http::HeaderName::from_bytes(header_text.as_bytes())
                .map_err(|_| err("auth.external.header", format!("{header_text:?} is not a header name")))?;
            let template = e.template.unwrap_or_else(|| "Bearer {key}".into());
            if !template.contains("{key}") {
                return Err(err("auth.external.template", "must contain {key}"));
            }
            Some(ExternalConfig {
                url,
                header,
                template,
                user_id_path: e.user_id_path.unwrap_or_else(|| "id".into()),
                role_path: e.role_path,
                permissions_path: e.permissions_path,
                tenant_path: e.tenant_path,
                name_path: e.name_path,
                default_role: match e.default_role.as_deref() {
                    Some(r) => parse_role("auth.external.default_role", r)?,
                    None => Role::User,
                },
                default_permissions: if e.default_permissions.is_empty() {
                    vec!["read".into()]
                } else {
                    e.default_permissions
                },
                cache_ttl: Duration::from_secs(e.cache_ttl_s.unwrap_or(60)),
                negative_cache_ttl: Duration::from_secs(e.negative_cache_ttl_s.unwrap_or(10)),
                timeout: Duration::from_millis(e.timeout_ms.unwrap_or(3000)),
                outbound: OutboundLimits::new(
                    ("auth.external.max_concurrent", e.max_concurrent),
                    ("auth.external.max_per_second", e.max_per_second),
                )
                .map_err(|(field, problem)| err(field, problem))?,
            })
        }
    };
    for s in &a.authorization_servers {
        let u = reqwest::Url::parse(s)
            .map_err(|e| err("auth.authorization_servers", format!("{s:?} is not a URL ({e})")))?;
        if u.scheme() != "https" && !matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]")) {
            return Err(err(
                "auth.authorization_servers",
                format!("{s:?} must use https (http only on loopback)"),
            ));
        }
    }
    let whoami_tool = match a.whoami_tool {
        None => Some("whoami".to_string()),
        Some(s) if s.is_empty() => None,
        Some(s) => Some(s),
    };
    Ok(AuthConfig {
        api_keys_env: a.api_keys_env.unwrap_or(true),
        keys_file: a.keys_file.map(PathBuf::from),
        default_role,
        default_permissions: a.default_permissions.unwrap_or_else(|| vec!["read".into()]),
        default_key_env: a.default_key_env,
        allow_query_key: a.allow_query_key,
        allow_tool_arg_key: a.allow_tool_arg_key,
        whoami_tool,
        external,
        hmac: a.hmac,
        jwt: a.jwt,
        introspection: a.introspection,
        authorization_servers: a.authorization_servers,
        required_scopes: a.required_scopes,
    })
}
