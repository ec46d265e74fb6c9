//! The user's own token at a sign-in provider, held for the upstream (`delegation.source =
//! "provider:<id>"`, issue #12): a GitHub or Google MCP server needs the *person's* token there,
//! and the caller's mcpgate token must never go upstream (no token passthrough).
//!
//! When someone signs in at that provider, its access token (with its refresh token and expiry)
//! is sealed (`delegation.encryption_key_env`) into the credential store under the person's
//! name at that provider ([`owner`]: provider, tenant, user id — the same person whichever way
//! they later reach `/mcp`). The key registry keeps every held credential in memory, so a call
//! reads no store: [`usable`] takes the access token while it is still good. A background task
//! ([`Refresher`]) renews tokens before they expire and forgets one the provider refuses to
//! renew; the next call then says where to sign in again.

use super::{Failure, Provider, Providers, TokenAnswer};
use mcpgate_core::redact::Secret;
use mcpgate_core::sealed::SealingKey;
use mcpgate_store::{CredentialStore, SealedCredential};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::sync::Arc;

/// A token is renewed when it has less than this left.
const RENEW_BEFORE_S: i64 = 300;
/// ... and not used when it has less than this left (it could expire on the way).
const USABLE_MARGIN_S: i64 = 30;
/// How often the refresher looks.
const LOOK_EVERY_S: u64 = 60;

