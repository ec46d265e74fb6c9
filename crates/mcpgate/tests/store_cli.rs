//! The store commands on PostgreSQL, against a throwaway server these tests start themselves
//! (`mcpgate_store::postgres::testing`): `keys create/list/revoke` on the database
//! `MCPGATE_STORE_URL` or `store.url` names; an unreachable URL's password never printed;
//! `store migrate`; and `store copy` from a SQLite file holding every kind of record into
//! PostgreSQL and back, read through the stores themselves — a revoked key stays revoked, a copied
//! key still matches its hash, a spent refresh token presented again still revokes its grant.
//!
//! Without PostgreSQL's binaries the tests fail, unless `MCPGATE_TEST_NO_POSTGRES=1`, when they
//! say so and pass.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mcpgate_core::audit::{AuditQuery, AuditRecord};
use mcpgate_core::keys::hash_hex;
use mcpgate_core::principal::Role;
use mcpgate_store::oauth::{
    ClientKind, ClientRecord, ConsentRecord, GrantRecord, Rotation, SigningKeyRecord, Subject, UserRecord,
};
use mcpgate_store::postgres::PostgresStore;
use mcpgate_store::postgres::testing::server;
use mcpgate_store::sqlite::SqliteStore;
use mcpgate_store::{
    AuditStore, ClientStore, CredentialStore, GrantStore, KeyStore, SealedCredential, SigningKeyStore, UserStore,
};
use serde_json::Value;
use std::path::Path;

/// Runs `mcpgate args` with `env` set and the store variables of the test's own environment
/// cleared: (success, stdout, stderr).
fn mcpgate(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_mcpgate"));
    cmd.args(args)
        .env_remove("MCPGATE_STORE")
        .env_remove("MCPGATE_STORE_URL")
        .env_remove("MCPGATE_CONFIG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run mcpgate");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `keys create … --json`: (key, key id).
fn create_key(user: &str, env: &[(&str, &str)], extra: &[&str]) -> (String, String) {
    let mut args = vec!["keys", "create", "--name", "n", "--user", user, "--json"];
    args.extend_from_slice(extra);
    let (ok, out, err) = mcpgate(&args, env);
    assert!(ok, "keys create: {err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    (
        v["key"].as_str().unwrap().to_string(),
        v["key_id"].as_str().unwrap().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_created_listed_and_revoked_in_postgres() {
    let Some(pg) = server("keys_are_created_listed_and_revoked_in_postgres") else {
        return;
    };
    let url = pg.fresh_database().await;
    let env = [("MCPGATE_STORE_URL", url.as_str())];
    let (key, key_id) = create_key("ana", &env, &[]);
    let store = PostgresStore::connect(&url).await.unwrap();
    let stored = store.get_key(&key_id).await.unwrap().expect("the key is in PostgreSQL");
    assert_eq!(stored.hash, hash_hex(&key), "kept as its hash");
    assert!(!stored.revoked);

    // store.url in a config file names the same database.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mcpgate.toml");
    std::fs::write(&config, format!("[store]\nurl = \"{url}\"\n")).unwrap();
    let config = config.to_str().unwrap();
    let (ok, out, err) = mcpgate(&["keys", "list", "--json", "--config", config], &[]);
    assert!(ok, "{err}");
    let rows: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1, "{out}");
    assert_eq!(rows[0]["key_id"], key_id.as_str());
    assert_eq!(rows[0]["state"], "active");
    assert!(!out.contains(&key), "a key is shown once only");
    let (ok, out, _) = mcpgate(&["keys", "list", "--config", config], &[]);
    assert!(ok && out.contains(&key_id) && out.contains("KEY ID"), "{out}");

    let (ok, out, err) = mcpgate(&["keys", "revoke", &key_id], &env);
    assert!(ok, "{err}");
    assert!(out.contains(&format!("revoked {key_id}")), "{out}");
    assert!(store.get_key(&key_id).await.unwrap().unwrap().revoked);
    let (ok, out, _) = mcpgate(&["keys", "show", &key_id], &env);
    assert!(ok && out.contains("\"state\": \"revoked\""), "{out}");

    // A --store typed on the command line is a SQLite file, whatever the configuration says.
    let db = dir.path().join("other.db");
    let (ok, out, err) = mcpgate(&["keys", "list", "--json", "--store", db.to_str().unwrap()], &env);
    assert!(ok, "{err}");
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), serde_json::json!([]));
    // MCPGATE_STORE beside a PostgreSQL store.url is ambiguous: refused.
    let (ok, _, err) = mcpgate(
        &["keys", "list"],
        &[
            ("MCPGATE_STORE_URL", url.as_str()),
            ("MCPGATE_STORE", db.to_str().unwrap()),
        ],
    );
    assert!(!ok && err.contains("MCPGATE_STORE"), "{err}");
}

