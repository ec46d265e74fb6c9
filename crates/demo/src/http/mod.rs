//! The Streamable HTTP transport: `/mcp` with stateful sessions and SSE, the shape of a remote
//! upstream.
//!
//! rmcp's `StreamableHttpService` does the protocol work; this module only configures it and
//! mounts it in axum. Its Host check stays on (the conformance suite tests DNS-rebinding
//! protection) with the loopback names a gateway on the same machine uses: entries without a
//! port match any port, so `Host: 127.0.0.1:PORT` forwarded by the gateway is accepted.

mod sessions;

use std::sync::Arc;

use anyhow::Context;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::net::TcpListener;

use sessions::Sessions;

use crate::catalog::Catalog;
use crate::profile::Setup;
use crate::server::DemoServer;

/// The path the MCP endpoint is mounted at.
pub const MCP_PATH: &str = "/mcp";

/// Host names accepted in the `Host` header (any port).
const LOOPBACK_HOSTS: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// An axum router serving MCP at [`MCP_PATH`]; every session gets a fresh [`DemoServer`].
///
/// Exposed so tests can drive it without a socket, and so it can be nested in a larger app.
pub fn router(setup: impl Into<Setup>) -> axum::Router {
    let Setup { profile, recorder } = setup.into();
    let catalog = Arc::new(Catalog::new(profile, recorder));
    let config = StreamableHttpServerConfig::default().with_allowed_hosts(LOOPBACK_HOSTS);
    let service = StreamableHttpService::new(
        move || Ok(DemoServer::with_catalog(Arc::clone(&catalog))),
        Arc::new(Sessions::default()),
        config,
    );
    axum::Router::new()
        .route_service(MCP_PATH, service)
        .layer(axum::middleware::from_fn(log_trace_context))
}

/// Logs the W3C trace context a request arrived with (what a gateway in front propagated), so
/// a test or an operator can follow one trace across the hop.
async fn log_trace_context(req: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    if let Some(parent) = req.headers().get("traceparent").and_then(|v| v.to_str().ok()) {
        let state = req
            .headers()
            .get("tracestate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        tracing::info!(traceparent = %parent, tracestate = %state, method = %req.method(), "trace context received");
    }
    next.run(req).await
}

/// Serves MCP over Streamable HTTP at [`MCP_PATH`] on `listener` until the listener fails.
///
/// # Errors
/// When accepting connections fails.
pub async fn serve_http(listener: TcpListener, setup: impl Into<Setup>) -> anyhow::Result<()> {
    let setup = setup.into();
    let address = listener.local_addr().ok();
    tracing::info!(?address, profile = %setup.profile, "serving MCP over Streamable HTTP at {MCP_PATH}");
    axum::serve(listener, router(setup))
        .await
        .context("the HTTP server stopped")
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use http::{Request, StatusCode};
    use tower::ServiceExt;

    use super::*;
    use crate::profile::Profile;

    fn initialize(host: &str) -> Request<Body> {
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"test","version":"1"}}}"#;
        Request::post(MCP_PATH)
            .header("host", host)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(Body::from(body))
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn loopback_hosts_with_any_port_are_accepted() {
        for host in ["127.0.0.1:41234", "localhost:8080", "[::1]:3000", "127.0.0.1"] {
            let response = router(Profile::Demo).oneshot(initialize(host)).await;
            let response = response.map_err(|never| match never {});
            let Ok(response) = response;
            assert_eq!(response.status(), StatusCode::OK, "Host: {host}");
            assert!(response.headers().contains_key("mcp-session-id"), "Host: {host}");
        }
    }

    #[tokio::test]
    async fn other_hosts_are_refused_against_dns_rebinding() {
        let response = router(Profile::Demo)
            .oneshot(initialize("evil.example.com"))
            .await
            .map_err(|never| match never {});
        let Ok(response) = response;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }
}
