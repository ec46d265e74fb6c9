//! `--oauth`: the MCP authorization flow (MCP 2025-11-25 "Authorization"; OAuth 2.1) as an
//! [`Auth`] provider, for any MCP server that signs its users in with OAuth, mcpgate or not.
//!
//! The first request finds where to sign in (`discovery.rs`: RFC 9728 protected-resource
//! metadata, then the authorization server's RFC 8414 metadata, its `issuer` checked), gets a
//! client (a pre-registered `client_id`, else one registered with RFC 7591 and remembered),
//! and signs the user in: a loopback redirect listener (RFC 8252), PKCE S256 (RFC 7636),
//! `state`, `resource` = the MCP URL (RFC 8707), the browser opened and the URL printed on
//! stderr; the callback must carry this sign-in's `state` and the issuer's `iss` (RFC 9207).
//! The code is exchanged for tokens, which are cached on disk (`cache.rs`) for the next run.
//!
//! Afterwards: the access token is refreshed before it expires (a fifth of its lifetime, at most
//! a minute, early) and the rotated refresh token stored; a refresh token the server no longer
//! takes (`invalid_grant`) means signing in again. A 401 to a request that carried the current
//! token refreshes it (or signs in again) once; a 403 `insufficient_scope` signs in again for
//! the scopes held plus those the server asked for, once per set of scopes (never a loop).
//!
//! One sign-in at a time: everything happens under one async lock, so concurrent requests that
//! need a token wait for the one refresh or sign-in and then use its token; a request that waited
//! on a sign-in that failed gets that failure rather than starting another.
//!
//! No token, code or verifier is logged, printed or put in an error (the authorization URL
//! printed on stderr holds only the `state` and the verifier's hash); every `Debug` here hides
//! them.

mod cache;
mod discovery;
mod loopback;
mod net;
mod pkce;
mod refresh;
mod register;
mod signin;
mod token;

use crate::auth::clock::{Clock, SystemClock, renewal_margin};
use crate::auth::{Auth, AuthError, header_value};
use cache::{Loaded, Registration, StoredTokens};
use discovery::{Discovered, parse_challenge};
use http::{HeaderMap, HeaderValue, Method, header};
use refresh::RefreshError;
use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, UNIX_EPOCH};

/// Called with the authorization URL instead of opening a browser (tests, or an embedding
/// program with its own way to show it).
pub type AuthorizationUrlHook = Arc<dyn Fn(String) + Send + Sync>;

/// What `--oauth` needs.
#[derive(Clone)]
pub struct OAuthSettings {
    /// The MCP server's URL: where the metadata is looked for, and the `resource` tokens are
    /// asked for.
    pub mcp_url: String,
    /// Space-separated scopes to ask for; none: those the server's challenge names, else those
    /// its metadata lists (`scopes_supported`), else none.
    pub scope: Option<String>,
    /// The name registered (RFC 7591 `client_name`), shown on the consent page.
    pub client_name: String,
    /// Where tokens and registrations are kept ([`cache_dir`]).
    pub cache_dir: PathBuf,
    /// A client registered beforehand (public, redirect `http://127.0.0.1/callback` on any
    /// port); none: one is registered dynamically.
    pub client_id: Option<String>,
    /// Open the authorization URL in a browser (it is printed on stderr either way).
    pub open_browser: bool,
    /// How long to wait for the browser to come back.
    pub callback_timeout: Duration,
    /// When set, called with the authorization URL instead of opening a browser.
    pub on_authorization_url: Option<AuthorizationUrlHook>,
}

impl OAuthSettings {
    /// The defaults: client name "mcpgate connect", the browser opened, five minutes to sign in.
    pub fn new(mcp_url: impl Into<String>, cache_dir: PathBuf) -> OAuthSettings {
        OAuthSettings {
            mcp_url: mcp_url.into(),
            scope: None,
            client_name: "mcpgate connect".into(),
            cache_dir,
            client_id: None,
            open_browser: true,
            callback_timeout: Duration::from_secs(300),
            on_authorization_url: None,
        }
    }
}

impl fmt::Debug for OAuthSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthSettings")
            .field("mcp_url", &self.mcp_url)
            .field("scope", &self.scope)
            .field("client_name", &self.client_name)
            .field("cache_dir", &self.cache_dir)
            .field("client_id", &self.client_id)
            .field("open_browser", &self.open_browser)
            .field("callback_timeout", &self.callback_timeout)
            .field(
                "on_authorization_url",
                &self.on_authorization_url.as_ref().map(|_| "<hook>"),
            )
            .finish()
    }
}

