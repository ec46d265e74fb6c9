//! The client side of mcpgate (seed 002): what an agent needs to reach a protected MCP server,
//! whatever the server is.
//!
//! - [`bridge`]: a stdio ↔ Streamable HTTP bridge (`mcpgate connect URL`). JSON-RPC lines read on
//!   stdin go to the server as they are (the bytes read are the bytes sent, and signed); answers
//!   and server-sent messages (SSE, server→client requests included) come back on stdout, one per
//!   line. It keeps the session id and protocol version, resumes a dropped stream with
//!   `Last-Event-ID`, initializes again when the server lost the session, retries what is safe to
//!   retry, and logs on stderr only.
//! - [`auth`]: the credentials, one provider each — static headers, an API key with a fallback
//!   key, a bearer token, HS256 JWTs minted and renewed, HMAC signatures over the exact body,
//!   OAuth client-credentials tokens fetched and refreshed before expiry — behind one [`Auth`]
//!   trait, which any HTTP client can use: as a tower middleware ([`middleware::AuthLayer`]), and
//!   with rmcp's client transport (`client::ConnectClient`, feature `rmcp`).
//! - [`profile`]: named environments in `connect.toml` (development, staging, production), whose
//!   secrets are references to environment variables, never values.
//! - [`secret`]: secrets resolved from the environment, redacted in every `Debug`.

pub mod auth;
pub mod bridge;
#[cfg(feature = "rmcp")]
pub mod client;
pub mod middleware;
pub mod oauth;
pub mod profile;
pub mod retry;
pub mod secret;

pub use auth::{Auth, AuthError};
pub use secret::Secret;
