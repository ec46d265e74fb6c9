//! An rmcp client reaching a protected MCP server through `ConnectClient`, with seed 002's API
//! key (and a fallback key for rotation) and tenant header.
//!
//! ```sh
//! MCP_URL=https://mcp.example.com/mcp MCP_API_KEY=… [MCP_API_KEY_2=…] [MCP_TENANT=acme] \
//!   cargo run -p mcpgate-connect --features rmcp --example connect_rmcp
//! ```
//!
//! The same with a profile: `mcpgate_connect::profile::resolve(Flags { profile: Some("staging"
//! .into()), ..Default::default() }, &process_env, None)` gives the URL and the `auth`.

use mcpgate_connect::Auth;
use mcpgate_connect::auth::{Chain, Headers, KeyPair};
use mcpgate_connect::client::ConnectClient;
use mcpgate_connect::secret::{Secret, process_env};
use rmcp::ServiceExt;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("MCP_URL").map_err(|_| "set MCP_URL to the server's MCP endpoint")?;
    // Secrets come from the environment by name, never from arguments.
    let key = Secret::from_env_ref("MCP_API_KEY", "env:MCP_API_KEY", &process_env)?;
    let fallback = Secret::from_env_ref("MCP_API_KEY_2", "env:MCP_API_KEY_2", &process_env).ok();
    let mut chain: Vec<Arc<dyn Auth>> = Vec::new();
    if let Ok(tenant) = std::env::var("MCP_TENANT") {
        chain.push(Arc::new(Headers::new().tenant(&tenant, &process_env)?));
    }
    chain.push(Arc::new(KeyPair::new(&key, fallback.as_ref(), None)?));
    let auth: Arc<dyn Auth> = Arc::new(Chain(chain));
    eprintln!("connecting to {url} with {}", auth.describe());

    let transport = StreamableHttpClientTransport::with_client(
        ConnectClient::new(auth),
        StreamableHttpClientTransportConfig::with_uri(url),
    );
    let client = ().serve(transport).await?;
    let tools = client.list_all_tools().await?;
    for tool in &tools {
        println!("{}", tool.name);
    }
    client.cancel().await?;
    Ok(())
}
