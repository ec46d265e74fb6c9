//! Ceilings on the outbound calls a caller can trigger: the external key verifier's call to the
//! vendor (`GET /me`) and token introspection's POST to the authorization server. Both run on the
//! request path for a credential the gateway has not seen before, so without a ceiling anyone
//! could make the gateway flood the vendor (500 made-up keys, 500 calls) until the vendor
//! rate-limits the gateway and every user behind it gets 503s.
//!
//! An [`Outbound`] stands between a verifier and its endpoint:
//! - answers, positive and negative, are cached by the credential's SHA-256 until the Unix second
//!   the verifier names; "no answer" (down, slow, 429, unreadable) is never cached, so an outage
//!   is never remembered as "invalid";
//! - one call per distinct credential at a time: callers with the same credential wait for the
//!   call under way and share its result;
//! - a [`Ceiling`]: at most `max_concurrent` calls at once and `max_per_second` on average (a
//!   token bucket). A caller past it gets [`Unanswered::Busy`] at once: a 503 with `Retry-After`,
//!   never a 401, since nothing was learned about the credential.
//!
//! Keys the registry knows never get here (auth/mod.rs asks the registry first), so a flood of
//! made-up keys delays only other keys that need a call.
//!
//! Memory: at most [`MAX_IN_FLIGHT`] distinct credentials wait for or run a call at once (a
//! caller past that is `Busy`); the answer cache holds at most the `max_answers` its owner gives.
//! Time: the ceiling reads an injected monotonic [`Clock`]; cache expiry uses the caller's `now`
//! in Unix seconds, as every other verifier does.

use super::cache::TtlCache;
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

pub const DEFAULT_MAX_CONCURRENT: u32 = 16;
pub const DEFAULT_MAX_PER_SECOND: u32 = 20;
const MAX_MAX_CONCURRENT: u32 = 1024;
const MAX_MAX_PER_SECOND: u32 = 100_000;
/// Distinct credentials waiting for or running a call. Calls running are at most
/// `max_concurrent`; the rest of an entry's life is the instant before the ceiling refuses it.
pub const MAX_IN_FLIGHT: usize = 4096;
/// One token, in the bucket's unit (millionths of a call, so refill is exact per microsecond).
const TOKEN: i64 = 1_000_000;

/// The ceilings on one verifier's outbound calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboundLimits {
    pub max_concurrent: u32,
    pub max_per_second: u32,
}

impl Default for OutboundLimits {
    fn default() -> Self {
        OutboundLimits {
            max_concurrent: DEFAULT_MAX_CONCURRENT,
            max_per_second: DEFAULT_MAX_PER_SECOND,
        }
    }
}

impl OutboundLimits {
    /// Validates the two settings as written; each comes with its full field name, which an
    /// error names.
    pub fn new(
        max_concurrent: (&'static str, Option<u32>),
        max_per_second: (&'static str, Option<u32>),
    ) -> Result<Self, (&'static str, String)> {
        let check = |(field, v): (&'static str, Option<u32>), default: u32, max: u32| match v.unwrap_or(default) {
            n if (1..=max).contains(&n) => Ok(n),
            n => Err((
                field,
                format!("{n} is out of range: use 1 to {max} (remove the section to stop calling the endpoint)"),
            )),
        };
        Ok(OutboundLimits {
            max_concurrent: check(max_concurrent, DEFAULT_MAX_CONCURRENT, MAX_MAX_CONCURRENT)?,
            max_per_second: check(max_per_second, DEFAULT_MAX_PER_SECOND, MAX_MAX_PER_SECOND)?,
        })
    }
}

/// Why a verifier has no answer about a credential. Neither says anything about the credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unanswered {
    /// The endpoint is down, slow, rate-limiting the gateway, or answered something unreadable.
    Unavailable,
    /// The gateway's own ceiling on calls was reached; worth retrying after this many seconds.
    Busy { retry_after_s: u64 },
}

/// What one call to the endpoint produced.
pub enum Outcome<V> {
    /// A verdict (positive or negative), reusable until the Unix second `until`.
    Answer { value: V, until: i64 },
    /// No verdict: shared with the callers waiting now, never cached.
    Unavailable,
}

pub use crate::clock::{Clock, SystemClock};

/// At most `max_concurrent` calls at once and `max_per_second` on average. The bucket holds at
/// most `min(max_per_second, max_concurrent)` tokens, so in any `t` seconds the endpoint sees at
/// most `max_concurrent + max_per_second × t` calls. Time in, never read here.
pub struct Ceiling {
    limits: OutboundLimits,
    capacity: i64,
    state: Mutex<Bucket>,
}

struct Bucket {
    tokens: i64,
    /// `None` until the first call: the bucket starts full.
    last_us: Option<i64>,
    running: u32,
}

/// A call's place under the ceiling; dropping it (also when the call is cancelled) frees it.
pub struct Permit<'a>(&'a Ceiling);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut b = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
        b.running = b.running.saturating_sub(1);
    }
}

