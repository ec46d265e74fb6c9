//! `mcpgate-bench`: the benchmark rig's binary.
//!
//! - `upstream`: a fast, minimal MCP Streamable HTTP server (hand-written on hyper) so the upstream
//!   is never what limits a measurement; `--stdio`: the same server on stdin/stdout, for gateways
//!   that proxy stdio servers.
//! - `proxy`: a bare reverse proxy on mcpgate's HTTP stack (the floor: proxying alone).
//! - `load`: a lean load generator (one keep-alive HTTP/1.1 connection and one MCP session per
//!   task) that checks every response carries its own id and text.
//! - `probe`: a correctness probe: hundreds of concurrent calls, several connections per session.
//! - `report`: turns a `bench/run` work directory into `latest.json` and `latest.md`.
//! - `otlp-sink`: an OTLP/HTTP trace endpoint that takes every export (`apikey_traced`).
//! - `issuer`: a token issuer on loopback (generated key pair, JWKS, one signed token on stdout).
//! - `status`: the HTTP status of an `initialize` sent with given credentials (auth checks).
//! - `quiet`: waits (bounded) until other processes leave the machine nearly idle.
//! - `free-port`: prints a free loopback TCP port.
//!
//! Plain std argument parsing, see `usage()`.

mod args;
mod client;
mod issuer;
mod load;
mod otlp_sink;
mod probe;
mod proxy;
mod report;
mod stats;
mod upstream;

use anyhow::{Context, Result, bail};
use args::{Flags, runtime};
use client::Signer;
use std::process::ExitCode;
use std::time::Duration;

