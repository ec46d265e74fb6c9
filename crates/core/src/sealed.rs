//! Credentials the gateway holds for users (identity delegation): sealed with AES-256-GCM under a
//! key the operator provides, with the owning key id as associated data, so a sealed value moved
//! to another key's row does not open.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;

pub struct SealingKey(Aes256Gcm);

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey(<redacted>)")
    }
}

impl SealingKey {
    /// From 32 bytes written as base64 (standard or URL-safe) or 64 hex characters.
    pub fn parse(text: &str) -> Result<SealingKey, String> {
        let t = text.trim();
        let bytes = if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(t).map_err(|_| "not hex".to_string())?
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(t)
                .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(t))
                .map_err(|_| "the encryption key must be 32 bytes as base64 or 64 hex characters".to_string())?
        };
        if bytes.len() != 32 {
            return Err(format!("the encryption key must be 32 bytes, got {}", bytes.len()));
        }
        Aes256Gcm::new_from_slice(&bytes)
            .map(SealingKey)
            .map_err(|_| "invalid key length".into())
    }

    pub fn generate_text() -> String {
        let k: [u8; 32] = rand::random();
        base64::engine::general_purpose::STANDARD.encode(k)
    }

    /// Seals `plaintext` for `owner`: returns (nonce, ciphertext).
    pub fn seal(&self, owner: &str, plaintext: &[u8]) -> Result<([u8; 12], Vec<u8>), String> {
        let nonce: [u8; 12] = rand::random();
        let ct = self
            .0
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: owner.as_bytes(),
                },
            )
            .map_err(|_| "encryption failed".to_string())?;
        Ok((nonce, ct))
    }

    pub fn open(&self, owner: &str, nonce: &[u8], ciphertext: &[u8]) -> Result<Vec<u8>, String> {
        if nonce.len() != 12 {
            return Err("bad nonce".into());
        }
        self.0
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: owner.as_bytes(),
                },
            )
            .map_err(|_| "cannot open a held credential: wrong encryption key or tampered data".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn seals_and_binds_to_owner() {
        let k = SealingKey::parse(&SealingKey::generate_text()).unwrap();
        let (n, ct) = k.seal("key-a", b"upstream-secret").unwrap();
        assert!(!ct.windows(6).any(|w| w == b"secret"));
        assert_eq!(k.open("key-a", &n, &ct).unwrap(), b"upstream-secret");
        assert!(k.open("key-b", &n, &ct).is_err());
        let other = SealingKey::parse(&SealingKey::generate_text()).unwrap();
        assert!(other.open("key-a", &n, &ct).is_err());
        assert!(SealingKey::parse("short").is_err());
        assert!(format!("{k:?}").contains("redacted"));
    }
}
