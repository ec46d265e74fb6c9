//! The conformance suite against both embedded stores: a real SQLite file (fresh per suite, then
//! reopened) and memory.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mcpgate_store::conformance;
use mcpgate_store::memory::MemoryStore;
use mcpgate_store::sqlite::SqliteStore;
use std::sync::Arc;

fn fresh_sqlite(dir: &tempfile::TempDir) -> Arc<SqliteStore> {
    let path = dir.path().join(format!("store-{}.db", rand_suffix()));
    Arc::new(SqliteStore::open(&path).expect("open a fresh SQLite store"))
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_passes_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    conformance::all(|| fresh_sqlite(&dir)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_keeps_everything_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("durable.db");
    conformance::survives_reopen(|| SqliteStore::open(&path)).await.unwrap();
}

/// Two handles on one file (a gateway and `mcpgate keys …`): a replay claimed through one is
/// refused through the other, and a key written through one is read through the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_two_handles_on_one_file_agree() {
    use mcpgate_store::{KeyStore, ReplayStore};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let a = SqliteStore::open(&path).unwrap();
    let b = SqliteStore::open(&path).unwrap();
    assert!(a.claim(b"sig", 100, 10).await.unwrap());
    assert!(!b.claim(b"sig", 100, 11).await.unwrap());
    let v = b.keys_version().await.unwrap();
    a.insert_key(&conformance::sample_key("k", 1)).await.unwrap();
    assert_ne!(b.keys_version().await.unwrap(), v);
    assert_eq!(b.get_key("k").await.unwrap(), Some(conformance::sample_key("k", 1)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_passes_the_suite() {
    conformance::all(|| Arc::new(MemoryStore::new())).await.unwrap();
}

/// The suite can fail: a store that forgets replays is caught.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_suite_catches_a_store_that_forgets_replays() {
    use mcpgate_store::{ReplayStore, Result, async_trait};
    struct Forgetful;
    #[async_trait]
    impl ReplayStore for Forgetful {
        async fn claim(&self, _: &[u8], _: i64, _: i64) -> Result<bool> {
            Ok(true)
        }
        async fn purge(&self, _: i64) -> Result<usize> {
            Ok(0)
        }
    }
    let err = conformance::replay(Arc::new(Forgetful)).await.unwrap_err();
    assert!(err.to_string().contains("replay was accepted"), "{err}");
}

/// The suite can fail: a store whose changes leave out removed credentials (a reader would go on
/// using a credential its owner took back) is caught.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_suite_catches_a_store_that_forgets_removed_credentials() {
    use mcpgate_core::keys::KeyRecord;
    use mcpgate_store::{CredentialStore, KeyChanges, KeyStore, Result, SealedCredential, async_trait};
    struct Forgetful(MemoryStore);
    #[async_trait]
    impl KeyStore for Forgetful {
        async fn list_keys(&self) -> Result<Vec<KeyRecord>> {
            self.0.list_keys().await
        }
        async fn get_key(&self, key_id: &str) -> Result<Option<KeyRecord>> {
            self.0.get_key(key_id).await
        }
        async fn insert_key(&self, record: &KeyRecord) -> Result<()> {
            self.0.insert_key(record).await
        }
        async fn revoke_key(&self, key_id: &str) -> Result<bool> {
            self.0.revoke_key(key_id).await
        }
        async fn set_key_expiry(&self, key_id: &str, expires_at: Option<i64>) -> Result<bool> {
            self.0.set_key_expiry(key_id, expires_at).await
        }
        async fn touch_keys(&self, used: &[(String, i64)]) -> Result<()> {
            self.0.touch_keys(used).await
        }
        async fn last_used(&self, key_id: &str) -> Result<Option<i64>> {
            self.0.last_used(key_id).await
        }
        async fn keys_version(&self) -> Result<i64> {
            self.0.keys_version().await
        }
        async fn key_changes_since(&self, version: i64) -> Result<Option<KeyChanges>> {
            let mut changes = self.0.key_changes_since(version).await?;
            if let Some(c) = &mut changes {
                c.credentials.retain(|(_, sealed)| sealed.is_some());
            }
            Ok(changes)
        }
    }
    #[async_trait]
    impl CredentialStore for Forgetful {
        async fn set_credential(&self, key_id: &str, sealed: &SealedCredential, now: i64) -> Result<()> {
            self.0.set_credential(key_id, sealed, now).await
        }
        async fn remove_credential(&self, key_id: &str) -> Result<bool> {
            self.0.remove_credential(key_id).await
        }
        async fn list_credentials(&self) -> Result<Vec<(String, SealedCredential)>> {
            self.0.list_credentials().await
        }
    }
    let err = conformance::key_changes(Arc::new(Forgetful(MemoryStore::new())))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("after a credential was removed"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_sessions_pass_the_suite() {
    conformance::sessions(Arc::new(MemoryStore::new())).await.unwrap();
}

/// The suite can fail: a store whose cap check and place-taking are two steps lets a race
/// overshoot the cap, and is caught.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_suite_catches_a_session_store_that_races() {
    use mcpgate_store::{OpenSession, Result, SessionStore, async_trait};
    /// Counts, yields, then takes: the check-then-act bug a shared backend could have.
    struct Racy(MemoryStore);
    #[async_trait]
    impl SessionStore for Racy {
        async fn reserve(&self, owner: Option<&str>, token: &str, cap: usize, now: i64, until: i64) -> Result<bool> {
            if self.0.count(owner, now).await? >= cap {
                return Ok(false);
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            self.0.reserve(owner, token, usize::MAX, now, until).await
        }
        async fn release(&self, token: &str) -> Result<()> {
            self.0.release(token).await
        }
        async fn open(&self, id: &str, owner: Option<&str>, token: Option<&str>, now: i64) -> Result<()> {
            self.0.open(id, owner, token, now).await
        }
        async fn touch(&self, id: &str, now: i64) -> Result<Option<OpenSession>> {
            self.0.touch(id, now).await
        }
        async fn close(&self, id: &str) -> Result<bool> {
            self.0.close(id).await
        }
        async fn count(&self, owner: Option<&str>, now: i64) -> Result<usize> {
            self.0.count(owner, now).await
        }
        async fn total(&self) -> Result<usize> {
            self.0.total().await
        }
        async fn list(&self, n: usize) -> Result<Vec<mcpgate_store::SessionInfo>> {
            self.0.list(n).await
        }
        async fn purge_idle(&self, before: i64, now: i64) -> Result<usize> {
            self.0.purge_idle(before, now).await
        }
    }
    let err = conformance::sessions(Arc::new(Racy(MemoryStore::new())))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("racing opens won"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_limits_pass_the_suite() {
    conformance::limits(Arc::new(mcpgate_core::ratelimit::LocalLimiter::default()))
        .await
        .unwrap();
}

/// The suite can fail: a limiter that admits everything is caught.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_suite_catches_a_limiter_that_never_limits() {
    use mcpgate_core::principal::Limits;
    use mcpgate_core::ratelimit::{Limited, Now, Remaining};
    use mcpgate_store::{LimitStore, Result, async_trait};
    struct Lenient;
    #[async_trait]
    impl LimitStore for Lenient {
        async fn check(
            &self,
            _: &str,
            _: &Limits,
            _: Option<(&str, &Limits)>,
            _: Now,
        ) -> Result<std::result::Result<(), Limited>> {
            Ok(Ok(()))
        }
        async fn remaining(&self, _: &str, _: &Limits, _: Now) -> Result<Remaining> {
            Ok(Remaining::default())
        }
    }
    let err = conformance::limits(Arc::new(Lenient)).await.unwrap_err();
    assert!(err.to_string().contains("was admitted"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_oauth_passes_the_suite() {
    conformance::clients(Arc::new(MemoryStore::new())).await.unwrap();
    conformance::grants(Arc::new(MemoryStore::new())).await.unwrap();
    conformance::signing_keys(Arc::new(MemoryStore::new())).await.unwrap();
    conformance::users(Arc::new(MemoryStore::new())).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_oauth_passes_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    conformance::clients(fresh_sqlite(&dir)).await.unwrap();
    conformance::grants(fresh_sqlite(&dir)).await.unwrap();
    conformance::signing_keys(fresh_sqlite(&dir)).await.unwrap();
    conformance::users(fresh_sqlite(&dir)).await.unwrap();
}

/// The suite through `Arc<dyn UserStore>`, as the gateway holds it, on both embedded stores.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn users_pass_the_suite_as_trait_objects() {
    use mcpgate_store::UserStore;
    let dir = tempfile::tempdir().unwrap();
    let stores: [Arc<dyn UserStore>; 2] = [Arc::new(MemoryStore::new()), fresh_sqlite(&dir)];
    for store in stores {
        conformance::users(store).await.unwrap();
    }
}

/// Two handles on one file (two gateways): racing sign-ins of one user through both are each
/// counted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_two_handles_count_every_sign_in() {
    use mcpgate_store::UserStore;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared-users.db");
    let a = Arc::new(SqliteStore::open(&path).unwrap());
    let b = Arc::new(SqliteStore::open(&path).unwrap());
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

/// The suite can fail: a user store that reads, yields, then writes loses racing sign-ins, and is
/// caught.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_suite_catches_a_user_store_that_races() {
    use mcpgate_store::{Result, UserRecord, UserStore, async_trait};
    use std::collections::HashMap;
    use std::sync::Mutex;
    /// Right one call at a time; two steps under a race.
    #[derive(Default)]
    struct Racy(Mutex<HashMap<String, UserRecord>>);
    #[async_trait]
    impl UserStore for Racy {
        async fn record_sign_in(&self, user: &UserRecord, now: i64) -> Result<UserRecord> {
            let known = self.0.lock().unwrap().get(&user.user_id).cloned();
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            let stored = match known {
                Some(k) => UserRecord {
                    first_sign_in: k.first_sign_in,
                    last_sign_in: k.last_sign_in.max(now),
                    sign_ins: k.sign_ins + 1,
                    ..user.clone()
                },
                None => UserRecord {
                    first_sign_in: now,
                    last_sign_in: now,
                    sign_ins: 1,
                    ..user.clone()
                },
            };
            self.0.lock().unwrap().insert(user.user_id.clone(), stored.clone());
            Ok(stored)
        }
        async fn get_user(&self, user_id: &str) -> Result<Option<UserRecord>> {
            Ok(self.0.lock().unwrap().get(user_id).cloned())
        }
        async fn list_users(&self) -> Result<Vec<UserRecord>> {
            let mut all: Vec<UserRecord> = self.0.lock().unwrap().values().cloned().collect();
            all.sort_by(|a, b| (a.first_sign_in, &a.user_id).cmp(&(b.first_sign_in, &b.user_id)));
            Ok(all)
        }
        async fn remove_user(&self, user_id: &str) -> Result<bool> {
            Ok(self.0.lock().unwrap().remove(user_id).is_some())
        }
    }
    let err = conformance::users(Arc::new(Racy::default())).await.unwrap_err();
    assert!(err.to_string().contains("racing sign-ins"), "{err}");
}

/// The suite can fail: a store that answers with the latest call's time as the last sign-in,
/// even when it is older, is caught.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_suite_catches_a_last_sign_in_that_goes_backwards() {
    use mcpgate_store::{Result, UserRecord, UserStore, async_trait};
    struct Backwards(MemoryStore);
    #[async_trait]
    impl UserStore for Backwards {
        async fn record_sign_in(&self, user: &UserRecord, now: i64) -> Result<UserRecord> {
            let mut got = self.0.record_sign_in(user, now).await?;
            got.last_sign_in = now;
            Ok(got)
        }
        async fn get_user(&self, user_id: &str) -> Result<Option<UserRecord>> {
            self.0.get_user(user_id).await
        }
        async fn list_users(&self) -> Result<Vec<UserRecord>> {
            self.0.list_users().await
        }
        async fn remove_user(&self, user_id: &str) -> Result<bool> {
            self.0.remove_user(user_id).await
        }
    }
    let err = conformance::users(Arc::new(Backwards(MemoryStore::new())))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("must not move backwards"), "{err}");
}

/// A store that is down fails every user call with its own text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_store_fails_every_user_call() {
    use mcpgate_store::unavailable::Unavailable;
    use mcpgate_store::{StoreError, UserStore};
    let s: Arc<dyn UserStore> = Arc::new(Unavailable("db down".into()));
    let down = |e: StoreError| matches!(e, StoreError::Backend(ref t) if t == "db down");
    assert!(down(
        s.record_sign_in(&conformance::sample_user("u"), 1).await.unwrap_err()
    ));
    assert!(down(s.get_user("u").await.unwrap_err()));
    assert!(down(s.list_users().await.unwrap_err()));
    assert!(down(s.remove_user("u").await.unwrap_err()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_keeps_oauth_records_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("durable-oauth.db");
    conformance::oauth_survives_reopen(|| SqliteStore::open(&path))
        .await
        .unwrap();
}

/// Two handles on one file (two gateways, or a gateway and `mcpgate clients …`): a code taken
/// through one is reused through the other, and racing rotations through both have one winner.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_two_handles_take_one_code_once() {
    use mcpgate_store::GrantStore;
    use mcpgate_store::oauth::{CodeTake, Rotation};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared-oauth.db");
    let a = Arc::new(SqliteStore::open(&path).unwrap());
    let b = Arc::new(SqliteStore::open(&path).unwrap());
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

/// The suite can fail: a store that lets a code be exchanged twice is caught.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_suite_catches_a_code_exchanged_twice() {
    use mcpgate_store::oauth::{CodeRecord, CodeTake, ConsentRecord, GrantRecord, Rotation};
    use mcpgate_store::{GrantStore, Result, async_trait};
    /// Takes the code, but answers a reuse as a first use.
    struct Forgetful(MemoryStore);
    #[async_trait]
    impl GrantStore for Forgetful {
        async fn put_code(&self, code: &CodeRecord) -> Result<()> {
            self.0.put_code(code).await
        }
        async fn take_code(&self, code_hash: &str, now: i64) -> Result<CodeTake> {
            Ok(match self.0.take_code(code_hash, now).await? {
                CodeTake::Reused(c) => CodeTake::Fresh(c),
                other => other,
            })
        }
        async fn create_grant(&self, g: &GrantRecord, refresh: Option<&str>, until: i64) -> Result<()> {
            self.0.create_grant(g, refresh, until).await
        }
        async fn get_grant(&self, id: &str) -> Result<Option<GrantRecord>> {
            self.0.get_grant(id).await
        }
        async fn list_grants(&self, user: Option<&str>, client: Option<&str>) -> Result<Vec<GrantRecord>> {
            self.0.list_grants(user, client).await
        }
        async fn revoke_grant(&self, id: &str, now: i64) -> Result<bool> {
            self.0.revoke_grant(id, now).await
        }
        async fn revoke_grants_via(&self, via: &str, now: i64) -> Result<usize> {
            self.0.revoke_grants_via(via, now).await
        }
        async fn revoked_since(&self, since: i64) -> Result<Vec<String>> {
            self.0.revoked_since(since).await
        }
        async fn rotate_refresh(&self, old: &str, new: &str, until: i64, now: i64, grace: i64) -> Result<Rotation> {
            self.0.rotate_refresh(old, new, until, now, grace).await
        }
        async fn grant_of_refresh(&self, hash: &str) -> Result<Option<GrantRecord>> {
            self.0.grant_of_refresh(hash).await
        }
        async fn set_consent(&self, c: &ConsentRecord) -> Result<()> {
            self.0.set_consent(c).await
        }
        async fn get_consent(&self, user: &str, client: &str) -> Result<Option<ConsentRecord>> {
            self.0.get_consent(user, client).await
        }
        async fn remove_consent(&self, user: &str, client: &str) -> Result<bool> {
            self.0.remove_consent(user, client).await
        }
        async fn prune_grants(&self, now: i64, keep: i64) -> Result<usize> {
            self.0.prune_grants(now, keep).await
        }
    }
    let err = conformance::grants(Arc::new(Forgetful(MemoryStore::new())))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("second take"), "{err}");
}