impl Ceiling {
    pub fn new(limits: OutboundLimits) -> Ceiling {
        let capacity = i64::from(limits.max_per_second.min(limits.max_concurrent).max(1)) * TOKEN;
        Ceiling {
            limits,
            capacity,
            state: Mutex::new(Bucket {
                tokens: capacity,
                last_us: None,
                running: 0,
            }),
        }
    }

    /// A place for one call now, or how long to wait for one.
    pub fn try_start(&self, now_us: i64) -> Result<Permit<'_>, Unanswered> {
        let rate = i64::from(self.limits.max_per_second.max(1));
        let mut b = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match b.last_us {
            None => b.last_us = Some(now_us),
            // A clock that went backwards refills nothing.
            Some(last) if now_us > last => {
                b.tokens = b
                    .tokens
                    .saturating_add((now_us - last).saturating_mul(rate))
                    .min(self.capacity);
                b.last_us = Some(now_us);
            }
            Some(_) => {}
        }
        if b.running >= self.limits.max_concurrent {
            // A call ends within the verifier's timeout (seconds at most): retry soon.
            return Err(Unanswered::Busy { retry_after_s: 1 });
        }
        if b.tokens < TOKEN {
            let wait_us = (TOKEN - b.tokens + rate - 1) / rate;
            let retry_after_s = u64::try_from((wait_us + 999_999) / 1_000_000).unwrap_or(1).max(1);
            return Err(Unanswered::Busy { retry_after_s });
        }
        b.tokens -= TOKEN;
        b.running += 1;
        Ok(Permit(self))
    }
}

type Slot<V> = Arc<OnceCell<Result<V, Unanswered>>>;

/// A credential someone waits on: the shared result and how many wait for it.
struct Entry<V> {
    slot: Slot<V>,
    waiters: usize,
}

/// Answer cache, single flight per credential and a ceiling, for one verifier.
pub struct Outbound<V> {
    answers: TtlCache<V>,
    in_flight: Mutex<HashMap<String, Entry<V>>>,
    max_in_flight: usize,
    ceiling: Ceiling,
    clock: Arc<dyn Clock>,
    calls: AtomicU64,
}

impl<V: Clone + Send + Sync> Outbound<V> {
    pub fn new(limits: OutboundLimits, max_answers: usize, clock: Arc<dyn Clock>) -> Self {
        Outbound {
            answers: TtlCache::new(max_answers),
            in_flight: Mutex::new(HashMap::new()),
            max_in_flight: MAX_IN_FLIGHT,
            ceiling: Ceiling::new(limits),
            clock,
            calls: AtomicU64::new(0),
        }
    }

    /// Calls made to the endpoint so far (for tests and metrics).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// The answer about the credential whose SHA-256 is `hash`: cached, shared with a call under
    /// way, or from a new `call` when the ceiling allows one.
    pub async fn run<F, Fut>(&self, hash: String, now: i64, call: F) -> Result<V, Unanswered>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Outcome<V>>,
    {
        if let Some(v) = self.answers.get(&hash, now) {
            return Ok(v);
        }
        let slot = {
            let mut map = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            // Again under the lock: a call that just ended cached its answer before leaving.
            if let Some(v) = self.answers.get(&hash, now) {
                return Ok(v);
            }
            if map.len() >= self.max_in_flight && !map.contains_key(&hash) {
                return Err(Unanswered::Busy { retry_after_s: 1 });
            }
            let entry = map.entry(hash.clone()).or_insert_with(|| Entry {
                slot: Slot::default(),
                waiters: 0,
            });
            entry.waiters += 1;
            entry.slot.clone()
        };
        let waiter = Waiter {
            map: &self.in_flight,
            hash: &hash,
            slot: &slot,
        };
        // One waiter runs `call`; if it is cancelled, the next waiter runs its own.
        let result = slot.get_or_init(|| self.call(&hash, now, call)).await.clone();
        drop(waiter);
        result
    }

