//! What several replicas share beyond the durable store: the Redis limiter with its failure rule
//! (`redis.on_error`), and the dependencies `/readyz` asks about.

use crate::clock::Clock;
use crate::config::RedisOnError;
use mcpgate_core::principal::Limits;
use mcpgate_core::ratelimit::{Limited, LocalLimiter, Now, RateLimiter, Remaining};
use mcpgate_store::{KeyStore, LimitStore, async_trait};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Something the gateway needs to answer requests, asked by `/readyz`.
#[async_trait]
pub trait Dependency: Send + Sync {
    /// `Ok` when it answers now; else why not, in words without secrets.
    async fn ready(&self) -> Result<(), String>;
}

/// The durable store answers when it can read the keys version (one cheap read in every backend).
pub struct StoreDependency(pub Arc<dyn KeyStore>);

#[async_trait]
impl Dependency for StoreDependency {
    async fn ready(&self) -> Result<(), String> {
        self.0.keys_version().await.map(|_| ()).map_err(|e| e.to_string())
    }
}

#[cfg(feature = "redis")]
#[async_trait]
impl Dependency for mcpgate_store::redis::RedisStore {
    async fn ready(&self) -> Result<(), String> {
        self.ping().await.map_err(|e| e.to_string())
    }
}

/// Limits counted in a shared store on the wall clock (every replica on one time line: the
/// monotonic clock of one process means nothing to another), with a rule for when the store
/// cannot answer: refuse, or count in this replica alone until it can.
pub struct SharedLimits {
    shared: Arc<dyn LimitStore>,
    local: LocalLimiter,
    on_error: RedisOnError,
    clock: Arc<dyn Clock>,
    /// Whether the last check fell back (so the switch is logged once each way).
    degraded: AtomicBool,
}

impl SharedLimits {
    pub fn new(shared: Arc<dyn LimitStore>, on_error: RedisOnError, clock: Arc<dyn Clock>) -> SharedLimits {
        SharedLimits {
            shared,
            local: LocalLimiter::default(),
            on_error,
            clock,
            degraded: AtomicBool::new(false),
        }
    }

    /// `now` with its monotonic reading replaced by wall-clock microseconds.
    fn wall(&self, now: Now) -> Now {
        Now {
            mono_us: self.clock.unix_ms().saturating_mul(1000),
            unix_s: now.unix_s,
        }
    }

    fn note(&self, failing: bool, error: Option<&mcpgate_store::StoreError>) {
        if self.degraded.swap(failing, Ordering::Relaxed) != failing {
            match (failing, self.on_error, error) {
                (true, RedisOnError::AllowLocal, Some(e)) => tracing::warn!(
                    error = %e,
                    "shared rate-limit store unavailable: counting in this replica alone (redis.on_error = allow_local)"
                ),
                (true, _, Some(e)) => tracing::warn!(
                    error = %e,
                    "shared rate-limit store unavailable: refusing limited requests (redis.on_error = deny)"
                ),
                _ => tracing::info!("shared rate-limit store answers again"),
            }
        }
    }
}

#[async_trait]
impl LimitStore for SharedLimits {
    async fn check(
        &self,
        principal: &str,
        limits: &Limits,
        tool: Option<(&str, &Limits)>,
        now: Now,
    ) -> mcpgate_store::Result<Result<(), Limited>> {
        let now = self.wall(now);
        match self.shared.check(principal, limits, tool, now).await {
            Ok(decision) => {
                self.note(false, None);
                Ok(decision)
            }
            Err(e) => {
                self.note(true, Some(&e));
                match self.on_error {
                    RedisOnError::Deny => Err(e),
                    RedisOnError::AllowLocal => Ok(RateLimiter::check(&self.local, principal, limits, tool, now)),
                }
            }
        }
    }

    async fn remaining(&self, principal: &str, limits: &Limits, now: Now) -> mcpgate_store::Result<Remaining> {
        let now = self.wall(now);
        match self.shared.remaining(principal, limits, now).await {
            Ok(r) => Ok(r),
            Err(_) if self.on_error == RedisOnError::AllowLocal => {
                Ok(RateLimiter::remaining(&self.local, principal, limits, now))
            }
            Err(e) => Err(e),
        }
    }
}
