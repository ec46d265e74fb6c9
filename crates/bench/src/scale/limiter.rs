//! Memory of the in-process rate limiter (`mcpgate_core::ratelimit::LocalLimiter`) per active
//! principal: N distinct principals each send one request, and this process's RSS growth is
//! divided by N. The process uses the gateway's allocator (mimalloc).

use anyhow::{Result, ensure};
use mcpgate_core::principal::Limits;
use mcpgate_core::ratelimit::{LocalLimiter, Now, RateLimiter};
use serde::Serialize;
use std::hint::black_box;
use std::time::Instant;

#[derive(Serialize)]
pub struct LimiterMemory {
    pub principals: usize,
    /// `own` (per-minute, per-hour and daily limits of the key) or `own+tool` (also one per-tool
    /// limit, as `[[limits.tools]]` adds).
    pub variant: String,
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    pub bytes_per_principal: f64,
    /// Mean cost of `check` while the map grows to N, ns.
    pub check_insert_ns: f64,
    /// Mean cost of `check` for principals already present (second pass), ns.
    pub check_hit_ns: f64,
}

/// A principal id as the gateway forms it for a generated key: `key:` and a 12-hex-digit key id.
/// Spread over the id space by a multiplicative hash so the ids look random.
fn principal(i: usize) -> String {
    let x = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 16;
    format!("key:{x:012x}")
}

pub fn measure(n: usize, with_tool: bool) -> Result<LimiterMemory> {
    ensure!(n >= 1, "--principals must be at least 1");
    let limits = Limits {
        per_minute: Some(1_000),
        per_hour: Some(10_000),
        per_day: Some(100_000),
    };
    let tool_limits = Limits {
        per_minute: Some(100),
        ..Limits::default()
    };
    let now = Now {
        mono_us: 1_000_000,
        unix_s: 1_700_000_000,
    };
    let tool = with_tool.then_some(("echo", &tool_limits));
    let limiter = LocalLimiter::default();
    // Touch the code paths and the allocator once before the baseline.
    let _ = limiter.check("warmup", &limits, tool, now);
    let rss_before = super::self_rss_kib();
    let t = Instant::now();
    let mut refused = 0usize;
    for i in 0..n {
        if limiter.check(&principal(i), &limits, tool, now).is_err() {
            refused += 1;
        }
    }
    let check_insert_ns = t.elapsed().as_nanos() as f64 / n as f64;
    let rss_after = super::self_rss_kib();
    ensure!(refused == 0, "{refused} first requests were refused");
    let t = Instant::now();
    for i in 0..n {
        black_box(limiter.check(&principal(i), &limits, tool, now).is_ok());
    }
    let check_hit_ns = t.elapsed().as_nanos() as f64 / n as f64;
    black_box(&limiter);
    Ok(LimiterMemory {
        principals: n,
        variant: if with_tool { "own+tool" } else { "own" }.into(),
        rss_before_kib: rss_before,
        rss_after_kib: rss_after,
        bytes_per_principal: super::round1((rss_after.saturating_sub(rss_before) * 1024) as f64 / n as f64),
        check_insert_ns: super::round1(check_insert_ns),
        check_hit_ns: super::round1(check_hit_ns),
    })
}
