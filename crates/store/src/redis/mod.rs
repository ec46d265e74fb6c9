//! The Redis store (feature `redis`; Redis 7 or Valkey): what every replica must count and see at
//! once — rate-limit and quota counters ([`LimitStore`]), things used once ([`ReplayStore`]:
//! HMAC signatures, `private_key_jwt` ids, provider-token renewals) and MCP session owners
//! ([`SessionStore`]). Durable records stay in PostgreSQL; nothing here needs to survive Redis
//! losing its memory except what a lost counter forgives (a window starts again).
//!
//! Every decision is one server-side script, so it is atomic across replicas and costs one round
//! trip: a rate-limit check reads and writes every window of the principal (and of the tool) in
//! one `EVALSHA`; a replay claim is one `EVALSHA`; a session step is one. Times come from the
//! caller (the gateway's clock: wall-clock microseconds for limits, so every replica counts on the
//! same time line), which keeps the store testable by the conformance suite with moved time.
//!
//! One multiplexed connection per store, shared by every request, reconnecting on its own after
//! Redis comes back; a command that cannot be answered within [`RESPONSE_TIMEOUT`] fails (the
//! gateway then applies `redis.on_error`). Keys live under a prefix (default `mcpgate:`) so
//! several deployments can share one Redis. Errors never contain the URL (it may hold a password).
//!
//! Beside the state, a channel: [`changes`] publishes and listens for change notices (one word,
//! on `{prefix}changes`) so that a revocation through one replica wakes every replica's key and
//! grant pollers at once.

pub mod changes;
mod limits;
mod replay;
mod sessions;
#[cfg(feature = "redis-testing")]
pub mod testing;

use crate::{Result, StoreError};
use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::Duration;

/// How long a command may take before it counts as failed.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_millis(1000);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(1000);

/// Rate-limit counters, replay claims and session owners in one Redis (see the module docs).
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    /// For the change listener's own connection (a subscribed connection can do nothing else).
    client: ::redis::Client,
    prefix: String,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// A Redis error in words, without the URL or the values the command carried.
fn failed(what: &str, e: &::redis::RedisError) -> StoreError {
    let kind = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connection_refusal() || e.is_connection_dropped() || e.is_io_error() {
        "not reachable".to_string()
    } else {
        // The kind and the server's code (e.g. NOSCRIPT, WRONGTYPE), never the detail, which
        // may echo arguments.
        format!(
            "{:?}{}",
            e.kind(),
            e.code().map(|c| format!(" {c}")).unwrap_or_default()
        )
    };
    StoreError::Backend(format!("redis: {what}: {kind}"))
}

impl RedisStore {
    /// A store on the Redis at `url` (`redis://[user:password@]host:port[/db]`, or `rediss://`
    /// for TLS), its keys under `prefix`. Connects lazily: a gateway starts while Redis is down
    /// and its first decisions fail (then `redis.on_error` applies) until Redis answers.
    pub fn open(url: &str, prefix: &str) -> Result<RedisStore> {
        let client = ::redis::Client::open(url)
            .map_err(|e| StoreError::Backend(format!("redis: the URL is not valid ({:?})", e.kind())))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn =
            ConnectionManager::new_lazy_with_config(client.clone(), config).map_err(|e| failed("connect", &e))?;
        Ok(RedisStore {
            conn,
            client,
            prefix: prefix.to_string(),
        })
    }

    /// As [`open`](Self::open), then waits for Redis to answer a `PING` (a start-up check, and
    /// the tests' way to know the server is there).
    pub async fn connect(url: &str, prefix: &str) -> Result<RedisStore> {
        let store = RedisStore::open(url, prefix)?;
        store.ping().await?;
        Ok(store)
    }

    /// `PING`: is Redis answering now? (`/readyz`.)
    pub async fn ping(&self) -> Result<()> {
        let mut c = self.conn.clone();
        let answer: String = ::redis::cmd("PING")
            .query_async(&mut c)
            .await
            .map_err(|e| failed("ping", &e))?;
        if answer == "PONG" {
            Ok(())
        } else {
            Err(StoreError::Backend("redis: ping: unexpected answer".into()))
        }
    }

    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }
}
