//! Attacks on the authorization server (security review of issue #11).
//!
//! Tests named `held_*` try a family of attacks and pass: the server resists them. Tests named
//! `vuln_*` FAIL on the code they were written against: each is the smallest demonstration of one
//! weakness, asserting the behaviour the server should have. The review report orders them by
//! severity and names the fix for each.

use crate::*;
use axum::Router;
use axum::body::Body;
use axum::routing::get as route_get;
use base64::Engine;
use http::Request;
use mcpgate_core::principal::Role;
use mcpgate_testkit::apikey::*;
use mcpgate_testkit::fake::LocalServer;
use mcpgate_testkit::harness::*;
use mcpgate_testkit::logs::{LogCapture, find_leaks};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn b64(s: impl AsRef<[u8]>) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn b64url(s: impl AsRef<[u8]>) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

/// RFC 6749 §2.3.1: each part form-encoded, then joined by a colon.
fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", b64(format!("{}:{}", enc(id), enc(secret))))
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

/// A confidential client (client_secret_basic unless `extra` says otherwise): (id, secret).
async fn confidential(gw: &Gw, extra: Value) -> (String, String) {
    let mut m = json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "client_secret_basic"});
    for (k, v) in extra.as_object().unwrap() {
        m[k] = v.clone();
    }
    // Self-registration may not ask for client_credentials (a fix this suite found): such a
    // client is one an operator adds, written to the gateway's store as `mcpgate clients add` does.
    let strings = |v: &Value| {
        v.as_array().map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect::<Vec<_>>()
        })
    };
    if strings(&m["grant_types"]).is_some_and(|g| g.iter().any(|x| x == "client_credentials")) {
        use mcpgate_store::oauth::ClientStore;
        let (client, secret) = mcpgate_gateway::oauth::register::NewClient {
            kind: mcpgate_store::oauth::ClientKind::Configured,
            name: None,
            redirect_uris: strings(&m["redirect_uris"]).unwrap(),
            auth_method: m["token_endpoint_auth_method"].as_str().map(str::to_string),
            grant_types: strings(&m["grant_types"]),
            scope: m["scope"].as_str().map(str::to_string),
        }
        .build(&mcpgate_core::entropy::OsEntropy, mcpgate_testkit::time::now_s())
        .unwrap();
        gw.store().insert_client(&client).await.unwrap();
        return (client.client_id, secret.unwrap());
    }
    let r = register(gw, m).await;
    assert_eq!(r.status, 201, "{}", r.text);
    (
        r.body["client_id"].as_str().unwrap().to_string(),
        r.body["client_secret"].as_str().unwrap().to_string(),
    )
}

/// A public client with these redirect URIs.
async fn public_with(gw: &Gw, redirects: &[&str]) -> String {
    let r = register(
        gw,
        json!({"redirect_uris": redirects, "token_endpoint_auth_method": "none"}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["client_id"].as_str().unwrap().to_string()
}

/// Code flow with header sign-in: (access, refresh, scope).
async fn tokens(gw: &Gw, client: &str, key: &str) -> (String, String, String) {
    let code = code_for(gw, client, key).await;
    let r = exchange(gw, client, &code, VERIFIER).await;
    assert_eq!(r.status, 200, "{}", r.text);
    (
        r.body["access_token"].as_str().unwrap().to_string(),
        r.body["refresh_token"].as_str().unwrap_or_default().to_string(),
        r.body["scope"].as_str().unwrap_or_default().to_string(),
    )
}

/// Whether `token` (a bearer) gets through `/mcp` to the gateway's whoami tool.
async fn works(gw: &Gw, token: &str) -> bool {
    gw.call(&[("authorization", &bearer(token))], None, "whoami", json!({}))
        .await
        .is_ok()
}

/// Calls the upstream's echo tool in a session opened with `headers` (the default policy: a
/// `tools/call` needs the permission `write`).
async fn echo(gw: &Gw, headers: &[(&str, &str)]) -> Resp {
    let init = gw.try_initialize(headers).await;
    let Some(session) = init.header("mcp-session-id").map(str::to_string) else {
        return init;
    };
    let _ = gw.notify(headers, &session, "notifications/initialized").await;
    gw.call(headers, Some(&session), "echo", json!({"text": "x"})).await
}

/// The claims of a JWT, unverified.
fn claims_of(jwt: &str) -> Value {
    let p = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
}

/// The consent page for `client`: (cookie pair, csrf token, page).
async fn consent_page(gw: &Gw, query: &str) -> (String, String, Resp) {
    let page = get(gw, query, &[]).await;
    assert_eq!(page.status, 200, "{}", page.text);
    let cookie = page.header("set-cookie").unwrap().to_string();
    let pair = cookie.split(';').next().unwrap().to_string();
    let csrf = pair.split_once('=').unwrap().1.to_string();
    (pair, csrf, page)
}

fn consent_fields<'a>(client: &'a str, ch: &'a str, key: &'a str, csrf: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("response_type", "code"),
        ("client_id", client),
        ("redirect_uri", REDIRECT),
        ("code_challenge", ch),
        ("code_challenge_method", "S256"),
        ("state", "st-123"),
        ("resource", RESOURCE),
        ("api_key", key),
        ("decision", "allow"),
        ("csrf", csrf),
    ]
}

/// Refused as a page: 400, no Location.
fn page_refusal(r: &Resp, what: &str) {
    assert_eq!(r.status, 400, "{what}: {} {:?}", r.text, r.header("location"));
    assert!(
        r.header("location").is_none(),
        "{what}: redirected to {:?}",
        r.header("location")
    );
}

