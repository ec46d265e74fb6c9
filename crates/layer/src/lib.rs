//! mcpgate's `/mcp` pipeline as a [tower] [`Layer`]: put authentication, tenancy, session
//! ownership, policy, rate limits, list filtering, identity delegation and audit in front of an
//! MCP server that runs in your own process — an rmcp `StreamableHttpService` or any tower
//! service that speaks Streamable HTTP.
//!
//! It is the gateway's own pipeline (`mcpgate_gateway::Gateway::handle_post_via`), not a second
//! copy: the same strict reading of every message, the same refusals and audit records. The only
//! difference is where an allowed call goes — to the service this layer wraps, in process,
//! carrying the verified caller as a [`Caller`] request extension (rmcp hands the request's
//! `http::request::Parts` to tool handlers, so a tool can read who called it).
//!
//! ```no_run
//! use mcpgate_layer::{Caller, McpGateLayer, Role};
//! use tower::Layer;
//!
//! # async fn run() -> Result<(), String> {
//! let gate = McpGateLayer::builder()
//!     .public_url("http://127.0.0.1:8080")
//!     // Seed 001's key format: {"<key>": {"user_id": "…", "role": "…", "permissions": […]}}
//!     .api_keys_json(&std::env::var("MCP_API_KEYS").unwrap_or_default())
//!     .tool_needs_role("admin_*", Role::Admin)
//!     .build()
//!     .await?;
//! // Any tower service answering Streamable HTTP; here one that only says hello.
//! let inner = tower::service_fn(|req: http::Request<axum::body::Body>| async move {
//!     let who = req.extensions().get::<Caller>().map(|c| c.user_id().to_string());
//!     Ok::<_, std::convert::Infallible>(http::Response::new(axum::body::Body::from(
//!         format!("hello {}", who.unwrap_or_default()),
//!     )))
//! });
//! let app = axum::Router::new()
//!     .route_service("/mcp", gate.layer(inner))
//!     .merge(gate.metadata_routes());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await.map_err(|e| e.to_string())?;
//! axum::serve(listener, app).await.map_err(|e| e.to_string())
//! # }
//! ```
//!
//! `examples/embedded-server` is a complete rmcp server behind the layer (two tools, one admin
//! only, API keys and JWT), tested end to end with the official Python SDK.

mod builder;
mod caller;
mod inner;

pub use builder::Builder;
pub use caller::Caller;
pub use inner::Wrappable;
pub use mcpgate_core::policy::Rule;
pub use mcpgate_core::principal::{AuthMethod, Role};
pub use mcpgate_gateway::Gateway;
pub use mcpgate_gateway::clock::{Clock, ManualClock, SystemClock};
pub use mcpgate_gateway::server::Stores;
pub use mcpgate_gateway::shared::Broadcast;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, Method, Request, header};
use axum::response::Response;
use bytes::Bytes;
use inner::Inner;
use mcpgate_gateway::refusal::Refusal;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// An error a service or body may return.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The layer: one gateway (keys, sessions, limits, audit) shared by every service it wraps.
#[derive(Clone)]
pub struct McpGateLayer {
    gw: Arc<Gateway>,
}

impl McpGateLayer {
    /// Settings in code; see [`Builder`].
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The gateway behind the layer: its metrics, sessions, key registry and audit writer.
    pub fn gateway(&self) -> &Arc<Gateway> {
        &self.gw
    }

    /// The protected-resource metadata (RFC 9728) at `/.well-known/oauth-protected-resource` and
    /// `…/mcp`, which a 401 from the layer points OAuth clients to. Merge it into your router.
    pub fn metadata_routes(&self) -> axum::Router {
        let get = axum::routing::get(mcpgate_gateway::metadata::protected_resource);
        axum::Router::new()
            .route("/.well-known/oauth-protected-resource", get.clone())
            .route("/.well-known/oauth-protected-resource/mcp", get)
            .route_layer(axum::middleware::from_fn_with_state(
                self.gw.clone(),
                mcpgate_gateway::rebinding::require_allowed_host,
            ))
            .with_state(self.gw.clone())
    }

    /// Writes the audit records still queued, the keys' last-used times and the trace spans
    /// still queued (5 s at most). Call it when your server stops.
    pub async fn shutdown(&self) {
        self.gw.audit.close().await;
        self.gw.auth.keys.flush_used_now().await;
        if let Some(t) = &self.gw.telemetry {
            t.flush(std::time::Duration::from_secs(5)).await;
        }
    }
}

impl<S> tower::Layer<S> for McpGateLayer {
    type Service = McpGate<S>;

    fn layer(&self, service: S) -> McpGate<S> {
        McpGate {
            gw: self.gw.clone(),
            inner: Inner::new(service, &self.gw),
        }
    }
}

/// The wrapped service: `POST`, `GET` and `DELETE` go through the pipeline; any other method is
/// refused with 405. Never fails as a service: every refusal is an HTTP answer.
pub struct McpGate<S> {
    gw: Arc<Gateway>,
    inner: Inner<S>,
}

impl<S: Clone> Clone for McpGate<S> {
    fn clone(&self) -> Self {
        McpGate {
            gw: self.gw.clone(),
            inner: self.inner.clone(),
        }
    }
}

impl<S, B> tower::Service<Request<B>> for McpGate<S>
where
    S: Wrappable,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    /// Always ready: the wrapped service is cloned and driven to readiness per call.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let gw = self.gw.clone();
        let inner = self.inner.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let response = match parts.method {
                Method::POST => gw.handle_post_via(&inner, parts, Body::new(body)).await,
                Method::GET => gw
                    .handle_get_via(&inner, parts)
                    .await
                    .unwrap_or_else(|r| r.into_response(None)),
                Method::DELETE => gw
                    .handle_delete_via(&inner, parts)
                    .await
                    .unwrap_or_else(|r| r.into_response(None)),
                _ => {
                    let mut r = Refusal::MethodNotAllowed.into_response(None);
                    r.headers_mut()
                        .insert(header::ALLOW, HeaderValue::from_static("GET, POST, DELETE"));
                    r
                }
            };
            // A 401/403 names the resource metadata, as the gateway's own router does.
            Ok(mcpgate_gateway::metadata::add_resource_metadata(State(gw), response).await)
        })
    }
}
