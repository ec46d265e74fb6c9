//! The web console at `/admin`: server-rendered pages over the admin API's rules (the same key,
//! grant and session functions; the same operator check; the same audit), for an admin's
//! browser session. No script at all; styles by hash in a strict Content-Security-Policy; every
//! text escaped; framing refused; forms carry the CSRF token (double submit) and are refused
//! from other sites. A new key's secret is shown once, on the page that answers its creation.
//!
//! Sign-in takes an admin-role API key (`/admin/login`) and issues the gateway's web session
//! (`oauth::session`), so the console needs `[oauth]` on.

mod chart;
mod pages;

use super::caller::{CSRF_COOKIE, Operator, identify};
use super::{Action, Admin, ApiError, audited, note};
use crate::Gateway;
use crate::oauth::form::Form;
use crate::oauth::page::escape;
use crate::oauth::{cookies, session};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use mcpgate_core::principal::Role;
use mcpgate_store::oauth::Subject;
use sha2::{Digest, Sha256};
use std::sync::{Arc, LazyLock};

const STYLE: &str = "\
*{box-sizing:border-box}body{font-family:system-ui,sans-serif;margin:0;color:#1b1b1b;background:#f6f7f9;line-height:1.45}\
header{background:#1f2937;color:#fff;padding:.6rem 1.2rem;display:flex;gap:1.2rem;align-items:center;flex-wrap:wrap}\
header a{color:#e5e7eb;text-decoration:none;padding:.2rem .4rem;border-radius:4px}header a[aria-current]{background:#374151;color:#fff}\
header .who{margin-left:auto;font-size:.9rem}header form{display:inline}header button{font-size:.85rem}\
main{max-width:72rem;margin:1.2rem auto;padding:0 1.2rem}h1{font-size:1.4rem;margin:.4rem 0 1rem}h2{font-size:1.1rem;margin:1.4rem 0 .5rem}\
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(11rem,1fr));gap:.8rem}\
.card{background:#fff;border:1px solid #d8dce3;border-radius:8px;padding:.8rem 1rem}.card b{display:block;font-size:1.5rem}\
table{width:100%;border-collapse:collapse;background:#fff;border:1px solid #d8dce3;font-size:.9rem}\
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #eceef2;vertical-align:top}th{background:#f0f2f5}\
td code,p code{word-break:break-all}.ok{color:#166534}.bad{color:#991b1b}.note{background:#fff7e6;border:1px solid #f0c36d;padding:.6rem .8rem;border-radius:6px}\
.done{background:#ecfdf5;border:1px solid #6ee7b7;padding:.6rem .8rem;border-radius:6px}\
.secret{font-size:1.05rem;background:#111827;color:#f9fafb;padding:.6rem;border-radius:6px;display:block;word-break:break-all}\
form.inline{display:inline}label{display:block;font-weight:600;margin:.5rem 0 .2rem}\
input,select{padding:.35rem;font-size:.95rem;max-width:100%}button{padding:.35rem .8rem;font-size:.9rem;cursor:pointer}\
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(12rem,1fr));gap:0 1rem;background:#fff;border:1px solid #d8dce3;border-radius:8px;padding:.6rem 1rem 1rem}\
.chart{width:100%;height:auto;background:#fff;border:1px solid #d8dce3;border-radius:8px}.axis{stroke:#9ca3af}.tick{font-size:11px;fill:#4b5563}\
rect.a,.sw.a{fill:#16a34a;background:#16a34a}rect.d,.sw.d{fill:#dc2626;background:#dc2626}rect.l,.sw.l{fill:#f59e0b;background:#f59e0b}rect.e,.sw.e{fill:#6b7280;background:#6b7280}\
.sw{display:inline-block;width:.8rem;height:.8rem;margin:0 .3rem 0 .8rem;border-radius:2px}.legend{font-size:.85rem}\
.login{max-width:26rem;margin:4rem auto;background:#fff;border:1px solid #d8dce3;border-radius:8px;padding:1.2rem 1.4rem}\
.login input{width:100%}";

/// The Content-Security-Policy: nothing but this page's own style (by hash) and forms to itself.
static CSP: LazyLock<String> = LazyLock::new(|| {
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLE.as_bytes()));
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; img-src data:; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'"
    )
});

