//! The `mcpgate` binary: parses the command line and hands over to one module per subcommand.

mod cli;
mod commands;

/// The request path allocates many small, short-lived buffers across threads; mimalloc handles
/// that pattern with less contention than the system allocator (measured in bench/).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use cli::{Cli, Command, ConfigCommand, LogFormat};

fn init_logging(format: LogFormat) {
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Seed 001: DEBUG=auth:* switches on detailed authentication tracing (secrets stay redacted).
    if std::env::var("DEBUG").is_ok_and(|d| d.split(',').any(|p| p.trim().starts_with("auth")))
        && let Ok(d) = "mcpgate::auth=debug".parse()
    {
        filter = filter.add_directive(d);
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    // MCPGATE_WORKER_THREADS: runtime threads (default: one per core).
    if let Some(n) = std::env::var("MCPGATE_WORKER_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
    {
        builder.worker_threads(n);
    }
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mcpgate: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => commands::serve::run(args).await,
            Command::Config {
                command: ConfigCommand::Check(args),
            } => commands::config::check(&args).await,
            Command::Keys { command } => commands::keys::run(command).await,
            Command::Clients { command } => commands::oauth::clients(command).await,
            Command::Grants { command } => commands::oauth::grants(command).await,
            Command::Users { command } => commands::oauth::users(command).await,
            Command::Audit(args) => commands::audit::run(args).await,
            Command::Store { command } => commands::store::run(command).await,
            Command::Token {
                command: cli::TokenCommand::Mint(args),
            } => commands::token::mint(args),
            Command::Connect(args) => commands::connect::run(*args).await,
            Command::Completions { shell } => commands::completions::run(shell),
            Command::DemoUpstream => mcpgate_demo::serve_stdio(mcpgate_demo::Profile::Demo).await,
        }
    });
    // Work still blocked on a read (a bridge's stdin, once it has finished) must not keep the
    // process alive.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcpgate: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
