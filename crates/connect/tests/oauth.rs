//! `--oauth` (`mcpgate_connect::oauth::OAuth`) against a loopback authorization server and MCP
//! endpoint written here (this crate cannot depend on the gateway; tests-e2e/connect_oauth.sh
//! runs the same flow against mcpgate's own authorization server). The server checks what a
//! strict one would: registered redirect (any loopback port when registered without one), PKCE
//! S256 against the verifier, `resource`, single-use codes, refresh-token rotation (a used
//! refresh token is refused). The "browser" is the `on_authorization_url` hook: it GETs the
//! authorization URL without following the redirect, then GETs the Location, the provider's own
//! loopback callback.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use http::Method;
use mcpgate_connect::Auth;
use mcpgate_connect::auth::ManualClock;
use mcpgate_connect::oauth::{AuthorizationUrlHook, OAuth, OAuthSettings, cache_dir};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// ---- the test authorization server and MCP endpoint -------------------------------------------

#[derive(Clone)]
struct Knobs {
    expires_in: u64,
    /// Registration refuses a redirect URI without a port.
    refuse_portless: bool,
    /// /authorize redirects with another state / another iss.
    wrong_state: bool,
    wrong_iss: bool,
    /// Every refresh is refused (invalid_grant).
    refuse_refresh: bool,
    /// Grant this scope whatever was asked.
    grant_scope: Option<String>,
    /// The protected-resource metadata is only where the MCP endpoint's 401 says.
    prm_only_via_challenge: bool,
    /// The metadata names another issuer / the resource metadata names another server.
    metadata_issuer: Option<String>,
    authorization_server: Option<String>,
}

impl Default for Knobs {
    fn default() -> Knobs {
        Knobs {
            expires_in: 3600,
            refuse_portless: false,
            wrong_state: false,
            wrong_iss: false,
            refuse_refresh: false,
            grant_scope: None,
            prm_only_via_challenge: false,
            metadata_issuer: None,
            authorization_server: None,
        }
    }
}

struct Grant {
    challenge: String,
    redirect_uri: String,
    client_id: String,
    resource: String,
    scope: Option<String>,
}

struct Refresh {
    client_id: String,
    scope: Option<String>,
    used: bool,
}

#[derive(Default)]
struct Recorded {
    knobs: Knobs,
    registrations: Vec<Value>,
    /// client_id → redirect_uris
    clients: HashMap<String, Vec<String>>,
    authorizations: Vec<HashMap<String, String>>,
    token_requests: Vec<HashMap<String, String>>,
    codes: HashMap<String, Grant>,
    access: HashMap<String, Option<String>>,
    refresh: HashMap<String, Refresh>,
    /// Every code, access and refresh token issued (searched for in Debug output and errors).
    issued: Vec<String>,
    /// (bearer token or none, status) per MCP request.
    mcp: Vec<(Option<String>, u16)>,
    n: u64,
}

#[derive(Clone)]
struct Server {
    base: String,
    rec: Arc<Mutex<Recorded>>,
}

impl Server {
    fn mcp_url(&self) -> String {
        format!("{}/mcp", self.base)
    }
    fn rec(&self) -> std::sync::MutexGuard<'_, Recorded> {
        self.rec.lock().unwrap()
    }
    fn knobs(&self, f: impl FnOnce(&mut Knobs)) {
        f(&mut self.rec().knobs)
    }
    fn resource_metadata(&self) -> String {
        if self.rec().knobs.prm_only_via_challenge {
            format!("{}/meta/prm", self.base)
        } else {
            format!("{}/.well-known/oauth-protected-resource/mcp", self.base)
        }
    }
    /// No issued code or token in `text`.
    fn assert_no_secret(&self, what: &str, text: &str) {
        let rec = self.rec();
        for s in &rec.issued {
            assert!(
                !text.contains(s.as_str()),
                "{what} holds an issued code or token: {text}"
            );
        }
    }
}

fn fresh(prefix: &str, n: &mut u64) -> String {
    *n += 1;
    format!("{prefix}-{n}-{:016x}", rand::random::<u64>())
}