/// The token cache under a configuration directory: `<config dir>/tokens`.
pub fn cache_dir(config_dir: &Path) -> PathBuf {
    config_dir.join("tokens")
}

/// The client in use.
#[derive(Debug, Clone)]
struct Client {
    id: String,
    /// Portless (any port) or with the one port registered.
    redirect_uri: String,
    /// Registered by us (and forgotten when the server no longer knows it).
    registered: bool,
}

/// A token obtained because the one before was refused, and refused too within this long, is
/// not replaced the same way again (see [`Live::refusal_level`]).
const REFUSAL_WINDOW: Duration = Duration::from_secs(60);

/// The tokens in use.
struct Live {
    stored: StoredTokens,
    header: HeaderValue,
    /// 0: as obtained; 1: refreshed because a 401 refused the previous one; 2: signed in again
    /// because of a 401. A 401 to a level-2 token ends the tries.
    after_refusal: u8,
}

impl Live {
    fn usable(&self, now_ms: u64) -> bool {
        let Some(expires) = self.stored.expires_at_ms else {
            return true;
        };
        let lifetime = Duration::from_millis(expires.saturating_sub(self.stored.obtained_at_ms));
        now_ms.saturating_add(renewal_margin(lifetime).as_millis() as u64) < expires
    }

    /// How this token came after refusals, as far as it still matters: a refusal more than
    /// [`REFUSAL_WINDOW`] after it was obtained is a new event (a revocation hours later), not
    /// the same refusal again.
    fn refusal_level(&self, now_ms: u64) -> u8 {
        if now_ms.saturating_sub(self.stored.obtained_at_ms) > REFUSAL_WINDOW.as_millis() as u64 {
            0
        } else {
            self.after_refusal
        }
    }

    fn expired(&self, now_ms: u64) -> bool {
        self.stored.expires_at_ms.is_some_and(|e| now_ms >= e)
    }

    fn scopes(&self) -> Vec<String> {
        self.stored
            .scope
            .as_deref()
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }
}

#[derive(Default)]
struct Session {
    discovered: Option<Discovered>,
    /// `resource_metadata` of the last challenge (asked first if discovery runs again).
    hint: Option<String>,
    /// `scope` of the last 401 challenge.
    challenge_scope: Option<String>,
    client: Option<Client>,
    tokens: Option<Live>,
    /// The scope of the last tokens held (kept when they are dropped: a new sign-in asks for it
    /// again, so a step-up is not lost when its refresh token expires).
    held_scope: Option<String>,
    /// The cache was read for the current client.
    loaded: bool,
    /// Scope sets a step-up already signed in for (sorted, space-joined).
    stepped_up: HashSet<String>,
    last_error: Option<AuthError>,
}

/// The MCP authorization flow as an [`Auth`] provider.
pub struct OAuth {
    settings: OAuthSettings,
    http: Result<reqwest::Client, String>,
    clock: Arc<dyn Clock>,
    store: cache::Store,
    session: tokio::sync::Mutex<Session>,
    failures: AtomicU64,
    authorizations: AtomicU64,
    refreshes: AtomicU64,
}

impl fmt::Debug for OAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuth")
            .field("mcp_url", &self.settings.mcp_url)
            .field("cache_dir", &self.settings.cache_dir)
            .field("client_id", &self.settings.client_id)
            .field("authorizations", &self.authorizations())
            .field("refreshes", &self.refreshes())
            .finish_non_exhaustive()
    }
}

impl OAuth {
    pub fn new(settings: OAuthSettings) -> OAuth {
        OAuth::with_clock(settings, Arc::new(SystemClock))
    }

    /// With another clock (tests move it to expire tokens).
    pub fn with_clock(settings: OAuthSettings, clock: Arc<dyn Clock>) -> OAuth {
        OAuth {
            store: cache::Store::new(settings.cache_dir.clone()),
            settings,
            http: net::client(),
            clock,
            session: tokio::sync::Mutex::new(Session::default()),
            failures: AtomicU64::new(0),
            authorizations: AtomicU64::new(0),
            refreshes: AtomicU64::new(0),
        }
    }

