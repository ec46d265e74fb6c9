//! Session ownership in this process's memory: one lock, counts kept per bucket so a cap check
//! reads one entry.

use super::{MemoryStore, lock};
use crate::{OpenSession, Result, SessionInfo, SessionStore, async_trait, session_bucket};
use std::collections::HashMap;

#[derive(Default)]
pub(super) struct Sessions {
    open: HashMap<String, Entry>,
    buckets: HashMap<String, Bucket>,
    /// Place token → its bucket.
    places: HashMap<String, String>,
}

struct Entry {
    owner: Option<String>,
    last_seen_ms: i64,
}

#[derive(Default)]
struct Bucket {
    sessions: usize,
    /// Place token → deadline.
    places: HashMap<String, i64>,
}

impl Bucket {
    /// Drops lapsed places; returns their tokens.
    fn lapse(&mut self, now_ms: i64) -> Vec<String> {
        let lapsed: Vec<String> = self
            .places
            .iter()
            .filter(|(_, until)| **until <= now_ms)
            .map(|(t, _)| t.clone())
            .collect();
        for t in &lapsed {
            self.places.remove(t);
        }
        lapsed
    }

    fn is_empty(&self) -> bool {
        self.sessions == 0 && self.places.is_empty()
    }
}

impl Sessions {
    fn bucket(&mut self, name: &str) -> &mut Bucket {
        self.buckets.entry(name.to_string()).or_default()
    }

    fn lapse(&mut self, name: &str, now_ms: i64) {
        if let Some(b) = self.buckets.get_mut(name) {
            for t in b.lapse(now_ms) {
                self.places.remove(&t);
            }
        }
    }

    fn take_place(&mut self, token: &str) {
        if let Some(name) = self.places.remove(token) {
            if let Some(b) = self.buckets.get_mut(&name) {
                b.places.remove(token);
            }
            self.tidy(&name);
        }
    }

    fn end(&mut self, id: &str) -> bool {
        let Some(e) = self.open.remove(id) else {
            return false;
        };
        let name = session_bucket(e.owner.as_deref()).to_string();
        if let Some(b) = self.buckets.get_mut(&name) {
            b.sessions = b.sessions.saturating_sub(1);
        }
        self.tidy(&name);
        true
    }

    fn tidy(&mut self, name: &str) {
        if self.buckets.get(name).is_some_and(Bucket::is_empty) {
            self.buckets.remove(name);
        }
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn reserve(&self, owner: Option<&str>, token: &str, cap: usize, now_ms: i64, until_ms: i64) -> Result<bool> {
        let mut s = lock(&self.sessions);
        let name = session_bucket(owner);
        s.lapse(name, now_ms);
        if s.places.contains_key(token) {
            return Ok(false);
        }
        let b = s.bucket(name);
        if b.sessions + b.places.len() >= cap {
            s.tidy(name);
            return Ok(false);
        }
        b.places.insert(token.to_string(), until_ms);
        s.places.insert(token.to_string(), name.to_string());
        Ok(true)
    }

    async fn release(&self, token: &str) -> Result<()> {
        lock(&self.sessions).take_place(token);
        Ok(())
    }

    async fn open(&self, id: &str, owner: Option<&str>, token: Option<&str>, now_ms: i64) -> Result<()> {
        let mut s = lock(&self.sessions);
        if let Some(t) = token {
            s.take_place(t);
        }
        s.end(id);
        s.bucket(session_bucket(owner)).sessions += 1;
        s.open.insert(
            id.to_string(),
            Entry {
                owner: owner.map(str::to_string),
                last_seen_ms: now_ms,
            },
        );
        Ok(())
    }

    async fn touch(&self, id: &str, now_ms: i64) -> Result<Option<OpenSession>> {
        let mut s = lock(&self.sessions);
        Ok(s.open.get_mut(id).map(|e| {
            e.last_seen_ms = e.last_seen_ms.max(now_ms);
            OpenSession { owner: e.owner.clone() }
        }))
    }

    async fn close(&self, id: &str) -> Result<bool> {
        Ok(lock(&self.sessions).end(id))
    }

    async fn count(&self, owner: Option<&str>, now_ms: i64) -> Result<usize> {
        let mut s = lock(&self.sessions);
        let name = session_bucket(owner);
        s.lapse(name, now_ms);
        let n = s.buckets.get(name).map_or(0, |b| b.sessions + b.places.len());
        s.tidy(name);
        Ok(n)
    }

    async fn total(&self) -> Result<usize> {
        Ok(lock(&self.sessions).open.len())
    }

    async fn list(&self, limit: usize) -> Result<Vec<SessionInfo>> {
        let s = lock(&self.sessions);
        let mut all: Vec<SessionInfo> = s
            .open
            .iter()
            .map(|(id, e)| SessionInfo {
                id: id.clone(),
                owner: e.owner.clone(),
                last_seen_ms: e.last_seen_ms,
            })
            .collect();
        all.sort_by(|a, b| b.last_seen_ms.cmp(&a.last_seen_ms).then_with(|| a.id.cmp(&b.id)));
        all.truncate(limit);
        Ok(all)
    }

    async fn purge_idle(&self, seen_before_ms: i64, now_ms: i64) -> Result<usize> {
        let mut s = lock(&self.sessions);
        let idle: Vec<String> = s
            .open
            .iter()
            .filter(|(_, e)| e.last_seen_ms < seen_before_ms)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &idle {
            s.end(id);
        }
        let names: Vec<String> = s.buckets.keys().cloned().collect();
        for name in names {
            s.lapse(&name, now_ms);
            s.tidy(&name);
        }
        Ok(idle.len())
    }
}
