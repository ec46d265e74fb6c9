//! The invariant: what the gateway authorizes, limits and audits is exactly what the upstream
//! executes. Each test here reproduces a way the first wave could be walked around (issue #9) —
//! it failed before the strict reading and passes after — through an HTTP upstream (a recording
//! proxy in front of the demo server sees every byte) and a stdio upstream (the demo server as a
//! child process, where one message is one line).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mcpgate_core::jsonrpc::code;
use mcpgate_core::principal::{Limits, Role};
use mcpgate_testkit::apikey::*;
use mcpgate_testkit::harness::*;
use mcpgate_testkit::process::example_bin;
use mcpgate_testkit::recorder::Recorder;
use serde_json::{Value, json};

const POLICY: &str = r#"
[[policy.rules]]
tools = ["crash", "inspect"]
role = "admin"

[[policy.rules]]
tools = ["add"]
deny = true

[[policy.rules]]
methods = ["prompts/get"]
tools = ["test_*"]
role = "admin"

[[policy.rules]]
methods = ["resources/read", "resources/subscribe"]
tools = ["test://static-*"]
role = "admin"
"#;

const ECHO_LIMIT: &str = "\n[[limits.tools]]\ntools = [\"echo\"]\nper_minute = 1\n";

/// A gateway whose HTTP upstream is the demo server behind a recording proxy, and a user key.
async fn http_gateway(extra: &str) -> (Gw, Recorder, Issued) {
    let rec = Recorder::start(&start_demo().await).await;
    let mut setup = Setup::new(&format!("{POLICY}{extra}"));
    setup.upstream(&rec.url);
    let user = setup.key(key("mallory").role(Role::User));
    (setup.start().await, rec, user)
}

/// A gateway in front of the demo server as a stdio child, and a user key.
async fn stdio_gateway() -> (Gw, Issued) {
    let cmd = format!("{} --stdio --profile demo", example_bin().display());
    let mut setup = Setup::new(&format!("{POLICY}\n[upstream]\ncommand = {}\n", toml_str(&cmd)));
    setup.upstream_cmd();
    let user = setup.key(key("mallory").role(Role::User));
    (setup.start().await, user)
}

fn toml_str(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

fn tools_calls(rec: &Recorder) -> Vec<Value> {
    rec.requests()
        .iter()
        .filter(|r| r.rpc_method.as_deref() == Some("tools/call"))
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect()
}

async fn restarts(gw: &Gw) -> f64 {
    let r = gw.get("/metrics", &[]).await;
    r.text
        .lines()
        .find(|l| l.starts_with("mcpgate_upstream_restarts_total"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Defect 2: a target of the wrong type beside the real one used to leave the gateway with "no
/// target": the policy's tool rules were skipped and the method's default let it through.
#[tokio::test]
async fn an_unreadable_target_is_refused_not_skipped() {
    let (gw, rec, user) = http_gateway("").await;
    let h = [user.x_api_key()];
    let s = gw.initialize(&h).await;
    let cases: &[(&str, &[u8], u16, i64)] = &[
        // The admin-only tool with an extra `uri` of the wrong type: read, and refused by role.
        (
            "crash + uri:1",
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"crash","arguments":{},"uri":1}}"#,
            403,
            code::FORBIDDEN,
        ),
        // The denied tool, same trick.
        (
            "add + uri:1",
            br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"add","arguments":{"a":1,"b":2},"uri":1}}"#,
            403,
            code::FORBIDDEN,
        ),
        // A duplicate name: the Python SDK runs the last one, a first-wins reader the first.
        (
            "duplicate name",
            br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{},"name":"crash"}}"#,
            400,
            code::PARSE_ERROR,
        ),
        (
            "name of the wrong type",
            br#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":["crash"],"arguments":{}}}"#,
            400,
            code::INVALID_PARAMS,
        ),
        // An admin-only resource and prompt with a wrong-typed sibling.
        (
            "resource + name:1",
            br#"{"jsonrpc":"2.0","id":5,"method":"resources/read","params":{"uri":"test://static-text","name":1}}"#,
            403,
            code::FORBIDDEN,
        ),
        (
            "prompt + uri:1",
            br#"{"jsonrpc":"2.0","id":6,"method":"prompts/get","params":{"name":"test_simple_prompt","uri":1}}"#,
            403,
            code::FORBIDDEN,
        ),
        (
            "resource uri of the wrong type",
            br#"{"jsonrpc":"2.0","id":7,"method":"resources/read","params":{"uri":{"x":"test://static-text"}}}"#,
            400,
            code::INVALID_PARAMS,
        ),
        // Completing an admin-only prompt's arguments needs what the prompt needs.
        (
            "completion of an admin prompt",
            br#"{"jsonrpc":"2.0","id":8,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"test_prompt_with_arguments"},"argument":{"name":"arg1","value":"a"}}}"#,
            403,
            code::FORBIDDEN,
        ),
        // A request with "id": null used to pass as a notification (no limits, no answer).
        (
            "id null",
            br#"{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"crash","arguments":{}}}"#,
            400,
            code::INVALID_REQUEST,
        ),
    ];
    for (what, body, status, rpc_code) in cases {
        let r = gw
            .post_raw(
                "/mcp",
                &[
                    user.x_api_key(),
                    ("mcp-session-id", &s),
                    ("mcp-protocol-version", PROTOCOL),
                ],
                body.to_vec(),
            )
            .await;
        assert_eq!(r.status.as_u16(), *status, "{what}: {}", r.text);
        assert_eq!(r.code(), Some(*rpc_code), "{what}: {}", r.text);
    }
    assert!(
        tools_calls(&rec).is_empty(),
        "nothing reached the upstream: {}",
        rec.dump()
    );
    assert_eq!(
        rec.count("resources/read") + rec.count("prompts/get") + rec.count("completion/complete"),
        0
    );
    // The audit names the target the gateway decided on, and nothing ran.
    let audit = gw.audit().await;
    let crash = audit
        .iter()
        .find(|a| a.tool.as_deref() == Some("crash"))
        .expect("crash audited");
    assert_eq!(crash.decision, "deny");
}

