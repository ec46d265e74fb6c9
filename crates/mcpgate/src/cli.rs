//! The command line, in one place. Settings resolve as: flag > `MCPGATE_*` env > config file >
//! default.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "mcpgate", version, about = "Authentication, authorization, quotas and audit in front of any MCP server")]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value = "text", env = "MCPGATE_LOG_FORMAT")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the gateway.
    Serve(ServeArgs),
    /// Inspect configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Serve the built-in demo MCP server over stdio (what `serve --demo` runs behind the gateway).
    #[command(hide = true)]
    DemoUpstream,
}

#[derive(Args, Debug, Clone, Default)]
pub struct ConfigArgs {
    /// TOML configuration file.
    #[arg(long, short, env = "MCPGATE_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Address to listen on (default 127.0.0.1:3210).
    #[arg(long)]
    pub listen: Option<String>,
    /// The URL clients use to reach the gateway.
    #[arg(long)]
    pub public_url: Option<String>,
    /// Streamable HTTP URL of the upstream MCP server.
    #[arg(long, conflicts_with_all = ["upstream_cmd", "demo"])]
    pub upstream_url: Option<String>,
    /// Command line of a stdio MCP server for the gateway to run.
    #[arg(long, conflicts_with = "demo")]
    pub upstream_cmd: Option<String>,
    /// Host header values to accept (repeatable; default: loopback names).
    #[arg(long = "allowed-host")]
    pub allowed_hosts: Vec<String>,
    /// Put the built-in demo MCP server behind the gateway.
    #[arg(long)]
    pub demo: bool,
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Validate the configuration (file + env) and print what the gateway would run with.
    Check(ConfigArgs),
}
