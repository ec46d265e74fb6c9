//! Configuration in two steps: [`raw::RawConfig`] is what the user wrote; [`Config`] is what the
//! gateway runs with, produced only by [`Config::validate`], whose errors name the field and the fix.

mod auth_section;
pub mod raw;

pub use crate::auth::settings::{AuthConfig, ExternalConfig};
use mcpgate_core::policy::{Policy, Rule};
use mcpgate_core::principal::Limits;
use raw::RawConfig;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:3210";
pub const DEFAULT_MAX_BODY: usize = 4 * 1024 * 1024;
/// hyper's HTTP/1 read buffer cannot be smaller than this, and it bounds the request head.
pub const MIN_HEADER_BYTES: usize = 8192;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub public_url: String,
    pub upstream: UpstreamConfig,
    pub http: HttpConfig,
    /// Sessions unused this long are forgotten (and their stdio child stopped).
    pub session_idle_timeout: Duration,
    /// Sessions one principal may hold open (callers without a credential share one count).
    pub max_sessions_per_principal: usize,
    pub metrics: MetricsConfig,
    /// `[admin]`: the admin API, when on.
    pub admin: AdminConfig,
    pub auth: AuthConfig,
    pub policy: Policy,
    pub limits: LimitsConfig,
    pub store_path: PathBuf,
    /// `store.url`: the shared PostgreSQL store (a secret: it may hold a password).
    pub store_url: Option<mcpgate_core::redact::Secret>,
    /// `[redis]`: the shared counters, replay claims and session owners.
    pub redis: Option<RedisConfig>,
    /// `store.reload_interval_ms`: how often the store is read for keys changed elsewhere (and,
    /// at least every second, for revoked grants). Revocations announced through Redis are read
    /// at once whatever it is.
    pub reload_interval: Duration,
    pub audit: AuditConfig,
    pub delegation: Option<DelegationConfig>,
    /// `[oauth]`: the authorization server, when on.
    pub oauth: Option<crate::oauth::OAuthSettings>,
    /// `[telemetry]`: OTLP traces, when an endpoint is set.
    pub telemetry: Option<crate::telemetry::TelemetryConfig>,
}

#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// A secret: it may hold a password.
    pub url: mcpgate_core::redact::Secret,
    pub on_error: RedisOnError,
    pub prefix: String,
}

/// What a rate-limit check does when Redis cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisOnError {
    /// Refuse the request (503, `Retry-After`): a limit is never exceeded.
    Deny,
    /// Count in this replica alone until Redis answers again (a limit may be exceeded up to
    /// the number of replicas times over meanwhile).
    AllowLocal,
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
    /// `delegation.source = "provider:<id>"`: the user's own token at that sign-in provider.
    pub provider: Option<String>,
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
        provider: match d.source.as_deref() {
            None => None,
            Some(s) => match s.strip_prefix("provider:") {
                Some(id) if !id.is_empty() => Some(id.to_string()),
                _ => {
                    return Err(err(
                        "delegation.source",
                        format!("{s:?}: write provider:<id>, naming one of oauth.providers (or leave it unset)"),
                    ));
                }
            },
        },
    })
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
    /// Hold each response until its record is committed (`audit.commit_before_response`).
    pub commit_before_response: bool,
}

#[derive(Debug, Clone)]
pub enum UpstreamConfig {
    Http(HttpUpstreamConfig),
    Stdio(StdioConfig),
    /// The gateway is embedded as a tower layer (`mcpgate-layer`): calls go to the service it
    /// wraps, in process. Never from a configuration file.
    Embedded(EmbeddedConfig),
}

#[derive(Debug, Clone)]
pub struct EmbeddedConfig {
    /// How long the wrapped service may take to start its answer.
    pub request_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct HttpUpstreamConfig {
    pub url: reqwest::Url,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
}

/// What a stdio upstream inherits from the gateway's environment by default: enough to run a
/// program, none of the gateway's secrets.
pub const DEFAULT_INHERITED_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "TERM",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "SYSTEMROOT",
];

#[derive(Debug, Clone)]
pub struct StdioConfig {
    pub program: String,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// Variables of the gateway's environment the child inherits (`upstream.inherit_env`);
    /// `["*"]`: all of them.
    pub inherit_env: Vec<String>,
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
    /// A request head must arrive whole within this (on HTTP/1.1 also between two requests of
    /// a kept-alive connection; on a new connection, for the first request of either protocol).
    pub header_read_timeout: Duration,
    /// A request body must arrive whole within this (enforced where the body is read).
    pub body_timeout: Duration,
    /// A connection with no request in progress is closed after this.
    pub idle_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_connections: usize,
    pub shutdown_grace: Duration,
    pub max_streams_per_principal: usize,
    pub max_streams: usize,
}

