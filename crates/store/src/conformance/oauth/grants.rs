//! Grants, codes, consents and pruning; refresh-token rotation is in `refresh.rs`.

use super::{T0, hash, ids, refresh, sample_code, sample_grant};
use crate::StoreError;
use crate::conformance::{Failure, Outcome};
use crate::oauth::{CodeTake, ConsentRecord, GrantRecord, GrantStore, Rotation};
use std::sync::Arc;

/// Far past every other time the suite uses, so `revoked_since` sees only its own section.
const LATE: i64 = T0 + 10_000_000;

/// Grants: pruning (what goes, what stays, how many went); listing newest first by user and by
/// client; codes taken once (also under a race of 32), a reused code found as such, an expired one
/// unknown, a code hash written once; refresh-token rotation (see below); revocation one by one,
/// by `via` and as seen by `revoked_since`; consents set, replaced and removed.
///
/// Rotation: a live token is spent and its grant returned; a spent token is accepted once more
/// strictly within the grace window, and otherwise (or the second time) revokes the grant, whose
/// tokens then end; a token or grant past its end refuses without revoking; of 16 racing
/// rotations of one token with no grace exactly one wins, with grace at most two.
pub async fn grants<S: GrantStore + 'static>(store: Arc<S>) -> Outcome {
    let s = store.as_ref();
    // Pruning first, while the store holds nothing else, so its count is exact.
    prune(s).await?;
    list(s).await?;
    codes(store.clone()).await?;
    refresh::rotation(s).await?;
    refresh::races(store.clone()).await?;
    revocation(s).await?;
    consents(s).await
}

fn grant_of(id: &str, user: &str, client: &str, created_at: i64) -> GrantRecord {
    sample_grant(id, client, user, created_at)
}

async fn prune<S: GrantStore>(s: &S) -> Outcome {
    let user = "prune-user";
    s.put_code(&sample_code("old", "pg-old", T0 + 10)).await?;
    s.put_code(&sample_code("old-taken", "pg-old-taken", T0 + 10)).await?;
    s.put_code(&sample_code("live", "pg-live-code", T0 + 1_000)).await?;
    s.take_code(&hash("old-taken"), T0 + 1).await?;
    let g = |id: &str| grant_of(id, user, "prune-client", T0);
    s.create_grant(&g("p-live"), Some(&hash("p-live-0")), T0 + 5_000)
        .await?;
    let r = s
        .rotate_refresh(&hash("p-live-0"), &hash("p-live-1"), T0 + 5_000, T0 + 5, 0)
        .await?;
    ensure!(matches!(r, Rotation::Rotated(_)), "a live refresh token gave {r:?}");
    s.create_grant(&g("p-short"), Some(&hash("p-short")), T0 + 100).await?;
    let expired = GrantRecord {
        expires_at: T0 + 50,
        ..g("p-expired")
    };
    s.create_grant(&expired, Some(&hash("p-expired")), T0 + 5_000).await?;
    s.create_grant(&g("p-rev-old"), Some(&hash("p-rev-old")), T0 + 5_000)
        .await?;
    s.revoke_grant("p-rev-old", T0 + 10).await?;
    s.create_grant(&g("p-rev-new"), Some(&hash("p-rev-new")), T0 + 5_000)
        .await?;
    s.revoke_grant("p-rev-new", T0 + 150).await?;
    let expired_revoked = GrantRecord {
        expires_at: T0 + 120,
        ..g("p-rev-new-expired")
    };
    s.create_grant(&expired_revoked, None, 0).await?;
    s.revoke_grant("p-rev-new-expired", T0 + 150).await?;

    let went = s.prune_grants(T0 + 200, 100).await?;
    ensure!(
        went == 7,
        "prune at T0+200 keeping revoked grants 100 s removed {went} records, not 7 (codes old and old-taken; grants p-expired and p-rev-old; refresh tokens p-short, p-expired and p-rev-old)"
    );
    for id in ["p-expired", "p-rev-old"] {
        ensure!(s.get_grant(id).await?.is_none(), "prune kept the ended grant {id}");
    }
    for t in ["p-expired", "p-rev-old", "p-short"] {
        ensure!(
            s.grant_of_refresh(&hash(t)).await?.is_none(),
            "prune kept the ended refresh token {t}"
        );
    }
    let r = s
        .rotate_refresh(&hash("p-rev-old"), &hash("x"), T0 + 5_000, T0 + 201, 0)
        .await?;
    ensure!(r == Rotation::Unknown, "a pruned refresh token gave {r:?}, not Unknown");
    for id in ["p-live", "p-short", "p-rev-new", "p-rev-new-expired"] {
        ensure!(s.get_grant(id).await?.is_some(), "prune removed the grant {id}");
    }
    ensure!(
        s.grant_of_refresh(&hash("p-live-1")).await?.is_some()
            && s.grant_of_refresh(&hash("p-rev-new")).await?.is_some(),
        "prune removed a live refresh token"
    );
    ensure!(
        s.grant_of_refresh(&hash("p-live-0")).await?.is_some(),
        "prune forgot a spent refresh token of a live grant (its reuse would no longer revoke the grant)"
    );
    let mut since = s.revoked_since(T0).await?;
    since.sort();
    ensure!(
        since == ["p-rev-new", "p-rev-new-expired"],
        "after a prune revoked_since lists {since:?} (a grant revoked within keep_revoked_s must stay listed, even once expired)"
    );
    ensure!(
        matches!(s.take_code(&hash("live"), T0 + 200).await?, CodeTake::Fresh(_)),
        "prune removed a live code"
    );
    ensure!(s.prune_grants(T0 + 200, 100).await? == 0, "a second prune removed more");
    // Revoked exactly keep_revoked_s ago: kept; a second more: gone, with its token.
    ensure!(
        s.prune_grants(T0 + 250, 100).await? == 0,
        "prune removed a grant revoked exactly keep_revoked_s ago (only more than that ago goes)"
    );
    let went = s.prune_grants(T0 + 251, 100).await?;
    ensure!(
        went == 3,
        "prune of grants revoked more than keep_revoked_s ago removed {went} records, not 3 (two grants and one refresh token)"
    );
    Ok(())
}

