//! The in-memory index the request path reads: by keyId for generated keys, by hash for legacy
//! ones. A change to a few keys must not cost a rebuild of a million (seconds of CPU, and a
//! revoke refused only once it is done), so the index is split into shards, each a small map
//! behind an `Arc`: an index made by [`KeyIndex::with_changes`] shares every shard with the one
//! it was made from but those the changes touch, which it copies (a few hundred records each).
//! There is nothing to fold back later, and no second copy of the whole index in memory.

use super::{KeyError, KeyRecord, key_id_of};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::hash::Hasher;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// Records per shard the index is built for; a change copies about this many.
const PER_SHARD: usize = 256;
/// Past this many records per shard on average (keys added since the index was built), the
/// index is built again with more shards.
const MAX_PER_SHARD: usize = 4 * PER_SHARD;
/// At most this many shards (a change copies the list of shards: 64 Ki pointers at most).
const MAX_SHARDS: usize = 1 << 16;

/// See the module's docs. Cloning shares every shard.
#[derive(Clone)]
pub struct KeyIndex {
    /// Records by key id, in shards by a hash of the id; a power of two of them.
    by_id: Vec<Arc<HashMap<String, KeyRecord>>>,
    /// Key ids by hash, in shards by a hash of the hash; as many as `by_id`.
    by_hash: Vec<Arc<HashMap<String, String>>>,
    len: usize,
}

impl Default for KeyIndex {
    fn default() -> KeyIndex {
        KeyIndex::with_shards(1)
    }
}

/// The shard of `key` among `shards` (a power of two). SipHash with fixed keys: the same in
/// every index of this process, and evenly spread whatever the ids look like.
fn shard(key: &str, shards: usize) -> usize {
    if shards <= 1 {
        return 0;
    }
    let mut h = std::hash::DefaultHasher::new();
    h.write(key.as_bytes());
    (h.finish() as usize) & (shards - 1)
}

/// Shards for `n` records.
fn shards_for(n: usize) -> usize {
    (n / PER_SHARD).next_power_of_two().clamp(1, MAX_SHARDS)
}

impl KeyIndex {
    fn with_shards(shards: usize) -> KeyIndex {
        KeyIndex {
            by_id: (0..shards).map(|_| Arc::new(HashMap::new())).collect(),
            by_hash: (0..shards).map(|_| Arc::new(HashMap::new())).collect(),
            len: 0,
        }
    }

