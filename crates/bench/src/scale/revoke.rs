//! `revoke-check`: does a revoke reach a running gateway within about a second, and what does the
//! reload it triggers cost? Two windows of equal length on the running gateway: an idle one, then
//! one in which `mcpgate keys revoke` runs. In both, a probe sends an authenticated request with
//! another (valid) key every few milliseconds, to see whether requests stall during a reload.

use super::ProcStat;
use super::http::{Target, connect, exchange};
use anyhow::{Context, Result, bail, ensure};
use bytes::Bytes;
use http::{Method, StatusCode};
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub struct Opts {
    /// An authenticated GET endpoint of the gateway (e.g. `/mcp/status`).
    pub url: String,
    /// `X-API-Key: <valid key>` for the probe.
    pub probe_header: String,
    /// An endpoint that needs no key (e.g. `/healthz`), probed alongside: a stall on both is the
    /// runtime's, a stall only on the authenticated one is the key registry's.
    pub plain_url: Option<String>,
    /// `X-API-Key: <key to revoke>`.
    pub revoked_header: String,
    pub pid: u32,
    /// The revoke command line (program and arguments).
    pub revoke_cmd: Vec<String>,
    /// Length of the idle window (the baseline CPU rate).
    pub idle: Duration,
    /// How long the revoke window goes on after the first 401 (the old index is freed, the
    /// watcher settles).
    pub tail: Duration,
    /// Give up when the revoked key is still accepted after this long.
    pub timeout: Duration,
    pub probe_interval: Duration,
}

#[derive(Serialize, Default, Clone)]
pub struct Probe {
    pub requests: usize,
    pub errors: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// When the slowest request was sent, ms from the start of the window (the revoke command
    /// starts the revoke window).
    pub max_sent_at_ms: f64,
}

#[derive(Serialize)]
pub struct Report {
    pub idle_window_s: f64,
    pub revoke_window_s: f64,
    /// From starting `mcpgate keys revoke` to the first 401 for the revoked key.
    pub revoke_to_refused_ms: f64,
    /// How long the revoke command itself took (process start, store write).
    pub revoke_command_ms: f64,
    /// Gateway CPU in the idle window and in the window with the revoke; the second minus the
    /// first scaled to the second's length is the reload's cost.
    pub idle_window_cpu_ms: f64,
    pub revoke_window_cpu_ms: f64,
    pub reload_cpu_ms: f64,
    pub before: ProcStat,
    pub after: ProcStat,
    pub probe_idle: Probe,
    pub probe_during_reload: Probe,
    pub plain_probe_idle: Option<Probe>,
    pub plain_probe_during_reload: Option<Probe>,
}

async fn status(t: &Target) -> Result<StatusCode> {
    let mut s = connect(t).await?;
    let (st, _, _) = exchange(&mut s, t.request(Method::GET, "application/json", None, Bytes::new())?).await?;
    Ok(st)
}

/// Sends a request every `interval` on one keep-alive connection (a new one after an error)
/// until `stop`; returns each request's latency in ms, and the number of failures.
/// Latencies as (ms since `origin` when sent, ms taken).
async fn probe(t: Target, interval: Duration, stop: Arc<AtomicBool>, origin: Instant) -> (Vec<(f64, f64)>, usize) {
    let mut lat = Vec::new();
    let mut errors = 0;
    let mut conn = None;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let started = Instant::now();
        let result = async {
            if conn.is_none() {
                conn = Some(connect(&t).await?);
            }
            let s = conn.as_mut().context("no connection")?;
            let req = t.request(Method::GET, "application/json", None, Bytes::new())?;
            exchange(s, req).await
        }
        .await;
        match result {
            Ok((StatusCode::OK, _, _)) => lat.push((
                (started - origin).as_secs_f64() * 1e3,
                started.elapsed().as_secs_f64() * 1e3,
            )),
            _ => {
                errors += 1;
                conn = None;
            }
        }
    }
    (lat, errors)
}

