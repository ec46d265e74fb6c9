//! The keys mcpgate signs its access tokens with (ES256), and the set it publishes at `/jwks`.
//!
//! With a sealing key (`oauth.signing_key_env`) the private keys are kept in the store, sealed,
//! so every replica and every restart signs and verifies with the same keys; a key older than
//! [`ROTATE_AFTER_S`] is retired at start and a new one made, and retired keys stay published
//! (and accepted) until every token they signed has expired. Without one, a key is made for this
//! process only: access tokens end with the process, refresh tokens (in the store) survive.

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use mcpgate_core::entropy::Entropy;
use mcpgate_core::sealed::SealingKey;
use mcpgate_store::SealedCredential;
use mcpgate_store::oauth::{SigningKeyRecord, SigningKeyStore};
use std::collections::HashMap;
use std::sync::Arc;

/// A signing key signs for this long before a new one takes over (at the next start).
pub const ROTATE_AFTER_S: i64 = 30 * 86_400;

struct Key {
    kid: String,
    encoding: EncodingKey,
    jwk: Jwk,
}

pub struct Signer {
    current: Key,
    /// Every key whose tokens may still be alive, by kid (the current one included).
    verifying: HashMap<String, DecodingKey>,
    published: JwkSet,
}

fn generate(entropy: &dyn Entropy) -> Result<(Key, Vec<u8>), String> {
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
        .map_err(|_| "could not generate a signing key".to_string())?;
    let pkcs8 = pair
        .to_pkcs8v1()
        .map_err(|_| "could not encode the signing key".to_string())?;
    let der = pkcs8.as_ref().to_vec();
    let key = from_der(&entropy.hex_id(8), &der)?;
    Ok((key, der))
}

fn from_der(kid: &str, der: &[u8]) -> Result<Key, String> {
    let encoding = EncodingKey::from_ec_der(der);
    let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::ES256)
        .map_err(|e| format!("signing key {kid}: no public key ({e})"))?;
    jwk.common.key_id = Some(kid.to_string());
    jwk.common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Signature);
    jwk.common.key_algorithm = Some(jsonwebtoken::jwk::KeyAlgorithm::ES256);
    Ok(Key {
        kid: kid.to_string(),
        encoding,
        jwk,
    })
}

impl Signer {
    /// A key for this process only.
    pub fn ephemeral(entropy: &dyn Entropy) -> Result<Signer, String> {
        let (key, _) = generate(entropy)?;
        Signer::with(key, Vec::new())
    }

    /// The store's keys, opened with `sealing`; a new one made (and the old retired) when there
    /// is none younger than [`ROTATE_AFTER_S`]. Keys retired longer ago than `token_life_s` are
    /// no longer published.
    pub async fn from_store(
        store: &Arc<dyn SigningKeyStore>,
        sealing: &SealingKey,
        entropy: &dyn Entropy,
        now: i64,
        token_life_s: i64,
    ) -> Result<Signer, String> {
        let records = store.list_signing_keys().await.map_err(|e| e.to_string())?;
        let mut older = Vec::new();
        let mut current = None;
        for r in records {
            if r.retired_at.is_some_and(|at| at < now - token_life_s) {
                continue;
            }
            let der = sealing
                .open(&r.kid, &r.sealed.nonce, &r.sealed.ciphertext)
                .map_err(|e| {
                    format!(
                        "signing key {}: {e} (is {} the key it was sealed with?)",
                        r.kid, "oauth.signing_key_env"
                    )
                })?;
            let key = from_der(&r.kid, &der)?;
            let fresh = r.retired_at.is_none() && now - r.created_at < ROTATE_AFTER_S;
            if fresh && current.is_none() {
                current = Some(key);
            } else {
                if r.retired_at.is_none() {
                    store.retire_signing_key(&r.kid, now).await.map_err(|e| e.to_string())?;
                }
                older.push(key);
            }
        }
        let current = match current {
            Some(k) => k,
            None => {
                let (key, der) = generate(entropy)?;
                let (nonce, ciphertext) = sealing.seal(&key.kid, &der)?;
                let record = SigningKeyRecord {
                    kid: key.kid.clone(),
                    alg: "ES256".into(),
                    sealed: SealedCredential {
                        nonce: nonce.to_vec(),
                        ciphertext,
                    },
                    public_jwk: serde_json::to_string(&key.jwk).map_err(|e| e.to_string())?,
                    created_at: now,
                    retired_at: None,
                };
                store.insert_signing_key(&record).await.map_err(|e| e.to_string())?;
                tracing::info!(kid = %key.kid, "made a new access-token signing key");
                key
            }
        };
        Signer::with(current, older)
    }

    fn with(current: Key, older: Vec<Key>) -> Result<Signer, String> {
        let mut verifying = HashMap::new();
        let mut keys = Vec::new();
        for k in std::iter::once(&current).chain(older.iter()) {
            let d = DecodingKey::from_jwk(&k.jwk).map_err(|e| format!("signing key {}: {e}", k.kid))?;
            verifying.insert(k.kid.clone(), d);
            keys.push(k.jwk.clone());
        }
        Ok(Signer {
            current,
            verifying,
            published: JwkSet { keys },
        })
    }

    /// Signs `claims` with the current key (its kid in the header).
    pub fn sign(&self, claims: &serde_json::Value) -> Result<String, String> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.current.kid.clone());
        header.typ = Some("at+jwt".into());
        jsonwebtoken::encode(&header, claims, &self.current.encoding).map_err(|e| format!("signing failed: {e}"))
    }

    /// The key that verifies tokens signed with `kid`.
    pub fn verifying_key(&self, kid: &str) -> Option<&DecodingKey> {
        self.verifying.get(kid)
    }

    pub fn jwks(&self) -> &JwkSet {
        &self.published
    }
}
