//! Rate limits and quotas, exact under concurrency. Per-minute and per-hour limits are GCRA
//! (a burst of the full limit, then a steady rate); the daily quota is a counter per UTC day.
//! All windows of one principal — its own and its per-tool ones — live under one lock, and a
//! request is counted only when every window admits it.

use crate::principal::Limits;
use std::collections::HashMap;
use std::sync::Mutex;

/// Time in, as plain numbers: microseconds on a monotonic clock and Unix seconds for day edges.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub mono_us: i64,
    pub unix_s: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limited {
    /// `per-minute`, `per-hour` or `daily quota`.
    pub window: &'static str,
    /// `None` for the principal's own limit, else the tool whose limit it is.
    pub tool: Option<String>,
    pub limit: u32,
    pub retry_after_s: u64,
}

/// What is left in each window, for `whoami`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Remaining {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_minute: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_hour: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_day: Option<u32>,
}

/// Limits behind a trait so a shared backend (Redis) can enforce one limit across replicas.
pub trait RateLimiter: Send + Sync {
    /// Counts one request of `principal` (and of `tool`, with its limits) if every window admits it.
    fn check(&self, principal: &str, limits: &Limits, tool: Option<(&str, &Limits)>, now: Now) -> Result<(), Limited>;
    fn remaining(&self, principal: &str, limits: &Limits, now: Now) -> Remaining;
}

#[derive(Default, Clone, Copy)]
struct Gcra {
    /// Theoretical arrival time, µs.
    tat: i64,
}

pub const MINUTE_US: i64 = 60_000_000;
pub const HOUR_US: i64 = 3_600_000_000;

/// What is left of a GCRA window of `limit` per `period_us` whose theoretical arrival time is
/// `tat`, at `now` (µs): the one formula for every backend's `remaining`.
pub fn gcra_remaining(tat: i64, limit: u32, period_us: i64, now: i64) -> u32 {
    let t = period_us / i64::from(limit.max(1));
    let used = (tat.max(now) - now + t - 1) / t;
    (i64::from(limit) - used).clamp(0, i64::from(limit)) as u32
}

impl Gcra {
    /// Whether one more request fits; returns the new TAT or the wait in µs.
    fn try_take(&self, limit: u32, period_us: i64, now: i64) -> Result<i64, i64> {
        let t = period_us / i64::from(limit.max(1));
        let tau = period_us - t;
        let tat = self.tat.max(now);
        if tat - now > tau {
            Err(tat - now - tau)
        } else {
            Ok(tat + t)
        }
    }
    fn remaining(&self, limit: u32, period_us: i64, now: i64) -> u32 {
        gcra_remaining(self.tat, limit, period_us, now)
    }
}

#[derive(Default, Clone, Copy)]
struct Windows {
    minute: Gcra,
    hour: Gcra,
    day: (i64, u32),
}

impl Windows {
    /// True when this state decides exactly as a fresh one would: every GCRA window has fully
    /// recovered and nothing is counted against today's quota. Such a state can be forgotten.
    fn at_rest(&self, now: Now) -> bool {
        self.minute.tat <= now.mono_us
            && self.hour.tat <= now.mono_us
            && (self.day.1 == 0 || self.day.0 != now.unix_s.div_euclid(86_400))
    }

    /// Checks every configured window; returns the updated state or the first refusal.
    fn admit(&self, limits: &Limits, now: Now, tool: Option<&str>) -> Result<Windows, Limited> {
        let mut next = *self;
        let refuse = |window, limit, wait_us: i64| Limited {
            window,
            tool: tool.map(str::to_string),
            limit,
            retry_after_s: ((wait_us + 999_999) / 1_000_000).max(1) as u64,
        };
        if let Some(l) = limits.per_minute {
            next.minute.tat = self
                .minute
                .try_take(l, MINUTE_US, now.mono_us)
                .map_err(|w| refuse("per-minute", l, w))?;
        }
        if let Some(l) = limits.per_hour {
            next.hour.tat = self
                .hour
                .try_take(l, HOUR_US, now.mono_us)
                .map_err(|w| refuse("per-hour", l, w))?;
        }
        if let Some(l) = limits.per_day {
            let day = now.unix_s.div_euclid(86_400);
            let used = if self.day.0 == day { self.day.1 } else { 0 };
            if used >= l {
                let to_midnight = (day + 1) * 86_400 - now.unix_s;
                return Err(refuse("daily quota", l, to_midnight * 1_000_000));
            }
            next.day = (day, used + 1);
        }
        Ok(next)
    }
}

