//! The gateway's assembly, the router and the server loop. Handlers are thin adapters over
//! [`Gateway`]'s pipeline; the accept loop and its connection limits are in `listen`.

mod listen;

use crate::audit::AuditSink;
use crate::auth::Auth;
use crate::auth::api_keys::KeyRegistry;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::refusal::Refusal;
use crate::sessions::{SessionLimits, SessionRegistry};
use crate::upstream::Upstream;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use mcpgate_core::entropy::{Entropy, OsEntropy};
use mcpgate_core::keys::{KeyRecord, parse_seed_keys};
use mcpgate_core::principal::{AuthMethod, Principal, Role};
use mcpgate_core::ratelimit::LocalLimiter;
use mcpgate_store::memory::MemoryStore;
use mcpgate_store::oauth::{ClientStore, GrantStore, SigningKeyStore};
#[cfg(feature = "sqlite")]
use mcpgate_store::sqlite::SqliteStore;
use mcpgate_store::{AuditStore, CredentialStore, KeyStore, LimitStore, ReplayStore, SessionStore};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub struct Gateway {
    pub config: Config,
    pub upstream: Upstream,
    pub metrics: Arc<Metrics>,
    pub sessions: SessionRegistry,
    pub started: Instant,
    pub auth: Auth,
    pub limiter: Arc<dyn LimitStore>,
    pub audit: AuditSink,
    pub delegation: Option<crate::delegation::Delegation>,
    /// Tool names per-tool limiter state may be kept under.
    pub known_tools: crate::known_tools::KnownTools,
    /// The time the request path reads (token expiry, key expiry, limits, session idleness,
    /// JWKS refresh floors, replay windows, audit times).
    pub clock: Arc<dyn Clock>,
    /// Where request ids and session ids get their randomness.
    pub entropy: Arc<dyn Entropy>,
    /// The authorization server, when `[oauth]` is on.
    pub oauth: Option<Arc<crate::oauth::OAuthServer>>,
    /// What `/readyz` asks besides the upstream: the store, Redis.
    pub dependencies: Vec<(&'static str, Arc<dyn crate::shared::Dependency>)>,
    /// The admin API's state, when `[admin] enabled`.
    pub admin: Option<Arc<crate::admin::Admin>>,
    /// The tracer, when `[telemetry]` names an endpoint.
    pub telemetry: Option<Arc<crate::telemetry::Telemetry>>,
}

/// Where a gateway reads time and randomness: the system's, unless a test (or an embedder that
/// simulates time) injects a manual clock or a seeded source.
#[derive(Clone)]
pub struct Sources {
    pub clock: Arc<dyn Clock>,
    pub entropy: Arc<dyn Entropy>,
}

impl Sources {
    /// The system clock and the operating system's generator.
    pub fn system() -> Sources {
        Sources::with_clock(Arc::new(SystemClock))
    }

    /// `clock`, and the operating system's generator.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Sources {
        Sources {
            clock,
            entropy: Arc::new(OsEntropy),
        }
    }
}

