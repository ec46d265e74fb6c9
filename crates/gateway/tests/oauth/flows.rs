//! The code flow, refresh and revocation, the refusals, the consent form.

use crate::*;
use axum::body::Body;
use http::Request;
use mcpgate_core::principal::Role;
use mcpgate_testkit::apikey::*;
use mcpgate_testkit::harness::*;
use mcpgate_testkit::logs::{LogCapture, find_leaks};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn discovery_names_this_server() {
    let gw = Setup::new(TOML).start().await;
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let r = get(&gw, path, &[]).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.body["issuer"], "http://localhost");
        assert_eq!(r.body["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(r.body["authorization_response_iss_parameter_supported"], true);
        assert_eq!(r.body["registration_endpoint"], "http://localhost/register");
        assert!(
            r.body["scopes_supported"]
                .as_array()
                .unwrap()
                .contains(&json!("offline_access"))
        );
    }
    let prm = get(&gw, "/.well-known/oauth-protected-resource/mcp", &[]).await;
    assert_eq!(prm.body["authorization_servers"][0], "http://localhost");
    let jwks = get(&gw, "/jwks", &[]).await;
    let k = &jwks.body["keys"][0];
    assert_eq!((k["kty"].as_str(), k["alg"].as_str()), (Some("EC"), Some("ES256")));
    assert!(k.get("d").is_none(), "the private part is never published");
}

