//! What several replicas share beyond the durable store: the Redis limiter with its failure rule
//! (`redis.on_error`), the dependencies `/readyz` asks about, and the [`Broadcast`] through which
//! a revocation made here wakes every replica's key and grant pollers at once.

use crate::clock::Clock;
use crate::config::RedisOnError;
use mcpgate_core::principal::Limits;
use mcpgate_core::ratelimit::{Limited, LocalLimiter, Now, RateLimiter, Remaining};
use mcpgate_store::{KeyStore, LimitStore, async_trait};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::Notify;

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

/// What a change made through this gateway is about, as it is announced to the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// API keys or their held credentials (created, rotated, revoked, credential set or cleared).
    Keys,
    /// OAuth grants (revoked by their client, by a refresh-token reuse, with their key).
    Grants,
    /// OAuth clients (removed, with their grants).
    Clients,
    /// An MCP session was ended (DELETE): every replica asks the store again about the session
    /// owners it remembers (`SessionRegistry::rechecking`).
    Sessions,
}

/// Revocations told to every replica at once. The key registry's poller waits on
/// [`keys`](Self::keys) and the authorization server's on [`grants`](Self::grants) besides their
/// interval (`store.reload_interval_ms`), which stays as the backstop for writers that announce
/// nothing (the CLI, psql) and for notices lost while Redis was away.
///
/// With Redis (`[redis]`), [`announce`](Self::announce) publishes one word on
/// `{prefix}changes` (`mcpgate_store::redis::changes`) and [`listen`](Self::listen) rings the
/// wake-ups on every replica's notices (its own included), and all of them after each
/// (re)subscription. Without it, an announcement wakes this process's pollers only. A wake-up
/// rung many times before its poller looks counts once (a `Notify` keeps one permit), and the
/// pollers re-read at most once per [`WAKE_GAP`], so a flood of notices costs a few reads a
/// second, not one per notice.
///
/// Session endings travel the same way: [`sessions`](Self::sessions) moves on at each, and the
/// session registry then asks the store again about the owners it remembers (at worst one more
/// session read per active session; the registry's recheck interval bounds the delay when a
/// notice is lost).
pub struct Broadcast {
    keys: Arc<Notify>,
    grants: Arc<Notify>,
    /// Counts session endings heard (and resubscriptions): an owner remembered under an older
    /// count is asked about again.
    sessions: Arc<std::sync::atomic::AtomicU64>,
    #[cfg(feature = "redis")]
    redis: Option<mcpgate_store::redis::RedisStore>,
    #[cfg(feature = "redis")]
    listener: std::sync::Mutex<Option<mcpgate_store::redis::changes::Listener>>,
}

/// The shortest time between two re-reads a wake-up causes (a revocation heard just after a
/// re-read waits at most this long).
pub const WAKE_GAP: std::time::Duration = std::time::Duration::from_millis(50);

impl Broadcast {
    /// This process alone: an announcement wakes its own pollers; other replicas see the change
    /// at their next poll.
    pub fn local() -> Arc<Broadcast> {
        Arc::new(Broadcast::bare())
    }

    fn bare() -> Broadcast {
        Broadcast {
            keys: Arc::default(),
            grants: Arc::default(),
            sessions: Arc::default(),
            #[cfg(feature = "redis")]
            redis: None,
            #[cfg(feature = "redis")]
            listener: std::sync::Mutex::new(None),
        }
    }

    /// Through the Redis `store` (its prefix names the channel).
    #[cfg(feature = "redis")]
    pub fn redis(store: mcpgate_store::redis::RedisStore) -> Arc<Broadcast> {
        Arc::new(Broadcast {
            redis: Some(store),
            ..Broadcast::bare()
        })
    }

    /// Rung when keys may have changed.
    pub fn keys(&self) -> Arc<Notify> {
        self.keys.clone()
    }

    /// Rung when grants (or clients, which take their grants with them) may have changed.
    pub fn grants(&self) -> Arc<Notify> {
        self.grants.clone()
    }

    /// Moves on whenever a session may have ended elsewhere.
    pub fn sessions(&self) -> Arc<std::sync::atomic::AtomicU64> {
        self.sessions.clone()
    }

    fn ring(&self, change: Change) {
        match change {
            Change::Keys => self.keys.notify_one(),
            Change::Grants | Change::Clients => self.grants.notify_one(),
            Change::Sessions => bump(&self.sessions),
        }
    }

    /// Starts hearing the other replicas' announcements (once; nothing without Redis). Must run
    /// inside a Tokio runtime. Redis need not answer now: the listener keeps trying, and the
    /// polls carry on meanwhile.
    pub fn listen(&self) {
        #[cfg(feature = "redis")]
        if let Some(store) = &self.redis {
            use mcpgate_store::redis::changes::{Change as Notice, Heard};
            let mut listener = self.listener.lock().unwrap_or_else(|e| e.into_inner());
            if listener.is_some() {
                return;
            }
            let (keys, grants, sessions) = (self.keys.clone(), self.grants.clone(), self.sessions.clone());
            *listener = Some(store.listen(move |event| match event {
                Heard::Changed(Notice::Keys) => keys.notify_one(),
                Heard::Changed(Notice::Grants | Notice::Clients) => grants.notify_one(),
                Heard::Changed(Notice::Sessions) => bump(&sessions),
                Heard::Subscribed => {
                    tracing::info!("revocation notices: listening on Redis (every replica hears a revocation at once)")
                }
                Heard::Lost(e) => tracing::warn!(
                    error = %e,
                    "revocation notices: not listening on Redis; revocations made elsewhere take effect at the next \
                     poll (store.reload_interval_ms) until it answers again"
                ),
            }));
        }
    }

    /// Tells this replica's poller, and every other replica, that `change` is in the durable
    /// store (call it after the write). Never fails and never waits: the notice is published in
    /// a task of its own, and a failure is only logged — the other replicas then read the
    /// change at their next poll.
    pub fn announce(&self, change: Change) {
        self.ring(change);
        #[cfg(feature = "redis")]
        if let Some(store) = &self.redis {
            use mcpgate_store::redis::changes::Change as Notice;
            let notice = match change {
                Change::Keys => Notice::Keys,
                Change::Grants => Notice::Grants,
                Change::Clients => Notice::Clients,
                Change::Sessions => Notice::Sessions,
            };
            let store = store.clone();
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => {
                    rt.spawn(async move {
                        if let Err(e) = store.publish(notice).await {
                            tracing::warn!(
                                error = %e,
                                change = notice.word(),
                                "could not announce a change to the other replicas; they will read it at their next poll"
                            );
                        }
                    });
                }
                Err(_) => tracing::debug!(
                    change = notice.word(),
                    "no Tokio runtime to announce a change on; other replicas will read it at their next poll"
                ),
            }
        }
    }
}

fn bump(n: &std::sync::atomic::AtomicU64) {
    n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
}
