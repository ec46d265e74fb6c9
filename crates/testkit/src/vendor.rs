//! A vendor API that issues its own API keys and verifies them for the gateway's external key
//! verification (`[auth.external]`): `GET /me` with `Authorization: Bearer <key>` answers 200
//! with what the test's rule says of the key, 401 `{"error": "bad key"}` for a key the rule does
//! not know. It counts every call, and can be slowed down or made to fail ([`Mode`]).

use crate::fake::{Behaviour, LocalServer, Mode};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

type Rule = Box<dyn Fn(&str) -> Option<Value> + Send + Sync>;

struct VendorState {
    calls: AtomicUsize,
    behaviour: Behaviour,
    knows: Rule,
}

pub struct Vendor {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    state: Arc<VendorState>,
    server: LocalServer,
}

impl Vendor {
    /// Starts the vendor; `knows(key)` is the user a key belongs to (`/me`'s answer), or `None`
    /// for a key the vendor never issued.
    pub async fn start(knows: impl Fn(&str) -> Option<Value> + Send + Sync + 'static) -> Vendor {
        let state = Arc::new(VendorState {
            calls: AtomicUsize::new(0),
            behaviour: Behaviour::default(),
            knows: Box::new(knows),
        });
        let app = axum::Router::new()
            .route("/me", axum::routing::get(me))
            .with_state(state.clone());
        let server = LocalServer::start(app).await;
        Vendor {
            base: server.base.clone(),
            state,
            server,
        }
    }

    /// The verification endpoint.
    pub fn me_url(&self) -> String {
        format!("{}/me", self.base)
    }

    /// Calls received so far (whatever they were answered).
    pub fn calls(&self) -> usize {
        self.state.calls.load(Ordering::SeqCst)
    }

    pub fn set_mode(&self, m: Mode) {
        self.state.behaviour.set_mode(m);
    }

    /// Every answer waits `ms` first.
    pub fn delay(&self, ms: u64) {
        self.state.behaviour.set_delay(ms);
    }

    /// Closes the listener and waits until the server has ended.
    pub async fn stop(&self) {
        self.server.stop().await;
    }
}

async fn me(State(v): State<Arc<VendorState>>, headers: HeaderMap) -> Response {
    v.calls.fetch_add(1, Ordering::SeqCst);
    if let Some(r) = v.behaviour.answer().await {
        return r;
    }
    let key = headers
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or_default();
    match (v.knows)(key) {
        Some(user) => axum::Json(user).into_response(),
        None => (StatusCode::UNAUTHORIZED, axum::Json(json!({ "error": "bad key" }))).into_response(),
    }
}
