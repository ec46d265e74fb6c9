//! Where identifiers and keys get their randomness: an [`Entropy`] the gateway is built with, so
//! tests can make request ids, session ids and generated keys reproducible. Production uses
//! [`OsEntropy`] (the operating system's generator, through `rand`). Encryption keys and nonces
//! (`sealed.rs`) never come from here: they always use the operating system's generator.

use rand::{RngCore, SeedableRng};
use std::sync::Mutex;

/// A source of random bytes for identifiers and API keys.
pub trait Entropy: Send + Sync {
    /// Fills `dest` with random bytes.
    fn fill(&self, dest: &mut [u8]);

    /// `N` random bytes, hex: an identifier that is unguessable and visible ASCII.
    fn hex_id(&self, bytes: usize) -> String {
        let mut b = vec![0u8; bytes];
        self.fill(&mut b);
        hex::encode(b)
    }
}

/// The operating system's generator: what a gateway uses unless a test says otherwise.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn fill(&self, dest: &mut [u8]) {
        rand::rng().fill_bytes(dest);
    }
}

/// The same bytes for the same seed, every run. For tests only: anything it generates is
/// predictable by whoever knows the seed.
pub struct SeededEntropy(Mutex<rand::rngs::StdRng>);

impl SeededEntropy {
    pub fn new(seed: u64) -> SeededEntropy {
        SeededEntropy(Mutex::new(rand::rngs::StdRng::seed_from_u64(seed)))
    }
}

impl Entropy for SeededEntropy {
    fn fill(&self, dest: &mut [u8]) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).fill_bytes(dest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_is_reproducible_and_os_is_not() {
        let (a, b) = (SeededEntropy::new(7), SeededEntropy::new(7));
        assert_eq!(a.hex_id(16), b.hex_id(16));
        assert_ne!(a.hex_id(16), SeededEntropy::new(8).hex_id(16));
        let id = OsEntropy.hex_id(16);
        assert_eq!(id.len(), 32);
        assert_ne!(id, OsEntropy.hex_id(16));
    }
}
