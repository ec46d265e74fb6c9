//! API-key authentication: the key registry the request path reads — keys from `MCP_API_KEYS`, from a keys file and from
//! the store, merged into one in-memory index. The store is polled for changes every second, so
//! `mcpgate keys revoke` takes effect on a running gateway within a second.

use mcpgate_core::keys::{KeyError, KeyIndex, KeyRecord};
use mcpgate_core::redact::Secret;
use mcpgate_core::sealed::SealingKey;
use mcpgate_store::{CredentialStore, KeyStore, SealedCredential};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

pub struct KeyRegistry {
    index: RwLock<Arc<KeyIndex>>,
    fixed: Vec<KeyRecord>,
    store: Option<Arc<dyn KeyStore>>,
    version: AtomicI64,
    used: Mutex<HashMap<String, i64>>,
    /// Upstream credentials held per key, opened with the sealing key (identity delegation).
    held_store: Option<(Arc<dyn CredentialStore>, SealingKey)>,
    held: RwLock<Arc<HashMap<String, Secret>>>,
}

/// Frees a replaced index on this thread (the reloader's, a blocking one), never on the request
/// path: with a million keys, freeing one takes about a second. Requests hold a snapshot only for
/// the length of one verification, so the wait for them to let go is short.
fn free_here(mut old: Arc<KeyIndex>) {
    for _ in 0..1000 {
        match Arc::try_unwrap(old) {
            Ok(index) => {
                drop(index);
                return;
            }
            Err(still_shared) => old = still_shared,
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

impl KeyRegistry {
    pub async fn new(
        fixed: Vec<KeyRecord>,
        store: Option<Arc<dyn KeyStore>>,
        held_store: Option<(Arc<dyn CredentialStore>, SealingKey)>,
    ) -> Result<Arc<KeyRegistry>, String> {
        let reg = Arc::new(KeyRegistry {
            index: RwLock::new(Arc::new(KeyIndex::default())),
            fixed,
            store,
            version: AtomicI64::new(i64::MIN),
            used: Mutex::new(HashMap::new()),
            held_store,
            held: RwLock::new(Arc::new(HashMap::new())),
        });
        reg.reload().await?;
        Ok(reg)
    }

    /// The upstream credential held for `key_id`, if any.
    pub fn held_credential(&self, key_id: &str) -> Option<Secret> {
        self.held.read().unwrap_or_else(|e| e.into_inner()).get(key_id).cloned()
    }

    /// A credential this process has just sealed into the store, usable here at once (the
    /// store's change reaches the other replicas, and this one again, through [`Self::watch`]).
    pub fn hold_now(&self, owner: &str, credential: Secret) {
        let mut held = self.held.write().unwrap_or_else(|e| e.into_inner());
        let mut fresh = HashMap::clone(&held);
        fresh.insert(owner.to_string(), credential);
        *held = Arc::new(fresh);
    }

    /// Reads every key (and held credential) from the store, then builds and swaps in the new
    /// index on the blocking pool: at a million keys that takes seconds of CPU.
    async fn reload(self: &Arc<Self>) -> Result<(), String> {
        let mut all = self.fixed.clone();
        let mut version = None;
        if let Some(store) = &self.store {
            // The version first: a change between the two reads is picked up by the next poll.
            version = Some(store.keys_version().await.map_err(|e| e.to_string())?);
            all.extend(store.all_keys().await.map_err(|e| e.to_string())?);
        }
        let sealed = match &self.held_store {
            Some((creds, _)) => Some(creds.list_credentials().await.map_err(|e| e.to_string())?),
            None => None,
        };
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.install(all, version, sealed))
            .await
            .map_err(|e| format!("key reload failed: {e}"))
    }

    fn install(&self, all: Vec<KeyRecord>, version: Option<i64>, sealed: Option<Vec<(String, SealedCredential)>>) {
        let index = Arc::new(KeyIndex::new(all));
        let old = std::mem::replace(&mut *self.index.write().unwrap_or_else(|e| e.into_inner()), index);
        if let Some(v) = version {
            self.version.store(v, Ordering::Relaxed);
        }
        free_here(old);
        if let (Some((_, sealing)), Some(sealed)) = (&self.held_store, sealed) {
            let mut held = HashMap::new();
            for (key_id, sealed) in sealed {
                match sealing.open(&key_id, &sealed.nonce, &sealed.ciphertext) {
                    Ok(plain) => {
                        held.insert(key_id, Secret::new(String::from_utf8_lossy(&plain).into_owned()));
                    }
                    Err(e) => tracing::warn!(key_id = %key_id, "held upstream credential not usable: {e}"),
                }
            }
            *self.held.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(held);
        }
    }

    pub fn snapshot(&self) -> Arc<KeyIndex> {
        self.index.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn len(&self) -> usize {
        self.snapshot().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Verifies a key; on success remembers that it was used (written to the store in batches).
    pub fn verify(&self, presented: &str, now: i64) -> Result<KeyRecord, KeyError> {
        let index = self.snapshot();
        let record = index.verify(presented, now)?.clone();
        if record.source == "store" {
            self.used
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(record.key_id.clone(), now);
        }
        Ok(record)
    }

    /// Reloads when the store changed and flushes last-used times; runs every second.
    pub async fn watch(self: Arc<Self>) {
        let Some(store) = self.store.clone() else { return };
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut flushes = 0u32;
        loop {
            tick.tick().await;
            flushes += 1;
            match store.keys_version().await {
                Ok(v) if v != self.version.load(Ordering::Relaxed) => {
                    if let Err(e) = self.reload().await {
                        tracing::warn!("cannot reload keys: {e}");
                    } else {
                        tracing::debug!(target: "mcpgate::auth", "keys reloaded from the store");
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!("cannot read the key store: {e}"),
            }
            if flushes.is_multiple_of(10) {
                self.flush_used_now().await;
            }
        }
    }

    /// Writes pending last-used times now (every 10 s, and on shutdown).
    pub async fn flush_used_now(&self) {
        let Some(store) = &self.store else { return };
        let used: Vec<(String, i64)> = self.used.lock().unwrap_or_else(|e| e.into_inner()).drain().collect();
        if !used.is_empty()
            && let Err(e) = store.touch_keys(&used).await
        {
            tracing::warn!("cannot record key use: {e}");
        }
    }
}

/// API-key authentication: a key this registry holds (store, `MCP_API_KEYS`, keys file, the
/// default key). A key it does not know is "not mine" (introspection or the external verifier
/// may know it); a revoked or expired one is refused here.
impl super::Authenticator for KeyRegistry {
    async fn authenticate(&self, a: &super::Attempt<'_>) -> super::Outcome {
        use super::{AuthFailure, Outcome};
        use mcpgate_core::keys::KeyError;
        let Some(p) = a.presented else {
            return Outcome::NotMine;
        };
        let method = if p.from == super::extract::Location::DefaultEnv {
            mcpgate_core::principal::AuthMethod::DefaultKey
        } else {
            mcpgate_core::principal::AuthMethod::ApiKey
        };
        match self.verify(p.secret.expose(), a.now) {
            Ok(record) => {
                tracing::debug!(target: "mcpgate::auth", key_id = %record.key_id, via = p.from.as_str(), "key accepted");
                Outcome::Authenticated(record.principal(method))
            }
            Err(KeyError::Revoked) => Outcome::Refused(AuthFailure::Revoked),
            Err(KeyError::Expired) => Outcome::Refused(AuthFailure::Expired),
            Err(KeyError::Unknown) => Outcome::NotMine,
        }
    }
}