#[test]
fn an_unreachable_store_url_is_never_printed() {
    let url = "postgres://mcpgate:hunter2-not-shown@127.0.0.1:1/mcpgate?connect_timeout=2";
    for args in [
        &["keys", "list"][..],
        &["clients", "list"],
        &["audit"],
        &["store", "migrate"],
    ] {
        let (ok, out, err) = mcpgate(args, &[("MCPGATE_STORE_URL", url)]);
        assert!(!ok, "{args:?}: {out}");
        assert!(err.contains("store.url"), "{args:?}: {err}");
        assert!(!err.contains("hunter2") && !out.contains("hunter2"), "{args:?}: {err}");
    }
    let dir = tempfile::tempdir().unwrap();
    let to = format!("sqlite://{}", dir.path().join("x.db").display());
    let (ok, _, err) = mcpgate(&["store", "copy", "--from", url, "--to", &to], &[]);
    assert!(!ok && err.contains("--from") && !err.contains("hunter2"), "{err}");
    let (ok, _, err) = mcpgate(&["store", "migrate", "--url", "mysql://root:hunter2@db/x"], &[]);
    assert!(!ok && err.contains("--url") && !err.contains("hunter2"), "{err}");
}

fn subject(user: &str, via: &str) -> Subject {
    Subject {
        user_id: user.into(),
        tenant: Some("acme".into()),
        role: Role::User,
        permissions: vec!["read".into()],
        via: via.into(),
    }
}

fn audit_record(i: usize) -> AuditRecord {
    AuditRecord {
        time_ms: 1_700_000_000_000 + i as i64,
        request_id: format!("req-{i}"),
        event: "call".into(),
        principal: Some("key:k".into()),
        key_id: Some("k".into()),
        user_id: Some(if i.is_multiple_of(2) { "ana" } else { "bob" }.into()),
        tenant: None,
        auth_method: Some("api_key".into()),
        client_addr: Some("127.0.0.1".into()),
        mcp_method: Some("tools/call".into()),
        tool: Some("echo".into()),
        decision: "allow".into(),
        reason: format!("rule {i}"),
        status: 200,
        latency_us: i as u64,
        client_id: i.is_multiple_of(3).then(|| "c1".into()),
    }
}

