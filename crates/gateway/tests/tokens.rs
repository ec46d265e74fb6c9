//! Bearer tokens, HMAC-signed requests, identity delegation and tenancy, through the whole
//! pipeline (PRODUCT.md capabilities 3, 5, 6; seeds 002 and 003): a real local OIDC issuer
//! (discovery + JWKS, RS256 / ES256 / EdDSA keys generated at test time), HS256 with
//! `JWT_SECRET`, seed 002's `X-Timestamp` / `X-Signature` signing, and seed 003's delegation of
//! the user's own upstream credential, checked with the demo upstream's `inspect` tool and a
//! recording proxy that sees every byte the upstream receives.
//!
//! Every refusal is checked for its HTTP status, JSON-RPC error code, `WWW-Authenticate` parts
//! (`Bearer`, `error=`, `scope=`, `resource_metadata=`) and a message that says what to do.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mcpgate_core::jsonrpc::code;
use mcpgate_core::sealed::SealingKey;
use mcpgate_gateway::auth::jwt::mint_hs256;
use mcpgate_store::{CredentialStore, SealedCredential};
use mcpgate_testkit::apikey::*;
use mcpgate_testkit::harness::*;
use mcpgate_testkit::issuer::Issuer;
use mcpgate_testkit::keys::{b64url, keys};
use mcpgate_testkit::logs::{LogCapture, find_leaks};
use mcpgate_testkit::recorder::Recorder;
use mcpgate_testkit::time::{block_on, eventually, now_s};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const PUBLIC_URL: &str = "https://gw.test";
/// The gateway's resource: the default audience of every token.
const RESOURCE: &str = "https://gw.test/mcp";
const RESOURCE_METADATA: &str = "https://gw.test/.well-known/oauth-protected-resource/mcp";
const JWT_SECRET: &str = "seed-002-jwt-secret-that-is-long-enough-for-hs256";
const HMAC_SECRET: &str = "seed-002-hmac-shared-secret-0123456789abcdef";
const SCOPE_RULE: &str = "[[policy.rules]]\ntools = [\"add\"]\nscopes = [\"execute\"]\n";
const DELEGATE: &str =
    "[delegation]\nheader = \"Authorization\"\ntemplate = \"Bearer {credential}\"\nidentity_headers = true\n";
/// Longer than the JWKS refresh floor (`jwks_min_refresh_s = 1`).
const PAST_FLOOR: Duration = Duration::from_millis(1100);

/// A value no other test uses (token ids, credentials).
fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{:x}-{:016x}",
        N.fetch_add(1, Ordering::Relaxed),
        rand::random::<u64>()
    )
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

// ---- the issuer ---------------------------------------------------------------------------------

/// The claims of tokens from the issuer for this gateway.
trait Claims {
    fn claims(&self) -> Value;
    fn claims_with(&self, key: &str, value: Value) -> Value;
}

impl Claims for Issuer {
    /// Claims of a good token for this gateway: alice of tenant acme, developer, three scopes.
    fn claims(&self) -> Value {
        let now = now_s();
        json!({
            "iss": self.base, "aud": RESOURCE, "sub": "alice", "name": "Alice",
            "tenant_id": "acme", "roles": ["developer"], "scope": "read write execute",
            "iat": now, "exp": now + 600, "jti": unique("jti"),
        })
    }

    fn claims_with(&self, key: &str, value: Value) -> Value {
        let mut c = self.claims();
        c[key] = value;
        c
    }
}

/// A gateway configuration trusting `issuer` through OIDC discovery; the audience is the default
/// (the gateway's resource URL).
fn issuer_toml(issuer: &str, auth_extra: &str, tail: &str) -> String {
    format!(
        "public_url = \"{PUBLIC_URL}\"\n\n[auth]\n{auth_extra}\n\n[auth.jwt]\nissuer = \"{issuer}\"\n\
         jwks_min_refresh_s = 1\n\n{tail}"
    )
}

/// HS256 only, secret from `JWT_SECRET`.
fn hs_toml(jwt_extra: &str, tail: &str) -> String {
    format!("public_url = \"{PUBLIC_URL}\"\n\n[auth.jwt]\nsecret_env = \"JWT_SECRET\"\n{jwt_extra}\n\n{tail}")
}

fn hs_token(claims: &Value) -> String {
    mint_hs256(JWT_SECRET.as_bytes(), claims).unwrap()
}

