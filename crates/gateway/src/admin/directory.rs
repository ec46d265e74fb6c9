//! `/admin/api/v1/{clients,grants,users,sessions}`: the authorization server's records and the
//! MCP sessions, listed and ended. [`revoke_grant`] is the one rule for ending a grant — the CLI's
//! `mcpgate grants revoke` uses it too.

use super::keys::{Empty, id, page};
use super::{Action, ApiError, act, body, json, query, views};
use crate::Gateway;
use crate::shared::Change;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use mcpgate_store::oauth::{GrantRecord, GrantStore};
use mcpgate_store::{CredentialStore, StoreError};
use serde_json::json as j;
use std::sync::Arc;

/// What ending one grant did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Ended {
    /// The grant was live and is now revoked.
    pub revoked: bool,
    /// The remembered consent for its user and client was forgotten (the next sign-in asks).
    pub consent_forgotten: bool,
}

/// Ends a grant: revokes it (its refresh tokens at once, its access tokens when the revocation
/// is read — at once where it is announced), forgets the consent its user gave the client, and
/// drops the provider token held for its sign-in (`delegation.source = "provider:…"`).
pub async fn revoke_grant(
    grants: &dyn GrantStore,
    credentials: &dyn CredentialStore,
    g: &GrantRecord,
    now: i64,
) -> Result<Ended, StoreError> {
    let revoked = grants.revoke_grant(&g.grant_id, now).await?;
    let consent_forgotten = grants.remove_consent(&g.subject.user_id, &g.client_id).await?;
    if g.subject.via.starts_with("provider:") {
        credentials.remove_credential(&g.subject.via).await?;
    }
    Ok(Ended {
        revoked,
        consent_forgotten,
    })
}

/// A page of `rows` (already in order) after the row whose id is `after`.
fn paged(
    rows: Vec<serde_json::Value>,
    id_field: &str,
    limit: usize,
    after: Option<&str>,
) -> Result<serde_json::Value, ApiError> {
    let start = match after {
        Some(a) => rows
            .iter()
            .position(|r| r[id_field].as_str() == Some(a))
            .map(|i| i + 1)
            .ok_or_else(|| ApiError::bad_request("after names nothing in this list"))?,
        None => 0,
    };
    let total = rows.len();
    let page: Vec<serde_json::Value> = rows.into_iter().skip(start).take(limit).collect();
    let next = (start + limit < total)
        .then(|| page.last().and_then(|r| r[id_field].as_str().map(str::to_string)))
        .flatten();
    Ok(j!({"items": page, "next": next, "total": total}))
}

pub async fn clients(State(gw): State<Arc<Gateway>>, req: Request<Body>) -> Response {
    let (parts, _) = req.into_parts();
    act(&gw, &parts, false, Action::new("clients.list", None), async |a, _| {
        let (limit, after) = page(&query(&parts, &["limit", "after"])?)?;
        let rows = a.clients.list_clients().await?.iter().map(views::client).collect();
        Ok(json(StatusCode::OK, paged(rows, "client_id", limit, after.as_deref())?))
    })
    .await
}

pub async fn client(State(gw): State<Arc<Gateway>>, Path(client_id): Path<String>, req: Request<Body>) -> Response {
    let (parts, _) = req.into_parts();
    act(
        &gw,
        &parts,
        false,
        Action::new("clients.show", Some(&client_id)),
        async |a, _| {
            query(&parts, &[])?;
            id(&client_id)?;
            let c = a
                .clients
                .get_client(&client_id)
                .await?
                .ok_or_else(|| ApiError::not_found("no such client"))?;
            let grants: Vec<serde_json::Value> = a
                .grants
                .list_grants(None, Some(&client_id))
                .await?
                .iter()
                .map(views::grant)
                .collect();
            let mut v = views::client(&c);
            v["grants"] = grants.into();
            Ok(json(StatusCode::OK, v))
        },
    )
    .await
}

