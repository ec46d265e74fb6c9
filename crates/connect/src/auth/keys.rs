//! An API key with a fallback (seed 002's rotation): the primary key is sent until the server
//! refuses it, then the fallback, once, for every request in flight. Rotating a key on the server
//! (revoke the old one, hand out the new one as the fallback beforehand) then costs no failed
//! call. The switch is said on stderr, never the key.

use super::{Auth, AuthError, SetupError, header_name, header_value};
use crate::secret::Secret;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use std::sync::atomic::{AtomicU8, Ordering};

/// The header seed 002 sends its key in.
pub const DEFAULT_KEY_HEADER: &str = "x-api-key";

const PRIMARY: u8 = 0;
const FALLBACK: u8 = 1;
const EXHAUSTED: u8 = 2;

/// A primary API key and an optional fallback.
pub struct KeyPair {
    header: HeaderName,
    primary: HeaderValue,
    fallback: Option<HeaderValue>,
    /// PRIMARY → FALLBACK → EXHAUSTED, only forwards, each step taken by one caller.
    state: AtomicU8,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("header", &self.header)
            .field("fallback", &self.fallback.is_some())
            .field("state", &self.state.load(Ordering::Relaxed))
            .finish()
    }
}

impl KeyPair {
    /// `header` defaults to `X-API-Key`.
    pub fn new(primary: &Secret, fallback: Option<&Secret>, header: Option<&str>) -> Result<KeyPair, SetupError> {
        let header = header_name("--key-header", header.unwrap_or(DEFAULT_KEY_HEADER))?;
        let primary_value = header_value("--key", primary.expose().trim(), true)?;
        let fallback = match fallback {
            Some(f) => {
                if f.expose().trim() == primary.expose().trim() {
                    return Err(SetupError::new(
                        "--fallback-key",
                        "holds the same key as --key; give the next key of the rotation",
                    ));
                }
                Some(header_value("--fallback-key", f.expose().trim(), true)?)
            }
            None => None,
        };
        Ok(KeyPair {
            header,
            primary: primary_value,
            fallback,
            state: AtomicU8::new(PRIMARY),
        })
    }

    /// Whether the fallback key is the one being sent.
    pub fn using_fallback(&self) -> bool {
        self.state.load(Ordering::Acquire) != PRIMARY && self.fallback.is_some()
    }

    pub fn header_name(&self) -> &HeaderName {
        &self.header
    }

    fn current(&self) -> &HeaderValue {
        match (&self.fallback, self.state.load(Ordering::Acquire)) {
            (Some(f), FALLBACK | EXHAUSTED) => f,
            _ => &self.primary,
        }
    }
}

#[async_trait::async_trait]
impl Auth for KeyPair {
    async fn headers(&self, _: &Method, _: &str, _: &[u8]) -> Result<HeaderMap, AuthError> {
        let mut h = HeaderMap::new();
        h.insert(self.header.clone(), self.current().clone());
        Ok(h)
    }

    async fn unauthorized(&self, sent: &HeaderMap, _: Option<&str>) -> bool {
        let Some(sent) = sent.get(&self.header) else {
            return false;
        };
        if *sent == self.primary {
            let Some(_) = &self.fallback else {
                if self.state.swap(EXHAUSTED, Ordering::AcqRel) == PRIMARY {
                    tracing::error!(header = %self.header, "the API key was refused (401) and there is no fallback key");
                }
                return false;
            };
            return match self
                .state
                .compare_exchange(PRIMARY, FALLBACK, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    tracing::warn!(header = %self.header, "the primary key was refused (401); using the fallback key");
                    true
                }
                // Another request switched already: send this one again with the fallback.
                Err(FALLBACK) => true,
                Err(_) => false,
            };
        }
        if self.fallback.as_ref() == Some(sent) {
            if self
                .state
                .compare_exchange(FALLBACK, EXHAUSTED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                tracing::error!(header = %self.header, "both keys were refused (401): the primary and the fallback");
            }
            return false;
        }
        false
    }

    fn describe(&self) -> String {
        match (&self.fallback, self.using_fallback()) {
            (Some(_), false) => format!("API key in {} (fallback key ready)", self.header),
            (Some(_), true) => format!("API key in {} (the fallback)", self.header),
            (None, _) => format!("API key in {}", self.header),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn pair(fallback: bool) -> KeyPair {
        let f = Secret::new("key-2");
        KeyPair::new(&Secret::new("key-1"), fallback.then_some(&f), None).unwrap()
    }

    #[tokio::test]
    async fn switches_once_then_gives_up() {
        let k = pair(true);
        let first = k.headers(&Method::POST, "u", b"").await.unwrap();
        assert_eq!(first["x-api-key"], "key-1");
        assert!(k.unauthorized(&first, None).await);
        let second = k.headers(&Method::POST, "u", b"").await.unwrap();
        assert_eq!(second["x-api-key"], "key-2");
        assert!(k.using_fallback());
        // A late refusal of the primary: the switch is done, send again.
        assert!(k.unauthorized(&first, None).await);
        assert!(!k.unauthorized(&second, None).await);
        assert!(!k.unauthorized(&first, None).await, "both refused: nothing left");
        assert!(!k.unauthorized(&HeaderMap::new(), None).await);
        assert!(!format!("{k:?}").contains("key-"));
    }

    #[tokio::test]
    async fn no_fallback_and_custom_header() {
        let k = KeyPair::new(&Secret::new("key-1"), None, Some("X-Key")).unwrap();
        let h = k.headers(&Method::POST, "u", b"").await.unwrap();
        assert_eq!(h["x-key"], "key-1");
        assert!(!k.unauthorized(&h, None).await);
        let same = Secret::new("key-1");
        let e = KeyPair::new(&Secret::new("key-1"), Some(&same), None).unwrap_err();
        assert!(e.to_string().starts_with("--fallback-key:") && !e.to_string().contains("key-1"));
    }
}
