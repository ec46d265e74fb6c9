//! Authentication, authorization and limits, driven in-process: every path a credential can take
//! through the pipeline (capabilities 2, 5, 7, 8 of PRODUCT.md; seeds 000, 001, 004), asserting
//! the HTTP status, the JSON-RPC error code, the headers (`WWW-Authenticate`, `Retry-After`) and
//! that the message tells the caller what to do.
//!
//! The upstream is the demo server on a loopback socket; the gateway has no socket of its own
//! (`router().oneshot`). Each test has its own temp dir, store, upstream and gateway.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mcpgate_core::jsonrpc::code;
use mcpgate_core::keys::hash_hex;
use mcpgate_core::principal::{Limits, Role};
use mcpgate_store::KeyStore;
use mcpgate_testkit::apikey::*;
use mcpgate_testkit::harness::*;
use mcpgate_testkit::logs::{LogCapture, find_leaks};
use mcpgate_testkit::time::{eventually, now_s};
use mcpgate_testkit::vendor::Vendor;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A challenge for a request without a credential: `Bearer realm="mcpgate"`, no `error=`, and
/// the RFC 9728 `resource_metadata` pointer.
fn assert_bare_challenge(c: &str, what: &str) {
    assert!(c.starts_with(r#"Bearer realm="mcpgate""#), "{what}: challenge {c:?}");
    assert!(
        !c.contains("error="),
        "{what}: no credential was sent, so no error: {c:?}"
    );
    assert!(c.contains("resource_metadata=\""), "{what}: RFC 9728 pointer: {c:?}");
}

fn challenge(r: &Resp, what: &str) -> String {
    r.header("www-authenticate")
        .unwrap_or_else(|| panic!("{what}: 401 without WWW-Authenticate: {:?}", r.headers))
        .to_string()
}

/// 401 for a request that carried no credential: a bare challenge and a message that says where
/// to put the key.
fn assert_missing(r: &Resp, what: &str) {
    r.refused(what, 401, code::UNAUTHORIZED, &["missing API key", "X-API-Key"]);
    assert_bare_challenge(&challenge(r, what), what);
}

/// 401 for a credential that was presented but is no good: `error="invalid_token"`.
fn assert_invalid(r: &Resp, what: &str, says: &[&str]) {
    r.refused(what, 401, code::UNAUTHORIZED, says);
    let c = challenge(r, what);
    assert!(
        c.starts_with("Bearer realm=\"mcpgate\"")
            && c.contains(r#"error="invalid_token""#)
            && c.contains("resource_metadata=\""),
        "{what}: challenge {c:?}"
    );
}

fn inspect_headers(r: &Resp) -> serde_json::Map<String, Value> {
    r.tool_json()["http"]["headers"]
        .as_object()
        .unwrap_or_else(|| panic!("inspect reported no headers: {}", r.text))
        .clone()
}

// ---- 1. where a key may be sent ---------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Via {
    Header,
    Bearer,
    Query,
    ToolArg,
}

#[tokio::test]
async fn key_locations_header_bearer_and_opt_in_query_and_tool_argument() {
    // (name, compatibility places on?, where the key goes, accepted?)
    let cases: &[(&str, bool, Via, bool)] = &[
        ("X-API-Key header", false, Via::Header, true),
        ("Authorization: Bearer", false, Via::Bearer, true),
        ("?api_key= refused by default", false, Via::Query, false),
        ("?api_key= with allow_query_key", true, Via::Query, true),
        ("api_key tool argument refused by default", false, Via::ToolArg, false),
        (
            "api_key tool argument with allow_tool_arg_key",
            true,
            Via::ToolArg,
            true,
        ),
        ("X-API-Key header with compatibility on", true, Via::Header, true),
    ];
    let strict = Setup::new("");
    let strict_key = strict.key(key("alice"));
    let strict = strict.start().await;
    let compat = Setup::new("[auth]\nallow_query_key = true\nallow_tool_arg_key = true\n");
    let compat_key = compat.key(key("alice"));
    let compat = compat.start().await;

    for &(name, on, via, accepted) in cases {
        let (gw, k) = if on {
            (&compat, &compat_key)
        } else {
            (&strict, &strict_key)
        };
        let header = [k.x_api_key()];
        let (bh, bv) = k.bearer();
        let bearer = [(bh, bv.as_str())];
        let query_uri = format!("/mcp?api_key={}", k.key);
        let r = match via {
            Via::Header | Via::Bearer => {
                let h: Headers<'_> = if matches!(via, Via::Header) { &header } else { &bearer };
                let s = gw.initialize(h).await;
                gw.call(h, Some(&s), "echo", json!({ "text": "hi" })).await
            }
            Via::Query => {
                let init = gw.try_initialize_at(&query_uri, &[]).await;
                if !accepted {
                    assert_missing(&init, name);
                    continue;
                }
                let s = gw.initialize_at(&query_uri, &[]).await;
                gw.call_at(&query_uri, &[], Some(&s), "echo", json!({ "text": "hi" }))
                    .await
            }
            Via::ToolArg if !accepted => {
                // Sessionless, so that only the credential decides.
                gw.call(&[], None, "inspect", json!({ "api_key": k.key, "probe": "p1" }))
                    .await
            }
            Via::ToolArg => {
                // The session is opened by the same key in the header; the call carries the key
                // only as an argument.
                let s = gw.initialize(&header).await;
                gw.call(&[], Some(&s), "inspect", json!({ "api_key": k.key, "probe": "p1" }))
                    .await
            }
        };
        if !accepted {
            assert_missing(&r, name);
            continue;
        }
        r.ok(name);
        if let Via::ToolArg = via {
            let report = r.tool_json();
            let args = report["arguments"].as_object().expect("arguments");
            assert!(
                !args.contains_key("api_key"),
                "{name}: the upstream received the api_key argument: {report}"
            );
            assert_eq!(args.get("probe"), Some(&json!("p1")), "{name}: other arguments kept");
            assert!(!r.text.contains(&k.key), "{name}: key echoed back");
        } else {
            assert_eq!(r.tool_text(), "hi", "{name}");
        }
    }

    // With the compatibility places on, a host may open a session without a key (seed 000 sends
    // the key with each tool call), but a call that carries no key anywhere is still refused.
    let anon = compat.initialize(&[]).await;
    assert_missing(
        &compat.call(&[], Some(&anon), "echo", json!({ "text": "hi" })).await,
        "compat gateway, tool call without any credential",
    );
}

#[tokio::test]
async fn credentials_never_reach_the_upstream() {
    let setup = Setup::new("[auth]\nallow_query_key = true\nallow_tool_arg_key = true\n");
    let k = setup.key(key("alice"));
    let gw = setup.start().await;
    let (bh, bv) = k.bearer();
    let query_uri = format!("/mcp?api_key={}", k.key);

    let header_session = gw.initialize(&[k.x_api_key()]).await;
    let bearer_session = gw.initialize(&[(bh, bv.as_str())]).await;
    let query_session = gw.initialize_at(&query_uri, &[]).await;
    let ways = [
        (
            "X-API-Key",
            gw.call(&[k.x_api_key()], Some(&header_session), "inspect", json!({}))
                .await,
        ),
        (
            "Bearer",
            gw.call(&[(bh, bv.as_str())], Some(&bearer_session), "inspect", json!({}))
                .await,
        ),
        (
            "query",
            gw.call_at(&query_uri, &[], Some(&query_session), "inspect", json!({}))
                .await,
        ),
        (
            "header + tool argument",
            gw.call(
                &[k.x_api_key()],
                Some(&header_session),
                "inspect",
                json!({ "api_key": k.key }),
            )
            .await,
        ),
    ];
    for (name, r) in ways {
        r.ok(name);
        let report = r.tool_json();
        let headers = inspect_headers(&r);
        for h in ["x-api-key", "authorization", "cookie"] {
            assert!(!headers.contains_key(h), "{name}: upstream received {h}: {headers:?}");
        }
        let all = report.to_string();
        assert!(!all.contains(&k.key), "{name}: the key reached the upstream: {all}");
        assert!(
            !all.contains(k.secret_part()),
            "{name}: the secret reached the upstream"
        );
        let uri = report["http"]["uri"].as_str().unwrap_or_default();
        assert!(!uri.contains("api_key"), "{name}: query forwarded: {uri}");
        assert!(
            report["arguments"].get("api_key").is_none(),
            "{name}: argument forwarded"
        );
    }
}

// ---- 2. bad credentials -----------------------------------------------------------------------

enum Expect {
    Ok(&'static str),
    Missing,
    Invalid(&'static [&'static str]),
}

#[tokio::test]
async fn bad_credentials_get_401_with_a_challenge() {
    let legacy_valid = format!("legacy-connector-key-{}", unknown_key().key_id);
    let legacy_expired = format!("legacy-expired-key-{}", unknown_key().key_id);
    let mut setup = Setup::new("");
    let valid = setup.key(key("alice"));
    let revoked = setup.key(key("rita").revoked());
    let expired = setup.key(key("ed").expires_at(now_s() - 60));
    let mut legacy = serde_json::Map::new();
    legacy.insert(
        legacy_valid.clone(),
        json!({ "name": "ChatGPT Connector", "userId": "connector-user", "role": "user", "permissions": ["*"] }),
    );
    legacy.insert(
        legacy_expired.clone(),
        json!({ "userId": "old-connector", "role": "user", "permissions": ["*"], "expiresAt": "2020-01-01T00:00:00Z" }),
    );
    setup.env("MCP_API_KEYS", &Value::Object(legacy).to_string());
    let gw = setup.start().await;
    let forged = format!("mcp_{}_{}", valid.key_id, unknown_key().secret_part());
    let unknown = unknown_key().key;

    let invalid: &[&str] = &["invalid API key", "check it"];
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, Expect);
    let cases: Vec<Case<'_>> = vec![
        (
            "valid store key (control)",
            vec![("x-api-key", valid.key.clone())],
            Expect::Ok("alice"),
        ),
        (
            "valid MCP_API_KEYS key (control)",
            vec![("x-api-key", legacy_valid.clone())],
            Expect::Ok("connector-user"),
        ),
        ("no credential", vec![], Expect::Missing),
        (
            "unknown generated key",
            vec![("x-api-key", unknown.clone())],
            Expect::Invalid(invalid),
        ),
        (
            "unknown key as Bearer",
            vec![("authorization", format!("Bearer {unknown}"))],
            Expect::Invalid(invalid),
        ),
        (
            "known key id, forged secret",
            vec![("x-api-key", forged)],
            Expect::Invalid(invalid),
        ),
        (
            "unknown legacy-shaped key",
            vec![("x-api-key", "not-a-real-key-123456".into())],
            Expect::Invalid(invalid),
        ),
        (
            "Authorization: Basic",
            vec![("authorization", "Basic dXNlcjpwYXNzd29yZA==".into())],
            Expect::Invalid(&["unreadable credential", "Bearer"]),
        ),
        (
            "empty X-API-Key",
            vec![("x-api-key", String::new())],
            Expect::Invalid(&["unreadable credential", "X-API-Key"]),
        ),
        (
            "Bearer without a token",
            vec![("authorization", "Bearer".into())],
            Expect::Invalid(&["unreadable credential", "no token"]),
        ),
        (
            "revoked key",
            vec![("x-api-key", revoked.key.clone())],
            Expect::Invalid(invalid),
        ),
        (
            "expired store key",
            vec![("x-api-key", expired.key.clone())],
            Expect::Invalid(&["expired API key", "rotate"]),
        ),
        (
            "expired MCP_API_KEYS key",
            vec![("x-api-key", legacy_expired.clone())],
            Expect::Invalid(&["expired API key", "rotate"]),
        ),
        (
            "X-API-Key wins over a valid Bearer",
            vec![
                ("x-api-key", unknown.clone()),
                ("authorization", format!("Bearer {}", valid.key)),
            ],
            Expect::Invalid(invalid),
        ),
    ];
    for (name, headers, expect) in cases {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let init = gw.try_initialize(&h).await;
        let me = gw.get("/auth/me", &h).await;
        match expect {
            Expect::Ok(user) => {
                init.ok(name);
                assert_eq!(me.status, 200, "{name}: /auth/me {}", me.text);
                assert_eq!(me.body["user_id"], json!(user), "{name}");
            }
            Expect::Missing => {
                assert_missing(&init, name);
                assert_eq!(me.status, 401, "{name}: /auth/me");
                assert_bare_challenge(&challenge(&me, name), name);
            }
            Expect::Invalid(says) => {
                assert_invalid(&init, name, says);
                assert_invalid(&me, &format!("{name} (/auth/me)"), says);
            }
        }
    }
}

