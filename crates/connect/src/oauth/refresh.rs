//! Keeping a sign-in's tokens fresh: a refresh (RFC 6749 §6, with `resource`) that stores the
//! rotated refresh token, what a refused refresh means (a new sign-in, or registering again when
//! the server forgot the client), and what a 401 to the current token sets off.

use super::cache::{self, StoredTokens};
use super::discovery::Discovered;
use super::token::{self, TokenError};
use super::{Client, Live, OAuth, Session, bearer};
use crate::auth::AuthError;
use http::HeaderValue;
use std::sync::atomic::Ordering;

/// Why a refresh gave no token.
pub(super) enum RefreshError {
    /// The server no longer takes the refresh token (or the client): sign in again.
    Refused(String),
    /// No answer worth acting on (unreachable, a 5xx): try later.
    Failed(String),
}

impl OAuth {
    /// New tokens from the refresh token (stored, rotated refresh token included).
    pub(super) async fn refresh(&self, s: &mut Session) -> Result<HeaderValue, RefreshError> {
        let (Some(d), Some(c), Some(t)) = (&s.discovered, &s.client, &s.tokens) else {
            return Err(RefreshError::Failed("nothing to refresh".into()));
        };
        let Some(rt) = t.stored.refresh_token.clone() else {
            return Err(RefreshError::Refused("no refresh token".into()));
        };
        let (d, c, scope) = (d.clone(), c.clone(), t.stored.scope.clone());
        let http = self.http().map_err(|e| RefreshError::Failed(e.to_string()))?;
        self.refreshes.fetch_add(1, Ordering::Relaxed);
        let sent_at = self.now_ms();
        match token::refresh(http, &d.token_endpoint, &rt, &c.id, &self.settings.mcp_url).await {
            Ok(g) => {
                let h = self
                    .keep(s, &d, &c, g, Some(rt), scope, sent_at)
                    .map_err(|e| RefreshError::Failed(e.to_string()))?;
                tracing::info!("OAuth: refreshed the access token");
                Ok(h)
            }
            Err(e) if e.code() == Some("invalid_client") && c.registered => {
                // The server forgot the client (deleted, expired): register again.
                self.store
                    .remove(&cache::registration_file(&d.issuer, &self.settings.mcp_url));
                self.store
                    .remove(&cache::tokens_file(&self.settings.mcp_url, &d.issuer, &c.id));
                s.client = None;
                s.tokens = None;
                s.loaded = false;
                Err(RefreshError::Refused(format!(
                    "{e} (the client registered earlier is gone)"
                )))
            }
            // The grant is over (expired, revoked, rotated away) or no longer fits: a new sign-in.
            // Other refusals (`server_error`, a 5xx) are worth another try later instead.
            Err(e @ TokenError::Refused { .. })
                if matches!(
                    e.code(),
                    Some("invalid_grant" | "unauthorized_client" | "invalid_scope" | "invalid_target")
                ) =>
            {
                s.tokens = None;
                self.store
                    .remove(&cache::tokens_file(&self.settings.mcp_url, &d.issuer, &c.id));
                Err(RefreshError::Refused(format!("the refresh token was refused: {e}")))
            }
            Err(e) if e.code() == Some("invalid_client") => Err(RefreshError::Failed(format!(
                "{e} (check --client-id: the authorization server does not know it as a public client)"
            ))),
            Err(e) => Err(RefreshError::Failed(e.to_string())),
        }
    }

    /// Keeps granted tokens: in memory and in the cache file.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn keep(
        &self,
        s: &mut Session,
        d: &Discovered,
        c: &Client,
        g: token::Granted,
        old_refresh: Option<String>,
        asked_scope: Option<String>,
        sent_at: u64,
    ) -> Result<HeaderValue, AuthError> {
        let header = bearer(&g.access_token)?;
        let mcp_url = &self.settings.mcp_url;
        let mut stored = StoredTokens::new(mcp_url, &d.issuer, &c.id, g.access_token);
        stored.refresh_token = g.refresh_token.or(old_refresh);
        stored.obtained_at_ms = sent_at;
        stored.expires_at_ms = g.expires_in.map(|e| sent_at.saturating_add(e.saturating_mul(1000)));
        stored.scope = g.scope.or(asked_scope);
        s.held_scope = stored.scope.clone();
        if let Err(e) = self.store.save(&cache::tokens_file(mcp_url, &d.issuer, &c.id), &stored) {
            tracing::warn!("OAuth: {e}; the tokens are kept for this run only");
        }
        s.tokens = Some(Live {
            stored,
            header: header.clone(),
            after_refusal: 0,
        });
        s.loaded = true;
        Ok(header)
    }

    /// After a 401 to the current token: refresh it, else sign in again.
    pub(super) async fn after_refusal(&self, s: &mut Session) -> Result<(), AuthError> {
        let (level, refreshable) = match &s.tokens {
            Some(t) => (t.refusal_level(self.now_ms()), t.stored.refresh_token.is_some()),
            None => (0, false),
        };
        if level == 0 && refreshable {
            match self.refresh(s).await {
                Ok(_) => {
                    tracing::info!("OAuth: the access token was refused (401); refreshed it");
                    if let Some(t) = &mut s.tokens {
                        t.after_refusal = 1;
                    }
                    return Ok(());
                }
                Err(RefreshError::Refused(why) | RefreshError::Failed(why)) => {
                    tracing::info!(
                        "OAuth: the access token was refused (401) and refreshing failed ({why}); signing in again"
                    );
                }
            }
        }
        self.authorize(s, None).await?;
        if let Some(t) = &mut s.tokens {
            t.after_refusal = 2;
        }
        Ok(())
    }
}