#[tokio::test]
async fn code_flow_refresh_and_revocation() {
    let logs = LogCapture::install();
    let setup = Setup::new(TOML).manual_clock();
    let ana = setup.key(
        key("ana")
            .role(Role::Developer)
            .perms(&["read", "tools:echo", "execute"]),
    );
    let gw = setup.start().await;
    let client = public_client(&gw).await;
    let code = code_for(&gw, &client, &ana.key).await;

    // Wrong verifier: refused, and the code is spent.
    let wrong = "x".repeat(43);
    oauth_error(&exchange(&gw, &client, &code, &wrong).await, 400, "invalid_grant");
    let code = code_for(&gw, &client, &ana.key).await;
    let r = exchange(&gw, &client, &code, VERIFIER).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let access = r.body["access_token"].as_str().unwrap().to_string();
    let refresh1 = r.body["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(r.body["token_type"], "Bearer");
    // Default scopes: `read` only (least privilege), though the user holds more.
    assert_eq!(r.body["scope"], "read");

    // The token through the whole pipeline: the signed-in user, method oauth.
    let bearer = format!("Bearer {access}");
    let me = gw.whoami(&[("authorization", &bearer)]).await;
    assert_eq!(me["user_id"], "ana", "{me}");
    assert_eq!(me["auth_method"], "oauth", "{me}");
    // Audit names the client too.
    let rows = gw.audit().await;
    let last = rows
        .iter()
        .rev()
        .find(|r| r.auth_method.as_deref() == Some("oauth"))
        .expect("an oauth audit record");
    assert_eq!(last.client_id.as_deref(), Some(client.as_str()));
    assert_eq!(last.user_id.as_deref(), Some("ana"));

    // The code again: refused, and what it issued is revoked.
    let again = exchange(&gw, &client, &code, VERIFIER).await;
    oauth_error(&again, 400, "invalid_grant");
    let r = gw.call(&[("authorization", &bearer)], None, "whoami", json!({})).await;
    assert_eq!(
        r.status, 401,
        "an access token of a revoked grant still works: {}",
        r.text
    );

    // A new grant: refresh rotates; the previous token works once within the grace window.
    let code = code_for(&gw, &client, &ana.key).await;
    let r = exchange(&gw, &client, &code, VERIFIER).await;
    let refresh1b = r.body["refresh_token"].as_str().unwrap().to_string();
    let _ = refresh1;
    let r2 = refresh(&gw, &client, &refresh1b).await;
    assert_eq!(r2.status, 200, "{}", r2.text);
    let refresh2 = r2.body["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(refresh2, refresh1b);
    let raced = refresh(&gw, &client, &refresh1b).await;
    assert_eq!(raced.status, 200, "the racing refresh within grace: {}", raced.text);
    // Past the grace window the replaced token revokes the family.
    gw.advance(Duration::from_secs(6));
    oauth_error(&refresh(&gw, &client, &refresh1b).await, 400, "invalid_grant");
    oauth_error(&refresh(&gw, &client, &refresh2).await, 400, "invalid_grant");
    let fresh = r2.body["access_token"].as_str().unwrap();
    let r = gw
        .call(
            &[("authorization", &format!("Bearer {fresh}"))],
            None,
            "whoami",
            json!({}),
        )
        .await;
    assert_eq!(r.status, 401, "a revoked family's access token still works");

    // RFC 7009: the client revokes its own grant.
    let code = code_for(&gw, &client, &ana.key).await;
    let r = exchange(&gw, &client, &code, VERIFIER).await;
    let at = r.body["access_token"].as_str().unwrap().to_string();
    let rt = r.body["refresh_token"].as_str().unwrap().to_string();
    let rv = post_form(&gw, "/revoke", &form(&[("token", &rt), ("client_id", &client)]), &[]).await;
    assert_eq!(rv.status, 200);
    let r = gw
        .call(&[("authorization", &format!("Bearer {at}"))], None, "whoami", json!({}))
        .await;
    assert_eq!(r.status, 401);
    oauth_error(&refresh(&gw, &client, &rt).await, 400, "invalid_grant");

    let mut secrets = vec![
        ("api key".to_string(), ana.key.clone()),
        ("access token".to_string(), access.clone()),
        ("refresh token".to_string(), refresh2.clone()),
        ("verifier".to_string(), VERIFIER.to_string()),
    ];
    secrets.push(("code".to_string(), code.clone()));
    let audit = mcpgate_testkit::harness::audit_text(&gw.audit().await);
    let metrics = get(&gw, "/metrics", &[]).await.text;
    let leaks = find_leaks(
        &secrets,
        &[("logs", &logs.text()), ("audit", &audit), ("metrics", &metrics)],
    );
    assert!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n\n"));
}

#[tokio::test]
async fn refusals_are_exact() {
    let setup = Setup::new(TOML);
    let ana = setup.key(key("ana").perms(&["read"]));
    let gw = setup.start().await;
    let client = public_client(&gw).await;
    let k = [("x-api-key", ana.key.as_str())];

    // Unknown client and a redirect it did not register: a page, never a redirect.
    for q in [
        authorize_query("nobody", REDIRECT, &[]),
        authorize_query(&client, "http://127.0.0.1/other", &[]),
        authorize_query(&client, "https://evil.example/callback", &[]),
    ] {
        let r = get(&gw, &q, &k).await;
        assert_eq!(r.status, 400, "{q}: {}", r.text);
        assert!(r.header("location").is_none(), "{q}");
        assert!(r.header("content-type").unwrap().starts_with("text/html"));
        assert_eq!(r.header("x-frame-options"), Some("DENY"));
    }
    // After the client is known: back to it with an error, state and iss.
    for (extra, error) in [
        (vec![("code_challenge", "")], "invalid_request"),
        (vec![("code_challenge_method", "plain")], "invalid_request"),
        (vec![("code_challenge_method", "")], "invalid_request"),
        (vec![("resource", "")], "invalid_target"),
        (vec![("resource", "https://elsewhere.example/mcp")], "invalid_target"),
        (vec![("response_type", "token")], "unsupported_response_type"),
    ] {
        let r = get(&gw, &authorize_query(&client, REDIRECT, &extra), &k).await;
        assert_eq!(r.status, 303, "{extra:?}: {}", r.text);
        let p = location_params(&r);
        assert_eq!(p["error"], error, "{extra:?}");
        assert_eq!((p["state"].as_str(), p["iss"].as_str()), ("st-123", "http://localhost"));
    }
    // A bad key: access_denied.
    let r = get(
        &gw,
        &authorize_query(&client, REDIRECT, &[]),
        &[("x-api-key", "mcp_nope")],
    )
    .await;
    assert_eq!(location_params(&r)["error"], "access_denied");
    // A parameter twice: refused as ambiguous.
    let q = format!("{}&client_id={client}", authorize_query(&client, REDIRECT, &[]));
    assert_eq!(get(&gw, &q, &k).await.status, 400);

    // Token endpoint: duplicates, wrong types, unknown clients, unknown codes.
    let dup = format!("grant_type=authorization_code&code=a&code=b&client_id={client}");
    oauth_error(&post_form(&gw, "/token", &dup, &[]).await, 400, "invalid_request");
    let r = gw
        .send(
            Request::post("/token")
                .header("host", "localhost")
                .header("content-type", "application/json")
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await;
    oauth_error(&r, 400, "invalid_request");
    let r = post_form(
        &gw,
        "/token",
        "grant_type=authorization_code&client_id=nobody&code=x",
        &[],
    )
    .await;
    oauth_error(&r, 401, "invalid_client");
    assert!(r.header("www-authenticate").is_some(), "every 401 carries a challenge");
    let r = post_form(
        &gw,
        "/token",
        "grant_type=authorization_code",
        &[("authorization", "Basic bm9ib2R5Om5v")],
    )
    .await;
    oauth_error(&r, 401, "invalid_client");
    assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"mcpgate\""));
    oauth_error(
        &exchange(&gw, &client, "mcpc_unknown", VERIFIER).await,
        400,
        "invalid_grant",
    );
    let r = post_form(
        &gw,
        "/token",
        &form(&[("grant_type", "password"), ("client_id", &client)]),
        &[],
    )
    .await;
    oauth_error(&r, 400, "unsupported_grant_type");

    // A code for one resource cannot be exchanged for another.
    let code = code_for(&gw, &client, &ana.key).await;
    let body = form(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", "http://127.0.0.1:53682/callback"),
        ("code_verifier", VERIFIER),
        ("client_id", &client),
        ("resource", "https://elsewhere.example/mcp"),
    ]);
    oauth_error(&post_form(&gw, "/token", &body, &[]).await, 400, "invalid_target");

    // DCR: only https or loopback http redirects, strict JSON.
    for bad in [
        json!({"redirect_uris": ["http://evil.example/cb"]}),
        json!({"redirect_uris": ["myapp://cb"]}),
        json!({"redirect_uris": ["https://ok.example/cb#frag"]}),
        json!({"redirect_uris": []}),
    ] {
        let r = register(&gw, bad.clone()).await;
        assert_eq!(
            (r.status.as_u16(), r.body["error"].as_str()),
            (400, Some("invalid_redirect_uri")),
            "{bad}"
        );
    }
    let r = register(&gw, json!({"redirect_uris": "https://ok.example/cb"})).await;
    assert_eq!(r.body["error"], "invalid_client_metadata");
    let req = Request::post("/register")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Body::from(
            r#"{"redirect_uris":["https://a.example/cb"],"redirect_uris":["http://evil.example/cb"]}"#,
        ))
        .unwrap();
    assert_eq!(
        gw.send(req).await.body["error"],
        "invalid_client_metadata",
        "duplicate keys"
    );
    // A confidential client gets a secret once; a wrong one is refused.
    let r = register(
        &gw,
        json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "client_secret_post"}),
    )
    .await;
    let (cid, secret) = (
        r.body["client_id"].as_str().unwrap(),
        r.body["client_secret"].as_str().unwrap(),
    );
    assert!(secret.starts_with("mcps_"));
    let body = form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", "x"),
        ("client_id", cid),
        ("client_secret", "wrong"),
    ]);
    oauth_error(&post_form(&gw, "/token", &body, &[]).await, 401, "invalid_client");
    let body = form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", "x"),
        ("client_id", cid),
    ]);
    oauth_error(&post_form(&gw, "/token", &body, &[]).await, 401, "invalid_client");
}

