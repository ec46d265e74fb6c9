//! Audit records: appended in one transaction per batch, queried newest last.

use super::{SqliteStore, backend};
use crate::{AuditStore, Result, async_trait};
use mcpgate_core::audit::{AuditQuery, AuditRecord, Usage, UsageQuery};
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

fn numbered(r: &rusqlite::Row<'_>) -> rusqlite::Result<(u64, AuditRecord)> {
    let id: i64 = r.get("id")?;
    Ok((id.max(0) as u64, record_from_row(r)?))
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

    async fn search(&self, q: &AuditQuery) -> Result<Vec<(u64, AuditRecord)>> {
        let q = q.clone();
        self.run(move |c| {
            let mut st = c
                .prepare_cached(
                    "SELECT * FROM audit WHERE (?1 IS NULL OR time_ms >= ?1) AND (?2 IS NULL OR time_ms < ?2)
                     AND (?3 IS NULL OR user_id = ?3) AND (?4 IS NULL OR tool = ?4) AND (?5 IS NULL OR decision = ?5)
                     AND (?6 IS NULL OR key_id = ?6) AND (?7 IS NULL OR client_id = ?7) AND (?8 IS NULL OR event = ?8)
                     AND (?9 IS NULL OR id < ?9) ORDER BY id DESC LIMIT ?10",
                )
                .map_err(backend)?;
            let before = q.before.map(|b| i64::try_from(b).unwrap_or(i64::MAX));
            let limit = i64::try_from(q.page_size()).unwrap_or(i64::MAX);
            let rows = st
                .query_map(
                    params![
                        q.since_ms,
                        q.until_ms,
                        q.user,
                        q.tool,
                        q.decision,
                        q.key_id,
                        q.client_id,
                        q.event,
                        before,
                        limit
                    ],
                    numbered,
                )
                .map_err(backend)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
        })
        .await
    }

    async fn usage(&self, q: &UsageQuery) -> Result<Usage> {
        let q = q.clone();
        self.run(move |c| {
            let window = "time_ms >= ?1 AND time_ms < ?2 AND event <> 'admin'";
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT (time_ms - ?1) / ?3, decision, COUNT(*) FROM audit WHERE {window} GROUP BY 1, 2"
                ))
                .map_err(backend)?;
            let width = q.bucket_ms.max(1);
            let per_bucket = st
                .query_map(params![q.since_ms, q.until_ms, width], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?.max(0) as u64,
                    ))
                })
                .map_err(backend)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(backend)?;
            let mut st = c
                .prepare_cached(&format!(
                    "SELECT v, decision, COUNT(*) FROM (SELECT {} AS v, decision FROM audit WHERE {window})
                     WHERE v IS NOT NULL GROUP BY 1, 2",
                    q.by.sql()
                ))
                .map_err(backend)?;
            let per_value = st
                .query_map(params![q.since_ms, q.until_ms], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?.max(0) as u64,
                    ))
                })
                .map_err(backend)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(backend)?;
            Ok(q.assemble(per_bucket, per_value))
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
            let rows = st.query_map(params![after, limit], numbered).map_err(backend)?;
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
