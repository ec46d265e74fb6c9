//! The console's pages and forms. Data comes from the same stores and functions as the admin
//! API (`keys::create_key`, `directory::revoke_grant_by_id`, …); every value shown is escaped.

use super::{Ctx, Done, Id, chart, form_action, page};
use crate::Gateway;
use crate::admin::keys::{CreateBody, LimitsBody, create_key as make_key, revoke_key as end_key};
use crate::admin::{ApiError, directory, views};
use crate::oauth::page::escape;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use mcpgate_core::audit::{AuditQuery, Dimension, UsageQuery};
use mcpgate_core::time::format_rfc3339;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// A value of a view as text (`-` when absent).
fn t(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => escape(s),
        Value::Array(a) => escape(
            &a.iter()
                .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        other => escape(&other.to_string()),
    }
}

/// A one-button form posting to `action` with the CSRF token.
fn button(action: &str, csrf: &str, label: &str, what: &str) -> String {
    format!(
        "<form class=\"inline\" method=\"post\" action=\"{}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <button type=\"submit\" aria-label=\"{} {}\">{}</button></form>",
        escape(action),
        escape(csrf),
        escape(label),
        escape(what),
        escape(label)
    )
}

/// Path segment encoding for ids put into form actions and links.
fn seg(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// The message a `?done=` names (a fixed list: nothing the URL says is echoed).
fn done(ctx: &Ctx<'_>) -> String {
    let text = match ctx.query.get("done") {
        Some("revoked") => "Revoked.",
        Some("removed") => "Removed.",
        Some("ended") => "Ended.",
        _ => return String::new(),
    };
    format!("<p class=\"done\" role=\"status\">{text}</p>")
}

fn table(head: &[&str], rows: &[String], empty: &str) -> String {
    if rows.is_empty() {
        return format!("<p>{}</p>", escape(empty));
    }
    let th: String = head.iter().map(|h| format!("<th scope=\"col\">{h}</th>")).collect();
    format!(
        "<table><thead><tr>{th}</tr></thead><tbody>{}</tbody></table>",
        rows.concat()
    )
}

/// `GET /admin`: traffic at a glance.
pub async fn overview(State(gw): State<Arc<Gateway>>, req: Request<Body>) -> Response {
    let (parts, _) = req.into_parts();
    page(&gw, &parts, "/admin", &[], async |c| {
        let now = c.gw.clock.unix_ms();
        let day = |by, top| UsageQuery {
            since_ms: now - 24 * 3600 * 1000,
            until_ms: now,
            bucket_ms: 30 * 60 * 1000,
            by,
            top,
        };
        let reasons = c.admin.audit.usage(&day(Dimension::Reason, 5)).await?;
        let keys = c.admin.audit.usage(&day(Dimension::Key, 100)).await?;
        let total = reasons.total;
        let refused = total.deny + total.limited;
        let rate = if total.total() == 0 {
            "0 %".to_string()
        } else {
            format!("{:.1} %", 100.0 * refused as f64 / total.total() as f64)
        };
        let ready = tokio::time::timeout(Duration::from_secs(2), c.gw.upstream.ready())
            .await
            .unwrap_or(false);
        let sessions = c.gw.sessions.total().await.ok().map_or("?".into(), |n| n.to_string());
        let upstream = if ready {
            "<b class=\"ok\">up</b>"
        } else {
            "<b class=\"bad\">not answering</b>"
        };
        let mut body = format!(
            "<h1>Overview</h1><section class=\"cards\" aria-label=\"the last 24 hours\">\
             <div class=\"card\">requests (24 h)<b id=\"requests\">{}</b></div>\
             <div class=\"card\">refused or limited<b id=\"refused\">{refused}</b>{rate}</div>\
             <div class=\"card\">limits hit<b id=\"limited\">{}</b></div>\
             <div class=\"card\">upstream{upstream}</div>\
             <div class=\"card\">open sessions<b>{sessions}</b></div>\
             <div class=\"card\">keys loaded<b>{}</b></div></section>\
             <h2>Traffic, last 24 hours (30-minute buckets)</h2>{}{}",
            total.total(),
            total.limited,
            c.gw.auth.keys.len(),
            chart::bars("Requests per 30 minutes", &reasons.buckets),
            chart::legend()
        );
        let rows: Vec<String> = reasons
            .top
            .iter()
            .map(|r| {
                format!(
                    "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                    escape(&r.value),
                    r.counts.deny,
                    r.counts.limited
                )
            })
            .collect();
        body.push_str("<h2>Top refusal reasons</h2>");
        body.push_str(&table(&["reason", "refused", "limited"], &rows, "Nothing was refused."));
        let limited: Vec<String> = keys
            .top
            .iter()
            .filter(|k| k.counts.limited > 0)
            .take(5)
            .map(|k| {
                format!(
                    "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                    escape(&k.value),
                    k.counts.limited,
                    k.counts.total()
                )
            })
            .collect();
        body.push_str("<h2>Keys that hit their limits</h2>");
        body.push_str(&table(&["key", "limited", "requests"], &limited, "No key hit a limit."));
        Ok(("Overview".into(), body))
    })
    .await
}

/// `GET /admin/keys`: the keys, and a form to create one.
pub async fn keys(State(gw): State<Arc<Gateway>>, req: Request<Body>) -> Response {
    let (parts, _) = req.into_parts();
    page(&gw, &parts, "/admin/keys", &["done", "after"], async |c| {
        let all = c.admin.keys.keys().list_keys().await?;
        let now = c.gw.clock.unix_s();
        let start = match c.query.get("after") {
            Some(a) => all.iter().position(|k| k.key_id == a).map_or(0, |i| i + 1),
            None => 0,
        };
        let mut rows = Vec::new();
        let shown: Vec<_> = all.iter().skip(start).take(200).collect();
        for k in &shown {
            let v = views::key_in(c.admin.keys.keys(), k, now).await;
            let action = if v["state"] == "active" && k.source == "store" {
                button(&format!("/admin/keys/{}/revoke", seg(&k.key_id)), c.csrf, "Revoke", &k.key_id)
            } else {
                String::new()
            };
            rows.push(format!(
                "<tr data-key=\"{}\"><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{action}</td></tr>",
                escape(&k.key_id),
                t(&v["key_id"]),
                t(&v["name"]),
                t(&v["user_id"]),
                t(&v["role"]),
                t(&v["permissions"]),
                t(&v["state"]),
                t(&v["expires_at"]),
                t(&v["last_used_at"]),
            ));
        }
        let more = if start + shown.len() < all.len() {
            shown.last().map_or_else(String::new, |k| {
                format!("<p><a href=\"/admin/keys?after={}\">Next keys</a></p>", seg(&k.key_id))
            })
        } else {
            String::new()
        };
        let body = format!(
            "<h1>Keys</h1><p>Keys in the store. Keys given in the configuration (<code>MCP_API_KEYS</code>) are \
             managed there.</p>{}{}{more}<h2>Create a key</h2>\
             <form method=\"post\" action=\"/admin/keys\" class=\"grid\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <div><label for=\"name\">Name</label><input id=\"name\" name=\"name\" required maxlength=\"256\"></div>\
             <div><label for=\"user_id\">User id</label><input id=\"user_id\" name=\"user_id\" required maxlength=\"256\"></div>\
             <div><label for=\"tenant\">Tenant (optional)</label><input id=\"tenant\" name=\"tenant\" maxlength=\"256\"></div>\
             <div><label for=\"role\">Role</label><select id=\"role\" name=\"role\"><option>guest</option>\
             <option selected>user</option><option>developer</option><option>admin</option></select></div>\
             <div><label for=\"permissions\">Permissions (comma-separated)</label><input id=\"permissions\" name=\"permissions\" value=\"read\"></div>\
             <div><label for=\"per_minute\">Requests per minute (optional)</label><input id=\"per_minute\" name=\"per_minute\" inputmode=\"numeric\"></div>\
             <div><label for=\"expires_in_days\">Expires in days (optional)</label><input id=\"expires_in_days\" name=\"expires_in_days\" inputmode=\"numeric\"></div>\
             <div><label>&nbsp;</label><button type=\"submit\">Create key</button></div></form>",
            done(&c),
            table(
                &["key id", "name", "user", "role", "permissions", "state", "expires", "last used", ""],
                &rows,
                "No keys in the store yet."
            ),
            escape(c.csrf)
        );
        Ok(("Keys".into(), body))
    })
    .await
}

fn number(form: &crate::oauth::form::Form, name: &str) -> Result<Option<i64>, ApiError> {
    form.get(name)
        .map(|v| {
            v.trim()
                .parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("{name} must be a whole number")))
        })
        .transpose()
}

