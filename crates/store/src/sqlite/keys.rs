//! API keys and the upstream credentials held for them. The schema's triggers (see `mod.rs`)
//! bump the keys version on every change and record it on the row changed (or on a tombstone of
//! a row removed), in the statement that makes the change: nothing here bumps it by hand.

use super::{SqliteStore, backend};
use crate::{CredentialStore, KeyChanges, KeyStore, Result, SealedCredential, StoreError, async_trait};
use mcpgate_core::keys::KeyRecord;
use mcpgate_core::principal::{Limits, Role};
use rusqlite::{Connection, OptionalExtension, Params, params};

fn select_keys(conn: &Connection, sql: &str, p: impl Params) -> Result<Vec<KeyRecord>> {
    let mut st = conn.prepare(sql).map_err(backend)?;
    let rows = st.query_map(p, key_from_row).map_err(backend)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
}

fn select_ids(conn: &Connection, sql: &str, since: i64) -> Result<Vec<String>> {
    let mut st = conn.prepare(sql).map_err(backend)?;
    let rows = st.query_map([since], |r| r.get(0)).map_err(backend)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
}

fn keys_version(conn: &Connection) -> Result<i64> {
    conn.query_row("SELECT value FROM meta WHERE name = 'keys_version'", [], |r| r.get(0))
        .map_err(backend)
}

fn key_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<KeyRecord> {
    let role: String = r.get("role")?;
    let perms: String = r.get("permissions")?;
    let opt_u32 = |name: &str| -> rusqlite::Result<Option<u32>> {
        Ok(r.get::<_, Option<i64>>(name)?
            .map(|v| v.clamp(0, i64::from(u32::MAX)) as u32))
    };
    Ok(KeyRecord {
        key_id: r.get("key_id")?,
        hash: r.get("hash")?,
        name: r.get("name")?,
        user_id: r.get("user_id")?,
        tenant: r.get("tenant")?,
        role: Role::parse(&role).unwrap_or(Role::Guest),
        permissions: serde_json::from_str(&perms).unwrap_or_default(),
        limits: Limits {
            per_minute: opt_u32("per_minute")?,
            per_hour: opt_u32("per_hour")?,
            per_day: opt_u32("per_day")?,
        },
        expires_at: r.get("expires_at")?,
        created_at: r.get("created_at")?,
        revoked: r.get::<_, i64>("revoked")? != 0,
        source: "store".into(),
    })
}

#[async_trait]
impl KeyStore for SqliteStore {
    async fn list_keys(&self) -> Result<Vec<KeyRecord>> {
        self.run(|c| select_keys(c, "SELECT * FROM api_keys ORDER BY created_at, key_id", []))
            .await
    }

    async fn all_keys(&self) -> Result<Vec<KeyRecord>> {
        self.run(|c| select_keys(c, "SELECT * FROM api_keys", [])).await
    }

    async fn get_key(&self, key_id: &str) -> Result<Option<KeyRecord>> {
        let key_id = key_id.to_string();
        self.run(move |c| {
            c.query_row("SELECT * FROM api_keys WHERE key_id = ?1", [key_id], key_from_row)
                .optional()
                .map_err(backend)
        })
        .await
    }