/// `DELETE /clients/{id}`: the client goes, and its grants with it.
pub async fn remove_client(
    State(gw): State<Arc<Gateway>>,
    Path(client_id): Path<String>,
    req: Request<Body>,
) -> Response {
    let (parts, _) = req.into_parts();
    act(
        &gw,
        &parts,
        true,
        Action::new("clients.remove", Some(&client_id)),
        async |a, _| {
            query(&parts, &[])?;
            Ok(json(StatusCode::OK, remove_client_by_id(&gw, a, &client_id).await?))
        },
    )
    .await
}

/// `GET /grants?user=&client=&state=live|revoked&limit=&after=`.
pub async fn grants(State(gw): State<Arc<Gateway>>, req: Request<Body>) -> Response {
    let (parts, _) = req.into_parts();
    act(&gw, &parts, false, Action::new("grants.list", None), async |a, _| {
        let q = query(&parts, &["user", "client", "state", "limit", "after"])?;
        let (limit, after) = page(&q)?;
        let live = match q.get("state") {
            None => None,
            Some("live") => Some(true),
            Some("revoked") => Some(false),
            Some(_) => return Err(ApiError::bad_request("state must be live or revoked")),
        };
        let rows = a
            .grants
            .list_grants(q.get("user"), q.get("client"))
            .await?
            .iter()
            .filter(|g| live.is_none_or(|l| l == g.revoked_at.is_none()))
            .map(views::grant)
            .collect();
        Ok(json(StatusCode::OK, paged(rows, "grant_id", limit, after.as_deref())?))
    })
    .await
}

/// `POST /grants/{id}/revoke`.
pub async fn revoke(State(gw): State<Arc<Gateway>>, Path(grant_id): Path<String>, req: Request<Body>) -> Response {
    let (parts, raw) = req.into_parts();
    act(
        &gw,
        &parts,
        true,
        Action::new("grants.revoke", Some(&grant_id)),
        async |a, _| {
            query(&parts, &[])?;
            let _: Empty = body(&parts, raw).await?;
            Ok(json(StatusCode::OK, revoke_grant_by_id(&gw, a, &grant_id).await?))
        },
    )
    .await
}

pub async fn users(State(gw): State<Arc<Gateway>>, req: Request<Body>) -> Response {
    let (parts, _) = req.into_parts();
    act(&gw, &parts, false, Action::new("users.list", None), async |a, _| {
        let (limit, after) = page(&query(&parts, &["limit", "after"])?)?;
        let rows = a.users.list_users().await?.iter().map(views::user).collect();
        Ok(json(StatusCode::OK, paged(rows, "user_id", limit, after.as_deref())?))
    })
    .await
}

pub async fn user(State(gw): State<Arc<Gateway>>, Path(user_id): Path<String>, req: Request<Body>) -> Response {
    let (parts, _) = req.into_parts();
    act(
        &gw,
        &parts,
        false,
        Action::new("users.show", Some(&user_id)),
        async |a, _| {
            query(&parts, &[])?;
            id(&user_id)?;
            let u = a
                .users
                .get_user(&user_id)
                .await?
                .ok_or_else(|| ApiError::not_found("no user by that id has signed in through a provider"))?;
            let grants: Vec<serde_json::Value> = a
                .grants
                .list_grants(Some(&user_id), None)
                .await?
                .iter()
                .map(views::grant)
                .collect();
            let mut v = views::user(&u);
            v["grants"] = grants.into();
            Ok(json(StatusCode::OK, v))
        },
    )
    .await
}

/// `GET /sessions?limit=`: open MCP sessions (every replica's, with a shared session store), the
/// most recently used first.
pub async fn sessions(State(gw): State<Arc<Gateway>>, req: Request<Body>) -> Response {
    let (parts, _) = req.into_parts();
    act(&gw, &parts, false, Action::new("sessions.list", None), async |_, _| {
        let (limit, _) = page(&query(&parts, &["limit"])?)?;
        let all = gw.sessions.list(limit).await.map_err(session_error)?;
        let total = gw.sessions.total().await.map_err(session_error)?;
        let rows: Vec<serde_json::Value> = all.iter().map(views::session).collect();
        Ok(json(StatusCode::OK, j!({"items": rows, "total": total})))
    })
    .await
}