/// `POST /admin/keys`: the new key, shown on this page once.
pub async fn create_key(State(gw): State<Arc<Gateway>>, req: Request<Body>) -> Response {
    let (parts, body) = req.into_parts();
    form_action(&gw, parts, body, "keys.create", None, async |c| {
        let f = c.query;
        let per_minute = number(f, "per_minute")?
            .map(|n| u32::try_from(n).map_err(|_| ApiError::bad_request("per_minute is out of range")))
            .transpose()?;
        let b = CreateBody {
            name: f.get("name").unwrap_or_default().to_string(),
            user_id: f.get("user_id").unwrap_or_default().to_string(),
            tenant: f.get("tenant").map(str::to_string),
            role: f.get("role").map(str::to_string),
            permissions: f
                .get("permissions")
                .unwrap_or_default()
                .split(',')
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect(),
            limits: per_minute.map(|m| LimitsBody {
                per_minute: Some(m),
                ..LimitsBody::default()
            }),
            expires_in_s: number(f, "expires_in_days")?.map(|d| d.saturating_mul(86_400)),
        };
        let v = make_key(c.gw, c.admin, b).await?;
        let body = format!(
            "<h1>Key created</h1><p class=\"note\">Copy the key now: it is shown this once and cannot be read again.</p>\
             <code class=\"secret\" id=\"new-key\">{}</code>\
             <p>Key id <code id=\"new-key-id\">{}</code> for <b>{}</b> (role {}).</p><p><a href=\"/admin/keys\">Back to the keys</a></p>",
            t(&v["key"]),
            t(&v["key_id"]),
            t(&v["user_id"]),
            t(&v["role"])
        );
        Ok(Done::Page("Key created".into(), body))
    })
    .await
}