async fn prm(State(s): State<Server>) -> Response {
    let rec = s.rec();
    let asrv = rec.knobs.authorization_server.clone().unwrap_or_else(|| s.base.clone());
    Json(json!({
        "resource": s.mcp_url(),
        "authorization_servers": [asrv],
        "scopes_supported": ["read", "write"],
        "bearer_methods_supported": ["header"],
    }))
    .into_response()
}

async fn prm_well_known(state: State<Server>) -> Response {
    if state.rec().knobs.prm_only_via_challenge {
        return StatusCode::NOT_FOUND.into_response();
    }
    prm(state).await
}

async fn as_metadata(State(s): State<Server>) -> Response {
    let issuer = s.rec().knobs.metadata_issuer.clone().unwrap_or_else(|| s.base.clone());
    let b = &s.base;
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{b}/authorize"),
        "token_endpoint": format!("{b}/token"),
        "registration_endpoint": format!("{b}/register"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": ["read", "write", "admin"],
        "authorization_response_iss_parameter_supported": true,
    }))
    .into_response()
}

fn oauth_error(status: StatusCode, code: &str, desc: &str) -> Response {
    (status, Json(json!({"error": code, "error_description": desc}))).into_response()
}

async fn register(State(s): State<Server>, Json(body): Json<Value>) -> Response {
    let mut rec = s.rec();
    rec.registrations.push(body.clone());
    let uris: Vec<String> = body["redirect_uris"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let portless = uris
        .iter()
        .any(|u| reqwest::Url::parse(u).is_ok_and(|u| u.port().is_none()));
    if uris.is_empty() || (rec.knobs.refuse_portless && portless) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_redirect_uri",
            "a redirect URI needs a port here",
        );
    }
    let mut n = rec.n;
    let id = fresh("client", &mut n);
    rec.n = n;
    rec.clients.insert(id.clone(), uris.clone());
    (
        StatusCode::CREATED,
        Json(json!({"client_id": id, "redirect_uris": uris, "token_endpoint_auth_method": "none"})),
    )
        .into_response()
}

/// A loopback redirect matches a registered one on any port when that one has none.
fn redirect_ok(registered: &[String], got: &str) -> bool {
    let Ok(g) = reqwest::Url::parse(got) else { return false };
    registered.iter().any(|r| {
        r == got
            || reqwest::Url::parse(r).is_ok_and(|r| {
                r.port().is_none()
                    && r.scheme() == "http"
                    && r.host_str() == Some("127.0.0.1")
                    && g.host_str() == r.host_str()
                    && g.path() == r.path()
                    && g.query().is_none()
            })
    })
}

async fn authorize(State(s): State<Server>, Query(q): Query<HashMap<String, String>>) -> Response {
    let mut rec = s.rec();
    rec.authorizations.push(q.clone());
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    let client_id = get("client_id");
    let redirect = get("redirect_uri");
    let Some(registered) = rec.clients.get(&client_id) else {
        return (StatusCode::BAD_REQUEST, "unknown client").into_response();
    };
    if !redirect_ok(registered, &redirect) {
        return (StatusCode::BAD_REQUEST, "unregistered redirect_uri").into_response();
    }
    if get("response_type") != "code" || get("code_challenge_method") != "S256" || get("code_challenge").is_empty() {
        return (StatusCode::BAD_REQUEST, "PKCE S256 required").into_response();
    }
    let mut n = rec.n;
    let code = fresh("code", &mut n);
    rec.n = n;
    rec.issued.push(code.clone());
    let grant = Grant {
        challenge: get("code_challenge"),
        redirect_uri: redirect.clone(),
        client_id,
        resource: get("resource"),
        scope: q.get("scope").cloned(),
    };
    rec.codes.insert(code.clone(), grant);
    let state = if rec.knobs.wrong_state {
        "forged-state".to_string()
    } else {
        get("state")
    };
    let iss = if rec.knobs.wrong_iss {
        "http://evil.example".to_string()
    } else {
        s.base.clone()
    };
    let mut loc = reqwest::Url::parse(&redirect).unwrap();
    loc.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &state)
        .append_pair("iss", &iss);
    (StatusCode::SEE_OTHER, [(header::LOCATION, loc.to_string())]).into_response()
}

