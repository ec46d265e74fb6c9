//! `mcpgate clients …`, `mcpgate grants …` and `keys revoke` against a real SQLite file: a client
//! added by an operator (secret printed once, kept hashed), listed, shown, removed (its grants
//! revoked); grants listed per user and revoked; revoking the key a user signed in with ends
//! the grants made through it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mcpgate_core::keys::hash_hex;
use mcpgate_core::principal::Role;
use mcpgate_store::oauth::{ClientStore, GrantRecord, GrantStore, Subject};
use mcpgate_store::sqlite::SqliteStore;
use serde_json::Value;
use std::path::Path;

fn mcpgate(db: &Path, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mcpgate"))
        .args(args)
        .arg("--store")
        .arg(db)
        .output()
        .expect("run mcpgate");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn grant(id: &str, user: &str, client: &str, via: &str) -> GrantRecord {
    GrantRecord {
        grant_id: id.into(),
        client_id: client.into(),
        subject: Subject {
            user_id: user.into(),
            tenant: None,
            role: Role::User,
            permissions: vec!["read".into()],
            via: via.into(),
        },
        scopes: vec!["read".into()],
        resource: "http://127.0.0.1:1/mcp".into(),
        created_at: 1,
        expires_at: i64::MAX / 2,
        revoked_at: None,
    }
}

#[tokio::test]
async fn clients_and_grants_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");

    let (ok, out, err) = mcpgate(
        &db,
        &[
            "clients",
            "add",
            "--name",
            "Ops console",
            "--redirect-uri",
            "https://ops.example/cb",
            "--json",
        ],
    );
    assert!(ok, "{err}");
    let added: Value = serde_json::from_str(&out).unwrap();
    let (cid, secret) = (
        added["client_id"].as_str().unwrap(),
        added["client_secret"].as_str().unwrap(),
    );
    assert!(secret.starts_with("mcps_"));
    let (ok, out, _) = mcpgate(&db, &["clients", "list", "--json"]);
    assert!(
        ok && out.contains(cid) && !out.contains(secret),
        "the secret is shown once only: {out}"
    );
    let (ok, out, _) = mcpgate(&db, &["clients", "show", cid]);
    assert!(ok && out.contains("\"kind\": \"configured\""), "{out}");
    let store = SqliteStore::open(&db).unwrap();
    let stored = store.get_client(cid).await.unwrap().unwrap();
    assert_eq!(
        stored.secret_hash.as_deref(),
        Some(hash_hex(secret).as_str()),
        "kept hashed"
    );
    // Unsafe redirects are refused as registration refuses them.
    let (ok, _, err) = mcpgate(
        &db,
        &[
            "clients",
            "add",
            "--name",
            "x",
            "--redirect-uri",
            "http://evil.example/cb",
        ],
    );
    assert!(!ok && err.contains("https"), "{err}");

    // Grants: listed per user, revoked per user.
    store
        .create_grant(&grant("g1", "ana", cid, "key:k1"), None, 0)
        .await
        .unwrap();
    store
        .create_grant(&grant("g2", "ana", "other", "key:k1"), None, 0)
        .await
        .unwrap();
    store
        .create_grant(&grant("g3", "bob", cid, "key:k2"), None, 0)
        .await
        .unwrap();
    let (ok, out, _) = mcpgate(&db, &["grants", "list", "--user", "ana", "--json"]);
    let rows: Value = serde_json::from_str(&out).unwrap();
    assert!(ok && rows.as_array().unwrap().len() == 2, "{out}");
    let (ok, out, err) = mcpgate(&db, &["grants", "revoke", "--user", "ana", "--client", cid]);
    assert!(ok, "{err}");
    assert!(out.contains("revoked 1 grant"), "{out}");
    assert!(store.get_grant("g1").await.unwrap().unwrap().revoked_at.is_some());
    assert!(store.get_grant("g2").await.unwrap().unwrap().revoked_at.is_none());
    let (ok, _, _) = mcpgate(&db, &["grants", "revoke", "g1"]);
    assert!(!ok, "revoking twice reports nothing to revoke");

    // Removing the client revokes the rest of its grants.
    let (ok, _, err) = mcpgate(&db, &["clients", "remove", cid]);
    assert!(ok, "{err}");
    assert!(store.get_grant("g3").await.unwrap().unwrap().revoked_at.is_some());
    let (ok, _, _) = mcpgate(&db, &["clients", "remove", cid]);
    assert!(!ok);
}

#[tokio::test]
async fn revoking_a_key_ends_the_grants_signed_in_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let (ok, out, err) = mcpgate(&db, &["keys", "create", "--name", "n", "--user", "ana", "--json"]);
    assert!(ok, "{err}");
    let created: Value = serde_json::from_str(&out).unwrap();
    let key_id = created["key_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{out}"))
        .to_string();
    let store = SqliteStore::open(&db).unwrap();
    store
        .create_grant(&grant("ga", "ana", "c", &format!("key:{key_id}")), None, 0)
        .await
        .unwrap();
    store
        .create_grant(&grant("gb", "ana", "c", "key:someone-else"), None, 0)
        .await
        .unwrap();
    let (ok, out, err) = mcpgate(&db, &["keys", "revoke", &key_id]);
    assert!(ok, "{err}");
    assert!(out.contains("1 OAuth grant"), "{out}");
    assert!(store.get_grant("ga").await.unwrap().unwrap().revoked_at.is_some());
    assert!(store.get_grant("gb").await.unwrap().unwrap().revoked_at.is_none());
}

#[tokio::test]
async fn users_who_signed_in_are_listed_and_shown() {
    use mcpgate_store::{UserRecord, UserStore};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let store = SqliteStore::open(&db).unwrap();
    let ana = UserRecord {
        user_id: "ana@example.com".into(),
        tenant: Some("acme".into()),
        role: Role::Developer,
        via: "provider:corp:sub-ana".into(),
        email: Some("ana@example.com".into()),
        name: Some("ana".into()),
        first_sign_in: 0,
        last_sign_in: 0,
        sign_ins: 0,
    };
    store.record_sign_in(&ana, 1_700_000_000).await.unwrap();
    store.record_sign_in(&ana, 1_700_000_600).await.unwrap();
    store
        .create_grant(
            &grant("g-ana", "ana@example.com", "c1", "provider:corp:sub-ana"),
            None,
            i64::MAX / 2,
        )
        .await
        .unwrap();

    let (ok, out, err) = mcpgate(&db, &["users", "list", "--json"]);
    assert!(ok, "{err}");
    let rows: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1, "{out}");
    assert_eq!(rows[0]["user_id"], "ana@example.com");
    assert_eq!(rows[0]["sign_ins"], 2);
    assert_eq!(rows[0]["first_sign_in"], "2023-11-14T22:13:20Z");
    assert_eq!(rows[0]["last_sign_in"], "2023-11-14T22:23:20Z");
    assert_eq!(rows[0]["signed_in_with"], "provider:corp:sub-ana");

    let (ok, out, err) = mcpgate(&db, &["users", "show", "ana@example.com"]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["grants"][0]["grant_id"], "g-ana", "{out}");
    let (ok, _, err) = mcpgate(&db, &["users", "show", "nobody"]);
    assert!(!ok && err.contains("no user"), "{err}");
}
