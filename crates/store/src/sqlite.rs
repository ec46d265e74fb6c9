//! The embedded store: one SQLite file (WAL mode, so `mcpgate keys …` can change keys while the
//! gateway runs), schema migrations embedded and applied on open.

use crate::{AuditStore, KeyStore, Result, StoreError};
use mcpgate_core::audit::{AuditQuery, AuditRecord};
use mcpgate_core::keys::KeyRecord;
use mcpgate_core::principal::{Limits, Role};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

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
];

pub struct SqliteStore {
    conn: Mutex<Connection>,
}

fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl SqliteStore {
    fn select_keys(&self, sql: &str) -> Result<Vec<KeyRecord>> {
        let conn = self.conn();
        let mut st = conn.prepare(sql).map_err(backend)?;
        let rows = st.query_map([], key_from_row).map_err(backend)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
    }

    pub fn open(path: &Path) -> Result<SqliteStore> {
        let conn =
            Connection::open(path).map_err(|e| StoreError::Backend(format!("cannot open {}: {e}", path.display())))?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000; PRAGMA foreign_keys=ON;",
        )
        .map_err(backend)?;
        let store = SqliteStore { conn: Mutex::new(conn) };
        store.migrate()?;
        Ok(store)
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn migrate(&self) -> Result<()> {
        let mut conn = self.conn();
        let current: usize = conn
            .query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
            .map_err(backend)? as usize;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
            let tx = conn.transaction().map_err(backend)?;
            tx.execute_batch(sql).map_err(backend)?;
            tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))
                .map_err(backend)?;
            tx.commit().map_err(backend)?;
        }
        Ok(())
    }

    fn bump(conn: &Connection) -> Result<()> {
        conn.execute("UPDATE meta SET value = value + 1 WHERE name = 'keys_version'", [])
            .map_err(backend)?;
        Ok(())
    }
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

impl KeyStore for SqliteStore {
    fn list_keys(&self) -> Result<Vec<KeyRecord>> {
        self.select_keys("SELECT * FROM api_keys ORDER BY created_at, key_id")
    }

    fn all_keys(&self) -> Result<Vec<KeyRecord>> {
        self.select_keys("SELECT * FROM api_keys")
    }

    fn get_key(&self, key_id: &str) -> Result<Option<KeyRecord>> {
        let conn = self.conn();
        conn.query_row("SELECT * FROM api_keys WHERE key_id = ?1", [key_id], key_from_row)
            .optional()
            .map_err(backend)
    }

    fn insert_key(&self, k: &KeyRecord) -> Result<()> {
        let conn = self.conn();
        let perms = serde_json::to_string(&k.permissions).unwrap_or_else(|_| "[]".into());
        let res = conn.execute(
            "INSERT INTO api_keys (key_id, hash, name, user_id, tenant, role, permissions, per_minute, per_hour, per_day, expires_at, created_at, revoked)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                k.key_id, k.hash, k.name, k.user_id, k.tenant, k.role.as_str(), perms,
                k.limits.per_minute, k.limits.per_hour, k.limits.per_day, k.expires_at, k.created_at, k.revoked as i64
            ],
        );
        match res {
            Ok(_) => Self::bump(&conn),
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                Err(StoreError::Duplicate(k.key_id.clone()))
            }
            Err(e) => Err(backend(e)),
        }
    }

    fn revoke_key(&self, key_id: &str) -> Result<bool> {
        let conn = self.conn();
        let n = conn
            .execute("UPDATE api_keys SET revoked = 1 WHERE key_id = ?1", [key_id])
            .map_err(backend)?;
        Self::bump(&conn)?;
        Ok(n > 0)
    }

    fn set_key_expiry(&self, key_id: &str, expires_at: Option<i64>) -> Result<bool> {
        let conn = self.conn();
        let n = conn
            .execute(
                "UPDATE api_keys SET expires_at = ?2 WHERE key_id = ?1",
                params![key_id, expires_at],
            )
            .map_err(backend)?;
        Self::bump(&conn)?;
        Ok(n > 0)
    }

    fn touch_keys(&self, used: &[(String, i64)]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(backend)?;
        for (id, at) in used {
            tx.execute(
                "UPDATE api_keys SET last_used_at = max(coalesce(last_used_at, 0), ?2) WHERE key_id = ?1",
                params![id, at],
            )
            .map_err(backend)?;
        }
        tx.commit().map_err(backend)
    }

    fn last_used(&self, key_id: &str) -> Result<Option<i64>> {
        let conn = self.conn();
        conn.query_row("SELECT last_used_at FROM api_keys WHERE key_id = ?1", [key_id], |r| {
            r.get(0)
        })
        .optional()
        .map(|v| v.flatten())
        .map_err(backend)
    }

    fn keys_version(&self) -> Result<i64> {
        let conn = self.conn();
        conn.query_row("SELECT value FROM meta WHERE name = 'keys_version'", [], |r| r.get(0))
            .map_err(backend)
    }
}

