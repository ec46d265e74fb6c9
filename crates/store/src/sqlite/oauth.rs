//! The authorization server's clients and signing keys, and the column codecs its tables share
//! with `grants.rs` (lists as JSON arrays, a subject spread over five columns). A value that does
//! not decode (an unknown role or kind, a list that is not JSON) fails the read rather than
//! reading as less: a corrupt row is an error to see, not a client with no redirect URIs.

use super::{SqliteStore, backend};
use crate::oauth::{ClientKind, ClientRecord, ClientStore, SigningKeyRecord, SigningKeyStore, Subject};
use crate::{Result, SealedCredential, StoreError, async_trait};
use mcpgate_core::principal::Role;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ValueRef};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

/// A list of strings stored as a JSON array.
pub(super) struct List(pub Vec<String>);

impl FromSql for List {
    fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
        serde_json::from_str(v.as_str()?)
            .map(List)
            .map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

pub(super) fn to_json(list: &[String]) -> Result<String> {
    serde_json::to_string(list).map_err(|e| StoreError::Backend(e.to_string()))
}

/// A role stored as [`Role::as_str`]; an unknown one fails the read.
pub(super) struct RoleColumn(pub Role);

impl FromSql for RoleColumn {
    fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
        let s = v.as_str()?;
        Role::parse(s)
            .map(RoleColumn)
            .ok_or_else(|| FromSqlError::Other(format!("unknown role {s:?}").into()))
    }
}

struct KindColumn(ClientKind);

impl FromSql for KindColumn {
    fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
        let s = v.as_str()?;
        ClientKind::parse(s)
            .map(KindColumn)
            .ok_or_else(|| FromSqlError::Other(format!("unknown client kind {s:?}").into()))
    }
}

/// The subject of a grant or code row (columns user_id, tenant, role, permissions, via).
pub(super) fn subject_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Subject> {
    Ok(Subject {
        user_id: r.get("user_id")?,
        tenant: r.get("tenant")?,
        role: r.get::<_, RoleColumn>("role")?.0,
        permissions: r.get::<_, List>("permissions")?.0,
        via: r.get("via")?,
    })
}

/// An insert's error: a taken primary key is [`StoreError::Duplicate`] naming `id`.
pub(super) fn insert_error(e: rusqlite::Error, id: &str) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
            StoreError::Duplicate(id.to_string())
        }
        e => backend(e),
    }
}

/// A transaction holding the file's write lock from its start (waiting out the busy timeout for
/// it), so a read-then-write cannot find its snapshot stale when another handle wrote meanwhile.
pub(super) fn immediate(conn: &mut Connection) -> Result<Transaction<'_>> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend)
}

fn client_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ClientRecord> {
    Ok(ClientRecord {
        client_id: r.get("client_id")?,
        kind: r.get::<_, KindColumn>("kind")?.0,
        name: r.get("name")?,
        secret_hash: r.get("secret_hash")?,
        auth_method: r.get("auth_method")?,
        redirect_uris: r.get::<_, List>("redirect_uris")?.0,
        grant_types: r.get::<_, List>("grant_types")?.0,
        scope: r.get::<_, Option<List>>("scope")?.map(|l| l.0),
        jwks: r.get("jwks")?,
        jwks_uri: r.get("jwks_uri")?,
        created_at: r.get("created_at")?,
        expires_at: r.get("expires_at")?,
    })
}

/// Writes `c`; `replace`: over a client with the same id, else refusing it.
fn write_client(conn: &Connection, c: &ClientRecord, replace: bool) -> Result<()> {
    let verb = if replace { "INSERT OR REPLACE" } else { "INSERT" };
    let scope = c.scope.as_deref().map(to_json).transpose()?;
    conn.execute(
        &format!(
            "{verb} INTO oauth_clients (client_id, kind, name, secret_hash, auth_method, redirect_uris, grant_types, scope, jwks, jwks_uri, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
        ),
        params![
            c.client_id,
            c.kind.as_str(),
            c.name,
            c.secret_hash,
            c.auth_method,
            to_json(&c.redirect_uris)?,
            to_json(&c.grant_types)?,
            scope,
            c.jwks,
            c.jwks_uri,
            c.created_at,
            c.expires_at
        ],
    )
    .map_err(|e| insert_error(e, &c.client_id))?;
    Ok(())
}

