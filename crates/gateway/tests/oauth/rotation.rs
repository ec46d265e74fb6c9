//! Signing keys rotate while the gateway runs: the next key is published before it signs, the
//! one it replaces stays published while its tokens can live, and is forgotten after.

use crate::*;
use mcpgate_store::SigningKeyStore;
use mcpgate_testkit::apikey::*;
use mcpgate_testkit::harness::*;
use std::time::Duration;

fn kid_of(jwt: &str) -> String {
    jsonwebtoken::decode_header(jwt).unwrap().kid.unwrap()
}

async fn published(gw: &Gw) -> Vec<String> {
    let r = get(gw, "/jwks", &[]).await;
    let mut kids: Vec<String> = r.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect();
    kids.sort();
    kids
}

async fn token(gw: &Gw, client: &str, key: &str) -> String {
    let code = code_for(gw, client, key).await;
    let r = exchange(gw, client, &code, VERIFIER).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["access_token"].as_str().unwrap().to_string()
}

async fn works(gw: &Gw, at: &str) -> bool {
    gw.call(
        &[("authorization", &format!("Bearer {at}"))],
        None,
        "whoami",
        serde_json::json!({}),
    )
    .await
    .is_ok()
}

#[tokio::test]
async fn signing_keys_rotate_while_running() {
    let toml = format!("{TOML}signing_key_rotation_days = 1\n");
    let mut setup = Setup::new(&toml).manual_clock();
    setup.env("MCPGATE_ENCRYPTION_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=");
    let ana = setup.key(key("ana").perms(&["read", "tools:echo"]));
    let gw = setup.start().await;
    let o = gw.gw.oauth.clone().unwrap();
    let client = public_client(&gw).await;
    let first = token(&gw, &client, &ana.key).await;
    let k1 = kid_of(&first);
    assert_eq!(published(&gw).await, vec![k1.clone()]);
    let stored = gw.store().list_signing_keys().await.unwrap();
    assert_eq!(stored.len(), 1, "the key is kept (sealed) in the store");

    // Not due yet: nothing changes.
    gw.advance(Duration::from_secs(3600));
    o.reload_signing_keys().await.unwrap();
    assert_eq!(published(&gw).await, vec![k1.clone()]);

    // Due: the next key is published at once, but k1 still signs (replicas learn k2 first).
    gw.advance(Duration::from_secs(86_400));
    o.reload_signing_keys().await.unwrap();
    let both = published(&gw).await;
    assert_eq!(both.len(), 2, "{both:?}");
    let k2 = both.iter().find(|k| **k != k1).unwrap().clone();
    let before = token(&gw, &client, &ana.key).await;
    assert_eq!(kid_of(&before), k1, "a key signed before it was published long enough");

    // After the publication delay, k2 signs; k1's tokens still work, k1 still published.
    gw.advance(Duration::from_secs(181));
    o.reload_signing_keys().await.unwrap();
    let after = token(&gw, &client, &ana.key).await;
    assert_eq!(kid_of(&after), k2);
    assert!(
        works(&gw, &before).await,
        "a token of the retired key stopped working early"
    );
    assert!(works(&gw, &after).await);
    assert_eq!(published(&gw).await.len(), 2);
    let k1_record = gw
        .store()
        .list_signing_keys()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.kid == k1)
        .unwrap();
    assert!(k1_record.retired_at.is_some(), "the replaced key is marked retired");

    // Once nothing it signed can be alive (web sessions, an hour, are the longest, plus the
    // minute a replica may still sign with it before reading its retirement), unpublished; a day
    // later, gone from the store.
    gw.advance(Duration::from_secs(3601));
    o.reload_signing_keys().await.unwrap();
    assert_eq!(
        published(&gw).await.len(),
        2,
        "unpublished within a reload period of its last use"
    );
    gw.advance(Duration::from_secs(60));
    o.reload_signing_keys().await.unwrap();
    assert_eq!(published(&gw).await, vec![k2.clone()]);
    assert!(!works(&gw, &before).await);
    gw.advance(Duration::from_secs(86_401));
    o.reload_signing_keys().await.unwrap();
    let left: Vec<String> = gw
        .store()
        .list_signing_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.kid)
        .collect();
    // (k2 is due by now too, so a k3 is published beside it.)
    assert!(!left.contains(&k1), "a long-retired key was not forgotten: {left:?}");
    assert!(left.contains(&k2), "{left:?}");
}
