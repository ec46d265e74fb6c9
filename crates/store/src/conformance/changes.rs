//! Incremental reading of keys and held credentials ([`KeyStore::key_changes_since`]): each
//! change is listed once from the version before it, as it is now; nothing changed lists nothing;
//! versions only grow; a reader following the changes while others write ends up with what the
//! store holds.

use super::{Failure, Outcome, sample_key};
use crate::{CredentialStore, KeyChanges, KeyStore, SealedCredential, StoreError};
use mcpgate_core::keys::KeyRecord;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The changes after `since`, which the store must be able to list.
async fn changes<S: KeyStore>(s: &S, since: i64) -> Result<KeyChanges, Failure> {
    let mut c = s
        .key_changes_since(since)
        .await?
        .ok_or_else(|| Failure(format!("no changes listed since version {since}, one the store gave")))?;
    c.keys.sort_by(|a, b| a.key_id.cmp(&b.key_id));
    c.removed_keys.sort();
    c.credentials.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(c)
}

/// One step: what `since` lists must be exactly `keys` and `credentials`, at a version above
/// `since` (or equal, when nothing changed) that is the store's current one. Returns it.
async fn expect<S: KeyStore>(
    s: &S,
    step: &str,
    since: i64,
    keys: &[KeyRecord],
    credentials: &[(&str, Option<&SealedCredential>)],
) -> Result<i64, Failure> {
    let c = changes(s, since).await?;
    let now = s.keys_version().await?;
    ensure!(
        c.version == now,
        "{step}: changes listed at version {} while the store is at {now}",
        c.version
    );
    let want_credentials: Vec<(String, Option<SealedCredential>)> = credentials
        .iter()
        .map(|(id, sealed)| (id.to_string(), sealed.cloned()))
        .collect();
    ensure!(
        c.keys == keys && c.removed_keys.is_empty() && c.credentials == want_credentials,
        "{step}: since version {since} the store lists keys {:?}, removed keys {:?}, credentials {:?}; \
         expected keys {:?} and credentials {:?}",
        ids(&c.keys),
        c.removed_keys,
        c.credentials,
        ids(keys),
        want_credentials
    );
    let nothing = keys.is_empty() && credentials.is_empty();
    let moved_on = if nothing { c.version >= since } else { c.version > since };
    ensure!(moved_on, "{step}: the version went from {since} to {}", c.version);
    Ok(c.version)
}

fn ids(keys: &[KeyRecord]) -> Vec<&str> {
    keys.iter().map(|k| k.key_id.as_str()).collect()
}

/// Insert, revoke, expiry, held credentials set, replaced, removed and set again: each listed
/// once from the version before it; use of a key and refused writes list nothing; a version the
/// store never reached is answered `None`; the changes of a concurrent run add up to the store.
/// Every store mcpgate ships answers incrementally (the trait's default `None` fails here).
pub async fn key_changes<S: KeyStore + CredentialStore + 'static>(store: Arc<S>) -> Outcome {
    let s = store.as_ref();
    let v0 = s.keys_version().await?;
    let v = expect(s, "a fresh store", v0, &[], &[]).await?;
    ensure!(
        s.key_changes_since(v0 + 1_000_000).await?.is_none(),
        "changes since a version the store never reached were listed (a reader must reload)"
    );

    let mut kx = sample_key("kx", 1);
    s.insert_key(&kx).await?;
    let v = expect(s, "after an insert", v, std::slice::from_ref(&kx), &[]).await?;
    let v = expect(s, "nothing changed", v, &[], &[]).await?;

    s.touch_keys(&[("kx".into(), 5)]).await?;
    ensure!(
        s.keys_version().await? == v,
        "recording a key's use moved the keys version"
    );
    let v = expect(s, "after a key's use was recorded", v, &[], &[]).await?;

    s.revoke_key("kx").await?;
    kx.revoked = true;
    let v = expect(s, "after a revoke", v, std::slice::from_ref(&kx), &[]).await?;
    s.set_key_expiry("kx", Some(77)).await?;
    kx.expires_at = Some(77);
    let v = expect(s, "after an expiry was set", v, std::slice::from_ref(&kx), &[]).await?;

    // Writes that change nothing list nothing.
    ensure!(!s.revoke_key("missing").await?, "revoking a missing key answered true");
    ensure!(
        !s.set_key_expiry("missing", None).await?,
        "an expiry was set on a missing key"
    );
    ensure!(
        !s.remove_credential("missing").await?,
        "removing a credential never held answered true"
    );
    match s.insert_key(&sample_key("kx", 2)).await {
        Err(StoreError::Duplicate(_)) => {}
        other => return Err(Failure(format!("a second key with the same id gave {other:?}"))),
    }
    let v = expect(s, "after writes that changed nothing", v, &[], &[]).await?;

    let first = SealedCredential {
        nonce: vec![1; 12],
        ciphertext: vec![9; 40],
    };
    let second = SealedCredential {
        nonce: vec![2; 12],
        ciphertext: vec![0; 3],
    };
    s.set_credential("kx", &first, 1).await?;
    let v = expect(s, "after a credential was set", v, &[], &[("kx", Some(&first))]).await?;
    s.set_credential("kx", &second, 2).await?;
    let v = expect(s, "after a credential was replaced", v, &[], &[("kx", Some(&second))]).await?;
    s.remove_credential("kx").await?;
    let v = expect(s, "after a credential was removed", v, &[], &[("kx", None)]).await?;
    s.set_credential("kx", &first, 3).await?;
    let v = expect(s, "after a credential was set again", v, &[], &[("kx", Some(&first))]).await?;
    s.remove_credential("kx").await?;
    let v = expect(s, "after it was removed again", v, &[], &[("kx", None)]).await?;

    // Several changes to one key between two reads: listed once, as it is now.
    let mut ky = sample_key("ky", 3);
    s.insert_key(&ky).await?;
    s.revoke_key("ky").await?;
    s.set_credential("ky", &second, 4).await?;
    ky.revoked = true;
    let v = expect(
        s,
        "after an insert, a revoke and a credential",
        v,
        std::slice::from_ref(&ky),
        &[("ky", Some(&second))],
    )
    .await?;
    // And everything from the start: each key and credential once.
    expect(
        s,
        "everything since the first version",
        v0,
        &[kx, ky],
        &[("kx", None), ("ky", Some(&second))],
    )
    .await?;
    ensure!(s.keys_version().await? == v, "reading changes moved the keys version");
    follow_while_writing(store).await
}

