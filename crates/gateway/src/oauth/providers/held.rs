//! The user's own token at a sign-in provider, held for the upstream (`delegation.source =
//! "provider:<id>"`, issue #12): a GitHub or Google MCP server needs the *person's* token there,
//! and the caller's mcpgate token must never go upstream (no token passthrough).
//!
//! When someone signs in at that provider, its access token (with its refresh token and expiry)
//! is sealed (`delegation.encryption_key_env`) into the credential store under that sign-in's
//! `via` (`provider:<id>:<subject>`: the provider's own, unchangeable name for the account — not
//! a user id, which rules derive from e-mails or logins that can change hands). Only the tokens
//! this authorization server issued for that sign-in (whose principal id *is* the `via`) read it;
//! an API key, an external JWT or another provider's account never does. The key registry keeps
//! every held credential in memory, so a call reads no store: [`usable`] takes the access token
//! while it is still good. A background task ([`Refresher`]) renews tokens before they expire,
//! forgets one the provider refuses to renew, and forgets every token
//! `oauth.sign_in_max_age_s` after the sign-in that brought it (the grants made by that sign-in
//! have ended by then); the next call then says where to sign in again.

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

/// What is sealed: the provider's access token, its refresh token, when it expires and when
/// the person signed in.
#[derive(Serialize, Deserialize)]
pub struct ProviderToken {
    /// The sign-in that brought it (unix seconds; kept across renewals).
    #[serde(default)]
    pub signed_in_at: i64,
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
            signed_in_at: now,
            access_token: a.access_token.clone().filter(|t| !t.is_empty())?,
            refresh_token: a.refresh_token.clone().filter(|t| !t.is_empty()),
            expires_at: a
                .expires_in
                .as_ref()
                .and_then(ExpiresIn::seconds)
                .filter(|s| *s > 0)
                .map(|s| now.saturating_add(s.min(i64::MAX / 2))),
        })
    }
}

/// `expires_in` as providers send it: a number, or (Azure AD v1, some ADFS) a numeric string.
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum ExpiresIn {
    Number(i64),
    Text(String),
}

impl ExpiresIn {
    fn seconds(&self) -> Option<i64> {
        match self {
            ExpiresIn::Number(n) => Some(*n),
            ExpiresIn::Text(t) => t.trim().parse().ok(),
        }
    }
}

