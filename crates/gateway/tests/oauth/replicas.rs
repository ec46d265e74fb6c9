//! Two gateways on one PostgreSQL database (issue #13's first step, `store.url`): what one
//! writes, the other reads. A client registered through A is known to B; an authorization code
//! issued by A is redeemed at B, once only; the token works at both (the signing keys sealed in
//! the shared store); a key revoked in the shared store is refused by both within seconds. The
//! database is a throwaway PostgreSQL on loopback (`mcpgate_store::postgres::testing`).

use crate::*;
use mcpgate_gateway::Gateway;
use mcpgate_gateway::clock::{Clock, ManualClock};
use mcpgate_gateway::config::Config;
use mcpgate_gateway::config::raw::{Overrides, RawConfig};
use mcpgate_gateway::server::{Sources, Stores};
use mcpgate_store::KeyStore;
use mcpgate_testkit::apikey::{key, new_key};
use mcpgate_testkit::harness::*;
use std::sync::Arc;
use std::time::Duration;

const SEAL: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

const HMAC_SECRET: &str = "SECRET-replicas-hmac-7c1e0b55d2";
/// One HMAC client, `signer`, whose secret is [`HMAC_SECRET`].
const HMAC_TOML: &str =
    "[auth.hmac]\n[[auth.hmac.clients]]\nid = \"signer\"\nsecret_env = \"HMAC_SECRET\"\npermissions = [\"*\"]\n";

/// A gateway on the database at `url`, as `store.url` makes one.
async fn replica(url: &str, upstream: &str) -> Gw {
    replica_with(url, upstream, "", Arc::new(mcpgate_gateway::clock::SystemClock)).await
}

/// A gateway on the database at `url` with `more` configuration (e.g. `[redis]`), on `clock`.
async fn replica_with(url: &str, upstream: &str, more: &str, clock: Arc<dyn Clock>) -> Gw {
    replica_on(Stores::postgres(url).await.unwrap(), upstream, more, clock).await
}

/// A gateway on `stores` (plus Redis when `more` has a `[redis]` section), on `clock`, in front of
/// the HTTP `upstream` (or of the stdio command `more` names when `upstream` is not a URL).
pub(crate) async fn replica_on(stores: Stores, upstream: &str, more: &str, clock: Arc<dyn Clock>) -> Gw {
    replica_and_stores(stores, upstream, more, clock).await.0
}