fn session_error(e: crate::sessions::SessionError) -> ApiError {
    tracing::warn!(error = %e, "admin: the session store cannot answer");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        "the session store cannot answer now; try again shortly",
    )
}

/// `DELETE /sessions/{id}`: the session ends here and at every replica (its next request gets
/// 404, as after the client's own `DELETE`), and the upstream is told.
pub async fn end_session(
    State(gw): State<Arc<Gateway>>,
    Path(session_id): Path<String>,
    req: Request<Body>,
) -> Response {
    let (parts, _) = req.into_parts();
    act(
        &gw,
        &parts,
        true,
        Action::new("sessions.end", Some(&session_id)),
        async |_, _| {
            query(&parts, &[])?;
            Ok(json(StatusCode::OK, end_session_by_id(&gw, &session_id).await?))
        },
    )
    .await
}

/// Removes a client and its grants (the API's and the console's one way).
pub(super) async fn remove_client_by_id(
    gw: &Gateway,
    a: &super::Admin,
    client_id: &str,
) -> Result<serde_json::Value, ApiError> {
    id(client_id)?;
    let now = gw.clock.unix_s();
    if a.clients.get_client(client_id).await?.is_none() {
        return Err(ApiError::not_found("no such client"));
    }
    // Each grant ends by the one rule (its consent forgotten, a provider token dropped): a
    // client that comes back under the same id (a CIMD URL is fetched again) asks again.
    for g in a.grants.list_grants(None, Some(client_id)).await? {
        revoke_grant(a.grants.as_ref(), a.credentials.as_ref(), &g, now).await?;
    }
    // And consents given without a grant yet (a code not exchanged).
    for c in a.grants.list_consents().await? {
        if c.client_id == client_id {
            a.grants.remove_consent(&c.user_id, client_id).await?;
        }
    }
    if !a.clients.remove_client(client_id, now).await? {
        return Err(ApiError::not_found("no such client"));
    }
    a.broadcast.announce(Change::Clients);
    a.broadcast.announce(Change::Grants);
    Ok(j!({"client_id": client_id, "removed": true}))
}

/// Revokes a grant by id (the API's and the console's one way).
pub(super) async fn revoke_grant_by_id(
    gw: &Gateway,
    a: &super::Admin,
    grant_id: &str,
) -> Result<serde_json::Value, ApiError> {
    id(grant_id)?;
    let g = a
        .grants
        .get_grant(grant_id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such grant"))?;
    let ended = revoke_grant(a.grants.as_ref(), a.credentials.as_ref(), &g, gw.clock.unix_s()).await?;
    if ended.revoked {
        a.broadcast.announce(Change::Grants);
    }
    Ok(
        j!({"grant_id": grant_id, "revoked": ended.revoked, "already_revoked": !ended.revoked,
        "consent_forgotten": ended.consent_forgotten}),
    )
}

/// Ends an MCP session (the API's and the console's one way): here, at every replica (announced),
/// and upstream, as a client's `DELETE` would — a stdio child is stopped, an HTTP server is sent
/// `DELETE` with the session id; the upstream's answer does not change the outcome.
pub(super) async fn end_session_by_id(gw: &Gateway, session_id: &str) -> Result<serde_json::Value, ApiError> {
    id(session_id)?;
    if !session_id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::not_found("no such session"));
    }
    if !gw.sessions.close(session_id).await.map_err(session_error)? {
        return Err(ApiError::not_found("no such session"));
    }
    let upstream_told = match axum::http::Request::delete("/mcp")
        .header("mcp-session-id", session_id)
        .body(())
    {
        Ok(r) => {
            let (client, ()) = r.into_parts();
            use crate::upstream::Forwarder;
            gw.upstream
                .delete(crate::upstream::Plain {
                    session: Some(session_id),
                    client: &client,
                    principal: None,
                    inject: &[],
                })
                .await
                .is_ok()
        }
        Err(_) => false,
    };
    Ok(j!({"session_id": session_id, "ended": true, "upstream_told": upstream_told}))
}
