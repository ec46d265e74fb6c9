//! Latency percentiles (sorted samples) and process CPU time from /proc.

use serde::Serialize;
use std::collections::BTreeMap;
use std::net::ToSocketAddrs;

#[derive(Serialize, Clone, Debug, Default)]
pub struct Latency {
    pub samples: usize,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

/// Percentiles of latencies given in nanoseconds (sorts `ns` in place; nearest-rank).
pub fn latency(ns: &mut [u64]) -> Latency {
    if ns.is_empty() {
        return Latency::default();
    }
    ns.sort_unstable();
    let at = |q: f64| {
        let rank = ((q * ns.len() as f64).ceil() as usize).clamp(1, ns.len());
        us(ns[rank - 1])
    };
    let sum: u128 = ns.iter().map(|&v| u128::from(v)).sum();
    Latency {
        samples: ns.len(),
        mean_us: round1(sum as f64 / ns.len() as f64 / 1000.0),
        p50_us: at(0.50),
        p90_us: at(0.90),
        p99_us: at(0.99),
        p999_us: at(0.999),
        max_us: at(1.0),
    }
}

fn us(ns: u64) -> f64 {
    round1(ns as f64 / 1000.0)
}

pub fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// utime + stime of a process (`None`: this one) in microseconds, from /proc/PID/stat.
/// Linux reports them in USER_HZ ticks, which is 100 per second on every supported architecture.
pub fn cpu_us(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the `(comm)`: state is field 3, utime field 14, stime field 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) * 10_000)
}

/// utime + stime (µs) of `root` and every process descending from it that is alive now (e.g. a
/// PostgreSQL postmaster and its backends), from /proc. `None` when `root` is gone.
pub fn cpu_tree_us(root: u32) -> Option<u64> {
    // (pid, ppid, utime+stime ticks) of every process.
    let mut procs: Vec<(u32, u32, u64)> = Vec::new();
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else { continue };
        // After `(comm)`: state, ppid, ... utime (11th), stime (12th).
        let f: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let field = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
        if let (Some(ppid), Some(u), Some(s)) = (field(1), field(11), field(12)) {
            procs.push((pid, u32::try_from(ppid).unwrap_or(0), u + s));
        }
    }
    if !procs.iter().any(|p| p.0 == root) {
        return None;
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(procs.iter().filter(|p| p.1 == parent).map(|p| p.0));
        i += 1;
    }
    let ticks: u64 = procs.iter().filter(|p| tree.contains(&p.0)).map(|p| p.2).sum();
    Some(ticks * 10_000)
}

/// `INFO commandstats` of the Redis at `addr` (host:port): calls and microseconds per command
/// (lower-case names, e.g. `evalsha`), read over one short-lived connection (plain RESP, no
/// authentication). The `INFO` itself is counted by Redis; callers leave `info` out.
pub fn redis_commandstats(addr: &str) -> Option<BTreeMap<String, (u64, u64)>> {
    use std::io::{BufRead, BufReader, Read, Write};
    let timeout = std::time::Duration::from_secs(2);
    let sock = addr.to_socket_addrs().ok()?.next()?;
    let mut conn = std::net::TcpStream::connect_timeout(&sock, timeout).ok()?;
    conn.set_read_timeout(Some(timeout)).ok()?;
    conn.write_all(b"*2\r\n$4\r\nINFO\r\n$12\r\ncommandstats\r\n").ok()?;
    let mut reader = BufReader::new(conn);
    let mut head = String::new();
    reader.read_line(&mut head).ok()?;
    let len: usize = head.trim_end().strip_prefix('$')?.parse().ok()?;
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).ok()?;
    let mut out = BTreeMap::new();
    for line in String::from_utf8_lossy(&body).lines() {
        // cmdstat_evalsha:calls=12,usec=345,usec_per_call=28.75,rejected_calls=0,failed_calls=0
        let Some((name, rest)) = line.strip_prefix("cmdstat_").and_then(|l| l.split_once(':')) else {
            continue;
        };
        let get = |key: &str| {
            rest.split(',')
                .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
                .and_then(|v| v.parse::<u64>().ok())
        };
        let Some(calls) = get("calls") else { continue };
        out.insert(name.to_lowercase(), (calls, get("usec").unwrap_or(0)));
    }
    Some(out)
}

/// Machine-wide CPU time from the first line of /proc/stat, in microseconds.
#[derive(Clone, Copy)]
pub struct SystemCpu {
    /// Time in processes: user, nice, system (and steal).
    pub tasks_us: u64,
    /// Time in interrupt context (irq + softirq), which the kernel charges to no process: on
    /// loopback it is mostly the benchmark's own TCP traffic.
    pub irq_us: u64,
}

pub fn system_cpu() -> Option<SystemCpu> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let f: Vec<u64> = line.split_whitespace().filter_map(|v| v.parse().ok()).collect();
    let sum = |idx: &[usize]| idx.iter().filter_map(|&i| f.get(i)).sum::<u64>() * 10_000;
    // user nice system idle iowait irq softirq steal ...
    Some(SystemCpu {
        tasks_us: sum(&[0, 1, 2, 7]),
        irq_us: sum(&[5, 6]),
    })
}

/// Cores kept busy (processes and interrupts) over `window`, measured by sleeping through it.
pub fn busy_cores(window: std::time::Duration) -> Option<f64> {
    let a = system_cpu()?;
    std::thread::sleep(window);
    let b = system_cpu()?;
    let used = (b.tasks_us + b.irq_us).saturating_sub(a.tasks_us + a.irq_us);
    Some(used as f64 / 1e6 / window.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_nearest_rank() {
        let mut v: Vec<u64> = (1..=100).map(|i| i * 1000).collect();
        let l = latency(&mut v);
        assert_eq!(l.p50_us, 50.0);
        assert_eq!(l.p90_us, 90.0);
        assert_eq!(l.p99_us, 99.0);
        assert_eq!(l.max_us, 100.0);
        assert_eq!(l.samples, 100);
    }

    #[test]
    fn own_cpu_time_is_readable() {
        assert!(cpu_us(None).is_some());
        assert!(system_cpu().is_some());
        let me = std::process::id();
        let alone = cpu_us(Some(me)).unwrap_or(u64::MAX);
        assert!(cpu_tree_us(me).is_some_and(|tree| tree >= alone));
    }
}
