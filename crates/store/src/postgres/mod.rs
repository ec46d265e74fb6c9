//! A shared store on PostgreSQL, for several gateways (replicas) behind one load balancer: keys and
//! held credentials, audit, replay entries, and the authorization server's clients, grants,
//! signing keys and users. Rate-limit counters and session ownership are not here (see the crate's
//! docs: they belong in a store built for a write per request).
//!
//! Each method is one statement or one transaction, with the same behaviour as
//! [`crate::sqlite::SqliteStore`] (the [`crate::conformance`] suite holds both to it). Where SQLite
//! serialises writers with its file lock, this store relies on PostgreSQL's row locks: claims and
//! sign-ins are single `INSERT … ON CONFLICT` statements, and a method that reads then writes
//! (taking a code, rotating a refresh token) first locks the rows it reads (`SELECT … FOR UPDATE`),
//! so of racing callers on any replica exactly one sees the state it changes. Lists sort ids
//! bytewise (`COLLATE "C"`), as the embedded stores do, whatever the database's locale.
//!
//! [`PostgresStore::connect`] takes a libpq-style URL (`postgres://user:password@host:port/db`,
//! with options such as `sslmode`, `connect_timeout`, `application_name`, or
//! `options=-c search_path=…` for a schema of its own) and brings the schema up to date: the
//! embedded migrations run in one transaction under an advisory lock, so replicas starting
//! together never race, and each is recorded in `mcpgate_migrations`.
//!
//! TLS: with `sslmode=require`, or with the default `sslmode=prefer` when the server offers TLS,
//! the connection is encrypted by rustls (the aws-lc provider) and the server's certificate is
//! verified against the platform's trust store and the URL's host name (stricter than libpq,
//! which checks neither under `require`). A private CA must therefore be trusted by the platform;
//! `sslrootcert` and client certificates are not supported. `sslmode=disable` never uses TLS.
//!
//! Errors are [`StoreError::Backend`] with the driver's or server's words; the URL, and the
//! password in it, never appear in one.

mod audit;
mod grants;
mod keys;
mod oauth;
mod replay;
#[cfg(feature = "postgres-testing")]
pub mod testing;
mod users;

use crate::{Result, StoreError};
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime};
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::config::SslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

