//! Grants with their codes, refresh tokens and consents. A method that reads then writes (taking
//! a code, rotating a token) runs in one transaction that first locks the rows it reads
//! (`SELECT … FOR UPDATE`): a racing caller, on this replica or another, waits for the first to
//! commit and then reads what it left, so exactly one sees the state it changes. Locks are taken
//! in one order everywhere (refresh token, then grant), so two such transactions never wait on
//! each other in a cycle. The decisions are [`crate::rules`]'s, as in every backend.

use super::oauth::{list, subject_from_row, to_json};
use super::{PostgresStore, backend, col, count, execute, insert_error, query, query_opt};
use crate::oauth::{CodeRecord, CodeTake, ConsentRecord, GrantRecord, GrantStore, RefreshTokenRecord, Rotation};
use crate::rules::{self, Refresh, Step};
use crate::{Result, async_trait};
use deadpool_postgres::{GenericClient, Transaction};
use tokio_postgres::Row;

/// The advisory lock [`GrantStore::prune_grants`] runs under ("mcpgatf": the migrations' + 1).
const PRUNE_LOCK: i64 = 0x006d_6370_6761_7466;

/// A predicate on the grants not yet revoked whose `column` is `$1`, locking them in id order
/// first: two statements revoking overlapping sets of grants (a client removed while a key's
/// grants are revoked) then never wait on each other in a cycle.
pub(super) fn live_grants_locked(column: &str) -> String {
    format!(
        "revoked_at IS NULL AND grant_id IN
         (SELECT grant_id FROM oauth_grants WHERE {column} = $1 AND revoked_at IS NULL ORDER BY grant_id FOR UPDATE)"
    )
}

fn grant_from_row(r: &Row) -> Result<GrantRecord> {
    Ok(GrantRecord {
        grant_id: col(r, "grant_id")?,
        client_id: col(r, "client_id")?,
        subject: subject_from_row(r)?,
        scopes: list(r, "scopes")?,
        resource: col(r, "resource")?,
        created_at: col(r, "created_at")?,
        expires_at: col(r, "expires_at")?,
        revoked_at: col(r, "revoked_at")?,
    })
}

fn code_from_row(r: &Row) -> Result<(CodeRecord, bool)> {
    let code = CodeRecord {
        code_hash: col(r, "code_hash")?,
        grant_id: col(r, "grant_id")?,
        client_id: col(r, "client_id")?,
        redirect_uri: col(r, "redirect_uri")?,
        code_challenge: col(r, "code_challenge")?,
        resource: col(r, "resource")?,
        scopes: list(r, "scopes")?,
        subject: subject_from_row(r)?,
        expires_at: col(r, "expires_at")?,
    };
    Ok((code, col(r, "taken")?))
}

fn refresh_from_row(r: &Row) -> Result<Refresh> {
    Ok(Refresh {
        grant_id: col(r, "grant_id")?,
        expires_at: col(r, "expires_at")?,
        spent_at: col(r, "spent_at")?,
        grace_used: col(r, "grace_used")?,
    })
}

/// The grant `grant_id`; `lock`: locked until the transaction ends.
async fn get_grant<C: GenericClient>(c: &C, grant_id: &str, lock: bool) -> Result<Option<GrantRecord>> {
    let sql = if lock {
        "SELECT * FROM oauth_grants WHERE grant_id = $1 FOR UPDATE"
    } else {
        "SELECT * FROM oauth_grants WHERE grant_id = $1"
    };
    query_opt(c, sql, &[&grant_id])
        .await
        .map_err(backend)?
        .as_ref()
        .map(grant_from_row)
        .transpose()
}

async fn add_refresh<C: GenericClient>(c: &C, hash: &str, grant: &GrantRecord, expires_at: i64) -> Result<()> {
    execute(
        c,
        "INSERT INTO oauth_refresh (token_hash, grant_id, expires_at) VALUES ($1, $2, $3)",
        &[&hash, &grant.grant_id, &rules::capped(expires_at, grant)],
    )
    .await
    .map_err(|e| insert_error(e, hash))?;
    Ok(())
}