    async fn call<F, Fut>(&self, hash: &str, now: i64, call: F) -> Result<V, Unanswered>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Outcome<V>>,
    {
        let permit = self.ceiling.try_start(self.clock.mono_us())?;
        self.calls.fetch_add(1, Ordering::Relaxed);
        let outcome = call().await;
        drop(permit);
        match outcome {
            Outcome::Answer { value, until } => {
                // Cached before the slot is filled, so no caller finds neither.
                self.answers.insert(hash.to_string(), value.clone(), until, now);
                Ok(value)
            }
            Outcome::Unavailable => Err(Unanswered::Unavailable),
        }
    }
}

/// One caller's share of an entry. The last one to leave (finished or cancelled) removes it, so
/// the map holds only credentials someone still waits on.
struct Waiter<'a, V> {
    map: &'a Mutex<HashMap<String, Entry<V>>>,
    hash: &'a str,
    slot: &'a Slot<V>,
}

impl<V> Drop for Waiter<'_, V> {
    fn drop(&mut self) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = map.get_mut(self.hash)
            && Arc::ptr_eq(&e.slot, self.slot)
        {
            e.waiters = e.waiters.saturating_sub(1);
            if e.waiters == 0 {
                map.remove(self.hash);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::future::join_all;

    use crate::clock::ManualClock;

    fn limits(max_concurrent: u32, max_per_second: u32) -> OutboundLimits {
        OutboundLimits {
            max_concurrent,
            max_per_second,
        }
    }

    #[test]
    fn the_bucket_allows_a_burst_then_the_rate() {
        let c = Ceiling::new(limits(16, 20));
        // The burst is min(20, 16).
        let permits: Vec<_> = (0..16).map(|_| c.try_start(0).unwrap()).collect();
        drop(permits);
        assert_eq!(c.try_start(0).err(), Some(Unanswered::Busy { retry_after_s: 1 }));
        // 20 per second: one token every 50 ms, none before.
        assert!(c.try_start(49_999).is_err());
        drop(c.try_start(50_000).unwrap());
        assert!(c.try_start(50_001).is_err());
        // Ten seconds idle refill only up to the burst.
        let n = (0..100).filter_map(|_| c.try_start(10_000_000).ok()).count();
        assert_eq!(n, 16);
        // A slow rate names a longer wait; a clock going backwards refills nothing.
        let slow = Ceiling::new(limits(4, 1));
        drop(slow.try_start(5_000_000).unwrap());
        assert_eq!(
            slow.try_start(5_000_000).err(),
            Some(Unanswered::Busy { retry_after_s: 1 })
        );
        assert!(slow.try_start(0).is_err());
        assert!(slow.try_start(6_000_000).is_ok());
    }

    #[test]
    fn concurrency_is_capped_and_freed_on_drop() {
        let c = Ceiling::new(limits(2, 1000));
        let a = c.try_start(0).unwrap();
        let _b = c.try_start(0).unwrap();
        assert_eq!(
            c.try_start(1_000_000).err(),
            Some(Unanswered::Busy { retry_after_s: 1 })
        );
        drop(a);
        assert!(c.try_start(1_000_000).is_ok());
    }

    #[test]
    fn limits_are_checked() {
        let ok = OutboundLimits::new(("c", None), ("r", Some(5))).unwrap();
        assert_eq!(ok, limits(16, 5));
        let (field, why) = OutboundLimits::new(("a.max_concurrent", Some(0)), ("r", None)).unwrap_err();
        assert_eq!(field, "a.max_concurrent");
        assert!(why.contains("1 to 1024"), "{why}");
        assert!(OutboundLimits::new(("c", None), ("r", Some(200_000))).is_err());
    }

    fn outbound(max_concurrent: u32, max_per_second: u32) -> (Outbound<bool>, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::at(0));
        (
            Outbound::new(limits(max_concurrent, max_per_second), 100, clock.clone()),
            clock,
        )
    }

    #[tokio::test]
    async fn one_call_per_credential_shared_by_everyone_waiting() {
        let (o, _) = outbound(16, 20);
        let gate = tokio::sync::Semaphore::new(0);
        let made = AtomicU64::new(0);
        let call = || async {
            made.fetch_add(1, Ordering::SeqCst);
            let _ = gate.acquire().await;
            Outcome::Answer { value: true, until: 60 }
        };
        let waiters = join_all((0..50).map(|_| o.run("h".into(), 0, call)));
        let release = async {
            tokio::task::yield_now().await;
            gate.add_permits(1);
        };
        let (results, ()) = tokio::join!(waiters, release);
        assert!(results.iter().all(|r| *r == Ok(true)));
        assert_eq!((made.load(Ordering::SeqCst), o.calls()), (1, 1));
        assert!(o.in_flight.lock().unwrap().is_empty());
        // Cached: no call at all.
        assert_eq!(o.run("h".into(), 59, || async { unreachable!() }).await, Ok(true));
    }

    #[tokio::test]
    async fn negative_answers_are_cached_unavailable_is_not() {
        let (o, _) = outbound(16, 1000);
        let no = || async {
            Outcome::Answer {
                value: false,
                until: 10,
            }
        };
        assert_eq!(o.run("bad".into(), 0, no).await, Ok(false));
        assert_eq!(o.run("bad".into(), 9, || async { unreachable!() }).await, Ok(false));
        assert_eq!(o.run("bad".into(), 10, no).await, Ok(false));
        assert_eq!(o.calls(), 2);
        let down = || async { Outcome::Unavailable };
        assert_eq!(o.run("k".into(), 0, down).await, Err(Unanswered::Unavailable));
        let up = || async { Outcome::Answer { value: true, until: 60 } };
        assert_eq!(o.run("k".into(), 0, up).await, Ok(true));
    }

    #[tokio::test]
    async fn past_the_ceiling_callers_are_busy_until_the_clock_moves() {
        let (o, clock) = outbound(16, 2);
        let up = || async { Outcome::Answer { value: true, until: 60 } };
        assert_eq!(o.run("a".into(), 0, up).await, Ok(true));
        assert_eq!(o.run("b".into(), 0, up).await, Ok(true));
        assert_eq!(
            o.run("c".into(), 0, up).await,
            Err(Unanswered::Busy { retry_after_s: 1 })
        );
        // Known answers are still served.
        assert_eq!(o.run("a".into(), 0, up).await, Ok(true));
        clock.advance(std::time::Duration::from_millis(500));
        assert_eq!(o.run("c".into(), 0, up).await, Ok(true));
        assert_eq!(o.calls(), 3);
    }

    #[tokio::test]
    async fn a_cancelled_caller_leaves_nothing_behind() {
        let (o, clock) = outbound(1, 1000);
        let hang = || std::future::pending::<Outcome<bool>>();
        let r = tokio::time::timeout(std::time::Duration::from_millis(10), o.run("x".into(), 0, hang)).await;
        assert!(r.is_err());
        assert!(o.in_flight.lock().unwrap().is_empty());
        // Its permit was freed too (max_concurrent is 1; the burst is 1, refilled in 1 ms).
        clock.advance(std::time::Duration::from_millis(1));
        let up = || async { Outcome::Answer { value: true, until: 60 } };
        assert_eq!(o.run("x".into(), 0, up).await, Ok(true));
    }

    #[tokio::test]
    async fn the_in_flight_map_is_bounded() {
        let (mut o, _) = outbound(16, 1000);
        o.max_in_flight = 2;
        let hang = || std::future::pending::<Outcome<bool>>();
        let up = || async { Outcome::Answer { value: true, until: 60 } };
        let third = async {
            tokio::task::yield_now().await;
            o.run("c".into(), 0, up).await
        };
        tokio::select! {
            _ = o.run("a".into(), 0, hang) => unreachable!(),
            _ = o.run("b".into(), 0, hang) => unreachable!(),
            r = third => assert_eq!(r, Err(Unanswered::Busy { retry_after_s: 1 })),
        }
    }
}