#[tokio::test]
async fn revocation_reaches_a_running_gateway() {
    let setup = Setup::new("");
    let k = setup.key(key("alice"));
    let gw = setup.start().await;
    let s = gw.initialize(&[k.x_api_key()]).await;
    gw.call(&[k.x_api_key()], Some(&s), "echo", json!({ "text": "before" }))
        .await
        .ok("before revocation");
    assert!(gw.store().revoke_key(&k.key_id).await.unwrap());
    eventually(Duration::from_secs(5), "the revoked key is refused", || async {
        gw.try_initialize(&[k.x_api_key()]).await.status == 401
    })
    .await;
    // The open session is of no help either.
    let r = gw
        .call(&[k.x_api_key()], Some(&s), "echo", json!({ "text": "after" }))
        .await;
    assert_invalid(&r, "revoked key on its open session", &["invalid API key"]);
}

// ---- 3. rotation ------------------------------------------------------------------------------

#[tokio::test]
async fn rotation_overlap_then_only_the_new_key() {
    let setup = Setup::new("");
    let old = setup.key(key("rotating-user").expires_at(now_s() + 3600));
    let new = setup.key(key("rotating-user"));
    let gw = setup.start().await;
    for (name, k) in [("old key during overlap", &old), ("new key", &new)] {
        let me = gw.whoami(&[k.x_api_key()]).await;
        assert_eq!(me["user_id"], json!("rotating-user"), "{name}");
        assert_eq!(me["key_id"], json!(k.key_id), "{name}");
        let s = gw.initialize(&[k.x_api_key()]).await;
        gw.call(&[k.x_api_key()], Some(&s), "echo", json!({ "text": "x" }))
            .await
            .ok(name);
    }
    // The overlap window ends.
    assert!(gw.store().set_key_expiry(&old.key_id, Some(now_s() - 1)).await.unwrap());
    eventually(Duration::from_secs(5), "the old key expires", || async {
        gw.try_initialize(&[old.x_api_key()]).await.status == 401
    })
    .await;
    let r = gw.try_initialize(&[old.x_api_key()]).await;
    assert_invalid(&r, "old key after the overlap", &["expired API key", "rotate"]);
    let s = gw.initialize(&[new.x_api_key()]).await;
    gw.call(&[new.x_api_key()], Some(&s), "echo", json!({ "text": "x" }))
        .await
        .ok("new key after the overlap");
}

