//! The embedded store: one SQLite file (WAL mode, so `mcpgate keys …` can change keys while the
//! gateway runs), schema migrations embedded and applied on open. SQLite calls block, so every
//! method runs on the runtime's blocking pool, never on a worker thread.

mod audit;
mod grants;
mod keys;
mod oauth;
mod replay;
mod users;

use crate::{Result, StoreError};
use rusqlite::Connection;
use std::path::Path;
use std::sync::{Arc, Mutex};

const MIGRATIONS: &[&str] = &[
    "CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
     INSERT INTO meta VALUES ('keys_version', 0);
     CREATE TABLE api_keys (
        key_id TEXT PRIMARY KEY, hash TEXT NOT NULL, name TEXT NOT NULL, user_id TEXT NOT NULL,
        tenant TEXT, role TEXT NOT NULL, permissions TEXT NOT NULL, per_minute INTEGER,
        per_hour INTEGER, per_day INTEGER, expires_at INTEGER, created_at INTEGER NOT NULL,
        revoked INTEGER NOT NULL DEFAULT 0, last_used_at INTEGER);
     CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT, time_ms INTEGER NOT NULL, request_id TEXT NOT NULL,
        event TEXT NOT NULL, principal TEXT, key_id TEXT, user_id TEXT, tenant TEXT,
        auth_method TEXT, client_addr TEXT, mcp_method TEXT, tool TEXT, decision TEXT NOT NULL,
        reason TEXT NOT NULL, status INTEGER NOT NULL, latency_us INTEGER NOT NULL);
     CREATE INDEX audit_time ON audit(time_ms);
     CREATE INDEX audit_user ON audit(user_id, time_ms);",
    "CREATE TABLE upstream_credentials (
        key_id TEXT PRIMARY KEY, nonce BLOB NOT NULL, ciphertext BLOB NOT NULL, updated_at INTEGER NOT NULL);",
    "CREATE TABLE replay (key BLOB PRIMARY KEY, expires_at INTEGER NOT NULL) WITHOUT ROWID;
     CREATE INDEX replay_expiry ON replay(expires_at);",
    // The authorization server (see `oauth.rs`, `grants.rs`). Lists are JSON arrays; a grant's or
    // code's subject is spread over user_id … via; codes and refresh tokens are keyed by hash.
    "CREATE TABLE oauth_clients (
        client_id TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT, secret_hash TEXT,
        auth_method TEXT NOT NULL, redirect_uris TEXT NOT NULL, grant_types TEXT NOT NULL, scope TEXT,
        jwks TEXT, jwks_uri TEXT, created_at INTEGER NOT NULL, expires_at INTEGER);
     CREATE TABLE oauth_grants (
        grant_id TEXT PRIMARY KEY, client_id TEXT NOT NULL, user_id TEXT NOT NULL, tenant TEXT,
        role TEXT NOT NULL, permissions TEXT NOT NULL, via TEXT NOT NULL, scopes TEXT NOT NULL,
        resource TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
        revoked_at INTEGER);
     CREATE INDEX oauth_grants_user ON oauth_grants(user_id, created_at);
     CREATE INDEX oauth_grants_client ON oauth_grants(client_id, created_at);
     CREATE INDEX oauth_grants_created ON oauth_grants(created_at);
     CREATE INDEX oauth_grants_via ON oauth_grants(via) WHERE revoked_at IS NULL;
     CREATE INDEX oauth_grants_revoked ON oauth_grants(revoked_at) WHERE revoked_at IS NOT NULL;
     CREATE INDEX oauth_grants_expiry ON oauth_grants(expires_at) WHERE revoked_at IS NULL;
     CREATE TABLE oauth_codes (
        code_hash TEXT PRIMARY KEY, grant_id TEXT NOT NULL, client_id TEXT NOT NULL,
        redirect_uri TEXT NOT NULL, code_challenge TEXT NOT NULL, resource TEXT NOT NULL,
        scopes TEXT NOT NULL, user_id TEXT NOT NULL, tenant TEXT, role TEXT NOT NULL,
        permissions TEXT NOT NULL, via TEXT NOT NULL, expires_at INTEGER NOT NULL,
        taken INTEGER NOT NULL DEFAULT 0);
     CREATE INDEX oauth_codes_expiry ON oauth_codes(expires_at);
     CREATE TABLE oauth_refresh (
        token_hash TEXT PRIMARY KEY, grant_id TEXT NOT NULL, expires_at INTEGER NOT NULL,
        spent_at INTEGER, grace_used INTEGER NOT NULL DEFAULT 0);
     CREATE INDEX oauth_refresh_grant ON oauth_refresh(grant_id);
     CREATE INDEX oauth_refresh_expiry ON oauth_refresh(expires_at);
     CREATE TABLE oauth_consents (
        user_id TEXT NOT NULL, client_id TEXT NOT NULL, scopes TEXT NOT NULL, given_at INTEGER NOT NULL,
        PRIMARY KEY (user_id, client_id)) WITHOUT ROWID;
     CREATE TABLE oauth_signing_keys (
        kid TEXT PRIMARY KEY, alg TEXT NOT NULL, nonce BLOB NOT NULL, ciphertext BLOB NOT NULL,
        public_jwk TEXT NOT NULL, created_at INTEGER NOT NULL, retired_at INTEGER);",
    "ALTER TABLE audit ADD COLUMN client_id TEXT;",
    // People who signed in through a provider (see `users.rs`); one row each, counted by upsert.
    "CREATE TABLE users (
        user_id TEXT PRIMARY KEY, tenant TEXT, role TEXT NOT NULL, via TEXT NOT NULL, email TEXT,
        name TEXT, first_sign_in INTEGER NOT NULL, last_sign_in INTEGER NOT NULL,
        sign_ins INTEGER NOT NULL);
     CREATE INDEX users_first_sign_in ON users(first_sign_in, user_id);",
    // Incremental key reload (see `keys.rs`, `KeyStore::key_changes_since`): each key and held
    // credential records the keys version of its last change, and a removed one leaves a
    // tombstone with it. Triggers bump the version and record it, whatever program writes (an
    // older mcpgate, or someone at the sqlite3 prompt), so no change is ever missed; recording a
    // key's use (last_used_at) is no change. A column added to api_keys later belongs in the
    // UPDATE OF list of api_keys_changed.
    "ALTER TABLE api_keys ADD COLUMN changed_in INTEGER NOT NULL DEFAULT 0;
     CREATE INDEX api_keys_changed ON api_keys(changed_in);
     CREATE TABLE api_keys_removed (key_id TEXT PRIMARY KEY, changed_in INTEGER NOT NULL);
     CREATE INDEX api_keys_removed_changed ON api_keys_removed(changed_in);
     ALTER TABLE upstream_credentials ADD COLUMN changed_in INTEGER NOT NULL DEFAULT 0;
     CREATE INDEX upstream_credentials_changed ON upstream_credentials(changed_in);
     CREATE TABLE upstream_credentials_removed (key_id TEXT PRIMARY KEY, changed_in INTEGER NOT NULL);
     CREATE INDEX upstream_credentials_removed_changed ON upstream_credentials_removed(changed_in);
     CREATE TRIGGER api_keys_inserted AFTER INSERT ON api_keys BEGIN
        UPDATE meta SET value = value + 1 WHERE name = 'keys_version';
        UPDATE api_keys SET changed_in = (SELECT value FROM meta WHERE name = 'keys_version')
         WHERE key_id = NEW.key_id;
        DELETE FROM api_keys_removed WHERE key_id = NEW.key_id;
     END;
     CREATE TRIGGER api_keys_changed AFTER UPDATE OF key_id, hash, name, user_id, tenant, role,
        permissions, per_minute, per_hour, per_day, expires_at, created_at, revoked ON api_keys BEGIN
        UPDATE meta SET value = value + 1 WHERE name = 'keys_version';
        UPDATE api_keys SET changed_in = (SELECT value FROM meta WHERE name = 'keys_version')
         WHERE key_id = NEW.key_id;
        DELETE FROM api_keys_removed WHERE key_id = NEW.key_id;
        INSERT OR REPLACE INTO api_keys_removed (key_id, changed_in)
         SELECT OLD.key_id, value FROM meta WHERE name = 'keys_version' AND OLD.key_id <> NEW.key_id;
     END;
     CREATE TRIGGER api_keys_deleted AFTER DELETE ON api_keys BEGIN
        UPDATE meta SET value = value + 1 WHERE name = 'keys_version';
        INSERT OR REPLACE INTO api_keys_removed (key_id, changed_in)
         SELECT OLD.key_id, value FROM meta WHERE name = 'keys_version';
     END;
     CREATE TRIGGER upstream_credentials_inserted AFTER INSERT ON upstream_credentials BEGIN
        UPDATE meta SET value = value + 1 WHERE name = 'keys_version';
        UPDATE upstream_credentials SET changed_in = (SELECT value FROM meta WHERE name = 'keys_version')
         WHERE key_id = NEW.key_id;
        DELETE FROM upstream_credentials_removed WHERE key_id = NEW.key_id;
     END;
     CREATE TRIGGER upstream_credentials_changed AFTER UPDATE OF key_id, nonce, ciphertext, updated_at
        ON upstream_credentials BEGIN
        UPDATE meta SET value = value + 1 WHERE name = 'keys_version';
        UPDATE upstream_credentials SET changed_in = (SELECT value FROM meta WHERE name = 'keys_version')
         WHERE key_id = NEW.key_id;
        DELETE FROM upstream_credentials_removed WHERE key_id = NEW.key_id;
        INSERT OR REPLACE INTO upstream_credentials_removed (key_id, changed_in)
         SELECT OLD.key_id, value FROM meta WHERE name = 'keys_version' AND OLD.key_id <> NEW.key_id;
     END;
     CREATE TRIGGER upstream_credentials_deleted AFTER DELETE ON upstream_credentials BEGIN
        UPDATE meta SET value = value + 1 WHERE name = 'keys_version';
        INSERT OR REPLACE INTO upstream_credentials_removed (key_id, changed_in)
         SELECT OLD.key_id, value FROM meta WHERE name = 'keys_version';
     END;",
];

