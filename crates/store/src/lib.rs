//! Storage behind async traits, one per kind of state: [`KeyStore`] (API keys), [`CredentialStore`]
//! (upstream credentials held per key, sealed), [`AuditStore`] (audit records) and [`ReplayStore`]
//! (nonces and signatures seen once: HMAC replay, later `private_key_jwt` jti), [`LimitStore`]
//! (rate-limit and quota counters) and [`SessionStore`] (which principal opened each MCP
//! session, and how many each holds); for the OAuth authorization server, [`ClientStore`] (its
//! clients), [`GrantStore`] (grants with their codes, refresh-token families and consents),
//! [`SigningKeyStore`] (the keys access tokens are signed with) and [`UserStore`] (the people who
//! signed in through a provider, with their first and last sign-in), in [`oauth`]. Two embedded
//! implementations need no other service: [`sqlite::SqliteStore`] (one file, the default) and
//! [`memory::MemoryStore`] (nothing survives the process; tests, embedders). A shared backend
//! (PostgreSQL, Redis) implements the same traits and must pass the same [`conformance`] suite.
//! With the `postgres` feature, `postgres::PostgresStore` is the shared store for several gateways.
//!
//! The traits are object-safe (`Arc<dyn KeyStore>`): the gateway picks a backend at start-up.
//! Each method is one unit of work a backend can make atomic; none is on the per-request hot
//! path except [`ReplayStore::claim`] for signed requests and [`LimitStore::check`] for callers
//! with limits (keys are served from memory and reloaded on change; audit records are appended
//! in batches off the request path). Rate-limit counters and session ownership live in memory in
//! both embedded choices (`LocalLimiter`, [`memory::MemoryStore`]: a SQLite write per request
//! would cost more than the request); a shared backend keeps them where every replica sees the
//! same counts and the same owners. The OAuth records are written by the authorization server's
//! endpoints (sign-in, token exchange, refresh), never by an `/mcp` request.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod conformance;
pub mod memory;
pub mod oauth;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
mod rules;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod unavailable;

pub use async_trait::async_trait;
use mcpgate_core::audit::{AuditQuery, AuditRecord, Usage, UsageQuery};
use mcpgate_core::keys::KeyRecord;
use mcpgate_core::principal::Limits;
use mcpgate_core::ratelimit::{Limited, Now, Remaining};
pub use oauth::{ClientStore, GrantStore, SigningKeyStore, UserRecord, UserStore};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage error: {0}")]
    Backend(String),
    #[error("a key with id {0} already exists")]
    Duplicate(String),
    /// The backend could not be reached: no connection could be had, the one in use was lost, or
    /// the server is shutting down. Nothing was refused: the same call may succeed once it is
    /// back (the audit writer keeps such records and writes them then).
    #[error("storage unavailable: {0}")]
    Unavailable(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Every key, oldest first (ties by key id; for people: `mcpgate keys list`).
    async fn list_keys(&self) -> Result<Vec<KeyRecord>>;
    /// Every key in no particular order (for building an index: no sort at 1M keys).
    async fn all_keys(&self) -> Result<Vec<KeyRecord>> {
        self.list_keys().await
    }
    async fn get_key(&self, key_id: &str) -> Result<Option<KeyRecord>>;
    /// Adds a key; [`StoreError::Duplicate`] when its id is taken (two writers racing on one id:
    /// exactly one wins).
    async fn insert_key(&self, record: &KeyRecord) -> Result<()>;
    /// Marks a key revoked; false when there is no such key.
    async fn revoke_key(&self, key_id: &str) -> Result<bool>;
    /// Sets (or clears) a key's expiry; false when there is no such key.
    async fn set_key_expiry(&self, key_id: &str, expires_at: Option<i64>) -> Result<bool>;
    /// Records when keys were last used (batched by the caller). A time never moves backwards.
    async fn touch_keys(&self, used: &[(String, i64)]) -> Result<()>;
    /// When the key was last used; `None` when never, or when there is no such key.
    async fn last_used(&self, key_id: &str) -> Result<Option<i64>>;
    /// A number that changes whenever a key or a held credential changes, so readers can reload
    /// cheaply. It only grows; recording a key's use ([`touch_keys`](Self::touch_keys)) leaves it.
    async fn keys_version(&self) -> Result<i64>;
    /// What changed after `version` (a value [`keys_version`](Self::keys_version) gave), so a
    /// reader that holds every key as of `version` can catch up without reading them all again.
    /// Consistent with the version it returns: every change up to it is included (one may also
    /// be included again later: applying a change twice is harmless). `None` when the store
    /// cannot say (the default, or `version` is one it never reached): the reader reads
    /// everything again.
    async fn key_changes_since(&self, version: i64) -> Result<Option<KeyChanges>> {
        let _ = version;
        Ok(None)
    }
}

