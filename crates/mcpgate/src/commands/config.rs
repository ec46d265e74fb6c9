//! `mcpgate config check`, and the loading that `serve` and the store commands share: file, then
//! environment, then flags, then validation. A relative store path is taken relative to the
//! config file, so the store sits next to the config that names it.

use super::store::Location;
use crate::cli::{CheckArgs, ConfigArgs};
use anyhow::{Context, Result};
use mcpgate_gateway::auth::Auth;
use mcpgate_gateway::auth::api_keys::KeyRegistry;
use mcpgate_gateway::config::raw::{Overrides, RawConfig};
use mcpgate_gateway::config::{Config, UpstreamConfig};
use std::path::PathBuf;

fn read_raw(args: &ConfigArgs) -> Result<RawConfig> {
    let mut raw = match &args.config {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
            let mut raw = RawConfig::from_toml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            if let (Some(dir), Some(p)) = (path.parent(), raw.store.path.as_deref())
                && PathBuf::from(p).is_relative()
            {
                raw.store.path = Some(dir.join(p).to_string_lossy().into_owned());
            }
            if let (Some(dir), None) = (path.parent(), raw.store.path.as_deref()) {
                raw.store.path = Some(dir.join("mcpgate.db").to_string_lossy().into_owned());
            }
            raw
        }
        None => RawConfig::default(),
    };
    raw.apply_env(|k| std::env::var(k).ok()).map_err(anyhow::Error::msg)?;
    Ok(raw)
}

/// Reads the file (if any), applies the environment, then `overrides`, and validates.
pub fn load(args: &ConfigArgs, overrides: &Overrides) -> Result<Config> {
    let mut raw = read_raw(args)?;
    raw.apply_overrides(overrides);
    Config::validate(raw).map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))
}

/// The store the configuration names — `store.url` / `MCPGATE_STORE_URL` (PostgreSQL), else
/// `store.path` (SQLite, default mcpgate.db) — without requiring the rest to be complete (the
/// key and audit commands need no upstream).
pub fn load_store(args: &ConfigArgs) -> Result<Location> {
    let raw = read_raw(args)?;
    match raw.store.url.filter(|u| !u.is_empty()) {
        Some(url) => Location::postgres(url, "store.url"),
        None => Ok(Location::Sqlite(PathBuf::from(
            raw.store.path.unwrap_or_else(|| "mcpgate.db".into()),
        ))),
    }
}

/// Validates every section — including `[auth.jwt]`, `[auth.hmac]`, `[auth.introspection]` and
/// `[auth.external]`, whose secrets and keys are read from the environment as `serve` would —
/// and with `--online` fetches the JWT issuer's keys.
pub async fn check(args: &CheckArgs) -> Result<()> {
    let cfg = load(&args.config, &Overrides::default())?;
    let keys = KeyRegistry::new(Vec::new(), None, None)
        .await
        .map_err(anyhow::Error::msg)?;
    let resource = format!("{}/mcp", cfg.public_url);
    let auth = Auth::new(
        cfg.auth.clone(),
        keys,
        &resource,
        &|k| std::env::var(k).ok(),
        std::sync::Arc::new(mcpgate_gateway::clock::SystemClock),
    )
    .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    if args.online
        && let Some(jwt) = &auth.jwt
    {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        jwt.prefetch(now)
            .await
            .map_err(|e| anyhow::anyhow!("auth.jwt: the issuer's keys could not be fetched: {e}"))?;
    }
    println!("configuration is valid");
    println!("  listen:   {}", cfg.listen);
    println!("  public:   {}", cfg.public_url);
    match &cfg.upstream {
        UpstreamConfig::Http(h) => println!("  upstream: http {}", h.url.origin().ascii_serialization()),
        UpstreamConfig::Stdio(s) => println!("  upstream: stdio {} ({} args)", s.program, s.args.len()),
        UpstreamConfig::Embedded(_) => println!("  upstream: the service the layer wraps"),
    }
    println!("  allowed hosts: {}", cfg.http.allowed_hosts.join(", "));
    match &cfg.store_url {
        // (Never the URL: it may hold a password.)
        Some(_) => println!("  store:    PostgreSQL (store.url)"),
        None => println!("  store:    {}", cfg.store_path.display()),
    }
    println!("  policy:   {} rule(s)", cfg.policy.rules.len());
    println!("  auth:     {}", auth.methods().join(", "));
    if args.online && auth.jwt.is_some() {
        println!("  jwt keys: fetched");
    }
    if let Some(role) = cfg.auth.default_role {
        println!("  anonymous callers: role {}", role.as_str());
    }
    Ok(())
}