fn consent_from_row(r: &Row) -> Result<ConsentRecord> {
    Ok(ConsentRecord {
        user_id: col(r, "user_id")?,
        client_id: col(r, "client_id")?,
        scopes: list(r, "scopes")?,
        given_at: col(r, "given_at")?,
    })
}

/// Adds the grant row (its revocation included); a taken id is a duplicate.
async fn insert_grant<C: GenericClient>(c: &C, g: &GrantRecord) -> Result<()> {
    let (permissions, scopes) = (to_json(&g.subject.permissions)?, to_json(&g.scopes)?);
    execute(
        c,
        "INSERT INTO oauth_grants (grant_id, client_id, user_id, tenant, role, permissions, via, scopes, resource, created_at, expires_at, revoked_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        &[
            &g.grant_id,
            &g.client_id,
            &g.subject.user_id,
            &g.subject.tenant,
            &g.subject.role.as_str(),
            &permissions,
            &g.subject.via,
            &scopes,
            &g.resource,
            &g.created_at,
            &g.expires_at,
            &g.revoked_at,
        ],
    )
    .await
    .map_err(|e| insert_error(e, &g.grant_id))?;
    Ok(())
}

/// Revokes one grant unless it already was; false when there is none or it was.
async fn revoke_one<C: GenericClient>(c: &C, grant_id: &str, now: i64) -> Result<bool> {
    let n = execute(
        c,
        "UPDATE oauth_grants SET revoked_at = $2 WHERE grant_id = $1 AND revoked_at IS NULL",
        &[&grant_id, &now],
    )
    .await
    .map_err(backend)?;
    Ok(n > 0)
}

/// Decides and applies one rotation inside `tx` (the caller commits).
async fn rotate(
    tx: &Transaction<'_>,
    old_hash: &str,
    new_hash: &str,
    new_expires_at: i64,
    now: i64,
    grace_s: i64,
) -> Result<Rotation> {
    let token = query_opt(
        tx,
        "SELECT * FROM oauth_refresh WHERE token_hash = $1 FOR UPDATE",
        &[&old_hash],
    )
    .await
    .map_err(backend)?
    .as_ref()
    .map(refresh_from_row)
    .transpose()?;
    let Some(token) = token else {
        return Ok(Rotation::Unknown);
    };
    let Some(grant) = get_grant(tx, &token.grant_id, true).await? else {
        return Ok(Rotation::Unknown);
    };
    let grant_id = grant.grant_id.clone();
    match rules::step(&grant, &token, now, grace_s) {
        Step::Ended => return Ok(Rotation::Ended { grant_id }),
        Step::Reuse => {
            revoke_one(tx, &grant_id, now).await?;
            return Ok(Rotation::Reused { grant_id });
        }
        Step::Spend => {
            execute(
                tx,
                "UPDATE oauth_refresh SET spent_at = $2 WHERE token_hash = $1",
                &[&old_hash, &now],
            )
            .await
        }
        Step::Grace => {
            execute(
                tx,
                "UPDATE oauth_refresh SET grace_used = true WHERE token_hash = $1",
                &[&old_hash],
            )
            .await
        }
    }
    .map_err(backend)?;
    add_refresh(tx, new_hash, &grant, new_expires_at).await?;
    Ok(Rotation::Rotated(Box::new(grant)))
}

