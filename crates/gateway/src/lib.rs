//! mcpgate's HTTP layer: Streamable HTTP toward clients, an upstream connector toward the MCP
//! server, and the ordered request pipeline between them. The domain decisions live in
//! `mcpgate-core`; this crate adapts them to HTTP.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod admin;
pub mod audit;
pub mod auth;
pub mod clock;
pub mod config;
pub mod delegation;
pub mod guarded_fetch;
pub mod held;
pub mod key_service;
pub mod known_tools;
pub mod lists;
pub mod metadata;
pub mod metrics;
pub mod oauth;
pub mod pipeline;
pub mod rebinding;
pub mod refusal;
pub mod server;
pub mod sessions;
pub mod shared;
pub mod sse;
pub mod telemetry;
pub mod upstream;

pub use server::{Gateway, serve};