#[tokio::test]
async fn the_consent_form_signs_in_and_needs_its_csrf_token() {
    let setup = Setup::new(TOML);
    let ana = setup.key(key("ana").perms(&["read"]));
    let gw = setup.start().await;
    let client = public_client(&gw).await;
    let page = get(&gw, &authorize_query(&client, REDIRECT, &[]), &[]).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(
        page.text.contains("Test &lt;b&gt;client&lt;/b&gt;"),
        "the client's name is escaped"
    );
    assert!(page.text.contains("unverified"));
    assert!(
        page.header("content-security-policy")
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    let cookie = page.header("set-cookie").unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_string();
    let csrf = pair.split_once('=').unwrap().1.to_string();
    let ch = challenge(VERIFIER);
    let fields = [
        ("response_type", "code"),
        ("client_id", client.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_challenge", ch.as_str()),
        ("code_challenge_method", "S256"),
        ("state", "st-123"),
        ("resource", RESOURCE),
        ("api_key", ana.key.as_str()),
        ("decision", "allow"),
    ];
    // Without the token, with another, or from another site: refused.
    let r = post_form(&gw, "/authorize", &form(&fields), &[("cookie", &pair)]).await;
    assert_eq!(r.status, 403);
    let mut with_csrf = fields.to_vec();
    with_csrf.push(("csrf", &csrf));
    let r = post_form(
        &gw,
        "/authorize",
        &form(&with_csrf),
        &[("cookie", "mcpgate_csrf=other")],
    )
    .await;
    assert_eq!(r.status, 403);
    let r = post_form(
        &gw,
        "/authorize",
        &form(&with_csrf),
        &[("cookie", &pair), ("origin", "https://evil.example")],
    )
    .await;
    assert_eq!(r.status, 403);
    // Denied: back with access_denied.
    let mut deny = with_csrf.clone();
    deny.retain(|(k, _)| *k != "decision");
    deny.push(("decision", "deny"));
    let r = post_form(&gw, "/authorize", &form(&deny), &[("cookie", &pair)]).await;
    assert_eq!(location_params(&r)["error"], "access_denied");
    // Allowed: back with a code that works.
    let r = post_form(
        &gw,
        "/authorize",
        &form(&with_csrf),
        &[("cookie", &pair), ("origin", "http://localhost")],
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.text);
    let p = location_params(&r);
    let body = form(&[
        ("grant_type", "authorization_code"),
        ("code", &p["code"]),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
        ("client_id", &client),
    ]);
    let t = post_form(&gw, "/token", &body, &[]).await;
    assert_eq!(t.status, 200, "{}", t.text);
}

/// Seed 002's token manager: a confidential client's own token (client_credentials), used on
/// `/mcp`; introspection for resource servers (confidential clients only), and a revoked token
/// described as inactive.
#[tokio::test]
async fn client_credentials_and_introspection() {
    use mcpgate_gateway::oauth::register::NewClient;
    use mcpgate_store::oauth::{ClientKind, ClientStore};
    let setup = Setup::new(TOML);
    // A client an operator registered (`mcpgate clients add`): self-registered ones may not act
    // as themselves.
    let (client, secret) = NewClient {
        kind: ClientKind::Configured,
        name: Some("ops".into()),
        redirect_uris: vec![REDIRECT.into()],
        auth_method: Some("client_secret_basic".into()),
        grant_types: Some(vec!["client_credentials".into()]),
        scope: Some("read".into()),
    }
    .build(&mcpgate_core::entropy::OsEntropy, 1)
    .unwrap();
    setup.store().insert_client(&client).await.unwrap();
    let gw = setup.start().await;
    let (cid, secret) = (client.client_id.clone(), secret.unwrap());
    // Self-registration cannot ask for client_credentials.
    let r = register(
        &gw,
        json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "client_secret_basic",
               "grant_types": ["client_credentials"], "scope": "*"}),
    )
    .await;
    assert_eq!(r.body["error"], "invalid_client_metadata", "{}", r.text);
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("{cid}:{secret}"))
    );
    let t = post_form(
        &gw,
        "/token",
        "grant_type=client_credentials&scope=read+admin",
        &[("authorization", &basic)],
    )
    .await;
    assert_eq!(t.status, 200, "{}", t.text);
    assert_eq!(
        t.body["scope"], "read",
        "a client gets at most the scopes it registered"
    );
    assert!(t.body.get("refresh_token").is_none());
    let at = t.body["access_token"].as_str().unwrap().to_string();
    let me = gw.whoami(&[("authorization", &format!("Bearer {at}"))]).await;
    assert_eq!(
        (me["user_id"].as_str(), me["auth_method"].as_str()),
        (Some(cid.as_str()), Some("oauth"))
    );

    // A public client may not use it, nor register for it.
    let public = public_client(&gw).await;
    let r = post_form(
        &gw,
        "/token",
        &form(&[("grant_type", "client_credentials"), ("client_id", &public)]),
        &[],
    )
    .await;
    oauth_error(&r, 400, "unauthorized_client");
    let r = register(&gw, json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none", "grant_types": ["client_credentials"]})).await;
    assert_eq!(r.body["error"], "invalid_client_metadata");

    // Introspection: the confidential client may ask; a public one may not.
    let i = post_form(
        &gw,
        "/introspect",
        &form(&[("token", &at)]),
        &[("authorization", &basic)],
    )
    .await;
    assert_eq!(i.status, 200, "{}", i.text);
    assert_eq!(
        (i.body["active"].as_bool(), i.body["client_id"].as_str()),
        (Some(true), Some(cid.as_str()))
    );
    assert_eq!(i.body["aud"], RESOURCE);
    let r = post_form(
        &gw,
        "/introspect",
        &form(&[("token", &at), ("client_id", &public)]),
        &[],
    )
    .await;
    oauth_error(&r, 401, "invalid_client");
    for junk in ["mcpr_unknown", "not-a-token", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."] {
        let i = post_form(
            &gw,
            "/introspect",
            &form(&[("token", junk)]),
            &[("authorization", &basic)],
        )
        .await;
        assert_eq!(i.body, json!({"active": false}), "{junk}");
    }
    // Revoked by its client: inactive, and refused on /mcp.
    let rv = post_form(&gw, "/revoke", &form(&[("token", &at)]), &[("authorization", &basic)]).await;
    assert_eq!(rv.status, 200);
    let i = post_form(
        &gw,
        "/introspect",
        &form(&[("token", &at)]),
        &[("authorization", &basic)],
    )
    .await;
    assert_eq!(i.body, json!({"active": false}));
    let r = gw
        .call(&[("authorization", &format!("Bearer {at}"))], None, "whoami", json!({}))
        .await;
    assert_eq!(r.status, 401);
}