/// Where the gateway keeps its state: one backend per kind of record, behind the store traits.
#[derive(Clone)]
pub struct Stores {
    pub keys: Arc<dyn KeyStore>,
    pub credentials: Arc<dyn CredentialStore>,
    pub audit: Arc<dyn AuditStore>,
    /// Rate-limit and quota counters (in this process's memory in both embedded choices).
    pub limits: Arc<dyn LimitStore>,
    /// Who opened each MCP session (in this process's memory in both embedded choices).
    pub sessions: Arc<dyn SessionStore>,
    /// The authorization server's clients, grants (codes, refresh tokens, consents) and signing
    /// keys.
    pub clients: Arc<dyn ClientStore>,
    pub grants: Arc<dyn GrantStore>,
    pub signing_keys: Arc<dyn SigningKeyStore>,
    /// People who signed in through a provider (first and last sign-in).
    pub users: Arc<dyn mcpgate_store::UserStore>,
    /// Things used once across every replica: `private_key_jwt` assertion ids, and HMAC
    /// signatures when [`replicas`](Self::replicas) is set.
    pub replay: Arc<dyn ReplayStore>,
    /// Several gateways share these stores (PostgreSQL, Redis): HMAC signatures are then claimed
    /// in [`replay`](Self::replay), so a signature accepted by one replica is a replay at another
    /// (alone, a gateway keeps them in its memory: no store write per signed request).
    pub replicas: bool,
    /// What `/readyz` asks, by name.
    pub dependencies: Vec<(&'static str, Arc<dyn crate::shared::Dependency>)>,
    /// Where revocations are announced to every replica and heard from them (Redis pub/sub
    /// with [`with_redis`](Self::with_redis); else this process alone).
    pub broadcast: Arc<crate::shared::Broadcast>,
}

impl Stores {
    /// Every durable kind of state in `store` (one backend implementing them all); rate-limit
    /// counters and session ownership in this process (a shared store for them is Redis's job).
    fn all_in<S>(store: Arc<S>) -> Stores
    where
        S: KeyStore
            + CredentialStore
            + AuditStore
            + ClientStore
            + GrantStore
            + SigningKeyStore
            + mcpgate_store::UserStore
            + ReplayStore
            + 'static,
    {
        Stores {
            keys: store.clone(),
            credentials: store.clone(),
            audit: store.clone(),
            limits: Arc::new(LocalLimiter::default()),
            sessions: Arc::new(MemoryStore::new()),
            clients: store.clone(),
            grants: store.clone(),
            signing_keys: store.clone(),
            users: store.clone(),
            replay: store.clone(),
            replicas: false,
            dependencies: vec![("store", Arc::new(crate::shared::StoreDependency(store)))],
            broadcast: crate::shared::Broadcast::local(),
        }
    }

    /// Rate-limit counters, replay claims and session owners in the Redis `redis` names, shared by
    /// every replica; limits counted on `clock`'s wall time, and when Redis cannot answer, as
    /// `redis.on_error` says; revocations announced on its `{prefix}changes` channel. Connects
    /// lazily: a gateway starts while Redis is down (`/readyz` says so; the polls carry
    /// revocations meanwhile) and recovers when it is back.
    #[cfg(feature = "redis")]
    pub fn with_redis(self, redis: &crate::config::RedisConfig, clock: Arc<dyn Clock>) -> Result<Stores, String> {
        let store = Arc::new(
            mcpgate_store::redis::RedisStore::open(redis.url.expose(), &redis.prefix)
                .map_err(|e| format!("redis.url: {e}"))?,
        );
        let mut dependencies = self.dependencies;
        dependencies.push(("redis", store.clone()));
        Ok(Stores {
            limits: Arc::new(crate::shared::SharedLimits::new(store.clone(), redis.on_error, clock)),
            sessions: store.clone(),
            broadcast: crate::shared::Broadcast::redis((*store).clone()),
            replay: store,
            replicas: true,
            dependencies,
            ..self
        })
    }

    /// Everything in one SQLite file (the gateway's default, `store.path`).
    #[cfg(feature = "sqlite")]
    pub fn sqlite(path: &std::path::Path) -> Result<Stores, String> {
        Ok(Stores::all_in(Arc::new(
            SqliteStore::open(path).map_err(|e| e.to_string())?,
        )))
    }

    /// The shared PostgreSQL store at `url` (`store.url`): keys, held credentials, audit, replay
    /// and the authorization server's records, for several gateways on one database. Rate-limit
    /// counters and session ownership stay in this process (a shared store for them is Redis's
    /// job, not built yet). The URL never appears in an error.
    #[cfg(feature = "postgres")]
    pub async fn postgres(url: &str) -> Result<Stores, String> {
        let store = mcpgate_store::postgres::PostgresStore::connect(url)
            .await
            .map_err(|e| format!("store.url: {e}"))?;
        Ok(Stores {
            replicas: true,
            ..Stores::all_in(Arc::new(store))
        })
    }

