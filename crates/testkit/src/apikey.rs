//! API keys in the gateway's store, as the tests make them: what a key grants ([`KeySpec`],
//! built with [`key`]), the key as its user holds it ([`Issued`]), and seed 001's
//! `MCP_API_KEYS` JSON.

use crate::time::{block_on, now_s};
use mcpgate_core::keys::{self, KeyRecord};
use mcpgate_core::principal::{Limits, Role};
use mcpgate_store::KeyStore;
use mcpgate_store::sqlite::SqliteStore;
use serde_json::json;

/// What a store key grants. Defaults: role `user`, permissions `["*"]`, no limits, no tenant.
#[derive(Clone, Debug)]
pub struct KeySpec {
    pub user: String,
    pub role: Role,
    pub permissions: Vec<String>,
    pub limits: Limits,
    pub tenant: Option<String>,
    pub expires_at: Option<i64>,
    pub revoked: bool,
}

pub fn key(user: &str) -> KeySpec {
    KeySpec {
        user: user.to_string(),
        role: Role::User,
        permissions: vec!["*".into()],
        limits: Limits::default(),
        tenant: None,
        expires_at: None,
        revoked: false,
    }
}

impl KeySpec {
    pub fn role(mut self, r: Role) -> Self {
        self.role = r;
        self
    }
    pub fn perms(mut self, p: &[&str]) -> Self {
        self.permissions = p.iter().map(|s| s.to_string()).collect();
        self
    }
    pub fn limits(mut self, l: Limits) -> Self {
        self.limits = l;
        self
    }
    pub fn tenant(mut self, t: &str) -> Self {
        self.tenant = Some(t.to_string());
        self
    }
    pub fn expires_at(mut self, t: i64) -> Self {
        self.expires_at = Some(t);
        self
    }
    pub fn revoked(mut self) -> Self {
        self.revoked = true;
        self
    }
}

/// A key as the user holds it, plus what the store keeps of it.
#[derive(Clone, Debug)]
pub struct Issued {
    pub key: String,
    pub key_id: String,
    pub hash: String,
    pub user: String,
}

impl Issued {
    /// The secret part of `mcp_<keyId>_<secret>` (or the whole key for other shapes).
    pub fn secret_part(&self) -> &str {
        let prefix = format!("mcp_{}_", self.key_id);
        self.key.strip_prefix(&prefix).unwrap_or(&self.key)
    }
    pub fn x_api_key(&self) -> (&'static str, &str) {
        ("x-api-key", self.key.as_str())
    }
    pub fn bearer(&self) -> (&'static str, String) {
        ("authorization", format!("Bearer {}", self.key))
    }
}

/// A generated key that no registry knows.
pub fn unknown_key() -> Issued {
    let k = keys::generate();
    Issued {
        key: k.key.expose().to_string(),
        key_id: k.key_id,
        hash: k.hash,
        user: "nobody".into(),
    }
}

/// Generates a key granting `spec` and inserts it into `store`.
pub fn insert_key(store: &SqliteStore, spec: &KeySpec) -> Issued {
    let (record, issued) = new_key(spec);
    block_on(store.insert_key(&record)).expect("insert key");
    issued
}

/// A generated key granting `spec`: the store record and the key as issued (for any store).
pub fn new_key(spec: &KeySpec) -> (KeyRecord, Issued) {
    let k = keys::generate();
    let record = KeyRecord {
        key_id: k.key_id.clone(),
        hash: k.hash.clone(),
        name: format!("test key of {}", spec.user),
        user_id: spec.user.clone(),
        tenant: spec.tenant.clone(),
        role: spec.role,
        permissions: spec.permissions.clone(),
        limits: spec.limits,
        expires_at: spec.expires_at,
        created_at: now_s(),
        revoked: spec.revoked,
        source: "store".into(),
    };
    let issued = Issued {
        key: k.key.expose().to_string(),
        key_id: k.key_id,
        hash: k.hash,
        user: spec.user.clone(),
    };
    (record, issued)
}

/// seed 001's `MCP_API_KEYS` JSON for one key.
pub fn seed_keys_json(key: &str, user: &str, role: &str, perms: &[&str], per_minute: Option<u32>) -> String {
    let mut entry = json!({
        "name": format!("{user} connector"),
        "userId": user,
        "role": role,
        "permissions": perms,
    });
    if let Some(n) = per_minute {
        entry["rateLimit"] = json!({ "requestsPerMinute": n, "requestsPerHour": 1000 });
    }
    json!({ key: entry }).to_string()
}
