//! `load`: N connection tasks, each with its own keep-alive HTTP/1.1 connection and MCP session,
//! looping `tools/call echo` with a unique id and text per request and checking every response.
//!
//! Closed loop (as fast as responses come back) by default; with `--rate R`, an open loop paced
//! at R req/s in total. Open-loop latency is corrected for coordinated omission: a request that
//! could not go out on time (its connection was still busy) is timed from when it was due.

use crate::client::{Conn, Outcome, Signer, Target, check_echo};
use crate::stats::{self, Latency};
use anyhow::Result;
use bytes::Bytes;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::Barrier;

pub struct Opts {
    pub url: String,
    pub connections: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub rate: Option<f64>,
    pub headers: Vec<String>,
    /// Sign every request (`[auth.hmac]` client).
    pub signer: Option<Signer>,
    pub payload: usize,
    pub timeout: Duration,
    pub cpu_pids: Vec<(String, u32)>,
    /// CPU of a process and all its descendants (e.g. PostgreSQL's postmaster and backends).
    pub cpu_trees: Vec<(String, u32)>,
    /// A Redis (host:port) whose `INFO commandstats` is read at the edges of the window.
    pub redis: Option<String>,
}

#[derive(Serialize)]
pub struct Report {
    pub url: String,
    pub mode: &'static str,
    pub connections: usize,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub target_rate: Option<f64>,
    /// Requests started in the measured window (ok + errors + crossed).
    pub requests: u64,
    pub ok: u64,
    pub errors: u64,
    pub crossed: u64,
    /// Failed `initialize` handshakes (not in `requests`).
    pub init_errors: u64,
    /// Successful requests per second in the measured window.
    pub rps: f64,
    pub latency: Latency,
    /// CPU time (utime+stime) in the measured window per process: `loadgen` is this process.
    pub cpu: BTreeMap<String, Cpu>,
    /// Cores kept busy in the window by other processes on the machine (machine-wide process
    /// time minus the processes above): well above 0, the numbers are disturbed by other work.
    pub background_cores: Option<f64>,
    /// Cores spent in interrupt context (irq + softirq) in the window: mostly the loopback TCP
    /// traffic of the benchmark itself, which no process is charged for.
    pub irq_cores: Option<f64>,
    /// Commands the Redis given with `--redis` ran in the measured window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisWindow>,
    pub error_samples: Vec<String>,
}

/// `INFO commandstats` differences over the measured window (the `INFO` calls left out).
#[derive(Serialize, Clone)]
pub struct RedisWindow {
    /// Calls per command in the window.
    pub calls: BTreeMap<String, u64>,
    /// Calls per successful request, per command, and in all. Redis counts the commands a script
    /// runs (`redis.call`) as calls of their own, besides the script's `EVALSHA`.
    pub per_req: BTreeMap<String, f64>,
    pub calls_per_req: Option<f64>,
    /// Scripts (`EVAL`, `EVALSHA`, `FCALL` and their `_RO` forms) per successful request: each is
    /// one round trip the client made.
    pub scripts_per_req: Option<f64>,
    /// Time Redis spent executing commands (commandstats `usec`) per successful request.
    pub exec_us_per_req: Option<f64>,
}

#[derive(Serialize, Clone)]
pub struct Cpu {
    pub pid: Option<u32>,
    pub cpu_ms: f64,
    /// `None` when no request succeeded.
    pub us_per_req: Option<f64>,
    /// Average cores busy during the window.
    pub cores: f64,
}

#[derive(Default)]
struct Tally {
    ok: u64,
    errors: u64,
    crossed: u64,
    init_errors: u64,
    lat_ns: Vec<u64>,
    samples: Vec<String>,
}

impl Tally {
    fn note(&mut self, msg: String) {
        if self.samples.len() < 3 {
            self.samples.push(msg);
        }
    }
}