/// The console's routes (none when the admin API is off).
pub fn routes(enabled: bool) -> Router<Arc<Gateway>> {
    use axum::routing::{get, post};
    if !enabled {
        return Router::new();
    }
    Router::new()
        .route("/admin", get(pages::overview))
        .route("/admin/login", get(login_page).post(login))
        .route("/admin/keys", get(pages::keys).post(pages::create_key))
        .route("/admin/keys/{id}/revoke", post(pages::revoke_key))
        .route("/admin/clients", get(pages::clients))
        .route("/admin/clients/{id}/remove", post(pages::remove_client))
        .route("/admin/grants/{id}/revoke", post(pages::revoke_grant))
        .route("/admin/users", get(pages::users))
        .route("/admin/sessions", get(pages::sessions))
        .route("/admin/sessions/{id}/end", post(pages::end_session))
        .route("/admin/audit", get(pages::audit))
}

/// A whole page, with the security headers every console page carries.
fn html(status: StatusCode, title: &str, nav: Option<(&str, &Operator, &str)>, body: &str) -> Response {
    let header = match nav {
        Some((current, op, logout)) => {
            let mut links = String::new();
            for (href, name) in [
                ("/admin", "Overview"),
                ("/admin/keys", "Keys"),
                ("/admin/clients", "Clients & grants"),
                ("/admin/users", "Users"),
                ("/admin/sessions", "Sessions"),
                ("/admin/audit", "Audit"),
            ] {
                let cur = if href == current { " aria-current=\"page\"" } else { "" };
                links.push_str(&format!("<a href=\"{href}\"{cur}>{name}</a>"));
            }
            format!(
                "<header><strong>mcpgate</strong><nav aria-label=\"console\">{links}</nav>\
                 <span class=\"who\">signed in as <b>{}</b> \
                 <form method=\"post\" action=\"{}\"><input type=\"hidden\" name=\"return_to\" value=\"/admin/login\">\
                 <button type=\"submit\">Sign out</button></form></span></header>",
                escape(&op.user_id),
                escape(logout)
            )
        }
        None => String::new(),
    };
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <link rel=\"icon\" href=\"data:,\"><title>{} · mcpgate console</title><style>{STYLE}</style></head><body>{header}<main>{body}</main></body></html>",
        escape(title)
    );
    let mut r = (status, page).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&CSP) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn redirect(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A refusal as a page (the operator is signed in: with the navigation).
fn error_page(e: &ApiError, nav: Option<(&str, &Operator, &str)>) -> Response {
    html(
        e.status,
        "Refused",
        nav,
        &format!(
            "<h1>That did not work</h1><p class=\"note\">{}</p><p><a href=\"/admin\">Back to the overview</a></p>",
            escape(&e.message)
        ),
    )
}

/// The CSRF token of this browser: its cookie's, or a new one (then `Set-Cookie` with it).
fn csrf(gw: &Gateway, parts: &Parts) -> (String, Option<HeaderValue>) {
    let Some(o) = gw.oauth.as_deref() else {
        return (String::new(), None);
    };
    let name = cookies::name(o, CSRF_COOKIE);
    match cookies::read(&parts.headers, &name).filter(|t| t.len() >= 32) {
        Some(t) => (t, None),
        None => {
            let t = o.secret("");
            let c = cookies::set(o, &name, &t, 24 * 3600);
            (t, c)
        }
    }
}

fn logout_path(gw: &Gateway) -> String {
    gw.oauth
        .as_deref()
        .map_or_else(|| "/auth/logout".into(), |o| format!("{}/auth/logout", o.base_path()))
}

/// What a page handler is given.
pub(super) struct Ctx<'a> {
    pub gw: &'a Gateway,
    pub admin: &'a Admin,
    pub csrf: &'a str,
    pub query: &'a Form,
}

