//! `/admin/api/v1/keys`: the key service over HTTP. A new or rotated key's secret is in that one
//! answer (`Cache-Control: no-store`) and nowhere else: not in a later read, not in the audit.

use super::{Action, ApiError, act, body, json, query, views};
use crate::Gateway;
use crate::key_service::NewKey;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mcpgate_core::principal::{Limits, Role};
use mcpgate_core::redact::Secret;
use serde::Deserialize;
use std::sync::Arc;

/// The longest page a list returns.
pub const MAX_PAGE: usize = 1000;

/// The text fields' ceiling (names, user ids, tenants, permissions).
const MAX_TEXT: usize = 256;

fn text(field: &str, v: &str, required: bool) -> Result<(), ApiError> {
    if required && v.trim().is_empty() {
        return Err(ApiError::bad_request(format!("{field} is required")));
    }
    if v.chars().count() > MAX_TEXT || v.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "{field} must be at most {MAX_TEXT} characters, none of them control characters"
        )));
    }
    Ok(())
}

/// A path id: printable, bounded.
pub(super) fn id(v: &str) -> Result<(), ApiError> {
    if v.is_empty() || v.len() > MAX_TEXT || v.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "the id in the path is empty, too long or not printable",
        ));
    }
    Ok(())
}

/// `limit` (1..=1000, default 100) and the `after` cursor of a list.
pub(super) fn page(form: &crate::oauth::form::Form) -> Result<(usize, Option<String>), ApiError> {
    let limit = match form.get("limit") {
        None => 100,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_PAGE).contains(n))
            .ok_or_else(|| ApiError::bad_request(format!("limit must be a number from 1 to {MAX_PAGE}")))?,
    };
    Ok((limit, form.get("after").map(str::to_string)))
}

