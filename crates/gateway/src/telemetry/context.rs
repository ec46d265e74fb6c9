//! W3C Trace Context (`traceparent`, `tracestate`), read strictly: a header that is not exactly
//! what the recommendation allows is treated as absent, so the request starts a trace of its own
//! rather than joining one on a guess.

use axum::http::HeaderMap;

/// Longest `tracestate` carried on; longer ones are dropped (the recommendation's 512).
const MAX_TRACESTATE: usize = 512;
/// Most `tracestate` members (the recommendation's 32).
const MAX_MEMBERS: usize = 32;

/// A caller's position in a trace, from its `traceparent` (and `tracestate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parent {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub sampled: bool,
    pub state: Option<String>,
}

/// The caller's trace context, or `None` when there is none, more than one `traceparent`, or
/// one that does not parse.
pub fn extract(headers: &HeaderMap) -> Option<Parent> {
    let mut values = headers.get_all("traceparent").iter();
    let first = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let (trace_id, span_id, flags) = parse_traceparent(first.to_str().ok()?)?;
    Some(Parent {
        trace_id,
        span_id,
        sampled: flags & 1 == 1,
        state: tracestate(headers),
    })
}

/// `version-traceid-parentid-flags`, lowercase hex. Version `00` is exactly 55 characters; a
/// later version may append fields after a `-`, which are ignored; version `ff` is invalid.
pub fn parse_traceparent(value: &str) -> Option<([u8; 16], [u8; 8], u8)> {
    let b = value.as_bytes();
    if b.len() < 55 {
        return None;
    }
    let version = hex_byte(&b[0..2])?;
    if version == 0xff || (version == 0 && b.len() != 55) || (b.len() > 55 && b[55] != b'-') {
        return None;
    }
    if b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
        return None;
    }
    let mut trace_id = [0u8; 16];
    for (i, out) in trace_id.iter_mut().enumerate() {
        *out = hex_byte(&b[3 + 2 * i..5 + 2 * i])?;
    }
    let mut span_id = [0u8; 8];
    for (i, out) in span_id.iter_mut().enumerate() {
        *out = hex_byte(&b[36 + 2 * i..38 + 2 * i])?;
    }
    let flags = hex_byte(&b[53..55])?;
    if trace_id == [0; 16] || span_id == [0; 8] {
        return None;
    }
    Some((trace_id, span_id, flags))
}

/// `traceparent` for a span: version 00.
pub fn format_traceparent(trace_id: &[u8; 16], span_id: &[u8; 8], sampled: bool) -> String {
    String::from_utf8_lossy(&traceparent_bytes(trace_id, span_id, sampled)).into_owned()
}

/// The same, written into a fixed buffer (no allocation on the request path).
pub fn traceparent_bytes(trace_id: &[u8; 16], span_id: &[u8; 8], sampled: bool) -> [u8; 55] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [b'-'; 55];
    out[0] = b'0';
    out[1] = b'0';
    let mut put = |at: usize, bytes: &[u8]| {
        for (i, b) in bytes.iter().enumerate() {
            out[at + 2 * i] = HEX[usize::from(b >> 4)];
            out[at + 2 * i + 1] = HEX[usize::from(b & 0x0f)];
        }
    };
    put(3, trace_id);
    put(36, span_id);
    out[53] = b'0';
    out[54] = if sampled { b'1' } else { b'0' };
    out
}

/// Two lowercase hex digits (the recommendation does not allow uppercase).
fn hex_byte(pair: &[u8]) -> Option<u8> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    Some(digit(*pair.first()?)? << 4 | digit(*pair.get(1)?)?)
}

