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
    /// Working directory for the child process.
    pub cwd: Option<String>,
    pub connect_timeout_ms: Option<u64>,
    pub request_timeout_ms: Option<u64>,
    pub idle_session_timeout_s: Option<u64>,
    pub max_sessions: Option<usize>,
    pub restart_backoff_max_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    /// Host header values accepted (`name` or `name:port`; `*` accepts any).
    pub allowed_hosts: Option<Vec<String>>,
    /// Origin header values accepted (`scheme://host[:port]`; `*` accepts any).
    pub allowed_origins: Option<Vec<String>>,
    pub max_body_bytes: Option<usize>,
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
}

/// Values given on the command line; `None` leaves the lower layers in force.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<String>,
    pub public_url: Option<String>,
    pub upstream_url: Option<String>,
    pub upstream_cmd: Option<String>,
    pub allowed_hosts: Option<Vec<String>>,
}

impl RawConfig {
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
            let n = v.parse().map_err(|_| {
                format!(
                    "{}: expected a number of bytes, got {v:?}",
                    env::MAX_BODY_BYTES
                )
            })?;
            self.http.max_body_bytes = Some(n);
        }
        if let Some(v) = get(env::REQUEST_TIMEOUT_MS) {
            let n = v.parse().map_err(|_| {
                format!(
                    "{}: expected milliseconds, got {v:?}",
                    env::REQUEST_TIMEOUT_MS
                )
            })?;
            self.upstream.request_timeout_ms = Some(n);
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
    }
}