async fn list<S: GrantStore>(s: &S) -> Outcome {
    let all = [
        grant_of("l-1", "lu-1", "lc-1", T0 + 1),
        grant_of("l-2", "lu-1", "lc-2", T0 + 2),
        grant_of("l-3", "lu-2", "lc-2", T0 + 3),
        grant_of("l-4", "lu-1", "lc-2", T0 + 4),
        grant_of("l-5", "lu-3", "lc-3", T0 + 5),
        grant_of("l-6", "lu-3", "lc-3", T0 + 5),
    ];
    for g in &all {
        s.create_grant(g, None, 0).await?;
    }
    s.revoke_grant("l-4", T0 + 6).await?;
    let mut l4 = all[3].clone();
    l4.revoked_at = Some(T0 + 6);
    ensure!(
        s.list_grants(Some("lu-1"), None).await? == vec![l4.clone(), all[1].clone(), all[0].clone()],
        "one user's grants do not read back in full, newest first, revoked ones too"
    );
    let by_client = ids(&s.list_grants(None, Some("lc-2")).await?, |g| &g.grant_id);
    ensure!(
        by_client == ["l-4", "l-3", "l-2"],
        "one client's grants are {by_client:?}"
    );
    let both = ids(&s.list_grants(Some("lu-1"), Some("lc-2")).await?, |g| &g.grant_id);
    ensure!(both == ["l-4", "l-2"], "one user's grants with one client are {both:?}");
    let ties = ids(&s.list_grants(Some("lu-3"), None).await?, |g| &g.grant_id);
    ensure!(
        ties == ["l-6", "l-5"],
        "grants created at one time are {ties:?}, not by id descending"
    );
    ensure!(
        s.list_grants(Some("nobody"), None).await?.is_empty(),
        "a user with no grants has some"
    );
    let every = s.list_grants(None, None).await?;
    ensure!(
        every.windows(2).all(|w| w[0].created_at >= w[1].created_at),
        "all grants are not newest first"
    );
    let mine: Vec<String> = ids(&every, |g| &g.grant_id)
        .into_iter()
        .filter(|id| id.starts_with("l-"))
        .collect();
    ensure!(
        mine == ["l-6", "l-5", "l-4", "l-3", "l-2", "l-1"],
        "all grants list {mine:?}"
    );
    Ok(())
}

