//! The authorization server's records: what any [`ClientStore`], [`GrantStore`],
//! [`SigningKeyStore`] and [`UserStore`] must keep, on times given by the caller (unix seconds). Samples set every
//! field, so a backend that drops a column fails a round trip.
//!
//! Where the trait's words leave a choice, the suite fixes it so backends agree: a code, token or
//! grant is live until its `expires_at` and ended at that second; "newest first" breaks ties by
//! id, descending; a grace window of `grace_s` admits a reuse strictly less than `grace_s` after
//! the spend (so 0 admits none); a code hash is written once ([`crate::StoreError::Duplicate`]
//! after), so a taken code can never come back fresh; "live" grants (`revoke_grants_via`,
//! `remove_client`) are those not yet revoked, and a revocation's first time stands. Pruning
//! keeps a spent refresh token until its own end (so its reuse still revokes the family) and a
//! revoked grant its full `keep_revoked_s` even once expired (so `revoked_since` still names it).

use super::{Failure, Outcome};
use crate::oauth::{
    ClientKind, ClientRecord, ClientStore, CodeRecord, CodeTake, ConsentRecord, GrantRecord, GrantStore, Rotation,
    SigningKeyRecord, SigningKeyStore, Subject, UserRecord, UserStore,
};
use crate::{SealedCredential, StoreError};
use mcpgate_core::keys::hash_hex;
use mcpgate_core::principal::Role;
use std::sync::Arc;

mod grants;
mod refresh;
mod users;
pub use grants::grants;
pub use users::{sample_user, users};

/// 2023-11-14 22:13:20 UTC: where the samples' times start.
pub const T0: i64 = 1_700_000_000;

/// A client with every field set.
pub fn sample_client(client_id: &str, kind: ClientKind, created_at: i64) -> ClientRecord {
    ClientRecord {
        client_id: client_id.into(),
        kind,
        name: Some(format!("Client \"{client_id}\" \u{e9}")),
        secret_hash: Some(hash_hex(&format!("secret of {client_id}"))),
        auth_method: "private_key_jwt".into(),
        redirect_uris: vec!["https://app.example/cb".into(), "http://127.0.0.1/cb".into()],
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        scope: Some(vec!["read".into(), "tools:echo".into()]),
        jwks: Some(
            r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#.into(),
        ),
        jwks_uri: Some("https://app.example/jwks.json".into()),
        created_at,
        expires_at: Some(created_at + 86_400),
    }
}

/// Who signed in, every field set: `user_id` through the API key `key:<user_id>`.
pub fn sample_subject(user_id: &str) -> Subject {
    Subject {
        user_id: user_id.into(),
        tenant: Some("t\u{e9}nant \"quoted\"".into()),
        role: Role::Developer,
        permissions: vec!["read".into(), "tools:*".into()],
        via: format!("key:{user_id}"),
    }
}

/// A live grant with every field set but `revoked_at`, ending 30 days after it began.
pub fn sample_grant(grant_id: &str, client_id: &str, user_id: &str, created_at: i64) -> GrantRecord {
    GrantRecord {
        grant_id: grant_id.into(),
        client_id: client_id.into(),
        subject: sample_subject(user_id),
        scopes: vec!["read".into(), "tools:echo".into()],
        resource: "https://mcp.example/mcp".into(),
        created_at,
        expires_at: created_at + 30 * 86_400,
        revoked_at: None,
    }
}

/// A code with every field set, for `grant_id`, stored under `hash(name)`.
pub fn sample_code(name: &str, grant_id: &str, expires_at: i64) -> CodeRecord {
    CodeRecord {
        code_hash: hash(name),
        grant_id: grant_id.into(),
        client_id: "client-1".into(),
        redirect_uri: "http://127.0.0.1:43123/callback".into(),
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        resource: "https://mcp.example/mcp".into(),
        scopes: vec!["read".into(), "tools:echo".into()],
        subject: sample_subject("alice"),
        expires_at,
    }
}

/// A signing key with every field set but `retired_at`.
pub fn sample_signing_key(kid: &str, created_at: i64) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid.into(),
        alg: "EdDSA".into(),
        sealed: SealedCredential {
            nonce: vec![3; 12],
            ciphertext: vec![0, 1, 2, 254, 255],
        },
        public_jwk: format!(r#"{{"kty":"OKP","crv":"Ed25519","kid":"{kid}","x":"AAAA"}}"#),
        created_at,
        retired_at: None,
    }
}

