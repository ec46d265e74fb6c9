//! The strict JSON-RPC reader (`mcpgate_core::jsonrpc::read` + `Message::parse`): the first
//! thing the gateway does with every client body, and what it forwards upstream.
//!
//! Invariants, for any bytes:
//! - nothing panics;
//! - what `read` accepts comes back canonical: `read(canonical) == canonical`; no raw control
//!   character, DEL, CR or LF, and no U+0085/U+2028/U+2029 (a line-based upstream could split on
//!   them); valid UTF-8; serde_json reads it, finds no duplicate key at any depth, and reads the
//!   same value from it as from the original body;
//! - the target the gateway decides on (`Message::parse(canonical).target()`) is exactly what a
//!   plain JSON reader (serde_json's `Value`) finds at `params.name` / `params.uri` /
//!   `params.ref.{name,uri}` — the reading the upstream will execute; likewise method and id;
//! - rewriting the id (`with_id`, `response_with_id`) keeps a message the reader accepts, with
//!   the same method and target.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcpgate_core::jsonrpc::{self, Kind, Message};
use serde_json::Value;
use serde_json::value::RawValue;

/// What a plain JSON reader takes the target of `v` to be.
fn plain_target(v: &Value) -> Option<&str> {
    let p = v.get("params")?;
    match v.get("method")?.as_str()? {
        "tools/call" | "prompts/get" => p.get("name")?.as_str(),
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => p.get("uri")?.as_str(),
        "completion/complete" => {
            let r = p.get("ref")?;
            match r.get("type")?.as_str()? {
                "ref/prompt" => r.get("name")?.as_str(),
                "ref/resource" => r.get("uri")?.as_str(),
                _ => None,
            }
        }
        _ => None,
    }
}

fn has_line_breaker(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c < 0x20 || c == 0x7f).or_else(|| {
        b.windows(2).position(|w| w == [0xC2, 0x85]).or_else(|| {
            b.windows(3)
                .position(|w| w == [0xE2, 0x80, 0xA8] || w == [0xE2, 0x80, 0xA9])
        })
    })
}

fn check_message(canonical: &[u8]) {
    let Ok(m) = Message::parse(canonical) else {
        return;
    };
    let v: Value = serde_json::from_slice(canonical).expect("canonical bytes are JSON");
    let expected = if m.kind == Kind::Response {
        None
    } else {
        plain_target(&v)
    };
    assert_eq!(
        m.target(),
        expected,
        "the gateway's target differs from what a plain JSON reader finds"
    );
    assert_eq!(m.method(), v.get("method").and_then(Value::as_str).unwrap_or(""));
    let id: Option<Value> = m.id.map(|r| serde_json::from_str(r.get()).expect("an id is JSON"));
    assert_eq!(id.as_ref(), v.get("id"), "id");
    let _ = m.progress_token();

    // The gateway rewrites ids when several callers share one upstream session.
    let new_id = RawValue::from_string("\"mcpgate-1\"".to_string()).expect("a JSON string");
    let rewritten = match m.kind {
        Kind::Request | Kind::Notification => jsonrpc::with_id(&m, &new_id),
        Kind::Response => jsonrpc::response_with_id(&m, &new_id),
    };
    let again = jsonrpc::read(&rewritten).expect("a rewritten message is read");
    let m2 = Message::parse(&again).expect("a rewritten message parses");
    assert_eq!(m2.method(), m.method(), "method kept by the id rewrite");
    assert_eq!(m2.target(), m.target(), "target kept by the id rewrite");
    let _ = jsonrpc::error_body(m.id, jsonrpc::code::FORBIDDEN, "no", None);
}

fuzz_target!(|data: &[u8]| {
    // The raw body is never parsed by the gateway without `read` first, but must not panic.
    let _ = Message::parse(data);
    let Ok(canonical) = jsonrpc::read(data) else {
        return;
    };
    assert_eq!(
        jsonrpc::read(&canonical).as_deref(),
        Ok(canonical.as_slice()),
        "read is idempotent"
    );
    assert!(
        has_line_breaker(&canonical).is_none(),
        "raw control character or line separator at byte {:?} of the canonical form",
        has_line_breaker(&canonical)
    );
    assert!(std::str::from_utf8(&canonical).is_ok(), "canonical form is UTF-8");
    // What a Rust upstream (rmcp, serde_json) and the gateway's own Value-based steps read.
    let canon = match serde_json::from_slice::<Value>(&canonical) {
        Ok(v) => v,
        Err(e) => panic!("serde_json cannot read what read() accepted: {e}"),
    };
    assert!(
        mcpgate_fuzz::has_no_duplicate_keys(&canonical),
        "the canonical form has a duplicate key"
    );
    let original: Value = serde_json::from_slice(data).expect("serde_json reads the original body");
    assert_eq!(original, canon, "canonicalizing changed the value");
    check_message(&canonical);
});