async fn codes<S: GrantStore + 'static>(store: Arc<S>) -> Outcome {
    let s = store.as_ref();
    let code = sample_code("c-a", "cg-a", T0 + 600);
    s.put_code(&code).await?;
    let got = s.take_code(&hash("c-a"), T0 + 1).await?;
    ensure!(
        got == CodeTake::Fresh(code.clone()),
        "a code's first take gave {got:?}, not Fresh with every field as written"
    );
    let got = s.take_code(&hash("c-a"), T0 + 2).await?;
    ensure!(
        got == CodeTake::Reused(code.clone()),
        "a code's second take gave {got:?}, not Reused"
    );
    match s.put_code(&code).await {
        Err(StoreError::Duplicate(_)) => {}
        other => {
            return Err(Failure(format!(
                "a code hash written twice gave {other:?}, not Duplicate"
            )));
        }
    }
    let got = s.take_code(&hash("c-a"), T0 + 3).await?;
    ensure!(
        got == CodeTake::Reused(code),
        "a taken code written again came back as {got:?} (it must stay spent)"
    );
    let got = s.take_code(&hash("never"), T0 + 3).await?;
    ensure!(got == CodeTake::Unknown, "a code never issued gave {got:?}");

    // Live until its expires_at; at it, unknown, taken or not.
    s.put_code(&sample_code("c-exp", "cg-exp", T0 + 100)).await?;
    let got = s.take_code(&hash("c-exp"), T0 + 100).await?;
    ensure!(
        got == CodeTake::Unknown,
        "a code taken at its expiry gave {got:?}, not Unknown"
    );
    s.put_code(&sample_code("c-edge", "cg-edge", T0 + 100)).await?;
    ensure!(
        matches!(s.take_code(&hash("c-edge"), T0 + 99).await?, CodeTake::Fresh(_)),
        "a code taken a second before its expiry was not Fresh"
    );
    let got = s.take_code(&hash("c-edge"), T0 + 100).await?;
    ensure!(
        got == CodeTake::Unknown,
        "a taken code presented again after its expiry gave {got:?}, not Unknown"
    );

    // 32 racing takes of one code: exactly one Fresh, the rest Reused.
    s.put_code(&sample_code("c-race", "cg-race", T0 + 600)).await?;
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let store = store.clone();
        tasks.push(tokio::spawn(
            async move { store.take_code(&hash("c-race"), T0 + 5).await },
        ));
    }
    let (mut fresh, mut reused) = (0, 0);
    for t in tasks {
        match t.await.map_err(|e| Failure(format!("a take task failed: {e}")))?? {
            CodeTake::Fresh(_) => fresh += 1,
            CodeTake::Reused(_) => reused += 1,
            CodeTake::Unknown => {}
        }
    }
    ensure!(
        fresh == 1 && reused == 31,
        "32 racing takes of one code: {fresh} Fresh, {reused} Reused (want 1 and 31)"
    );
    Ok(())
}