/// A document server on loopback: every path answers a client metadata document whose
/// `client_id` is the URL it was fetched at (Host header + path), except the hostile routes.
/// Counts every request.
async fn doc_server(extra: Value) -> (LocalServer, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let (h1, h2, h3, h4) = (hits.clone(), hits.clone(), hits.clone(), hits.clone());
    let extra = Arc::new(extra);
    let e1 = extra.clone();
    let self_doc = move |host: &str, path: &str, extra: &Value| {
        let mut d = json!({
            "client_id": format!("http://{host}{path}"),
            "client_name": "Doc client",
            "redirect_uris": [REDIRECT, "http://localhost/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none",
        });
        for (k, v) in extra.as_object().unwrap() {
            d[k] = v.clone();
        }
        d
    };
    let app = Router::new()
        .route(
            "/doc.json",
            route_get(move |headers: http::HeaderMap| {
                h1.fetch_add(1, Ordering::SeqCst);
                let host = headers["host"].to_str().unwrap().to_string();
                let body = self_doc(&host, "/doc.json", &e1);
                async move { ([("cache-control", "max-age=600")], axum::Json(body)) }
            }),
        )
        // An open redirect on the document host.
        .route(
            "/redir",
            route_get(move |headers: http::HeaderMap| {
                h2.fetch_add(1, Ordering::SeqCst);
                let port = headers["host"]
                    .to_str()
                    .unwrap()
                    .rsplit(':')
                    .next()
                    .unwrap()
                    .to_string();
                async move {
                    (
                        http::StatusCode::FOUND,
                        [("location", format!("http://127.0.0.1:{port}/evil.json"))],
                    )
                }
            }),
        )
        // Served from 127.0.0.1, claiming to be http://localhost:PORT/redir.
        .route(
            "/evil.json",
            route_get(move |headers: http::HeaderMap| {
                h3.fetch_add(1, Ordering::SeqCst);
                let port = headers["host"]
                    .to_str()
                    .unwrap()
                    .rsplit(':')
                    .next()
                    .unwrap()
                    .to_string();
                let body = json!({
                    "client_id": format!("http://localhost:{port}/redir"),
                    "client_name": "Evil",
                    "redirect_uris": [REDIRECT],
                    "token_endpoint_auth_method": "none",
                });
                async move { axum::Json(body) }
            }),
        )
        // A document served as HTML.
        .route(
            "/html.json",
            route_get(move |headers: http::HeaderMap| {
                h4.fetch_add(1, Ordering::SeqCst);
                let host = headers["host"].to_str().unwrap().to_string();
                let body = json!({
                    "client_id": format!("http://{host}/html.json"),
                    "redirect_uris": [REDIRECT],
                    "token_endpoint_auth_method": "none",
                })
                .to_string();
                async move { ([("content-type", "text/html")], body) }
            }),
        );
    (LocalServer::start(app).await, hits)
}

const TRUSTING: &str =
    "public_url = \"http://localhost\"\n[oauth]\ncimd_trusted_networks = [\"127.0.0.0/8\", \"::1/128\"]\n";

fn port_of(base: &str) -> String {
    base.rsplit(':').next().unwrap().to_string()
}

// ---------------------------------------------------------------------------------------------
// Held
// ---------------------------------------------------------------------------------------------

/// Open redirect through redirect_uri: every trick is refused as a page; the loopback forms the
/// URL parser normalises are accepted only when they lead to the very same place.
#[tokio::test]
async fn held_redirect_uri_tricks() {
    let setup = Setup::new(TOML);
    let ana = setup.key(key("ana"));
    let gw = setup.start().await;
    let k = [("x-api-key", ana.key.as_str())];
    let loop4 = public_client(&gw).await; // http://127.0.0.1/callback
    let local = public_with(&gw, &["http://localhost/cb"]).await;
    let loop6 = public_with(&gw, &["http://[::1]/cb"]).await;
    let web = public_with(&gw, &["https://app.example/cb"]).await;

    let refused: Vec<(&str, &str)> = vec![
        (&loop4, "http://127.0.0.1:5/callback/"),
        (&loop4, "http://127.0.0.1:5/Callback"),
        (&loop4, "http://127.0.0.1:5/callback?x=1"),
        (&loop4, "http://127.0.0.1:5/callback?"),
        (&loop4, "http://127.0.0.1:5/callback#f"),
        (&loop4, "http://127.0.0.1:5/callback#"),
        (&loop4, "http://u@127.0.0.1:5/callback"),
        (&loop4, "http://u:p@127.0.0.1:5/callback"),
        (&loop4, "http://127.0.0.1:5@evil.example/callback"),
        (&loop4, "http://127.0.0.1.evil.example:5/callback"),
        (&loop4, "http://127.0.0.1:5\\@evil.example/callback"),
        (&loop4, "http://evil.example\\@127.0.0.1:5/callback"),
        (&loop4, "http://evil.example#@127.0.0.1:5/callback"),
        (&loop4, "http://127.0.0.1:5/%63allback"),
        (&loop4, "http://127.0.0.1:5/callback%2f..%2f..%2fevil"),
        (&loop4, "https://127.0.0.1:5/callback"),
        (&loop4, "http://127.0.0.2:5/callback"),
        (&loop4, "http://localhost:5/callback"),
        (&loop4, "http://[::1]:5/callback"),
        (&loop4, "//127.0.0.1:5/callback"),
        (&loop4, "javascript://127.0.0.1/callback"),
        (&local, "http://localhost.:5/cb"),
        (&local, "http://localhost.evil.example:5/cb"),
        (&local, "http://127.0.0.1:5/cb"),
        (&loop6, "http://[::2]:5/cb"),
        (&loop6, "http://[::ffff:127.0.0.1]:5/cb"),
        (&web, "https://app.example/cb/"),
        (&web, "https://APP.example/cb"),
        (&web, "https://app.example:443/cb"),
        (&web, "https://app.example:8443/cb"),
        (&web, "https://app.example/cb?x=1"),
        (&web, "https://app.example/cb#x"),
        (&web, "https://app.example/cb/../cb"),
        (&web, "https://app.example.evil.example/cb"),
        (&web, "https://app.example%2F@evil.example/cb"),
        (&web, "http://app.example/cb"),
        (&web, "HTTPS://app.example/cb"),
    ];
    for (client, redirect) in refused {
        let r = get(&gw, &authorize_query(client, redirect, &[]), &k).await;
        page_refusal(&r, redirect);
    }
    // Forms that parse to the registered loopback URI on another port: accepted, and the browser
    // lands on the same host and path (the loopback port is the client's own choice, RFC 8252).
    let same: Vec<(&str, &str, &str, &str)> = vec![
        (&loop4, "HTTP://127.0.0.1:5/callback", "127.0.0.1", "/callback"),
        (&loop4, "http://0x7f.1:5/callback", "127.0.0.1", "/callback"),
        (&loop4, "http://2130706433:5/callback", "127.0.0.1", "/callback"),
        (&loop4, "http://%31%32%37.0.0.1:5/callback", "127.0.0.1", "/callback"),
        (&loop4, "http://127.0.0.1:5/x/../callback", "127.0.0.1", "/callback"),
        (&loop4, "http://127.0.0.1:5/x/%2e%2e/callback", "127.0.0.1", "/callback"),
        (&loop4, "http://127.0.0.1:5\\callback", "127.0.0.1", "/callback"),
        (&local, "http://LocalHost:5/cb", "localhost", "/cb"),
        (&loop6, "http://[0:0:0:0:0:0:0:1]:5/cb", "[::1]", "/cb"),
    ];
    for (client, redirect, host, path) in same {
        let r = get(&gw, &authorize_query(client, redirect, &[]), &k).await;
        if r.status == 400 {
            assert!(r.header("location").is_none());
            continue;
        }
        assert_eq!(r.status, 303, "{redirect}: {}", r.text);
        let loc = reqwest::Url::parse(r.header("location").unwrap()).unwrap();
        assert_eq!(
            (loc.host_str(), loc.path()),
            (Some(host), path),
            "{redirect} went to {loc}"
        );
    }
}

/// Dynamic client registration: dangerous redirect URIs, wrong types, sizes, duplicates and
/// unsupported methods are all refused.
#[tokio::test]
async fn held_dcr_abuse() {
    let gw = Setup::new(TOML).start().await;
    for uri in [
        "javascript:alert(1)",
        "javascript://127.0.0.1/%0aalert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "file:///etc/passwd",
        "myapp://cb",
        "http://localhost./cb",
        "http://127.0.0.1.nip.io/cb",
        "http://evil.example/cb",
        "https://u:p@ok.example/cb",
        "https://u@ok.example/cb",
        "https://ok.example/cb#",
        "//ok.example/cb",
        "/cb",
        "",
    ] {
        let r = register(&gw, json!({"redirect_uris": [uri]})).await;
        assert_eq!(r.status, 400, "{uri}: {}", r.text);
        assert_eq!(r.body["error"], "invalid_redirect_uri", "{uri}");
    }
    let many: Vec<String> = (0..11).map(|i| format!("https://ok.example/cb{i}")).collect();
    let r = register(&gw, json!({"redirect_uris": many})).await;
    assert_eq!(r.status, 400);
    for bad in [
        json!({"redirect_uris": [1]}),
        json!({"redirect_uris": "https://ok.example/cb"}),
        json!({"redirect_uris": ["https://ok.example/cb"], "client_name": 5}),
        json!({"redirect_uris": ["https://ok.example/cb"], "client_name": ["a"]}),
        json!({"redirect_uris": ["https://ok.example/cb"], "grant_types": "authorization_code"}),
        json!({"redirect_uris": ["https://ok.example/cb"], "grant_types": ["implicit"]}),
        json!({"redirect_uris": ["https://ok.example/cb"], "grant_types": ["password"]}),
        json!({"redirect_uris": ["https://ok.example/cb"], "grant_types": []}),
        json!({"redirect_uris": ["https://ok.example/cb"], "grant_types": ["urn:ietf:params:oauth:grant-type:device_code"]}),
        json!({"redirect_uris": ["https://ok.example/cb"], "response_types": ["token"]}),
        json!({"redirect_uris": ["https://ok.example/cb"], "token_endpoint_auth_method": "private_key_jwt"}),
        json!({"redirect_uris": ["https://ok.example/cb"], "token_endpoint_auth_method": "client_secret_jwt"}),
        json!({"redirect_uris": ["https://ok.example/cb"], "token_endpoint_auth_method": "tls_client_auth"}),
        json!({"redirect_uris": ["https://ok.example/cb"], "scope": ["read"]}),
        json!({"redirect_uris": ["https://ok.example/cb"], "scope": "read \"x"}),
        json!({"redirect_uris": ["https://ok.example/cb"], "token_endpoint_auth_method": "none", "grant_types": ["client_credentials"]}),
        json!(["https://ok.example/cb"]),
        json!(null),
    ] {
        let r = register(&gw, bad.clone()).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text);
    }
    // Duplicate keys, nested in an unknown member: still refused (strict JSON everywhere).
    for raw in [
        r#"{"redirect_uris":["https://ok.example/cb"],"x":{"a":1,"a":2}}"#.to_string(),
        r#"{"redirect_uris":["https://ok.example/cb"],"client_name":"a","client_name":"b"}"#.to_string(),
        format!(
            r#"{{"redirect_uris":["https://ok.example/cb"],"client_name":"{}"}}"#,
            "x".repeat(17 * 1024)
        ),
        r#"{"redirect_uris":["https://ok.example/cb"]"#.to_string(),
    ] {
        let req = Request::post("/register")
            .header("host", "localhost")
            .header("content-type", "application/json")
            .body(Body::from(raw.clone()))
            .unwrap();
        let r = gw.send(req).await;
        assert_eq!(r.status, 400, "{}: {}", &raw[..raw.len().min(80)], r.text);
    }
    // Not JSON by content type.
    let req = Request::post("/register")
        .header("host", "localhost")
        .header("content-type", "text/plain")
        .body(Body::from(r#"{"redirect_uris":["https://ok.example/cb"]}"#))
        .unwrap();
    assert_eq!(gw.send(req).await.status, 400);
    // Control characters in the name are dropped, and it is cut at 100 characters.
    let r = register(
        &gw,
        json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none",
               "client_name": format!("a\u{0}b\u{1b}[31mc\r\nd{}", "y".repeat(300))}),
    )
    .await;
    assert_eq!(r.status, 201);
    let name = r.body["client_name"].as_str().unwrap();
    assert!(name.starts_with("ab[31mcd") && name.chars().count() == 100, "{name:?}");
}

