//! API-key authentication: the key registry the request path reads — keys from `MCP_API_KEYS`, from a keys file and from
//! the store, merged into one in-memory index. The store's version is polled every
//! `store.reload_interval_ms` (default 250 ms), and at once when a revocation notice wakes the
//! poller (`shared::Broadcast`: Redis pub/sub between replicas); when it has moved, only what
//! changed since is read, and a new index is made that shares all of the old one but the few
//! shards the changes touch (see [`KeyIndex`]), so `mcpgate keys revoke` takes effect on every
//! running gateway within about a quarter of a second, and a revocation announced through Redis
//! within a few milliseconds, whatever the number of keys. The whole store is read again only at
//! start-up, or when the store cannot list its changes.

use mcpgate_core::keys::{KeyError, KeyIndex, KeyRecord};
use mcpgate_core::redact::Secret;
use mcpgate_core::sealed::SealingKey;
use mcpgate_store::{CredentialStore, KeyChanges, KeyStore, SealedCredential};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;
use tokio::sync::Notify;

/// How often the store's version is read (one row) by default (`store.reload_interval_ms`).
pub const POLL: Duration = Duration::from_millis(250);
/// How often last-used times are written.
const FLUSH: Duration = Duration::from_secs(10);
/// The shortest time between two reads a wake-up causes: a flood of notices is a few reads a
/// second (the same as `shared::WAKE_GAP`, which this module may not import).
const WAKE_GAP: Duration = Duration::from_millis(50);

pub struct KeyRegistry {
    index: RwLock<Arc<KeyIndex>>,
    fixed: Vec<KeyRecord>,
    store: Option<Arc<dyn KeyStore>>,
    /// The store's version the index holds (written by the watcher only).
    version: AtomicI64,
    used: Mutex<HashMap<String, i64>>,
    /// Upstream credentials held per key, opened with the sealing key (identity delegation).
    held_store: Option<(Arc<dyn CredentialStore>, SealingKey)>,
    held: RwLock<HashMap<String, Secret>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Frees an index replaced by a full reload on this thread (the reloader's, a blocking one),
/// never on the request path: with a million keys, freeing one takes a good fraction of a second.
/// Requests hold a snapshot only for the length of one verification, so the wait for them to let
/// go is short. (An index replaced by changes shares all but a few shards with the new one:
/// freeing it costs next to nothing, wherever it happens.)
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
            held: RwLock::new(HashMap::new()),
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
        self.held
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(owner.to_string(), credential);
    }

