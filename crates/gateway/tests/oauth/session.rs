//! The web session (seed 004's cookie) and the consent modes: a browser signed in once is not
//! asked to sign in again; `remember` asks once per user and client (again when more is asked or
//! the consent is revoked), `always` every time, `skip` never for the operator's clients; a
//! loopback redirect always shows the page. The session is no credential for
//! `/mcp`, ends with sign-out and with its API key, expires, and is renewed while in use.

use crate::*;
use mcpgate_gateway::clock::Clock;
use mcpgate_gateway::key_service::KeyService;
use mcpgate_store::GrantStore;
use mcpgate_testkit::apikey::*;
use mcpgate_testkit::harness::*;
use mcpgate_testkit::logs::{LogCapture, find_leaks};
use std::sync::Arc;
use std::time::Duration;

const SESSION: &str = "mcpgate_session";
/// The clients' https redirect (the one a remembered consent may skip the page for); each also
/// registers the loopback `REDIRECT`, which always shows the page (RFC 8252 §8.6).
pub(crate) const WEB: &str = "https://app.example/callback";

/// A public client registering `WEB` and the loopback `REDIRECT`.
pub(crate) async fn web_client(gw: &Gw) -> String {
    let r = register(
        gw,
        serde_json::json!({"redirect_uris": [WEB, REDIRECT], "token_endpoint_auth_method": "none"}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["client_id"].as_str().unwrap().to_string()
}

/// A client the operator registered (`mcpgate clients add`), public, with `WEB` and `REDIRECT`.
async fn operator_client(gw: &Gw) -> String {
    use mcpgate_store::oauth::ClientStore;
    let (client, _) = mcpgate_gateway::oauth::register::NewClient {
        kind: mcpgate_store::oauth::ClientKind::Configured,
        name: Some("Operator app".into()),
        redirect_uris: vec![WEB.into(), REDIRECT.into()],
        auth_method: Some("none".into()),
        grant_types: None,
        scope: None,
    }
    .build(&mcpgate_core::entropy::OsEntropy, mcpgate_testkit::time::now_s())
    .unwrap();
    gw.store().insert_client(&client).await.unwrap();
    client.client_id
}

fn set_cookies(r: &Resp) -> Vec<String> {
    r.headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

/// `name=value` of the cookie `name` the response sets, with its attributes checked.
fn cookie_set(r: &Resp, name: &str) -> Option<String> {
    let c = set_cookies(r)
        .into_iter()
        .find(|c| c.starts_with(&format!("{name}=")))?;
    assert!(
        c.contains("HttpOnly") && c.contains("SameSite=Lax") && c.contains("Path=/"),
        "{c}"
    );
    Some(c.split(';').next().unwrap().to_string())
}

/// The consent page for `client` (with `extra` parameters), as this browser (`cookie`) sees it:
/// the page and the CSRF cookie pair.
async fn page(gw: &Gw, client: &str, extra: &[(&str, &str)], cookie: Option<&str>) -> (Resp, String) {
    let mut h = vec![];
    if let Some(c) = cookie {
        h.push(("cookie", c));
    }
    let r = get(gw, &authorize_query(client, WEB, extra), &h).await;
    assert_eq!(
        r.status,
        200,
        "expected the consent page: {} {:?}",
        r.status,
        r.header("location")
    );
    let csrf = cookie_set(&r, "mcpgate_csrf").expect("a CSRF cookie");
    (r, csrf)
}

/// Answers the consent page: `key` typed (or not), with the browser's cookies.
async fn answer(
    gw: &Gw,
    client: &str,
    csrf_pair: &str,
    session: Option<&str>,
    key: Option<&str>,
    scope: Option<&str>,
) -> Resp {
    let ch = challenge(VERIFIER);
    let csrf = csrf_pair.split_once('=').unwrap().1;
    let mut f = vec![
        ("response_type", "code"),
        ("client_id", client),
        ("redirect_uri", WEB),
        ("code_challenge", ch.as_str()),
        ("code_challenge_method", "S256"),
        ("state", "st-123"),
        ("resource", RESOURCE),
        ("csrf", csrf),
        ("decision", "allow"),
    ];
    if let Some(k) = key {
        f.push(("api_key", k));
    }
    if let Some(s) = scope {
        f.push(("scope", s));
    }
    let cookie = match session {
        Some(s) => format!("{csrf_pair}; {s}"),
        None => csrf_pair.to_string(),
    };
    post_form(
        gw,
        "/authorize",
        &form(&f),
        &[("cookie", &cookie), ("origin", "http://localhost")],
    )
    .await
}

/// A code straight back (no page): 303 to the redirect with a code.
pub(crate) fn straight_back(r: &Resp) -> String {
    assert_eq!(
        r.status, 303,
        "expected a redirect with a code, got {} {}",
        r.status, r.text
    );
    location_params(r)["code"].clone()
}

pub(crate) async fn token_scope(gw: &Gw, client: &str, code: &str) -> String {
    let body = form(&[
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", WEB),
        ("code_verifier", VERIFIER),
        ("client_id", client),
    ]);
    let t = post_form(gw, "/token", &body, &[]).await;
    assert_eq!(t.status, 200, "{}", t.text);
    t.body["scope"].as_str().unwrap().to_string()
}

/// Signs in on the page with `key`: the session cookie pair.
pub(crate) async fn sign_in(gw: &Gw, client: &str, key: &str) -> String {
    let (_, csrf) = page(gw, client, &[], None).await;
    let r = answer(gw, client, &csrf, None, Some(key), None).await;
    straight_back(&r);
    cookie_set(&r, SESSION).expect("a session cookie after signing in")
}

#[tokio::test]
async fn remembered_consent_is_asked_once_per_user_and_client_and_again_for_more() {
    let logs = LogCapture::install();
    let setup = Setup::new(TOML);
    let ana = setup.key(key("ana").perms(&["read", "write"]));
    let bob = setup.key(key("bob").perms(&["read"]));
    let gw = setup.start().await;
    let client = web_client(&gw).await;

    // First time: the page with the key field; allowing signs in and remembers.
    let (p, csrf) = page(&gw, &client, &[], None).await;
    assert!(
        p.text.contains("name=\"api_key\" autocomplete=\"off\" required"),
        "{}",
        p.text
    );
    let r = answer(&gw, &client, &csrf, None, Some(&ana.key), None).await;
    let code = straight_back(&r);
    assert_eq!(token_scope(&gw, &client, &code).await, "read");
    let session = cookie_set(&r, SESSION).expect("a session cookie");

    // Again with the session: no page, straight back with a code.
    let again = get(&gw, &authorize_query(&client, WEB, &[]), &[("cookie", &session)]).await;
    let code = straight_back(&again);
    assert_eq!(token_scope(&gw, &client, &code).await, "read");

    // Asking for more: the page again, naming who is signed in, the key now optional.
    let (p, csrf) = page(&gw, &client, &[("scope", "read write")], Some(&session)).await;
    assert!(
        p.text.contains("signed in as <strong><bdi>ana</bdi></strong>"),
        "{}",
        p.text
    );
    assert!(!p.text.contains("autocomplete=\"off\" required"), "{}", p.text);
    assert!(p.text.contains("<code>write</code>"));
    let r = answer(&gw, &client, &csrf, Some(&session), None, Some("read write")).await;
    assert_eq!(token_scope(&gw, &client, &straight_back(&r)).await, "read write");
    // A loopback redirect of the same client: the page, whatever was allowed (any program on
    // the device could be listening there).
    let r = get(&gw, &authorize_query(&client, REDIRECT, &[]), &[("cookie", &session)]).await;
    assert_eq!(
        r.status,
        200,
        "a loopback redirect skipped the page: {:?}",
        r.header("location")
    );
    assert!(
        r.text.contains("signed in as <strong><bdi>ana</bdi></strong>"),
        "{}",
        r.text
    );
    // Now remembered too; a subset needs no page either.
    for scope in ["read write", "write"] {
        let r = get(
            &gw,
            &authorize_query(&client, WEB, &[("scope", scope)]),
            &[("cookie", &session)],
        )
        .await;
        straight_back(&r);
    }

    // Another person is asked for themselves; another client is asked too.
    let bob_session = sign_in(&gw, &web_client(&gw).await, &bob.key).await;
    page(&gw, &client, &[], Some(&bob_session)).await;
    let other = web_client(&gw).await;
    page(&gw, &other, &[], Some(&session)).await;

    // A consent revoked (what `mcpgate grants revoke` does): asked again.
    assert!(gw.store().remove_consent("ana", &client).await.unwrap());
    page(&gw, &client, &[], Some(&session)).await;

    // Without a session, a consent form with no key signs no one in.
    let (_, csrf) = page(&gw, &client, &[], None).await;
    let r = answer(&gw, &client, &csrf, None, None, None).await;
    assert_eq!(location_params(&r)["error"], "access_denied");

    let secrets = vec![
        ("ana's key".to_string(), ana.key.clone()),
        ("bob's key".to_string(), bob.key.clone()),
        ("a session".to_string(), session.split_once('=').unwrap().1.to_string()),
    ];
    let audit = audit_text(&gw.audit().await);
    let leaks = find_leaks(&secrets, &[("logs", &logs.text()), ("audit", &audit)]);
    assert!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n\n"));
}

#[tokio::test]
async fn consent_always_asks_and_skip_never_does() {
    let toml = format!("{TOML}consent = \"always\"\n");
    let setup = Setup::new(&toml);
    let ana = setup.key(key("ana"));
    let gw = setup.start().await;
    let client = web_client(&gw).await;
    let session = sign_in(&gw, &client, &ana.key).await;
    for _ in 0..2 {
        let (_, csrf) = page(&gw, &client, &[], Some(&session)).await;
        let r = answer(&gw, &client, &csrf, Some(&session), None, None).await;
        straight_back(&r);
    }

    let toml = format!("{TOML}consent = \"skip\"\n");
    let setup = Setup::new(&toml);
    let ana = setup.key(key("ana"));
    let gw = setup.start().await;
    let client = web_client(&gw).await;
    // Not signed in: the page (someone has to sign in).
    let session = sign_in(&gw, &client, &ana.key).await;
    // An operator's client: straight back, never asked.
    let ours = operator_client(&gw).await;
    let r = get(&gw, &authorize_query(&ours, WEB, &[]), &[("cookie", &session)]).await;
    straight_back(&r);
    // ... but not to its loopback redirect (RFC 8252 §8.6).
    let r = get(&gw, &authorize_query(&ours, REDIRECT, &[]), &[("cookie", &session)]).await;
    assert_eq!(r.status, 200, "skip sent a code to a loopback redirect");
    // A self-registered client is asked as with `remember`: once.
    let other = web_client(&gw).await;
    let (_, csrf) = page(&gw, &other, &[], Some(&session)).await;
    straight_back(&answer(&gw, &other, &csrf, Some(&session), None, None).await);
    let r = get(&gw, &authorize_query(&other, WEB, &[]), &[("cookie", &session)]).await;
    straight_back(&r);

    let bad = format!("{TOML}consent = \"sometimes\"\n");
    assert!(
        mcpgate_gateway::config::raw::RawConfig::from_toml(&bad).is_err(),
        "an unknown consent mode was accepted"
    );
}

#[tokio::test]
async fn the_session_is_no_credential_for_mcp() {
    let setup = Setup::new(TOML);
    let ana = setup.key(key("ana").perms(&["read", "tools:echo"]));
    let gw = setup.start().await;
    let client = web_client(&gw).await;
    let session = sign_in(&gw, &client, &ana.key).await;
    let jwt = session.split_once('=').unwrap().1.to_string();

    let me = get(&gw, "/auth/me", &[("cookie", &session)]).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["user_id"], "ana");
    assert_eq!(me.body["signed_in_with"], "key");
    assert_eq!(me.header("cache-control"), Some("no-store"));

    // On /mcp: the cookie is not read, and the session JWT is not an access token.
    let r = gw.call(&[("cookie", &session)], None, "whoami", json!({})).await;
    assert_eq!(r.status, 401, "a session cookie authenticated /mcp: {}", r.text);
    let r = gw
        .call(
            &[("authorization", &format!("Bearer {jwt}"))],
            None,
            "whoami",
            json!({}),
        )
        .await;
    assert_eq!(r.status, 401, "a session JWT was taken as a bearer token: {}", r.text);

    // An access token in the session cookie is not a session.
    let code = code_for(&gw, &client, &ana.key).await;
    let t = exchange(&gw, &client, &code, VERIFIER).await;
    let at = t.body["access_token"].as_str().unwrap();
    assert_eq!(
        get(&gw, "/auth/me", &[("cookie", &format!("{SESSION}={at}"))])
            .await
            .status,
        401
    );
    // Nor is the session introspected as an access token.
    // Tampered, doubled, or absent: not signed in.
    let mut tampered = jwt.clone();
    tampered.pop();
    tampered.push(if jwt.ends_with('A') { 'B' } else { 'A' });
    for c in [
        format!("{SESSION}={tampered}"),
        format!("{session}; {session}"),
        format!("{session}; {SESSION}=x"),
        String::new(),
    ] {
        let r = get(&gw, "/auth/me", &[("cookie", &c)]).await;
        assert_eq!(r.status, 401, "{c}: {}", r.text);
        assert!(!r.text.contains("ana"), "{}", r.text);
    }
}

#[tokio::test]
async fn sign_out_key_revocation_and_expiry_end_the_session() {
    let setup = Setup::new(TOML).manual_clock();
    let ana = setup.key(key("ana"));
    let gw = setup.start().await;
    let client = web_client(&gw).await;
    let session = sign_in(&gw, &client, &ana.key).await;

    // Sign-out: refused from another site, and to an address off this gateway.
    let out = |origin: &'static str, body: &'static str| {
        let gw = &gw;
        let session = session.clone();
        async move { post_form(gw, "/auth/logout", body, &[("cookie", &session), ("origin", origin)]).await }
    };
    assert_eq!(out("https://evil.example", "").await.status, 403);
    assert_eq!(
        out("http://localhost", "return_to=https%3A%2F%2Fevil.example%2F")
            .await
            .status,
        400
    );
    assert_eq!(
        out("http://localhost", "return_to=%2F%2Fevil.example%2F").await.status,
        400
    );
    let r = out("http://localhost", "return_to=%2Fauthorize%3Fx%3D1").await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/authorize?x=1"));
    assert!(
        set_cookies(&r)
            .iter()
            .any(|c| c.starts_with(&format!("{SESSION}=;")) && c.contains("Max-Age=0")),
        "{:?}",
        set_cookies(&r)
    );

    // Renewed once more than half its life has gone; expired after it.
    gw.advance(Duration::from_secs(1801));
    let me = get(&gw, "/auth/me", &[("cookie", &session)]).await;
    assert_eq!(me.status, 200);
    let renewed = cookie_set(&me, SESSION).expect("a renewed session cookie");
    gw.advance(Duration::from_secs(1800));
    assert_eq!(
        get(&gw, "/auth/me", &[("cookie", &session)]).await.status,
        401,
        "an expired session"
    );
    assert_eq!(get(&gw, "/auth/me", &[("cookie", &renewed)]).await.status, 200);

    // In use all the time, still not past the sign-in's maximum age.
    let setup2 = Setup::new(&format!("{TOML}sign_in_max_age_s = 5000\n")).manual_clock();
    let bob = setup2.key(key("bob"));
    let gw2 = setup2.start().await;
    let bob_session = sign_in(&gw2, &web_client(&gw2).await, &bob.key).await;
    let mut current = bob_session;
    let mut last_ok = 0;
    for step in 1..=10u64 {
        gw2.advance(Duration::from_secs(1000));
        let me = get(&gw2, "/auth/me", &[("cookie", &current)]).await;
        if me.status != 200 {
            break;
        }
        last_ok = step * 1000;
        if let Some(c) = cookie_set(&me, SESSION) {
            current = c;
        }
    }
    assert!(
        (4000..5000).contains(&last_ok),
        "a session renewed while in use lived {last_ok} s past a 5000 s sign-in maximum"
    );

    // The key revoked: the session ends with it.
    let store = Arc::new(gw.store().clone());
    let svc = KeyService::new(store.clone(), store.clone()).with_grants(store);
    svc.revoke(&ana.key_id, gw.clock.as_ref().unwrap().unix_s())
        .await
        .unwrap();
    let mut ended = false;
    for _ in 0..30 {
        if get(&gw, "/auth/me", &[("cookie", &renewed)]).await.status == 401 {
            ended = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ended, "a session outlived its revoked API key");
}
