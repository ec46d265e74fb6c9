//! JWT bearer verification and RFC 7662 introspection against a real local issuer: an axum server
//! on 127.0.0.1:0 serving OIDC discovery, a switchable JWKS (counting fetches, able to go down)
//! and an introspection endpoint. Keys (RSA 2048, P-256, Ed25519) are generated at test time.
//!
//! Run with `--nocapture` to see the measured verify costs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use futures_util::future::join_all;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mcpgate_core::principal::{AuthMethod, Role};
use mcpgate_gateway::auth::introspect::{IntrospectionVerifier, RawIntrospection};
use mcpgate_gateway::auth::jwt::{JwtConfig, JwtVerifier, RawJwt, TokenError, mint_hs256};
use mcpgate_testkit::fake::Mode;
use mcpgate_testkit::issuer::Issuer;
use mcpgate_testkit::keys::{TestKey, b64url, keys};
use mcpgate_testkit::time::now_s;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const AUD: &str = "https://gw.test/mcp";
const HS_SECRET: &str = "a-test-secret-that-is-long-enough-for-hs256!";
const CLIENT_ID: &str = "mcpgate";
const CLIENT_SECRET: &str = "introspection-secret";

// ---- the issuer -------------------------------------------------------------------------------

/// The issuer, publishing `published`; its introspection endpoint answers only to this gateway's
/// client credentials.
async fn start_issuer(published: &[&TestKey]) -> Issuer {
    let issuer = Issuer::start(published).await;
    issuer.require_client(CLIENT_ID, CLIENT_SECRET);
    issuer
}

/// The claims of a good token from this issuer for this gateway.
trait Claims {
    fn claims(&self, now: i64) -> Value;
}

impl Claims for Issuer {
    fn claims(&self, now: i64) -> Value {
        json!({"iss": self.base, "aud": AUD, "sub": "alice", "iat": now, "exp": now + 600})
    }
}

fn verifier(raw: RawJwt) -> JwtVerifier {
    let env = |name: &str| (name == "JWT_SECRET").then(|| HS_SECRET.to_string());
    JwtVerifier::new(JwtConfig::validate(raw, AUD, &env).unwrap()).unwrap()
}

fn invalid(reason: &'static str) -> TokenError {
    TokenError::Invalid(reason)
}

// ---- JWT: what verifies -----------------------------------------------------------------------

#[tokio::test]
async fn discovery_finds_the_keys_and_rs256_es256_eddsa_verify() {
    let k = keys();
    let issuer = start_issuer(&[&k.rsa, &k.ec, &k.ed]).await;
    let v = verifier(issuer.oidc());
    assert_eq!(v.issuer(), Some(issuer.base.as_str()));
    let now = now_s();
    for key in [&k.rsa, &k.ec, &k.ed] {
        let p = v.verify(&key.sign(&issuer.claims(now)), now).await.unwrap();
        assert_eq!((p.id(), p.user_id()), ("jwt:alice", "alice"), "{:?}", key.alg);
        assert_eq!(p.method(), AuthMethod::Jwt);
        assert_eq!(p.expires_at(), Some(now + 600));
        assert_eq!(p.key_id(), None);
    }
    // One discovery, one JWKS fetch for all three.
    assert_eq!((issuer.discovery_fetches(), issuer.jwks_fetches()), (1, 1));
    // A token without kid is tried against the keys of its algorithm.
    let no_kid = k.ed.sign_as(Algorithm::EdDSA, None, &issuer.claims(now));
    assert!(v.verify(&no_kid, now).await.is_ok());
}

#[tokio::test]
async fn a_jwks_url_works_without_discovery() {
    let k = keys();
    let issuer = start_issuer(&[&k.rsa]).await;
    let v = verifier(RawJwt {
        jwks_url: Some(format!("{}/jwks", issuer.base)),
        ..Default::default()
    });
    let now = now_s();
    assert!(v.verify(&k.rsa.sign(&issuer.claims(now)), now).await.is_ok());
    assert_eq!((issuer.discovery_fetches(), issuer.jwks_fetches()), (0, 1));
    assert_eq!(v.issuer(), None);
}

