//! Settings in code. Every setting lands in the gateway's own configuration type and goes through
//! the same validation as a configuration file, so a layer refuses what `mcpgate serve` refuses.

use crate::McpGateLayer;
use mcpgate_core::entropy::Entropy;
use mcpgate_core::policy::Rule;
use mcpgate_core::principal::Role;
use mcpgate_gateway::Gateway;
use mcpgate_gateway::clock::{Clock, SystemClock};
use mcpgate_gateway::config::Config;
use mcpgate_gateway::config::raw::RawConfig;
use mcpgate_gateway::server::{Sources, Stores};
use std::collections::HashMap;

use std::sync::Arc;
use std::time::Duration;

/// Builds a [`McpGateLayer`]. Defaults: keys and audit in memory (nothing on disk), loopback
/// `Host` names only, no credential → refused, the system clock, and only the variables given to
/// [`Builder::env`] (the process environment is read only after [`Builder::process_env`]).
#[derive(Default)]
pub struct Builder {
    raw: RawConfig,
    vars: HashMap<String, String>,
    process_env: bool,
    store: StoreChoice,
    clock: Option<Arc<dyn Clock>>,
    entropy: Option<Arc<dyn Entropy>>,
}

#[derive(Default)]
enum StoreChoice {
    #[default]
    Memory,
    #[cfg(feature = "sqlite")]
    Sqlite(std::path::PathBuf),
    Given(Stores),
}

impl Builder {
    /// The URL clients reach the server at, without `/mcp` (for the metadata documents and the
    /// audience tokens must carry). Default `http://127.0.0.1:8080`.
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.raw.public_url = Some(url.into());
        self
    }

    /// `Host` names the server answers to (DNS-rebinding protection); default loopback names.
    pub fn allowed_hosts<I: IntoIterator<Item = impl Into<String>>>(mut self, hosts: I) -> Self {
        self.raw.http.allowed_hosts = Some(hosts.into_iter().map(Into::into).collect());
        self
    }

    /// Browser origins allowed to call (default none besides the server's own).
    pub fn allowed_origins<I: IntoIterator<Item = impl Into<String>>>(mut self, origins: I) -> Self {
        self.raw.http.allowed_origins = Some(origins.into_iter().map(Into::into).collect());
        self
    }

    /// API keys in seed 001's `MCP_API_KEYS` shape:
    /// `{"<key>": {"user_id": "…", "role": "…", "permissions": […], "tenant_id": "…"}}`.
    pub fn api_keys_json(self, json: &str) -> Self {
        self.env("MCP_API_KEYS", json)
    }

    /// HS256 JWT bearer tokens signed with this secret (as `JWT_SECRET` does for the gateway);
    /// the audience is the server's `/mcp` URL.
    pub fn jwt_secret(self, secret: &str) -> Self {
        self.env("JWT_SECRET", secret)
    }

    /// A variable the configuration reads (key sources, secrets named by `secret_env`, the
    /// sealing key): looked up here first, then — after [`Builder::process_env`] — in the process.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.vars.insert(name.to_string(), value.to_string());
        self
    }

    /// Also read the process environment: the seeds' variables (`MCP_API_KEYS`, `JWT_SECRET`,
    /// `MCP_DEFAULT_ROLE`, …) and `MCPGATE_*` settings.
    pub fn process_env(mut self) -> Self {
        self.process_env = true;
        self
    }

    /// A policy rule, in order (first match decides), as `[[policy.rules]]` in a file.
    pub fn rule(mut self, rule: Rule) -> Self {
        self.raw.policy.rules.push(rule);
        self
    }

    /// Tools whose names match `glob` need at least `role`.
    pub fn tool_needs_role(self, glob: &str, role: Role) -> Self {
        self.rule(Rule {
            tools: vec![glob.to_string()],
            role: Some(role),
            ..Rule::default()
        })
    }

    /// Tools whose names match `glob` need `permission`.
    pub fn tool_needs_permission(self, glob: &str, permission: &str) -> Self {
        self.rule(Rule {
            tools: vec![glob.to_string()],
            permissions: vec![permission.to_string()],
            ..Rule::default()
        })
    }

    /// How long the wrapped service may take to start its answer (default 300 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.raw.upstream.request_timeout_ms = Some(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX));
        self
    }

    /// Any other setting, on the configuration as a file would write it (limits, audit,
    /// `[auth.jwt]` with JWKS, introspection, HMAC, delegation, …). Validated in [`Builder::build`].
    pub fn config(mut self, edit: impl FnOnce(&mut RawConfig)) -> Self {
        edit(&mut self.raw);
        self
    }

    /// Keys, held credentials and audit in one SQLite file (survives restarts; `mcpgate keys`
    /// manages it). Needs the `sqlite` feature.
    #[cfg(feature = "sqlite")]
    pub fn sqlite(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.store = StoreChoice::Sqlite(path.into());
        self
    }

    /// State in these stores (any backend that passes `mcpgate_store::conformance`).
    pub fn stores(mut self, stores: Stores) -> Self {
        self.store = StoreChoice::Given(stores);
        self
    }

    /// The clock the pipeline reads (tests move a `ManualClock`).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Where request ids come from (default: the operating system's generator; a test may give a
    /// seeded source for reproducible ids — never in production).
    pub fn entropy(mut self, entropy: Arc<dyn Entropy>) -> Self {
        self.entropy = Some(entropy);
        self
    }

    /// Validates the settings and starts the gateway's background work (key reloads, the audit
    /// writer, forgetting idle sessions). Must run inside a Tokio runtime.
    pub async fn build(self) -> Result<McpGateLayer, String> {
        let Builder {
            mut raw,
            vars,
            process_env,
            store,
            clock,
            entropy,
        } = self;
        let lookup = |name: &str| {
            vars.get(name)
                .cloned()
                .or_else(|| if process_env { std::env::var(name).ok() } else { None })
        };
        raw.apply_env(lookup)?;
        raw.upstream.embedded = true;
        if raw.public_url.is_none() && raw.listen.is_none() {
            raw.public_url = Some("http://127.0.0.1:8080".into());
        }
        let config = Config::validate(raw).map_err(|e| e.to_string())?;
        let stores = match store {
            StoreChoice::Memory => Stores::memory(),
            #[cfg(feature = "sqlite")]
            StoreChoice::Sqlite(path) => Stores::sqlite(&path)?,
            StoreChoice::Given(s) => s,
        };
        let mut sources = Sources::with_clock(clock.unwrap_or_else(|| Arc::new(SystemClock)));
        if let Some(entropy) = entropy {
            sources.entropy = entropy;
        }
        let gw = Gateway::assemble(config, &lookup, sources, stores).await?;
        tokio::spawn(mcpgate_gateway::server::forget_idle_sessions(Arc::downgrade(&gw)));
        Ok(McpGateLayer { gw })
    }
}