/// Fills a SQLite file with one or more of every kind of record; returns the live key's text,
/// the live key's id and the revoked key's id.
async fn fill(db: &Path) -> (String, String, String) {
    let env = [("MCPGATE_STORE", db.to_str().unwrap())];
    let (key, live) = create_key("ana", &env, &["--expires-in", "90d"]);
    let (_, revoked) = create_key("bob", &env, &[]);
    let (ok, _, err) = mcpgate(&["keys", "revoke", &revoked], &env);
    assert!(ok, "{err}");
    let s = SqliteStore::open(db).unwrap();
    s.touch_keys(&[(live.clone(), 1_700_000_123)]).await.unwrap();
    s.set_credential(
        &live,
        &SealedCredential {
            nonce: vec![1; 12],
            ciphertext: vec![2, 3, 4],
        },
        1,
    )
    .await
    .unwrap();
    s.insert_client(&ClientRecord {
        client_id: "c1".into(),
        kind: ClientKind::Registered,
        name: Some("Client One".into()),
        secret_hash: Some(hash_hex("mcps_secret")),
        auth_method: "client_secret_basic".into(),
        redirect_uris: vec!["https://one.example/cb".into()],
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        scope: Some(vec!["read".into()]),
        jwks: None,
        jwks_uri: None,
        created_at: 1_700_000_000,
        expires_at: None,
    })
    .await
    .unwrap();
    let far = 4_000_000_000;
    let grant = GrantRecord {
        grant_id: "g1".into(),
        client_id: "c1".into(),
        subject: subject("ana", &format!("key:{live}")),
        scopes: vec!["read".into()],
        resource: "http://127.0.0.1:3210/mcp".into(),
        created_at: 1_700_000_100,
        expires_at: far,
        revoked_at: None,
    };
    s.create_grant(&grant, Some("h1"), far).await.unwrap();
    // h1 is now spent, h2 live.
    assert!(matches!(
        s.rotate_refresh("h1", "h2", far, 1_700_000_200, 0).await.unwrap(),
        Rotation::Rotated(_)
    ));
    let ended = GrantRecord {
        grant_id: "g0".into(),
        created_at: 1_700_000_050,
        revoked_at: Some(1_700_000_060),
        ..grant.clone()
    };
    s.create_grant(&ended, None, 0).await.unwrap();
    s.set_consent(&ConsentRecord {
        user_id: "ana".into(),
        client_id: "c1".into(),
        scopes: vec!["read".into()],
        given_at: 1_700_000_090,
    })
    .await
    .unwrap();
    s.insert_signing_key(&SigningKeyRecord {
        kid: "sk1".into(),
        alg: "ES256".into(),
        sealed: SealedCredential {
            nonce: vec![9; 12],
            ciphertext: vec![8, 7],
        },
        public_jwk: r#"{"kty":"EC"}"#.into(),
        created_at: 1_700_000_000,
        retired_at: Some(1_700_000_500),
    })
    .await
    .unwrap();
    let user = UserRecord {
        user_id: "ana".into(),
        tenant: Some("acme".into()),
        role: Role::Developer,
        via: "provider:corp:sub-ana".into(),
        email: Some("ana@example.com".into()),
        name: Some("Ana".into()),
        first_sign_in: 0,
        last_sign_in: 0,
        sign_ins: 0,
    };
    s.record_sign_in(&user, 1_700_000_000).await.unwrap();
    s.record_sign_in(&user, 1_700_000_600).await.unwrap();
    // More than two pages of the copy's 1000.
    let records: Vec<AuditRecord> = (0..2345).map(audit_record).collect();
    s.append(&records).await.unwrap();
    (key, live, revoked)
}

