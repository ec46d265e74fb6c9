//! The OAuth 2.1 authorization server (issue #11): mcpgate issues the tokens that ChatGPT,
//! Claude, the SDKs and the Inspector expect, in front of any MCP server, and verifies them on the
//! `/mcp` path like any other credential (`auth/issued.rs`).
//!
//! Endpoints (under the issuer's path): discovery (`metadata.rs`), `/authorize` and seed 004's
//! `/auth/oauth/login` (`authorize.rs`, pages in `page.rs`), `/token` (`token.rs`), `/register`
//! (`register.rs`, RFC 7591), `/revoke` (RFC 7009), `/jwks`. Every input is read strictly
//! (`form.rs`): a parameter given twice, a wrong type or an unknown client is refused, and errors
//! that cannot be sent back to a verified redirect URI are shown as a page, never redirected.

pub mod assertion;
pub mod authorize;
pub mod cimd;
pub mod client_auth;
pub mod cookies;
pub mod form;
pub mod metadata;
pub mod page;
pub mod providers;
pub mod register;
pub mod session;
pub mod settings;
pub mod signer;
pub mod token;

use crate::clock::Clock;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mcpgate_core::entropy::Entropy;
use mcpgate_store::oauth::{ClientKind, ClientRecord, ClientStore, GrantStore};
pub use settings::{OAuthSettings, RawOAuth};
use signer::Signer;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::Notify;

/// The shortest time between two revocation reads a wake-up causes (`shared::WAKE_GAP`).
const WAKE_GAP: Duration = crate::shared::WAKE_GAP;

/// The authorization server's state: settings, records, keys.
pub struct OAuthServer {
    pub settings: OAuthSettings,
    /// The gateway's MCP URL: the one resource tokens are issued for (their `aud`).
    pub resource: String,
    pub clients: Arc<dyn ClientStore>,
    pub grants: Arc<dyn GrantStore>,
    /// The keys as last read from the ring (replaced whole on each reload).
    signer: RwLock<Arc<Signer>>,
    keyring: signer::Keyring,
    pub clock: Arc<dyn Clock>,
    pub entropy: Arc<dyn Entropy>,
    /// Grants revoked while their access tokens may still be alive, with when this gateway learnt
    /// of it (kept fresh from the store by [`OAuthServer::watch_revocations`]; entries only added
    /// there, and dropped once every token they could end has expired).
    revoked: RwLock<HashMap<String, i64>>,
    /// Scopes the policy knows, plus `offline_access`.
    pub scopes_supported: Vec<String>,
    /// `private_key_jwt`: each assertion's jti is used once (shared by replicas through the store).
    pub replay: Arc<dyn mcpgate_store::ReplayStore>,
    /// People who signed in through a provider (set by `start`; none in a bare server).
    pub users: Option<Arc<dyn mcpgate_store::UserStore>>,
    /// Clients' fetched key sets.
    pub jwks_cache: assertion::JwksCache,
    /// The API keys people sign in with: a grant ends when its key does.
    pub keys: Option<Arc<crate::auth::api_keys::KeyRegistry>>,
    /// Sign-in through GitHub, Google or OIDC providers, when configured.
    pub providers: Option<providers::Providers>,
    /// Where a revocation made here is announced, so every replica drops the grant's access
    /// tokens at once (this process alone until `start` sets the gateway's).
    pub broadcast: Arc<crate::shared::Broadcast>,
}

/// What became of the credential a grant was signed in with.
pub enum SignIn {
    /// An API key, still valid (its record: limits, expiry).
    Key(Box<mcpgate_core::keys::KeyRecord>),
    /// Not an API key: a client acting as itself, or a provider sign-in whose provider is
    /// still configured.
    Other,
    /// The key is revoked, expired or gone, or the provider is no longer configured: the grant
    /// (and a web session) must end.
    Ended,
}

