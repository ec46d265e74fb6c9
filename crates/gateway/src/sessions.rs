//! The sessions this gateway has seen opened, whatever the upstream, and who opened each. A
//! session id the gateway did not see issued is refused, so ids cannot be guessed or carried over;
//! a session is bound to the principal that opened it. Entries idle longer than the configured
//! timeout are forgotten.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Default)]
pub struct SessionRegistry {
    map: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    last_seen: Instant,
    /// The principal that opened the session (`None`: opened without a credential).
    owner: Option<String>,
}

/// What the registry knows of a presented session id.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    Unknown,
    OwnedByOther,
    /// Opened without a credential; the caller now presents one.
    OpenedAnonymously,
    Ok,
}

impl SessionRegistry {
    pub fn open(&self, id: &str, owner: Option<&str>) {
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        m.insert(
            id.to_string(),
            Entry {
                last_seen: Instant::now(),
                owner: owner.map(str::to_string),
            },
        );
    }

    /// Whether `principal` may use the session; marks it used when so.
    pub fn check(&self, id: &str, principal: Option<&str>) -> Lookup {
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        match m.get_mut(id) {
            None => Lookup::Unknown,
            Some(e) if e.owner.is_none() && principal.is_some() => Lookup::OpenedAnonymously,
            Some(e) if e.owner.as_deref() != principal => Lookup::OwnedByOther,
            Some(e) => {
                e.last_seen = Instant::now();
                Lookup::Ok
            }
        }
    }

    pub fn close(&self, id: &str) -> bool {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).remove(id).is_some()
    }

    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn forget_idle(&self, limit: Duration) -> usize {
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let before = m.len();
        m.retain(|_, e| e.last_seen.elapsed() < limit);
        before - m.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn sessions_are_bound_to_their_opener() {
        let r = SessionRegistry::default();
        r.open("s1", Some("key:a"));
        assert_eq!(r.check("s1", Some("key:a")), Lookup::Ok);
        assert_eq!(r.check("s1", Some("key:b")), Lookup::OwnedByOther);
        assert_eq!(r.check("s1", None), Lookup::OwnedByOther);
        assert_eq!(r.check("s2", Some("key:a")), Lookup::Unknown);
        r.open("anon", None);
        assert_eq!(r.check("anon", None), Lookup::Ok);
        assert_eq!(r.check("anon", Some("key:a")), Lookup::OpenedAnonymously);
        assert!(r.close("s1"));
        assert_eq!(r.check("s1", Some("key:a")), Lookup::Unknown);
    }
}
