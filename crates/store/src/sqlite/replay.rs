//! Things used once: a key is claimed by the first writer; an expired entry can be claimed again.

use super::{SqliteStore, backend};
use crate::{ReplayStore, Result, async_trait};

#[async_trait]
impl ReplayStore for SqliteStore {
    async fn claim(&self, key: &[u8], expires_at: i64, now: i64) -> Result<bool> {
        if expires_at <= now {
            // Already out of its window: nothing to remember (the caller's window check refuses it).
            return Ok(true);
        }
        let key = key.to_vec();
        self.run(move |c| {
            // One statement: inserted, or taken over from an expired entry, or left alone (a
            // live entry: a replay). SQLite's write lock makes it atomic across processes too.
            let n = c
                .execute(
                    "INSERT INTO replay (key, expires_at) VALUES (?1, ?2)
                     ON CONFLICT(key) DO UPDATE SET expires_at = excluded.expires_at WHERE replay.expires_at <= ?3",
                    rusqlite::params![key, expires_at, now],
                )
                .map_err(backend)?;
            Ok(n == 1)
        })
        .await
    }

    async fn purge(&self, now: i64) -> Result<usize> {
        self.run(move |c| {
            c.execute("DELETE FROM replay WHERE expires_at <= ?1", [now])
                .map_err(backend)
        })
        .await
    }
}
