//! Where calls go after the gateway has decided to let them through: an upstream MCP server
//! reached over Streamable HTTP ([`http`]) or a stdio process that the gateway runs ([`stdio`]).
//! Both take the original bytes plus the few facts the pipeline read from them.

pub mod http;
pub mod stdio;

use crate::config::UpstreamConfig;
use crate::metrics::Metrics;
use crate::refusal::Refusal;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::Response;
use bytes::Bytes;
use mcpgate_core::jsonrpc::Message;
use std::sync::Arc;

/// One client message on its way upstream.
pub struct Forward<'a> {
    pub msg: &'a Message<'a>,
    pub body: &'a Bytes,
    pub session: Option<&'a str>,
    pub client_headers: &'a HeaderMap,
    /// Headers the gateway adds (identity delegation); never the caller's own credential.
    pub inject: &'a [(HeaderName, HeaderValue)],
}

pub enum Upstream {
    Http(Box<http::HttpUpstream>),
    Stdio(stdio::StdioUpstream),
}

pub const SESSION_HEADER: &str = "mcp-session-id";
pub const PROTOCOL_HEADER: &str = "mcp-protocol-version";
pub const LAST_EVENT_HEADER: &str = "last-event-id";

impl Upstream {
    pub fn new(cfg: &UpstreamConfig, metrics: Arc<Metrics>) -> Result<Upstream, String> {
        Ok(match cfg {
            UpstreamConfig::Http(c) => Upstream::Http(Box::new(http::HttpUpstream::new(c.clone(), metrics)?)),
            UpstreamConfig::Stdio(c) => Upstream::Stdio(stdio::StdioUpstream::new(c.clone(), metrics)),
        })
    }

    pub async fn post(&self, f: Forward<'_>) -> Result<Response, Refusal> {
        match self {
            Upstream::Http(u) => u.post(f).await,
            Upstream::Stdio(u) => u.post(f).await,
        }
    }

    pub async fn get(&self, session: Option<&str>, headers: &HeaderMap) -> Result<Response, Refusal> {
        match self {
            Upstream::Http(u) => u.get(session, headers).await,
            Upstream::Stdio(u) => u.get(session),
        }
    }

    pub async fn delete(&self, session: &str, headers: &HeaderMap) -> Result<Response, Refusal> {
        match self {
            Upstream::Http(u) => u.delete(session, headers).await,
            Upstream::Stdio(u) => u.delete(session),
        }
    }

    /// Whether a call now would reach the upstream.
    pub async fn ready(&self) -> bool {
        match self {
            Upstream::Http(u) => u.ready().await,
            Upstream::Stdio(u) => u.ready(),
        }
    }

    /// Whether the upstream answers `server/discover` itself (stdio children are driven by the
    /// gateway's session layer, which speaks the session-based protocol).
    pub fn kind(&self) -> &'static str {
        match self {
            Upstream::Http(_) => "http",
            Upstream::Stdio(_) => "stdio",
        }
    }

    pub fn status(&self) -> serde_json::Value {
        match self {
            Upstream::Http(u) => u.status(),
            Upstream::Stdio(u) => u.status(),
        }
    }

    /// Stops background work (child processes) on shutdown.
    pub fn shutdown(&self) {
        if let Upstream::Stdio(u) = self {
            u.shutdown();
        }
    }
}

pub fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}