/// Code injection, code/redirect mix-ups, PKCE downgrades and bad verifiers.
#[tokio::test]
async fn held_code_injection_and_pkce() {
    let setup = Setup::new(TOML).manual_clock();
    let ana = setup.key(key("ana"));
    let gw = setup.start().await;
    let a = public_client(&gw).await;
    let b = public_client(&gw).await;
    let k = [("x-api-key", ana.key.as_str())];

    // Client A's code redeemed by client B: refused. (The code is spent by the attempt, so A's
    // own exchange then fails too: a denial of service for whoever holds a stolen code, as
    // RFC 9700 §4.5 accepts; tokens never reach B.)
    let code = code_for(&gw, &a, &ana.key).await;
    oauth_error(&exchange(&gw, &b, &code, VERIFIER).await, 400, "invalid_grant");
    oauth_error(&exchange(&gw, &a, &code, VERIFIER).await, 400, "invalid_grant");

    // Another redirect_uri at the token endpoint (even the same loopback on another port).
    for other in [
        "http://127.0.0.1:1/callback",
        "http://127.0.0.1/callback",
        "http://127.0.0.1:53682/callback/",
        "HTTP://127.0.0.1:53682/callback",
    ] {
        let code = code_for(&gw, &a, &ana.key).await;
        let body = form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", other),
            ("code_verifier", VERIFIER),
            ("client_id", &a),
        ]);
        oauth_error(&post_form(&gw, "/token", &body, &[]).await, 400, "invalid_grant");
    }
    // Missing redirect_uri: invalid_request, checked before the code is spent.
    let code = code_for(&gw, &a, &ana.key).await;
    let body = form(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("code_verifier", VERIFIER),
        ("client_id", &a),
    ]);
    oauth_error(&post_form(&gw, "/token", &body, &[]).await, 400, "invalid_request");
    assert_eq!(exchange(&gw, &a, &code, VERIFIER).await.status, 200);

    // Verifiers of the wrong length or alphabet, or the challenge itself.
    let ch = challenge(VERIFIER);
    let v42 = "a".repeat(42);
    let v129 = "a".repeat(129);
    let plus = format!("{}+", &VERIFIER[..50]);
    let slash = format!("{}/", &VERIFIER[..50]);
    let space = format!("{} x", &VERIFIER[..50]);
    let upper = VERIFIER.to_uppercase();
    for v in [
        v42.as_str(),
        v129.as_str(),
        plus.as_str(),
        slash.as_str(),
        space.as_str(),
        ch.as_str(),
        upper.as_str(),
    ] {
        let code = code_for(&gw, &a, &ana.key).await;
        oauth_error(&exchange(&gw, &a, &code, v).await, 400, "invalid_grant");
    }
    // PKCE downgrade at /authorize: plain, no method, a lower-case method, a padded challenge, no
    // challenge at all.
    let padded = format!("{}=", &ch[..42]);
    for extra in [
        vec![("code_challenge_method", "plain"), ("code_challenge", VERIFIER)],
        vec![("code_challenge_method", "plain")],
        vec![("code_challenge_method", "")],
        vec![("code_challenge_method", "s256")],
        vec![("code_challenge_method", "S256 ")],
        vec![("code_challenge", padded.as_str())],
        vec![("code_challenge", &ch[..42])],
        vec![("code_challenge", "")],
    ] {
        let r = get(&gw, &authorize_query(&a, REDIRECT, &extra), &k).await;
        assert_eq!(r.status, 303, "{extra:?}");
        let p = location_params(&r);
        assert_eq!(p["error"], "invalid_request", "{extra:?}");
        assert!(!p.contains_key("code"), "{extra:?}");
    }
    // A code past its 60 s life.
    let code = code_for(&gw, &a, &ana.key).await;
    gw.advance(Duration::from_secs(61));
    oauth_error(&exchange(&gw, &a, &code, VERIFIER).await, 400, "invalid_grant");
}

/// Eight racing exchanges of one code: exactly one gets tokens.
#[tokio::test]
async fn held_concurrent_code_exchange() {
    let setup = Setup::new(TOML);
    let ana = setup.key(key("ana"));
    let gw = setup.start().await;
    let a = public_client(&gw).await;
    let code = code_for(&gw, &a, &ana.key).await;
    let rs = futures_util::future::join_all((0..8).map(|_| exchange(&gw, &a, &code, VERIFIER))).await;
    let ok: Vec<&Resp> = rs.iter().filter(|r| r.status == 200).collect();
    assert!(ok.len() <= 1, "{} exchanges of one code succeeded", ok.len());
    for r in rs.iter().filter(|r| r.status != 200) {
        oauth_error(r, 400, "invalid_grant");
    }
    // The replays revoked what the winner got (RFC 9700 §4.5.3.1 / OAuth 2.1 §4.1.3).
    if let Some(w) = ok.first() {
        assert!(!works(&gw, w.body["access_token"].as_str().unwrap()).await);
    }
}

/// Parameter pollution: the same name twice (in any spelling), semicolons, bad UTF-8, NUL,
/// too many parameters.
#[tokio::test]
async fn held_parameter_pollution() {
    let setup = Setup::new(TOML);
    let ana = setup.key(key("ana"));
    let gw = setup.start().await;
    let a = public_client(&gw).await;
    let b = public_client(&gw).await;
    let k = [("x-api-key", ana.key.as_str())];
    let base = authorize_query(&a, REDIRECT, &[]);
    for extra in [
        format!("&%63lient_id={b}"),
        format!("&client%5Fid={b}"),
        format!("&client_id={a}"),
        "&redirect_uri=https%3A%2F%2Fevil.example%2Fcb".to_string(),
        "&resource=http%3A%2F%2Flocalhost%2Fmcp".to_string(),
        "&state=other".to_string(),
        "&code_challenge_method=plain".to_string(),
        "&scope=read&scope=write".to_string(),
        "&x=%C0%AE".to_string(),
        "&x=%ED%A0%80".to_string(),
        "&x=%00".to_string(),
        "&%00=1".to_string(),
        "&=1".to_string(),
    ] {
        let r = get(&gw, &format!("{base}{extra}"), &k).await;
        page_refusal(&r, &extra);
    }
    let many: String = (0..30).map(|i| format!("&p{i}=1")).collect();
    page_refusal(&get(&gw, &format!("{base}{many}"), &k).await, "many");

    let code = code_for(&gw, &a, &ana.key).await;
    for body in [
        format!("grant_type=authorization_code&client_id={a}&code={code}&%63ode=x"),
        format!("grant_type=authorization_code&client_id={a}&code={code}&client_id={b}"),
        format!("grant_type=authorization_code&client_id={a}&%63lient_id={b}&code={code}"),
        format!("grant_type=authorization_code&client_id={a}&code=%C0%AE"),
        format!("grant_type=authorization_code&client_id={a}&code=x%00y"),
    ] {
        oauth_error(&post_form(&gw, "/token", &body, &[]).await, 400, "invalid_request");
    }
    // A semicolon is not a separator: the grant type is `authorization_code;code=…`.
    let body = format!("client_id={a}&grant_type=authorization_code;code={code}");
    oauth_error(
        &post_form(&gw, "/token", &body, &[]).await,
        400,
        "unsupported_grant_type",
    );
    // Not a form.
    for ct in ["application/json", "text/plain", "multipart/form-data; boundary=x"] {
        let r = gw
            .send(
                Request::post("/token")
                    .header("host", "localhost")
                    .header("content-type", ct)
                    .body(Body::from(format!("grant_type=authorization_code&client_id={a}")))
                    .unwrap(),
            )
            .await;
        oauth_error(&r, 400, "invalid_request");
    }
    // The code survived all of that (nothing above reached the code) and still works once; an
    // unknown `code[]` beside it is ignored (RFC 6749 §3.2: unrecognised parameters are ignored).
    let body = form(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("code[]", "mcpc_other"),
        ("redirect_uri", "http://127.0.0.1:53682/callback"),
        ("code_verifier", VERIFIER),
        ("client_id", &a),
    ]);
    assert_eq!(post_form(&gw, "/token", &body, &[]).await.status, 200);
}

/// RFC 8707 resource: only this gateway's MCP URL, in forms that parse to it; the token's
/// audience is always the canonical URL.
#[tokio::test]
async fn held_resource_confusion() {
    let setup = Setup::new(TOML);
    let ana = setup.key(key("ana"));
    let gw = setup.start().await;
    let a = public_client(&gw).await;
    let k = [("x-api-key", ana.key.as_str())];
    for bad in [
        "http://localhost/mcp/../admin",
        "http://localhost/mcp/..%2Fadmin",
        "http://localhost/MCP",
        "http://localhost/mcp#x",
        "http://localhost/mcp#",
        "http://localhost:8080/mcp",
        "https://localhost/mcp",
        "http://localhost/mcp?x=1",
        "http://localhost/mcp%2F",
        "http://localhost/mcp2",
        "http://localhost/mc%70",
        "http://localhost.evil.example/mcp",
        "http://evil.example/mcp",
        "/mcp",
        "urn:mcpgate:mcp",
        "mcp",
    ] {
        let r = get(&gw, &authorize_query(&a, REDIRECT, &[("resource", bad)]), &k).await;
        assert_eq!(r.status, 303, "{bad}");
        assert_eq!(location_params(&r)["error"], "invalid_target", "{bad}");
    }
    // Two resource values: ambiguous, refused before anything else.
    let q = format!(
        "{}&resource=http%3A%2F%2Fevil.example%2Fmcp",
        authorize_query(&a, REDIRECT, &[])
    );
    page_refusal(&get(&gw, &q, &k).await, "two resources");
    // Spellings of the same URL: accepted, and the token is for the canonical one.
    for same in [
        "http://localhost/mcp/",
        "http://LOCALHOST/mcp",
        "HTTP://localhost/mcp",
        "http://localhost:80/mcp",
        "http://localhost/x/../mcp",
        "http://u:p@localhost/mcp",
    ] {
        let r = get(
            &gw,
            &authorize_query(&a, "http://127.0.0.1:53682/callback", &[("resource", same)]),
            &k,
        )
        .await;
        let p = location_params(&r);
        let Some(code) = p.get("code") else {
            assert_eq!(p["error"], "invalid_target", "{same}");
            continue;
        };
        let t = exchange(&gw, &a, code, VERIFIER).await;
        assert_eq!(t.status, 200, "{same}: {}", t.text);
        assert_eq!(
            claims_of(t.body["access_token"].as_str().unwrap())["aud"],
            RESOURCE,
            "{same}"
        );
    }
}