/// The keys and held credentials changed after a version, each once, as they are now (see
/// [`KeyStore::key_changes_since`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyChanges {
    /// The version these changes bring a reader to.
    pub version: i64,
    /// Keys added or changed (revoked, expiry set or cleared).
    pub keys: Vec<KeyRecord>,
    /// Keys no longer in the store (deleted by hand: the store's API never removes a key).
    pub removed_keys: Vec<String>,
    /// Held credentials set or replaced (`Some`), or removed (`None`).
    pub credentials: Vec<(String, Option<SealedCredential>)>,
}

impl KeyChanges {
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.removed_keys.is_empty() && self.credentials.is_empty()
    }
}

/// A user's upstream credential, sealed (see `mcpgate_core::sealed`); the store never sees it
/// in the clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedCredential {
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

/// Upstream credentials the gateway holds per key (identity delegation). Changes bump
/// [`KeyStore::keys_version`] and are listed by [`KeyStore::key_changes_since`] of the same
/// store, so running gateways follow them.
#[async_trait]
pub trait CredentialStore: Send + Sync {
    /// Sets or replaces the credential held for `key_id`.
    async fn set_credential(&self, key_id: &str, sealed: &SealedCredential, now: i64) -> Result<()>;
    /// False when none was held.
    async fn remove_credential(&self, key_id: &str) -> Result<bool>;
    async fn list_credentials(&self) -> Result<Vec<(String, SealedCredential)>>;
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends the records, all or none.
    async fn append(&self, records: &[AuditRecord]) -> Result<()>;
    /// The last `q.limit` records (100 when 0) appended that match, in the order they were
    /// appended.
    async fn query(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>> {
        let mut page = self.search(q).await?;
        page.reverse();
        Ok(page.into_iter().map(|(_, r)| r).collect())
    }
    /// Newest first: up to `q.limit` records (100 when 0) that match, numbered below `q.before`
    /// when set, each with its number (increasing in the order appended, stable while the record
    /// exists): how the admin API pages backwards through the log (the next page's `before` is
    /// the last number of this one).
    async fn search(&self, q: &AuditQuery) -> Result<Vec<(u64, AuditRecord)>>;
    /// Requests per time bucket and the busiest values of `q.by`, by decision. The default reads
    /// the window's records through [`search`](Self::search); SQL backends group in the database.
    async fn usage(&self, q: &UsageQuery) -> Result<Usage> {
        let records = self
            .search(&AuditQuery {
                since_ms: Some(q.since_ms),
                until_ms: Some(q.until_ms),
                limit: usize::MAX,
                ..AuditQuery::default()
            })
            .await?;
        Ok(Usage::tally(q, records.iter().map(|(_, r)| r)))
    }
    /// Deletes records older than `before_ms`; returns how many.
    async fn prune(&self, before_ms: i64) -> Result<usize>;
    /// Up to `limit` records appended after the one numbered `after` (0: from the first), in the
    /// order they were appended, each with its number (increasing, not necessarily dense): how a
    /// store is copied in pages (`mcpgate store copy`). The default reads every record through
    /// [`query`](Self::query) and numbers them by position; a backend that numbers its records
    /// reads just the page.
    async fn page(&self, after: u64, limit: usize) -> Result<Vec<(u64, AuditRecord)>> {
        let all = self
            .query(&AuditQuery {
                limit: usize::MAX,
                ..AuditQuery::default()
            })
            .await?;
        let skip = usize::try_from(after).unwrap_or(usize::MAX);
        Ok((1u64..).zip(all).skip(skip).take(limit).collect())
    }
}

/// Things that may be used once within a window: an HMAC signature, a `private_key_jwt` jti.
#[async_trait]
pub trait ReplayStore: Send + Sync {
    /// Records `key` as used until `expires_at` (unix seconds). True when it is its first use:
    /// never seen, or seen with an expiry at or before `now`. Two callers claiming the same key
    /// at once: exactly one gets true.
    async fn claim(&self, key: &[u8], expires_at: i64, now: i64) -> Result<bool>;
    /// Forgets entries that expired at or before `now`; returns how many (a backend that
    /// expires entries on its own may answer 0).
    async fn purge(&self, now: i64) -> Result<usize>;
}

/// Rate limits and quotas: per-minute and per-hour windows and a daily quota, per principal and
/// per (principal, tool). Exact under concurrency: of many racing requests, exactly as many are
/// admitted as the windows allow.
#[async_trait]
pub trait LimitStore: Send + Sync {
    /// Counts one request of `principal` (and of `tool`, with its own limits) if every window
    /// admits it; otherwise counts nothing and says which window refused and when to retry.
    async fn check(
        &self,
        principal: &str,
        limits: &Limits,
        tool: Option<(&str, &Limits)>,
        now: Now,
    ) -> Result<std::result::Result<(), Limited>>;
    /// What is left in each of `principal`'s own windows.
    async fn remaining(&self, principal: &str, limits: &Limits, now: Now) -> Result<Remaining>;
}

/// Callers without a credential share one session bucket: the owner `None` counts as this
/// principal id (which is also the default role's id), so anonymous traffic cannot multiply its
/// share by not presenting one.
pub const ANONYMOUS: &str = "anonymous";

/// The bucket a session of `owner` counts in.
pub fn session_bucket(owner: Option<&str>) -> &str {
    owner.unwrap_or(ANONYMOUS)
}

/// An open session as the admin API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub id: String,
    /// Who opened it (`None`: opened without a credential).
    pub owner: Option<String>,
    /// When it was last used (unix ms).
    pub last_seen_ms: i64,
}