    /// Reads every key (and held credential) from the store, then builds and swaps in the new
    /// index on the blocking pool: at a million keys that takes seconds of CPU. At start-up, and
    /// when the store cannot list its changes.
    async fn reload(self: &Arc<Self>) -> Result<(), String> {
        let mut all = self.fixed.clone();
        let mut version = None;
        if let Some(store) = &self.store {
            // The version first: a change between the two reads is read again by the next poll.
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
        let held = sealed.map(|sealed| {
            sealed
                .into_iter()
                .filter_map(|(key_id, sealed)| Some((key_id.clone(), self.open(&key_id, &sealed)?)))
                .collect::<HashMap<_, _>>()
        });
        let old = std::mem::replace(&mut *self.index.write().unwrap_or_else(|e| e.into_inner()), index);
        let old_held =
            held.map(|held| std::mem::replace(&mut *self.held.write().unwrap_or_else(|e| e.into_inner()), held));
        if let Some(v) = version {
            self.version.store(v, Ordering::Relaxed);
        }
        drop(old_held);
        free_here(old);
    }

    /// Opens a held credential; `None` (and a warning) when it cannot be.
    fn open(&self, key_id: &str, sealed: &SealedCredential) -> Option<Secret> {
        let (_, sealing) = self.held_store.as_ref()?;
        match sealing.open(key_id, &sealed.nonce, &sealed.ciphertext) {
            Ok(plain) => Some(Secret::new(String::from_utf8_lossy(&plain).into_owned())),
            Err(e) => {
                tracing::warn!(key_id = %key_id, "held upstream credential not usable: {e}");
                None
            }
        }
    }

    /// Brings the index up to the store's current version: the changes since the one it holds,
    /// or everything when the store cannot list them. Only the watcher calls it (and `new`
    /// reloads before there is a watcher), so one index is made from the last at a time.
    async fn catch_up(self: &Arc<Self>, store: &dyn KeyStore) -> Result<(), String> {
        let known = self.version.load(Ordering::Relaxed);
        match store.key_changes_since(known).await.map_err(|e| e.to_string())? {
            Some(changes) => {
                let n = changes.keys.len() + changes.removed_keys.len() + changes.credentials.len();
                let me = self.clone();
                tokio::task::spawn_blocking(move || me.apply(changes))
                    .await
                    .map_err(|e| format!("applying key changes failed: {e}"))?;
                tracing::debug!(target: "mcpgate::auth", changes = n, "key changes applied from the store");
            }
            None => {
                self.reload().await?;
                tracing::debug!(target: "mcpgate::auth", "keys reloaded from the store");
            }
        }
        Ok(())
    }

    /// Makes the next index from the current one with `changes` (it copies the shards they touch
    /// and shares the rest), and applies them to the held credentials.
    fn apply(&self, changes: KeyChanges) {
        let KeyChanges {
            version,
            keys,
            removed_keys,
            credentials,
        } = changes;
        // A key gone from the store with the id of a configured one: the configured key is back,
        // as a full reload (configured keys, then the store's) would have it.
        let mut records = Vec::with_capacity(keys.len());
        let mut removed = Vec::new();
        for id in removed_keys {
            match self.fixed.iter().rev().find(|r| r.key_id == id) {
                Some(configured) => records.push(configured.clone()),
                None => removed.push(id),
            }
        }
        records.extend(keys);
        let next = Arc::new(self.snapshot().with_changes(records, removed));
        let old = std::mem::replace(&mut *self.index.write().unwrap_or_else(|e| e.into_inner()), next);
        if self.held_store.is_some() && !credentials.is_empty() {
            let opened: Vec<(String, Option<Secret>)> = credentials
                .into_iter()
                .map(|(key_id, sealed)| {
                    let secret = sealed.and_then(|s| self.open(&key_id, &s));
                    (key_id, secret)
                })
                .collect();
            let mut held = self.held.write().unwrap_or_else(|e| e.into_inner());
            for (key_id, secret) in opened {
                match secret {
                    Some(secret) => held.insert(key_id, secret),
                    None => held.remove(&key_id),
                };
            }
        }
        self.version.store(version, Ordering::Relaxed);
        drop(old);
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
            lock(&self.used).insert(record.key_id.clone(), now);
        }
        Ok(record)
    }

