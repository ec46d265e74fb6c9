//! Grants with their codes, refresh tokens and consents. A method that reads then writes (taking
//! a code, rotating a token, creating a grant with its token, pruning) runs in one `IMMEDIATE`
//! transaction: it holds the file's write lock from its first read, so of racing callers — in
//! this process or another on the same file — exactly one sees the state it changes. The
//! decisions are [`crate::rules`]'s, as in every backend.

use super::oauth::{List, immediate, insert_error, subject_from_row, to_json};
use super::{SqliteStore, backend};
use crate::oauth::{CodeRecord, CodeTake, ConsentRecord, GrantRecord, GrantStore, RefreshTokenRecord, Rotation};
use crate::rules::{self, Refresh, Step};
use crate::{Result, async_trait};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

fn grant_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<GrantRecord> {
    Ok(GrantRecord {
        grant_id: r.get("grant_id")?,
        client_id: r.get("client_id")?,
        subject: subject_from_row(r)?,
        scopes: r.get::<_, List>("scopes")?.0,
        resource: r.get("resource")?,
        created_at: r.get("created_at")?,
        expires_at: r.get("expires_at")?,
        revoked_at: r.get("revoked_at")?,
    })
}

fn code_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(CodeRecord, bool)> {
    let code = CodeRecord {
        code_hash: r.get("code_hash")?,
        grant_id: r.get("grant_id")?,
        client_id: r.get("client_id")?,
        redirect_uri: r.get("redirect_uri")?,
        code_challenge: r.get("code_challenge")?,
        resource: r.get("resource")?,
        scopes: r.get::<_, List>("scopes")?.0,
        subject: subject_from_row(r)?,
        expires_at: r.get("expires_at")?,
    };
    Ok((code, r.get("taken")?))
}

fn refresh_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Refresh> {
    Ok(Refresh {
        grant_id: r.get("grant_id")?,
        expires_at: r.get("expires_at")?,
        spent_at: r.get("spent_at")?,
        grace_used: r.get("grace_used")?,
    })
}

fn get_grant(conn: &Connection, grant_id: &str) -> Result<Option<GrantRecord>> {
    conn.query_row(
        "SELECT * FROM oauth_grants WHERE grant_id = ?1",
        [grant_id],
        grant_from_row,
    )
    .optional()
    .map_err(backend)
}

fn add_refresh(conn: &Connection, hash: &str, grant: &GrantRecord, expires_at: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO oauth_refresh (token_hash, grant_id, expires_at) VALUES (?1, ?2, ?3)",
        params![hash, grant.grant_id, rules::capped(expires_at, grant)],
    )
    .map_err(|e| insert_error(e, hash))?;
    Ok(())
}

fn consent_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ConsentRecord> {
    Ok(ConsentRecord {
        user_id: r.get("user_id")?,
        client_id: r.get("client_id")?,
        scopes: r.get::<_, List>("scopes")?.0,
        given_at: r.get("given_at")?,
    })
}

/// Adds the grant row (its revocation included); a taken id is a duplicate.
fn insert_grant(conn: &Connection, g: &GrantRecord) -> Result<()> {
    conn.execute(
        "INSERT INTO oauth_grants (grant_id, client_id, user_id, tenant, role, permissions, via, scopes, resource, created_at, expires_at, revoked_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            g.grant_id,
            g.client_id,
            g.subject.user_id,
            g.subject.tenant,
            g.subject.role.as_str(),
            to_json(&g.subject.permissions)?,
            g.subject.via,
            to_json(&g.scopes)?,
            g.resource,
            g.created_at,
            g.expires_at,
            g.revoked_at
        ],
    )
    .map_err(|e| insert_error(e, &g.grant_id))?;
    Ok(())
}

/// Revokes one grant unless it already was; false when there is none or it was.
fn revoke_one(conn: &Connection, grant_id: &str, now: i64) -> Result<bool> {
    let n = conn
        .execute(
            "UPDATE oauth_grants SET revoked_at = ?2 WHERE grant_id = ?1 AND revoked_at IS NULL",
            params![grant_id, now],
        )
        .map_err(backend)?;
    Ok(n > 0)
}

fn rotate(
    tx: &Transaction<'_>,
    old_hash: &str,
    new_hash: &str,
    new_expires_at: i64,
    now: i64,
    grace_s: i64,
) -> Result<Rotation> {
    let token = tx
        .query_row(
            "SELECT * FROM oauth_refresh WHERE token_hash = ?1",
            [old_hash],
            refresh_from_row,
        )
        .optional()
        .map_err(backend)?;
    let Some(token) = token else {
        return Ok(Rotation::Unknown);
    };
    let Some(grant) = get_grant(tx, &token.grant_id)? else {
        return Ok(Rotation::Unknown);
    };
    let grant_id = grant.grant_id.clone();
    match rules::step(&grant, &token, now, grace_s) {
        Step::Ended => return Ok(Rotation::Ended { grant_id }),
        Step::Reuse => {
            revoke_one(tx, &grant_id, now)?;
            return Ok(Rotation::Reused { grant_id });
        }
        Step::Spend => tx.execute(
            "UPDATE oauth_refresh SET spent_at = ?2 WHERE token_hash = ?1",
            params![old_hash, now],
        ),
        Step::Grace => tx.execute(
            "UPDATE oauth_refresh SET grace_used = 1 WHERE token_hash = ?1",
            [old_hash],
        ),
    }
    .map_err(backend)?;
    add_refresh(tx, new_hash, &grant, new_expires_at)?;
    Ok(Rotation::Rotated(Box::new(grant)))
}

