//! Micro-benchmarks of token authentication: what one request costs the gateway to verify a JWT
//! (HS256, RS256, ES256, EdDSA) on a cache miss and on a hit, and an HMAC-signed request
//! (signature over a 1 KiB body, the replay cache, and the two together as the gateway runs
//! them). Keys are generated at start; the asymmetric verifiers get their keys from a JWKS served
//! on loopback by this process and fetched once before measuring.
//! Run: `cargo bench -p mcpgate-gateway --bench tokens`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use divan::{Bencher, black_box};
use jsonwebtoken::{Algorithm, EncodingKey};
use mcpgate_core::hmac as core_hmac;
use mcpgate_gateway::auth::hmac::{HmacAuth, RawHmac, RawHmacClient};
use mcpgate_gateway::auth::jwt::{JwtConfig, JwtVerifier, RawJwt};
use mcpgate_store::ReplayStore;
use mcpgate_store::memory::MemoryStore;
use mcpgate_testkit::keys::TestKey;
use serde_json::{Value, json};
use std::future::Future;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};

fn main() {
    divan::main();
}

const RESOURCE: &str = "http://127.0.0.1:3210/mcp";
const JWT_SECRET: &str = "bench-jwt-secret-0123456789abcdef-0123456789abcdef";
const HMAC_SECRET: &str = "bench-hmac-secret-0123456789abcdef";
const ALGS: [&str; 4] = ["HS256", "RS256", "ES256", "EdDSA"];

fn env(name: &str) -> Option<String> {
    match name {
        "JWT_SECRET" => Some(JWT_SECRET.into()),
        "HMAC_SECRET" => Some(HMAC_SECRET.into()),
        _ => None,
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Runs a future that completes without waiting (a verify whose keys are already fetched):
/// polled once, so the measurement holds no executor overhead.
fn ready<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("verify waited (the JWKS should have been fetched before)"),
    }
}

// ---- keys and tokens ----------------------------------------------------------------------------

/// A benchmark key: the test kit's key pairs, plus the HS256 shared secret (no JWK).
fn signing_key(alg: Algorithm) -> TestKey {
    match alg {
        Algorithm::HS256 => TestKey {
            kid: String::new(),
            alg,
            key: EncodingKey::from_secret(JWT_SECRET.as_bytes()),
            jwk: Value::Null,
            public_pem: None,
        },
        Algorithm::RS256 => TestKey::rsa("rsa"),
        Algorithm::ES256 => TestKey::ec("ec"),
        Algorithm::EdDSA => TestKey::ed("ed"),
        other => panic!("no key for {other:?}"),
    }
}

/// A token the gateway accepts (audience = its resource, long expiry); `jti` makes it unique.
fn token(k: &TestKey, jti: u64) -> String {
    let t = now();
    let claims = json!({
        "sub": "bench", "aud": RESOURCE, "scope": "read write", "permissions": ["*"],
        "iat": t, "exp": t + 86_400, "jti": jti.to_string(),
    });
    k.sign_as(k.alg, (!k.kid.is_empty()).then_some(k.kid.as_str()), &claims)
}

/// Everything the JWT benchmarks share: the keys, a loopback JWKS server, and the runtime it
/// runs on (also entered while verifying, as in the gateway).
struct Fixture {
    rt: tokio::runtime::Runtime,
    jwks_url: String,
    keys: Vec<TestKey>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
        let keys: Vec<TestKey> = [Algorithm::HS256, Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA]
            .into_iter()
            .map(signing_key)
            .collect();
        let doc = json!({ "keys": keys.iter().filter(|k| k.alg != Algorithm::HS256).map(|k| k.jwk.clone()).collect::<Vec<_>>() });
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let jwks_url = format!("http://{}/jwks", listener.local_addr().unwrap());
        let app = axum::Router::new().route("/jwks", axum::routing::get(move || async move { axum::Json(doc) }));
        rt.spawn(async move { axum::serve(listener, app).await });
        Fixture { rt, jwks_url, keys }
    })
}

fn key(alg: &str) -> &'static TestKey {
    let alg: Algorithm = alg.parse().unwrap();
    fixture().keys.iter().find(|k| k.alg == alg).unwrap()
}

/// A verifier as `[auth.jwt]` builds it: `secret_env` for HS256, `jwks_url` otherwise (keys
/// fetched now), with only `alg` allowed.
fn verifier(alg: &str) -> JwtVerifier {
    let f = fixture();
    let raw = if alg == "HS256" {
        RawJwt {
            secret_env: Some("JWT_SECRET".into()),
            algorithms: Some(vec![alg.into()]),
            ..Default::default()
        }
    } else {
        RawJwt {
            jwks_url: Some(f.jwks_url.clone()),
            algorithms: Some(vec![alg.into()]),
            ..Default::default()
        }
    };
    let v = JwtVerifier::new(JwtConfig::validate(raw, RESOURCE, &env).unwrap()).unwrap();
    f.rt.block_on(v.prefetch(now())).unwrap();
    v
}

// ---- JWT ----------------------------------------------------------------------------------------

/// A token seen before: the verified-token cache answers (SHA-256 of the token, a map lookup,
/// a clone of the principal). What every request after the first costs with one token.
#[divan::bench(args = ALGS)]
fn jwt_verify_cached(bencher: Bencher, alg: &str) {
    let v = verifier(alg);
    let token = token(key(alg), 0);
    let _rt = fixture().rt.enter();
    let t = now();
    ready(v.verify(&token, t)).unwrap();
    bencher.bench_local(|| ready(v.verify(black_box(&token), t)).unwrap());
}