fn issue(rec: &mut Recorded, client_id: &str, scope: Option<String>) -> Response {
    let scope = rec.knobs.grant_scope.clone().or(scope);
    let mut n = rec.n;
    let at = fresh("at", &mut n);
    let rt = fresh("rt", &mut n);
    rec.n = n;
    rec.issued.push(at.clone());
    rec.issued.push(rt.clone());
    rec.access.insert(at.clone(), scope.clone());
    rec.refresh.insert(
        rt.clone(),
        Refresh {
            client_id: client_id.into(),
            scope: scope.clone(),
            used: false,
        },
    );
    let mut body =
        json!({"access_token": at, "token_type": "Bearer", "expires_in": rec.knobs.expires_in, "refresh_token": rt});
    if let Some(scope) = scope {
        body["scope"] = json!(scope);
    }
    Json(body).into_response()
}

async fn token(State(s): State<Server>, body: String) -> Response {
    let form: HashMap<String, String> = form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let mut rec = s.rec();
    rec.token_requests.push(form.clone());
    let get = |k: &str| form.get(k).cloned().unwrap_or_default();
    if get("resource") != s.mcp_url() {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_target",
            "resource must be the MCP URL",
        );
    }
    match get("grant_type").as_str() {
        "authorization_code" => {
            let Some(g) = rec.codes.remove(&get("code")) else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "unknown or used code");
            };
            let verified = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(Sha256::digest(get("code_verifier").as_bytes()))
                == g.challenge;
            if !verified {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "PKCE verification failed");
            }
            if g.redirect_uri != get("redirect_uri") || g.client_id != get("client_id") || g.resource != get("resource")
            {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "redirect_uri, client or resource differ",
                );
            }
            issue(&mut rec, &g.client_id, g.scope)
        }
        "refresh_token" => {
            if rec.knobs.refuse_refresh {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "refresh token revoked");
            }
            let client_id = get("client_id");
            let scope = match rec.refresh.get_mut(&get("refresh_token")) {
                Some(r) if !r.used && r.client_id == client_id => {
                    r.used = true;
                    r.scope.clone()
                }
                _ => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "unknown or used refresh token",
                    );
                }
            };
            issue(&mut rec, &client_id, scope)
        }
        _ => oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "no"),
    }
}

async fn mcp(State(s): State<Server>, headers: HeaderMap, body: String) -> Response {
    let rm = s.resource_metadata();
    let mut rec = s.rec();
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let scope = token.as_ref().and_then(|t| rec.access.get(t).cloned());
    let Some(scope) = scope else {
        rec.mcp.push((token, 401));
        let challenge = format!("Bearer resource_metadata=\"{rm}\"");
        return (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, challenge)]).into_response();
    };
    let wants_admin = serde_json::from_str::<Value>(&body).is_ok_and(|b| b["params"]["name"] == "admin_tool");
    let has_admin = scope
        .as_deref()
        .unwrap_or_default()
        .split_whitespace()
        .any(|s| s == "admin");
    if wants_admin && !has_admin {
        rec.mcp.push((token, 403));
        let challenge = format!("Bearer error=\"insufficient_scope\", scope=\"admin\", resource_metadata=\"{rm}\"");
        return (StatusCode::FORBIDDEN, [(header::WWW_AUTHENTICATE, challenge)]).into_response();
    }
    rec.mcp.push((token, 200));
    Json(json!({"jsonrpc": "2.0", "id": 1, "result": {}})).into_response()
}

async fn start(knobs: Knobs) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let server = Server {
        base,
        rec: Arc::new(Mutex::new(Recorded {
            knobs,
            ..Recorded::default()
        })),
    };
    let app = Router::new()
        .route("/.well-known/oauth-protected-resource/mcp", get(prm_well_known))
        .route("/meta/prm", get(prm))
        .route("/.well-known/oauth-authorization-server", get(as_metadata))
        .route("/register", post(register))
        .route("/authorize", get(authorize))
        .route("/token", post(token))
        .route("/mcp", post(mcp).get(mcp))
        .with_state(server.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    server
}

