//! `mcpgate clients …`, `mcpgate grants …` and `mcpgate users …`: the authorization server's records in the
//! store the configuration names (SQLite or PostgreSQL), with the same rules as dynamic registration (`oauth::register::NewClient`).
//! A client secret is printed once; only its hash is kept. A running gateway sees a removed
//! client or a revoked grant within a second.

use crate::cli::{ClientsCommand, GrantsCommand, UsersCommand};
use anyhow::{Result, bail};
use mcpgate_core::entropy::OsEntropy;
use mcpgate_core::time::format_rfc3339;
use mcpgate_gateway::clock::unix_s;
use mcpgate_gateway::oauth::register::NewClient;
use mcpgate_store::StoreError;
use mcpgate_store::oauth::ClientKind;
use serde_json::{Value, json};

use mcpgate_gateway::admin::views::{client as client_view, grant as grant_view, user as user_view};

pub async fn users(cmd: UsersCommand) -> Result<()> {
    match cmd {
        UsersCommand::List { store, json } => {
            let all = super::store::open(&store).await?.users.list_users().await?;
            if json {
                let rows: Vec<Value> = all.iter().map(user_view).collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(());
            }
            println!(
                "{:<32} {:<12} {:<10} {:<21} {:<21} SIGN-INS",
                "USER", "TENANT", "ROLE", "FIRST", "LAST"
            );
            // Names come from providers: control characters are shown escaped, never sent to
            // the terminal.
            let shown = |v: &str| v.escape_debug().to_string();
            for u in &all {
                println!(
                    "{:<32} {:<12} {:<10} {:<21} {:<21} {}",
                    shown(&u.user_id),
                    shown(u.tenant.as_deref().unwrap_or("-")),
                    u.role.as_str(),
                    format_rfc3339(u.first_sign_in),
                    format_rfc3339(u.last_sign_in),
                    u.sign_ins
                );
            }
            Ok(())
        }
        UsersCommand::Show { user_id, store } => {
            let store = super::store::open(&store).await?;
            let Some(u) = store.users.get_user(&user_id).await? else {
                bail!("no user {user_id:?} has signed in through a provider");
            };
            let grants: Vec<Value> = store
                .grants
                .list_grants(Some(&user_id), None)
                .await?
                .iter()
                .map(grant_view)
                .collect();
            let mut v = user_view(&u);
            v["grants"] = json!(grants);
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(())
        }
    }
}

pub async fn clients(cmd: ClientsCommand) -> Result<()> {
    match cmd {
        ClientsCommand::Add {
            name,
            redirect_uris,
            public,
            grant_types,
            scope,
            store,
            json,
        } => {
            let store = super::store::open(&store).await?;
            let new = NewClient {
                kind: ClientKind::Configured,
                name: Some(name),
                redirect_uris,
                auth_method: Some(if public { "none" } else { "client_secret_basic" }.into()),
                grant_types: (!grant_types.is_empty()).then_some(grant_types),
                scope,
            };
            let (client, secret) = match new.build(&OsEntropy, unix_s()) {
                Ok(made) => made,
                Err((_, why)) => bail!("{why}"),
            };
            store.clients.insert_client(&client).await?;
            if json {
                let mut v = client_view(&client);
                v["client_secret"] = json!(secret);
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("client_id: {}", client.client_id);
                if let Some(s) = secret {
                    println!(
                        "client_secret: {s}\n(shown once; it is stored hashed. Send it with HTTP Basic at the token endpoint.)"
                    );
                }
            }
            Ok(())
        }
        ClientsCommand::List { store, json } => {
            let all = super::store::open(&store).await?.clients.list_clients().await?;
            if json {
                let rows: Vec<Value> = all.iter().map(client_view).collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(());
            }
            println!(
                "{:<42} {:<18} {:<12} {:<24} REDIRECTS",
                "CLIENT ID", "KIND", "AUTH", "NAME"
            );
            for c in &all {
                println!(
                    "{:<42} {:<18} {:<12} {:<24} {}",
                    c.client_id,
                    c.kind.as_str(),
                    if c.secret_hash.is_some() { "secret" } else { "public" },
                    c.name.as_deref().unwrap_or("-"),
                    c.redirect_uris.join(" ")
                );
            }
            Ok(())
        }
        ClientsCommand::Show { client_id, store } => {
            match super::store::open(&store).await?.clients.get_client(&client_id).await? {
                Some(c) => println!("{}", serde_json::to_string_pretty(&client_view(&c))?),
                None => bail!("no client {client_id}"),
            }
            Ok(())
        }
        ClientsCommand::Remove { client_id, store } => {
            if !super::store::open(&store)
                .await?
                .clients
                .remove_client(&client_id, unix_s())
                .await?
            {
                bail!("no client {client_id}");
            }
            println!("removed {client_id}; its grants are revoked");
            Ok(())
        }
    }
}

pub async fn grants(cmd: GrantsCommand) -> Result<()> {
    match cmd {
        GrantsCommand::List {
            user,
            client,
            store,
            json,
        } => {
            let all = super::store::open(&store)
                .await?
                .grants
                .list_grants(user.as_deref(), client.as_deref())
                .await?;
            if json {
                let rows: Vec<Value> = all.iter().map(grant_view).collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(());
            }
            println!(
                "{:<34} {:<18} {:<42} {:<10} SCOPES",
                "GRANT ID", "USER", "CLIENT", "STATE"
            );
            let now = unix_s();
            for g in &all {
                let state = match g.revoked_at {
                    Some(_) => "revoked",
                    None if g.expires_at <= now => "expired",
                    None => "live",
                };
                println!(
                    "{:<34} {:<18} {:<42} {:<10} {}",
                    g.grant_id,
                    g.subject.user_id,
                    g.client_id,
                    state,
                    g.scopes.join(" ")
                );
            }
            Ok(())
        }
        GrantsCommand::Revoke {
            grant_id,
            user,
            client,
            store,
        } => {
            let store = super::store::open(&store).await?;
            let now = unix_s();
            let grants: Vec<_> = match (grant_id, user) {
                (Some(id), None) => store.grants.get_grant(&id).await?.into_iter().collect(),
                (None, Some(u)) => store
                    .grants
                    .list_grants(Some(&u), client.as_deref())
                    .await?
                    .into_iter()
                    .filter(|g| g.revoked_at.is_none())
                    .collect(),
                _ => bail!("name a grant id, or --user (and optionally --client)"),
            };
            let mut ended = 0;
            let mut forgotten = 0;
            for g in &grants {
                match mcpgate_gateway::admin::revoke_grant(store.grants.as_ref(), store.credentials.as_ref(), g, now)
                    .await
                {
                    Ok(e) => {
                        ended += usize::from(e.revoked);
                        forgotten += usize::from(e.consent_forgotten);
                    }
                    Err(StoreError::Backend(e)) => bail!("{e}"),
                    Err(e) => return Err(e.into()),
                }
            }
            if ended == 0 {
                bail!("nothing to revoke (unknown or already revoked)");
            }
            println!(
                "revoked {ended} grant(s) and forgot {forgotten} remembered consent(s); their tokens stop working within a second"
            );
            Ok(())
        }
    }
}