impl OAuthServer {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        settings: OAuthSettings,
        resource: String,
        clients: Arc<dyn ClientStore>,
        grants: Arc<dyn GrantStore>,
        keyring: signer::Keyring,
        signer: Signer,
        clock: Arc<dyn Clock>,
        entropy: Arc<dyn Entropy>,
        mut scopes_supported: Vec<String>,
        replay: Arc<dyn mcpgate_store::ReplayStore>,
    ) -> OAuthServer {
        scopes_supported.push("offline_access".into());
        scopes_supported.sort();
        scopes_supported.dedup();
        OAuthServer {
            settings,
            resource,
            clients,
            grants,
            signer: RwLock::new(Arc::new(signer)),
            keyring,
            clock,
            entropy,
            revoked: RwLock::default(),
            scopes_supported,
            replay,
            users: None,
            jwks_cache: assertion::JwksCache::default(),
            keys: None,
            providers: None,
            broadcast: crate::shared::Broadcast::local(),
        }
    }

    /// The state of the credential `via` names (`key:<id>` for an API key).
    pub fn sign_in(&self, via: &str) -> SignIn {
        if let Some(rest) = via.strip_prefix("provider:") {
            let provider = rest.split_once(':').map_or(rest, |(p, _)| p);
            let configured = self
                .providers
                .as_ref()
                .is_some_and(|ps| ps.list.iter().any(|p| p.settings.id == provider));
            return if configured { SignIn::Other } else { SignIn::Ended };
        }
        let Some(id) = via.strip_prefix("key:") else {
            return SignIn::Other;
        };
        let Some(keys) = &self.keys else {
            return SignIn::Ended;
        };
        let now = self.clock.unix_s();
        match keys.snapshot().get(id) {
            Some(k) if !k.revoked && k.expires_at.is_none_or(|t| t > now) => SignIn::Key(Box::new(k.clone())),
            _ => SignIn::Ended,
        }
    }

    /// The signing keys as last read.
    pub fn signer(&self) -> Arc<Signer> {
        self.signer.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Reads the signing-key ring again (rotating when due); on failure the keys in hand stay.
    pub async fn reload_signing_keys(&self) -> Result<(), String> {
        let fresh = self.keyring.load(self.entropy.as_ref(), self.clock.unix_s()).await?;
        *self.signer.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(fresh);
        Ok(())
    }

    /// `{issuer}{path}`.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.settings.issuer)
    }

    /// The issuer's path (`""` when it is the host's root): where the endpoints are routed.
    pub fn base_path(&self) -> String {
        reqwest::Url::parse(&self.settings.issuer)
            .map(|u| u.path().trim_end_matches('/').to_string())
            .unwrap_or_default()
    }

    pub fn is_revoked(&self, grant_id: &str) -> bool {
        self.revoked
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(grant_id)
    }

    /// Marks a grant revoked here at once (the store already knows).
    pub fn forget_grant(&self, grant_id: &str) {
        let now = self.clock.unix_s();
        self.revoked
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(grant_id.to_string(), now);
    }

    /// Tells every replica that a grant was revoked in the store (after the write): they read
    /// the revoked grants at once instead of at their next poll. Never fails (see
    /// `Broadcast::announce`).
    pub fn announce_revocation(&self) {
        self.broadcast.announce(crate::shared::Change::Grants);
    }

    /// Reads the grants revoked while their access tokens may still be alive every `every`
    /// (`store.reload_interval_ms`, at least a second), and at once when `wake` is rung (a
    /// revocation notice; many rings before a read count once, and wake-ups cause at most one
    /// read per 50 ms), so a revocation through any replica ends its access tokens everywhere —
    /// within a few milliseconds when it is announced, within `every` when it is not
    /// (`mcpgate grants revoke`). Runs while `this` lives.
    ///
    /// Every minute it also reads the signing keys again, and once an hour it forgets expired
    /// codes and ended grants (revoked ones a day after their revocation, so every replica has
    /// read it).
    pub async fn watch_revocations(this: std::sync::Weak<OAuthServer>, every: Duration, wake: Arc<Notify>) {
        // Housekeeping counts seconds; the revocation reads come every `every_s` of them.
        let every_s = every.as_secs().max(1);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ticks: u64 = 0;
        let mut next_read: u64 = 0;
        let mut last_read = tokio::time::Instant::now();
        loop {
            let woken = tokio::select! {
                _ = tick.tick() => false,
                _ = wake.notified() => true,
            };
            if woken {
                let since = last_read.elapsed();
                if since < WAKE_GAP {
                    tokio::time::sleep(WAKE_GAP - since).await;
                }
            }
            let Some(s) = this.upgrade() else { return };
            if !woken {
                ticks += 1;
                s.housekeeping(&this, ticks).await;
                if ticks < next_read {
                    continue;
                }
            }
            next_read = ticks + every_s;
            last_read = tokio::time::Instant::now();
            s.read_revocations().await;
        }
    }

    /// The signing keys every minute, the prune every hour (`ticks` seconds since the start).
    async fn housekeeping(&self, this: &std::sync::Weak<OAuthServer>, ticks: u64) {
        if ticks.is_multiple_of(signer::RELOAD_EVERY_S) {
            // Its own task: a slow store must not hold up the revocation reads.
            let ring = this.clone();
            tokio::spawn(async move {
                if let Some(s) = ring.upgrade()
                    && let Err(e) = s.reload_signing_keys().await
                {
                    tracing::warn!(error = %e, "could not read the signing keys; signing with the ones in hand");
                }
            });
        }
        if ticks % 3600 == 1 {
            match self.grants.prune_grants(self.clock.unix_s(), 86_400).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(records = n, "forgot expired codes and ended grants"),
                Err(e) => tracing::warn!(error = %e, "could not prune the authorization server's records"),
            }
        }
    }

    /// Adds the grants revoked while their access tokens may still be alive to the set the
    /// request path reads.
    async fn read_revocations(&self) {
        let life = i64::try_from(self.settings.access_token_ttl.as_secs()).unwrap_or(i64::MAX);
        let since = self.clock.unix_s().saturating_sub(life.saturating_add(60));
        match self.grants.revoked_since(since).await {
            Ok(ids) => {
                let now = self.clock.unix_s();
                let mut set = self.revoked.write().unwrap_or_else(|e| e.into_inner());
                // Added to, never replaced: a revocation made here while the store was
                // being read is not lost.
                for id in ids {
                    set.entry(id).or_insert(now);
                }
                set.retain(|_, seen| *seen >= since);
            }
            Err(e) => tracing::warn!(error = %e, "could not read revoked grants; retrying"),
        }
    }

    /// The client `client_id` names: a stored one (a metadata document only while its cached copy
    /// is fresh), else its metadata document fetched now when `client_id` is a URL.
    pub async fn client(&self, client_id: &str) -> Result<Option<ClientRecord>, ClientLookup> {
        let stored = self.clients.get_client(client_id).await.map_err(ClientLookup::Store)?;
        let now = self.clock.unix_s();
        match stored {
            Some(c) if c.kind != ClientKind::MetadataDocument => return Ok(Some(c)),
            Some(c) if self.settings.cimd.enabled && c.expires_at.is_some_and(|t| t > now) => return Ok(Some(c)),
            _ => {}
        }
        if !self.settings.cimd.enabled || !cimd::is_document_url(client_id) {
            return Ok(None);
        }
        cimd::load(self, client_id)
            .await
            .map(Some)
            .map_err(ClientLookup::Document)
    }

    /// A fresh secret (a code, a refresh token): 32 random bytes, hex.
    pub fn secret(&self, prefix: &str) -> String {
        format!("{prefix}{}", self.entropy.hex_id(32))
    }
}

