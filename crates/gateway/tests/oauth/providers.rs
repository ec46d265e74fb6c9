//! Signing in through an OpenID Provider (issue #12): the authorization server's page offers
//! the provider; start → provider → callback signs the browser in; the identity rules decide who
//! they are; the grant and the token carry it. And the negative table: state missing, wrong,
//! reused, expired; nonce, audience, issuer, signature and expiry of the ID token; unverified
//! e-mail; no rule; provider errors and outages (a page, never a 500); `return_to` elsewhere.
//! The provider is an in-process stand-in on loopback whose ID tokens each test can spoil.

use crate::*;
use axum::Router;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get as route_get, post as route_post};
use mcpgate_testkit::fake::LocalServer;
use mcpgate_testkit::harness::*;
use mcpgate_testkit::keys::{TestKey, keys};
use mcpgate_testkit::logs::{LogCapture, find_leaks};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SECRET: &str = "provider-client-secret-0123456789";

/// How the next ID token is spoiled.
#[derive(Clone, Default)]
struct Spoil {
    aud: Option<&'static str>,
    iss: Option<&'static str>,
    nonce: Option<&'static str>,
    unpublished_key: bool,
    expired: bool,
    token_error: bool,
}

#[derive(Default)]
struct Idp {
    base: Mutex<String>,
    /// code → (login, nonce, challenge)
    codes: Mutex<HashMap<String, (String, String, String)>>,
    spoil: Mutex<Spoil>,
    issued: Mutex<Vec<String>>,
    /// Refresh tokens the gateway renewed with.
    refreshes: Mutex<Vec<String>>,
    /// Seconds added to the time its ID tokens are issued at (the gateway's clock moved).
    offset: Mutex<i64>,
}

fn account(login: &str) -> Value {
    match login {
        "ana" => json!({"email": "ana@example.com", "email_verified": true, "groups": ["staff", "mcp-users"]}),
        "pat" => json!({"email": "pat@partner.example", "email_verified": false, "groups": []}),
        // No e-mail in the ID token: userinfo has it (for uma; for mal it names someone else).
        "uma" | "mal" => json!({"groups": []}),
        _ => json!({"email": "eve@evil.example", "email_verified": true, "groups": ["staff"]}),
    }
}

async fn discovery(State(s): State<Arc<Idp>>) -> axum::Json<Value> {
    let b = s.base.lock().unwrap().clone();
    axum::Json(json!({
        "issuer": b, "authorization_endpoint": format!("{b}/auth"),
        "token_endpoint": format!("{b}/token"), "jwks_uri": format!("{b}/jwks"),
        "userinfo_endpoint": format!("{b}/userinfo"),
    }))
}

async fn userinfo(headers: http::HeaderMap) -> axum::Json<Value> {
    let bearer = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
    axum::Json(match bearer {
        "Bearer provider-access-uma-1" => {
            json!({"sub": "sub-uma", "email": "uma@partner.example", "email_verified": true})
        }
        "Bearer provider-access-mal-1" => {
            json!({"sub": "sub-uma", "email": "mal@partner.example", "email_verified": true})
        }
        _ => json!({"sub": "nobody"}),
    })
}

async fn jwks() -> axum::Json<Value> {
    axum::Json(json!({"keys": [keys().rsa.jwk]}))
}

async fn auth(State(s): State<Arc<Idp>>, Query(q): Query<HashMap<String, String>>) -> impl IntoResponse {
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["response_type"], "code");
    assert!(q["scope"].split(' ').any(|x| x == "openid"));
    let code = format!("code-{}", s.codes.lock().unwrap().len());
    let login = q.get("login_hint").cloned().unwrap_or_else(|| "ana".into());
    s.codes
        .lock()
        .unwrap()
        .insert(code.clone(), (login, q["nonce"].clone(), q["code_challenge"].clone()));
    s.issued.lock().unwrap().push(code.clone());
    Redirect::to(&format!("{}?code={code}&state={}", q["redirect_uri"], enc(&q["state"])))
}

