//! Audit records: a batch is one `INSERT … SELECT FROM UNNEST` (all or none, one round trip),
//! numbered in the batch's order; queried newest last.

use super::{PostgresStore, backend, codec, col, count, execute, query};
use crate::{AuditStore, Result, async_trait};
use mcpgate_core::audit::{AuditQuery, AuditRecord, Usage, UsageQuery};
use tokio_postgres::Row;

fn record_from_row(r: &Row) -> Result<AuditRecord> {
    Ok(AuditRecord {
        time_ms: col(r, "time_ms")?,
        request_id: col(r, "request_id")?,
        event: col(r, "event")?,
        principal: col(r, "principal")?,
        key_id: col(r, "key_id")?,
        user_id: col(r, "user_id")?,
        tenant: col(r, "tenant")?,
        auth_method: col(r, "auth_method")?,
        client_addr: col(r, "client_addr")?,
        mcp_method: col(r, "mcp_method")?,
        tool: col(r, "tool")?,
        decision: col(r, "decision")?,
        reason: col(r, "reason")?,
        status: u16::try_from(col::<i32>(r, "status")?).map_err(codec)?,
        latency_us: col::<i64>(r, "latency_us")?.max(0) as u64,
        client_id: col(r, "client_id")?,
    })
}

fn numbered(r: &Row) -> Result<(u64, AuditRecord)> {
    let id: i64 = col(r, "id")?;
    Ok((u64::try_from(id).unwrap_or(0), record_from_row(r)?))
}

fn grouped(r: &Row) -> Result<u64> {
    let n: i64 = r.try_get(2).map_err(backend)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

#[async_trait]
impl AuditStore for PostgresStore {
    async fn prune(&self, before_ms: i64) -> Result<usize> {
        let c = self.client().await?;
        let n = execute(&c, "DELETE FROM audit WHERE time_ms < $1", &[&before_ms])
            .await
            .map_err(backend)?;
        Ok(count(n))
    }

    async fn append(&self, records: &[AuditRecord]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        // Column by column: each a typed array, unnested back into rows in the given order.
        fn text<'a>(records: &'a [AuditRecord], f: impl Fn(&'a AuditRecord) -> &'a str) -> Vec<&'a str> {
            records.iter().map(f).collect()
        }
        fn opt<'a>(
            records: &'a [AuditRecord],
            f: impl Fn(&'a AuditRecord) -> &'a Option<String>,
        ) -> Vec<Option<&'a str>> {
            records.iter().map(|r| f(r).as_deref()).collect()
        }
        let time_ms: Vec<i64> = records.iter().map(|r| r.time_ms).collect();
        let request_id = text(records, |r| &r.request_id);
        let event = text(records, |r| &r.event);
        let principal = opt(records, |r| &r.principal);
        let key_id = opt(records, |r| &r.key_id);
        let user_id = opt(records, |r| &r.user_id);
        let tenant = opt(records, |r| &r.tenant);
        let auth_method = opt(records, |r| &r.auth_method);
        let client_addr = opt(records, |r| &r.client_addr);
        let mcp_method = opt(records, |r| &r.mcp_method);
        let tool = opt(records, |r| &r.tool);
        let decision = text(records, |r| &r.decision);
        let reason = text(records, |r| &r.reason);
        let status: Vec<i32> = records.iter().map(|r| i32::from(r.status)).collect();
        let latency_us: Vec<i64> = records
            .iter()
            .map(|r| i64::try_from(r.latency_us).unwrap_or(i64::MAX))
            .collect();
        let client_id = opt(records, |r| &r.client_id);
        let c = self.client().await?;
        execute(
            &c,
            "INSERT INTO audit (time_ms, request_id, event, principal, key_id, user_id, tenant, auth_method, client_addr, mcp_method, tool, decision, reason, status, latency_us, client_id)
             SELECT time_ms, request_id, event, principal, key_id, user_id, tenant, auth_method, client_addr, mcp_method, tool, decision, reason, status, latency_us, client_id
             FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                         $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::int[], $15::bigint[], $16::text[])
                  WITH ORDINALITY AS r(time_ms, request_id, event, principal, key_id, user_id, tenant, auth_method, client_addr,
                                       mcp_method, tool, decision, reason, status, latency_us, client_id, n)
             ORDER BY n",
            &[
                &time_ms,
                &request_id,
                &event,
                &principal,
                &key_id,
                &user_id,
                &tenant,
                &auth_method,
                &client_addr,
                &mcp_method,
                &tool,
                &decision,
                &reason,
                &status,
                &latency_us,
                &client_id,
            ],
        )
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn search(&self, q: &AuditQuery) -> Result<Vec<(u64, AuditRecord)>> {
        let before = q.before.map(|b| i64::try_from(b).unwrap_or(i64::MAX));
        let limit = i64::try_from(q.page_size()).unwrap_or(i64::MAX);
        let c = self.client().await?;
        query(
            &c,
            "SELECT * FROM audit WHERE ($1::bigint IS NULL OR time_ms >= $1) AND ($2::bigint IS NULL OR time_ms < $2)
             AND ($3::text IS NULL OR user_id = $3) AND ($4::text IS NULL OR tool = $4)
             AND ($5::text IS NULL OR decision = $5) AND ($6::text IS NULL OR key_id = $6)
             AND ($7::text IS NULL OR client_id = $7) AND ($8::text IS NULL OR event = $8)
             AND ($9::bigint IS NULL OR id < $9) ORDER BY id DESC LIMIT $10",
            &[
                &q.since_ms,
                &q.until_ms,
                &q.user,
                &q.tool,
                &q.decision,
                &q.key_id,
                &q.client_id,
                &q.event,
                &before,
                &limit,
            ],
        )
        .await
        .map_err(backend)?
        .iter()
        .map(numbered)
        .collect()
    }

    async fn usage(&self, q: &UsageQuery) -> Result<Usage> {
        let window = "time_ms >= $1 AND time_ms < $2 AND event <> 'admin'";
        let width = q.bucket_ms.max(1);
        let c = self.client().await?;
        let per_bucket = query(
            &c,
            &format!("SELECT (time_ms - $1) / $3, decision, COUNT(*) FROM audit WHERE {window} GROUP BY 1, 2"),
            &[&q.since_ms, &q.until_ms, &width],
        )
        .await
        .map_err(backend)?
        .iter()
        .map(|r| {
            Ok((
                r.try_get::<_, i64>(0).map_err(backend)?,
                r.try_get::<_, String>(1).map_err(backend)?,
                grouped(r)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
        let per_value = query(
            &c,
            &format!(
                "SELECT v, decision, COUNT(*) FROM (SELECT {} AS v, decision FROM audit WHERE {window}) t
                 WHERE v IS NOT NULL GROUP BY 1, 2",
                q.by.sql()
            ),
            &[&q.since_ms, &q.until_ms],
        )
        .await
        .map_err(backend)?
        .iter()
        .map(|r| {
            Ok((
                r.try_get::<_, String>(0).map_err(backend)?,
                r.try_get::<_, String>(1).map_err(backend)?,
                grouped(r)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
        Ok(q.assemble(per_bucket, per_value))
    }

    async fn page(&self, after: u64, limit: usize) -> Result<Vec<(u64, AuditRecord)>> {
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let c = self.client().await?;
        query(
            &c,
            "SELECT * FROM audit WHERE id > $1 ORDER BY id LIMIT $2",
            &[&after, &limit],
        )
        .await
        .map_err(backend)?
        .iter()
        .map(numbered)
        .collect()
    }
}
