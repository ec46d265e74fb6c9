//! People who signed in through a provider: each sign-in counted once (also under a race), the
//! first sign-in kept, the last never moved backwards, the rest replaced by the latest sign-in.

use super::{T0, ids};
use crate::conformance::{Failure, Outcome};
use crate::oauth::{UserRecord, UserStore};
use mcpgate_core::principal::Role;
use std::sync::Arc;

/// How many sign-ins of one user race in [`users`].
const RACERS: u64 = 50;

/// A user with every field set, signed in through GitHub. Its sign-in times and count are
/// nonsense on purpose: `record_sign_in` must ignore them.
pub fn sample_user(user_id: &str) -> UserRecord {
    UserRecord {
        user_id: user_id.into(),
        tenant: Some("t\u{e9}nant \"quoted\"".into()),
        role: Role::Developer,
        via: format!("provider:github:{user_id}-subject"),
        email: Some(format!("{user_id}@example.com")),
        name: Some(format!("Name of {user_id}")),
        first_sign_in: -7,
        last_sign_in: i64::MAX,
        sign_ins: 999,
    }
}

/// `user` as the store must hold it after `sign_ins` sign-ins, the first at `first` and the latest
/// at `last`.
fn stored(user: &UserRecord, first: i64, last: i64, sign_ins: u64) -> UserRecord {
    UserRecord {
        first_sign_in: first,
        last_sign_in: last,
        sign_ins,
        ..user.clone()
    }
}