/// The held token a caller may use with `delegation.source = "provider:<provider>"`: only a
/// token this gateway issued for a sign-in at that provider (OAuth, principal id = the sign-in's
/// `via`); `None` for any other caller.
pub fn owner_for(provider: &str, p: &mcpgate_core::principal::Principal) -> Option<String> {
    let id = p.id();
    (p.method() == mcpgate_core::principal::AuthMethod::OAuth
        && id
            .strip_prefix("provider:")
            .and_then(|rest| rest.strip_prefix(provider))
            .is_some_and(|rest| rest.starts_with(':')))
    .then(|| id.to_string())
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
            let max_age = i64::try_from(o.settings.sign_in_max_age.as_secs()).unwrap_or(i64::MAX);
            if let Err(e) = self.once(all, p, o.clock.unix_s(), max_age).await {
                tracing::warn!(provider = %self.provider, "cannot renew held provider tokens: {e}");
            }
        }
    }

    /// One look: renews every token with less than [`RENEW_BEFORE_S`] left; forgets those the
    /// provider will not renew, those that cannot be renewed and have expired, and every token
    /// `max_age_s` after its sign-in.
    pub async fn once(&self, all: &Providers, p: &Provider, now: i64, max_age_s: i64) -> Result<usize, String> {
        let mut renewed = 0;
        for (owner, t) in self.held.of(&self.provider).await? {
            if t.signed_in_at.saturating_add(max_age_s) <= now {
                self.forget(&owner, &t).await;
                continue;
            }
            let Some(exp) = t.expires_at else { continue };
            if exp > now.saturating_add(RENEW_BEFORE_S) {
                continue;
            }
            let Some(refresh) = &t.refresh_token else {
                if exp <= now {
                    self.forget(&owner, &t).await;
                }
                continue;
            };
            // One replica renews each token (claimed by its expiry: a provider that does not
            // rotate refresh tokens sends the same one again next time); released when the
            // renewal does not happen.
            let claim = sha2::Sha256::digest(format!("provider-renewal:{owner}:{exp}").as_bytes());
            match self.replay.claim(&claim, now.saturating_add(120), now).await {
                Ok(true) => {}
                // Another replica renews this one (or the store cannot say: try next time).
                Ok(false) | Err(_) => continue,
            }
            let release = || async {
                let _ = self.replay.claim(&claim, now, now).await;
            };
            match p
                .exchange(all, &[("grant_type", "refresh_token"), ("refresh_token", refresh)])
                .await
            {
                Ok(answer) => {
                    let Some(mut fresh) = ProviderToken::from_answer(&answer, now) else {
                        tracing::warn!(provider = %self.provider, "a renewal answer had no access token");
                        release().await;
                        continue;
                    };
                    fresh.signed_in_at = t.signed_in_at;
                    // A provider that does not rotate refresh tokens sends none back.
                    if fresh.refresh_token.is_none() {
                        fresh.refresh_token = t.refresh_token.clone();
                    }
                    match self.held.keep(&owner, &fresh, now).await {
                        Ok(()) => {
                            if let (Some(keys), Ok(plain)) = (&self.keys, serde_json::to_string(&fresh)) {
                                keys.hold_now(&owner, Secret::new(plain));
                            }
                            renewed += 1;
                        }
                        Err(e) => {
                            tracing::warn!(provider = %self.provider, error = %e, "a renewed provider token could not be kept");
                        }
                    }
                }
                Err(Failure::Refused(why)) => {
                    tracing::info!(provider = %self.provider, reason = %why, "a held provider token was not renewed: forgotten (the person signs in again)");
                    self.forget(&owner, &t).await;
                }
                Err(Failure::Unreachable(why)) => {
                    tracing::warn!(provider = %self.provider, reason = %why, "provider unreachable while renewing a held token");
                    release().await;
                }
            }
        }
        Ok(renewed)
    }

    /// Removes `owner`'s token — unless it was replaced since `seen` was read (the person signed
    /// in again meanwhile).
    async fn forget(&self, owner: &str, seen: &ProviderToken) {
        let current = self
            .held
            .of(&self.provider)
            .await
            .ok()
            .and_then(|all| all.into_iter().find(|(o, _)| o == owner).map(|(_, t)| t.access_token));
        if current.as_deref() == Some(seen.access_token.as_str())
            && let Err(e) = self.held.store.remove_credential(owner).await
        {
            tracing::warn!(provider = %self.provider, error = %e, "a held provider token could not be forgotten");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_a_token_issued_for_that_sign_in_reads_it() {
        use mcpgate_core::principal::{AuthMethod, Principal, Role, Verified};
        let p = |id: &str, m: AuthMethod| Principal::verified(Verified::new(id, "ana", Role::User, m));
        assert_eq!(
            owner_for("github", &p("provider:github:42", AuthMethod::OAuth)).as_deref(),
            Some("provider:github:42")
        );
        // Another provider (even one whose id starts alike), another kind of credential with
        // the same name, an API key of the same user: nothing.
        assert_eq!(owner_for("github", &p("provider:githubx:42", AuthMethod::OAuth)), None);
        assert_eq!(owner_for("github", &p("provider:corp:42", AuthMethod::OAuth)), None);
        assert_eq!(owner_for("github", &p("provider:github:42", AuthMethod::Jwt)), None);
        assert_eq!(owner_for("github", &p("key:k1", AuthMethod::ApiKey)), None);
        assert_eq!(owner_for("github", &p("provider:github", AuthMethod::OAuth)), None);
    }

    #[test]
    fn expires_in_may_be_a_number_or_a_numeric_string() {
        let a: TokenAnswer = serde_json::from_str(r#"{"access_token":"t","expires_in":"3599"}"#).unwrap();
        assert_eq!(ProviderToken::from_answer(&a, 100).unwrap().expires_at, Some(3699));
        let a: TokenAnswer = serde_json::from_str(r#"{"access_token":"t","expires_in":60}"#).unwrap();
        assert_eq!(ProviderToken::from_answer(&a, 100).unwrap().expires_at, Some(160));
        let a: TokenAnswer = serde_json::from_str(r#"{"access_token":"t","expires_in":"soon"}"#).unwrap();
        assert_eq!(ProviderToken::from_answer(&a, 100).unwrap().expires_at, None);
    }

    #[test]
    fn a_token_is_not_used_in_its_last_moments() {
        let t = |exp: Option<i64>| {
            Secret::new(
                serde_json::to_string(&ProviderToken {
                    signed_in_at: 0,
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
