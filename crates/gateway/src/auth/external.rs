//! External key verification (seed 000 reuses its public API's keys): a key the registry does not
//! know is checked by calling the vendor's API (for example `GET /me`). Answers are cached briefly
//! by the key's hash — successes and failures with separate lifetimes. A verifier that is slow or
//! down yields "unavailable" (503), never a false "invalid key".

use super::cache::TtlCache;
use crate::config::ExternalConfig;
use mcpgate_core::keys::hash_hex;
use mcpgate_core::principal::{AuthMethod, Principal, Role};
use mcpgate_core::redact::Secret;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExternalError {
    Invalid,
    Unavailable,
}

pub struct ExternalVerifier {
    cfg: ExternalConfig,
    client: reqwest::Client,
    cache: TtlCache<Option<Principal>>,
}

/// Bound on cached answers, so a flood of random keys cannot grow memory without limit.
const MAX_CACHE: usize = 100_000;

impl ExternalVerifier {
    pub fn new(cfg: ExternalConfig) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build the verifier's HTTP client: {e}"))?;
        Ok(ExternalVerifier {
            cfg,
            client,
            cache: TtlCache::new(MAX_CACHE),
        })
    }

    pub async fn verify(&self, key: &Secret, now: i64) -> Result<Principal, ExternalError> {
        let hash = hash_hex(key.expose());
        if let Some(answer) = self.cache.get(&hash, now) {
            return answer.ok_or(ExternalError::Invalid);
        }
        let value = self.cfg.template.replace("{key}", key.expose());
        let resp = self
            .client
            .get(self.cfg.url.clone())
            .header(self.cfg.header.clone(), value)
            .send()
            .await;
        let answer = match resp {
            Err(_) => return Err(ExternalError::Unavailable),
            Ok(r) if matches!(r.status().as_u16(), 401 | 403 | 404) => None,
            Ok(r) if r.status().is_success() => match r.json::<serde_json::Value>().await {
                Ok(v) => Some(self.principal(&v).ok_or(ExternalError::Unavailable)?),
                Err(_) => return Err(ExternalError::Unavailable),
            },
            Ok(_) => return Err(ExternalError::Unavailable),
        };
        let ttl = if answer.is_some() {
            self.cfg.cache_ttl
        } else {
            self.cfg.negative_cache_ttl
        };
        self.cache
            .insert(hash, answer.clone(), now.saturating_add(ttl.as_secs() as i64), now);
        answer.ok_or(ExternalError::Invalid)
    }

    fn principal(&self, v: &serde_json::Value) -> Option<Principal> {
        let user_id = text_at(v, &self.cfg.user_id_path)?;
        let role = self
            .cfg
            .role_path
            .as_deref()
            .and_then(|p| text_at(v, p))
            .and_then(|r| Role::parse(&r))
            .unwrap_or(self.cfg.default_role);
        let permissions = self
            .cfg
            .permissions_path
            .as_deref()
            .and_then(|p| at(v, p))
            .and_then(|p| p.as_array())
            .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
            .unwrap_or_else(|| self.cfg.default_permissions.clone());
        Some(Principal {
            id: format!("ext:{user_id}"),
            user_id,
            name: self.cfg.name_path.as_deref().and_then(|p| text_at(v, p)),
            tenant: self.cfg.tenant_path.as_deref().and_then(|p| text_at(v, p)),
            role,
            permissions,
            scopes: None,
            key_id: None,
            method: AuthMethod::ExternalKey,
            limits: Default::default(),
            expires_at: None,
            upstream_credential: None,
        })
    }
}

/// The value at a dotted path (`data.user.id`).
pub fn at<'v>(v: &'v serde_json::Value, path: &str) -> Option<&'v serde_json::Value> {
    path.split('.').try_fold(v, |cur, seg| cur.get(seg))
}

fn text_at(v: &serde_json::Value, path: &str) -> Option<String> {
    match at(v, path)? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}