#[derive(Default)]
struct Bucket {
    own: Windows,
    tools: HashMap<String, Windows>,
}

/// One shard of principals. States at rest are swept out at most once a minute, so memory
/// follows the principals active in the last hour (or counted against today's quota), not
/// every principal ever seen.
#[derive(Default)]
struct Shard {
    buckets: HashMap<String, Bucket>,
    swept_at_us: i64,
}

const SWEEP_EVERY_US: i64 = MINUTE_US;

impl Shard {
    fn sweep(&mut self, now: Now) {
        if now.mono_us - self.swept_at_us < SWEEP_EVERY_US {
            return;
        }
        self.swept_at_us = now.mono_us;
        self.buckets.retain(|_, b| {
            b.tools.retain(|_, w| !w.at_rest(now));
            !(b.own.at_rest(now) && b.tools.is_empty())
        });
    }
}

/// The in-process limiter: sharded maps, one lock per principal's bucket shard.
pub struct LocalLimiter {
    shards: Vec<Mutex<Shard>>,
}

impl Default for LocalLimiter {
    fn default() -> Self {
        LocalLimiter {
            shards: (0..32).map(|_| Mutex::new(Shard::default())).collect(),
        }
    }
}

impl LocalLimiter {
    /// Principals (with per-tool states) held now; swept ones are not counted.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).buckets.len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn shard(&self, key: &str) -> &Mutex<Shard> {
        // FNV-1a: cheap and deterministic; the shard only spreads lock contention.
        let mut x: u64 = 0xcbf29ce484222325;
        for b in key.bytes() {
            x = (x ^ u64::from(b)).wrapping_mul(0x100000001b3);
        }
        &self.shards[(x as usize) % self.shards.len()]
    }
}

impl RateLimiter for LocalLimiter {
    fn check(&self, principal: &str, limits: &Limits, tool: Option<(&str, &Limits)>, now: Now) -> Result<(), Limited> {
        let none = Limits::default();
        let tool_limited = tool.is_some_and(|(_, l)| *l != none);
        if *limits == none && !tool_limited {
            return Ok(());
        }
        let mut shard = self.shard(principal).lock().unwrap_or_else(|e| e.into_inner());
        shard.sweep(now);
        if !shard.buckets.contains_key(principal) {
            shard.buckets.insert(principal.to_string(), Bucket::default());
        }
        let Some(bucket) = shard.buckets.get_mut(principal) else {
            return Ok(());
        };
        let own = bucket.own.admit(limits, now, None)?;
        let tool_state = match tool {
            Some((name, tl)) if *tl != none => {
                let cur = bucket.tools.get(name).copied().unwrap_or_default();
                Some((name, cur.admit(tl, now, Some(name))?))
            }
            _ => None,
        };
        bucket.own = own;
        if let Some((name, w)) = tool_state {
            bucket.tools.insert(name.to_string(), w);
        }
        Ok(())
    }

