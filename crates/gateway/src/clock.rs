//! The one place the gateway reads the clock; the domain takes these values as parameters.
//! The request path reads time through a [`Clock`] the gateway is built with: [`SystemClock`] in
//! production, a [`ManualClock`] in tests (and for embedders that simulate time), so refresh
//! floors, session idleness, replay windows and limits are tested by moving time, not by sleeping.
//! The free functions read the system clock, for the CLI and for work outside a gateway.

use mcpgate_core::ratelimit::Now;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

fn epoch() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

pub fn unix_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn now() -> Now {
    Now {
        mono_us: epoch().elapsed().as_micros() as i64,
        unix_s: unix_s(),
    }
}

/// Time, as the gateway reads it: wall-clock (Unix) and monotonic.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn unix_ms(&self) -> i64;
    /// Monotonic microseconds since an arbitrary start; never goes backwards.
    fn mono_us(&self) -> i64;
    fn unix_s(&self) -> i64 {
        self.unix_ms().div_euclid(1000)
    }
    /// Both readings, for the rate limiter.
    fn now(&self) -> Now {
        Now {
            mono_us: self.mono_us(),
            unix_s: self.unix_s(),
        }
    }
}

/// The process's clocks.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn unix_ms(&self) -> i64 {
        unix_ms()
    }
    fn mono_us(&self) -> i64 {
        epoch().elapsed().as_micros() as i64
    }
}

/// A clock that moves only when told to (wall-clock and monotonic time together, to the µs).
#[derive(Debug)]
pub struct ManualClock {
    start_unix_ms: i64,
    mono_us: AtomicI64,
}

impl ManualClock {
    /// Starts at `unix_ms`.
    pub fn at(unix_ms: i64) -> ManualClock {
        ManualClock {
            start_unix_ms: unix_ms,
            mono_us: AtomicI64::new(0),
        }
    }

    /// Starts at the system's current time (tokens minted with real times stay valid).
    pub fn starting_now() -> ManualClock {
        ManualClock::at(unix_ms())
    }

    /// Moves both clocks forward.
    pub fn advance(&self, by: std::time::Duration) {
        let us = i64::try_from(by.as_micros()).unwrap_or(i64::MAX);
        let _ = self
            .mono_us
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| Some(t.saturating_add(us)));
    }
}

impl Clock for ManualClock {
    fn unix_ms(&self) -> i64 {
        self.start_unix_ms.saturating_add(self.mono_us().div_euclid(1000))
    }
    fn mono_us(&self) -> i64 {
        self.mono_us.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let c = ManualClock::at(1_700_000_000_500);
        assert_eq!((c.unix_s(), c.mono_us()), (1_700_000_000, 0));
        c.advance(Duration::from_millis(1_600));
        assert_eq!(
            (c.unix_ms(), c.unix_s(), c.mono_us()),
            (1_700_000_002_100, 1_700_000_002, 1_600_000)
        );
        assert_eq!(c.now().unix_s, 1_700_000_002);
    }

    #[test]
    fn the_system_clock_agrees_with_the_free_functions() {
        let c = SystemClock;
        assert!((c.unix_s() - unix_s()).abs() <= 1);
        let a = c.mono_us();
        assert!(c.mono_us() >= a);
    }
}