    /// An index of `records`. Of two with the same id the later is kept, and of two with the
    /// same hash the later is found by it (so a store's record, listed after the configured
    /// keys, takes the place of a configured one with its id).
    pub fn new(records: impl IntoIterator<Item = KeyRecord>) -> KeyIndex {
        let records = records.into_iter();
        let count = match records.size_hint() {
            (low, Some(high)) if low == high => low,
            _ => return KeyIndex::new(records.collect::<Vec<_>>()),
        };
        let n = shards_for(count);
        // Room for a shard a quarter above the average (the spread of a fair hash), so
        // building does not grow the maps on the way.
        let room = count / n + count / n / 4 + 16;
        let mut by_id: Vec<HashMap<String, KeyRecord>> = (0..n).map(|_| HashMap::with_capacity(room)).collect();
        let mut by_hash: Vec<HashMap<String, String>> = (0..n).map(|_| HashMap::with_capacity(room)).collect();
        for r in records {
            if let Some(m) = by_hash.get_mut(shard(&r.hash, n)) {
                m.insert(r.hash.clone(), r.key_id.clone());
            }
            if let Some(m) = by_id.get_mut(shard(&r.key_id, n)) {
                m.insert(r.key_id.clone(), r);
            }
        }
        KeyIndex {
            len: by_id.iter().map(HashMap::len).sum(),
            by_id: by_id.into_iter().map(Arc::new).collect(),
            by_hash: by_hash.into_iter().map(Arc::new).collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn get(&self, key_id: &str) -> Option<&KeyRecord> {
        self.by_id.get(shard(key_id, self.by_id.len()))?.get(key_id)
    }

    fn id_of_hash(&self, hash: &str) -> Option<&String> {
        self.by_hash.get(shard(hash, self.by_hash.len()))?.get(hash)
    }

    /// Verifies a presented key at time `now` (Unix seconds). Allocates nothing: the hash is
    /// formatted on the stack.
    pub fn verify(&self, presented: &str, now: i64) -> Result<&KeyRecord, KeyError> {
        let mut hex = [0u8; 64];
        hex::encode_to_slice(Sha256::digest(presented.as_bytes()), &mut hex).map_err(|_| KeyError::Unknown)?;
        let hash = std::str::from_utf8(&hex).map_err(|_| KeyError::Unknown)?;
        let record = match key_id_of(presented).and_then(|id| self.get(id)) {
            Some(r) => r,
            None => self
                .id_of_hash(hash)
                .and_then(|id| self.get(id))
                .ok_or(KeyError::Unknown)?,
        };
        // Found by id: the secret must match. Found by hash: the record must be this key's (two
        // records with one id and different keys leave the earlier's hash naming the later).
        if !bool::from(record.hash.as_bytes().ct_eq(hash.as_bytes())) {
            return Err(KeyError::Unknown);
        }
        if record.revoked {
            return Err(KeyError::Revoked);
        }
        if record.expires_at.is_some_and(|t| now >= t) {
            return Err(KeyError::Expired);
        }
        Ok(record)
    }

    /// This index with `removed` ids gone, then `records` in place of those with their ids (or
    /// added): the shards they touch are copied, the rest shared. Built again with more shards
    /// when keys added since have made them large.
    pub fn with_changes(
        &self,
        records: impl IntoIterator<Item = KeyRecord>,
        removed: impl IntoIterator<Item = String>,
    ) -> KeyIndex {
        let mut next = self.clone();
        for id in removed {
            next.remove(&id);
        }
        for r in records {
            next.put(r);
        }
        if next.len > next.by_id.len() * MAX_PER_SHARD && next.by_id.len() < MAX_SHARDS {
            return KeyIndex::new(next.by_id.iter().flat_map(|m| m.values().cloned()));
        }
        next
    }

    /// Takes `id`'s record out; its hash no longer names it.
    fn remove(&mut self, id: &str) -> Option<KeyRecord> {
        let n = self.by_id.len();
        let by_id = self.by_id.get_mut(shard(id, n))?;
        if !by_id.contains_key(id) {
            return None;
        }
        let old = Arc::make_mut(by_id).remove(id)?;
        self.len -= 1;
        if let Some(by_hash) = self.by_hash.get_mut(shard(&old.hash, n))
            && by_hash.get(&old.hash).is_some_and(|named| named == id)
        {
            Arc::make_mut(by_hash).remove(&old.hash);
        }
        Some(old)
    }

    fn put(&mut self, r: KeyRecord) {
        let n = self.by_id.len();
        // Unchanged: nothing to copy (a change listed twice, or a write that changed nothing).
        if self.get(&r.key_id) == Some(&r) {
            return;
        }
        self.remove(&r.key_id);
        if let Some(by_hash) = self.by_hash.get_mut(shard(&r.hash, n)) {
            Arc::make_mut(by_hash).insert(r.hash.clone(), r.key_id.clone());
        }
        if let Some(by_id) = self.by_id.get_mut(shard(&r.key_id, n)) {
            Arc::make_mut(by_id).insert(r.key_id.clone(), r);
            self.len += 1;
        }
    }

    /// How many of this index's shards of records `other` shares (for tests and metrics: an
    /// index made by [`with_changes`](Self::with_changes) shares all but those it touched).
    pub fn shards_shared_with(&self, other: &KeyIndex) -> usize {
        self.by_id
            .iter()
            .zip(&other.by_id)
            .filter(|(a, b)| Arc::ptr_eq(a, b))
            .count()
    }

    /// How many shards of records the index has.
    pub fn shards(&self) -> usize {
        self.by_id.len()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{NewKey, generate, hash_hex};
    use super::*;
    use crate::principal::{Limits, Role};

    fn record(new: &NewKey) -> KeyRecord {
        KeyRecord {
            key_id: new.key_id.clone(),
            hash: new.hash.clone(),
            name: "t".into(),
            user_id: "u".into(),
            tenant: None,
            role: Role::User,
            permissions: vec!["read".into()],
            limits: Limits::default(),
            expires_at: Some(1000),
            created_at: 0,
            revoked: false,
            source: "store".into(),
        }
    }

    /// A legacy key (any shape but `mcp_<id>_<secret>`): found by its hash only.
    fn legacy(key: &str, id: &str) -> KeyRecord {
        KeyRecord {
            key_id: id.into(),
            hash: hash_hex(key),
            name: format!("name of {id}"),
            user_id: "u".into(),
            tenant: None,
            role: Role::User,
            permissions: vec![],
            limits: Limits::default(),
            expires_at: None,
            created_at: 0,
            revoked: false,
            source: "env".into(),
        }
    }

    /// Many keys, so the index has many shards.
    fn many(n: usize) -> (Vec<NewKey>, KeyIndex) {
        let keys: Vec<NewKey> = (0..n).map(|_| generate()).collect();
        let idx = KeyIndex::new(keys.iter().map(record));
        (keys, idx)
    }

    #[test]
    fn generated_keys_verify_by_id_in_constant_time() {
        let k = generate();
        assert!(k.key.expose().starts_with("mcp_"));
        assert_eq!(key_id_of(k.key.expose()), Some(k.key_id.as_str()));
        assert!(k.key.expose().len() >= 4 + 12 + 1 + 43);
        let idx = KeyIndex::new([record(&k)]);
        assert!(idx.verify(k.key.expose(), 10).is_ok());
        assert_eq!(idx.verify(k.key.expose(), 1000).unwrap_err(), KeyError::Expired);
        let forged = format!("mcp_{}_AAAA", k.key_id);
        assert_eq!(idx.verify(&forged, 10).unwrap_err(), KeyError::Unknown);
        assert_eq!(idx.verify("mcp_nope_x", 10).unwrap_err(), KeyError::Unknown);
        let mut revoked = record(&k);
        revoked.revoked = true;
        assert_eq!(
            KeyIndex::new([revoked]).verify(k.key.expose(), 10).unwrap_err(),
            KeyError::Revoked
        );
    }

    #[test]
    fn a_change_copies_only_the_shards_it_touches() {
        let (keys, base) = many(5000);
        assert_eq!(base.shards(), 32);
        let (a, b) = (&keys[0], &keys[1]);

        let mut revoked = record(a);
        revoked.revoked = true;
        let idx = base.with_changes([revoked], []);
        assert_eq!(idx.verify(a.key.expose(), 10).unwrap_err(), KeyError::Revoked);
        assert!(
            base.verify(a.key.expose(), 10).is_ok(),
            "the index changed was changed too"
        );
        assert!(idx.verify(b.key.expose(), 10).is_ok());
        assert_eq!(idx.len(), 5000);
        assert_eq!(idx.shards_shared_with(&base), 31);

        let mut later = record(a);
        later.expires_at = Some(5000);
        let idx = idx.with_changes([later], []);
        assert_eq!(idx.verify(a.key.expose(), 2000).map(|r| r.expires_at), Ok(Some(5000)));
        assert_eq!(idx.get(&a.key_id).and_then(|r| r.expires_at), Some(5000));
        let mut sooner = record(a);
        sooner.expires_at = Some(5);
        assert_eq!(
            idx.with_changes([sooner], []).verify(a.key.expose(), 10).unwrap_err(),
            KeyError::Expired
        );
        // A change that changes nothing copies nothing.
        assert_eq!(idx.with_changes([record(b)], []).shards_shared_with(&idx), 32);
    }

    #[test]
    fn a_key_added_or_removed() {
        let (keys, base) = many(600);
        let (a, c) = (&keys[0], generate());
        let idx = base.with_changes([record(&c), legacy("legacy-key-1", "l1")], []);
        assert_eq!(idx.len(), 602);
        assert!(idx.verify(c.key.expose(), 10).is_ok());
        assert_eq!(idx.verify("legacy-key-1", 10).map(|r| r.key_id.as_str()), Ok("l1"));
        assert_eq!(base.verify(c.key.expose(), 10).unwrap_err(), KeyError::Unknown);

        let idx = idx.with_changes([], [a.key_id.clone(), "l1".into(), "never-there".into()]);
        assert_eq!(idx.len(), 600);
        assert_eq!(idx.verify(a.key.expose(), 10).unwrap_err(), KeyError::Unknown);
        assert_eq!(idx.verify("legacy-key-1", 10).unwrap_err(), KeyError::Unknown);
        assert!(idx.get(&a.key_id).is_none());
        // Back again.
        let idx = idx.with_changes([record(a)], []);
        assert_eq!(idx.len(), 601);
        assert!(idx.verify(a.key.expose(), 10).is_ok());
    }

    #[test]
    fn a_key_whose_hash_changed_no_longer_verifies() {
        // A legacy key found by hash, replaced under the same id by another key.
        let base = KeyIndex::new([legacy("old-legacy-key", "l1"), legacy("other-legacy-key", "l2")]);
        let idx = base.with_changes([legacy("new-legacy-key", "l1")], []);
        assert_eq!(idx.verify("old-legacy-key", 10).unwrap_err(), KeyError::Unknown);
        assert_eq!(idx.verify("new-legacy-key", 10).map(|r| r.key_id.as_str()), Ok("l1"));
        assert!(idx.verify("other-legacy-key", 10).is_ok());
        let idx = idx.with_changes([legacy("newer-legacy-key", "l1")], []);
        assert_eq!(idx.verify("new-legacy-key", 10).unwrap_err(), KeyError::Unknown);
        assert!(idx.verify("newer-legacy-key", 10).is_ok());
        assert_eq!(idx.len(), 2);

        // A generated key's id given a different secret: the old key is refused by id.
        let (a, b) = (generate(), generate());
        let mut moved = record(&b);
        moved.key_id = a.key_id.clone();
        let idx = KeyIndex::new([record(&a)]).with_changes([moved], []);
        assert_eq!(idx.verify(a.key.expose(), 10).unwrap_err(), KeyError::Unknown);
        assert_eq!(
            idx.verify(b.key.expose(), 10).map(|r| r.key_id.as_str()),
            Ok(a.key_id.as_str())
        );
    }

    /// Of two records with one id the later wins (a store key over a configured one), and the
    /// earlier's key, found by hash, no longer verifies as the later.
    #[test]
    fn the_later_of_two_records_with_one_id_wins() {
        let mut store = legacy("store-legacy-key", "same");
        store.source = "store".into();
        let idx = KeyIndex::new([legacy("configured-key", "same"), store]);
        assert_eq!(idx.len(), 1);
        assert_eq!(idx.get("same").map(|r| r.source.as_str()), Some("store"));
        assert!(idx.verify("store-legacy-key", 10).is_ok());
        assert_eq!(idx.verify("configured-key", 10).unwrap_err(), KeyError::Unknown);
    }

    /// Keys added one by one from an empty index: the shards grow with them, and every key
    /// stays found.
    #[test]
    fn an_index_grown_by_changes_gets_more_shards() {
        let keys: Vec<NewKey> = (0..3000).map(|_| generate()).collect();
        let mut idx = KeyIndex::default();
        for chunk in keys.chunks(100) {
            idx = idx.with_changes(chunk.iter().map(record), []);
        }
        assert_eq!(idx.len(), 3000);
        assert!(idx.shards() > 1, "{} shards", idx.shards());
        for k in &keys {
            assert!(idx.verify(k.key.expose(), 10).is_ok());
        }
    }
}