/// Defect 2, the limit half: a per-tool limit was skipped when the target could not be read.
#[tokio::test]
async fn a_per_tool_limit_cannot_be_skipped() {
    let (gw, rec, user) = http_gateway(ECHO_LIMIT).await;
    let h = [user.x_api_key()];
    let s = gw.initialize(&h).await;
    gw.call(&h, Some(&s), "echo", json!({ "text": "1" }))
        .await
        .ok("first echo");
    let extra =
        br#"{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"echo","arguments":{"text":"2"},"uri":1}}"#;
    let hs = [
        user.x_api_key(),
        ("mcp-session-id", s.as_str()),
        ("mcp-protocol-version", PROTOCOL),
    ];
    let r = gw.post_raw("/mcp", &hs, extra.to_vec()).await;
    r.refused("second echo with uri:1", 429, code::RATE_LIMITED, &["echo"]);
    assert_eq!(tools_calls(&rec).len(), 1);
}

/// What goes upstream is the canonical form of what was read: escapes decoded once, no raw
/// line breaks, every key once.
#[tokio::test]
async fn the_upstream_gets_the_canonical_bytes() {
    let (gw, rec, user) = http_gateway("").await;
    let s = gw.initialize(&[user.x_api_key()]).await;
    let h = [
        user.x_api_key(),
        ("mcp-session-id", s.as_str()),
        ("mcp-protocol-version", PROTOCOL),
    ];
    let body = "{ \"jsonrpc\" : \"2.0\",\r\n \"id\": 11, \"method\": \"tools\\/call\",\n \"params\": {\"name\": \"ec\\u0068o\", \"arguments\": {\"text\": \"a\u{2028}b\\u2029c\"}}}\n";
    let r = gw.post_raw("/mcp", &h, body.as_bytes().to_vec()).await;
    r.ok("echo through the canonical form");
    let calls = rec.requests();
    let up = calls
        .iter()
        .find(|c| c.rpc_method.as_deref() == Some("tools/call"))
        .unwrap();
    assert_eq!(
        up.body,
        r#"{"jsonrpc":"2.0","id":11,"method":"tools/call","params":{"name":"echo","arguments":{"text":"a\u2028b\u2029c"}}}"#
    );
}

/// Defect 7: a duplicated `api_key` argument reached the upstream (only one copy was removed).
#[tokio::test]
async fn a_tool_argument_key_never_travels() {
    let (gw, rec, user) = http_gateway("[auth]\nallow_tool_arg_key = true\n").await;
    // Seed 000: the session opens without a key; the key comes with each call.
    let s = gw.initialize(&[]).await;
    let hs = [("mcp-session-id", s.as_str()), ("mcp-protocol-version", PROTOCOL)];
    let dup = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"x","api_key":"{k}","api_key":"{k}"}}}}}}"#,
        k = user.key
    );
    let r = gw.post_raw("/mcp", &hs, dup.into_bytes()).await;
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (400, Some(code::PARSE_ERROR)),
        "{}",
        r.text
    );
    assert!(!r.text.contains(&user.key));
    let typed = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x","api_key":7}}}"#;
    let r = gw.post_raw("/mcp", &hs, typed.as_bytes().to_vec()).await;
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (400, Some(code::INVALID_PARAMS)),
        "{}",
        r.text
    );
    // One copy, the normal case: authenticated, stripped.
    gw.call(&[], Some(&s), "echo", json!({ "text": "ok", "api_key": user.key }))
        .await
        .ok("echo with a tool-argument key");
    assert_eq!(tools_calls(&rec).len(), 1);
    assert!(!rec.dump().contains(&user.key), "the key reached the upstream");
}