/// Why a client could not be looked up.
#[derive(Debug)]
pub enum ClientLookup {
    Store(mcpgate_store::StoreError),
    /// Its metadata document could not be fetched or is not acceptable (the reason, for the
    /// person and the logs; never the document's content).
    Document(String),
}

/// An error of the token, register or revoke endpoints (RFC 6749 §5.2): JSON, no-store.
#[derive(Debug)]
pub struct OAuthError {
    pub status: StatusCode,
    pub code: &'static str,
    pub description: String,
    /// `invalid_client` after HTTP Basic: the challenge to send.
    pub basic_challenge: bool,
}

impl OAuthError {
    pub fn new(code: &'static str, description: impl Into<String>) -> OAuthError {
        let status = match code {
            "invalid_client" => StatusCode::UNAUTHORIZED,
            "server_error" => StatusCode::INTERNAL_SERVER_ERROR,
            "temporarily_unavailable" => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        };
        OAuthError {
            status,
            code,
            description: description.into(),
            // Every 401 carries a challenge (RFC 9110 §15.5.2); the token endpoint's is Basic.
            basic_challenge: code == "invalid_client",
        }
    }

    pub fn store(e: mcpgate_store::StoreError) -> OAuthError {
        tracing::warn!(error = %e, "authorization server store unavailable");
        OAuthError::new(
            "temporarily_unavailable",
            "the authorization server cannot reach its store; retry shortly",
        )
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": self.code, "error_description": self.description});
        let mut r = (self.status, axum::Json(body)).into_response();
        no_store(&mut r);
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            // RFC 9110 §10.2.3: when to try again (the store is usually back within seconds).
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        if self.basic_challenge {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"mcpgate\""),
            );
        }
        r
    }
}

