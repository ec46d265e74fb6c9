//! The audit record that ends every message: what the pipeline learned on the way ([`Trace`])
//! and how the outcome reads in the record. Apart from the self-answered calls (`local.rs`) and
//! from the order of steps (`super`).

use crate::Gateway;
use crate::refusal::printable;
use crate::telemetry::RequestSpan;
use crate::telemetry::span::{Attributes, Value};
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
    /// The request's span, when traces are on.
    pub(super) span: Option<Box<RequestSpan>>,
}

impl Trace {
    /// A pipeline step, as an event of the request's span (when there is one and it is
    /// recorded: `attributes` is not even called otherwise).
    pub(super) fn event(&mut self, name: &'static str, attributes: impl FnOnce() -> Attributes) {
        if let Some(s) = &mut self.span {
            s.event(name, attributes);
        }
    }
}

/// A span's attributes, read off the request's audit record: the span says exactly what the
/// audit says, and nothing the audit keeps out (credentials, session ids, arguments).
pub(super) fn span_attributes(r: &AuditRecord) -> Attributes {
    let mut a: Attributes = Vec::with_capacity(16);
    a.push(("http.request.method", "POST".into()));
    a.push(("url.path", "/mcp".into()));
    a.push(("http.response.status_code", Value::Int(r.status.into())));
    a.push(("mcpgate.request_id", r.request_id.clone().into()));
    a.push(("mcpgate.decision", r.decision.clone().into()));
    a.push(("mcpgate.reason", r.reason.clone().into()));
    let mut opt = |key: &'static str, v: &Option<String>| {
        if let Some(v) = v {
            a.push((key, visible(v).into()));
        }
    };
    opt("mcp.method.name", &r.mcp_method);
    // What was asked for, from callers the gateway knows (a stranger's names stay in the audit):
    // a tool or prompt name as it is; a URI (resources) as its scheme and host only — its
    // userinfo, path and query may hold what a trace backend must not see.
    if r.principal.is_some()
        && let Some(t) = &r.tool
    {
        if r.mcp_method.as_deref() == Some("tools/call") {
            a.push(("gen_ai.tool.name", visible(t).into()));
        } else {
            a.push(("mcpgate.target", uri_origin(t).unwrap_or_else(|| visible(t)).into()));
        }
    }
    let mut opt = |key: &'static str, v: &Option<String>| {
        if let Some(v) = v {
            a.push((key, visible(v).into()));
        }
    };
    opt("mcpgate.auth.method", &r.auth_method);
    opt("mcpgate.principal", &r.principal);
    opt("user.id", &r.user_id);
    opt("mcpgate.tenant", &r.tenant);
    opt("mcpgate.key_id", &r.key_id);
    opt("mcpgate.oauth.client_id", &r.client_id);
    opt("client.address", &r.client_addr);
    a
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

/// Without the invisible characters that make two strings look alike (zero-width, bidi
/// controls); the audit record already has no control characters.
fn visible(s: &str) -> String {
    s.chars()
        .filter(
            |c| !matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}'),
        )
        .collect()
}

/// `scheme://host[:port]` of a URI target, or `None` when it is not `scheme://…`.
fn uri_origin(target: &str) -> Option<String> {
    let (scheme, rest) = target.split_once("://")?;
    if scheme.is_empty()
        || !scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    Some(format!("{scheme}://{}", visible(host)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_targets_keep_only_scheme_and_host() {
        assert_eq!(
            uri_origin("postgres://admin:HUNTER2@db.internal:5432/prod?sslpassword=x").as_deref(),
            Some("postgres://db.internal:5432")
        );
        assert_eq!(uri_origin("file:///etc/secret").as_deref(), Some("file://"));
        assert_eq!(uri_origin("get_weather"), None);
        assert_eq!(uri_origin("://x"), None);
        assert_eq!(visible("ec\u{200b}ho\u{202e}"), "echo");
    }
}
