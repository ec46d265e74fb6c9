//! The authentication settings as validated by `config` and run by the chain. `config` reads the
//! file and the environment and builds these; nothing here reads `config`.

use mcpgate_core::principal::Role;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
/// `[auth]` validated (by `config`): what the chain runs with.
pub struct AuthConfig {
    pub api_keys_env: bool,
    pub keys_file: Option<PathBuf>,
    pub default_role: Option<Role>,
    pub default_permissions: Vec<String>,
    pub default_key_env: Vec<String>,
    pub allow_query_key: bool,
    pub allow_tool_arg_key: bool,
    pub whoami_tool: Option<String>,
    pub external: Option<ExternalConfig>,
    /// Checked when the gateway starts (the secrets come from the environment).
    pub hmac: Option<super::hmac::RawHmac>,
    pub jwt: Option<super::jwt::RawJwt>,
    pub introspection: Option<super::introspect::IntrospectionSection>,
    pub authorization_servers: Vec<String>,
    pub required_scopes: Vec<String>,
}

#[derive(Debug, Clone)]
/// `[auth.external]` validated: the external verifier's call and how its answer maps to a caller.
pub struct ExternalConfig {
    pub url: reqwest::Url,
    pub header: axum::http::HeaderName,
    pub template: String,
    pub user_id_path: String,
    pub role_path: Option<String>,
    pub permissions_path: Option<String>,
    pub tenant_path: Option<String>,
    pub name_path: Option<String>,
    pub default_role: Role,
    pub default_permissions: Vec<String>,
    pub cache_ttl: Duration,
    pub negative_cache_ttl: Duration,
    pub timeout: Duration,
    pub outbound: super::outbound::OutboundLimits,
}