fn usage() -> &'static str {
    "usage:
  mcpgate-bench upstream --listen ADDR [--threads N]
  mcpgate-bench upstream --stdio
  mcpgate-bench proxy --listen ADDR --upstream URL [--threads N]
  mcpgate-bench otlp-sink --listen ADDR
  mcpgate-bench load --url URL --connections N --duration SECS [--rate R] [--warmup SECS]
                     [--header 'K: V']... [--hmac-client ID --hmac-secret-env VAR]
                     [--payload BYTES] [--timeout SECS] [--threads N] [--cpu-pid NAME=PID]...
                     [--cpu-tree NAME=PID]... [--redis HOST:PORT] [--json]
  mcpgate-bench probe --url URL [--calls N] [--concurrency N] [--sessions N] [--reuse-ids]
                      [--header 'K: V']... [--hmac-client ID --hmac-secret-env VAR]
                      [--timeout SECS] [--json]
  mcpgate-bench status --url URL [--header 'K: V']... [--hmac-client ID --hmac-secret-env VAR]
                       [--repeat N]
  mcpgate-bench issuer --listen ADDR --alg RS256|ES256|EdDSA --sub SUB [--aud AUD] [--scope S]
                       [--permissions 'P ...'] [--ttl SECS]
  mcpgate-bench report --work DIR --targets A,B,... --out-dir DIR [--command CMD] [--date DATE]
                       [--setting K=V]...
  mcpgate-bench quiet [--below CORES] [--timeout SECS]
  mcpgate-bench free-port"
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    match run(argv) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mcpgate-bench: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(argv: Vec<String>) -> Result<ExitCode> {
    let Some((cmd, rest)) = argv.split_first() else {
        eprintln!("{}", usage());
        return Ok(ExitCode::from(2));
    };
    match cmd.as_str() {
        "upstream" => {
            let mut f = Flags::parse(rest, &["stdio"])?;
            if f.flag("stdio") {
                f.finish()?;
                upstream::run_stdio()?;
            } else {
                let listen = f.required("listen")?;
                let threads = f.parsed("threads")?.unwrap_or_else(default_threads);
                f.finish()?;
                runtime(threads)?.block_on(upstream::run(&listen))?;
            }
        }
        "proxy" => {
            let mut f = Flags::parse(rest, &[])?;
            let (listen, upstream) = (f.required("listen")?, f.required("upstream")?);
            let threads = f.parsed("threads")?.unwrap_or_else(default_threads);
            f.finish()?;
            runtime(threads)?.block_on(proxy::run(&listen, &upstream))?;
        }
        "otlp-sink" => {
            let mut f = Flags::parse(rest, &[])?;
            let listen = f.required("listen")?;
            f.finish()?;
            runtime(1)?.block_on(otlp_sink::run(&listen))?;
        }
        "load" => {
            let mut f = Flags::parse(rest, &["json"])?;
            let opts = load::Opts {
                url: f.required("url")?,
                connections: f.parsed("connections")?.context("--connections is required")?,
                duration: secs(f.parsed("duration")?.context("--duration is required")?)?,
                warmup: secs(f.parsed("warmup")?.unwrap_or(0.0))?,
                rate: f.parsed("rate")?,
                headers: f.all("header"),
                signer: Signer::from_flags(f.one("hmac-client"), f.one("hmac-secret-env"))?,
                payload: f.parsed("payload")?.unwrap_or(0),
                timeout: secs(f.parsed("timeout")?.unwrap_or(10.0))?,
                cpu_pids: f
                    .all("cpu-pid")
                    .iter()
                    .map(|s| parse_cpu_pid(s))
                    .collect::<Result<_>>()?,
                cpu_trees: f
                    .all("cpu-tree")
                    .iter()
                    .map(|s| parse_cpu_pid(s))
                    .collect::<Result<_>>()?,
                redis: f.one("redis"),
            };
            let json = f.flag("json");
            let threads = f.parsed("threads")?.unwrap_or_else(default_threads);
            f.finish()?;
            if opts.connections == 0 {
                bail!("--connections must be at least 1");
            }
            if opts.rate.is_some_and(|r| r <= 0.0 || !r.is_finite()) {
                bail!("--rate must be a positive number");
            }
            let report = runtime(threads)?.block_on(load::run(opts))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", load::text(&report));
            }
        }
        "probe" => {
            let mut f = Flags::parse(rest, &["json", "reuse-ids"])?;
            let opts = probe::Opts {
                url: f.required("url")?,
                calls: f.parsed("calls")?.unwrap_or(800),
                concurrency: f.parsed("concurrency")?.unwrap_or(200),
                sessions: f.parsed("sessions")?.unwrap_or(8),
                reuse_ids: f.flag("reuse-ids"),
                headers: f.all("header"),
                signer: Signer::from_flags(f.one("hmac-client"), f.one("hmac-secret-env"))?,
                timeout: secs(f.parsed("timeout")?.unwrap_or(15.0))?,
            };
            let json = f.flag("json");
            let threads = f.parsed("threads")?.unwrap_or_else(default_threads);
            f.finish()?;
            if opts.concurrency == 0 || opts.sessions == 0 || opts.calls == 0 {
                bail!("--calls, --concurrency and --sessions must be at least 1");
            }
            let report = runtime(threads)?.block_on(probe::run(opts))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", probe::text(&report));
            }
        }
        "status" => {
            let mut f = Flags::parse(rest, &[])?;
            let url = f.required("url")?;
            let headers = f.all("header");
            let signer = Signer::from_flags(f.one("hmac-client"), f.one("hmac-secret-env"))?;
            let repeat: usize = f.parsed("repeat")?.unwrap_or(1);
            f.finish()?;
            let codes = runtime(1)?.block_on(probe::statuses(&url, &headers, signer, repeat.max(1)))?;
            let codes: Vec<String> = codes.iter().map(u16::to_string).collect();
            println!("{}", codes.join(" "));
        }
        "issuer" => {
            let mut f = Flags::parse(rest, &[])?;
            let opts = issuer::Opts {
                listen: f.required("listen")?,
                alg: issuer::parse_alg(&f.required("alg")?)?,
                sub: f.required("sub")?,
                aud: f.one("aud"),
                scope: f.one("scope"),
                permissions: f.one("permissions"),
                ttl_s: f.parsed("ttl")?.unwrap_or(86_400),
            };
            f.finish()?;
            runtime(1)?.block_on(issuer::run(opts))?;
        }
        "report" => {
            let mut f = Flags::parse(rest, &[])?;
            let opts = report::Opts {
                work: f.required("work")?.into(),
                targets: f
                    .required("targets")?
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
                out_dir: f.required("out-dir")?.into(),
                command: f.one("command").unwrap_or_default(),
                date: f.one("date").unwrap_or_default(),
                settings: f
                    .all("setting")
                    .iter()
                    .map(|s| {
                        s.split_once('=')
                            .map(|(k, v)| (k.to_owned(), v.to_owned()))
                            .context("--setting wants K=V")
                    })
                    .collect::<Result<_>>()?,
            };
            f.finish()?;
            report::run(&opts)?;
        }
        "quiet" => {
            let mut f = Flags::parse(rest, &[])?;
            let below: f64 = f.parsed("below")?.unwrap_or(0.2);
            let timeout = secs(f.parsed("timeout")?.unwrap_or(30.0))?;
            f.finish()?;
            let start = std::time::Instant::now();
            loop {
                let busy = stats::busy_cores(Duration::from_secs(1)).context("cannot read /proc/stat")?;
                if busy < below {
                    eprintln!("machine quiet: {busy:.2} cores busy");
                    break;
                }
                if start.elapsed() >= timeout {
                    eprintln!("machine still busy after {timeout:?}: {busy:.2} cores busy by other processes");
                    break;
                }
            }
        }
        "free-port" => {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            println!("{}", l.local_addr()?.port());
        }
        "-h" | "--help" | "help" => println!("{}", usage()),
        other => {
            eprintln!("unknown subcommand {other:?}\n{}", usage());
            return Ok(ExitCode::from(2));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)
}

fn secs(s: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(s).map_err(|_| anyhow::anyhow!("bad number of seconds: {s}"))
}

fn parse_cpu_pid(s: &str) -> Result<(String, u32)> {
    let (name, pid) = s.split_once('=').context("--cpu-pid/--cpu-tree want NAME=PID")?;
    Ok((name.to_owned(), pid.parse().with_context(|| format!("bad pid in {s}"))?))
}
