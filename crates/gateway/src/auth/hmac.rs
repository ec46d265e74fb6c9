//! HMAC-signed requests (seed 002) at the HTTP edge: finds the client named by the key-id header,
//! checks `X-Timestamp`/`X-Signature` over the exact body bytes received, and refuses replays.

use mcpgate_core::hmac::{self, HmacError};
use mcpgate_core::principal::{AuthMethod, Limits, Principal, Role, Verified};
use mcpgate_core::redact::Secret;
use mcpgate_store::ReplayStore;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHmac {
    /// Header naming the client (default `X-API-Key`).
    pub key_id_header: Option<String>,
    /// Accepted clock difference in seconds (default 300).
    pub skew_s: Option<u64>,
    #[serde(default)]
    pub clients: Vec<RawHmacClient>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHmacClient {
    pub id: String,
    /// Environment variable holding the shared secret (seed 002: `HMAC_SECRET`).
    pub secret_env: String,
    pub user_id: Option<String>,
    pub tenant: Option<String>,
    pub role: Option<Role>,
    #[serde(default)]
    pub permissions: Vec<String>,
    #[serde(default)]
    pub limits: Limits,
}

pub struct HmacAuth {
    pub key_id_header: axum::http::HeaderName,
    skew_s: i64,
    clients: HashMap<String, (Secret, Principal)>,
    /// Signatures seen within the window: in this process by default; a shared store (Redis)
    /// makes a replay against another replica fail too.
    replay: Arc<dyn ReplayStore>,
}

/// Why a signed request was not accepted.
#[derive(Debug, PartialEq, Eq)]
pub enum HmacRefusal {
    /// The key-id header names no configured client.
    UnknownClient,
    Bad(HmacError),
    /// The replay store could not answer: refused (503), never let through unchecked.
    StoreUnavailable,
}

pub const SIGNATURE: &str = "x-signature";
pub const TIMESTAMP: &str = "x-timestamp";

impl HmacAuth {
    pub fn new(raw: RawHmac, env: &dyn Fn(&str) -> Option<String>) -> Result<HmacAuth, String> {
        let header = raw.key_id_header.unwrap_or_else(|| "x-api-key".into());
        let key_id_header = axum::http::HeaderName::from_bytes(header.as_bytes())
            .map_err(|_| format!("auth.hmac.key_id_header: {header:?} is not a header name"))?;
        if raw.clients.is_empty() {
            return Err("auth.hmac.clients: add at least one client { id, secret_env }".into());
        }
        // Every signature is remembered for the whole window (replay cache): a day at most.
        let skew_s = raw.skew_s.unwrap_or(300);
        if !(1..=86_400).contains(&skew_s) {
            return Err(format!(
                "auth.hmac.skew_s: {skew_s} is out of range; give seconds from 1 to 86400 (default 300)"
            ));
        }
        let mut clients = HashMap::new();
        for c in raw.clients {
            let secret = env(&c.secret_env).filter(|s| !s.is_empty()).ok_or_else(|| {
                format!(
                    "auth.hmac.clients: client {:?}: environment variable {} is not set",
                    c.id, c.secret_env
                )
            })?;
            if secret.len() < 16 {
                tracing::warn!(
                    "HMAC client {:?}: its secret is shorter than 16 bytes; use a long random secret",
                    c.id
                );
            }
            let user_id = c.user_id.unwrap_or_else(|| c.id.clone());
            let p = Principal::verified(Verified {
                name: Some(c.id.clone()),
                tenant: c.tenant,
                permissions: c.permissions,
                limits: c.limits,
                key_id: Some(c.id.clone()),
                ..Verified::new(
                    format!("hmac:{}", c.id),
                    user_id,
                    c.role.unwrap_or(Role::User),
                    AuthMethod::Hmac,
                )
            });
            clients.insert(c.id, (Secret::new(secret), p));
        }
        Ok(HmacAuth {
            key_id_header,
            skew_s: skew_s as i64,
            clients,
            replay: Arc::new(mcpgate_store::memory::MemoryStore::new()),
        })
    }

    /// Remembers signatures in `store` instead of this process's memory.
    pub fn with_replay_store(mut self, store: Arc<dyn ReplayStore>) -> HmacAuth {
        self.replay = store;
        self
    }

    /// Verifies a signed request, and claims its signature so that it works once.
    pub async fn verify(
        &self,
        client: &str,
        timestamp: &str,
        signature: &str,
        body: &[u8],
        now: i64,
    ) -> Result<Principal, HmacRefusal> {
        let (secret, principal) = self.clients.get(client).ok_or(HmacRefusal::UnknownClient)?;
        let (sig, forget_at) = hmac::verify(secret.expose().as_bytes(), timestamp, body, signature, now, self.skew_s)
            .map_err(HmacRefusal::Bad)?;
        match self.replay.claim(&sig, forget_at, now).await {
            Ok(true) => Ok(principal.clone()),
            Ok(false) => Err(HmacRefusal::Bad(HmacError::Replayed)),
            Err(e) => {
                tracing::error!("HMAC replay store unavailable: {e}");
                Err(HmacRefusal::StoreUnavailable)
            }
        }
    }
}

/// Signed requests (seed 002): a request with `X-Signature` is this method's, checked over the
/// exact bytes received.
impl super::Authenticator for HmacAuth {
    async fn authenticate(&self, a: &super::Attempt<'_>) -> super::Outcome {
        use super::{AuthFailure, Outcome};
        let Some(signature) = a.headers.get(SIGNATURE) else {
            return Outcome::NotMine;
        };
        fn text(v: Option<&axum::http::HeaderValue>) -> Option<&str> {
            v.and_then(|v| v.to_str().ok()).map(str::trim)
        }
        let (Some(sig), Some(ts), Some(client)) = (
            text(Some(signature)),
            text(a.headers.get(TIMESTAMP)),
            text(a.headers.get(&self.key_id_header)),
        ) else {
            return Outcome::Refused(AuthFailure::Malformed(
                "a signed request needs X-Timestamp, X-Signature and the client id header",
            ));
        };
        match self.verify(client, ts, sig, a.body, a.now).await {
            Ok(p) => {
                tracing::debug!(target: "mcpgate::auth", client = %client, "signed request accepted");
                Outcome::Authenticated(p)
            }
            Err(HmacRefusal::UnknownClient) => Outcome::Refused(AuthFailure::Malformed(
                "the key-id header names no configured HMAC client",
            )),
            Err(HmacRefusal::Bad(e)) => Outcome::Refused(AuthFailure::Hmac(e)),
            Err(HmacRefusal::StoreUnavailable) => Outcome::Refused(AuthFailure::VerifierUnavailable),
        }
    }
}

impl HmacAuth {
    /// The client id a request names, for the log: printable ASCII, at most 64 characters.
    pub fn client_id(&self, headers: &axum::http::HeaderMap) -> Option<String> {
        let v = headers.get(&self.key_id_header)?.to_str().ok()?;
        Some(v.chars().filter(|c| c.is_ascii_graphic()).take(64).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_skew(skew_s: Option<u64>) -> Result<HmacAuth, String> {
        let raw = RawHmac {
            key_id_header: None,
            skew_s,
            clients: vec![RawHmacClient {
                id: "svc".into(),
                secret_env: "S".into(),
                ..RawHmacClient::default()
            }],
        };
        HmacAuth::new(raw, &|_| Some("a-long-enough-test-secret".into()))
    }

    /// A window past i64 once wrapped negative (every timestamp then failed, or worse): the
    /// configuration is refused with the key's name instead.
    #[test]
    fn skew_window_is_bounded() {
        assert!(with_skew(None).is_ok());
        assert!(with_skew(Some(1)).is_ok());
        assert!(with_skew(Some(86_400)).is_ok());
        for bad in [0, 86_401, i64::MAX as u64 + 1, u64::MAX] {
            let e = with_skew(Some(bad)).err().unwrap_or_default();
            assert!(e.contains("auth.hmac.skew_s"), "{bad}: {e:?}");
        }
    }
}
