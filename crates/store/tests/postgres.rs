//! The conformance suite against a real PostgreSQL server that these tests start themselves: a
//! throwaway cluster (`initdb` into a temporary directory, trust authentication for the user
//! `mcpgate`, listening on 127.0.0.1 and a free port), shared by the tests running at once and
//! stopped (`pg_ctl stop -m immediate`) when the last of them is done. Each suite gets a database
//! of its own, so the tests run in parallel.
//!
//! The binaries are looked for on `PATH`, then in `/usr/lib/postgresql/*/bin` (Debian's layout).
//! PostgreSQL refuses to run as root: as root, `initdb` and `pg_ctl` run as `nobody` (through
//! `runuser`, else `su`), in a directory under /tmp that `nobody` owns. Without the binaries the
//! tests fail, unless `MCPGATE_TEST_NO_POSTGRES=1`, when they say so and pass.

#![cfg(feature = "postgres-testing")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mcpgate_store::conformance;
use mcpgate_store::postgres::PostgresStore;
use mcpgate_store::postgres::testing::{Server, USER, free_port, server};
use std::future::Future;
use std::sync::Arc;

/// Runs `f` to completion from synchronous code inside the (multi-threaded) test runtime: the
/// suites open stores through plain closures.
fn block<F: Future>(f: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}

/// A store on a database of its own.
fn fresh_store(server: &Server) -> Arc<PostgresStore> {
    block(async {
        let url = server.fresh_database().await;
        Arc::new(
            PostgresStore::connect(&url)
                .await
                .expect("connect a fresh PostgreSQL store"),
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_passes_the_suite() {
    let Some(server) = server("postgres_passes_the_suite") else {
        return;
    };
    conformance::all(|| fresh_store(&server)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_keeps_everything_across_a_reopen() {
    let Some(server) = server("postgres_keeps_everything_across_a_reopen") else {
        return;
    };
    let url = server.fresh_database().await;
    conformance::survives_reopen(|| block(PostgresStore::connect(&url)))
        .await
        .unwrap();
}

/// Two stores on one database (two gateways, or a gateway and `mcpgate keys …`): a replay claimed
/// through one is refused through the other, and a key written through one is read through the
/// other.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_two_handles_on_one_database_agree() {
    use mcpgate_store::{KeyStore, ReplayStore};
    let Some(server) = server("postgres_two_handles_on_one_database_agree") else {
        return;
    };
    let url = server.fresh_database().await;
    let a = PostgresStore::connect(&url).await.unwrap();
    let b = PostgresStore::connect(&url).await.unwrap();
    assert!(a.claim(b"sig", 100, 10).await.unwrap());
    assert!(!b.claim(b"sig", 100, 11).await.unwrap());
    let v = b.keys_version().await.unwrap();
    a.insert_key(&conformance::sample_key("k", 1)).await.unwrap();
    assert_ne!(b.keys_version().await.unwrap(), v);
    assert_eq!(b.get_key("k").await.unwrap(), Some(conformance::sample_key("k", 1)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_oauth_passes_the_suite() {
    let Some(server) = server("postgres_oauth_passes_the_suite") else {
        return;
    };
    conformance::clients(fresh_store(&server)).await.unwrap();
    conformance::grants(fresh_store(&server)).await.unwrap();
    conformance::signing_keys(fresh_store(&server)).await.unwrap();
    conformance::users(fresh_store(&server)).await.unwrap();
}

/// The user suite through `Arc<dyn UserStore>`, as the gateway holds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_users_pass_the_suite_as_a_trait_object() {
    use mcpgate_store::UserStore;
    let Some(server) = server("postgres_users_pass_the_suite_as_a_trait_object") else {
        return;
    };
    let store: Arc<dyn UserStore> = fresh_store(&server);
    conformance::users(store).await.unwrap();
}

/// Two stores on one database (two gateways): racing sign-ins of one user through both are each
/// counted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_two_handles_count_every_sign_in() {
    use mcpgate_store::UserStore;
    let Some(server) = server("postgres_two_handles_count_every_sign_in") else {
        return;
    };
    let url = server.fresh_database().await;
    let a = Arc::new(PostgresStore::connect(&url).await.unwrap());
    let b = Arc::new(PostgresStore::connect(&url).await.unwrap());
    let t0 = conformance::T0;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            store.record_sign_in(&conformance::sample_user("shared"), t0 + i).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let got = b.get_user("shared").await.unwrap().unwrap();
    assert_eq!((got.sign_ins, got.last_sign_in), (40, t0 + 39));
    assert_eq!(a.get_user("shared").await.unwrap(), Some(got));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_keeps_oauth_records_across_a_reopen() {
    let Some(server) = server("postgres_keeps_oauth_records_across_a_reopen") else {
        return;
    };
    let url = server.fresh_database().await;
    conformance::oauth_survives_reopen(|| block(PostgresStore::connect(&url)))
        .await
        .unwrap();
}

/// Two stores on one database: a code taken through one is reused through the other, and racing
/// rotations through both have one winner.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_two_handles_take_one_code_once() {
    use mcpgate_store::GrantStore;
    use mcpgate_store::oauth::{CodeTake, Rotation};
    let Some(server) = server("postgres_two_handles_take_one_code_once") else {
        return;
    };
    let url = server.fresh_database().await;
    let a = Arc::new(PostgresStore::connect(&url).await.unwrap());
    let b = Arc::new(PostgresStore::connect(&url).await.unwrap());
    let t0 = conformance::T0;
    a.put_code(&conformance::sample_code("c", "g", t0 + 60)).await.unwrap();
    assert!(matches!(
        a.take_code(&conformance::hash("c"), t0).await.unwrap(),
        CodeTake::Fresh(_)
    ));
    assert!(matches!(
        b.take_code(&conformance::hash("c"), t0).await.unwrap(),
        CodeTake::Reused(_)
    ));

    let grant = conformance::sample_grant("g", "client-1", "alice", t0);
    a.create_grant(&grant, Some(&conformance::hash("rt")), t0 + 600)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let new = conformance::hash(&format!("rt-{i}"));
            store
                .rotate_refresh(&conformance::hash("rt"), &new, t0 + 600, t0 + 1, 0)
                .await
        }));
    }
    let mut rotated = 0;
    for t in tasks {
        if matches!(t.await.unwrap().unwrap(), Rotation::Rotated(_)) {
            rotated += 1;
        }
    }
    assert_eq!(rotated, 1, "racing rotations through two handles");
}

/// Replicas starting together on a new database: every connect succeeds (the migrations run
/// once, under the advisory lock), and connecting again later changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_racing_connects_migrate_once() {
    use mcpgate_store::KeyStore;
    let Some(server) = server("postgres_racing_connects_migrate_once") else {
        return;
    };
    let url = Arc::new(server.fresh_database().await);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move { PostgresStore::connect(&url).await }));
    }
    let mut stores = Vec::new();
    for t in tasks {
        stores.push(t.await.unwrap().expect("every racing connect succeeds"));
    }
    for s in &stores {
        assert_eq!(s.schema_version().await.unwrap(), PostgresStore::migrations());
    }
    stores[0].insert_key(&conformance::sample_key("k", 1)).await.unwrap();
    let version = stores[3].keys_version().await.unwrap();
    drop(stores);

    let again = PostgresStore::connect(&url).await.unwrap();
    assert_eq!(again.schema_version().await.unwrap(), PostgresStore::migrations());
    assert_eq!(
        again.keys_version().await.unwrap(),
        version,
        "a second connect changed the data"
    );
    assert_eq!(again.get_key("k").await.unwrap(), Some(conformance::sample_key("k", 1)));
}