async fn token(State(s): State<Arc<Idp>>, headers: http::HeaderMap, body: String) -> impl IntoResponse {
    let f: HashMap<String, String> = form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("gw:{SECRET}"))
    );
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(basic.as_str()) {
        return (
            http::StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "invalid_client"})),
        );
    }
    if f.get("grant_type").map(String::as_str) == Some("refresh_token") {
        // Renewals of the provider's own tokens (held for the upstream): `…-refresh-N` gives
        // access token N+1, unless the provider has been told to refuse.
        let n = f["refresh_token"]
            .rsplit_once("-refresh-")
            .and_then(|(_, n)| n.parse::<u32>().ok());
        let sp = s.spoil.lock().unwrap().clone();
        let (Some(n), false) = (n, sp.token_error) else {
            return (
                http::StatusCode::BAD_REQUEST,
                axum::Json(json!({"error": "invalid_grant"})),
            );
        };
        let login = f["refresh_token"]
            .split("-refresh-")
            .next()
            .unwrap()
            .trim_start_matches("provider-");
        s.refreshes.lock().unwrap().push(f["refresh_token"].clone());
        return (
            http::StatusCode::OK,
            axum::Json(json!({
                "access_token": format!("provider-access-{login}-{}", n + 1),
                "refresh_token": format!("provider-{login}-refresh-{}", n + 1),
                "expires_in": 3600, "token_type": "Bearer",
            })),
        );
    }
    let Some((login, nonce, challenge)) = s.codes.lock().unwrap().remove(&f["code"]) else {
        return (
            http::StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_grant"})),
        );
    };
    if crate::challenge(&f["code_verifier"]) != challenge {
        return (
            http::StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_grant"})),
        );
    }
    let sp = s.spoil.lock().unwrap().clone();
    if sp.token_error {
        return (
            http::StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid_grant"})),
        );
    }
    let base = s.base.lock().unwrap().clone();
    let now = mcpgate_testkit::time::now_s() + *s.offset.lock().unwrap();
    let mut claims = account(&login);
    claims["sub"] = json!(format!("sub-{login}"));
    claims["iss"] = json!(sp.iss.map(str::to_string).unwrap_or(base));
    claims["aud"] = json!(sp.aud.unwrap_or("gw"));
    claims["nonce"] = json!(sp.nonce.map(str::to_string).unwrap_or(nonce));
    claims["iat"] = json!(now);
    claims["exp"] = json!(if sp.expired { now - 600 } else { now + 300 });
    let key: &TestKey = if sp.unpublished_key { &keys().rsa2 } else { &keys().rsa };
    // The unpublished key claims the published key's kid.
    let id_token = key.sign_as(key.alg, Some(&keys().rsa.kid), &claims);
    s.issued.lock().unwrap().push(id_token.clone());
    (
        http::StatusCode::OK,
        axum::Json(json!({
            "access_token": format!("provider-access-{login}-1"),
            "refresh_token": format!("provider-{login}-refresh-1"),
            "expires_in": 3600, "token_type": "Bearer", "id_token": id_token,
        })),
    )
}

async fn idp() -> (Arc<Idp>, LocalServer) {
    let s = Arc::new(Idp::default());
    let app = Router::new()
        .route("/.well-known/openid-configuration", route_get(discovery))
        .route("/jwks", route_get(jwks))
        .route("/auth", route_get(auth))
        .route("/token", route_post(token))
        .route("/userinfo", route_get(userinfo))
        .with_state(s.clone());
    let server = LocalServer::start(app).await;
    *s.base.lock().unwrap() = server.base.clone();
    (s, server)
}

fn config(issuer: &str, down: &str) -> String {
    format!(
        "{TOML}\n[[oauth.providers]]\nkind = \"oidc\"\nid = \"corp\"\nname = \"Corp SSO\"\nissuer = \"{issuer}\"\n\
         client_id = \"gw\"\nclient_secret_env = \"CORP_SECRET\"\n\
         [[oauth.providers]]\nkind = \"oidc\"\nid = \"down\"\nissuer = \"{down}\"\nclient_id = \"gw\"\n\
         [[oauth.identities]]\nprovider = \"corp\"\nclaim = \"groups\"\nvalue = \"mcp-users\"\npermissions = [\"read\", \"tools:echo\"]\nuser_id = \"{{email}}\"\n\
         [[oauth.identities]]\nprovider = \"corp\"\nemail_domain = \"partner.example\"\npermissions = [\"read\"]\nuser_id = \"{{email}}\"\n"
    )
}

fn set_cookie(r: &Resp, name: &str) -> Option<String> {
    r.headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with(&format!("{name}=")) && !c.starts_with(&format!("{name}=;")))
        .map(|c| c.split(';').next().unwrap().to_string())
}