/// Everything a store holds that a copy carries, in a comparable shape.
async fn everything<S>(s: &S) -> Value
where
    S: KeyStore + CredentialStore + ClientStore + GrantStore + SigningKeyStore + UserStore + AuditStore,
{
    let mut keys = Vec::new();
    for k in s.list_keys().await.unwrap() {
        let used = s.last_used(&k.key_id).await.unwrap();
        keys.push(format!("{k:?} used {used:?}"));
    }
    let mut grants = Vec::new();
    for g in s.list_grants(None, None).await.unwrap() {
        let tokens = s.refresh_tokens(&g.grant_id).await.unwrap();
        grants.push(format!("{g:?} {tokens:?}"));
    }
    let audit = s
        .query(&AuditQuery {
            limit: 100_000,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    serde_json::json!({
        "keys": keys,
        "credentials": format!("{:?}", s.list_credentials().await.unwrap()),
        "clients": format!("{:?}", s.list_clients().await.unwrap()),
        "grants": grants,
        "consents": format!("{:?}", s.list_consents().await.unwrap()),
        "signing_keys": format!("{:?}", s.list_signing_keys().await.unwrap()),
        "users": format!("{:?}", s.list_users().await.unwrap()),
        "audit": audit,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_copy_moves_a_sqlite_store_into_postgres_and_back() {
    let Some(pg) = server("store_copy_moves_a_sqlite_store_into_postgres_and_back") else {
        return;
    };
    let url = pg.fresh_database().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let (key, live, revoked) = fill(&db).await;
    let source = everything(&SqliteStore::open(&db).unwrap()).await;
    let from = format!("sqlite://{}", db.display());

    let (ok, out, err) = mcpgate(&["store", "migrate"], &[("MCPGATE_STORE_URL", url.as_str())]);
    assert!(
        ok && out.contains("up to date") && out.contains("PostgreSQL (store.url)"),
        "{out}{err}"
    );
    assert!(!out.contains(&url));

    // Into the configured store (MCPGATE_STORE_URL): the URL stays off the command line.
    let (ok, out, err) = mcpgate(
        &["store", "copy", "--from", &from],
        &[("MCPGATE_STORE_URL", url.as_str())],
    );
    assert!(ok, "{err}");
    assert!(!out.contains(&url) && !err.contains(&url), "the URL is never printed");
    for line in [
        "keys              2",
        "held credentials  1",
        "clients           1",
        "grants            2 (with 2 refresh token(s))",
        "consents          1",
        "signing keys      1",
        "users             1",
        "audit records     2345",
        "not copied: authorization codes",
    ] {
        assert!(out.contains(line), "no {line:?} in\n{out}");
    }

    let pg_store = PostgresStore::connect(&url).await.unwrap();
    assert_eq!(everything(&pg_store).await, source, "PostgreSQL holds what SQLite held");
    assert!(
        pg_store.get_key(&revoked).await.unwrap().unwrap().revoked,
        "still revoked"
    );
    let k = pg_store.get_key(&live).await.unwrap().unwrap();
    assert_eq!(k.hash, hash_hex(&key), "the copied key verifies against its hash");
    assert!(!k.revoked && k.expires_at.is_some());
    // The CLI reads them back from PostgreSQL too.
    let pg_env = [("MCPGATE_STORE_URL", url.as_str())];
    let (ok, out, err) = mcpgate(&["audit", "--json", "--limit", "3"], &pg_env);
    assert!(ok && out.lines().count() == 3 && out.contains("req-2344"), "{out}{err}");
    let (ok, out, _) = mcpgate(&["users", "show", "ana"], &pg_env);
    assert!(ok && out.contains("\"sign_ins\": 2") && out.contains("\"g1\""), "{out}");
    let (ok, out, _) = mcpgate(&["clients", "list"], &pg_env);
    assert!(ok && out.contains("c1"), "{out}");

    // Once more: refused, then merged with every record skipped (the audit log appended again).
    let to = ["--to", url.as_str()];
    let (ok, _, err) = mcpgate(&["store", "copy", "--from", &from, to[0], to[1]], &[]);
    assert!(
        !ok && err.contains("already holds keys, clients, grants, users"),
        "{err}"
    );
    assert!(!err.contains(&url));
    let (ok, out, err) = mcpgate(&["store", "copy", "--from", &from, to[0], to[1], "--merge"], &[]);
    assert!(ok, "{err}");
    assert!(out.contains("keys              0, 2 skipped (already there)"), "{out}");
    assert!(
        out.contains("grants            0 (with 0 refresh token(s)), 2 skipped"),
        "{out}"
    );
    assert!(out.contains("users             0, 1 skipped"), "{out}");
    let (ok, _, err) = mcpgate(&["store", "copy", "--from", &from, "--to", &from], &[]);
    assert!(!ok && err.contains("same store"), "{err}");
    let missing = format!("sqlite://{}", dir.path().join("nope.db").display());
    let (ok, _, err) = mcpgate(&["store", "copy", "--from", &missing, "--to", &url], &[]);
    assert!(!ok && err.contains("no SQLite file"), "{err}");

    // And back out of PostgreSQL into a new SQLite file: the same again (audit log twice now).
    let back = dir.path().join("back.db");
    let (ok, out, err) = mcpgate(
        &[
            "store",
            "copy",
            "--from",
            &url,
            "--to",
            &format!("sqlite://{}", back.display()),
        ],
        &[],
    );
    assert!(ok && out.contains("audit records     4690"), "{out}{err}");
    let back = SqliteStore::open(&back).unwrap();
    let mut copied = everything(&back).await;
    let audit = copied["audit"].as_array().unwrap().clone();
    assert_eq!(&audit[..2345], source["audit"].as_array().unwrap().as_slice());
    copied["audit"] = source["audit"].clone();
    assert_eq!(copied, source, "SQLite → PostgreSQL → SQLite keeps every record");
    let (ok, out, _) = mcpgate(
        &["store", "migrate", "--url", &format!("sqlite://{}", db.display())],
        &[],
    );
    assert!(ok && out.contains("up to date"), "{out}");

    // The spent refresh token came over spent: presented again, it revokes its grant.
    let rotation = pg_store
        .rotate_refresh("h1", "h3", 4_000_000_000, 1_700_001_000, 0)
        .await
        .unwrap();
    assert_eq!(rotation, Rotation::Reused { grant_id: "g1".into() });
    assert!(pg_store.get_grant("g1").await.unwrap().unwrap().revoked_at.is_some());
}
