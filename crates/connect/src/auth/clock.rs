//! The time the providers read: wall-clock seconds for `iat`/`exp`, `X-Timestamp` and token
//! expiry, and a sleep (HMAC waits for the next second rather than sign the same bytes twice).
//! Injected so expiry and the HMAC wait are tested without waiting.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A future the clock's `sleep` returns.
pub type Sleep<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Wall-clock time and sleeping.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> SystemTime;
    fn sleep(&self, d: Duration) -> Sleep<'_>;
}

/// The system's clock and tokio's timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
    fn sleep(&self, d: Duration) -> Sleep<'_> {
        Box::pin(tokio::time::sleep(d))
    }
}

/// A clock that moves only when told to (or when slept on, by the time slept): for tests.
#[derive(Debug)]
pub struct ManualClock(Mutex<SystemTime>);

impl ManualClock {
    /// Starts at `unix` seconds plus `nanos`.
    pub fn at(unix: u64, nanos: u32) -> ManualClock {
        ManualClock(Mutex::new(UNIX_EPOCH + Duration::new(unix, nanos)))
    }
    pub fn advance(&self, d: Duration) {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *t += d;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn sleep(&self, d: Duration) -> Sleep<'_> {
        self.advance(d);
        Box::pin(std::future::ready(()))
    }
}

/// Seconds since the Unix epoch (0 before it).
pub(crate) fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// How long before expiry a credential is renewed: a fifth of its lifetime, at most a minute (a
/// fixed margin would renew a 5 s token on every request; a minute is plenty for a long one).
pub fn renewal_margin(lifetime: Duration) -> Duration {
    (lifetime / 5).min(Duration::from_secs(60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margin_is_a_fifth_capped_at_a_minute() {
        assert_eq!(renewal_margin(Duration::from_secs(5)), Duration::from_secs(1));
        assert_eq!(renewal_margin(Duration::from_secs(2)), Duration::from_millis(400));
        assert_eq!(renewal_margin(Duration::from_secs(3600)), Duration::from_secs(60));
        assert_eq!(renewal_margin(Duration::from_secs(300)), Duration::from_secs(60));
    }

    #[tokio::test]
    async fn manual_clock_moves_when_slept_on() {
        let c = ManualClock::at(100, 0);
        c.sleep(Duration::from_millis(1500)).await;
        assert_eq!(unix_seconds(c.now()), 101);
        c.advance(Duration::from_millis(500));
        assert_eq!(unix_seconds(c.now()), 102);
    }
}
