//! API keys (seeds 000, 001, 004). A generated key is `mcp_<keyId>_<secret>` with a 256-bit
//! secret; only its SHA-256 is kept (a fast hash suits a high-entropy key). A presented key is
//! found by its keyId and checked in constant time; a legacy key of any other shape (seed 001's
//! `chatgpt-connector-key`) is found by its hash, which reveals nothing about it.

use crate::principal::{AuthMethod, Limits, Principal, Role, Verified};
use crate::redact::Secret;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

mod index;
pub use index::KeyIndex;

pub const PREFIX: &str = "mcp_";

/// What a key grants; what the registry keeps (never the key itself).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KeyRecord {
    pub key_id: String,
    /// Hex SHA-256 of the whole key.
    pub hash: String,
    pub name: String,
    pub user_id: String,
    #[serde(default)]
    pub tenant: Option<String>,
    pub role: Role,
    #[serde(default)]
    pub permissions: Vec<String>,
    #[serde(default)]
    pub limits: Limits,
    /// Unix seconds.
    #[serde(default)]
    pub expires_at: Option<i64>,
    pub created_at: i64,
    #[serde(default)]
    pub revoked: bool,
    /// Where the record came from: `env`, `file`, `store`.
    #[serde(default)]
    pub source: String,
}

impl KeyRecord {
    pub fn principal(&self, method: AuthMethod) -> Principal {
        Principal::verified(Verified {
            name: Some(self.name.clone()),
            tenant: self.tenant.clone(),
            permissions: self.permissions.clone(),
            key_id: Some(self.key_id.clone()),
            limits: self.limits,
            expires_at: self.expires_at,
            ..Verified::new(format!("key:{}", self.key_id), self.user_id.clone(), self.role, method)
        })
    }
}

