//! `mcpgate store copy`: every durable record of one store written into another through the store
//! traits, as it was — a revoked key stays revoked, a spent refresh token stays spent (presenting
//! it still revokes its grant), sealed credentials and signing keys stay sealed (nothing is
//! decrypted, so no sealing key is needed). Audit records go over in pages, in the order they
//! were appended. Authorization codes and replay entries live for minutes and are not copied.
//!
//! A destination that already holds keys, clients, grants or users is refused unless `--merge`,
//! when records whose id it has are skipped and counted.

use super::Location;
use crate::cli::CopyArgs;
use anyhow::{Context, Result, bail};
use mcpgate_gateway::clock::unix_s;
use mcpgate_gateway::server::Stores;
use mcpgate_store::StoreError;
use std::collections::HashSet;

/// Audit records read and written at a time.
const AUDIT_PAGE: usize = 1000;

/// What happened to one kind of record.
#[derive(Default)]
struct Tally {
    copied: u64,
    /// Already in the destination (`--merge`).
    skipped: u64,
}

impl Tally {
    /// Counts one write's outcome: a duplicate id is skipped; any other error stops the copy.
    fn count(&mut self, written: Result<(), StoreError>, what: &str, id: &str) -> Result<bool> {
        match written {
            Ok(()) => {
                self.copied += 1;
                Ok(true)
            }
            Err(StoreError::Duplicate(_)) => {
                self.skipped += 1;
                Ok(false)
            }
            Err(e) => Err(e).with_context(|| format!("copying {what} {id}")),
        }
    }

    fn line(&self, kind: &str, extra: &str) -> String {
        let skipped = match self.skipped {
            0 => String::new(),
            n => format!(", {n} skipped (already there)"),
        };
        format!("  {kind:<17} {}{extra}{skipped}", self.copied)
    }
}

pub async fn run(args: CopyArgs) -> Result<()> {
    let from = Location::parse(&args.from, "--from")?;
    let to = match &args.to {
        Some(to) => Location::parse(to, "--to")?,
        None => super::locate(&args.store)?,
    };
    // Opening a SQLite file creates it: a typo would copy nothing, and say so cheerfully.
    if let Location::Sqlite(path) = &from
        && !path.is_file()
    {
        bail!("--from: there is no SQLite file at {}", path.display());
    }
    if from.same_as(&to) {
        bail!("--from and --to name the same store");
    }
    let src = from.open().await?;
    let dst = to.open().await?;
    if !args.merge {
        let held = holds(&dst).await?;
        if !held.is_empty() {
            bail!(
                "{} already holds {}: pass --merge to add to it (records whose id it has are skipped)",
                to.describe(),
                held.join(", ")
            );
        }
    }
    eprintln!("copying {} into {} …", from.describe(), to.describe());
    let lines = copy(&src, &dst).await?;
    println!("copied {} into {}:", from.describe(), to.describe());
    for l in lines {
        println!("{l}");
    }
    println!("  not copied: authorization codes and replay entries (they live for minutes)");
    Ok(())
}

/// The kinds of record `stores` already holds, of those a copy would mix with.
async fn holds(stores: &Stores) -> Result<Vec<&'static str>> {
    let mut held = Vec::new();
    if !stores.keys.list_keys().await?.is_empty() {
        held.push("keys");
    }
    if !stores.clients.list_clients().await?.is_empty() {
        held.push("clients");
    }
    if !stores.grants.list_grants(None, None).await?.is_empty() {
        held.push("grants");
    }
    if !stores.users.list_users().await?.is_empty() {
        held.push("users");
    }
    Ok(held)
}

/// Copies every kind, keys first (a grant names the key it was signed in with) and the audit log
/// last; returns a line per kind.
async fn copy(src: &Stores, dst: &Stores) -> Result<Vec<String>> {
    let mut lines = Vec::new();

    let mut keys = Tally::default();
    let mut used = Vec::new();
    for k in src.keys.list_keys().await? {
        if !keys.count(dst.keys.insert_key(&k).await, "key", &k.key_id)? {
            continue;
        }
        // Revoked in the record already; said again in case a backend takes revocation apart
        // from the insert.
        if k.revoked && !dst.keys.get_key(&k.key_id).await?.is_some_and(|d| d.revoked) {
            dst.keys.revoke_key(&k.key_id).await?;
        }
        if let Some(at) = src.keys.last_used(&k.key_id).await? {
            used.push((k.key_id.clone(), at));
        }
    }
    dst.keys.touch_keys(&used).await?;
    lines.push(keys.line("keys", ""));

    // Held credentials are sealed with MCPGATE_ENCRYPTION_KEY: copied as they are, never opened.
    let mut credentials = Tally::default();
    let there: HashSet<String> = dst
        .credentials
        .list_credentials()
        .await?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let now = unix_s();
    for (id, sealed) in src.credentials.list_credentials().await? {
        if there.contains(&id) {
            credentials.skipped += 1;
            continue;
        }
        let written = dst.credentials.set_credential(&id, &sealed, now).await;
        credentials.count(written, "the credential held for", &id)?;
    }
    lines.push(credentials.line("held credentials", " (sealed)"));

    let mut clients = Tally::default();
    for c in src.clients.list_clients().await? {
        clients.count(dst.clients.insert_client(&c).await, "client", &c.client_id)?;
    }
    lines.push(clients.line("clients", ""));

    let mut grants = Tally::default();
    let mut tokens = 0u64;
    for g in src.grants.list_grants(None, None).await? {
        let family = src.grants.refresh_tokens(&g.grant_id).await?;
        let written = match dst.grants.import_grant(&g, &family).await {
            // A taken refresh-token hash is not a grant already there.
            Err(StoreError::Duplicate(id)) if id != g.grant_id => Err(StoreError::Backend(
                "one of its refresh tokens is already in the destination".into(),
            )),
            other => other,
        };
        if grants.count(written, "grant", &g.grant_id)? {
            tokens += family.len() as u64;
        }
    }
    lines.push(grants.line("grants", &format!(" (with {tokens} refresh token(s))")));

    let mut consents = Tally::default();
    for c in src.grants.list_consents().await? {
        if dst.grants.get_consent(&c.user_id, &c.client_id).await?.is_some() {
            consents.skipped += 1;
            continue;
        }
        let written = dst.grants.set_consent(&c).await;
        consents.count(written, "the consent of", &c.user_id)?;
    }
    lines.push(consents.line("consents", ""));

    // Sealed like held credentials (the authorization server's sealing key opens them).
    let mut signing = Tally::default();
    for k in src.signing_keys.list_signing_keys().await? {
        signing.count(dst.signing_keys.insert_signing_key(&k).await, "signing key", &k.kid)?;
    }
    lines.push(signing.line("signing keys", " (sealed)"));

    let mut users = Tally::default();
    for u in src.users.list_users().await? {
        users.count(dst.users.import_user(&u).await, "user", &u.user_id)?;
    }
    lines.push(users.line("users", ""));

    let mut audit = 0u64;
    let mut after = 0;
    loop {
        let page = src.audit.page(after, AUDIT_PAGE).await?;
        let Some((last, _)) = page.last() else { break };
        after = *last;
        let records: Vec<_> = page.into_iter().map(|(_, r)| r).collect();
        dst.audit
            .append(&records)
            .await
            .with_context(|| format!("copying audit records (after the first {audit})"))?;
        audit += records.len() as u64;
    }
    lines.push(format!("  {:<17} {audit}", "audit records"));
    Ok(lines)
}
