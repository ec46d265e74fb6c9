//! The authorization server's records in this process's memory: one lock over clients, grants,
//! codes, refresh tokens, consents, signing keys and users, so every method is one atomic step
//! (taking a code, rotating a token, removing a client with its grants, counting a sign-in).
//! Decisions come from [`crate::rules`], as in every backend.

use super::{MemoryStore, lock};
use crate::oauth::{
    ClientRecord, ClientStore, CodeRecord, CodeTake, ConsentRecord, GrantRecord, GrantStore, RefreshTokenRecord,
    Rotation, SigningKeyRecord, SigningKeyStore, UserRecord, UserStore,
};
use crate::rules::{self, Refresh, Step};
use crate::{Result, StoreError, async_trait};
use std::cmp::Reverse;
use std::collections::{HashMap, HashSet};

#[derive(Default)]
pub(super) struct OAuth {
    clients: HashMap<String, ClientRecord>,
    /// Code hash → the code and whether it was taken.
    codes: HashMap<String, (CodeRecord, bool)>,
    grants: HashMap<String, GrantRecord>,
    /// Token hash → its state.
    refresh: HashMap<String, Refresh>,
    /// (user, client) → consent.
    consents: HashMap<(String, String), ConsentRecord>,
    signing_keys: HashMap<String, SigningKeyRecord>,
    users: HashMap<String, UserRecord>,
}

impl OAuth {
    /// Revokes every grant not yet revoked that `which` picks; returns how many.
    fn revoke_where(&mut self, now: i64, which: impl Fn(&GrantRecord) -> bool) -> usize {
        let mut n = 0;
        for g in self.grants.values_mut() {
            if g.revoked_at.is_none() && which(g) {
                g.revoked_at = Some(now);
                n += 1;
            }
        }
        n
    }

    /// Revokes one grant unless it already was; false when there is none or it was.
    fn revoke_one(&mut self, grant_id: &str, now: i64) -> bool {
        match self.grants.get_mut(grant_id) {
            Some(g) if g.revoked_at.is_none() => {
                g.revoked_at = Some(now);
                true
            }
            _ => false,
        }
    }

    /// Records a refresh token of `grant`, refusing a hash already known.
    fn add_refresh(&mut self, hash: &str, grant: &GrantRecord, expires_at: i64) -> Result<()> {
        if self.refresh.contains_key(hash) {
            return Err(StoreError::Duplicate(hash.to_string()));
        }
        self.refresh.insert(
            hash.to_string(),
            Refresh {
                grant_id: grant.grant_id.clone(),
                expires_at: rules::capped(expires_at, grant),
                spent_at: None,
                grace_used: false,
            },
        );
        Ok(())
    }
}

#[async_trait]
impl ClientStore for MemoryStore {
    async fn insert_client(&self, client: &ClientRecord) -> Result<()> {
        let mut o = lock(&self.oauth);
        if o.clients.contains_key(&client.client_id) {
            return Err(StoreError::Duplicate(client.client_id.clone()));
        }
        o.clients.insert(client.client_id.clone(), client.clone());
        Ok(())
    }

    async fn put_client(&self, client: &ClientRecord) -> Result<()> {
        lock(&self.oauth)
            .clients
            .insert(client.client_id.clone(), client.clone());
        Ok(())
    }

    async fn get_client(&self, client_id: &str) -> Result<Option<ClientRecord>> {
        Ok(lock(&self.oauth).clients.get(client_id).cloned())
    }

    async fn list_clients(&self) -> Result<Vec<ClientRecord>> {
        let mut all: Vec<ClientRecord> = lock(&self.oauth).clients.values().cloned().collect();
        all.sort_by(|a, b| (a.created_at, &a.client_id).cmp(&(b.created_at, &b.client_id)));
        Ok(all)
    }

    async fn remove_client(&self, client_id: &str, now: i64) -> Result<bool> {
        let mut o = lock(&self.oauth);
        let removed = o.clients.remove(client_id).is_some();
        o.revoke_where(now, |g| g.client_id == client_id);
        Ok(removed)
    }
}

#[async_trait]
impl GrantStore for MemoryStore {
    async fn put_code(&self, code: &CodeRecord) -> Result<()> {
        let mut o = lock(&self.oauth);
        // Never replaced: writing a taken code again would make it fresh.
        if o.codes.contains_key(&code.code_hash) {
            return Err(StoreError::Duplicate(code.code_hash.clone()));
        }
        o.codes.insert(code.code_hash.clone(), (code.clone(), false));
        Ok(())
    }

    async fn take_code(&self, code_hash: &str, now: i64) -> Result<CodeTake> {
        let mut o = lock(&self.oauth);
        Ok(match o.codes.get_mut(code_hash) {
            None => CodeTake::Unknown,
            Some((code, _)) if rules::expired(code.expires_at, now) => CodeTake::Unknown,
            Some((code, true)) => CodeTake::Reused(code.clone()),
            Some((code, taken)) => {
                *taken = true;
                CodeTake::Fresh(code.clone())
            }
        })
    }