async fn revocation<S: GrantStore>(s: &S) -> Outcome {
    s.create_grant(&grant_of("r-1", "ru-1", "rc", T0), Some(&hash("r-1")), T0 + 5_000)
        .await?;
    ensure!(
        s.revoke_grant("r-1", T0 + 10).await?,
        "revoking a live grant answered false"
    );
    ensure!(
        !s.revoke_grant("r-1", T0 + 11).await?,
        "revoking a grant twice answered true"
    );
    ensure!(
        !s.revoke_grant("missing", T0 + 11).await?,
        "revoking a missing grant answered true"
    );
    ensure!(
        s.get_grant("r-1").await?.and_then(|g| g.revoked_at) == Some(T0 + 10),
        "a revoked grant does not carry its first revocation time"
    );
    let r = s
        .rotate_refresh(&hash("r-1"), &hash("r-1b"), T0 + 5_000, T0 + 12, 0)
        .await?;
    ensure!(
        r == Rotation::Ended { grant_id: "r-1".into() },
        "a refresh token of a revoked grant gave {r:?}, not Ended"
    );

    // By `via`: the live grants given through it, no other.
    let via = |id: &str, via: &str| {
        let mut g = grant_of(id, "ru-2", "rc", T0);
        g.subject.via = via.into();
        g
    };
    for g in [
        via("v-1", "key:shared"),
        via("v-2", "key:shared"),
        via("v-3", "key:shared"),
        via("v-4", "key:other"),
    ] {
        s.create_grant(&g, None, 0).await?;
    }
    s.revoke_grant("v-3", T0 + 5).await?;
    let n = s.revoke_grants_via("key:shared", T0 + 20).await?;
    ensure!(n == 2, "revoking through a key revoked {n} grants, not its 2 live ones");
    let at = |id: &'static str| async move { s.get_grant(id).await.map(|g| g.and_then(|g| g.revoked_at)) };
    ensure!(
        at("v-1").await? == Some(T0 + 20) && at("v-2").await? == Some(T0 + 20),
        "a grant given through a revoked key was not revoked at the time given"
    );
    ensure!(
        at("v-3").await? == Some(T0 + 5),
        "revoking through a key moved an earlier revocation's time"
    );
    ensure!(
        at("v-4").await?.is_none(),
        "revoking through one key revoked another's grant"
    );
    ensure!(
        s.revoke_grants_via("key:shared", T0 + 21).await? == 0,
        "revoking through a key twice revoked grants again"
    );

    // revoked_since: at or after the time, no earlier.
    for (id, at) in [("s-1", LATE - 1), ("s-2", LATE), ("s-3", LATE + 5)] {
        s.create_grant(&grant_of(id, "ru-3", "rc", T0), None, 0).await?;
        s.revoke_grant(id, at).await?;
    }
    let mut since = s.revoked_since(LATE).await?;
    since.sort();
    ensure!(
        since == ["s-2", "s-3"],
        "grants revoked at or after a time are {since:?}"
    );
    ensure!(
        s.revoked_since(LATE + 6).await?.is_empty(),
        "grants revoked before a time were listed as since"
    );
    Ok(())
}

async fn consents<S: GrantStore>(s: &S) -> Outcome {
    ensure!(
        s.get_consent("alice", "client-1").await?.is_none(),
        "a consent never given is found"
    );
    let first = ConsentRecord {
        user_id: "alice".into(),
        client_id: "client-1".into(),
        scopes: vec!["read".into(), "tools:echo".into()],
        given_at: T0,
    };
    s.set_consent(&first).await?;
    ensure!(
        s.get_consent("alice", "client-1").await? == Some(first.clone()),
        "a consent does not read back as written"
    );
    let other = ConsentRecord {
        client_id: "client-2".into(),
        scopes: vec![],
        ..first.clone()
    };
    s.set_consent(&other).await?;
    let second = ConsentRecord {
        scopes: vec!["read".into()],
        given_at: T0 + 10,
        ..first
    };
    s.set_consent(&second).await?;
    ensure!(
        s.get_consent("alice", "client-1").await? == Some(second),
        "a consent given again did not replace the first"
    );
    ensure!(
        s.get_consent("alice", "client-2").await? == Some(other),
        "a consent to one client changed another's (or an empty scope list was lost)"
    );
    ensure!(
        s.get_consent("bob", "client-1").await?.is_none(),
        "one user's consent was found for another"
    );
    ensure!(
        s.remove_consent("alice", "client-1").await?,
        "removing a consent answered false"
    );
    ensure!(
        !s.remove_consent("alice", "client-1").await?,
        "removing a consent twice answered true"
    );
    ensure!(
        s.get_consent("alice", "client-1").await?.is_none() && s.get_consent("alice", "client-2").await?.is_some(),
        "removing one consent did not remove exactly that one"
    );
    Ok(())
}