// ---- 4. roles and permissions -----------------------------------------------------------------

const ROLE_POLICY: &str = r#"
[[policy.rules]]
tools = ["add"]
role = "admin"

[[policy.rules]]
tools = ["echo", "inspect"]
permissions = ["read"]
"#;

#[tokio::test]
async fn wrong_role_and_wrong_permission_get_403_naming_what_is_needed() {
    let setup = Setup::new(ROLE_POLICY);
    let user = setup.key(key("uma"));
    let reader = setup.key(key("rhea").perms(&["read"]));
    let admin = setup.key(key("ada").role(Role::Admin));
    let gw = setup.start().await;

    // (name, key, tool, Ok | (message fragments))
    type Case<'a> = (&'a str, &'a Issued, &'a str, Option<&'a [&'a str]>);
    let cases: &[Case<'_>] = &[
        (
            "user calls an admin tool",
            &user,
            "add",
            Some(&["insufficient role", "admin", "your role is user"]),
        ),
        ("admin calls the admin tool", &admin, "add", None),
        (
            "read-only key calls a write tool",
            &reader,
            "slow",
            Some(&["insufficient permission", "write", "[read]"]),
        ),
        (
            "read-only key calls the admin tool",
            &reader,
            "add",
            Some(&["insufficient role", "admin"]),
        ),
        ("read-only key calls a read tool", &reader, "echo", None),
        ("user calls a write tool", &user, "slow", None),
    ];
    for &(name, k, tool, refused) in cases {
        let s = gw.initialize(&[k.x_api_key()]).await;
        let args = match tool {
            "add" => json!({ "a": 1, "b": 2 }),
            "slow" => json!({ "steps": 1, "delay_ms": 1 }),
            _ => json!({ "text": "x" }),
        };
        let r = gw.call(&[k.x_api_key()], Some(&s), tool, args).await;
        match refused {
            None => {
                r.ok(name);
            }
            Some(says) => {
                r.refused(name, 403, code::FORBIDDEN, says);
                assert!(r.header("www-authenticate").is_none(), "{name}: 403 is not a challenge");
            }
        }
    }

    // tools/list shows what each key may call, plus whoami.
    let all = [
        "add",
        "ask_name",
        "crash",
        "echo",
        "inspect",
        "slow",
        "summarize",
        "whoami",
    ];
    let lists: &[(&str, &Issued, Vec<&str>)] = &[
        ("read-only key", &reader, vec!["echo", "inspect", "whoami"]),
        ("user key", &user, all.iter().copied().filter(|t| *t != "add").collect()),
        ("admin key", &admin, all.to_vec()),
    ];
    for (name, k, want) in lists {
        let s = gw.initialize(&[k.x_api_key()]).await;
        let r = gw.list_tools(&[k.x_api_key()], &s).await;
        r.ok(name);
        assert_eq!(r.tool_names(), *want, "{name}: tools/list");
    }
}

// ---- 5. public tools --------------------------------------------------------------------------

const PUBLIC_ECHO: &str = "[[policy.rules]]\ntools = [\"echo\"]\npublic = true\n";

#[tokio::test]
async fn a_public_tool_needs_no_credential() {
    let setup = Setup::new(PUBLIC_ECHO);
    let k = setup.key(key("alice"));
    let gw = setup.start().await;
    let s = gw.initialize(&[]).await;
    let list = gw.list_tools(&[], &s).await;
    list.ok("anonymous tools/list");
    let names = list.tool_names();
    assert!(names.contains(&"echo".to_string()), "{names:?}");
    for hidden in ["add", "inspect", "slow", "crash"] {
        assert!(
            !names.contains(&hidden.to_string()),
            "anonymous sees {hidden}: {names:?}"
        );
    }
    let r = gw.call(&[], Some(&s), "echo", json!({ "text": "public" })).await;
    r.ok("anonymous echo");
    assert_eq!(r.tool_text(), "public");
    let r = gw.call(&[], Some(&s), "add", json!({ "a": 1, "b": 2 })).await;
    assert_missing(&r, "anonymous add");
    // A key still sees everything it may call.
    let ks = gw.initialize(&[k.x_api_key()]).await;
    let names = gw.list_tools(&[k.x_api_key()], &ks).await.tool_names();
    assert!(
        names.contains(&"add".to_string()) && names.contains(&"echo".to_string()),
        "{names:?}"
    );
}

#[tokio::test]

async fn anonymous_tools_list_shows_only_what_it_can_call() {
    let gw = Setup::new(PUBLIC_ECHO).start().await;
    let s = gw.initialize(&[]).await;
    let list = gw.list_tools(&[], &s).await;
    list.ok("anonymous tools/list");
    let whoami = gw.call(&[], Some(&s), "whoami", json!({})).await;
    if !whoami.is_ok() {
        assert_eq!(
            list.tool_names(),
            vec!["echo".to_string()],
            "whoami is listed but calling it answers {} {}",
            whoami.status,
            whoami.text
        );
    }
}

// ---- 6. sessions ------------------------------------------------------------------------------

