//! `/authorize` (and seed 004's `/auth/oauth/login`, the same page): the authorization code
//! flow with PKCE S256 only.
//!
//! Order: the client and its redirect URI are checked first; until both are known good, every
//! error is a page (never a redirect to a URI nobody vouched for). After that, errors go back to
//! the client's redirect with `state` and `iss` (RFC 9207). Sign-in is an mcpgate API key: pasted
//! on the consent page (POST, CSRF token bound to a cookie; it starts a web session, `session.rs`),
//! or — for headless agents, when `oauth.header_sign_in` is on — sent in `X-API-Key` on the
//! authorize request itself, which stands for consent too (no browser can set that header on a
//! navigation). A browser with a web session is not asked to sign in again; whether it sees the
//! consent page follows `oauth.consent` (`remember`: once per user and client, until revoked or
//! the client asks for more; `skip`: never for operator-registered clients) — and a request
//! whose redirect is not https (loopback, a private scheme) always shows it (RFC 8252 §8.6).

use super::form::{Form, encode};
use super::page::{self, Consent};
use super::settings::{ConsentMode, is_scope_token};
use super::{OAuthServer, cookies, grantable, redirect_matches, same_resource, session};
use crate::Gateway;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mcpgate_core::keys::hash_hex;
use mcpgate_store::oauth::{ClientKind, ClientRecord, CodeRecord, ConsentRecord, Subject};
use std::sync::Arc;

/// The parameters of the original request the consent form carries back.
const CARRIED: [&str; 8] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "state",
    "scope",
    "code_challenge",
    "code_challenge_method",
    "resource",
];

/// A request whose client and redirect are known good.
struct Checked {
    client: ClientRecord,
    redirect_uri: String,
    state: Option<String>,
    code_challenge: String,
    resource: String,
    scopes: Vec<String>,
}

enum Refused {
    /// Shown to the person.
    Page(Response),
    /// Sent back to the client.
    Redirect(Response),
}

impl Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::Page(r) | Refused::Redirect(r) => r,
        }
    }
}

fn bad_page(what: &str) -> Refused {
    Refused::Page(page::error(
        StatusCode::BAD_REQUEST,
        what,
        "Go back to the application you came from and start again; if this keeps happening, tell its developer.",
    ))
}

/// `redirect_uri?code=…|error=…&state=…&iss=…`, 303 (a POST answered by a GET).
fn back_to(o: &OAuthServer, redirect_uri: &str, state: Option<&str>, params: &[(&str, &str)]) -> Response {
    let mut url = redirect_uri.to_string();
    url.push(if url.contains('?') { '&' } else { '?' });
    let mut pairs: Vec<String> = params.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect();
    if let Some(s) = state {
        pairs.push(format!("state={}", encode(s)));
    }
    pairs.push(format!("iss={}", encode(&o.settings.issuer)));
    url.push_str(&pairs.join("&"));
    let mut r = StatusCode::SEE_OTHER.into_response();
    match HeaderValue::from_str(&url) {
        Ok(v) => {
            r.headers_mut().insert(header::LOCATION, v);
        }
        Err(_) => {
            return page::error(
                StatusCode::BAD_REQUEST,
                "The redirect address is not usable.",
                "Start again.",
            );
        }
    }
    super::no_store(&mut r);
    r
}

fn error_back(o: &OAuthServer, c: &Checked, code: &str, description: &str) -> Refused {
    Refused::Redirect(back_to(
        o,
        &c.redirect_uri,
        c.state.as_deref(),
        &[("error", code), ("error_description", description)],
    ))
}