struct Shared {
    target: Arc<Target>,
    barrier: Barrier,
    t0: OnceLock<Instant>,
    warmup: Duration,
    duration: Duration,
    /// Per-connection interval between sends (open loop).
    interval: Option<Duration>,
    connections: usize,
    pad: String,
    timeout: Duration,
}

pub async fn run(o: Opts) -> Result<Report> {
    // Signed, a body may be sent only once: texts carry this run's nonce, so two runs started
    // within the same second never send the same bytes with the same timestamp.
    let tag = if o.signer.is_some() {
        format!("-{}", crate::client::nonce())
    } else {
        String::new()
    };
    let target = Target::parse(&o.url, &o.headers, o.signer)?;
    let interval = o.rate.map(|r| Duration::from_secs_f64(o.connections as f64 / r));
    let shared = Arc::new(Shared {
        target,
        barrier: Barrier::new(o.connections + 1),
        t0: OnceLock::new(),
        warmup: o.warmup,
        duration: o.duration,
        interval,
        connections: o.connections,
        pad: tag + &"x".repeat(o.payload),
        timeout: o.timeout,
    });
    let tasks: Vec<_> = (0..o.connections)
        .map(|i| tokio::spawn(conn_task(shared.clone(), i as u64)))
        .collect();

    // CPU sampling at the edges of the measured window.
    shared.barrier.wait().await;
    let t0 = *shared.t0.get_or_init(Instant::now);
    let (t_warm, t_end) = (t0 + o.warmup, t0 + o.warmup + o.duration);
    tokio::time::sleep_until(t_warm.into()).await;
    let read = |pids: &[(String, u32)], trees: &[(String, u32)]| {
        let mut m: Vec<(String, Option<u32>, Option<u64>)> = vec![("loadgen".into(), None, stats::cpu_us(None))];
        m.extend(pids.iter().map(|(n, p)| (n.clone(), Some(*p), stats::cpu_us(Some(*p)))));
        m.extend(trees.iter().map(|(n, p)| (n.clone(), Some(*p), stats::cpu_tree_us(*p))));
        (Instant::now(), m, stats::system_cpu())
    };
    let redis0 = o.redis.as_deref().and_then(stats::redis_commandstats);
    let (w0, before, sys0) = read(&o.cpu_pids, &o.cpu_trees);
    tokio::time::sleep_until(t_end.into()).await;
    let (w1, after, sys1) = read(&o.cpu_pids, &o.cpu_trees);
    let redis1 = o.redis.as_deref().and_then(stats::redis_commandstats);
    let wall = (w1 - w0).as_secs_f64();

    let mut total = Tally::default();
    for t in tasks {
        let mut r = t.await?;
        total.ok += r.ok;
        total.errors += r.errors;
        total.crossed += r.crossed;
        total.init_errors += r.init_errors;
        total.lat_ns.append(&mut r.lat_ns);
        for s in r.samples {
            total.note(s);
        }
    }
    let secs = o.duration.as_secs_f64();
    let mut cpu = BTreeMap::new();
    let mut ours = 0u64;
    let mut seen: Vec<Option<u32>> = Vec::new();
    for ((name, pid, b), (_, _, a)) in before.into_iter().zip(after) {
        if let (Some(b), Some(a)) = (b, a) {
            if !seen.contains(&pid) {
                seen.push(pid);
                ours += a.saturating_sub(b);
            }
            let used = a.saturating_sub(b) as f64;
            cpu.insert(
                name,
                Cpu {
                    pid,
                    cpu_ms: stats::round1(used / 1000.0),
                    us_per_req: (total.ok > 0).then(|| stats::round1(used / total.ok as f64)),
                    cores: (used / 1e6 / wall * 100.0).round() / 100.0,
                },
            );
        }
    }
    let cores = |us: u64| (us as f64 / 1e6 / wall * 100.0).round() / 100.0;
    let redis = match (redis0, redis1) {
        (Some(a), Some(b)) => Some(redis_window(&a, &b, total.ok)),
        _ => None,
    };
    let (background_cores, irq_cores) = match (sys0, sys1) {
        (Some(a), Some(b)) => (
            Some(cores(b.tasks_us.saturating_sub(a.tasks_us).saturating_sub(ours))),
            Some(cores(b.irq_us.saturating_sub(a.irq_us))),
        ),
        _ => (None, None),
    };
    Ok(Report {
        redis,
        background_cores,
        irq_cores,
        url: o.url,
        mode: if o.rate.is_some() { "open" } else { "closed" },
        connections: o.connections,
        duration_s: secs,
        warmup_s: o.warmup.as_secs_f64(),
        target_rate: o.rate,
        requests: total.ok + total.errors + total.crossed,
        ok: total.ok,
        errors: total.errors,
        crossed: total.crossed,
        init_errors: total.init_errors,
        rps: stats::round1(total.ok as f64 / secs),
        latency: stats::latency(&mut total.lat_ns),
        cpu,
        error_samples: total.samples,
    })
}

