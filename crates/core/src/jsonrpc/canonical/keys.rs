//! Duplicate keys, found in the canonical output: an object's keys are compared by their
//! canonical bytes (the encoding is one-to-one), linearly for the handful of keys MCP objects
//! have, by a randomly keyed hash past that.

const SMALL_OBJECT: usize = 16;

/// Key hash → output ranges of the keys with that hash (randomly keyed per message, so a caller
/// cannot aim collisions).
pub(super) type KeyIndex = std::collections::HashMap<u64, Vec<(usize, usize)>, std::collections::hash_map::RandomState>;

fn hash_of(state: &std::collections::hash_map::RandomState, bytes: &[u8]) -> u64 {
    use std::hash::BuildHasher;
    state.hash_one(bytes)
}

/// Whether the key just read (the last of `keys`, this object's key ranges in `out`) repeats one
/// of the object's earlier keys. Canonical string encoding is one-to-one, so equal decoded keys
/// have equal output bytes. `index` is the object's hash index, built once it is worth it.
pub(super) fn has_duplicate(out: &[u8], keys: &[(usize, usize)], index: &mut Option<KeyIndex>) -> bool {
    let Some((&(ls, le), earlier)) = keys.split_last() else {
        return false;
    };
    let last = &out[ls..le];
    // Objects in MCP messages have a handful of keys: a linear scan beats hashing there.
    if earlier.len() < SMALL_OBJECT && index.is_none() {
        return earlier.iter().any(|&(s, e)| &out[s..e] == last);
    }
    let idx = index.get_or_insert_with(|| {
        let mut idx = KeyIndex::with_hasher(std::collections::hash_map::RandomState::new());
        for &(s, e) in earlier {
            idx.entry(hash_of(idx.hasher(), &out[s..e])).or_default().push((s, e));
        }
        idx
    });
    let h = hash_of(idx.hasher(), last);
    let same = idx.entry(h).or_default();
    if same.iter().any(|&(s, e)| &out[s..e] == last) {
        return true;
    }
    same.push((ls, le));
    false
}