/// A token never seen before (a unique `jti` each iteration; minting is not measured): the
/// full check — header, key lookup, signature, claims, principal — plus the cache insert.
#[divan::bench(args = ALGS, sample_count = 200, sample_size = 10)]
fn jwt_verify_cold(bencher: Bencher, alg: &str) {
    let v = verifier(alg);
    let k = key(alg);
    let _rt = fixture().rt.enter();
    let t = now();
    static JTI: AtomicU64 = AtomicU64::new(1);
    bencher
        .with_inputs(|| token(k, JTI.fetch_add(1, Ordering::Relaxed)))
        .bench_local_refs(|token| ready(v.verify(token, t)).unwrap());
}

// ---- HMAC ---------------------------------------------------------------------------------------

fn body_1k(n: u64) -> Vec<u8> {
    let mut b =
        format!(r#"{{"jsonrpc":"2.0","id":{n},"method":"tools/call","params":{{"name":"echo","arguments":{{"text":""#)
            .into_bytes();
    b.resize(1024 - 4, b'x');
    b.extend_from_slice(br#""}}}"#);
    b
}

/// `mcpgate_core::hmac::verify`: timestamp window, hex decode, HMAC-SHA256 over a 1 KiB body,
/// constant-time compare.
#[divan::bench]
fn hmac_verify_1k(bencher: Bencher) {
    let body = body_1k(1);
    let t = now();
    let ts = t.to_string();
    let sig = core_hmac::sign(HMAC_SECRET.as_bytes(), &ts, &body);
    bencher.bench_local(|| {
        core_hmac::verify(
            HMAC_SECRET.as_bytes(),
            black_box(&ts),
            black_box(&body),
            black_box(&sig),
            t,
            300,
        )
        .unwrap()
    });
}

/// What a client pays to sign a 1 KiB request (the load generator does this per request).
#[divan::bench]
fn hmac_sign_1k(bencher: Bencher) {
    let body = body_1k(1);
    let ts = now().to_string();
    bencher.bench_local(|| core_hmac::sign(HMAC_SECRET.as_bytes(), black_box(&ts), black_box(&body)));
}

fn unique_sig(n: u64) -> [u8; 32] {
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&n.to_le_bytes());
    s[8..16].copy_from_slice(&n.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
    s
}

/// A replay cache already holding `n` live signatures, their expiry spread over the window as a
/// steady signed request rate leaves them (the gateway remembers each one until its timestamp
/// leaves the window: up to 2 × skew + 1 = 601 s, so it holds ~601 × the signed request rate).
fn replay_cache(n: u64, t: i64) -> MemoryStore {
    let c = MemoryStore::new();
    for i in 0..n {
        assert!(ready(c.claim(&unique_sig(u64::MAX - i), t + 1 + (i % 601) as i64, t)).unwrap());
    }
    c
}

/// Recording a new signature while the store holds `n` live ones, within the same second (no
/// expiry): a SHA-256 and a hash insert under one of 16 shard mutexes.
#[divan::bench(args = [1_000, 100_000, 1_000_000], sample_count = 100, sample_size = 100)]
fn replay_first_use(bencher: Bencher, n: u64) {
    let t = now();
    let c = replay_cache(n, t);
    let mut i = 0u64;
    bencher.bench_local(|| {
        i += 1;
        ready(c.claim(&unique_sig(i), t + 601, t)).unwrap()
    });
}

/// Signatures expiring as the clock moves on 16 s per iteration: the store forgets the entries
/// whose expiry passed (read in expiry order, no scan of the live ones), then inserts.
#[divan::bench(args = [100_000, 1_000_000], sample_count = 30, sample_size = 1)]
fn replay_first_use_sweep(bencher: Bencher, n: u64) {
    let t = now();
    let c = replay_cache(n, t);
    let mut i = 0u64;
    bencher.bench_local(|| {
        i += 1;
        let now = t + 16 * i as i64;
        ready(c.claim(&unique_sig(i), now + 601, now)).unwrap()
    });
}

/// The gateway's whole check of a signed request (`HmacAuth::verify`: client lookup, signature
/// over the 1 KiB body, replay cache insert, principal clone), each iteration a new body.
#[divan::bench(sample_count = 100, sample_size = 200)]
fn hmac_auth_verify_1k(bencher: Bencher) {
    let auth = HmacAuth::new(
        RawHmac {
            clients: vec![RawHmacClient {
                id: "bench".into(),
                secret_env: "HMAC_SECRET".into(),
                permissions: vec!["*".into()],
                ..Default::default()
            }],
            ..Default::default()
        },
        &env,
    )
    .unwrap();
    let t = now();
    let ts = t.to_string();
    static N: AtomicU64 = AtomicU64::new(0);
    bencher
        .with_inputs(|| {
            let body = body_1k(N.fetch_add(1, Ordering::Relaxed));
            let sig = core_hmac::sign(HMAC_SECRET.as_bytes(), &ts, &body);
            (body, sig)
        })
        .bench_local_refs(|(body, sig)| ready(auth.verify("bench", &ts, sig, body, t)).unwrap());
}
