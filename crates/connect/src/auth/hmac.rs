//! HMAC-signed requests (seed 002): `X-Timestamp` (Unix seconds), `X-Signature` = hex
//! HMAC-SHA256 of `"{timestamp}.{body}"` over the exact bytes sent, and the key id in its header
//! (`X-API-Key` by default, as mcpgate expects). Last in the chain: it signs the body, nothing else.
//!
//! A server accepts each signature once (mcpgate keeps a replay cache), and the timestamp has
//! one-second resolution, so the same body signed twice within a second would be refused the
//! second time: GET and DELETE (empty bodies), a retried POST, a resumed stream. What was signed
//! in the current second is remembered (a hash of each body), and a repeat waits for the next
//! second.

use super::clock::{Clock, SystemClock, unix_seconds};
use super::{Auth, AuthError, SetupError, header_name, header_value};
use crate::secret::Secret;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

pub const TIMESTAMP_HEADER: &str = "x-timestamp";
pub const SIGNATURE_HEADER: &str = "x-signature";
/// Where mcpgate looks for the key id by default.
pub const DEFAULT_KEY_ID_HEADER: &str = "x-api-key";

#[derive(Default)]
struct Signed {
    second: u64,
    bodies: HashSet<[u8; 32]>,
}

/// Signs every request's body.
pub struct Hmac {
    secret: Secret,
    key_id: HeaderValue,
    key_header: HeaderName,
    clock: Arc<dyn Clock>,
    signed: Mutex<Signed>,
}

impl std::fmt::Debug for Hmac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hmac")
            .field("key_id", &self.key_id)
            .field("key_header", &self.key_header)
            .finish_non_exhaustive()
    }
}

impl Hmac {
    /// `key_header` defaults to `X-API-Key`.
    pub fn new(secret: Secret, key_id: &str, key_header: Option<&str>) -> Result<Hmac, SetupError> {
        Hmac::with_clock(secret, key_id, key_header, Arc::new(SystemClock))
    }

    pub fn with_clock(
        secret: Secret,
        key_id: &str,
        key_header: Option<&str>,
        clock: Arc<dyn Clock>,
    ) -> Result<Hmac, SetupError> {
        if key_id.trim().is_empty() {
            return Err(SetupError::new(
                "--hmac-key-id",
                "give the key id the server knows the secret by",
            ));
        }
        Ok(Hmac {
            secret,
            key_id: header_value("--hmac-key-id", key_id.trim(), false)?,
            key_header: header_name("--hmac-key-header", key_header.unwrap_or(DEFAULT_KEY_ID_HEADER))?,
            clock,
            signed: Mutex::new(Signed::default()),
        })
    }

    pub fn key_header(&self) -> &HeaderName {
        &self.key_header
    }

    /// A timestamp under which `body` was not signed yet, waiting for the next second if needed.
    async fn timestamp_for(&self, body: &[u8]) -> u64 {
        let digest: [u8; 32] = Sha256::digest(body).into();
        loop {
            let now = self.clock.now();
            let ts = unix_seconds(now);
            {
                let mut signed = self.signed.lock().unwrap_or_else(|e| e.into_inner());
                if ts != signed.second {
                    // A new second (or the clock stepped back): what was signed before cannot
                    // collide with this timestamp... except after a step back, which is rare and
                    // at worst costs one refused request.
                    signed.second = ts;
                    signed.bodies.clear();
                }
                if signed.bodies.insert(digest) {
                    return ts;
                }
            }
            let next = UNIX_EPOCH + Duration::from_secs(ts.saturating_add(1));
            let wait = next.duration_since(now).unwrap_or(Duration::from_millis(1));
            tracing::debug!(?wait, "the same body was signed this second; waiting for the next");
            self.clock.sleep(wait).await;
        }
    }
}

