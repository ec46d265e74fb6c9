//! The store conformance suite: what every backend must do, written once. A backend's tests call
//! these functions with a fresh store (and, for durable backends, a way to open the same store
//! again); each returns `Err` naming the first rule broken. The embedded SQLite and in-memory
//! stores run it in `cargo test` (`tests/conformance.rs`); a PostgreSQL or Redis backend must
//! pass the same functions unchanged.
//!
//! ```no_run
//! # async fn t() -> Result<(), mcpgate_store::conformance::Failure> {
//! use std::sync::Arc;
//! let store = Arc::new(mcpgate_store::memory::MemoryStore::new());
//! mcpgate_store::conformance::keys(store.clone()).await?;
//! mcpgate_store::conformance::replay(store).await?;
//! # Ok(()) }
//! ```

use crate::{AuditStore, CredentialStore, KeyStore, ReplayStore, SealedCredential, StoreError};
use mcpgate_core::audit::{AuditQuery, AuditRecord, Dimension, Usage, UsageQuery};
use mcpgate_core::keys::{KeyRecord, hash_hex};
use mcpgate_core::principal::{Limits, Role};
use std::sync::Arc;

/// A rule the store broke, in words.
#[derive(Debug)]
pub struct Failure(pub String);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failure {}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Failure {
        Failure(format!("the store failed: {e}"))
    }
}

pub type Outcome = Result<(), Failure>;

macro_rules! ensure {
    ($cond:expr, $($what:tt)+) => {
        if !$cond {
            return Err(Failure(format!($($what)+)));
        }
    };
}

mod changes;
mod limits;
mod oauth;
mod sessions;
pub use changes::key_changes;
pub use limits::limits;
pub use oauth::{
    T0, all_oauth, clients, grants, hash, oauth_survives_reopen, sample_client, sample_code, sample_grant,
    sample_signing_key, sample_subject, sample_user, signing_keys, users,
};
pub use sessions::sessions;

/// A key record with every field set, so a round trip that drops one is seen.
pub fn sample_key(key_id: &str, created_at: i64) -> KeyRecord {
    KeyRecord {
        key_id: key_id.into(),
        hash: hash_hex(key_id),
        name: format!("name of {key_id}"),
        user_id: format!("user-{key_id}"),
        tenant: Some("tenant-1".into()),
        role: Role::Developer,
        permissions: vec!["read".into(), "tools:echo".into()],
        limits: Limits {
            per_minute: Some(5),
            per_hour: None,
            per_day: Some(u32::MAX),
        },
        expires_at: Some(4_102_444_800),
        created_at,
        revoked: false,
        source: "store".into(),
    }
}

/// An audit record with every field set.
pub fn sample_record(seq: i64, user: &str, tool: &str, decision: &str) -> AuditRecord {
    AuditRecord {
        time_ms: seq,
        request_id: format!("req-{seq}"),
        event: "call".into(),
        principal: Some(format!("key:{user}")),
        key_id: Some(format!("k-{user}")),
        user_id: Some(user.into()),
        tenant: Some("t\u{e9}nant \"quoted\"".into()),
        auth_method: Some("api_key".into()),
        client_addr: Some("127.0.0.1".into()),
        mcp_method: Some("tools/call".into()),
        tool: Some(tool.into()),
        decision: decision.into(),
        reason: "ok".into(),
        status: 200,
        latency_us: 1234,
        client_id: Some(format!("client-of-{user}")),
    }
}

