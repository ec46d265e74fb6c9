//! The MCP server that sits *behind* mcpgate in demo mode, in the integration tests and in
//! conformance runs.
//!
//! mcpgate is a gateway: to show it working, to test it end to end and to run the official
//! conformance suite through it, something real has to answer on the other side. This crate is
//! that upstream. It is written with rmcp (the official Rust SDK) so that what the gateway sees is
//! a stock, spec-following server, not a mock shaped around the gateway's own assumptions.
//!
//! Two transports, because the gateway supports both kinds of upstream:
//! - [`serve_stdio`]: newline-delimited JSON-RPC on stdin/stdout, as a child process the gateway
//!   spawns and supervises (the `crash` tool exists to test that supervision);
//! - [`serve_http`]: Streamable HTTP at `/mcp` with stateful sessions and SSE, the shape of a
//!   remote upstream.
//!
//! Three surfaces, chosen by [`Profile`]: the small demo set (`echo`, `add`, `slow`, `ask_name`,
//! `summarize`, `crash`, `inspect`); on top of it, the fixed names the conformance suite's
//! server scenarios call (`test_simple_text`, …); and, alone, the differential suite's surface,
//! whose executions a [`Recorder`] logs so a test can compare them with the gateway's audit.

mod catalog;
mod differential;
mod http;
mod media;
mod peer;
mod profile;
mod prompts;
mod record;
mod resources;
mod response_stream;
mod server;
mod session;
mod stdio;
mod tools;

pub use http::{MCP_PATH, router, serve_http};
pub use profile::{Profile, Setup, UnknownProfile};
pub use record::Recorder;
pub use server::DemoServer;
pub use stdio::serve_stdio;
