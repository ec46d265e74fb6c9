//! Session ownership: what any [`SessionStore`] must keep, on times given by the caller.

use super::{Failure, Outcome};
use crate::{ANONYMOUS, OpenSession, SessionInfo, SessionStore};
use std::sync::Arc;

fn owned_by(owner: &str) -> Option<OpenSession> {
    Some(OpenSession {
        owner: Some(owner.into()),
    })
}

/// Sessions: each remembers who opened it (or that no one signed in), ends once, and is
/// forgotten when idle; the places under a cap are exact under racing reserves and opens, given
/// back when unused, lapse at their deadline and are never taken twice; an id issued twice
/// counts once; anonymous callers share one bucket.
pub async fn sessions<S: SessionStore + 'static>(store: Arc<S>) -> Outcome {
    let s = store.as_ref();
    // Ownership.
    s.open("s1", Some("key:a"), None, 1_000).await?;
    s.open("anon", None, None, 1_000).await?;
    ensure!(
        s.touch("s1", 1_500).await? == owned_by("key:a"),
        "a session did not name the principal that opened it"
    );
    ensure!(
        s.touch("anon", 1_500).await? == Some(OpenSession { owner: None }),
        "a session opened without a credential came back with an owner"
    );
    ensure!(
        s.touch("nope", 1_500).await?.is_none(),
        "an unknown session id was found"
    );
    ensure!(
        s.total().await? == 2,
        "two open sessions counted as {}",
        s.total().await?
    );
    s.touch("anon", 1_700).await?;
    let listed = s.list(10).await?;
    ensure!(
        listed
            == [
                SessionInfo {
                    id: "anon".into(),
                    owner: None,
                    last_seen_ms: 1_700
                },
                SessionInfo {
                    id: "s1".into(),
                    owner: Some("key:a".into()),
                    last_seen_ms: 1_500
                },
            ],
        "list gave {listed:?}, not the two sessions most recently seen first"
    );
    ensure!(s.list(1).await?.len() == 1, "list(1) gave more than one");
    ensure!(s.list(0).await?.is_empty(), "list(0) gave sessions");
    ensure!(s.close("s1").await?, "closing an open session said there was none");
    ensure!(!s.close("s1").await?, "a session was closed twice");
    ensure!(s.touch("s1", 1_600).await?.is_none(), "a closed session is still found");
    ensure!(
        s.count(Some("key:a"), 1_600).await? == 0,
        "a closed session still counts against its owner"
    );

    // Anonymous callers share one bucket with the principal named like it.
    ensure!(
        s.count(Some(ANONYMOUS), 1_600).await? == 1 && s.count(None, 1_600).await? == 1,
        "a session opened without a credential is not counted in the anonymous bucket"
    );
    ensure!(s.close("anon").await?, "the anonymous session could not be closed");

    // Places under a cap.
    ensure!(
        s.reserve(Some("key:a"), "p1", 2, 2_000, 60_000).await?,
        "the first place under a cap of 2 was refused"
    );
    ensure!(
        !s.reserve(Some("key:a"), "p1", 2, 2_000, 60_000).await?,
        "one place token was taken twice"
    );
    ensure!(
        s.reserve(Some("key:a"), "p2", 2, 2_000, 60_000).await?,
        "the second place under a cap of 2 was refused"
    );
    ensure!(
        !s.reserve(Some("key:a"), "p3", 2, 2_000, 60_000).await?,
        "a third place under a cap of 2 was given (places count before their session opens)"
    );
    ensure!(
        s.reserve(Some("key:b"), "q1", 2, 2_000, 60_000).await?,
        "one principal's places refused another's"
    );
    s.open("a1", Some("key:a"), Some("p1"), 2_100).await?;
    ensure!(
        s.count(Some("key:a"), 2_100).await? == 2,
        "a place turned into its session was counted {} times, not once",
        s.count(Some("key:a"), 2_100).await? - 1
    );
    s.release("p2").await?;
    s.release("p2").await?;
    ensure!(
        s.count(Some("key:a"), 2_200).await? == 1,
        "a place given back (twice) did not free exactly one place"
    );
    ensure!(
        s.reserve(Some("key:a"), "p4", 2, 2_200, 60_000).await?,
        "a place given back could not be taken again"
    );
    s.release("p4").await?;
    s.release("q1").await?;

    // A place never confirmed lapses at its deadline; a session opened late still counts.
    ensure!(
        s.reserve(Some("key:c"), "c1", 1, 3_000, 4_000).await?,
        "a place for a fresh principal was refused"
    );
    ensure!(
        s.count(Some("key:c"), 3_999).await? == 1,
        "a place was not counted before its deadline"
    );
    ensure!(
        s.count(Some("key:c"), 4_000).await? == 0,
        "a place was still counted at its deadline"
    );
    ensure!(
        s.reserve(Some("key:c"), "c2", 1, 4_000, 9_000).await?,
        "a lapsed place still held the only place under the cap"
    );
    s.open("c-late", Some("key:c"), Some("c1"), 4_100).await?;
    ensure!(
        s.touch("c-late", 4_100).await? == owned_by("key:c"),
        "a session whose place had lapsed was not recorded"
    );
    ensure!(
        s.count(Some("key:c"), 4_100).await? == 2,
        "a session opened after its place lapsed was not counted"
    );
    s.release("c2").await?;

    // An id issued twice counts once, under its latest owner.
    s.open("same", Some("key:d"), None, 5_000).await?;
    s.open("same", Some("key:d"), None, 5_000).await?;
    ensure!(
        s.count(Some("key:d"), 5_000).await? == 1,
        "an id issued twice was counted twice"
    );
    s.open("same", Some("key:e"), None, 5_000).await?;
    ensure!(
        s.count(Some("key:d"), 5_000).await? == 0 && s.count(Some("key:e"), 5_000).await? == 1,
        "an id issued again to another principal kept counting against the first"
    );
    ensure!(
        s.touch("same", 5_000).await? == owned_by("key:e"),
        "an id issued again kept its first owner"
    );

    // Idle sessions are forgotten; a touch keeps one.
    for id in ["i1", "i2", "i3"] {
        s.open(id, Some("key:f"), None, 10_000).await?;
    }
    s.touch("i2", 20_000).await?;
    s.touch("i3", 15_000).await?;
    s.touch("i3", 12_000).await?;
    ensure!(
        s.purge_idle(15_000, 20_000).await? == 4,
        "purging sessions last seen before 15 000 did not end exactly a1, c-late, same and i1 (a touch with an older time must not move a session back)"
    );
    ensure!(
        s.touch("i1", 20_000).await?.is_none()
            && s.touch("i2", 20_000).await?.is_some()
            && s.touch("i3", 20_000).await?.is_some(),
        "the wrong sessions were forgotten as idle"
    );
    ensure!(
        s.count(Some("key:f"), 20_000).await? == 2,
        "a session forgotten as idle still counts against its owner"
    );
    ensure!(
        s.count(Some("key:a"), 20_000).await? == 0 && s.count(Some("key:c"), 20_000).await? == 0,
        "sessions forgotten as idle still count against their owners"
    );
    for id in ["i2", "i3"] {
        s.close(id).await?;
    }
    ensure!(
        s.total().await? == 0,
        "{} sessions left after closing all",
        s.total().await?
    );

    // Racing reserves: exactly the cap wins; each winner opens; the cap still holds.
    let mut tasks = Vec::new();
    for i in 0..64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let token = format!("race-{i}");
            if store.reserve(Some("key:r"), &token, 5, 30_000, 90_000).await? {
                store
                    .open(&format!("r{i}"), Some("key:r"), Some(&token), 30_001)
                    .await?;
                return Ok::<bool, crate::StoreError>(true);
            }
            Ok(false)
        }));
    }
    let mut won = 0;
    for t in tasks {
        if t.await.map_err(|e| Failure(format!("a racing task failed: {e}")))?? {
            won += 1;
        }
    }
    ensure!(won == 5, "{won} of 64 racing opens won places under a cap of 5");
    ensure!(
        s.count(Some("key:r"), 30_002).await? == 5 && s.total().await? == 5,
        "after a race under a cap of 5 the owner holds {} sessions",
        s.count(Some("key:r"), 30_002).await?
    );
    ensure!(
        !s.reserve(Some("key:r"), "late", 5, 30_002, 90_000).await?,
        "a place was given past the cap after a race"
    );
    Ok(())
}
