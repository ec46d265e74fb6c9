//! A local OIDC issuer / authorization server on 127.0.0.1:0, the one every token test trusts:
//! discovery (`/.well-known/openid-configuration`), a switchable JWKS (`/jwks`, with an optional
//! `Cache-Control`), RFC 7662 introspection (`/introspect`, answers set per token, optionally
//! checking the gateway's client credentials) and `/slow-introspect`, which answers after 3 s.
//! It counts every request per endpoint, and can be slowed down, made to fail ([`Mode`]) or
//! stopped.

use crate::fake::{Behaviour, LocalServer, Mode};
use crate::keys::TestKey;
use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use http::{HeaderMap, StatusCode, header};
use mcpgate_gateway::auth::jwt::RawJwt;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

#[derive(Default)]
struct IssuerState {
    base: OnceLock<String>,
    jwks: Mutex<Value>,
    cache_control: Mutex<Option<String>>,
    behaviour: Behaviour,
    discovery_fetches: AtomicUsize,
    jwks_fetches: AtomicUsize,
    introspections: AtomicUsize,
    /// token → introspection answer.
    tokens: Mutex<HashMap<String, Value>>,
    /// The answer for every other token (default `{"active": false}`).
    others: Mutex<Option<Value>>,
    /// The `Authorization` introspection requires, when set.
    client: Mutex<Option<String>>,
}

pub struct Issuer {
    /// `http://127.0.0.1:PORT`: the issuer identifier and the base of every endpoint.
    pub base: String,
    state: Arc<IssuerState>,
    server: LocalServer,
}

impl Issuer {
    /// Starts the issuer publishing `published` in its JWKS.
    pub async fn start(published: &[&TestKey]) -> Issuer {
        let state = Arc::new(IssuerState::default());
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/introspect", post(introspect))
            .route("/slow-introspect", post(slow))
            .with_state(state.clone());
        let server = LocalServer::start(app).await;
        state.base.set(server.base.clone()).expect("base set once");
        let issuer = Issuer {
            base: server.base.clone(),
            state,
            server,
        };
        issuer.publish(published);
        issuer
    }

    /// The JWKS now holds exactly these keys.
    pub fn publish(&self, published: &[&TestKey]) {
        self.publish_raw(json!({"keys": published.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()}));
    }

    /// The JWKS answers exactly this document.
    pub fn publish_raw(&self, jwks: Value) {
        *self.state.jwks.lock().unwrap() = jwks;
    }

    /// The JWKS is sent with this `Cache-Control`.
    pub fn cache_control(&self, value: &str) {
        *self.state.cache_control.lock().unwrap() = Some(value.to_string());
    }

    pub fn set_mode(&self, m: Mode) {
        self.state.behaviour.set_mode(m);
    }

    /// Every answer waits `ms` first.
    pub fn delay(&self, ms: u64) {
        self.state.behaviour.set_delay(ms);
    }

    /// Stops answering (503 to anything in flight) and closes the listener.
    pub async fn stop(&self) {
        self.set_mode(Mode::Unavailable);
        self.server.stop().await;
    }

    pub fn discovery_fetches(&self) -> usize {
        self.state.discovery_fetches.load(Ordering::SeqCst)
    }
    pub fn jwks_fetches(&self) -> usize {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }
    /// (discovery fetches, JWKS fetches)
    pub fn fetches(&self) -> (usize, usize) {
        (self.discovery_fetches(), self.jwks_fetches())
    }
    pub fn introspections(&self) -> usize {
        self.state.introspections.load(Ordering::SeqCst)
    }

    /// Introspecting `token` answers `answer`.
    pub fn answer(&self, token: &str, answer: Value) {
        self.state.tokens.lock().unwrap().insert(token.into(), answer);
    }

    /// Introspecting a token not given to [`Issuer::answer`] answers `answer`.
    pub fn answer_others(&self, answer: Value) {
        *self.state.others.lock().unwrap() = Some(answer);
    }

    /// Introspection answers only to `Authorization: Basic id:secret` (401 `invalid_client`
    /// otherwise).
    pub fn require_client(&self, id: &str, secret: &str) {
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
        *self.state.client.lock().unwrap() = Some(format!("Basic {basic}"));
    }

    /// `[auth.jwt]` trusting this issuer through discovery.
    pub fn oidc(&self) -> RawJwt {
        RawJwt {
            issuer: Some(self.base.clone()),
            ..Default::default()
        }
    }
}

async fn discovery(State(s): State<Arc<IssuerState>>) -> Response {
    s.discovery_fetches.fetch_add(1, Ordering::SeqCst);
    if let Some(r) = s.behaviour.answer().await {
        return r;
    }
    let base = s.base.get().cloned().unwrap_or_default();
    axum::Json(json!({
        "issuer": base,
        "jwks_uri": format!("{base}/jwks"),
        "introspection_endpoint": format!("{base}/introspect"),
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
    }))
    .into_response()
}

async fn jwks(State(s): State<Arc<IssuerState>>) -> Response {
    s.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    if let Some(r) = s.behaviour.answer().await {
        return r;
    }
    let body = s.jwks.lock().unwrap().clone();
    let mut resp = axum::Json(body).into_response();
    if let Some(cc) = s.cache_control.lock().unwrap().clone() {
        resp.headers_mut().insert(header::CACHE_CONTROL, cc.parse().unwrap());
    }
    resp
}

async fn introspect(State(s): State<Arc<IssuerState>>, headers: HeaderMap, body: String) -> Response {
    s.introspections.fetch_add(1, Ordering::SeqCst);
    if let Some(r) = s.behaviour.answer().await {
        return r;
    }
    let expected = s.client.lock().unwrap().clone();
    if let Some(expected) = expected
        && headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) != Some(expected.as_str())
    {
        return (StatusCode::UNAUTHORIZED, axum::Json(json!({"error": "invalid_client"}))).into_response();
    }
    let token = form_urlencoded::parse(body.as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, t)| t.into_owned())
        .unwrap_or_default();
    let known = s.tokens.lock().unwrap().get(&token).cloned();
    let answer = known
        .or_else(|| s.others.lock().unwrap().clone())
        .unwrap_or(json!({"active": false}));
    axum::Json(answer).into_response()
}

async fn slow() -> Response {
    tokio::time::sleep(Duration::from_secs(3)).await;
    axum::Json(json!({"active": false})).into_response()
}
