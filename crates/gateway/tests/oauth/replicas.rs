//! Two gateways on one PostgreSQL database (issue #13's first step, `store.url`): what one
//! writes, the other reads. A client registered through A is known to B; an authorization code
//! issued by A is redeemed at B, once only; the token works at both (the signing keys sealed in
//! the shared store); a key revoked in the shared store is refused by both within seconds. The
//! database is a throwaway PostgreSQL on loopback (`mcpgate_store::postgres::testing`).

use crate::*;
use mcpgate_gateway::Gateway;
use mcpgate_gateway::config::Config;
use mcpgate_gateway::config::raw::{Overrides, RawConfig};
use mcpgate_gateway::server::{Sources, Stores};
use mcpgate_store::KeyStore;
use mcpgate_testkit::apikey::{key, new_key};
use mcpgate_testkit::harness::*;
use std::sync::Arc;
use std::time::Duration;

const SEAL: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// A gateway on the database at `url`, as `store.url` makes one.
async fn replica(url: &str, upstream: &str) -> Gw {
    let mut raw = RawConfig::from_toml(&format!("{TOML}signing_key_env = \"SEAL\"\n")).unwrap();
    raw.apply_overrides(&Overrides {
        upstream_url: Some(upstream.to_string()),
        ..Overrides::default()
    });
    let config = Config::validate(raw).unwrap();
    let env = |k: &str| (k == "SEAL").then(|| SEAL.to_string());
    let stores = Stores::postgres(url).await.unwrap();
    let clock = Arc::new(mcpgate_gateway::clock::SystemClock);
    let gw = Gateway::assemble(config, &env, Sources::with_clock(clock), stores)
        .await
        .unwrap();
    Gw::on(gw, upstream.to_string())
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