/// `GET /keys?limit=&after=`: keys in the store's order (oldest first), a page at a time.
pub async fn list(State(gw): State<Arc<Gateway>>, req: Request<Body>) -> Response {
    let (parts, _) = req.into_parts();
    act(&gw, &parts, false, Action::new("keys.list", None), async |a, _| {
        let (limit, after) = page(&query(&parts, &["limit", "after"])?)?;
        let all = a.keys.keys().list_keys().await?;
        let start = match &after {
            Some(k) => all
                .iter()
                .position(|r| &r.key_id == k)
                .map(|i| i + 1)
                .ok_or_else(|| ApiError::bad_request("after names no key"))?,
            None => 0,
        };
        let now = gw.clock.unix_s();
        let mut rows = Vec::new();
        for k in all.iter().skip(start).take(limit) {
            rows.push(views::key_in(a.keys.keys(), k, now).await);
        }
        let next = (start + limit < all.len())
            .then(|| rows.last().and_then(|r| r["key_id"].as_str().map(str::to_string)))
            .flatten();
        Ok(json(
            StatusCode::OK,
            serde_json::json!({"keys": rows, "next": next, "total": all.len()}),
        ))
    })
    .await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateBody {
    pub name: String,
    pub user_id: String,
    #[serde(default)]
    pub tenant: Option<String>,
    /// `guest`, `user` (default), `developer` or `admin`.
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub permissions: Vec<String>,
    #[serde(default)]
    pub limits: Option<LimitsBody>,
    /// Seconds from now.
    #[serde(default)]
    pub expires_in_s: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct LimitsBody {
    #[serde(default)]
    pub per_minute: Option<u32>,
    #[serde(default)]
    pub per_hour: Option<u32>,
    #[serde(default)]
    pub per_day: Option<u32>,
}

/// `POST /keys`: a new key; the secret is in this answer only.
pub async fn create(State(gw): State<Arc<Gateway>>, req: Request<Body>) -> Response {
    let (parts, raw) = req.into_parts();
    act(&gw, &parts, true, Action::new("keys.create", None), async |a, _| {
        query(&parts, &[])?;
        let view = create_key(&gw, a, body(&parts, raw).await?).await?;
        Ok(json(StatusCode::CREATED, view))
    })
    .await
}

/// Checks and creates a key (the API's and the console's one way): its view, with the secret
/// under `key`.
pub(super) async fn create_key(gw: &Gateway, a: &super::Admin, b: CreateBody) -> Result<serde_json::Value, ApiError> {
    text("name", &b.name, true)?;
    text("user_id", &b.user_id, true)?;
    if let Some(t) = &b.tenant {
        text("tenant", t, true)?;
    }
    if b.permissions.len() > 64 {
        return Err(ApiError::bad_request("at most 64 permissions"));
    }
    for p in &b.permissions {
        text("a permission", p, true)?;
    }
    let role = match b.role.as_deref() {
        None => Role::User,
        Some(r) => {
            Role::parse(r).ok_or_else(|| ApiError::bad_request("role must be guest, user, developer or admin"))?
        }
    };
    let now = gw.clock.unix_s();
    let expires_at = match b.expires_in_s {
        None => None,
        Some(s) if (1..=10 * 365 * 86_400).contains(&s) => Some(now + s),
        Some(_) => {
            return Err(ApiError::bad_request(
                "expires_in_s must be from 1 to 315360000 (ten years)",
            ));
        }
    };
    let limits = b.limits.map_or(Limits::default(), |l| Limits {
        per_minute: l.per_minute,
        per_hour: l.per_hour,
        per_day: l.per_day,
    });
    let minted = a
        .keys
        .create(
            NewKey {
                name: b.name,
                user_id: b.user_id,
                tenant: b.tenant,
                role,
                permissions: b.permissions,
                limits,
                expires_at,
            },
            now,
        )
        .await?;
    let mut view = views::key(&minted.record, None, now);
    view["key"] = minted.key.expose().into();
    Ok(view)
}

/// `GET /keys/{id}`.
pub async fn show(State(gw): State<Arc<Gateway>>, Path(key_id): Path<String>, req: Request<Body>) -> Response {
    let (parts, _) = req.into_parts();
    act(
        &gw,
        &parts,
        false,
        Action::new("keys.show", Some(&key_id)),
        async |a, _| {
            query(&parts, &[])?;
            id(&key_id)?;
            let k = a.keys.get(&key_id).await?;
            Ok(json(
                StatusCode::OK,
                views::key_in(a.keys.keys(), &k, gw.clock.unix_s()).await,
            ))
        },
    )
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    /// How long the old key keeps working (seconds; default a day).
    #[serde(default)]
    overlap_s: Option<i64>,
}

/// `POST /keys/{id}/rotate`: a new key with the same grants; the old one lapses after the overlap.
pub async fn rotate(State(gw): State<Arc<Gateway>>, Path(key_id): Path<String>, req: Request<Body>) -> Response {
    let (parts, raw) = req.into_parts();
    act(
        &gw,
        &parts,
        true,
        Action::new("keys.rotate", Some(&key_id)),
        async |a, _| {
            query(&parts, &[])?;
            id(&key_id)?;
            let b: RotateBody = body(&parts, raw).await?;
            let overlap = b.overlap_s.unwrap_or(86_400);
            if !(0..=365 * 86_400).contains(&overlap) {
                return Err(ApiError::bad_request("overlap_s must be from 0 to 31536000 (a year)"));
            }
            let now = gw.clock.unix_s();
            let r = a.keys.rotate(&key_id, overlap, now).await?;
            let mut view = views::key(&r.minted.record, None, now);
            view["key"] = r.minted.key.expose().into();
            view["replaces"] = key_id.as_str().into();
            view["old_valid_until"] = mcpgate_core::time::format_rfc3339(r.old_valid_until).into();
            Ok(json(StatusCode::CREATED, view))
        },
    )
    .await
}

/// `POST /keys/{id}/revoke`: the key, and the OAuth grants signed in with it.
pub async fn revoke(State(gw): State<Arc<Gateway>>, Path(key_id): Path<String>, req: Request<Body>) -> Response {
    let (parts, raw) = req.into_parts();
    act(
        &gw,
        &parts,
        true,
        Action::new("keys.revoke", Some(&key_id)),
        async |a, _| {
            query(&parts, &[])?;
            id(&key_id)?;
            let _: Empty = body(&parts, raw).await?;
            Ok(json(StatusCode::OK, revoke_key(&gw, a, &key_id).await?))
        },
    )
    .await
}

/// Revokes a key (the API's and the console's one way).
pub(super) async fn revoke_key(gw: &Gateway, a: &super::Admin, key_id: &str) -> Result<serde_json::Value, ApiError> {
    id(key_id)?;
    let ended = a.keys.revoke(key_id, gw.clock.unix_s()).await?;
    Ok(serde_json::json!({"key_id": key_id, "revoked": true, "grants_ended": ended}))
}

/// A body that must be empty or `{}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Empty {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialBody {
    credential: String,
}

/// `PUT /keys/{id}/credential`: holds a sealed upstream credential for the key (delegation).
pub async fn hold_credential(
    State(gw): State<Arc<Gateway>>,
    Path(key_id): Path<String>,
    req: Request<Body>,
) -> Response {
    let (parts, raw) = req.into_parts();
    act(
        &gw,
        &parts,
        true,
        Action::new("keys.credential.set", Some(&key_id)),
        async |a, _| {
            query(&parts, &[])?;
            id(&key_id)?;
            let b: CredentialBody = body(&parts, raw).await?;
            let sealing = a.sealing.as_ref().ok_or_else(|| {
                ApiError::new(
                    StatusCode::CONFLICT,
                    "delegation_off",
                    "no sealing key: set [delegation] encryption_key_env and its variable to hold credentials",
                )
            })?;
            if b.credential.len() > 16 * 1024 || b.credential.chars().any(|c| c == '\r' || c == '\n' || c == '\0') {
                return Err(ApiError::bad_request(
                    "the credential must be at most 16 KiB, on one line, without NUL",
                ));
            }
            a.keys
                .hold_credential(&key_id, &Secret::new(b.credential), sealing, gw.clock.unix_s())
                .await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        },
    )
    .await
}

/// `DELETE /keys/{id}/credential`.
pub async fn clear_credential(
    State(gw): State<Arc<Gateway>>,
    Path(key_id): Path<String>,
    req: Request<Body>,
) -> Response {
    let (parts, _) = req.into_parts();
    act(
        &gw,
        &parts,
        true,
        Action::new("keys.credential.clear", Some(&key_id)),
        async |a, _| {
            query(&parts, &[])?;
            id(&key_id)?;
            a.keys.clear_credential(&key_id).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        },
    )
    .await
}