#[tokio::test]
async fn a_session_is_bound_to_the_principal_that_opened_it() {
    let setup = Setup::new("");
    let a = setup.key(key("alice"));
    let b = setup.key(key("bob"));
    let gw = setup.start().await;
    let s = gw.initialize(&[a.x_api_key()]).await;

    let r = gw.list_tools(&[b.x_api_key()], &s).await;
    r.refused(
        "key B on A's session",
        403,
        code::FORBIDDEN,
        &["another principal", "initialize"],
    );
    let r = gw
        .call(&[b.x_api_key()], Some(&s), "echo", json!({ "text": "x" }))
        .await;
    r.refused(
        "key B calls on A's session",
        403,
        code::FORBIDDEN,
        &["another principal"],
    );
    let r = gw
        .get(
            "/mcp",
            &[b.x_api_key(), ("mcp-session-id", &s), ("accept", "text/event-stream")],
        )
        .await;
    assert_eq!(r.status, 403, "GET stream of A's session by B: {}", r.text);
    let r = gw.delete("/mcp", &[b.x_api_key(), ("mcp-session-id", &s)]).await;
    assert_eq!(r.status, 403, "DELETE of A's session by B: {}", r.text);
    let r = gw.list_tools(&[a.x_api_key()], "no-such-session-0123").await;
    r.refused("unknown session id", 404, code::SESSION_NOT_FOUND, &["initialize"]);

    // A's session still works for A after all that.
    gw.call(&[a.x_api_key()], Some(&s), "echo", json!({ "text": "x" }))
        .await
        .ok("A on A's session");
}

#[tokio::test]

async fn no_credential_on_an_owned_session_is_401_not_403() {
    let setup = Setup::new("");
    let a = setup.key(key("alice"));
    let gw = setup.start().await;
    let s = gw.initialize(&[a.x_api_key()]).await;
    // A client that sends its key only on initialize (or lost it) must be told to send the key.
    let r = gw.list_tools(&[], &s).await;
    assert_missing(&r, "no key on A's session");
    let r = gw
        .get("/mcp", &[("mcp-session-id", &s), ("accept", "text/event-stream")])
        .await;
    assert_missing(&r, "GET stream of A's session without a key");
}

// ---- 7. limits --------------------------------------------------------------------------------

struct LimitCase {
    name: &'static str,
    toml: &'static str,
    /// The key's own limits.
    limits: Limits,
    /// The key is seed 001's `MCP_API_KEYS` entry (limits from `rateLimit`) instead of a store key.
    legacy: bool,
    /// Tools called after initialize (which counts as one request).
    calls: &'static [&'static str],
    /// Index in `calls` of the first refused call.
    refused_at: usize,
    says: &'static [&'static str],
    max_retry_after: u64,
}

fn limits(per_minute: Option<u32>, per_hour: Option<u32>, per_day: Option<u32>) -> Limits {
    Limits {
        per_minute,
        per_hour,
        per_day,
    }
}

fn args_for(tool: &str) -> Value {
    match tool {
        "add" => json!({ "a": 2, "b": 3 }),
        _ => json!({ "text": "x" }),
    }
}

#[tokio::test]
async fn limits_answer_429_with_retry_after_and_name_the_limit() {
    let cases = [
        LimitCase {
            name: "per_minute = 3: the 4th request",
            toml: "",
            limits: limits(Some(3), None, None),
            legacy: false,
            calls: &["echo", "echo", "echo"],
            refused_at: 2,
            says: &["per-minute", "3", "retry after"],
            max_retry_after: 60,
        },
        LimitCase {
            name: "per_hour = 2",
            toml: "",
            limits: limits(None, Some(2), None),
            legacy: false,
            calls: &["echo", "echo"],
            refused_at: 1,
            says: &["per-hour", "2", "retry after"],
            max_retry_after: 3600,
        },
        LimitCase {
            name: "daily quota = 3",
            toml: "",
            limits: limits(None, None, Some(3)),
            legacy: false,
            calls: &["echo", "echo", "echo"],
            refused_at: 2,
            says: &["daily quota", "3", "retry after"],
            max_retry_after: 86_400,
        },
        LimitCase {
            name: "per-tool limit on add",
            toml: "[[limits.tools]]\ntools = [\"add\"]\nper_minute = 1\n",
            limits: Limits::default(),
            legacy: false,
            calls: &["add", "echo", "echo", "add"],
            refused_at: 3,
            says: &["per-minute", "for tool add", "retry after"],
            max_retry_after: 60,
        },
        LimitCase {
            name: "[limits] default for a key without limits",
            toml: "[limits]\ndefault = { per_minute = 2 }\n",
            limits: Limits::default(),
            legacy: false,
            calls: &["echo", "echo"],
            refused_at: 1,
            says: &["per-minute", "2"],
            max_retry_after: 60,
        },
        LimitCase {
            name: "seed 001 rateLimit.requestsPerMinute = 2",
            toml: "",
            limits: limits(Some(2), None, None),
            legacy: true,
            calls: &["echo", "echo"],
            refused_at: 1,
            says: &["per-minute", "2"],
            max_retry_after: 60,
        },
    ];
    for c in cases {
        let mut setup = Setup::new(c.toml);
        let other = setup.key(key("bystander").limits(c.limits));
        let k = if c.legacy {
            let legacy = format!("legacy-limited-key-{}", unknown_key().key_id);
            setup.env(
                "MCP_API_KEYS",
                &seed_keys_json(&legacy, "limited", "user", &["*"], c.limits.per_minute),
            );
            legacy
        } else {
            setup.key(key("limited").limits(c.limits)).key
        };
        let gw = setup.start().await;
        let h = [("x-api-key", k.as_str())];
        let s = gw.initialize(&h).await;
        for (i, tool) in c.calls.iter().enumerate() {
            let r = gw.call(&h, Some(&s), tool, args_for(tool)).await;
            let what = format!("{}: call #{i} ({tool})", c.name);
            if i < c.refused_at {
                r.ok(&what);
                continue;
            }
            r.refused(&what, 429, code::RATE_LIMITED, c.says);
            let retry = r
                .header("retry-after")
                .unwrap_or_else(|| panic!("{what}: no Retry-After"))
                .parse::<u64>()
                .unwrap_or_else(|e| panic!("{what}: Retry-After is not integer seconds ({e})"));
            assert!((1..=c.max_retry_after).contains(&retry), "{what}: Retry-After {retry}");
            assert!(
                r.message().contains(&format!("retry after {retry} s")),
                "{what}: message and header agree: {}",
                r.message()
            );
            // The body still carries the request's id, so clients can match it.
            assert!(r.body["id"].is_number(), "{what}: id {}", r.text);
        }
        // Limits are per key: another key is unaffected.
        let oh = [other.x_api_key()];
        let os = gw.initialize(&oh).await;
        gw.call(&oh, Some(&os), c.calls[0], args_for(c.calls[0]))
            .await
            .ok(&format!("{}: another key", c.name));
    }
}

