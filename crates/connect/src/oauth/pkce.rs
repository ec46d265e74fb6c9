//! The one-use values of an authorization (RFC 7636 PKCE, RFC 6749 `state`) and the code that
//! comes back: none can be cloned or printed, and the verifier and code are consumed by the one
//! token request they belong to.

use base64::Engine;
use sha2::{Digest, Sha256};
use std::fmt;

fn random_b64(bytes: [u8; 32]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The PKCE code verifier: 32 random bytes, base64url (43 characters, RFC 7636 §4.1).
pub(super) struct Verifier(String);

impl Verifier {
    pub fn new() -> Verifier {
        Verifier(random_b64(rand::random()))
    }

    /// `S256`: base64url(SHA-256(verifier)).
    pub fn challenge(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(self.0.as_bytes()))
    }

    /// Spent by the code exchange.
    pub fn into_secret(self) -> String {
        self.0
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Verifier(<redacted>)")
    }
}

/// The `state` sent with the authorization request and expected back, compared in constant time.
pub(super) struct State(String);

impl State {
    pub fn new() -> State {
        State(random_b64(rand::random()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn matches(&self, got: &str) -> bool {
        mcpgate_core::redact::Secret::new(self.0.as_str()) == mcpgate_core::redact::Secret::new(got)
    }
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("State(<redacted>)")
    }
}

/// An authorization code from the callback, for one token request.
pub(super) struct Code(String);

impl Code {
    pub fn new(code: String) -> Code {
        Code(code)
    }

    pub fn into_secret(self) -> String {
        self.0
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Code(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_and_challenge() {
        let v = Verifier::new();
        let c = v.challenge();
        assert_eq!(c.len(), 43);
        let raw = v.into_secret();
        assert_eq!(raw.len(), 43);
        assert!(raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(raw.as_bytes())),
            c
        );
        // RFC 7636 appendix B.
        let v = Verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into());
        assert_eq!(v.challenge(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert_eq!(format!("{v:?}"), "Verifier(<redacted>)");
    }

    #[test]
    fn state_matches_only_itself() {
        let s = State::new();
        let copy = s.as_str().to_string();
        assert!(s.matches(&copy));
        assert!(!s.matches(&copy[1..]));
        assert!(!s.matches(""));
        assert_ne!(State::new().as_str(), s.as_str());
        assert!(!format!("{s:?}").contains(&copy));
    }
}