pub async fn revoke_key(State(gw): State<Arc<Gateway>>, axum::extract::Path(id): Id, req: Request<Body>) -> Response {
    let (parts, body) = req.into_parts();
    form_action(&gw, parts, body, "keys.revoke", Some(&id), async |c| {
        end_key(c.gw, c.admin, &id).await?;
        Ok(Done::Back("/admin/keys?done=revoked".into()))
    })
    .await
}

/// `GET /admin/clients`: OAuth clients and the grants they hold.
pub async fn clients(State(gw): State<Arc<Gateway>>, req: Request<Body>) -> Response {
    let (parts, _) = req.into_parts();
    page(&gw, &parts, "/admin/clients", &["done"], async |c| {
        let clients = c.admin.clients.list_clients().await?;
        let rows: Vec<String> = clients
            .iter()
            .take(500)
            .map(|cl| {
                let v = views::client(cl);
                format!(
                    "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    t(&v["client_id"]),
                    t(&v["name"]),
                    t(&v["kind"]),
                    t(&v["redirect_uris"]),
                    t(&v["created_at"]),
                    button(&format!("/admin/clients/{}/remove", seg(&cl.client_id)), c.csrf, "Remove", &cl.client_id)
                )
            })
            .collect();
        let grants = c.admin.grants.list_grants(None, None).await?;
        let live: Vec<String> = grants
            .iter()
            .filter(|g| g.revoked_at.is_none())
            .take(500)
            .map(|g| {
                let v = views::grant(g);
                format!(
                    "<tr><td><code>{}</code></td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    t(&v["grant_id"]),
                    t(&v["user_id"]),
                    t(&v["client_id"]),
                    t(&v["scopes"]),
                    t(&v["expires_at"]),
                    button(&format!("/admin/grants/{}/revoke", seg(&g.grant_id)), c.csrf, "Revoke", &g.grant_id)
                )
            })
            .collect();
        let body = format!(
            "<h1>Clients &amp; grants</h1>{}<h2>Clients</h2>{}<h2>Live grants</h2>{}",
            done(&c),
            table(&["client id", "name", "kind", "redirects", "created", ""], &rows, "No OAuth clients."),
            table(&["grant", "user", "client", "scopes", "ends", ""], &live, "No live grants.")
        );
        Ok(("Clients & grants".into(), body))
    })
    .await
}

pub async fn remove_client(
    State(gw): State<Arc<Gateway>>,
    axum::extract::Path(id): Id,
    req: Request<Body>,
) -> Response {
    let (parts, body) = req.into_parts();
    form_action(&gw, parts, body, "clients.remove", Some(&id), async |c| {
        directory::remove_client_by_id(c.gw, c.admin, &id).await?;
        Ok(Done::Back("/admin/clients?done=removed".into()))
    })
    .await
}

