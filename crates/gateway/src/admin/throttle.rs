//! Failed admin authentication, counted per client address: past [`MAX_FAILURES`] in a window
//! of [`WINDOW_MS`], that address is answered 429 until the window ends — its right key included
//! — and only the first refusal of the window is audited, so an outsider can neither try keys at
//! full speed nor fill the audit log. Keys are 256-bit random, so guessing is not the worry; a
//! leaked list of keys tried at speed, and the log, are.
//!
//! The table is bounded: expired windows are dropped when it is full, and a new address that
//! still finds no room is refused (the throttle fails closed).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// Failures an address may have in one window.
pub const MAX_FAILURES: u32 = 10;
/// The window (ms).
pub const WINDOW_MS: i64 = 60_000;
/// Addresses remembered at once.
const MAX_ADDRESSES: usize = 10_000;

struct Window {
    start_ms: i64,
    failures: u32,
    /// The first 429 of this window was audited.
    noted: bool,
}

#[derive(Default)]
pub struct Throttle {
    seen: Mutex<HashMap<Option<IpAddr>, Window>>,
}

/// An address over its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blocked {
    pub retry_after_s: u64,
    /// The first refusal of this window: audit it; the rest are not.
    pub first: bool,
}

impl Throttle {
    /// Whether `who` is over its limit at `now_ms`.
    pub fn check(&self, who: Option<IpAddr>, now_ms: i64) -> Option<Blocked> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let w = seen.get_mut(&who)?;
        if now_ms - w.start_ms >= WINDOW_MS {
            seen.remove(&who);
            return None;
        }
        if w.failures < MAX_FAILURES {
            return None;
        }
        let first = !w.noted;
        w.noted = true;
        let left_ms = (w.start_ms + WINDOW_MS - now_ms).max(1000);
        Some(Blocked {
            retry_after_s: u64::try_from((left_ms + 999) / 1000).unwrap_or(60),
            first,
        })
    }

    /// Counts a failed authentication from `who`; false when the table is full (the caller
    /// should refuse it as over the limit).
    pub fn failed(&self, who: Option<IpAddr>, now_ms: i64) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if !seen.contains_key(&who) && seen.len() >= MAX_ADDRESSES {
            seen.retain(|_, w| now_ms - w.start_ms < WINDOW_MS);
            if seen.len() >= MAX_ADDRESSES {
                return false;
            }
        }
        let w = seen.entry(who).or_insert(Window {
            start_ms: now_ms,
            failures: 0,
            noted: false,
        });
        if now_ms - w.start_ms >= WINDOW_MS {
            *w = Window {
                start_ms: now_ms,
                failures: 0,
                noted: false,
            };
        }
        w.failures = w.failures.saturating_add(1);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_refused_after_its_failures_until_the_window_ends() {
        let t = Throttle::default();
        let a = Some("192.0.2.1".parse().unwrap());
        let b = Some("192.0.2.2".parse().unwrap());
        for i in 0..MAX_FAILURES {
            assert_eq!(t.check(a, 1000 + i64::from(i)), None);
            assert!(t.failed(a, 1000 + i64::from(i)));
        }
        let first = t.check(a, 2000).unwrap();
        assert!(first.first && first.retry_after_s == 59, "{first:?}");
        assert!(!t.check(a, 3000).unwrap().first, "only the first refusal is audited");
        assert_eq!(t.check(b, 3000), None, "another address is not affected");
        assert_eq!(t.check(a, 1000 + WINDOW_MS), None, "the window ended");
        assert!(t.failed(a, 1000 + WINDOW_MS));
        assert_eq!(t.check(a, 1001 + WINDOW_MS), None, "a new window counts from zero");
    }

    #[test]
    fn the_table_is_bounded_and_fails_closed() {
        let t = Throttle::default();
        for i in 0..MAX_ADDRESSES {
            let ip = IpAddr::from(std::net::Ipv6Addr::from(i as u128));
            assert!(t.failed(Some(ip), 0));
        }
        assert!(!t.failed(Some("192.0.2.9".parse().unwrap()), 1), "no room: refused");
        assert!(
            t.failed(Some("192.0.2.9".parse().unwrap()), WINDOW_MS),
            "expired windows make room"
        );
    }
}
