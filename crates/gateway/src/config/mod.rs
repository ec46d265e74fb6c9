//! Configuration in two steps: [`raw::RawConfig`] is what the user wrote; [`Config`] is what the
//! gateway runs with, produced only by [`Config::validate`], whose errors name the field and the fix.

pub mod raw;

use mcpgate_core::policy::{Policy, Rule};
use mcpgate_core::principal::{Limits, Role};
use raw::RawConfig;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:3210";
pub const DEFAULT_MAX_BODY: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub public_url: String,
    pub upstream: UpstreamConfig,
    pub http: HttpConfig,
    /// Sessions unused this long are forgotten (and their stdio child stopped).
    pub session_idle_timeout: Duration,
    pub auth: AuthConfig,
    pub policy: Policy,
    pub limits: LimitsConfig,
    pub store_path: PathBuf,
    pub audit: AuditConfig,
    pub delegation: Option<DelegationConfig>,
}

#[derive(Debug, Clone)]
pub struct DelegationConfig {
    pub header: Option<(axum::http::HeaderName, String)>,
    pub tool_argument: Option<String>,
    pub claim_paths: Vec<String>,
    pub env_fallback: Vec<String>,
    pub required: bool,
    pub identity_headers: bool,
    pub encryption_key_env: String,
}

fn validate_delegation(d: raw::RawDelegation) -> Result<DelegationConfig, ConfigError> {
    let header = match d.header {
        None => None,
        Some(h) => {
            let name = axum::http::HeaderName::from_bytes(h.as_bytes())
                .map_err(|_| err("delegation.header", format!("{h:?} is not a header name")))?;
            let template = d.template.unwrap_or_else(|| "Bearer {credential}".into());
            if !template.contains("{credential}") {
                return Err(err("delegation.template", "must contain {credential}"));
            }
            Some((name, template))
        }
    };
    if header.is_none() && d.tool_argument.is_none() {
        return Err(err(
            "delegation",
            "set `header` and/or `tool_argument`: where the credential goes upstream",
        ));
    }
    Ok(DelegationConfig {
        header,
        tool_argument: d.tool_argument,
        claim_paths: d.claim_paths.unwrap_or_else(|| {
            vec![
                "kubiya_api_key".into(),
                "api_key".into(),
                "metadata.kubiya_api_key".into(),
            ]
        }),
        env_fallback: d.env_fallback,
        required: d.required.unwrap_or(true),
        identity_headers: d.identity_headers,
        encryption_key_env: d.encryption_key_env.unwrap_or_else(|| "MCPGATE_ENCRYPTION_KEY".into()),
    })
}

#[derive(Debug, Clone)]
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
    pub hmac: Option<crate::auth::hmac::RawHmac>,
    pub jwt: Option<crate::auth::jwt::RawJwt>,
    pub introspection: Option<crate::auth::introspect::RawIntrospection>,
    pub authorization_servers: Vec<String>,
    pub required_scopes: Vec<String>,
}

#[derive(Debug, Clone)]
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
}

#[derive(Debug, Clone, Default)]
pub struct LimitsConfig {
    pub default: Limits,
    pub tools: Vec<(Vec<String>, Limits)>,
}

impl LimitsConfig {
    /// The per-tool limits for `tool`: the first entry whose globs match.
    pub fn for_tool(&self, tool: &str) -> Option<&Limits> {
        self.tools
            .iter()
            .find(|(globs, _)| globs.iter().any(|g| mcpgate_core::policy::glob(g, tool)))
            .map(|(_, l)| l)
    }
}

#[derive(Debug, Clone)]
pub struct AuditConfig {
    pub store: bool,
    pub jsonl: Option<PathBuf>,
    /// `None`: keep every record.
    pub retention: Option<Duration>,
}

#[derive(Debug, Clone)]
pub enum UpstreamConfig {
    Http(HttpUpstreamConfig),
    Stdio(StdioConfig),
}

#[derive(Debug, Clone)]
pub struct HttpUpstreamConfig {
    pub url: reqwest::Url,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct StdioConfig {
    pub program: String,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub cwd: Option<PathBuf>,
    pub request_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_sessions: usize,
    pub restart_backoff_max: Duration,
}

#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub allowed_hosts: Vec<String>,
    pub allowed_origins: Vec<String>,
    pub max_body_bytes: usize,
}

/// A configuration error: which field, what is wrong, how to fix it.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct ConfigError {
    pub field: &'static str,
    pub problem: String,
}

fn err(field: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        field,
        problem: problem.into(),
    }
}