/// Four writers insert, revoke, set and remove credentials while a reader follows the changes:
/// versions never go back, and the reader ends with what the store holds.
async fn follow_while_writing<S: KeyStore + CredentialStore + 'static>(store: Arc<S>) -> Outcome {
    let s = store.as_ref();
    let mut version = s.keys_version().await?;
    let mut keys: BTreeMap<String, KeyRecord> =
        s.all_keys().await?.into_iter().map(|k| (k.key_id.clone(), k)).collect();
    let mut held: BTreeMap<String, SealedCredential> = s.list_credentials().await?.into_iter().collect();
    let mut writers = Vec::new();
    for w in 0..4 {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            let sealed = SealedCredential {
                nonce: vec![w; 12],
                ciphertext: vec![w, 1, 2],
            };
            for i in 0..12i64 {
                let id = format!("w{w}-{i}");
                store.insert_key(&sample_key(&id, i)).await?;
                if i % 2 == 0 {
                    store.revoke_key(&id).await?;
                }
                if i % 3 == 0 {
                    store.set_credential(&id, &sealed, 1).await?;
                }
                if i % 6 == 0 {
                    store.remove_credential(&id).await?;
                }
                tokio::task::yield_now().await;
            }
            Ok::<(), StoreError>(())
        }));
    }
    let mut apply = |c: KeyChanges, version: &mut i64| -> Outcome {
        ensure!(
            c.version >= *version,
            "the version went back from {version} to {}",
            c.version
        );
        *version = c.version;
        for k in c.keys {
            keys.insert(k.key_id.clone(), k);
        }
        for id in c.removed_keys {
            keys.remove(&id);
        }
        for (id, sealed) in c.credentials {
            match sealed {
                Some(sealed) => held.insert(id, sealed),
                None => held.remove(&id),
            };
        }
        Ok(())
    };
    while !writers.iter().all(|w| w.is_finished()) {
        apply(changes(s, version).await?, &mut version)?;
        tokio::task::yield_now().await;
    }
    for w in writers {
        w.await.map_err(|e| Failure(format!("a writer task failed: {e}")))??;
    }
    apply(changes(s, version).await?, &mut version)?;
    let stored: BTreeMap<String, KeyRecord> = s.all_keys().await?.into_iter().map(|k| (k.key_id.clone(), k)).collect();
    ensure!(
        keys == stored,
        "a reader following the changes holds keys {:?}, the store {:?}",
        keys.keys().collect::<Vec<_>>(),
        stored.keys().collect::<Vec<_>>()
    );
    let revoked = |m: &BTreeMap<String, KeyRecord>| m.values().filter(|k| k.revoked).count();
    ensure!(revoked(&keys) == revoked(&stored), "a revoke was missed");
    let stored_held: BTreeMap<String, SealedCredential> = s.list_credentials().await?.into_iter().collect();
    ensure!(
        held == stored_held,
        "a reader following the changes holds credentials for {:?}, the store for {:?}",
        held.keys().collect::<Vec<_>>(),
        stored_held.keys().collect::<Vec<_>>()
    );
    Ok(())
}