#[tokio::test]
async fn hs256_with_a_secret_alone_and_beside_an_issuer() {
    let k = keys();
    let issuer = start_issuer(&[&k.rsa]).await;
    let now = now_s();
    let hs = |claims: &Value| mint_hs256(HS_SECRET.as_bytes(), claims).unwrap();

    let secret_only = verifier(RawJwt {
        secret_env: Some("JWT_SECRET".into()),
        ..Default::default()
    });
    assert!(secret_only.verify(&hs(&issuer.claims(now)), now).await.is_ok());
    assert_eq!(
        secret_only
            .verify(&k.rsa.sign(&issuer.claims(now)), now)
            .await
            .unwrap_err(),
        invalid("alg_not_allowed")
    );
    let wrong_secret = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &issuer.claims(now),
        &EncodingKey::from_secret(&[7; 40]),
    )
    .unwrap();
    assert_eq!(
        secret_only.verify(&wrong_secret, now).await.unwrap_err(),
        invalid("bad_signature")
    );

    let both = verifier(RawJwt {
        secret_env: Some("JWT_SECRET".into()),
        ..issuer.oidc()
    });
    assert!(both.verify(&hs(&issuer.claims(now)), now).await.is_ok());
    assert!(both.verify(&k.rsa.sign(&issuer.claims(now)), now).await.is_ok());
    // With an issuer configured, HS tokens must name it too.
    let mut no_iss = issuer.claims(now);
    no_iss.as_object_mut().unwrap().remove("iss");
    assert_eq!(
        both.verify(&hs(&no_iss), now).await.unwrap_err(),
        invalid("wrong_issuer")
    );
}

#[test]
fn verifiers_and_their_futures_can_cross_tasks() {
    fn shared<T: Send + Sync>(_: &T) {}
    fn spawnable<T: Send>(_: T) {}
    let v = verifier(RawJwt {
        secret_env: Some("JWT_SECRET".into()),
        ..Default::default()
    });
    shared(&v);
    spawnable(v.verify("t", 0));
    let i = introspector("https://as.example.com/introspect".into(), None, None);
    shared(&i);
    spawnable(i.verify("t", 0));
}

// ---- JWT: keys over time ----------------------------------------------------------------------

#[tokio::test]
async fn a_rotated_key_verifies_without_restart_and_a_withdrawn_one_stops() {
    let k = keys();
    let issuer = start_issuer(&[&k.rsa]).await;
    let v = verifier(issuer.oidc());
    let now = now_s();
    assert!(v.verify(&k.rsa.sign(&issuer.claims(now)), now).await.is_ok());

    // The issuer rotates: publishes rsa-2 and withdraws rsa-1.
    issuer.publish(&[&k.rsa2]);
    let later = now + 31; // past the 30 s floor since the first fetch
    let p = v.verify(&k.rsa2.sign(&issuer.claims(later)), later).await.unwrap();
    assert_eq!(p.user_id(), "alice");
    assert_eq!(issuer.jwks_fetches(), 2);
    // A fresh rsa-1 token no longer finds its key.
    let mut c = issuer.claims(later);
    c["jti"] = json!("after-withdrawal");
    assert_eq!(
        v.verify(&k.rsa.sign(&c), later).await.unwrap_err(),
        invalid("unknown_kid")
    );
}