/// How the suite names a code or refresh token: the SHA-256 (hex) the store keeps.
pub fn hash(name: &str) -> String {
    hash_hex(name)
}

/// Ids in the order given.
fn ids<T>(v: &[T], id: impl Fn(&T) -> &str) -> Vec<String> {
    v.iter().map(|x| id(x).to_string()).collect()
}

/// Clients: every field (and every kind, and an empty scope list apart from none) round-trips;
/// an id is taken once; `put_client` replaces; oldest first, ties by id; removing a client revokes
/// its grants (their refresh tokens end) and leaves other clients' alone.
pub async fn clients<S: ClientStore + GrantStore + 'static>(store: Arc<S>) -> Outcome {
    let s = store.as_ref();
    ensure!(s.list_clients().await?.is_empty(), "a fresh store lists clients");
    ensure!(s.get_client("nope").await?.is_none(), "an unknown client id is found");

    let full = sample_client("c-1", ClientKind::Registered, T0 + 20);
    s.insert_client(&full).await?;
    ensure!(
        s.get_client("c-1").await? == Some(full.clone()),
        "a client with every field set does not read back as written"
    );
    let sparse = ClientRecord {
        name: None,
        secret_hash: None,
        auth_method: "none".into(),
        scope: Some(vec![]),
        jwks: None,
        jwks_uri: None,
        expires_at: None,
        ..sample_client("c-0", ClientKind::Configured, T0 + 10)
    };
    s.insert_client(&sparse).await?;
    ensure!(
        s.get_client("c-0").await? == Some(sparse.clone()),
        "a client with no optional field set (and an empty scope list, which is not no list) does not read back as written"
    );
    let doc_id = "https://app.example/oauth-client.json";
    let doc = ClientRecord {
        scope: None,
        ..sample_client(doc_id, ClientKind::MetadataDocument, T0 + 10)
    };
    s.insert_client(&doc).await?;
    ensure!(
        s.get_client(doc_id).await? == Some(doc.clone()),
        "a metadata-document client without a scope list does not read back as written"
    );

    match s
        .insert_client(&sample_client("c-1", ClientKind::Configured, T0 + 99))
        .await
    {
        Err(StoreError::Duplicate(id)) => ensure!(id == "c-1", "the duplicate error names {id}, not c-1"),
        other => return Err(Failure(format!("a second client with the same id gave {other:?}"))),
    }
    ensure!(
        s.get_client("c-1").await? == Some(full.clone()),
        "a refused duplicate changed the first client"
    );

    // A metadata document fetched again replaces the cached copy; put adds an unknown id.
    let refetched = ClientRecord {
        name: Some("Renamed".into()),
        redirect_uris: vec!["https://app.example/new-cb".into()],
        scope: Some(vec!["read".into()]),
        expires_at: Some(T0 + 90_000),
        ..doc.clone()
    };
    s.put_client(&refetched).await?;
    ensure!(
        s.get_client(doc_id).await? == Some(refetched),
        "put_client did not replace every field of an existing client"
    );
    s.put_client(&sample_client("c-2", ClientKind::Registered, T0 + 30))
        .await?;
    let order = ids(&s.list_clients().await?, |c| &c.client_id);
    ensure!(
        order == ["c-0", doc_id, "c-1", "c-2"],
        "list_clients is not oldest first with ties by id: {order:?}"
    );

    // Removing a client revokes its live grants, keeps an earlier revocation's time, and leaves
    // other clients' grants alone.
    s.create_grant(
        &sample_grant("g-1", "c-1", "alice", T0),
        Some(&hash("rt-1")),
        T0 + 5_000,
    )
    .await?;
    s.create_grant(&sample_grant("g-2", "c-1", "bob", T0), None, 0).await?;
    s.create_grant(
        &sample_grant("g-3", "c-0", "alice", T0),
        Some(&hash("rt-3")),
        T0 + 5_000,
    )
    .await?;
    s.revoke_grant("g-2", T0 + 50).await?;
    ensure!(
        s.remove_client("c-1", T0 + 100).await?,
        "removing a client answered false"
    );
    ensure!(s.get_client("c-1").await?.is_none(), "a removed client is still found");
    let revoked = |id: &'static str| async move { s.get_grant(id).await.map(|g| g.and_then(|g| g.revoked_at)) };
    ensure!(
        revoked("g-1").await? == Some(T0 + 100),
        "removing a client did not revoke its grant at the time given"
    );
    ensure!(
        revoked("g-2").await? == Some(T0 + 50),
        "removing a client moved the revocation time of a grant already revoked"
    );
    ensure!(
        revoked("g-3").await?.is_none(),
        "removing a client revoked another client's grant"
    );
    let r = s
        .rotate_refresh(&hash("rt-1"), &hash("rt-1b"), T0 + 6_000, T0 + 101, 0)
        .await?;
    ensure!(
        r == Rotation::Ended { grant_id: "g-1".into() },
        "a refresh token of a removed client's grant gave {r:?}, not Ended"
    );
    ensure!(!s.remove_client("c-1", T0 + 200).await?, "a client was removed twice");
    let order = ids(&s.list_clients().await?, |c| &c.client_id);
    ensure!(
        order == ["c-0", doc_id, "c-2"],
        "after a removal the clients are {order:?}"
    );
    Ok(())
}

