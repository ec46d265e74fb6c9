//! Micro-benchmarks of the per-request decision: key verification, policy, rate limit, and the
//! three together (what the gateway adds to every call before forwarding it).
//! Run: `cargo bench -p mcpgate-core --bench decision`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use divan::black_box;
use mcpgate_core::jsonrpc::Message;
use mcpgate_core::keys::{self, KeyIndex, KeyRecord};
use mcpgate_core::policy::{Policy, Rule};
use mcpgate_core::principal::{AuthMethod, Limits, Role};
use mcpgate_core::ratelimit::{LocalLimiter, Now, RateLimiter};

fn main() {
    divan::main();
}

fn index(n: usize) -> (KeyIndex, String) {
    let mut records = Vec::with_capacity(n);
    let mut last = String::new();
    for i in 0..n {
        let k = keys::generate();
        records.push(KeyRecord {
            key_id: k.key_id.clone(),
            hash: k.hash.clone(),
            name: format!("k{i}"),
            user_id: format!("u{i}"),
            tenant: None,
            role: Role::User,
            permissions: vec!["read".into(), "write".into()],
            limits: Limits {
                per_minute: Some(1_000_000),
                per_hour: Some(100_000_000),
                per_day: None,
            },
            expires_at: None,
            created_at: 0,
            revoked: false,
            source: "store".into(),
        });
        last = k.key.expose().to_string();
    }
    (KeyIndex::new(records), last)
}

/// `rules` per-tool rules: literal names (`tool_7`) or wildcard patterns (`tool_7_*`).
fn policy(rules: usize, wildcard: bool) -> Policy {
    Policy::new(
        (0..rules)
            .map(|i| {
                let name = if wildcard {
                    format!("tool_{i}_*")
                } else {
                    format!("tool_{i}")
                };
                Rule {
                    tools: vec![name],
                    permissions: vec!["write".into()],
                    ..Rule::default()
                }
            })
            .collect(),
    )
}

const BODY: &[u8] =
    br#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello world"}}}"#;

#[divan::bench]
fn parse_tools_call() -> usize {
    let m = Message::parse(black_box(BODY)).unwrap();
    m.target().map(|t| t.len()).unwrap_or(0)
}

#[divan::bench(args = [1_000, 100_000])]
fn verify_key(bencher: divan::Bencher, n: usize) {
    let (idx, key) = index(n);
    bencher.bench_local(|| idx.verify(black_box(&key), 1).is_ok());
}

#[divan::bench(args = [10, 10_000])]
fn policy_decide_literal_rules(bencher: divan::Bencher, rules: usize) {
    policy_decide(bencher, rules, false);
}

#[divan::bench(args = [10, 10_000])]
fn policy_decide_wildcard_rules(bencher: divan::Bencher, rules: usize) {
    policy_decide(bencher, rules, true);
}

fn policy_decide(bencher: divan::Bencher, rules: usize, wildcard: bool) {
    let p = policy(rules, wildcard);
    let (idx, key) = index(1);
    let principal = idx.verify(&key, 1).unwrap().principal(AuthMethod::ApiKey);
    bencher.bench_local(|| p.decide(Some(black_box(&principal)), "tools/call", Some("echo")));
}

#[divan::bench]
fn rate_limit_check(bencher: divan::Bencher) {
    let l = LocalLimiter::default();
    let limits = Limits {
        per_minute: Some(u32::MAX),
        per_hour: Some(u32::MAX),
        per_day: Some(u32::MAX),
    };
    let mut t = 0i64;
    bencher.bench_local(|| {
        t += 1;
        l.check("key:abc", &limits, None, Now { mono_us: t, unix_s: 1 }).is_ok()
    });
}

/// Parse, authenticate, authorize and rate-limit one tools/call: the gateway's decision.
#[divan::bench]
fn full_decision(bencher: divan::Bencher) {
    let (idx, key) = index(10_000);
    let p = policy(10, false);
    let l = LocalLimiter::default();
    let mut t = 0i64;
    bencher.bench_local(|| {
        t += 1;
        let m = Message::parse(black_box(BODY)).unwrap();
        let target = m.target();
        let rec = idx.verify(black_box(&key), 1).unwrap();
        let principal = rec.principal(AuthMethod::ApiKey);
        let d = p.decide(Some(&principal), m.method(), target);
        let ok = l
            .check(principal.id(), &principal.limits(), None, Now { mono_us: t, unix_s: 1 })
            .is_ok();
        (d, ok)
    });
}