async fn check(o: &OAuthServer, f: &Form) -> Result<Checked, Refused> {
    let Some(client_id) = f.get("client_id") else {
        return Err(bad_page("The request names no application (client_id is missing)."));
    };
    let client = match o.client(client_id).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            return Err(bad_page(
                "The application is not known to this server (unknown client_id).",
            ));
        }
        Err(super::ClientLookup::Document(why)) => {
            // The reason stays in the log: naming addresses or DNS answers on the page would make
            // this endpoint a probe of the gateway's network.
            tracing::info!(reason = %why, "authorize: client metadata document refused");
            return Err(bad_page(
                "The application's metadata document could not be fetched, or is not acceptable to this server.",
            ));
        }
        Err(super::ClientLookup::Store(e)) => {
            tracing::warn!(error = %e, "authorize: client store unavailable");
            return Err(Refused::Page(page::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "The sign-in service cannot reach its records right now.",
                "Try again in a minute.",
            )));
        }
    };
    let Some(redirect_uri) = f.get("redirect_uri") else {
        return Err(bad_page(
            "The request names no redirect address (redirect_uri is missing).",
        ));
    };
    if !client.redirect_uris.iter().any(|r| redirect_matches(r, redirect_uri)) {
        return Err(bad_page(
            "The redirect address is not one this application registered; the sign-in stops here rather than send you somewhere unknown.",
        ));
    }
    let mut c = Checked {
        client,
        redirect_uri: redirect_uri.to_string(),
        state: f.get("state").map(str::to_string),
        code_challenge: String::new(),
        resource: String::new(),
        scopes: Vec::new(),
    };
    if f.get("response_type") != Some("code") {
        return Err(error_back(
            o,
            &c,
            "unsupported_response_type",
            "only response_type=code is supported",
        ));
    }
    if !c.client.grant_types.iter().any(|g| g == "authorization_code") {
        return Err(error_back(
            o,
            &c,
            "unauthorized_client",
            "this client may not use the authorization code flow",
        ));
    }
    match (f.get("code_challenge"), f.get("code_challenge_method")) {
        (Some(ch), Some("S256")) if is_challenge(ch) => c.code_challenge = ch.to_string(),
        (Some(_), Some("S256")) => {
            return Err(error_back(
                o,
                &c,
                "invalid_request",
                "code_challenge must be 43 base64url characters",
            ));
        }
        (None, _) => {
            return Err(error_back(
                o,
                &c,
                "invalid_request",
                "PKCE is required: send code_challenge",
            ));
        }
        _ => {
            return Err(error_back(
                o,
                &c,
                "invalid_request",
                "code_challenge_method must be S256",
            ));
        }
    }
    match f.get("resource") {
        Some(r) if same_resource(r, &o.resource) => c.resource = o.resource.clone(),
        Some(_) => {
            return Err(error_back(
                o,
                &c,
                "invalid_target",
                "this server issues tokens only for its own MCP URL",
            ));
        }
        None => {
            return Err(error_back(
                o,
                &c,
                "invalid_target",
                "resource is required (RFC 8707): the MCP server's URL",
            ));
        }
    }
    if let Some(scope) = f.get("scope") {
        let asked: Vec<String> = scope.split(' ').filter(|s| !s.is_empty()).map(str::to_string).collect();
        if asked.iter().any(|s| !is_scope_token(s)) {
            return Err(error_back(
                o,
                &c,
                "invalid_scope",
                "scope is not a list of scope tokens",
            ));
        }
        c.scopes = asked;
    }
    Ok(c)
}

