//! The audit record that ends every message: what the pipeline learned on the way ([`Trace`])
//! and how the outcome reads in the record. Apart from the self-answered calls (`local.rs`) and
//! from the order of steps (`super`).

use crate::Gateway;
use crate::refusal::printable;
use axum::http::StatusCode;
use axum::http::request::Parts;
use mcpgate_core::audit::AuditRecord;
use mcpgate_core::principal::Principal;
use std::net::SocketAddr;

/// What the pipeline learned about a request, for the audit record at its end.
#[derive(Default)]
pub(super) struct Trace {
    pub(super) method: Option<String>,
    pub(super) tool: Option<String>,
    pub(super) principal: Option<std::sync::Arc<Principal>>,
    /// The key id of a presented key, even when it was refused (ids are not secret).
    pub(super) key_id: Option<String>,
}

impl Gateway {
    /// The record of one message: who, what, the decision and why, status and latency.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn audit_record(
        &self,
        request_id: &str,
        parts: &Parts,
        trace: &Trace,
        outcome: &str,
        reason: &str,
        status: StatusCode,
        elapsed: std::time::Duration,
    ) -> AuditRecord {
        let p = trace.principal.as_ref();
        let decision = match outcome {
            "ok" => "allow",
            "limited" => "limited",
            "refused" => "deny",
            _ => "error",
        };
        AuditRecord {
            time_ms: self.clock.unix_ms(),
            request_id: request_id.to_string(),
            event: if decision == "deny" || decision == "limited" {
                "auth"
            } else {
                "call"
            }
            .into(),
            principal: p.map(|p| p.id().to_owned()),
            key_id: p
                .and_then(|p| p.key_id().map(str::to_owned))
                .or_else(|| trace.key_id.clone()),
            user_id: p.map(|p| p.user_id().to_owned()),
            tenant: p.and_then(|p| p.tenant().map(str::to_owned)),
            auth_method: p.map(|p| p.method().as_str().to_string()),
            client_addr: parts
                .extensions
                .get::<axum::extract::ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip().to_string()),
            mcp_method: trace.method.as_deref().map(|m| printable(m, 64)),
            tool: trace.tool.as_deref().map(|t| printable(t, 128)),
            decision: decision.into(),
            reason: reason.into(),
            status: status.as_u16(),
            latency_us: elapsed.as_micros() as u64,
            client_id: p.and_then(|p| p.client_id().map(str::to_owned)),
        }
    }
}