    /// Follows the store's changes — its version read every `every`, and at once when `wake` is
    /// rung (a revocation notice; many rings before a read count once, and wake-ups cause at
    /// most one read per 50 ms) — and flushes last-used times every 10 s.
    pub async fn watch(self: Arc<Self>, every: Duration, wake: Arc<Notify>) {
        let Some(store) = self.store.clone() else { return };
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut flush = tokio::time::interval_at(tokio::time::Instant::now() + FLUSH, FLUSH);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_read = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = wake.notified() => {
                    let since = last_read.elapsed();
                    if since < WAKE_GAP {
                        tokio::time::sleep(WAKE_GAP - since).await;
                    }
                    tick.reset();
                }
                _ = flush.tick() => {
                    self.flush_used_now().await;
                    continue;
                }
            }
            last_read = tokio::time::Instant::now();
            self.follow(store.as_ref()).await;
        }
    }

    /// One look at the store: catches up when its version has moved.
    async fn follow(self: &Arc<Self>, store: &dyn KeyStore) {
        match store.keys_version().await {
            Ok(v) if v != self.version.load(Ordering::Relaxed) => {
                if let Err(e) = self.catch_up(store).await {
                    tracing::warn!("cannot follow the key store: {e}");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("cannot read the key store: {e}"),
        }
    }

    /// Writes pending last-used times now (every 10 s, and on shutdown).
    pub async fn flush_used_now(&self) {
        let Some(store) = &self.store else { return };
        let used: Vec<(String, i64)> = lock(&self.used).drain().collect();
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

#[cfg(test)]
mod tests {
    use super::*;
    use mcpgate_core::keys::{NewKey, generate, hash_hex};
    use mcpgate_core::principal::{Limits, Role};
    use mcpgate_store::memory::MemoryStore;

    fn record(key_id: &str, hash: &str, source: &str) -> KeyRecord {
        KeyRecord {
            key_id: key_id.into(),
            hash: hash.into(),
            name: format!("{source} {key_id}"),
            user_id: "u".into(),
            tenant: None,
            role: Role::User,
            permissions: vec!["*".into()],
            limits: Limits::default(),
            expires_at: None,
            created_at: 0,
            revoked: false,
            source: source.into(),
        }
    }

    fn stored(k: &NewKey) -> KeyRecord {
        record(&k.key_id, &k.hash, "store")
    }

    fn err(r: Result<KeyRecord, KeyError>) -> Option<KeyError> {
        r.err()
    }

    /// A store with `n` keys.
    async fn store_with(n: usize) -> (Arc<MemoryStore>, Vec<NewKey>) {
        let store = Arc::new(MemoryStore::new());
        let keys: Vec<NewKey> = (0..n).map(|_| generate()).collect();
        for k in &keys {
            store.insert_key(&stored(k)).await.unwrap();
        }
        (store, keys)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn store_changes_make_an_index_that_shares_the_rest() {
        let (store, keys) = store_with(2000).await;
        let (a, b, c) = (&keys[0], &keys[1], generate());
        let reg = KeyRegistry::new(Vec::new(), Some(store.clone()), None).await.unwrap();
        let base = reg.snapshot();
        assert!(reg.verify(a.key.expose(), 10).is_ok());

        store.revoke_key(&a.key_id).await.unwrap();
        store.set_key_expiry(&b.key_id, Some(50)).await.unwrap();
        store.insert_key(&stored(&c)).await.unwrap();
        store.touch_keys(&[(b.key_id.clone(), 5)]).await.unwrap();
        reg.catch_up(store.as_ref()).await.unwrap();

        assert_eq!(err(reg.verify(a.key.expose(), 10)), Some(KeyError::Revoked));
        assert!(reg.verify(b.key.expose(), 10).is_ok());
        assert_eq!(err(reg.verify(b.key.expose(), 50)), Some(KeyError::Expired));
        assert!(reg.verify(c.key.expose(), 10).is_ok());
        let now = reg.snapshot();
        assert_eq!(now.len(), 2001);
        assert!(
            now.shards() >= 4 && now.shards_shared_with(&base) >= now.shards() - 3,
            "{} of {} shards copied for 3 changes",
            now.shards() - now.shards_shared_with(&base),
            now.shards()
        );
        assert_eq!(reg.version.load(Ordering::Relaxed), store.keys_version().await.unwrap());
        // Nothing changed: nothing copied.
        reg.catch_up(store.as_ref()).await.unwrap();
        assert_eq!(reg.snapshot().shards_shared_with(&now), now.shards());
    }

    /// Configured keys keep their place: a store key with a configured key's id takes it, as at
    /// start-up; when that store key is deleted, the configured one is back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn configured_keys_keep_their_precedence() {
        let store = Arc::new(MemoryStore::new());
        let configured = record("same", &hash_hex("configured-legacy-key"), "env");
        let reg = KeyRegistry::new(vec![configured], Some(store.clone()), None)
            .await
            .unwrap();
        assert!(reg.verify("configured-legacy-key", 10).is_ok());

        store
            .insert_key(&record("same", &hash_hex("store-legacy-key"), "store"))
            .await
            .unwrap();
        reg.catch_up(store.as_ref()).await.unwrap();
        let got = reg.verify("store-legacy-key", 10).unwrap();
        assert_eq!(got.source, "store");
        assert_eq!(err(reg.verify("configured-legacy-key", 10)), Some(KeyError::Unknown));
        // The same at a fresh start.
        let fresh = KeyRegistry::new(
            vec![record("same", &hash_hex("configured-legacy-key"), "env")],
            Some(store.clone()),
            None,
        )
        .await
        .unwrap();
        assert_eq!(fresh.verify("store-legacy-key", 10).unwrap().source, "store");
        assert_eq!(err(fresh.verify("configured-legacy-key", 10)), Some(KeyError::Unknown));

        // Deleted from the store by hand (the memory store cannot: the change as a store lists it).
        let version = store.keys_version().await.unwrap() + 1;
        let me = reg.clone();
        tokio::task::spawn_blocking(move || {
            me.apply(KeyChanges {
                version,
                removed_keys: vec!["same".into(), "other".into()],
                ..KeyChanges::default()
            })
        })
        .await
        .unwrap();
        assert_eq!(reg.verify("configured-legacy-key", 10).unwrap().source, "env");
        assert_eq!(err(reg.verify("store-legacy-key", 10)), Some(KeyError::Unknown));
        assert_eq!(reg.len(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn held_credentials_follow_the_store() {
        let store = Arc::new(MemoryStore::new());
        let text = SealingKey::generate_text();
        let sealing = SealingKey::parse(&text).unwrap();
        let seal = |owner: &str, plain: &str| {
            let (nonce, ciphertext) = sealing.seal(owner, plain.as_bytes()).unwrap();
            SealedCredential {
                nonce: nonce.to_vec(),
                ciphertext,
            }
        };
        store.set_credential("k1", &seal("k1", "first"), 1).await.unwrap();
        let held_store: Arc<dyn CredentialStore> = store.clone();
        let reg = KeyRegistry::new(
            Vec::new(),
            Some(store.clone()),
            Some((held_store, SealingKey::parse(&text).unwrap())),
        )
        .await
        .unwrap();
        let held = |id: &str| reg.held_credential(id).map(|s| s.expose().to_string());
        assert_eq!(held("k1").as_deref(), Some("first"));

        store.set_credential("k1", &seal("k1", "second"), 2).await.unwrap();
        store.set_credential("k2", &seal("k2", "other"), 2).await.unwrap();
        reg.catch_up(store.as_ref()).await.unwrap();
        assert_eq!(held("k1").as_deref(), Some("second"));
        assert_eq!(held("k2").as_deref(), Some("other"));

        store.remove_credential("k1").await.unwrap();
        // Sealed for another owner: cannot be opened as k2's, so k2 holds nothing usable.
        store.set_credential("k2", &seal("k1", "misbound"), 3).await.unwrap();
        reg.catch_up(store.as_ref()).await.unwrap();
        assert_eq!(held("k1"), None);
        assert_eq!(held("k2"), None);
    }

    /// A store that cannot list its changes (the trait's default): every change reloads it all.
    struct Unlisted(MemoryStore);

    #[mcpgate_store::async_trait]
    impl KeyStore for Unlisted {
        async fn list_keys(&self) -> mcpgate_store::Result<Vec<KeyRecord>> {
            self.0.list_keys().await
        }
        async fn get_key(&self, key_id: &str) -> mcpgate_store::Result<Option<KeyRecord>> {
            self.0.get_key(key_id).await
        }
        async fn insert_key(&self, record: &KeyRecord) -> mcpgate_store::Result<()> {
            self.0.insert_key(record).await
        }
        async fn revoke_key(&self, key_id: &str) -> mcpgate_store::Result<bool> {
            self.0.revoke_key(key_id).await
        }
        async fn set_key_expiry(&self, key_id: &str, expires_at: Option<i64>) -> mcpgate_store::Result<bool> {
            self.0.set_key_expiry(key_id, expires_at).await
        }
        async fn touch_keys(&self, used: &[(String, i64)]) -> mcpgate_store::Result<()> {
            self.0.touch_keys(used).await
        }
        async fn last_used(&self, key_id: &str) -> mcpgate_store::Result<Option<i64>> {
            self.0.last_used(key_id).await
        }
        async fn keys_version(&self) -> mcpgate_store::Result<i64> {
            self.0.keys_version().await
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_store_without_changes_is_reloaded_whole() {
        let store = Arc::new(Unlisted(MemoryStore::new()));
        let keys: Vec<NewKey> = (0..1000).map(|_| generate()).collect();
        for k in &keys {
            store.insert_key(&stored(k)).await.unwrap();
        }
        let reg = KeyRegistry::new(Vec::new(), Some(store.clone()), None).await.unwrap();
        let base = reg.snapshot();
        store.revoke_key(&keys[0].key_id).await.unwrap();
        reg.catch_up(store.as_ref()).await.unwrap();
        assert_eq!(err(reg.verify(keys[0].key.expose(), 10)), Some(KeyError::Revoked));
        assert_eq!(reg.snapshot().shards_shared_with(&base), 0, "not built anew");
    }

    /// A store that counts how often its version is read.
    struct Counted {
        inner: MemoryStore,
        version_reads: std::sync::atomic::AtomicUsize,
    }

    #[mcpgate_store::async_trait]
    impl KeyStore for Counted {
        async fn list_keys(&self) -> mcpgate_store::Result<Vec<KeyRecord>> {
            self.inner.list_keys().await
        }
        async fn get_key(&self, key_id: &str) -> mcpgate_store::Result<Option<KeyRecord>> {
            self.inner.get_key(key_id).await
        }
        async fn insert_key(&self, record: &KeyRecord) -> mcpgate_store::Result<()> {
            self.inner.insert_key(record).await
        }
        async fn revoke_key(&self, key_id: &str) -> mcpgate_store::Result<bool> {
            self.inner.revoke_key(key_id).await
        }
        async fn set_key_expiry(&self, key_id: &str, expires_at: Option<i64>) -> mcpgate_store::Result<bool> {
            self.inner.set_key_expiry(key_id, expires_at).await
        }
        async fn touch_keys(&self, used: &[(String, i64)]) -> mcpgate_store::Result<()> {
            self.inner.touch_keys(used).await
        }
        async fn last_used(&self, key_id: &str) -> mcpgate_store::Result<Option<i64>> {
            self.inner.last_used(key_id).await
        }
        async fn keys_version(&self) -> mcpgate_store::Result<i64> {
            self.version_reads.fetch_add(1, Ordering::Relaxed);
            self.inner.keys_version().await
        }
        async fn key_changes_since(&self, version: i64) -> mcpgate_store::Result<Option<KeyChanges>> {
            self.inner.key_changes_since(version).await
        }
    }

    /// With a one-minute poll, a wake-up alone brings a revocation in at once; ten thousand
    /// wake-ups in a second (a notice flood) are a handful of reads, not ten thousand.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wake_ups_read_at_once_and_a_flood_is_coalesced() {
        let store = Arc::new(Counted {
            inner: MemoryStore::new(),
            version_reads: Default::default(),
        });
        let k = generate();
        store.insert_key(&stored(&k)).await.unwrap();
        let reg = KeyRegistry::new(Vec::new(), Some(store.clone()), None).await.unwrap();
        let wake = Arc::new(Notify::new());
        let watcher = tokio::spawn(reg.clone().watch(Duration::from_secs(60), wake.clone()));
        // (The interval's first tick is at once.)
        tokio::time::sleep(Duration::from_millis(100)).await;

        store.revoke_key(&k.key_id).await.unwrap();
        let started = std::time::Instant::now();
        wake.notify_one();
        while reg.verify(k.key.expose(), 10).is_ok() {
            assert!(started.elapsed() < Duration::from_secs(2), "a wake-up was not followed");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let took = started.elapsed();
        assert!(took < Duration::from_millis(200), "a wake-up took {took:?}");

        tokio::time::sleep(Duration::from_millis(100)).await;
        let before = store.version_reads.load(Ordering::Relaxed);
        let flood = std::time::Instant::now();
        for _ in 0..1000 {
            for _ in 0..10 {
                wake.notify_one();
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let spent = flood.elapsed();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let reads = store.version_reads.load(Ordering::Relaxed) - before;
        // One read per WAKE_GAP at most (the gap is measured from the last read), plus slack.
        let most =
            usize::try_from((spent + Duration::from_millis(100)).as_millis() / WAKE_GAP.as_millis()).unwrap() + 5;
        println!("10000 wake-ups in {spent:?}: {reads} version reads (at most {most})");
        assert!(reads <= most, "{reads} reads for 10000 wake-ups in {spent:?}");
        assert!(reads >= 2, "the flood was not followed at all");
        watcher.abort();
    }

    /// A gateway started with one key that the store then gives thousands: the index grows its
    /// shards as it goes, and every key is found.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn thousands_of_keys_added_while_running() {
        let (store, first) = store_with(1).await;
        let reg = KeyRegistry::new(Vec::new(), Some(store.clone()), None).await.unwrap();
        let many: Vec<NewKey> = (0..3000).map(|_| generate()).collect();
        for chunk in many.chunks(500) {
            for k in chunk {
                store.insert_key(&stored(k)).await.unwrap();
            }
            reg.catch_up(store.as_ref()).await.unwrap();
        }
        store.revoke_key(&first[0].key_id).await.unwrap();
        reg.catch_up(store.as_ref()).await.unwrap();
        assert_eq!(reg.len(), 3001);
        assert!(reg.snapshot().shards() > 1);
        assert_eq!(err(reg.verify(first[0].key.expose(), 10)), Some(KeyError::Revoked));
        for k in &many {
            assert!(reg.verify(k.key.expose(), 10).is_ok());
        }
    }
}
