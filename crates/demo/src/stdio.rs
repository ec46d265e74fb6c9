//! The stdio transport: the shape of an upstream the gateway spawns as a child process.

use anyhow::Context;
use rmcp::ServiceExt;

use crate::profile::Setup;
use crate::server::DemoServer;

/// Serves MCP over stdin/stdout (newline-delimited JSON-RPC) until stdin closes.
///
/// Uses rmcp's non-blocking pipe transport, which falls back to plain blocking stdio when the
/// streams are not pipes (a terminal, a file).
///
/// # Errors
/// When the client's `initialize` handshake fails or the service task dies.
pub async fn serve_stdio(setup: impl Into<Setup>) -> anyhow::Result<()> {
    let running = DemoServer::new(setup)
        .serve(rmcp::transport::stdio_pipes())
        .await
        .context("MCP handshake over stdio failed")?;
    let reason = running.waiting().await.context("the stdio service task failed")?;
    tracing::info!(?reason, "stdio session ended");
    Ok(())
}