/// Browser-based clients discover, register and exchange codes from their own origin: the JSON
/// endpoints answer CORS preflights and any Origin (without credentials), while the consent
/// form's POST still checks its Origin, and `/mcp` keeps its Origin check.
#[tokio::test]
async fn json_endpoints_answer_other_origins_the_consent_form_does_not() {
    let gw = Setup::new(TOML).start().await;
    let origin = [("origin", "https://inspector.example")];
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-authorization-server",
        "/jwks",
    ] {
        let r = get(&gw, path, &origin).await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("access-control-allow-origin"), Some("*"), "{path}");
        assert!(r.header("access-control-allow-credentials").is_none());
    }
    let pre = gw
        .send(
            Request::builder()
                .method("OPTIONS")
                .uri("/token")
                .header("host", "localhost")
                .header("origin", "https://inspector.example")
                .header("access-control-request-method", "POST")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(pre.status, 204);
    assert!(pre.header("access-control-allow-methods").unwrap().contains("POST"));
    let r = register(
        &gw,
        json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}),
    )
    .await;
    assert_eq!(r.status, 201);
    // A foreign Host is still refused (DNS rebinding).
    let r = gw
        .send(
            Request::get("/.well-known/oauth-authorization-server")
                .header("host", "evil.example")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 403);
    // The consent page carries no CORS grant.
    let client = public_client(&gw).await;
    let page = get(&gw, &authorize_query(&client, REDIRECT, &[]), &origin).await;
    assert!(page.header("access-control-allow-origin").is_none());
    // /mcp keeps its Origin check.
    let r = gw.call(&origin, None, "whoami", json!({})).await;
    assert_eq!(r.status, 403, "{}", r.text);
}