struct SignIn {
    /// The callback URL (path and query) the provider sent the browser to.
    callback: String,
    /// The sign-in cookie pair.
    cookie: String,
}

/// Start → the provider (really, on loopback) → the callback URL, not yet visited.
async fn to_provider(gw: &Gw, start: &str, login: &str) -> SignIn {
    let r = get(gw, start, &[]).await;
    assert_eq!(r.status, 303, "{}", r.text);
    let cookie = set_cookie(&r, "mcpgate_signin").expect("a sign-in cookie");
    let to = format!("{}&login_hint={login}", r.header("location").unwrap());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let back = client.get(&to).send().await.unwrap();
    let loc = back.headers()["location"].to_str().unwrap().to_string();
    let callback = loc.strip_prefix("http://localhost").unwrap_or(&loc).to_string();
    assert!(callback.starts_with("/auth/oauth/callback?"), "{callback}");
    SignIn { callback, cookie }
}

async fn finish(gw: &Gw, s: &SignIn) -> Resp {
    get(gw, &s.callback, &[("cookie", &s.cookie)]).await
}

#[tokio::test]
async fn an_oidc_sign_in_ends_in_a_token_for_that_person() {
    let logs = LogCapture::install();
    let (provider, _server) = idp().await;
    let base = provider.base.lock().unwrap().clone();
    let down = dead_url("").await;
    let mut setup = Setup::new(&config(&base, &down));
    setup.env("CORP_SECRET", SECRET);
    let gw = setup.start().await;
    let client = public_client(&gw).await;

    // The page offers the provider, with a way back to this very request.
    let q = authorize_query(&client, REDIRECT, &[]);
    let page = get(&gw, &q, &[]).await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("Sign in with Corp SSO"), "{}", page.text);
    let href = page
        .text
        .split("class=\"provider\" href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    let start = href.strip_prefix("http://localhost").unwrap().to_string();
    assert!(
        start.starts_with("/auth/oauth/corp/start?return_to=%2Fauthorize%3F"),
        "{start}"
    );

    let s = to_provider(&gw, &start, "ana").await;
    let r = finish(&gw, &s).await;
    assert_eq!(r.status, 303, "{}", r.text);
    assert_eq!(
        r.header("location"),
        Some(q.as_str()),
        "back to the authorization request"
    );
    let session = set_cookie(&r, "mcpgate_session").expect("signed in");
    // The same answer again: refused (each sign-in is answered once).
    assert_eq!(finish(&gw, &s).await.status, 400);

    // Back at /authorize signed in: the consent page names the person; allowing gives a code.
    let me = get(&gw, "/auth/me", &[("cookie", &session)]).await;
    assert_eq!(me.body["user_id"], "ana@example.com", "{}", me.text);
    assert_eq!(me.body["signed_in_with"], "provider");
    // Recorded as a user (what `mcpgate users list` shows).
    let u = mcpgate_store::UserStore::get_user(gw.store(), "ana@example.com")
        .await
        .unwrap()
        .expect("the person is recorded");
    assert_eq!(
        (u.sign_ins, u.via.as_str(), u.email.as_deref()),
        (1, "provider:corp:sub-ana", Some("ana@example.com"))
    );
    assert_eq!(u.first_sign_in, u.last_sign_in);
    let page = get(&gw, &q, &[("cookie", &session)]).await;
    assert!(
        page.text.contains("signed in as <strong><bdi>ana@example.com</bdi>"),
        "{}",
        page.text
    );
    let t = allow_and_exchange(&gw, &client, &page, &session, "read tools:echo").await;
    assert_eq!(t.body["scope"], "read tools:echo");
    let at = t.body["access_token"].as_str().unwrap().to_string();
    let who = gw.whoami(&[("authorization", &format!("Bearer {at}"))]).await;
    assert_eq!(who["user_id"], "ana@example.com", "{who}");
    assert_eq!(who["auth_method"], "oauth");

    let mut secrets = vec![
        ("provider client secret".to_string(), SECRET.to_string()),
        ("session".to_string(), session.split_once('=').unwrap().1.to_string()),
        (
            "sign-in cookie".to_string(),
            s.cookie.split_once('=').unwrap().1.to_string(),
        ),
        ("access token".to_string(), at),
    ];
    for (i, x) in provider.issued.lock().unwrap().iter().enumerate() {
        secrets.push((format!("provider code or id token {i}"), x.clone()));
    }
    let audit = audit_text(&gw.audit().await);
    let leaks = find_leaks(&secrets, &[("logs", &logs.text()), ("audit", &audit)]);
    assert!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n\n"));
}

