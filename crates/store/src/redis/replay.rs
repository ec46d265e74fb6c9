//! Things used once, in Redis: a claim is one script that refuses a key whose recorded expiry is
//! still ahead of `now` and otherwise records the new expiry, with a Redis expiry of the same
//! length so entries go on their own (the caller's clock decides; Redis's only cleans up).
//! Keys are hashed (SHA-256): a signature or an id is never stored as it was presented.

use super::{RedisStore, failed};
use crate::{ReplayStore, Result, async_trait};
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

/// KEYS[1]: the entry. ARGV: its expiry, now (unix seconds). 1 when this is the first use.
const CLAIM: &str = r#"
local exp, now = tonumber(ARGV[1]), tonumber(ARGV[2])
local seen = tonumber(redis.call('GET', KEYS[1]))
if seen and seen > now then return 0 end
if exp <= now then return 1 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', exp - now)
return 1
"#;

static CLAIM_SCRIPT: LazyLock<::redis::Script> = LazyLock::new(|| ::redis::Script::new(CLAIM));

#[async_trait]
impl ReplayStore for RedisStore {
    async fn claim(&self, key: &[u8], expires_at: i64, now: i64) -> Result<bool> {
        let mut entry = format!("{}r:", self.prefix).into_bytes();
        entry.extend_from_slice(&Sha256::digest(key));
        let first: i64 = CLAIM_SCRIPT
            .key(entry)
            .arg(expires_at)
            .arg(now)
            .invoke_async(&mut self.conn())
            .await
            .map_err(|e| failed("replay claim", &e))?;
        Ok(first == 1)
    }

    /// Redis forgets expired entries itself.
    async fn purge(&self, _now: i64) -> Result<usize> {
        Ok(0)
    }
}
