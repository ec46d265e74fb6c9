//! `mcpgate-scale`: the measurements behind `bench/scale` that a shell script cannot make itself.
//! Every subcommand prints (or writes) one JSON object; `report` turns the collected objects into
//! `scale.json` and `scale.md`.

/// The same flag parser as `mcpgate-bench`.
#[path = "../args.rs"]
pub mod args;
pub mod http;
pub mod keys;
pub mod limiter;
pub mod report;
pub mod revoke;
pub mod sse;
pub mod sse_upstream;

use anyhow::{Context, Result};
use serde::Serialize;
use std::path::Path;

/// What /proc says about one process: resident memory now and at its peak, CPU time, threads and
/// open file descriptors.
#[derive(Serialize, Clone, Debug, Default)]
pub struct ProcStat {
    pub pid: u32,
    pub rss_kib: u64,
    pub hwm_kib: u64,
    pub cpu_ms: f64,
    pub threads: u64,
    pub fds: u64,
}

/// `pid` `None`: this process.
pub fn proc_stat(pid: Option<u32>) -> Result<ProcStat> {
    let dir = match pid {
        Some(p) => format!("/proc/{p}"),
        None => "/proc/self".to_owned(),
    };
    let status =
        std::fs::read_to_string(format!("{dir}/status")).with_context(|| format!("cannot read {dir}/status"))?;
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let stat = std::fs::read_to_string(format!("{dir}/stat")).with_context(|| format!("cannot read {dir}/stat"))?;
    // Fields after `(comm)`: utime is field 14 and stime field 15 (USER_HZ = 100 ticks per second).
    let rest = stat.rfind(')').map_or("", |i| &stat[i + 1..]);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let fds = std::fs::read_dir(format!("{dir}/fd"))
        .map(|d| d.count() as u64)
        .unwrap_or(0);
    let own_pid = match pid {
        Some(p) => p,
        None => std::process::id(),
    };
    Ok(ProcStat {
        pid: own_pid,
        rss_kib: field("VmRSS:"),
        hwm_kib: field("VmHWM:"),
        cpu_ms: ((tick(11) + tick(12)) * 10) as f64,
        threads: field("Threads:"),
        fds,
    })
}

/// Resident memory of this process, KiB.
pub fn self_rss_kib() -> u64 {
    proc_stat(None).map_or(0, |s| s.rss_kib)
}

/// Writes `value` as pretty JSON to `out`, or to stdout when `out` is `None`.
pub fn emit<T: Serialize>(value: &T, out: Option<&Path>) -> Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    match out {
        Some(p) => std::fs::write(p, text + "\n").with_context(|| format!("cannot write {}", p.display())),
        None => {
            println!("{text}");
            Ok(())
        }
    }
}

pub fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

pub use args::runtime;

/// Nanoseconds since the Unix epoch (what `date +%s%N` prints), for spans that start in the script.
pub fn epoch_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}