// ---- the "browser" and the MCP client ---------------------------------------------------------

#[derive(Debug, Clone)]
struct Visit {
    authorize_status: u16,
    location: String,
    callback_status: Option<u16>,
    callback_body: String,
}

#[derive(Clone, Default)]
struct Browser(Arc<Mutex<Vec<Visit>>>);

impl Browser {
    fn hook(&self) -> AuthorizationUrlHook {
        let visits = self.0.clone();
        Arc::new(move |url: String| {
            let visits = visits.clone();
            tokio::spawn(async move {
                let http = reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .unwrap();
                let r = http.get(&url).send().await.unwrap();
                let status = r.status().as_u16();
                let location = r
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let (callback_status, callback_body) = if location.is_empty() {
                    (None, String::new())
                } else {
                    let c = http.get(&location).send().await.unwrap();
                    (Some(c.status().as_u16()), c.text().await.unwrap_or_default())
                };
                visits.lock().unwrap().push(Visit {
                    authorize_status: status,
                    location,
                    callback_status,
                    callback_body,
                });
            });
        })
    }
    fn visits(&self) -> Vec<Visit> {
        self.0.lock().unwrap().clone()
    }
}

fn settings(s: &Server, dir: &Path, browser: &Browser) -> OAuthSettings {
    let mut o = OAuthSettings::new(s.mcp_url(), cache_dir(dir));
    o.open_browser = false;
    o.callback_timeout = Duration::from_secs(20);
    o.on_authorization_url = Some(browser.hook());
    o
}

/// One tools/call as the bridge sends it: headers from the provider, once more after a 401 or
/// 403 insufficient_scope when the provider has something new. The final status.
async fn call(auth: &OAuth, s: &Server, tool: &str) -> Result<u16, String> {
    let http = reqwest::Client::new();
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool}}).to_string();
    let mut retried = false;
    loop {
        let h = auth
            .headers(&Method::POST, &s.mcp_url(), body.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let r = http
            .post(s.mcp_url())
            .headers(h.clone())
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let challenge = r
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let again = match status {
            401 if !retried => auth.unauthorized(&h, challenge.as_deref()).await,
            403 if !retried && challenge.as_deref().is_some_and(|c| c.contains("insufficient_scope")) => {
                auth.insufficient_scope(&h, challenge.as_deref()).await
            }
            _ => false,
        };
        if !again {
            return Ok(status);
        }
        retried = true;
    }
}

/// The tokens file(s) in the cache (not the registration).
fn token_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(cache_dir(dir))
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    let name = p.file_name().unwrap().to_string_lossy().to_string();
                    name.ends_with(".json") && !name.starts_with("client-")
                })
                .collect()
        })
        .unwrap_or_default()
}