/// Keys: round trip of every field, uniqueness (also under a race), order, revoke, expiry,
/// last-used times that never go backwards, and a version that moves on every change.
pub async fn keys<S: KeyStore + 'static>(store: Arc<S>) -> Outcome {
    let s = store.as_ref();
    ensure!(s.list_keys().await?.is_empty(), "a fresh store lists keys");
    ensure!(s.get_key("nope").await?.is_none(), "an unknown key id is found");
    let v0 = s.keys_version().await?;

    let a = sample_key("ka", 20);
    s.insert_key(&a).await?;
    ensure!(
        s.get_key("ka").await? == Some(a.clone()),
        "a key does not read back as written"
    );
    let v1 = s.keys_version().await?;
    ensure!(v1 != v0, "inserting a key did not change the version");
    match s.insert_key(&sample_key("ka", 99)).await {
        Err(StoreError::Duplicate(id)) => ensure!(id == "ka", "the duplicate error names {id}, not ka"),
        other => return Err(Failure(format!("a second key with the same id gave {other:?}"))),
    }
    ensure!(
        s.get_key("ka").await? == Some(a.clone()),
        "a refused duplicate changed the first key"
    );

    // Oldest first, ties by id.
    s.insert_key(&sample_key("kc", 10)).await?;
    s.insert_key(&sample_key("kb", 10)).await?;
    let order: Vec<String> = s.list_keys().await?.into_iter().map(|k| k.key_id).collect();
    ensure!(order == ["kb", "kc", "ka"], "list_keys order is {order:?}");
    let mut all: Vec<String> = s.all_keys().await?.into_iter().map(|k| k.key_id).collect();
    all.sort();
    ensure!(all == ["ka", "kb", "kc"], "all_keys is {all:?}");

    let v2 = s.keys_version().await?;
    ensure!(s.revoke_key("ka").await?, "revoking an existing key answered false");
    ensure!(!s.revoke_key("missing").await?, "revoking a missing key answered true");
    ensure!(
        s.get_key("ka").await?.is_some_and(|k| k.revoked),
        "a revoked key is not revoked"
    );
    let v3 = s.keys_version().await?;
    ensure!(v3 != v2, "revoking did not change the version");

    ensure!(
        s.set_key_expiry("kb", Some(77)).await?,
        "setting an expiry answered false"
    );
    ensure!(
        s.get_key("kb").await?.is_some_and(|k| k.expires_at == Some(77)),
        "the expiry was not set"
    );
    ensure!(s.set_key_expiry("kb", None).await?, "clearing an expiry answered false");
    ensure!(
        s.get_key("kb").await?.is_some_and(|k| k.expires_at.is_none()),
        "the expiry was not cleared"
    );
    ensure!(
        !s.set_key_expiry("missing", Some(1)).await?,
        "an expiry was set on a missing key"
    );
    ensure!(
        s.keys_version().await? != v3,
        "changing an expiry did not change the version"
    );

    ensure!(s.last_used("kc").await?.is_none(), "an unused key has a last-used time");
    s.touch_keys(&[("kc".into(), 500), ("missing".into(), 1)]).await?;
    s.touch_keys(&[("kc".into(), 400)]).await?;
    ensure!(
        s.last_used("kc").await? == Some(500),
        "a last-used time went backwards or was lost"
    );
    ensure!(
        s.last_used("missing").await?.is_none(),
        "a missing key got a last-used time"
    );

    // A race: 32 writers, 8 of them on one id. Every distinct id lands; one id has one winner.
    let mut tasks = Vec::new();
    for i in 0..32 {
        let store = store.clone();
        let id = if i < 8 { "race".to_string() } else { format!("r{i}") };
        tasks.push(tokio::spawn(async move {
            store.insert_key(&sample_key(&id, 1000 + i)).await
        }));
    }
    let (mut ok, mut dup) = (0, 0);
    for t in tasks {
        match t.await.map_err(|e| Failure(format!("a writer task failed: {e}")))? {
            Ok(()) => ok += 1,
            Err(StoreError::Duplicate(_)) => dup += 1,
            Err(e) => return Err(e.into()),
        }
    }
    ensure!(
        ok == 25 && dup == 7,
        "32 racing inserts (8 on one id): {ok} ok, {dup} duplicates"
    );
    ensure!(s.list_keys().await?.len() == 3 + 25, "keys lost in the race");
    Ok(())
}