/// Scope escalation: scopes the user lacks, `*`, offline_access games, a wider refresh.
#[tokio::test]
async fn held_scope_escalation() {
    let setup = Setup::new(TOML);
    let ana = setup.key(key("ana").perms(&["read"]));
    let root = setup.key(key("root"));
    let gw = setup.start().await;
    let a = public_client(&gw).await;
    let k = [("x-api-key", ana.key.as_str())];
    let granted = |r: &Resp| r.body["scope"].as_str().unwrap_or_default().to_string();
    let with_scope = |scope: &'static str, key: String| {
        let a = a.clone();
        let gw = &gw;
        async move {
            let r = get(
                gw,
                &authorize_query(&a, "http://127.0.0.1:53682/callback", &[("scope", scope)]),
                &[("x-api-key", &key)],
            )
            .await;
            let p = location_params(&r);
            exchange(gw, &a, &p["code"], VERIFIER).await
        }
    };
    let t = with_scope("write admin * offline_access", ana.key.clone()).await;
    assert_eq!(granted(&t), "offline_access", "{}", t.text);
    let t = with_scope("offline_access", ana.key.clone()).await;
    assert_eq!(granted(&t), "offline_access read");
    let t = with_scope("read", ana.key.clone()).await;
    assert_eq!(granted(&t), "read");
    // A refresh cannot widen.
    let rt = t.body["refresh_token"].as_str().unwrap().to_string();
    for wider in ["read write", "*", "offline_access", "read\u{0}"] {
        let body = form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt),
            ("client_id", &a),
            ("scope", wider),
        ]);
        let r = post_form(&gw, "/token", &body, &[]).await;
        assert_eq!(r.status, 400, "{wider}: {}", r.text);
    }
    // Scope strings that are not scope tokens.
    for bad in ["read\"", "re\\ad", "read\u{7f}", "lecture\u{e9}"] {
        let r = get(&gw, &authorize_query(&a, REDIRECT, &[("scope", bad)]), &k).await;
        assert_eq!(location_params(&r)["error"], "invalid_scope", "{bad:?}");
    }
    // A client registered for `read` gets no more, whatever the user holds.
    let narrow = register(
        &gw,
        json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none", "scope": "read"}),
    )
    .await;
    let narrow = narrow.body["client_id"].as_str().unwrap().to_string();
    let r = get(
        &gw,
        &authorize_query(&narrow, "http://127.0.0.1:53682/callback", &[("scope", "write *")]),
        &[("x-api-key", &root.key)],
    )
    .await;
    let t = exchange(&gw, &narrow, &location_params(&r)["code"], VERIFIER).await;
    assert_eq!(granted(&t), "");
}

/// Refresh-token races and reuse detection.
#[tokio::test]
async fn held_refresh_races() {
    let setup = Setup::new(TOML).manual_clock();
    let ana = setup.key(key("ana"));
    let gw = setup.start().await;
    let a = public_client(&gw).await;
    let b = public_client(&gw).await;

    // Ten racing refreshes of one token: at most one extra token (the grace), and the rest
    // (replays past the grace) end the family.
    let (_, rt, _) = tokens(&gw, &a, &ana.key).await;
    let rs = futures_util::future::join_all((0..10).map(|_| refresh(&gw, &a, &rt))).await;
    let ok: Vec<&Resp> = rs.iter().filter(|r| r.status == 200).collect();
    assert!(ok.len() <= 2, "{} refreshes of one token succeeded", ok.len());
    for r in &ok {
        let new = r.body["refresh_token"].as_str().unwrap();
        oauth_error(&refresh(&gw, &a, new).await, 400, "invalid_grant");
        assert!(!works(&gw, r.body["access_token"].as_str().unwrap()).await);
    }

    // Two racing refreshes (the grace case): both succeed; the token a third time revokes all.
    let (_, rt, _) = tokens(&gw, &a, &ana.key).await;
    let rs = futures_util::future::join_all((0..2).map(|_| refresh(&gw, &a, &rt))).await;
    assert!(rs.iter().all(|r| r.status == 200));
    oauth_error(&refresh(&gw, &a, &rt).await, 400, "invalid_grant");
    for r in &rs {
        oauth_error(
            &refresh(&gw, &a, r.body["refresh_token"].as_str().unwrap()).await,
            400,
            "invalid_grant",
        );
    }

    // Another client presenting A's refresh token: refused, and A's token is not spent by it.
    let (_, rt, _) = tokens(&gw, &a, &ana.key).await;
    oauth_error(&refresh(&gw, &b, &rt).await, 400, "invalid_grant");
    assert_eq!(refresh(&gw, &a, &rt).await.status, 200);

    // A refresh token past the grant's 30 days.
    let (_, rt, _) = tokens(&gw, &a, &ana.key).await;
    gw.advance(Duration::from_secs(30 * 86_400 + 1));
    oauth_error(&refresh(&gw, &a, &rt).await, 400, "invalid_grant");
}

