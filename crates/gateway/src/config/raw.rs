//! The configuration as written: a TOML file, then `MCPGATE_*` environment variables, then CLI
//! flags, each layer overriding the one before. Unknown keys are refused so a typo never silently
//! turns a protection off.

use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Address to listen on, `host:port`.
    pub listen: Option<String>,
    /// The URL clients use to reach the gateway (for metadata documents); derived from `listen`.
    pub public_url: Option<String>,
    #[serde(default)]
    pub upstream: RawUpstream,
    #[serde(default)]
    pub http: RawHttp,
    #[serde(default)]
    pub auth: RawAuth,
    #[serde(default)]
    pub policy: RawPolicy,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub store: RawStore,
    #[serde(default)]
    pub audit: RawAudit,
    /// `[redis]`: rate limits, replay claims and session owners shared by every replica.
    #[serde(default)]
    pub redis: RawRedis,
    #[serde(default)]
    pub metrics: RawMetrics,
    /// `[admin]`: the admin API under `/admin/api/v1`.
    #[serde(default)]
    pub admin: RawAdmin,
    /// `[telemetry]`: OpenTelemetry traces over OTLP (off unless an endpoint is set).
    #[serde(default)]
    pub telemetry: crate::telemetry::RawTelemetry,
    /// Identity delegation: the user's own credential toward the upstream (seed 003).
    pub delegation: Option<RawDelegation>,
    /// The authorization server (`crate::oauth`); absent: off.
    pub oauth: Option<crate::oauth::RawOAuth>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDelegation {
    /// Header to carry the credential upstream (e.g. `Authorization`); unset: no header.
    pub header: Option<String>,
    /// Value template; `{credential}` is replaced (default `Bearer {credential}`).
    pub template: Option<String>,
    /// Also (or instead) put the credential into this `tools/call` argument (e.g. `api_key`).
    pub tool_argument: Option<String>,
    /// Token claims that may carry the credential, first found wins (seed 003).
    pub claim_paths: Option<Vec<String>>,
    /// Environment variables tried in order when the user has none (seed 003's `KUBIYA_API_KEY`).
    #[serde(default)]
    pub env_fallback: Vec<String>,
    /// Refuse a tool call when no credential can be found for its caller (default true).
    pub required: Option<bool>,
    /// Send `X-MCP-User-Id`, `X-MCP-Tenant-Id`, `X-MCP-Role` and `X-MCP-Permissions` upstream.
    #[serde(default)]
    pub identity_headers: bool,
    /// Environment variable holding the key that seals held credentials
    /// (default `MCPGATE_ENCRYPTION_KEY`; 32 bytes, base64 or hex).
    pub encryption_key_env: Option<String>,
    /// Where the credential comes from: unset, the token's claims, then the one held for the
    /// key, then `env_fallback`; `"provider:<id>"`, only the user's own token at that sign-in
    /// provider (`[[oauth.providers]]`), kept sealed when they sign in there and refreshed.
    pub source: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    /// Read seed 001's `MCP_API_KEYS` JSON from the environment (default true).
    pub api_keys_env: Option<bool>,
    /// A JSON file of keys in the same shape as `MCP_API_KEYS`.
    pub keys_file: Option<String>,
    /// Role for callers with no credential (`MCP_DEFAULT_ROLE`); unset: they are refused.
    pub default_role: Option<String>,
    /// Permissions of callers with no credential when `default_role` is set (default `["read"]`).
    pub default_permissions: Option<Vec<String>>,
    /// Environment variables tried in order for a server-side default key (seed 000); empty: off.
    #[serde(default)]
    pub default_key_env: Vec<String>,
    /// Accept `?api_key=` in the URL. The MCP spec forbids credentials in URLs: opt-in only.
    #[serde(default)]
    pub allow_query_key: bool,
    /// Accept an `api_key` argument in `tools/call` (seed 000). Opt-in only.
    #[serde(default)]
    pub allow_tool_arg_key: bool,
    /// Name of the gateway's own who-am-I tool; empty switches it off (default `whoami`).
    pub whoami_tool: Option<String>,
    pub external: Option<RawExternal>,
    /// HMAC-signed requests (seed 002).
    pub hmac: Option<crate::auth::hmac::RawHmac>,
    /// JWT bearer tokens: HS* with a shared secret, or RS/PS/ES/EdDSA via JWKS / OIDC discovery.
    pub jwt: Option<crate::auth::jwt::RawJwt>,
    /// Opaque bearer tokens checked by token introspection (RFC 7662).
    pub introspection: Option<crate::auth::introspect::IntrospectionSection>,
    /// Authorization servers named in the protected-resource metadata (RFC 9728).
    #[serde(default)]
    pub authorization_servers: Vec<String>,
    /// Scopes every token must carry (seed 003's `required_scopes`).
    #[serde(default)]
    pub required_scopes: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExternal {
    /// Endpoint of the vendor's API that answers for a valid key (e.g. `GET /me`).
    pub url: String,
    /// Header that carries the key (default `Authorization`).
    pub header: Option<String>,
    /// Value template; `{key}` is replaced by the key (default `Bearer {key}`).
    pub template: Option<String>,
    /// Dotted paths into the JSON answer.
    pub user_id_path: Option<String>,
    pub role_path: Option<String>,
    pub permissions_path: Option<String>,
    pub tenant_path: Option<String>,
    pub name_path: Option<String>,
    /// Role and permissions when the answer has none.
    pub default_role: Option<String>,
    #[serde(default)]
    pub default_permissions: Vec<String>,
    pub cache_ttl_s: Option<u64>,
    pub negative_cache_ttl_s: Option<u64>,
    pub timeout_ms: Option<u64>,
    /// Ceilings on calls to the vendor (defaults 16 at once, 20 per second): a caller past them
    /// gets 503 with `Retry-After`, so unknown keys cannot flood the vendor.
    pub max_concurrent: Option<u32>,
    pub max_per_second: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    #[serde(default)]
    pub rules: Vec<mcpgate_core::policy::Rule>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// Limits for every principal whose key sets none.
    #[serde(default)]
    pub default: mcpgate_core::principal::Limits,
    #[serde(default)]
    pub tools: Vec<RawToolLimit>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawToolLimit {
    pub tools: Vec<String>,
    pub per_minute: Option<u32>,
    pub per_hour: Option<u32>,
    pub per_day: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    /// SQLite file for keys and audit (default `mcpgate.db` next to the config file, or in the
    /// working directory).
    pub path: Option<String>,
    /// A shared PostgreSQL store instead (`postgres://user:password@host/db`, several gateways
    /// on one database); `MCPGATE_STORE_URL` sets it without putting the password in a file.
    pub url: Option<String>,
    /// How often each gateway reads the store's keys version (default 250 ms; 50 to 600000) and
    /// the revoked grants (the same, but at least every second), to pick up changes others made.
    /// With Redis, revocations made through a gateway reach every replica at once, so this is
    /// only the backstop for writers that announce nothing (the CLI, psql) and may be longer.
    pub reload_interval_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRedis {
    /// `redis://[user:password@]host:port[/db]` or `rediss://…` (TLS); `MCPGATE_REDIS_URL` sets it
    /// without putting the password in a file. Unset: limits, replay claims and session owners
    /// stay in this process.
    pub url: Option<String>,
    /// When Redis cannot answer a rate-limit check: `deny` (default: the request is refused with
    /// 503 and `Retry-After`) or `allow_local` (counted by this replica alone until Redis is back).
    /// Replay checks and session lookups always fail closed.
    pub on_error: Option<String>,
    /// Prefix of every key mcpgate writes (default `mcpgate:`), so deployments can share a Redis.
    pub prefix: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAudit {
    /// Write audit records to the embedded store (default true).
    pub store: Option<bool>,
    /// Also append them as JSON lines to this file.
    pub jsonl: Option<String>,
    /// Records older than this many days are deleted from the store (default 30; 0 keeps all).
    pub retention_days: Option<u64>,
    /// Hold each response until its record is committed: a `kill -9` then loses no record of an
    /// answered request, at a cost in throughput (default false: records are committed within
    /// about 10 ms of their response).
    pub commit_before_response: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    /// Streamable HTTP endpoint of the upstream MCP server.
    pub url: Option<String>,
    /// A command line that starts a stdio MCP server (split like a shell would, no shell run).
    pub command: Option<String>,
    /// Extra arguments appended to `command`.
    #[serde(default)]
    pub args: Vec<String>,
    /// Environment for the child process (added to the gateway's own).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Variables of the gateway's own environment the child inherits (besides `env`). Unset: a
    /// short list that programs need to run and nothing else (`PATH`, `HOME`, `USER`, `LOGNAME`,
    /// `SHELL`, `TERM`, `LANG`, `LC_ALL`, `LC_CTYPE`, `TZ`, `TMPDIR`, `SYSTEMROOT`) — never the
    /// gateway's secrets (`MCPGATE_STORE_URL`, `MCPGATE_ENCRYPTION_KEY`, `MCP_API_KEYS`,
    /// `JWT_SECRET`, …). `["*"]` passes everything (logged as a warning).
    pub inherit_env: Option<Vec<String>>,
    /// Working directory for the child process.
    pub cwd: Option<String>,
    pub connect_timeout_ms: Option<u64>,
    pub request_timeout_ms: Option<u64>,
    pub idle_session_timeout_s: Option<u64>,
    pub max_sessions: Option<usize>,
    /// Sessions one principal may hold open at once; callers without a credential share one
    /// count (default 100).
    pub max_sessions_per_principal: Option<usize>,
    pub restart_backoff_max_ms: Option<u64>,
    /// Set by `mcpgate-layer` (never by a file): the upstream is the service the layer wraps.
    #[serde(skip)]
    pub embedded: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    /// Host header values accepted (`name` or `name:port`; `*` accepts any).
    pub allowed_hosts: Option<Vec<String>>,
    /// Origin header values accepted (`scheme://host[:port]`; `*` accepts any).
    pub allowed_origins: Option<Vec<String>>,
    pub max_body_bytes: Option<usize>,
    /// A request head must arrive whole within this many seconds of the connection being ready
    /// for it (default 10).
    pub header_read_timeout_s: Option<u64>,
    /// A request body must arrive whole within this many seconds (default 30).
    pub body_timeout_s: Option<u64>,
    /// A connection with no request in progress is closed after this many seconds (default 60).
    pub idle_timeout_s: Option<u64>,
    /// Largest request head in bytes (default 16384; at least 8192).
    pub max_header_bytes: Option<usize>,
    /// Connections open at once; more are accepted and closed at once (default 10000).
    pub max_connections: Option<usize>,
    /// Seconds in-flight requests get to finish on shutdown before their connections are dropped
    /// (default 10).
    pub shutdown_grace_s: Option<u64>,
    /// Open GET streams per principal (default 10).
    pub max_streams_per_principal: Option<usize>,
    /// Open GET streams in all (default 10000).
    pub max_streams: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    /// `/metrics` needs an admin credential (default false).
    pub require_auth: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    /// Serve the admin API (default false).
    pub enabled: Option<bool>,
}

/// Environment variable names, in one place.
pub mod env {
    pub const CONFIG: &str = "MCPGATE_CONFIG";
    pub const LISTEN: &str = "MCPGATE_LISTEN";
    pub const PUBLIC_URL: &str = "MCPGATE_PUBLIC_URL";
    pub const UPSTREAM_URL: &str = "MCPGATE_UPSTREAM_URL";
    pub const UPSTREAM_CMD: &str = "MCPGATE_UPSTREAM_CMD";
    pub const ALLOWED_HOSTS: &str = "MCPGATE_ALLOWED_HOSTS";
    pub const ALLOWED_ORIGINS: &str = "MCPGATE_ALLOWED_ORIGINS";
    pub const MAX_BODY_BYTES: &str = "MCPGATE_MAX_BODY_BYTES";
    pub const REQUEST_TIMEOUT_MS: &str = "MCPGATE_REQUEST_TIMEOUT_MS";
    pub const STORE_PATH: &str = "MCPGATE_STORE";
    pub const STORE_URL: &str = "MCPGATE_STORE_URL";
    pub const REDIS_URL: &str = "MCPGATE_REDIS_URL";
    pub const AUDIT_JSONL: &str = "MCPGATE_AUDIT_JSONL";
    /// `telemetry.endpoint`: where OTLP traces go (set, traces are on).
    pub const OTLP_ENDPOINT: &str = "MCPGATE_OTLP_ENDPOINT";
    /// Seed 001: the key registry as JSON.
    pub const MCP_API_KEYS: &str = "MCP_API_KEYS";
    /// Seed 001/004: role for callers without a credential.
    pub const MCP_DEFAULT_ROLE: &str = "MCP_DEFAULT_ROLE";
    /// Seed 001: `DEBUG=auth:*` switches on detailed authentication tracing.
    pub const DEBUG: &str = "DEBUG";
    /// Seeds 001/002: the HS256 secret. Set alone (no `[auth.jwt]`), it turns JWT verification on.
    pub const JWT_SECRET: &str = "JWT_SECRET";
    /// Seed 004: `true` turns the authorization server on (its defaults when the file has no
    /// `[oauth]`); `false` turns it off.
    pub const MCP_OAUTH_ENABLED: &str = "MCP_OAUTH_ENABLED";
    /// Seed 004: sign-in through GitHub (the OAuth app's client id; the secret is read from
    /// [`MCP_OAUTH_GITHUB_CLIENT_SECRET`]).
    pub const MCP_OAUTH_GITHUB_CLIENT_ID: &str = "MCP_OAUTH_GITHUB_CLIENT_ID";
    pub const MCP_OAUTH_GITHUB_CLIENT_SECRET: &str = "MCP_OAUTH_GITHUB_CLIENT_SECRET";
    /// Seed 004: where providers send the browser back (`oauth.provider_redirect_uri`).
    pub const MCP_OAUTH_REDIRECT_URI: &str = "MCP_OAUTH_REDIRECT_URI";
}

/// Values given on the command line; `None` leaves the lower layers in force.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<String>,
    pub public_url: Option<String>,
    pub upstream_url: Option<String>,
    pub upstream_cmd: Option<String>,
    pub allowed_hosts: Option<Vec<String>>,
    pub store_path: Option<String>,
    /// Rules tried before the configured ones (the demo's).
    pub prepend_rules: Vec<mcpgate_core::policy::Rule>,
    /// Authentication off: every caller is an anonymous admin with every permission.
    pub no_auth: bool,
    /// Turns the authorization server on with its defaults when the file has no `[oauth]`
    /// (`serve --demo`).
    pub oauth: bool,
    /// Turns the admin API and console on (`serve --demo`).
    pub admin: bool,
}

impl RawConfig {
    #[cfg(feature = "toml")]
    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Applies `MCPGATE_*` variables read through `get` (a parameter so tests need no process env).
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), String> {
        let list = |v: String| {
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        };
        if let Some(v) = get(env::LISTEN) {
            self.listen = Some(v);
        }
        if let Some(v) = get(env::PUBLIC_URL) {
            self.public_url = Some(v);
        }
        if let Some(v) = get(env::UPSTREAM_URL) {
            self.upstream.url = Some(v);
            self.upstream.command = None;
        }
        if let Some(v) = get(env::UPSTREAM_CMD) {
            self.upstream.command = Some(v);
            self.upstream.url = None;
        }
        if let Some(v) = get(env::ALLOWED_HOSTS) {
            self.http.allowed_hosts = Some(list(v));
        }
        if let Some(v) = get(env::ALLOWED_ORIGINS) {
            self.http.allowed_origins = Some(list(v));
        }
        if let Some(v) = get(env::MAX_BODY_BYTES) {
            let n = v
                .parse()
                .map_err(|_| format!("{}: expected a number of bytes, got {v:?}", env::MAX_BODY_BYTES))?;
            self.http.max_body_bytes = Some(n);
        }
        // Seeds 001/002: `export JWT_SECRET=…` is all a user does before sending a bearer JWT.
        // Without an `[auth.jwt]` section, the variable turns on HS256 verification (audience:
        // the gateway's resource URL); a section that names its own secret or issuer wins.
        if self.auth.jwt.is_none() && get(env::JWT_SECRET).is_some_and(|v| !v.is_empty()) {
            self.auth.jwt = Some(crate::auth::jwt::RawJwt {
                secret_env: Some(env::JWT_SECRET.into()),
                ..Default::default()
            });
        }
        if let Some(v) = get(env::MCP_DEFAULT_ROLE) {
            self.auth.default_role = Some(v);
        }
        if let Some(v) = get(env::STORE_URL).filter(|v| !v.is_empty()) {
            self.store.url = Some(v);
        }
        if let Some(v) = get(env::REDIS_URL).filter(|v| !v.is_empty()) {
            self.redis.url = Some(v);
        }
        if let Some(v) = get(env::STORE_PATH) {
            self.store.path = Some(v);
        }
        if let Some(v) = get(env::AUDIT_JSONL) {
            self.audit.jsonl = Some(v);
        }
        if let Some(v) = get(env::OTLP_ENDPOINT) {
            self.telemetry.endpoint = Some(v);
        }
        if let Some(v) = get(env::REQUEST_TIMEOUT_MS) {
            let n = v
                .parse()
                .map_err(|_| format!("{}: expected milliseconds, got {v:?}", env::REQUEST_TIMEOUT_MS))?;
            self.upstream.request_timeout_ms = Some(n);
        }
        self.apply_seed_004_env(&get)
    }

    /// Seed 004's `MCP_OAUTH_*` variables, over the file's `[oauth]`.
    fn apply_seed_004_env(&mut self, get: &impl Fn(&str) -> Option<String>) -> Result<(), String> {
        match get(env::MCP_OAUTH_ENABLED).as_deref().map(str::trim) {
            None | Some("") => {}
            Some("true" | "1" | "yes" | "on") => self.oauth.get_or_insert_with(Default::default).enabled = Some(true),
            Some("false" | "0" | "no" | "off") => {
                if let Some(o) = &mut self.oauth {
                    o.enabled = Some(false);
                }
            }
            Some(v) => return Err(format!("{}: expected true or false, got {v:?}", env::MCP_OAUTH_ENABLED)),
        }
        let github = get(env::MCP_OAUTH_GITHUB_CLIENT_ID).filter(|v| !v.trim().is_empty());
        let redirect = get(env::MCP_OAUTH_REDIRECT_URI).filter(|v| !v.trim().is_empty());
        let Some(oauth) = self.oauth.as_mut().filter(|o| o.enabled != Some(false)) else {
            if github.is_some() || redirect.is_some() {
                return Err(format!(
                    "{} / {} are set but the authorization server is off: set {}=true (or add an [oauth] section)",
                    env::MCP_OAUTH_GITHUB_CLIENT_ID,
                    env::MCP_OAUTH_REDIRECT_URI,
                    env::MCP_OAUTH_ENABLED
                ));
            }
            return Ok(());
        };
        if let Some(client_id) = github {
            let secret_env = Some(env::MCP_OAUTH_GITHUB_CLIENT_SECRET.to_string());
            let kind = crate::oauth::providers::settings::ProviderKind::Github;
            match oauth
                .providers
                .iter_mut()
                .find(|p| p.kind == kind && p.id.as_deref().is_none_or(|id| id == "github"))
            {
                Some(p) => {
                    p.client_id = client_id.trim().to_string();
                    p.client_secret_env = secret_env;
                }
                None => oauth
                    .providers
                    .push(crate::oauth::providers::settings::RawProvider::github(
                        client_id.trim(),
                        secret_env,
                    )),
            }
        }
        if let Some(r) = redirect {
            oauth.provider_redirect_uri = Some(r.trim().to_string());
        }
        Ok(())
    }

    pub fn apply_overrides(&mut self, o: &Overrides) {
        if let Some(v) = &o.listen {
            self.listen = Some(v.clone());
        }
        if let Some(v) = &o.public_url {
            self.public_url = Some(v.clone());
        }
        if let Some(v) = &o.upstream_url {
            self.upstream.url = Some(v.clone());
            self.upstream.command = None;
        }
        if let Some(v) = &o.upstream_cmd {
            self.upstream.command = Some(v.clone());
            self.upstream.url = None;
        }
        if let Some(v) = &o.allowed_hosts {
            self.http.allowed_hosts = Some(v.clone());
        }
        if let Some(v) = &o.store_path {
            self.store.path = Some(v.clone());
        }
        if !o.prepend_rules.is_empty() {
            let mut rules = o.prepend_rules.clone();
            rules.append(&mut self.policy.rules);
            self.policy.rules = rules;
        }
        if o.no_auth {
            self.auth.default_role = Some("admin".into());
            self.auth.default_permissions = Some(vec!["*".into()]);
        }
        if o.oauth && self.oauth.is_none() {
            self.oauth = Some(crate::oauth::RawOAuth::default());
        }
        if o.admin {
            self.admin.enabled = Some(true);
        }
    }
}