/// A session the store knows: who opened it (`None`: opened without a credential).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenSession {
    pub owner: Option<String>,
}

/// MCP sessions and the principal that opened each, shared by every gateway that can receive the
/// session's next request. Times are unix milliseconds given by the caller (the gateway's clock).
///
/// A new session first takes a *place* under its owner's cap ([`reserve`](Self::reserve)),
/// before `initialize` goes upstream, so a burst of initializes cannot overshoot the cap; the
/// place becomes the session ([`open`](Self::open)) or is given back
/// ([`release`](Self::release)); a place never confirmed lapses at its deadline, so a gateway that
/// dies mid-initialize leaks nothing. Counts are per [`session_bucket`].
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Takes a place named `token` for one more session of `owner`, live until `until_ms`, if the
    /// bucket holds fewer than `cap` sessions and live places. Many racing: at most `cap` win.
    async fn reserve(&self, owner: Option<&str>, token: &str, cap: usize, now_ms: i64, until_ms: i64) -> Result<bool>;
    /// Gives an unused place back (nothing when there is none).
    async fn release(&self, token: &str) -> Result<()>;
    /// Records session `id` as opened by `owner` and seen at `now_ms`, in the place `token` held
    /// (`None`: counted without a cap). An id issued again replaces the first record, its count
    /// with it.
    async fn open(&self, id: &str, owner: Option<&str>, token: Option<&str>, now_ms: i64) -> Result<()>;
    /// Who opened session `id`, marking it seen at `now_ms`; `None` when there is no such session.
    async fn touch(&self, id: &str, now_ms: i64) -> Result<Option<OpenSession>>;
    /// Ends session `id`; false when there was none.
    async fn close(&self, id: &str) -> Result<bool>;
    /// Sessions and live places in `owner`'s bucket.
    async fn count(&self, owner: Option<&str>, now_ms: i64) -> Result<usize>;
    /// Sessions open, in all.
    async fn total(&self) -> Result<usize>;
    /// Up to `limit` open sessions, the most recently seen first (the admin API's list).
    async fn list(&self, limit: usize) -> Result<Vec<SessionInfo>>;
    /// Ends every session last seen before `seen_before_ms` and forgets lapsed places; returns how
    /// many sessions ended.
    async fn purge_idle(&self, seen_before_ms: i64, now_ms: i64) -> Result<usize>;
}
