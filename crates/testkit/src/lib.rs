//! Test support for mcpgate's integration tests, shared by every crate's `tests/` (a
//! dev-dependency only, never published). One of each: one in-process gateway harness, one fake
//! OIDC issuer, one fake vendor API, one recording upstream, one log capture, one set of process
//! helpers. Time that a test moves is the gateway's own `mcpgate_gateway::clock::ManualClock`
//! (see [`harness::Setup::manual_clock`]).
//!
//! | module | for |
//! |---|---|
//! | [`harness`] | a gateway built from TOML, driven through `router().oneshot` ([`harness::Setup`], [`harness::Gw`], [`harness::Resp`]) |
//! | [`apikey`] | API keys in the store: what they grant and what the user holds |
//! | [`keys`] | JWT signing keys (RSA, EC, Ed25519) and their JWKs |
//! | [`issuer`] | a local OIDC issuer: discovery, JWKS, RFC 7662 introspection |
//! | [`vendor`] | a vendor API that verifies its own keys (`GET /me`) |
//! | [`fake`] | what the fakes share: a loopback server stopped on drop, and how it misbehaves |
//! | [`recorder`] | a recording proxy in front of an upstream |
//! | [`logs`] | a TRACE log capture and the search for secrets in what was captured |
//! | [`time`] | bounded waits and polls, the wall clock in seconds |
//! | [`process`] | child processes, the example server binary, a gateway process with its upstream |
//! | [`raw`] | raw JSON-RPC over HTTP (reqwest) and SSE parsing |
//! | [`client`] | an rmcp client that answers elicitation and sampling, and a spy on its HTTP |

// Test support: a failed setup must fail the test that asked for it, loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod apikey;
pub mod client;
pub mod fake;
pub mod harness;
pub mod issuer;
pub mod keys;
pub mod logs;
pub mod process;
pub mod raw;
pub mod recorder;
pub mod time;
pub mod vendor;