    pub fn settings(&self) -> &OAuthSettings {
        &self.settings
    }

    /// How many times the user was sent to sign in.
    pub fn authorizations(&self) -> u64 {
        self.authorizations.load(Ordering::Relaxed)
    }

    /// How many refresh requests went to the token endpoint.
    pub fn refreshes(&self) -> u64 {
        self.refreshes.load(Ordering::Relaxed)
    }

    fn http(&self) -> Result<&reqwest::Client, AuthError> {
        self.http.as_ref().map_err(|e| AuthError::Other(e.clone()))
    }

    fn now_ms(&self) -> u64 {
        self.clock
            .now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }

    /// The current token's header, refreshed or signed in for when needed.
    async fn current(&self, s: &mut Session, seen: u64) -> Result<HeaderValue, AuthError> {
        if let Some(t) = &s.tokens
            && t.usable(self.now_ms())
        {
            return Ok(t.header.clone());
        }
        // A sign-in failed while this request waited for the lock: the same answer, not another
        // five minutes in front of a browser.
        if self.failures.load(Ordering::Relaxed) != seen
            && let Some(e) = &s.last_error
        {
            return Err(e.clone());
        }
        let r = self.renew(s).await;
        if let Err(e) = &r {
            self.failures.fetch_add(1, Ordering::Relaxed);
            s.last_error = Some(e.clone());
        }
        r
    }

    async fn renew(&self, s: &mut Session) -> Result<HeaderValue, AuthError> {
        self.prepare(s).await?;
        let now = self.now_ms();
        if let Some(t) = &s.tokens {
            if t.usable(now) {
                return Ok(t.header.clone());
            }
            if t.stored.refresh_token.is_some() {
                match self.refresh(s).await {
                    Ok(h) => return Ok(h),
                    Err(RefreshError::Refused(why)) => tracing::info!("OAuth: {why}; signing in again"),
                    Err(RefreshError::Failed(why)) => match &s.tokens {
                        Some(t) if !t.expired(now) => {
                            tracing::warn!(
                                "OAuth: could not refresh the access token ({why}); using it until it expires"
                            );
                            return Ok(t.header.clone());
                        }
                        _ => return Err(AuthError::Token(format!("could not refresh the access token: {why}"))),
                    },
                }
            }
        }
        self.authorize(s, None).await
    }

    /// Discovery, the client, and the cached tokens, each once.
    async fn prepare(&self, s: &mut Session) -> Result<(), AuthError> {
        let mcp_url = &self.settings.mcp_url;
        let d = match &s.discovered {
            Some(d) => d.clone(),
            None => {
                let d = discovery::discover(self.http()?, mcp_url, s.hint.as_deref())
                    .await
                    .map_err(AuthError::Other)?;
                tracing::info!(issuer = %d.issuer, "OAuth: {mcp_url} signs its users in at {}", d.issuer);
                s.discovered = Some(d.clone());
                d
            }
        };
        if s.client.is_none() {
            s.loaded = false;
            if let Some(id) = &self.settings.client_id {
                s.client = Some(Client {
                    id: id.clone(),
                    redirect_uri: register::PORTLESS_REDIRECT.into(),
                    registered: false,
                });
            } else {
                match self
                    .store
                    .load::<Registration>(&cache::registration_file(&d.issuer, mcp_url))
                {
                    Loaded::Found(r) if r.issuer == d.issuer && r.mcp_url == *mcp_url => {
                        s.client = Some(Client {
                            id: r.client_id,
                            redirect_uri: r.redirect_uri,
                            registered: true,
                        });
                    }
                    Loaded::Found(_) | Loaded::Missing => {}
                    Loaded::Refused(why) => tracing::warn!("OAuth: {why}"),
                }
            }
        }
        if !s.loaded
            && let Some(c) = &s.client
        {
            s.loaded = true;
            match self
                .store
                .load::<StoredTokens>(&cache::tokens_file(mcp_url, &d.issuer, &c.id))
            {
                Loaded::Found(t) if t.mcp_url == *mcp_url && t.issuer == d.issuer && t.client_id == c.id => {
                    let held: Vec<&str> = t.scope.as_deref().unwrap_or_default().split_whitespace().collect();
                    let wanted = self.settings.scope.as_deref().unwrap_or_default();
                    if wanted.split_whitespace().all(|w| held.contains(&w)) {
                        let header = bearer(&t.access_token)?;
                        s.held_scope = t.scope.clone();
                        s.tokens = Some(Live {
                            stored: t,
                            header,
                            after_refusal: 0,
                        });
                    } else {
                        tracing::info!(
                            "OAuth: the cached tokens lack some of the scopes asked for ({wanted}); signing in again"
                        );
                    }
                }
                Loaded::Found(_) | Loaded::Missing => {}
                Loaded::Refused(why) => tracing::warn!("OAuth: {why}"),
            }
        }
        Ok(())
    }
}