#[tokio::test]
async fn the_sign_in_negative_table() {
    let (provider, _server) = idp().await;
    let base = provider.base.lock().unwrap().clone();
    let down = dead_url("").await;
    let mut setup = Setup::new(&config(&base, &down)).manual_clock();
    setup.env("CORP_SECRET", SECRET);
    let gw = setup.start().await;
    let start = "/auth/oauth/corp/start?return_to=%2Fauth%2Fme";
    let refused = |r: &Resp, status: u16, words: &str| {
        assert_eq!(r.status, status, "{}", r.text);
        assert!(r.text.contains(words), "{words:?} not in {}", r.text);
        assert!(set_cookie(r, "mcpgate_session").is_none(), "signed in anyway");
    };

    // State: missing, wrong, from another browser (no cookie), expired.
    let s = to_provider(&gw, start, "ana").await;
    let no_state = s.callback.split("&state=").next().unwrap().to_string();
    refused(
        &get(&gw, &no_state, &[("cookie", &s.cookie)]).await,
        400,
        "state mismatch",
    );
    let wrong = format!("{no_state}&state=abc");
    refused(&get(&gw, &wrong, &[("cookie", &s.cookie)]).await, 400, "state mismatch");
    refused(&get(&gw, &s.callback, &[]).await, 400, "not started in this browser");
    let other = to_provider(&gw, start, "ana").await;
    refused(
        &get(&gw, &s.callback, &[("cookie", &other.cookie)]).await,
        400,
        "state mismatch",
    );

    // The ID token spoiled, one way at a time: not trusted (502 page, not signed in).
    for spoil in [
        Spoil {
            nonce: Some("another-nonce"),
            ..Spoil::default()
        },
        Spoil {
            aud: Some("someone-else"),
            ..Spoil::default()
        },
        Spoil {
            iss: Some("http://127.0.0.1:1"),
            ..Spoil::default()
        },
        Spoil {
            unpublished_key: true,
            ..Spoil::default()
        },
        Spoil {
            expired: true,
            ..Spoil::default()
        },
        Spoil {
            token_error: true,
            ..Spoil::default()
        },
    ] {
        *provider.spoil.lock().unwrap() = spoil;
        let s = to_provider(&gw, start, "ana").await;
        refused(&finish(&gw, &s).await, 502, "could not be trusted");
    }
    *provider.spoil.lock().unwrap() = Spoil::default();

    // No rule admits eve; pat's address is in an admitted domain but not verified.
    for who in ["eve", "pat"] {
        let s = to_provider(&gw, start, who).await;
        refused(&finish(&gw, &s).await, 403, "not allowed to use this gateway");
    }
    // The provider said no.
    let s = to_provider(&gw, start, "ana").await;
    let state = s.callback.split("&state=").nth(1).unwrap();
    let denied = format!("/auth/oauth/callback?error=access_denied&state={state}");
    refused(
        &get(&gw, &denied, &[("cookie", &s.cookie)]).await,
        403,
        "did not let you sign in",
    );
    // A provider that cannot be reached: a page that says so.
    refused(&get(&gw, "/auth/oauth/down/start", &[]).await, 502, "cannot be reached");
    // return_to elsewhere, an unknown provider.
    for bad in [
        "https%3A%2F%2Fevil.example%2F",
        "%2F%2Fevil.example",
        "%2F%5Cevil.example",
    ] {
        let r = get(&gw, &format!("/auth/oauth/corp/start?return_to={bad}"), &[]).await;
        refused(&r, 400, "not on this gateway");
    }
    refused(
        &get(&gw, "/auth/oauth/nope/start", &[]).await,
        404,
        "no such sign-in provider",
    );

    // And it still works after all that.
    let s = to_provider(&gw, start, "ana").await;
    let r = finish(&gw, &s).await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/auth/me"));

    // Last (the gateway's clock runs ahead of the provider's after this): too late.
    let late = to_provider(&gw, start, "ana").await;
    gw.advance(Duration::from_secs(601));
    refused(&finish(&gw, &late).await, 400, "longer than 10 minutes");
}

