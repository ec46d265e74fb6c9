//! PostgreSQL stopped under a running gateway (issue #13, "faults"): what the gateway holds in
//! memory keeps working (API keys, the access tokens it issued), what needs the database answers
//! 503 with `Retry-After` (never a 401 that would make a client throw its credential away), the
//! audit records of the outage wait in memory and are all written once the database is back, and
//! the authorization server works again, all without a restart. The database is a throwaway
//! PostgreSQL of this test's own, stopped with `pg_ctl stop -m fast` (every connection cut) and
//! started again on the same port.

use crate::replicas::replica_on;
use crate::*;
use mcpgate_core::audit::AuditQuery;
use mcpgate_gateway::server::Stores;
use mcpgate_store::postgres::PostgresStore;
use mcpgate_store::{AuditStore, KeyStore};
use mcpgate_testkit::apikey::{key, new_key};
use mcpgate_testkit::harness::*;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Calls made with the API key while the database is down.
const DURING: usize = 60;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_stopped_under_a_gateway_gives_503_not_401_and_loses_no_audit_record() {
    let Some(pg) = mcpgate_store::postgres::testing::Server::start_own("postgres_stopped_under_a_gateway") else {
        return;
    };
    let url = pg.fresh_database().await;
    let upstream = start_demo().await;
    let store = PostgresStore::connect(&url).await.unwrap();
    let (record, ana) = new_key(&key("ana").perms(&["*"]));
    store.insert_key(&record).await.unwrap();
    let gw = replica_on(
        Stores::postgres(&url).await.unwrap(),
        &upstream,
        "",
        Arc::new(mcpgate_gateway::clock::SystemClock),
    )
    .await;
    let h = [("x-api-key", ana.key.as_str())];
    let session = gw.initialize(&h).await;

    // An OAuth grant made while the database is up: its access and refresh tokens.
    let client = public_client(&gw).await;
    let code = code_for(&gw, &client, &ana.key).await;
    let r = exchange(&gw, &client, &code, VERIFIER).await;
    assert_eq!(r.status, 200, "code exchange: {}", r.text);
    let tokens = r.body.clone();
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_string();

    // Every response this test receives, by request id, with its status.
    let mut answered: HashMap<String, u16> = HashMap::new();
    let run = mcpgate_testkit::process::nonce();
    // `echo` with a key; `whoami` (a read) with the token, whose scope is `read`.
    let mut call = async |gw: &Gw, n: usize, credential: (&str, &str)| {
        let id = format!("pgdown-{run}-{n}");
        let (tool, args) = if credential.0 == "x-api-key" {
            ("echo", json!({ "text": id }))
        } else {
            ("whoami", json!({}))
        };
        let r = gw
            .call(&[credential, ("x-request-id", id.as_str())], Some(&session), tool, args)
            .await;
        answered.insert(id, r.status.as_u16());
        r
    };
    for n in 0..10 {
        call(&gw, n, h[0]).await.ok("a call before the database stops");
    }

    pg.stop();
    let stopped = Instant::now();

    // Keys live in memory: calls go on; each record waits for the database.
    for n in 10..10 + DURING {
        let r = call(&gw, n, h[0]).await;
        assert_eq!(
            r.status, 200,
            "a call with a valid key while PostgreSQL is down: {}",
            r.text
        );
    }
    // The access token issued before: verified with keys in memory, its grant's state in memory.
    let bearer = format!("Bearer {access}");
    let r = call(&gw, 10 + DURING, ("authorization", bearer.as_str())).await;
    assert_eq!(
        r.status, 200,
        "an issued access token while PostgreSQL is down: {}",
        r.text
    );

    // What needs the database says so: 503 + Retry-After, an RFC 6749 error a client retries on.
    let r = refresh(&gw, &client, &refresh_token).await;
    assert_eq!(r.status, 503, "a refresh while PostgreSQL is down: {}", r.text);
    assert_eq!(r.body["error"], "temporarily_unavailable", "{}", r.text);
    assert!(
        !r.text.contains(&refresh_token) && !r.text.contains(&url),
        "a secret in the 503: {}",
        r.text
    );
    assert!(r.header("retry-after").is_some(), "503 without Retry-After");
    let r = register(
        &gw,
        json!({ "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none" }),
    )
    .await;
    assert_eq!(r.status, 503, "registration while PostgreSQL is down: {}", r.text);
    assert!(r.header("retry-after").is_some(), "503 without Retry-After");
    // Never a 401 for the refresh token itself (the client would drop it and make its user sign
    // in again): shown above; and the key still answers the whoami page.
    assert_eq!(gw.whoami(&h).await["user_id"], "ana");

    // /readyz names the store and the waiting records; the gateway stays in the balancer (its
    // upstream is up, and it serves what it holds).
    let deadline = Instant::now() + Duration::from_secs(10);
    let ready = loop {
        let r = get(&gw, "/readyz", &[]).await;
        if r.body["audit"] != "ok" || Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(ready.status, 200, "/readyz: {}", ready.text);
    assert_ne!(
        ready.body["store"], "ok",
        "/readyz does not see PostgreSQL down: {}",
        ready.text
    );
    assert!(
        ready.body["audit"]
            .as_str()
            .is_some_and(|s| s.contains("wait for the store")),
        "/readyz does not report the waiting audit records: {}",
        ready.text
    );
    assert!(!ready.text.contains(&url), "/readyz shows the database URL");
    let outage = stopped.elapsed();

    pg.restart();
    let back = Instant::now();
    // Every record of every answered request reaches the database, without a restart and
    // without new traffic (the writer retries on its own).
    let store = PostgresStore::connect(&url).await.unwrap();
    let prefix = format!("pgdown-{run}-");
    let recorded = loop {
        let records = store
            .query(&AuditQuery {
                limit: 100_000,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        let ours: HashMap<String, u16> = records
            .into_iter()
            .filter(|r| r.request_id.starts_with(&prefix))
            .map(|r| (r.request_id, r.status))
            .collect();
        if ours.len() >= answered.len() || back.elapsed() > Duration::from_secs(20) {
            break ours;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let flushed = back.elapsed();
    let missing: Vec<&String> = answered.keys().filter(|id| !recorded.contains_key(*id)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} answered requests have no audit record after PostgreSQL returned, e.g. {:?}",
        missing.len(),
        answered.len(),
        missing.iter().take(3).collect::<Vec<_>>()
    );
    for (id, status) in &answered {
        assert_eq!(recorded.get(id), Some(status), "the record of {id} says another status");
    }
    assert_eq!(recorded.len(), answered.len(), "records for requests never answered");

    // The authorization server works again, with the same refresh token (the failed attempt
    // spent nothing).
    let deadline = Instant::now() + Duration::from_secs(10);
    let r = loop {
        let r = refresh(&gw, &client, &refresh_token).await;
        if r.status != 503 || Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(r.status, 200, "a refresh after PostgreSQL returned: {}", r.text);
    let ready = get(&gw, "/readyz", &[]).await;
    assert_eq!(ready.body["store"], "ok", "{}", ready.text);
    assert_eq!(ready.body["audit"], "ok", "{}", ready.text);
    println!(
        "postgres_stopped: {} calls answered during a {outage:?} outage (all 200); their {} records \
         written {flushed:?} after PostgreSQL returned",
        DURING + 1,
        recorded.len()
    );
    // The key never comes back in any response (the tokens do, from the token endpoint).
    assert!(!gw.responses().contains(ana.key.as_str()), "the API key in a response");
}