/// Users: a first sign-in (every field, and none of the optional ones, round-trips); a second
/// keeps the first time, moves the last, counts 2 and replaces tenant, role, via, e-mail and
/// name; an older sign-in never moves the last (nor the first) time back; list by first sign-in
/// with ties by id; get and remove of unknown ids; ids with quotes and non-ASCII round-trip; 50
/// racing sign-ins of one user are each counted once.
///
/// `S` may be unsized, so the suite also runs on an `Arc<dyn UserStore>`.
pub async fn users<S: UserStore + ?Sized + 'static>(store: Arc<S>) -> Outcome {
    let s = store.as_ref();
    ensure!(s.list_users().await?.is_empty(), "a fresh store lists users");
    ensure!(s.get_user("nobody").await?.is_none(), "an unknown user id is found");

    // A first sign-in: the argument's times and count are ignored.
    let alice = sample_user("alice");
    let got = s.record_sign_in(&alice, T0 + 100).await?;
    let want = stored(&alice, T0 + 100, T0 + 100, 1);
    ensure!(
        got == want,
        "a first sign-in returned {got:?}, not {want:?} (first = last = now, one sign-in, every field kept)"
    );
    ensure!(
        s.get_user("alice").await? == Some(want.clone()),
        "a first sign-in does not read back as returned"
    );

    // A second: the first time stays, the last moves, everything else is the new sign-in's.
    let again = UserRecord {
        tenant: None,
        role: Role::Admin,
        via: "provider:oidc-corp:alice-at-corp".into(),
        email: Some("alice@corp.example".into()),
        name: None,
        ..sample_user("alice")
    };
    let got = s.record_sign_in(&again, T0 + 200).await?;
    let want = stored(&again, T0 + 100, T0 + 200, 2);
    ensure!(
        got == want,
        "a second sign-in returned {got:?}, not {want:?} (first kept, last moved, 2 sign-ins, tenant, role, via, e-mail and name replaced)"
    );
    ensure!(
        s.get_user("alice").await? == Some(want),
        "a second sign-in does not read back as returned"
    );

    // Older sign-ins (a slow replica's clock, a delayed callback): counted and their fields
    // taken, but neither time moves back.
    let late = UserRecord {
        role: Role::Guest,
        email: None,
        via: "provider:google:alice-g".into(),
        ..sample_user("alice")
    };
    let got = s.record_sign_in(&late, T0 + 150).await?;
    let want = stored(&late, T0 + 100, T0 + 200, 3);
    ensure!(
        got == want,
        "a sign-in older than the last returned {got:?}, not {want:?} (the last time must not move backwards)"
    );
    let got = s.record_sign_in(&late, T0 + 50).await?;
    let want = stored(&late, T0 + 100, T0 + 200, 4);
    ensure!(
        got == want,
        "a sign-in older than the first returned {got:?}, not {want:?} (the first sign-in is kept)"
    );
    ensure!(
        s.get_user("alice").await? == Some(want.clone()),
        "older sign-ins do not read back as returned"
    );
    let alice_now = want;

    // No optional field set: none comes back as something.
    let sparse = UserRecord {
        tenant: None,
        email: None,
        name: None,
        role: Role::Guest,
        ..sample_user("bob")
    };
    let got = s.record_sign_in(&sparse, T0 + 100).await?;
    ensure!(
        got == stored(&sparse, T0 + 100, T0 + 100, 1) && s.get_user("bob").await? == Some(got.clone()),
        "a user with no optional field set does not read back as written: {got:?}"
    );

    // By first sign-in, ties by id: aaron signs in after alice with the same first time.
    s.record_sign_in(&sample_user("carol"), T0 + 50).await?;
    s.record_sign_in(&sample_user("dave"), T0 + 300).await?;
    s.record_sign_in(&sample_user("aaron"), T0 + 100).await?;
    let order = ids(&s.list_users().await?, |u| &u.user_id);
    ensure!(
        order == ["carol", "aaron", "alice", "bob", "dave"],
        "list_users is not by first sign-in with ties by id: {order:?}"
    );
    let listed = s.list_users().await?;
    ensure!(
        listed.iter().find(|u| u.user_id == "alice") == Some(&alice_now),
        "a listed user differs from the user got"
    );

    // Ids (and every other text) with quotes, non-ASCII and SQL in them.
    let odd_id = "\u{fc}s\u{e9}r \"quoted\" 'single' \u{1f980}; DROP TABLE users; --";
    let odd = UserRecord {
        name: Some("Zo\u{eb} \"Z\" O'Neil \u{4e2d}\u{6587}".into()),
        email: Some("zo\u{eb}+'x'@example.com".into()),
        ..sample_user(odd_id)
    };
    let got = s.record_sign_in(&odd, T0 + 400).await?;
    let want = stored(&odd, T0 + 400, T0 + 400, 1);
    ensure!(got == want, "a user with an odd id returned {got:?}");
    ensure!(
        s.get_user(odd_id).await? == Some(want.clone()),
        "a user id with quotes and non-ASCII does not read back"
    );
    ensure!(
        s.list_users().await?.last() == Some(&want),
        "a user id with quotes and non-ASCII is not listed as written"
    );
    ensure!(
        s.get_user("\u{fc}s\u{e9}r").await?.is_none(),
        "a prefix of a user id found the user"
    );

    // Removal.
    ensure!(s.remove_user(odd_id).await?, "removing a user answered false");
    ensure!(s.get_user(odd_id).await?.is_none(), "a removed user is still found");
    ensure!(!s.remove_user(odd_id).await?, "removing a user twice answered true");
    ensure!(s.remove_user("dave").await?, "removing a user answered false");
    ensure!(
        !s.remove_user("nobody").await?,
        "removing an unknown user answered true"
    );
    let order = ids(&s.list_users().await?, |u| &u.user_id);
    ensure!(
        order == ["carol", "aaron", "alice", "bob"],
        "after removals the users are {order:?}"
    );
    // A removed user who signs in again starts over.
    let got = s.record_sign_in(&sample_user("dave"), T0 + 500).await?;
    ensure!(
        got == stored(&sample_user("dave"), T0 + 500, T0 + 500, 1),
        "a removed user signing in again gave {got:?}, not a new user"
    );

    // 50 racing sign-ins of one user: each counted once, each answered with its own count.
    let mut tasks = Vec::new();
    for i in 0..RACERS as i64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.record_sign_in(&sample_user("racer"), T0 + 1_000 + i).await
        }));
    }
    let mut counts = Vec::new();
    for t in tasks {
        let got = t.await.map_err(|e| Failure(format!("a sign-in task failed: {e}")))??;
        counts.push(got.sign_ins);
    }
    counts.sort_unstable();
    ensure!(
        counts == (1..=RACERS).collect::<Vec<u64>>(),
        "{RACERS} racing sign-ins of one user were answered with counts {counts:?}, not each of 1..={RACERS} once"
    );
    let Some(racer) = s.get_user("racer").await? else {
        return Err(Failure(format!("{RACERS} racing sign-ins of a new user left no user")));
    };
    ensure!(
        racer.sign_ins == RACERS,
        "{RACERS} racing sign-ins of one user left sign_ins {}",
        racer.sign_ins
    );
    ensure!(
        racer.last_sign_in == T0 + 1_000 + RACERS as i64 - 1,
        "after racing sign-ins the last one is {}, not the latest time",
        racer.last_sign_in
    );
    ensure!(
        (T0 + 1_000..T0 + 1_000 + RACERS as i64).contains(&racer.first_sign_in),
        "after racing sign-ins the first one is {}, not one of theirs",
        racer.first_sign_in
    );
    Ok(())
}