/// An ID token without an e-mail: the provider's userinfo answer supplies it, for the same
/// subject only.
#[tokio::test]
async fn an_e_mail_only_userinfo_gives_is_taken_for_the_same_subject() {
    let (provider, _server) = idp().await;
    let base = provider.base.lock().unwrap().clone();
    let down = dead_url("").await;
    let mut setup = Setup::new(&config(&base, &down));
    setup.env("CORP_SECRET", SECRET);
    let gw = setup.start().await;
    let start = "/auth/oauth/corp/start?return_to=%2Fauth%2Fme";
    let s = to_provider(&gw, start, "uma").await;
    let r = finish(&gw, &s).await;
    assert_eq!(r.status, 303, "{}", r.text);
    let session = set_cookie(&r, "mcpgate_session").expect("signed in through the userinfo e-mail");
    let me = get(&gw, "/auth/me", &[("cookie", &session)]).await;
    assert_eq!(me.body["user_id"], "uma@partner.example", "{}", me.text);
    // Userinfo speaking of another subject is not believed: no e-mail, no rule, no access.
    let s = to_provider(&gw, start, "mal").await;
    let r = finish(&gw, &s).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(set_cookie(&r, "mcpgate_session").is_none());
}

/// Signs `login` in at the provider and through the consent page: the session cookie pair and
/// an access token of ours for `client` with `scope`.
async fn signed_in_token(gw: &Gw, client: &str, login: &str, scope: &str) -> (String, String) {
    let q = authorize_query(client, REDIRECT, &[("scope", scope)]);
    let start = format!("/auth/oauth/corp/start?return_to={}", enc(&q));
    let s = to_provider(gw, &start, login).await;
    let r = finish(gw, &s).await;
    assert_eq!(r.status, 303, "{}", r.text);
    let session = set_cookie(&r, "mcpgate_session").expect("signed in");
    let page = get(gw, &q, &[("cookie", &session)]).await;
    assert_eq!(page.status, 200, "{}", page.text);
    let t = allow_and_exchange(gw, client, &page, &session, scope).await;
    (session, t.body["access_token"].as_str().unwrap().to_string())
}

/// Allows `scope` on the consent `page` as the signed-in browser (`session`), and exchanges the
/// code: the token response.
async fn allow_and_exchange(gw: &Gw, client: &str, page: &Resp, session: &str, scope: &str) -> Resp {
    let csrf = set_cookie(page, "mcpgate_csrf").unwrap();
    let ch = challenge(VERIFIER);
    let body = form(&[
        ("response_type", "code"),
        ("client_id", client),
        ("redirect_uri", REDIRECT),
        ("code_challenge", &ch),
        ("code_challenge_method", "S256"),
        ("state", "st-123"),
        ("resource", RESOURCE),
        ("csrf", csrf.split_once('=').unwrap().1),
        ("decision", "allow"),
        ("scope", scope),
    ]);
    let r = post_form(
        gw,
        "/authorize",
        &body,
        &[
            ("cookie", &format!("{csrf}; {session}")),
            ("origin", "http://localhost"),
        ],
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.text);
    let code = location_params(&r)["code"].clone();
    let t = post_form(
        gw,
        "/token",
        &form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", client),
        ]),
        &[],
    )
    .await;
    assert_eq!(t.status, 200, "{}", t.text);
    t
}

/// The `Authorization` header of the last tools/call the upstream received.
fn upstream_authorization(rec: &mcpgate_testkit::recorder::Recorder) -> Option<String> {
    rec.requests()
        .iter()
        .rev()
        .find(|r| r.rpc_method.as_deref() == Some("tools/call"))
        .and_then(|r| {
            r.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
                .map(|(_, v)| v.clone())
        })
}

const MAX_AGE: i64 = 7 * 86_400;

