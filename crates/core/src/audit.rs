//! Audit records: one per authentication decision and per MCP call. A record names who, what and
//! the outcome — never a credential: principals appear by key id and user id only.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuditRecord {
    /// Unix milliseconds.
    pub time_ms: i64,
    pub request_id: String,
    /// `auth` (a decision that stopped the request) or `call` (a request that went upstream).
    pub event: String,
    pub principal: Option<String>,
    pub key_id: Option<String>,
    pub user_id: Option<String>,
    pub tenant: Option<String>,
    /// How the caller authenticated (`api_key`, `anonymous`, …).
    pub auth_method: Option<String>,
    pub client_addr: Option<String>,
    pub mcp_method: Option<String>,
    pub tool: Option<String>,
    /// `allow`, `deny`, `limited` or `error`.
    pub decision: String,
    pub reason: String,
    pub status: u16,
    pub latency_us: u64,
    /// The OAuth client, for tokens this gateway's authorization server issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// Filters for `mcpgate audit`.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub since_ms: Option<i64>,
    pub user: Option<String>,
    pub tool: Option<String>,
    pub decision: Option<String>,
    pub limit: usize,
}
