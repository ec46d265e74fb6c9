//! The HTTP upstream's id restorer (`upstream::http::IdRestorer`): puts the client's JSON-RPC id
//! back into the answer to a request that went up under a gateway id, line by line as the
//! upstream's bytes stream in. The upstream's bytes and how they are cut into chunks are the
//! input.
//!
//! Input: a byte of cut points (each set bit cuts the stream after that eighth of it), then the
//! upstream's answer.
//!
//! Invariants: nothing panics; the output does not depend on how the stream was cut; every line
//! ending is kept (the SSE framing stays intact); a line that is not the answer to the gateway
//! id passes byte for byte; no answer the client receives still carries the gateway id — read
//! the way a client reads ids, as JSON values, not as text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcpgate_core::jsonrpc::{Kind, Message};
use mcpgate_gateway::upstream::http::IdRestorer;
use serde_json::Value;
use serde_json::value::RawValue;

const GATEWAY_ID: &str = "\"mcpgate-7\"";

fn restorer() -> IdRestorer {
    let client = RawValue::from_string("1".to_string()).expect("JSON");
    IdRestorer::new(GATEWAY_ID.to_string(), client)
}

fn run(stream: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut r = restorer();
    let mut out = Vec::new();
    let mut from = 0;
    for &at in cuts {
        out.extend_from_slice(&r.push(&stream[from..at]));
        from = at;
    }
    out.extend_from_slice(&r.push(&stream[from..]));
    out.extend_from_slice(&r.finish());
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&mask, stream)) = data.split_first() else {
        return;
    };
    let cuts: Vec<usize> = (1..8)
        .filter(|i| mask & (1 << i) != 0)
        .map(|i| stream.len() * i / 8)
        .collect();
    let whole = run(stream, &[]);
    assert_eq!(
        run(stream, &cuts),
        whole,
        "the output depends on how the stream was cut"
    );
    let count = |b: &[u8]| b.iter().filter(|c| **c == b'\n').count();
    assert_eq!(count(&whole), count(stream), "line endings kept");

    let gateway_id: Value = serde_json::from_str(GATEWAY_ID).expect("JSON");
    for (line_in, line_out) in stream
        .split_inclusive(|b| *b == b'\n')
        .zip(whole.split_inclusive(|b| *b == b'\n'))
    {
        let content = line_out.strip_suffix(b"\n").unwrap_or(line_out);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        let json = content.strip_prefix(b"data:").unwrap_or(content);
        let Ok(m) = Message::parse(json) else {
            assert_eq!(line_in, line_out, "a line that is not a message passes as is");
            continue;
        };
        if m.kind == Kind::Response {
            let id: Option<Value> = m.id.and_then(|i| serde_json::from_str(i.get()).ok());
            assert_ne!(
                id.as_ref(),
                Some(&gateway_id),
                "an answer reached the client with the gateway's id"
            );
        }
    }
});