/// The schema, one step per entry, applied in order; the number applied is the highest
/// `version` in `mcpgate_migrations`. Add steps at the end, never change one that shipped. Ids
/// sort bytewise (`COLLATE "C"`) as in the embedded stores; lists of strings are JSON arrays in
/// TEXT, as in SQLite; times are unix seconds (audit: milliseconds) in BIGINT.
const MIGRATIONS: &[&str] = &[
    // Keys, held credentials, audit, replay.
    r#"CREATE TABLE meta (name TEXT COLLATE "C" PRIMARY KEY, value BIGINT NOT NULL);
     INSERT INTO meta VALUES ('keys_version', 0);
     CREATE TABLE api_keys (
        key_id TEXT COLLATE "C" PRIMARY KEY, hash TEXT NOT NULL, name TEXT NOT NULL, user_id TEXT NOT NULL,
        tenant TEXT, role TEXT NOT NULL, permissions TEXT NOT NULL, per_minute BIGINT,
        per_hour BIGINT, per_day BIGINT, expires_at BIGINT, created_at BIGINT NOT NULL,
        revoked BOOLEAN NOT NULL DEFAULT false, last_used_at BIGINT);
     CREATE INDEX api_keys_created ON api_keys(created_at, key_id);
     CREATE TABLE upstream_credentials (
        key_id TEXT COLLATE "C" PRIMARY KEY, nonce BYTEA NOT NULL, ciphertext BYTEA NOT NULL,
        updated_at BIGINT NOT NULL);
     CREATE TABLE audit (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, time_ms BIGINT NOT NULL,
        request_id TEXT NOT NULL, event TEXT NOT NULL, principal TEXT, key_id TEXT, user_id TEXT,
        tenant TEXT, auth_method TEXT, client_addr TEXT, mcp_method TEXT, tool TEXT,
        decision TEXT NOT NULL, reason TEXT NOT NULL, status INTEGER NOT NULL,
        latency_us BIGINT NOT NULL, client_id TEXT);
     CREATE INDEX audit_time ON audit(time_ms);
     CREATE INDEX audit_user ON audit(user_id, id);
     CREATE TABLE replay (key BYTEA PRIMARY KEY, expires_at BIGINT NOT NULL);
     CREATE INDEX replay_expiry ON replay(expires_at);"#,
    // The authorization server (see `oauth.rs`, `grants.rs`): a grant's or code's subject is
    // spread over user_id … via; codes and refresh tokens are keyed by hash.
    r#"CREATE TABLE oauth_clients (
        client_id TEXT COLLATE "C" PRIMARY KEY, kind TEXT NOT NULL, name TEXT, secret_hash TEXT,
        auth_method TEXT NOT NULL, redirect_uris TEXT NOT NULL, grant_types TEXT NOT NULL,
        scope TEXT, jwks TEXT, jwks_uri TEXT, created_at BIGINT NOT NULL, expires_at BIGINT);
     CREATE TABLE oauth_grants (
        grant_id TEXT COLLATE "C" PRIMARY KEY, client_id TEXT COLLATE "C" NOT NULL,
        user_id TEXT COLLATE "C" NOT NULL, tenant TEXT, role TEXT NOT NULL,
        permissions TEXT NOT NULL, via TEXT NOT NULL, scopes TEXT NOT NULL,
        resource TEXT NOT NULL, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL,
        revoked_at BIGINT);
     CREATE INDEX oauth_grants_user ON oauth_grants(user_id, created_at);
     CREATE INDEX oauth_grants_client ON oauth_grants(client_id, created_at);
     CREATE INDEX oauth_grants_created ON oauth_grants(created_at, grant_id);
     CREATE INDEX oauth_grants_via ON oauth_grants(via) WHERE revoked_at IS NULL;
     CREATE INDEX oauth_grants_revoked ON oauth_grants(revoked_at) WHERE revoked_at IS NOT NULL;
     CREATE INDEX oauth_grants_expiry ON oauth_grants(expires_at) WHERE revoked_at IS NULL;
     CREATE TABLE oauth_codes (
        code_hash TEXT COLLATE "C" PRIMARY KEY, grant_id TEXT NOT NULL, client_id TEXT NOT NULL,
        redirect_uri TEXT NOT NULL, code_challenge TEXT NOT NULL, resource TEXT NOT NULL,
        scopes TEXT NOT NULL, user_id TEXT NOT NULL, tenant TEXT, role TEXT NOT NULL,
        permissions TEXT NOT NULL, via TEXT NOT NULL, expires_at BIGINT NOT NULL,
        taken BOOLEAN NOT NULL DEFAULT false);
     CREATE INDEX oauth_codes_expiry ON oauth_codes(expires_at);
     CREATE TABLE oauth_refresh (
        token_hash TEXT COLLATE "C" PRIMARY KEY, grant_id TEXT COLLATE "C" NOT NULL,
        expires_at BIGINT NOT NULL, spent_at BIGINT, grace_used BOOLEAN NOT NULL DEFAULT false);
     CREATE INDEX oauth_refresh_grant ON oauth_refresh(grant_id);
     CREATE INDEX oauth_refresh_expiry ON oauth_refresh(expires_at);
     CREATE TABLE oauth_consents (
        user_id TEXT COLLATE "C" NOT NULL, client_id TEXT COLLATE "C" NOT NULL,
        scopes TEXT NOT NULL, given_at BIGINT NOT NULL, PRIMARY KEY (user_id, client_id));
     CREATE TABLE oauth_signing_keys (
        kid TEXT COLLATE "C" PRIMARY KEY, alg TEXT NOT NULL, nonce BYTEA NOT NULL,
        ciphertext BYTEA NOT NULL, public_jwk TEXT NOT NULL, created_at BIGINT NOT NULL,
        retired_at BIGINT);"#,
    // People who signed in through a provider (see `users.rs`); one row each, counted by upsert.
    r#"CREATE TABLE users (
        user_id TEXT COLLATE "C" PRIMARY KEY, tenant TEXT, role TEXT NOT NULL, via TEXT NOT NULL,
        email TEXT, name TEXT, first_sign_in BIGINT NOT NULL, last_sign_in BIGINT NOT NULL,
        sign_ins BIGINT NOT NULL);
     CREATE INDEX users_first_sign_in ON users(first_sign_in, user_id);"#,
    // Incremental key reload (see `keys.rs`, `KeyStore::key_changes_since`): each key and held
    // credential records the keys version of its last change, and a removed one leaves a
    // tombstone with it. Triggers bump the version and record it, whatever program writes (an
    // older mcpgate during a rolling upgrade, or someone at the psql prompt), so no change is
    // missed; recording a key's use (last_used_at) is no change. They run after the statement's
    // rows are locked, so the counter row stays the last lock a writer takes, and it is held to
    // the commit: versions are given in commit order, which is what lets a reader trust one
    // snapshot (see `key_changes_since`). A column added to api_keys later belongs in the
    // UPDATE OF list of api_keys_changed.
    r#"ALTER TABLE api_keys ADD COLUMN changed_in BIGINT NOT NULL DEFAULT 0;
     CREATE INDEX api_keys_changed ON api_keys(changed_in);
     CREATE TABLE api_keys_removed (key_id TEXT COLLATE "C" PRIMARY KEY, changed_in BIGINT NOT NULL);
     CREATE INDEX api_keys_removed_changed ON api_keys_removed(changed_in);
     ALTER TABLE upstream_credentials ADD COLUMN changed_in BIGINT NOT NULL DEFAULT 0;
     CREATE INDEX upstream_credentials_changed ON upstream_credentials(changed_in);
     CREATE TABLE upstream_credentials_removed (
        key_id TEXT COLLATE "C" PRIMARY KEY, changed_in BIGINT NOT NULL);
     CREATE INDEX upstream_credentials_removed_changed ON upstream_credentials_removed(changed_in);
     CREATE FUNCTION mcpgate_api_key_changed() RETURNS trigger LANGUAGE plpgsql AS $$
     DECLARE v BIGINT;
     BEGIN
        UPDATE meta SET value = value + 1 WHERE name = 'keys_version' RETURNING value INTO v;
        IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND OLD.key_id <> NEW.key_id) THEN
            INSERT INTO api_keys_removed (key_id, changed_in) VALUES (OLD.key_id, v)
                ON CONFLICT (key_id) DO UPDATE SET changed_in = EXCLUDED.changed_in;
        END IF;
        IF TG_OP <> 'DELETE' THEN
            DELETE FROM api_keys_removed WHERE key_id = NEW.key_id;
            UPDATE api_keys SET changed_in = v WHERE key_id = NEW.key_id;
        END IF;
        RETURN NULL;
     END $$;
     CREATE TRIGGER api_keys_changed AFTER INSERT OR DELETE OR UPDATE OF key_id, hash, name, user_id,
        tenant, role, permissions, per_minute, per_hour, per_day, expires_at, created_at, revoked
        ON api_keys FOR EACH ROW EXECUTE FUNCTION mcpgate_api_key_changed();
     CREATE FUNCTION mcpgate_upstream_credential_changed() RETURNS trigger LANGUAGE plpgsql AS $$
     DECLARE v BIGINT;
     BEGIN
        UPDATE meta SET value = value + 1 WHERE name = 'keys_version' RETURNING value INTO v;
        IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND OLD.key_id <> NEW.key_id) THEN
            INSERT INTO upstream_credentials_removed (key_id, changed_in) VALUES (OLD.key_id, v)
                ON CONFLICT (key_id) DO UPDATE SET changed_in = EXCLUDED.changed_in;
        END IF;
        IF TG_OP <> 'DELETE' THEN
            DELETE FROM upstream_credentials_removed WHERE key_id = NEW.key_id;
            UPDATE upstream_credentials SET changed_in = v WHERE key_id = NEW.key_id;
        END IF;
        RETURN NULL;
     END $$;
     CREATE TRIGGER upstream_credentials_changed AFTER INSERT OR DELETE
        OR UPDATE OF key_id, nonce, ciphertext, updated_at
        ON upstream_credentials FOR EACH ROW EXECUTE FUNCTION mcpgate_upstream_credential_changed();"#,
];

