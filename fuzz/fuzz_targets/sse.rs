//! List filtering of upstream answers (`lists::filter`, which reads a JSON body or the JSON-RPC
//! response among the events of an SSE body): the upstream's bytes decide what a caller is shown.
//!
//! Input: three lines — the answer's Content-Type, the list method, the HTTP status — then the
//! body (the rest). The caller may see only items whose name starts with `a`.
//!
//! Invariants: nothing panics; a non-success answer or a method that is not a list passes
//! through untouched; otherwise the answer is either refused or rewritten so that every item of
//! the list the caller receives is one it may see (or the gateway's own whoami tool) — read back
//! the way a client reads it: JSON, or SSE as one `event: message` whose single `data:` line
//! holds the JSON-RPC response.
//!
//! Not reached here: the HTTP upstream's id restorer (`upstream::http::IdRestorer`, private);
//! see fuzz/README.md.
#![no_main]

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use libfuzzer_sys::fuzz_target;
use mcpgate_fuzz::block_on;
use mcpgate_gateway::lists;
use serde_json::Value;

const WHOAMI: &str = "whoami-fuzz";

fn may_see(name: &str) -> bool {
    name.starts_with('a')
}

/// What the client reads from the gateway's SSE answer: exactly one event, one data line.
fn read_sse(body: &[u8]) -> Value {
    let text = std::str::from_utf8(body).expect("the SSE answer is UTF-8");
    let json = text
        .strip_prefix("event: message\ndata: ")
        .and_then(|t| t.strip_suffix("\n\n"))
        .expect("the SSE answer is one event with one data line");
    assert!(
        !json.contains(['\n', '\r']),
        "a line break inside the data line splits the event"
    );
    serde_json::from_str(json).expect("the event's data is JSON")
}

fuzz_target!(|data: &[u8]| {
    let mut lines = data.splitn(4, |b| *b == b'\n');
    let ct = lines.next().unwrap_or_default();
    let method = String::from_utf8_lossy(lines.next().unwrap_or_default()).into_owned();
    let status = std::str::from_utf8(lines.next().unwrap_or_default())
        .ok()
        .and_then(|s| s.trim().parse::<u16>().ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let body = lines.next().unwrap_or_default().to_vec();

    let mut resp = Response::new(Body::from(body.clone()));
    *resp.status_mut() = status;
    if let Ok(v) = HeaderValue::from_bytes(ct) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    let is_sse = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/event-stream"));
    let field = match method.as_str() {
        "tools/list" => Some(("tools", "name")),
        "prompts/list" => Some(("prompts", "name")),
        "resources/list" => Some(("resources", "uri")),
        "resources/templates/list" => Some(("resourceTemplates", "uriTemplate")),
        _ => None,
    };
    assert_eq!(lists::is_list(&method), field.is_some());

    // As the pipeline does: the gateway's own tool is added to tools/list only.
    let extra = (method == "tools/list").then(|| lists::whoami_tool(WHOAMI));
    let out = block_on(lists::filter(resp, &method, may_see, extra));
    let Ok(out) = out else {
        assert!(field.is_some() && status.is_success(), "only a list answer is refused");
        return;
    };
    let out_status = out.status();
    let out_body = block_on(axum::body::to_bytes(out.into_body(), usize::MAX)).expect("an in-memory body");
    let Some((field, key)) = field.filter(|_| status.is_success()) else {
        assert_eq!(
            out_body.as_ref(),
            body.as_slice(),
            "not a list answer: passed through as is"
        );
        return;
    };
    assert_eq!(out_status, status);
    let msg: Value = if is_sse {
        read_sse(&out_body)
    } else {
        serde_json::from_slice(&out_body).expect("the JSON answer is JSON")
    };
    if let Some(items) = msg.get("result").and_then(|r| r.get(field)).and_then(Value::as_array) {
        for item in items {
            let name = item.get(key).and_then(Value::as_str);
            let whoami = field == "tools" && *item == lists::whoami_tool(WHOAMI);
            assert!(
                whoami || name.is_some_and(may_see),
                "the caller was shown an item it may not see: {item}"
            );
        }
    }
});
