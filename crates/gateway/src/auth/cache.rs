//! The answer cache every credential verifier shares (JWT, introspection, external keys): keyed by
//! the SHA-256 of the credential (never the credential itself), each entry valid until a Unix
//! second, and bounded so a flood of distinct credentials cannot grow memory without limit.

use std::collections::HashMap;
use std::sync::RwLock;

pub struct TtlCache<V> {
    map: RwLock<HashMap<String, (i64, V)>>,
    max: usize,
}

impl<V: Clone> TtlCache<V> {
    pub fn new(max: usize) -> Self {
        TtlCache {
            map: RwLock::new(HashMap::new()),
            max,
        }
    }

    /// The cached value for `hash`, while `now < until`.
    pub fn get(&self, hash: &str, now: i64) -> Option<V> {
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        map.get(hash).filter(|(until, _)| now < *until).map(|(_, v)| v.clone())
    }

    /// Keeps `value` until `until` (nothing when that is not in the future). When full, expired
    /// entries go first, then everything.
    pub fn insert(&self, hash: String, value: V, until: i64, now: i64) {
        if until <= now {
            return;
        }
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        if map.len() >= self.max {
            map.retain(|_, (u, _)| *u > now);
            if map.len() >= self.max {
                map.clear();
            }
        }
        map.insert(hash, (until, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn expires_and_stays_bounded() {
        let c = TtlCache::new(2);
        c.insert("a".into(), 1, 10, 0);
        c.insert("never".into(), 9, 5, 5);
        assert_eq!(c.get("a", 9), Some(1));
        assert_eq!(c.get("a", 10), None);
        assert_eq!(c.get("never", 0), None);
        c.insert("b".into(), 2, 20, 0);
        c.insert("c".into(), 3, 20, 15);
        assert_eq!(c.get("a", 15), None);
        assert_eq!((c.get("b", 15), c.get("c", 15)), (Some(2), Some(3)));
    }
}