/// What a durable backend keeps across a reopen: keys, their changes, last-used times, held
/// credentials, audit records, live replay entries. `open` opens the same store each time.
pub async fn survives_reopen<S, F>(open: F) -> Outcome
where
    S: KeyStore + CredentialStore + AuditStore + ReplayStore,
    F: Fn() -> crate::Result<S>,
{
    let cred = SealedCredential {
        nonce: vec![7; 12],
        ciphertext: vec![1, 2, 3, 0, 255],
    };
    let version = {
        let s = open()?;
        s.insert_key(&sample_key("durable", 5)).await?;
        s.revoke_key("durable").await?;
        s.touch_keys(&[("durable".into(), 42)]).await?;
        s.set_credential("durable", &cred, 6).await?;
        s.append(&[sample_record(1, "alice", "echo", "allow")]).await?;
        ensure!(s.claim(b"nonce", 2_000, 1_000).await?, "a fresh nonce was refused");
        s.keys_version().await?
    };
    let s = open()?;
    let mut want = sample_key("durable", 5);
    want.revoked = true;
    ensure!(
        s.get_key("durable").await? == Some(want),
        "a key or its revocation was lost on reopen"
    );
    ensure!(
        s.last_used("durable").await? == Some(42),
        "a last-used time was lost on reopen"
    );
    ensure!(
        s.list_credentials().await? == vec![("durable".to_string(), cred)],
        "a held credential was lost on reopen"
    );
    ensure!(
        s.query(&AuditQuery::default()).await? == vec![sample_record(1, "alice", "echo", "allow")],
        "an audit record was lost on reopen"
    );
    ensure!(
        !s.claim(b"nonce", 2_000, 1_001).await?,
        "a replay passed after a reopen"
    );
    ensure!(s.keys_version().await? == version, "the keys version moved on reopen");
    Ok(())
}

/// Held credentials: set, replace, list, remove, and each change moves the keys version.
pub async fn credentials<S: KeyStore + CredentialStore + 'static>(store: Arc<S>) -> Outcome {
    let s = store.as_ref();
    ensure!(
        s.list_credentials().await?.is_empty(),
        "a fresh store holds credentials"
    );
    let v0 = s.keys_version().await?;
    let first = SealedCredential {
        nonce: vec![1; 12],
        ciphertext: vec![9; 40],
    };
    let second = SealedCredential {
        nonce: vec![2; 12],
        ciphertext: vec![0; 3],
    };
    s.set_credential("a", &first, 1).await?;
    let v1 = s.keys_version().await?;
    ensure!(v1 != v0, "holding a credential did not change the keys version");
    s.set_credential("a", &second, 2).await?;
    s.set_credential("b", &first, 2).await?;
    ensure!(
        s.keys_version().await? != v1,
        "replacing a credential did not change the keys version"
    );
    ensure!(
        s.list_credentials().await? == vec![("a".to_string(), second), ("b".to_string(), first.clone())],
        "credentials did not read back as written (replaced, ordered by key id)"
    );
    ensure!(
        s.remove_credential("a").await?,
        "removing a held credential answered false"
    );
    ensure!(!s.remove_credential("a").await?, "removing it twice answered true");
    ensure!(
        s.list_credentials().await? == vec![("b".to_string(), first)],
        "a removed credential is still listed"
    );
    Ok(())
}

/// Audit: every field round-trips, filters, the newest `limit` in append order, prune, and
/// concurrent batches all land whole.
pub async fn audit<S: AuditStore + 'static>(store: Arc<S>) -> Outcome {
    let s = store.as_ref();
    ensure!(
        s.query(&AuditQuery::default()).await?.is_empty(),
        "a fresh store has audit records"
    );
    let batch = vec![
        sample_record(10, "alice", "echo", "allow"),
        sample_record(20, "bob", "echo", "deny"),
        sample_record(30, "alice", "crash", "deny"),
        sample_record(30, "carol", "echo", "allow"),
    ];
    s.append(&batch).await?;
    ensure!(
        s.query(&AuditQuery::default()).await? == batch,
        "records did not read back as appended"
    );
    let q = |user: Option<&str>, tool: Option<&str>, decision: Option<&str>, since: Option<i64>, limit| AuditQuery {
        since_ms: since,
        user: user.map(str::to_string),
        tool: tool.map(str::to_string),
        decision: decision.map(str::to_string),
        limit,
        ..AuditQuery::default()
    };
    let ids = |v: Vec<AuditRecord>| v.into_iter().map(|r| r.request_id).collect::<Vec<_>>();
    let got = ids(s.query(&q(Some("alice"), None, None, None, 0)).await?);
    ensure!(got == ["req-10", "req-30"], "user filter: {got:?}");
    let got = ids(s.query(&q(None, Some("echo"), Some("allow"), None, 0)).await?);
    ensure!(got == ["req-10", "req-30"], "tool + decision filter: {got:?}");
    let got = s.query(&q(None, None, None, Some(20), 0)).await?.len();
    ensure!(got == 3, "since filter (inclusive) gave {got} records");
    let got = s.query(&q(None, None, None, None, 2)).await?;
    ensure!(got == batch[2..], "limit 2 gave {:?}", ids(got));
    ensure!(
        s.query(&q(Some("nobody"), None, None, None, 0)).await?.is_empty(),
        "a filter matched nothing but answered"
    );

    // 16 concurrent batches of 25: all 400 land, each batch in its own order.
    let mut tasks = Vec::new();
    for b in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let recs: Vec<AuditRecord> = (0..25)
                .map(|i| sample_record(1000 + b * 100 + i, &format!("w{b}"), "echo", "allow"))
                .collect();
            store.append(&recs).await
        }));
    }
    for t in tasks {
        t.await.map_err(|e| Failure(format!("an append task failed: {e}")))??;
    }
    for b in 0..16 {
        let mine = s.query(&q(Some(&format!("w{b}")), None, None, None, 1000)).await?;
        let times: Vec<i64> = mine.iter().map(|r| r.time_ms).collect();
        let want: Vec<i64> = (0..25).map(|i| 1000 + b * 100 + i).collect();
        ensure!(times == want, "concurrent batch {b} read back as {times:?}");
    }
    search_and_usage(s, &batch).await?;
    let pruned = s.prune(1000).await?;
    ensure!(pruned == 4, "prune before 1000 removed {pruned}, not 4");
    ensure!(
        // The 400 concurrent ones, and the one `search_and_usage` appended at 5000.
        s.query(&q(None, None, None, None, 1000)).await?.len() == 401,
        "prune removed newer records"
    );
    Ok(())
}

