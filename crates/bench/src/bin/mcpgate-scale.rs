//! `mcpgate-scale`: the helper behind `bench/scale` (1M keys, 10k SSE sessions, rate-limiter
//! memory, policy size). Each subcommand measures one thing and writes one JSON object; the
//! script starts and stops the processes, and `report` writes `scale.json` and `scale.md`.

#[path = "../scale/mod.rs"]
mod scale;

/// The gateway's allocator, so memory measured here (key index, limiter) is what the gateway
/// would hold.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::{Context, Result};
use scale::args::Flags;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "usage:
  mcpgate-scale keys-create --store DB --count N --keys-out FILE [--keep K] [--out FILE]
  mcpgate-scale keys-lookup [--sizes 1000,1000000] [--lookups N] [--out FILE]
  mcpgate-scale reload-cost --store DB [--runs N] [--out FILE]
  mcpgate-scale wait-status --url URL [--header 'K: V']... [--method GET|POST] [--initialize 1]
                            [--want 200] [--timeout SECS] [--interval-ms MS] [--since-ns NS] [--out FILE]
  mcpgate-scale revoke-check --url URL --probe-header 'K: V' --revoked-header 'K: V' --pid PID [--plain-url URL]
                             --revoke-arg PROGRAM [--revoke-arg ARG]... [--idle SECS] [--tail SECS] [--timeout SECS]
                             [--probe-interval-ms MS] [--out FILE]
  mcpgate-scale limiter --principals N [--tool 0|1] [--out FILE]
  mcpgate-scale sse-upstream --listen ADDR [--beat SECS] [--threads N]
  mcpgate-scale sse --url URL --sessions N --gateway-pid PID [--upstream-pid PID] [--header 'K: V']...
                    [--warmup N] [--h2-conns N] [--concurrency N] [--settle SECS] [--hold SECS]
                    [--threads N] [--out FILE]
  mcpgate-scale proc --pid PID [--out FILE]
  mcpgate-scale report --dir DIR --out-dir DIR";

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    match run(&argv) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcpgate-scale: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn secs(v: f64) -> Result<Duration> {
    Duration::try_from_secs_f64(v).map_err(|_| anyhow::anyhow!("bad number of seconds: {v}"))
}