#[tokio::test]
async fn a_keys_own_limits_win_over_the_default() {
    let setup = Setup::new("[limits]\ndefault = { per_minute = 2 }\n");
    let generous = setup.key(key("gen").limits(limits(Some(10), None, None)));
    let gw = setup.start().await;
    let h = [generous.x_api_key()];
    let s = gw.initialize(&h).await;
    for i in 0..4 {
        gw.call(&h, Some(&s), "echo", json!({ "text": "x" }))
            .await
            .ok(&format!("own per_minute=10, call {i}"));
    }
}

// ---- 8. default key and default role ----------------------------------------------------------

const DEFAULT_KEY_CHAIN: &str = "[auth]\ndefault_key_env = [\"PARTNER_MCP_DEFAULT_API_KEY\", \"KGP_API_KEY\"]\n";

#[tokio::test]
async fn server_side_default_key_from_the_env_chain() {
    // Only the second variable of the chain is set.
    let mut setup = Setup::new(DEFAULT_KEY_CHAIN);
    let kgp = setup.key(key("kgp-user"));
    let other = setup.key(key("explicit-user"));
    setup.env("KGP_API_KEY", &kgp.key);
    let gw = setup.start().await;
    let me = gw.whoami(&[]).await;
    assert_eq!(me["auth_method"], json!("default_key"), "{me}");
    assert_eq!(me["user_id"], json!("kgp-user"), "{me}");
    let s = gw.initialize(&[]).await;
    gw.call(&[], Some(&s), "echo", json!({ "text": "x" }))
        .await
        .ok("no credential, default key");
    // An explicit key wins over the default one.
    let me = gw.whoami(&[other.x_api_key()]).await;
    assert_eq!(
        (me["user_id"].clone(), me["auth_method"].clone()),
        (json!("explicit-user"), json!("api_key"))
    );
    // An explicit bad key is refused, not replaced by the default key.
    assert_invalid(
        &gw.try_initialize(&[("x-api-key", &unknown_key().key)]).await,
        "bad explicit key in single-user mode",
        &["invalid API key"],
    );
    drop(gw);

    // Both set: the first of the chain wins (seed 000's order).
    let mut setup = Setup::new(DEFAULT_KEY_CHAIN);
    let partner = setup.key(key("partner-user"));
    let kgp = setup.key(key("kgp-user"));
    setup
        .env("PARTNER_MCP_DEFAULT_API_KEY", &partner.key)
        .env("KGP_API_KEY", &kgp.key);
    let gw = setup.start().await;
    assert_eq!(gw.whoami(&[]).await["user_id"], json!("partner-user"));
    drop(gw);

    // Neither set: no credential is refused.
    let setup = Setup::new(DEFAULT_KEY_CHAIN);
    let _unused = setup.key(key("kgp-user"));
    let gw = setup.start().await;
    assert_missing(&gw.try_initialize(&[]).await, "default-key chain with nothing set");
    assert_missing(&gw.call(&[], None, "whoami", json!({})).await, "whoami, nothing set");
}

const GUEST: &str = r#"
[auth]
default_role = "guest"

[[policy.rules]]
tools = ["echo"]
permissions = ["read"]
"#;

#[tokio::test]
async fn default_role_lets_anonymous_callers_list_but_not_write() {
    let setup = Setup::new(GUEST);
    let k = setup.key(key("alice"));
    let gw = setup.start().await;
    let me = gw.whoami(&[]).await;
    assert_eq!(
        (me["auth_method"].clone(), me["role"].clone()),
        (json!("anonymous"), json!("guest")),
        "{me}"
    );
    let s = gw.initialize(&[]).await;
    let list = gw.list_tools(&[], &s).await;
    list.ok("anonymous tools/list");
    assert_eq!(list.tool_names(), vec!["echo", "whoami"]);
    gw.call(&[], Some(&s), "echo", json!({ "text": "x" }))
        .await
        .ok("anonymous read tool");
    let r = gw.call(&[], Some(&s), "add", json!({ "a": 1, "b": 2 })).await;
    assert!(
        matches!(r.status.as_u16(), 401 | 403),
        "anonymous write tool must be refused: {} {}",
        r.status,
        r.text
    );
    // A caller without a key is told to send one (401), not what its absent key lacks.
    assert_eq!(r.status.as_u16(), 401, "{}", r.text);
    assert!(
        r.message().contains("X-API-Key"),
        "says how to authenticate: {}",
        r.message()
    );
    // A bad key is not downgraded to anonymous.
    assert_invalid(
        &gw.try_initialize(&[("x-api-key", &unknown_key().key)]).await,
        "bad key with a default role",
        &["invalid API key"],
    );
    // A real key still gets its own rights.
    let ks = gw.initialize(&[k.x_api_key()]).await;
    gw.call(&[k.x_api_key()], Some(&ks), "add", json!({ "a": 1, "b": 2 }))
        .await
        .ok("key on a guest gateway");
}

#[tokio::test]

async fn anonymous_caller_refused_is_told_to_authenticate() {
    let gw = Setup::new(GUEST).start().await;
    let s = gw.initialize(&[]).await;
    let r = gw.call(&[], Some(&s), "add", json!({ "a": 1, "b": 2 })).await;
    r.refused("anonymous write tool", 401, code::UNAUTHORIZED, &["API key"]);
    assert!(r.header("www-authenticate").is_some(), "401 needs a challenge");
}

// ---- 9. external key verification ------------------------------------------------------------

/// The vendor API in these tests: `GET /me` answers 200 for the good key, 401 otherwise.
async fn verifier(good: &str) -> Vendor {
    let good = good.to_string();
    Vendor::start(move |key| {
        (key == good).then(|| json!({ "id": "u1", "role": "developer", "permissions": ["read", "write"] }))
    })
    .await
}

fn external_toml(url: &str) -> String {
    format!(
        "[auth.external]\nurl = \"{url}\"\nuser_id_path = \"id\"\nrole_path = \"role\"\n\
         permissions_path = \"permissions\"\ntimeout_ms = 300\n"
    )
}

fn vendor_key() -> String {
    format!("kp_live_{}{}", unknown_key().key_id, unknown_key().key_id)
}

