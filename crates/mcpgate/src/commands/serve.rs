//! `mcpgate serve`: load and validate the configuration, bind, run until Ctrl-C or SIGTERM.

use crate::cli::ServeArgs;
use anyhow::{Context, Result};
use mcpgate_gateway::Gateway;
use mcpgate_gateway::config::raw::Overrides;

pub async fn run(args: ServeArgs) -> Result<()> {
    let mut overrides = Overrides {
        listen: args.listen,
        public_url: args.public_url,
        upstream_url: args.upstream_url,
        upstream_cmd: args.upstream_cmd,
        allowed_hosts: (!args.allowed_hosts.is_empty()).then_some(args.allowed_hosts),
        store_path: args.store.map(|p| p.to_string_lossy().into_owned()),
        prepend_rules: Vec::new(),
        no_auth: args.no_auth,
        oauth: false,
        admin: false,
    };
    if args.demo {
        let exe = std::env::current_exe().context("cannot find the mcpgate executable for the demo upstream")?;
        let exe = shell_quote(&exe.to_string_lossy());
        overrides.upstream_cmd = Some(format!("{exe} demo-upstream"));
        overrides.prepend_rules = super::demo::rules();
        // The quick start shows a real OAuth connection: the authorization server is on.
        overrides.oauth = true;
        // And the operator's console, to sign in to with the demo's admin key.
        overrides.admin = true;
    }
    let mut config = super::config::load(&args.config, &overrides)?;
    let demo_keys = if args.demo {
        super::demo::ensure_keys(&config).await?
    } else {
        Vec::new()
    };
    let listener = listen(config.listen).with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    // Port 0 picks a free port: the resource URL (the audience tokens must carry, the metadata's
    // `resource`) is the address actually bound, unless `public_url` was given.
    if config.listen.port() == 0 && config.public_url == format!("http://{}", config.listen) {
        let bound = format!("http://{addr}");
        // The issuer defaulted to the same address: it follows.
        if let Some(o) = config.oauth.as_mut()
            && o.issuer == config.public_url
        {
            o.issuer = bound.clone();
        }
        config.public_url = bound;
    }
    if args.no_auth {
        tracing::warn!("authentication is OFF (--no-auth): every caller is an anonymous admin");
    }
    let gw = Gateway::new(config, &|k| std::env::var(k).ok())
        .await
        .map_err(anyhow::Error::msg)?;
    tracing::info!(
        upstream = gw.upstream.kind(),
        "mcpgate {} listening on http://{addr}/mcp",
        crate::cli::VERSION
    );
    if args.demo {
        eprintln!(
            "\nmcpgate demo — MCP endpoint http://{addr}/mcp (demo tools: echo, add, slow, ask_name, summarize, inspect, crash)"
        );
        for line in &demo_keys {
            eprintln!("  {line}");
        }
        if let Some(o) = &gw.config.oauth {
            eprintln!(
                "  OAuth: this gateway is the authorization server ({}); clients discover it from http://{addr}/mcp and you sign in with a key above",
                o.issuer
            );
        }
        if gw.admin.is_some() {
            eprintln!("  console: http://{addr}/admin (sign in with the admin key above)");
        }
        eprintln!(
            "  try: curl -s -H \"X-API-Key: <admin key>\" http://{addr}/mcp/status\n       \
             npx @modelcontextprotocol/inspector --cli http://{addr}/mcp --transport http --header \"X-API-Key: <key>\" --method tools/list\n"
        );
    }
    mcpgate_gateway::serve(gw, listener, shutdown_signal()).await?;
    tracing::info!("mcpgate stopped");
    Ok(())
}

/// Binds with a deep accept queue: a burst of clients connecting at once must not overflow it
/// (an overflow costs each dropped client a one-second SYN retransmit).
fn listen(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