/// What is sealed: the provider's access token, its refresh token and when it expires.
#[derive(Serialize, Deserialize)]
pub struct ProviderToken {
    pub access_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Unix seconds; `None`: the provider gave no expiry (GitHub OAuth apps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

impl ProviderToken {
    /// From a token response, `None` without an access token.
    pub(super) fn from_answer(a: &TokenAnswer, now: i64) -> Option<ProviderToken> {
        Some(ProviderToken {
            access_token: a.access_token.clone().filter(|t| !t.is_empty())?,
            refresh_token: a.refresh_token.clone().filter(|t| !t.is_empty()),
            expires_at: a
                .expires_in
                .filter(|s| *s > 0)
                .map(|s| now.saturating_add(s.min(i64::MAX / 2))),
        })
    }
}

/// The credential-store name of `user_id`'s (in `tenant`) token at `provider`. The parts are
/// JSON-quoted, so no user id can spell another person's name.
pub fn owner(provider: &str, tenant: Option<&str>, user_id: &str) -> String {
    format!("provider:{provider}:{}", serde_json::json!([tenant, user_id]))
}

/// The access token in a held (opened) value, while it has more than a moment left.
pub fn usable(held: &Secret, now: i64) -> Option<Secret> {
    let t: ProviderToken = serde_json::from_str(held.expose()).ok()?;
    t.expires_at
        .is_none_or(|e| e > now.saturating_add(USABLE_MARGIN_S))
        .then(|| Secret::new(t.access_token))
}

/// Where held provider tokens are sealed.
pub struct HeldTokens {
    store: Arc<dyn CredentialStore>,
    sealing: SealingKey,
}

impl HeldTokens {
    pub fn new(store: Arc<dyn CredentialStore>, sealing: SealingKey) -> HeldTokens {
        HeldTokens { store, sealing }
    }

    /// Seals `token` for `owner` (replacing what was held).
    pub async fn keep(&self, owner: &str, token: &ProviderToken, now: i64) -> Result<(), String> {
        let plain = serde_json::to_vec(token).map_err(|e| e.to_string())?;
        let (nonce, ciphertext) = self.sealing.seal(owner, &plain)?;
        self.store
            .set_credential(
                owner,
                &SealedCredential {
                    nonce: nonce.to_vec(),
                    ciphertext,
                },
                now,
            )
            .await
            .map_err(|e| e.to_string())
    }

    /// Every held token of `provider`: (owner, token).
    async fn of(&self, provider: &str) -> Result<Vec<(String, ProviderToken)>, String> {
        let prefix = format!("provider:{provider}:");
        let mut out = Vec::new();
        for (owner, sealed) in self.store.list_credentials().await.map_err(|e| e.to_string())? {
            if !owner.starts_with(&prefix) {
                continue;
            }
            match self
                .sealing
                .open(&owner, &sealed.nonce, &sealed.ciphertext)
                .map_err(|e| e.to_string())
                .and_then(|p| serde_json::from_slice::<ProviderToken>(&p).map_err(|e| e.to_string()))
            {
                Ok(t) => out.push((owner, t)),
                Err(e) => tracing::warn!(provider, "a held provider token cannot be opened: {e}"),
            }
        }
        Ok(out)
    }
}

/// Renews held tokens of one provider before they expire. Every replica runs one; each token
/// generation is renewed by one of them only (claimed in the shared replay store: a second
/// renewal with a rotated refresh token would be refused and the token forgotten).
pub struct Refresher {
    pub held: Arc<HeldTokens>,
    pub provider: String,
    pub replay: Arc<dyn mcpgate_store::ReplayStore>,
    /// This process's in-memory copy, updated at once after a renewal.
    pub keys: Option<Arc<crate::auth::api_keys::KeyRegistry>>,
}

impl Refresher {
    /// Runs while `server` lives.
    pub async fn run(self, server: std::sync::Weak<crate::oauth::OAuthServer>) {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(LOOK_EVERY_S));
        loop {
            tick.tick().await;
            let Some(o) = server.upgrade() else { return };
            let Some(all) = o.providers.as_ref() else { return };
            let Some(p) = all.get(&self.provider) else { return };
            if let Err(e) = self.once(all, p, o.clock.unix_s()).await {
                tracing::warn!(provider = %self.provider, "cannot renew held provider tokens: {e}");
            }
        }
    }

    /// One look: renews every token with less than [`RENEW_BEFORE_S`] left; forgets those the
    /// provider will not renew (or that cannot be renewed and have expired).
    pub async fn once(&self, all: &Providers, p: &Provider, now: i64) -> Result<usize, String> {
        let mut renewed = 0;
        for (owner, t) in self.held.of(&self.provider).await? {
            let Some(exp) = t.expires_at else { continue };
            if exp > now.saturating_add(RENEW_BEFORE_S) {
                continue;
            }
            let Some(refresh) = &t.refresh_token else {
                if exp <= now {
                    let _ = self.held.store.remove_credential(&owner).await;
                }
                continue;
            };
            let generation = sha2::Sha256::digest(format!("provider-renewal:{owner}:{refresh}").as_bytes());
            match self.replay.claim(&generation, exp.saturating_add(3600), now).await {
                Ok(true) => {}
                // Another replica renews this one (or the store cannot say: try next time).
                Ok(false) | Err(_) => continue,
            }
            match p
                .exchange(all, &[("grant_type", "refresh_token"), ("refresh_token", refresh)])
                .await
            {
                Ok(answer) => {
                    let Some(mut fresh) = ProviderToken::from_answer(&answer, now) else {
                        continue;
                    };
                    // A provider that does not rotate refresh tokens sends none back.
                    if fresh.refresh_token.is_none() {
                        fresh.refresh_token = t.refresh_token.clone();
                    }
                    self.held.keep(&owner, &fresh, now).await?;
                    if let (Some(keys), Ok(plain)) = (&self.keys, serde_json::to_string(&fresh)) {
                        keys.hold_now(&owner, Secret::new(plain));
                    }
                    renewed += 1;
                }
                Err(Failure::Refused(why)) => {
                    tracing::info!(provider = %self.provider, reason = %why, "a held provider token was not renewed: forgotten (the person signs in again)");
                    let _ = self.held.store.remove_credential(&owner).await;
                }
                Err(Failure::Unreachable(why)) => {
                    tracing::warn!(provider = %self.provider, reason = %why, "provider unreachable while renewing a held token");
                }
            }
        }
        Ok(renewed)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn owners_cannot_be_spelled_by_another_user_id() {
        let a = owner("github", Some("t"), "ana");
        assert_ne!(a, owner("github", None, "t\",\"ana"));
        assert_ne!(owner("github", None, "ana"), owner("github", Some(""), "ana"));
        assert_ne!(owner("git", None, "hub:ana"), owner("github", None, "ana"));
        assert!(a.starts_with("provider:github:"));
    }

    #[test]
    fn a_token_is_not_used_in_its_last_moments() {
        let t = |exp: Option<i64>| {
            Secret::new(
                serde_json::to_string(&ProviderToken {
                    access_token: "gho_x".into(),
                    refresh_token: None,
                    expires_at: exp,
                })
                .unwrap(),
            )
        };
        assert_eq!(usable(&t(None), 1000).unwrap().expose(), "gho_x");
        assert!(usable(&t(Some(2000)), 1000).is_some());
        assert!(usable(&t(Some(1020)), 1000).is_none());
        assert!(usable(&Secret::new("not json".to_string()), 1000).is_none());
    }
}
