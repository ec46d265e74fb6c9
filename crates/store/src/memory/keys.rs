//! Keys and the upstream credentials held for them, in memory. Each change takes the next
//! version and is remembered under it, one entry per key or credential (its last change), so
//! [`KeyStore::key_changes_since`] reads only what changed.

use super::{MemoryStore, lock};
use crate::{CredentialStore, KeyChanges, KeyStore, Result, SealedCredential, StoreError, async_trait};
use mcpgate_core::keys::KeyRecord;
use std::collections::{BTreeMap, HashMap};

/// What a change was to.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Changed {
    Key(String),
    Credential(String),
}

#[derive(Default)]
pub(super) struct Keys {
    keys: HashMap<String, KeyRecord>,
    last_used: HashMap<String, i64>,
    credentials: BTreeMap<String, SealedCredential>,
    version: i64,
    /// Version → what it changed, kept for the last change of each key and credential only.
    changes: BTreeMap<i64, Changed>,
    /// The way back: what → the version of its last change.
    last_change: HashMap<Changed, i64>,
}

impl Keys {
    /// Takes the next version for a change to `what`.
    fn changed(&mut self, what: Changed) {
        self.version += 1;
        if let Some(earlier) = self.last_change.insert(what.clone(), self.version) {
            self.changes.remove(&earlier);
        }
        self.changes.insert(self.version, what);
    }
}

#[async_trait]
impl KeyStore for MemoryStore {
    async fn list_keys(&self) -> Result<Vec<KeyRecord>> {
        let mut all: Vec<KeyRecord> = lock(&self.keys).keys.values().cloned().collect();
        all.sort_by(|a, b| (a.created_at, &a.key_id).cmp(&(b.created_at, &b.key_id)));
        Ok(all)
    }

    async fn all_keys(&self) -> Result<Vec<KeyRecord>> {
        Ok(lock(&self.keys).keys.values().cloned().collect())
    }

    async fn get_key(&self, key_id: &str) -> Result<Option<KeyRecord>> {
        Ok(lock(&self.keys).keys.get(key_id).cloned())
    }

    async fn insert_key(&self, record: &KeyRecord) -> Result<()> {
        let mut k = lock(&self.keys);
        if k.keys.contains_key(&record.key_id) {
            return Err(StoreError::Duplicate(record.key_id.clone()));
        }
        let mut stored = record.clone();
        stored.source = "store".into();
        k.keys.insert(record.key_id.clone(), stored);
        k.changed(Changed::Key(record.key_id.clone()));
        Ok(())
    }

    async fn revoke_key(&self, key_id: &str) -> Result<bool> {
        let mut k = lock(&self.keys);
        let Some(rec) = k.keys.get_mut(key_id) else {
            return Ok(false);
        };
        rec.revoked = true;
        k.changed(Changed::Key(key_id.to_string()));
        Ok(true)
    }

    async fn set_key_expiry(&self, key_id: &str, expires_at: Option<i64>) -> Result<bool> {
        let mut k = lock(&self.keys);
        let Some(rec) = k.keys.get_mut(key_id) else {
            return Ok(false);
        };
        rec.expires_at = expires_at;
        k.changed(Changed::Key(key_id.to_string()));
        Ok(true)
    }

    async fn touch_keys(&self, used: &[(String, i64)]) -> Result<()> {
        let mut k = lock(&self.keys);
        for (id, at) in used {
            if k.keys.contains_key(id) {
                let last = k.last_used.entry(id.clone()).or_insert(*at);
                *last = (*last).max(*at);
            }
        }
        Ok(())
    }

    async fn last_used(&self, key_id: &str) -> Result<Option<i64>> {
        Ok(lock(&self.keys).last_used.get(key_id).copied())
    }

    async fn keys_version(&self) -> Result<i64> {
        Ok(lock(&self.keys).version)
    }

    async fn key_changes_since(&self, version: i64) -> Result<Option<KeyChanges>> {
        let k = lock(&self.keys);
        if version > k.version {
            return Ok(None);
        }
        let mut out = KeyChanges {
            version: k.version,
            ..KeyChanges::default()
        };
        for what in k.changes.range(version.saturating_add(1)..).map(|(_, what)| what) {
            match what {
                Changed::Key(id) => match k.keys.get(id) {
                    Some(record) => out.keys.push(record.clone()),
                    None => out.removed_keys.push(id.clone()),
                },
                Changed::Credential(id) => out.credentials.push((id.clone(), k.credentials.get(id).cloned())),
            }
        }
        Ok(Some(out))
    }
}

#[async_trait]
impl CredentialStore for MemoryStore {
    async fn set_credential(&self, key_id: &str, sealed: &SealedCredential, _now: i64) -> Result<()> {
        let mut k = lock(&self.keys);
        k.credentials.insert(key_id.to_string(), sealed.clone());
        k.changed(Changed::Credential(key_id.to_string()));
        Ok(())
    }

    async fn remove_credential(&self, key_id: &str) -> Result<bool> {
        let mut k = lock(&self.keys);
        let removed = k.credentials.remove(key_id).is_some();
        if removed {
            k.changed(Changed::Credential(key_id.to_string()));
        }
        Ok(removed)
    }

    async fn list_credentials(&self) -> Result<Vec<(String, SealedCredential)>> {
        Ok(lock(&self.keys)
            .credentials
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}