    /// Everything in this process's memory, gone when it exits (an embedded gateway whose keys
    /// come from its code or environment).
    pub fn memory() -> Stores {
        let store = Arc::new(MemoryStore::new());
        Stores {
            sessions: store.clone(),
            ..Stores::all_in(store)
        }
    }
}

/// The keys configured outside the store: `MCP_API_KEYS` (seed 001) and the keys file.
fn fixed_keys(config: &Config, env: &dyn Fn(&str) -> Option<String>, now: i64) -> Result<Vec<KeyRecord>, String> {
    let mut loaded = Vec::new();
    if config.auth.api_keys_env
        && let Some(json) = env(crate::config::raw::env::MCP_API_KEYS).filter(|j| !j.trim().is_empty())
    {
        loaded.extend(parse_seed_keys(&json, "MCP_API_KEYS", now)?);
    }
    if let Some(path) = &config.auth.keys_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("auth.keys_file: cannot read {}: {e}", path.display()))?;
        let mut keys = parse_seed_keys(&text, "auth.keys_file", now)?;
        for k in &mut keys {
            k.record.source = "file".into();
        }
        loaded.extend(keys);
    }
    let weak = loaded.iter().filter(|k| k.weak).count();
    if weak > 0 {
        tracing::warn!(
            "{weak} configured API key(s) are not generated mcp_<keyId>_<secret> keys with a 256-bit secret; \
             they work, but replace them with `mcpgate keys create`"
        );
    }
    Ok(loaded.into_iter().map(|k| k.record).collect())
}

