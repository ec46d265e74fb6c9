//! Where calls go after the gateway has decided to let them through: an upstream MCP server
//! reached over Streamable HTTP ([`http`]) or a stdio process that the gateway runs ([`stdio`]),
//! or — when the pipeline is embedded as a tower layer (`mcpgate-layer`) — the service it wraps.
//! Each takes the canonical bytes plus the few facts the pipeline read from them, through one
//! trait, [`Forwarder`].

pub mod http;
pub mod stdio;

use crate::config::UpstreamConfig;
use crate::metrics::Metrics;
use crate::refusal::Refusal;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::Response;
use bytes::Bytes;
use mcpgate_core::jsonrpc::Message;
use mcpgate_core::principal::Principal;
use std::sync::Arc;

/// One client message on its way upstream.
pub struct Forward<'a> {
    pub msg: &'a Message<'a>,
    pub body: &'a Bytes,
    pub session: Option<&'a str>,
    /// The client's request line and headers. Connectors copy only the MCP headers from them
    /// (session, protocol version, Last-Event-ID; Host and Origin for an in-process service),
    /// never a credential.
    pub client: &'a Parts,
    /// Headers the gateway adds (identity delegation); never the caller's own credential.
    pub inject: &'a [(HeaderName, HeaderValue)],
    /// Who the pipeline authenticated; an in-process service receives it as a request extension.
    pub principal: Option<&'a Arc<Principal>>,
}

/// A bodiless request (`GET` for the server's stream, `DELETE` to end a session) on its way
/// upstream, after the pipeline's checks.
pub struct Plain<'a> {
    pub session: Option<&'a str>,
    pub client: &'a Parts,
    pub principal: Option<&'a Arc<Principal>>,
    /// Headers the gateway adds (the trace context); never the caller's own credential.
    pub inject: &'a [(HeaderName, HeaderValue)],
}

/// Where the pipeline sends what it let through. The gateway's own connectors ([`Upstream`]) and
/// the service an embedding application wraps (`mcpgate-layer`) both implement it, so there is
/// one pipeline in front of either.
#[async_trait::async_trait]
pub trait Forwarder: Send + Sync {
    async fn post(&self, f: Forward<'_>) -> Result<Response, Refusal>;
    async fn get(&self, p: Plain<'_>) -> Result<Response, Refusal>;
    async fn delete(&self, p: Plain<'_>) -> Result<Response, Refusal>;
    /// Whether `server/discover` is passed on (an HTTP server may answer it) or answered here.
    fn passes_discover(&self) -> bool {
        false
    }
}

pub enum Upstream {
    Http(Box<http::HttpUpstream>),
    Stdio(stdio::StdioUpstream),
    /// No connector: the gateway is embedded as a layer, which forwards to the service it wraps.
    Embedded,
}

/// What an embedded gateway's own connector answers if it is ever asked directly.
fn no_connector() -> Refusal {
    Refusal::UpstreamUnavailable {
        detail: "this gateway forwards to the service its layer wraps, not to a connector".into(),
    }
}

pub const SESSION_HEADER: &str = "mcp-session-id";
pub const PROTOCOL_HEADER: &str = "mcp-protocol-version";
pub const LAST_EVENT_HEADER: &str = "last-event-id";

/// Response headers worth returning to the client; the rest (upstream auth challenges, cookies,
/// server banners) stay behind the gateway.
pub const PASS_BACK: &[&str] = &["content-type", SESSION_HEADER, PROTOCOL_HEADER, "cache-control"];

impl Upstream {
    pub fn new(
        cfg: &UpstreamConfig,
        metrics: Arc<Metrics>,
        entropy: Arc<dyn mcpgate_core::entropy::Entropy>,
    ) -> Result<Upstream, String> {
        Ok(match cfg {
            UpstreamConfig::Http(c) => Upstream::Http(Box::new(http::HttpUpstream::new(c.clone(), metrics)?)),
            UpstreamConfig::Stdio(c) => Upstream::Stdio(stdio::StdioUpstream::new(c.clone(), metrics, entropy)),
            UpstreamConfig::Embedded(_) => Upstream::Embedded,
        })
    }

    /// Whether a call now would reach the upstream.
    pub async fn ready(&self) -> bool {
        match self {
            Upstream::Http(u) => u.ready().await,
            Upstream::Stdio(u) => u.ready(),
            Upstream::Embedded => true,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Upstream::Http(_) => "http",
            Upstream::Stdio(_) => "stdio",
            Upstream::Embedded => "embedded",
        }
    }

    pub fn status(&self) -> serde_json::Value {
        match self {
            Upstream::Http(u) => u.status(),
            Upstream::Stdio(u) => u.status(),
            Upstream::Embedded => serde_json::json!({ "kind": "embedded" }),
        }
    }

    /// Stops background work (child processes) on shutdown.
    pub fn shutdown(&self) {
        if let Upstream::Stdio(u) = self {
            u.shutdown();
        }
    }
}

#[async_trait::async_trait]
impl Forwarder for Upstream {
    async fn post(&self, f: Forward<'_>) -> Result<Response, Refusal> {
        match self {
            Upstream::Http(u) => u.post(f).await,
            Upstream::Stdio(u) => u.post(f).await,
            Upstream::Embedded => Err(no_connector()),
        }
    }

    async fn get(&self, p: Plain<'_>) -> Result<Response, Refusal> {
        match self {
            Upstream::Http(u) => u.get(&p.client.headers, p.inject).await,
            Upstream::Stdio(u) => u.get(p.session),
            Upstream::Embedded => Err(no_connector()),
        }
    }

    async fn delete(&self, p: Plain<'_>) -> Result<Response, Refusal> {
        let Some(session) = p.session else {
            return Err(Refusal::SessionRequired);
        };
        match self {
            Upstream::Http(u) => u.delete(&p.client.headers, p.inject).await,
            Upstream::Stdio(u) => u.delete(session),
            Upstream::Embedded => Err(no_connector()),
        }
    }

    /// An HTTP server may answer `server/discover` itself; a stdio child is driven by the
    /// gateway's session layer, which speaks the session-based protocol.
    fn passes_discover(&self) -> bool {
        matches!(self, Upstream::Http(_))
    }
}

pub fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}
