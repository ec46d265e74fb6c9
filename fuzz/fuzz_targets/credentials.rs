//! Finding the credential in a request (`auth::extract::{from_headers, from_query}`): headers and
//! the query string are the attacker's.
//!
//! Input: lines; `?…` is the query string (the last such line), `name: value` a header (value
//! trimmed of spaces and tabs, as hyper hands it over), anything else is ignored. Header names
//! and values that `http` refuses never reach the gateway and are skipped.
//!
//! Invariants: nothing panics; a credential found in a header is the trimmed value of the first
//! `X-API-Key` header, or else the token after `Bearer ` in the first `Authorization` header —
//! never empty, never padded, a substring of that header's value; `X-API-Key` wins over
//! `Authorization`; no credential header, no credential; a query credential is the
//! form-urlencoded decoding (WHATWG, checked against an independent decoder) of the first
//! non-empty `api_key=` value.
#![no_main]

use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use mcpgate_gateway::auth::extract::{Found, Location, from_headers, from_query};

fn check_headers(headers: &HeaderMap) {
    let first = |name: &str| headers.get(name).map(|v| v.to_str());
    let found = from_headers(headers);
    match (first("x-api-key"), first("authorization"), found) {
        (None, None, Found::None) => {}
        (None, None, other) => panic!("no credential header, yet {other:?}"),
        (Some(_), _, Found::Credential(p)) => {
            assert_eq!(p.from, Location::Header);
            let value = first("x-api-key").and_then(Result::ok).expect("a readable X-API-Key");
            assert_eq!(p.secret.expose(), value.trim());
            assert!(!p.secret.is_empty());
        }
        (None, Some(_), Found::Credential(p)) => {
            assert_eq!(p.from, Location::Bearer);
            let value = first("authorization")
                .and_then(Result::ok)
                .expect("a readable Authorization");
            let secret = p.secret.expose();
            assert!(
                !secret.is_empty() && secret == secret.trim(),
                "token not empty, not padded"
            );
            assert!(value.contains(secret), "a bearer token is part of the header value");
            let (scheme, _) = value.trim().split_once(' ').expect("a scheme and a token");
            assert!(scheme.eq_ignore_ascii_case("bearer"));
        }
        (_, _, Found::Malformed(_)) => {}
        (_, _, Found::None) => panic!("a credential header was present, yet nothing was found"),
    }
}

fn check_query(q: &str) {
    let expected = q.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == "api_key" && !v.is_empty()).then(|| mcpgate_fuzz::form_decode(v))
    });
    let got = from_query(Some(q));
    if let Some(p) = &got {
        assert_eq!(p.from, Location::Query);
    }
    assert_eq!(
        got.as_ref().map(|p| p.secret.expose()),
        expected.as_deref(),
        "query credential decoded differently from application/x-www-form-urlencoded"
    );
}

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    let mut query = None;
    for line in data.split(|b| *b == b'\n') {
        if let Some(q) = line.strip_prefix(b"?") {
            query = Some(q);
            continue;
        }
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        let ows = |b: &u8| matches!(b, b' ' | b'\t');
        let start = value.iter().take_while(|b| ows(b)).count();
        let end = value.len() - value.iter().rev().take_while(|b| ows(b)).count();
        let value = value.get(start..end).unwrap_or_default();
        let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) else {
            continue;
        };
        headers.append(name, value);
    }
    check_headers(&headers);
    assert!(from_query(None).is_none());
    // The query reaches the gateway as the URI's query, which is visible ASCII; anything UTF-8
    // is accepted here to reach the decoder's multi-byte paths too.
    if let Some(q) = query.and_then(|q| std::str::from_utf8(q).ok()) {
        check_query(q);
    }
});
