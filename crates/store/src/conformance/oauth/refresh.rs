//! Refresh-token rotation: each token used once and replaced, a reuse revokes the family, one
//! racing refresh is forgiven within the grace window.

use super::{T0, hash, sample_grant};
use crate::StoreError;
use crate::conformance::{Failure, Outcome};
use crate::oauth::{GrantRecord, GrantStore, Rotation};
use std::sync::Arc;

/// A token's end far past every time used here (but never past its grant's).
const LATER: i64 = T0 + 5_000;

/// Creates grant `id` of alice through client-1 at T0 with the first refresh token `<id>/0`.
async fn family<S: GrantStore>(s: &S, id: &str, expires_at: Option<i64>) -> Result<GrantRecord, Failure> {
    let mut g = sample_grant(id, "client-1", "alice", T0);
    if let Some(at) = expires_at {
        g.expires_at = at;
    }
    s.create_grant(&g, Some(&hash(&format!("{id}/0"))), LATER).await?;
    Ok(g)
}

/// Presents `<id>/<old>` for `<id>/<new>`.
async fn rotate<S: GrantStore>(s: &S, id: &str, old: u32, new: u32, now: i64, grace_s: i64) -> crate::Result<Rotation> {
    let (old, new) = (hash(&format!("{id}/{old}")), hash(&format!("{id}/{new}")));
    s.rotate_refresh(&old, &new, LATER, now, grace_s).await
}

async fn revoked_at<S: GrantStore>(s: &S, id: &str) -> Result<Option<i64>, Failure> {
    Ok(s.get_grant(id).await?.and_then(|g| g.revoked_at))
}

pub(super) async fn rotation<S: GrantStore>(s: &S) -> Outcome {
    let g = family(s, "f-1", None).await?;
    ensure!(
        s.get_grant("f-1").await? == Some(g.clone()),
        "a grant with every field set does not read back as written"
    );
    match s.create_grant(&g, Some(&hash("f-1/other")), LATER).await {
        Err(StoreError::Duplicate(id)) => ensure!(id == "f-1", "the duplicate error names {id}, not f-1"),
        other => return Err(Failure(format!("a second grant with the same id gave {other:?}"))),
    }
    ensure!(
        s.grant_of_refresh(&hash("f-1/other")).await?.is_none(),
        "a refused grant's refresh token was recorded"
    );
    let other = sample_grant("f-other", "client-1", "alice", T0);
    ensure!(
        matches!(
            s.create_grant(&other, Some(&hash("f-1/0")), LATER).await,
            Err(StoreError::Duplicate(_))
        ),
        "a new grant with a refresh token hash already issued was not refused as a duplicate"
    );
    ensure!(
        s.get_grant("f-other").await?.is_none(),
        "a grant refused for its token was recorded anyway"
    );
    ensure!(
        s.grant_of_refresh(&hash("f-1/0")).await? == Some(g.clone()),
        "a refresh token does not name its grant"
    );
    ensure!(
        s.grant_of_refresh(&hash("never")).await?.is_none(),
        "a refresh token never issued names a grant"
    );
    let r = s.rotate_refresh(&hash("never"), &hash("never/1"), LATER, T0, 0).await?;
    ensure!(r == Rotation::Unknown, "a refresh token never issued gave {r:?}");

    // Spent and replaced; the spent one accepted once more within grace (2 s < 5 s), then reused.
    let r = rotate(s, "f-1", 0, 1, T0 + 10, 5).await?;
    ensure!(
        r == Rotation::Rotated(Box::new(g.clone())),
        "a live refresh token gave {r:?}, not Rotated with its grant"
    );
    ensure!(
        s.grant_of_refresh(&hash("f-1/1")).await? == Some(g.clone()),
        "the new refresh token does not name its grant"
    );
    let r = rotate(s, "f-1", 0, 2, T0 + 14, 5).await?;
    ensure!(
        r == Rotation::Rotated(Box::new(g.clone())),
        "a spent token presented again 4 s into a 5 s grace gave {r:?}, not Rotated"
    );
    let r = rotate(s, "f-1", 2, 3, T0 + 14, 5).await?;
    ensure!(
        matches!(r, Rotation::Rotated(_)),
        "the token given within grace does not work: {r:?}"
    );
    let r = rotate(s, "f-1", 0, 4, T0 + 14, 5).await?;
    ensure!(
        r == Rotation::Reused { grant_id: "f-1".into() },
        "a spent token presented a second time within grace gave {r:?}, not Reused"
    );
    ensure!(
        revoked_at(s, "f-1").await? == Some(T0 + 14),
        "a reused refresh token did not revoke its grant at the time given"
    );
    for (old, new) in [(1, 5), (3, 6), (0, 7)] {
        let r = rotate(s, "f-1", old, new, T0 + 20, 5).await?;
        ensure!(
            r == Rotation::Ended { grant_id: "f-1".into() },
            "token {old} of a grant revoked for reuse gave {r:?}, not Ended"
        );
    }
    ensure!(
        revoked_at(s, "f-1").await? == Some(T0 + 14),
        "presenting tokens of a revoked grant moved its revocation time"
    );

    // Past the grace window (5 s after, with 5 s of grace), a reuse revokes at once.
    family(s, "f-2", None).await?;
    rotate(s, "f-2", 0, 1, T0 + 10, 5).await?;
    let r = rotate(s, "f-2", 0, 2, T0 + 15, 5).await?;
    ensure!(
        r == Rotation::Reused { grant_id: "f-2".into() },
        "a spent token presented again 5 s after with 5 s of grace gave {r:?}, not Reused"
    );
    ensure!(
        revoked_at(s, "f-2").await? == Some(T0 + 15),
        "a reused token did not revoke its grant"
    );
    let r = rotate(s, "f-2", 1, 3, T0 + 16, 5).await?;
    ensure!(
        r == Rotation::Ended { grant_id: "f-2".into() },
        "the token that replaced a reused one gave {r:?}, not Ended"
    );

    // No grace: a reuse in the same second revokes.
    family(s, "f-3", None).await?;
    rotate(s, "f-3", 0, 1, T0 + 10, 0).await?;
    let r = rotate(s, "f-3", 0, 2, T0 + 10, 0).await?;
    ensure!(
        r == Rotation::Reused { grant_id: "f-3".into() },
        "with no grace a reuse in the same second gave {r:?}, not Reused"
    );

    // A token past its end refuses, and does not revoke its grant.
    let g4 = sample_grant("f-4", "client-1", "alice", T0);
    s.create_grant(&g4, Some(&hash("f-4/0")), T0 + 100).await?;
    let r = rotate(s, "f-4", 0, 1, T0 + 100, 0).await?;
    ensure!(
        r == Rotation::Ended { grant_id: "f-4".into() },
        "a refresh token at its expiry gave {r:?}, not Ended"
    );
    ensure!(
        revoked_at(s, "f-4").await?.is_none(),
        "an expired refresh token revoked its grant"
    );

    // No token outlives its grant: one asked for far past the grant's end ends with it.
    family(s, "f-5", Some(T0 + 200)).await?;
    let r = s
        .rotate_refresh(&hash("f-5/0"), &hash("f-5/1"), T0 + 100_000, T0 + 100, 0)
        .await?;
    ensure!(matches!(r, Rotation::Rotated(_)), "a live refresh token gave {r:?}");
    let r = rotate(s, "f-5", 1, 2, T0 + 200, 0).await?;
    ensure!(
        r == Rotation::Ended { grant_id: "f-5".into() },
        "a refresh token asked to outlive its grant was still live at the grant's end: {r:?}"
    );
    Ok(())
}