pub async fn revoke_grant(State(gw): State<Arc<Gateway>>, axum::extract::Path(id): Id, req: Request<Body>) -> Response {
    let (parts, body) = req.into_parts();
    form_action(&gw, parts, body, "grants.revoke", Some(&id), async |c| {
        directory::revoke_grant_by_id(c.gw, c.admin, &id).await?;
        Ok(Done::Back("/admin/clients?done=revoked".into()))
    })
    .await
}

/// `GET /admin/users`.
pub async fn users(State(gw): State<Arc<Gateway>>, req: Request<Body>) -> Response {
    let (parts, _) = req.into_parts();
    page(&gw, &parts, "/admin/users", &[], async |c| {
        let rows: Vec<String> = c
            .admin
            .users
            .list_users()
            .await?
            .iter()
            .take(1000)
            .map(|u| {
                let v = views::user(u);
                format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    t(&v["user_id"]),
                    t(&v["name"]),
                    t(&v["email"]),
                    t(&v["role"]),
                    t(&v["signed_in_with"]),
                    t(&v["last_sign_in"]),
                    t(&v["sign_ins"])
                )
            })
            .collect();
        let body = format!(
            "<h1>Users</h1><p>People who signed in through a provider (GitHub, Google, OIDC). API-key holders are on the keys page.</p>{}",
            table(
                &["user", "name", "email", "role", "via", "last sign-in", "sign-ins"],
                &rows,
                "Nobody has signed in through a provider."
            )
        );
        Ok(("Users".into(), body))
    })
    .await
}

/// `GET /admin/sessions`.
pub async fn sessions(State(gw): State<Arc<Gateway>>, req: Request<Body>) -> Response {
    let (parts, _) = req.into_parts();
    page(&gw, &parts, "/admin/sessions", &["done"], async |c| {
        let all = c.gw.sessions.list(500).await.map_err(|_| {
            ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the session store cannot answer now",
            )
        })?;
        let rows: Vec<String> = all
            .iter()
            .map(|s| {
                let v = views::session(s);
                format!(
                    "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    t(&v["session_id"]),
                    t(&v["owner"]),
                    t(&v["last_seen_at"]),
                    button(&format!("/admin/sessions/{}/end", seg(&s.id)), c.csrf, "End", &s.id)
                )
            })
            .collect();
        let body = format!(
            "<h1>MCP sessions</h1>{}{}",
            done(&c),
            table(&["session", "opened by", "last used", ""], &rows, "No open sessions.")
        );
        Ok(("Sessions".into(), body))
    })
    .await
}

pub async fn end_session(State(gw): State<Arc<Gateway>>, axum::extract::Path(id): Id, req: Request<Body>) -> Response {
    let (parts, body) = req.into_parts();
    form_action(&gw, parts, body, "sessions.end", Some(&id), async |c| {
        directory::end_session_by_id(c.gw, &id).await?;
        Ok(Done::Back("/admin/sessions?done=ended".into()))
    })
    .await
}

const AUDIT_FILTERS: [&str; 7] = ["user", "tool", "outcome", "event", "key", "since", "cursor"];

