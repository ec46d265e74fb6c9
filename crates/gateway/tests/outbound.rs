//! Outbound calls a caller can trigger (auth/outbound.rs): the external key verifier's `GET /me`
//! and token introspection, against a fake vendor on 127.0.0.1 that counts calls, can be slow,
//! can answer 429/500 or an oversize body. A flood of made-up credentials must cost the vendor at
//! most `max_per_second × elapsed + max_concurrent` calls while registry keys keep working; the
//! same credential sent 50 times at once costs one call; a JWT never reaches a key verifier;
//! "no answer" is never cached as "invalid"; unknown JWKS kids cost one fetch per floor.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use futures_util::StreamExt;
use futures_util::future::join_all;
use jsonwebtoken::Algorithm;
use mcpgate_core::jsonrpc::code;
use mcpgate_gateway::auth::jwt::{JwtConfig, JwtVerifier, RawJwt, TokenError, mint_hs256};
use mcpgate_testkit::apikey::*;
use mcpgate_testkit::fake::Mode;
use mcpgate_testkit::harness::*;
use mcpgate_testkit::issuer::Issuer;
use mcpgate_testkit::keys::TestKey;
use mcpgate_testkit::logs::{LogCapture, find_leaks};
use mcpgate_testkit::time::now_s;
use mcpgate_testkit::vendor::Vendor;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The vendor knows keys with this prefix.
const GOOD: &str = "kp_good_";
/// The introspection tokens the issuer says are active.
const GOOD_TOKENS: [&str; 2] = ["good-opaque", "good-token"];
/// Every made-up flood key starts so: a log that never contains it leaked none of them.
const FLOOD: &str = "kp_flood_";
const RESOURCE: &str = "https://gw.test/mcp";

fn random(prefix: &str) -> String {
    format!("{prefix}{:032x}", rand::random::<u128>())
}

// ---- the fake vendor and issuer -----------------------------------------------------------------

/// The vendor: a key with the [`GOOD`] prefix is a user, any other key is refused.
async fn vendor() -> Vendor {
    Vendor::start(|key| {
        key.strip_prefix(GOOD)
            .map(|rest| json!({ "id": format!("u-{}", &rest[..8.min(rest.len())]), "role": "user" }))
    })
    .await
}

/// The vendor's token introspection: [`GOOD_TOKENS`] are active, any other token is not.
async fn introspection() -> Issuer {
    let issuer = Issuer::start(&[]).await;
    for t in GOOD_TOKENS {
        issuer.answer(t, json!({ "active": true, "sub": "intro-user", "scope": "read" }));
    }
    issuer.answer_others(json!({ "active": false, "sub": "intro-user", "scope": "read" }));
    issuer
}

fn external_toml(base: &str, extra: &str) -> String {
    format!(
        "[auth]\nallow_query_key = true\nallow_tool_arg_key = true\n\n[auth.external]\nurl = \"{base}/me\"\n{extra}\n"
    )
}

fn introspection_toml(base: &str, extra: &str) -> String {
    format!(
        "[auth.introspection]\nurl = \"{base}/introspect\"\nclient_id = \"mcpgate\"\n\
         client_secret_env = \"INTROSPECTION_SECRET\"\n{extra}\n"
    )
}

async fn whoami(gw: &Gw, headers: Headers<'_>) -> Resp {
    gw.call(headers, None, "whoami", json!({})).await
}

// ---- the flood --------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct Tally {
    busy: usize,
    unavailable: usize,
    invalid: usize,
    other: Vec<String>,
}

/// What a flood refusal must be: 503 "busy" with `Retry-After`, or 401 for a key the vendor
/// refused. Never 200, never a 503 "unavailable" (the vendor is up).
fn classify(t: &mut Tally, r: &Resp) {
    match r.status.as_u16() {
        503 if r.message().contains("busy") && r.header("retry-after").is_some_and(|s| s.parse::<u64>().is_ok()) => {
            assert!(
                r.header("www-authenticate").is_none(),
                "a busy verifier is no credential problem"
            );
            t.busy += 1;
        }
        503 => t.unavailable += 1,
        401 if r.code() == Some(code::UNAUTHORIZED) => t.invalid += 1,
        _ => t.other.push(format!("{} {}", r.status, r.text)),
    }
}