/// A failing connect says why, and never repeats the URL's password: a closed port, a database
/// that does not exist, a URL that does not parse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_errors_never_show_the_password() {
    let Some(server) = server("postgres_errors_never_show_the_password") else {
        return;
    };
    let password = "Sup3r-s3cret-pa55word";
    let closed = free_port();
    let cases = [
        (
            format!("postgres://{USER}:{password}@127.0.0.1:{closed}/db?connect_timeout=5"),
            "cannot connect",
        ),
        (
            format!(
                "postgres://{USER}:{password}@127.0.0.1:{}/no_such_database",
                server.port
            ),
            "does not exist",
        ),
        (
            format!(
                "postgres://{USER}:{password}@127.0.0.1:{}/db?sslmode=sometimes",
                server.port
            ),
            "does not parse",
        ),
        (
            format!("postgres://{USER}:{password}@127.0.0.1:not-a-port/db"),
            "does not parse",
        ),
        (
            format!(
                "postgres://{USER}:{password}@127.0.0.1:{}/db?sslmode=require",
                server.port
            ),
            "TLS",
        ),
        (
            format!("host=127.0.0.1 port={closed} user={USER} password={password} dbname=db"),
            "cannot connect",
        ),
    ];
    for (url, why) in cases {
        let err = PostgresStore::connect(&url)
            .await
            .expect_err("a connect that must fail");
        let text = err.to_string();
        let debug = format!("{err:?}");
        eprintln!("{why}: {text}");
        assert!(
            !text.contains(password) && !debug.contains(password),
            "the error shows the password: {text}"
        );
        assert!(!text.contains(&url), "the error shows the URL: {text}");
        assert!(text.contains(why), "the error for {why:?} says {text}");
    }
}
