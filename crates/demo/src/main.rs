//! `mcpgate-example-server`: the demo upstream as a standalone process.
//!
//! The gateway spawns it (stdio) or points at it (HTTP) in demo mode, tests and conformance runs.
//! A thin binary: parse flags, set up stderr logging, call the library. Logs go to stderr because
//! in stdio mode stdout carries the protocol.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use mcpgate_demo::{MCP_PATH, Profile, Recorder, Setup, serve_http, serve_stdio};

const USAGE: &str = "\
usage: mcpgate-example-server [--stdio | --http ADDR] [--profile demo|conformance|differential]
                              [--record FILE]

  --stdio              serve MCP on stdin/stdout (default)
  --http ADDR          serve Streamable HTTP at http://ADDR/mcp (e.g. 127.0.0.1:0 for any port)
  --profile PROFILE    demo (default), conformance (adds the conformance suite's fixtures) or
                       differential (only the differential suite's surface)
  --record FILE        append one JSON line per execution to FILE (differential profile)
  -h, --help           show this help

Logs go to stderr; RUST_LOG sets the filter (default: info,rmcp=warn).";

/// rmcp logs every message at `info`; that is noise next to a gateway's own logs.
const DEFAULT_LOG_FILTER: &str = "info,rmcp=warn";

#[derive(Debug, PartialEq)]
enum Transport {
    Stdio,
    Http(SocketAddr),
}

#[derive(Debug, PartialEq)]
struct Options {
    transport: Transport,
    profile: Profile,
    record: Option<PathBuf>,
}

/// What the command line asks for: run, or print help.
#[derive(Debug, PartialEq)]
enum Command {
    Run(Options),
    Help,
}

fn parse(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut options = Options {
        transport: Transport::Stdio,
        profile: Profile::Demo,
        record: None,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        // Accept both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag.to_owned(), Some(value.to_owned())),
            _ => (arg, None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" | "--stdio" if inline.is_some() => {
                return Err(format!("{flag} takes no value"));
            }
            "-h" | "--help" => return Ok(Command::Help),
            "--stdio" => options.transport = Transport::Stdio,
            "--http" => {
                let address = value("--http")?;
                let address = address
                    .parse()
                    .map_err(|error| format!("--http {address}: expected IP:PORT such as 127.0.0.1:8080 ({error})"))?;
                options.transport = Transport::Http(address);
            }
            "--profile" => {
                options.profile = value("--profile")?
                    .parse()
                    .map_err(|error: mcpgate_demo::UnknownProfile| error.to_string())?;
            }
            "--record" => options.record = Some(PathBuf::from(value("--record")?)),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(Command::Run(options))
}

fn main() -> ExitCode {
    let options = match parse(std::env::args().skip(1)) {
        Ok(Command::Run(options)) => options,
        Ok(Command::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("mcpgate-example-server: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER)),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("mcpgate-example-server: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("mcpgate-example-server: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: Options) -> anyhow::Result<()> {
    let recorder = match &options.record {
        Some(path) => {
            Some(Recorder::open(path).map_err(|error| anyhow::anyhow!("--record {}: {error}", path.display()))?)
        }
        None => None,
    };
    let setup = Setup {
        profile: options.profile,
        recorder,
    };
    match options.transport {
        Transport::Stdio => serve_stdio(setup).await,
        Transport::Http(address) => {
            let listener = tokio::net::TcpListener::bind(address)
                .await
                .map_err(|error| anyhow::anyhow!("cannot listen on {address}: {error}"))?;
            // Print the bound address (port 0 becomes the real port) so a parent process can read it.
            eprintln!("listening on http://{}{MCP_PATH}", listener.local_addr()?);
            serve_http(listener, setup).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn defaults_to_stdio_and_the_demo_profile() {
        assert_eq!(
            parse(args(&[])),
            Ok(Command::Run(Options {
                transport: Transport::Stdio,
                profile: Profile::Demo,
                record: None,
            }))
        );
    }

    #[test]
    fn reads_http_address_and_profile_in_both_spellings() {
        let expected = Ok(Command::Run(Options {
            transport: Transport::Http(SocketAddr::from(([127, 0, 0, 1], 0))),
            profile: Profile::Conformance,
            record: None,
        }));
        assert_eq!(
            parse(args(&["--http", "127.0.0.1:0", "--profile", "conformance"])),
            expected
        );
        assert_eq!(parse(args(&["--http=127.0.0.1:0", "--profile=conformance"])), expected);
    }

    #[test]
    fn reads_the_differential_profile_and_a_record_file() {
        assert_eq!(
            parse(args(&["--profile", "differential", "--record=/tmp/x.jsonl"])),
            Ok(Command::Run(Options {
                transport: Transport::Stdio,
                profile: Profile::Differential,
                record: Some(PathBuf::from("/tmp/x.jsonl")),
            }))
        );
    }

    #[test]
    fn rejects_bad_input() {
        assert!(parse(args(&["--http"])).is_err());
        assert!(parse(args(&["--http", "localhost"])).is_err());
        assert!(parse(args(&["--profile", "full"])).is_err());
        assert!(parse(args(&["--verbose"])).is_err());
        assert!(parse(args(&["--stdio=yes"])).is_err());
        assert!(parse(args(&["--record"])).is_err());
    }
}
