//! Latency percentiles (sorted samples) and process CPU time from /proc.

use serde::Serialize;

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
    }
}
