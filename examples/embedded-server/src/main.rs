//! An rmcp server with mcpgate's layer in front. Keys come from `MCP_API_KEYS` (seed 001's JSON),
//! HS256 tokens are checked with `JWT_SECRET`; `count` needs permission `read`, `admin_reset` role
//! admin. Each tool answers
//! with the caller the layer verified.
//!
//!     MCP_API_KEYS='{"<key>": {"user_id": "ana", "role": "admin"}}' JWT_SECRET=… \
//!       cargo run -p mcpgate-embedded-example -- 127.0.0.1:8080
use http::request::Parts;
use mcpgate_layer::{Caller, McpGateLayer, Role};
use rmcp::handler::server::tool::Extension;
use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, tool, tool_router};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tower::Layer;

#[derive(Clone, Default)]
struct Counter(Arc<AtomicU64>);

/// The caller the layer put into the request's extensions.
fn who(parts: &Parts) -> String {
    match parts.extensions.get::<Caller>() {
        Some(c) => format!("{} (role {})", c.user_id(), c.role().as_str()),
        None => "nobody".into(),
    }
}

fn text(s: String) -> Result<CallToolResult, ErrorData> {
    Ok(CallToolResult::success(vec![ContentBlock::text(s)]))
}

#[tool_router(server_handler)]
impl Counter {
    #[tool(description = "Counts one more call and says who made it")]
    async fn count(&self, Extension(parts): Extension<Parts>) -> Result<CallToolResult, ErrorData> {
        let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
        text(format!("call {n} by {}", who(&parts)))
    }

    #[tool(description = "Sets the count back to zero (admins only)")]
    async fn admin_reset(&self, Extension(parts): Extension<Parts>) -> Result<CallToolResult, ErrorData> {
        self.0.store(0, Ordering::Relaxed);
        text(format!("reset by {}", who(&parts)))
    }
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8080".into());
    let listener = tokio::net::TcpListener::bind(&addr).await.map_err(|e| e.to_string())?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let gate = McpGateLayer::builder()
        .public_url(format!("http://{local}"))
        .process_env() // MCP_API_KEYS, JWT_SECRET, MCP_DEFAULT_ROLE, MCPGATE_*
        .tool_needs_permission("count", "read") // read-only keys may count…
        .tool_needs_role("admin_*", Role::Admin) // …only admins may reset
        .build()
        .await?;
    let counter = Counter::default();
    let mcp = StreamableHttpService::new(
        move || Ok(counter.clone()),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    let app = axum::Router::new()
        .route_service("/mcp", gate.layer(mcp))
        .merge(gate.metadata_routes());
    println!("listening on http://{local}/mcp");
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    gate.shutdown().await;
    served.map_err(|e| e.to_string())
}
