//! The providers against real HTTP on loopback (a token endpoint, an MCP endpoint) and the profile
//! file on disk: what the unit tests next to each provider cannot show alone.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use http::Method;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use mcpgate_connect::auth::{
    Audience, ClientCredentials, ClientCredentialsConfig, Hmac, Jwt, JwtConfig, KeyPair, ManualClock, TokenAuth,
};
use mcpgate_connect::profile::{Flags, ProfileError, resolve};
use mcpgate_connect::{Auth, AuthError, Secret};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tracing::instrument::WithSubscriber;

const CLIENT_SECRET: &str = "cs-very-secret-value";
const MCP_URL: &str = "https://mcp.example.com/mcp";

// ---- a token endpoint ------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Mode {
    /// Tokens `tok-1`, `tok-2`, … living `expires_in` seconds, each after `delay`.
    Issue { expires_in: u64, delay: Duration },
    /// 401 invalid_client, with a description that echoes the secret it was sent.
    InvalidClient,
}

/// A token request as received: its Authorization header and its form.
type Received = (Option<String>, Vec<(String, String)>);

struct Endpoint {
    mode: Mode,
    fetches: AtomicUsize,
    /// The Authorization header and the form of each request.
    seen: Mutex<Vec<Received>>,
}

async fn token(State(ep): State<Arc<Endpoint>>, headers: HeaderMap, body: Bytes) -> Response {
    let n = ep.fetches.fetch_add(1, Ordering::SeqCst) + 1;
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let authorization = headers.get("authorization").map(|v| v.to_str().unwrap().to_string());
    ep.seen.lock().unwrap().push((authorization, form));
    match ep.mode {
        Mode::Issue { expires_in, delay } => {
            tokio::time::sleep(delay).await;
            axum::Json(json!({"access_token": format!("tok-{n}"), "token_type": "Bearer", "expires_in": expires_in}))
                .into_response()
        }
        Mode::InvalidClient => (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({
                "error": "invalid_client",
                "error_description": format!("client authentication failed for secret {CLIENT_SECRET}")
            })),
        )
            .into_response(),
    }
}