/// Notifications count toward the caller's rate limit; they used to be free.
#[tokio::test]
async fn notifications_count_toward_limits() {
    let rec = Recorder::start(&start_demo().await).await;
    let mut setup = Setup::new(POLICY);
    setup.upstream(&rec.url);
    let limited = setup.key(key("chatty").limits(Limits {
        per_minute: Some(4),
        ..Limits::default()
    }));
    let gw = setup.start().await;
    let h = [limited.x_api_key()];
    let s = gw.initialize(&h).await; // initialize: 1 (the handshake's notifications/initialized is free)
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(
            gw.notify(&h, &s, "notifications/roots/list_changed")
                .await
                .status
                .as_u16(),
        );
    }
    assert_eq!(statuses, vec![202, 202, 202, 429]);
}

/// Defect 1: through a stdio upstream, a raw newline inside params used to carry a second,
/// complete message to the child, which ran it (the admin-only `crash`).
#[tokio::test]
async fn no_message_is_smuggled_to_a_stdio_child() {
    let (gw, user) = stdio_gateway().await;
    let h = [user.x_api_key()];
    let s = gw.initialize(&h).await;
    let hs = [
        user.x_api_key(),
        ("mcp-session-id", s.as_str()),
        ("mcp-protocol-version", PROTOCOL),
    ];
    let hidden = r#"{"jsonrpc":"2.0","id":99,"method":"tools/call","params":{"name":"crash","arguments":{}}}"#;
    for body in [
        // A whole second message as a value between raw newlines.
        format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{{\"name\":\"echo\",\"arguments\":{{\"text\":\"x\"}},\"pad\":\n{hidden}\n}}}}"
        ),
        // The same after the message.
        format!("{{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}}\n{hidden}"),
        // And in a notification, which an anonymous caller could send with a public rule.
        format!("{{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{{\"x\":\n{hidden}\n}}}}"),
        // CR and U+2028 as separators.
        format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":{{\"name\":\"echo\",\"arguments\":{{\"text\":\"x\"}},\"pad\":\r{hidden}\r}}}}"
        ),
        format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\",\"params\":{{\"name\":\"echo\",\"arguments\":{{\"text\":\"\u{2028}{}\u{2028}\"}}}}}}",
            hidden.replace('"', "\\\"")
        ),
    ] {
        let r = gw.post_raw("/mcp", &hs, body.clone().into_bytes()).await;
        assert!(r.status.as_u16() < 500, "{body}: {} {}", r.status, r.text);
    }
    // The child never ran `crash`: no restart, and the session still answers.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(restarts(&gw).await, 0.0, "the child was crashed by a smuggled call");
    let r = gw.call(&h, Some(&s), "echo", json!({ "text": "still here" })).await;
    r.ok("echo after the attempts");
    assert_eq!(r.tool_text(), "still here");
}

/// The same target checks hold through the stdio upstream.
#[tokio::test]
async fn stdio_upstream_targets_are_checked_too() {
    let (gw, user) = stdio_gateway().await;
    let h = [user.x_api_key()];
    let s = gw.initialize(&h).await;
    let hs = [
        user.x_api_key(),
        ("mcp-session-id", s.as_str()),
        ("mcp-protocol-version", PROTOCOL),
    ];
    for (body, status) in [
        (
            &br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"crash","arguments":{},"uri":1}}"#[..],
            403,
        ),
        (
            br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{},"name":"crash"}}"#,
            400,
        ),
    ] {
        let r = gw.post_raw("/mcp", &hs, body.to_vec()).await;
        assert_eq!(r.status.as_u16(), status, "{}", r.text);
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(restarts(&gw).await, 0.0);
}

/// Error messages about a body never quote it.
#[tokio::test]
async fn parse_errors_do_not_echo_the_body() {
    let (gw, _rec, user) = http_gateway("").await;
    let h = [user.x_api_key()];
    for body in [
        &br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"SECRET-ECHO-1"},"x":"SECRET-ECHO-1"}"#[..],
        br#"{"jsonrpc":"SECRET-ECHO-1","id":1,"method":"ping"}"#,
        br#"{"jsonrpc":"2.0","id":"SECRET-ECHO-1","method":7}"#,
        br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"api_key":"SECRET-ECHO-1"},"name":"x"}}"#,
    ] {
        let r = gw.post_raw("/mcp", &h, body.to_vec()).await;
        assert_eq!(r.status.as_u16(), 400, "{}", r.text);
        assert!(!r.text.contains("SECRET-ECHO"), "echoed: {}", r.text);
    }
}