/// One SQLite file. Cloning shares the connection.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl SqliteStore {
    /// Opens (or creates) the file and brings its schema up to date.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        let mut conn =
            Connection::open(path).map_err(|e| StoreError::Backend(format!("cannot open {}: {e}", path.display())))?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000; PRAGMA foreign_keys=ON;",
        )
        .map_err(backend)?;
        migrate(&mut conn)?;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` with the connection on the blocking pool.
    async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut conn)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("store task failed: {e}")))?
    }
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let current: usize = conn
        .query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
        .map_err(backend)?
        .max(0) as usize;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction().map_err(backend)?;
        tx.execute_batch(sql).map_err(backend)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))
            .map_err(backend)?;
        tx.commit().map_err(backend)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CredentialStore, KeyStore, SealedCredential};

    /// A file made by the release before incremental reload (a key, a held credential), opened by
    /// this one: the migration adds what `key_changes_since` reads, and changes made after it by
    /// any writer — this store, or plain SQL at the sqlite3 prompt — are listed; a key's use is not.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_older_file_is_migrated_and_every_writer_is_followed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let before = MIGRATIONS.len() - 1;
        {
            let conn = Connection::open(&path).unwrap();
            for sql in &MIGRATIONS[..before] {
                conn.execute_batch(sql).unwrap();
            }
            conn.execute_batch(&format!(
                "PRAGMA user_version = {before};
                 INSERT INTO api_keys (key_id, hash, name, user_id, role, permissions, created_at)
                    VALUES ('old', 'h', 'n', 'u', 'user', '[]', 1);
                 INSERT INTO upstream_credentials VALUES ('old', x'01', x'02', 1);
                 UPDATE meta SET value = value + 2 WHERE name = 'keys_version';"
            ))
            .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let v = store.keys_version().await.unwrap();
        assert_eq!(v, 2, "the migration moved the keys version");
        assert!(store.key_changes_since(v).await.unwrap().unwrap().is_empty());

        store.revoke_key("old").await.unwrap();
        let c = store.key_changes_since(v).await.unwrap().unwrap();
        assert!(c.version > v);
        assert_eq!((c.keys.len(), c.keys[0].revoked), (1, true));
        let v = c.version;

        // Plain SQL, as another program would write.
        let other = Connection::open(&path).unwrap();
        other
            .execute_batch("UPDATE api_keys SET last_used_at = 99 WHERE key_id = 'old'")
            .unwrap();
        assert_eq!(store.keys_version().await.unwrap(), v, "a key's use moved the version");
        other
            .execute_batch("DELETE FROM upstream_credentials WHERE key_id = 'old'")
            .unwrap();
        let c = store.key_changes_since(v).await.unwrap().unwrap();
        assert_eq!(c.credentials, vec![("old".to_string(), None)]);
        let v = c.version;
        other
            .execute_batch(
                "INSERT INTO upstream_credentials (key_id, nonce, ciphertext, updated_at)
                    VALUES ('old', x'03', x'04', 2);
                 UPDATE api_keys SET expires_at = 5 WHERE key_id = 'old';",
            )
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
            .execute_batch("DELETE FROM api_keys WHERE key_id = 'old'")
            .unwrap();
        let c = store.key_changes_since(v).await.unwrap().unwrap();
        assert_eq!((c.keys.len(), c.removed_keys.clone()), (0, vec!["old".to_string()]));
        // Inserted again: a key, no longer a removal.
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