fn cached(dir: &Path) -> Value {
    let files = token_files(dir);
    assert_eq!(files.len(), 1, "{files:?}");
    serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap()
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Waits for the browser's visit to be recorded (its callback answers after the token request).
async fn visits_settle(b: &Browser, n: usize) -> Vec<Visit> {
    for _ in 0..100 {
        if b.visits().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    b.visits()
}

// ---- the tests ---------------------------------------------------------------------------------

#[tokio::test]
async fn first_sign_in_registers_uses_pkce_and_resource_then_the_cache_serves_the_next_run() {
    let s = start(Knobs::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let browser = Browser::default();
    let auth = OAuth::new(settings(&s, dir.path(), &browser));
    assert_eq!(call(&auth, &s, "echo").await, Ok(200));
    let visits = visits_settle(&browser, 1).await;
    assert_eq!(visits.len(), 1);
    assert_eq!(auth.authorizations(), 1);
    {
        let rec = s.rec();
        // DCR: a public client with a portless loopback redirect.
        assert_eq!(rec.registrations.len(), 1);
        let r = &rec.registrations[0];
        assert_eq!(r["redirect_uris"], json!(["http://127.0.0.1/callback"]));
        assert_eq!(r["token_endpoint_auth_method"], "none");
        assert_eq!(r["grant_types"], json!(["authorization_code", "refresh_token"]));
        assert_eq!(r["response_types"], json!(["code"]));
        assert_eq!(r["client_name"], "mcpgate connect");
        // The authorization request: PKCE S256, state, resource, a loopback port, the PRM's scopes.
        assert_eq!(rec.authorizations.len(), 1);
        let a = &rec.authorizations[0];
        assert_eq!(a["code_challenge_method"], "S256");
        assert_eq!(a["code_challenge"].len(), 43);
        assert!(a["state"].len() >= 32);
        assert_eq!(a["resource"], s.mcp_url());
        assert_eq!(a["scope"], "read write");
        let redirect = reqwest::Url::parse(&a["redirect_uri"]).unwrap();
        assert_eq!(redirect.host_str(), Some("127.0.0.1"));
        assert!(redirect.port().is_some_and(|p| p > 0));
        // The code exchange: the verifier the server checked, the same redirect, the resource.
        assert_eq!(rec.token_requests.len(), 1);
        let t = &rec.token_requests[0];
        assert_eq!(t["grant_type"], "authorization_code");
        assert_eq!(t["redirect_uri"], a["redirect_uri"]);
        assert_eq!(t["resource"], s.mcp_url());
        assert_eq!(t["client_id"], a["client_id"]);
        assert_eq!(t["code_verifier"].len(), 43);
        assert!(!t.contains_key("client_secret"));
        // The MCP server saw a token on the first request already.
        assert_eq!(rec.mcp.len(), 1);
        assert_eq!(rec.mcp[0].1, 200);
    }
    let v = &visits[0];
    assert_eq!(v.authorize_status, 303);
    assert!(v.location.contains("iss="));
    assert_eq!(v.callback_status, Some(200));
    assert!(v.callback_body.contains("Signed in; you can close this window."));
    s.assert_no_secret("the callback page", &v.callback_body);

    // The cache: directory 0700, file 0600, holding what the server issued.
    #[cfg(unix)]
    {
        assert_eq!(mode(&cache_dir(dir.path())), 0o700);
        assert_eq!(mode(&token_files(dir.path())[0]), 0o600);
    }
    let c = cached(dir.path());
    assert_eq!(c["mcp_url"], s.mcp_url());
    assert_eq!(c["issuer"], s.base);
    assert_eq!(c["scope"], "read write");
    assert!(c["access_token"].as_str().unwrap().starts_with("at-"));
    assert!(c["refresh_token"].as_str().unwrap().starts_with("rt-"));

    // A second run on the same cache: no sign-in, no registration, no token request.
    let again = OAuth::new(settings(&s, dir.path(), &browser));
    assert_eq!(call(&again, &s, "echo").await, Ok(200));
    assert_eq!(again.authorizations(), 0);
    assert_eq!(browser.visits().len(), 1);
    {
        let rec = s.rec();
        assert_eq!(
            (
                rec.registrations.len(),
                rec.authorizations.len(),
                rec.token_requests.len()
            ),
            (1, 1, 1)
        );
        assert_eq!(rec.mcp[1].0, rec.mcp[0].0, "the cached access token");
    }
    for text in [
        format!("{auth:?}"),
        format!("{again:?}"),
        format!("{:?}", auth.settings()),
        auth.describe(),
    ] {
        s.assert_no_secret("Debug output", &text);
    }
}

#[tokio::test]
async fn refreshes_before_expiry_stores_the_rotated_token_and_signs_in_again_when_refused() {
    let s = start(Knobs {
        expires_in: 3,
        ..Knobs::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let browser = Browser::default();
    let clock = Arc::new(ManualClock::at(1_900_000_000, 0));
    let auth = OAuth::with_clock(settings(&s, dir.path(), &browser), clock.clone());
    assert_eq!(call(&auth, &s, "echo").await, Ok(200));
    let first = cached(dir.path());

    // 3 s tokens are renewed at 0.6 s left (a fifth of the lifetime).
    clock.advance(Duration::from_millis(2300));
    assert_eq!(call(&auth, &s, "echo").await, Ok(200));
    assert_eq!(auth.refreshes(), 0, "0.7 s left: still good");
    clock.advance(Duration::from_millis(200));
    assert_eq!(call(&auth, &s, "echo").await, Ok(200));
    assert_eq!(auth.refreshes(), 1, "0.5 s left: refreshed");
    let second = cached(dir.path());
    {
        let rec = s.rec();
        let t = rec.token_requests.last().unwrap();
        assert_eq!(t["grant_type"], "refresh_token");
        assert_eq!(t["refresh_token"], first["refresh_token"].as_str().unwrap());
        assert_eq!(t["resource"], s.mcp_url());
        assert_eq!(t["client_id"], first["client_id"].as_str().unwrap());
        assert_eq!(rec.mcp.last().unwrap().0.as_deref(), second["access_token"].as_str());
    }
    assert_ne!(second["access_token"], first["access_token"]);
    assert_ne!(
        second["refresh_token"], first["refresh_token"],
        "the rotated refresh token is stored"
    );

    // The server refuses a used refresh token: a second refresh works only with the rotated one,
    // and a new run on the cache refreshes with it too.
    clock.advance(Duration::from_secs(3));
    assert_eq!(call(&auth, &s, "echo").await, Ok(200));
    assert_eq!(auth.refreshes(), 2);
    clock.advance(Duration::from_secs(3));
    let next_run = OAuth::with_clock(settings(&s, dir.path(), &browser), clock.clone());
    assert_eq!(call(&next_run, &s, "echo").await, Ok(200));
    assert_eq!((next_run.refreshes(), next_run.authorizations()), (1, 0));

    // Refresh refused (invalid_grant): a new sign-in.
    s.knobs(|k| k.refuse_refresh = true);
    clock.advance(Duration::from_secs(3));
    assert_eq!(call(&next_run, &s, "echo").await, Ok(200));
    assert_eq!((next_run.refreshes(), next_run.authorizations()), (2, 1));
    assert_eq!(visits_settle(&browser, 2).await.len(), 2);
    assert_eq!(s.rec().registrations.len(), 1, "the registered client is reused");
}

#[tokio::test]
async fn a_refused_token_is_refreshed_once_and_other_requests_just_resend() {
    let s = start(Knobs::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let browser = Browser::default();
    let auth = OAuth::new(settings(&s, dir.path(), &browser));
    let stale = auth.headers(&Method::POST, &s.mcp_url(), b"").await.unwrap();
    // The server forgets every access token (a restart, a revocation): 401.
    s.rec().access.clear();
    assert_eq!(call(&auth, &s, "echo").await, Ok(200));
    assert_eq!((auth.refreshes(), auth.authorizations()), (1, 1));
    let statuses: Vec<u16> = s.rec().mcp.iter().map(|m| m.1).collect();
    assert_eq!(statuses, [401, 200]);
    // Another request that went out with the old token: resent, nothing fetched again.
    assert!(auth.unauthorized(&stale, Some("Bearer")).await);
    assert_eq!(auth.refreshes(), 1);

    // The refreshed token refused too, within a minute: refreshing again would not help, so a
    // new sign-in; a token from a fresh sign-in refused as well: give up (no loop).
    s.rec().access.clear();
    assert_eq!(call(&auth, &s, "echo").await, Ok(200));
    assert_eq!((auth.refreshes(), auth.authorizations()), (1, 2));
    let fresh_sign_in = auth.headers(&Method::POST, &s.mcp_url(), b"").await.unwrap();
    s.rec().access.clear();
    assert!(
        !auth.unauthorized(&fresh_sign_in, None).await,
        "a fresh sign-in refused too: no loop"
    );
    assert_eq!(auth.authorizations(), 2);
}

#[tokio::test]
async fn a_callback_with_another_state_is_refused_and_the_sign_in_times_out() {
    let s = start(Knobs {
        wrong_state: true,
        ..Knobs::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let browser = Browser::default();
    let mut o = settings(&s, dir.path(), &browser);
    o.callback_timeout = Duration::from_secs(2);
    let auth = OAuth::new(o);
    let started = Instant::now();
    let err = call(&auth, &s, "echo").await.unwrap_err();
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert!(err.contains("did not come back within 2 s"), "{err}");
    assert!(err.contains("state is not this sign-in's"), "{err}");
    let v = visits_settle(&browser, 1).await;
    assert_eq!(v[0].callback_status, Some(400));
    s.assert_no_secret("the error", &err);
    s.assert_no_secret("the callback page", &v[0].callback_body);
    assert!(s.rec().token_requests.is_empty(), "no code was exchanged");
    assert!(token_files(dir.path()).is_empty());
}

#[tokio::test]
async fn a_callback_from_another_issuer_is_refused_at_once() {
    let s = start(Knobs {
        wrong_iss: true,
        ..Knobs::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let browser = Browser::default();
    let auth = OAuth::new(settings(&s, dir.path(), &browser));
    let started = Instant::now();
    let err = call(&auth, &s, "echo").await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "refused at once, not at the timeout"
    );
    assert!(err.contains("came back from issuer http://evil.example"), "{err}");
    let v = visits_settle(&browser, 1).await;
    assert_eq!(v[0].callback_status, Some(400));
    assert!(v[0].callback_body.contains("Sign-in failed"));
    assert!(s.rec().token_requests.is_empty(), "the code was not exchanged");
    s.assert_no_secret("the error", &err);
    // Concurrent requests that waited on this sign-in get its failure, not a sign-in each.
    let (a, b) = tokio::join!(call(&auth, &s, "echo"), call(&auth, &s, "echo"));
    assert!(a.is_err() && b.is_err());
    assert_eq!(auth.authorizations(), 2, "one more sign-in, shared by both");
}

#[cfg(unix)]
#[tokio::test]
async fn a_cache_file_open_to_others_is_not_used_and_is_replaced() {
    use std::os::unix::fs::PermissionsExt;
    let s = start(Knobs::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let browser = Browser::default();
    let auth = OAuth::new(settings(&s, dir.path(), &browser));
    assert_eq!(call(&auth, &s, "echo").await, Ok(200));
    let file = token_files(dir.path()).remove(0);
    let before = cached(dir.path());
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();

    let next = OAuth::new(settings(&s, dir.path(), &browser));
    assert_eq!(call(&next, &s, "echo").await, Ok(200));
    assert_eq!(
        next.authorizations(),
        1,
        "signed in again instead of using the 0644 file"
    );
    assert_eq!(mode(&file), 0o600);
    assert_ne!(cached(dir.path())["access_token"], before["access_token"]);
    assert_eq!(s.rec().registrations.len(), 1);

    // A directory made open is made private again.
    std::fs::set_permissions(cache_dir(dir.path()), std::fs::Permissions::from_mode(0o755)).unwrap();
    s.knobs(|k| k.refuse_refresh = true);
    s.rec().access.clear();
    assert_eq!(call(&next, &s, "echo").await, Ok(200));
    assert_eq!(mode(&cache_dir(dir.path())), 0o700);
}

#[tokio::test]
async fn insufficient_scope_signs_in_again_for_the_union_once() {
    let s = start(Knobs::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let browser = Browser::default();
    let mut o = settings(&s, dir.path(), &browser);
    o.scope = Some("read".into());
    let auth = OAuth::new(o);
    assert_eq!(call(&auth, &s, "echo").await, Ok(200));
    assert_eq!(call(&auth, &s, "admin_tool").await, Ok(200));
    assert_eq!(auth.authorizations(), 2);
    {
        let rec = s.rec();
        assert_eq!(rec.authorizations[0]["scope"], "read");
        assert_eq!(rec.authorizations[1]["scope"], "read admin");
        let statuses: Vec<u16> = rec.mcp.iter().map(|m| m.1).collect();
        assert_eq!(statuses, [200, 403, 200]);
    }
    assert_eq!(cached(dir.path())["scope"], "read admin");
    // The stepped-up scope outlives its grant: a sign-in after a refused refresh asks for it.
    s.knobs(|k| k.refuse_refresh = true);
    s.rec().access.clear();
    assert_eq!(call(&auth, &s, "admin_tool").await, Ok(200));
    assert_eq!(auth.authorizations(), 3);
    assert_eq!(s.rec().authorizations[2]["scope"], "read admin");

    // A server that never grants admin: one step-up, then the 403 stands (no loop).
    let s = start(Knobs {
        grant_scope: Some("read".into()),
        ..Knobs::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut o = settings(&s, dir.path(), &browser);
    o.scope = Some("read".into());
    let auth = OAuth::new(o);
    assert_eq!(call(&auth, &s, "admin_tool").await, Ok(403));
    assert_eq!(call(&auth, &s, "admin_tool").await, Ok(403));
    assert_eq!(auth.authorizations(), 2, "the first sign-in and one step-up");
    assert_eq!(s.rec().authorizations[1]["scope"], "read admin");
}

#[tokio::test]
async fn concurrent_requests_share_one_sign_in_and_one_refresh() {
    let s = start(Knobs {
        expires_in: 60,
        ..Knobs::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let browser = Browser::default();
    let clock = Arc::new(ManualClock::at(1_900_000_000, 0));
    let auth = Arc::new(OAuth::with_clock(settings(&s, dir.path(), &browser), clock.clone()));
    let many = |n| {
        let calls: Vec<_> = (0..n)
            .map(|_| {
                let (auth, s) = (auth.clone(), s.clone());
                tokio::spawn(async move { call(&auth, &s, "echo").await })
            })
            .collect();
        futures_util::future::join_all(calls)
    };
    for r in many(16).await {
        assert_eq!(r.unwrap(), Ok(200));
    }
    assert_eq!(auth.authorizations(), 1);
    assert_eq!(visits_settle(&browser, 1).await.len(), 1);
    {
        let rec = s.rec();
        assert_eq!(
            (
                rec.registrations.len(),
                rec.authorizations.len(),
                rec.token_requests.len()
            ),
            (1, 1, 1)
        );
        assert_eq!(rec.mcp.len(), 16);
    }
    clock.advance(Duration::from_secs(59));
    for r in many(16).await {
        assert_eq!(r.unwrap(), Ok(200));
    }
    assert_eq!(auth.refreshes(), 1);
    assert_eq!(s.rec().token_requests.len(), 2);
}

#[tokio::test]
async fn discovery_follows_the_challenge_and_refuses_a_wrong_issuer_or_plain_http() {
    // Metadata only where the 401 points.
    let s = start(Knobs {
        prm_only_via_challenge: true,
        ..Knobs::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let browser = Browser::default();
    let auth = OAuth::new(settings(&s, dir.path(), &browser));
    assert_eq!(call(&auth, &s, "echo").await, Ok(200));

    // Metadata naming another issuer than the one the MCP server sent us to.
    let s = start(Knobs {
        metadata_issuer: Some("http://127.0.0.1:1".into()),
        ..Knobs::default()
    })
    .await;
    let auth = OAuth::new(settings(&s, dir.path(), &browser));
    let err = call(&auth, &s, "echo").await.unwrap_err();
    assert!(err.contains("names issuer http://127.0.0.1:1"), "{err}");
    assert_eq!(auth.authorizations(), 0);

    // An authorization server on plain http to another machine.
    let s = start(Knobs {
        authorization_server: Some("http://as.example".into()),
        ..Knobs::default()
    })
    .await;
    let auth = OAuth::new(settings(&s, dir.path(), &browser));
    let err = call(&auth, &s, "echo").await.unwrap_err();
    assert!(err.contains("plain http"), "{err}");
}

#[tokio::test]
async fn a_server_that_wants_the_exact_port_gets_it() {
    let s = start(Knobs {
        refuse_portless: true,
        ..Knobs::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let browser = Browser::default();
    let auth = OAuth::new(settings(&s, dir.path(), &browser));
    assert_eq!(call(&auth, &s, "echo").await, Ok(200));
    let rec = s.rec();
    assert_eq!(rec.registrations.len(), 2);
    assert_eq!(
        rec.registrations[0]["redirect_uris"],
        json!(["http://127.0.0.1/callback"])
    );
    let exact = rec.registrations[1]["redirect_uris"][0].as_str().unwrap();
    assert!(reqwest::Url::parse(exact).unwrap().port().is_some());
    assert_eq!(rec.authorizations[0]["redirect_uri"], exact);
}