fn summarize(timed: Vec<(f64, f64)>, errors: usize) -> Probe {
    let worst = timed.iter().copied().max_by(|a, b| a.1.total_cmp(&b.1));
    let mut lat: Vec<f64> = timed.iter().map(|t| t.1).collect();
    if lat.is_empty() {
        return Probe {
            errors,
            ..Probe::default()
        };
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| {
        let rank = ((q * lat.len() as f64).ceil() as usize).clamp(1, lat.len());
        (lat[rank - 1] * 100.0).round() / 100.0
    };
    Probe {
        requests: lat.len() + errors,
        errors,
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        max_ms: at(1.0),
        max_sent_at_ms: worst.map_or(0.0, |w| (w.0 * 10.0).round() / 10.0),
    }
}

/// Runs `during`, then waits `after`, with the probe running; returns the gateway's CPU time in
/// the window, the window's length (s), the probe's summary and what `during` returned.
struct Window {
    cpu_ms: f64,
    seconds: f64,
    probe: Probe,
    plain: Option<Probe>,
    inner: (f64, f64),
}

async fn window<F: std::future::Future<Output = Result<(f64, f64)>>>(
    o: &Opts,
    probe_target: &Target,
    plain_target: Option<&Target>,
    during: F,
    after: Duration,
) -> Result<Window> {
    let stop = Arc::new(AtomicBool::new(false));
    let cpu0 = super::proc_stat(Some(o.pid))?.cpu_ms;
    let started = Instant::now();
    let handle = tokio::spawn(probe(probe_target.clone(), o.probe_interval, stop.clone(), started));
    let plain = plain_target.map(|t| tokio::spawn(probe(t.clone(), o.probe_interval, stop.clone(), started)));
    let inner = during.await?;
    tokio::time::sleep(after).await;
    let cpu1 = super::proc_stat(Some(o.pid))?.cpu_ms;
    let length = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let (lat, errors) = handle.await.context("probe task")?;
    let plain = match plain {
        Some(h) => {
            let (lat, errors) = h.await.context("probe task")?;
            Some(summarize(lat, errors))
        }
        None => None,
    };
    Ok(Window {
        cpu_ms: cpu1 - cpu0,
        seconds: length,
        probe: summarize(lat, errors),
        plain,
        inner,
    })
}

pub async fn run(o: Opts) -> Result<Report> {
    let probe_target = Target::parse(&o.url, std::slice::from_ref(&o.probe_header))?;
    let revoked = Target::parse(&o.url, std::slice::from_ref(&o.revoked_header))?;
    ensure!(
        status(&revoked).await? == StatusCode::OK,
        "the key to revoke is not accepted before the revoke"
    );
    ensure!(
        !o.revoke_cmd.is_empty(),
        "no --revoke-arg: give the revoke command line"
    );
    let before = super::proc_stat(Some(o.pid))?;
    let plain_target = o.plain_url.as_deref().map(|u| Target::parse(u, &[])).transpose()?;
    let plain = plain_target.as_ref();
    let idle = window(&o, &probe_target, plain, async { Ok((0.0, 0.0)) }, o.idle).await?;
    let revoke = window(
        &o,
        &probe_target,
        plain,
        async {
            let t0 = Instant::now();
            let out = tokio::process::Command::new(&o.revoke_cmd[0])
                .args(&o.revoke_cmd[1..])
                .output()
                .await
                .context("cannot run the revoke command")?;
            let cmd_ms = t0.elapsed().as_secs_f64() * 1e3;
            if !out.status.success() {
                bail!("revoke command failed: {}", String::from_utf8_lossy(&out.stderr).trim());
            }
            loop {
                if status(&revoked).await? == StatusCode::UNAUTHORIZED {
                    break;
                }
                if t0.elapsed() > o.timeout {
                    bail!("the revoked key was still accepted after {:?}", t0.elapsed());
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Ok((t0.elapsed().as_secs_f64() * 1e3, cmd_ms))
        },
        o.tail,
    )
    .await?;
    let after = super::proc_stat(Some(o.pid))?;
    let (idle_cpu, idle_s, revoke_cpu, revoke_s) = (idle.cpu_ms, idle.seconds, revoke.cpu_ms, revoke.seconds);
    let (refused_ms, cmd_ms) = revoke.inner;
    Ok(Report {
        idle_window_s: super::round1(idle_s),
        revoke_window_s: super::round1(revoke_s),
        revoke_to_refused_ms: super::round1(refused_ms),
        revoke_command_ms: super::round1(cmd_ms),
        idle_window_cpu_ms: idle_cpu,
        revoke_window_cpu_ms: revoke_cpu,
        reload_cpu_ms: super::round1(revoke_cpu - idle_cpu * revoke_s / idle_s.max(0.001)),
        before,
        after,
        probe_idle: idle.probe,
        probe_during_reload: revoke.probe,
        plain_probe_idle: idle.plain,
        plain_probe_during_reload: revoke.plain,
    })
}