fn bearer(access_token: &str) -> Result<HeaderValue, AuthError> {
    header_value("access_token", &format!("Bearer {access_token}"), true)
        .map_err(|_| AuthError::Token("the token endpoint sent an access token that cannot go in a header".into()))
}

#[async_trait::async_trait]
impl Auth for OAuth {
    async fn headers(&self, _: &Method, _: &str, _: &[u8]) -> Result<HeaderMap, AuthError> {
        let seen = self.failures.load(Ordering::Relaxed);
        let mut s = self.session.lock().await;
        let value = self.current(&mut s, seen).await?;
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, value);
        Ok(h)
    }

    async fn unauthorized(&self, sent: &HeaderMap, challenge: Option<&str>) -> bool {
        let ch = challenge.map(parse_challenge).unwrap_or_default();
        let Some(sent) = sent.get(header::AUTHORIZATION) else {
            return false;
        };
        let seen = self.failures.load(Ordering::Relaxed);
        let mut s = self.session.lock().await;
        if ch.resource_metadata.is_some() {
            s.hint = ch.resource_metadata;
        }
        if ch.scope.is_some() {
            s.challenge_scope = ch.scope;
        }
        match &s.tokens {
            // Replaced since this request left: send it again with the new one.
            Some(t) if t.header != sent => return true,
            // Dropped since (a refresh refused): the next request signs in, unless that failed.
            None => return self.failures.load(Ordering::Relaxed) == seen,
            Some(t) if t.refusal_level(self.now_ms()) >= 2 => {
                tracing::error!(
                    "OAuth: a token from a fresh sign-in was refused too (401): {} does not accept this sign-in",
                    self.settings.mcp_url
                );
                return false;
            }
            Some(_) => {}
        }
        match self.after_refusal(&mut s).await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!("OAuth: {e}");
                self.failures.fetch_add(1, Ordering::Relaxed);
                s.last_error = Some(e);
                false
            }
        }
    }

    async fn insufficient_scope(&self, sent: &HeaderMap, challenge: Option<&str>) -> bool {
        let ch = challenge.map(parse_challenge).unwrap_or_default();
        let Some(wanted) = ch.scope.filter(|w| !w.trim().is_empty()) else {
            tracing::warn!("OAuth: the server refused for insufficient scope without naming the scope it wants");
            return false;
        };
        let Some(sent) = sent.get(header::AUTHORIZATION) else {
            return false;
        };
        let mut s = self.session.lock().await;
        let held = s.tokens.as_ref().map(Live::scopes).unwrap_or_default();
        let wanted: Vec<&str> = wanted.split_whitespace().collect();
        if let Some(t) = &s.tokens
            && t.header != sent
            && wanted.iter().all(|w| held.iter().any(|h| h == w))
        {
            // Another request stepped up already.
            return true;
        }
        let mut union = held;
        for w in &wanted {
            if !union.iter().any(|h| h == w) {
                union.push((*w).to_string());
            }
        }
        let mut key = union.clone();
        key.sort();
        if !s.stepped_up.insert(key.join(" ")) {
            tracing::warn!(
                "OAuth: the server still wants scope {:?} after a sign-in that asked for {:?}; not asking again",
                wanted.join(" "),
                union.join(" ")
            );
            return false;
        }
        tracing::info!(
            "OAuth: the server wants scope {:?} (403 insufficient_scope); signing in again for {:?}",
            wanted.join(" "),
            union.join(" ")
        );
        match self.authorize(&mut s, Some(union.join(" "))).await {
            Ok(_) => true,
            Err(e) => {
                tracing::error!("OAuth: {e}");
                self.failures.fetch_add(1, Ordering::Relaxed);
                s.last_error = Some(e);
                false
            }
        }
    }

    fn describe(&self) -> String {
        format!("OAuth sign-in for {}", self.settings.mcp_url)
    }
}