/// Rotates one token from 16 tasks at once; counts (Rotated, Reused, Ended, Unknown) and names
/// the first winner's new token.
async fn race<S: GrantStore + 'static>(store: &Arc<S>, id: &str, grace_s: i64) -> Result<([usize; 4], u32), Failure> {
    let mut tasks = Vec::new();
    for i in 1..=16u32 {
        let (store, id) = (store.clone(), id.to_string());
        tasks.push(tokio::spawn(async move {
            rotate(store.as_ref(), &id, 0, i, T0 + 10, grace_s)
                .await
                .map(|r| (i, r))
        }));
    }
    let (mut counts, mut winner) = ([0; 4], 0);
    for t in tasks {
        let (i, r) = t.await.map_err(|e| Failure(format!("a rotation task failed: {e}")))??;
        let slot = match r {
            Rotation::Rotated(_) => {
                winner = i;
                0
            }
            Rotation::Reused { .. } => 1,
            Rotation::Ended { .. } => 2,
            Rotation::Unknown => 3,
        };
        counts[slot] += 1;
    }
    Ok((counts, winner))
}

pub(super) async fn races<S: GrantStore + 'static>(store: Arc<S>) -> Outcome {
    let s = store.as_ref();
    family(s, "race-0", None).await?;
    let ([rotated, reused, _, unknown], winner) = race(&store, "race-0", 0).await?;
    ensure!(
        rotated == 1 && reused >= 1 && unknown == 0,
        "16 racing rotations of one token with no grace: {rotated} Rotated, {reused} Reused, {unknown} Unknown (want exactly 1 Rotated, the rest Reused or Ended)"
    );
    ensure!(
        revoked_at(s, "race-0").await? == Some(T0 + 10),
        "racing reuses of one token did not revoke its grant"
    );
    let r = rotate(s, "race-0", winner, 99, T0 + 11, 0).await?;
    ensure!(
        r == Rotation::Ended {
            grant_id: "race-0".into()
        },
        "the winner's new token of a grant revoked for reuse gave {r:?}"
    );

    family(s, "race-g", None).await?;
    let ([rotated, reused, _, unknown], _) = race(&store, "race-g", 60).await?;
    ensure!(
        (1..=2).contains(&rotated) && reused >= 1 && unknown == 0,
        "16 racing rotations of one token within grace: {rotated} Rotated, {reused} Reused, {unknown} Unknown (want 1 plus at most 1 in grace, then a reuse)"
    );
    Ok(())
}
