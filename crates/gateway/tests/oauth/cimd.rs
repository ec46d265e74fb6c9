//! Client ID Metadata Documents: a ChatGPT- or Claude-style client whose client_id is the URL of
//! its metadata, served here on loopback (trusted only where the test says so); the SSRF guard,
//! the document's checks, and the cache.

use crate::*;
use axum::Router;
use axum::routing::get as route_get;
use mcpgate_testkit::apikey::*;
use mcpgate_testkit::fake::LocalServer;
use mcpgate_testkit::harness::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const TRUSTING: &str = "public_url = \"http://localhost\"\n[oauth]\ncimd_trusted_networks = [\"127.0.0.0/8\"]\n";

/// Serves `doc(base)` at /oauth/client.json (with a cache lifetime), counting fetches; and some
/// hostile variants beside it.
async fn documents(doc: impl Fn(&str) -> Value + Send + Sync + 'static) -> (LocalServer, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let base = Arc::new(std::sync::OnceLock::<String>::new());
    let (h, b, doc) = (hits.clone(), base.clone(), Arc::new(doc));
    let app = Router::new()
        .route(
            "/oauth/client.json",
            route_get(move || {
                h.fetch_add(1, Ordering::SeqCst);
                let body = doc(b.get().map(String::as_str).unwrap_or(""));
                async move { ([("cache-control", "public, max-age=600")], axum::Json(body)) }
            }),
        )
        .route(
            "/oauth/to-private.json",
            route_get(|| async { (http::StatusCode::FOUND, [("location", "http://10.0.0.1/client.json")]) }),
        )
        .route("/oauth/huge.json", route_get(|| async { "x".repeat(200 * 1024) }));
    let server = LocalServer::start(app).await;
    let _ = base.set(server.base.clone());
    (server, hits)
}

fn chatgpt_like(base: &str) -> Value {
    json!({
        "client_id": format!("{base}/oauth/client.json"),
        "client_name": "ChatGPT-like",
        "redirect_uris": ["https://chat.example/connector_platform_oauth_redirect", "http://localhost/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "none",
    })
}

#[tokio::test]
async fn a_metadata_document_client_completes_the_flow_once_fetched() {
    let logs = mcpgate_testkit::logs::LogCapture::install();
    let (docs, hits) = documents(chatgpt_like).await;
    let setup = Setup::new(TRUSTING);
    let ana = setup.key(key("ana").perms(&["read"]));
    let gw = setup.start().await;
    let meta = get(&gw, "/.well-known/oauth-authorization-server", &[]).await;
    assert_eq!(meta.body["client_id_metadata_document_supported"], true);
    let client_id = format!("{}/oauth/client.json", docs.base);
    // Claude Code's portless loopback redirect, on a random port.
    let q = authorize_query(&client_id, "http://localhost:41234/callback", &[]);
    let r = get(&gw, &q, &[("x-api-key", &ana.key)]).await;
    assert_eq!(r.status, 303, "{}\n{}", r.text, logs.text());
    let p = location_params(&r);
    let body = form(&[
        ("grant_type", "authorization_code"),
        ("code", &p["code"]),
        ("redirect_uri", "http://localhost:41234/callback"),
        ("code_verifier", VERIFIER),
        ("client_id", &client_id),
    ]);
    let t = post_form(&gw, "/token", &body, &[]).await;
    assert_eq!(t.status, 200, "{}", t.text);
    assert!(t.body["refresh_token"].is_string());
    // Cached for its max-age: the next authorize does not fetch again.
    let _ = get(&gw, &q, &[("x-api-key", &ana.key)]).await;
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "the document was fetched again within its max-age"
    );
    // A redirect the document does not list: a page, not a redirect.
    let r = get(
        &gw,
        &authorize_query(&client_id, "https://evil.example/cb", &[]),
        &[("x-api-key", &ana.key)],
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.header("location").is_none());
}

#[tokio::test]
async fn documents_on_private_addresses_are_refused_without_trust() {
    let (docs, hits) = documents(chatgpt_like).await;
    let setup = Setup::new(TOML);
    let ana = setup.key(key("ana"));
    let gw = setup.start().await;
    let client_id = format!("{}/oauth/client.json", docs.base);
    let r = get(
        &gw,
        &authorize_query(&client_id, "http://localhost/callback", &[]),
        &[("x-api-key", &ana.key)],
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.header("location").is_none());
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "the gateway connected to a loopback address"
    );
    // The page does not say what the address resolved to (no network probe through it).
    assert!(
        !r.text.contains("127.0.0.1") || r.text.contains(&client_id),
        "{}",
        r.text
    );
    assert!(!r.text.contains("loopback"), "{}", r.text);
    // Nor does the token endpoint.
    let body = form(&[
        ("grant_type", "authorization_code"),
        ("code", "x"),
        ("client_id", &client_id),
    ]);
    let t = post_form(&gw, "/token", &body, &[]).await;
    oauth_error(&t, 401, "invalid_client");
    for url in [
        "http://10.0.0.1/oauth/client.json",
        "https://169.254.169.254/latest/client.json",
    ] {
        let r = get(
            &gw,
            &authorize_query(url, "http://localhost/callback", &[]),
            &[("x-api-key", &ana.key)],
        )
        .await;
        assert_eq!(r.status, 400, "{url}");
    }
}

