//! When the bridge sends a message again, and how long it waits first.
//!
//! Two questions decide a retry. *Would the server want it?* 429 and 503 say "later" (with
//! `Retry-After`), so any message may be sent again. *Is it safe?* After a 502, a 504, a timeout or
//! a connection broken mid-request the server may already have run the message, so only
//! [idempotent](is_idempotent) methods are sent again — a `tools/call` may have charged a card or
//! sent an e-mail — unless the user opts in with [`Policy::retry_unsafe`]. A connection refused is
//! always safe: nothing was sent. A 403 is an answer, not a hiccup: it is retried only with
//! [`Policy::retry_403`] (for servers that answer 403 while a permission propagates).
//!
//! Time enters as a parameter (`now`), so the parsing is tested without a clock.

use std::time::{Duration, SystemTime};

/// How often and how patiently a message is sent again.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Sends of one message in all (the first included) for 429/503/502/504/connection errors.
    pub max_attempts: u32,
    /// The first backoff ceiling; it doubles with each attempt.
    pub base: Duration,
    /// The largest backoff ceiling.
    pub cap: Duration,
    /// The longest `Retry-After` (or SSE `retry:`) honoured; a longer one is cut to this.
    pub max_retry_after: Duration,
    /// Treat 403 (without `insufficient_scope`) like 503.
    pub retry_403: bool,
    /// Send non-idempotent messages (`tools/call`) again after 502/504/timeouts/broken connections,
    /// accepting that they may run twice.
    pub retry_unsafe: bool,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            max_attempts: 5,
            base: Duration::from_millis(250),
            cap: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
            retry_403: false,
            retry_unsafe: false,
        }
    }
}

impl Policy {
    /// The wait before attempt `attempt + 1` after a 429/503: the server's `Retry-After` when it
    /// gave a readable one (cut to [`max_retry_after`](Self::max_retry_after)), else
    /// [`backoff`].
    pub fn retry_after(&self, header: Option<&str>, now: SystemTime, attempt: u32) -> Duration {
        match header.and_then(|v| parse_retry_after(v, now)) {
            Some(wait) => wait.min(self.max_retry_after),
            None => backoff(self, attempt),
        }
    }
}