fn redis_window(a: &BTreeMap<String, (u64, u64)>, b: &BTreeMap<String, (u64, u64)>, ok: u64) -> RedisWindow {
    let per = |n: u64| (ok > 0).then(|| (n as f64 / ok as f64 * 1000.0).round() / 1000.0);
    let mut calls = BTreeMap::new();
    let mut usec = 0;
    for (name, &(c1, u1)) in b {
        if name == "info" {
            continue;
        }
        let (c0, u0) = a.get(name).copied().unwrap_or((0, 0));
        let n = c1.saturating_sub(c0);
        if n > 0 {
            calls.insert(name.clone(), n);
            usec += u1.saturating_sub(u0);
        }
    }
    let total: u64 = calls.values().sum();
    let scripts: u64 = calls
        .iter()
        .filter(|(k, _)| ["eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro"].contains(&k.as_str()))
        .map(|(_, n)| n)
        .sum();
    RedisWindow {
        scripts_per_req: per(scripts),
        per_req: calls.iter().filter_map(|(k, &n)| Some((k.clone(), per(n)?))).collect(),
        calls,
        calls_per_req: per(total),
        exec_us_per_req: (ok > 0).then(|| stats::round1(usec as f64 / ok as f64)),
    }
}

/// One `initialize` handshake, bounded by `timeout`; a failed or hung one counts in `init_errors`.
async fn init(conn: &mut Conn, id: u64, tally: &mut Tally, timeout: Duration) -> bool {
    let failure = match tokio::time::timeout(timeout, conn.initialize(&format!("mcpgate-bench-{id}"))).await {
        Ok(Ok(())) => return true,
        Ok(Err(e)) => format!("{e:#}"),
        Err(_) => format!("initialize timed out after {timeout:?}"),
    };
    tally.init_errors += 1;
    tally.note(failure);
    conn.reset();
    false
}