#[async_trait]
impl GrantStore for SqliteStore {
    async fn put_code(&self, code: &CodeRecord) -> Result<()> {
        let k = code.clone();
        self.run(move |c| {
            // A plain insert: a taken code written again must not come back fresh.
            c.execute(
                "INSERT INTO oauth_codes (code_hash, grant_id, client_id, redirect_uri, code_challenge, resource, scopes, user_id, tenant, role, permissions, via, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![
                    k.code_hash,
                    k.grant_id,
                    k.client_id,
                    k.redirect_uri,
                    k.code_challenge,
                    k.resource,
                    to_json(&k.scopes)?,
                    k.subject.user_id,
                    k.subject.tenant,
                    k.subject.role.as_str(),
                    to_json(&k.subject.permissions)?,
                    k.subject.via,
                    k.expires_at
                ],
            )
            .map_err(|e| insert_error(e, &k.code_hash))?;
            Ok(())
        })
        .await
    }

    async fn take_code(&self, code_hash: &str, now: i64) -> Result<CodeTake> {
        let code_hash = code_hash.to_string();
        self.run(move |c| {
            let tx = immediate(c)?;
            let found = tx
                .query_row(
                    "SELECT * FROM oauth_codes WHERE code_hash = ?1",
                    [&code_hash],
                    code_from_row,
                )
                .optional()
                .map_err(backend)?;
            Ok(match found {
                None => CodeTake::Unknown,
                Some((code, _)) if rules::expired(code.expires_at, now) => CodeTake::Unknown,
                Some((code, true)) => CodeTake::Reused(code),
                Some((code, false)) => {
                    tx.execute("UPDATE oauth_codes SET taken = 1 WHERE code_hash = ?1", [&code_hash])
                        .map_err(backend)?;
                    tx.commit().map_err(backend)?;
                    CodeTake::Fresh(code)
                }
            })
        })
        .await
    }

    async fn create_grant(
        &self,
        grant: &GrantRecord,
        refresh_hash: Option<&str>,
        refresh_expires_at: i64,
    ) -> Result<()> {
        let (g, refresh_hash) = (grant.clone(), refresh_hash.map(str::to_string));
        self.run(move |c| {
            let tx = immediate(c)?;
            insert_grant(&tx, &g)?;
            if let Some(hash) = &refresh_hash {
                add_refresh(&tx, hash, &g, refresh_expires_at)?;
            }
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn get_grant(&self, grant_id: &str) -> Result<Option<GrantRecord>> {
        let grant_id = grant_id.to_string();
        self.run(move |c| get_grant(c, &grant_id)).await
    }

    async fn list_grants(&self, user_id: Option<&str>, client_id: Option<&str>) -> Result<Vec<GrantRecord>> {
        let (user_id, client_id) = (user_id.map(str::to_string), client_id.map(str::to_string));
        self.run(move |c| {
            let mut st = c
                .prepare(
                    "SELECT * FROM oauth_grants
                     WHERE (?1 IS NULL OR user_id = ?1) AND (?2 IS NULL OR client_id = ?2)
                     ORDER BY created_at DESC, grant_id DESC",
                )
                .map_err(backend)?;
            let rows = st
                .query_map(params![user_id, client_id], grant_from_row)
                .map_err(backend)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
        })
        .await
    }

    async fn revoke_grant(&self, grant_id: &str, now: i64) -> Result<bool> {
        let grant_id = grant_id.to_string();
        self.run(move |c| revoke_one(c, &grant_id, now)).await
    }

    async fn revoke_grants_via(&self, via: &str, now: i64) -> Result<usize> {
        let via = via.to_string();
        self.run(move |c| {
            c.execute(
                "UPDATE oauth_grants SET revoked_at = ?2 WHERE via = ?1 AND revoked_at IS NULL",
                params![via, now],
            )
            .map_err(backend)
        })
        .await
    }

    async fn revoked_since(&self, since: i64) -> Result<Vec<String>> {
        self.run(move |c| {
            let mut st = c
                .prepare("SELECT grant_id FROM oauth_grants WHERE revoked_at >= ?1 ORDER BY revoked_at, grant_id")
                .map_err(backend)?;
            let rows = st.query_map([since], |r| r.get(0)).map_err(backend)?;
            rows.collect::<rusqlite::Result<Vec<String>>>().map_err(backend)
        })
        .await
    }

    async fn rotate_refresh(
        &self,
        old_hash: &str,
        new_hash: &str,
        new_expires_at: i64,
        now: i64,
        grace_s: i64,
    ) -> Result<Rotation> {
        let (old_hash, new_hash) = (old_hash.to_string(), new_hash.to_string());
        self.run(move |c| {
            let tx = immediate(c)?;
            let rotation = rotate(&tx, &old_hash, &new_hash, new_expires_at, now, grace_s)?;
            tx.commit().map_err(backend)?;
            Ok(rotation)
        })
        .await
    }

    async fn grant_of_refresh(&self, token_hash: &str) -> Result<Option<GrantRecord>> {
        let token_hash = token_hash.to_string();
        self.run(move |c| {
            c.query_row(
                "SELECT g.* FROM oauth_refresh t JOIN oauth_grants g ON g.grant_id = t.grant_id WHERE t.token_hash = ?1",
                [token_hash],
                grant_from_row,
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn set_consent(&self, consent: &ConsentRecord) -> Result<()> {
        let k = consent.clone();
        self.run(move |c| {
            c.execute(
                "INSERT OR REPLACE INTO oauth_consents (user_id, client_id, scopes, given_at) VALUES (?1, ?2, ?3, ?4)",
                params![k.user_id, k.client_id, to_json(&k.scopes)?, k.given_at],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn get_consent(&self, user_id: &str, client_id: &str) -> Result<Option<ConsentRecord>> {
        let (user_id, client_id) = (user_id.to_string(), client_id.to_string());
        self.run(move |c| {
            c.query_row(
                "SELECT * FROM oauth_consents WHERE user_id = ?1 AND client_id = ?2",
                [user_id, client_id],
                consent_from_row,
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn remove_consent(&self, user_id: &str, client_id: &str) -> Result<bool> {
        let (user_id, client_id) = (user_id.to_string(), client_id.to_string());
        self.run(move |c| {
            let n = c
                .execute(
                    "DELETE FROM oauth_consents WHERE user_id = ?1 AND client_id = ?2",
                    [user_id, client_id],
                )
                .map_err(backend)?;
            Ok(n > 0)
        })
        .await
    }

    async fn prune_grants(&self, now: i64, keep_revoked_s: i64) -> Result<usize> {
        let cutoff = now.saturating_sub(keep_revoked_s);
        self.run(move |c| {
            let tx = immediate(c)?;
            // The predicates of `rules::expired` and `rules::grant_forgotten`.
            let ended = "(revoked_at IS NULL AND expires_at <= ?1) OR revoked_at < ?2";
            let codes = tx
                .execute("DELETE FROM oauth_codes WHERE expires_at <= ?1", [now])
                .map_err(backend)?;
            let tokens = tx
                .execute(
                    &format!(
                        "DELETE FROM oauth_refresh WHERE expires_at <= ?1
                         OR grant_id IN (SELECT grant_id FROM oauth_grants WHERE {ended})"
                    ),
                    [now, cutoff],
                )
                .map_err(backend)?;
            let grants = tx
                .execute(&format!("DELETE FROM oauth_grants WHERE {ended}"), [now, cutoff])
                .map_err(backend)?;
            tx.commit().map_err(backend)?;
            Ok(codes + tokens + grants)
        })
        .await
    }

    async fn refresh_tokens(&self, grant_id: &str) -> Result<Vec<RefreshTokenRecord>> {
        let grant_id = grant_id.to_string();
        self.run(move |c| {
            let mut st = c
                .prepare("SELECT * FROM oauth_refresh WHERE grant_id = ?1 ORDER BY token_hash")
                .map_err(backend)?;
            let rows = st
                .query_map([grant_id], |r| {
                    Ok(RefreshTokenRecord {
                        token_hash: r.get("token_hash")?,
                        expires_at: r.get("expires_at")?,
                        spent_at: r.get("spent_at")?,
                        grace_used: r.get("grace_used")?,
                    })
                })
                .map_err(backend)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
        })
        .await
    }

    async fn import_grant(&self, grant: &GrantRecord, tokens: &[RefreshTokenRecord]) -> Result<()> {
        let (g, tokens) = (grant.clone(), tokens.to_vec());
        self.run(move |c| {
            let tx = immediate(c)?;
            insert_grant(&tx, &g)?;
            for t in &tokens {
                tx.execute(
                    "INSERT INTO oauth_refresh (token_hash, grant_id, expires_at, spent_at, grace_used) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![t.token_hash, g.grant_id, t.expires_at, t.spent_at, t.grace_used],
                )
                .map_err(|e| insert_error(e, &t.token_hash))?;
            }
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn list_consents(&self) -> Result<Vec<ConsentRecord>> {
        self.run(|c| {
            let mut st = c
                .prepare("SELECT * FROM oauth_consents ORDER BY user_id, client_id")
                .map_err(backend)?;
            let rows = st.query_map([], consent_from_row).map_err(backend)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
        })
        .await
    }
}