impl crate::CredentialStore for SqliteStore {
    fn set_credential(&self, key_id: &str, sealed: &crate::SealedCredential, now: i64) -> Result<()> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO upstream_credentials (key_id, nonce, ciphertext, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(key_id) DO UPDATE SET nonce = excluded.nonce, ciphertext = excluded.ciphertext, updated_at = excluded.updated_at",
            params![key_id, sealed.nonce, sealed.ciphertext, now],
        )
        .map_err(backend)?;
        Self::bump(&conn)
    }

    fn remove_credential(&self, key_id: &str) -> Result<bool> {
        let conn = self.conn();
        let n = conn
            .execute("DELETE FROM upstream_credentials WHERE key_id = ?1", [key_id])
            .map_err(backend)?;
        Self::bump(&conn)?;
        Ok(n > 0)
    }

    fn list_credentials(&self) -> Result<Vec<(String, crate::SealedCredential)>> {
        let conn = self.conn();
        let mut st = conn
            .prepare("SELECT key_id, nonce, ciphertext FROM upstream_credentials")
            .map_err(backend)?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    crate::SealedCredential {
                        nonce: r.get(1)?,
                        ciphertext: r.get(2)?,
                    },
                ))
            })
            .map_err(backend)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
    }
}

impl AuditStore for SqliteStore {
    fn prune(&self, before_ms: i64) -> Result<usize> {
        let conn = self.conn();
        conn.execute("DELETE FROM audit WHERE time_ms < ?1", [before_ms])
            .map_err(backend)
    }