pub fn loopback_hosts() -> Vec<String> {
    ["localhost", "127.0.0.1", "[::1]"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

impl Config {
    pub fn validate(mut raw: RawConfig) -> Result<Config, ConfigError> {
        // `delegation.claim_paths` says where tokens carry the user's upstream credential: the
        // token verifiers read it from there (unless `auth.jwt.upstream_credential_claims` is set).
        if let Some(paths) = raw.delegation.as_ref().and_then(|d| d.claim_paths.clone())
            && let Some(jwt) = raw.auth.jwt.as_mut()
            && jwt.upstream_credential_claims.is_none()
        {
            jwt.upstream_credential_claims = Some(paths);
        }
        let listen_text = raw.listen.unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            err(
                "listen",
                format!("{listen_text:?} is not host:port; write e.g. \"127.0.0.1:3210\""),
            )
        })?;
        let public_url = match raw.public_url {
            Some(u) => {
                let parsed = reqwest::Url::parse(&u).map_err(|e| {
                    err(
                        "public_url",
                        format!("{u:?} is not a URL ({e}); write e.g. \"https://mcp.example.com\""),
                    )
                })?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(err("public_url", "must start with http:// or https://"));
                }
                u.trim_end_matches('/').to_string()
            }
            None => format!("http://{listen}"),
        };

        let up = raw.upstream;
        let connect_timeout = Duration::from_millis(up.connect_timeout_ms.unwrap_or(5_000));
        let request_timeout = Duration::from_millis(up.request_timeout_ms.unwrap_or(300_000));
        if request_timeout.is_zero() {
            return Err(err("upstream.request_timeout_ms", "must be greater than 0"));
        }
        let session_idle_timeout = Duration::from_secs(up.idle_session_timeout_s.unwrap_or(1800));
        if session_idle_timeout.is_zero() {
            return Err(err("upstream.idle_session_timeout_s", "must be greater than 0"));
        }
        let upstream = match (up.url, up.command) {
            (Some(_), Some(_)) => {
                return Err(err(
                    "upstream",
                    "set either `url` (HTTP upstream) or `command` (stdio upstream), not both",
                ));
            }
            (None, None) => {
                return Err(err(
                    "upstream",
                    "no upstream: set `upstream.url`, `upstream.command`, --upstream-url, --upstream-cmd, or use --demo",
                ));
            }
            (Some(url), None) => {
                let parsed = reqwest::Url::parse(&url).map_err(|e| {
                    err(
                        "upstream.url",
                        format!("{url:?} is not a URL ({e}); write e.g. \"http://127.0.0.1:8000/mcp\""),
                    )
                })?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(err("upstream.url", "must start with http:// or https://"));
                }
                UpstreamConfig::Http(HttpUpstreamConfig {
                    url: parsed,
                    connect_timeout,
                    request_timeout,
                })
            }
            (None, Some(cmd)) => {
                let mut words = shlex::split(&cmd)
                    .ok_or_else(|| err("upstream.command", "unbalanced quotes in the command line"))?;
                if words.is_empty() {
                    return Err(err("upstream.command", "is empty; write the program and its arguments"));
                }
                let program = words.remove(0);
                words.extend(up.args);
                UpstreamConfig::Stdio(StdioConfig {
                    program,
                    args: words,
                    env: up.env,
                    cwd: up.cwd.map(PathBuf::from),
                    request_timeout,
                    idle_timeout: session_idle_timeout,
                    max_sessions: up.max_sessions.unwrap_or(1000),
                    restart_backoff_max: Duration::from_millis(up.restart_backoff_max_ms.unwrap_or(30_000)),
                })
            }
        };
        if let UpstreamConfig::Stdio(s) = &upstream
            && s.max_sessions == 0
        {
            return Err(err("upstream.max_sessions", "must be at least 1"));
        }

        let allowed_hosts = raw.http.allowed_hosts.unwrap_or_else(loopback_hosts);
        for h in &allowed_hosts {
            if h.is_empty() || h.contains('/') {
                return Err(err(
                    "http.allowed_hosts",
                    format!("{h:?} is not a host name; write e.g. \"mcp.example.com\" or \"*\""),
                ));
            }
        }
        let allowed_origins = raw.http.allowed_origins.unwrap_or_default();
        for o in &allowed_origins {
            if o != "*" && !(o.starts_with("http://") || o.starts_with("https://")) {
                return Err(err(
                    "http.allowed_origins",
                    format!("{o:?} must be scheme://host[:port] or \"*\""),
                ));
            }
        }
        let max_body_bytes = raw.http.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY);
        if max_body_bytes < 1024 {
            return Err(err("http.max_body_bytes", "must be at least 1024"));
        }
        let auth = validate_auth(raw.auth)?;
        let mut policy = validate_policy(raw.policy.rules)?;
        if auth.allow_tool_arg_key {
            policy.allow_anonymous_sessions();
        }
        let limits = LimitsConfig {
            default: raw.limits.default,
            tools: raw
                .limits
                .tools
                .into_iter()
                .map(|t| {
                    (
                        t.tools,
                        Limits {
                            per_minute: t.per_minute,
                            per_hour: t.per_hour,
                            per_day: t.per_day,
                        },
                    )
                })
                .collect(),
        };
        for (globs, l) in &limits.tools {
            if globs.is_empty() {
                return Err(err("limits.tools", "each entry needs `tools = [\"glob\", …]`"));
            }
            if [l.per_minute, l.per_hour, l.per_day].contains(&Some(0)) {
                return Err(err(
                    "limits.tools",
                    "a limit of 0 would refuse every call; use a policy rule with deny = true",
                ));
            }
        }
        let delegation = raw.delegation.map(validate_delegation).transpose()?;
        let store_path = PathBuf::from(raw.store.path.unwrap_or_else(|| "mcpgate.db".into()));
        let audit = AuditConfig {
            store: raw.audit.store.unwrap_or(true),
            jsonl: raw.audit.jsonl.map(PathBuf::from),
            retention: match raw.audit.retention_days.unwrap_or(30) {
                0 => None,
                days => Some(Duration::from_secs(days.saturating_mul(86_400))),
            },
        };
        Ok(Config {
            delegation,
            auth,
            policy,
            limits,
            store_path,
            audit,
            listen,
            public_url,
            upstream,
            http: HttpConfig {
                allowed_hosts,
                allowed_origins,
                max_body_bytes,
            },
            session_idle_timeout,
        })
    }
}

