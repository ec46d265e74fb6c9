//! The router and the server loop. Handlers are thin adapters over [`Gateway`]'s pipeline.

use crate::config::Config;
use crate::metrics::Metrics;
use crate::refusal::Refusal;
use crate::sessions::SessionRegistry;
use crate::upstream::Upstream;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
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
}

impl Gateway {
    /// Builds the gateway; must run inside a Tokio runtime (stdio upstreams start background work).
    pub fn new(config: Config) -> Result<Arc<Gateway>, String> {
        let metrics = Arc::new(Metrics::new());
        let upstream = Upstream::new(&config.upstream, metrics.clone())?;
        Ok(Arc::new(Gateway {
            config,
            upstream,
            metrics,
            sessions: SessionRegistry::default(),
            started: Instant::now(),
        }))
    }

    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route(
                "/mcp",
                get(mcp_get)
                    .post(mcp_post)
                    .delete(mcp_delete)
                    .fallback(mcp_other),
            )
            .route("/mcp/status", get(status))
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics))
            .with_state(self.clone())
    }
}

async fn mcp_post(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    gw.handle_post(parts, body).await.response
}

async fn mcp_get(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    gw.handle_get(parts)
        .await
        .unwrap_or_else(|r| r.into_response(None))
}

async fn mcp_delete(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    gw.handle_delete(parts)
        .await
        .unwrap_or_else(|r| r.into_response(None))
}

async fn mcp_other() -> Response {
    let mut r = Refusal::MethodNotAllowed.into_response(None);
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, POST, DELETE"));
    r
}

async fn status(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    if let Err(r) = crate::guard::check(&gw.config.http, req.uri(), req.headers()) {
        return r.into_response(None);
    }
    let body = serde_json::json!({
        "name": "mcpgate",
        "version": VERSION,
        "uptime_seconds": gw.started.elapsed().as_secs(),
        "upstream": gw.upstream.status(),
        "ready": gw.upstream.ready().await,
        "sessions": gw.sessions.len(),
        "auth": { "methods": Vec::<&str>::new() },
    });
    axum::Json(body).into_response()
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(gw): State<Arc<Gateway>>) -> Response {
    if gw.upstream.ready().await {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "upstream not reachable").into_response()
    }
}

async fn metrics(State(gw): State<Arc<Gateway>>) -> Response {
    let mut r = Response::new(Body::from(gw.metrics.render()));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    r
}

/// Serves on `listener` until `shutdown` completes, then stops upstream children.
pub async fn serve(
    gw: Arc<Gateway>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let reaper = tokio::spawn(forget_idle_sessions(Arc::downgrade(&gw)));
    let app = gw.router();
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    reaper.abort();
    gw.upstream.shutdown();
    result
}

async fn forget_idle_sessions(gw: std::sync::Weak<Gateway>) {
    let mut tick = tokio::time::interval(Duration::from_secs(30));
    loop {
        tick.tick().await;
        let Some(gw) = gw.upgrade() else { return };
        gw.sessions.forget_idle(gw.config.session_idle_timeout);
    }
}
