//! API keys and the upstream credentials held for them. The schema's triggers (see `mod.rs`)
//! bump the keys version on every change and record it on the row changed (or on a tombstone of
//! a row removed), in the statement that makes the change: a reader that sees the new version
//! sees the change, and nothing here bumps it by hand.

use super::{PostgresStore, backend, col, execute, insert_error, query, query_opt};
use crate::{CredentialStore, KeyChanges, KeyStore, Result, SealedCredential, StoreError, async_trait};
use deadpool_postgres::GenericClient;
use mcpgate_core::keys::KeyRecord;
use mcpgate_core::principal::{Limits, Role};
use tokio_postgres::IsolationLevel;
use tokio_postgres::Row;

fn key_from_row(r: &Row) -> Result<KeyRecord> {
    let role: String = col(r, "role")?;
    let perms: String = col(r, "permissions")?;
    let opt_u32 = |name: &str| -> Result<Option<u32>> {
        Ok(col::<Option<i64>>(r, name)?.map(|v| v.clamp(0, i64::from(u32::MAX)) as u32))
    };
    Ok(KeyRecord {
        key_id: col(r, "key_id")?,
        hash: col(r, "hash")?,
        name: col(r, "name")?,
        user_id: col(r, "user_id")?,
        tenant: col(r, "tenant")?,
        role: Role::parse(&role).unwrap_or(Role::Guest),
        permissions: serde_json::from_str(&perms).unwrap_or_default(),
        limits: Limits {
            per_minute: opt_u32("per_minute")?,
            per_hour: opt_u32("per_hour")?,
            per_day: opt_u32("per_day")?,
        },
        expires_at: col(r, "expires_at")?,
        created_at: col(r, "created_at")?,
        revoked: col(r, "revoked")?,
        source: "store".into(),
    })
}

fn sealed_from_row(r: &Row) -> Result<SealedCredential> {
    Ok(SealedCredential {
        nonce: col(r, "nonce")?,
        ciphertext: col(r, "ciphertext")?,
    })
}

async fn keys_version<C: GenericClient>(c: &C) -> Result<i64> {
    match query_opt(c, "SELECT value FROM meta WHERE name = 'keys_version'", &[])
        .await
        .map_err(backend)?
    {
        Some(row) => col(&row, "value"),
        None => Err(StoreError::Backend("the keys version is missing from meta".into())),
    }
}

/// The ids a tombstone table (`sql`) holds for removals after `since`.
async fn removed_since<C: GenericClient>(c: &C, sql: &str, since: i64) -> Result<Vec<String>> {
    query(c, sql, &[&since])
        .await
        .map_err(backend)?
        .iter()
        .map(|r| col(r, "key_id"))
        .collect()
}

impl PostgresStore {
    async fn select_keys(&self, sql: &str) -> Result<Vec<KeyRecord>> {
        let c = self.client().await?;
        query(&c, sql, &[])
            .await
            .map_err(backend)?
            .iter()
            .map(key_from_row)
            .collect()
    }
}

#[async_trait]
impl KeyStore for PostgresStore {
    async fn list_keys(&self) -> Result<Vec<KeyRecord>> {
        self.select_keys("SELECT * FROM api_keys ORDER BY created_at, key_id")
            .await
    }

    async fn all_keys(&self) -> Result<Vec<KeyRecord>> {
        self.select_keys("SELECT * FROM api_keys").await
    }

    async fn get_key(&self, key_id: &str) -> Result<Option<KeyRecord>> {
        let c = self.client().await?;
        query_opt(&c, "SELECT * FROM api_keys WHERE key_id = $1", &[&key_id])
            .await
            .map_err(backend)?
            .as_ref()
            .map(key_from_row)
            .transpose()
    }

