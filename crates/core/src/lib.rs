//! mcpgate's domain core. Everything here takes plain inputs (bytes, strings, `now`) and returns
//! decisions; nothing here knows about HTTP or a runtime, so the same logic serves the gateway
//! binary and Rust MCP servers that embed mcpgate as a library.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod audit;
pub mod entropy;
pub mod hmac;
pub mod jsonrpc;
pub mod keys;
pub mod policy;
pub mod principal;
pub mod ratelimit;
pub mod redact;
pub mod sealed;
pub mod time;
