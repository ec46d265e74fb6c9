//! How a refusal is expressed: the JSON-RPC error codes the gateway answers with, and why a body
//! is not a message it accepts.

/// JSON-RPC error codes used by the gateway (JSON-RPC 2.0 and MCP's reserved range).
pub mod code {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    pub const INTERNAL_ERROR: i64 = -32603;
    /// Server-defined range: the gateway's own refusals.
    pub const UNAUTHORIZED: i64 = -32001;
    pub const FORBIDDEN: i64 = -32003;
    pub const RATE_LIMITED: i64 = -32029;
    pub const UPSTREAM_UNAVAILABLE: i64 = -32050;
    pub const SESSION_NOT_FOUND: i64 = -32004;
}

/// Why a body is not a JSON-RPC message the gateway accepts. Messages never echo the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the body is not strict JSON: {0}")]
    Json(String),
    #[error("JSON-RPC batches are not supported; send one message per request")]
    Batch,
    #[error("not a JSON-RPC 2.0 message: {0}")]
    Invalid(&'static str),
    #[error("invalid params: {0}")]
    Params(&'static str),
}

impl ParseError {
    pub fn code(&self) -> i64 {
        match self {
            ParseError::Json(_) => code::PARSE_ERROR,
            ParseError::Batch | ParseError::Invalid(_) => code::INVALID_REQUEST,
            ParseError::Params(_) => code::INVALID_PARAMS,
        }
    }
}