    async fn create_grant(
        &self,
        grant: &GrantRecord,
        refresh_hash: Option<&str>,
        refresh_expires_at: i64,
    ) -> Result<()> {
        let mut o = lock(&self.oauth);
        if o.grants.contains_key(&grant.grant_id) {
            return Err(StoreError::Duplicate(grant.grant_id.clone()));
        }
        if let Some(hash) = refresh_hash {
            o.add_refresh(hash, grant, refresh_expires_at)?;
        }
        o.grants.insert(grant.grant_id.clone(), grant.clone());
        Ok(())
    }

    async fn get_grant(&self, grant_id: &str) -> Result<Option<GrantRecord>> {
        Ok(lock(&self.oauth).grants.get(grant_id).cloned())
    }

    async fn list_grants(&self, user_id: Option<&str>, client_id: Option<&str>) -> Result<Vec<GrantRecord>> {
        let mut out: Vec<GrantRecord> = lock(&self.oauth)
            .grants
            .values()
            .filter(|g| user_id.is_none_or(|u| g.subject.user_id == u) && client_id.is_none_or(|c| g.client_id == c))
            .cloned()
            .collect();
        out.sort_by(|a, b| {
            (Reverse(a.created_at), Reverse(&a.grant_id)).cmp(&(Reverse(b.created_at), Reverse(&b.grant_id)))
        });
        Ok(out)
    }

    async fn revoke_grant(&self, grant_id: &str, now: i64) -> Result<bool> {
        Ok(lock(&self.oauth).revoke_one(grant_id, now))
    }

    async fn revoke_grants_via(&self, via: &str, now: i64) -> Result<usize> {
        Ok(lock(&self.oauth).revoke_where(now, |g| g.subject.via == via))
    }

    async fn revoked_since(&self, since: i64) -> Result<Vec<String>> {
        let o = lock(&self.oauth);
        let mut out: Vec<(i64, &String)> = o
            .grants
            .values()
            .filter_map(|g| g.revoked_at.filter(|&at| at >= since).map(|at| (at, &g.grant_id)))
            .collect();
        out.sort();
        Ok(out.into_iter().map(|(_, id)| id.clone()).collect())
    }

    async fn rotate_refresh(
        &self,
        old_hash: &str,
        new_hash: &str,
        new_expires_at: i64,
        now: i64,
        grace_s: i64,
    ) -> Result<Rotation> {
        let mut o = lock(&self.oauth);
        let Some(token) = o.refresh.get(old_hash) else {
            return Ok(Rotation::Unknown);
        };
        let Some(grant) = o.grants.get(&token.grant_id).cloned() else {
            return Ok(Rotation::Unknown);
        };
        let grant_id = grant.grant_id.clone();
        match rules::step(&grant, token, now, grace_s) {
            Step::Ended => Ok(Rotation::Ended { grant_id }),
            Step::Reuse => {
                o.revoke_one(&grant_id, now);
                Ok(Rotation::Reused { grant_id })
            }
            step @ (Step::Spend | Step::Grace) => {
                o.add_refresh(new_hash, &grant, new_expires_at)?;
                if let Some(t) = o.refresh.get_mut(old_hash) {
                    if step == Step::Spend {
                        t.spent_at = Some(now);
                    } else {
                        t.grace_used = true;
                    }
                }
                Ok(Rotation::Rotated(Box::new(grant)))
            }
        }
    }

    async fn grant_of_refresh(&self, token_hash: &str) -> Result<Option<GrantRecord>> {
        let o = lock(&self.oauth);
        Ok(o.refresh
            .get(token_hash)
            .and_then(|t| o.grants.get(&t.grant_id))
            .cloned())
    }

    async fn set_consent(&self, consent: &ConsentRecord) -> Result<()> {
        let key = (consent.user_id.clone(), consent.client_id.clone());
        lock(&self.oauth).consents.insert(key, consent.clone());
        Ok(())
    }

    async fn get_consent(&self, user_id: &str, client_id: &str) -> Result<Option<ConsentRecord>> {
        let key = (user_id.to_string(), client_id.to_string());
        Ok(lock(&self.oauth).consents.get(&key).cloned())
    }

    async fn remove_consent(&self, user_id: &str, client_id: &str) -> Result<bool> {
        let key = (user_id.to_string(), client_id.to_string());
        Ok(lock(&self.oauth).consents.remove(&key).is_some())
    }