#[async_trait::async_trait]
impl Auth for Hmac {
    async fn headers(&self, _: &Method, _: &str, body: &[u8]) -> Result<HeaderMap, AuthError> {
        let ts = self.timestamp_for(body).await.to_string();
        let signature = mcpgate_core::hmac::sign(self.secret.expose().as_bytes(), &ts, body);
        let mut h = HeaderMap::new();
        let bad = |_| AuthError::Other("could not build the signature headers".into());
        h.insert(
            HeaderName::from_static(TIMESTAMP_HEADER),
            HeaderValue::from_str(&ts).map_err(bad)?,
        );
        h.insert(
            HeaderName::from_static(SIGNATURE_HEADER),
            HeaderValue::from_str(&signature).map_err(bad)?,
        );
        h.insert(self.key_header.clone(), self.key_id.clone());
        Ok(h)
    }

    /// A fresh signature is made for every send anyway; a refusal means a wrong secret, key id or
    /// clock, which another try does not fix.
    async fn unauthorized(&self, _: &HeaderMap, _: Option<&str>) -> bool {
        false
    }

    fn describe(&self) -> String {
        format!("HMAC signature (key id in {})", self.key_header)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::auth::ManualClock;

    fn hmac(clock: Arc<ManualClock>) -> Hmac {
        Hmac::with_clock(Secret::new("s3cret"), "client-1", None, clock).unwrap()
    }

    fn verify(h: &HeaderMap, body: &[u8], now: i64) -> i64 {
        let ts = h[TIMESTAMP_HEADER].to_str().unwrap();
        mcpgate_core::hmac::verify(b"s3cret", ts, body, h[SIGNATURE_HEADER].to_str().unwrap(), now, 300).unwrap();
        ts.parse().unwrap()
    }

    #[tokio::test]
    async fn signs_the_exact_body_and_never_repeats_a_second() {
        let clock = Arc::new(ManualClock::at(1_700_000_000, 250_000_000));
        let s = hmac(clock.clone());
        let body = br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
        let a = s.headers(&Method::POST, "u", body).await.unwrap();
        assert_eq!(a["x-api-key"], "client-1");
        assert_eq!(verify(&a, body, 1_700_000_000), 1_700_000_000);
        // Another body in the same second: no wait.
        let other = s.headers(&Method::POST, "u", b"{}").await.unwrap();
        assert_eq!(verify(&other, b"{}", 1_700_000_000), 1_700_000_000);
        // The same body again: signed in the next second, after sleeping to it.
        let b = s.headers(&Method::POST, "u", body).await.unwrap();
        assert_eq!(verify(&b, body, 1_700_000_001), 1_700_000_001);
        assert_eq!(clock.now(), UNIX_EPOCH + Duration::from_secs(1_700_000_001));
        // Empty bodies (GET, DELETE) likewise.
        let g1 = s.headers(&Method::GET, "u", b"").await.unwrap();
        let g2 = s.headers(&Method::GET, "u", b"").await.unwrap();
        assert_ne!(g1[TIMESTAMP_HEADER], g2[TIMESTAMP_HEADER]);
        assert!(!s.unauthorized(&g2, None).await);
        assert!(!format!("{s:?}").contains("s3cret"));
    }

    #[tokio::test]
    async fn concurrent_identical_bodies_get_distinct_timestamps() {
        let s = Arc::new(hmac(Arc::new(ManualClock::at(1_700_000_000, 0))));
        let mut tasks = Vec::new();
        for _ in 0..5 {
            let s = s.clone();
            tasks.push(tokio::spawn(
                async move { s.headers(&Method::GET, "u", b"").await.unwrap() },
            ));
        }
        let mut seen = HashSet::new();
        for t in tasks {
            let h = t.await.unwrap();
            assert!(seen.insert(h[TIMESTAMP_HEADER].to_str().unwrap().to_string()));
        }
    }

    #[test]
    fn setup_errors() {
        let e = Hmac::new(Secret::new("s"), " ", None).unwrap_err();
        assert!(e.to_string().starts_with("--hmac-key-id:"));
        let e = Hmac::new(Secret::new("s"), "id", Some("bad header")).unwrap_err();
        assert!(e.to_string().starts_with("--hmac-key-header:"));
    }
}
