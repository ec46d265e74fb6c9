//! The keys mcpgate signs its access tokens (and web sessions) with (ES256), and the set it
//! publishes at `/jwks`.
//!
//! Keys live in a [`Keyring`]: the store, sealed, when a sealing key is set (`oauth.signing_key_env`),
//! so every replica and every restart signs and verifies with the same keys; else a store of this
//! process's own (access tokens then end with the process; refresh tokens, in the real store,
//! survive). Every gateway reloads the ring every [`RELOAD_EVERY_S`] seconds. Rotation while
//! running: once the signing key is older than `oauth.signing_key_rotation_days`, a new key is
//! made and *published first* — it signs only after [`PUBLISH_BEFORE_USE_S`], by when every
//! replica has reloaded and can verify it. The key it replaces is retired and stays published
//! (and accepted) until every token it signed has expired; a day after that it is forgotten.
//! Every replica picks the same signing key (the newest published one, ties broken by kid), so
//! two replicas rotating at once agree on the next reload.

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use mcpgate_core::entropy::Entropy;
use mcpgate_core::sealed::SealingKey;
use mcpgate_store::SealedCredential;
use mcpgate_store::oauth::{SigningKeyRecord, SigningKeyStore};
use std::collections::HashMap;
use std::sync::Arc;

/// The `typ` of an access token (RFC 9068).
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// How long a key signs before a new one takes over, unless configured.
pub const ROTATE_AFTER_S: i64 = 30 * 86_400;
/// A new key is published this long before it signs.
pub const PUBLISH_BEFORE_USE_S: i64 = 180;
/// How often each gateway reads the ring again (well under [`PUBLISH_BEFORE_USE_S`]).
pub const RELOAD_EVERY_S: u64 = 60;
/// A retired key is forgotten this long after its last token expired.
const FORGET_AFTER_S: i64 = 86_400;

struct Key {
    kid: String,
    encoding: EncodingKey,
    jwk: Jwk,
}

/// The keys as of one reading of the ring: the one that signs, and every one that verifies.
pub struct Signer {
    current: Key,
    /// Every key whose tokens may still be alive, by kid (the current one and any published
    /// ahead of use included).
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

/// Where the signing keys live, how they are sealed, and when they rotate.
pub struct Keyring {
    store: Arc<dyn SigningKeyStore>,
    sealing: SealingKey,
    rotate_after_s: i64,
    /// The longest a token signed by a key lives after the key stops signing.
    token_life_s: i64,
}

impl Keyring {
    /// Keys in `store`, sealed with `sealing`: shared by every replica and restart.
    pub fn sealed(
        store: Arc<dyn SigningKeyStore>,
        sealing: SealingKey,
        rotate_after_s: i64,
        token_life_s: i64,
    ) -> Keyring {
        Keyring {
            store,
            sealing,
            rotate_after_s,
            token_life_s,
        }
    }

    /// Keys for this process only: a store of its own, sealed with a key nobody else has.
    pub fn ephemeral(rotate_after_s: i64, token_life_s: i64) -> Result<Keyring, String> {
        let store: Arc<dyn SigningKeyStore> = Arc::new(mcpgate_store::memory::MemoryStore::new());
        let sealing = SealingKey::parse(&SealingKey::generate_text())?;
        Ok(Keyring::sealed(store, sealing, rotate_after_s, token_life_s))
    }

    async fn make(&self, entropy: &dyn Entropy, now: i64) -> Result<SigningKeyRecord, String> {
        let (key, der) = generate(entropy)?;
        let (nonce, ciphertext) = self.sealing.seal(&key.kid, &der)?;
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
        self.store
            .insert_signing_key(&record)
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(kid = %key.kid, "made a new access-token signing key");
        Ok(record)
    }

    /// Reads the ring: rotates when the signing key is due (the new key published first),
    /// retires keys a newer one replaced, forgets keys whose tokens are long gone.
    pub async fn load(&self, entropy: &dyn Entropy, now: i64) -> Result<Signer, String> {
        let mut live = Vec::new();
        for r in self.store.list_signing_keys().await.map_err(|e| e.to_string())? {
            match r.retired_at {
                Some(at) if at.saturating_add(self.token_life_s) < now => {
                    if at.saturating_add(self.token_life_s).saturating_add(FORGET_AFTER_S) < now {
                        // Another replica may have done it already: either way it is gone.
                        let _ = self.store.remove_signing_key(&r.kid).await;
                    }
                }
                _ => live.push(r),
            }
        }
        // Newest first; ties by kid, so every replica orders them alike.
        live.sort_by(|a, b| (b.created_at, &b.kid).cmp(&(a.created_at, &a.kid)));
        let signing: Vec<&SigningKeyRecord> = live.iter().filter(|r| r.retired_at.is_none()).collect();
        let published = signing
            .iter()
            .find(|r| r.created_at <= now - PUBLISH_BEFORE_USE_S)
            .or(signing.first())
            .map(|r| (*r).clone());
        let mut made = None;
        let current = match published {
            Some(c) => c,
            // Nothing to sign with (a first start): a new key signs at once.
            None => {
                let r = self.make(entropy, now).await?;
                made = Some(r.clone());
                r
            }
        };
        let newest_created = signing.first().map_or(current.created_at, |r| r.created_at);
        if made.is_none() && now - current.created_at >= self.rotate_after_s && newest_created <= current.created_at {
            // Due: the next key is published now and signs once every replica knows it.
            made = Some(self.make(entropy, now).await?);
        }
        for r in &signing {
            if (r.created_at, &r.kid) < (current.created_at, &current.kid) {
                self.store
                    .retire_signing_key(&r.kid, now)
                    .await
                    .map_err(|e| e.to_string())?;
                tracing::info!(kid = %r.kid, "retired an access-token signing key (still published while its tokens live)");
            }
        }
        if let Some(r) = made
            && r.kid != current.kid
        {
            live.push(r);
        }
        let open = |r: &SigningKeyRecord| -> Result<Key, String> {
            let der = self
                .sealing
                .open(&r.kid, &r.sealed.nonce, &r.sealed.ciphertext)
                .map_err(|e| {
                    format!(
                        "signing key {}: {e} (is oauth.signing_key_env the key it was sealed with?)",
                        r.kid
                    )
                })?;
            from_der(&r.kid, &der)
        };
        let mut others = Vec::new();
        for r in live.iter().filter(|r| r.kid != current.kid) {
            others.push(open(r)?);
        }
        Signer::with(open(&current)?, others)
    }
}

impl Signer {
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