impl Gateway {
    /// What `p` has left in its own windows, for whoami; empty (and logged) when the limit store
    /// cannot say.
    pub async fn remaining(
        &self,
        p: &mcpgate_core::principal::Principal,
        limits: &mcpgate_core::principal::Limits,
    ) -> mcpgate_core::ratelimit::Remaining {
        match self.limiter.remaining(p.id(), limits, self.clock.now()).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "rate-limit store unavailable: whoami shows no remaining counts");
                Default::default()
            }
        }
    }

    /// Builds the gateway; must run inside a Tokio runtime (stdio upstreams, the key watcher and
    /// the audit writer start background work). `env` reads environment variables. State goes to
    /// the SQLite file `store.path`.
    #[cfg(feature = "sqlite")]
    pub async fn new(config: Config, env: &dyn Fn(&str) -> Option<String>) -> Result<Arc<Gateway>, String> {
        Gateway::with_clock(config, env, Arc::new(SystemClock)).await
    }

    /// As [`Gateway::new`], reading time from `clock` (tests move a [`crate::clock::ManualClock`]).
    #[cfg(feature = "sqlite")]
    pub async fn with_clock(
        config: Config,
        env: &dyn Fn(&str) -> Option<String>,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Gateway>, String> {
        let stores = match &config.store_url {
            #[cfg(feature = "postgres")]
            Some(url) => Stores::postgres(url.expose()).await?,
            #[cfg(not(feature = "postgres"))]
            Some(_) => return Err("store.url: this mcpgate was built without the postgres feature".into()),
            None => Stores::sqlite(&config.store_path)?,
        };
        let stores = match &config.redis {
            #[cfg(feature = "redis")]
            Some(redis) => stores.with_redis(redis, clock.clone())?,
            #[cfg(not(feature = "redis"))]
            Some(_) => return Err("redis.url: this mcpgate was built without the redis feature".into()),
            None => stores,
        };
        Gateway::assemble(config, env, Sources::with_clock(clock), stores).await
    }

    /// Builds the gateway on `stores` (any backend passing the store conformance suite), reading
    /// time and randomness from `sources`.
    pub async fn assemble(
        config: Config,
        env: &dyn Fn(&str) -> Option<String>,
        sources: Sources,
        stores: Stores,
    ) -> Result<Arc<Gateway>, String> {
        let Sources { clock, entropy } = sources;
        let metrics = Arc::new(Metrics::new());
        let held = match &config.delegation {
            Some(d) => match env(&d.encryption_key_env) {
                Some(text) => {
                    let key = mcpgate_core::sealed::SealingKey::parse(&text)
                        .map_err(|e| format!("{}: {e}", d.encryption_key_env))?;
                    Some((stores.credentials.clone(), key))
                }
                None => None,
            },
            None => None,
        };
        let keys = KeyRegistry::new(
            fixed_keys(&config, env, clock.unix_s())?,
            Some(stores.keys.clone()),
            held,
        )
        .await?;
        let delegation = config.delegation.clone().map(|d| {
            // With a provider source: where a person without a token there signs in.
            let sign_in = d.provider.as_ref().and_then(|id| {
                let o = config.oauth.as_ref()?;
                let p = o.providers.iter().find(|p| &p.id == id)?;
                Some((p.name.clone(), format!("{}/auth/oauth/{id}/start", o.issuer)))
            });
            let mut delegation = crate::delegation::Delegation::new(d, env);
            delegation.sign_in = sign_in;
            delegation
        });
        stores.broadcast.listen();
        tokio::spawn(keys.clone().watch(config.reload_interval, stores.broadcast.keys()));
        let resource = format!("{}/mcp", config.public_url);
        let mut auth = Auth::new(config.auth.clone(), keys, &resource, env, clock.clone())?;
        if stores.replicas {
            auth.hmac = auth.hmac.take().map(|h| h.with_replay_store(stores.replay.clone()));
        }
        let oauth = match &config.oauth {
            Some(settings) => {
                let o = crate::oauth::start(
                    settings,
                    &resource,
                    &config,
                    env,
                    &clock,
                    &entropy,
                    &stores,
                    auth.keys.clone(),
                )
                .await?;
                auth.issued = Some(crate::auth::issued::IssuedTokens::new(o.clone()));
                Some(o)
            }
            None => None,
        };
        if config.auth.allow_query_key {
            tracing::warn!(
                "auth.allow_query_key is on: keys in URLs end up in proxy and browser logs, and the MCP \
                 specification forbids them; prefer the X-API-Key header wherever the client allows it"
            );
        }
        if config.auth.allow_tool_arg_key {
            tracing::warn!(
                "auth.allow_tool_arg_key is on: keys in tool arguments pass through the model's context; \
                 the MCP specification forbids credentials there"
            );
        }
        if auth.single_user_mode() {
            tracing::warn!(
                "a server-side default key is set: requests without a credential run as that key's owner (single-user mode)"
            );
        }
        if let Some(role) = config.auth.default_role {
            tracing::warn!(
                "callers without a credential get role {} (MCP_DEFAULT_ROLE)",
                role.as_str()
            );
        }
        let admin = config.admin.enabled.then(|| {
            let sealing = config
                .delegation
                .as_ref()
                .and_then(|d| env(&d.encryption_key_env))
                .and_then(|text| mcpgate_core::sealed::SealingKey::parse(&text).ok());
            Arc::new(crate::admin::Admin::new(&stores, sealing, entropy.clone()))
        });
        let telemetry = match &config.telemetry {
            Some(t) => Some(crate::telemetry::Telemetry::start(t.clone(), env, metrics.clone())?),
            None => None,
        };
        let audit = AuditSink::start(&config.audit, Some(stores.audit.clone()), clock.clone())?;
        let upstream = Upstream::new(&config.upstream, metrics.clone(), entropy.clone())?;
        let known_tools = crate::known_tools::KnownTools::new(
            config
                .limits
                .tools
                .iter()
                .flat_map(|(globs, _)| globs.iter())
                .chain(config.policy.rules.iter().flat_map(|r| r.tools.iter()))
                .map(String::as_str),
        );
        Ok(Arc::new(Gateway {
            known_tools,
            upstream,
            metrics,
            sessions: SessionRegistry::with_store(
                SessionLimits {
                    sessions_per_principal: config.max_sessions_per_principal,
                    streams_per_principal: config.http.max_streams_per_principal,
                    streams: config.http.max_streams,
                },
                stores.sessions.clone(),
                clock.clone(),
                entropy.as_ref(),
            )
            // Last-seen times err early by at most this: a tenth of the idle timeout.
            .rechecking(crate::sessions::DEFAULT_RECHECK.min(config.session_idle_timeout / 10))
            .hearing(stores.broadcast.clone()),
            clock,
            entropy,
            oauth,
            started: Instant::now(),
            auth,
            limiter: stores.limits.clone(),
            dependencies: stores.dependencies.clone(),
            admin,
            telemetry,
            audit,
            delegation,
            config,
        }))
    }

    pub fn router(self: &Arc<Self>) -> Router {
        // `/mcp` checks Host and Origin as the first step of its pipeline, so the refusal is
        // audited and counted like any other; every other route gets the same check as a layer.
        let pages = Router::new()
            .route("/mcp/status", get(status))
            .route("/auth/me", get(me))
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            .merge(crate::admin::routes(self.admin.is_some()))
            .route_layer(axum::middleware::from_fn_with_state(
                self.clone(),
                crate::rebinding::require_allowed_host,
            ));
        // Discovery and the authorization server: Host checked, any Origin (browser-based MCP
        // clients fetch these cross-origin; the consent form checks its own Origin).
        let documents = Router::new()
            .route(
                "/.well-known/oauth-protected-resource",
                get(crate::metadata::protected_resource),
            )
            .route(
                "/.well-known/oauth-protected-resource/mcp",
                get(crate::metadata::protected_resource),
            )
            .layer(axum::middleware::from_fn(crate::oauth::cors))
            .merge(crate::oauth::routes(self.oauth.as_deref()))
            .route_layer(axum::middleware::from_fn_with_state(
                self.clone(),
                crate::rebinding::require_allowed_host_any_origin,
            ));
        Router::new()
            .route(
                "/mcp",
                get(mcp_get)
                    .head(mcp_other)
                    .post(mcp_post)
                    .delete(mcp_delete)
                    .fallback(mcp_other),
            )
            .merge(pages)
            .merge(documents)
            .layer(axum::middleware::map_response_with_state(
                self.clone(),
                crate::metadata::add_resource_metadata,
            ))
            .with_state(self.clone())
    }
}