/// Revocation: only the client a token was issued to ends it; unknown hints are ignored.
#[tokio::test]
async fn held_revocation() {
    let setup = Setup::new(TOML);
    let ana = setup.key(key("ana"));
    let gw = setup.start().await;
    let a = public_client(&gw).await;
    let b = public_client(&gw).await;
    let (at, rt, _) = tokens(&gw, &a, &ana.key).await;
    for t in [&rt, &at] {
        let r = post_form(&gw, "/revoke", &form(&[("token", t), ("client_id", &b)]), &[]).await;
        assert_eq!(r.status, 200);
    }
    assert!(works(&gw, &at).await, "client B revoked client A's token");
    let r = post_form(&gw, "/revoke", &form(&[("token", &rt)]), &[]).await;
    oauth_error(&r, 401, "invalid_client");
    let r = post_form(&gw, "/revoke", &form(&[("client_id", &a)]), &[]).await;
    oauth_error(&r, 400, "invalid_request");
    let r = post_form(
        &gw,
        "/revoke",
        &form(&[("token", &at), ("client_id", &a), ("token_type_hint", "made_up")]),
        &[],
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(!works(&gw, &at).await);
    oauth_error(&refresh(&gw, &a, &rt).await, 400, "invalid_grant");
}

/// Client authentication: one way per request, the way the client registered.
#[tokio::test]
async fn held_client_auth_confusion() {
    let gw = Setup::new(TOML).start().await;
    let public = public_client(&gw).await;
    let (cid, secret) = confidential(&gw, json!({"grant_types": ["client_credentials"], "scope": "read"})).await;
    let (pid, psecret) = confidential(
        &gw,
        json!({"grant_types": ["client_credentials"], "scope": "read", "token_endpoint_auth_method": "client_secret_post"}),
    )
    .await;
    let cc = "grant_type=client_credentials";
    // Baselines.
    assert_eq!(
        post_form(&gw, "/token", cc, &[("authorization", &basic(&cid, &secret))])
            .await
            .status,
        200
    );
    let post = format!("{cc}&{}", form(&[("client_id", &pid), ("client_secret", &psecret)]));
    assert_eq!(post_form(&gw, "/token", &post, &[]).await.status, 200);

    #[allow(clippy::type_complexity)]
    let cases: Vec<(&str, String, Vec<(&str, String)>, u16, &str)> = vec![
        (
            "Basic and a form secret",
            format!("{cc}&client_secret={secret}"),
            vec![("authorization", basic(&cid, &secret))],
            400,
            "invalid_request",
        ),
        (
            "Basic id differs from form id",
            format!("{cc}&client_id={pid}"),
            vec![("authorization", basic(&cid, &secret))],
            400,
            "invalid_request",
        ),
        (
            "confidential client with no secret",
            format!("{cc}&client_id={cid}"),
            vec![],
            401,
            "invalid_client",
        ),
        (
            "secret_basic client posting its secret",
            format!("{cc}&{}", form(&[("client_id", &cid), ("client_secret", &secret)])),
            vec![],
            401,
            "invalid_client",
        ),
        (
            "secret_post client using Basic",
            cc.to_string(),
            vec![("authorization", basic(&pid, &psecret))],
            401,
            "invalid_client",
        ),
        (
            "another client's secret",
            cc.to_string(),
            vec![("authorization", basic(&cid, &psecret))],
            401,
            "invalid_client",
        ),
        (
            "public client sending a secret",
            format!("{cc}&{}", form(&[("client_id", &public), ("client_secret", "x")])),
            vec![],
            401,
            "invalid_client",
        ),
        (
            "public client via Basic",
            cc.to_string(),
            vec![("authorization", basic(&public, ""))],
            401,
            "invalid_client",
        ),
        (
            "percent-encoded colon in the id",
            cc.to_string(),
            vec![("authorization", format!("Basic {}", b64(format!("{cid}%3Ax:{secret}"))))],
            401,
            "invalid_client",
        ),
        (
            "secret with a trailing space",
            cc.to_string(),
            vec![("authorization", basic(&cid, &format!("{secret} ")))],
            401,
            "invalid_client",
        ),
        (
            "secret prefix",
            cc.to_string(),
            vec![("authorization", basic(&cid, &secret[..secret.len() - 1]))],
            401,
            "invalid_client",
        ),
        (
            "Basic without a colon",
            cc.to_string(),
            vec![("authorization", format!("Basic {}", b64(&cid)))],
            401,
            "invalid_client",
        ),
        (
            "Basic not base64",
            cc.to_string(),
            vec![("authorization", "Basic %%%".to_string())],
            401,
            "invalid_client",
        ),
        (
            "Bearer at the token endpoint",
            cc.to_string(),
            vec![("authorization", "Bearer x".to_string())],
            400,
            "invalid_request",
        ),
        (
            "assertion and a secret",
            format!(
                "{cc}&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=a.b.c&client_secret=x&client_id={cid}"
            ),
            vec![],
            400,
            "invalid_request",
        ),
        (
            "assertion and Basic",
            format!(
                "{cc}&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=a.b.c"
            ),
            vec![("authorization", basic(&cid, &secret))],
            400,
            "invalid_request",
        ),
        (
            "assertion for a secret client",
            format!(
                "{cc}&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=a.b.c&client_id={cid}"
            ),
            vec![],
            401,
            "invalid_client",
        ),
    ];
    for (what, body, headers, status, error) in cases {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = post_form(&gw, "/token", &body, &h).await;
        assert_eq!(
            (r.status.as_u16(), r.body["error"].as_str()),
            (status, Some(error)),
            "{what}: {}",
            r.text
        );
        assert!(
            !r.text.contains(&secret) && !r.text.contains(&psecret),
            "{what}: a secret in the body"
        );
    }
    // Two Authorization headers.
    let r = post_form(
        &gw,
        "/token",
        cc,
        &[
            ("authorization", &basic(&cid, &secret)),
            ("authorization", &basic(&cid, &secret)),
        ],
    )
    .await;
    oauth_error(&r, 400, "invalid_request");
}

/// The consent page: escaping, framing, caching, and the CSRF cookie's edge cases.
#[tokio::test]
async fn held_consent_page() {
    let setup = Setup::new(TOML);
    let ana = setup.key(key("ana"));
    let revoked = setup.key(key("gone").revoked());
    let gw = setup.start().await;
    let r = register(
        &gw,
        json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none",
               "client_name": "\"><script>alert(1)</script><img src=x onerror=alert(2)>"}),
    )
    .await;
    let client = r.body["client_id"].as_str().unwrap().to_string();
    let q = authorize_query(
        &client,
        REDIRECT,
        &[
            ("state", "\"><script>alert(3)</script>"),
            ("scope", "<img/src=x/onerror=alert(4)> read"),
        ],
    );
    let (pair, csrf, page) = consent_page(&gw, &q).await;
    for bad in ["<script", "<img", "onerror=alert(4)>"] {
        assert!(!page.text.contains(bad), "{bad} unescaped:\n{}", page.text);
    }
    let h = |n: &str| page.header(n).unwrap_or_default().to_string();
    assert!(h("content-security-policy").contains("default-src 'none'"));
    assert!(h("content-security-policy").contains("frame-ancestors 'none'"));
    assert_eq!(h("x-frame-options"), "DENY");
    assert_eq!(h("cache-control"), "no-store");
    assert_eq!(h("referrer-policy"), "same-origin");
    assert!(page.header("access-control-allow-origin").is_none());

    let ch = challenge(VERIFIER);
    let fields = consent_fields(&client, &ch, &ana.key, &csrf);
    let body = form(&fields);
    let cookie2 = format!("{pair}; {pair}");
    let refused: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("two cookies of one name", vec![("cookie", cookie2.as_str())]),
        ("no cookie", vec![]),
        ("Origin null", vec![("cookie", pair.as_str()), ("origin", "null")]),
        (
            "foreign Origin",
            vec![("cookie", pair.as_str()), ("origin", "http://localhost.evil.example")],
        ),
        (
            "Origin with port",
            vec![("cookie", pair.as_str()), ("origin", "http://localhost:8080")],
        ),
        (
            "Origin https",
            vec![("cookie", pair.as_str()), ("origin", "https://localhost")],
        ),
        ("cookie name in other case", vec![("cookie", "MCPGATE_CSRF=x")]),
    ];
    for (what, headers) in refused {
        let r = post_form(&gw, "/authorize", &body, &headers).await;
        assert_eq!(r.status, 403, "{what}: {}", r.text);
        assert!(r.header("location").is_none(), "{what}");
    }
    // Two Cookie headers, each with the token.
    let r = post_form(&gw, "/authorize", &body, &[("cookie", &pair), ("cookie", &pair)]).await;
    assert_eq!(r.status, 403);
    // The token in a case-changed spelling.
    let up = csrf.to_uppercase();
    let mut upper = fields.clone();
    upper.retain(|(k, _)| *k != "csrf");
    upper.push(("csrf", &up));
    assert_eq!(
        post_form(&gw, "/authorize", &form(&upper), &[("cookie", &pair)])
            .await
            .status,
        403
    );
    // Not a form.
    let r = gw
        .send(
            Request::post("/authorize")
                .header("host", "localhost")
                .header("content-type", "text/plain")
                .header("cookie", &pair)
                .body(Body::from(body.clone()))
                .unwrap(),
        )
        .await;
    page_refusal(&r, "text/plain answer");
    // A revoked key through the form: access_denied back to the client.
    let mut gone = fields.clone();
    gone.retain(|(k, _)| *k != "api_key");
    gone.push(("api_key", &revoked.key));
    let r = post_form(&gw, "/authorize", &form(&gone), &[("cookie", &pair)]).await;
    assert_eq!(location_params(&r)["error"], "access_denied");
    // No decision: invalid_request, not a grant.
    let mut none = fields.clone();
    none.retain(|(k, _)| *k != "decision");
    let r = post_form(&gw, "/authorize", &form(&none), &[("cookie", &pair)]).await;
    assert_eq!(location_params(&r)["error"], "invalid_request");
    // The form's parameters swapped for another client's redirect: still checked.
    let mut swapped = fields.clone();
    swapped.retain(|(k, _)| *k != "redirect_uri");
    swapped.push(("redirect_uri", "https://evil.example/cb"));
    page_refusal(
        &post_form(&gw, "/authorize", &form(&swapped), &[("cookie", &pair)]).await,
        "swapped redirect",
    );
    // Observed (not a hole on its own): without Origin, a foreign Referer is not looked at; the
    // SameSite=Lax, HttpOnly cookie bound to the form's token is what stops a cross-site post.
    let r = post_form(
        &gw,
        "/authorize",
        &body,
        &[("cookie", &pair), ("referer", "https://evil.example/page")],
    )
    .await;
    assert_eq!(r.status, 303);
}

/// An https issuer's CSRF cookie is `__Host-` prefixed (no sibling-domain tossing); an
/// unprefixed cookie of the same name is not read.
#[tokio::test]
async fn held_https_issuer_cookie_prefix() {
    let setup = Setup::new("public_url = \"https://gw.example\"\n[http]\nallowed_hosts = [\"gw.example\"]\n[oauth]\n");
    let ana = setup.key(key("ana"));
    let gw = setup.start().await;
    let reg = gw
        .send(
            Request::post("/register")
                .header("host", "gw.example")
                .header("content-type", "application/json")
                .body(Body::from(
                    json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}).to_string(),
                ))
                .unwrap(),
        )
        .await;
    assert_eq!(reg.status, 201, "{}", reg.text);
    let client = reg.body["client_id"].as_str().unwrap().to_string();
    let ch = challenge(VERIFIER);
    let q = format!(
        "/authorize?{}",
        form(&[
            ("response_type", "code"),
            ("client_id", &client),
            ("redirect_uri", REDIRECT),
            ("code_challenge", &ch),
            ("code_challenge_method", "S256"),
            ("resource", "https://gw.example/mcp"),
        ])
    );
    let page = gw
        .send(
            Request::get(&q)
                .header("host", "gw.example")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.text);
    let cookie = page.header("set-cookie").unwrap().to_string();
    assert!(cookie.starts_with("__Host-mcpgate_csrf="), "{cookie}");
    assert!(
        cookie.contains("; Secure") && cookie.contains("Path=/") && !cookie.contains("Domain"),
        "{cookie}"
    );
    let csrf = cookie.split(';').next().unwrap().split_once('=').unwrap().1.to_string();
    let body = form(&[
        ("response_type", "code"),
        ("client_id", &client),
        ("redirect_uri", REDIRECT),
        ("code_challenge", &ch),
        ("code_challenge_method", "S256"),
        ("resource", "https://gw.example/mcp"),
        ("api_key", &ana.key),
        ("decision", "allow"),
        ("csrf", &csrf),
    ]);
    let post = |cookie: String| {
        Request::post("/authorize")
            .header("host", "gw.example")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", cookie)
            .body(Body::from(body.clone()))
            .unwrap()
    };
    assert_eq!(gw.send(post(format!("mcpgate_csrf={csrf}"))).await.status, 403);
    let r = gw.send(post(format!("__Host-mcpgate_csrf={csrf}"))).await;
    assert_eq!(r.status, 303, "{}", r.text);
    assert!(location_params(&r).contains_key("code"), "{:?}", r.header("location"));
}

