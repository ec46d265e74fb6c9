//! The authorization server's clients and signing keys, and the column codecs its tables share
//! with `grants.rs` and `users.rs` (lists as JSON arrays in TEXT, a subject spread over five
//! columns). A value that does not decode (an unknown role or kind, a list that is not JSON)
//! fails the read rather than reading as less, as in the SQLite store.

use super::{PostgresStore, backend, codec, col, execute, insert_error, query, query_opt};
use crate::oauth::{ClientKind, ClientRecord, ClientStore, SigningKeyRecord, SigningKeyStore, Subject};
use crate::{Result, SealedCredential, async_trait};
use mcpgate_core::principal::Role;
use tokio_postgres::Row;

/// A list of strings stored as a JSON array.
pub(super) fn list(r: &Row, name: &str) -> Result<Vec<String>> {
    let text: String = col(r, name)?;
    serde_json::from_str(&text).map_err(|e| codec(format!("column {name} is not a JSON list: {e}")))
}

pub(super) fn to_json(list: &[String]) -> Result<String> {
    serde_json::to_string(list).map_err(codec)
}

/// A role stored as [`Role::as_str`]; an unknown one fails the read.
pub(super) fn role(r: &Row, name: &str) -> Result<Role> {
    let s: String = col(r, name)?;
    Role::parse(&s).ok_or_else(|| codec(format!("unknown role {s:?}")))
}

fn kind(r: &Row) -> Result<ClientKind> {
    let s: String = col(r, "kind")?;
    ClientKind::parse(&s).ok_or_else(|| codec(format!("unknown client kind {s:?}")))
}

/// The subject of a grant or code row (columns user_id, tenant, role, permissions, via).
pub(super) fn subject_from_row(r: &Row) -> Result<Subject> {
    Ok(Subject {
        user_id: col(r, "user_id")?,
        tenant: col(r, "tenant")?,
        role: role(r, "role")?,
        permissions: list(r, "permissions")?,
        via: col(r, "via")?,
    })
}

fn client_from_row(r: &Row) -> Result<ClientRecord> {
    let scope: Option<String> = col(r, "scope")?;
    Ok(ClientRecord {
        client_id: col(r, "client_id")?,
        kind: kind(r)?,
        name: col(r, "name")?,
        secret_hash: col(r, "secret_hash")?,
        auth_method: col(r, "auth_method")?,
        redirect_uris: list(r, "redirect_uris")?,
        grant_types: list(r, "grant_types")?,
        scope: scope
            .map(|s| serde_json::from_str(&s).map_err(|e| codec(format!("column scope is not a JSON list: {e}"))))
            .transpose()?,
        jwks: col(r, "jwks")?,
        jwks_uri: col(r, "jwks_uri")?,
        created_at: col(r, "created_at")?,
        expires_at: col(r, "expires_at")?,
    })
}

impl PostgresStore {
    /// Writes `c`; `replace`: over a client with the same id, else refusing it.
    async fn write_client(&self, c: &ClientRecord, replace: bool) -> Result<()> {
        let on_conflict = if replace {
            "ON CONFLICT (client_id) DO UPDATE SET kind = EXCLUDED.kind, name = EXCLUDED.name,
                secret_hash = EXCLUDED.secret_hash, auth_method = EXCLUDED.auth_method,
                redirect_uris = EXCLUDED.redirect_uris, grant_types = EXCLUDED.grant_types,
                scope = EXCLUDED.scope, jwks = EXCLUDED.jwks, jwks_uri = EXCLUDED.jwks_uri,
                created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at"
        } else {
            ""
        };
        let scope = c.scope.as_deref().map(to_json).transpose()?;
        let (redirect_uris, grant_types) = (to_json(&c.redirect_uris)?, to_json(&c.grant_types)?);
        let conn = self.client().await?;
        execute(
            &conn,
            &format!(
                "INSERT INTO oauth_clients (client_id, kind, name, secret_hash, auth_method, redirect_uris, grant_types, scope, jwks, jwks_uri, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) {on_conflict}"
            ),
            &[
                &c.client_id,
                &c.kind.as_str(),
                &c.name,
                &c.secret_hash,
                &c.auth_method,
                &redirect_uris,
                &grant_types,
                &scope,
                &c.jwks,
                &c.jwks_uri,
                &c.created_at,
                &c.expires_at,
            ],
        )
        .await
        .map_err(|e| insert_error(e, &c.client_id))?;
        Ok(())
    }
}