#[tokio::test]
async fn external_verifier_up_bad_slow_down_and_cached() {
    let good = vendor_key();
    let v = verifier(&good).await;
    let setup = Setup::new(&external_toml(&v.me_url()));
    let local = setup.key(key("local-user"));
    let gw = setup.start().await;
    let gh = [("x-api-key", good.as_str())];

    // Up: a key the registry does not know is accepted as the vendor's user.
    let me = gw.whoami(&gh).await;
    assert_eq!(me["user_id"], json!("u1"), "{me}");
    assert_eq!(me["role"], json!("developer"), "{me}");
    assert_eq!(me["permissions"], json!(["read", "write"]), "{me}");
    assert_eq!(me["auth_method"], json!("external_key"), "{me}");
    let s = gw.initialize(&gh).await;
    gw.call(&gh, Some(&s), "echo", json!({ "text": "x" }))
        .await
        .ok("externally verified key");
    assert_eq!(v.calls(), 1, "one verification, then the cache");

    // Registry keys never go to the verifier.
    assert_eq!(gw.whoami(&[local.x_api_key()]).await["user_id"], json!("local-user"));
    assert_eq!(v.calls(), 1);

    // Bad key: 401, and the answer is cached too.
    let bad = vendor_key();
    let bh = [("x-api-key", bad.as_str())];
    assert_invalid(
        &gw.try_initialize(&bh).await,
        "key the verifier rejects",
        &["invalid API key"],
    );
    assert_invalid(
        &gw.try_initialize(&bh).await,
        "rejected key again",
        &["invalid API key"],
    );
    assert_eq!(v.calls(), 2, "negative answers are cached");

    // Slow: 503, never 401, after about the timeout.
    v.delay(1500);
    let fresh = vendor_key();
    let started = Instant::now();
    let r = gw.try_initialize(&[("x-api-key", fresh.as_str())]).await;
    let took = started.elapsed();
    r.refused("slow verifier", 503, code::UPSTREAM_UNAVAILABLE, &["verifier", "retry"]);
    assert!(
        r.header("www-authenticate").is_none(),
        "503 is not a credential problem"
    );
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_millis(1400),
        "took {took:?}"
    );
    let r = gw.get("/auth/me", &[("x-api-key", fresh.as_str())]).await;
    assert_eq!(r.status, 503, "/auth/me with a slow verifier: {}", r.text);
    v.delay(0);

    // Down: the cached good key still works within the cache TTL; a new key gets 503.
    let before = v.calls();
    v.stop().await;
    let me = gw.whoami(&gh).await;
    assert_eq!(me["user_id"], json!("u1"), "cached after the verifier stopped");
    gw.call(&gh, Some(&s), "echo", json!({ "text": "x" }))
        .await
        .ok("cached key, verifier down");
    assert_eq!(v.calls(), before);
    let r = gw.try_initialize(&[("x-api-key", vendor_key().as_str())]).await;
    r.refused("verifier stopped", 503, code::UPSTREAM_UNAVAILABLE, &["verifier"]);
}

#[tokio::test]
async fn external_verifier_never_reachable_is_503() {
    let url = dead_url("/me").await;
    let gw = Setup::new(&external_toml(&url)).start().await;
    let r = gw.try_initialize(&[("x-api-key", vendor_key().as_str())]).await;
    r.refused("verifier down", 503, code::UPSTREAM_UNAVAILABLE, &["verifier", "retry"]);
    assert!(r.header("www-authenticate").is_none());
}

// ---- 10. whoami, /auth/me, /mcp/status --------------------------------------------------------

#[tokio::test]
async fn whoami_and_auth_me_show_principal_limits_and_what_is_left() {
    let setup = Setup::new("");
    let k = setup.key(
        key("alice")
            .perms(&["read", "write"])
            .limits(limits(Some(10), None, Some(100))),
    );
    let gw = setup.start().await;
    let h = [k.x_api_key()];

    let me = gw.get("/auth/me", &h).await;
    assert_eq!(me.status, 200, "{}", me.text);
    let b = &me.body;
    assert_eq!(b["principal"], json!(format!("key:{}", k.key_id)));
    assert_eq!(b["user_id"], json!("alice"));
    assert_eq!(b["key_id"], json!(k.key_id));
    assert_eq!(b["role"], json!("user"));
    assert_eq!(b["permissions"], json!(["read", "write"]));
    assert_eq!(b["auth_method"], json!("api_key"));
    assert_eq!(b["limits"], json!({ "per_minute": 10, "per_day": 100 }));
    assert_eq!(b["remaining"], json!({ "per_minute": 10, "per_day": 100 }));

    // The whoami tool counts as a call itself.
    let w = gw.whoami(&h).await;
    assert_eq!(w["principal"], b["principal"]);
    assert_eq!(w["remaining"], json!({ "per_minute": 9, "per_day": 99 }));

    let s = gw.initialize(&h).await;
    for _ in 0..2 {
        gw.call(&h, Some(&s), "echo", json!({ "text": "x" })).await.ok("echo");
    }
    let list = gw.list_tools(&h, &s).await;
    assert!(list.tool_names().contains(&"whoami".to_string()));
    let after = gw.get("/auth/me", &h).await;
    // 1 whoami + initialize + 2 echo + tools/list = 5 requests.
    assert_eq!(
        after.body["remaining"],
        json!({ "per_minute": 5, "per_day": 95 }),
        "{}",
        after.text
    );

    // Without a credential.
    let r = gw.get("/auth/me", &[]).await;
    assert_missing(&r, "/auth/me without a key");
    let r = gw.get("/mcp/status", &[]).await;
    assert_missing(&r, "/mcp/status without a key");
    let r = gw.get("/mcp/status", &[("x-api-key", &unknown_key().key)]).await;
    assert_invalid(&r, "/mcp/status with a bad key", &["invalid API key"]);
    let r = gw.get("/mcp/status", &h).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["name"], json!("mcpgate"));
    assert!(
        r.body["auth"]["methods"]
            .as_array()
            .is_some_and(|m| m.contains(&json!("api_key")))
    );
}

// ---- 11. tenancy ------------------------------------------------------------------------------

#[tokio::test]
async fn a_tenant_header_that_disagrees_with_the_key_is_refused() {
    let setup = Setup::new("");
    let k = setup.key(key("alice").tenant("t1"));
    let gw = setup.start().await;
    let wrong = [k.x_api_key(), ("x-tenant-id", "t2")];
    let right = [k.x_api_key(), ("x-tenant-id", "t1")];
    let r = gw.try_initialize(&wrong).await;
    r.refused("X-Tenant-ID: t2", 403, code::FORBIDDEN, &["X-Tenant-ID", "tenant"]);
    let s = gw.initialize(&right).await;
    gw.call(&right, Some(&s), "echo", json!({ "text": "x" }))
        .await
        .ok("X-Tenant-ID: t1");
    let r = gw.call(&wrong, Some(&s), "echo", json!({ "text": "x" })).await;
    r.refused("t2 on a t1 session", 403, code::FORBIDDEN, &["X-Tenant-ID"]);
    // No header: the key's tenant applies.
    gw.call(&[k.x_api_key()], Some(&s), "echo", json!({ "text": "x" }))
        .await
        .ok("no tenant header");
    assert_eq!(gw.whoami(&[k.x_api_key()]).await["tenant"], json!("t1"));
}