/// The admin API's reads: filters on every field, pages backwards by number without gaps or
/// repeats (also while records are appended), and usage that agrees with counting the records
/// one by one. Called with the first batch appended and the 400 concurrent ones after it.
async fn search_and_usage(s: &dyn AuditStore, first: &[AuditRecord]) -> Outcome {
    let all = s
        .search(&AuditQuery {
            limit: 10_000,
            ..AuditQuery::default()
        })
        .await?;
    ensure!(all.len() == 404, "search gave {} records, not 404", all.len());
    ensure!(
        all.windows(2).all(|w| w[0].0 > w[1].0),
        "search is not newest first by number"
    );
    ensure!(
        all.last().map(|(_, r)| r) == first.first(),
        "the oldest record is not the first appended"
    );
    // Pages of 7 backwards: every record once, in order.
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = s
            .search(&AuditQuery {
                before,
                limit: 7,
                ..AuditQuery::default()
            })
            .await?;
        let Some((last, _)) = page.last() else { break };
        ensure!(page.len() <= 7, "a page of 7 held {}", page.len());
        before = Some(*last);
        seen.extend(page.into_iter().map(|(n, _)| n));
        if seen.len() > 500 {
            break;
        }
        if seen.len() == 14 {
            // New records do not shift the pages still to read.
            s.append(&[sample_record(5000, "late", "echo", "allow")]).await?;
        }
    }
    let want: Vec<u64> = all.iter().map(|(n, _)| *n).collect();
    ensure!(
        seen == want,
        "paging backwards gave {} numbers, not the {} records in order",
        seen.len(),
        want.len()
    );
    let q = |f: &dyn Fn(&mut AuditQuery)| {
        let mut q = AuditQuery {
            limit: 10_000,
            ..AuditQuery::default()
        };
        f(&mut q);
        q
    };
    let cases: [(&str, AuditQuery, usize); 7] = [
        ("key_id", q(&|q| q.key_id = Some("k-alice".into())), 2),
        ("client_id", q(&|q| q.client_id = Some("client-of-w3".into())), 25),
        ("event", q(&|q| q.event = Some("call".into())), 405),
        ("event none", q(&|q| q.event = Some("admin".into())), 0),
        ("until (exclusive)", q(&|q| q.until_ms = Some(30)), 2),
        (
            "since + until",
            q(&|q| (q.since_ms, q.until_ms) = (Some(1000), Some(1100))),
            25,
        ),
        (
            "decision + user",
            q(&|q| (q.decision, q.user) = (Some("deny".into()), Some("alice".into()))),
            1,
        ),
    ];
    for (what, query, n) in cases {
        let got = s.search(&query).await?;
        ensure!(got.len() == n, "{what} filter gave {} records, not {n}", got.len());
        ensure!(
            got.iter().all(|(_, r)| query.matches(r)),
            "{what} filter let through a record it does not match"
        );
    }
    // Usage: as counting one by one.
    let records: Vec<AuditRecord> = s
        .search(&AuditQuery {
            limit: 10_000,
            ..AuditQuery::default()
        })
        .await?
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    for by in [
        Dimension::Key,
        Dimension::User,
        Dimension::Tool,
        Dimension::Client,
        Dimension::Reason,
    ] {
        for (since, until, width, top) in [
            (0, 2000, 100, 5),
            (15, 1016, 7, 3),
            (0, 6000, 6000, 100),
            (3000, 4000, 10, 5),
        ] {
            let uq = UsageQuery {
                since_ms: since,
                until_ms: until,
                bucket_ms: width,
                by,
                top,
            };
            let got = s.usage(&uq).await?;
            let want = Usage::tally(&uq, &records);
            ensure!(
                got == want,
                "usage by {by:?} over {since}..{until}/{width}: {got:?}, counted {want:?}"
            );
        }
    }
    let uq = UsageQuery {
        since_ms: 0,
        until_ms: 40,
        bucket_ms: 10,
        by: Dimension::User,
        top: 2,
    };
    let u = s.usage(&uq).await?;
    let per: Vec<u64> = u.buckets.iter().map(|b| b.counts.total()).collect();
    ensure!(per == [0, 1, 1, 2], "buckets {per:?}, not [0, 1, 1, 2]");
    ensure!(u.total.allow == 2 && u.total.deny == 2, "totals {:?}", u.total);
    let top: Vec<&str> = u.top.iter().map(|t| t.value.as_str()).collect();
    ensure!(top == ["alice", "bob"], "top users {top:?}");
    Ok(())
}