    /// Signs access-token `claims` with the current key (its kid in the header).
    pub fn sign(&self, claims: &serde_json::Value) -> Result<String, String> {
        self.sign_typed(ACCESS_TOKEN_TYP, claims)
    }

    /// Signs `claims` as a JWT of type `typ` (what it is for: an access token, a web session).
    pub fn sign_typed(&self, typ: &str, claims: &serde_json::Value) -> Result<String, String> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.current.kid.clone());
        header.typ = Some(typ.into());
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use mcpgate_core::entropy::OsEntropy;

    const DAY: i64 = 86_400;

    fn kids(s: &Signer) -> Vec<String> {
        let mut k: Vec<String> = s
            .published
            .keys
            .iter()
            .filter_map(|k| k.common.key_id.clone())
            .collect();
        k.sort();
        k
    }

    /// Two replicas on one store, rotating at the same moment: each makes a key, and on the next
    /// reading both sign with the same one and verify both.
    #[tokio::test]
    async fn replicas_agree_on_the_signing_key() {
        let store: Arc<dyn SigningKeyStore> = Arc::new(mcpgate_store::memory::MemoryStore::new());
        let text = SealingKey::generate_text();
        let ring = || Keyring::sealed(store.clone(), SealingKey::parse(&text).unwrap(), DAY, 3600);
        let (a, b) = (ring(), ring());
        let e = OsEntropy;
        let t0 = 1_000_000;
        let first = a.load(&e, t0).await.unwrap();
        let again = b.load(&e, t0 + 1).await.unwrap();
        assert_eq!(
            first.current.kid, again.current.kid,
            "a second replica made its own key"
        );
        // Both due at once: both publish a next key.
        let (a1, b1) = (
            a.load(&e, t0 + DAY + 10).await.unwrap(),
            b.load(&e, t0 + DAY + 10).await.unwrap(),
        );
        assert_eq!(
            a1.current.kid, first.current.kid,
            "a fresh key signed before publication"
        );
        assert_eq!(b1.current.kid, first.current.kid);
        let later = t0 + DAY + 10 + PUBLISH_BEFORE_USE_S;
        let (a2, b2) = (a.load(&e, later).await.unwrap(), b.load(&e, later).await.unwrap());
        assert_eq!(a2.current.kid, b2.current.kid, "replicas sign with different keys");
        assert_ne!(a2.current.kid, first.current.kid);
        assert_eq!(kids(&a2), kids(&b2));
        for s in [&a2, &b2] {
            for k in kids(s) {
                assert!(s.verifying_key(&k).is_some());
            }
        }
        // A token signed by one verifies at the other.
        let jwt = a2.sign(&serde_json::json!({"sub": "x"})).unwrap();
        let kid = jsonwebtoken::decode_header(&jwt).unwrap().kid.unwrap();
        assert!(b2.verifying_key(&kid).is_some());
    }

    /// A ring whose store cannot be opened with this sealing key is an error, not a new key.
    #[tokio::test]
    async fn a_wrong_sealing_key_is_refused() {
        let store: Arc<dyn SigningKeyStore> = Arc::new(mcpgate_store::memory::MemoryStore::new());
        let a = Keyring::sealed(
            store.clone(),
            SealingKey::parse(&SealingKey::generate_text()).unwrap(),
            DAY,
            3600,
        );
        let b = Keyring::sealed(
            store,
            SealingKey::parse(&SealingKey::generate_text()).unwrap(),
            DAY,
            3600,
        );
        a.load(&OsEntropy, 1_000).await.unwrap();
        let err = b
            .load(&OsEntropy, 1_001)
            .await
            .err()
            .expect("opened with the wrong key");
        assert!(err.contains("oauth.signing_key_env"), "{err}");
    }
}
