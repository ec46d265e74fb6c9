//! The rules for managing API keys, in one place: create (the key is returned once), rotate with
//! an overlap, revoke, hold or clear a sealed upstream credential. `mcpgate keys …` is a thin
//! adapter over this; the admin API will be another. Works on any store backend. Each change,
//! once in the store, is announced through a [`Broadcast`] when one is given (with Redis, every
//! replica then re-reads its keys at once rather than at its next poll).

use crate::shared::{Broadcast, Change};
use mcpgate_core::entropy::{Entropy, OsEntropy};
use mcpgate_core::keys::{self, KeyRecord};
use mcpgate_core::principal::{Limits, Role};
use mcpgate_core::redact::Secret;
use mcpgate_core::sealed::SealingKey;
use mcpgate_store::oauth::GrantStore;
use mcpgate_store::{CredentialStore, KeyStore, SealedCredential, StoreError};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum KeyServiceError {
    #[error("no key with id {0}")]
    NotFound(String),
    #[error("key {0} is revoked; create a new one instead")]
    Revoked(String),
    #[error("no upstream credential is held for {0}")]
    NoCredential(String),
    #[error("the credential is empty")]
    EmptyCredential,
    #[error("cannot seal the credential: {0}")]
    Sealing(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type Result<T> = std::result::Result<T, KeyServiceError>;

/// What a new key grants; the id, hash and secret are minted by [`KeyService::create`].
#[derive(Debug, Clone)]
pub struct NewKey {
    pub name: String,
    pub user_id: String,
    pub tenant: Option<String>,
    pub role: Role,
    pub permissions: Vec<String>,
    pub limits: Limits,
    pub expires_at: Option<i64>,
}

/// A key as minted: the secret (shown once, never stored) and the stored record.
pub struct Minted {
    pub key: Secret,
    pub record: KeyRecord,
}

/// A rotation: the new key, and until when the old one keeps working.
pub struct Rotated {
    pub minted: Minted,
    pub old_valid_until: i64,
}

pub struct KeyService {
    keys: Arc<dyn KeyStore>,
    credentials: Arc<dyn CredentialStore>,
    entropy: Arc<dyn Entropy>,
    /// The authorization server's grants: revoking a key ends the grants signed in with it.
    grants: Option<Arc<dyn GrantStore>>,
    /// Where changes are announced (none: the replicas see them at their next poll).
    broadcast: Option<Arc<Broadcast>>,
}

impl KeyService {
    /// New keys from the operating system's generator.
    pub fn new(keys: Arc<dyn KeyStore>, credentials: Arc<dyn CredentialStore>) -> KeyService {
        KeyService {
            keys,
            credentials,
            entropy: Arc::new(OsEntropy),
            grants: None,
            broadcast: None,
        }
    }

    /// On a gateway's stores: its keys, held credentials and grants, announcing each change
    /// through its broadcast (Redis, when `[redis]` is set).
    pub fn for_stores(stores: &crate::server::Stores) -> KeyService {
        KeyService::new(stores.keys.clone(), stores.credentials.clone())
            .with_grants(stores.grants.clone())
            .with_broadcast(stores.broadcast.clone())
    }

    /// Announces every change through `broadcast` once the store has it.
    pub fn with_broadcast(mut self, broadcast: Arc<Broadcast>) -> KeyService {
        self.broadcast = Some(broadcast);
        self
    }

    fn announce(&self, change: Change) {
        if let Some(b) = &self.broadcast {
            b.announce(change);
        }
    }

    /// Revoking a key also revokes the OAuth grants signed in with it, in `grants`.
    pub fn with_grants(mut self, grants: Arc<dyn GrantStore>) -> KeyService {
        self.grants = Some(grants);
        self
    }

    /// New keys from `entropy` instead (a seeded source makes them reproducible in tests).
    pub fn with_entropy(mut self, entropy: Arc<dyn Entropy>) -> KeyService {
        self.entropy = entropy;
        self
    }

    pub fn keys(&self) -> &dyn KeyStore {
        self.keys.as_ref()
    }

    /// Mints and stores a key. Empty permission strings are dropped.
    pub async fn create(&self, new: NewKey, now: i64) -> Result<Minted> {
        let record = KeyRecord {
            key_id: String::new(),
            hash: String::new(),
            name: new.name,
            user_id: new.user_id,
            tenant: new.tenant,
            role: new.role,
            permissions: new.permissions.into_iter().filter(|p| !p.is_empty()).collect(),
            limits: new.limits,
            expires_at: new.expires_at,
            created_at: now,
            revoked: false,
            source: "store".into(),
        };
        let minted = self.mint(record).await?;
        self.announce(Change::Keys);
        Ok(minted)
    }

    async fn mint(&self, template: KeyRecord) -> Result<Minted> {
        let generated = keys::generate_with(self.entropy.as_ref());
        let record = KeyRecord {
            key_id: generated.key_id.clone(),
            hash: generated.hash.clone(),
            ..template
        };
        self.keys.insert_key(&record).await?;
        Ok(Minted {
            key: generated.key,
            record,
        })
    }

    /// A new key with the same grants; the old one keeps working for `overlap_s` more seconds
    /// (or until its own expiry, if sooner). A revoked key cannot be rotated.
    pub async fn rotate(&self, key_id: &str, overlap_s: i64, now: i64) -> Result<Rotated> {
        let old = self.get(key_id).await?;
        if old.revoked {
            return Err(KeyServiceError::Revoked(key_id.into()));
        }
        let minted = self
            .mint(KeyRecord {
                created_at: now,
                ..old.clone()
            })
            .await?;
        let overlap_end = now.saturating_add(overlap_s.max(0));
        let until = old.expires_at.map_or(overlap_end, |e| e.min(overlap_end));
        if !self.keys.set_key_expiry(key_id, Some(until)).await? {
            return Err(KeyServiceError::NotFound(key_id.into()));
        }
        self.announce(Change::Keys);
        Ok(Rotated {
            minted,
            old_valid_until: until,
        })
    }

    /// Revokes the key, and every OAuth grant signed in with it (their refresh tokens at once,
    /// their access tokens at the next read of the revoked grants: at once when announced);
    /// returns how many grants ended.
    pub async fn revoke(&self, key_id: &str, now: i64) -> Result<usize> {
        if !self.keys.revoke_key(key_id).await? {
            return Err(KeyServiceError::NotFound(key_id.into()));
        }
        // The key first: it alone refuses the key and its grants' tokens everywhere.
        self.announce(Change::Keys);
        let ended = match &self.grants {
            Some(g) => g.revoke_grants_via(&format!("key:{key_id}"), now).await?,
            None => 0,
        };
        if ended > 0 {
            self.announce(Change::Grants);
        }
        Ok(ended)
    }

    pub async fn get(&self, key_id: &str) -> Result<KeyRecord> {
        self.keys
            .get_key(key_id)
            .await?
            .ok_or_else(|| KeyServiceError::NotFound(key_id.into()))
    }

    /// Seals `credential` under `sealing` (bound to the key id) and holds it for the key.
    pub async fn hold_credential(
        &self,
        key_id: &str,
        credential: &Secret,
        sealing: &SealingKey,
        now: i64,
    ) -> Result<()> {
        self.get(key_id).await?;
        if credential.expose().is_empty() {
            return Err(KeyServiceError::EmptyCredential);
        }
        let (nonce, ciphertext) = sealing
            .seal(key_id, credential.expose().as_bytes())
            .map_err(KeyServiceError::Sealing)?;
        let sealed = SealedCredential {
            nonce: nonce.to_vec(),
            ciphertext,
        };
        self.credentials.set_credential(key_id, &sealed, now).await?;
        self.announce(Change::Keys);
        Ok(())
    }

    pub async fn clear_credential(&self, key_id: &str) -> Result<()> {
        if self.credentials.remove_credential(key_id).await? {
            self.announce(Change::Keys);
            Ok(())
        } else {
            Err(KeyServiceError::NoCredential(key_id.into()))
        }
    }
}

/// A key's state at `now`, as people read it.
pub fn state(k: &KeyRecord, now: i64) -> &'static str {
    if k.revoked {
        "revoked"
    } else if k.expires_at.is_some_and(|t| now >= t) {
        "expired"
    } else {
        "active"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcpgate_store::memory::MemoryStore;

    fn service() -> (KeyService, Arc<MemoryStore>) {
        let store = Arc::new(MemoryStore::new());
        (KeyService::new(store.clone(), store.clone()), store)
    }

    fn new_key() -> NewKey {
        NewKey {
            name: "ci".into(),
            user_id: "alice".into(),
            tenant: Some("acme".into()),
            role: Role::User,
            permissions: vec!["read".into(), String::new()],
            limits: Limits::default(),
            expires_at: None,
        }
    }

    #[tokio::test]
    async fn a_created_key_verifies_and_only_its_hash_is_stored() {
        let (svc, store) = service();
        let minted = svc.create(new_key(), 100).await.unwrap();
        let stored = store.get_key(&minted.record.key_id).await.unwrap().unwrap();
        assert_eq!(stored.permissions, vec!["read".to_string()], "empty permission dropped");
        assert_ne!(stored.hash, minted.key.expose());
        let index = keys::KeyIndex::new(vec![stored]);
        assert_eq!(index.verify(minted.key.expose(), 101).unwrap().user_id, "alice");
    }

    #[tokio::test]
    async fn keys_come_from_the_injected_entropy() {
        let seeded = || {
            let store = Arc::new(MemoryStore::new());
            KeyService::new(store.clone(), store).with_entropy(Arc::new(mcpgate_core::entropy::SeededEntropy::new(9)))
        };
        let (a, b) = (seeded(), seeded());
        let (ka, kb) = (
            a.create(new_key(), 100).await.unwrap(),
            b.create(new_key(), 100).await.unwrap(),
        );
        assert_eq!(ka.key.expose(), kb.key.expose(), "same seed, same key");
        assert_eq!(ka.record.key_id, kb.record.key_id);
        let expected = keys::generate_with(&mcpgate_core::entropy::SeededEntropy::new(9));
        assert_eq!(ka.key.expose(), expected.key.expose());
        // The default source is the operating system's: two services never agree.
        let (c, d) = (service().0, service().0);
        let (kc, kd) = (
            c.create(new_key(), 100).await.unwrap(),
            d.create(new_key(), 100).await.unwrap(),
        );
        assert_ne!(kc.key.expose(), kd.key.expose());
    }

    #[tokio::test]
    async fn rotation_keeps_the_grants_and_bounds_the_old_key() {
        let (svc, _) = service();
        let old = svc.create(new_key(), 100).await.unwrap();
        let id = old.record.key_id.clone();
        let r = svc.rotate(&id, 3600, 200).await.unwrap();
        assert_eq!(r.old_valid_until, 3800);
        assert_eq!(r.minted.record.user_id, "alice");
        assert_eq!(r.minted.record.tenant.as_deref(), Some("acme"));
        assert_ne!(r.minted.record.key_id, id);
        assert_eq!(svc.get(&id).await.unwrap().expires_at, Some(3800));
        // An old key that expires sooner than the overlap keeps its own expiry.
        let soon = svc
            .create(
                NewKey {
                    expires_at: Some(250),
                    ..new_key()
                },
                100,
            )
            .await
            .unwrap();
        let r = svc.rotate(&soon.record.key_id, 3600, 200).await.unwrap();
        assert_eq!(r.old_valid_until, 250);
        // Revoked keys are not rotated; unknown ones are named.
        svc.revoke(&id, 300).await.unwrap();
        assert!(matches!(
            svc.rotate(&id, 60, 300).await,
            Err(KeyServiceError::Revoked(_))
        ));
        assert!(matches!(
            svc.revoke("nope", 300).await,
            Err(KeyServiceError::NotFound(_))
        ));
    }

    /// A revoked key ends the OAuth grants signed in with it, and only those.
    #[tokio::test]
    async fn revoking_a_key_ends_its_grants() {
        use mcpgate_store::oauth::{GrantRecord, Subject};
        let (svc, store) = service();
        let svc = svc.with_grants(store.clone());
        let a = svc.create(new_key(), 100).await.unwrap().record.key_id;
        let b = svc.create(new_key(), 100).await.unwrap().record.key_id;
        let grant = |gid: &str, key: &str| GrantRecord {
            grant_id: gid.into(),
            client_id: "c".into(),
            subject: Subject {
                user_id: "u".into(),
                tenant: None,
                role: Role::User,
                permissions: vec![],
                via: format!("key:{key}"),
            },
            scopes: vec![],
            resource: "https://gw/mcp".into(),
            created_at: 100,
            expires_at: 10_000,
            revoked_at: None,
        };
        store.create_grant(&grant("ga", &a), None, 0).await.unwrap();
        store.create_grant(&grant("gb", &b), None, 0).await.unwrap();
        assert_eq!(svc.revoke(&a, 200).await.unwrap(), 1);
        assert_eq!(store.get_grant("ga").await.unwrap().unwrap().revoked_at, Some(200));
        assert_eq!(store.get_grant("gb").await.unwrap().unwrap().revoked_at, None);
        assert_eq!(store.revoked_since(200).await.unwrap(), vec!["ga".to_string()]);
    }

    /// Every change is announced once it is in the store; a failed one is not.
    #[tokio::test]
    async fn changes_are_announced_after_the_store_has_them() {
        let (svc, store) = service();
        let b = Broadcast::local();
        let svc = svc.with_grants(store.clone()).with_broadcast(b.clone());
        let (keys, grants) = (b.keys(), b.grants());
        let rung = |n: &Arc<tokio::sync::Notify>| {
            let n = n.clone();
            async move {
                tokio::time::timeout(std::time::Duration::from_millis(50), n.notified())
                    .await
                    .is_ok()
            }
        };
        let id = svc.create(new_key(), 100).await.unwrap().record.key_id;
        assert!(rung(&keys).await, "create");
        svc.rotate(&id, 60, 100).await.unwrap();
        assert!(rung(&keys).await, "rotate");
        assert!(svc.revoke("nope", 100).await.is_err());
        assert!(!rung(&keys).await, "a failed revoke was announced");
        svc.revoke(&id, 100).await.unwrap();
        assert!(rung(&keys).await, "revoke");
        assert!(!rung(&grants).await, "no grant ended, yet grants were announced");
    }

    #[tokio::test]
    async fn held_credentials_are_sealed_and_bound_to_an_existing_key() {
        let (svc, store) = service();
        let k = svc.create(new_key(), 100).await.unwrap();
        let id = k.record.key_id.clone();
        let sealing = SealingKey::parse(&SealingKey::generate_text()).unwrap();
        let secret = Secret::new("upstream-token-value".to_string());
        assert!(matches!(
            svc.hold_credential("nope", &secret, &sealing, 1).await,
            Err(KeyServiceError::NotFound(_))
        ));
        assert!(matches!(
            svc.hold_credential(&id, &Secret::new(String::new()), &sealing, 1).await,
            Err(KeyServiceError::EmptyCredential)
        ));
        svc.hold_credential(&id, &secret, &sealing, 1).await.unwrap();
        let held = store.list_credentials().await.unwrap();
        assert_eq!(held.len(), 1);
        let (_, sealed) = &held[0];
        assert!(
            !sealed.ciphertext.windows(8).any(|w| w == b"upstream"),
            "stored in the clear"
        );
        assert_eq!(
            sealing.open(&id, &sealed.nonce, &sealed.ciphertext).unwrap(),
            b"upstream-token-value"
        );
        svc.clear_credential(&id).await.unwrap();
        assert!(matches!(
            svc.clear_credential(&id).await,
            Err(KeyServiceError::NoCredential(_))
        ));
    }
}