// ---- 12. no secret anywhere -------------------------------------------------------------------

/// Runs on one thread so that the thread-local TRACE subscriber sees the gateway, the upstream,
/// the verifier and every task they spawn (blocking-pool work aside).
#[tokio::test(flavor = "current_thread")]
async fn no_secret_reaches_logs_audit_metrics_or_responses() {
    let logs = LogCapture::install();

    let ext_good = vendor_key();
    let ext_bad = vendor_key();
    let verifier = verifier(&ext_good).await;
    let legacy = format!("legacy-connector-key-{}", unknown_key().key_id);
    let toml = format!(
        "[auth]\nallow_query_key = true\nallow_tool_arg_key = true\ndefault_key_env = [\"KGP_API_KEY\"]\n\n{}\n\
         [[policy.rules]]\ntools = [\"echo\", \"inspect\"]\npermissions = [\"read\"]\n",
        external_toml(&verifier.me_url())
    );
    let mut setup = Setup::new(&toml);
    let valid = setup.key(key("alice"));
    let reader = setup.key(key("rhea").perms(&["read"]));
    let limited = setup.key(key("lim").limits(limits(Some(1), None, None)));
    let revoked = setup.key(key("rita").revoked());
    let expired = setup.key(key("ed").expires_at(now_s() - 60));
    let default = setup.key(key("default-user"));
    let unknown = unknown_key();
    let forged = format!("mcp_{}_{}", valid.key_id, unknown_key().secret_part());
    setup.env("KGP_API_KEY", &default.key).env(
        "MCP_API_KEYS",
        &seed_keys_json(&legacy, "connector-user", "user", &["*"], None),
    );
    let gw = setup.start().await;

    // -- traffic --
    let vh = [valid.x_api_key()];
    let (bh, bv) = valid.bearer();
    let s = gw.initialize(&vh).await;
    gw.list_tools(&vh, &s).await.ok("list");
    gw.call(&vh, Some(&s), "echo", json!({ "text": "hello" }))
        .await
        .ok("echo");
    gw.call(&vh, Some(&s), "inspect", json!({})).await.ok("inspect");
    gw.call(&[(bh, bv.as_str())], Some(&s), "inspect", json!({}))
        .await
        .ok("bearer");
    gw.call(&[], Some(&s), "inspect", json!({ "api_key": valid.key }))
        .await
        .ok("tool arg");
    gw.call(&vh, Some(&s), "add", json!({ "a": 1, "b": 2, "api_key": valid.key }))
        .await
        .ok("add");
    let quri = format!("/mcp?api_key={}", valid.key);
    let qs = gw.initialize_at(&quri, &[]).await;
    gw.call_at(&quri, &[], Some(&qs), "inspect", json!({}))
        .await
        .ok("query");
    assert_eq!(gw.whoami(&vh).await["key_id"], json!(valid.key_id));
    assert_eq!(gw.get("/auth/me", &vh).await.status, 200);
    assert_eq!(gw.get("/mcp/status", &vh).await.status, 200);
    assert_eq!(
        gw.get(&format!("/auth/me?api_key={}", valid.key), &[]).await.status,
        200
    );
    // Refusals of every kind.
    let rs = gw.initialize(&[reader.x_api_key()]).await;
    assert_eq!(
        gw.call(&[reader.x_api_key()], Some(&rs), "add", args_for("add"))
            .await
            .status,
        403
    );
    gw.whoami(&[limited.x_api_key()]).await;
    assert_eq!(
        gw.call(&[limited.x_api_key()], None, "whoami", json!({})).await.status,
        429
    );
    for (name, bad) in [
        ("revoked", revoked.key.as_str()),
        ("expired", expired.key.as_str()),
        ("unknown", unknown.key.as_str()),
        ("forged", forged.as_str()),
        ("external bad", ext_bad.as_str()),
    ] {
        assert_eq!(
            gw.try_initialize(&[("x-api-key", bad)]).await.status,
            401,
            "{name} header"
        );
        let bearer = format!("Bearer {bad}");
        assert_eq!(
            gw.try_initialize(&[("authorization", &bearer)]).await.status,
            401,
            "{name} bearer"
        );
        let basic = format!("Basic {bad}");
        assert_eq!(
            gw.try_initialize(&[("authorization", &basic)]).await.status,
            401,
            "{name} basic"
        );
        let uri = format!("/mcp?api_key={bad}");
        assert_eq!(gw.try_initialize_at(&uri, &[]).await.status, 401, "{name} query");
        let r = gw.call(&[], None, "inspect", json!({ "api_key": bad })).await;
        assert_eq!(r.status, 401, "{name} tool arg: {}", r.text);
        assert_eq!(
            gw.get("/auth/me", &[("x-api-key", bad)]).await.status,
            401,
            "{name} /auth/me"
        );
    }
    // Default key, legacy key, external key.
    assert_eq!(gw.whoami(&[]).await["auth_method"], json!("default_key"));
    let ds = gw.initialize(&[]).await;
    gw.call(&[], Some(&ds), "echo", json!({ "text": "d" }))
        .await
        .ok("default key echo");
    assert_eq!(
        gw.whoami(&[("x-api-key", &legacy)]).await["user_id"],
        json!("connector-user")
    );
    assert_eq!(gw.whoami(&[("x-api-key", &ext_good)]).await["user_id"], json!("u1"));
    let es = gw.initialize(&[("x-api-key", &ext_good)]).await;
    gw.call(&[("x-api-key", &ext_good)], Some(&es), "inspect", json!({}))
        .await
        .ok("external inspect");
    verifier.stop().await;
    let metrics = gw.get("/metrics", &[]).await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.text.contains("mcpgate_requests"),
        "metrics rendered: {}",
        metrics.text
    );

    // -- where secrets must not be --
    let audit = gw.audit().await;
    let logs = logs.text();
    let responses = gw.responses();
    let audit_text = audit_text(&audit);

    // The test can fail: every place holds something, including non-secret identifiers.
    assert!(!logs.is_empty(), "nothing was captured from the logs");
    assert!(logs.contains("allow_query_key is on"), "start-up warning captured");
    assert!(logs.contains(&valid.key_id), "the auth trace names the key id");
    assert!(audit.len() > 40, "audit records: {}", audit.len());
    assert!(audit_text.contains(&valid.key_id), "audit names the key id");
    assert!(responses.contains(&valid.key_id), "whoami answers name the key id");

    let mut secrets: Vec<(String, String)> = Vec::new();
    for (name, k) in [
        ("valid", &valid),
        ("reader", &reader),
        ("limited", &limited),
        ("revoked", &revoked),
        ("expired", &expired),
        ("default", &default),
        ("unknown", &unknown),
    ] {
        secrets.push((format!("{name} key"), k.key.clone()));
        secrets.push((format!("{name} secret part"), k.secret_part().to_string()));
        secrets.push((format!("{name} hash"), k.hash.clone()));
    }
    for (name, k) in [
        ("forged", forged.as_str()),
        ("legacy", legacy.as_str()),
        ("external good", ext_good.as_str()),
        ("external bad", ext_bad.as_str()),
    ] {
        secrets.push((format!("{name} key"), k.to_string()));
        secrets.push((format!("{name} hash"), hash_hex(k)));
    }
    let places = [
        ("logs", logs.as_str()),
        ("audit", audit_text.as_str()),
        ("metrics", metrics.text.as_str()),
        ("responses", responses.as_str()),
    ];
    let leaks = find_leaks(&secrets, &places);
    assert!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n\n"));
}