struct Figures {
    tally: Tally,
    elapsed: Duration,
    probes: Vec<Duration>,
}

/// `n` requests, `concurrency` at a time, each with the headers `make` gives; meanwhile a
/// registry key asks whoami every 5 ms and must get 200 each time.
async fn flood(gw: &Gw, n: usize, concurrency: usize, make: impl Fn() -> (String, String), known: &Issued) -> Figures {
    let done = AtomicBool::new(false);
    let started = Instant::now();
    let requests = async {
        let mut tally = Tally::default();
        let mut stream = futures_util::stream::iter(0..n)
            .map(|_| {
                let (name, value) = make();
                async move {
                    let h = [(name.as_str(), value.as_str())];
                    whoami(gw, &h).await
                }
            })
            .buffer_unordered(concurrency);
        while let Some(r) = stream.next().await {
            classify(&mut tally, &r);
        }
        done.store(true, Ordering::SeqCst);
        (tally, started.elapsed())
    };
    let probe = async {
        let mut latencies = Vec::new();
        while !done.load(Ordering::SeqCst) {
            let t = Instant::now();
            let r = whoami(gw, &[known.x_api_key()]).await;
            latencies.push(t.elapsed());
            assert!(r.is_ok(), "a registry key during the flood: {} {}", r.status, r.text);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        latencies
    };
    let ((tally, elapsed), probes) = tokio::join!(requests, probe);
    Figures { tally, elapsed, probes }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Prints the figures and checks the ceiling: at most `per_second × elapsed + concurrent` calls.
fn report(what: &str, f: &Figures, calls: usize, per_second: u32, concurrent: u32) {
    let mut p = f.probes.clone();
    p.sort();
    let bound = f64::from(per_second) * f.elapsed.as_secs_f64() + f64::from(concurrent);
    println!(
        "{what}: {} requests in {:.2} s → {calls} vendor calls (bound {bound:.1} = {per_second}/s × {:.2} s + {concurrent}); \
         refusals: {} busy (503), {} invalid (401), {} unavailable; registry key: {} probes, all 200, \
         latency p50 {:?} p99 {:?} max {:?}",
        f.tally.busy + f.tally.invalid + f.tally.unavailable + f.tally.other.len(),
        f.elapsed.as_secs_f64(),
        f.elapsed.as_secs_f64(),
        f.tally.busy,
        f.tally.invalid,
        f.tally.unavailable,
        p.len(),
        percentile(&p, 0.5),
        percentile(&p, 0.99),
        p[p.len() - 1],
    );
    assert!(
        f.tally.other.is_empty(),
        "{what}: unexpected answers: {:?}",
        &f.tally.other[..1]
    );
    assert_eq!(f.tally.unavailable, 0, "{what}: the vendor was up");
    assert!(
        calls as f64 <= bound,
        "{what}: {calls} calls exceed the ceiling {bound:.1}"
    );
    assert!(
        calls >= 1 && f.tally.busy > 0,
        "{what}: the flood should both reach the vendor and hit the ceiling"
    );
    assert!(
        p.len() >= 10,
        "{what}: too few probes ({}) to say the registry key kept working",
        p.len()
    );
    assert!(
        p[p.len() - 1] < Duration::from_secs(2),
        "{what}: a registry key waited {:?}",
        p[p.len() - 1]
    );
}

// current_thread: the log capture sees the gateway, the vendor and every task.
#[tokio::test(flavor = "current_thread")]
async fn a_flood_of_unknown_keys_stays_under_the_ceiling_and_registry_keys_keep_working() {
    let logs = LogCapture::install();
    let vendor = vendor().await;
    vendor.delay(100);
    let setup = Setup::new(&external_toml(&vendor.base, ""));
    let known = setup.key(key("registry-user"));
    let gw = setup.start().await;

    let sample = Mutex::new(Vec::new());
    let make = || {
        let k = random(FLOOD);
        let mut s = sample.lock().unwrap();
        if s.len() < 200 {
            s.push(k.clone());
        }
        ("x-api-key".to_string(), k)
    };
    let f = flood(&gw, 10_000, 64, make, &known).await;
    report("external flood (defaults 16 at once, 20/s)", &f, vendor.calls(), 20, 16);
    assert_eq!(
        f.tally.invalid,
        vendor.calls(),
        "each call the vendor answered is one 401"
    );

    let mut secrets: Vec<(String, String)> = sample
        .into_inner()
        .unwrap()
        .into_iter()
        .enumerate()
        .map(|(i, k)| (format!("flood key {i}"), k))
        .collect();
    secrets.push(("registry key".into(), known.key.clone()));
    let log = logs.text();
    let responses = gw.responses();
    let leaks = find_leaks(&secrets, &[("logs", log.as_str()), ("responses", responses.as_str())]);
    assert!(leaks.is_empty(), "{leaks:#?}");
    // Every flood key starts with FLOOD: where the prefix never shows, no flood key does.
    assert!(
        !log.contains(FLOOD) && !responses.contains(FLOOD),
        "a flood key reached the logs or a response"
    );
    assert!(
        log.len() > 1000,
        "the capture saw the gateway's logs ({} bytes)",
        log.len()
    );
}

#[tokio::test]
async fn fifty_callers_with_one_new_key_cost_one_vendor_call() {
    let vendor = vendor().await;
    vendor.delay(300);
    let gw = Setup::new(&external_toml(&vendor.base, "")).start().await;
    let good = random(GOOD);
    let h = [("x-api-key", good.as_str())];
    let answers = join_all((0..50).map(|_| whoami(&gw, &h))).await;
    for r in &answers {
        r.ok("a valid vendor key, 50 at once");
        assert_eq!(
            r.body["result"]["structuredContent"]["auth_method"],
            json!("external_key")
        );
    }
    assert_eq!(vendor.calls(), 1, "one call for 50 concurrent callers");
    whoami(&gw, &h).await.ok("cached");
    assert_eq!(vendor.calls(), 1);
    // A refused key: one call for all, and remembered.
    let bad = random("kp_bad_");
    let h = [("x-api-key", bad.as_str())];
    let answers = join_all((0..50).map(|_| whoami(&gw, &h))).await;
    assert!(answers.iter().all(|r| r.status == 401), "{}", answers[0].text);
    whoami(&gw, &h)
        .await
        .refused("refused key, cached", 401, code::UNAUTHORIZED, &["invalid API key"]);
    assert_eq!(vendor.calls(), 2);
}

// ---- JWTs never reach a key verifier ------------------------------------------------------------

fn a_jwt() -> String {
    let now = now_s();
    mint_hs256(
        b"a-secret-this-gateway-does-not-know-0123456789",
        &json!({ "sub": "x", "aud": RESOURCE, "iat": now, "exp": now + 600 }),
    )
    .unwrap()
}

fn assert_jwt_refused(r: &Resp, what: &str, says: &str) {
    r.refused(what, 401, code::UNAUTHORIZED, &[says]);
    let c = r.header("www-authenticate").unwrap_or_default();
    assert!(c.contains(r#"error="invalid_token""#), "{what}: {c:?}");
}

#[tokio::test]
async fn a_jwt_is_never_sent_to_the_external_verifier_or_introspection() {
    let vendor = vendor().await;
    let issuer = introspection().await;
    let toml = format!(
        "{}\n{}",
        external_toml(&vendor.base, ""),
        introspection_toml(&issuer.base, "")
    );
    let mut setup = Setup::new(&toml);
    setup.env("INTROSPECTION_SECRET", "s3cret");
    let gw = setup.start().await;
    let jwt = a_jwt();
    let as_key = "a JWT was sent where an API key was expected";
    let no_verifier = "a JWT was sent but no JWT verifier is configured";

    assert_jwt_refused(&whoami(&gw, &[("x-api-key", jwt.as_str())]).await, "X-API-Key", as_key);
    let bearer = format!("Bearer {jwt}");
    assert_jwt_refused(
        &whoami(&gw, &[("authorization", bearer.as_str())]).await,
        "bearer",
        no_verifier,
    );
    let r = gw
        .rpc_at(
            &format!("/mcp?api_key={jwt}"),
            &[],
            None,
            "tools/call",
            json!({ "name": "whoami", "arguments": {} }),
        )
        .await;
    assert_jwt_refused(&r, "query", as_key);
    let r = gw.call(&[], None, "whoami", json!({ "api_key": jwt })).await;
    assert_jwt_refused(&r, "tool argument", as_key);
    let r = gw.get("/auth/me", &[("x-api-key", jwt.as_str())]).await;
    assert_eq!(r.status, 401, "/auth/me: {}", r.text);
    assert_eq!(
        (vendor.calls(), issuer.introspections()),
        (0, 0),
        "nothing was sent out"
    );
    assert!(!gw.responses().contains(&jwt), "the JWT echoed back");

    // Opaque tokens and unknown keys still go out (the routing above is not "refuse everything").
    let r = whoami(&gw, &[("authorization", "Bearer good-opaque")]).await;
    r.ok("an opaque bearer token is introspected");
    let good = random(GOOD);
    whoami(&gw, &[("x-api-key", good.as_str())])
        .await
        .ok("an unknown key is sent to the vendor");
    assert_eq!((vendor.calls(), issuer.introspections()), (1, 1));
}

#[tokio::test]
async fn with_a_jwt_verifier_a_bearer_jwt_is_verified_and_a_jwt_as_key_still_refused() {
    const SECRET: &str = "the-gateway-hs256-secret-long-enough-0123456789";
    let vendor = vendor().await;
    let toml = format!(
        "public_url = \"https://gw.test\"\n\n{}\n[auth.jwt]\nsecret_env = \"JWT_SECRET\"\n",
        external_toml(&vendor.base, "")
    );
    let mut setup = Setup::new(&toml);
    setup.env("JWT_SECRET", SECRET);
    let gw = setup.start().await;
    let now = now_s();
    let jwt = mint_hs256(
        SECRET.as_bytes(),
        &json!({ "sub": "alice", "aud": RESOURCE, "iat": now, "exp": now + 600, "scope": "read write" }),
    )
    .unwrap();
    let bearer = format!("Bearer {jwt}");
    let me = whoami(&gw, &[("authorization", bearer.as_str())]).await;
    me.ok("a bearer JWT");
    assert_eq!(me.body["result"]["structuredContent"]["user_id"], json!("alice"));
    let r = whoami(&gw, &[("x-api-key", jwt.as_str())]).await;
    assert_jwt_refused(&r, "X-API-Key", "a JWT was sent where an API key was expected");
    let forged = format!("Bearer {}", a_jwt());
    assert_jwt_refused(
        &whoami(&gw, &[("authorization", forged.as_str())]).await,
        "forged",
        "invalid token",
    );
    assert_eq!(vendor.calls(), 0);
}

// ---- introspection ------------------------------------------------------------------------------

#[tokio::test(flavor = "current_thread")]
async fn a_flood_of_unknown_opaque_tokens_stays_under_the_introspection_ceiling() {
    let issuer = introspection().await;
    issuer.delay(50);
    let mut setup = Setup::new(&introspection_toml(
        &issuer.base,
        "max_concurrent = 4\nmax_per_second = 10",
    ));
    setup.env("INTROSPECTION_SECRET", "s3cret");
    let known = setup.key(key("registry-user"));
    let gw = setup.start().await;
    let make = || ("authorization".to_string(), format!("Bearer {}", random("opaque-")));
    let f = flood(&gw, 10_000, 64, make, &known).await;
    report(
        "introspection flood (4 at once, 10/s)",
        &f,
        issuer.introspections(),
        10,
        4,
    );
    // A registry key as a bearer never reaches introspection either.
    let before = issuer.introspections();
    let b = format!("Bearer {}", known.key);
    whoami(&gw, &[("authorization", b.as_str())])
        .await
        .ok("registry key as bearer");
    assert_eq!(issuer.introspections(), before);
}

// ---- no answer is not "invalid" -----------------------------------------------------------------

#[tokio::test]
async fn vendor_down_rate_limiting_or_oversize_is_503_and_never_cached_as_invalid() {
    let vendor = vendor().await;
    let gw = Setup::new(&external_toml(&vendor.base, "")).start().await;
    let good = random(GOOD);
    let bad = random("kp_bad_");
    for (mode, what) in [
        (Mode::Failing, "vendor 500"),
        (Mode::Limited, "vendor 429"),
        (Mode::Huge, "1 MiB answer"),
    ] {
        vendor.set_mode(mode);
        for k in [&good, &bad] {
            let r = whoami(&gw, &[("x-api-key", k.as_str())]).await;
            r.refused(what, 503, code::UPSTREAM_UNAVAILABLE, &["unavailable", "retry"]);
            assert!(r.header("retry-after").is_some(), "{what}: Retry-After");
            assert!(
                r.header("www-authenticate").is_none(),
                "{what}: not a credential problem"
            );
        }
    }
    assert_eq!(vendor.calls(), 6, "each attempt asked again: nothing was cached");
    vendor.set_mode(Mode::Up);
    whoami(&gw, &[("x-api-key", good.as_str())])
        .await
        .ok("the good key once the vendor is back");
    let r = whoami(&gw, &[("x-api-key", bad.as_str())]).await;
    r.refused(
        "the bad key once the vendor is back",
        401,
        code::UNAUTHORIZED,
        &["invalid API key"],
    );
    assert_eq!(vendor.calls(), 8);

    // The same for introspection.
    let issuer = introspection().await;
    let mut setup = Setup::new(&introspection_toml(&issuer.base, ""));
    setup.env("INTROSPECTION_SECRET", "s3cret");
    let gw = setup.start().await;
    issuer.set_mode(Mode::Limited);
    let r = whoami(&gw, &[("authorization", "Bearer good-token")]).await;
    assert_eq!(r.status, 503, "introspection rate-limited: {}", r.text);
    issuer.set_mode(Mode::Huge);
    assert_eq!(whoami(&gw, &[("authorization", "Bearer good-token")]).await.status, 503);
    issuer.set_mode(Mode::Up);
    whoami(&gw, &[("authorization", "Bearer good-token")])
        .await
        .ok("introspection back");
}

#[tokio::test]
async fn ceilings_are_configured_per_verifier_and_checked() {
    let vendor = vendor().await;
    vendor.delay(300);
    let gw = Setup::new(&external_toml(
        &vendor.base,
        "max_concurrent = 2\nmax_per_second = 1000",
    ))
    .start()
    .await;
    let keys: Vec<String> = (0..5).map(|_| random(GOOD)).collect();
    let answers = join_all(keys.iter().map(|k| {
        let gw = &gw;
        async move { whoami(gw, &[("x-api-key", k.as_str())]).await }
    }))
    .await;
    let ok = answers.iter().filter(|r| r.is_ok()).count();
    let busy: Vec<&Resp> = answers.iter().filter(|r| r.status == 503).collect();
    assert_eq!((ok, busy.len(), vendor.calls()), (2, 3, 2), "two at once");
    busy[0].refused(
        "past max_concurrent",
        503,
        code::UPSTREAM_UNAVAILABLE,
        &["busy", "retry after 1 s"],
    );
    assert_eq!(busy[0].header("retry-after"), Some("1"));

    use mcpgate_gateway::auth::introspect::IntrospectionVerifier;
    use mcpgate_gateway::auth::outbound::SystemClock;
    use mcpgate_gateway::config::{Config, raw::RawConfig};
    let upstream = "[upstream]\nurl = \"http://127.0.0.1:9/mcp\"\n";
    for (extra, field) in [
        ("max_concurrent = 0", "auth.external.max_concurrent"),
        ("max_per_second = 1000000", "auth.external.max_per_second"),
    ] {
        let raw = RawConfig::from_toml(&format!("{upstream}{}", external_toml(&vendor.base, extra))).unwrap();
        let e = Config::validate(raw).unwrap_err().to_string();
        assert!(e.starts_with(field), "{e}");
    }
    let raw = RawConfig::from_toml(&introspection_toml(&vendor.base, "max_per_second = 0")).unwrap();
    let section = raw.auth.introspection.unwrap();
    assert_eq!(section.max_per_second, Some(0));
    let e = IntrospectionVerifier::from_section(section, Arc::new(SystemClock), &|_| Some("s".into()))
        .err()
        .unwrap();
    assert!(e.starts_with("auth.introspection.max_per_second"), "{e}");
    let typo = RawConfig::from_toml(&introspection_toml(&vendor.base, "max_concurent = 2"));
    assert!(
        typo.is_err_and(|e| e.to_string().contains("max_concurent")),
        "unknown keys are still refused"
    );
}

// ---- JWKS: one fetch per floor under concurrency -------------------------------------------------

fn ed_claims(now: i64) -> Value {
    json!({ "sub": "alice", "aud": RESOURCE, "iat": now, "exp": now + 600, "scope": "read" })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kids_at_once_cost_one_jwks_fetch_per_floor() {
    let key = TestKey::ed("real");
    let issuer = Issuer::start(&[&key]).await;
    issuer.delay(50);
    let toml = format!(
        "public_url = \"https://gw.test\"\n\n[auth.jwt]\njwks_url = \"{}/jwks\"\n",
        issuer.base
    );
    let gw = Arc::new(Setup::new(&toml).start().await);
    let round = |gw: Arc<Gw>| {
        let tokens: Vec<String> = (0..200)
            .map(|_| key.sign_as(Algorithm::EdDSA, Some(&random("kid-")), &ed_claims(now_s())))
            .collect();
        async move {
            let tasks = tokens.into_iter().map(|t| {
                let gw = gw.clone();
                tokio::spawn(async move {
                    let b = format!("Bearer {t}");
                    whoami(&gw, &[("authorization", b.as_str())]).await.status
                })
            });
            for s in join_all(tasks).await {
                assert_eq!(s.unwrap(), 401);
            }
        }
    };
    round(gw.clone()).await;
    assert_eq!(issuer.jwks_fetches(), 1, "cold: one fetch for 200 unknown kids");
    round(gw.clone()).await;
    assert_eq!(issuer.jwks_fetches(), 1, "within the floor: none");
    let b = format!("Bearer {}", key.sign(&ed_claims(now_s())));
    whoami(&gw, &[("authorization", b.as_str())]).await.ok("the real kid");
    assert_eq!(issuer.jwks_fetches(), 1);

    // Across floors, with the time given (no sleeping): parallel tasks, one fetch per floor.
    let raw = RawJwt {
        jwks_url: Some(format!("{}/jwks", issuer.base)),
        ..RawJwt::default()
    };
    let v = Arc::new(JwtVerifier::new(JwtConfig::validate(raw, RESOURCE, &|_| None).unwrap()).unwrap());
    let now = now_s();
    let before = issuer.jwks_fetches();
    for (at, fetches) in [(now, 1), (now + 10, 1), (now + 31, 2), (now + 45, 2), (now + 62, 3)] {
        let tasks = (0..200).map(|_| {
            let v = v.clone();
            let t = key.sign_as(Algorithm::EdDSA, Some(&random("kid-")), &ed_claims(now));
            tokio::spawn(async move { v.verify(&t, at).await })
        });
        for r in join_all(tasks).await {
            assert_eq!(r.unwrap().unwrap_err(), TokenError::Invalid("unknown_kid"));
        }
        let seen = issuer.jwks_fetches() - before;
        println!("JWKS: 200 unknown kids at now+{} → {seen} fetches so far", at - now);
        assert_eq!(seen, fetches, "at now+{}", at - now);
    }
}
