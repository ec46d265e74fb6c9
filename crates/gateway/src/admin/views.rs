//! How keys, clients, grants, users and sessions are shown — by the admin API and by the CLI's
//! `--json` output alike. No view holds a secret: keys by id (never their hash), clients by
//! whether they have a secret, sessions by id and owner.

use crate::key_service::state;
use mcpgate_core::keys::KeyRecord;
use mcpgate_core::time::format_rfc3339;
use mcpgate_store::oauth::{ClientRecord, GrantRecord};
use mcpgate_store::{KeyStore, SessionInfo, UserRecord};
use serde_json::{Value, json};

/// A key (with its last use, read from the store: `None` when it cannot say).
pub fn key(k: &KeyRecord, last_used: Option<i64>, now: i64) -> Value {
    json!({
        "key_id": k.key_id,
        "name": k.name,
        "user_id": k.user_id,
        "tenant": k.tenant,
        "role": k.role.as_str(),
        "permissions": k.permissions,
        "limits": k.limits,
        "state": state(k, now),
        "source": k.source,
        "created_at": format_rfc3339(k.created_at),
        "expires_at": k.expires_at.map(format_rfc3339),
        "last_used_at": last_used.map(format_rfc3339),
    })
}

/// A key with its last use read from `store`.
pub async fn key_in(store: &dyn KeyStore, k: &KeyRecord, now: i64) -> Value {
    key(k, store.last_used(&k.key_id).await.ok().flatten(), now)
}

pub fn client(c: &ClientRecord) -> Value {
    json!({
        "client_id": c.client_id,
        "kind": c.kind.as_str(),
        "name": c.name,
        "confidential": c.secret_hash.is_some(),
        "token_endpoint_auth_method": c.auth_method,
        "redirect_uris": c.redirect_uris,
        "grant_types": c.grant_types,
        "scope": c.scope.as_ref().map(|s| s.join(" ")),
        "created_at": format_rfc3339(c.created_at),
        "cached_until": c.expires_at.map(format_rfc3339),
    })
}

pub fn grant(g: &GrantRecord) -> Value {
    json!({
        "grant_id": g.grant_id,
        "client_id": g.client_id,
        "user_id": g.subject.user_id,
        "tenant": g.subject.tenant,
        "role": g.subject.role.as_str(),
        "signed_in_with": g.subject.via,
        "scopes": g.scopes,
        "resource": g.resource,
        "created_at": format_rfc3339(g.created_at),
        "expires_at": format_rfc3339(g.expires_at),
        "revoked_at": g.revoked_at.map(format_rfc3339),
    })
}

pub fn user(u: &UserRecord) -> Value {
    json!({
        "user_id": u.user_id,
        "tenant": u.tenant,
        "role": u.role.as_str(),
        "signed_in_with": u.via,
        "email": u.email,
        "name": u.name,
        "first_sign_in": format_rfc3339(u.first_sign_in),
        "last_sign_in": format_rfc3339(u.last_sign_in),
        "sign_ins": u.sign_ins,
    })
}

pub fn session(s: &SessionInfo) -> Value {
    json!({
        "session_id": s.id,
        "owner": s.owner,
        "last_seen_at": format_rfc3339(s.last_seen_ms / 1000),
        "last_seen_ms": s.last_seen_ms,
    })
}
