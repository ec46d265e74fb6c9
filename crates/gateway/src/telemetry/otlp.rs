//! OTLP encodings of an export request (`ExportTraceServiceRequest`): protobuf (for
//! `http/protobuf` and `grpc`) and the OTLP/JSON mapping (`http/json`: ids as hex, 64-bit
//! integers as strings, enums as numbers). Field numbers are those of opentelemetry-proto's
//! `trace/v1/trace.proto`, `common/v1/common.proto` and `resource/v1/resource.proto`.

use super::span::{Attributes, Event, SpanData, Value};
use serde_json::{Value as Json, json};

/// Who produced the spans: the resource (`service.name`, …) and the instrumentation scope.
pub struct Origin {
    pub resource: Attributes,
    pub scope_name: &'static str,
    pub scope_version: &'static str,
}

// ---- protobuf -------------------------------------------------------------------------------

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn tag(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, (u64::from(field) << 3) | u64::from(wire));
}

fn len_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    tag(out, field, LEN);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// A nested message, written by `write` into its own buffer and then length-prefixed.
fn message(out: &mut Vec<u8>, field: u32, write: impl FnOnce(&mut Vec<u8>)) {
    let mut inner = Vec::new();
    write(&mut inner);
    len_field(out, field, &inner);
}

fn fixed64(out: &mut Vec<u8>, field: u32, v: u64) {
    tag(out, field, FIXED64);
    out.extend_from_slice(&v.to_le_bytes());
}

fn fixed32(out: &mut Vec<u8>, field: u32, v: u32) {
    tag(out, field, FIXED32);
    out.extend_from_slice(&v.to_le_bytes());
}

fn uint(out: &mut Vec<u8>, field: u32, v: u64) {
    tag(out, field, VARINT);
    varint(out, v);
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// Bytes of a length-delimited field with a one-byte tag (field numbers below 16) and `len`
/// bytes of content.
fn len_field_size(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

/// `repeated KeyValue` (KeyValue: key = 1, value = 2; AnyValue: string 1, bool 2, int64 3),
/// written in place: the most numerous messages, so their sizes are computed rather than
/// encoded twice.
fn pb_attributes(out: &mut Vec<u8>, field: u32, attributes: &Attributes) {
    for (key, value) in attributes {
        let any = match value {
            Value::Str(s) => len_field_size(s.len()),
            Value::Bool(b) => 1 + varint_len(u64::from(*b)),
            Value::Int(n) => 1 + varint_len(*n as u64),
        };
        let kv = len_field_size(key.len()) + len_field_size(any);
        tag(out, field, LEN);
        varint(out, kv as u64);
        len_field(out, 1, key.as_bytes());
        tag(out, 2, LEN);
        varint(out, any as u64);
        match value {
            Value::Str(s) => len_field(out, 1, s.as_bytes()),
            Value::Bool(b) => uint(out, 2, u64::from(*b)),
            Value::Int(n) => uint(out, 3, *n as u64),
        }
    }
}

fn pb_event(out: &mut Vec<u8>, e: &Event) {
    message(out, 11, |ev| {
        fixed64(ev, 1, e.time_ns);
        len_field(ev, 2, e.name.as_bytes());
        pb_attributes(ev, 3, &e.attributes);
    });
}

fn pb_span(out: &mut Vec<u8>, s: &SpanData) {
    message(out, 2, |sp| {
        len_field(sp, 1, &s.trace_id);
        len_field(sp, 2, &s.span_id);
        if let Some(state) = &s.trace_state {
            len_field(sp, 3, state.as_bytes());
        }
        if let Some(parent) = &s.parent_span_id {
            len_field(sp, 4, parent);
        }
        len_field(sp, 5, s.name.as_bytes());
        uint(sp, 6, s.kind as u64);
        fixed64(sp, 7, s.start_ns);
        fixed64(sp, 8, s.end_ns);
        pb_attributes(sp, 9, &s.attributes);
        for e in &s.events {
            pb_event(sp, e);
        }
        if s.status as u64 != 0 {
            message(sp, 15, |st| uint(st, 3, s.status as u64));
        }
        fixed32(sp, 16, u32::from(s.sampled));
    });
}

/// `ExportTraceServiceRequest` as protobuf.
pub fn protobuf(origin: &Origin, spans: &[SpanData]) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + spans.len() * 512);
    message(&mut out, 1, |rs| {
        message(rs, 1, |res| pb_attributes(res, 1, &origin.resource));
        message(rs, 2, |ss| {
            message(ss, 1, |scope| {
                len_field(scope, 1, origin.scope_name.as_bytes());
                len_field(scope, 2, origin.scope_version.as_bytes());
            });
            for s in spans {
                pb_span(ss, s);
            }
        });
    });
    out
}

// ---- JSON -----------------------------------------------------------------------------------

fn json_attributes(attributes: &Attributes) -> Json {
    Json::Array(
        attributes
            .iter()
            .map(|(key, value)| {
                let v = match value {
                    Value::Str(s) => json!({ "stringValue": s }),
                    Value::Bool(b) => json!({ "boolValue": b }),
                    Value::Int(n) => json!({ "intValue": n.to_string() }),
                };
                json!({ "key": key, "value": v })
            })
            .collect(),
    )
}