/// `delegation.source = "provider:corp"`: the upstream is called with the person's own token at
/// the provider (kept sealed at sign-in, renewed before it expires, forgotten when the provider
/// refuses to renew it), never with the caller's mcpgate token; without one, the refusal says
/// where to sign in.
#[tokio::test]
async fn the_person_s_own_provider_token_goes_upstream() {
    let logs = LogCapture::install();
    let (provider, _server) = idp().await;
    let base = provider.base.lock().unwrap().clone();
    let rec = mcpgate_testkit::recorder::Recorder::start(&start_demo().await).await;
    // (Our access tokens outlive the provider's here: the clock moves by hours.)
    let toml = format!(
        "{TOML}access_token_ttl_s = 86400\n[[oauth.providers]]\nkind = \"oidc\"\nid = \"corp\"\nname = \"Corp SSO\"\nissuer = \"{base}\"\n\
         client_id = \"gw\"\nclient_secret_env = \"CORP_SECRET\"\n\
         [[oauth.identities]]\nprovider = \"corp\"\nclaim = \"groups\"\nvalue = \"mcp-users\"\n\
         permissions = [\"read\", \"write\"]\nuser_id = \"{{email}}\"\n\
         [delegation]\nheader = \"Authorization\"\nsource = \"provider:corp\"\n"
    );
    let mut setup = Setup::new(&toml).manual_clock();
    setup.env("CORP_SECRET", SECRET);
    setup.env("MCPGATE_ENCRYPTION_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=");
    setup.upstream(&rec.url);
    let bob = setup.key(mcpgate_testkit::apikey::key("bob").perms(&["read", "write"]));
    // An API key whose user id is ana's: still not ana's sign-in at corp.
    let ana_key = setup.key(mcpgate_testkit::apikey::key("ana@example.com").perms(&["read", "write"]));
    let gw = setup.start().await;
    let client = public_client(&gw).await;

    // Bob has no corp token: told where to sign in; the upstream is not called.
    let bob_h = [("x-api-key", bob.key.as_str())];
    let sid = gw.initialize(&bob_h).await;
    let r = gw.call(&bob_h, Some(&sid), "echo", json!({"text": "hi"})).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(
        r.text.contains("http://localhost/auth/oauth/corp/start") && r.text.contains("Corp SSO"),
        "{}",
        r.text
    );
    assert_eq!(upstream_authorization(&rec), None, "the upstream was called");

    // Ana signs in at corp: her token there is what the upstream gets.
    let (_, at) = signed_in_token(&gw, &client, "ana", "read write").await;
    let ana_h = [("authorization", format!("Bearer {at}"))];
    let ana_h: Vec<(&str, &str)> = ana_h.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let sid = gw.initialize(&ana_h).await;
    let called_with = |want: &'static str| {
        let gw = &gw;
        let ana_h = &ana_h;
        let sid = &sid;
        let rec = &rec;
        async move {
            // The key registry reloads held credentials within a second of a change.
            for _ in 0..40 {
                let r = gw.call(ana_h, Some(sid), "echo", json!({"text": "hi"})).await;
                if r.is_ok() && upstream_authorization(rec).as_deref() == Some(want) {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            false
        }
    };
    assert!(
        called_with("Bearer provider-access-ana-1").await,
        "the upstream did not get ana's corp token: {:?}",
        upstream_authorization(&rec)
    );
    for r in rec.requests() {
        assert!(
            !r.headers.iter().any(|(_, v)| v.contains(&at)),
            "the caller's mcpgate token went upstream"
        );
    }
    let key_h = [("x-api-key", ana_key.key.as_str())];
    let key_sid = gw.initialize(&key_h).await;
    let r = gw.call(&key_h, Some(&key_sid), "echo", json!({"text": "hi"})).await;
    assert_eq!(
        r.status, 403,
        "an API key with ana's user id used her corp token: {}",
        r.text
    );

    // Near its expiry the token is renewed with the refresh token.
    let o = gw.gw.oauth.clone().unwrap();
    let all = o.providers.as_ref().unwrap();
    let (id, held) = all.held.clone().unwrap();
    let refresher = mcpgate_gateway::oauth::providers::held::Refresher {
        held,
        provider: id,
        replay: o.replay.clone(),
        // (None: the renewal reaches the calls through the store's change, as on a replica
        // that did not renew it.)
        keys: None,
    };
    let corp = all.get("corp").unwrap();
    assert_eq!(
        refresher.once(all, corp, o.clock.unix_s(), MAX_AGE).await.unwrap(),
        0,
        "renewed too early"
    );
    // Two replicas looking at once: one renews (the other would spend a rotated refresh token).
    gw.advance(Duration::from_secs(3600 - 200));
    let now = o.clock.unix_s();
    let (a, b) = tokio::join!(
        refresher.once(all, corp, now, MAX_AGE),
        refresher.once(all, corp, now, MAX_AGE)
    );
    assert_eq!(a.unwrap() + b.unwrap(), 1);
    assert_eq!(
        provider.refreshes.lock().unwrap().as_slice(),
        ["provider-ana-refresh-1".to_string()]
    );
    assert!(
        called_with("Bearer provider-access-ana-2").await,
        "the renewed token was not used: {:?}",
        upstream_authorization(&rec)
    );

    // The provider refuses the next renewal: forgotten, and ana is told to sign in again.
    provider.spoil.lock().unwrap().token_error = true;
    gw.advance(Duration::from_secs(3600 - 200));
    refresher.once(all, corp, o.clock.unix_s(), MAX_AGE).await.unwrap();
    let mut told = None;
    for _ in 0..40 {
        let r = gw.call(&ana_h, Some(&sid), "echo", json!({"text": "hi"})).await;
        if r.status == 403 {
            told = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let told = told.expect("a token the provider would not renew was still used");
    assert!(told.text.contains("/auth/oauth/corp/start"), "{}", told.text);

    // Signed in again: held again; forgotten once the sign-in is older than the maximum age
    // (GitHub's tokens never expire on their own).
    provider.spoil.lock().unwrap().token_error = false;
    *provider.offset.lock().unwrap() = o.clock.unix_s() - mcpgate_testkit::time::now_s();
    let (_, at2) = signed_in_token(&gw, &client, "ana", "read write").await;
    let h2 = [("authorization", format!("Bearer {at2}"))];
    let h2: Vec<(&str, &str)> = h2.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let sid2 = gw.initialize(&h2).await;
    let r = gw.call(&h2, Some(&sid2), "echo", json!({"text": "hi"})).await;
    assert!(r.is_ok(), "{}", r.text);
    assert_eq!(
        upstream_authorization(&rec).as_deref(),
        Some("Bearer provider-access-ana-1")
    );
    gw.advance(Duration::from_secs(120));
    refresher.once(all, corp, o.clock.unix_s(), 60).await.unwrap();
    let mut forgotten = false;
    for _ in 0..40 {
        if gw.call(&h2, Some(&sid2), "echo", json!({"text": "hi"})).await.status == 403 {
            forgotten = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(forgotten, "a token older than the sign-in maximum age was still used");

    // The provider's tokens appear nowhere (not even in an answer to the caller); ours not in
    // logs or audit.
    let theirs: Vec<(String, String)> = [
        "provider-access-ana-1",
        "provider-access-ana-2",
        "provider-ana-refresh-1",
        "provider-ana-refresh-2",
    ]
    .iter()
    .map(|s| (format!("provider token {s}"), s.to_string()))
    .collect();
    let audit = audit_text(&gw.audit().await);
    let (logs, responses) = (logs.text(), gw.responses());
    let leaks = find_leaks(
        &theirs,
        &[("logs", &logs), ("audit", &audit), ("responses", &responses)],
    );
    assert!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n\n"));
    let ours = vec![("our access token".to_string(), at.clone())];
    let leaks = find_leaks(&ours, &[("logs", &logs), ("audit", &audit)]);
    assert!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n\n"));
}

/// A grant made through a web session ends `oauth.sign_in_max_age_s` after the provider
/// sign-in behind it, not after the session was last used.
#[tokio::test]
async fn a_grant_from_an_old_session_ends_with_its_sign_in() {
    let (provider, _server) = idp().await;
    let base = provider.base.lock().unwrap().clone();
    let down = dead_url("").await;
    let toml = config(&base, &down).replacen(
        "[oauth]\n",
        "[oauth]\nsession_ttl_s = 604800\nsign_in_max_age_s = 172800\n",
        1,
    );
    let mut setup = Setup::new(&toml).manual_clock();
    setup.env("CORP_SECRET", SECRET);
    let gw = setup.start().await;
    let client = public_client(&gw).await;
    let signed_in_at = gw.gw.oauth.as_ref().unwrap().clock.unix_s();
    let (session, _) = signed_in_token(&gw, &client, "ana", "read").await;

    // A day and a half later, the same browser (its session still valid) authorizes again.
    gw.advance(Duration::from_secs(129_600));
    let q = authorize_query(&client, REDIRECT, &[("scope", "read")]);
    let page = get(&gw, &q, &[("cookie", &session)]).await;
    assert_eq!(page.status, 200, "{}", page.text);
    let t = allow_and_exchange(&gw, &client, &page, &session, "read").await;
    assert!(t.body["access_token"].is_string());
    use mcpgate_store::GrantStore;
    let newest = gw.store().list_grants(Some("ana@example.com"), None).await.unwrap()[0].clone();
    assert_eq!(
        newest.expires_at,
        signed_in_at + 172_800,
        "the grant outlives the sign-in behind it"
    );
}
