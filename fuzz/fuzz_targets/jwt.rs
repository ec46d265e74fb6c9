//! JWT bearer tokens (`auth::jwt::JwtVerifier`, HS256/384/512 against a fixed secret, the
//! gateway's default audience; claims mapped by `auth::claims`).
//!
//! Input, by its first byte:
//! - `S` header JSON, `\n`, claims JSON: signed correctly with the secret (by the algorithm the
//!   header names, HS256 when it names none of HS256/384/512), then verified;
//! - `X` p c, header, `\n`, claims: signed as above, then the token's byte at p (mod its length)
//!   replaced by c;
//! - anything else: the rest, as UTF-8, is the bearer value.
//!
//! Invariants: nothing panics (header decoding, `looks_like_jwt`, verification, claim mapping);
//! nothing verifies without the right signature — every accepted token's third segment is exactly
//! the base64url HMAC (computed here, independently) of its first two under the `alg` its header
//! names; a correctly signed token is never refused as `bad_signature`; an accepted token's
//! principal is the `sub` claim (`jwt:{sub}`); an accepted token is one the authentication chain
//! routes to the verifier (`extract::is_jwt` or `looks_like_jwt`), never taken for an API key.
#![no_main]

use base64::Engine;
use libfuzzer_sys::fuzz_target;
use mcpgate_fuzz::{b64url, block_on, hs_signature};
use mcpgate_gateway::auth::extract::is_jwt;
use mcpgate_gateway::auth::jwt::{JwtConfig, JwtVerifier, RawJwt, TokenError};
use serde_json::Value;
use std::sync::OnceLock;

const SECRET: &str = "fuzz-only-secret-0123456789abcdef-0123456789";
const RESOURCE: &str = "https://gw.example/mcp";
/// 2027-01-15: seeds carry `exp` 1900000000 (2030).
const NOW: i64 = 1_800_000_000;

fn verifier() -> &'static JwtVerifier {
    static V: OnceLock<JwtVerifier> = OnceLock::new();
    V.get_or_init(|| {
        let raw = RawJwt {
            secret_env: Some("JWT_SECRET".into()),
            ..RawJwt::default()
        };
        let env = |name: &str| (name == "JWT_SECRET").then(|| SECRET.to_string());
        let cfg = JwtConfig::validate(raw, RESOURCE, &env).expect("the fuzz configuration is valid");
        JwtVerifier::new(cfg).expect("an HMAC-only verifier")
    })
}

fn header_alg(segment: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(segment).ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v.get("alg")?.as_str().map(str::to_string)
}

fn sign(header: &[u8], claims: &[u8]) -> String {
    let input = format!("{}.{}", b64url(header), b64url(claims));
    let alg = serde_json::from_slice::<Value>(header)
        .ok()
        .and_then(|h| h.get("alg")?.as_str().map(str::to_string))
        .filter(|a| matches!(a.as_str(), "HS256" | "HS384" | "HS512"))
        .unwrap_or_else(|| "HS256".into());
    let sig = hs_signature(&alg, SECRET.as_bytes(), input.as_bytes()).expect("an HS algorithm");
    format!("{input}.{sig}")
}

/// Verifies `token`; returns whether it was refused as a bad signature.
fn check(token: &str) -> bool {
    let looks = JwtVerifier::looks_like_jwt(token);
    let _ = is_jwt(token);
    if looks {
        assert!(token.len() <= 16 * 1024 && token.split('.').count() == 3);
    }
    match block_on(verifier().verify(token, NOW)) {
        Err(e) => e == TokenError::Invalid("bad_signature"),
        Ok(p) => {
            let parts: Vec<&str> = token.split('.').collect();
            assert_eq!(parts.len(), 3, "an accepted token has three segments");
            let alg = header_alg(parts[0]).expect("an accepted token's header names its alg");
            let input = format!("{}.{}", parts[0], parts[1]);
            let expected = hs_signature(&alg, SECRET.as_bytes(), input.as_bytes());
            assert_eq!(
                Some(parts[2]),
                expected.as_deref(),
                "accepted without the right {alg} signature"
            );
            let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(parts[1])
                .ok()
                .and_then(|c| serde_json::from_slice::<Value>(&c).ok())
                .expect("an accepted token's claims are JSON");
            let sub = match claims.get("sub") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                other => panic!("accepted without a subject: {other:?}"),
            };
            assert_eq!(p.user_id(), sub);
            assert_eq!(p.id(), format!("jwt:{sub}"));
            // auth/mod.rs routes a bearer value to the JWT verifier by these two; one they miss
            // would be taken for an API key (and could be sent to an external key verifier).
            assert!(
                is_jwt(token) || looks,
                "a token the verifier accepts is not recognised as a JWT"
            );
            false
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode {
        b'S' | b'X' => {
            let (edit, rest) = if mode == b'X' {
                let [p, c, rest @ ..] = rest else {
                    return;
                };
                (Some((*p as usize, *c)), rest)
            } else {
                (None, rest)
            };
            let Some(nl) = rest.iter().position(|b| *b == b'\n') else {
                return;
            };
            let (header, claims) = (&rest[..nl], &rest[nl + 1..]);
            let token = sign(header, claims);
            match edit {
                None => {
                    let names_hs = serde_json::from_slice::<Value>(header)
                        .ok()
                        .and_then(|h| h.get("alg")?.as_str().map(str::to_string))
                        .is_some_and(|a| matches!(a.as_str(), "HS256" | "HS384" | "HS512"));
                    let bad_sig = check(&token);
                    assert!(
                        !(names_hs && bad_sig),
                        "a correctly signed token refused as bad_signature"
                    );
                }
                Some((p, c)) => {
                    let mut bytes = token.into_bytes();
                    let at = p % bytes.len();
                    bytes[at] = c;
                    if let Ok(t) = String::from_utf8(bytes) {
                        check(&t);
                    }
                }
            }
        }
        _ => {
            if let Ok(t) = std::str::from_utf8(rest) {
                check(t);
            }
        }
    }
});