fn json_span(s: &SpanData) -> Json {
    let mut span = json!({
        "traceId": hex::encode(s.trace_id),
        "spanId": hex::encode(s.span_id),
        "name": s.name,
        "kind": s.kind as u8,
        "startTimeUnixNano": s.start_ns.to_string(),
        "endTimeUnixNano": s.end_ns.to_string(),
        "attributes": json_attributes(&s.attributes),
        "events": s.events.iter().map(|e| json!({
            "timeUnixNano": e.time_ns.to_string(),
            "name": e.name,
            "attributes": json_attributes(&e.attributes),
        })).collect::<Vec<_>>(),
        "flags": u32::from(s.sampled),
    });
    if let Some(map) = span.as_object_mut() {
        if let Some(parent) = &s.parent_span_id {
            map.insert("parentSpanId".into(), Json::String(hex::encode(parent)));
        }
        if let Some(state) = &s.trace_state {
            map.insert("traceState".into(), Json::String(state.clone()));
        }
        if s.status as u8 != 0 {
            map.insert("status".into(), json!({ "code": s.status as u8 }));
        }
    }
    span
}

/// `ExportTraceServiceRequest` in the OTLP/JSON encoding.
pub fn json(origin: &Origin, spans: &[SpanData]) -> Vec<u8> {
    let doc = json!({
        "resourceSpans": [{
            "resource": { "attributes": json_attributes(&origin.resource) },
            "scopeSpans": [{
                "scope": { "name": origin.scope_name, "version": origin.scope_version },
                "spans": spans.iter().map(json_span).collect::<Vec<_>>(),
            }],
        }],
    });
    serde_json::to_vec(&doc).unwrap_or_default()
}

/// A gRPC message frame: uncompressed flag, big-endian length, the message.
pub fn grpc_frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + message.len());
    out.push(0);
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::span::{Kind, Status};

    #[test]
    fn computed_sizes_match_the_encoding() {
        for v in [0u64, 1, 127, 128, 16_383, 16_384, u64::MAX, -1i64 as u64] {
            let mut o = Vec::new();
            varint(&mut o, v);
            assert_eq!(varint_len(v), o.len(), "{v}");
        }
        // In place and nested-then-copied agree, byte for byte.
        let attrs: Attributes = vec![
            ("k", Value::Str("x".repeat(300))),
            ("b", Value::Bool(true)),
            ("n", Value::Int(-7)),
            ("z", Value::Int(0)),
        ];
        let mut fast = Vec::new();
        pb_attributes(&mut fast, 9, &attrs);
        let mut slow = Vec::new();
        for (key, value) in &attrs {
            message(&mut slow, 9, |kv| {
                len_field(kv, 1, key.as_bytes());
                message(kv, 2, |any| match value {
                    Value::Str(s) => len_field(any, 1, s.as_bytes()),
                    Value::Bool(b) => uint(any, 2, u64::from(*b)),
                    Value::Int(n) => uint(any, 3, *n as u64),
                });
            });
        }
        assert_eq!(fast, slow);
    }

    #[test]
    fn varints_are_little_endian_groups_of_seven() {
        let enc = |v| {
            let mut o = Vec::new();
            varint(&mut o, v);
            o
        };
        assert_eq!(enc(1), [1]);
        assert_eq!(enc(150), [0x96, 0x01]);
        assert_eq!(enc(u64::MAX).len(), 10);
        // A negative int64 is written as its two's complement, ten bytes.
        let mut o = Vec::new();
        uint(&mut o, 3, -1i64 as u64);
        assert_eq!(o.len(), 11);
    }

    fn span() -> SpanData {
        SpanData {
            trace_id: [1; 16],
            span_id: [2; 8],
            parent_span_id: Some([3; 8]),
            trace_state: None,
            sampled: true,
            name: "tools/call".into(),
            kind: Kind::Server,
            start_ns: 1_700_000_000_000_000_000,
            end_ns: 1_700_000_000_001_000_000,
            attributes: vec![("a", Value::Int(-5)), ("b", "x".into())],
            events: vec![Event {
                time_ns: 1_700_000_000_000_500_000,
                name: "authenticated",
                attributes: vec![("ok", Value::Bool(true))],
            }],
            status: Status::Error,
        }
    }

    #[test]
    fn json_follows_the_otlp_mapping() {
        let origin = Origin {
            resource: vec![("service.name", "mcpgate".into())],
            scope_name: "mcpgate",
            scope_version: "0",
        };
        let doc: Json = serde_json::from_slice(&json(&origin, &[span()])).unwrap();
        let s = &doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(s["traceId"], "01010101010101010101010101010101");
        assert_eq!(s["parentSpanId"], "0303030303030303");
        assert_eq!(s["startTimeUnixNano"], "1700000000000000000");
        assert_eq!(s["attributes"][0]["value"]["intValue"], "-5");
        assert_eq!(s["status"]["code"], 2);
        assert_eq!(s["kind"], 2);
    }

    #[test]
    fn protobuf_starts_with_resource_spans() {
        let origin = Origin {
            resource: vec![],
            scope_name: "m",
            scope_version: "1",
        };
        let pb = protobuf(&origin, &[span()]);
        assert_eq!(pb[0], (1 << 3) | LEN);
        // The span's trace id appears as a 16-byte length-delimited field 1.
        let needle: Vec<u8> = [&[(1 << 3) | LEN, 16][..], &[1; 16][..]].concat();
        assert!(pb.windows(needle.len()).any(|w| w == needle.as_slice()));
        let frame = grpc_frame(&pb);
        assert_eq!(frame[0], 0);
        assert_eq!(
            u32::from_be_bytes([frame[1], frame[2], frame[3], frame[4]]) as usize,
            pb.len()
        );
    }
}
