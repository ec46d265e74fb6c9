//! `mcpgate keys …`: the key registry in the embedded store. A key is printed once, at creation
//! or rotation; afterwards only its id and hash exist.

use crate::cli::{CreateKey, KeysCommand, StoreArgs};
use anyhow::{Context, Result, bail};
use mcpgate_core::keys::{self, KeyRecord};
use mcpgate_core::principal::{Limits, Role};
use mcpgate_core::time::{format_rfc3339, parse_rfc3339};
use mcpgate_gateway::clock::unix_s;
use mcpgate_store::sqlite::SqliteStore;
use mcpgate_store::{CredentialStore, KeyStore, SealedCredential};

pub fn open_store(args: &StoreArgs) -> Result<SqliteStore> {
    let path = match &args.store {
        Some(p) => p.clone(),
        None => super::config::load_store_path(&args.config)?,
    };
    SqliteStore::open(&path).with_context(|| format!("cannot open the store at {}", path.display()))
}

pub fn run(cmd: KeysCommand) -> Result<()> {
    match cmd {
        KeysCommand::Create(c) => create(c),
        KeysCommand::List { store, json } => list(&open_store(&store)?, json),
        KeysCommand::Show { key_id, store } => show(&open_store(&store)?, &key_id),
        KeysCommand::Revoke { key_id, store } => {
            if !open_store(&store)?.revoke_key(&key_id)? {
                bail!("no key with id {key_id}");
            }
            println!("revoked {key_id}");
            Ok(())
        }
        KeysCommand::Rotate { key_id, overlap, store } => rotate(&open_store(&store)?, &key_id, &overlap),
        KeysCommand::SetUpstreamCredential {
            key_id,
            from_env,
            encryption_key_env,
            store,
        } => set_credential(&open_store(&store)?, &key_id, from_env.as_deref(), &encryption_key_env),
        KeysCommand::ClearUpstreamCredential { key_id, store } => {
            if !open_store(&store)?.remove_credential(&key_id)? {
                bail!("no upstream credential is held for {key_id}");
            }
            println!("cleared the upstream credential of {key_id}");
            Ok(())
        }
        KeysCommand::GenEncryptionKey => {
            println!("{}", mcpgate_core::sealed::SealingKey::generate_text());
            Ok(())
        }
    }
}

/// Creates and stores a key; returns the key (shown once) and its record.
pub fn create_record(store: &dyn KeyStore, template: KeyRecord) -> Result<(String, KeyRecord)> {
    let new = keys::generate();
    let record = KeyRecord {
        key_id: new.key_id.clone(),
        hash: new.hash.clone(),
        ..template
    };
    store.insert_key(&record)?;
    Ok((new.key.expose().to_string(), record))
}

fn create(c: CreateKey) -> Result<()> {
    let store = open_store(&c.store)?;
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
    let template = KeyRecord {
        key_id: String::new(),
        hash: String::new(),
        name: c.name,
        user_id: c.user,
        tenant: c.tenant,
        role,
        permissions: c.permissions.into_iter().filter(|p| !p.is_empty()).collect(),
        limits: Limits {
            per_minute: c.per_minute,
            per_hour: c.per_hour,
            per_day: c.per_day,
        },
        expires_at,
        created_at: now,
        revoked: false,
        source: "store".into(),
    };
    let (key, record) = create_record(&store, template)?;
    if c.json {
        println!("{}", serde_json::json!({ "key": key, "key_id": record.key_id }));
    } else {
        println!("{key}");
        eprintln!(
            "created key {} for {} — store it now, it is not shown again",
            record.key_id, record.user_id
        );
    }
    Ok(())
}

fn list(store: &SqliteStore, json: bool) -> Result<()> {
    let keys = store.list_keys()?;
    let now = unix_s();
    if json {
        let rows: Vec<_> = keys.iter().map(|k| view(store, k, now)).collect();
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

fn show(store: &SqliteStore, key_id: &str) -> Result<()> {
    let k = store
        .get_key(key_id)?
        .with_context(|| format!("no key with id {key_id}"))?;
    println!("{}", serde_json::to_string_pretty(&view(store, &k, unix_s()))?);
    Ok(())
}

fn rotate(store: &SqliteStore, key_id: &str, overlap: &str) -> Result<()> {
    let old = store
        .get_key(key_id)?
        .with_context(|| format!("no key with id {key_id}"))?;
    if old.revoked {
        bail!("key {key_id} is revoked; create a new one instead");
    }
    let now = unix_s();
    let old_until = now + super::parse_duration(overlap)?;
    let template = KeyRecord {
        created_at: now,
        ..old.clone()
    };
    let (key, record) = create_record(store, template)?;
    // The old key stops at the end of the overlap, or earlier if it was to expire sooner.
    let until = old.expires_at.map_or(old_until, |e| e.min(old_until));
    store.set_key_expiry(key_id, Some(until))?;
    println!("{key}");
    eprintln!(
        "rotated {key_id} → {}; {key_id} stays valid until {} — store the new key now, it is not shown again",
        record.key_id,
        format_rfc3339(until)
    );
    Ok(())
}

fn set_credential(store: &SqliteStore, key_id: &str, from_env: Option<&str>, key_env: &str) -> Result<()> {
    if store.get_key(key_id)?.is_none() {
        bail!("no key with id {key_id} in the store");
    }
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
    if credential.is_empty() {
        bail!("the credential is empty");
    }
    let (nonce, ciphertext) = sealing
        .seal(key_id, credential.as_bytes())
        .map_err(anyhow::Error::msg)?;
    store.set_credential(
        key_id,
        &SealedCredential {
            nonce: nonce.to_vec(),
            ciphertext,
        },
        unix_s(),
    )?;
    eprintln!("holding an upstream credential for {key_id} (sealed); a running gateway uses it within a second");
    Ok(())
}

fn view(store: &SqliteStore, k: &KeyRecord, now: i64) -> serde_json::Value {
    serde_json::json!({
        "key_id": k.key_id,
        "name": k.name,
        "user_id": k.user_id,
        "tenant": k.tenant,
        "role": k.role.as_str(),
        "permissions": k.permissions,
        "limits": k.limits,
        "state": state(k, now),
        "created_at": format_rfc3339(k.created_at),
        "expires_at": k.expires_at.map(format_rfc3339),
        "last_used_at": store.last_used(&k.key_id).ok().flatten().map(format_rfc3339),
    })
}

fn state(k: &KeyRecord, now: i64) -> &'static str {
    if k.revoked {
        "revoked"
    } else if k.expires_at.is_some_and(|t| now >= t) {
        "expired"
    } else {
        "active"
    }
}

fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).chain(['…']).collect()
    }
}