#[async_trait]
impl ClientStore for PostgresStore {
    async fn insert_client(&self, client: &ClientRecord) -> Result<()> {
        self.write_client(client, false).await
    }

    async fn put_client(&self, client: &ClientRecord) -> Result<()> {
        self.write_client(client, true).await
    }

    async fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>> {
        let c = self.client().await?;
        query_opt(&c, "SELECT * FROM oauth_clients WHERE client_id = $1", &[&client_id])
            .await
            .map_err(backend)?
            .as_ref()
            .map(client_from_row)
            .transpose()
    }

    async fn list_clients(&self) -> Result<Vec<ClientRecord>> {
        let c = self.client().await?;
        query(&c, "SELECT * FROM oauth_clients ORDER BY created_at, client_id", &[])
            .await
            .map_err(backend)?
            .iter()
            .map(client_from_row)
            .collect()
    }

    async fn remove_client(&self, client_id: &str, now: i64) -> Result<bool> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(backend)?;
        let n = execute(&tx, "DELETE FROM oauth_clients WHERE client_id = $1", &[&client_id])
            .await
            .map_err(backend)?;
        execute(
            &tx,
            &format!(
                "UPDATE oauth_grants SET revoked_at = $2 WHERE {}",
                super::grants::live_grants_locked("client_id")
            ),
            &[&client_id, &now],
        )
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(n > 0)
    }
}

fn signing_key_from_row(r: &Row) -> Result<SigningKeyRecord> {
    Ok(SigningKeyRecord {
        kid: col(r, "kid")?,
        alg: col(r, "alg")?,
        sealed: SealedCredential {
            nonce: col(r, "nonce")?,
            ciphertext: col(r, "ciphertext")?,
        },
        public_jwk: col(r, "public_jwk")?,
        created_at: col(r, "created_at")?,
        retired_at: col(r, "retired_at")?,
    })
}

#[async_trait]
impl SigningKeyStore for PostgresStore {
    async fn insert_signing_key(&self, k: &SigningKeyRecord) -> Result<()> {
        let c = self.client().await?;
        execute(
            &c,
            "INSERT INTO oauth_signing_keys (kid, alg, nonce, ciphertext, public_jwk, created_at, retired_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &k.kid,
                &k.alg,
                &k.sealed.nonce,
                &k.sealed.ciphertext,
                &k.public_jwk,
                &k.created_at,
                &k.retired_at,
            ],
        )
        .await
        .map_err(|e| insert_error(e, &k.kid))?;
        Ok(())
    }

    async fn list_signing_keys(&self) -> Result<Vec<SigningKeyRecord>> {
        let c = self.client().await?;
        query(
            &c,
            "SELECT * FROM oauth_signing_keys ORDER BY created_at DESC, kid DESC",
            &[],
        )
        .await
        .map_err(backend)?
        .iter()
        .map(signing_key_from_row)
        .collect()
    }

    async fn retire_signing_key(&self, kid: &str, at: i64) -> Result<bool> {
        let c = self.client().await?;
        // The first retirement stands: a key retired twice keeps the time tokens were last
        // signed with it.
        let n = execute(
            &c,
            "UPDATE oauth_signing_keys SET retired_at = COALESCE(retired_at, $2) WHERE kid = $1",
            &[&kid, &at],
        )
        .await
        .map_err(backend)?;
        Ok(n > 0)
    }

    async fn remove_signing_key(&self, kid: &str) -> Result<bool> {
        let c = self.client().await?;
        let n = execute(&c, "DELETE FROM oauth_signing_keys WHERE kid = $1", &[&kid])
            .await
            .map_err(backend)?;
        Ok(n > 0)
    }
}