/// The advisory lock the migrations run under ("mcpgate" in ASCII): one per database.
const MIGRATION_LOCK: i64 = 0x006d_6370_6761_7465;

/// Connections a store keeps open at most (see [`PostgresStore::connect_with`]).
pub const DEFAULT_POOL_SIZE: usize = 16;

/// A pool of connections to one PostgreSQL database. Cloning shares the pool.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    /// The password, to blank out of any error text (a driver's message should never hold it,
    /// but an error is the one place it could leak to a log).
    secret: Option<Arc<str>>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("pool", &self.pool.status())
            .finish_non_exhaustive()
    }
}

/// The driver's error in words: the server's message and SQLSTATE, or the chain of causes (the
/// driver's top-level text alone says only "db error" or "error connecting to server").
fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{}: {} (SQLSTATE {})", db.severity(), db.message(), db.code().code());
    }
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

pub(super) fn backend(e: tokio_postgres::Error) -> StoreError {
    if unreachable(&e) {
        StoreError::Unavailable(describe(&e))
    } else {
        StoreError::Backend(describe(&e))
    }
}

/// Whether `e` says the server could not be used (the connection closed or broke, a connection
/// exception, the server shutting down or not yet accepting) rather than that it refused the
/// statement or its data.
fn unreachable(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(code) = e.code() {
        // Class 08: connection exception; 57P01-57P03: shut down by the administrator, crash
        // shutdown, cannot connect now.
        let code = code.code();
        return code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03");
    }
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        if c.is::<std::io::Error>() {
            return true;
        }
        cause = c.source();
    }
    false
}