/// RFC 6749 §6: a refresh may ask for fewer scopes than the grant holds; that access token
/// carries only them, and the grant keeps the rest for the next refresh.
#[tokio::test]
async fn a_refresh_may_narrow_the_scopes() {
    let setup = Setup::new(TOML);
    let ana = setup.key(key("ana").perms(&["read", "write"]));
    let gw = setup.start().await;
    let client = public_client(&gw).await;
    let r = get(
        &gw,
        &authorize_query(&client, "http://127.0.0.1:53682/callback", &[("scope", "read write")]),
        &[("x-api-key", &ana.key)],
    )
    .await;
    let t = exchange(&gw, &client, &location_params(&r)["code"], VERIFIER).await;
    assert_eq!(t.body["scope"], "read write");
    let rt = t.body["refresh_token"].as_str().unwrap().to_string();
    let body = form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", &rt),
        ("client_id", &client),
        ("scope", "read"),
    ]);
    let narrow = post_form(&gw, "/token", &body, &[]).await;
    assert_eq!(narrow.status, 200, "{}", narrow.text);
    assert_eq!(narrow.body["scope"], "read");
    let at = narrow.body["access_token"].as_str().unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            at.split('.').nth(1).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["permissions"], json!(["read"]), "{claims}");
    let rt2 = narrow.body["refresh_token"].as_str().unwrap();
    let full = refresh(&gw, &client, rt2).await;
    assert_eq!(full.body["scope"], "read write", "the grant lost scopes: {}", full.text);
}