/// `GET /admin/audit`: a search form and a page of records, newest first.
pub async fn audit(State(gw): State<Arc<Gateway>>, req: Request<Body>) -> Response {
    let (parts, _) = req.into_parts();
    page(&gw, &parts, "/admin/audit", &AUDIT_FILTERS, async |c| {
        let q = c.query;
        let now = c.gw.clock.unix_ms();
        let pick = |name: &str, allowed: &[&str]| -> Result<Option<String>, ApiError> {
            match q.get(name) {
                None => Ok(None),
                Some(v) if allowed.contains(&v) => Ok(Some(v.to_string())),
                Some(_) => Err(ApiError::bad_request(format!("{name} must be one of {}", allowed.join(", ")))),
            }
        };
        let since_h = q
            .get("since")
            .map(|v| v.parse::<i64>().ok().filter(|h| (1..=24 * 366).contains(h)))
            .map(|v| v.ok_or_else(|| ApiError::bad_request("since is a number of hours")))
            .transpose()?;
        let filter = AuditQuery {
            since_ms: since_h.map(|h| now - h * 3600 * 1000),
            user: q.get("user").map(str::to_string),
            tool: q.get("tool").map(str::to_string),
            decision: pick("outcome", &["allow", "deny", "limited", "error"])?,
            event: pick("event", &["auth", "call", "admin"])?,
            key_id: q.get("key").map(str::to_string),
            before: q
                .get("cursor")
                .map(|v| v.parse::<u64>().map_err(|_| ApiError::bad_request("cursor is a record number")))
                .transpose()?,
            limit: 50,
            ..AuditQuery::default()
        };
        let page = c.admin.audit.search(&filter).await?;
        let rows: Vec<String> = page
            .iter()
            .map(|(_, r)| {
                let class = if r.decision == "allow" { "ok" } else { "bad" };
                format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{}</td><td>{}</td><td>{}</td></tr>",
                    escape(&format_rfc3339(r.time_ms / 1000)),
                    escape(&r.event),
                    escape(r.user_id.as_deref().unwrap_or("-")),
                    escape(r.key_id.as_deref().unwrap_or("-")),
                    escape(r.mcp_method.as_deref().unwrap_or("-")),
                    escape(r.tool.as_deref().unwrap_or("-")),
                    escape(&r.decision),
                    escape(&r.reason),
                    r.status
                )
            })
            .collect();
        // The same filters as a query string, for "older" and the exports.
        let mut kept: Vec<(String, String)> = AUDIT_FILTERS
            .iter()
            .filter(|n| **n != "cursor")
            .filter_map(|n| q.get(n).map(|v| (n.to_string(), v.to_string())))
            .collect();
        let qs = |kept: &[(String, String)], extra: &[(&str, String)]| {
            let mut s = form_urlencoded::Serializer::new(String::new());
            for (k, v) in kept.iter().map(|(k, v)| (k.as_str(), v.as_str())).chain(extra.iter().map(|(k, v)| (*k, v.as_str()))) {
                s.append_pair(k, v);
            }
            s.finish()
        };
        let older = match (page.len() == 50, page.last()) {
            (true, Some((n, _))) => format!(
                "<p><a id=\"older\" href=\"/admin/audit?{}\">Older records</a></p>",
                escape(&qs(&kept, &[("cursor", n.to_string())]))
            ),
            _ => String::new(),
        };
        // The API takes `outcome` and `since` as a duration.
        kept.retain(|(k, _)| k != "since");
        if let Some(h) = since_h {
            kept.push(("since".into(), format!("{h}h")));
        }
        let export = |format: &str| format!("/admin/api/v1/audit?{}", qs(&kept, &[("format", format.to_string())]));
        let value = |n: &str| escape(q.get(n).unwrap_or_default());
        let sel = |n: &str, v: &str| if q.get(n) == Some(v) { " selected" } else { "" };
        let body = format!(
            "<h1>Audit</h1><form method=\"get\" action=\"/admin/audit\" class=\"grid\" role=\"search\">\
             <div><label for=\"f-user\">User</label><input id=\"f-user\" name=\"user\" value=\"{}\"></div>\
             <div><label for=\"f-tool\">Tool</label><input id=\"f-tool\" name=\"tool\" value=\"{}\"></div>\
             <div><label for=\"f-key\">Key id</label><input id=\"f-key\" name=\"key\" value=\"{}\"></div>\
             <div><label for=\"f-outcome\">Outcome</label><select id=\"f-outcome\" name=\"outcome\"><option value=\"\">any</option>\
             <option{}>allow</option><option{}>deny</option><option{}>limited</option><option{}>error</option></select></div>\
             <div><label for=\"f-event\">Event</label><select id=\"f-event\" name=\"event\"><option value=\"\">any</option>\
             <option{}>call</option><option{}>auth</option><option{}>admin</option></select></div>\
             <div><label for=\"f-since\">Last hours</label><input id=\"f-since\" name=\"since\" inputmode=\"numeric\" value=\"{}\"></div>\
             <div><label>&nbsp;</label><button type=\"submit\">Search</button></div></form>\
             <p>Export these: <a href=\"{}\">CSV</a> · <a href=\"{}\">JSON lines</a></p>{}{older}",
            value("user"),
            value("tool"),
            value("key"),
            sel("outcome", "allow"),
            sel("outcome", "deny"),
            sel("outcome", "limited"),
            sel("outcome", "error"),
            sel("event", "call"),
            sel("event", "auth"),
            sel("event", "admin"),
            value("since"),
            escape(&export("csv")),
            escape(&export("jsonl")),
            table(
                &["time", "event", "user", "key", "method", "tool", "outcome", "reason", "status"],
                &rows,
                "No records match."
            )
        );
        Ok(("Audit".into(), body))
    })
    .await
}