/// Signing keys: every field round-trips; a kid is taken once; newest first; retiring is
/// idempotent and keeps the first time; removal.
pub async fn signing_keys<S: SigningKeyStore + 'static>(store: Arc<S>) -> Outcome {
    let s = store.as_ref();
    ensure!(
        s.list_signing_keys().await?.is_empty(),
        "a fresh store lists signing keys"
    );
    let k1 = sample_signing_key("k1", T0 + 10);
    let k2 = SigningKeyRecord {
        alg: "ES256".into(),
        ..sample_signing_key("k2", T0 + 20)
    };
    let k3 = SigningKeyRecord {
        retired_at: Some(T0 + 35),
        ..sample_signing_key("k3", T0 + 30)
    };
    for k in [&k1, &k3, &k2] {
        s.insert_signing_key(k).await?;
    }
    ensure!(
        s.list_signing_keys().await? == vec![k3.clone(), k2.clone(), k1.clone()],
        "signing keys do not read back as written, newest first"
    );
    match s.insert_signing_key(&sample_signing_key("k1", T0 + 99)).await {
        Err(StoreError::Duplicate(id)) => ensure!(id == "k1", "the duplicate error names {id}, not k1"),
        other => {
            return Err(Failure(format!(
                "a second signing key with the same kid gave {other:?}"
            )));
        }
    }

    ensure!(
        s.retire_signing_key("k1", T0 + 40).await?,
        "retiring a key answered false"
    );
    ensure!(
        s.retire_signing_key("k1", T0 + 50).await?,
        "retiring a retired key answered false (it is a no-op, not a failure)"
    );
    ensure!(
        !s.retire_signing_key("missing", T0 + 40).await?,
        "retiring a missing key answered true"
    );
    let want_k1 = SigningKeyRecord {
        retired_at: Some(T0 + 40),
        ..k1
    };
    ensure!(
        s.list_signing_keys().await? == vec![k3.clone(), k2, want_k1.clone()],
        "a key retired twice does not keep its first retirement time (or the duplicate changed it)"
    );
    ensure!(s.remove_signing_key("k2").await?, "removing a key answered false");
    ensure!(!s.remove_signing_key("k2").await?, "removing a key twice answered true");
    ensure!(
        s.list_signing_keys().await? == vec![k3, want_k1],
        "a removed signing key is still listed"
    );
    Ok(())
}