fn parse_role(field: &'static str, r: &str) -> Result<Role, ConfigError> {
    Role::parse(r).ok_or_else(|| {
        err(
            field,
            format!("{r:?} is not a role; use guest, user, developer or admin"),
        )
    })
}

fn validate_auth(a: raw::RawAuth) -> Result<AuthConfig, ConfigError> {
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

fn validate_policy(rules: Vec<Rule>) -> Result<Policy, ConfigError> {
    for (i, r) in rules.iter().enumerate() {
        if r.public && (r.role.is_some() || !r.permissions.is_empty() || !r.scopes.is_empty()) {
            return Err(err(
                "policy.rules",
                format!(
                    "rule #{}: a public rule cannot also require a role, permissions or scopes",
                    i + 1
                ),
            ));
        }
        if r.public && r.deny {
            return Err(err(
                "policy.rules",
                format!("rule #{}: public and deny contradict each other", i + 1),
            ));
        }
    }
    Ok(Policy::new(rules))
}

#[cfg(test)]
mod tests {
    use super::*;
    use raw::Overrides;

    fn check(toml: &str) -> Result<Config, String> {
        let raw = RawConfig::from_toml(toml)?;
        Config::validate(raw).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_layers() {
        let mut raw = RawConfig::from_toml("[upstream]\nurl = \"http://127.0.0.1:9/mcp\"").unwrap();
        raw.apply_env(|k| (k == raw::env::LISTEN).then(|| "127.0.0.1:4000".to_string()))
            .unwrap();
        raw.apply_overrides(&Overrides {
            upstream_cmd: Some("server --stdio 'a b'".into()),
            ..Default::default()
        });
        let c = Config::validate(raw).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:4000");
        match c.upstream {
            UpstreamConfig::Stdio(s) => {
                assert_eq!(s.program, "server");
                assert_eq!(s.args, vec!["--stdio", "a b"]);
            }
            UpstreamConfig::Http(_) => panic!("CLI flag must win over the file"),
        }
        assert_eq!(c.http.allowed_hosts, loopback_hosts());
        assert_eq!(c.public_url, "http://127.0.0.1:4000");
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            ("lisen = \"x\"", "unknown field"),
            ("listen = \"nope\"\n[upstream]\nurl=\"http://a/\"", "listen:"),
            ("[upstream]\nurl = \"ftp://a\"", "upstream.url:"),
            ("[upstream]\nurl = \"http://a\"\ncommand = \"x\"", "upstream:"),
            ("", "no upstream"),
            ("[upstream]\ncommand = \"'unbalanced\"", "upstream.command:"),
            (
                "[upstream]\nurl = \"http://a\"\n[http]\nmax_body_bytes = 1",
                "http.max_body_bytes:",
            ),
            (
                "[upstream]\nurl = \"http://a\"\n[http]\nallowed_origins = [\"example.com\"]",
                "http.allowed_origins:",
            ),
        ];
        for (toml, want) in cases {
            let e = check(toml).unwrap_err();
            assert!(e.contains(want), "{toml:?}: {e}");
        }
    }

    #[test]
    fn bad_env_values_are_named() {
        let mut raw = RawConfig::default();
        let e = raw
            .apply_env(|k| (k == raw::env::MAX_BODY_BYTES).then(|| "lots".to_string()))
            .unwrap_err();
        assert!(e.contains("MCPGATE_MAX_BODY_BYTES"));
    }
}