/// Tokens on /mcp: algorithm confusion, foreign keys, audience, issuer, times, placement.
#[tokio::test]
async fn held_token_verification_on_mcp() {
    let setup = Setup::new(TOML);
    let ana = setup.key(key("ana"));
    let gw = setup.start().await;
    let a = public_client(&gw).await;
    let (at, _, _) = tokens(&gw, &a, &ana.key).await;
    assert!(works(&gw, &at).await);
    let jwks = get(&gw, "/jwks", &[]).await;
    let jwk = jwks.body["keys"][0].clone();
    let kid = jwk["kid"].as_str().unwrap().to_string();
    let o = gw.gw.oauth.clone().unwrap();
    let now = mcpgate_testkit::time::now_s();
    let good = json!({"iss": "http://localhost", "sub": "ana", "aud": RESOURCE, "iat": now, "nbf": now,
                      "exp": now + 300, "jti": "j", "client_id": a, "scope": "read", "gid": "g-forged",
                      "role": "user", "permissions": ["*"]});
    // Signed by the real signer, as a control: accepted.
    assert!(works(&gw, &o.signer().sign(&good).unwrap()).await);
    let with = |k: &str, v: Value| {
        let mut c = good.clone();
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v;
        }
        o.signer().sign(&c).unwrap()
    };
    let mut bad: Vec<(&str, String)> = vec![
        ("another audience", with("aud", json!("http://localhost/other"))),
        ("audience with a slash", with("aud", json!("http://localhost/mcp/"))),
        ("another issuer", with("iss", json!("http://evil.example"))),
        ("expired 5 s ago (within leeway)", with("exp", json!(now - 5))),
        ("expired", with("exp", json!(now - 600))),
        ("not yet valid", with("nbf", json!(now + 600))),
        ("no exp", with("exp", Value::Null)),
        ("no aud", with("aud", Value::Null)),
        ("no gid", with("gid", Value::Null)),
        ("no sub", with("sub", Value::Null)),
        ("unknown role", with("role", json!("superuser"))),
        ("exp as a string", with("exp", json!((now + 300).to_string()))),
    ];
    // HS256 with the public key as the secret, under our kid.
    for secret in [jwk.to_string(), jwk["x"].as_str().unwrap().to_string()] {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        h.kid = Some(kid.clone());
        let t = jsonwebtoken::encode(&h, &good, &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes())).unwrap();
        bad.push(("HS256 with the public key", t));
    }
    // Another EC key under our kid; our kid on an unknown key id; alg none.
    let test_keys = mcpgate_testkit::keys::keys();
    bad.push((
        "another key, our kid",
        test_keys.ec.sign_as(jsonwebtoken::Algorithm::ES256, Some(&kid), &good),
    ));
    bad.push((
        "another kid",
        test_keys
            .ec
            .sign_as(jsonwebtoken::Algorithm::ES256, Some("other"), &good),
    ));
    bad.push((
        "no kid",
        test_keys.ec.sign_as(jsonwebtoken::Algorithm::ES256, None, &good),
    ));
    let none = format!(
        "{}.{}.",
        b64url(json!({"alg": "none", "kid": kid}).to_string()),
        b64url(good.to_string())
    );
    bad.push(("alg none", none));
    // Our real token with its signature cut, or its payload swapped.
    let parts: Vec<&str> = at.split('.').collect();
    bad.push(("no signature", format!("{}.{}.", parts[0], parts[1])));
    let mut swapped = claims_of(&at);
    swapped["permissions"] = json!(["*"]);
    swapped["role"] = json!("admin");
    bad.push((
        "payload swapped",
        format!("{}.{}.{}", parts[0], b64url(swapped.to_string()), parts[2]),
    ));
    for (what, t) in bad {
        let r = gw
            .call(&[("authorization", &bearer(&t))], None, "whoami", json!({}))
            .await;
        assert_eq!(r.status, 401, "{what}: {}", r.text);
    }
    // Our valid token anywhere but a bearer header.
    for (what, headers, uri) in [
        ("as X-API-Key", vec![("x-api-key", at.clone())], "/mcp".to_string()),
        ("as a query parameter", vec![], format!("/mcp?access_token={at}")),
        ("as api_key query", vec![], format!("/mcp?api_key={at}")),
        (
            "as a Basic password",
            vec![("authorization", basic("ana", &at))],
            "/mcp".to_string(),
        ),
    ] {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = gw.call_at(&uri, &h, None, "whoami", json!({})).await;
        assert!(!r.is_ok(), "{what}: {}", r.text);
    }
}

/// Client ID Metadata Document URLs: only the normal form is fetched; loopback names are not
/// fetched without trust; documents claiming private_key_jwt need keys.
#[tokio::test]
async fn held_cimd_client_id_forms() {
    let (docs, hits) = doc_server(json!({})).await;
    let port = port_of(&docs.base);
    let setup = Setup::new(TRUSTING);
    let ana = setup.key(key("ana"));
    let gw = setup.start().await;
    let k = [("x-api-key", ana.key.as_str())];
    for id in [
        format!("http://LOCALHOST:{port}/doc.json"),
        format!("http://localhost:{port}/./doc.json"),
        format!("http://localhost:{port}/x/../doc.json"),
        format!("http://localhost:{port}/doc.json#f"),
        format!("http://u@localhost:{port}/doc.json"),
        format!("http://localhost:{port}"),
        format!("http://localhost:{port}/"),
        format!("HTTP://localhost:{port}/doc.json"),
        format!("http://127.0.0.1:{port}/%2e/doc.json"),
        format!(" http://localhost:{port}/doc.json"),
    ] {
        let r = get(&gw, &authorize_query(&id, REDIRECT, &[]), &k).await;
        page_refusal(&r, &id);
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0, "a non-normal client_id was fetched");
    // The normal form works (control).
    let id = format!("http://localhost:{port}/doc.json");
    assert_eq!(get(&gw, &authorize_query(&id, REDIRECT, &[]), &k).await.status, 303);

    // Without trust, the name `localhost` is not fetched (it resolves to loopback).
    let setup = Setup::new(TOML);
    let ana = setup.key(key("ana"));
    let strict = setup.start().await;
    let before = hits.load(Ordering::SeqCst);
    let r = get(
        &strict,
        &authorize_query(&format!("http://localhost:{port}/doc.json"), REDIRECT, &[]),
        &[("x-api-key", &ana.key)],
    )
    .await;
    page_refusal(&r, "localhost without trust");
    assert_eq!(hits.load(Ordering::SeqCst), before);

    // private_key_jwt without keys.
    let (docs, _) = doc_server(json!({"token_endpoint_auth_method": "private_key_jwt"})).await;
    let id = format!("{}/doc.json", docs.base);
    page_refusal(
        &get(&gw, &authorize_query(&id, REDIRECT, &[]), &k).await,
        "pkjwt without keys",
    );
}

/// Nothing secret in the logs (TRACE) or in any error body or Location, after flows that cover
/// every endpoint and the failure paths.
#[tokio::test]
async fn held_no_secret_in_logs_or_bodies() {
    let logs = LogCapture::install();
    let setup = Setup::new(TOML).manual_clock();
    let ana = setup.key(key("ana"));
    let gw = setup.start().await;
    let a = public_client(&gw).await;
    let (cid, secret) = confidential(
        &gw,
        json!({"grant_types": ["authorization_code", "refresh_token", "client_credentials"]}),
    )
    .await;
    let mut secrets: Vec<(String, String)> = vec![
        ("api key".into(), ana.key.clone()),
        ("client secret".into(), secret.clone()),
    ];

    // Consent form (the key in a body), then the tokens.
    let (pair, csrf, _) = consent_page(&gw, &authorize_query(&a, REDIRECT, &[])).await;
    let ch = challenge(VERIFIER);
    let r = post_form(
        &gw,
        "/authorize",
        &form(&consent_fields(&a, &ch, &ana.key, &csrf)),
        &[("cookie", &pair)],
    )
    .await;
    let code = location_params(&r)["code"].clone();
    secrets.push(("csrf".into(), csrf.clone()));
    secrets.push(("code".into(), code.clone()));
    let body = form(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
        ("client_id", &a),
    ]);
    let t = post_form(&gw, "/token", &body, &[]).await;
    assert_eq!(t.status, 200, "{}", t.text);
    let (at, rt) = (
        t.body["access_token"].as_str().unwrap().to_string(),
        t.body["refresh_token"].as_str().unwrap().to_string(),
    );
    secrets.push(("access token".into(), at.clone()));
    secrets.push(("refresh token".into(), rt.clone()));
    // The code again (reuse), a wrong verifier, a bad secret, a wrong Basic.
    let again = post_form(&gw, "/token", &body, &[]).await;
    let code2 = code_for(&gw, &a, &ana.key).await;
    secrets.push(("code 2".into(), code2.clone()));
    let wrong = exchange(&gw, &a, &code2, &"w".repeat(43)).await;
    let bad_secret = post_form(
        &gw,
        "/token",
        "grant_type=client_credentials",
        &[("authorization", &basic(&cid, "mcps_wrong-secret-value"))],
    )
    .await;
    let bad_key = get(
        &gw,
        &authorize_query(&a, REDIRECT, &[]),
        &[("x-api-key", "mcp_not-a-real-key-0123456789")],
    )
    .await;
    // Confidential client: code flow with Basic, refresh, introspection, revocation.
    let (at2, rt2, _) = {
        let r = get(
            &gw,
            &authorize_query(&cid, "http://127.0.0.1:53682/callback", &[]),
            &[("x-api-key", &ana.key)],
        )
        .await;
        let c = location_params(&r)["code"].clone();
        secrets.push(("code 3".into(), c.clone()));
        let body = form(&[
            ("grant_type", "authorization_code"),
            ("code", &c),
            ("redirect_uri", "http://127.0.0.1:53682/callback"),
            ("code_verifier", VERIFIER),
        ]);
        let t = post_form(&gw, "/token", &body, &[("authorization", &basic(&cid, &secret))]).await;
        assert_eq!(t.status, 200, "{}", t.text);
        (
            t.body["access_token"].as_str().unwrap().to_string(),
            t.body["refresh_token"].as_str().unwrap().to_string(),
            (),
        )
    };
    secrets.push(("access token 2".into(), at2.clone()));
    secrets.push(("refresh token 2".into(), rt2.clone()));
    let r2 = post_form(
        &gw,
        "/token",
        &form(&[("grant_type", "refresh_token"), ("refresh_token", &rt2)]),
        &[("authorization", &basic(&cid, &secret))],
    )
    .await;
    let rt3 = r2.body["refresh_token"].as_str().unwrap().to_string();
    secrets.push(("refresh token 3".into(), rt3.clone()));
    gw.advance(Duration::from_secs(11));
    let reuse = post_form(
        &gw,
        "/token",
        &form(&[("grant_type", "refresh_token"), ("refresh_token", &rt2)]),
        &[("authorization", &basic(&cid, &secret))],
    )
    .await;
    let _ = post_form(
        &gw,
        "/introspect",
        &form(&[("token", &at)]),
        &[("authorization", &basic(&cid, &secret))],
    )
    .await;
    let _ = post_form(
        &gw,
        "/introspect",
        &form(&[("token", &rt)]),
        &[("authorization", &basic(&cid, &secret))],
    )
    .await;
    let _ = post_form(&gw, "/revoke", &form(&[("token", &rt), ("client_id", &a)]), &[]).await;
    let _ = gw
        .call(&[("authorization", &bearer(&at))], None, "whoami", json!({}))
        .await;
    let _ = gw
        .call(
            &[("authorization", &bearer(&format!("{at}x")))],
            None,
            "whoami",
            json!({}),
        )
        .await;

    let leaks = find_leaks(&secrets, &[("logs", &logs.text())]);
    assert!(leaks.is_empty(), "secrets in the logs:\n{}", leaks.join("\n\n"));
    // Error bodies and error redirects carry none either.
    let errors: Vec<String> = [&again, &wrong, &bad_secret, &bad_key, &reuse]
        .iter()
        .map(|r| format!("{} {:?} {}", r.status, r.header("location"), r.text))
        .collect();
    let leaks = find_leaks(&secrets, &[("error responses", &errors.join("\n"))]);
    assert!(leaks.is_empty(), "secrets in error responses:\n{}", leaks.join("\n\n"));
    // The API key and the verifier are in no response at all.
    let all = gw.responses();
    let never = vec![
        ("api key".to_string(), ana.key.clone()),
        ("verifier".to_string(), VERIFIER.to_string()),
    ];
    let leaks = find_leaks(&never, &[("responses", &all)]);
    assert!(leaks.is_empty(), "{}", leaks.join("\n\n"));
}