/// The `tracestate` headers joined, when every member is well formed, keys are unique, and the
/// whole stays within bounds; anything else is dropped rather than carried on.
fn tracestate(headers: &HeaderMap) -> Option<String> {
    let mut joined = String::new();
    for v in headers.get_all("tracestate") {
        let s = v.to_str().ok()?;
        if !joined.is_empty() {
            joined.push(',');
        }
        joined.push_str(s);
        if joined.len() > MAX_TRACESTATE {
            return None;
        }
    }
    let mut keys: Vec<&str> = Vec::new();
    for member in joined.split(',').map(|m| m.trim_matches([' ', '\t'])) {
        if member.is_empty() {
            continue;
        }
        let (key, value) = member.split_once('=')?;
        if !valid_key(key) || !valid_value(value) || keys.contains(&key) {
            return None;
        }
        keys.push(key);
    }
    if keys.is_empty() || keys.len() > MAX_MEMBERS {
        return None;
    }
    Some(joined)
}

/// A `tracestate` key: `simple-key` (a lowercase letter first) or `tenant-id@system-id` (the
/// tenant may start with a digit, the system with a letter).
fn valid_key(key: &str) -> bool {
    let part = |k: &str, max: usize, digit_first: bool| {
        let b = k.as_bytes();
        !b.is_empty()
            && b.len() <= max
            && (b[0].is_ascii_lowercase() || (digit_first && b[0].is_ascii_digit()))
            && b.iter()
                .all(|c| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'*' | b'/'))
    };
    match key.split_once('@') {
        Some((tenant, system)) => part(tenant, 241, true) && part(system, 14, false),
        None => part(key, 256, false),
    }
}

fn valid_value(value: &str) -> bool {
    let b = value.as_bytes();
    !b.is_empty()
        && b.len() <= 256
        && b.iter().all(|c| (0x20..=0x7e).contains(c) && *c != b',' && *c != b'=')
        && b.last() != Some(&b' ')
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn reads_a_valid_traceparent() {
        let p = extract(&headers(&[("traceparent", GOOD)])).unwrap();
        assert_eq!(hex::encode(p.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(hex::encode(p.span_id), "00f067aa0ba902b7");
        assert!(p.sampled);
        assert_eq!(p.state, None);
        assert_eq!(format_traceparent(&p.trace_id, &p.span_id, true), GOOD);
    }

    #[test]
    fn refuses_every_malformed_traceparent() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
            "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(parse_traceparent(bad), None, "{bad:?}");
        }
        // A later version may carry more fields after a dash.
        assert!(parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more").is_some());
    }

    #[test]
    fn two_traceparents_are_none() {
        assert_eq!(extract(&headers(&[("traceparent", GOOD), ("traceparent", GOOD)])), None);
    }

    #[test]
    fn tracestate_is_kept_only_when_well_formed() {
        let state = |v: &[&str]| {
            let mut pairs = vec![("traceparent", GOOD)];
            pairs.extend(v.iter().map(|s| ("tracestate", *s)));
            extract(&headers(&pairs)).unwrap().state
        };
        assert_eq!(
            state(&["rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"]).as_deref(),
            Some("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
        );
        assert_eq!(
            state(&["rojo=1", "vendor@sys=x"]).as_deref(),
            Some("rojo=1,vendor@sys=x")
        );
        assert_eq!(state(&["rojo=1,rojo=2"]), None, "duplicate key");
        assert_eq!(state(&["Rojo=1"]), None, "uppercase key");
        assert_eq!(state(&["1rojo=1"]), None, "a simple key starts with a letter");
        assert_eq!(
            state(&["1t@sys=1"]).as_deref(),
            Some("1t@sys=1"),
            "a tenant id may start with a digit"
        );
        assert_eq!(state(&["t@1sys=1"]), None, "a system id starts with a letter");
        assert_eq!(state(&["rojo=a=b"]), None);
        assert_eq!(state(&["rojo"]), None);
        assert_eq!(state(&[&format!("k={}", "v".repeat(600))]), None, "too long");
        let many: Vec<String> = (0..33).map(|i| format!("k{i}=v")).collect();
        assert_eq!(state(&[&many.join(",")]), None, "too many members");
    }
}
