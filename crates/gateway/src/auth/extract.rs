//! Finding the credential in a request, in order of preference: `X-API-Key` (seed 001's
//! preferred header), `Authorization: Bearer`, then the opt-in compatibility places the MCP spec
//! forbids — `?api_key=` in the URL and an `api_key` tool argument (seed 000) — and last the
//! server-side default key from the environment (seed 000's single-user fallback).

use mcpgate_core::redact::Secret;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Header,
    Bearer,
    Query,
    ToolArg,
    DefaultEnv,
}

impl Location {
    pub fn as_str(self) -> &'static str {
        match self {
            Location::Header => "x-api-key",
            Location::Bearer => "bearer",
            Location::Query => "query",
            Location::ToolArg => "tool_argument",
            Location::DefaultEnv => "default_key",
        }
    }
}

#[derive(Debug)]
pub struct Presented {
    pub secret: Secret,
    pub from: Location,
}

/// What the request carries: a credential, a malformed one, or none.
#[derive(Debug)]
pub enum Found {
    Credential(Presented),
    /// An `Authorization` header with a scheme we do not take, or unreadable bytes.
    Malformed(&'static str),
    None,
}

pub fn from_headers(headers: &axum::http::HeaderMap) -> Found {
    // Two copies of a credential header: a proxy in front may read the other one. Refused.
    if headers.get_all("x-api-key").iter().nth(1).is_some() {
        return Found::Malformed("send one X-API-Key header, not several");
    }
    if headers
        .get_all(axum::http::header::AUTHORIZATION)
        .iter()
        .nth(1)
        .is_some()
    {
        return Found::Malformed("send one Authorization header, not several");
    }
    if let Some(v) = headers.get("x-api-key") {
        return match v.to_str() {
            Ok(s) if !s.trim().is_empty() => Found::Credential(Presented {
                secret: Secret::new(s.trim()),
                from: Location::Header,
            }),
            _ => Found::Malformed("the X-API-Key header is empty or not visible ASCII"),
        };
    }
    if let Some(v) = headers.get(axum::http::header::AUTHORIZATION) {
        let Ok(s) = v.to_str() else {
            return Found::Malformed("the Authorization header is not visible ASCII");
        };
        let (scheme, token) = s.trim().split_once(' ').unwrap_or((s.trim(), ""));
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Found::Malformed("the Authorization header must use the Bearer scheme");
        }
        let token = token.trim();
        if token.is_empty() {
            return Found::Malformed("the Authorization header has no token");
        }
        return Found::Credential(Presented {
            secret: Secret::new(token),
            from: Location::Bearer,
        });
    }
    Found::None
}

/// `api_key` from a query string (opt-in), URL-decoded.
pub fn from_query(query: Option<&str>) -> Option<Presented> {
    let q = query?;
    q.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == "api_key" && !v.is_empty()).then(|| Presented {
            secret: Secret::new(percent_decode(v)),
            from: Location::Query,
        })
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            // Exactly two hex digits (from_str_radix alone would take "+A" as a signed 10).
            b'%' if b.get(i + 1..i + 3).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) => {
                match u8::from_str_radix(s.get(i + 1..i + 3).unwrap_or(""), 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether a credential is a JWT: three base64url segments (the signature may be empty) whose
/// first decodes to a JSON object naming an `alg`. Such a credential is never a key the registry
/// or a vendor issued, and must never be sent to a vendor's API (auth/mod.rs refuses it there).
pub fn is_jwt(credential: &str) -> bool {
    use base64::Engine;
    let b64url = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let mut parts = credential.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    if header.is_empty() || payload.is_empty() || !(b64url(header) && b64url(payload) && b64url(signature)) {
        return false;
    }
    let Ok(json) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header) else {
        return false;
    };
    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&json).is_ok_and(|h| h.contains_key("alg"))
}

/// The first set variable of the default-key chain (seed 000: `PARTNER_MCP_DEFAULT_API_KEY`,
/// then `KGP_API_KEY`).
pub fn default_key(chain: &[String], get: impl Fn(&str) -> Option<String>) -> Option<Presented> {
    chain.iter().find_map(|name| {
        get(name).filter(|v| !v.is_empty()).map(|v| Presented {
            secret: Secret::new(v),
            from: Location::DefaultEnv,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderValue};

    #[test]
    fn header_order_and_errors() {
        let mut h = HeaderMap::new();
        assert!(matches!(from_headers(&h), Found::None));
        h.insert("authorization", HeaderValue::from_static("Bearer abc"));
        assert!(matches!(
            from_headers(&h),
            Found::Credential(Presented {
                from: Location::Bearer,
                ..
            })
        ));
        h.insert("x-api-key", HeaderValue::from_static("k1"));
        match from_headers(&h) {
            Found::Credential(p) => assert_eq!((p.secret.expose(), p.from), ("k1", Location::Header)),
            other => panic!("{other:?}"),
        }
        let mut h = HeaderMap::new();
        h.insert("authorization", HeaderValue::from_static("Basic Zm9v"));
        assert!(matches!(from_headers(&h), Found::Malformed(_)));
        h.insert("authorization", HeaderValue::from_static("Bearer "));
        assert!(matches!(from_headers(&h), Found::Malformed(_)));
    }

    #[test]
    fn jwts_are_told_from_keys() {
        let hs = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1In0.c2ln";
        assert!(is_jwt(hs));
        assert!(is_jwt("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1In0."), "alg none, no signature");
        for not in [
            "mcp_abc_def",
            "kp_live_0123456789",
            "a.b.c",
            "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiJ1In0.c2ln", // {"typ":"JWT"}: no alg
            "eyJhbGciOiJIUzI1NiJ9..c2ln",
            "eyJhbGciOiJIUzI1NiJ9.e30.c2ln.x",
            "eyJhbGciOiJIUzI1NiJ9.e+30.c2ln",
            "WyJhbGciXQ.e30.c2ln", // ["alg"]: not an object
            "",
        ] {
            assert!(!is_jwt(not), "{not}");
        }
    }

    #[test]
    fn query_and_default_chain() {
        assert_eq!(
            from_query(Some("a=1&api_key=mcp_x%5Fy")).unwrap().secret.expose(),
            "mcp_x_y"
        );
        assert!(from_query(Some("api_key=")).is_none());
        assert!(from_query(Some("%")).is_none());
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        // A sign is not a hex digit; an escape at the very end is still decoded.
        assert_eq!(percent_decode("a%+Ab"), "a% Ab");
        assert_eq!(percent_decode("k%41"), "kA");
        let chain = vec!["A".to_string(), "B".to_string()];
        let got = default_key(&chain, |k| (k == "B").then(|| "kb".to_string())).unwrap();
        assert_eq!(got.secret.expose(), "kb");
        assert!(default_key(&chain, |_| None).is_none());
    }
}
