//! HMAC-signed requests (seed 002): `X-Signature` is the hex HMAC-SHA256 of
//! `"{X-Timestamp}.{raw body}"` under a secret shared with the client. The timestamp must be
//! within a skew window, and each signature is accepted once (a replay cache remembers it for
//! as long as its timestamp could still pass the window).

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HmacError {
    /// Timestamp or signature not in the expected form.
    Malformed,
    /// The timestamp is outside the window.
    Skewed,
    BadSignature,
    Replayed,
}

impl HmacError {
    pub fn reason(self) -> &'static str {
        match self {
            HmacError::Malformed => "hmac_malformed",
            HmacError::Skewed => "hmac_timestamp_skew",
            HmacError::BadSignature => "hmac_bad_signature",
            HmacError::Replayed => "hmac_replayed",
        }
    }
}

/// Signs `"{timestamp}.{body}"`: what a client computes.
pub fn sign(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    mac(secret, timestamp, body)
        .map(|m| hex::encode(m.finalize().into_bytes()))
        .unwrap_or_default()
}

/// `None` never happens in practice: HMAC accepts keys of any length.
fn mac(secret: &[u8], timestamp: &str, body: &[u8]) -> Option<Hmac<Sha256>> {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(secret).ok()?;
    m.update(timestamp.as_bytes());
    m.update(b".");
    m.update(body);
    Some(m)
}

/// Checks the form, window and signature (in constant time) of a signed request. Returns the
/// signature and the Unix second after which the window check alone refuses it (so a replay
/// cache need remember it only until then).
pub fn verify(
    secret: &[u8],
    timestamp: &str,
    body: &[u8],
    signature_hex: &str,
    now: i64,
    skew_s: i64,
) -> Result<([u8; 32], i64), HmacError> {
    let ts: i64 = timestamp.parse().map_err(|_| HmacError::Malformed)?;
    if timestamp.len() > 12 || signature_hex.len() != 64 {
        return Err(HmacError::Malformed);
    }
    let sig = hex::decode(signature_hex).map_err(|_| HmacError::Malformed)?;
    if (now - ts).abs() > skew_s {
        return Err(HmacError::Skewed);
    }
    mac(secret, timestamp, body)
        .ok_or(HmacError::BadSignature)?
        .verify_slice(&sig)
        .map_err(|_| HmacError::BadSignature)?;
    let mut out = [0u8; 32];
    out.copy_from_slice(&sig);
    Ok((out, ts.saturating_add(skew_s).saturating_add(1)))
}

// Signatures are remembered once used by a `mcpgate_store::ReplayStore`: in memory by default,
// shared across replicas by a shared backend.

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_002_signature() {
        // The seed's Python: hmac.new(secret, f"{ts}.{payload}", sha256).hexdigest()
        let sig = sign(b"s3cret", "1700000000", br#"{"action": "search"}"#);
        assert_eq!(sig.len(), 64);
        let (_, forget_at) = verify(
            b"s3cret",
            "1700000000",
            br#"{"action": "search"}"#,
            &sig,
            1_700_000_100,
            300,
        )
        .unwrap();
        assert_eq!(
            forget_at, 1_700_000_301,
            "remembered only while the timestamp can pass the window"
        );
        let cases = [
            (
                b"s3cret".as_slice(),
                "1700000000",
                br#"{"action": "search!"}"#.as_slice(),
                sig.clone(),
                1_700_000_000,
                HmacError::BadSignature,
            ),
            (
                b"other",
                "1700000000",
                br#"{"action": "search"}"#,
                sig.clone(),
                1_700_000_000,
                HmacError::BadSignature,
            ),
            (
                b"s3cret",
                "1700000000",
                br#"{"action": "search"}"#,
                sig.clone(),
                1_700_000_301,
                HmacError::Skewed,
            ),
            (
                b"s3cret",
                "1700000000",
                br#"{"action": "search"}"#,
                sig.clone(),
                1_699_999_699,
                HmacError::Skewed,
            ),
            (
                b"s3cret",
                "17x",
                br#"{"action": "search"}"#,
                sig.clone(),
                1_700_000_000,
                HmacError::Malformed,
            ),
            (
                b"s3cret",
                "1700000000",
                br#"{"action": "search"}"#,
                "zz".repeat(32),
                1_700_000_000,
                HmacError::Malformed,
            ),
        ];
        for (secret, ts, body, sig, now, want) in cases {
            assert_eq!(verify(secret, ts, body, &sig, now, 300).unwrap_err(), want);
        }
    }
}