/// As [`replica_on`], with the stores the gateway runs on (Redis added): its key service is
/// `KeyService::for_stores` on them.
async fn replica_and_stores(mut stores: Stores, upstream: &str, more: &str, clock: Arc<dyn Clock>) -> (Gw, Stores) {
    let mut raw = RawConfig::from_toml(&format!("{TOML}signing_key_env = \"SEAL\"\n{more}")).unwrap();
    // (An `upstream` that is not a URL: `more` names a stdio command.)
    if upstream.starts_with("http") {
        raw.apply_overrides(&Overrides {
            upstream_url: Some(upstream.to_string()),
            ..Overrides::default()
        });
    }
    let config = Config::validate(raw).unwrap();
    let env = |k: &str| match k {
        "SEAL" => Some(SEAL.to_string()),
        "HMAC_SECRET" => Some(HMAC_SECRET.to_string()),
        _ => None,
    };
    if let Some(redis) = &config.redis {
        stores = stores.with_redis(redis, clock.clone()).unwrap();
    }
    let gw = Gateway::assemble(config, &env, Sources::with_clock(clock), stores.clone())
        .await
        .unwrap();
    (Gw::on(gw, upstream.to_string()), stores)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_gateways_on_one_postgres_agree() {
    let Some(pg) = mcpgate_store::postgres::testing::server("two_gateways_on_one_postgres_agree") else {
        return;
    };
    let url = pg.fresh_database().await;
    let upstream = start_demo().await;
    let store = mcpgate_store::postgres::PostgresStore::connect(&url).await.unwrap();
    let (record, ana) = new_key(&key("ana").perms(&["read", "tools:echo"]));
    store.insert_key(&record).await.unwrap();
    let a = replica(&url, &upstream).await;
    let b = replica(&url, &upstream).await;
    let h = [("x-api-key", ana.key.as_str())];
    assert_eq!(a.whoami(&h).await["user_id"], "ana");
    assert_eq!(b.whoami(&h).await["user_id"], "ana");

    // OAuth across the two: registered at A, code from A, redeemed at B, once.
    let client = public_client(&a).await;
    let code = code_for(&a, &client, &ana.key).await;
    let t = exchange(&b, &client, &code, VERIFIER).await;
    assert_eq!(t.status, 200, "a code issued by A was not redeemed at B: {}", t.text);
    let at = t.body["access_token"].as_str().unwrap().to_string();
    let bearer = format!("Bearer {at}");
    for g in [&a, &b] {
        let who = g.whoami(&[("authorization", bearer.as_str())]).await;
        assert_eq!(who["user_id"], "ana", "{who}");
    }
    let again = exchange(&a, &client, &code, VERIFIER).await;
    assert_eq!(again.status, 400, "a code was redeemed twice: {}", again.text);

    // Revoked in the shared store (what `mcpgate keys revoke` does there): both refuse it.
    assert!(store.revoke_key(&record.key_id).await.unwrap());
    for (name, g) in [("A", &a), ("B", &b)] {
        let mut refused = false;
        for _ in 0..50 {
            if g.call(&h, None, "whoami", serde_json::json!({})).await.status == 401 {
                refused = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            refused,
            "gateway {name} still accepts a key revoked in the shared store"
        );
    }
}

/// Two gateways on one PostgreSQL and one Redis (issue #13): a per-key limit is one limit under
/// load split between them; a key revoked in the store is refused by the other within a second
/// (the figure is printed); a refresh token rotated at A and then presented at B is a reuse that
/// ends the family at both; an HMAC signature accepted at A is a replay at B; a session opened
/// through A continues through B (HTTP upstream), and ended through B is refused by A at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_gateways_on_postgres_and_redis_agree() {
    let test = "two_gateways_on_postgres_and_redis_agree";
    let Some(pg) = mcpgate_store::postgres::testing::server(test) else {
        return;
    };
    let Some(redis) = mcpgate_store::redis::testing::server(test) else {
        return;
    };
    let url = pg.fresh_database().await;
    let upstream = start_demo().await;
    let store = mcpgate_store::postgres::PostgresStore::connect(&url).await.unwrap();
    const LIMIT: u32 = 100;
    let (limited, lim) = new_key(&key("lim").perms(&["*"]).limits(mcpgate_core::principal::Limits {
        per_minute: Some(LIMIT),
        ..Default::default()
    }));
    let (record, ana) = new_key(&key("ana").perms(&["*"]));
    store.insert_key(&limited).await.unwrap();
    store.insert_key(&record).await.unwrap();
    // One frozen clock for both: the limit's count is then exact, not "within the refill".
    let manual = Arc::new(ManualClock::starting_now());
    let clock: Arc<dyn Clock> = manual.clone();
    let more = format!(
        "[redis]\nurl = \"{}\"\nprefix = \"{}\"\n{HMAC_TOML}",
        redis.url(),
        redis.fresh_prefix()
    );
    let a = replica_with(&url, &upstream, &more, clock.clone()).await;
    let b = replica_with(&url, &upstream, &more, clock.clone()).await;

    // The limit: 3 × LIMIT requests at once, alternating between A and B.
    let h = [("x-api-key", lim.key.as_str())];
    let calls = (0..3 * LIMIT).map(|i| {
        let g = if i % 2 == 0 { &a } else { &b };
        async move { g.call(&h, None, "whoami", serde_json::json!({})).await.status }
    });
    let statuses = futures_util::future::join_all(calls).await;
    let admitted = statuses.iter().filter(|s| **s == 200).count();
    let limited_n = statuses.iter().filter(|s| **s == 429).count();
    println!(
        "limit {LIMIT}/min across two replicas: {admitted} admitted, {limited_n} refused of {}",
        3 * LIMIT
    );
    assert_eq!(admitted, LIMIT as usize, "statuses: {statuses:?}");
    assert_eq!(limited_n, 2 * LIMIT as usize, "statuses: {statuses:?}");

    // An HMAC signature accepted at A is a replay at B.
    let body = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"whoami","arguments":{}}}"#.to_vec();
    let ts = clock.unix_s().to_string();
    let sig = mcpgate_core::hmac::sign(HMAC_SECRET.as_bytes(), &ts, &body);
    let signed = [
        ("x-api-key", "signer"),
        ("x-timestamp", ts.as_str()),
        ("x-signature", sig.as_str()),
    ];
    let first = a.post_raw("/mcp", &signed, body.clone()).await;
    assert_eq!(first.status, 200, "a signed request was refused at A: {}", first.text);
    let replayed = b.post_raw("/mcp", &signed, body.clone()).await;
    assert_eq!(
        replayed.status, 401,
        "a signature accepted at A was accepted again at B: {}",
        replayed.text
    );
    assert!(replayed.text.contains("already used"), "{}", replayed.text);

    // A session opened through A continues through B (the HTTP upstream's session, shared owner).
    let ha = [("x-api-key", ana.key.as_str())];
    let session = a.initialize(&ha).await;
    let through_b = b
        .call(&ha, Some(&session), "echo", serde_json::json!({"text": "via B"}))
        .await;
    assert_eq!(
        through_b.status, 200,
        "a session opened at A is unknown at B: {}",
        through_b.text
    );
    let lim_h = [("x-api-key", lim.key.as_str())];
    let stolen = b
        .call(&lim_h, Some(&session), "echo", serde_json::json!({"text": "x"}))
        .await;
    assert_ne!(
        stolen.status, 200,
        "another principal used ana's session through B: {}",
        stolen.text
    );

    // Ended through B: A, which opened it and remembers its owner (for up to a second), hears
    // the ending over Redis and refuses it itself, well inside that second.
    let fresh = a
        .call(&ha, Some(&session), "echo", serde_json::json!({"text": "x"}))
        .await;
    assert_eq!(fresh.status, 200, "{}", fresh.text);
    let del = b
        .delete(
            "/mcp",
            &[("x-api-key", ana.key.as_str()), ("mcp-session-id", session.as_str())],
        )
        .await;
    assert!(del.status.is_success(), "DELETE through B: {} {}", del.status, del.text);
    let ended = std::time::Instant::now();
    loop {
        let r = a
            .call(&ha, Some(&session), "echo", serde_json::json!({"text": "x"}))
            .await;
        // The gateway's own refusal, not the upstream's (which forgot the session too).
        if r.status == 404 && r.text.contains("send initialize again") {
            break;
        }
        assert!(
            ended.elapsed() < std::time::Duration::from_millis(700),
            "a session ended at B still passed A's session check after {:?}: {} {}",
            ended.elapsed(),
            r.status,
            r.text
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    println!("a session ended at B was refused by A after {:?}", ended.elapsed());

    // Refresh: rotated at A, the old token presented at B is a reuse that ends the family.
    let client = public_client(&a).await;
    let code = code_for(&a, &client, &ana.key).await;
    let t = exchange(&b, &client, &code, VERIFIER).await;
    assert_eq!(t.status, 200, "{}", t.text);
    let first_refresh = t.body["refresh_token"].as_str().unwrap().to_string();
    let rotated = refresh(&a, &client, &first_refresh).await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let second_refresh = rotated.body["refresh_token"].as_str().unwrap().to_string();
    manual.advance(Duration::from_secs(30));
    let reused = refresh(&b, &client, &first_refresh).await;
    oauth_error(&reused, 400, "invalid_grant");
    let after = refresh(&a, &client, &second_refresh).await;
    oauth_error(&after, 400, "invalid_grant");

    // Revoked in the shared store: refused by both, and how soon.
    let started = std::time::Instant::now();
    assert!(store.revoke_key(&record.key_id).await.unwrap());
    for (name, g) in [("A", &a), ("B", &b)] {
        while g.call(&ha, None, "whoami", serde_json::json!({})).await.status != 401 {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "gateway {name} still accepts a key revoked in the shared store after 5 s"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let took = started.elapsed();
    println!(
        "revoked in the shared store → refused by both replicas in {} ms",
        took.as_millis()
    );
    assert!(
        took < Duration::from_secs(1),
        "a revoke took {took:?} to reach both replicas"
    );
    // (The refresh tokens are in the token responses, where they belong.)
    for secret in [lim.key.as_str(), ana.key.as_str(), HMAC_SECRET] {
        for (name, g) in [("A", &a), ("B", &b)] {
            assert!(!g.responses().contains(secret), "a secret in a response of {name}");
        }
    }
}

/// Redis stopped under a running gateway, then started again: with `on_error = "deny"` a limited
/// call is refused with 503 and `Retry-After`, with `"allow_local"` it is counted here and goes
/// through; a signed (HMAC) request is refused with 503 either way (replay checks fail closed);
/// `/readyz` names Redis as down and stays 200 (the upstream answers); once Redis is back, the
/// same gateway counts in it again — no restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_gateway_survives_redis_stopping_and_recovers_when_it_returns() {
    let test = "a_gateway_survives_redis_stopping";
    let Some(redis) = mcpgate_store::redis::testing::Server::start_own(test) else {
        return;
    };
    let upstream = start_demo().await;
    for on_error in ["deny", "allow_local"] {
        let more = format!(
            "[redis]\nurl = \"{}\"\non_error = \"{on_error}\"\nprefix = \"{on_error}:\"\n{HMAC_TOML}",
            redis.url()
        );
        let clock: Arc<dyn Clock> = Arc::new(mcpgate_gateway::clock::SystemClock);
        let stores = Stores::memory();
        let (record, k) = new_key(&key("lim").perms(&["*"]).limits(mcpgate_core::principal::Limits {
            per_minute: Some(1000),
            ..Default::default()
        }));
        stores.keys.insert_key(&record).await.unwrap();
        let g = replica_on(stores, &upstream, &more, clock.clone()).await;
        let h = [("x-api-key", k.key.as_str())];
        let whoami = || g.call(&h, None, "whoami", serde_json::json!({}));
        assert_eq!(whoami().await.status, 200, "{on_error}: before the outage");

        redis.stop();
        let r = whoami().await;
        match on_error {
            "deny" => {
                assert_eq!(r.status, 503, "deny: a limited call while Redis is down: {}", r.text);
                assert!(r.headers.get("retry-after").is_some(), "deny: no Retry-After");
            }
            _ => assert_eq!(
                r.status, 200,
                "allow_local: a limited call while Redis is down: {}",
                r.text
            ),
        }
        let body =
            br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"whoami","arguments":{}}}"#.to_vec();
        let ts = clock.unix_s().to_string();
        let sig = mcpgate_core::hmac::sign(HMAC_SECRET.as_bytes(), &ts, &body);
        let signed = [
            ("x-api-key", "signer"),
            ("x-timestamp", ts.as_str()),
            ("x-signature", sig.as_str()),
        ];
        let s = g.post_raw("/mcp", &signed, body.clone()).await;
        assert_eq!(
            s.status, 503,
            "{on_error}: a signed request while Redis is down: {}",
            s.text
        );
        let ready = get(&g, "/readyz", &[]).await;
        assert_eq!(
            ready.status, 200,
            "{on_error}: /readyz with the upstream up: {}",
            ready.text
        );
        assert_eq!(ready.body["upstream"], "ok", "{}", ready.text);
        assert_ne!(ready.body["redis"], "ok", "{}", ready.text);
        assert!(
            !ready.text.contains("127.0.0.1"),
            "/readyz names the Redis address: {}",
            ready.text
        );

        redis.restart();
        let started = std::time::Instant::now();
        while whoami().await.status != 200 {
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "{on_error}: the gateway did not recover after Redis came back"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        println!(
            "{on_error}: limited calls through Redis again {} ms after it restarted",
            started.elapsed().as_millis()
        );
        let ready = get(&g, "/readyz", &[]).await;
        assert_eq!(ready.body["redis"], "ok", "{}", ready.text);
        // Counted in Redis again: the state is there.
        let mut c = std::net::TcpStream::connect(("127.0.0.1", redis.port)).unwrap();
        use std::io::{Read, Write};
        c.write_all(format!("EXISTS {on_error}:l:key:{}\r\n", record.key_id).as_bytes())
            .unwrap();
        let mut buf = [0u8; 16];
        let n = c.read(&mut buf).unwrap();
        assert_eq!(
            &buf[..n],
            b":1\r\n",
            "{on_error}: no counter in Redis after it came back"
        );
        let s = g.post_raw("/mcp", &signed, body).await;
        assert_ne!(
            s.status, 503,
            "{on_error}: signed requests still refused after Redis came back"
        );
    }
}

/// A stdio session lives in the replica that spawned its child. Another replica knows its owner
/// (Redis) but not its child: it answers 404 — the specification's "initialize again" — rather
/// than a stale success or another child's state; a session initialized there works.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stdio_session_on_another_replica_is_answered_404() {
    let Some(redis) = mcpgate_store::redis::testing::server("a_stdio_session_on_another_replica") else {
        return;
    };
    let command = format!(
        "{} --stdio --profile demo",
        mcpgate_testkit::process::example_bin().display()
    );
    let more = format!(
        "[redis]\nurl = \"{}\"\nprefix = \"{}\"\n[upstream]\ncommand = {}\n",
        redis.url(),
        redis.fresh_prefix(),
        serde_json::Value::String(command)
    );
    let (record, k) = new_key(&key("ana").perms(&["*"]));
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let stores = Stores::memory();
        stores.keys.insert_key(&record).await.unwrap();
        replicas.push(replica_on(stores, "stdio", &more, Arc::new(mcpgate_gateway::clock::SystemClock)).await);
    }
    let (a, b) = (&replicas[0], &replicas[1]);
    let h = [("x-api-key", k.key.as_str())];
    let session = a.initialize(&h).await;
    let echo = serde_json::json!({"text": "hello"});
    let at_a = a.call(&h, Some(&session), "echo", echo.clone()).await;
    assert_eq!(at_a.status, 200, "{}", at_a.text);
    let at_b = b.call(&h, Some(&session), "echo", echo.clone()).await;
    assert_eq!(at_b.status, 404, "a stdio session of A answered at B: {}", at_b.text);
    assert!(at_b.text.contains("initialize again"), "{}", at_b.text);
    let fresh = b.initialize(&h).await;
    let again = b.call(&h, Some(&fresh), "echo", echo).await;
    assert_eq!(again.status, 200, "{}", again.text);
}