/// An insert's error: a taken unique key is [`StoreError::Duplicate`] naming `id`.
pub(super) fn insert_error(e: tokio_postgres::Error, id: &str) -> StoreError {
    if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        StoreError::Duplicate(id.to_string())
    } else {
        backend(e)
    }
}

/// A value that could not be encoded or decoded for a column.
pub(super) fn codec(what: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(what.to_string())
}

/// Reads column `name` of `row`.
pub(super) fn col<'a, T: tokio_postgres::types::FromSql<'a>>(row: &'a Row, name: &str) -> Result<T> {
    row.try_get(name).map_err(backend)
}

/// Prepares `sql` once per connection (cached) and runs it: the rows it returns.
pub(super) async fn query<C: GenericClient>(
    c: &C,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> std::result::Result<Vec<Row>, tokio_postgres::Error> {
    let st = c.prepare_cached(sql).await?;
    c.query(&st, params).await
}

/// As [`query`]: the one row, if any (more than one is an error).
pub(super) async fn query_opt<C: GenericClient>(
    c: &C,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> std::result::Result<Option<Row>, tokio_postgres::Error> {
    let st = c.prepare_cached(sql).await?;
    c.query_opt(&st, params).await
}

/// As [`query`]: how many rows it changed.
pub(super) async fn execute<C: GenericClient>(
    c: &C,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> std::result::Result<u64, tokio_postgres::Error> {
    let st = c.prepare_cached(sql).await?;
    c.execute(&st, params).await
}

/// A row count as the traits return it.
pub(super) fn count(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

impl PostgresStore {
    /// Connects to the database at `url` (a pool of [`DEFAULT_POOL_SIZE`] connections) and brings
    /// its schema up to date.
    pub async fn connect(url: &str) -> Result<PostgresStore> {
        PostgresStore::connect_with(url, DEFAULT_POOL_SIZE).await
    }

    /// As [`connect`](Self::connect), keeping at most `pool_size` connections open.
    pub async fn connect_with(url: &str, pool_size: usize) -> Result<PostgresStore> {
        // The parser's own message can quote a piece of the URL: only say that it failed.
        let mut config: tokio_postgres::Config = url.parse().map_err(|_| {
            StoreError::Backend(
                "the PostgreSQL URL does not parse (expected postgres://user:password@host:port/database?options, \
                 or key=value pairs)"
                    .into(),
            )
        })?;
        let secret = config
            .get_password()
            .filter(|p| !p.is_empty())
            .map(|p| Arc::from(String::from_utf8_lossy(p).as_ref()));
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match config.get_ssl_mode() {
            SslMode::Disable => Manager::from_config(config, NoTls, manager_config),
            _ => Manager::from_config(config, tls()?, manager_config),
        };
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(30)))
            .create_timeout(Some(Duration::from_secs(30)))
            .recycle_timeout(Some(Duration::from_secs(10)))
            .build()
            .map_err(|e| StoreError::Backend(format!("cannot set up the PostgreSQL pool: {e}")))?;
        let store = PostgresStore { pool, secret };
        store.migrate().await?;
        Ok(store)
    }

    /// Removes the password from an error's text.
    fn redact(&self, e: StoreError) -> StoreError {
        match (e, &self.secret) {
            (StoreError::Backend(text), Some(secret)) if text.contains(secret.as_ref()) => {
                StoreError::Backend(text.replace(secret.as_ref(), "********"))
            }
            (StoreError::Unavailable(text), Some(secret)) if text.contains(secret.as_ref()) => {
                StoreError::Unavailable(text.replace(secret.as_ref(), "********"))
            }
            (e, _) => e,
        }
    }

    /// A connection from the pool (opened now if none is idle).
    async fn client(&self) -> Result<Object> {
        self.pool.get().await.map_err(|e| {
            let text = match e {
                PoolError::Backend(e) => format!("cannot connect to PostgreSQL: {}", describe(&e)),
                PoolError::Timeout(_) => "timed out waiting for a PostgreSQL connection".to_string(),
                other => format!("cannot connect to PostgreSQL: {other}"),
            };
            self.redact(StoreError::Unavailable(text))
        })
    }

    /// Applies the migrations not yet applied, in one transaction holding the migration lock:
    /// a second replica waits, then finds nothing left to do.
    async fn migrate(&self) -> Result<()> {
        let mut client = self.client().await?;
        let fail = |e: tokio_postgres::Error| self.redact(StoreError::Backend(format!("migrating: {}", describe(&e))));
        let tx = client.transaction().await.map_err(fail)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(fail)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS mcpgate_migrations (
                version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .await
        .map_err(fail)?;
        let applied: i32 = tx
            .query_one("SELECT COALESCE(MAX(version), 0) FROM mcpgate_migrations", &[])
            .await
            .map_err(fail)?
            .try_get(0)
            .map_err(fail)?;
        let applied = usize::try_from(applied).unwrap_or(0);
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
            let version = i32::try_from(i + 1).map_err(codec)?;
            tx.batch_execute(sql).await.map_err(fail)?;
            tx.execute("INSERT INTO mcpgate_migrations (version) VALUES ($1)", &[&version])
                .await
                .map_err(fail)?;
        }
        tx.commit().await.map_err(fail)
    }

    /// How many of the migrations the database has had.
    pub async fn schema_version(&self) -> Result<usize> {
        let c = self.client().await?;
        let row = query_opt(&c, "SELECT COALESCE(MAX(version), 0) FROM mcpgate_migrations", &[])
            .await
            .map_err(backend)?;
        let v: i32 = match &row {
            Some(r) => r.try_get(0).map_err(backend)?,
            None => 0,
        };
        Ok(usize::try_from(v).unwrap_or(0))
    }

    /// How many migrations this build knows: [`schema_version`](Self::schema_version) once
    /// connected.
    pub fn migrations() -> usize {
        MIGRATIONS.len()
    }
}

/// rustls with the aws-lc provider and the platform's verifier (as the gateway's HTTP upstream).
fn tls() -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_platform_verifier())
        .map_err(|e| StoreError::Backend(format!("cannot set up TLS for PostgreSQL: {e}")))?
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

#[cfg(all(test, feature = "postgres-testing"))]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::{CredentialStore, KeyStore, SealedCredential};

    /// A database made by the release before incremental reload (a key, a held credential),
    /// opened by this one: the migration adds what `key_changes_since` reads, and changes made
    /// after it by any writer — this store, or plain SQL at the psql prompt — are listed; a key's
    /// use is not.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_older_database_is_migrated_and_every_writer_is_followed() {
        let Some(server) = testing::server("an_older_database_is_migrated_and_every_writer_is_followed") else {
            return;
        };
        let url = server.fresh_database().await;
        let (other, connection) = tokio_postgres::connect(&url, NoTls).await.unwrap();
        tokio::spawn(connection);
        let before = MIGRATIONS.len() - 1;
        other
            .batch_execute(
                "CREATE TABLE mcpgate_migrations (
                    version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
            )
            .await
            .unwrap();
        for (i, sql) in MIGRATIONS[..before].iter().enumerate() {
            other.batch_execute(sql).await.unwrap();
            let version = i32::try_from(i + 1).unwrap();
            other
                .execute("INSERT INTO mcpgate_migrations (version) VALUES ($1)", &[&version])
                .await
                .unwrap();
        }
        other
            .batch_execute(
                "INSERT INTO api_keys (key_id, hash, name, user_id, role, permissions, created_at)
                    VALUES ('old', 'h', 'n', 'u', 'user', '[]', 1);
                 INSERT INTO upstream_credentials VALUES ('old', '\\x01', '\\x02', 1);
                 UPDATE meta SET value = value + 2 WHERE name = 'keys_version';",
            )
            .await
            .unwrap();
        let store = PostgresStore::connect(&url).await.unwrap();
        assert_eq!(store.schema_version().await.unwrap(), PostgresStore::migrations());
        let v = store.keys_version().await.unwrap();
        assert_eq!(v, 2, "the migration moved the keys version");
        assert!(store.key_changes_since(v).await.unwrap().unwrap().is_empty());

        store.revoke_key("old").await.unwrap();
        let c = store.key_changes_since(v).await.unwrap().unwrap();
        assert!(c.version > v);
        assert_eq!((c.keys.len(), c.keys[0].revoked), (1, true));
        let v = c.version;

        other
            .batch_execute("UPDATE api_keys SET last_used_at = 99 WHERE key_id = 'old'")
            .await
            .unwrap();
        assert_eq!(store.keys_version().await.unwrap(), v, "a key's use moved the version");
        other
            .batch_execute("DELETE FROM upstream_credentials WHERE key_id = 'old'")
            .await
            .unwrap();
        let c = store.key_changes_since(v).await.unwrap().unwrap();
        assert_eq!(c.credentials, vec![("old".to_string(), None)]);
        let v = c.version;
        // As an older mcpgate writes: the change, then its own bump, in one transaction.
        other
            .batch_execute(
                "BEGIN;
                 INSERT INTO upstream_credentials VALUES ('old', '\\x03', '\\x04', 2);
                 UPDATE api_keys SET expires_at = 5 WHERE key_id = 'old';
                 UPDATE meta SET value = value + 1 WHERE name = 'keys_version';
                 COMMIT;",
            )
            .await
            .unwrap();
        let c = store.key_changes_since(v).await.unwrap().unwrap();
        let sealed = SealedCredential {
            nonce: vec![3],
            ciphertext: vec![4],
        };
        assert_eq!(c.credentials, vec![("old".to_string(), Some(sealed))]);
        assert_eq!(c.keys.iter().map(|k| k.expires_at).collect::<Vec<_>>(), [Some(5)]);
        let v = c.version;
        other
            .batch_execute("DELETE FROM api_keys WHERE key_id = 'old'")
            .await
            .unwrap();
        let c = store.key_changes_since(v).await.unwrap().unwrap();
        assert_eq!((c.keys.len(), c.removed_keys.clone()), (0, vec!["old".to_string()]));
        store
            .insert_key(&crate::conformance::sample_key("old", 3))
            .await
            .unwrap();
        let c = store.key_changes_since(v).await.unwrap().unwrap();
        assert_eq!((c.keys.len(), c.removed_keys.len()), (1, 0));
        assert_eq!(store.list_credentials().await.unwrap().len(), 1);
        assert!(store.key_changes_since(c.version + 1).await.unwrap().is_none());
    }
}