pub fn no_store(r: &mut Response) {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// A redirect URI the client registered matches the one it sent: exactly, except that a loopback
/// `http` redirect matches on any port (RFC 8252 §7.3; native apps such as Claude Code listen on
/// a random port).
pub fn redirect_matches(registered: &str, sent: &str) -> bool {
    if registered == sent {
        return true;
    }
    let (Ok(r), Ok(s)) = (reqwest::Url::parse(registered), reqwest::Url::parse(sent)) else {
        return false;
    };
    let loopback = |u: &reqwest::Url| {
        u.scheme() == "http" && matches!(u.host_str(), Some("127.0.0.1") | Some("[::1]") | Some("localhost"))
    };
    loopback(&r)
        && loopback(&s)
        && r.host_str() == s.host_str()
        && r.path() == s.path()
        && r.query() == s.query()
        && r.username().is_empty()
        && s.username().is_empty()
        && r.password().is_none()
        && s.password().is_none()
        && s.fragment().is_none()
}

/// Resource indicators compare equal after lower-casing scheme and host and dropping one trailing
/// slash (some clients add one).
pub fn same_resource(a: &str, b: &str) -> bool {
    fn norm(s: &str) -> Option<String> {
        let u = reqwest::Url::parse(s).ok()?;
        if u.fragment().is_some() {
            return None;
        }
        let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
        let query = u.query().map(|q| format!("?{q}")).unwrap_or_default();
        Some(format!(
            "{}://{}{port}{}{query}",
            u.scheme(),
            u.host_str()?.to_ascii_lowercase(),
            u.path().trim_end_matches('/')
        ))
    }
    matches!((norm(a), norm(b)), (Some(x), Some(y)) if x == y)
}

/// The scopes a grant gets: those asked (or the default when none), kept only where the user
/// holds them (a permission of the same name, or `*`) and the client may have them.
pub fn grantable(asked: &[String], default: &[String], user: &[String], client: Option<&[String]>) -> Vec<String> {
    // Asking only for offline_access (as SDKs do when it is listed) is asking for no scope.
    let only_offline = asked.iter().all(|s| s == "offline_access");
    let wanted: Vec<&String> = if only_offline {
        default.iter().chain(asked.iter()).collect()
    } else {
        asked.iter().collect()
    };
    let mut out: Vec<String> = wanted
        .into_iter()
        .filter(|s| s.as_str() == "offline_access" || user.iter().any(|p| p == "*" || p == *s))
        .filter(|s| client.is_none_or(|c| c.contains(s)))
        .cloned()
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Builds the authorization server: its signing keys (sealed in the store when a sealing key is
/// set, else for this process only), and the task that keeps revocations fresh.
#[allow(clippy::too_many_arguments)]
pub async fn start(
    settings: &OAuthSettings,
    resource: &str,
    config: &crate::config::Config,
    env: &dyn Fn(&str) -> Option<String>,
    clock: &Arc<dyn Clock>,
    entropy: &Arc<dyn Entropy>,
    stores: &crate::server::Stores,
    keys: Arc<crate::auth::api_keys::KeyRegistry>,
) -> Result<Arc<OAuthServer>, String> {
    let life = i64::try_from(settings.access_token_ttl.as_secs()).unwrap_or(i64::MAX);
    let rotate = i64::try_from(settings.signing_key_rotation.as_secs()).unwrap_or(i64::MAX);
    // A session lives longer than an access token: keys stay published for the longer of both,
    // plus one reload period (a replica that has not yet read the retirement still signs with
    // the retired key for up to that long).
    let life = life
        .max(i64::try_from(settings.session_ttl.as_secs()).unwrap_or(i64::MAX))
        .saturating_add(i64::try_from(signer::RELOAD_EVERY_S).unwrap_or(60));
    let keyring = match env(&settings.signing_key_env) {
        Some(text) => {
            let key = mcpgate_core::sealed::SealingKey::parse(&text)
                .map_err(|e| format!("{}: {e}", settings.signing_key_env))?;
            signer::Keyring::sealed(stores.signing_keys.clone(), key, rotate, life)
        }
        None => {
            tracing::warn!(
                "oauth: {} is not set, so access-token signing keys live in this process only: access tokens end when it \
                 stops (clients refresh), and replicas cannot verify each other's tokens",
                settings.signing_key_env
            );
            signer::Keyring::ephemeral(rotate, life)?
        }
    };
    let signer = keyring.load(entropy.as_ref(), clock.unix_s()).await?;
    let mut scopes = config.policy.scopes_supported();
    // The permissions the policy asks for are scopes a client can ask for: a token carries only
    // the permissions it was granted.
    for rule in &config.policy.rules {
        scopes.extend(rule.permissions.iter().filter(|p| !p.contains('*')).cloned());
    }
    // The permissions the default policy asks for (listing and reading; calling and the rest).
    scopes.extend(["read".to_string(), "write".to_string()]);
    scopes.extend(config.auth.required_scopes.iter().cloned());
    scopes.extend(settings.default_scopes.iter().cloned());
    let mut server = OAuthServer::new(
        settings.clone(),
        resource.to_string(),
        stores.clients.clone(),
        stores.grants.clone(),
        keyring,
        signer,
        clock.clone(),
        entropy.clone(),
        scopes,
        stores.replay.clone(),
    );
    server.keys = Some(keys);
    server.users = Some(stores.users.clone());
    server.broadcast = stores.broadcast.clone();
    if !settings.providers.is_empty() {
        let mut ps = providers::Providers::start(
            &settings.providers,
            settings.identities.clone(),
            settings.provider_redirect_uri.clone(),
            env,
        )?;
        if let Some(d) = &config.delegation
            && let Some(id) = &d.provider
        {
            let text = env(&d.encryption_key_env).filter(|t| !t.is_empty()).ok_or_else(|| {
                format!(
                    "delegation.source = \"provider:{id}\" keeps each person's token there sealed: set {}",
                    d.encryption_key_env
                )
            })?;
            let key =
                mcpgate_core::sealed::SealingKey::parse(&text).map_err(|e| format!("{}: {e}", d.encryption_key_env))?;
            ps.held = Some((
                id.clone(),
                Arc::new(providers::held::HeldTokens::new(stores.credentials.clone(), key)),
            ));
        }
        server.providers = Some(ps);
    }
    let o = Arc::new(server);
    if let Some((provider, held)) = o.providers.as_ref().and_then(|p| p.held.clone()) {
        let refresher = providers::held::Refresher {
            held,
            provider,
            replay: o.replay.clone(),
            keys: o.keys.clone(),
        };
        tokio::spawn(refresher.run(Arc::downgrade(&o)));
    }
    tokio::spawn(OAuthServer::watch_revocations(
        Arc::downgrade(&o),
        config.reload_interval,
        stores.broadcast.grants(),
    ));
    tracing::info!(issuer = %settings.issuer, "authorization server on");
    Ok(o)
}

/// The authorization server's routes (none when it is off). The JSON endpoints and documents
/// answer cross-origin requests (CORS, no credentials): browser-based MCP clients discover,
/// register and exchange codes from their own origin. The consent page does not.
pub fn routes(o: Option<&OAuthServer>) -> axum::Router<Arc<crate::Gateway>> {
    use axum::routing::{get, post};
    let Some(o) = o else { return axum::Router::new() };
    let base = o.base_path();
    let mut json = axum::Router::new()
        .route(&format!("{base}/token"), post(token::token))
        .route(&format!("{base}/revoke"), post(token::revoke))
        .route(&format!("{base}/introspect"), post(token::introspect))
        .route(&format!("{base}/jwks"), get(metadata::jwks));
    if base.is_empty() {
        json = json.route("/.well-known/jwks.json", get(metadata::jwks));
    }
    if o.settings.registration {
        json = json.route(&format!("{base}/register"), post(register::register));
    }
    for path in metadata::metadata_paths(&base) {
        json = json.route(&path, get(metadata::authorization_server));
    }
    axum::Router::new()
        .route(
            &format!("{base}/authorize"),
            get(authorize::authorize).post(authorize::authorize),
        )
        .route(&format!("{base}/auth/oauth/login"), get(authorize::authorize))
        .route(&format!("{base}/auth/logout"), post(session::logout))
        .route(&format!("{base}/auth/oauth/callback"), get(providers::callback))
        .route(&format!("{base}/auth/oauth/{{provider}}/start"), get(providers::start))
        .merge(json.layer(axum::middleware::from_fn(cors)))
}

/// CORS for the JSON endpoints: any origin, no credentials; preflights answered here.
pub async fn cors(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let preflight = req.method() == axum::http::Method::OPTIONS;
    let mut r = if preflight {
        StatusCode::NO_CONTENT.into_response()
    } else {
        next.run(req).await
    };
    let h = r.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    if preflight {
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, OPTIONS"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type, mcp-protocol-version"),
        );
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_redirects_match_on_any_port_only() {
        assert!(redirect_matches(
            "https://claude.ai/api/mcp/auth_callback",
            "https://claude.ai/api/mcp/auth_callback"
        ));
        assert!(!redirect_matches("https://claude.ai/cb", "https://claude.ai/cb/"));
        assert!(!redirect_matches("https://claude.ai/cb", "https://claude.ai:8443/cb"));
        assert!(redirect_matches(
            "http://127.0.0.1/callback",
            "http://127.0.0.1:53682/callback"
        ));
        assert!(redirect_matches(
            "http://localhost:1/callback",
            "http://localhost:9/callback"
        ));
        assert!(!redirect_matches(
            "http://127.0.0.1/callback",
            "http://127.0.0.1:5/other"
        ));
        assert!(!redirect_matches(
            "http://127.0.0.1/callback",
            "http://localhost:5/callback"
        ));
        assert!(!redirect_matches(
            "http://127.0.0.1/callback",
            "http://u@127.0.0.1:5/callback"
        ));
        assert!(!redirect_matches(
            "http://127.0.0.1/callback",
            "http://127.0.0.1.evil.com/callback"
        ));
        assert!(!redirect_matches(
            "https://127.0.0.1/callback",
            "https://127.0.0.1:5/callback"
        ));
    }

    #[test]
    fn resources_compare_loosely_only_where_clients_differ() {
        assert!(same_resource("https://gw.example/mcp", "https://GW.example/mcp/"));
        assert!(!same_resource("https://gw.example/mcp", "https://gw.example/mcp2"));
        assert!(!same_resource("https://gw.example/mcp", "http://gw.example/mcp"));
        assert!(!same_resource("https://gw.example/mcp", "https://gw.example/MCP"));
        assert!(!same_resource("https://gw.example/mcp", "not a url"));
    }

    #[test]
    fn scopes_are_what_was_asked_and_held() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            grantable(&s(&["read", "admin"]), &s(&["read"]), &s(&["read"]), None),
            s(&["read"])
        );
        assert_eq!(grantable(&[], &s(&["read"]), &s(&["*"]), None), s(&["read"]));
        assert_eq!(
            grantable(&s(&["write", "offline_access"]), &[], &s(&["*"]), Some(&s(&["read"]))),
            Vec::<String>::new()
        );
    }
}