/// What a durable backend keeps across a reopen: clients, a taken code and an untaken one,
/// grants with their revocation, a spent refresh token and its successor, consents, signing keys
/// with their retirement, users with their sign-ins. `open` opens the same store each time.
pub async fn oauth_survives_reopen<S, F>(open: F) -> Outcome
where
    S: ClientStore + GrantStore + SigningKeyStore + UserStore,
    F: Fn() -> crate::Result<S>,
{
    let client = sample_client("durable", ClientKind::MetadataDocument, T0);
    let consent = ConsentRecord {
        user_id: "alice".into(),
        client_id: "durable".into(),
        scopes: vec!["read".into()],
        given_at: T0 + 3,
    };
    let key = SigningKeyRecord {
        retired_at: Some(T0 + 9),
        ..sample_signing_key("durable-key", T0)
    };
    {
        let s = open()?;
        s.insert_client(&client).await?;
        s.put_code(&sample_code("taken", "g-taken", T0 + 600)).await?;
        s.put_code(&sample_code("waiting", "g-waiting", T0 + 600)).await?;
        ensure!(
            matches!(s.take_code(&hash("taken"), T0 + 1).await?, CodeTake::Fresh(_)),
            "a fresh code was not taken"
        );
        s.create_grant(
            &sample_grant("g-live", "durable", "alice", T0),
            Some(&hash("rt-0")),
            T0 + 5_000,
        )
        .await?;
        let r = s
            .rotate_refresh(&hash("rt-0"), &hash("rt-1"), T0 + 5_000, T0 + 2, 0)
            .await?;
        ensure!(matches!(r, Rotation::Rotated(_)), "a live refresh token gave {r:?}");
        s.create_grant(&sample_grant("g-gone", "durable", "bob", T0), None, 0)
            .await?;
        s.revoke_grant("g-gone", T0 + 4).await?;
        s.set_consent(&consent).await?;
        s.insert_signing_key(&sample_signing_key("durable-key", T0)).await?;
        s.retire_signing_key("durable-key", T0 + 9).await?;
        s.record_sign_in(&sample_user("alice"), T0 + 1).await?;
        s.record_sign_in(&sample_user("alice"), T0 + 8).await?;
    }
    let s = open()?;
    ensure!(
        s.get_client("durable").await? == Some(client),
        "a client was lost on reopen"
    );
    ensure!(
        s.take_code(&hash("taken"), T0 + 10).await? == CodeTake::Reused(sample_code("taken", "g-taken", T0 + 600)),
        "a taken code came back other than reused after a reopen"
    );
    ensure!(
        s.take_code(&hash("waiting"), T0 + 10).await? == CodeTake::Fresh(sample_code("waiting", "g-waiting", T0 + 600)),
        "an untaken code was lost on reopen"
    );
    let live = sample_grant("g-live", "durable", "alice", T0);
    ensure!(
        s.grant_of_refresh(&hash("rt-1")).await? == Some(live.clone()),
        "a rotated-in refresh token or its grant was lost on reopen"
    );
    ensure!(
        s.get_grant("g-gone").await?.and_then(|g| g.revoked_at) == Some(T0 + 4)
            && s.revoked_since(T0 + 4).await? == ["g-gone"],
        "a grant's revocation was lost on reopen"
    );
    ensure!(
        s.get_consent("alice", "durable").await? == Some(consent),
        "a consent was lost on reopen"
    );
    ensure!(
        s.list_signing_keys().await? == vec![key],
        "a signing key or its retirement was lost on reopen"
    );
    let alice = UserRecord {
        first_sign_in: T0 + 1,
        last_sign_in: T0 + 8,
        sign_ins: 2,
        ..sample_user("alice")
    };
    ensure!(
        s.get_user("alice").await? == Some(alice.clone()),
        "a user or their sign-ins were lost on reopen"
    );
    let again = s.record_sign_in(&sample_user("alice"), T0 + 12).await?;
    ensure!(
        again.first_sign_in == T0 + 1 && again.sign_ins == 3,
        "a sign-in after a reopen did not count on from the stored user: {again:?}"
    );
    let r = s
        .rotate_refresh(&hash("rt-0"), &hash("rt-2"), T0 + 5_000, T0 + 11, 0)
        .await?;
    ensure!(
        r == Rotation::Reused {
            grant_id: "g-live".into()
        },
        "a refresh token spent before a reopen gave {r:?} when used again, not Reused"
    );
    Ok(())
}

/// Every OAuth suite, each on a fresh store.
pub async fn all_oauth<S>(store: impl Fn() -> Arc<S>) -> Outcome
where
    S: ClientStore + GrantStore + SigningKeyStore + UserStore + 'static,
{
    clients(store()).await?;
    grants(store()).await?;
    signing_keys(store()).await?;
    users(store()).await
}
