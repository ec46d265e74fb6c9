//! Things used once: a key is claimed by the first writer; an expired entry can be claimed again.

use super::{PostgresStore, backend, count, execute, query_opt};
use crate::{ReplayStore, Result, async_trait};

#[async_trait]
impl ReplayStore for PostgresStore {
    async fn claim(&self, key: &[u8], expires_at: i64, now: i64) -> Result<bool> {
        if expires_at <= now {
            // Already out of its window: nothing to remember (the caller's window check refuses it).
            return Ok(true);
        }
        let c = self.client().await?;
        // One statement: inserted, or taken over from an expired entry, or left alone (a live
        // entry: a replay, no row returned). PostgreSQL's upsert makes it atomic: of racing
        // claims on any replica, the others wait for the first and then find it live.
        let won = query_opt(
            &c,
            "INSERT INTO replay (key, expires_at) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at WHERE replay.expires_at <= $3
             RETURNING true",
            &[&key, &expires_at, &now],
        )
        .await
        .map_err(backend)?;
        Ok(won.is_some())
    }

    async fn purge(&self, now: i64) -> Result<usize> {
        let c = self.client().await?;
        let n = execute(&c, "DELETE FROM replay WHERE expires_at <= $1", &[&now])
            .await
            .map_err(backend)?;
        Ok(count(n))
    }
}