/// `Retry-After` (RFC 9110 §10.2.3): delay-seconds or an HTTP-date. A date in the past is zero;
/// seconds too large for a `u64` are `u64::MAX` seconds (the caller caps them). Anything else —
/// negative, fractional, empty — is `None`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        // All digits: only overflow can make the parse fail.
        return Some(Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Full-jitter exponential backoff: a uniform wait in `[0, min(cap, base · 2^attempt)]`
/// (`attempt` counts from 0). Jitter spreads the retries of many clients refused at once.
pub fn backoff(policy: &Policy, attempt: u32) -> Duration {
    jittered(ceiling(policy, attempt), rand::random::<f64>())
}

/// `min(cap, base · 2^attempt)`, without overflow.
fn ceiling(policy: &Policy, attempt: u32) -> Duration {
    let factor = 1u32.checked_shl(attempt).unwrap_or(u32::MAX);
    policy.base.saturating_mul(factor).min(policy.cap)
}

/// `ceiling · unit` for `unit` in `[0, 1)`.
fn jittered(ceiling: Duration, unit: f64) -> Duration {
    ceiling.mul_f64(unit.clamp(0.0, 1.0))
}

/// Whether sending `method` twice has the effect of sending it once, so that a request lost
/// after it may have reached the server can be sent again.
///
/// Reads, lists, `ping`, the handshake (`initialize`, `server/discover`), `completion/complete`,
/// `logging/setLevel` and (un)subscribing are. `tools/call` is not, nor is any method not named
/// here (an extension's method may have effects). Notifications are: every notification a client
/// sends (`initialized`, `cancelled`, `progress`, `roots/list_changed`) announces a state, and
/// hearing it twice changes nothing — while losing `notifications/initialized` breaks the session.
pub fn is_idempotent(method: &str) -> bool {
    const METHODS: &[&str] = &[
        "initialize",
        "ping",
        "server/discover",
        "resources/read",
        "resources/subscribe",
        "resources/unsubscribe",
        "prompts/get",
        "completion/complete",
        "logging/setLevel",
        "tasks/get",
        "tasks/result",
        "tasks/cancel",
        "subscriptions/listen",
    ];
    METHODS.contains(&method) || method.ends_with("/list") || method.starts_with("notifications/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = at(1_700_000_000);
        assert_eq!(parse_retry_after("1", now), Some(Duration::from_secs(1)));
        assert_eq!(parse_retry_after(" 120 ", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
        // An HTTP-date 30 s ahead, one in the past.
        let ahead = httpdate::fmt_http_date(at(1_700_000_030));
        assert_eq!(parse_retry_after(&ahead, now), Some(Duration::from_secs(30)));
        let past = httpdate::fmt_http_date(at(1_600_000_000));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", at(1_445_412_470)),
            Some(Duration::from_secs(10))
        );
    }

    #[test]
    fn retry_after_garbage_is_none() {
        let now = at(1_700_000_000);
        for bad in ["", "  ", "-5", "1.5", "soon", "1s", "Wed, 21 Oct 2015", "+3", "0x10"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn huge_retry_after_is_capped() {
        let now = at(1_700_000_000);
        let huge = "99999999999999999999999999";
        assert_eq!(parse_retry_after(huge, now), Some(Duration::from_secs(u64::MAX)));
        let policy = Policy::default();
        assert_eq!(policy.retry_after(Some(huge), now, 0), Duration::from_secs(60));
        assert_eq!(policy.retry_after(Some("86400"), now, 0), Duration::from_secs(60));
        assert_eq!(policy.retry_after(Some("2"), now, 0), Duration::from_secs(2));
        let far = httpdate::fmt_http_date(at(1_800_000_000));
        assert_eq!(policy.retry_after(Some(&far), now, 0), Duration::from_secs(60));
        // Unreadable or absent: the backoff, which never exceeds the cap.
        for _ in 0..50 {
            assert!(policy.retry_after(Some("soon"), now, 30) <= policy.cap);
            assert!(policy.retry_after(None, now, 0) <= policy.base);
        }
    }

    #[test]
    fn backoff_ceiling_doubles_to_the_cap() {
        let p = Policy::default();
        assert_eq!(ceiling(&p, 0), Duration::from_millis(250));
        assert_eq!(ceiling(&p, 1), Duration::from_millis(500));
        assert_eq!(ceiling(&p, 4), Duration::from_secs(4));
        assert_eq!(ceiling(&p, 5), Duration::from_secs(8));
        assert_eq!(ceiling(&p, 31), Duration::from_secs(8));
        assert_eq!(ceiling(&p, 32), Duration::from_secs(8));
        assert_eq!(ceiling(&p, u32::MAX), Duration::from_secs(8));
        assert_eq!(jittered(Duration::from_secs(4), 0.0), Duration::ZERO);
        assert_eq!(jittered(Duration::from_secs(4), 0.5), Duration::from_secs(2));
        assert_eq!(jittered(Duration::from_secs(4), 7.0), Duration::from_secs(4));
        for attempt in [0, 1, 3, 10, 64, u32::MAX] {
            for _ in 0..100 {
                let wait = backoff(&p, attempt);
                assert!(wait <= ceiling(&p, attempt), "{attempt}: {wait:?}");
            }
        }
    }

    #[test]
    fn idempotency_classes() {
        for safe in [
            "initialize",
            "ping",
            "tools/list",
            "resources/list",
            "resources/templates/list",
            "prompts/list",
            "resources/read",
            "prompts/get",
            "server/discover",
            "completion/complete",
            "logging/setLevel",
            "notifications/initialized",
            "notifications/cancelled",
        ] {
            assert!(is_idempotent(safe), "{safe}");
        }
        for unsafe_ in ["tools/call", "sampling/createMessage", "x/do", "", "tools/listen"] {
            assert!(!is_idempotent(unsafe_), "{unsafe_}");
        }
    }
}
