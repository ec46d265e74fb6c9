//! `serve --demo`: the built-in demo upstream, a policy that shows what keys can and cannot do,
//! and two keys created on first run — an admin key and a read-only key.

use super::store::Location;
use anyhow::Result;
use mcpgate_core::policy::Rule;
use mcpgate_core::principal::{Limits, Role};
use mcpgate_gateway::config::Config;
use mcpgate_gateway::key_service::NewKey;
use std::io::Write;
use std::path::Path;

/// The demo's rules: the harmless tools need only `read`; `crash` needs an admin.
pub fn rules() -> Vec<Rule> {
    vec![
        Rule {
            tools: vec!["echo".into(), "add".into()],
            permissions: vec!["read".into()],
            ..Rule::default()
        },
        Rule {
            tools: vec!["crash".into()],
            role: Some(Role::Admin),
            ..Rule::default()
        },
    ]
}

/// Creates the demo keys in the store the gateway will use if it has none named so; writes them
/// (0600) beside `store.path` so later runs can show them again. Returns the lines to print.
pub async fn ensure_keys(config: &Config) -> Result<Vec<String>> {
    let keys_file = config.store_path.with_extension("demo-keys.txt");
    let location = match &config.store_url {
        Some(url) => Location::postgres(url.expose().to_string(), "store.url")?,
        None => Location::Sqlite(config.store_path.clone()),
    };
    let svc = super::keys::service(&location.open().await?);
    let existing = svc.keys().list_keys().await?;
    if existing.iter().any(|k| k.name == "demo admin" && !k.revoked) && keys_file.exists() {
        let text = std::fs::read_to_string(&keys_file)?;
        return Ok(text.lines().map(str::to_string).collect());
    }
    let now = mcpgate_gateway::clock::unix_s();
    let new = |name: &str, role: Role, perms: &[&str], per_minute: Option<u32>| NewKey {
        name: name.into(),
        user_id: name.replace(' ', "-"),
        tenant: None,
        role,
        permissions: perms.iter().map(|s| s.to_string()).collect(),
        limits: Limits {
            per_minute,
            ..Limits::default()
        },
        expires_at: None,
    };
    let admin = svc.create(new("demo admin", Role::Admin, &["*"], None), now).await?;
    let reader = svc
        .create(new("demo reader", Role::User, &["read"], Some(60)), now)
        .await?;
    let lines = vec![
        format!("admin key (every tool):            {}", admin.key.expose()),
        format!("read-only key (echo, add; 60/min): {}", reader.key.expose()),
    ];
    let mut f = open_private(&keys_file)?;
    for l in &lines {
        writeln!(f, "{l}")?;
    }
    Ok(lines)
}

fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.create(true).write(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
}