    async fn prune_grants(&self, now: i64, keep_revoked_s: i64) -> Result<usize> {
        let mut o = lock(&self.oauth);
        let before = o.codes.len() + o.refresh.len() + o.grants.len();
        o.codes.retain(|_, (c, _)| !rules::expired(c.expires_at, now));
        let gone: HashSet<String> = o
            .grants
            .values()
            .filter(|g| rules::grant_forgotten(g, now, keep_revoked_s))
            .map(|g| g.grant_id.clone())
            .collect();
        o.grants.retain(|id, _| !gone.contains(id));
        o.refresh
            .retain(|_, t| !rules::expired(t.expires_at, now) && !gone.contains(&t.grant_id));
        Ok(before - (o.codes.len() + o.refresh.len() + o.grants.len()))
    }

    async fn refresh_tokens(&self, grant_id: &str) -> Result<Vec<RefreshTokenRecord>> {
        let o = lock(&self.oauth);
        let mut out: Vec<RefreshTokenRecord> = o
            .refresh
            .iter()
            .filter(|(_, t)| t.grant_id == grant_id)
            .map(|(hash, t)| RefreshTokenRecord {
                token_hash: hash.clone(),
                expires_at: t.expires_at,
                spent_at: t.spent_at,
                grace_used: t.grace_used,
            })
            .collect();
        out.sort_by(|a, b| a.token_hash.cmp(&b.token_hash));
        Ok(out)
    }

    async fn import_grant(&self, grant: &GrantRecord, tokens: &[RefreshTokenRecord]) -> Result<()> {
        let mut o = lock(&self.oauth);
        if o.grants.contains_key(&grant.grant_id) {
            return Err(StoreError::Duplicate(grant.grant_id.clone()));
        }
        // All or none: every hash checked before anything is written.
        let mut seen = HashSet::new();
        if let Some(t) = tokens
            .iter()
            .find(|t| o.refresh.contains_key(&t.token_hash) || !seen.insert(t.token_hash.as_str()))
        {
            return Err(StoreError::Duplicate(t.token_hash.clone()));
        }
        for t in tokens {
            o.refresh.insert(
                t.token_hash.clone(),
                Refresh {
                    grant_id: grant.grant_id.clone(),
                    expires_at: t.expires_at,
                    spent_at: t.spent_at,
                    grace_used: t.grace_used,
                },
            );
        }
        o.grants.insert(grant.grant_id.clone(), grant.clone());
        Ok(())
    }

    async fn list_consents(&self) -> Result<Vec<ConsentRecord>> {
        let mut all: Vec<ConsentRecord> = lock(&self.oauth).consents.values().cloned().collect();
        all.sort_by(|a, b| (&a.user_id, &a.client_id).cmp(&(&b.user_id, &b.client_id)));
        Ok(all)
    }
}

#[async_trait]
impl SigningKeyStore for MemoryStore {
    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<()> {
        let mut o = lock(&self.oauth);
        if o.signing_keys.contains_key(&key.kid) {
            return Err(StoreError::Duplicate(key.kid.clone()));
        }
        o.signing_keys.insert(key.kid.clone(), key.clone());
        Ok(())
    }

    async fn list_signing_keys(&self) -> Result<Vec<SigningKeyRecord>> {
        let mut all: Vec<SigningKeyRecord> = lock(&self.oauth).signing_keys.values().cloned().collect();
        all.sort_by(|a, b| (Reverse(a.created_at), Reverse(&a.kid)).cmp(&(Reverse(b.created_at), Reverse(&b.kid))));
        Ok(all)
    }

    async fn retire_signing_key(&self, kid: &str, at: i64) -> Result<bool> {
        let mut o = lock(&self.oauth);
        let Some(key) = o.signing_keys.get_mut(kid) else {
            return Ok(false);
        };
        key.retired_at.get_or_insert(at);
        Ok(true)
    }

    async fn remove_signing_key(&self, kid: &str) -> Result<bool> {
        Ok(lock(&self.oauth).signing_keys.remove(kid).is_some())
    }
}

#[async_trait]
impl UserStore for MemoryStore {
    async fn record_sign_in(&self, user: &UserRecord, now: i64) -> Result<UserRecord> {
        let mut o = lock(&self.oauth);
        let stored = match o.users.get(&user.user_id) {
            Some(known) => UserRecord {
                first_sign_in: known.first_sign_in,
                last_sign_in: known.last_sign_in.max(now),
                sign_ins: known.sign_ins.saturating_add(1),
                ..user.clone()
            },
            None => UserRecord {
                first_sign_in: now,
                last_sign_in: now,
                sign_ins: 1,
                ..user.clone()
            },
        };
        o.users.insert(stored.user_id.clone(), stored.clone());
        Ok(stored)
    }

    async fn get_user(&self, user_id: &str) -> Result<Option<UserRecord>> {
        Ok(lock(&self.oauth).users.get(user_id).cloned())
    }