/// A page for a signed-in admin: to the sign-in page when there is no session, 403 for anyone
/// else; the view audited like any admin read.
async fn page<F>(gw: &Gateway, parts: &Parts, current: &'static str, allowed: &[&str], render: F) -> Response
where
    F: AsyncFnOnce(Ctx<'_>) -> Result<(String, String), ApiError>,
{
    let action = Action::new("console.view", Some(current));
    let op = match identify(gw, parts, false, None) {
        Ok(op) => op,
        Err(e) if e.status == StatusCode::UNAUTHORIZED => return redirect("/admin/login"),
        Err(e) => {
            if !e.quiet {
                note(gw, parts, None, action, e.status, e.code).await;
            }
            return error_page(&e, None);
        }
    };
    let logout = logout_path(gw);
    let nav = Some((current, &op, logout.as_str()));
    let Some(admin) = gw.admin.as_deref() else {
        return error_page(&ApiError::not_found("the admin API is off"), nav);
    };
    let (token, cookie) = csrf(gw, parts);
    let outcome = match super::query(parts, allowed) {
        Ok(q) => {
            render(Ctx {
                gw,
                admin,
                csrf: &token,
                query: &q,
            })
            .await
        }
        Err(e) => Err(e),
    };
    let mut r = match &outcome {
        Ok((title, body)) => html(StatusCode::OK, title, nav, body),
        Err(e) => error_page(e, nav),
    };
    if let Some(c) = cookie {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    let reason = outcome.as_ref().err().map_or("ok", |e| e.code);
    note(gw, parts, Some(&op), action, r.status(), reason).await;
    r
}

/// A form post: read strictly, from our pages with the CSRF token, by an admin; `run` answers
/// with a page body or where to go next; audited as `name`.
async fn form_action<F>(
    gw: &Gateway,
    parts: Parts,
    body: Body,
    name: &'static str,
    target: Option<&str>,
    run: F,
) -> Response
where
    F: AsyncFnOnce(Ctx<'_>) -> Result<Done, ApiError>,
{
    let action = Action::new(name, target);
    let logout = logout_path(gw);
    let form = match axum::body::to_bytes(body, crate::oauth::form::MAX_FORM_BYTES).await {
        Ok(b) => Form::parse(&b).map_err(|e| ApiError::bad_request(e.to_string())),
        Err(_) => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "the form is too large",
        )),
    };
    let checked = form.and_then(|f| identify(gw, &parts, true, f.get("csrf")).map(|op| (op, f)));
    let (op, form) = match checked {
        Ok(both) => both,
        Err(e) => {
            if !e.quiet {
                note(gw, &parts, None, action, e.status, e.code).await;
            }
            return error_page(&e, None);
        }
    };
    let nav = Some(("", &op, logout.as_str()));
    let Some(admin) = gw.admin.as_deref() else {
        return error_page(&ApiError::not_found("the admin API is off"), nav);
    };
    let token = form.get("csrf").unwrap_or_default().to_string();
    let outcome = run(Ctx {
        gw,
        admin,
        csrf: &token,
        query: &form,
    })
    .await;
    let (r, reason) = match outcome {
        Ok(Done::Back(to)) => (redirect(&to), "ok"),
        Ok(Done::Page(title, body)) => (html(StatusCode::OK, &title, nav, &body), "ok"),
        Err(e) => (error_page(&e, nav), e.code),
    };
    note(gw, &parts, Some(&op), action, r.status(), reason).await;
    r
}

/// What a form action leads to.
pub(super) enum Done {
    /// Back to a page (`303`), e.g. `/admin/keys?done=revoked`.
    Back(String),
    /// A page of its own (the new key, shown once).
    Page(String, String),
}

fn login_form(csrf: &str, message: Option<&str>) -> String {
    let note = message.map_or_else(String::new, |m| {
        format!("<p class=\"note\" role=\"alert\">{}</p>", escape(m))
    });
    format!(
        "<div class=\"login\"><h1>mcpgate console</h1>{note}\
         <form method=\"post\" action=\"/admin/login\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <label for=\"api_key\">Admin API key</label>\
         <input id=\"api_key\" type=\"password\" name=\"api_key\" autocomplete=\"off\" required>\
         <p><button type=\"submit\">Sign in</button></p></form>\
         <p>Sign in with an API key whose role is <code>admin</code> \
         (<code>mcpgate keys create --role admin</code>).</p></div>",
        escape(csrf)
    )
}

/// `GET /admin/login`.
async fn login_page(State(gw): State<Arc<Gateway>>, req: Request<Body>) -> Response {
    let (parts, _) = req.into_parts();
    if gw.oauth.is_none() {
        return html(
            StatusCode::SERVICE_UNAVAILABLE,
            "Console off",
            None,
            "<div class=\"login\"><h1>The console needs [oauth]</h1><p>Browser sessions are signed by the \
             authorization server: turn on <code>[oauth]</code> in the configuration. The admin API \
             (<code>/admin/api/v1</code>) works with an admin key without it.</p></div>",
        );
    }
    let (token, cookie) = csrf(&gw, &parts);
    let mut r = html(StatusCode::OK, "Sign in", None, &login_form(&token, None));
    if let Some(c) = cookie {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

/// `POST /admin/login`: an admin-role API key, typed on our page, becomes a web session.
async fn login(State(gw): State<Arc<Gateway>>, req: Request<Body>) -> Response {
    let (parts, body) = req.into_parts();
    let action = Action::new("console.sign_in", None);
    let Some(o) = gw.oauth.as_deref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let (token, cookie) = csrf(&gw, &parts);
    let who = super::caller::client_addr(&parts);
    if let Err(e) = super::caller::throttled(&gw, who) {
        if !e.quiet {
            note(&gw, &parts, None, action, e.status, e.code).await;
        }
        let mut r = html(
            e.status,
            "Sign in",
            None,
            &login_form(
                &token,
                Some("Too many failed sign-ins from this address. Wait a minute and try again."),
            ),
        );
        if let Some(v) = e.retry_after_s.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    let again = |status: StatusCode, message: &str| {
        let mut r = html(status, "Sign in", None, &login_form(&token, Some(message)));
        if let Some(c) = cookie.clone() {
            r.headers_mut().append(header::SET_COOKIE, c);
        }
        r
    };
    let form = match axum::body::to_bytes(body, crate::oauth::form::MAX_FORM_BYTES).await {
        Ok(b) => Form::parse(&b).ok(),
        Err(_) => None,
    };
    let Some(form) = form else {
        let e = ApiError::bad_request("malformed form");
        let _ = audited(&gw, &parts, None, action, Err(e)).await;
        return again(StatusCode::BAD_REQUEST, "The form could not be read. Try again.");
    };
    let expected = cookies::read(&parts.headers, &cookies::name(o, CSRF_COOKIE));
    let csrf_ok = matches!((expected.as_deref(), form.get("csrf")), (Some(a), Some(b)) if cookies::same_bytes(a, b));
    if !cookies::from_our_pages(o, &parts.headers) || !csrf_ok {
        let e = ApiError::new(StatusCode::FORBIDDEN, "csrf", "sign-in from another page");
        let _ = audited(&gw, &parts, None, action, Err(e)).await;
        return again(
            StatusCode::FORBIDDEN,
            "Sign in from this page (the form had expired). Try again.",
        );
    }
    let key = form.get("api_key").unwrap_or_default();
    let record = match gw.auth.keys.verify(key, gw.clock.unix_s()) {
        Ok(k) if !crate::auth::extract::is_jwt(key) => k,
        _ => {
            let e = super::caller::count_failure(&gw, who)
                .unwrap_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", "not a valid API key"));
            let status = e.status;
            let _ = audited(&gw, &parts, None, action, Err(e)).await;
            return again(status, "That key cannot sign in to the console.");
        }
    };
    let op = Operator {
        principal: format!("key:{}", record.key_id),
        user_id: record.user_id.clone(),
        tenant: record.tenant.clone(),
        key_id: Some(record.key_id.clone()),
        via: "api_key",
    };
    if record.role != Role::Admin {
        let e = ApiError::new(StatusCode::FORBIDDEN, "forbidden", "not an admin key");
        let _ = audited(&gw, &parts, Some(&op), action, Err(e)).await;
        // The same words as for a key that is not valid: the page tells a guesser nothing.
        return again(StatusCode::FORBIDDEN, "That key cannot sign in to the console.");
    }
    let subject = Subject {
        user_id: record.user_id,
        tenant: record.tenant,
        role: record.role,
        permissions: record.permissions,
        via: format!("key:{}", record.key_id),
    };
    let mut r = redirect("/admin");
    match session::issue(o, &subject) {
        Some(c) => {
            r.headers_mut().append(header::SET_COOKIE, c);
        }
        None => {
            return again(
                StatusCode::INTERNAL_SERVER_ERROR,
                "No session could be issued; see the gateway's log.",
            );
        }
    }
    audited(&gw, &parts, Some(&op), action, Ok(r)).await
}

/// Path parameters of the console's forms.
pub(super) type Id = Path<String>;