// ---- 13. audit --------------------------------------------------------------------------------

#[tokio::test]
async fn audit_has_one_record_per_message_with_who_what_and_outcome() {
    let setup = Setup::new("[[policy.rules]]\ntools = [\"echo\"]\npermissions = [\"read\"]\n");
    let reader = setup.key(key("rhea").perms(&["read"]).tenant("t1"));
    let limited = setup.key(key("lim").limits(limits(Some(1), None, None)));
    let gw = setup.start().await;
    let h = [reader.x_api_key()];
    let s = gw.initialize(&h).await; // initialize + notifications/initialized
    gw.list_tools(&h, &s).await.ok("list");
    gw.call(&h, Some(&s), "echo", json!({ "text": "x" })).await.ok("echo");
    assert_eq!(gw.call(&h, Some(&s), "add", args_for("add")).await.status, 403);
    assert_eq!(gw.try_initialize(&[]).await.status, 401);
    assert_eq!(
        gw.try_initialize(&[("x-api-key", &unknown_key().key)]).await.status,
        401
    );
    gw.whoami(&[limited.x_api_key()]).await;
    assert_eq!(
        gw.call(&[limited.x_api_key()], None, "whoami", json!({})).await.status,
        429
    );
    // Plain GETs are not MCP messages and are not audited here.
    assert_eq!(gw.get("/auth/me", &h).await.status, 200);

    let audit = gw.audit().await;
    assert_eq!(audit.len(), 9, "one record per POSTed message: {audit:#?}");
    let principal = format!("key:{}", reader.key_id);
    // (event, method, tool, decision, reason, status, principal)
    type Row<'a> = (
        &'a str,
        Option<&'a str>,
        Option<&'a str>,
        &'a str,
        &'a str,
        u16,
        Option<&'a str>,
    );
    let rows: Vec<Row<'_>> = audit
        .iter()
        .map(|r| {
            (
                r.event.as_str(),
                r.mcp_method.as_deref(),
                r.tool.as_deref(),
                r.decision.as_str(),
                r.reason.as_str(),
                r.status,
                r.principal.as_deref(),
            )
        })
        .collect();
    let lim_principal = format!("key:{}", limited.key_id);
    let p = Some(principal.as_str());
    let want: Vec<Row<'_>> = vec![
        ("call", Some("initialize"), None, "allow", "ok", 200, p),
        ("call", Some("notifications/initialized"), None, "allow", "ok", 202, p),
        ("call", Some("tools/list"), None, "allow", "ok", 200, p),
        ("call", Some("tools/call"), Some("echo"), "allow", "ok", 200, p),
        ("auth", Some("tools/call"), Some("add"), "deny", "forbidden", 403, p),
        (
            "auth",
            Some("initialize"),
            None,
            "deny",
            "missing_credential",
            401,
            None,
        ),
        ("auth", Some("initialize"), None, "deny", "invalid_key", 401, None),
        (
            "call",
            Some("tools/call"),
            Some("whoami"),
            "allow",
            "ok",
            200,
            Some(lim_principal.as_str()),
        ),
        (
            "auth",
            Some("tools/call"),
            Some("whoami"),
            "limited",
            "rate_limited",
            429,
            Some(lim_principal.as_str()),
        ),
    ];
    assert_eq!(rows, want);
    for r in &audit {
        if r.principal.as_deref() == p {
            assert_eq!(r.key_id.as_deref(), Some(reader.key_id.as_str()));
            assert_eq!(r.user_id.as_deref(), Some("rhea"));
            assert_eq!(r.tenant.as_deref(), Some("t1"));
            assert_eq!(r.auth_method.as_deref(), Some("api_key"));
        }
        assert!(!r.request_id.is_empty() && r.time_ms > 0);
    }
    // Every response carried the request id that its record has.
    let ids: std::collections::HashSet<&str> = audit.iter().map(|r| r.request_id.as_str()).collect();
    assert_eq!(ids.len(), audit.len(), "request ids are unique");
}

#[tokio::test]

async fn an_upstream_failure_is_audited_as_an_error_not_a_denial() {
    let dead = dead_url("/mcp").await;
    let mut setup = Setup::new("");
    let k = setup.key(key("alice"));
    setup.upstream(&dead);
    let gw = setup.start().await;
    let r = gw.try_initialize(&[k.x_api_key()]).await;
    r.refused("dead upstream", 502, code::UPSTREAM_UNAVAILABLE, &["upstream"]);
    let audit = gw.audit().await;
    assert_eq!(audit.len(), 1);
    let rec = &audit[0];
    assert_eq!(rec.principal.as_deref(), Some(format!("key:{}", k.key_id).as_str()));
    assert_eq!(
        (rec.decision.as_str(), rec.event.as_str()),
        ("error", "call"),
        "an allowed caller hitting a dead upstream is not an access denial: {rec:?}"
    );
}

// ---- seed 000's per-tool api_key flow ---------------------------------------------------------

#[tokio::test]

async fn seed_000_flow_session_without_key_then_calls_with_api_key_argument() {
    // Seed 000: kp_health is public; business tools take an `api_key` argument. The host opens
    // the MCP session without any key and passes the user's key per call.
    let setup = Setup::new(&format!("[auth]\nallow_tool_arg_key = true\n\n{PUBLIC_ECHO}"));
    let k = setup.key(key("alice"));
    let gw = setup.start().await;
    let s = gw.initialize(&[]).await;
    gw.call(&[], Some(&s), "echo", json!({ "text": "health" }))
        .await
        .ok("public tool, no key");
    let r = gw
        .call(&[], Some(&s), "inspect", json!({ "api_key": k.key, "probe": 1 }))
        .await;
    r.ok("business tool with the api_key argument");
    assert!(r.tool_json()["arguments"].get("api_key").is_none());
}