// ---------------------------------------------------------------------------------------------
// Failing: each shows one weakness (see the report)
// ---------------------------------------------------------------------------------------------

/// CRITICAL. Anyone who can reach `/register` (on by default, unauthenticated) registers a
/// confidential client with `grant_types: ["client_credentials"]` and `scope: "*"`, then gets a
/// token whose `permissions` are `["*"]` — every tool, no API key, no user.
#[tokio::test]
async fn vuln_dcr_client_credentials_mints_any_permission() {
    let gw = Setup::new(TOML).start().await; // no API key exists at all
    let r = register(
        &gw,
        json!({"redirect_uris": ["https://attacker.example/cb"], "token_endpoint_auth_method": "client_secret_basic",
               "grant_types": ["client_credentials"], "scope": "*"}),
    )
    .await;
    if r.status != 201 {
        return; // refused: the fix
    }
    let (cid, secret) = (
        r.body["client_id"].as_str().unwrap().to_string(),
        r.body["client_secret"].as_str().unwrap().to_string(),
    );
    let t = post_form(
        &gw,
        "/token",
        "grant_type=client_credentials&scope=*",
        &[("authorization", &basic(&cid, &secret))],
    )
    .await;
    if t.status != 200 {
        return;
    }
    let at = t.body["access_token"].as_str().unwrap();
    let r = echo(&gw, &[("authorization", &bearer(at))]).await;
    assert!(
        !r.is_ok(),
        "an unauthenticated party registered itself and called a tool; its token claims {}",
        claims_of(at)
    );
}

/// HIGH. The granted scope does not limit what an issued token may do: the token carries the
/// user's full permissions (and role), and the default policy decides on permissions. A client
/// the user consented to for `read` (the default, "least privilege") calls tools that need
/// `write`.
#[tokio::test]
async fn vuln_granted_scope_does_not_limit_the_token() {
    let setup = Setup::new(TOML);
    let ana = setup.key(key("ana").role(Role::Admin).perms(&["read", "write"]));
    let gw = setup.start().await;
    let a = public_client(&gw).await;
    // The key itself may call echo (default rule: permission `write`).
    let control = echo(&gw, &[("x-api-key", &ana.key)]).await;
    assert!(control.is_ok(), "{}", control.text);
    let (at, _, scope) = tokens(&gw, &a, &ana.key).await;
    assert_eq!(scope, "read");
    let r = echo(&gw, &[("authorization", &bearer(&at))]).await;
    assert!(
        !r.is_ok(),
        "a token granted scope `read` called a `write` tool; claims {}",
        claims_of(&at)
    );
}

/// MEDIUM. A grant outlives the API key that signed it in: once the key has expired (or its
/// rotation overlap has ended), the client keeps refreshing for up to 30 days, with the
/// permissions the key had at sign-in.
#[tokio::test]
async fn vuln_grant_outlives_the_expired_api_key() {
    let setup = Setup::new(TOML).manual_clock();
    let now = mcpgate_testkit::time::now_s();
    let ana = setup.key(key("ana").expires_at(now + 120));
    let gw = setup.start().await;
    let a = public_client(&gw).await;
    let (_, rt, _) = tokens(&gw, &a, &ana.key).await;
    gw.advance(Duration::from_secs(300));
    assert!(
        !gw.call(&[("x-api-key", &ana.key)], None, "whoami", json!({}))
            .await
            .is_ok(),
        "control: the key has expired"
    );
    let r = refresh(&gw, &a, &rt).await;
    assert_eq!(
        r.status, 400,
        "a grant signed in with an expired key still refreshes: {}",
        r.text
    );
}

/// MEDIUM. A metadata document fetch follows redirects (the CIMD draft says it MUST NOT), and a
/// redirect's host is not checked against `oauth.cimd_allowed_hosts`: an open redirect on an
/// allowed host serves a document from any host.
#[tokio::test]
async fn vuln_cimd_redirect_escapes_allowed_hosts() {
    let (docs, hits) = doc_server(json!({})).await;
    let port = port_of(&docs.base);
    let setup = Setup::new(&format!("{TRUSTING}cimd_allowed_hosts = [\"localhost\"]\n"));
    let ana = setup.key(key("ana"));
    let gw = setup.start().await;
    let k = [("x-api-key", ana.key.as_str())];
    // Control: the other host directly is refused, unfetched.
    let direct = format!("http://127.0.0.1:{port}/doc.json");
    page_refusal(&get(&gw, &authorize_query(&direct, REDIRECT, &[]), &k).await, "direct");
    assert_eq!(hits.load(Ordering::SeqCst), 0);
    // Through the allowed host's redirect.
    let id = format!("http://localhost:{port}/redir");
    let r = get(&gw, &authorize_query(&id, REDIRECT, &[]), &k).await;
    assert_eq!(
        r.status,
        400,
        "a document from a host outside cimd_allowed_hosts was accepted through a redirect: Location {:?}",
        r.header("location")
    );
}

/// LOW. A metadata document served as `text/html` is accepted (the CIMD draft: anything but
/// `application/json` or `application/*+json` MUST be treated as an error).
#[tokio::test]
async fn vuln_cimd_document_content_type_unchecked() {
    let (docs, _) = doc_server(json!({})).await;
    let setup = Setup::new(TRUSTING);
    let ana = setup.key(key("ana"));
    let gw = setup.start().await;
    let id = format!("{}/html.json", docs.base);
    let r = get(&gw, &authorize_query(&id, REDIRECT, &[]), &[("x-api-key", &ana.key)]).await;
    assert_eq!(
        r.status,
        400,
        "a text/html document was accepted: {:?}",
        r.header("location")
    );
}

/// MEDIUM-LOW. private_key_jwt accepts an `aud` array that merely contains the token endpoint
/// among other values (the audience-injection class of draft-ietf-oauth-rfc7523bis: the
/// audience should be this server's issuer, as a single string).
#[tokio::test]
async fn vuln_private_key_jwt_audience_array() {
    use mcpgate_testkit::keys::keys;
    let (docs, _) = doc_server(json!({
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [keys().ec.jwk.clone()]},
    }))
    .await;
    let setup = Setup::new(TRUSTING);
    let ana = setup.key(key("ana"));
    let gw = setup.start().await;
    let id = format!("{}/doc.json", docs.base);
    let now = mcpgate_testkit::time::now_s();
    let exchange_with = |code: &str, aud: Value, jti: &str| {
        let a = keys()
            .ec
            .sign(&json!({"iss": id, "sub": id, "aud": aud, "exp": now + 60, "iat": now, "jti": jti}));
        form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &a),
        ])
    };
    let code = || async {
        let r = get(&gw, &authorize_query(&id, REDIRECT, &[]), &[("x-api-key", &ana.key)]).await;
        location_params(&r)["code"].clone()
    };
    // Control: the issuer as a single string.
    let t = post_form(
        &gw,
        "/token",
        &exchange_with(&code().await, json!("http://localhost"), "j1"),
        &[],
    )
    .await;
    assert_eq!(t.status, 200, "{}", t.text);
    let t = post_form(
        &gw,
        "/token",
        &exchange_with(
            &code().await,
            json!(["https://other-as.example/token", "http://localhost/token"]),
            "j2",
        ),
        &[],
    )
    .await;
    assert_eq!(
        t.status, 401,
        "an assertion with aud [other, ours] was accepted: {}",
        t.text
    );
}