/// Claims of an HS256 token for this gateway, plus `extra`.
fn hs_claims(sub: &str, extra: Value) -> Value {
    let now = now_s();
    let mut c = json!({
        "sub": sub, "aud": RESOURCE, "tenant_id": "acme", "roles": ["developer"],
        "scope": "read write", "iat": now, "exp": now + 600, "jti": unique("jti"),
    });
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

// ---- assertions ---------------------------------------------------------------------------------

fn challenge(r: &Resp, what: &str) -> String {
    r.header("www-authenticate")
        .unwrap_or_else(|| panic!("{what}: {} without WWW-Authenticate: {:?}", r.status, r.headers))
        .to_string()
}

fn assert_points_at_metadata(c: &str, what: &str) {
    assert!(
        c.contains(&format!("resource_metadata=\"{RESOURCE_METADATA}\"")),
        "{what}: the challenge must point at the RFC 9728 document: {c:?}"
    );
}

/// 401 with `Bearer …, error="invalid_token", resource_metadata="…"`.
fn assert_invalid_token(r: &Resp, what: &str, says: &[&str]) {
    r.refused(what, 401, code::UNAUTHORIZED, says);
    let c = challenge(r, what);
    assert!(c.starts_with("Bearer "), "{what}: {c:?}");
    assert!(c.contains(r#"error="invalid_token""#), "{what}: {c:?}");
    assert!(!c.contains("scope="), "{what}: {c:?}");
    assert_points_at_metadata(&c, what);
}

/// 403 with `Bearer …, error="insufficient_scope", scope="…", resource_metadata="…"` (step-up).
fn assert_insufficient_scope(r: &Resp, what: &str, scope: &str) {
    r.refused(
        what,
        403,
        code::FORBIDDEN,
        &["insufficient scope", scope, "request them and retry"],
    );
    let c = challenge(r, what);
    assert!(c.starts_with("Bearer "), "{what}: {c:?}");
    assert!(c.contains(r#"error="insufficient_scope""#), "{what}: {c:?}");
    assert!(c.contains(&format!("scope=\"{scope}\"")), "{what}: {c:?}");
    assert_points_at_metadata(&c, what);
}

/// 403 that no token can fix by stepping up: no challenge at all.
fn assert_forbidden(r: &Resp, what: &str, says: &[&str]) {
    r.refused(what, 403, code::FORBIDDEN, says);
    assert!(
        r.header("www-authenticate").is_none(),
        "{what}: not a token problem, so no challenge: {:?}",
        r.headers
    );
}

fn inspect_headers(r: &Resp) -> serde_json::Map<String, Value> {
    r.tool_json()["http"]["headers"]
        .as_object()
        .unwrap_or_else(|| panic!("inspect reported no headers: {}", r.text))
        .clone()
}

fn reasons(audit: &[mcpgate_core::audit::AuditRecord]) -> BTreeSet<String> {
    audit.iter().map(|r| r.reason.clone()).collect()
}

// ---- 1. JWT from a real issuer ------------------------------------------------------------------

#[tokio::test]
async fn jwt_from_a_discovered_issuer_initializes_lists_and_calls_with_rs256_es256_eddsa() {
    let k = keys();
    let issuer = Issuer::start(&[&k.rsa, &k.ec, &k.ed]).await;
    let gw = Setup::new(&issuer_toml(&issuer.base, "", SCOPE_RULE)).start().await;
    for key in [&k.rsa, &k.ec, &k.ed] {
        let what = format!("{:?}", key.alg);
        let a = bearer(&key.sign(&issuer.claims()));
        let h = [("authorization", a.as_str())];
        let s = gw.initialize(&h).await;
        let tools = gw.list_tools(&h, &s).await;
        tools.ok(&what);
        let names = tools.tool_names();
        for t in ["add", "echo", "inspect", "whoami"] {
            assert!(names.contains(&t.to_string()), "{what}: {t} listed in {names:?}");
        }
        let r = gw.call(&h, Some(&s), "add", json!({ "a": 2, "b": 3 })).await;
        r.ok(&what);
        assert_eq!(r.tool_text(), "5", "{what}");
        let who = gw.whoami(&h).await;
        assert_eq!(who["auth_method"], json!("jwt"), "{what}: {who}");
        assert_eq!(who["principal"], json!("jwt:alice"), "{what}");
        assert_eq!(who["user_id"], json!("alice"), "{what}");
        assert_eq!(who["name"], json!("Alice"), "{what}");
        assert_eq!(who["tenant"], json!("acme"), "{what}");
        assert_eq!(who["role"], json!("developer"), "{what}");
        assert_eq!(who["scopes"], json!(["read", "write", "execute"]), "{what}");
        assert_eq!(who["key_id"], Value::Null, "{what}");
        assert!(who["expires_at"].is_string(), "{what}: {who}");
        // The gateway's own JSON page agrees, and the session can be ended with the token.
        let me = gw.get("/auth/me", &h).await;
        assert_eq!(me.status, 200, "{what}: {}", me.text);
        assert_eq!(me.body["auth_method"], json!("jwt"));
        let d = gw.delete("/mcp", &[h[0], ("mcp-session-id", &s)]).await;
        assert!(d.status.is_success(), "{what}: DELETE {} {}", d.status, d.text);
    }
    assert_eq!(
        issuer.fetches(),
        (1, 1),
        "one discovery and one JWKS fetch for all three keys"
    );
}

#[tokio::test]
async fn a_rotated_issuer_key_is_picked_up_without_restart() {
    let k = keys();
    let issuer = Issuer::start(&[&k.rsa]).await;
    let gw = Setup::new(&issuer_toml(&issuer.base, "", ""))
        .manual_clock()
        .start()
        .await;
    let old = bearer(&k.rsa.sign(&issuer.claims()));
    let s = gw.initialize(&[("authorization", &old)]).await;
    assert_eq!(issuer.fetches(), (1, 1));

    // The issuer rotates: publishes rsa-2, withdraws rsa-1.
    issuer.publish(&[&k.rsa2]);
    gw.advance(PAST_FLOOR);
    let new = bearer(&k.rsa2.sign(&issuer.claims()));
    let who = gw.whoami(&[("authorization", &new)]).await;
    assert_eq!(who["user_id"], json!("alice"));
    assert_eq!(
        issuer.fetches().1,
        2,
        "the unknown kid made the gateway refetch the JWKS"
    );
    // Same subject, same principal: the session opened with the old key's token goes on.
    gw.call(
        &[("authorization", &new)],
        Some(&s),
        "echo",
        json!({ "text": "rotated" }),
    )
    .await
    .ok("call with the new key's token on the old session");
    // A fresh token under the withdrawn key no longer verifies.
    let withdrawn = bearer(&k.rsa.sign(&issuer.claims()));
    let r = gw.try_initialize(&[("authorization", &withdrawn)]).await;
    assert_invalid_token(
        &r,
        "token under a withdrawn kid",
        &["invalid token", "unknown_kid", "identity provider"],
    );
}

#[tokio::test]
async fn issuer_stopped_cached_keys_still_verify_unknown_kids_fail_closed() {
    let k = keys();
    let issuer = Issuer::start(&[&k.rsa]).await;
    let gw = Setup::new(&issuer_toml(&issuer.base, "", ""))
        .manual_clock()
        .start()
        .await;
    let first = bearer(&k.rsa.sign(&issuer.claims()));
    let s = gw.initialize(&[("authorization", &first)]).await;

    issuer.stop().await;
    gw.advance(PAST_FLOOR);
    // A token never seen before, under the cached key: verified with the cached key.
    let second = bearer(&k.rsa.sign(&issuer.claims()));
    gw.call(
        &[("authorization", &second)],
        Some(&s),
        "echo",
        json!({ "text": "still here" }),
    )
    .await
    .ok("new token under a cached key while the issuer is down");
    // An unknown kid: the refetch fails, so it cannot be verified: 401, not a pass.
    let unknown = bearer(&k.ed.sign(&issuer.claims()));
    let r = gw.try_initialize(&[("authorization", &unknown)]).await;
    assert_invalid_token(&r, "unknown kid, issuer down", &["invalid token", "unknown_kid"]);
    let attempts = gw.gw.auth.jwt.as_ref().unwrap().jwks_fetch_count();
    assert_eq!(attempts, 2, "the gateway tried to refresh once past the floor");

    // A gateway that never reached its issuer cannot decide: 503 and Retry-After, not 401.
    let dead = dead_url("").await;
    let gw2 = Setup::new(&issuer_toml(&dead, "", "")).start().await;
    let mut c = issuer.claims();
    c["iss"] = json!(dead);
    let t = bearer(&k.rsa.sign(&c));
    let r = gw2.try_initialize(&[("authorization", &t)]).await;
    r.refused(
        "issuer never reachable",
        503,
        code::UPSTREAM_UNAVAILABLE,
        &["unavailable", "retry"],
    );
    assert_eq!(r.header("retry-after"), Some("5"));
    assert!(r.header("www-authenticate").is_none(), "{:?}", r.headers);
}

// ---- 2. refusals --------------------------------------------------------------------------------

#[tokio::test]
async fn invalid_tokens_are_401_invalid_token_pointing_at_the_metadata() {
    let k = keys();
    let issuer = Issuer::start(&[&k.rsa, &k.ec]).await;
    let gw = Setup::new(&issuer_toml(&issuer.base, "", SCOPE_RULE)).start().await;
    let now = now_s();
    let valid = k.rsa.sign(&issuer.claims());
    gw.whoami(&[("authorization", &bearer(&valid))]).await;

    let parts: Vec<&str> = valid.split('.').collect();
    let mut sig = parts[2].as_bytes().to_vec();
    sig[10] = if sig[10] == b'A' { b'B' } else { b'A' };
    let bad_sig = format!("{}.{}.{}", parts[0], parts[1], String::from_utf8(sig).unwrap());
    let swapped_payload = format!(
        "{}.{}.{}",
        parts[0],
        b64url(issuer.claims_with("sub", json!("mallory")).to_string().as_bytes()),
        parts[2]
    );
    let alg_none = format!(
        "{}.{}.",
        b64url(br#"{"alg":"none","typ":"JWT"}"#),
        b64url(issuer.claims().to_string().as_bytes())
    );
    let hs_with_rsa_public_key = jsonwebtoken::encode(
        &Header {
            kid: Some("rsa-1".into()),
            ..Header::new(Algorithm::HS256)
        },
        &issuer.claims(),
        &EncodingKey::from_secret(k.rsa.public_pem.as_deref().unwrap().as_bytes()),
    )
    .unwrap();
    let mut no_exp = issuer.claims();
    no_exp.as_object_mut().unwrap().remove("exp");

    // (case, token, reason in the message and the audit record)
    let table: Vec<(&str, String, &str)> = vec![
        (
            "expired",
            k.rsa.sign(&issuer.claims_with("exp", json!(now - 120))),
            "expired",
        ),
        ("no exp", k.rsa.sign(&no_exp), "missing_exp"),
        (
            "not yet valid",
            k.rsa.sign(&issuer.claims_with("nbf", json!(now + 120))),
            "not_yet_valid",
        ),
        (
            "wrong aud",
            k.rsa
                .sign(&issuer.claims_with("aud", json!("https://other.example/mcp"))),
            "wrong_audience",
        ),
        (
            "wrong iss",
            k.rsa.sign(&issuer.claims_with("iss", json!("https://evil.example"))),
            "wrong_issuer",
        ),
        ("bad signature", bad_sig, "bad_signature"),
        ("payload swapped", swapped_payload, "bad_signature"),
        ("alg none", alg_none, "alg_not_allowed"),
        (
            "HS256 keyed with the RSA public key",
            hs_with_rsa_public_key,
            "alg_not_allowed",
        ),
        ("unknown kid", k.ed.sign(&issuer.claims()), "unknown_kid"),
        (
            "ES256 header naming the RSA kid",
            k.ec.sign_as(Algorithm::ES256, Some("rsa-1"), &issuer.claims()),
            "alg_key_mismatch",
        ),
        (
            "malformed: header not JSON",
            format!("{}.{}.{}", b64url(br#"{"alg":"RS256""#), parts[1], parts[2]),
            "malformed",
        ),
    ];
    for (what, token, reason) in &table {
        let a = bearer(token);
        let r = gw.try_initialize(&[("authorization", &a)]).await;
        if *reason == "expired" {
            assert_invalid_token(&r, what, &["expired token", "get a new one"]);
        } else {
            assert_invalid_token(
                &r,
                what,
                &["invalid token", reason, "get a new token from your identity provider"],
            );
        }
        assert!(
            !r.text.contains(token.as_str()),
            "{what}: the token is echoed: {}",
            r.text
        );
        // A tool call is refused the same way (before any policy or upstream).
        let r = gw
            .call(&[("authorization", &a)], None, "echo", json!({ "text": "x" }))
            .await;
        assert_eq!(r.status, 401, "{what}: tools/call {}", r.text);
    }
    // Not a JWT at all: the value goes to the key registry, and is an invalid key.
    let r = gw.try_initialize(&[("authorization", "Bearer not-a-jwt")]).await;
    assert_invalid_token(&r, "opaque garbage", &["invalid"]);
    // A scheme other than Bearer.
    let basic = format!("Basic {valid}");
    let r = gw.try_initialize(&[("authorization", &basic)]).await;
    assert_invalid_token(&r, "Basic scheme", &["Bearer"]);

    let audit = gw.audit().await;
    let got = reasons(&audit);
    for (what, _, reason) in &table {
        assert!(got.contains(*reason), "{what}: audit reason {reason} in {got:?}");
    }
    assert!(
        audit
            .iter()
            .filter(|r| r.status == 401)
            .all(|r| r.decision == "deny" && r.event == "auth"),
        "every refusal is an auth denial"
    );
}

#[tokio::test]
async fn a_missing_policy_scope_is_403_insufficient_scope_naming_it() {
    let k = keys();
    let issuer = Issuer::start(&[&k.rsa]).await;
    let gw = Setup::new(&issuer_toml(&issuer.base, "", SCOPE_RULE)).start().await;
    let rw = bearer(&k.rsa.sign(&issuer.claims_with("scope", json!("read write"))));
    let h = [("authorization", rw.as_str())];
    let s = gw.initialize(&h).await;
    let tools = gw.list_tools(&h, &s).await;
    tools.ok("list with read write");
    let names = tools.tool_names();
    assert!(!names.contains(&"add".to_string()), "add needs execute: {names:?}");
    assert!(names.contains(&"echo".to_string()), "{names:?}");
    gw.call(&h, Some(&s), "echo", json!({ "text": "x" }))
        .await
        .ok("echo with read write");
    let r = gw.call(&h, Some(&s), "add", json!({ "a": 1, "b": 2 })).await;
    assert_insufficient_scope(&r, "add without execute", "execute");
    // Stepped up: the same user with execute may call it, on the same session.
    let rwx = bearer(&k.rsa.sign(&issuer.claims()));
    gw.call(&[("authorization", &rwx)], Some(&s), "add", json!({ "a": 1, "b": 2 }))
        .await
        .ok("add with execute");
    // Scopes given as an `scp` list (Entra, Okta) count the same.
    let scp = {
        let mut c = issuer.claims();
        c.as_object_mut().unwrap().remove("scope");
        c["scp"] = json!(["read", "write", "execute"]);
        bearer(&k.rsa.sign(&c))
    };
    gw.call(&[("authorization", &scp)], Some(&s), "add", json!({ "a": 1, "b": 2 }))
        .await
        .ok("add with scp");
}

#[tokio::test]
async fn required_scopes_every_token_must_carry() {
    let k = keys();
    let issuer = Issuer::start(&[&k.rsa]).await;
    let gw = Setup::new(&issuer_toml(&issuer.base, "required_scopes = [\"read\"]", ""))
        .start()
        .await;
    let lacking = bearer(&k.rsa.sign(&issuer.claims_with("scope", json!("write execute"))));
    let r = gw.try_initialize(&[("authorization", &lacking)]).await;
    assert_insufficient_scope(&r, "initialize without read", "read");
    let r = gw.call(&[("authorization", &lacking)], None, "whoami", json!({})).await;
    assert_insufficient_scope(&r, "whoami without read", "read");
    let enough = bearer(&k.rsa.sign(&issuer.claims_with("scope", json!("read"))));
    let s = gw.initialize(&[("authorization", &enough)]).await;
    gw.list_tools(&[("authorization", &enough)], &s)
        .await
        .ok("list with read");
}

#[tokio::test]

async fn a_token_without_any_scope_claim_lacks_the_required_scopes() {
    let k = keys();
    let issuer = Issuer::start(&[&k.rsa]).await;
    let gw = Setup::new(&issuer_toml(&issuer.base, "required_scopes = [\"read\"]", SCOPE_RULE))
        .start()
        .await;
    let mut c = issuer.claims();
    c.as_object_mut().unwrap().remove("scope");
    c["permissions"] = json!(["*"]);
    let a = bearer(&k.rsa.sign(&c));
    let r = gw.try_initialize(&[("authorization", &a)]).await;
    assert_insufficient_scope(&r, "initialize with no scope claim", "read");
    let r = gw
        .call(&[("authorization", &a)], None, "add", json!({ "a": 1, "b": 2 }))
        .await;
    assert_eq!(r.status, 403, "add needs execute: {}", r.text);
}

#[tokio::test]
async fn a_tenant_header_that_disagrees_with_the_token_is_403() {
    let k = keys();
    let issuer = Issuer::start(&[&k.rsa]).await;
    let gw = Setup::new(&issuer_toml(&issuer.base, "", "")).start().await;
    let a = bearer(&k.rsa.sign(&issuer.claims()));
    let wrong = [("authorization", a.as_str()), ("x-tenant-id", "globex")];
    let right = [("authorization", a.as_str()), ("x-tenant-id", "acme")];
    let r = gw.try_initialize(&wrong).await;
    assert_forbidden(
        &r,
        "X-Tenant-ID globex, token of acme",
        &["X-Tenant-ID", "tenant", "drop the header"],
    );
    let s = gw.initialize(&right).await;
    gw.call(&right, Some(&s), "echo", json!({ "text": "x" }))
        .await
        .ok("matching tenant header");
    let r = gw.call(&wrong, Some(&s), "echo", json!({ "text": "x" })).await;
    assert_forbidden(&r, "globex on an acme session", &["X-Tenant-ID"]);
    let audit = gw.audit().await;
    assert!(
        audit
            .iter()
            .any(|r| r.reason == "tenant_mismatch" && r.tenant.as_deref() == Some("acme")),
        "audited with the credential's tenant"
    );
}

// ---- 3. HS256 with JWT_SECRET (seeds 001/002) ---------------------------------------------------

#[tokio::test]
async fn hs256_with_jwt_secret_seed_002_token() {
    let mut setup = Setup::new(&hs_toml("subject_claim = \"user_id\"\naudience = []\n", ""));
    setup.env("JWT_SECRET", JWT_SECRET);
    let gw = setup.start().await;
    let now = now_s();
    // Exactly seed 002's create_jwt_token payload.
    let seed = hs_token(&json!({
        "user_id": "user_123", "tenant_id": "tenant_456", "iat": now, "exp": now + 3600
    }));
    let a = bearer(&seed);
    let h = [("authorization", a.as_str())];
    gw.initialize(&h).await;
    let who = gw.whoami(&h).await;
    assert_eq!(who["auth_method"], json!("jwt"));
    assert_eq!(who["principal"], json!("jwt:user_123"));
    assert_eq!(who["user_id"], json!("user_123"));
    assert_eq!(who["tenant"], json!("tenant_456"));
    // The same payload with permissions lists and calls.
    let full = bearer(&hs_token(&json!({
        "user_id": "user_123", "tenant_id": "tenant_456", "permissions": ["read", "write"],
        "iat": now, "exp": now + 3600
    })));
    let h = [("authorization", full.as_str())];
    let s = gw.initialize(&h).await;
    gw.list_tools(&h, &s).await.ok("list");
    gw.call(&h, Some(&s), "echo", json!({ "text": "hs" })).await.ok("call");

    // Signed with another secret.
    let forged = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &json!({ "user_id": "user_123", "tenant_id": "tenant_456", "iat": now, "exp": now + 3600 }),
        &EncodingKey::from_secret(b"another-secret-that-is-also-long-enough!!"),
    )
    .unwrap();
    let r = gw.try_initialize(&[("authorization", &bearer(&forged))]).await;
    assert_invalid_token(&r, "HS256 with the wrong secret", &["invalid token", "bad_signature"]);
    let expired = hs_token(&json!({ "user_id": "u", "iat": now - 7200, "exp": now - 3600 }));
    let r = gw.try_initialize(&[("authorization", &bearer(&expired))]).await;
    assert_invalid_token(&r, "expired HS256", &["expired token"]);
    // An RS256 token means nothing to a secret-only gateway.
    let rs = keys().rsa.sign(&json!({ "user_id": "u", "exp": now + 60 }));
    let r = gw.try_initialize(&[("authorization", &bearer(&rs))]).await;
    assert_invalid_token(&r, "RS256 at a secret-only gateway", &["alg_not_allowed"]);
}

#[tokio::test]
async fn hs256_checks_the_default_audience() {
    let mut setup = Setup::new(&hs_toml("", ""));
    setup.env("JWT_SECRET", JWT_SECRET);
    let gw = setup.start().await;
    let ok = bearer(&hs_token(&hs_claims("bob", json!({}))));
    assert_eq!(gw.whoami(&[("authorization", &ok)]).await["user_id"], json!("bob"));
    let other = bearer(&hs_token(&hs_claims("bob", json!({ "aud": "https://other/mcp" }))));
    let r = gw.try_initialize(&[("authorization", &other)]).await;
    assert_invalid_token(&r, "HS256 for another audience", &["wrong_audience"]);
}

// ---- 4. HMAC-signed requests (seed 002) -------------------------------------------------------

const HMAC_TOML: &str = "[auth.hmac]\n[[auth.hmac.clients]]\nid = \"svc-a\"\nsecret_env = \"HMAC_SECRET\"\n\
                         permissions = [\"*\"]\ntenant = \"t-svc\"\n";

/// A JSON-RPC body written with spaces, as the seed's Python does: the signature covers these
/// exact bytes, never a re-serialization.
fn rpc_bytes(id: u64, method: &str, params: &Value) -> Vec<u8> {
    format!("{{\"jsonrpc\": \"2.0\", \"id\": {id}, \"method\": \"{method}\", \"params\": {params}}}").into_bytes()
}

/// Seed 002's headers: client id, timestamp, hex HMAC-SHA256 of "{ts}.{body}".
fn signed_headers(client: &str, secret: &str, ts: i64, body: &[u8]) -> Vec<(String, String)> {
    let ts = ts.to_string();
    let sig = mcpgate_core::hmac::sign(secret.as_bytes(), &ts, body);
    vec![
        ("x-api-key".into(), client.into()),
        ("x-timestamp".into(), ts),
        ("x-signature".into(), sig),
    ]
}

async fn post_signed(gw: &Gw, signed: &[(String, String)], session: Option<&str>, body: &[u8]) -> Resp {
    let mut h: Vec<(&str, &str)> = signed.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    if let Some(s) = session {
        h.push(("mcp-session-id", s));
        h.push(("mcp-protocol-version", PROTOCOL));
    }
    gw.post_raw("/mcp", &h, body.to_vec()).await
}

/// Signs with the current time and sends.
async fn send_signed(gw: &Gw, session: Option<&str>, body: &[u8]) -> Resp {
    post_signed(gw, &signed_headers("svc-a", HMAC_SECRET, now_s(), body), session, body).await
}

async fn hmac_gateway() -> Gw {
    let mut setup = Setup::new(&format!("public_url = \"{PUBLIC_URL}\"\n\n{HMAC_TOML}"));
    setup.env("HMAC_SECRET", HMAC_SECRET);
    setup.start().await
}

async fn hmac_session(gw: &Gw) -> String {
    let init = rpc_bytes(
        gw.id(),
        "initialize",
        &json!({ "protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": { "name": "svc-a", "version": "1" } }),
    );
    let r = send_signed(gw, None, &init).await;
    r.ok("signed initialize");
    let s = r.header("mcp-session-id").expect("session id").to_string();
    // The replay cache is keyed by signature, and a signature covers only the timestamp and the
    // body: two sessions opened in the same second must not send byte-identical notifications.
    static OPENED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = OPENED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let note = format!(
        r#"{{"jsonrpc": "2.0",{} "method": "notifications/initialized"}}"#,
        " ".repeat(n)
    );
    let n = send_signed(gw, Some(&s), note.as_bytes()).await;
    assert!(n.status.is_success(), "signed notification: {} {}", n.status, n.text);
    s
}

#[tokio::test]
async fn hmac_signed_requests_initialize_list_and_call() {
    let gw = hmac_gateway().await;
    let s = hmac_session(&gw).await;
    let r = send_signed(&gw, Some(&s), &rpc_bytes(gw.id(), "tools/list", &json!({}))).await;
    r.ok("signed tools/list");
    assert!(r.tool_names().contains(&"add".to_string()));
    let body = rpc_bytes(
        gw.id(),
        "tools/call",
        &json!({ "name": "add", "arguments": { "a": 2, "b": 3 } }),
    );
    let r = send_signed(&gw, Some(&s), &body).await;
    r.ok("signed call");
    assert_eq!(r.tool_text(), "5");
    // The same body again with a new timestamp is a new signature: accepted.
    tokio::time::sleep(Duration::from_millis(1001)).await;
    send_signed(&gw, Some(&s), &body).await.ok("same body, new timestamp");
    let r = send_signed(
        &gw,
        None,
        &rpc_bytes(gw.id(), "tools/call", &json!({ "name": "whoami", "arguments": {} })),
    )
    .await;
    r.ok("signed whoami");
    let who = &r.body["result"]["structuredContent"];
    assert_eq!(who["auth_method"], json!("hmac"), "{who}");
    assert_eq!(who["principal"], json!("hmac:svc-a"));
    assert_eq!(who["key_id"], json!("svc-a"));
    assert_eq!(who["tenant"], json!("t-svc"));
    // Tenancy holds for signed requests too.
    let body = rpc_bytes(
        gw.id(),
        "tools/call",
        &json!({ "name": "echo", "arguments": { "text": "x" } }),
    );
    let mut h = signed_headers("svc-a", HMAC_SECRET, now_s(), &body);
    h.push(("x-tenant-id".into(), "other".into()));
    let r = post_signed(&gw, &h, Some(&s), &body).await;
    assert_forbidden(&r, "signed, other tenant", &["X-Tenant-ID"]);
    let audit = gw.audit().await;
    assert!(
        audit.iter().any(|r| r.auth_method.as_deref() == Some("hmac")
            && r.decision == "allow"
            && r.tool.as_deref() == Some("add")),
        "the signed call is audited as hmac"
    );
}

#[tokio::test]
async fn hmac_replay_skew_tamper_and_unknown_client_are_401() {
    let gw = hmac_gateway().await;
    let s = hmac_session(&gw).await;
    let body = rpc_bytes(
        gw.id(),
        "tools/call",
        &json!({ "name": "echo", "arguments": { "text": "once" } }),
    );
    let signed = signed_headers("svc-a", HMAC_SECRET, now_s(), &body);
    post_signed(&gw, &signed, Some(&s), &body).await.ok("first use");
    let r = post_signed(&gw, &signed, Some(&s), &body).await;
    assert_invalid_token(
        &r,
        "the exact same request again",
        &["already used", "sign every request anew"],
    );

    let body = rpc_bytes(
        gw.id(),
        "tools/call",
        &json!({ "name": "echo", "arguments": { "text": "old" } }),
    );
    let old = signed_headers("svc-a", HMAC_SECRET, now_s() - 301, &body);
    let r = post_signed(&gw, &old, Some(&s), &body).await;
    assert_invalid_token(
        &r,
        "timestamp 301 s old",
        &["X-Timestamp", "outside the accepted window", "clock"],
    );
    let future = signed_headers("svc-a", HMAC_SECRET, now_s() + 301, &body);
    let r = post_signed(&gw, &future, Some(&s), &body).await;
    assert_invalid_token(&r, "timestamp 301 s ahead", &["outside the accepted window"]);

    let signed_body = rpc_bytes(
        gw.id(),
        "tools/call",
        &json!({ "name": "add", "arguments": { "a": 2, "b": 3 } }),
    );
    let h = signed_headers("svc-a", HMAC_SECRET, now_s(), &signed_body);
    let tampered = String::from_utf8(signed_body.clone())
        .unwrap()
        .replace("\"a\":2", "\"a\":200")
        .into_bytes();
    assert_ne!(tampered, signed_body);
    let r = post_signed(&gw, &h, Some(&s), &tampered).await;
    assert_invalid_token(
        &r,
        "body changed after signing",
        &["X-Signature does not match", "raw body"],
    );

    let body = rpc_bytes(
        gw.id(),
        "tools/call",
        &json!({ "name": "echo", "arguments": { "text": "x" } }),
    );
    let r = post_signed(
        &gw,
        &signed_headers("svc-b", HMAC_SECRET, now_s(), &body),
        Some(&s),
        &body,
    )
    .await;
    assert_invalid_token(&r, "unknown client id", &["no configured HMAC client"]);
    let r = post_signed(
        &gw,
        &signed_headers("svc-a", "not-the-secret", now_s(), &body),
        Some(&s),
        &body,
    )
    .await;
    assert_invalid_token(&r, "signed with another secret", &["X-Signature does not match"]);
    let mut bad = signed_headers("svc-a", HMAC_SECRET, now_s(), &body);
    bad[2].1 = "zz".repeat(32);
    let r = post_signed(&gw, &bad, Some(&s), &body).await;
    assert_invalid_token(&r, "signature not hex", &["64 hex characters"]);
    let mut no_ts = signed_headers("svc-a", HMAC_SECRET, now_s(), &body);
    no_ts.remove(1);
    let r = post_signed(&gw, &no_ts, Some(&s), &body).await;
    assert_invalid_token(&r, "no X-Timestamp", &["X-Timestamp"]);

    let audit = gw.audit().await;
    let got = reasons(&audit);
    for reason in [
        "hmac_replayed",
        "hmac_timestamp_skew",
        "hmac_bad_signature",
        "malformed_credential",
        "hmac_malformed",
    ] {
        assert!(got.contains(reason), "audit reason {reason} in {got:?}");
    }
}

#[tokio::test]

async fn a_signed_client_can_delete_its_session() {
    let gw = hmac_gateway().await;
    let s = hmac_session(&gw).await;
    let signed = signed_headers("svc-a", HMAC_SECRET, now_s(), b"");
    let mut h: Vec<(&str, &str)> = signed.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    h.push(("mcp-session-id", &s));
    let r = gw.delete("/mcp", &h).await;
    assert!(r.status.is_success(), "signed DELETE: {} {}", r.status, r.text);
}

// ---- 5. identity delegation (seed 003) ---------------------------------------------------------

/// A gateway in front of a recording proxy in front of the demo upstream.
async fn delegating(toml: &str, env: &[(&str, &str)], prepare: impl FnOnce(&Setup)) -> (Gw, Recorder) {
    let rec = Recorder::start(&start_demo().await).await;
    let mut setup = Setup::new(toml);
    setup.upstream(&rec.url);
    for (k, v) in env {
        setup.env(k, v);
    }
    prepare(&setup);
    (setup.start().await, rec)
}

async fn inspect(gw: &Gw, h: Headers<'_>, args: Value) -> Resp {
    let s = gw.initialize(h).await;
    let r = gw.call(h, Some(&s), "inspect", args).await;
    r.ok("inspect");
    r
}

#[tokio::test]
async fn delegation_from_jwt_claims_never_forwards_the_callers_token() {
    let (gw, rec) = delegating(&hs_toml("", DELEGATE), &[("JWT_SECRET", JWT_SECRET)], |_| {}).await;
    // Seed 003's three claim locations, first found wins.
    let cases = [
        (
            "metadata.kubiya_api_key",
            json!({ "metadata": { "kubiya_api_key": "user-key-123" } }),
            "user-key-123",
        ),
        (
            "kubiya_api_key",
            json!({ "kubiya_api_key": "kb-1234567890abcdef" }),
            "kb-1234567890abcdef",
        ),
        ("api_key", json!({ "api_key": "generic-456" }), "generic-456"),
        (
            "kubiya_api_key before api_key",
            json!({ "kubiya_api_key": "kb-first", "api_key": "generic-second" }),
            "kb-first",
        ),
    ];
    for (what, extra, want) in cases {
        let token = hs_token(&hs_claims("bob", extra));
        let a = bearer(&token);
        // The caller also tries to spoof the identity headers: only the gateway sets them.
        let spoof = [
            ("authorization", a.as_str()),
            ("x-mcp-user-id", "mallory"),
            ("x-mcp-tenant-id", "globex"),
            ("x-mcp-role", "admin"),
        ];
        let r = inspect(&gw, &spoof, json!({ "probe": 1 })).await;
        let h = inspect_headers(&r);
        assert_eq!(h["authorization"], json!(format!("Bearer {want}")), "{what}: {h:?}");
        assert_eq!(h["x-mcp-user-id"], json!("bob"), "{what}");
        assert_eq!(h["x-mcp-tenant-id"], json!("acme"), "{what}");
        assert_eq!(h["x-mcp-role"], json!("developer"), "{what}");
        assert_eq!(h["x-mcp-permissions"], json!("read,write"), "{what}");
        assert_eq!(r.tool_json()["arguments"], json!({ "probe": 1 }), "{what}");
        let sig = token.rsplit('.').next().unwrap();
        assert!(
            !r.text.contains(&token) && !r.text.contains(sig),
            "{what}: the JWT reached the upstream"
        );
    }
    let upstream_saw = rec.dump();
    assert!(rec.count("tools/call") >= 4);
    assert!(
        !upstream_saw.contains("eyJ"),
        "no JWT in anything the upstream received:\n{upstream_saw}"
    );
}

#[tokio::test]

async fn delegation_claim_paths_choose_where_the_credential_is_read() {
    let toml = hs_toml("", &format!("{DELEGATE}claim_paths = [\"vendor.key\"]\n"));
    let (gw, _rec) = delegating(&toml, &[("JWT_SECRET", JWT_SECRET)], |_| {}).await;
    let a = bearer(&hs_token(&hs_claims(
        "bob",
        json!({ "vendor": { "key": "vendor-789" } }),
    )));
    let r = inspect(&gw, &[("authorization", &a)], json!({})).await;
    assert_eq!(inspect_headers(&r)["authorization"], json!("Bearer vendor-789"));
}

#[tokio::test]
async fn delegation_claim_paths_via_upstream_credential_claims() {
    let toml = hs_toml("upstream_credential_claims = [\"vendor.key\"]\n", DELEGATE);
    let (gw, _rec) = delegating(&toml, &[("JWT_SECRET", JWT_SECRET)], |_| {}).await;
    let a = bearer(&hs_token(&hs_claims(
        "bob",
        json!({ "vendor": { "key": "vendor-789" }, "kubiya_api_key": "not-this-one" }),
    )));
    let r = inspect(&gw, &[("authorization", &a)], json!({})).await;
    assert_eq!(inspect_headers(&r)["authorization"], json!("Bearer vendor-789"));
}

fn seal_for(store: &mcpgate_store::sqlite::SqliteStore, sealing: &str, key_id: &str, credential: &str) {
    let (nonce, ciphertext) = SealingKey::parse(sealing)
        .unwrap()
        .seal(key_id, credential.as_bytes())
        .unwrap();
    block_on(store.set_credential(
        key_id,
        &SealedCredential {
            nonce: nonce.to_vec(),
            ciphertext,
        },
        now_s(),
    ))
    .unwrap();
}

#[tokio::test]
async fn delegation_of_a_held_credential_for_a_store_key() {
    let sealing = SealingKey::generate_text();
    let alice_cred = unique("held-alice");
    let bob_cred = unique("held-bob");
    let keys_cell: OnceLock<(Issued, Issued)> = OnceLock::new();
    let toml = format!("public_url = \"{PUBLIC_URL}\"\n\n{DELEGATE}");
    let (gw, rec) = delegating(&toml, &[("MCPGATE_ENCRYPTION_KEY", &sealing)], |setup| {
        let alice = setup.key(key("alice").tenant("t1"));
        let bob = setup.key(key("bob"));
        seal_for(setup.store(), &sealing, &alice.key_id, &alice_cred);
        keys_cell.set((alice, bob)).unwrap();
    })
    .await;
    let (alice, bob) = keys_cell.get().unwrap();

    let r = inspect(&gw, &[alice.x_api_key()], json!({})).await;
    let h = inspect_headers(&r);
    assert_eq!(h["authorization"], json!(format!("Bearer {alice_cred}")));
    assert_eq!(h["x-mcp-user-id"], json!("alice"));
    assert_eq!(h["x-mcp-tenant-id"], json!("t1"));
    assert_eq!(h["x-mcp-role"], json!("user"));
    assert!(h.get("x-api-key").is_none(), "{h:?}");
    assert!(!r.text.contains(&alice.key) && !r.text.contains(alice.secret_part()));
    // Also when the key comes as a bearer value.
    let (bh, bv) = alice.bearer();
    let r = inspect(&gw, &[(bh, bv.as_str())], json!({})).await;
    assert_eq!(
        inspect_headers(&r)["authorization"],
        json!(format!("Bearer {alice_cred}"))
    );
    assert!(!r.text.contains(alice.secret_part()));

    // Bob has none yet (delegation is required by default): refused before the upstream.
    let s = gw.initialize(&[bob.x_api_key()]).await;
    let calls = rec.count("tools/call");
    let r = gw.call(&[bob.x_api_key()], Some(&s), "inspect", json!({})).await;
    assert_forbidden(
        &r,
        "bob without a credential",
        &["No API token provided", "mcpgate keys"],
    );
    assert_eq!(rec.count("tools/call"), calls, "the upstream was not called");
    // An administrator sets one (as `mcpgate keys set-upstream-credential` does): the running
    // gateway uses it within a second or so.
    seal_for(gw.store(), &sealing, &bob.key_id, &bob_cred);
    let want = json!(format!("Bearer {bob_cred}"));
    eventually(Duration::from_secs(5), "bob's held credential is used", || {
        let gw = &gw;
        let s = &s;
        let want = &want;
        async move {
            let r = gw.call(&[bob.x_api_key()], Some(s), "inspect", json!({})).await;
            r.is_ok() && inspect_headers(&r)["authorization"] == *want
        }
    })
    .await;

    let upstream_saw = rec.dump();
    for secret in [&alice.key, &bob.key] {
        assert!(
            !upstream_saw.contains(secret.as_str()),
            "a caller's key reached the upstream"
        );
    }
    assert!(
        !upstream_saw.to_ascii_lowercase().contains("x-api-key"),
        "{upstream_saw}"
    );
}

#[tokio::test]
async fn delegation_falls_back_to_the_environment() {
    let fallback = unique("kubiya-fallback");
    let toml = hs_toml("", &format!("{DELEGATE}env_fallback = [\"KUBIYA_API_KEY\"]\n"));
    let (gw, _rec) = delegating(
        &toml,
        &[("JWT_SECRET", JWT_SECRET), ("KUBIYA_API_KEY", &fallback)],
        |_| {},
    )
    .await;
    let none = bearer(&hs_token(&hs_claims("carol", json!({}))));
    let r = inspect(&gw, &[("authorization", &none)], json!({})).await;
    assert_eq!(
        inspect_headers(&r)["authorization"],
        json!(format!("Bearer {fallback}"))
    );
    // The user's own credential still wins over the fallback.
    let own = bearer(&hs_token(&hs_claims("dave", json!({ "kubiya_api_key": "dave-own" }))));
    let r = inspect(&gw, &[("authorization", &own)], json!({})).await;
    assert_eq!(inspect_headers(&r)["authorization"], json!("Bearer dave-own"));
}

#[tokio::test]
async fn delegation_required_without_any_credential_is_403_and_the_upstream_is_not_called() {
    let toml = hs_toml("", &format!("{DELEGATE}required = true\n"));
    let (gw, rec) = delegating(&toml, &[("JWT_SECRET", JWT_SECRET)], |_| {}).await;
    let a = bearer(&hs_token(&hs_claims("erin", json!({}))));
    let h = [("authorization", a.as_str())];
    // Opening a session and listing do not need the credential; calling does.
    let s = gw.initialize(&h).await;
    gw.list_tools(&h, &s).await.ok("list without an upstream credential");
    assert_eq!(gw.whoami(&h).await["user_id"], json!("erin"));
    let r = gw.call(&h, Some(&s), "inspect", json!({})).await;
    assert_forbidden(
        &r,
        "no upstream credential",
        &["No API token provided", "ask an administrator"],
    );
    assert_eq!(rec.count("tools/call"), 0, "the upstream was never called");
    let audit = gw.audit().await;
    assert!(
        audit
            .iter()
            .any(|r| r.reason == "no_upstream_credential" && r.status == 403)
    );

    // Not required: the call goes through with identity headers and no Authorization at all.
    let toml = hs_toml("", &format!("{DELEGATE}required = false\n"));
    let (gw, _rec) = delegating(&toml, &[("JWT_SECRET", JWT_SECRET)], |_| {}).await;
    let r = inspect(&gw, &[("authorization", &a)], json!({})).await;
    let h = inspect_headers(&r);
    assert!(h.get("authorization").is_none(), "{h:?}");
    assert_eq!(h["x-mcp-user-id"], json!("erin"));
}

#[tokio::test]
async fn delegation_as_a_tool_argument() {
    let toml = hs_toml(
        "",
        "[delegation]\ntool_argument = \"api_key\"\nidentity_headers = true\n",
    );
    let (gw, _rec) = delegating(&toml, &[("JWT_SECRET", JWT_SECRET)], |_| {}).await;
    let a = bearer(&hs_token(&hs_claims(
        "frank",
        json!({ "metadata": { "kubiya_api_key": "user-key-123" } }),
    )));
    let r = inspect(&gw, &[("authorization", &a)], json!({ "name": "my-workflow" })).await;
    let args = &r.tool_json()["arguments"];
    assert_eq!(args, &json!({ "name": "my-workflow", "api_key": "user-key-123" }));
    let h = inspect_headers(&r);
    assert!(
        h.get("authorization").is_none(),
        "no header in tool-argument mode: {h:?}"
    );
    assert_eq!(h["x-mcp-user-id"], json!("frank"));
    // The caller cannot pick the upstream identity: its own api_key argument is replaced.
    let r = inspect(&gw, &[("authorization", &a)], json!({ "api_key": "someone-elses" })).await;
    assert_eq!(r.tool_json()["arguments"]["api_key"], json!("user-key-123"));
    assert!(!r.text.contains("someone-elses"));
}

// ---- 6. protected-resource metadata -------------------------------------------------------------

#[tokio::test]
async fn protected_resource_metadata_names_the_resource_issuer_and_scopes() {
    let iss = "http://127.0.0.1:9";
    let tail = format!("{SCOPE_RULE}[[policy.rules]]\ntools = [\"echo\"]\nscopes = [\"write\"]\n");
    let gw = Setup::new(&issuer_toml(iss, "required_scopes = [\"read\"]", &tail))
        .start()
        .await;
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let r = gw.get(path, &[]).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        assert_eq!(r.body["resource"], json!(RESOURCE), "{path}");
        assert_eq!(r.body["authorization_servers"], json!([iss]), "{path}");
        assert_eq!(
            r.body["scopes_supported"],
            json!(["execute", "read", "write"]),
            "{path}"
        );
        assert_eq!(r.body["bearer_methods_supported"], json!(["header"]), "{path}");
    }
    // The challenge of a 401 points at exactly that document.
    let r = gw.try_initialize(&[]).await;
    r.refused("no credential", 401, code::UNAUTHORIZED, &["X-API-Key"]);
    let c = challenge(&r, "no credential");
    assert!(c.starts_with("Bearer ") && !c.contains("error="), "{c:?}");
    assert_points_at_metadata(&c, "no credential");
    let path = RESOURCE_METADATA.strip_prefix(PUBLIC_URL).unwrap();
    assert_eq!(gw.get(path, &[]).await.body["resource"], json!(RESOURCE));

    // Configured authorization servers win over the issuer.
    let gw = Setup::new(&issuer_toml(
        iss,
        "authorization_servers = [\"https://login.example.com\"]",
        "",
    ))
    .start()
    .await;
    let r = gw.get("/.well-known/oauth-protected-resource/mcp", &[]).await;
    assert_eq!(r.body["authorization_servers"], json!(["https://login.example.com"]));
    assert_eq!(r.body["scopes_supported"], json!([]));
}

// ---- 7. no token, signature secret or delegated credential anywhere -----------------------------

#[tokio::test(flavor = "current_thread")]
async fn no_token_secret_or_delegated_credential_reaches_logs_audit_metrics_or_responses() {
    let logs = LogCapture::install();
    let k = keys();
    let issuer = Issuer::start(&[&k.rsa, &k.ec, &k.ed]).await;
    let sealing = SealingKey::generate_text();
    let held = unique("held-credential");
    let fallback = unique("fallback-credential");
    let claim_cred = unique("claim-credential");
    let toml = format!(
        "public_url = \"{PUBLIC_URL}\"\n\n[auth.jwt]\nissuer = \"{}\"\nsecret_env = \"JWT_SECRET\"\n\
         jwks_min_refresh_s = 1\n\n{HMAC_TOML}\n{DELEGATE}env_fallback = [\"KUBIYA_API_KEY\"]\n\n{SCOPE_RULE}",
        issuer.base
    );
    let mut setup = Setup::new(&toml);
    setup
        .env("JWT_SECRET", JWT_SECRET)
        .env("HMAC_SECRET", HMAC_SECRET)
        .env("KUBIYA_API_KEY", &fallback)
        .env("MCPGATE_ENCRYPTION_KEY", &sealing);
    let alice = setup.key(key("alice-key"));
    seal_for(setup.store(), &sealing, &alice.key_id, &held);
    let gw = setup.start().await;

    // -- traffic --
    let mut tokens: Vec<(String, String)> = Vec::new();
    let with_cred = issuer.claims_with("metadata", json!({ "kubiya_api_key": claim_cred }));
    for key in [&k.rsa, &k.ec, &k.ed] {
        let t = key.sign(&with_cred);
        let a = bearer(&t);
        let h = [("authorization", a.as_str())];
        let s = gw.initialize(&h).await;
        gw.list_tools(&h, &s).await.ok("list");
        gw.call(&h, Some(&s), "echo", json!({ "text": "hi" })).await.ok("echo");
        gw.call(&h, Some(&s), "add", json!({ "a": 1, "b": 1 })).await.ok("add");
        assert_eq!(gw.whoami(&h).await["auth_method"], json!("jwt"));
        assert_eq!(gw.get("/auth/me", &h).await.status, 200);
        tokens.push((format!("{:?} token", key.alg), t));
    }
    let mut hs = hs_claims("hs-user", json!({}));
    hs["iss"] = json!(issuer.base);
    let hs = hs_token(&hs);
    let a = bearer(&hs);
    let s = gw.initialize(&[("authorization", &a)]).await;
    gw.call(
        &[("authorization", &a)],
        Some(&s),
        "echo",
        json!({ "text": "fallback" }),
    )
    .await
    .ok("HS256 with the fallback credential");
    tokens.push(("HS256 token".into(), hs));
    // Refusals.
    let now = now_s();
    let refused = [
        ("expired", k.rsa.sign(&issuer.claims_with("exp", json!(now - 120))), 401),
        (
            "wrong aud",
            k.rsa.sign(&issuer.claims_with("aud", json!("https://x/mcp"))),
            401,
        ),
        ("unknown kid", k.rsa2.sign(&issuer.claims()), 401),
        (
            "wrong secret",
            jsonwebtoken::encode(
                &Header::new(Algorithm::HS256),
                &issuer.claims(),
                &EncodingKey::from_secret(b"some-other-secret-long-enough-for-hs256"),
            )
            .unwrap(),
            401,
        ),
        (
            "no execute",
            k.rsa.sign(&issuer.claims_with("scope", json!("read write"))),
            403,
        ),
    ];
    for (what, t, status) in &refused {
        let a = bearer(t);
        let r = gw
            .call(&[("authorization", &a)], None, "add", json!({ "a": 1, "b": 1 }))
            .await;
        assert_eq!(r.status.as_u16(), *status, "{what}: {}", r.text);
        tokens.push((what.to_string(), t.clone()));
    }
    let a = bearer(&k.rsa.sign(&with_cred));
    let r = gw
        .try_initialize(&[("authorization", &a), ("x-tenant-id", "globex")])
        .await;
    assert_eq!(r.status, 403);
    // A store key with a held credential.
    let s = gw.initialize(&[alice.x_api_key()]).await;
    gw.call(&[alice.x_api_key()], Some(&s), "echo", json!({ "text": "held" }))
        .await
        .ok("held credential");
    // Signed requests, good and bad.
    let mut signatures: Vec<String> = Vec::new();
    let hs_session = hmac_session(&gw).await;
    let body = rpc_bytes(
        gw.id(),
        "tools/call",
        &json!({ "name": "echo", "arguments": { "text": "signed" } }),
    );
    let signed = signed_headers("svc-a", HMAC_SECRET, now_s(), &body);
    post_signed(&gw, &signed, Some(&hs_session), &body).await.ok("signed");
    assert_eq!(post_signed(&gw, &signed, Some(&hs_session), &body).await.status, 401);
    signatures.push(signed[2].1.clone());
    let old = signed_headers("svc-a", HMAC_SECRET, now_s() - 400, &body);
    assert_eq!(post_signed(&gw, &old, Some(&hs_session), &body).await.status, 401);
    signatures.push(old[2].1.clone());
    let fresh = signed_headers("svc-a", HMAC_SECRET, now_s(), &body);
    let other = rpc_bytes(
        gw.id(),
        "tools/call",
        &json!({ "name": "echo", "arguments": { "text": "other" } }),
    );
    assert_eq!(post_signed(&gw, &fresh, Some(&hs_session), &other).await.status, 401);
    signatures.push(fresh[2].1.clone());
    let metrics = gw.get("/metrics", &[]).await;
    assert_eq!(metrics.status, 200);
    // Let the key watcher and any background work log too.
    tokio::time::sleep(Duration::from_millis(50)).await;

    // -- where secrets must not be --
    let audit = gw.audit().await;
    let logs = logs.text();
    let responses = gw.responses();
    let audit_text = audit_text(&audit);
    // The search can fail: each place holds something, including non-secret identifiers.
    assert!(logs.contains("token accepted"), "the JWT trace was captured");
    assert!(logs.contains("signed request accepted"), "the HMAC trace was captured");
    assert!(audit_text.contains("\"jwt\"") && audit_text.contains("\"hmac\""));
    assert!(audit_text.contains("jwt:alice") && audit_text.contains(&alice.key_id));
    assert!(metrics.text.contains("mcpgate_requests"));

    let mut secrets: Vec<(String, String)> = Vec::new();
    for (what, t) in &tokens {
        secrets.push((what.clone(), t.clone()));
        let sig = t.rsplit('.').next().unwrap().to_string();
        secrets.push((format!("{what} signature"), sig));
    }
    for (i, s) in signatures.iter().enumerate() {
        secrets.push((format!("HMAC signature {i}"), s.clone()));
    }
    secrets.extend([
        ("JWT_SECRET".to_string(), JWT_SECRET.to_string()),
        ("HMAC_SECRET".to_string(), HMAC_SECRET.to_string()),
        ("MCPGATE_ENCRYPTION_KEY".to_string(), sealing.clone()),
        ("held credential".to_string(), held.clone()),
        ("fallback credential".to_string(), fallback.clone()),
        ("claim credential".to_string(), claim_cred.clone()),
        ("store key".to_string(), alice.key.clone()),
        ("store key secret".to_string(), alice.secret_part().to_string()),
    ]);
    let leaks = find_leaks(
        &secrets,
        &[
            ("logs", &logs),
            ("audit", &audit_text),
            ("metrics", &metrics.text),
            ("responses", &responses),
        ],
    );
    assert!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n\n"));
}

/// Settles a suspicion from the security review: seed 002's signature covers the timestamp and
/// the body only — not the HTTP method, path, session or `X-Tenant-ID`. What makes that sound:
/// every signature is single-use (whatever it is sent with), the tenant comes from the signing
/// client's configuration (a header that disagrees is refused), and sessions belong to the
/// principal. So a captured signature cannot be moved to another session, method or tenant.
#[tokio::test]
async fn hmac_signature_cannot_be_moved_to_another_session_method_or_tenant() {
    let gw = hmac_gateway().await;
    let s1 = hmac_session(&gw).await;
    let s2 = hmac_session(&gw).await;
    let body = rpc_bytes(
        gw.id(),
        "tools/call",
        &json!({ "name": "echo", "arguments": { "text": "x" } }),
    );
    let signed = signed_headers("svc-a", HMAC_SECRET, now_s(), &body);
    post_signed(&gw, &signed, Some(&s1), &body)
        .await
        .ok("first use, session 1");
    // The same signed bytes into another session of the same client: a replay.
    let r = post_signed(&gw, &signed, Some(&s2), &body).await;
    assert_invalid_token(&r, "moved to another session", &["already used"]);
    // A bodiless request's signature (GET) reused for a DELETE: a replay too.
    let empty = signed_headers("svc-a", HMAC_SECRET, now_s(), b"");
    let mut h: Vec<(&str, &str)> = empty.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    h.push(("mcp-session-id", &s2));
    let first = gw.send_raw("DELETE", "/mcp", &h, Vec::new()).await;
    assert!(
        first.status.is_success(),
        "signed DELETE: {} {}",
        first.status,
        first.text
    );
    let again = gw.send_raw("DELETE", "/mcp", &h, Vec::new()).await;
    assert_eq!(again.status.as_u16(), 401, "{}", again.text);
    // Another tenant named in the header, with a fresh valid signature: refused by tenancy.
    let body = rpc_bytes(
        gw.id(),
        "tools/call",
        &json!({ "name": "echo", "arguments": { "text": "y" } }),
    );
    let mut h = signed_headers("svc-a", HMAC_SECRET, now_s(), &body);
    h.push(("x-tenant-id".into(), "t-other".into()));
    let r = post_signed(&gw, &h, Some(&s1), &body).await;
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (403, Some(code::FORBIDDEN)),
        "{}",
        r.text
    );
}
