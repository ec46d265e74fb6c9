//! `mcpgate audit`: reads the audit log from the store the configuration names (SQLite or
//! PostgreSQL).

use crate::cli::AuditArgs;
use anyhow::{Context, Result};
use mcpgate_core::audit::AuditQuery;
use mcpgate_core::time::{format_rfc3339, parse_rfc3339};

pub async fn run(a: AuditArgs) -> Result<()> {
    let store = super::store::open(&a.store).await?;
    let since_ms = match &a.since {
        None => None,
        Some(s) => Some(match parse_rfc3339(s) {
            Some(t) => t * 1000,
            None => {
                let secs = super::parse_duration(s).context("--since: use a duration like 1h or an RFC 3339 time")?;
                mcpgate_gateway::clock::unix_ms() - secs * 1000
            }
        }),
    };
    let q = AuditQuery {
        since_ms,
        user: a.user,
        tool: a.tool,
        decision: a.outcome,
        limit: a.limit,
        ..AuditQuery::default()
    };
    let rows = store.audit.query(&q).await?;
    if a.json {
        for r in &rows {
            println!("{}", serde_json::to_string(r)?);
        }
        return Ok(());
    }
    println!(
        "{:<20} {:<8} {:<18} {:<14} {:<16} {:<18} {:<8} {:<6} REASON",
        "TIME", "EVENT", "PRINCIPAL", "USER", "METHOD", "TOOL", "OUTCOME", "STATUS"
    );
    for r in &rows {
        println!(
            "{:<20} {:<8} {:<18} {:<14} {:<16} {:<18} {:<8} {:<6} {}",
            format_rfc3339(r.time_ms / 1000),
            r.event,
            r.principal.as_deref().unwrap_or("-"),
            r.user_id.as_deref().unwrap_or("-"),
            r.mcp_method.as_deref().unwrap_or("-"),
            r.tool.as_deref().unwrap_or("-"),
            r.decision,
            r.status,
            match &r.client_id {
                Some(c) => format!("{} (client {c})", r.reason),
                None => r.reason.clone(),
            }
        );
    }
    Ok(())
}