    async fn insert_key(&self, k: &KeyRecord) -> Result<()> {
        let perms = serde_json::to_string(&k.permissions).map_err(|e| StoreError::Backend(e.to_string()))?;
        let limit = |v: Option<u32>| v.map(i64::from);
        let (per_minute, per_hour, per_day) = (
            limit(k.limits.per_minute),
            limit(k.limits.per_hour),
            limit(k.limits.per_day),
        );
        let c = self.client().await?;
        execute(
            &c,
            "INSERT INTO api_keys (key_id, hash, name, user_id, tenant, role, permissions, per_minute, per_hour, per_day, expires_at, created_at, revoked)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            &[
                &k.key_id,
                &k.hash,
                &k.name,
                &k.user_id,
                &k.tenant,
                &k.role.as_str(),
                &perms,
                &per_minute,
                &per_hour,
                &per_day,
                &k.expires_at,
                &k.created_at,
                &k.revoked,
            ],
        )
        .await
        .map_err(|e| insert_error(e, &k.key_id))?;
        Ok(())
    }

    async fn revoke_key(&self, key_id: &str) -> Result<bool> {
        let c = self.client().await?;
        let n = execute(&c, "UPDATE api_keys SET revoked = true WHERE key_id = $1", &[&key_id])
            .await
            .map_err(backend)?;
        Ok(n > 0)
    }

    async fn set_key_expiry(&self, key_id: &str, expires_at: Option<i64>) -> Result<bool> {
        let c = self.client().await?;
        let n = execute(
            &c,
            "UPDATE api_keys SET expires_at = $2 WHERE key_id = $1",
            &[&key_id, &expires_at],
        )
        .await
        .map_err(backend)?;
        Ok(n > 0)
    }

    async fn touch_keys(&self, used: &[(String, i64)]) -> Result<()> {
        if used.is_empty() {
            return Ok(());
        }
        // One time per key (the latest), in key order: two gateways touching overlapping keys
        // lock them in the same order, so neither waits on the other in a cycle.
        let mut latest = std::collections::BTreeMap::<&str, i64>::new();
        for (id, at) in used {
            let t = latest.entry(id.as_str()).or_insert(*at);
            *t = (*t).max(*at);
        }
        let ids: Vec<&str> = latest.keys().copied().collect();
        let times: Vec<i64> = latest.values().copied().collect();
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(backend)?;
        query(
            &tx,
            "SELECT key_id FROM api_keys WHERE key_id = ANY($1::text[]) ORDER BY key_id FOR UPDATE",
            &[&ids],
        )
        .await
        .map_err(backend)?;
        execute(
            &tx,
            "UPDATE api_keys k SET last_used_at = GREATEST(k.last_used_at, u.at)
             FROM UNNEST($1::text[], $2::bigint[]) AS u(id, at) WHERE k.key_id = u.id",
            &[&ids, &times],
        )
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    async fn last_used(&self, key_id: &str) -> Result<Option<i64>> {
        let c = self.client().await?;
        match query_opt(&c, "SELECT last_used_at FROM api_keys WHERE key_id = $1", &[&key_id])
            .await
            .map_err(backend)?
        {
            Some(row) => col(&row, "last_used_at"),
            None => Ok(None),
        }
    }

    async fn keys_version(&self) -> Result<i64> {
        keys_version(&self.client().await?).await
    }

    /// One REPEATABLE READ snapshot for the version and the rows. The triggers hold the counter
    /// row from the bump to the commit, so versions are given in commit order: every change up
    /// to the version the snapshot shows is in it, and none after.
    async fn key_changes_since(&self, since: i64) -> Result<Option<KeyChanges>> {
        let mut c = self.client().await?;
        let tx = c
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(backend)?;
        let version = keys_version(&tx).await?;
        if since > version {
            return Ok(None);
        }
        let keys = query(&tx, "SELECT * FROM api_keys WHERE changed_in > $1", &[&since])
            .await
            .map_err(backend)?
            .iter()
            .map(key_from_row)
            .collect::<Result<Vec<_>>>()?;
        let removed_keys =
            removed_since(&tx, "SELECT key_id FROM api_keys_removed WHERE changed_in > $1", since).await?;
        let mut credentials = query(
            &tx,
            "SELECT key_id, nonce, ciphertext FROM upstream_credentials WHERE changed_in > $1",
            &[&since],
        )
        .await
        .map_err(backend)?
        .iter()
        .map(|r| Ok((col(r, "key_id")?, Some(sealed_from_row(r)?))))
        .collect::<Result<Vec<_>>>()?;
        let removed = removed_since(
            &tx,
            "SELECT key_id FROM upstream_credentials_removed WHERE changed_in > $1",
            since,
        )
        .await?;
        credentials.extend(removed.into_iter().map(|id| (id, None)));
        tx.commit().await.map_err(backend)?;
        Ok(Some(KeyChanges {
            version,
            keys,
            removed_keys,
            credentials,
        }))
    }
}

#[async_trait]
impl CredentialStore for PostgresStore {
    async fn set_credential(&self, key_id: &str, sealed: &SealedCredential, now: i64) -> Result<()> {
        let c = self.client().await?;
        execute(
            &c,
            "INSERT INTO upstream_credentials (key_id, nonce, ciphertext, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (key_id) DO UPDATE SET nonce = EXCLUDED.nonce, ciphertext = EXCLUDED.ciphertext, updated_at = EXCLUDED.updated_at",
            &[&key_id, &sealed.nonce, &sealed.ciphertext, &now],
        )
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn remove_credential(&self, key_id: &str) -> Result<bool> {
        let c = self.client().await?;
        let n = execute(&c, "DELETE FROM upstream_credentials WHERE key_id = $1", &[&key_id])
            .await
            .map_err(backend)?;
        Ok(n > 0)
    }

    async fn list_credentials(&self) -> Result<Vec<(String, SealedCredential)>> {
        let c = self.client().await?;
        query(
            &c,
            "SELECT key_id, nonce, ciphertext FROM upstream_credentials ORDER BY key_id",
            &[],
        )
        .await
        .map_err(backend)?
        .iter()
        .map(|r| Ok((col(r, "key_id")?, sealed_from_row(r)?)))
        .collect()
    }
}