async fn conn_task(s: Arc<Shared>, idx: u64) -> Tally {
    let mut tally = Tally::default();
    let expected = s.warmup.as_secs_f64() + s.duration.as_secs_f64();
    let per_conn = match s.interval {
        Some(i) => s.duration.as_secs_f64() / i.as_secs_f64(),
        None => expected * 40_000.0 / s.connections as f64,
    };
    tally.lat_ns.reserve((per_conn as usize + 16).min(4_000_000));
    let mut conn = Conn::new(s.target.clone());
    let mut ready = false;
    for _ in 0..3 {
        if init(&mut conn, idx, &mut tally, s.timeout).await {
            ready = true;
            break;
        }
    }
    s.barrier.wait().await;
    let t0 = *s.t0.get_or_init(Instant::now);
    let (t_warm, t_end) = (t0 + s.warmup, t0 + s.warmup + s.duration);
    // Open loop: stagger the connections evenly over one interval.
    let mut due = s.interval.map(|i| t0 + i.mul_f64(idx as f64 / s.connections as f64));
    let mut seq: u64 = 0;
    loop {
        let now = Instant::now();
        let start = match (&mut due, s.interval) {
            (Some(d), Some(i)) => {
                let this = *d;
                *d += i;
                if this >= t_end {
                    break;
                }
                if now < this {
                    tokio::time::sleep_until(this.into()).await;
                    Instant::now()
                } else {
                    // Late: the previous response came after this one was due.
                    this
                }
            }
            _ => {
                if now >= t_end {
                    break;
                }
                now
            }
        };
        if !ready {
            ready = init(&mut conn, idx, &mut tally, s.timeout).await;
            if !ready {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        }
        seq += 1;
        let id = (idx << 32) | seq;
        let text = format!("c{idx}-r{seq}{}", s.pad);
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"{text}"}}}}}}"#
        );
        let res = tokio::time::timeout(s.timeout, conn.post(Bytes::from(body))).await;
        let done = Instant::now();
        let measured = start >= t_warm;
        let outcome = match res {
            Ok(Ok(reply)) => {
                if reply.status == http::StatusCode::NOT_FOUND {
                    ready = false; // session gone: initialize again
                }
                check_echo(&reply, &id.to_string(), &text)
            }
            Ok(Err(e)) => {
                conn.reset();
                tokio::time::sleep(Duration::from_millis(5)).await;
                Outcome::Error(format!("{e:#}"))
            }
            Err(_) => {
                conn.reset();
                Outcome::Error(format!("timeout after {:?}", s.timeout))
            }
        };
        if !measured {
            continue;
        }
        match outcome {
            Outcome::Ok => {
                tally.ok += 1;
                tally.lat_ns.push((done - start).as_nanos() as u64);
            }
            Outcome::Crossed(m) => {
                tally.crossed += 1;
                tally.note(format!("crossed: {m}"));
            }
            Outcome::Error(m) => {
                tally.errors += 1;
                tally.note(m);
            }
        }
    }
    conn.close_session().await;
    tally
}

pub fn text(r: &Report) -> String {
    let mut s = String::new();
    let rate = r
        .target_rate
        .map_or(String::from("closed loop"), |x| format!("open loop at {x} req/s"));
    let _ = writeln!(
        s,
        "{} — {} connections, {}, {} s (+{} s warmup)",
        r.url, r.connections, rate, r.duration_s, r.warmup_s
    );
    let _ = writeln!(
        s,
        "requests {}  ok {}  errors {}  crossed {}  init errors {}",
        r.requests, r.ok, r.errors, r.crossed, r.init_errors
    );
    let _ = writeln!(s, "throughput {:.1} req/s", r.rps);
    let l = &r.latency;
    let _ = writeln!(
        s,
        "latency µs  p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  mean {}",
        l.p50_us, l.p90_us, l.p99_us, l.p999_us, l.max_us, l.mean_us
    );
    for (name, c) in &r.cpu {
        let per = c.us_per_req.map_or("—".to_owned(), |v| v.to_string());
        let _ = writeln!(s, "cpu {name}: {} ms, {per} µs/req, {} cores", c.cpu_ms, c.cores);
    }
    if let Some(b) = r.background_cores {
        let _ = writeln!(s, "cpu of other processes on the machine: {b} cores");
    }
    if let Some(b) = r.irq_cores {
        let _ = writeln!(s, "cpu in interrupt context (loopback TCP): {b} cores");
    }
    if let Some(w) = &r.redis {
        let per: Vec<String> = w.per_req.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(
            s,
            "redis scripts per request: {}; commands per request, those scripts run included: {} ({}); \
             executing them: {} µs/req",
            w.scripts_per_req.map_or("—".to_owned(), |v| v.to_string()),
            w.calls_per_req.map_or("—".to_owned(), |v| v.to_string()),
            per.join(", "),
            w.exec_us_per_req.map_or("—".to_owned(), |v| v.to_string())
        );
    }
    for e in &r.error_samples {
        let _ = writeln!(s, "sample error: {e}");
    }
    s
}