    async fn insert_key(&self, k: &KeyRecord) -> Result<()> {
        let k = k.clone();
        self.run(move |c| {
            let perms = serde_json::to_string(&k.permissions).map_err(|e| StoreError::Backend(e.to_string()))?;
            let res = c.execute(
                "INSERT INTO api_keys (key_id, hash, name, user_id, tenant, role, permissions, per_minute, per_hour, per_day, expires_at, created_at, revoked)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![
                    k.key_id, k.hash, k.name, k.user_id, k.tenant, k.role.as_str(), perms,
                    k.limits.per_minute, k.limits.per_hour, k.limits.per_day, k.expires_at, k.created_at, k.revoked as i64
                ],
            );
            match res {
                Ok(_) => Ok(()),
                Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                    Err(StoreError::Duplicate(k.key_id.clone()))
                }
                Err(e) => Err(backend(e)),
            }
        })
        .await
    }

    async fn revoke_key(&self, key_id: &str) -> Result<bool> {
        let key_id = key_id.to_string();
        self.run(move |c| {
            let n = c
                .execute("UPDATE api_keys SET revoked = 1 WHERE key_id = ?1", [key_id])
                .map_err(backend)?;
            Ok(n > 0)
        })
        .await
    }

    async fn set_key_expiry(&self, key_id: &str, expires_at: Option<i64>) -> Result<bool> {
        let key_id = key_id.to_string();
        self.run(move |c| {
            let n = c
                .execute(
                    "UPDATE api_keys SET expires_at = ?2 WHERE key_id = ?1",
                    params![key_id, expires_at],
                )
                .map_err(backend)?;
            Ok(n > 0)
        })
        .await
    }

    async fn touch_keys(&self, used: &[(String, i64)]) -> Result<()> {
        let used = used.to_vec();
        self.run(move |c| {
            let tx = c.transaction().map_err(backend)?;
            for (id, at) in &used {
                tx.execute(
                    "UPDATE api_keys SET last_used_at = max(coalesce(last_used_at, ?2), ?2) WHERE key_id = ?1",
                    params![id, at],
                )
                .map_err(backend)?;
            }
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn last_used(&self, key_id: &str) -> Result<Option<i64>> {
        let key_id = key_id.to_string();
        self.run(move |c| {
            c.query_row("SELECT last_used_at FROM api_keys WHERE key_id = ?1", [key_id], |r| {
                r.get(0)
            })
            .optional()
            .map(|v| v.flatten())
            .map_err(backend)
        })
        .await
    }

    async fn keys_version(&self) -> Result<i64> {
        self.run(|c| keys_version(c)).await
    }

    async fn key_changes_since(&self, since: i64) -> Result<Option<KeyChanges>> {
        self.run(move |c| {
            // One read transaction: in WAL mode, one snapshot for the version and the rows.
            let tx = c.transaction().map_err(backend)?;
            let version = keys_version(&tx)?;
            if since > version {
                return Ok(None);
            }
            let keys = select_keys(&tx, "SELECT * FROM api_keys WHERE changed_in > ?1", [since])?;
            let removed_keys = select_ids(&tx, "SELECT key_id FROM api_keys_removed WHERE changed_in > ?1", since)?;
            let mut credentials = {
                let mut st = tx
                    .prepare("SELECT key_id, nonce, ciphertext FROM upstream_credentials WHERE changed_in > ?1")
                    .map_err(backend)?;
                let rows = st
                    .query_map([since], |r| {
                        let sealed = SealedCredential {
                            nonce: r.get(1)?,
                            ciphertext: r.get(2)?,
                        };
                        Ok((r.get::<_, String>(0)?, Some(sealed)))
                    })
                    .map_err(backend)?;
                rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)?
            };
            let removed = select_ids(
                &tx,
                "SELECT key_id FROM upstream_credentials_removed WHERE changed_in > ?1",
                since,
            )?;
            credentials.extend(removed.into_iter().map(|id| (id, None)));
            tx.commit().map_err(backend)?;
            Ok(Some(KeyChanges {
                version,
                keys,
                removed_keys,
                credentials,
            }))
        })
        .await
    }
}

#[async_trait]
impl CredentialStore for SqliteStore {
    async fn set_credential(&self, key_id: &str, sealed: &SealedCredential, now: i64) -> Result<()> {
        let (key_id, sealed) = (key_id.to_string(), sealed.clone());
        self.run(move |c| {
            c.execute(
                "INSERT INTO upstream_credentials (key_id, nonce, ciphertext, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(key_id) DO UPDATE SET nonce = excluded.nonce, ciphertext = excluded.ciphertext, updated_at = excluded.updated_at",
                params![key_id, sealed.nonce, sealed.ciphertext, now],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn remove_credential(&self, key_id: &str) -> Result<bool> {
        let key_id = key_id.to_string();
        self.run(move |c| {
            let n = c
                .execute("DELETE FROM upstream_credentials WHERE key_id = ?1", [key_id])
                .map_err(backend)?;
            Ok(n > 0)
        })
        .await
    }

    async fn list_credentials(&self) -> Result<Vec<(String, SealedCredential)>> {
        self.run(|c| {
            let mut st = c
                .prepare("SELECT key_id, nonce, ciphertext FROM upstream_credentials ORDER BY key_id")
                .map_err(backend)?;
            let rows = st
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        SealedCredential {
                            nonce: r.get(1)?,
                            ciphertext: r.get(2)?,
                        },
                    ))
                })
                .map_err(backend)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
        })
        .await
    }
}