pub fn hash_hex(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A freshly generated key: shown to the user once, then only its record remains.
pub struct NewKey {
    pub key: Secret,
    pub key_id: String,
    pub hash: String,
}

/// Generates `mcp_<keyId>_<secret>`: a 12-character id and 32 random bytes (base64url), from
/// the operating system's generator.
pub fn generate() -> NewKey {
    generate_with(&crate::entropy::OsEntropy)
}

/// As [`generate`], with the bytes from `entropy` (the gateway's, which tests may seed).
pub fn generate_with(entropy: &dyn crate::entropy::Entropy) -> NewKey {
    let mut id_bytes = [0u8; 6];
    let mut secret = [0u8; 32];
    entropy.fill(&mut id_bytes);
    entropy.fill(&mut secret);
    let key_id = hex::encode(id_bytes);
    let key = format!(
        "{PREFIX}{key_id}_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
    );
    let hash = hash_hex(&key);
    NewKey {
        key: Secret::new(key),
        key_id,
        hash,
    }
}

/// The keyId of a well-formed `mcp_<keyId>_<secret>` key.
pub fn key_id_of(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let ok = |s: &str, max: usize| {
        !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    (ok(id, 64) && ok(secret, 256)).then_some(id)
}

/// Why a presented key was not accepted. The variants are distinct for the audit log; the
/// client is told only "invalid" or "expired", never which keys exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyError {
    Unknown,
    Revoked,
    Expired,
}

/// One entry of `MCP_API_KEYS` in seed 001's shape.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedKeyEntry {
    pub name: Option<String>,
    pub user_id: Option<String>,
    pub tenant_id: Option<String>,
    pub role: Option<String>,
    #[serde(default)]
    pub permissions: Vec<String>,
    pub rate_limit: Option<SeedRateLimit>,
    pub expires_at: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeedRateLimit {
    pub requests_per_minute: Option<u32>,
    pub requests_per_hour: Option<u32>,
    pub requests_per_day: Option<u32>,
}

/// A key read from `MCP_API_KEYS` or a keys file: the record, and whether the key is weak (not
/// a generated `mcp_…` key with a long random secret).
pub struct LoadedKey {
    pub record: KeyRecord,
    pub weak: bool,
}

/// Parses seed 001's JSON map `{ "<key>": { name, userId, role, permissions, rateLimit, expiresAt } }`.
/// Errors name the entry by position, never by the key.
pub fn parse_seed_keys(json: &str, source: &str, now: i64) -> Result<Vec<LoadedKey>, String> {
    let map: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(json).map_err(|e| format!("{source}: not a JSON object of keys ({e})"))?;
    let mut out = Vec::with_capacity(map.len());
    for (i, (key, value)) in map.into_iter().enumerate() {
        let n = i + 1;
        if key.len() < 8 {
            return Err(format!(
                "{source}: key #{n} is shorter than 8 characters; use `mcpgate keys create` for a strong key"
            ));
        }
        let e: SeedKeyEntry = serde_json::from_value(value).map_err(|e| format!("{source}: key #{n}: {e}"))?;
        let role = match e.role.as_deref() {
            None => Role::User,
            Some(r) => Role::parse(r)
                .ok_or_else(|| format!("{source}: key #{n}: role {r:?} is not guest, user, developer or admin"))?,
        };
        let expires_at = match e.expires_at.as_deref() {
            None => None,
            Some(t) => Some(crate::time::parse_rfc3339(t).ok_or_else(|| {
                format!("{source}: key #{n}: expiresAt {t:?} is not an RFC 3339 time like 2025-12-31T23:59:59Z")
            })?),
        };
        let hash = hash_hex(&key);
        let weak = key_id_of(&key).is_none_or(|_| key.len() < 40);
        let key_id = match key_id_of(&key) {
            Some(id) => id.to_string(),
            // A stable id that says nothing about the key: derived from where and for whom it
            // is configured, never from the key itself (a weak key's hash could be guessed).
            None => {
                let who = format!("{source}\u{0}{n}\u{0}{:?}\u{0}{:?}", e.name, e.user_id);
                format!("legacy-{}", &hash_hex(&who)[..12])
            }
        };
        let rl = e.rate_limit;
        out.push(LoadedKey {
            weak,
            record: KeyRecord {
                key_id,
                hash,
                name: e.name.unwrap_or_else(|| format!("{source} key #{n}")),
                user_id: e.user_id.unwrap_or_else(|| format!("{source}-{n}")),
                tenant: e.tenant_id,
                role,
                permissions: e.permissions,
                limits: Limits {
                    per_minute: rl.as_ref().and_then(|r| r.requests_per_minute),
                    per_hour: rl.as_ref().and_then(|r| r.requests_per_hour),
                    per_day: rl.as_ref().and_then(|r| r.requests_per_day),
                },
                expires_at,
                created_at: now,
                revoked: false,
                source: source.to_string(),
            },
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_001_json_loads() {
        let json = r#"{
          "chatgpt-connector-key": {
            "name": "ChatGPT Connector", "userId": "connector-user", "role": "user", "permissions": ["*"],
            "rateLimit": { "requestsPerMinute": 100, "requestsPerHour": 1000 },
            "expiresAt": "2025-12-31T23:59:59Z"
          }
        }"#;
        let keys = parse_seed_keys(json, "MCP_API_KEYS", 0).unwrap();
        assert_eq!(keys.len(), 1);
        let k = &keys[0];
        assert!(k.weak);
        assert_eq!(k.record.user_id, "connector-user");
        assert_eq!(k.record.limits.per_minute, Some(100));
        assert_eq!(k.record.expires_at, Some(1767225599));
        assert!(!k.record.key_id.contains("chatgpt"));
        let idx = KeyIndex::new(keys.into_iter().map(|k| k.record));
        assert!(idx.verify("chatgpt-connector-key", 0).is_ok());
        assert!(idx.verify("chatgpt-connector-kez", 0).is_err());
    }

    #[test]
    fn seed_json_errors_never_echo_keys() {
        for bad in [
            r#"{"secret-key-123": {"role": "root"}}"#,
            r#"{"secret-key-123": {"expiresAt": "soon"}}"#,
            r#"{"short": {}}"#,
            "[]",
        ] {
            let e = parse_seed_keys(bad, "MCP_API_KEYS", 0).err().unwrap();
            assert!(!e.contains("secret-key-123"), "{e}");
        }
    }
}
