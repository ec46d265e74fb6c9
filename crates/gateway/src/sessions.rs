//! The sessions this gateway has seen opened, whatever the upstream: a session id the gateway did
//! not see issued is refused, so ids cannot be guessed or carried over from elsewhere. Entries idle
//! longer than the configured timeout are forgotten.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Default)]
pub struct SessionRegistry {
    map: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    last_seen: Instant,
}

impl SessionRegistry {
    pub fn open(&self, id: &str) {
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        m.insert(
            id.to_string(),
            Entry {
                last_seen: Instant::now(),
            },
        );
    }

    /// True when the session is known; marks it used.
    pub fn touch(&self, id: &str) -> bool {
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        match m.get_mut(id) {
            Some(e) => {
                e.last_seen = Instant::now();
                true
            }
            None => false,
        }
    }

    pub fn close(&self, id: &str) -> bool {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id)
            .is_some()
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