fn run(argv: &[String]) -> Result<()> {
    let Some((cmd, rest)) = argv.split_first() else {
        anyhow::bail!("{USAGE}");
    };
    let mut a = Flags::parse(rest, &[])?;
    let out: Option<PathBuf> = a.one("out").map(PathBuf::from);
    let out = out.as_deref();
    match cmd.as_str() {
        "keys-create" => {
            let store = PathBuf::from(a.required("store")?);
            let count = a.parsed("count")?.context("--count is required")?;
            let keep = a.or("keep", 3usize)?;
            let keys_out = PathBuf::from(a.required("keys-out")?);
            a.finish()?;
            let created = scale::keys::create(&store, count, keep)?;
            // One `KEY_ID KEY` line per kept key, for the script to read.
            let lines: String = created
                .keys
                .iter()
                .map(|k| format!("{} {}\n", k.key_id, k.key))
                .collect();
            std::fs::write(&keys_out, lines).with_context(|| format!("cannot write {}", keys_out.display()))?;
            scale::emit(&created, out)
        }
        "keys-lookup" => {
            let sizes: Vec<usize> = a
                .one("sizes")
                .unwrap_or_else(|| "1000,1000000".into())
                .split(',')
                .map(|s| s.trim().parse().map_err(|_| anyhow::anyhow!("bad --sizes entry {s:?}")))
                .collect::<Result<_>>()?;
            let lookups = a.or("lookups", 2_000_000usize)?;
            a.finish()?;
            scale::emit(&scale::keys::lookups(&sizes, lookups)?, out)
        }
        "reload-cost" => {
            let store = PathBuf::from(a.required("store")?);
            let runs = a.or("runs", 2usize)?;
            a.finish()?;
            scale::emit(&scale::keys::reload_cost(&store, runs)?, out)
        }
        "wait-status" => {
            let url = a.required("url")?;
            let headers = a.all("header");
            let method: http::Method = a
                .one("method")
                .unwrap_or_else(|| "GET".into())
                .parse()
                .map_err(|_| anyhow::anyhow!("bad --method"))?;
            let initialize = a.or("initialize", 0u8)? == 1;
            let want = http::StatusCode::from_u16(a.or("want", 200u16)?)?;
            let timeout = secs(a.or("timeout", 120.0)?)?;
            let interval = Duration::from_millis(a.or("interval-ms", 5u64)?);
            let since_ns = a.parsed("since-ns")?;
            a.finish()?;
            let o = scale::http::WaitOpts {
                target: scale::http::Target::parse(&url, &headers)?,
                method,
                body: if initialize {
                    bytes::Bytes::from_static(scale::http::INITIALIZE.as_bytes())
                } else {
                    bytes::Bytes::new()
                },
                want,
                timeout,
                interval,
                since_ns,
            };
            let waited = scale::runtime(1)?.block_on(scale::http::wait_status(o))?;
            scale::emit(&waited, out)
        }
        "revoke-check" => {
            let o = scale::revoke::Opts {
                url: a.required("url")?,
                probe_header: a.required("probe-header")?,
                plain_url: a.one("plain-url"),
                revoked_header: a.required("revoked-header")?,
                pid: a.parsed("pid")?.context("--pid is required")?,
                revoke_cmd: a.all("revoke-arg"),
                idle: secs(a.or("idle", 5.0)?)?,
                tail: secs(a.or("tail", 2.0)?)?,
                timeout: secs(a.or("timeout", 60.0)?)?,
                probe_interval: Duration::from_millis(a.or("probe-interval-ms", 10u64)?),
            };
            a.finish()?;
            let r = scale::runtime(1)?.block_on(scale::revoke::run(o))?;
            scale::emit(&r, out)
        }
        "limiter" => {
            let n = a.parsed("principals")?.context("--principals is required")?;
            let tool = a.or("tool", 0u8)? == 1;
            a.finish()?;
            scale::emit(&scale::limiter::measure(n, tool)?, out)
        }
        "sse-upstream" => {
            let listen = a.required("listen")?;
            let beat = secs(a.or("beat", 5.0)?)?;
            let threads = a.or("threads", 1usize)?;
            a.finish()?;
            scale::runtime(threads)?.block_on(scale::sse_upstream::run(&listen, beat))
        }
        "sse" => {
            let o = scale::sse::Opts {
                url: a.required("url")?,
                headers: a.all("header"),
                sessions: a.parsed("sessions")?.context("--sessions is required")?,
                warmup: a.or("warmup", 100usize)?,
                h2_conns: a.or("h2-conns", 0usize)?,
                concurrency: a.or("concurrency", 64usize)?,
                settle: secs(a.or("settle", 2.0)?)?,
                hold: secs(a.or("hold", 12.0)?)?,
                gateway_pid: a.parsed("gateway-pid")?.context("--gateway-pid is required")?,
                upstream_pid: a.parsed("upstream-pid")?,
            };
            let threads = a.or("threads", 1usize)?;
            a.finish()?;
            let r = scale::runtime(threads)?.block_on(scale::sse::run(o))?;
            scale::emit(&r, out)
        }
        "proc" => {
            let pid = a.parsed("pid")?.context("--pid is required")?;
            a.finish()?;
            scale::emit(&scale::proc_stat(Some(pid))?, out)
        }
        "report" => {
            let dir = PathBuf::from(a.required("dir")?);
            let out_dir = PathBuf::from(a.required("out-dir")?);
            a.finish()?;
            scale::report::run(&dir, &out_dir)
        }
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => anyhow::bail!("unknown subcommand {other:?}\n{USAGE}"),
    }
}