    fn append(&self, records: &[AuditRecord]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(backend)?;
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT INTO audit (time_ms, request_id, event, principal, key_id, user_id, tenant, auth_method, client_addr, mcp_method, tool, decision, reason, status, latency_us)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                )
                .map_err(backend)?;
            for r in records {
                st.execute(params![
                    r.time_ms,
                    r.request_id,
                    r.event,
                    r.principal,
                    r.key_id,
                    r.user_id,
                    r.tenant,
                    r.auth_method,
                    r.client_addr,
                    r.mcp_method,
                    r.tool,
                    r.decision,
                    r.reason,
                    r.status,
                    r.latency_us as i64
                ])
                .map_err(backend)?;
            }
        }
        tx.commit().map_err(backend)
    }

    fn query(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>> {
        let conn = self.conn();
        let mut st = conn
            .prepare(
                "SELECT * FROM audit WHERE (?1 IS NULL OR time_ms >= ?1) AND (?2 IS NULL OR user_id = ?2)
                 AND (?3 IS NULL OR tool = ?3) AND (?4 IS NULL OR decision = ?4) ORDER BY id DESC LIMIT ?5",
            )
            .map_err(backend)?;
        let limit = if q.limit == 0 { 100 } else { q.limit } as i64;
        let rows = st
            .query_map(params![q.since_ms, q.user, q.tool, q.decision, limit], |r| {
                Ok(AuditRecord {
                    time_ms: r.get("time_ms")?,
                    request_id: r.get("request_id")?,
                    event: r.get("event")?,
                    principal: r.get("principal")?,
                    key_id: r.get("key_id")?,
                    user_id: r.get("user_id")?,
                    tenant: r.get("tenant")?,
                    auth_method: r.get("auth_method")?,
                    client_addr: r.get("client_addr")?,
                    mcp_method: r.get("mcp_method")?,
                    tool: r.get("tool")?,
                    decision: r.get("decision")?,
                    reason: r.get("reason")?,
                    status: r.get("status")?,
                    latency_us: r.get::<_, i64>("latency_us")?.max(0) as u64,
                })
            })
            .map_err(backend)?;
        let mut out = rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)?;
        out.reverse();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcpgate_core::keys;

    fn record(id: &str) -> KeyRecord {
        KeyRecord {
            key_id: id.into(),
            hash: keys::hash_hex(id),
            name: "n".into(),
            user_id: "u".into(),
            tenant: Some("t1".into()),
            role: Role::Developer,
            permissions: vec!["read".into(), "write".into()],
            limits: Limits {
                per_minute: Some(5),
                per_hour: None,
                per_day: Some(9),
            },
            expires_at: Some(99),
            created_at: 1,
            revoked: false,
            source: "store".into(),
        }
    }

    #[test]
    fn keys_survive_reopen_and_bump_the_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        {
            let s = SqliteStore::open(&path).unwrap();
            let v0 = s.keys_version().unwrap();
            s.insert_key(&record("a")).unwrap();
            assert!(matches!(s.insert_key(&record("a")), Err(StoreError::Duplicate(_))));
            assert!(s.keys_version().unwrap() > v0);
            assert!(s.revoke_key("a").unwrap());
            assert!(!s.revoke_key("zzz").unwrap());
            s.touch_keys(&[("a".into(), 42)]).unwrap();
        }
        let s = SqliteStore::open(&path).unwrap();
        let got = s.get_key("a").unwrap().unwrap();
        let mut want = record("a");
        want.revoked = true;
        assert_eq!(got, want);
        assert_eq!(s.last_used("a").unwrap(), Some(42));
    }

    #[test]
    fn held_credentials_are_stored_sealed() {
        use crate::{CredentialStore, SealedCredential};
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("m.db")).unwrap();
        let v0 = s.keys_version().unwrap();
        let c = SealedCredential {
            nonce: vec![1; 12],
            ciphertext: vec![9; 20],
        };
        s.set_credential("a", &c, 1).unwrap();
        s.set_credential("a", &c, 2).unwrap();
        assert!(s.keys_version().unwrap() > v0);
        assert_eq!(s.list_credentials().unwrap(), vec![("a".to_string(), c)]);
        assert!(s.remove_credential("a").unwrap());
        assert!(s.list_credentials().unwrap().is_empty());
    }

    #[test]
    fn audit_appends_and_filters() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("m.db")).unwrap();
        let rec = |t: i64, user: &str, decision: &str| AuditRecord {
            time_ms: t,
            request_id: format!("r{t}"),
            event: "call".into(),
            principal: Some(format!("key:{user}")),
            key_id: Some(user.into()),
            user_id: Some(user.into()),
            tenant: None,
            auth_method: Some("api_key".into()),
            client_addr: Some("127.0.0.1".into()),
            mcp_method: Some("tools/call".into()),
            tool: Some("echo".into()),
            decision: decision.into(),
            reason: "ok".into(),
            status: 200,
            latency_us: 10,
        };
        s.append(&[rec(1, "alice", "allow"), rec(2, "bob", "deny"), rec(3, "alice", "deny")])
            .unwrap();
        let all = s.query(&AuditQuery::default()).unwrap();
        assert_eq!(all.iter().map(|r| r.time_ms).collect::<Vec<_>>(), vec![1, 2, 3]);
        let q = AuditQuery {
            user: Some("alice".into()),
            decision: Some("deny".into()),
            ..Default::default()
        };
        assert_eq!(s.query(&q).unwrap(), vec![rec(3, "alice", "deny")]);
        let q = AuditQuery {
            since_ms: Some(2),
            ..Default::default()
        };
        assert_eq!(s.query(&q).unwrap().len(), 2);
        assert_eq!(s.prune(3).unwrap(), 2);
        assert_eq!(s.query(&AuditQuery::default()).unwrap().len(), 1);
    }
}