#[async_trait]
impl ClientStore for SqliteStore {
    async fn insert_client(&self, client: &ClientRecord) -> Result<()> {
        let client = client.clone();
        self.run(move |c| write_client(c, &client, false)).await
    }

    async fn put_client(&self, client: &ClientRecord) -> Result<()> {
        let client = client.clone();
        self.run(move |c| write_client(c, &client, true)).await
    }

    async fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>> {
        let client_id = client_id.to_string();
        self.run(move |c| {
            c.query_row(
                "SELECT * FROM oauth_clients WHERE client_id = ?1",
                [client_id],
                client_from_row,
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn list_clients(&self) -> Result<Vec<ClientRecord>> {
        self.run(|c| {
            let mut st = c
                .prepare("SELECT * FROM oauth_clients ORDER BY created_at, client_id")
                .map_err(backend)?;
            let rows = st.query_map([], client_from_row).map_err(backend)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
        })
        .await
    }

    async fn remove_client(&self, client_id: &str, now: i64) -> Result<bool> {
        let client_id = client_id.to_string();
        self.run(move |c| {
            let tx = immediate(c)?;
            let n = tx
                .execute("DELETE FROM oauth_clients WHERE client_id = ?1", [&client_id])
                .map_err(backend)?;
            tx.execute(
                "UPDATE oauth_grants SET revoked_at = ?2 WHERE client_id = ?1 AND revoked_at IS NULL",
                params![client_id, now],
            )
            .map_err(backend)?;
            tx.commit().map_err(backend)?;
            Ok(n > 0)
        })
        .await
    }
}

fn signing_key_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SigningKeyRecord> {
    Ok(SigningKeyRecord {
        kid: r.get("kid")?,
        alg: r.get("alg")?,
        sealed: SealedCredential {
            nonce: r.get("nonce")?,
            ciphertext: r.get("ciphertext")?,
        },
        public_jwk: r.get("public_jwk")?,
        created_at: r.get("created_at")?,
        retired_at: r.get("retired_at")?,
    })
}

#[async_trait]
impl SigningKeyStore for SqliteStore {
    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<()> {
        let k = key.clone();
        self.run(move |c| {
            c.execute(
                "INSERT INTO oauth_signing_keys (kid, alg, nonce, ciphertext, public_jwk, created_at, retired_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    k.kid,
                    k.alg,
                    k.sealed.nonce,
                    k.sealed.ciphertext,
                    k.public_jwk,
                    k.created_at,
                    k.retired_at
                ],
            )
            .map_err(|e| insert_error(e, &k.kid))?;
            Ok(())
        })
        .await
    }

    async fn list_signing_keys(&self) -> Result<Vec<SigningKeyRecord>> {
        self.run(|c| {
            let mut st = c
                .prepare("SELECT * FROM oauth_signing_keys ORDER BY created_at DESC, kid DESC")
                .map_err(backend)?;
            let rows = st.query_map([], signing_key_from_row).map_err(backend)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
        })
        .await
    }

    async fn retire_signing_key(&self, kid: &str, at: i64) -> Result<bool> {
        let kid = kid.to_string();
        self.run(move |c| {
            // The first retirement stands: a key retired twice keeps the time tokens were last
            // signed with it.
            let n = c
                .execute(
                    "UPDATE oauth_signing_keys SET retired_at = coalesce(retired_at, ?2) WHERE kid = ?1",
                    params![kid, at],
                )
                .map_err(backend)?;
            Ok(n > 0)
        })
        .await
    }

    async fn remove_signing_key(&self, kid: &str) -> Result<bool> {
        let kid = kid.to_string();
        self.run(move |c| {
            let n = c
                .execute("DELETE FROM oauth_signing_keys WHERE kid = ?1", [kid])
                .map_err(backend)?;
            Ok(n > 0)
        })
        .await
    }
}