async fn endpoint(mode: Mode) -> (String, Arc<Endpoint>) {
    let ep = Arc::new(Endpoint {
        mode,
        fetches: AtomicUsize::new(0),
        seen: Mutex::new(Vec::new()),
    });
    let app = Router::new().route("/token", post(token)).with_state(ep.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/token"), ep)
}

fn config(token_url: &str, token_auth: TokenAuth) -> ClientCredentialsConfig {
    ClientCredentialsConfig {
        token_url: token_url.into(),
        client_id: "agent 1".into(),
        client_secret: Secret::new(CLIENT_SECRET),
        scope: Some("tools:read tools:call".into()),
        resource: Some(MCP_URL.into()),
        token_auth,
    }
}

fn bearer(h: &http::HeaderMap) -> String {
    h["authorization"].to_str().unwrap().to_string()
}

fn form_value<'a>(form: &'a [(String, String)], key: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

// ---- client credentials ----------------------------------------------------------------------

#[tokio::test]
async fn basic_and_post_client_authentication_as_received() {
    let (url, ep) = endpoint(Mode::Issue {
        expires_in: 3600,
        delay: Duration::ZERO,
    })
    .await;
    let basic = ClientCredentials::new(config(&url, TokenAuth::Basic)).unwrap();
    assert_eq!(
        bearer(&basic.headers(&Method::POST, MCP_URL, b"{}").await.unwrap()),
        "Bearer tok-1"
    );
    let post = ClientCredentials::new(config(&url, TokenAuth::Post)).unwrap();
    assert_eq!(
        bearer(&post.headers(&Method::POST, MCP_URL, b"{}").await.unwrap()),
        "Bearer tok-2"
    );

    let seen = ep.seen.lock().unwrap();
    let (auth, form) = &seen[0];
    // RFC 6749 §2.3.1: id and secret form-urlencoded, then Basic.
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth.as_deref().unwrap().strip_prefix("Basic ").unwrap())
        .unwrap();
    assert_eq!(String::from_utf8(decoded).unwrap(), format!("agent+1:{CLIENT_SECRET}"));
    assert_eq!(form_value(form, "grant_type"), Some("client_credentials"));
    assert_eq!(form_value(form, "scope"), Some("tools:read tools:call"));
    assert_eq!(form_value(form, "resource"), Some(MCP_URL));
    assert_eq!(form_value(form, "client_id"), None);
    assert_eq!(form_value(form, "client_secret"), None);

    let (auth, form) = &seen[1];
    assert_eq!(*auth, None);
    assert_eq!(form_value(form, "grant_type"), Some("client_credentials"));
    assert_eq!(form_value(form, "client_id"), Some("agent 1"));
    assert_eq!(form_value(form, "client_secret"), Some(CLIENT_SECRET));
    assert_eq!(form_value(form, "resource"), Some(MCP_URL));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_requests_share_one_fetch() {
    let (url, ep) = endpoint(Mode::Issue {
        expires_in: 3600,
        delay: Duration::from_millis(200),
    })
    .await;
    let cc = Arc::new(ClientCredentials::new(config(&url, TokenAuth::Basic)).unwrap());
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let cc = cc.clone();
            tokio::spawn(async move { bearer(&cc.headers(&Method::POST, MCP_URL, b"{}").await.unwrap()) })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), "Bearer tok-1");
    }
    assert_eq!(cc.fetches(), 1);
    assert_eq!(ep.fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_two_second_token_is_renewed_before_it_expires() {
    let (url, ep) = endpoint(Mode::Issue {
        expires_in: 2,
        delay: Duration::ZERO,
    })
    .await;
    let cc = ClientCredentials::new(config(&url, TokenAuth::Basic)).unwrap();
    let start = std::time::Instant::now();
    assert_eq!(
        bearer(&cc.headers(&Method::POST, MCP_URL, b"").await.unwrap()),
        "Bearer tok-1"
    );
    // Margin = 2 s / 5 = 400 ms: still good at 1 s...
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        bearer(&cc.headers(&Method::POST, MCP_URL, b"").await.unwrap()),
        "Bearer tok-1"
    );
    // ...renewed at 1.7 s, before the server would refuse it at 2 s.
    tokio::time::sleep(Duration::from_millis(1700).saturating_sub(start.elapsed())).await;
    assert_eq!(
        bearer(&cc.headers(&Method::POST, MCP_URL, b"").await.unwrap()),
        "Bearer tok-2"
    );
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(ep.fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_refused_token_is_fetched_again_once() {
    let (url, _ep) = endpoint(Mode::Issue {
        expires_in: 3600,
        delay: Duration::ZERO,
    })
    .await;
    let cc = ClientCredentials::new(config(&url, TokenAuth::Basic)).unwrap();
    let first = cc.headers(&Method::POST, MCP_URL, b"").await.unwrap();
    assert!(cc.unauthorized(&first, Some("Bearer error=\"invalid_token\"")).await);
    assert_eq!(cc.fetches(), 2);
    let second = cc.headers(&Method::POST, MCP_URL, b"").await.unwrap();
    assert_eq!(bearer(&second), "Bearer tok-2");
    // A request that left with the old token: the new one is ready, no fetch.
    assert!(cc.unauthorized(&first, None).await);
    // The fresh token refused too: nothing more to try, and no third fetch.
    assert!(!cc.unauthorized(&second, None).await);
    assert_eq!(cc.fetches(), 2);
}

#[tokio::test]
async fn invalid_client_says_why_without_the_secret() {
    let (url, _ep) = endpoint(Mode::InvalidClient).await;
    let cc = ClientCredentials::new(config(&url, TokenAuth::Post)).unwrap();
    let e = cc.headers(&Method::POST, MCP_URL, b"").await.unwrap_err();
    let AuthError::Token(msg) = &e else { panic!("{e:?}") };
    assert!(
        msg.contains("token endpoint answered 401 invalid_client: client authentication failed for secret <redacted>"),
        "{msg}"
    );
    assert!(msg.contains("client authentication failed"), "{msg}");
    assert!(!e.to_string().contains(CLIENT_SECRET), "{e}");
    assert!(!format!("{e:?} {cc:?}").contains(CLIENT_SECRET));

    // Nobody listening: says which endpoint, still no secret.
    let dead = ClientCredentials::new(config("http://127.0.0.1:9/token", TokenAuth::Basic)).unwrap();
    let e = dead.headers(&Method::POST, MCP_URL, b"").await.unwrap_err().to_string();
    assert!(e.contains("http://127.0.0.1:9/token did not answer"), "{e}");
    assert!(!e.contains(CLIENT_SECRET));
}

// ---- the key pair ----------------------------------------------------------------------------

#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;
    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
    fn dispatch(&self) -> tracing::Dispatch {
        tracing::Dispatch::new(
            tracing_subscriber::fmt()
                .with_writer(self.clone())
                .with_ansi(false)
                .finish(),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_refusals_at_once_switch_to_the_fallback_once() {
    let logs = Logs::default();
    let pair = Arc::new(KeyPair::new(&Secret::new("primary-k"), Some(&Secret::new("fallback-k")), None).unwrap());
    let barrier = Arc::new(tokio::sync::Barrier::new(20));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (pair, barrier) = (pair.clone(), barrier.clone());
        let sent = pair.headers(&Method::POST, MCP_URL, b"{}").await.unwrap();
        assert_eq!(sent["x-api-key"], "primary-k");
        tasks.push(tokio::spawn(
            async move {
                barrier.wait().await;
                pair.unauthorized(&sent, None).await
            }
            .with_subscriber(logs.dispatch()),
        ));
    }
    for t in tasks {
        assert!(t.await.unwrap(), "every refused request is worth sending again");
    }
    let now = pair.headers(&Method::POST, MCP_URL, b"{}").await.unwrap();
    assert_eq!(now["x-api-key"], "fallback-k");
    let text = logs.text();
    assert_eq!(
        text.matches("the primary key was refused (401); using the fallback key")
            .count(),
        1,
        "{text}"
    );
    assert!(!text.contains("primary-k") && !text.contains("fallback-k"), "{text}");
}

#[tokio::test]
async fn both_keys_refused() {
    let logs = Logs::default();
    let pair = KeyPair::new(
        &Secret::new("primary-k"),
        Some(&Secret::new("fallback-k")),
        Some("X-Key"),
    )
    .unwrap();
    async {
        let first = pair.headers(&Method::POST, MCP_URL, b"").await.unwrap();
        assert!(pair.unauthorized(&first, None).await);
        let second = pair.headers(&Method::POST, MCP_URL, b"").await.unwrap();
        assert_eq!(second["x-key"], "fallback-k");
        assert!(!pair.unauthorized(&second, None).await);
        assert!(!pair.unauthorized(&second, None).await);
        assert!(!pair.unauthorized(&first, None).await);
    }
    .with_subscriber(logs.dispatch())
    .await;
    let text = logs.text();
    assert_eq!(text.matches("both keys were refused").count(), 1, "{text}");
    assert!(text.contains("ERROR"), "{text}");
    assert!(!text.contains("primary-k") && !text.contains("fallback-k"), "{text}");
}

// ---- JWT and HMAC ----------------------------------------------------------------------------

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

const JWT_SECRET: &str = "an-hs256-secret-of-at-least-32-bytes!";

fn decode(h: &http::HeaderMap, audience: &str) -> serde_json::Map<String, Value> {
    let token = bearer(h);
    let mut v = Validation::new(Algorithm::HS256);
    v.set_audience(&[audience]);
    v.set_required_spec_claims(&["exp", "aud"]);
    jsonwebtoken::decode::<serde_json::Map<String, Value>>(
        token.strip_prefix("Bearer ").unwrap(),
        &DecodingKey::from_secret(JWT_SECRET.as_bytes()),
        &v,
    )
    .unwrap()
    .claims
}

fn env(name: &str) -> Option<String> {
    match name {
        "JWT_SECRET" => Some(JWT_SECRET.into()),
        "HMAC_SECRET" => Some("hmac-shared-secret".into()),
        "STAGING_KEY" => Some("staging-key-value".into()),
        "STAGING_KEY_2" => Some("staging-key-2-value".into()),
        "OTHER_KEY" => Some("other-key-value".into()),
        _ => None,
    }
}

#[tokio::test]
async fn minted_jwt_claims_audience_and_expiry() {
    let flags = Flags {
        url: Some(MCP_URL.into()),
        jwt_secret: Some("env:JWT_SECRET".into()),
        jwt_claims: vec!["user_id=u1".into(), "tenant_id=acme".into()],
        jwt_ttl: Some("90s".into()),
        ..Flags::default()
    };
    let r = resolve(flags, &env, None).unwrap();
    let h = r.auth.headers(&Method::POST, &r.url, b"{}").await.unwrap();
    let c = decode(&h, MCP_URL);
    assert_eq!(c["user_id"], "u1");
    assert_eq!(c["tenant_id"], "acme");
    assert_eq!(c["aud"], MCP_URL);
    let (iat, exp) = (c["iat"].as_u64().unwrap(), c["exp"].as_u64().unwrap());
    assert_eq!(exp - iat, 90);
    assert!(iat.abs_diff(unix_now()) <= 2);

    // Renewed inside the margin (90 s / 5 = 18 s), not before.
    let clock = Arc::new(ManualClock::at(1_800_000_000, 0));
    let jwt = Jwt::with_clock(
        JwtConfig {
            secret: Secret::new(JWT_SECRET),
            claims: Default::default(),
            ttl: Duration::from_secs(90),
            audience: Audience::RequestUrl,
        },
        clock.clone(),
    )
    .unwrap();
    let first = jwt.headers(&Method::POST, MCP_URL, b"").await.unwrap();
    clock.advance(Duration::from_secs(71));
    assert_eq!(
        jwt.headers(&Method::POST, MCP_URL, b"").await.unwrap(),
        first,
        "19 s left: kept"
    );
    clock.advance(Duration::from_secs(1));
    let renewed = jwt.headers(&Method::POST, MCP_URL, b"").await.unwrap();
    assert_eq!(decode(&renewed, MCP_URL)["exp"], 1_800_000_000u64 + 72 + 90);
    assert_eq!(jwt.mints(), 2);
}

#[tokio::test]
async fn hmac_verifies_and_never_repeats_timestamp_and_body() {
    let flags = Flags {
        url: Some(MCP_URL.into()),
        hmac_secret: Some("env:HMAC_SECRET".into()),
        hmac_key_id: Some("agent-1".into()),
        ..Flags::default()
    };
    let r = resolve(flags, &env, None).unwrap();
    let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..2 {
        let h = r.auth.headers(&Method::POST, &r.url, body).await.unwrap();
        assert_eq!(h["x-api-key"], "agent-1");
        let ts = h["x-timestamp"].to_str().unwrap();
        mcpgate_core::hmac::verify(
            b"hmac-shared-secret",
            ts,
            body,
            h["x-signature"].to_str().unwrap(),
            unix_now() as i64,
            300,
        )
        .unwrap();
        assert!(seen.insert(ts.to_string()), "the same (timestamp, body) signed twice");
    }
    // The library API directly, custom key-id header.
    let hmac = Hmac::new(Secret::new("s"), "k1", Some("X-Key-Id")).unwrap();
    assert_eq!(
        hmac.headers(&Method::GET, MCP_URL, b"").await.unwrap()["x-key-id"],
        "k1"
    );
}

// ---- profiles --------------------------------------------------------------------------------

fn write_profile(dir: &Path, text: &str, mode: u32) {
    let path = dir.join("connect.toml");
    std::fs::write(&path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    #[cfg(not(unix))]
    let _ = mode;
}

const PROFILES: &str = r#"
[profiles.staging]
url = "https://staging.example.com/mcp"
tenant = "acme"
headers = { "X-Env" = "staging", "X-API-Version" = "2" }
key = "env:STAGING_KEY"
fallback_key = "env:STAGING_KEY_2"

[profiles.production]
url = "https://prod.example.com/mcp"
bearer = "env:STAGING_KEY"
"#;

fn with_profile(name: &str) -> Flags {
    Flags {
        profile: Some(name.into()),
        ..Flags::default()
    }
}

#[tokio::test]
async fn a_profile_and_flags_over_it() {
    let dir = tempfile::tempdir().unwrap();
    write_profile(dir.path(), PROFILES, 0o600);
    let r = resolve(with_profile("staging"), &env, Some(dir.path())).unwrap();
    assert_eq!(r.url, "https://staging.example.com/mcp");
    assert_eq!(r.profile.as_deref(), Some("staging"));
    let h = r.auth.headers(&Method::POST, &r.url, b"").await.unwrap();
    assert_eq!(h["x-tenant-id"], "acme");
    assert_eq!(h["x-env"], "staging");
    assert_eq!(h["x-api-key"], "staging-key-value");

    // Flags replace fields and merge headers by name.
    let flags = Flags {
        url: Some("http://127.0.0.1:8080/mcp".into()),
        tenant: Some("globex".into()),
        headers: vec!["x-env: local".into()],
        key: Some("env:OTHER_KEY".into()),
        retry_403: true,
        ..with_profile("staging")
    };
    let r = resolve(flags, &env, Some(dir.path())).unwrap();
    assert_eq!(r.url, "http://127.0.0.1:8080/mcp");
    assert!(r.retry_403);
    let h = r.auth.headers(&Method::POST, &r.url, b"").await.unwrap();
    assert_eq!(h["x-tenant-id"], "globex");
    assert_eq!(h["x-env"], "local");
    assert_eq!(h["x-api-version"], "2");
    assert_eq!(h["x-api-key"], "other-key-value");

    // A flag choosing Authorization replaces the profile's choice instead of conflicting with it.
    let flags = Flags {
        jwt_secret: Some("env:JWT_SECRET".into()),
        jwt_audience: Some("none".into()),
        ..with_profile("production")
    };
    let r = resolve(flags, &env, Some(dir.path())).unwrap();
    assert!(r.auth.describe().starts_with("HS256 JWT"), "{}", r.auth.describe());

    // MCPGATE_PROFILE when --profile is not given; --profile over it.
    let env_prod = |n: &str| match n {
        "MCPGATE_PROFILE" => Some("production".to_string()),
        other => env(other),
    };
    let r = resolve(Flags::default(), &env_prod, Some(dir.path())).unwrap();
    assert_eq!(r.url, "https://prod.example.com/mcp");
    assert_eq!(r.profile.as_deref(), Some("production"));
    let r = resolve(with_profile("staging"), &env_prod, Some(dir.path())).unwrap();
    assert_eq!(r.profile.as_deref(), Some("staging"));

    // The directory from MCPGATE_CONFIG_DIR.
    let d = dir.path().to_str().unwrap().to_string();
    let env_dir = move |n: &str| match n {
        "MCPGATE_CONFIG_DIR" => Some(d.clone()),
        other => env(other),
    };
    assert!(resolve(with_profile("staging"), &env_dir, None).is_ok());
}

fn refused(text: &str, mode: u32, profile: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    write_profile(dir.path(), text, mode);
    let e: ProfileError = resolve(with_profile(profile), &env, Some(dir.path())).unwrap_err();
    e.to_string()
}

#[test]
fn profile_mistakes_are_refused_clearly() {
    // A secret written in the file, in the profile used or another.
    let e = refused(
        "[profiles.dev]\nurl = \"https://x/mcp\"\n[profiles.ci]\nkey = \"sk-live-123456\"\n",
        0o600,
        "dev",
    );
    assert!(
        e.contains("profiles.ci.key: secrets are never written in this file"),
        "{e}"
    );
    assert!(!e.contains("sk-live-123456"), "{e}");
    // A number where a secret goes: refused without quoting it.
    let e = refused("[profiles.dev]\nclient_secret = 98765432\n", 0o600, "dev");
    assert!(e.contains("env:NAME") && !e.contains("98765432"), "{e}");
    // A credential header written inline.
    let e = refused(
        "[profiles.dev]\nheaders = { \"X-Auth-Token\" = \"tok-abcdef\" }\n",
        0o600,
        "dev",
    );
    assert!(
        e.contains("profiles.dev.headers.X-Auth-Token") && !e.contains("tok-abcdef"),
        "{e}"
    );
    // Unknown fields, with the line and without the line's text.
    let e = refused(
        "[profiles.dev]\nurl = \"https://x/mcp\"\napi_key = \"sk-live-999\"\n",
        0o600,
        "dev",
    );
    assert!(e.contains("line 3") && e.contains("unknown field `api_key`"), "{e}");
    assert!(!e.contains("sk-live-999"), "{e}");
    // An unknown profile lists the known ones.
    let e = refused(PROFILES, 0o600, "prod");
    assert!(
        e.contains("profile \"prod\" is not in") && e.contains("known profiles: production, staging"),
        "{e}"
    );
    // No file.
    let dir = tempfile::tempdir().unwrap();
    let e = resolve(with_profile("dev"), &env, Some(dir.path()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("connect.toml: not found"), "{e}");
    // Conflicts inside one profile.
    let e = refused(
        "[profiles.dev]\nurl = \"https://x/mcp\"\nbearer = \"env:STAGING_KEY\"\njwt_secret = \"env:JWT_SECRET\"\n",
        0o600,
        "dev",
    );
    assert!(
        e.contains("--bearer and --jwt-secret all set the Authorization header"),
        "{e}"
    );
}

#[cfg(unix)]
#[test]
fn a_profile_others_can_write_is_refused() {
    for mode in [0o666, 0o620, 0o602] {
        let e = refused(PROFILES, mode, "staging");
        assert!(
            e.contains("is writable by other users") && e.contains("chmod go-w"),
            "{mode:o}: {e}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    write_profile(dir.path(), PROFILES, 0o644);
    assert!(
        resolve(with_profile("staging"), &env, Some(dir.path())).is_ok(),
        "readable is fine: no secrets in it"
    );
}

/// A profile in a directory others can write to could be swapped for theirs: refused, unless the
/// directory is sticky (as /tmp), where only the owner may replace a file.
#[cfg(unix)]
#[test]
fn a_profile_in_a_directory_others_can_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    write_profile(dir.path(), PROFILES, 0o600);
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let e = resolve(with_profile("staging"), &env, Some(dir.path()))
        .unwrap_err()
        .to_string();
    assert!(e.contains("which other users can write to"), "{e}");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    assert!(resolve(with_profile("staging"), &env, Some(dir.path())).is_ok());
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
}

#[tokio::test]
async fn client_credentials_from_flags_use_the_mcp_url_as_resource() {
    let (url, ep) = endpoint(Mode::Issue {
        expires_in: 60,
        delay: Duration::ZERO,
    })
    .await;
    let env_cs = |n: &str| (n == "CS").then(|| CLIENT_SECRET.to_string());
    let flags = Flags {
        url: Some(MCP_URL.into()),
        client_credentials: true,
        token_url: Some(url.clone()),
        client_id: Some("agent".into()),
        client_secret: Some("env:CS".into()),
        token_auth: Some("post".into()),
        ..Flags::default()
    };
    let r = resolve(flags, &env_cs, None).unwrap();
    assert_eq!(
        bearer(&r.auth.headers(&Method::POST, &r.url, b"").await.unwrap()),
        "Bearer tok-1"
    );
    {
        let seen = ep.seen.lock().unwrap();
        assert_eq!(form_value(&seen[0].1, "resource"), Some(MCP_URL));
        assert_eq!(form_value(&seen[0].1, "scope"), None);
        assert_eq!(form_value(&seen[0].1, "client_id"), Some("agent"));
    }

    // The same from a profile, with `resource = "none"` for a server that refuses it.
    let dir = tempfile::tempdir().unwrap();
    write_profile(
        dir.path(),
        &format!(
            "[profiles.m2m]\nurl = \"{MCP_URL}\"\nclient_credentials = true\ntoken_url = \"{url}\"\n\
             client_id = \"agent\"\nclient_secret = \"env:CS\"\nscope = \"mcp\"\nresource = \"none\"\n"
        ),
        0o600,
    );
    let r = resolve(with_profile("m2m"), &env_cs, Some(dir.path())).unwrap();
    assert_eq!(
        bearer(&r.auth.headers(&Method::POST, &r.url, b"").await.unwrap()),
        "Bearer tok-2"
    );
    let seen = ep.seen.lock().unwrap();
    assert_eq!(form_value(&seen[1].1, "resource"), None);
    assert_eq!(form_value(&seen[1].1, "scope"), Some("mcp"));
    assert!(seen[1].0.as_deref().unwrap().starts_with("Basic "));
}

// ---- rmcp's transport through ConnectClient ----------------------------------------------------

#[cfg(feature = "rmcp")]
mod rmcp_client {
    use super::*;
    use mcpgate_connect::auth::Chain;
    use mcpgate_connect::client::ConnectClient;
    use rmcp::model::ClientJsonRpcMessage;
    use rmcp::transport::streamable_http_client::{StreamableHttpClient, StreamableHttpPostResponse};

    #[derive(Default)]
    struct Mcp {
        /// (X-API-Key, body) of each request.
        seen: Mutex<Vec<(String, Vec<u8>)>>,
    }

    async fn mcp(State(m): State<Arc<Mcp>>, headers: HeaderMap, body: Bytes) -> Response {
        let key = headers["x-api-key"].to_str().unwrap().to_string();
        m.seen.lock().unwrap().push((key.clone(), body.to_vec()));
        if key != "key-2" {
            return (StatusCode::UNAUTHORIZED, "no").into_response();
        }
        let signed = mcpgate_core::hmac::verify(
            b"hmac-shared-secret",
            headers["x-timestamp"].to_str().unwrap(),
            &body,
            headers["x-signature"].to_str().unwrap(),
            unix_now() as i64,
            300,
        );
        if signed.is_err() {
            return (StatusCode::UNAUTHORIZED, "bad signature").into_response();
        }
        let req: Value = serde_json::from_slice(&body).unwrap();
        axum::Json(json!({"jsonrpc": "2.0", "id": req["id"], "result": {}})).into_response()
    }

    /// A 401 to the primary key: the call is sent again with the fallback, signed afresh over
    /// the exact bytes that reach the server.
    #[tokio::test]
    async fn a_refused_post_is_sent_again_with_the_fallback_and_signed() {
        let state = Arc::new(Mcp::default());
        let app = Router::new().route("/mcp", post(mcp)).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/mcp", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let auth: Arc<dyn Auth> = Arc::new(Chain(vec![
            Arc::new(KeyPair::new(&Secret::new("key-1"), Some(&Secret::new("key-2")), None).unwrap()),
            Arc::new(Hmac::new(Secret::new("hmac-shared-secret"), "agent-1", Some("X-Key-Id")).unwrap()),
        ]));
        let client = ConnectClient::new(auth);
        let msg: ClientJsonRpcMessage = serde_json::from_value(json!({
            "jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": "héllo", "n": 1}}
        }))
        .unwrap();
        let answer = client
            .post_message(url.as_str().into(), msg.clone(), None, None, Default::default())
            .await
            .unwrap();
        assert!(matches!(answer, StreamableHttpPostResponse::Json(..)), "{answer:?}");
        let seen = state.seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].0, "key-1");
        assert_eq!(seen[1].0, "key-2");
        assert_eq!(seen[1].1, serde_json::to_vec(&msg).unwrap());
    }
}
