//! Storage behind traits: [`KeyStore`] for API keys and [`AuditStore`] for audit records. The
//! embedded SQLite implementation ([`sqlite::SqliteStore`]) is the default and needs no other
//! service; shared backends implement the same traits and must pass the same tests.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod sqlite;

use mcpgate_core::audit::{AuditQuery, AuditRecord};
use mcpgate_core::keys::KeyRecord;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage error: {0}")]
    Backend(String),
    #[error("a key with id {0} already exists")]
    Duplicate(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

pub trait KeyStore: Send + Sync {
    /// Every key, oldest first (for people: `mcpgate keys list`).
    fn list_keys(&self) -> Result<Vec<KeyRecord>>;
    /// Every key in no particular order (for building an index: no sort at 1M keys).
    fn all_keys(&self) -> Result<Vec<KeyRecord>> {
        self.list_keys()
    }
    fn get_key(&self, key_id: &str) -> Result<Option<KeyRecord>>;
    fn insert_key(&self, record: &KeyRecord) -> Result<()>;
    /// Marks a key revoked; false when there is no such key.
    fn revoke_key(&self, key_id: &str) -> Result<bool>;
    /// Sets (or clears) a key's expiry; false when there is no such key.
    fn set_key_expiry(&self, key_id: &str, expires_at: Option<i64>) -> Result<bool>;
    /// Records when keys were last used (batched by the caller).
    fn touch_keys(&self, used: &[(String, i64)]) -> Result<()>;
    fn last_used(&self, key_id: &str) -> Result<Option<i64>>;
    /// A number that changes whenever any key changes, so readers can reload cheaply.
    fn keys_version(&self) -> Result<i64>;
}

/// A user's upstream credential, sealed (see `mcpgate_core::sealed`); the store never sees it
/// in the clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedCredential {
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

/// Upstream credentials the gateway holds per key (identity delegation). Changes bump
/// [`KeyStore::keys_version`] so running gateways reload them.
pub trait CredentialStore: Send + Sync {
    fn set_credential(&self, key_id: &str, sealed: &SealedCredential, now: i64) -> Result<()>;
    fn remove_credential(&self, key_id: &str) -> Result<bool>;
    fn list_credentials(&self) -> Result<Vec<(String, SealedCredential)>>;
}

pub trait AuditStore: Send + Sync {
    fn append(&self, records: &[AuditRecord]) -> Result<()>;
    fn query(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>>;
    /// Deletes records older than `before_ms`; returns how many.
    fn prune(&self, before_ms: i64) -> Result<usize>;
}
