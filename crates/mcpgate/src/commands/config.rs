//! `mcpgate config check`: runs only the validation that `serve` runs at start-up.

use crate::cli::ConfigArgs;
use anyhow::{Context, Result};
use mcpgate_gateway::config::raw::{Overrides, RawConfig};
use mcpgate_gateway::config::{Config, UpstreamConfig};

/// Reads the file (if any), applies the environment, then `overrides`, and validates.
pub fn load(args: &ConfigArgs, overrides: &Overrides) -> Result<Config> {
    let mut raw = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
            RawConfig::from_toml(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
        }
        None => RawConfig::default(),
    };
    raw.apply_env(|k| std::env::var(k).ok()).map_err(anyhow::Error::msg)?;
    raw.apply_overrides(overrides);
    Config::validate(raw).map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))
}

pub fn check(args: &ConfigArgs) -> Result<()> {
    let cfg = load(args, &Overrides::default())?;
    println!("configuration is valid");
    println!("  listen:   {}", cfg.listen);
    println!("  public:   {}", cfg.public_url);
    match &cfg.upstream {
        UpstreamConfig::Http(h) => println!("  upstream: http {}", h.url.origin().ascii_serialization()),
        UpstreamConfig::Stdio(s) => println!("  upstream: stdio {} ({} args)", s.program, s.args.len()),
    }
    println!("  allowed hosts: {}", cfg.http.allowed_hosts.join(", "));
    Ok(())
}
