//! HMAC-signed requests (`mcpgate_core::hmac::verify`, the gateway's `auth::hmac::HmacAuth` with
//! its replay cache): timestamp, signature and body are the attacker's.
//!
//! Input: a mode byte, then `\n`-separated fields: secret, timestamp, signature, now (decimal
//! Unix seconds, clamped to 0..2^40 — the clock is not the attacker's), and the body (the rest,
//! newlines included).
//! - `S`: the request is signed correctly here (`hmac::sign`), then checked; the signature field
//!   doubles as another body and another timestamp to try the signature on;
//! - anything else: the fields are checked as given.
//!
//! Invariants: nothing panics; whatever verifies carries the hex HMAC-SHA256 of exactly
//! `"{timestamp}.{body}"` (recomputed here) and a timestamp within the window; a correct
//! signature verifies, and only over its own timestamp and body; through `HmacAuth` a signed
//! request is accepted once, then refused as a replay.
#![no_main]

use hmac::{Hmac, KeyInit, Mac};
use libfuzzer_sys::fuzz_target;
use mcpgate_core::hmac::{HmacError, sign, verify};
use mcpgate_gateway::auth::hmac::{HmacAuth, HmacRefusal, RawHmac, RawHmacClient};

/// The gateway's check with its default (in-memory) replay store never waits: one poll answers.
fn ready<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    match f
        .as_mut()
        .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
    {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("the in-memory replay store waited"),
    }
}

const SKEW: i64 = 300;

/// HMAC-SHA256 of `"{ts}.{body}"`, lower-case hex, computed without mcpgate's code.
fn reference(secret: &[u8], ts: &[u8], body: &[u8]) -> String {
    let mut m = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret).expect("any key length");
    m.update(ts);
    m.update(b".");
    m.update(body);
    hex::encode(m.finalize().into_bytes())
}

fn timestamp(ts: &str) -> Option<i64> {
    (ts.len() <= 12).then(|| ts.parse().ok()).flatten()
}

fn check_given(secret: &[u8], ts: &str, sig: &str, body: &[u8], now: i64) {
    if let Ok((raw, forget_at)) = verify(secret, ts, body, sig, now, SKEW) {
        assert_eq!(
            sig.to_ascii_lowercase(),
            reference(secret, ts.as_bytes(), body),
            "verified a wrong signature"
        );
        assert_eq!(hex::encode(raw), sig.to_ascii_lowercase());
        let t = timestamp(ts).expect("a verified timestamp is a number");
        assert!((now - t).abs() <= SKEW, "verified outside the window");
        assert_eq!(forget_at, t + SKEW + 1);
    }
}

fn check_signed(secret: &[u8], ts: &str, other: &str, body: &[u8]) {
    let sig = sign(secret, ts, body);
    assert_eq!(sig, reference(secret, ts.as_bytes(), body));
    let Some(t) = timestamp(ts) else {
        assert_eq!(
            verify(secret, ts, body, &sig, 0, SKEW).unwrap_err(),
            HmacError::Malformed
        );
        return;
    };
    verify(secret, ts, body, &sig, t, SKEW).expect("a correct signature verifies");
    if other.as_bytes() != body {
        assert_eq!(
            verify(secret, ts, other.as_bytes(), &sig, t, SKEW).unwrap_err(),
            HmacError::BadSignature,
            "a signature verified over another body"
        );
    }
    if other != ts
        && let Some(t2) = timestamp(other)
        && (t2 - t).abs() <= SKEW
    {
        assert_eq!(
            verify(secret, other, body, &sig, t, SKEW).unwrap_err(),
            HmacError::BadSignature,
            "a signature verified with another timestamp"
        );
    }

    // Through the gateway: the client's secret comes from the environment (so it is UTF-8).
    let secret_text = String::from_utf8_lossy(secret).into_owned();
    if secret_text.is_empty() {
        return;
    }
    let raw = RawHmac {
        clients: vec![RawHmacClient {
            id: "client-1".into(),
            secret_env: "HMAC_SECRET".into(),
            ..RawHmacClient::default()
        }],
        ..RawHmac::default()
    };
    let env = |name: &str| (name == "HMAC_SECRET").then(|| secret_text.clone());
    let auth = HmacAuth::new(raw, &env).expect("one client with a secret");
    let sig = sign(secret_text.as_bytes(), ts, body);
    assert!(
        matches!(
            ready(auth.verify("client-2", ts, &sig, body, t)),
            Err(HmacRefusal::UnknownClient)
        ),
        "unknown client"
    );
    let p = ready(auth.verify("client-1", ts, &sig, body, t)).expect("signed request accepted");
    assert_eq!(p.id(), "hmac:client-1");
    assert_eq!(
        ready(auth.verify("client-1", ts, &sig, body, t)).unwrap_err(),
        HmacRefusal::Bad(HmacError::Replayed),
        "the same signed request accepted twice"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut fields = rest.splitn(5, |b| *b == b'\n');
    let secret = fields.next().unwrap_or_default();
    let ts = String::from_utf8_lossy(fields.next().unwrap_or_default()).into_owned();
    let sig = String::from_utf8_lossy(fields.next().unwrap_or_default()).into_owned();
    let now_field = String::from_utf8_lossy(fields.next().unwrap_or_default()).into_owned();
    let body = fields.next().unwrap_or_default();
    let now = now_field
        .trim()
        .parse::<i64>()
        .unwrap_or(1_700_000_000)
        .clamp(0, 1 << 40);
    if mode == b'S' {
        check_signed(secret, &ts, &sig, body);
    } else {
        check_given(secret, &ts, &sig, body, now);
    }
});