#[tokio::test]
async fn bad_documents_are_refused() {
    let (docs, _) = documents(
        |base| json!({"client_id": format!("{base}/oauth/other.json"), "redirect_uris": ["http://localhost/callback"]}),
    )
    .await;
    let setup = Setup::new(TRUSTING);
    let ana = setup.key(key("ana"));
    let gw = setup.start().await;
    let k = [("x-api-key", ana.key.as_str())];
    for path in [
        "/oauth/client.json",
        "/oauth/to-private.json",
        "/oauth/huge.json",
        "/oauth/missing.json",
    ] {
        let client_id = format!("{}{path}", docs.base);
        let r = get(&gw, &authorize_query(&client_id, "http://localhost/callback", &[]), &k).await;
        assert_eq!(r.status, 400, "{path}: {}", r.text);
        assert!(r.header("location").is_none(), "{path}");
    }
}

#[tokio::test]
async fn a_document_may_not_claim_a_secret_or_a_private_redirect() {
    for doc in [
        json!({"token_endpoint_auth_method": "client_secret_basic", "redirect_uris": ["http://localhost/callback"]}),
        json!({"redirect_uris": ["http://evil.example/callback"]}),
        json!({"redirect_uris": ["javascript:alert(1)"]}),
        json!({"redirect_uris": []}),
    ] {
        let d = doc.clone();
        let (docs, _) = documents(move |base| {
            let mut v = d.clone();
            v["client_id"] = json!(format!("{base}/oauth/client.json"));
            v
        })
        .await;
        let setup = Setup::new(TRUSTING);
        let ana = setup.key(key("ana"));
        let gw = setup.start().await;
        let client_id = format!("{}/oauth/client.json", docs.base);
        let r = get(
            &gw,
            &authorize_query(&client_id, "http://localhost/callback", &[]),
            &[("x-api-key", &ana.key)],
        )
        .await;
        assert_eq!(r.status, 400, "{doc}: {}", r.text);
    }
}

/// ChatGPT's form: a metadata document with its keys, `private_key_jwt` at the token endpoint,
/// `iss` checked on the redirect. Every way an assertion can be wrong is refused.
#[tokio::test]
async fn private_key_jwt_from_a_metadata_document() {
    use mcpgate_testkit::keys::keys;
    let (docs, _) = documents(|base| {
        json!({
            "client_id": format!("{base}/oauth/client.json"),
            "client_name": "ChatGPT-like",
            "redirect_uris": ["https://chat.example/connector_platform_oauth_redirect"],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [keys().ec.jwk.clone()]},
        })
    })
    .await;
    let setup = Setup::new(TRUSTING);
    let ana = setup.key(key("ana").perms(&["read"]));
    let gw = setup.start().await;
    let client_id = format!("{}/oauth/client.json", docs.base);
    let redirect = "https://chat.example/connector_platform_oauth_redirect";
    let now = mcpgate_testkit::time::now_s();
    let assertion = |claims: Value| keys().ec.sign(&claims);
    let good = |jti: &str| json!({"iss": client_id, "sub": client_id, "aud": "http://localhost/token", "exp": now + 60, "iat": now, "jti": jti});
    let exchange_with = |code: String, a: String| {
        form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect),
            ("code_verifier", VERIFIER),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &a),
        ])
    };
    let code = || async {
        let r = get(
            &gw,
            &authorize_query(&client_id, redirect, &[]),
            &[("x-api-key", &ana.key)],
        )
        .await;
        assert_eq!(r.status, 303, "{}", r.text);
        let p = location_params(&r);
        assert_eq!(p["iss"], "http://localhost");
        p["code"].clone()
    };
    let a1 = assertion(good("jti-1"));
    let t = post_form(&gw, "/token", &exchange_with(code().await, a1.clone()), &[]).await;
    assert_eq!(t.status, 200, "{}", t.text);

    let mut bad = vec![
        ("replayed jti", a1),
        (
            "expired",
            assertion(
                json!({"iss": client_id, "sub": client_id, "aud": "http://localhost/token", "exp": now - 120, "jti": "j2"}),
            ),
        ),
        (
            "another audience",
            assertion(
                json!({"iss": client_id, "sub": client_id, "aud": "https://elsewhere.example/token", "exp": now + 60, "jti": "j3"}),
            ),
        ),
        (
            "sub differs",
            assertion(
                json!({"iss": client_id, "sub": "someone", "aud": "http://localhost/token", "exp": now + 60, "jti": "j4"}),
            ),
        ),
        (
            "an hour long",
            assertion(
                json!({"iss": client_id, "sub": client_id, "aud": "http://localhost/token", "exp": now + 3600, "jti": "j5"}),
            ),
        ),
        (
            "no jti",
            assertion(json!({"iss": client_id, "sub": client_id, "aud": "http://localhost/token", "exp": now + 60})),
        ),
        (
            "wrong key",
            keys()
                .ed
                .sign_as(jsonwebtoken::Algorithm::EdDSA, Some("ec-1"), &good("j6")),
        ),
        ("HS256", {
            let k = jsonwebtoken::EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef");
            jsonwebtoken::encode(
                &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
                &good("j7"),
                &k,
            )
            .unwrap()
        }),
        ("not a JWT", "abc.def".to_string()),
    ];
    bad.push((
        "unsigned",
        format!("{}.", {
            let h = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, br#"{"alg":"none"}"#);
            let c = base64::Engine::encode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                good("j8").to_string(),
            );
            format!("{h}.{c}")
        }),
    ));
    for (what, a) in bad {
        let t = post_form(&gw, "/token", &exchange_with(code().await, a), &[]).await;
        oauth_error(&t, 401, "invalid_client");
        assert!(!t.text.contains(&client_id) || what.is_empty(), "{what}: {}", t.text);
    }
    // Without an assertion: this client does not authenticate with "none".
    let body = form(&[
        ("grant_type", "authorization_code"),
        ("code", &code().await),
        ("client_id", &client_id),
    ]);
    oauth_error(&post_form(&gw, "/token", &body, &[]).await, 401, "invalid_client");
}
