//! The admin API (`/admin/api/v1`): who may call it (an admin-role API key; an admin's browser
//! session with a CSRF token on writes — nothing else), every endpoint against a real SQLite
//! store and the demo upstream, strict input (duplicate parameters and keys, unknown fields,
//! wrong types and media types, oversize bodies), the audit of every admin action, pagination,
//! exports, and that no secret leaks into answers that are not the one showing a new key, the
//! audit or the logs.

use crate::session::{WEB, sign_in, straight_back, token_scope, web_client};
use crate::*;
use axum::body::Body;
use http::Request;
use mcpgate_core::principal::Role;
use mcpgate_testkit::apikey::*;
use mcpgate_testkit::harness::*;
use mcpgate_testkit::logs::{LogCapture, find_leaks};
use serde_json::{Value, json};

const ADMIN_TOML: &str = "public_url = \"http://localhost\"\n[oauth]\nrefresh_grace_s = 5\n[admin]\nenabled = true\n";
const API: &str = "/admin/api/v1";

/// Method, path, body, extra headers, the status it must get.
type Case<'a> = (&'a str, &'a str, Option<&'a str>, &'a [(&'a str, &'a str)], u16);

async fn call(gw: &Gw, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Resp {
    let mut b = Request::builder()
        .method(method)
        .uri(format!("{API}{path}"))
        .header("host", "localhost");
    if body.is_some() {
        b = b.header("content-type", "application/json");
    }
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    gw.send(b.body(Body::from(body.unwrap_or("").to_string())).unwrap())
        .await
}

fn as_key(k: &str) -> [(&str, &str); 1] {
    [("x-api-key", k)]
}

async fn admin_records(gw: &Gw) -> Vec<mcpgate_core::audit::AuditRecord> {
    gw.audit().await.into_iter().filter(|r| r.event == "admin").collect()
}

/// The user a key authenticates as at `/mcp`, once the registry has it (a change through the
/// admin API is announced: the registry re-reads within tens of milliseconds).
async fn works(gw: &Gw, key: &str) -> String {
    for _ in 0..100 {
        let r = gw.call(&[("x-api-key", key)], None, "whoami", json!({})).await;
        if r.is_ok() {
            return r.body["result"]["structuredContent"]["user_id"]
                .as_str()
                .map_or_else(|| r.text.clone(), str::to_string);
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the new key never worked");
}

#[tokio::test]
async fn keys_are_managed_by_admin_keys_only_and_every_action_is_audited() {
    let logs = LogCapture::install();
    let setup = Setup::new(ADMIN_TOML);
    let root = setup.key(key("root").role(Role::Admin));
    let user = setup.key(key("ana"));
    let gw = setup.start().await;
    let admin = as_key(&root.key);

    // Who may call: no credential 401 (with a challenge), a user-role key 403 on reads and
    // writes, a made-up key 401, a JWT-shaped bearer 401, a key in the query string ignored.
    let r = call(&gw, "GET", "/keys", &[], None).await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert!(r.header("www-authenticate").is_some());
    for (m, p) in [
        ("GET", "/keys"),
        ("POST", "/keys"),
        ("GET", "/audit"),
        ("DELETE", "/sessions/x"),
    ] {
        let r = call(&gw, m, p, &as_key(&user.key), Some("{}")).await;
        assert_eq!(r.status, 403, "{m} {p}: {}", r.text);
        assert_eq!(r.body["error"], "forbidden");
    }
    let r = call(&gw, "GET", "/keys", &as_key("mcp_live_notakey"), None).await;
    assert_eq!(r.status, 401);
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJyb290Iiwicm9sZSI6ImFkbWluIn0.c2ln";
    let r = call(
        &gw,
        "GET",
        "/keys",
        &[("authorization", &format!("Bearer {jwt}"))],
        None,
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.text);
    let r = call(&gw, "GET", &format!("/keys?api_key={}", root.key), &[], None).await;
    assert_eq!(r.status, 401, "a key in the query string was taken: {}", r.text);
    let r = call(
        &gw,
        "GET",
        "/keys",
        &[("authorization", &format!("Bearer {}", root.key))],
        None,
    )
    .await;
    assert_eq!(r.status, 200, "an admin key as a bearer: {}", r.text);

    // Create: 201, the secret once, no-store; it works at /mcp at once.
    let r = call(
        &gw,
        "POST",
        "/keys",
        &admin,
        Some(r#"{"name":"ci bot","user_id":"bot","tenant":"acme","role":"developer","permissions":["read"],"limits":{"per_minute":5},"expires_in_s":3600}"#),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let bot_key = r.body["key"].as_str().unwrap().to_string();
    let bot_id = r.body["key_id"].as_str().unwrap().to_string();
    assert_eq!(r.body["role"], "developer");
    assert_eq!(r.body["tenant"], "acme");
    assert_eq!(r.body["limits"]["per_minute"], 5);
    assert!(r.body["expires_at"].is_string());
    assert_eq!(works(&gw, &bot_key).await, "bot");

    // Read: listed and shown without any secret or hash.
    let list = call(&gw, "GET", "/keys", &admin, None).await;
    assert_eq!(list.status, 200);
    assert!(
        list.body["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["key_id"] == bot_id.as_str())
    );
    assert!(
        !list.text.contains(&bot_key) && !list.text.contains("hash"),
        "{}",
        list.text
    );
    let shown = call(&gw, "GET", &format!("/keys/{bot_id}"), &admin, None).await;
    assert_eq!(shown.body["state"], "active", "{}", shown.text);
    assert!(!shown.text.contains(&bot_key));
    assert_eq!(call(&gw, "GET", "/keys/nope", &admin, None).await.status, 404);

    // Pages: 7 more keys, walked 3 at a time, each once.
    for i in 0..7 {
        let body = json!({"name": format!("k{i}"), "user_id": format!("u{i}")}).to_string();
        assert_eq!(call(&gw, "POST", "/keys", &admin, Some(&body)).await.status, 201);
    }
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let q = match &after {
            Some(a) => format!("/keys?limit=3&after={a}"),
            None => "/keys?limit=3".into(),
        };
        let p = call(&gw, "GET", &q, &admin, None).await;
        assert_eq!(p.status, 200, "{}", p.text);
        let keys = p.body["keys"].as_array().unwrap();
        assert!(keys.len() <= 3);
        seen.extend(keys.iter().map(|k| k["key_id"].as_str().unwrap().to_string()));
        match p.body["next"].as_str() {
            Some(n) => after = Some(n.to_string()),
            None => break,
        }
    }
    let total = list.body["total"].as_u64().unwrap() as usize + 7;
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (total, total), "{seen:?}");

    // Rotate: a new key with the same grants; the old one keeps working for the overlap.
    let r = call(
        &gw,
        "POST",
        &format!("/keys/{bot_id}/rotate"),
        &admin,
        Some(r#"{"overlap_s":0}"#),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let new_key = r.body["key"].as_str().unwrap().to_string();
    assert_eq!(r.body["replaces"], bot_id.as_str());
    assert_eq!(works(&gw, &new_key).await, "bot");

    // Revoke: refused at /mcp at once (the registry hears the change).
    let new_id = r.body["key_id"].as_str().unwrap().to_string();
    let r = call(&gw, "POST", &format!("/keys/{new_id}/revoke"), &admin, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut refused = false;
    for _ in 0..50 {
        let w = gw.rpc(&[("x-api-key", &new_key)], None, "tools/list", json!({})).await;
        if w.status == 401 {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(refused, "a revoked key still works");
    let again = call(&gw, "POST", &format!("/keys/{new_id}/rotate"), &admin, None).await;
    assert_eq!(again.status, 409, "{}", again.text);

    // Held credentials need a sealing key: 409 without [delegation].
    let r = call(
        &gw,
        "PUT",
        &format!("/keys/{bot_id}/credential"),
        &admin,
        Some(r#"{"credential":"ghp_upstream_secret"}"#),
    )
    .await;
    assert_eq!(r.status, 409, "{}", r.text);

    // Strict input.
    let bad: [Case; 10] = [
        (
            "POST",
            "/keys",
            Some(r#"{"name":"a","user_id":"b","name":"c"}"#),
            &[],
            400,
        ),
        (
            "POST",
            "/keys",
            Some(r#"{"name":"a","user_id":"b","admin":true}"#),
            &[],
            400,
        ),
        (
            "POST",
            "/keys",
            Some(r#"{"name":"a","user_id":"b","role":"root"}"#),
            &[],
            400,
        ),
        ("POST", "/keys", Some(r#"{"name":"a","user_id":7}"#), &[], 400),
        ("POST", "/keys", Some(r#"{"name":"a\u0000","user_id":"b"}"#), &[], 400),
        ("POST", "/keys", Some(r#"{"name":"","user_id":"b"}"#), &[], 400),
        (
            "POST",
            "/keys",
            Some(r#"{"name":"a","user_id":"b","expires_in_s":-5}"#),
            &[],
            400,
        ),
        ("GET", "/keys?limit=1&limit=2", None, &[], 400),
        ("GET", "/keys?lmit=2", None, &[], 400),
        (
            "POST",
            "/keys",
            Some(r#"{"name":"a","user_id":"b"}"#),
            &[("content-type", "text/plain")],
            415,
        ),
    ];
    for (m, p, body, extra, want) in bad {
        let mut h = vec![("x-api-key", root.key.as_str())];
        h.extend_from_slice(extra);
        let mut b = Request::builder()
            .method(m)
            .uri(format!("{API}{p}"))
            .header("host", "localhost");
        let has_type = extra.iter().any(|(k, _)| *k == "content-type");
        if body.is_some() && !has_type {
            b = b.header("content-type", "application/json");
        }
        for (k, v) in &h {
            b = b.header(*k, *v);
        }
        let r = gw
            .send(b.body(Body::from(body.unwrap_or("").to_string())).unwrap())
            .await;
        assert_eq!(r.status.as_u16(), want, "{m} {p} {body:?}: {}", r.text);
        assert!(r.body["message"].is_string(), "{}", r.text);
    }
    let huge = format!(r#"{{"name":"{}","user_id":"b"}}"#, "x".repeat(70 * 1024));
    assert_eq!(call(&gw, "POST", "/keys", &admin, Some(&huge)).await.status, 413);
    assert_eq!(call(&gw, "PATCH", "/keys", &admin, None).await.status, 405);
    assert_eq!(call(&gw, "GET", "/nothing/here", &admin, None).await.status, 404);

    // The audit: each action, by whom, refused ones too; no secret in any record.
    let records = admin_records(&gw).await;
    let actions: Vec<&str> = records.iter().filter_map(|r| r.mcp_method.as_deref()).collect();
    for a in [
        "admin/keys.create",
        "admin/keys.list",
        "admin/keys.show",
        "admin/keys.rotate",
        "admin/keys.revoke",
        "admin/keys.credential.set",
    ] {
        assert!(actions.contains(&a), "{a} not audited: {actions:?}");
    }
    let created = records
        .iter()
        .find(|r| r.mcp_method.as_deref() == Some("admin/keys.rotate") && r.status == 201)
        .unwrap();
    assert_eq!(created.key_id.as_deref(), Some(root.key_id.as_str()));
    assert_eq!(created.tool.as_deref(), Some(bot_id.as_str()));
    assert_eq!(created.decision, "allow");
    let refused: Vec<_> = records.iter().filter(|r| r.decision == "deny").collect();
    assert!(refused.iter().any(|r| r.status == 403 && r.user_id.is_none()));
    assert!(refused.iter().any(|r| r.status == 401));
    let audit_text = audit_text(&gw.audit().await);
    let leaks = find_leaks(
        &[
            ("new key".into(), bot_key.clone()),
            ("rotated key".into(), new_key.clone()),
            ("admin key".into(), root.key.clone()),
            ("credential".into(), "ghp_upstream_secret".into()),
        ],
        &[("audit", &audit_text), ("logs", &logs.text())],
    );
    assert!(leaks.is_empty(), "{leaks:?}");
}

#[tokio::test]
async fn a_browser_session_needs_an_admin_and_a_csrf_token_for_every_write() {
    let setup = Setup::new(ADMIN_TOML);
    let root = setup.key(key("root").role(Role::Admin));
    let ana = setup.key(key("ana"));
    let gw = setup.start().await;
    let client = web_client(&gw).await;
    let admin_session = sign_in(&gw, &client, &root.key).await;
    let user_session = sign_in(&gw, &client, &ana.key).await;

    // A user's session: 403 even to read.
    let r = call(&gw, "GET", "/keys", &[("cookie", &user_session)], None).await;
    assert_eq!(r.status, 403, "{}", r.text);

    // The admin's: reads need nothing more; the session endpoint hands out the CSRF token.
    let r = call(&gw, "GET", "/keys", &[("cookie", &admin_session)], None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let s = call(&gw, "GET", "/session", &[("cookie", &admin_session)], None).await;
    assert_eq!(s.status, 200, "{}", s.text);
    assert_eq!(s.body["via"], "session");
    assert_eq!(s.body["user_id"], "root");
    let token = s.body["csrf_token"].as_str().unwrap().to_string();
    let set = s.header("set-cookie").unwrap().to_string();
    assert!(
        set.starts_with("mcpgate_admin_csrf=") && set.contains("HttpOnly"),
        "{set}"
    );
    let csrf_pair = set.split(';').next().unwrap().to_string();
    let cookies = format!("{admin_session}; {csrf_pair}");
    // Asked again with the cookie: the same token, no new cookie.
    let s2 = call(&gw, "GET", "/session", &[("cookie", &cookies)], None).await;
    assert_eq!(s2.body["csrf_token"], token.as_str());
    assert!(s2.header("set-cookie").is_none());

    let body = Some(r#"{"name":"from the console","user_id":"carl"}"#);
    // Without the token, with a wrong one, with the token but no cookie, from another site: 403.
    let cases: [Vec<(&str, &str)>; 4] = [
        vec![("cookie", &cookies)],
        vec![("cookie", &cookies), ("x-csrf-token", "0000")],
        vec![("cookie", &admin_session), ("x-csrf-token", &token)],
        vec![
            ("cookie", &cookies),
            ("x-csrf-token", &token),
            ("origin", "https://evil.example"),
        ],
    ];
    for h in &cases {
        let r = call(&gw, "POST", "/keys", h, body).await;
        assert!(r.status == 403, "{h:?}: {} {}", r.status, r.text);
    }
    // Another site's form post: also refused (Sec-Fetch-Site cross-site).
    let r = call(
        &gw,
        "POST",
        "/keys",
        &[
            ("cookie", &cookies),
            ("x-csrf-token", &token),
            ("sec-fetch-site", "cross-site"),
        ],
        body,
    )
    .await;
    assert_eq!(r.status, 403);
    // Our page, token and cookie: done, and audited as the session's user.
    let r = call(
        &gw,
        "POST",
        "/keys",
        &[
            ("cookie", &cookies),
            ("x-csrf-token", &token),
            ("origin", "http://localhost"),
        ],
        body,
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let records = admin_records(&gw).await;
    let made = records
        .iter()
        .find(|r| r.mcp_method.as_deref() == Some("admin/keys.create") && r.status == 201)
        .unwrap();
    assert_eq!(made.auth_method.as_deref(), Some("session"));
    assert_eq!(made.user_id.as_deref(), Some("root"));
    assert_eq!(
        records.iter().filter(|r| r.reason == "csrf").count(),
        4,
        "each refused write is audited"
    );
}

#[tokio::test]
async fn audit_usage_sessions_clients_and_grants() {
    let setup = Setup::new(ADMIN_TOML);
    let root = setup.key(key("root").role(Role::Admin));
    let ana = setup.key(key("ana"));
    let gw = setup.start().await;
    let admin = as_key(&root.key);

    // Traffic: ana calls tools; a made-up key is refused; a tool name built to be a formula.
    let session = gw.initialize(&[("x-api-key", &ana.key)]).await;
    for _ in 0..3 {
        gw.call(
            &[("x-api-key", &ana.key)],
            Some(&session),
            "echo",
            json!({"text": "hi"}),
        )
        .await;
    }
    gw.rpc(&[("x-api-key", "mcp_live_made_up")], None, "tools/list", json!({}))
        .await;
    gw.call(
        &[("x-api-key", &ana.key)],
        Some(&session),
        "=HYPERLINK(\"x\")",
        json!({}),
    )
    .await;

    // Audit pages, newest first, by cursor; every record once.
    let mut numbers = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("/audit?limit=2&event=call&cursor={c}"),
            None => "/audit?limit=2&event=call".into(),
        };
        let p = call(&gw, "GET", &q, &admin, None).await;
        assert_eq!(p.status, 200, "{}", p.text);
        for it in p.body["items"].as_array().unwrap() {
            assert_eq!(it["event"], "call");
            numbers.push(it["number"].as_u64().unwrap());
        }
        match p.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert!(numbers.len() >= 5, "{numbers:?}");
    assert!(numbers.windows(2).all(|w| w[0] > w[1]), "{numbers:?}");
    let by_user = call(&gw, "GET", "/audit?user=ana&outcome=allow&limit=1000", &admin, None).await;
    assert!(
        by_user.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["user_id"] == "ana" && i["decision"] == "allow")
    );
    let denied = call(&gw, "GET", "/audit?event=auth&outcome=deny", &admin, None).await;
    assert!(!denied.body["items"].as_array().unwrap().is_empty(), "{}", denied.text);
    for bad in [
        "/audit?outcome=maybe",
        "/audit?since=yesterday",
        "/audit?cursor=-1",
        "/audit?limit=0",
        "/audit?format=xml",
        "/audit?user=a&user=b",
    ] {
        assert_eq!(call(&gw, "GET", bad, &admin, None).await.status, 400, "{bad}");
    }

    // Exports: CSV with formulas defused, JSON lines.
    let csv = call(&gw, "GET", "/audit?format=csv&event=call", &admin, None).await;
    assert_eq!(csv.status, 200);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    assert!(csv.text.starts_with("number,time,request_id"), "{}", csv.text);
    assert!(csv.text.contains("\"'=HYPERLINK(\"\"x\"\")\""), "{}", csv.text);
    assert!(!csv.text.contains(",\"=HYPERLINK"));
    let jsonl = call(&gw, "GET", "/audit?format=jsonl&event=call", &admin, None).await;
    let lines: Vec<Value> = jsonl.text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), numbers.len());

    // Usage: the calls by tool, the refusal by reason.
    let u = call(&gw, "GET", "/usage?since=1h&bucket=1m&by=tool", &admin, None).await;
    assert_eq!(u.status, 200, "{}", u.text);
    let echo = u.body["top"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["value"] == "echo")
        .cloned()
        .unwrap();
    assert_eq!(echo["allow"], 3, "{}", u.text);
    assert_eq!(u.body["buckets"].as_array().unwrap().len(), 60);
    let reasons = call(&gw, "GET", "/usage?by=reason", &admin, None).await;
    assert!(reasons.body["total"]["deny"].as_u64().unwrap() >= 1, "{}", reasons.text);
    assert!(!reasons.body["top"].as_array().unwrap().is_empty());
    assert_eq!(
        call(&gw, "GET", "/usage?since=3650d&bucket=1s", &admin, None)
            .await
            .status,
        400
    );
    assert_eq!(call(&gw, "GET", "/usage?by=password", &admin, None).await.status, 400);

    // Sessions: listed with their owner; ended here → the client's next call is 404.
    let s = call(&gw, "GET", "/sessions", &admin, None).await;
    assert_eq!(s.status, 200, "{}", s.text);
    assert!(
        s.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["session_id"] == session.as_str())
    );
    let e = call(&gw, "DELETE", &format!("/sessions/{session}"), &admin, None).await;
    assert_eq!(e.status, 200, "{}", e.text);
    assert_eq!(e.body["upstream_told"], true, "{}", e.text);
    let after = gw
        .call(&[("x-api-key", &ana.key)], Some(&session), "echo", json!({"text": "x"}))
        .await;
    assert_eq!(after.status, 404, "{}", after.text);
    assert_eq!(
        call(&gw, "DELETE", &format!("/sessions/{session}"), &admin, None)
            .await
            .status,
        404
    );

    // Clients and grants: a sign-in makes both; revoking the grant ends it; removing the client.
    let client = web_client(&gw).await;
    let browser = sign_in(&gw, &client, &ana.key).await;
    let again = get(&gw, &authorize_query(&client, WEB, &[]), &[("cookie", &browser)]).await;
    token_scope(&gw, &client, &straight_back(&again)).await;
    let clients = call(&gw, "GET", "/clients", &admin, None).await;
    assert!(
        clients.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["client_id"] == client.as_str())
    );
    let one = call(&gw, "GET", &format!("/clients/{client}"), &admin, None).await;
    assert_eq!(one.status, 200);
    let grants = call(&gw, "GET", &format!("/grants?client={client}&state=live"), &admin, None).await;
    let items = grants.body["items"].as_array().unwrap();
    assert!(!items.is_empty(), "{}", grants.text);
    let gid = items[0]["grant_id"].as_str().unwrap().to_string();
    let r = call(&gw, "POST", &format!("/grants/{gid}/revoke"), &admin, None).await;
    assert_eq!(r.body["revoked"], true, "{}", r.text);
    let r = call(&gw, "POST", &format!("/grants/{gid}/revoke"), &admin, None).await;
    assert_eq!(r.body["already_revoked"], true, "{}", r.text);
    let live = call(&gw, "GET", &format!("/grants?client={client}&state=live"), &admin, None).await;
    assert!(
        live.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["grant_id"] != gid.as_str())
    );
    assert_eq!(
        call(&gw, "DELETE", &format!("/clients/{client}"), &admin, None)
            .await
            .status,
        200
    );
    assert_eq!(
        call(&gw, "GET", &format!("/clients/{client}"), &admin, None)
            .await
            .status,
        404
    );
    assert_eq!(call(&gw, "GET", "/users", &admin, None).await.status, 200);
    assert_eq!(call(&gw, "GET", "/users/nobody", &admin, None).await.status, 404);

    // The OpenAPI document names every path, without credentials.
    let doc = call(&gw, "GET", "/openapi.json", &[], None).await;
    assert_eq!(doc.status, 200);
    assert_eq!(doc.body["openapi"], "3.1.0");
    for p in [
        "/keys",
        "/keys/{id}/rotate",
        "/audit",
        "/usage",
        "/sessions/{id}",
        "/grants/{id}/revoke",
    ] {
        assert!(doc.body["paths"][format!("{API}{p}")].is_object(), "{p} missing");
    }
}

#[tokio::test]
async fn the_admin_api_is_off_unless_enabled() {
    let setup = Setup::new(TOML);
    let root = setup.key(key("root").role(Role::Admin));
    let gw = setup.start().await;
    for p in ["/keys", "/openapi.json", "/session"] {
        let r = call(&gw, "GET", p, &as_key(&root.key), None).await;
        assert_eq!(r.status, 404, "{p}: {}", r.text);
    }
}