    async fn list_users(&self) -> Result<Vec<UserRecord>> {
        let mut all: Vec<UserRecord> = lock(&self.oauth).users.values().cloned().collect();
        all.sort_by(|a, b| (a.first_sign_in, &a.user_id).cmp(&(b.first_sign_in, &b.user_id)));
        Ok(all)
    }

    async fn remove_user(&self, user_id: &str) -> Result<bool> {
        Ok(lock(&self.oauth).users.remove(user_id).is_some())
    }

    async fn import_user(&self, user: &UserRecord) -> Result<()> {
        let mut o = lock(&self.oauth);
        if o.users.contains_key(&user.user_id) {
            return Err(StoreError::Duplicate(user.user_id.clone()));
        }
        o.users.insert(user.user_id.clone(), user.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AuditStore;
    use crate::oauth::Subject;
    use mcpgate_core::audit::AuditRecord;
    use mcpgate_core::principal::Role;

    fn grant(id: &str) -> GrantRecord {
        GrantRecord {
            grant_id: id.into(),
            client_id: "c".into(),
            subject: Subject {
                user_id: "u".into(),
                tenant: None,
                role: Role::User,
                permissions: vec!["read".into()],
                via: "key:k".into(),
            },
            scopes: vec!["read".into()],
            resource: "r".into(),
            created_at: 1,
            expires_at: 1000,
            revoked_at: None,
        }
    }

    /// What a copy reads out of one memory store goes into another as it was.
    #[tokio::test]
    async fn a_copy_reads_and_writes_every_record_as_it_was() {
        let (src, dst) = (MemoryStore::new(), MemoryStore::new());
        src.create_grant(&grant("g"), Some("h1"), 500).await.unwrap();
        src.rotate_refresh("h1", "h2", 500, 10, 0).await.unwrap();
        let tokens = src.refresh_tokens("g").await.unwrap();
        assert_eq!(tokens.len(), 2);
        assert_eq!(tokens[0].spent_at, Some(10), "h1 spent");
        dst.import_grant(&grant("g"), &tokens).await.unwrap();
        assert_eq!(dst.refresh_tokens("g").await.unwrap(), tokens);
        assert_eq!(
            dst.rotate_refresh("h1", "h3", 500, 20, 0).await.unwrap(),
            Rotation::Reused { grant_id: "g".into() },
            "a spent token stays spent"
        );
        assert!(matches!(
            dst.import_grant(&grant("g"), &[]).await,
            Err(StoreError::Duplicate(id)) if id == "g"
        ));
        // All or none: a taken token hash leaves no grant behind.
        assert!(dst.import_grant(&grant("g2"), &tokens).await.is_err());
        assert!(dst.get_grant("g2").await.unwrap().is_none());

        for (user, client) in [("b", "c"), ("a", "d"), ("a", "c")] {
            src.set_consent(&ConsentRecord {
                user_id: user.into(),
                client_id: client.into(),
                scopes: vec![],
                given_at: 1,
            })
            .await
            .unwrap();
        }
        let order: Vec<(String, String)> = src
            .list_consents()
            .await
            .unwrap()
            .into_iter()
            .map(|c| (c.user_id, c.client_id))
            .collect();
        assert_eq!(
            order,
            [("a", "c"), ("a", "d"), ("b", "c")].map(|(u, c)| (u.into(), c.into()))
        );

        let user = UserRecord {
            user_id: "ana".into(),
            tenant: None,
            role: Role::User,
            via: "provider:x:1".into(),
            email: None,
            name: None,
            first_sign_in: 5,
            last_sign_in: 9,
            sign_ins: 3,
        };
        dst.import_user(&user).await.unwrap();
        assert_eq!(dst.get_user("ana").await.unwrap(), Some(user.clone()));
        assert!(matches!(dst.import_user(&user).await, Err(StoreError::Duplicate(_))));

        // The audit log in pages (the trait's default reading), in order.
        let record = |i: i64| AuditRecord {
            time_ms: i,
            request_id: format!("r{i}"),
            event: "call".into(),
            principal: None,
            key_id: None,
            user_id: None,
            tenant: None,
            auth_method: None,
            client_addr: None,
            mcp_method: None,
            tool: None,
            decision: "allow".into(),
            reason: String::new(),
            status: 200,
            latency_us: 0,
            client_id: None,
        };
        src.append(&(0..5).map(record).collect::<Vec<_>>()).await.unwrap();
        let first = src.page(0, 2).await.unwrap();
        assert_eq!(
            first.iter().map(|(n, r)| (*n, r.time_ms)).collect::<Vec<_>>(),
            [(1, 0), (2, 1)]
        );
        let rest = src.page(2, 10).await.unwrap();
        assert_eq!(rest.iter().map(|(_, r)| r.time_ms).collect::<Vec<_>>(), [2, 3, 4]);
        assert!(src.page(5, 10).await.unwrap().is_empty());
    }
}