impl Default for HttpConfig {
    /// The defaults `Config::validate` applies to an empty `[http]` section.
    fn default() -> Self {
        HttpConfig {
            allowed_hosts: loopback_hosts(),
            allowed_origins: Vec::new(),
            max_body_bytes: DEFAULT_MAX_BODY,
            header_read_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_header_bytes: 16 * 1024,
            max_connections: 10_000,
            shutdown_grace: Duration::from_secs(10),
            max_streams_per_principal: 10,
            max_streams: 10_000,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct AdminConfig {
    /// `/admin/api/v1` is served (to admin-role API keys and admins' browser sessions).
    pub enabled: bool,
}

#[derive(Debug, Clone, Default)]
pub struct MetricsConfig {
    /// `/metrics` answers only an admin credential.
    pub require_auth: bool,
}

/// Seconds from the config, or the default; `min` seconds at least.
fn seconds(field: &'static str, value: Option<u64>, default: Duration, min: u64) -> Result<Duration, ConfigError> {
    match value {
        None => Ok(default),
        Some(s) if s < min => Err(err(field, format!("must be at least {min}"))),
        Some(s) => Ok(Duration::from_secs(s)),
    }
}

/// A count from the config, or the default; at least 1.
fn count(field: &'static str, value: Option<usize>, default: usize) -> Result<usize, ConfigError> {
    match value {
        None => Ok(default),
        Some(0) => Err(err(field, "must be at least 1")),
        Some(n) => Ok(n),
    }
}

/// The `[http]` timeouts and caps (hosts, origins and the body limit are checked beside).
fn validate_http_limits(h: &raw::RawHttp, base: HttpConfig) -> Result<HttpConfig, ConfigError> {
    let max_header_bytes = h.max_header_bytes.unwrap_or(base.max_header_bytes);
    if !(MIN_HEADER_BYTES..=1 << 20).contains(&max_header_bytes) {
        return Err(err(
            "http.max_header_bytes",
            format!("must be between {MIN_HEADER_BYTES} and 1048576"),
        ));
    }
    Ok(HttpConfig {
        header_read_timeout: seconds(
            "http.header_read_timeout_s",
            h.header_read_timeout_s,
            base.header_read_timeout,
            1,
        )?,
        body_timeout: seconds("http.body_timeout_s", h.body_timeout_s, base.body_timeout, 1)?,
        idle_timeout: seconds("http.idle_timeout_s", h.idle_timeout_s, base.idle_timeout, 1)?,
        shutdown_grace: seconds("http.shutdown_grace_s", h.shutdown_grace_s, base.shutdown_grace, 0)?,
        max_header_bytes,
        max_connections: count("http.max_connections", h.max_connections, base.max_connections)?,
        max_streams_per_principal: count(
            "http.max_streams_per_principal",
            h.max_streams_per_principal,
            base.max_streams_per_principal,
        )?,
        max_streams: count("http.max_streams", h.max_streams, base.max_streams)?,
        ..base
    })
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
        let session_idle_timeout = Duration::from_secs(up.idle_session_timeout_s.unwrap_or(600));
        if session_idle_timeout.is_zero() {
            return Err(err("upstream.idle_session_timeout_s", "must be greater than 0"));
        }
        let max_sessions_per_principal = count(
            "upstream.max_sessions_per_principal",
            up.max_sessions_per_principal,
            100,
        )?;
        let upstream = match (up.url, up.command) {
            (None, None) if up.embedded => UpstreamConfig::Embedded(EmbeddedConfig { request_timeout }),
            (Some(_), _) | (_, Some(_)) if up.embedded => {
                return Err(err(
                    "upstream",
                    "an embedded gateway forwards to the service its layer wraps: set no `url` or `command`",
                ));
            }
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
                    inherit_env: match up.inherit_env {
                        None => DEFAULT_INHERITED_ENV.iter().map(|v| v.to_string()).collect(),
                        Some(list) => {
                            if list.iter().any(|v| v == "*") {
                                if list.len() > 1 {
                                    return Err(err("upstream.inherit_env", "\"*\" stands alone"));
                                }
                                tracing::warn!(
                                    "upstream.inherit_env = [\"*\"]: the stdio upstream inherits the gateway's whole \
                                     environment, secrets included (store URL, encryption key, API keys)"
                                );
                            } else if let Some(bad) = list
                                .iter()
                                .find(|v| v.is_empty() || v.contains('=') || v.contains('\0'))
                            {
                                return Err(err(
                                    "upstream.inherit_env",
                                    format!("{bad:?} is not an environment variable name"),
                                ));
                            }
                            list
                        }
                    },
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

        let http_limits = validate_http_limits(&raw.http, HttpConfig::default())?;
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
        let http = HttpConfig {
            allowed_hosts,
            allowed_origins,
            max_body_bytes,
            ..http_limits
        };
        let admin = AdminConfig {
            enabled: raw.admin.enabled.unwrap_or(false),
        };
        let telemetry = std::mem::take(&mut raw.telemetry).validate()?;
        let metrics = MetricsConfig {
            require_auth: raw.metrics.require_auth.unwrap_or(false),
        };
        let auth = auth_section::validate_auth(raw.auth)?;
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
        let oauth = crate::oauth::OAuthSettings::validate(raw.oauth, &public_url).map_err(|(f, p)| err(f, p))?;
        if let Some(id) = delegation.as_ref().and_then(|d| d.provider.as_deref())
            && !oauth.as_ref().is_some_and(|o| o.providers.iter().any(|p| p.id == id))
        {
            return Err(err(
                "delegation.source",
                format!("provider:{id}: there is no such sign-in provider (oauth.providers)"),
            ));
        }
        let store_path = PathBuf::from(raw.store.path.unwrap_or_else(|| "mcpgate.db".into()));
        let reload_interval = reload_interval(raw.store.reload_interval_ms)?;
        let store_url = match raw.store.url {
            None => None,
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                Some(mcpgate_core::redact::Secret::new(u))
            }
            // (Not echoed: it may hold a password.)
            Some(_) => return Err(err("store.url", "must be a postgres:// (or postgresql://) URL")),
        };
        let redis = match raw.redis.url {
            None => {
                if raw.redis.on_error.is_some() || raw.redis.prefix.is_some() {
                    return Err(err(
                        "redis.url",
                        "redis.on_error and redis.prefix need redis.url (or MCPGATE_REDIS_URL)",
                    ));
                }
                None
            }
            Some(u) if u.starts_with("redis://") || u.starts_with("rediss://") => {
                let on_error = match raw.redis.on_error.as_deref() {
                    None | Some("deny") => RedisOnError::Deny,
                    Some("allow_local") => RedisOnError::AllowLocal,
                    Some(other) => {
                        return Err(err(
                            "redis.on_error",
                            format!("{other:?}: give \"deny\" or \"allow_local\""),
                        ));
                    }
                };
                let prefix = raw.redis.prefix.unwrap_or_else(|| "mcpgate:".into());
                if prefix.is_empty() || prefix.len() > 64 || prefix.chars().any(|c| c.is_control() || c == ' ') {
                    return Err(err("redis.prefix", "give 1 to 64 characters without spaces"));
                }
                Some(RedisConfig {
                    url: mcpgate_core::redact::Secret::new(u),
                    on_error,
                    prefix,
                })
            }
            // (Not echoed: it may hold a password.)
            Some(_) => return Err(err("redis.url", "must be a redis:// or rediss:// URL")),
        };
        let audit = AuditConfig {
            store: raw.audit.store.unwrap_or(true),
            jsonl: raw.audit.jsonl.map(PathBuf::from),
            retention: match raw.audit.retention_days.unwrap_or(30) {
                0 => None,
                days => Some(Duration::from_secs(days.saturating_mul(86_400))),
            },
            commit_before_response: raw.audit.commit_before_response.unwrap_or(false),
        };
        Ok(Config {
            delegation,
            oauth,
            auth,
            policy,
            limits,
            store_path,
            store_url,
            redis,
            reload_interval,
            audit,
            listen,
            public_url,
            upstream,
            http,
            session_idle_timeout,
            max_sessions_per_principal,
            metrics,
            admin,
            telemetry,
        })
    }
}

/// `store.reload_interval_ms`: 50 ms (a read of one row twenty times a second per gateway) to
/// 10 minutes (longer leaves a change made without Redis unseen for too long); default 250 ms.
fn reload_interval(ms: Option<u64>) -> Result<Duration, ConfigError> {
    const BOUNDS: std::ops::RangeInclusive<u64> = 50..=600_000;
    match ms {
        None => Ok(crate::auth::api_keys::POLL),
        Some(ms) if BOUNDS.contains(&ms) => Ok(Duration::from_millis(ms)),
        Some(ms) => Err(err(
            "store.reload_interval_ms",
            format!(
                "{ms} is out of bounds: give 50 to 600000 milliseconds (default 250; with Redis, revocations made \
                 through a gateway reach the others at once, so a longer interval such as 5000 only delays changes \
                 made by the CLI or by hand)"
            ),
        )),
    }
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
mod tests;

/// `store.reload_interval_ms` (beside the other validation tests, which are another's to edit).
#[cfg(test)]
mod reload_interval_tests {
    use super::*;

    fn check(store: &str) -> Result<Config, String> {
        let toml = format!("[upstream]\nurl = \"http://127.0.0.1:9/mcp\"\n[store]\n{store}");
        Config::validate(RawConfig::from_toml(&toml)?).map_err(|e| e.to_string())
    }

    #[test]
    fn the_reload_interval_has_a_default_and_bounds() {
        assert_eq!(check("").unwrap().reload_interval, Duration::from_millis(250));
        for ms in [50, 5000, 600_000] {
            assert_eq!(
                check(&format!("reload_interval_ms = {ms}")).unwrap().reload_interval,
                Duration::from_millis(ms)
            );
        }
        for ms in [0, 49, 600_001] {
            let e = check(&format!("reload_interval_ms = {ms}")).unwrap_err();
            assert!(
                e.contains("store.reload_interval_ms") && e.contains("50 to 600000"),
                "{e}"
            );
        }
        assert!(check("reload_interval_ms = -1").is_err());
        assert!(check("reload_interval_ms = \"250\"").is_err());
    }
}