#[async_trait]
impl GrantStore for PostgresStore {
    async fn put_code(&self, k: &CodeRecord) -> Result<()> {
        let (scopes, permissions) = (to_json(&k.scopes)?, to_json(&k.subject.permissions)?);
        let c = self.client().await?;
        // A plain insert: a taken code written again must not come back fresh.
        execute(
            &c,
            "INSERT INTO oauth_codes (code_hash, grant_id, client_id, redirect_uri, code_challenge, resource, scopes, user_id, tenant, role, permissions, via, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            &[
                &k.code_hash,
                &k.grant_id,
                &k.client_id,
                &k.redirect_uri,
                &k.code_challenge,
                &k.resource,
                &scopes,
                &k.subject.user_id,
                &k.subject.tenant,
                &k.subject.role.as_str(),
                &permissions,
                &k.subject.via,
                &k.expires_at,
            ],
        )
        .await
        .map_err(|e| insert_error(e, &k.code_hash))?;
        Ok(())
    }

    async fn take_code(&self, code_hash: &str, now: i64) -> Result<CodeTake> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(backend)?;
        let found = query_opt(
            &tx,
            "SELECT * FROM oauth_codes WHERE code_hash = $1 FOR UPDATE",
            &[&code_hash],
        )
        .await
        .map_err(backend)?
        .as_ref()
        .map(code_from_row)
        .transpose()?;
        Ok(match found {
            None => CodeTake::Unknown,
            Some((code, _)) if rules::expired(code.expires_at, now) => CodeTake::Unknown,
            Some((code, true)) => CodeTake::Reused(code),
            Some((code, false)) => {
                execute(
                    &tx,
                    "UPDATE oauth_codes SET taken = true WHERE code_hash = $1",
                    &[&code_hash],
                )
                .await
                .map_err(backend)?;
                tx.commit().await.map_err(backend)?;
                CodeTake::Fresh(code)
            }
        })
    }

    async fn create_grant(&self, g: &GrantRecord, refresh_hash: Option<&str>, refresh_expires_at: i64) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(backend)?;
        insert_grant(&tx, g).await?;
        if let Some(hash) = refresh_hash {
            add_refresh(&tx, hash, g, refresh_expires_at).await?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn get_grant(&self, grant_id: &str) -> Result<Option<GrantRecord>> {
        let c = self.client().await?;
        get_grant(&c, grant_id, false).await
    }

    async fn list_grants(&self, user_id: Option<&str>, client_id: Option<&str>) -> Result<Vec<GrantRecord>> {
        let c = self.client().await?;
        query(
            &c,
            "SELECT * FROM oauth_grants
             WHERE ($1::text IS NULL OR user_id = $1) AND ($2::text IS NULL OR client_id = $2)
             ORDER BY created_at DESC, grant_id DESC",
            &[&user_id, &client_id],
        )
        .await
        .map_err(backend)?
        .iter()
        .map(grant_from_row)
        .collect()
    }

    async fn revoke_grant(&self, grant_id: &str, now: i64) -> Result<bool> {
        let c = self.client().await?;
        revoke_one(&c, grant_id, now).await
    }

    async fn revoke_grants_via(&self, via: &str, now: i64) -> Result<usize> {
        let c = self.client().await?;
        let n = execute(
            &c,
            &format!(
                "UPDATE oauth_grants SET revoked_at = $2 WHERE {}",
                live_grants_locked("via")
            ),
            &[&via, &now],
        )
        .await
        .map_err(backend)?;
        Ok(count(n))
    }

    async fn revoked_since(&self, since: i64) -> Result<Vec<String>> {
        let c = self.client().await?;
        query(
            &c,
            "SELECT grant_id FROM oauth_grants WHERE revoked_at >= $1 ORDER BY revoked_at, grant_id",
            &[&since],
        )
        .await
        .map_err(backend)?
        .iter()
        .map(|r| col(r, "grant_id"))
        .collect()
    }

    async fn rotate_refresh(
        &self,
        old_hash: &str,
        new_hash: &str,
        new_expires_at: i64,
        now: i64,
        grace_s: i64,
    ) -> Result<Rotation> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(backend)?;
        let rotation = rotate(&tx, old_hash, new_hash, new_expires_at, now, grace_s).await?;
        tx.commit().await.map_err(backend)?;
        Ok(rotation)
    }

    async fn grant_of_refresh(&self, token_hash: &str) -> Result<Option<GrantRecord>> {
        let c = self.client().await?;
        query_opt(
            &c,
            "SELECT g.* FROM oauth_refresh t JOIN oauth_grants g ON g.grant_id = t.grant_id WHERE t.token_hash = $1",
            &[&token_hash],
        )
        .await
        .map_err(backend)?
        .as_ref()
        .map(grant_from_row)
        .transpose()
    }

    async fn set_consent(&self, k: &ConsentRecord) -> Result<()> {
        let scopes = to_json(&k.scopes)?;
        let c = self.client().await?;
        execute(
            &c,
            "INSERT INTO oauth_consents (user_id, client_id, scopes, given_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = EXCLUDED.scopes, given_at = EXCLUDED.given_at",
            &[&k.user_id, &k.client_id, &scopes, &k.given_at],
        )
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn get_consent(&self, user_id: &str, client_id: &str) -> Result<Option<ConsentRecord>> {
        let c = self.client().await?;
        query_opt(
            &c,
            "SELECT * FROM oauth_consents WHERE user_id = $1 AND client_id = $2",
            &[&user_id, &client_id],
        )
        .await
        .map_err(backend)?
        .as_ref()
        .map(consent_from_row)
        .transpose()
    }

    async fn remove_consent(&self, user_id: &str, client_id: &str) -> Result<bool> {
        let c = self.client().await?;
        let n = execute(
            &c,
            "DELETE FROM oauth_consents WHERE user_id = $1 AND client_id = $2",
            &[&user_id, &client_id],
        )
        .await
        .map_err(backend)?;
        Ok(n > 0)
    }

    async fn prune_grants(&self, now: i64, keep_revoked_s: i64) -> Result<usize> {
        let cutoff = now.saturating_sub(keep_revoked_s);
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(backend)?;
        // One prune at a time (every replica may run one): they would lock the same rows.
        execute(&tx, "SELECT pg_advisory_xact_lock($1)", &[&PRUNE_LOCK])
            .await
            .map_err(backend)?;
        // The predicates of `rules::expired` and `rules::grant_forgotten`. Tokens go before their
        // grants (the lock order of a rotation); grants are locked in id order (as every
        // statement that changes several).
        let ended = "(revoked_at IS NULL AND expires_at <= $1) OR revoked_at < $2";
        let codes = execute(&tx, "DELETE FROM oauth_codes WHERE expires_at <= $1", &[&now])
            .await
            .map_err(backend)?;
        let tokens = execute(
            &tx,
            &format!(
                "DELETE FROM oauth_refresh WHERE expires_at <= $1
                 OR grant_id IN (SELECT grant_id FROM oauth_grants WHERE {ended})"
            ),
            &[&now, &cutoff],
        )
        .await
        .map_err(backend)?;
        let grants = execute(
            &tx,
            &format!(
                "DELETE FROM oauth_grants WHERE ({ended}) AND grant_id IN
                 (SELECT grant_id FROM oauth_grants WHERE {ended} ORDER BY grant_id FOR UPDATE)"
            ),
            &[&now, &cutoff],
        )
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(count(codes + tokens + grants))
    }

    async fn refresh_tokens(&self, grant_id: &str) -> Result<Vec<RefreshTokenRecord>> {
        let c = self.client().await?;
        query(
            &c,
            "SELECT * FROM oauth_refresh WHERE grant_id = $1 ORDER BY token_hash",
            &[&grant_id],
        )
        .await
        .map_err(backend)?
        .iter()
        .map(|r| {
            Ok(RefreshTokenRecord {
                token_hash: col(r, "token_hash")?,
                expires_at: col(r, "expires_at")?,
                spent_at: col(r, "spent_at")?,
                grace_used: col(r, "grace_used")?,
            })
        })
        .collect()
    }

    async fn import_grant(&self, g: &GrantRecord, tokens: &[RefreshTokenRecord]) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(backend)?;
        insert_grant(&tx, g).await?;
        for t in tokens {
            execute(
                &tx,
                "INSERT INTO oauth_refresh (token_hash, grant_id, expires_at, spent_at, grace_used) VALUES ($1, $2, $3, $4, $5)",
                &[&t.token_hash, &g.grant_id, &t.expires_at, &t.spent_at, &t.grace_used],
            )
            .await
            .map_err(|e| insert_error(e, &t.token_hash))?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn list_consents(&self) -> Result<Vec<ConsentRecord>> {
        let c = self.client().await?;
        query(&c, "SELECT * FROM oauth_consents ORDER BY user_id, client_id", &[])
            .await
            .map_err(backend)?
            .iter()
            .map(consent_from_row)
            .collect()
    }
}
