//! `mcpgate keys …`: a thin adapter over the key service (`mcpgate_gateway::key_service`) on the
//! store the configuration names (SQLite or PostgreSQL). A key is printed once, at creation or
//! rotation; afterwards only its id and hash exist.

use crate::cli::{CreateKey, KeysCommand, StoreArgs};
use anyhow::{Context, Result};
use mcpgate_core::principal::{Limits, Role};
use mcpgate_core::redact::Secret;
use mcpgate_core::time::{format_rfc3339, parse_rfc3339};
use mcpgate_gateway::clock::unix_s;
use mcpgate_gateway::key_service::{KeyService, NewKey, state};
use mcpgate_gateway::server::Stores;

/// The key service over `stores` (revoking a key also ends the OAuth grants signed in with it).
pub fn service(stores: &Stores) -> KeyService {
    KeyService::new(stores.keys.clone(), stores.credentials.clone()).with_grants(stores.grants.clone())
}

async fn open(args: &StoreArgs) -> Result<KeyService> {
    Ok(service(&super::store::open(args).await?))
}

pub async fn run(cmd: KeysCommand) -> Result<()> {
    match cmd {
        KeysCommand::Create(c) => create(c).await,
        KeysCommand::List { store, json } => list(&open(&store).await?, json).await,
        KeysCommand::Show { key_id, store } => {
            let svc = open(&store).await?;
            let k = svc.get(&key_id).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&mcpgate_gateway::admin::views::key_in(svc.keys(), &k, unix_s()).await)?
            );
            Ok(())
        }
        KeysCommand::Revoke { key_id, store } => {
            let ended = open(&store).await?.revoke(&key_id, unix_s()).await?;
            match ended {
                0 => println!("revoked {key_id}"),
                n => println!("revoked {key_id}, and {n} OAuth grant(s) signed in with it"),
            }
            Ok(())
        }
        KeysCommand::Rotate { key_id, overlap, store } => {
            let r = open(&store)
                .await?
                .rotate(&key_id, super::parse_duration(&overlap)?, unix_s())
                .await?;
            println!("{}", r.minted.key.expose());
            eprintln!(
                "rotated {key_id} → {}; {key_id} stays valid until {} — store the new key now, it is not shown again",
                r.minted.record.key_id,
                format_rfc3339(r.old_valid_until)
            );
            Ok(())
        }
        KeysCommand::SetUpstreamCredential {
            key_id,
            from_env,
            encryption_key_env,
            store,
        } => set_credential(&open(&store).await?, &key_id, from_env.as_deref(), &encryption_key_env).await,
        KeysCommand::ClearUpstreamCredential { key_id, store } => {
            open(&store).await?.clear_credential(&key_id).await?;
            println!("cleared the upstream credential of {key_id}");
            Ok(())
        }
        KeysCommand::GenEncryptionKey => {
            println!("{}", mcpgate_core::sealed::SealingKey::generate_text());
            Ok(())
        }
    }
}

async fn create(c: CreateKey) -> Result<()> {
    let svc = open(&c.store).await?;
    let role =
        Role::parse(&c.role).with_context(|| format!("--role {:?}: use guest, user, developer or admin", c.role))?;
    let now = unix_s();
    let expires_at = match (&c.expires_in, &c.expires_at) {
        (Some(d), _) => Some(now + super::parse_duration(d)?),
        (None, Some(t)) => {
            Some(parse_rfc3339(t).with_context(|| format!("--expires-at {t:?} is not an RFC 3339 time"))?)
        }
        (None, None) => None,
    };
    let new = NewKey {
        name: c.name,
        user_id: c.user,
        tenant: c.tenant,
        role,
        permissions: c.permissions,
        limits: Limits {
            per_minute: c.per_minute,
            per_hour: c.per_hour,
            per_day: c.per_day,
        },
        expires_at,
    };
    let minted = svc.create(new, now).await?;
    if c.json {
        println!(
            "{}",
            serde_json::json!({ "key": minted.key.expose(), "key_id": minted.record.key_id })
        );
    } else {
        println!("{}", minted.key.expose());
        eprintln!(
            "created key {} for {} — store it now, it is not shown again",
            minted.record.key_id, minted.record.user_id
        );
    }
    Ok(())
}

async fn list(svc: &KeyService, json: bool) -> Result<()> {
    let keys = svc.keys().list_keys().await?;
    let now = unix_s();
    if json {
        let mut rows = Vec::with_capacity(keys.len());
        for k in &keys {
            rows.push(mcpgate_gateway::admin::views::key_in(svc.keys(), k, now).await);
        }
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!(
        "{:<14} {:<22} {:<16} {:<10} {:<18} {:<8} EXPIRES",
        "KEY ID", "NAME", "USER", "ROLE", "PERMISSIONS", "STATE"
    );
    for k in &keys {
        println!(
            "{:<14} {:<22} {:<16} {:<10} {:<18} {:<8} {}",
            k.key_id,
            cut(&k.name, 22),
            cut(&k.user_id, 16),
            k.role.as_str(),
            cut(&k.permissions.join(","), 18),
            state(k, now),
            k.expires_at.map(format_rfc3339).unwrap_or_else(|| "never".into())
        );
    }
    Ok(())
}

async fn set_credential(svc: &KeyService, key_id: &str, from_env: Option<&str>, key_env: &str) -> Result<()> {
    // The key first: a typo in the id is named before anything is read from stdin.
    svc.get(key_id).await?;
    let key_text = std::env::var(key_env)
        .with_context(|| format!("{key_env} is not set; create one with `mcpgate keys gen-encryption-key`"))?;
    let sealing = mcpgate_core::sealed::SealingKey::parse(&key_text).map_err(|e| anyhow::anyhow!("{key_env}: {e}"))?;
    let credential = match from_env {
        Some(var) => std::env::var(var).with_context(|| format!("{var} is not set"))?,
        None => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("cannot read the credential from standard input")?;
            line.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    svc.hold_credential(key_id, &Secret::new(credential), &sealing, unix_s())
        .await?;
    eprintln!("holding an upstream credential for {key_id} (sealed); a running gateway uses it within a second");
    Ok(())
}

fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).chain(['…']).collect()
    }
}