/// `store.reload_interval_ms = 60000`: the polls read the store once a minute, so a change seen
/// within a second can only have come through a Redis notice.
const SLOW_POLL: &str = "[store]\nreload_interval_ms = 60000\n";

/// How long until `g` answers `status` to a whoami with `h` (asked every 5 ms, for at most
/// `limit`).
async fn until_status(g: &Gw, h: &[(&str, &str)], status: u16, limit: Duration, what: &str) -> Duration {
    let started = std::time::Instant::now();
    loop {
        let r = g.call(h, None, "whoami", serde_json::json!({})).await;
        if r.status == status {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "{what}: still {} after {limit:?}: {}",
            r.status,
            r.text
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// An access and a refresh token for `key`, through A, for a client registered there.
async fn tokens(a: &Gw, key: &str) -> (String, String, String) {
    let client = public_client(a).await;
    let code = code_for(a, &client, key).await;
    let t = exchange(a, &client, &code, VERIFIER).await;
    assert_eq!(t.status, 200, "{}", t.text);
    let at = t.body["access_token"].as_str().unwrap().to_string();
    let rt = t.body["refresh_token"].as_str().unwrap().to_string();
    (client, at, rt)
}

/// Two replicas on PostgreSQL and Redis, polling once a minute: what is revoked through A is
/// refused at B within a second, carried by the notice A publishes — a key revoked through A's
/// key service, a grant its client revokes at A (`/revoke`), a refresh-token family ended by a
/// reuse at A. The figures are printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revocations_through_one_replica_reach_the_other_at_once() {
    let test = "revocations_through_one_replica_reach_the_other_at_once";
    let Some(pg) = mcpgate_store::postgres::testing::server(test) else {
        return;
    };
    let Some(redis) = mcpgate_store::redis::testing::server(test) else {
        return;
    };
    let url = pg.fresh_database().await;
    let upstream = start_demo().await;
    let store = mcpgate_store::postgres::PostgresStore::connect(&url).await.unwrap();
    let (ana_record, ana) = new_key(&key("ana").perms(&["*"]));
    let (_, bob) = {
        let (r, k) = new_key(&key("bob").perms(&["*"]));
        store.insert_key(&r).await.unwrap();
        (r, k)
    };
    store.insert_key(&ana_record).await.unwrap();
    let more = format!(
        "[redis]\nurl = \"{}\"\nprefix = \"{}\"\n{SLOW_POLL}",
        redis.url(),
        redis.fresh_prefix()
    );
    let manual = Arc::new(ManualClock::starting_now());
    let clock: Arc<dyn Clock> = manual.clone();
    let (a, a_stores) =
        replica_and_stores(Stores::postgres(&url).await.unwrap(), &upstream, &more, clock.clone()).await;
    let b = replica_with(&url, &upstream, &more, clock.clone()).await;
    let ha = [("x-api-key", ana.key.as_str())];
    assert_eq!(b.whoami(&ha).await["user_id"], "ana");
    let limit = Duration::from_secs(1);
    // Each figure below is for a revocation on its own: a poller re-reads at most once per 50 ms,
    // so one that has just read (at start, or for the previous step) waits out the rest of that.
    let settle = || tokio::time::sleep(Duration::from_millis(100));

    // A key revoked through A's key service.
    settle().await;
    let svc = mcpgate_gateway::key_service::KeyService::for_stores(&a_stores);
    svc.revoke(&ana_record.key_id, clock.unix_s()).await.unwrap();
    let took = until_status(&b, &ha, 401, limit, "a key revoked through A, at B").await;
    println!(
        "key revoked through A's key service → refused at B in {} ms",
        took.as_millis()
    );
    until_status(&a, &ha, 401, limit, "a key revoked through A, at A").await;

    // A grant its client revokes at A (RFC 7009, the refresh token).
    let (client, at, rt) = tokens(&a, &bob.key).await;
    let bearer = format!("Bearer {at}");
    let hb = [("authorization", bearer.as_str())];
    until_status(&b, &hb, 200, limit, "a fresh access token at B").await;
    settle().await;
    let rv = post_form(&a, "/revoke", &form(&[("token", &rt), ("client_id", &client)]), &[]).await;
    assert_eq!(rv.status, 200, "{}", rv.text);
    let took = until_status(&b, &hb, 401, limit, "a grant revoked at A, its access token at B").await;
    println!(
        "grant revoked at A (/revoke) → its access token refused at B in {} ms",
        took.as_millis()
    );

    // A refresh token presented again at A, past the grace: the family ends everywhere.
    let (client, at, rt) = tokens(&a, &bob.key).await;
    let rotated = refresh(&a, &client, &rt).await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let fresh = rotated.body["access_token"].as_str().unwrap().to_string();
    manual.advance(Duration::from_secs(6));
    for t in [&at, &fresh] {
        let bearer = format!("Bearer {t}");
        until_status(
            &b,
            &[("authorization", bearer.as_str())],
            200,
            limit,
            "before the reuse",
        )
        .await;
    }
    settle().await;
    oauth_error(&refresh(&a, &client, &rt).await, 400, "invalid_grant");
    let bearer = format!("Bearer {fresh}");
    let took = until_status(
        &b,
        &[("authorization", bearer.as_str())],
        401,
        limit,
        "a family ended by a reuse at A, at B",
    )
    .await;
    println!(
        "refresh-token reuse at A → the family's access token refused at B in {} ms",
        took.as_millis()
    );
}

/// A key store that counts how often its version is read (a poller's cost).
struct Counting {
    inner: Arc<dyn KeyStore>,
    version_reads: std::sync::atomic::AtomicUsize,
}

#[mcpgate_store::async_trait]
impl KeyStore for Counting {
    async fn list_keys(&self) -> mcpgate_store::Result<Vec<mcpgate_core::keys::KeyRecord>> {
        self.inner.list_keys().await
    }
    async fn all_keys(&self) -> mcpgate_store::Result<Vec<mcpgate_core::keys::KeyRecord>> {
        self.inner.all_keys().await
    }
    async fn get_key(&self, key_id: &str) -> mcpgate_store::Result<Option<mcpgate_core::keys::KeyRecord>> {
        self.inner.get_key(key_id).await
    }
    async fn insert_key(&self, record: &mcpgate_core::keys::KeyRecord) -> mcpgate_store::Result<()> {
        self.inner.insert_key(record).await
    }
    async fn revoke_key(&self, key_id: &str) -> mcpgate_store::Result<bool> {
        self.inner.revoke_key(key_id).await
    }
    async fn set_key_expiry(&self, key_id: &str, expires_at: Option<i64>) -> mcpgate_store::Result<bool> {
        self.inner.set_key_expiry(key_id, expires_at).await
    }
    async fn touch_keys(&self, used: &[(String, i64)]) -> mcpgate_store::Result<()> {
        self.inner.touch_keys(used).await
    }
    async fn last_used(&self, key_id: &str) -> mcpgate_store::Result<Option<i64>> {
        self.inner.last_used(key_id).await
    }
    async fn keys_version(&self) -> mcpgate_store::Result<i64> {
        self.version_reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.inner.keys_version().await
    }
    async fn key_changes_since(&self, version: i64) -> mcpgate_store::Result<Option<mcpgate_store::KeyChanges>> {
        self.inner.key_changes_since(version).await
    }
}

/// `PUBLISH channel payload` for each payload, pipelined on a plain connection (any client of
/// the Redis can write to the channel); waits for the replies.
fn publish_raw(port: u16, channel: &str, payloads: &[&[u8]]) {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut out = Vec::new();
    for p in payloads {
        out.extend_from_slice(
            format!(
                "*3\r\n$7\r\nPUBLISH\r\n${}\r\n{channel}\r\n${}\r\n",
                channel.len(),
                p.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(p);
        out.extend_from_slice(b"\r\n");
    }
    c.write_all(&out).unwrap();
    let (mut seen, mut buf) = (0, [0u8; 8192]);
    while seen < payloads.len() {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0, "redis closed the connection");
        seen += buf[..n].iter().filter(|b| **b == b'\n').count();
    }
}

/// Attacks on the channel, against a replica polling once a minute: ten thousand notices a
/// second for two seconds (half of them garbage) cost a few dozen version reads, not ten
/// thousand, and calls meanwhile stay quick; garbage alone wakes nothing; and a real revocation
/// announced in the middle of the flood still arrives within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_notices_is_coalesced() {
    let test = "a_flood_of_notices_is_coalesced";
    let Some(pg) = mcpgate_store::postgres::testing::server(test) else {
        return;
    };
    let Some(redis) = mcpgate_store::redis::testing::server(test) else {
        return;
    };
    let url = pg.fresh_database().await;
    let upstream = start_demo().await;
    let (ana_record, ana) = new_key(&key("ana").perms(&["*"]));
    let (bob_record, bob) = new_key(&key("bob").perms(&["*"]));
    let prefix = redis.fresh_prefix();
    let more = format!("[redis]\nurl = \"{}\"\nprefix = \"{prefix}\"\n{SLOW_POLL}", redis.url());
    let clock: Arc<dyn Clock> = Arc::new(mcpgate_gateway::clock::SystemClock);
    let (_a, a_stores) =
        replica_and_stores(Stores::postgres(&url).await.unwrap(), &upstream, &more, clock.clone()).await;
    a_stores.keys.insert_key(&ana_record).await.unwrap();
    a_stores.keys.insert_key(&bob_record).await.unwrap();
    let mut stores = Stores::postgres(&url).await.unwrap();
    let counting = Arc::new(Counting {
        inner: stores.keys.clone(),
        version_reads: Default::default(),
    });
    stores.keys = counting.clone();
    let b = replica_on(stores, &upstream, &more, clock.clone()).await;
    let ha = [("x-api-key", ana.key.as_str())];
    let hb = [("x-api-key", bob.key.as_str())];
    until_status(&b, &hb, 200, Duration::from_secs(2), "bob at B").await;
    let reads = || counting.version_reads.load(std::sync::atomic::Ordering::Relaxed);
    let channel = format!("{prefix}changes");

    // Garbage alone: nothing read.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = reads();
    let garbage: Vec<&[u8]> = vec![&b"KEYS"[..], b"keys:ana", b"", b"\xff\xfe", b"grants keys"];
    publish_raw(redis.port, &channel, &garbage.repeat(200));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(reads(), before, "garbage on the channel caused reads");

    // The flood: 2 s at ten thousand notices a second, in the background.
    let port = redis.port;
    let flood_channel = channel.clone();
    let flood = tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        let batch: Vec<&[u8]> = (0..500)
            .map(|i| if i % 2 == 0 { &b"keys"[..] } else { b"nonsense" })
            .collect();
        for i in 0..40u32 {
            publish_raw(port, &flood_channel, &batch);
            let due = Duration::from_millis(50) * (i + 1);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        started.elapsed()
    });
    let before = reads();
    let mut slowest = Duration::ZERO;
    let mut revoked_at = None;
    let started = std::time::Instant::now();
    while !flood.is_finished() {
        let t = std::time::Instant::now();
        let r = b.call(&hb, None, "whoami", serde_json::json!({})).await;
        assert_eq!(r.status, 200, "during the flood: {}", r.text);
        slowest = slowest.max(t.elapsed());
        if revoked_at.is_none() && started.elapsed() > Duration::from_millis(800) {
            // A real revocation in the middle of it.
            mcpgate_gateway::key_service::KeyService::for_stores(&a_stores)
                .revoke(&ana_record.key_id, clock.unix_s())
                .await
                .unwrap();
            revoked_at = Some(std::time::Instant::now());
            let took = until_status(&b, &ha, 401, Duration::from_secs(1), "revoked during the flood").await;
            println!(
                "a key revoked during the flood → refused at B in {} ms",
                took.as_millis()
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let spent = flood.await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let n = reads() - before;
    println!(
        "20000 notices (half garbage) in {} ms → {n} key-version reads at B; slowest call meanwhile {} ms",
        spent.as_millis(),
        slowest.as_millis()
    );
    assert!(revoked_at.is_some(), "the flood ended before the revocation");
    // At most one read per 50 ms (plus the revocation's catch-up and a little slack).
    let most = usize::try_from((spent + Duration::from_millis(200)).as_millis() / 50).unwrap() + 5;
    assert!(
        n <= most,
        "{n} version reads for 20000 notices in {spent:?} (at most {most})"
    );
}

/// Redis down when both replicas start: they start and serve; a key revoked through A meanwhile
/// (its notice cannot be published: logged, without the URL) is not seen at B, which polls once
/// a minute. Redis started: B subscribes again, reads every kind of record at once (notices were
/// missed), and refuses the key; the next revocation travels as a notice again.
#[tokio::test(flavor = "current_thread")]
async fn replicas_started_without_redis_catch_up_when_it_comes() {
    let test = "replicas_started_without_redis_catch_up";
    let logs = mcpgate_testkit::logs::LogCapture::install();
    let Some(pg) = mcpgate_store::postgres::testing::server(test) else {
        return;
    };
    let Some(redis) = mcpgate_store::redis::testing::Server::start_own(test) else {
        return;
    };
    redis.stop();
    let url = pg.fresh_database().await;
    let upstream = start_demo().await;
    let store = mcpgate_store::postgres::PostgresStore::connect(&url).await.unwrap();
    let (ana_record, ana) = new_key(&key("ana").perms(&["*"]));
    let (bob_record, bob) = new_key(&key("bob").perms(&["*"]));
    store.insert_key(&ana_record).await.unwrap();
    store.insert_key(&bob_record).await.unwrap();
    let more = format!("[redis]\nurl = \"{}\"\nprefix = \"down:\"\n{SLOW_POLL}", redis.url());
    let clock: Arc<dyn Clock> = Arc::new(mcpgate_gateway::clock::SystemClock);
    let (_a, a_stores) =
        replica_and_stores(Stores::postgres(&url).await.unwrap(), &upstream, &more, clock.clone()).await;
    let b = replica_with(&url, &upstream, &more, clock.clone()).await;
    let ha = [("x-api-key", ana.key.as_str())];
    let hb = [("x-api-key", bob.key.as_str())];
    assert_eq!(b.whoami(&ha).await["user_id"], "ana", "B serves with Redis down");

    let svc = mcpgate_gateway::key_service::KeyService::for_stores(&a_stores);
    svc.revoke(&ana_record.key_id, clock.unix_s()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        b.call(&ha, None, "whoami", serde_json::json!({})).await.status,
        200,
        "B learnt of the revocation without Redis and before its poll"
    );

    redis.restart();
    let back = std::time::Instant::now();
    until_status(&b, &ha, 401, Duration::from_secs(5), "after Redis came back").await;
    println!(
        "Redis back → a revocation made while it was down refused at B in {} ms",
        back.elapsed().as_millis()
    );
    svc.revoke(&bob_record.key_id, clock.unix_s()).await.unwrap();
    let took = until_status(
        &b,
        &hb,
        401,
        Duration::from_secs(1),
        "a revocation after Redis came back",
    )
    .await;
    println!("… and the next one in {} ms", took.as_millis());

    let text = logs.text();
    assert!(
        text.contains("could not announce a change to the other replicas"),
        "the failed publish was not logged"
    );
    assert!(
        text.contains("revocation notices: not listening on Redis"),
        "the outage was not logged"
    );
    assert!(
        !text.contains(&format!("127.0.0.1:{}", redis.port)),
        "a log line names the Redis address"
    );
}