    fn remaining(&self, principal: &str, limits: &Limits, now: Now) -> Remaining {
        let shard = self.shard(principal).lock().unwrap_or_else(|e| e.into_inner());
        let w = shard.buckets.get(principal).map(|b| b.own).unwrap_or_default();
        let day = now.unix_s.div_euclid(86_400);
        Remaining {
            per_minute: limits.per_minute.map(|l| w.minute.remaining(l, MINUTE_US, now.mono_us)),
            per_hour: limits.per_hour.map(|l| w.hour.remaining(l, HOUR_US, now.mono_us)),
            per_day: limits
                .per_day
                .map(|l| l.saturating_sub(if w.day.0 == day { w.day.1 } else { 0 })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Now {
        Now {
            mono_us: s * 1_000_000,
            unix_s: 1_699_920_000 + s,
        }
    }

    #[test]
    fn principals_at_rest_are_forgotten_and_quotas_are_not() {
        let rl = LocalLimiter::default();
        let minute = Limits {
            per_minute: Some(2),
            ..Limits::default()
        };
        let daily = Limits {
            per_day: Some(2),
            ..Limits::default()
        };
        let tool = Limits {
            per_hour: Some(1),
            ..Limits::default()
        };
        for i in 0..1000 {
            rl.check(&format!("p{i}"), &minute, None, at(0)).unwrap();
        }
        rl.check("quota", &daily, None, at(0)).unwrap();
        rl.check("tooled", &Limits::default(), Some(("t", &tool)), at(0))
            .unwrap();
        assert_eq!(rl.len(), 1002);
        // A minute on, each shard sweeps on its next check: only states that still decide
        // differently from a fresh one remain (today's quota use, the tool's hour).
        for i in 0..500 {
            rl.check(&format!("q{i}"), &minute, None, at(61)).unwrap();
        }
        assert_eq!(rl.len(), 2 + 500);
        rl.check("quota", &daily, None, at(62)).unwrap();
        assert!(
            rl.check("quota", &daily, None, at(63)).is_err(),
            "the day's count survived"
        );
        assert!(
            rl.check("tooled", &Limits::default(), Some(("t", &tool)), at(63))
                .is_err()
        );
        assert_eq!(rl.remaining("p1", &minute, at(63)).per_minute, Some(2));
    }

    #[test]
    fn per_minute_allows_a_burst_then_the_rate() {
        let l = LocalLimiter::default();
        let lim = Limits {
            per_minute: Some(3),
            ..Limits::default()
        };
        for _ in 0..3 {
            assert!(l.check("k", &lim, None, at(0)).is_ok());
        }
        let e = l.check("k", &lim, None, at(0)).unwrap_err();
        assert_eq!((e.window, e.limit, e.retry_after_s), ("per-minute", 3, 20));
        assert_eq!(l.remaining("k", &lim, at(0)).per_minute, Some(0));
        assert!(l.check("k", &lim, None, at(20)).is_ok());
        assert!(l.check("other", &lim, None, at(0)).is_ok());
    }

    #[test]
    fn hourly_and_daily_windows() {
        let l = LocalLimiter::default();
        let lim = Limits {
            per_minute: Some(100),
            per_hour: Some(2),
            per_day: Some(3),
        };
        assert!(l.check("k", &lim, None, at(0)).is_ok());
        assert!(l.check("k", &lim, None, at(1)).is_ok());
        let e = l.check("k", &lim, None, at(2)).unwrap_err();
        assert_eq!(e.window, "per-hour");
        assert!(e.retry_after_s > 1700 && e.retry_after_s <= 1800);
        assert!(l.check("k", &lim, None, at(3600)).is_ok());
        let e = l.check("k", &lim, None, at(7200)).unwrap_err();
        assert_eq!(e.window, "daily quota");
        let midnight = (at(7200).unix_s.div_euclid(86400) + 1) * 86400 - at(7200).unix_s;
        assert_eq!(e.retry_after_s, midnight as u64);
    }

    #[test]
    fn a_refused_request_is_not_counted_anywhere() {
        let l = LocalLimiter::default();
        let own = Limits {
            per_minute: Some(10),
            ..Limits::default()
        };
        let tool = Limits {
            per_minute: Some(1),
            ..Limits::default()
        };
        assert!(l.check("k", &own, Some(("t", &tool)), at(0)).is_ok());
        let e = l.check("k", &own, Some(("t", &tool)), at(0)).unwrap_err();
        assert_eq!(e.tool.as_deref(), Some("t"));
        // The refused call did not use the principal's own budget: 9 more fit.
        for _ in 0..9 {
            assert!(l.check("k", &own, None, at(0)).is_ok());
        }
        assert!(l.check("k", &own, None, at(0)).is_err());
    }

    #[test]
    fn exact_under_concurrency() {
        let l = std::sync::Arc::new(LocalLimiter::default());
        let lim = Limits {
            per_minute: Some(500),
            ..Limits::default()
        };
        let ok = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (l, ok) = (l.clone(), ok.clone());
                std::thread::spawn(move || {
                    for _ in 0..200 {
                        if l.check("k", &lim, None, at(0)).is_ok() {
                            ok.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(ok.load(std::sync::atomic::Ordering::Relaxed), 500);
    }
}