async fn mcp_post(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    gw.handle_post(parts, body).await
}

async fn mcp_get(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    gw.handle_get(parts).await.unwrap_or_else(|r| r.into_response(None))
}

async fn mcp_delete(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    gw.handle_delete(parts).await.unwrap_or_else(|r| r.into_response(None))
}

async fn mcp_other() -> Response {
    let mut r = Refusal::MethodNotAllowed.into_response(None);
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, POST, DELETE"));
    r
}

/// Authentication for the gateway's own JSON pages: they need a credential. (Host and Origin
/// were checked by the router's layer.)
async fn known_caller(gw: &Gateway, req: Request) -> Result<Principal, Response> {
    let (parts, _) = req.into_parts();
    match gw.authenticate_plain(&parts).await {
        Ok(Some(p)) => Ok(p),
        Ok(None) => Err(Refusal::Unauthenticated { failure: None }.into_response(None)),
        Err(r) => Err(r.into_response(None)),
    }
}

async fn me(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    // A browser with a web session and no credential header: who the session is.
    let h = req.headers();
    let credential = !matches!(crate::auth::extract::from_headers(h), crate::auth::extract::Found::None);
    if !credential && let Some(o) = &gw.oauth {
        if let Some(r) = crate::oauth::session::me(o, h) {
            return r;
        }
        if crate::oauth::cookies::read(h, &crate::oauth::cookies::name(o, crate::oauth::session::COOKIE)).is_some() {
            return crate::oauth::session::not_signed_in();
        }
    }
    let p = match known_caller(&gw, req).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let limits = p.limits().or(gw.config.limits.default);
    let remaining = gw.remaining(&p, &limits).await;
    axum::Json(crate::pipeline::whoami_json(&p, &limits, &remaining)).into_response()
}

async fn status(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    if let Err(r) = known_caller(&gw, req).await {
        return r;
    }
    let body = serde_json::json!({
        "name": "mcpgate",
        "version": VERSION,
        "uptime_seconds": gw.started.elapsed().as_secs(),
        "upstream": gw.upstream.status(),
        "ready": gw.upstream.ready().await,
        // null when the session store cannot answer.
        "sessions": gw.sessions.total().await.ok(),
        "auth": { "methods": gw.auth.methods(), "keys": gw.auth.keys.len() },
        "audit": { "dropped": gw.audit.dropped.load(std::sync::atomic::Ordering::Relaxed) },
    });
    axum::Json(body).into_response()
}

