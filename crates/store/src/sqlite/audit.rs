//! Audit records: appended in one transaction per batch, queried newest last.

use super::{SqliteStore, backend};
use crate::{AuditStore, Result, async_trait};
use mcpgate_core::audit::{AuditQuery, AuditRecord};
use rusqlite::params;

fn record_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditRecord> {
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
        client_id: r.get("client_id")?,
    })
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn prune(&self, before_ms: i64) -> Result<usize> {
        self.run(move |c| {
            c.execute("DELETE FROM audit WHERE time_ms < ?1", [before_ms])
                .map_err(backend)
        })
        .await
    }

    async fn append(&self, records: &[AuditRecord]) -> Result<()> {
        let records = records.to_vec();
        self.run(move |c| {
            let tx = c.transaction().map_err(backend)?;
            {
                let mut st = tx
                    .prepare_cached(
                        "INSERT INTO audit (time_ms, request_id, event, principal, key_id, user_id, tenant, auth_method, client_addr, mcp_method, tool, decision, reason, status, latency_us, client_id)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
                    )
                    .map_err(backend)?;
                for r in &records {
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
                        i64::try_from(r.latency_us).unwrap_or(i64::MAX),
                        r.client_id
                    ])
                    .map_err(backend)?;
                }
            }
            tx.commit().map_err(backend)
        })
        .await
    }

    async fn query(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>> {
        let q = q.clone();
        self.run(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT * FROM audit WHERE (?1 IS NULL OR time_ms >= ?1) AND (?2 IS NULL OR user_id = ?2)
                     AND (?3 IS NULL OR tool = ?3) AND (?4 IS NULL OR decision = ?4) ORDER BY id DESC LIMIT ?5",
                )
                .map_err(backend)?;
            let limit = i64::try_from(if q.limit == 0 { 100 } else { q.limit }).unwrap_or(i64::MAX);
            let rows = st
                .query_map(params![q.since_ms, q.user, q.tool, q.decision, limit], record_from_row)
                .map_err(backend)?;
            let mut out = rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)?;
            out.reverse();
            Ok(out)
        })
        .await
    }

    async fn page(&self, after: u64, limit: usize) -> Result<Vec<(u64, AuditRecord)>> {
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(move |c| {
            let mut st = c
                .prepare_cached("SELECT * FROM audit WHERE id > ?1 ORDER BY id LIMIT ?2")
                .map_err(backend)?;
            let rows = st
                .query_map(params![after, limit], |r| {
                    let id: i64 = r.get("id")?;
                    Ok((id.max(0) as u64, record_from_row(r)?))
                })
                .map_err(backend)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
        })
        .await
    }
}

// (This belongs in `mod.rs`, beside `MIGRATIONS`; it sits here while `mod.rs` changes for the
// keys schema.)
impl SqliteStore {
    /// How many of the migrations the file has had (`PRAGMA user_version`).
    pub async fn schema_version(&self) -> Result<usize> {
        self.run(|c| {
            let v = c
                .query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
                .map_err(backend)?;
            Ok(usize::try_from(v).unwrap_or(0))
        })
        .await
    }

    /// How many migrations this build knows: [`schema_version`](Self::schema_version) once
    /// opened.
    pub fn migrations() -> usize {
        super::MIGRATIONS.len()
    }
}