/// LOW. `oauth.cimd_denied_hosts` is bypassed by the same host with a trailing dot (an FQDN
/// that resolves the same): the check compares names without normalising the final dot.
#[tokio::test]
async fn vuln_cimd_denied_host_trailing_dot() {
    let logs = LogCapture::install();
    let (docs, _) = doc_server(json!({})).await;
    let port = port_of(&docs.base);
    let setup = Setup::new(&format!("{TRUSTING}cimd_denied_hosts = [\"localhost\"]\n"));
    let ana = setup.key(key("ana"));
    let gw = setup.start().await;
    let k = [("x-api-key", ana.key.as_str())];
    let denied = "this server does not accept clients from that host";
    // Control: the plain name is refused by the deny list.
    let r = get(
        &gw,
        &authorize_query(&format!("http://localhost:{port}/doc.json"), REDIRECT, &[]),
        &k,
    )
    .await;
    page_refusal(&r, "localhost");
    assert_eq!(logs.text().matches(denied).count(), 1, "{}", logs.text());
    // With the final dot: the deny list does not apply; the request goes on to DNS (on a resolver
    // that answers `localhost.`, the document is fetched and used).
    let r = get(
        &gw,
        &authorize_query(&format!("http://localhost.:{port}/doc.json"), REDIRECT, &[]),
        &k,
    )
    .await;
    page_refusal(&r, "localhost.");
    assert_eq!(
        logs.text().matches(denied).count(),
        2,
        "`localhost.` passed the deny list:\n{}",
        logs.text()
    );
}

/// LOW. Unicode bidirectional overrides in a self-registered client_name reach the consent page
/// (control characters are stripped, format characters are not): `\u{202E}` reverses the rest of
/// the heading, so "evil" text can read as a trusted name.
#[tokio::test]
async fn vuln_client_name_bidi_override_on_consent() {
    let gw = Setup::new(TOML).start().await;
    let r = register(
        &gw,
        json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none",
               "client_name": "Claude\u{202E}moc.liam\u{2066}\u{200B}"}),
    )
    .await;
    let client = r.body["client_id"].as_str().unwrap().to_string();
    let page = get(&gw, &authorize_query(&client, REDIRECT, &[]), &[]).await;
    for c in ['\u{202E}', '\u{2066}', '\u{200B}'] {
        assert!(!page.text.contains(c), "U+{:04X} reaches the consent page", c as u32);
    }
}

/// LOW. HTTP Basic credentials are form-decoded with the general form parser, so `&` ends a
/// part silently: `id:secret&anything` authenticates as `id:secret` (not strict; RFC 6749
/// §2.3.1 encodes `&` as `%26`, a raw one is malformed).
#[tokio::test]
async fn vuln_basic_credentials_truncated_at_ampersand() {
    let gw = Setup::new(TOML).start().await;
    let (cid, secret) = confidential(&gw, json!({"grant_types": ["client_credentials"], "scope": "read"})).await;
    let h = format!("Basic {}", b64(format!("{cid}:{secret}&junk=1")));
    let r = post_form(&gw, "/token", "grant_type=client_credentials", &[("authorization", &h)]).await;
    assert_eq!(r.status, 401, "`secret&junk=1` was accepted as the secret: {}", r.text);
}

/// LOW. Introspection is "for confidential clients" so that a public client cannot test stolen
/// tokens — but anyone can register a confidential client: any stranger learns whether a token
/// is live, whose it is (`sub`), its client and scopes.
#[tokio::test]
async fn vuln_introspection_open_to_any_registered_client() {
    let setup = Setup::new(TOML);
    let ana = setup.key(key("ana"));
    let gw = setup.start().await;
    let a = public_client(&gw).await;
    let (at, _, _) = tokens(&gw, &a, &ana.key).await;
    let (stranger, secret) = confidential(&gw, json!({})).await;
    let r = post_form(
        &gw,
        "/introspect",
        &form(&[("token", &at)]),
        &[("authorization", &basic(&stranger, &secret))],
    )
    .await;
    assert!(
        r.body["active"] != json!(true),
        "a self-registered client introspected another client's token: {}",
        r.text
    );
}

/// MEDIUM. An issued token drops the per-key rate limits: the grant's subject records who signed
/// in but not the key's `limits`, so a user whose key is held to N requests a minute goes
/// through OAuth unmetered (the token's principal has no limits, and a fresh bucket).
#[tokio::test]
async fn vuln_oauth_token_escapes_the_keys_rate_limit() {
    use mcpgate_core::principal::Limits;
    let setup = Setup::new(TOML);
    let ana = setup.key(key("ana").limits(Limits {
        per_minute: Some(2),
        ..Limits::default()
    }));
    let gw = setup.start().await;
    let a = public_client(&gw).await;
    let (at, _, _) = tokens(&gw, &a, &ana.key).await;
    // Control: the key itself is stopped at its third request of the minute.
    let mut by_key = Vec::new();
    for _ in 0..3 {
        by_key.push(
            gw.call(&[("x-api-key", &ana.key)], None, "whoami", json!({}))
                .await
                .status
                .as_u16(),
        );
    }
    assert_eq!(by_key, [200, 200, 429], "control");
    let mut by_token = 0;
    for _ in 0..10 {
        if works(&gw, &at).await {
            by_token += 1;
        }
    }
    assert!(
        by_token <= 2,
        "the key allows 2 a minute; its OAuth token made {by_token}"
    );
}

/// MEDIUM (with `[delegation] env_fallback`). The upstream credential an administrator holds for
/// a user's key is looked up by the principal's key id, which an issued token does not carry:
/// the same user through OAuth is sent upstream with the shared fallback credential instead of
/// their own (another identity at the upstream; without a fallback, a refusal).
#[tokio::test]
async fn vuln_oauth_token_loses_the_users_held_upstream_credential() {
    use mcpgate_core::sealed::SealingKey;
    use mcpgate_store::{CredentialStore, SealedCredential};
    let sealing = SealingKey::generate_text();
    let mut setup = Setup::new(
        "public_url = \"http://localhost\"\n[oauth]\n\n[delegation]\nheader = \"Authorization\"\ntemplate = \"Bearer {credential}\"\nenv_fallback = [\"SHARED_UPSTREAM_KEY\"]\n",
    );
    setup.env("MCPGATE_ENCRYPTION_KEY", &sealing);
    setup.env("SHARED_UPSTREAM_KEY", "shared-service-credential");
    let alice = setup.key(key("alice"));
    let (nonce, ciphertext) = SealingKey::parse(&sealing)
        .unwrap()
        .seal(&alice.key_id, b"alice-own-credential")
        .unwrap();
    mcpgate_testkit::time::block_on(setup.store().set_credential(
        &alice.key_id,
        &SealedCredential {
            nonce: nonce.to_vec(),
            ciphertext,
        },
        mcpgate_testkit::time::now_s(),
    ))
    .unwrap();
    let gw = setup.start().await;
    let upstream_auth = |h: &[(&str, &str)]| {
        let h: Vec<(String, String)> = h.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let gw = &gw;
        async move {
            let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let s = gw.initialize(&h).await;
            let r = gw.call(&h, Some(&s), "inspect", json!({})).await;
            r.ok("inspect");
            r.tool_json()["http"]["headers"]["authorization"].clone()
        }
    };
    assert_eq!(
        upstream_auth(&[("x-api-key", &alice.key)]).await,
        json!("Bearer alice-own-credential"),
        "control"
    );
    let a = public_client(&gw).await;
    // The scope a tool call needs (tokens carry only what was granted).
    let r = get(
        &gw,
        &authorize_query(&a, "http://127.0.0.1:53682/callback", &[("scope", "read write")]),
        &[("x-api-key", &alice.key)],
    )
    .await;
    let code = location_params(&r)["code"].clone();
    let t = exchange(&gw, &a, &code, VERIFIER).await;
    let at = t.body["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        upstream_auth(&[("authorization", &bearer(&at))]).await,
        json!("Bearer alice-own-credential"),
        "alice through OAuth reached the upstream as someone else"
    );
}

/// LOW. Revoking an API key ends the grants signed in with it, but not the authorization codes
/// issued with it and not yet exchanged: a code minted just before the revocation is exchanged
/// afterwards for a fresh grant (refresh token included) of the revoked key.
#[tokio::test]
async fn vuln_code_issued_before_key_revocation_still_exchanges() {
    use mcpgate_gateway::key_service::KeyService;
    let setup = Setup::new(TOML);
    let ana = setup.key(key("ana"));
    let gw = setup.start().await;
    let a = public_client(&gw).await;
    let code = code_for(&gw, &a, &ana.key).await;
    // What `mcpgate keys revoke` does, on the gateway's store.
    let store = Arc::new(gw.store().clone());
    let svc = KeyService::new(store.clone(), store.clone()).with_grants(store);
    svc.revoke(&ana.key_id, mcpgate_testkit::time::now_s()).await.unwrap();
    // A running gateway sees a revoked key within a second (its key registry re-reads on change).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let r = exchange(&gw, &a, &code, VERIFIER).await;
    assert_eq!(
        r.status, 400,
        "a code of a revoked key was exchanged for tokens: {}",
        r.text
    );
}