#[tokio::test]
async fn issuer_down_cached_keys_keep_working_and_unknown_kids_fail_closed() {
    let k = keys();
    let issuer = start_issuer(&[&k.rsa]).await;
    let v = verifier(issuer.oidc());
    let now = now_s();
    let claims = |at: i64, jti: &str| {
        let mut c = issuer.claims(at);
        c["jti"] = json!(jti);
        c["exp"] = json!(now + 10_000);
        c
    };
    assert!(v.verify(&k.rsa.sign(&claims(now, "a")), now).await.is_ok());

    issuer.set_mode(Mode::Unavailable);
    // Past the default 1 h max-age: the key set is stale and cannot be refreshed, yet still used.
    let later = now + 4000;
    assert!(v.verify(&k.rsa.sign(&claims(later, "b")), later).await.is_ok());
    assert_eq!(
        v.verify(&k.ec.sign(&claims(later, "c")), later).await.unwrap_err(),
        invalid("unknown_kid")
    );

    // A gateway that never reached the issuer cannot decide: 503, not 401.
    let fresh = verifier(issuer.oidc());
    assert_eq!(
        fresh.verify(&k.rsa.sign(&claims(now, "d")), now).await.unwrap_err(),
        TokenError::IssuerUnavailable
    );
    assert!(fresh.prefetch(now).await.is_err());

    // The issuer comes back: after the floor the fresh gateway fetches and verifies.
    issuer.set_mode(Mode::Up);
    assert_eq!(
        fresh
            .verify(&k.rsa.sign(&claims(now + 1, "e")), now + 1)
            .await
            .unwrap_err(),
        TokenError::IssuerUnavailable,
        "inside the floor no new attempt is made"
    );
    assert!(
        fresh
            .verify(&k.rsa.sign(&claims(now + 31, "f")), now + 31)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn an_unknown_kid_flood_costs_the_issuer_one_fetch_per_floor() {
    let k = keys();
    let issuer = start_issuer(&[&k.rsa]).await;
    let v = verifier(issuer.oidc());
    let now = now_s();
    assert!(v.verify(&k.rsa.sign(&issuer.claims(now)), now).await.is_ok());
    assert_eq!(issuer.jwks_fetches(), 1);

    let flood = |at: i64, n: usize| {
        let v = &v;
        let issuer = &issuer;
        async move {
            let tokens: Vec<String> = (0..n)
                .map(|i| {
                    k.rsa
                        .sign_as(Algorithm::RS256, Some(&format!("bogus-{at}-{i}")), &issuer.claims(at))
                })
                .collect();
            let results = join_all(tokens.iter().map(|t| v.verify(t, at))).await;
            assert!(
                results
                    .iter()
                    .all(|r| matches!(r, Err(TokenError::Invalid("unknown_kid"))))
            );
        }
    };
    flood(now, 300).await; // inside the floor: no fetch at all
    assert_eq!(issuer.jwks_fetches(), 1);
    flood(now + 31, 300).await; // the floor passed: one fetch for the whole flood
    assert_eq!(issuer.jwks_fetches(), 2);
    flood(now + 45, 300).await;
    assert_eq!(issuer.jwks_fetches(), 2);
    flood(now + 61, 300).await;
    assert_eq!(issuer.jwks_fetches(), 3);
    // The real key still works throughout.
    let mut c = issuer.claims(now + 61);
    c["jti"] = json!("real");
    assert!(v.verify(&k.rsa.sign(&c), now + 61).await.is_ok());
    assert_eq!(issuer.jwks_fetches(), 3);
}

#[tokio::test]
async fn cache_control_max_age_decides_when_keys_are_refreshed() {
    let k = keys();
    let issuer = start_issuer(&[&k.rsa]).await;
    issuer.cache_control("public, max-age=120");
    let v = verifier(issuer.oidc());
    let now = now_s();
    let token = |at: i64| {
        let mut c = issuer.claims(at);
        c["jti"] = json!(at);
        k.rsa.sign(&c)
    };
    assert!(v.verify(&token(now), now).await.is_ok());
    assert!(v.verify(&token(now + 100), now + 100).await.is_ok());
    assert_eq!(issuer.jwks_fetches(), 1, "fresh for 120 s");
    // Stale: the request is answered from the cached key, the refresh runs in the background.
    assert!(v.verify(&token(now + 121), now + 121).await.is_ok());
    let deadline = Instant::now() + Duration::from_secs(5);
    while issuer.jwks_fetches() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(issuer.jwks_fetches(), 2);
}

// ---- JWT: what must fail ----------------------------------------------------------------------

#[tokio::test]
async fn negative_table() {
    let k = keys();
    let issuer = start_issuer(&[&k.rsa, &k.ec]).await;
    let v = verifier(issuer.oidc());
    let now = now_s();
    let good = issuer.claims(now);
    let with = |key: &str, val: Value| {
        let mut c = good.clone();
        c[key] = val;
        c
    };
    let without = |key: &str| {
        let mut c = good.clone();
        c.as_object_mut().unwrap().remove(key);
        c
    };
    let valid = k.rsa.sign(&good);
    assert!(v.verify(&valid, now).await.is_ok());

    let parts: Vec<&str> = valid.split('.').collect();
    let mut sig = parts[2].as_bytes().to_vec();
    sig[10] = if sig[10] == b'A' { b'B' } else { b'A' };
    let bad_sig = format!("{}.{}.{}", parts[0], parts[1], String::from_utf8(sig).unwrap());
    let other_payload = format!(
        "{}.{}.{}",
        parts[0],
        b64url(with("sub", json!("mallory")).to_string().as_bytes()),
        parts[2]
    );
    let alg_none = format!(
        "{}.{}.",
        b64url(br#"{"alg":"none","typ":"JWT"}"#),
        b64url(good.to_string().as_bytes())
    );
    let rsa_pem = k.rsa.public_pem.as_deref().unwrap();
    let hs_with_rsa_public_key = jsonwebtoken::encode(
        &Header {
            kid: Some("rsa-1".into()),
            ..Header::new(Algorithm::HS256)
        },
        &good,
        &EncodingKey::from_secret(rsa_pem.as_bytes()),
    )
    .unwrap();
    let crit = format!(
        "{}.{}.{}",
        b64url(br#"{"alg":"RS256","kid":"rsa-1","crit":["exp"]}"#),
        parts[1],
        parts[2]
    );
    let impostor = TestKey::rsa("rsa-1"); // same kid, another key
    let signed_payload = |payload: &[u8]| {
        let msg = format!("{}.{}", parts[0], b64url(payload));
        let sig = jsonwebtoken::crypto::sign(msg.as_bytes(), &k.rsa.key, Algorithm::RS256).unwrap();
        format!("{msg}.{sig}")
    };

    let table: Vec<(&str, String, TokenError)> = vec![
        (
            "expired",
            k.rsa.sign(&with("exp", json!(now - 100))),
            TokenError::Expired,
        ),
        ("missing exp", k.rsa.sign(&without("exp")), invalid("missing_exp")),
        (
            "not yet valid",
            k.rsa.sign(&with("nbf", json!(now + 100))),
            invalid("not_yet_valid"),
        ),
        (
            "issued in the future",
            k.rsa.sign(&with("iat", json!(now + 100))),
            invalid("iat_in_future"),
        ),
        (
            "wrong aud",
            k.rsa.sign(&with("aud", json!("https://other/mcp"))),
            invalid("wrong_audience"),
        ),
        (
            "wrong aud list",
            k.rsa.sign(&with("aud", json!(["a", "b"]))),
            invalid("wrong_audience"),
        ),
        ("no aud", k.rsa.sign(&without("aud")), invalid("wrong_audience")),
        (
            "wrong iss",
            k.rsa.sign(&with("iss", json!("https://evil.example"))),
            invalid("wrong_issuer"),
        ),
        ("no iss", k.rsa.sign(&without("iss")), invalid("wrong_issuer")),
        ("no sub", k.rsa.sign(&without("sub")), invalid("missing_subject")),
        ("bad signature", bad_sig, invalid("bad_signature")),
        ("payload swapped", other_payload, invalid("bad_signature")),
        ("same kid, other key", impostor.sign(&good), invalid("bad_signature")),
        ("alg none", alg_none, invalid("alg_not_allowed")),
        (
            "HS256 keyed with the RSA public key",
            hs_with_rsa_public_key,
            invalid("alg_not_allowed"),
        ),
        (
            "ES256 header naming the RSA kid",
            k.ec.sign_as(Algorithm::ES256, Some("rsa-1"), &good),
            invalid("alg_key_mismatch"),
        ),
        (
            "PS256 under a key pinned to RS256",
            k.rsa.sign_as(Algorithm::PS256, Some("rsa-1"), &good),
            invalid("alg_key_mismatch"),
        ),
        ("unknown kid", k.ed.sign(&good), invalid("unknown_kid")),
        (
            "no kid, no key of that alg",
            k.ed.sign_as(Algorithm::EdDSA, None, &good),
            invalid("no_matching_key"),
        ),
        ("crit header", crit, invalid("unsupported_crit")),
        (
            "two segments",
            format!("{}.{}", parts[0], parts[1]),
            invalid("malformed"),
        ),
        ("four segments", format!("{valid}.x"), invalid("malformed")),
        (
            "header not base64",
            format!("%%%.{}.{}", parts[1], parts[2]),
            invalid("malformed"),
        ),
        (
            "header not JSON",
            format!("{}.{}.{}", b64url(b"nope"), parts[1], parts[2]),
            invalid("malformed"),
        ),
        (
            "payload not JSON, signature for another",
            format!("{}.{}.{}", parts[0], b64url(b"[1,"), parts[2]),
            invalid("bad_signature"),
        ),
        ("payload not JSON, signed", signed_payload(b"[1,"), invalid("malformed")),
        (
            "payload not an object, signed",
            signed_payload(b"[1]"),
            invalid("malformed"),
        ),
        ("empty", String::new(), invalid("malformed")),
        (
            "huge",
            format!("{}.{}.{}", parts[0], "A".repeat(20_000), parts[2]),
            invalid("malformed"),
        ),
    ];
    for (name, token, want) in table {
        let got = v.verify(&token, now).await;
        assert_eq!(got.as_ref().map(|p| p.user_id()).err(), Some(&want), "{name}");
    }
    // None of that made the issuer busy: one discovery, one JWKS fetch (the unknown kids came
    // inside the floor).
    assert_eq!((issuer.discovery_fetches(), issuer.jwks_fetches()), (1, 1));
}

#[tokio::test]
async fn hs256_keyed_with_the_rsa_public_key_fails_even_when_hs256_is_allowed() {
    let k = keys();
    let issuer = start_issuer(&[&k.rsa]).await;
    let v = verifier(RawJwt {
        secret_env: Some("JWT_SECRET".into()),
        ..issuer.oidc()
    });
    let now = now_s();
    let good = issuer.claims(now);
    let rsa_pem = k.rsa.public_pem.as_deref().unwrap();
    let rsa_jwk_n = k.rsa.jwk["n"].as_str().unwrap();
    for secret in [rsa_pem.as_bytes(), rsa_jwk_n.as_bytes()] {
        let forged = jsonwebtoken::encode(
            &Header {
                kid: Some("rsa-1".into()),
                ..Header::new(Algorithm::HS256)
            },
            &good,
            &EncodingKey::from_secret(secret),
        )
        .unwrap();
        assert_eq!(v.verify(&forged, now).await.unwrap_err(), invalid("bad_signature"));
    }
}

#[tokio::test]
async fn an_issuer_whose_discovery_names_another_issuer_is_refused() {
    let k = keys();
    let issuer = start_issuer(&[&k.rsa]).await;
    // Configured with a trailing slash: the discovery document names the issuer without one.
    let v = verifier(RawJwt {
        issuer: Some(format!("{}/", issuer.base)),
        ..Default::default()
    });
    let now = now_s();
    let mut c = issuer.claims(now);
    c["iss"] = json!(format!("{}/", issuer.base));
    assert_eq!(
        v.verify(&k.rsa.sign(&c), now).await.unwrap_err(),
        TokenError::IssuerUnavailable
    );
    assert_eq!(issuer.jwks_fetches(), 0);
}

#[tokio::test]
async fn a_symmetric_key_in_the_jwks_is_never_used() {
    let k = keys();
    let issuer = start_issuer(&[]).await;
    let secret = b"a-shared-secret-published-by-mistake!!";
    issuer.publish_raw(json!({"keys": [
        {"kty": "oct", "kid": "sym", "alg": "HS256", "k": b64url(secret)},
        k.rsa.jwk,
    ]}));
    let v = verifier(RawJwt {
        algorithms: Some(vec!["RS256".into()]),
        ..issuer.oidc()
    });
    let now = now_s();
    let hs = jsonwebtoken::encode(
        &Header {
            kid: Some("sym".into()),
            ..Header::new(Algorithm::HS256)
        },
        &issuer.claims(now),
        &EncodingKey::from_secret(secret),
    )
    .unwrap();
    assert_eq!(v.verify(&hs, now).await.unwrap_err(), invalid("alg_not_allowed"));
    // An allowed algorithm naming the oct kid finds no usable key.
    assert_eq!(
        v.verify(&k.rsa.sign_as(Algorithm::RS256, Some("sym"), &issuer.claims(now)), now)
            .await
            .unwrap_err(),
        invalid("unknown_kid")
    );
    // An algorithm outside the configured allow-list is refused even with a matching key.
    assert_eq!(
        v.verify(
            &k.rsa.sign_as(Algorithm::RS384, Some("rsa-1"), &issuer.claims(now)),
            now
        )
        .await
        .unwrap_err(),
        invalid("alg_not_allowed")
    );
}

// ---- JWT: claims → principal ------------------------------------------------------------------

#[tokio::test]
async fn claims_map_to_the_principal() {
    let k = keys();
    let issuer = start_issuer(&[&k.ed]).await;
    let v = verifier(issuer.oidc());
    let now = now_s();

    // Seed 003's payload: scope string, key nested in metadata, plus scp, roles, tenant.
    let mut c = issuer.claims(now);
    c["name"] = json!("John Doe");
    c["email"] = json!("john@example.com");
    c["tenant_id"] = json!("acme");
    c["roles"] = json!(["user", "admin", "superhero"]);
    c["scope"] = json!("read write execute");
    c["scp"] = json!(["write", "deploy"]);
    c["metadata"] = json!({"kubiya_api_key": "kb-1234567890abcdef"});
    let p = v.verify(&k.ed.sign(&c), now).await.unwrap();
    assert_eq!(p.id(), "jwt:alice");
    assert_eq!(p.name(), Some("John Doe"));
    assert_eq!(p.tenant(), Some("acme"));
    assert_eq!(
        p.role(),
        Role::Admin,
        "the highest role named wins; unknown ones are ignored"
    );
    let scopes = ["read", "write", "execute", "deploy"].map(String::from).to_vec();
    assert_eq!(p.scopes(), Some(&scopes[..]));
    assert_eq!(p.permissions(), scopes, "no permissions claim: the scopes");
    assert_eq!(p.upstream_credential().map(|s| s.expose()), Some("kb-1234567890abcdef"));
    assert!(!format!("{p:?}").contains("kb-1234567890abcdef"));
    assert!(!serde_json::to_string(&p).unwrap().contains("kb-1234567890abcdef"));

    // First path wins; roles as a string; explicit permissions; no scope claim at all.
    let mut c = issuer.claims(now);
    c["kubiya_api_key"] = json!("kb-top");
    c["api_key"] = json!("generic");
    c["metadata"] = json!({"kubiya_api_key": "kb-nested"});
    c["roles"] = json!("developer");
    c["permissions"] = json!(["tools:call", "read"]);
    let p = v.verify(&k.ed.sign(&c), now).await.unwrap();
    assert_eq!(p.upstream_credential().map(|s| s.expose()), Some("kb-top"));
    assert_eq!(p.role(), Role::Developer);
    assert_eq!(p.permissions(), vec!["tools:call".to_string(), "read".to_string()]);
    assert_eq!(p.scopes(), Some(&[][..]), "no scope claim: a token holds no scopes");
    assert_eq!(p.tenant(), None);

    // No roles: user.
    let p = v
        .verify(
            &k.ed
                .sign(&json!({"iss": issuer.base, "aud": AUD, "sub": 42, "exp": now + 60})),
            now,
        )
        .await
        .unwrap();
    assert_eq!((p.user_id(), p.role()), ("42", Role::User));
    assert!(p.upstream_credential().is_none());

    // Configured paths: seed 002's user_id, Keycloak-style nested roles, a custom scope claim.
    let v = verifier(RawJwt {
        subject_claim: Some("user_id".into()),
        tenant_claim: Some("org.id".into()),
        roles_claim: Some("realm_access.roles".into()),
        scopes_claim: Some("grants".into()),
        permissions_claim: Some("perms".into()),
        name_claim: Some("preferred_username".into()),
        upstream_credential_claims: Some(vec!["vault.token".into()]),
        ..issuer.oidc()
    });
    let c = json!({"iss": issuer.base, "aud": [AUD, "other"], "exp": now + 60,
        "user_id": "user_123", "org": {"id": "tenant_456"}, "realm_access": {"roles": ["guest", "developer"]},
        "grants": ["read"], "scope": "admin", "preferred_username": "jd", "vault": {"token": "vt-1"},
        "kubiya_api_key": "ignored"});
    let p = v.verify(&k.ed.sign(&c), now).await.unwrap();
    assert_eq!((p.id(), p.user_id()), ("jwt:user_123", "user_123"));
    assert_eq!(p.tenant(), Some("tenant_456"));
    assert_eq!(p.role(), Role::Developer);
    assert_eq!(p.scopes(), Some(&["read".to_string()][..]));
    assert_eq!(p.permissions(), vec!["read".to_string()]);
    assert_eq!(p.name(), Some("jd"));
    assert_eq!(p.upstream_credential().map(|s| s.expose()), Some("vt-1"));
}

// ---- JWT: the cache ---------------------------------------------------------------------------

#[tokio::test]
async fn the_cache_never_outlives_exp() {
    let k = keys();
    let issuer = start_issuer(&[&k.ec]).await;
    let v = verifier(issuer.oidc());
    let now = now_s();
    let mut c = issuer.claims(now);
    c["exp"] = json!(now + 5);
    let token = k.ec.sign(&c);
    assert!(v.verify(&token, now).await.is_ok());
    assert!(v.verify(&token, now + 4).await.is_ok());
    // Past exp but within the 30 s leeway: re-verified (not served from the cache), accepted.
    assert!(v.verify(&token, now + 20).await.is_ok());
    assert_eq!(v.verify(&token, now + 35).await.unwrap_err(), TokenError::Expired);
    assert_eq!(v.verify(&token, now + 10_000).await.unwrap_err(), TokenError::Expired);
}

type Signer<'a> = dyn Fn(&Value) -> String + 'a;

/// Prints cold (signature check) and warm (cache hit) costs; asserts only correctness.
#[tokio::test]
async fn verify_costs() {
    let k = keys();
    let issuer = start_issuer(&[&k.rsa, &k.ec, &k.ed]).await;
    let v = verifier(RawJwt {
        secret_env: Some("JWT_SECRET".into()),
        ..issuer.oidc()
    });
    let now = now_s();
    v.prefetch(now).await.unwrap();
    let hs = |c: &Value| mint_hs256(HS_SECRET.as_bytes(), c).unwrap();
    let signers: [(&str, &Signer); 4] = [
        ("HS256", &hs),
        ("RS256", &|c| k.rsa.sign(c)),
        ("ES256", &|c| k.ec.sign(c)),
        ("EdDSA", &|c| k.ed.sign(c)),
    ];
    for (name, sign) in signers {
        let tokens: Vec<String> = (0..200)
            .map(|i| {
                let mut c = issuer.claims(now);
                c["jti"] = json!(i);
                c["scope"] = json!("read write");
                sign(&c)
            })
            .collect();
        let start = Instant::now();
        for t in &tokens {
            v.verify(t, now).await.unwrap();
        }
        let cold = start.elapsed() / tokens.len() as u32;
        let n = 20_000u32;
        let start = Instant::now();
        for _ in 0..n {
            v.verify(&tokens[0], now).await.unwrap();
        }
        let warm = start.elapsed() / n;
        eprintln!("verify {name}: cold {cold:?}, warm (cached) {warm:?}");
    }
}

// ---- introspection (RFC 7662) -----------------------------------------------------------------

fn introspector(url: String, cache_ttl_s: Option<u64>, timeout_ms: Option<u64>) -> IntrospectionVerifier {
    IntrospectionVerifier::new(
        RawIntrospection {
            url,
            client_id: CLIENT_ID.into(),
            client_secret_env: "INTROSPECTION_SECRET".into(),
            cache_ttl_s,
            timeout_ms,
            audience: Some(vec![AUD.into()]),
        },
        &|name| (name == "INTROSPECTION_SECRET").then(|| CLIENT_SECRET.to_string()),
    )
    .unwrap()
}

#[tokio::test]
async fn introspection_active_inactive_cached() {
    let issuer = start_issuer(&[]).await;
    let now = now_s();
    issuer.answer(
        "opaque-alice",
        json!({"active": true, "sub": "alice", "scope": "read execute", "client_id": "app",
               "exp": now + 600, "aud": AUD, "tenant_id": "acme", "kubiya_api_key": "kb-9"}),
    );
    let v = introspector(format!("{}/introspect", issuer.base), Some(60), None);

    let p = v.verify("opaque-alice", now).await.unwrap();
    assert_eq!((p.id(), p.user_id()), ("introspect:alice", "alice"));
    assert_eq!(p.method(), AuthMethod::Introspection);
    assert_eq!(p.scopes(), Some(&["read".to_string(), "execute".to_string()][..]));
    assert_eq!(p.tenant(), Some("acme"));
    assert_eq!(p.expires_at(), Some(now + 600));
    assert_eq!(p.upstream_credential().map(|s| s.expose()), Some("kb-9"));
    assert_eq!(issuer.introspections(), 1);
    // Cached: no second call within the TTL.
    assert!(v.verify("opaque-alice", now + 59).await.is_ok());
    assert_eq!(issuer.introspections(), 1);
    // The TTL passed: asked again.
    assert!(v.verify("opaque-alice", now + 61).await.is_ok());
    assert_eq!(issuer.introspections(), 2);

    // Inactive, and remembered as such.
    assert_eq!(v.verify("opaque-unknown", now).await.unwrap_err(), invalid("inactive"));
    assert_eq!(
        v.verify("opaque-unknown", now + 1).await.unwrap_err(),
        invalid("inactive")
    );
    assert_eq!(issuer.introspections(), 3);

    // Another audience.
    issuer.answer(
        "opaque-other-aud",
        json!({"active": true, "sub": "bob", "aud": "https://other/mcp"}),
    );
    assert_eq!(
        v.verify("opaque-other-aud", now).await.unwrap_err(),
        invalid("wrong_audience")
    );

    // Cached no longer than exp, even with a longer TTL.
    issuer.answer(
        "opaque-short",
        json!({"active": true, "sub": "carol", "aud": AUD, "exp": now + 5}),
    );
    let calls = issuer.introspections();
    assert!(v.verify("opaque-short", now).await.is_ok());
    assert_eq!(
        v.verify("opaque-short", now + 6).await.unwrap_err(),
        TokenError::Expired
    );
    assert_eq!(issuer.introspections(), calls + 2);
}

#[tokio::test]
async fn introspection_endpoint_down_is_unavailable_not_invalid() {
    let issuer = start_issuer(&[]).await;
    let now = now_s();
    issuer.answer(
        "opaque-alice",
        json!({"active": true, "sub": "alice", "aud": AUD, "exp": now + 600}),
    );
    let v = introspector(format!("{}/introspect", issuer.base), None, None);
    assert!(v.verify("opaque-alice", now).await.is_ok());

    // 5xx: unavailable; what is cached keeps answering.
    issuer.set_mode(Mode::Unavailable);
    assert_eq!(
        v.verify("opaque-bob", now).await.unwrap_err(),
        TokenError::IssuerUnavailable
    );
    assert!(v.verify("opaque-alice", now + 1).await.is_ok());
    // Unavailable answers are not cached: once it is back, the token is asked about again.
    issuer.set_mode(Mode::Up);
    assert_eq!(v.verify("opaque-bob", now + 2).await.unwrap_err(), invalid("inactive"));

    // Nothing listening.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}/introspect", listener.local_addr().unwrap());
    drop(listener);
    let v = introspector(dead, None, None);
    assert_eq!(
        v.verify("opaque-alice", now).await.unwrap_err(),
        TokenError::IssuerUnavailable
    );

    // Too slow.
    let v = introspector(format!("{}/slow-introspect", issuer.base), None, Some(200));
    let start = Instant::now();
    assert_eq!(
        v.verify("opaque-alice", now).await.unwrap_err(),
        TokenError::IssuerUnavailable
    );
    assert!(start.elapsed() < Duration::from_secs(2));

    // The gateway's own client credentials refused (401): a configuration problem, not the caller's.
    let v = IntrospectionVerifier::new(
        RawIntrospection {
            url: format!("{}/introspect", issuer.base),
            client_id: CLIENT_ID.into(),
            client_secret_env: "S".into(),
            ..Default::default()
        },
        &|_| Some("wrong-secret".into()),
    )
    .unwrap();
    assert_eq!(
        v.verify("opaque-alice", now).await.unwrap_err(),
        TokenError::IssuerUnavailable
    );
}
