//! The in-process harness: the demo upstream on a loopback socket, a gateway built from TOML (no
//! process environment read: an env closure is injected), driven through `router().oneshot(…)`
//! with no socket of its own — or, for the tests of the wire, also served on a loopback
//! listener ([`Gw::listen`]).
//!
//! Every test builds its own [`Setup`] (own temp dir, own store, own upstream, own gateway), so
//! tests are independent and may run in parallel.

mod gw;
mod resp;

pub use gw::{Gw, Headers, Listening, audit_text};
pub use resp::{Resp, json_in_sse};

use crate::apikey::{Issued, KeySpec, insert_key};
use mcpgate_gateway::Gateway;
use mcpgate_gateway::clock::{Clock, ManualClock, SystemClock};
use mcpgate_gateway::config::Config;
use mcpgate_gateway::config::raw::{Overrides, RawConfig};
use mcpgate_store::sqlite::SqliteStore;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The protocol revision the helpers speak.
pub const PROTOCOL: &str = "2025-06-18";
/// Bound on any single request through the gateway: a hang fails the test instead of blocking it.
pub const REQUEST_LIMIT: Duration = Duration::from_secs(15);

/// Starts the demo upstream (Streamable HTTP) on 127.0.0.1:0 on the current runtime; returns its
/// MCP URL.
pub async fn start_demo() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind demo");
    let addr = listener.local_addr().expect("demo addr");
    tokio::spawn(mcpgate_demo::serve_http(listener, mcpgate_demo::Profile::Demo));
    format!("http://{addr}/mcp")
}

/// A URL on which nothing listens (a port bound then released).
pub async fn dead_url(path: &str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}{path}")
}

/// A gateway being prepared: its temp dir and store exist, keys can be inserted and environment
/// variables set before [`Setup::start`] builds it.
pub struct Setup {
    dir: tempfile::TempDir,
    store: SqliteStore,
    toml: String,
    env: HashMap<String, String>,
    upstream: Option<String>,
    /// The TOML names a stdio upstream (`[upstream] command`): no demo server, no URL override.
    stdio: bool,
    /// Time for the gateway: the system's, or a manual clock the test moves.
    clock: Option<Arc<ManualClock>>,
}

impl Setup {
    pub fn new(toml: &str) -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("mcpgate.db")).expect("open store");
        Setup {
            dir,
            store,
            toml: toml.to_string(),
            env: HashMap::new(),
            upstream: None,
            stdio: false,
            clock: None,
        }
    }

    /// The gateway reads time from a manual clock (starting at the system's now) that the test
    /// moves with `Gw::advance`, instead of sleeping past refresh floors and windows.
    pub fn manual_clock(mut self) -> Setup {
        self.clock = Some(Arc::new(ManualClock::starting_now()));
        self
    }

    /// Inserts a store key now (before the gateway loads its registry).
    pub fn key(&self, spec: KeySpec) -> Issued {
        insert_key(&self.store, &spec)
    }

    /// The store the gateway will open, to prepare state (held credentials, keys) before start.
    pub fn store(&self) -> &SqliteStore {
        &self.store
    }

    pub fn env(&mut self, name: &str, value: &str) -> &mut Self {
        self.env.insert(name.to_string(), value.to_string());
        self
    }

    /// Uses this upstream URL instead of starting a demo server.
    pub fn upstream(&mut self, url: &str) -> &mut Self {
        self.upstream = Some(url.to_string());
        self
    }

    /// The TOML's `[upstream] command` is the upstream (a stdio child).
    pub fn upstream_cmd(&mut self) -> &mut Self {
        self.stdio = true;
        self
    }

    pub async fn start(self) -> Gw {
        let upstream_url = match (self.upstream, self.stdio) {
            (_, true) => String::new(),
            (Some(u), false) => u,
            (None, false) => start_demo().await,
        };
        let store_path = self.dir.path().join("mcpgate.db");
        let mut raw = RawConfig::from_toml(&self.toml).unwrap_or_else(|e| panic!("bad test TOML: {e}\n{}", self.toml));
        raw.apply_overrides(&Overrides {
            upstream_url: (!upstream_url.is_empty()).then(|| upstream_url.clone()),
            store_path: Some(store_path.display().to_string()),
            ..Overrides::default()
        });
        let config = Config::validate(raw).unwrap_or_else(|e| panic!("invalid test config: {e}\n{}", self.toml));
        let env = self.env;
        let clock: Arc<dyn Clock> = match &self.clock {
            Some(c) => c.clone(),
            None => Arc::new(SystemClock),
        };
        let gw = Gateway::with_clock(config, &|k| env.get(k).cloned(), clock)
            .await
            .unwrap_or_else(|e| panic!("Gateway::new: {e}"));
        Gw::new(gw, self.store, self.clock, upstream_url, self.dir)
    }
}