/// Replay: first use wins once, expiry frees a key, expired or out-of-window claims are not
/// remembered, keys are compared whole, and one of many racing claims wins.
pub async fn replay<S: ReplayStore + 'static>(store: Arc<S>) -> Outcome {
    let s = store.as_ref();
    let now = 1_000_000;
    ensure!(s.claim(b"sig-1", now + 300, now).await?, "a first use was refused");
    ensure!(!s.claim(b"sig-1", now + 300, now + 1).await?, "a replay was accepted");
    ensure!(
        !s.claim(b"sig-1", now + 900, now + 2).await?,
        "a replay with another expiry was accepted"
    );
    ensure!(s.claim(b"sig-2", now + 300, now).await?, "a different key was refused");
    ensure!(
        s.claim(b"sig-1\0", now + 300, now).await?,
        "a longer key was taken for a shorter one"
    );
    ensure!(s.claim(&[0xff; 64], now + 300, now).await?, "a binary key was refused");
    // Once expired (at its expiry or after), the same key is a first use again.
    ensure!(
        s.claim(b"sig-1", now + 1000, now + 300).await?,
        "an expired entry still blocked its key"
    );
    ensure!(
        !s.claim(b"sig-1", now + 1000, now + 301).await?,
        "the renewed entry did not block"
    );
    // Already expired when claimed: accepted and not remembered.
    ensure!(
        s.claim(b"old", now - 1, now).await?,
        "an out-of-window claim was refused"
    );
    ensure!(
        s.claim(b"old", now + 5, now).await?,
        "an out-of-window claim was remembered"
    );

    // Purge forgets what has expired, and only that.
    ensure!(s.claim(b"short", now + 10, now).await?, "a first use was refused");
    s.purge(now + 10).await?;
    ensure!(
        s.claim(b"short", now + 20, now + 10).await?,
        "a purged key still blocked"
    );
    ensure!(
        !s.claim(b"sig-2", now + 300, now + 11).await?,
        "purge forgot a live entry"
    );

    // 32 racing claims of one key: exactly one wins.
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move { store.claim(b"raced", now + 60, now).await }));
    }
    let mut won = 0;
    for t in tasks {
        if t.await.map_err(|e| Failure(format!("a claim task failed: {e}")))?? {
            won += 1;
        }
    }
    ensure!(won == 1, "{won} of 32 racing claims of one key won");
    Ok(())
}

/// Every suite that a fresh store of each kind must pass.
pub async fn all<S>(store: impl Fn() -> Arc<S>) -> Outcome
where
    S: KeyStore + CredentialStore + AuditStore + ReplayStore + 'static,
{
    keys(store()).await?;
    key_changes(store()).await?;
    credentials(store()).await?;
    audit(store()).await?;
    replay(store()).await
}
