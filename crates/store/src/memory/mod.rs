//! The in-memory store: every trait, nothing survives the process. For tests, for embedders
//! that keep keys in code, as the gateway's replay cache (see [`ReplayStore`]) and its session
//! owners (see [`crate::SessionStore`]), and for an authorization server whose grants may end
//! with the process (see [`crate::oauth`]).

use crate::{AuditStore, LimitStore, ReplayStore, Result, async_trait};
use mcpgate_core::audit::{AuditQuery, AuditRecord};
use mcpgate_core::principal::Limits;
use mcpgate_core::ratelimit::{Limited, LocalLimiter, Now, RateLimiter, Remaining};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

mod keys;
mod oauth;
mod sessions;

/// Replay entries, sharded so concurrent signed requests rarely share a lock.
const SHARDS: usize = 16;

#[derive(Default)]
struct ReplayShard {
    /// Entry (first 16 bytes of the key's SHA-256) → when it may be used again.
    live: HashMap<u128, i64>,
    /// Expiry → entries, so forgetting reads only what has expired.
    by_expiry: BTreeMap<i64, Vec<u128>>,
}

#[derive(Default)]
pub struct MemoryStore {
    keys: Mutex<keys::Keys>,
    audit: Mutex<AuditLog>,
    replay: [Mutex<ReplayShard>; SHARDS],
    sessions: Mutex<sessions::Sessions>,
    oauth: Mutex<oauth::OAuth>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Live replay entries (for tests and metrics).
    pub fn replay_len(&self) -> usize {
        self.replay.iter().map(|s| lock(s).live.len()).sum()
    }
}

/// Records with their numbers (1, 2, … in the order appended; never reused after a prune).
#[derive(Default)]
struct AuditLog {
    last: u64,
    records: Vec<(u64, AuditRecord)>,
}

#[async_trait]
impl AuditStore for MemoryStore {
    async fn append(&self, records: &[AuditRecord]) -> Result<()> {
        let mut log = lock(&self.audit);
        let AuditLog { last, records: all } = &mut *log;
        all.extend(records.iter().map(|r| {
            *last += 1;
            (*last, r.clone())
        }));
        Ok(())
    }

    async fn search(&self, q: &AuditQuery) -> Result<Vec<(u64, AuditRecord)>> {
        let log = lock(&self.audit);
        Ok(log
            .records
            .iter()
            .rev()
            .filter(|(n, r)| q.before.is_none_or(|b| *n < b) && q.matches(r))
            .take(q.page_size())
            .cloned()
            .collect())
    }

    async fn prune(&self, before_ms: i64) -> Result<usize> {
        let all = &mut lock(&self.audit).records;
        let before = all.len();
        all.retain(|(_, r)| r.time_ms >= before_ms);
        Ok(before - all.len())
    }
}

impl ReplayShard {
    fn forget_expired(&mut self, now: i64) -> usize {
        let mut forgotten = 0;
        while let Some(entry) = self.by_expiry.first_entry() {
            if *entry.key() > now {
                break;
            }
            for id in entry.remove() {
                // Claimed again since with a later expiry: still live.
                if self.live.get(&id).is_some_and(|&e| e <= now) {
                    self.live.remove(&id);
                    forgotten += 1;
                }
            }
        }
        forgotten
    }
}

#[async_trait]
impl ReplayStore for MemoryStore {
    async fn claim(&self, key: &[u8], expires_at: i64, now: i64) -> Result<bool> {
        if expires_at <= now {
            return Ok(true);
        }
        // 16 bytes of a SHA-256: whatever the key's shape (a signature, a jti), two different
        // keys collide with probability ~2^-128 per pair.
        let digest = Sha256::digest(key);
        let mut prefix = [0u8; 16];
        prefix.copy_from_slice(&digest[..16]);
        let id = u128::from_le_bytes(prefix);
        let mut shard = lock(&self.replay[(id as usize) % SHARDS]);
        shard.forget_expired(now);
        if shard.live.get(&id).is_some_and(|&e| e > now) {
            return Ok(false);
        }
        shard.live.insert(id, expires_at);
        shard.by_expiry.entry(expires_at).or_default().push(id);
        Ok(true)
    }

    async fn purge(&self, now: i64) -> Result<usize> {
        Ok(self.replay.iter().map(|s| lock(s).forget_expired(now)).sum())
    }
}

/// Rate-limit counters in this process's memory: core's sharded GCRA limiter, exact under
/// concurrency (each principal's windows under one lock).
#[async_trait]
impl LimitStore for LocalLimiter {
    async fn check(
        &self,
        principal: &str,
        limits: &Limits,
        tool: Option<(&str, &Limits)>,
        now: Now,
    ) -> Result<std::result::Result<(), Limited>> {
        Ok(RateLimiter::check(self, principal, limits, tool, now))
    }

    async fn remaining(&self, principal: &str, limits: &Limits, now: Now) -> Result<Remaining> {
        Ok(RateLimiter::remaining(self, principal, limits, now))
    }
}