async fn healthz() -> &'static str {
    "ok"
}

/// Reports the upstream and every dependency (the store; Redis when configured), each asked at
/// once with a 2 s limit; the body names each one's state (`ok`, or why not — never a URL or a
/// secret). 503 with `Retry-After` when the upstream does not answer; a shared dependency that
/// is down is reported but does not take this replica out of rotation: every replica shares it,
/// so failing them all would turn a degraded service (keys served from memory, limits per
/// `redis.on_error`) into an outage at the load balancer.
async fn readyz(State(gw): State<Arc<Gateway>>) -> Response {
    const LIMIT: Duration = Duration::from_secs(2);
    let upstream = async {
        match tokio::time::timeout(LIMIT, gw.upstream.ready()).await {
            Ok(true) => Ok(()),
            Ok(false) => Err("not reachable".to_string()),
            Err(_) => Err("no answer within 2 s".to_string()),
        }
    };
    let others = futures_util::future::join_all(gw.dependencies.iter().map(|(name, d)| async move {
        let state = match tokio::time::timeout(LIMIT, d.ready()).await {
            Ok(r) => r,
            Err(_) => Err("no answer within 2 s".to_string()),
        };
        (*name, state)
    }));
    let (upstream, others) = tokio::join!(upstream, others);
    let ready = upstream.is_ok();
    let mut body = serde_json::Map::new();
    for (name, state) in std::iter::once(("upstream", upstream)).chain(others) {
        body.insert(name.into(), state.err().unwrap_or_else(|| "ok".into()).into());
    }
    // Records the audit writer keeps in memory because the store cannot take them now.
    let waiting = gw.audit.buffered.load(std::sync::atomic::Ordering::Relaxed);
    let audit = if waiting == 0 {
        "ok".to_string()
    } else {
        format!("{waiting} records wait for the store")
    };
    body.insert("audit".into(), audit.into());
    body.insert("ready".into(), ready.into());
    let mut r = axum::Json(serde_json::Value::Object(body)).into_response();
    if !ready {
        *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    r
}

async fn metrics(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    if gw.config.metrics.require_auth {
        match known_caller(&gw, req).await {
            Err(r) => return r,
            // The role given to callers without a credential does not count: the option asks for
            // a credential.
            Ok(p) if p.method() == AuthMethod::Anonymous => {
                return Refusal::Unauthenticated { failure: None }.into_response(None);
            }
            Ok(p) if p.role() != Role::Admin => {
                return Refusal::Forbidden {
                    message: "the metrics need an admin credential (metrics.require_auth is on)".into(),
                }
                .into_response(None);
            }
            Ok(_) => {}
        }
    }
    let mut r = Response::new(Body::from(gw.metrics.render()));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    r
}

/// Serves on `listener` (HTTP/1.1 and h2c) until `shutdown` completes; then lets in-flight
/// requests finish for `http.shutdown_grace_s`, stops upstream children, writes the audit records
/// still queued and the keys' last-used times.
pub async fn serve(
    gw: Arc<Gateway>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let reaper = tokio::spawn(forget_idle_sessions(Arc::downgrade(&gw)));
    let result = listen::run(gw.router(), &gw.config.http, listener, shutdown).await;
    reaper.abort();
    gw.upstream.shutdown();
    gw.audit.close().await;
    if let Some(t) = &gw.telemetry {
        t.flush(Duration::from_secs(5)).await;
    }
    gw.auth.keys.flush_used_now().await;
    result
}

/// Forgets sessions idle past `session_idle_timeout`, every 30 s, while the gateway lives.
pub async fn forget_idle_sessions(gw: std::sync::Weak<Gateway>) {
    let mut tick = tokio::time::interval(Duration::from_secs(30));
    loop {
        tick.tick().await;
        let Some(gw) = gw.upgrade() else { return };
        if let Err(e) = gw.sessions.forget_idle(gw.config.session_idle_timeout).await {
            tracing::warn!(error = %e, "could not forget idle sessions; retrying on the next tick");
        }
    }
}
