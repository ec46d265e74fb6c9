//! What the gateway does itself rather than forward: the answers to its own whoami tool and to
//! `server/discover`, and the list results cut down to what the caller may use. [`super`] holds
//! the order these run in; the audit record is `record.rs`.

use crate::Gateway;
use crate::lists;
use crate::refusal::{Refusal, json_response};
use crate::upstream::{Forward, Forwarder};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use bytes::Bytes;
use mcpgate_core::jsonrpc::{self, Message, code};
use mcpgate_core::principal::Principal;
use serde_json::value::RawValue;

impl Gateway {
    /// The gateway's own whoami tool: answered here, never forwarded.
    pub(super) async fn whoami_result(&self, p: &Principal, id: &RawValue) -> Response {
        let limits = p.limits().or(self.config.limits.default);
        let remaining = self.remaining(p, &limits).await;
        let info = whoami_json(p, &limits, &remaining);
        let text = serde_json::to_string_pretty(&info).unwrap_or_default();
        let result = serde_json::json!({
            "content": [{ "type": "text", "text": text }],
            "structuredContent": info,
        });
        let raw = serde_json::value::to_raw_value(&result).unwrap_or_default();
        json_response(StatusCode::OK, jsonrpc::result_body(id, &raw))
    }

    /// `server/discover`, passed to an HTTP upstream; when that cannot answer (or the upstream
    /// speaks stdio), the client is told to use `initialize`.
    pub(super) async fn discover(
        &self,
        via: &dyn Forwarder,
        msg: &Message<'_>,
        bytes: &Bytes,
        parts: &Parts,
    ) -> Response {
        let not_supported = || {
            json_response(
                StatusCode::OK,
                jsonrpc::error_body(
                    msg.id,
                    code::METHOD_NOT_FOUND,
                    "server/discover is not supported by this server; use initialize",
                    None,
                ),
            )
        };
        if !via.passes_discover() {
            return not_supported();
        }
        let forward = Forward {
            msg,
            body: bytes,
            session: None,
            client: parts,
            inject: &[],
            principal: None,
        };
        match via.post(forward).await {
            Ok(r) if r.status().is_success() => r,
            _ => not_supported(),
        }
    }

    /// A list result shows only what this caller may use (and the whoami tool); other results
    /// pass through untouched.
    pub(super) async fn visible_only(
        &self,
        response: Response,
        method: &str,
        p: Option<&Principal>,
    ) -> Result<Response, Refusal> {
        if !lists::is_list(method) {
            return Ok(response);
        }
        let extra = (method == "tools/list" && p.is_some())
            .then_some(())
            .and(self.auth.cfg.whoami_tool.as_deref())
            .map(lists::whoami_tool);
        let policy = &self.config.policy;
        // Without a credential, a host that passes keys per tool call (seed 000) must still
        // see the tools: what a key will allow cannot be known before it is sent.
        let unfiltered = p.is_none() && self.auth.cfg.allow_tool_arg_key;
        let is_tools = method == "tools/list";
        lists::filter(
            response,
            method,
            |name| {
                if is_tools {
                    self.known_tools.note(name);
                }
                unfiltered || policy.visible(p, method, name)
            },
            extra,
        )
        .await
    }
}

/// Who the caller is and what it may still spend: the whoami tool's answer, and the body of the
/// gateway's own JSON page about the caller.
pub fn whoami_json(
    p: &Principal,
    limits: &mcpgate_core::principal::Limits,
    remaining: &mcpgate_core::ratelimit::Remaining,
) -> serde_json::Value {
    serde_json::json!({
        "principal": p.id(),
        "user_id": p.user_id(),
        "name": p.name(),
        "tenant": p.tenant(),
        "role": p.role().as_str(),
        "permissions": p.permissions(),
        "scopes": p.scopes(),
        "auth_method": p.method().as_str(),
        "key_id": p.key_id(),
        "expires_at": p.expires_at().map(mcpgate_core::time::format_rfc3339),
        "limits": limits,
        "remaining": remaining,
    })
}