/// 43 characters of base64url: a SHA-256 hash, as S256 makes.
fn is_challenge(s: &str) -> bool {
    s.len() == 43 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Signs in with an API key; the grant's subject.
fn sign_in(gw: &Gateway, key: &str) -> Option<Subject> {
    let rec = gw.auth.keys.verify(key, gw.clock.unix_s()).ok()?;
    Some(Subject {
        user_id: rec.user_id,
        tenant: rec.tenant,
        role: rec.role,
        permissions: rec.permissions,
        via: format!("key:{}", rec.key_id),
    })
}

/// Issues a code and sends the browser back with it.
async fn grant(o: &OAuthServer, c: Checked, subject: Subject) -> Response {
    let scopes = grantable(
        &c.scopes,
        &o.settings.default_scopes,
        &subject.permissions,
        c.client.scope.as_deref(),
    );
    let code = o.secret("mcpc_");
    let now = o.clock.unix_s();
    let record = CodeRecord {
        code_hash: hash_hex(&code),
        grant_id: o.entropy.hex_id(16),
        client_id: c.client.client_id.clone(),
        redirect_uri: c.redirect_uri.clone(),
        code_challenge: c.code_challenge.clone(),
        resource: c.resource.clone(),
        scopes,
        subject,
        expires_at: now + i64::try_from(o.settings.code_ttl.as_secs()).unwrap_or(60),
    };
    if let Err(e) = o.grants.put_code(&record).await {
        tracing::warn!(error = %e, "authorize: could not store a code");
        return error_back(
            o,
            &c,
            "temporarily_unavailable",
            "the server cannot store the grant right now",
        )
        .into_response();
    }
    tracing::info!(client_id = %c.client.client_id, user = %record.subject.user_id, "authorization code issued");
    back_to(o, &c.redirect_uri, c.state.as_deref(), &[("code", &code)])
}

const CSRF_COOKIE: &str = "mcpgate_csrf";

/// The scopes a grant to this subject would carry.
fn scopes_for(o: &OAuthServer, c: &Checked, subject: &Subject) -> Vec<String> {
    grantable(
        &c.scopes,
        &o.settings.default_scopes,
        &subject.permissions,
        c.client.scope.as_deref(),
    )
}

/// Whether the code can reach no one but the client: an https redirect URI (matched exactly).
/// A loopback or private-scheme redirect can be answered by any program on the device (RFC 8252
/// §8.6), so a request with one always shows the page, whatever was allowed before.
fn redirect_proves_client(redirect_uri: &str) -> bool {
    redirect_uri.starts_with("https://")
}

/// Whether a signed-in person may skip the consent page for this request.
async fn already_allowed(o: &OAuthServer, c: &Checked, subject: &Subject) -> bool {
    if !redirect_proves_client(&c.redirect_uri) {
        return false;
    }
    match o.settings.consent {
        // Only for clients the operator registered (and so vouches for); others are remembered.
        ConsentMode::Skip if c.client.kind == ClientKind::Configured => true,
        ConsentMode::Always => false,
        ConsentMode::Skip | ConsentMode::Remember => {
            match o.grants.get_consent(&subject.user_id, &c.client.client_id).await {
                Ok(Some(given)) => scopes_for(o, c, subject).iter().all(|s| given.scopes.contains(s)),
                Ok(None) => false,
                Err(e) => {
                    // Asking again is the safe answer.
                    tracing::warn!(error = %e, "authorize: could not read a remembered consent");
                    false
                }
            }
        }
    }
}

/// Remembers that `subject` allowed this client what this request grants (added to what was
/// allowed before).
async fn remember(o: &OAuthServer, c: &Checked, subject: &Subject) {
    if o.settings.consent == ConsentMode::Always {
        return;
    }
    let mut scopes = scopes_for(o, c, subject);
    if let Ok(Some(before)) = o.grants.get_consent(&subject.user_id, &c.client.client_id).await {
        scopes.extend(before.scopes);
        scopes.sort();
        scopes.dedup();
    }
    let record = ConsentRecord {
        user_id: subject.user_id.clone(),
        client_id: c.client.client_id.clone(),
        scopes,
        given_at: o.clock.unix_s(),
    };
    if let Err(e) = o.grants.set_consent(&record).await {
        tracing::warn!(error = %e, "authorize: could not remember a consent (it will be asked again)");
    }
}

/// `GET /authorize`: header sign-in straight back, or the consent page.
async fn show(gw: &Gateway, o: &OAuthServer, req: &Parts) -> Response {
    let query = req.uri.query().unwrap_or("");
    let f = match Form::parse(query.as_bytes()) {
        Ok(f) => f,
        Err(e) => return bad_page(&format!("The request is malformed: {e}.")).into_response(),
    };
    let c = match check(o, &f).await {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    if let Some(key) = req.headers.get("x-api-key") {
        if !o.settings.header_sign_in {
            return error_back(o, &c, "access_denied", "sign-in by header is turned off here").into_response();
        }
        return match key.to_str().ok().and_then(|k| sign_in(gw, k)) {
            Some(subject) => grant(o, c, subject).await,
            None => error_back(o, &c, "access_denied", "the API key was not accepted").into_response(),
        };
    }
    let signed_in = session::read(o, &req.headers);
    if let Some(s) = &signed_in
        && already_allowed(o, &c, &s.subject).await
    {
        let renewal = session::renewal(o, s);
        let mut r = grant(o, c, s.subject.clone()).await;
        if let Some(v) = renewal {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
        return r;
    }
    let csrf = o.secret("");
    let hidden: Vec<(&str, &str)> = CARRIED.iter().filter_map(|k| f.get(k).map(|v| (*k, v))).collect();
    let action = o.endpoint("/authorize");
    // Signed in: what this person would grant; else what the client asks (at most).
    let shown = match &signed_in {
        Some(s) => scopes_for(o, &c, &s.subject),
        None => grantable(
            &c.scopes,
            &o.settings.default_scopes,
            &["*".to_string()],
            c.client.scope.as_deref(),
        ),
    };
    let here = format!("{}/authorize?{query}", o.base_path());
    let provider_links: Vec<(String, String)> = o
        .providers
        .iter()
        .flat_map(|p| p.list.iter())
        .map(|p| {
            let back: String = form_urlencoded::byte_serialize(here.as_bytes()).collect();
            (
                p.settings.name.clone(),
                o.endpoint(&format!("/auth/oauth/{}/start?return_to={back}", p.settings.id)),
            )
        })
        .collect();
    let signed_in_as = signed_in.as_ref().map(|s| page::SignedIn {
        user: s.subject.user_id.clone(),
        sign_out: o.endpoint("/auth/logout"),
        return_to: session::is_local_path(&here).then_some(here),
    });
    let mut r = page::consent(&Consent {
        client_name: c.client.name.as_deref().unwrap_or(&c.client.client_id),
        client_id: &c.client.client_id,
        verified: c.client.kind == ClientKind::Configured,
        redirect_uri: &c.redirect_uri,
        scopes: &shown,
        hidden: &hidden,
        csrf: &csrf,
        action: &action,
        signed_in: signed_in_as.as_ref(),
        providers: &provider_links,
    });
    if let Some(v) = cookies::set(o, &cookies::name(o, CSRF_COOKIE), &csrf, 600) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// `POST /authorize`: the consent form's answer.
async fn answer(gw: &Gateway, o: &OAuthServer, parts: Parts, body: Body) -> Response {
    let form_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
        });
    if !form_type {
        return bad_page("The answer was not a form.").into_response();
    }
    // A form posted from another site: its Origin is not ours.
    if !cookies::from_our_pages(o, &parts.headers) {
        return page::error(
            StatusCode::FORBIDDEN,
            "The answer came from another site.",
            "Start the sign-in again from the application.",
        );
    }
    let bytes = match axum::body::to_bytes(body, super::form::MAX_FORM_BYTES).await {
        Ok(b) => b,
        Err(_) => return bad_page("The answer is too large.").into_response(),
    };
    let f = match Form::parse(&bytes) {
        Ok(f) => f,
        Err(e) => return bad_page(&format!("The answer is malformed: {e}.")).into_response(),
    };
    let expected = cookies::read(&parts.headers, &cookies::name(o, CSRF_COOKIE));
    let ok = matches!((expected.as_deref(), f.get("csrf")), (Some(a), Some(b)) if cookies::same_bytes(a, b));
    if !ok {
        return page::error(
            StatusCode::FORBIDDEN,
            "The form's security token is missing or does not match this browser.",
            "Start the sign-in again from the application (and allow cookies for this site).",
        );
    }
    let c = match check(o, &f).await {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    match f.get("decision") {
        Some("allow") => {}
        Some("deny") => return error_back(o, &c, "access_denied", "the user denied access").into_response(),
        _ => return error_back(o, &c, "invalid_request", "the consent form had no decision").into_response(),
    }
    // A key typed on the page signs in (and starts a web session); else the browser's session.
    let (subject, cookie) = match f.get("api_key").filter(|k| !k.is_empty()) {
        Some(k) => match sign_in(gw, k) {
            Some(subject) => {
                let cookie = session::issue(o, &subject);
                (subject, cookie)
            }
            None => return error_back(o, &c, "access_denied", "the API key was not accepted").into_response(),
        },
        None => match session::read(o, &parts.headers) {
            Some(s) => (s.subject.clone(), session::renewal(o, &s)),
            None => return error_back(o, &c, "access_denied", "no one signed in").into_response(),
        },
    };
    remember(o, &c, &subject).await;
    let mut r = grant(o, c, subject).await;
    if let Some(v) = cookie {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

pub async fn authorize(State(gw): State<Arc<Gateway>>, req: Request<Body>) -> Response {
    let Some(o) = gw.oauth.clone() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let (parts, body) = req.into_parts();
    match parts.method {
        Method::GET => show(&gw, &o, &parts).await,
        Method::POST => answer(&gw, &o, parts, body).await,
        _ => StatusCode::METHOD_NOT_ALLOWED.into_response(),
    }
}
