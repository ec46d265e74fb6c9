//! Signing in through GitHub, Google or any OpenID Provider (issue #12, seed 004's routes):
//! `GET /auth/oauth/{provider}/start` sends the browser to the provider with `state`, a PKCE
//! S256 challenge and (OIDC) a `nonce`, all kept in a short-lived signed cookie bound to this
//! browser; `GET /auth/oauth/callback` checks the state (once: the replay store), exchanges the
//! code, reads who the person is (the ID token, verified against the provider's keys; GitHub's
//! REST API), maps them through `[[oauth.identities]]` (`mapping.rs`) and signs the browser in
//! (the web session, `session.rs`). Every refusal is a page that says what to do; nothing the
//! provider sent is echoed unescaped, and no code, token or secret reaches a log line.

pub mod held;
pub mod mapping;
pub mod settings;

mod github;
mod oidc;

use super::{OAuthServer, cookies, page, session};
use crate::Gateway;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use mapping::Identity;
use mcpgate_core::redact::Secret;
use serde::{Deserialize, Serialize};
use settings::{IdentityRule, ProviderKind, ProviderSettings};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

/// A sign-in started here must come back within this.
const SIGN_IN_TTL_S: i64 = 600;
const SIGN_IN_COOKIE: &str = "mcpgate_signin";
const SIGN_IN_TYP: &str = "mcpgate-signin+jwt";
/// The most a provider's answer may weigh.
const MAX_ANSWER: usize = 256 * 1024;

/// A configured provider, ready to use.
pub struct Provider {
    pub settings: ProviderSettings,
    secret: Option<Secret>,
    oidc: Option<oidc::Oidc>,
}

/// Every provider and the identity rules.
pub struct Providers {
    pub list: Vec<Provider>,
    pub rules: Vec<IdentityRule>,
    /// Where providers send the browser back (`{issuer}/auth/oauth/callback`, or
    /// `MCP_OAUTH_REDIRECT_URI`).
    pub redirect_uri: String,
    client: reqwest::Client,
    /// `delegation.source = "provider:<id>"`: that provider's tokens are kept here.
    pub held: Option<(String, Arc<held::HeldTokens>)>,
}

impl Providers {
    /// Reads each provider's secret from `env`; fails naming what is missing.
    pub fn start(
        settings: &[ProviderSettings],
        rules: Vec<IdentityRule>,
        redirect_uri: String,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Providers, String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("mcpgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("sign-in providers: {e}"))?;
        let mut list = Vec::new();
        for s in settings {
            let secret = match &s.client_secret_env {
                Some(var) => Some(Secret::new(env(var).filter(|v| !v.is_empty()).ok_or_else(|| {
                    format!("oauth.providers {}: {var} (client_secret_env) is not set", s.id)
                })?)),
                None => None,
            };
            let oidc = (s.kind != ProviderKind::Github).then(|| oidc::Oidc::new(s, client.clone()));
            list.push(Provider {
                settings: s.clone(),
                secret,
                oidc,
            });
        }
        Ok(Providers {
            list,
            rules,
            redirect_uri,
            client,
            held: None,
        })
    }

    pub fn get(&self, id: &str) -> Option<&Provider> {
        self.list.iter().find(|p| p.settings.id == id)
    }
}

/// What the sign-in cookie carries between start and callback.
#[derive(Serialize, Deserialize)]
struct Pending {
    iss: String,
    aud: String,
    provider: String,
    state: String,
    nonce: String,
    verifier: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    return_to: Option<String>,
    iat: i64,
    exp: i64,
}

fn callback_audience(o: &OAuthServer) -> String {
    o.endpoint("/auth/oauth/callback")
}

fn problem(status: StatusCode, what: &str, todo: &str) -> Response {
    page::error(status, what, todo)
}

fn query_form(req: &Request) -> Result<super::form::Form, Box<Response>> {
    super::form::Form::parse(req.uri().query().unwrap_or("").as_bytes()).map_err(|e| {
        Box::new(problem(
            StatusCode::BAD_REQUEST,
            &format!("The request is malformed: {e}."),
            "Start the sign-in again.",
        ))
    })
}

/// `GET /auth/oauth/{provider}/start[?return_to=/path][&login_hint=…]`.
pub async fn start(State(gw): State<Arc<Gateway>>, Path(id): Path<String>, req: Request) -> Response {
    let Some(o) = gw.oauth.clone() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some(providers) = o.providers.as_ref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some(p) = providers.get(&id) else {
        return problem(
            StatusCode::NOT_FOUND,
            "There is no such sign-in provider here.",
            "Go back and choose one the page offers.",
        );
    };
    let form = match query_form(&req) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let return_to = match form.get("return_to") {
        Some(t) if session::is_local_path(t) => Some(t.to_string()),
        Some(_) => {
            return problem(
                StatusCode::BAD_REQUEST,
                "The address to return to after signing in is not on this gateway.",
                "Start the sign-in from this gateway's own pages.",
            );
        }
        None => None,
    };
    let endpoint = match p.authorization_endpoint().await {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(provider = %id, error = %e, "sign-in provider unreachable");
            return problem(
                StatusCode::BAD_GATEWAY,
                &format!("{} cannot be reached right now.", p.settings.name),
                "Try again in a minute; if it keeps failing, tell the gateway's operator.",
            );
        }
    };
    let now = o.clock.unix_s();
    let pending = Pending {
        iss: o.settings.issuer.clone(),
        aud: callback_audience(&o),
        provider: id.clone(),
        state: o.secret(""),
        nonce: o.secret(""),
        verifier: o.secret(""),
        return_to,
        iat: now,
        exp: now + SIGN_IN_TTL_S,
    };
    let challenge =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(pending.verifier.as_bytes()));
    let mut url = endpoint;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", &p.settings.client_id)
            .append_pair("redirect_uri", &providers.redirect_uri)
            .append_pair("scope", &p.settings.scopes.join(" "))
            .append_pair("state", &pending.state)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        if p.oidc.is_some() {
            q.append_pair("nonce", &pending.nonce);
        }
        // Who is expected (OIDC `login_hint`; GitHub calls it `login`), passed on when it is a
        // plain short value.
        if let Some(hint) = form
            .get("login_hint")
            .filter(|h| !h.is_empty() && h.len() <= 256 && h.chars().all(|c| !c.is_control()))
        {
            q.append_pair(if p.oidc.is_some() { "login_hint" } else { "login" }, hint);
        }
    }
    let cookie = serde_json::to_value(&pending)
        .map_err(|e| e.to_string())
        .and_then(|v| o.signer().sign_typed(SIGN_IN_TYP, &v))
        .ok()
        .and_then(|jwt| {
            cookies::set(
                &o,
                &cookies::name(&o, SIGN_IN_COOKIE),
                &jwt,
                u64::try_from(SIGN_IN_TTL_S).unwrap_or(600),
            )
        });
    let (Some(cookie), Ok(location)) = (cookie, HeaderValue::from_str(url.as_str())) else {
        return problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The sign-in could not be started.",
            "Try again.",
        );
    };
    let mut r = StatusCode::SEE_OTHER.into_response();
    r.headers_mut().insert(header::LOCATION, location);
    r.headers_mut().append(header::SET_COOKIE, cookie);
    super::no_store(&mut r);
    r
}

/// The pending sign-in this browser started, if its cookie is ours and fresh.
fn pending(o: &OAuthServer, req: &Request) -> Option<Pending> {
    cookies::read_signed(
        o,
        req.headers(),
        SIGN_IN_COOKIE,
        SIGN_IN_TYP,
        &callback_audience(o),
        &[],
    )
}

/// `GET /auth/oauth/callback?code=…&state=…` (or `error=…`).
pub async fn callback(State(gw): State<Arc<Gateway>>, req: Request) -> Response {
    let Some(o) = gw.oauth.clone() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some(providers) = o.providers.as_ref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let form = match query_form(&req) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let again = "Start the sign-in again from the page you came from (and allow cookies for this site).";
    let Some(pending) = pending(&o, &req) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "This sign-in was not started in this browser, or took longer than 10 minutes.",
            again,
        );
    };
    let state_ok = form
        .get("state")
        .is_some_and(|s| cookies::same_bytes(s, &pending.state));
    if !state_ok {
        return problem(
            StatusCode::BAD_REQUEST,
            "The provider's answer does not belong to the sign-in this browser started (state mismatch).",
            again,
        );
    }
    // Each sign-in is answered once, on every replica.
    let once = Sha256::digest(format!("signin:{}", pending.state).as_bytes());
    match o.replay.claim(&once, pending.exp, o.clock.unix_s()).await {
        Ok(true) => {}
        Ok(false) => {
            return problem(StatusCode::BAD_REQUEST, "This sign-in answer was already used.", again);
        }
        Err(e) => {
            tracing::warn!(error = %e, "sign-in: replay store unavailable");
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "The sign-in service cannot reach its records right now.",
                "Try again in a minute.",
            );
        }
    }
    let clear = cookies::set(&o, &cookies::name(&o, SIGN_IN_COOKIE), "", 0);
    let mut r = finish(&o, providers, &pending, &form).await;
    if let Some(c) = clear {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    super::no_store(&mut r);
    r
}

async fn finish(o: &OAuthServer, providers: &Providers, pending: &Pending, form: &super::form::Form) -> Response {
    let Some(p) = providers.get(&pending.provider) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "The provider this sign-in started with is no longer configured.",
            "Start the sign-in again.",
        );
    };
    let name = &p.settings.name;
    // RFC 9207: a provider that names itself in the answer must name itself (a mix-up defence:
    // an answer from another provider is not taken for this one's).
    if let (Some(iss), Some(ours)) = (form.get("iss"), p.settings.issuer.as_deref())
        && iss.trim_end_matches('/') != ours.trim_end_matches('/')
    {
        tracing::warn!(provider = %p.settings.id, "sign-in answer names another issuer");
        return problem(
            StatusCode::BAD_REQUEST,
            &format!("The answer did not come from {name}."),
            "Start the sign-in again.",
        );
    }
    if let Some(err) = form.get("error") {
        let err = crate::refusal::printable(err, 64);
        tracing::info!(provider = %p.settings.id, error = %err, "sign-in refused by the provider");
        let what = if err == "access_denied" {
            format!("{name} did not let you sign in (you, or the provider, declined).")
        } else {
            format!("{name} could not sign you in ({err}).")
        };
        return problem(
            StatusCode::FORBIDDEN,
            &what,
            "Start again, or ask the gateway's operator.",
        );
    }
    let Some(code) = form.get("code") else {
        return problem(
            StatusCode::BAD_REQUEST,
            &format!("{name} sent no authorization code."),
            "Start the sign-in again.",
        );
    };
    let (who, answer) = match p.identify(providers, code, pending, o.clock.unix_s()).await {
        Ok(found) => found,
        Err(Failure::Unreachable(e)) => {
            tracing::warn!(provider = %p.settings.id, error = %e, "sign-in provider unreachable");
            return problem(
                StatusCode::BAD_GATEWAY,
                &format!("{name} cannot be reached right now."),
                "Try again in a minute; if it keeps failing, tell the gateway's operator.",
            );
        }
        Err(Failure::Refused(e)) => {
            tracing::warn!(provider = %p.settings.id, reason = %e, "sign-in answer refused");
            return problem(
                StatusCode::BAD_GATEWAY,
                &format!("{name}'s answer could not be trusted, so you are not signed in."),
                "Start the sign-in again; if it keeps failing, tell the gateway's operator.",
            );
        }
    };
    let Some(subject) = mapping::map(&providers.rules, &who) else {
        tracing::info!(provider = %p.settings.id, subject = %who.subject, "sign-in: no identity rule admits this account");
        return problem(
            StatusCode::FORBIDDEN,
            &format!("Your {name} account is not allowed to use this gateway."),
            "Ask the gateway's operator for access, or sign in with another account.",
        );
    };
    tracing::info!(provider = %p.settings.id, user = %subject.user_id, "signed in through a provider");
    if let Some(users) = &o.users {
        let record = mcpgate_store::UserRecord {
            user_id: subject.user_id.clone(),
            tenant: subject.tenant.clone(),
            role: subject.role,
            via: subject.via.clone(),
            email: who.emails.first().cloned(),
            name: who.login.clone(),
            first_sign_in: 0,
            last_sign_in: 0,
            sign_ins: 0,
        };
        // Not recorded is not refused: the sign-in stands (its grants name the person anyway).
        if let Err(e) = users.record_sign_in(&record, o.clock.unix_s()).await {
            tracing::warn!(provider = %p.settings.id, error = %e, "could not record the sign-in in the user list");
        }
    }
    if let Some((held_for, tokens)) = &providers.held
        && *held_for == p.settings.id
    {
        let owner = subject.via.clone();
        match held::ProviderToken::from_answer(&answer, o.clock.unix_s()) {
            Some(t) => match tokens.keep(&owner, &t, o.clock.unix_s()).await {
                Ok(()) => {
                    if let (Some(keys), Ok(plain)) = (&o.keys, serde_json::to_string(&t)) {
                        keys.hold_now(&owner, Secret::new(plain));
                    }
                }
                Err(e) => {
                    tracing::warn!(provider = %p.settings.id, error = %e, "could not keep the provider's token for the upstream");
                }
            },
            None => {
                tracing::warn!(provider = %p.settings.id, "the provider's answer had no access token to keep for the upstream")
            }
        }
    }
    let mut r = match &pending.return_to {
        Some(to) => {
            let mut r = StatusCode::SEE_OTHER.into_response();
            if let Ok(v) = HeaderValue::from_str(to) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
        None => page::render(
            StatusCode::OK,
            "Signed in",
            &format!(
                "<h1>Signed in</h1><div class=\"box\"><p>You are signed in to this gateway as <strong><bdi>{}</bdi></strong>.</p></div>",
                page::escape(&page::display_name(&subject.user_id))
            ),
        ),
    };
    if let Some(c) = session::issue(o, &subject) {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

/// Why a provider's answer was not taken.
pub(crate) enum Failure {
    /// The provider could not be reached or answered with an error status.
    Unreachable(String),
    /// It answered, but not with something that proves who the person is.
    Refused(String),
}

/// The provider's token response (RFC 6749 §5.1).
#[derive(Deserialize)]
pub(crate) struct TokenAnswer {
    access_token: Option<String>,
    refresh_token: Option<String>,
    expires_in: Option<held::ExpiresIn>,
    id_token: Option<String>,
    error: Option<String>,
}

impl Provider {
    async fn authorization_endpoint(&self) -> Result<reqwest::Url, String> {
        match &self.oidc {
            Some(o) => Ok(o.endpoints().await?.authorization),
            None => github::authorization_endpoint(&self.settings),
        }
    }

    async fn token_endpoint(&self) -> Result<reqwest::Url, String> {
        match &self.oidc {
            Some(o) => Ok(o.endpoints().await?.token),
            None => github::token_endpoint(&self.settings),
        }
    }

    /// A request to the provider's token endpoint with `params` (and our client id, and its
    /// secret when it has one); its answer when it granted something.
    pub(crate) async fn exchange(&self, all: &Providers, params: &[(&str, &str)]) -> Result<TokenAnswer, Failure> {
        let url = self.token_endpoint().await.map_err(Failure::Unreachable)?;
        let body = {
            // (The serializer is not Send: it must be gone before the first await.)
            let mut body = form_urlencoded::Serializer::new(String::new());
            for (k, v) in params {
                body.append_pair(k, v);
            }
            body.append_pair("client_id", &self.settings.client_id);
            body.finish()
        };
        let mut req = all
            .client
            .post(url)
            .header(header::ACCEPT, "application/json")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body);
        if let Some(secret) = &self.secret {
            req = req.basic_auth(
                form_urlencoded::byte_serialize(self.settings.client_id.as_bytes()).collect::<String>(),
                Some(form_urlencoded::byte_serialize(secret.expose().as_bytes()).collect::<String>()),
            );
        }
        let resp = req
            .send()
            .await
            .map_err(|e| Failure::Unreachable(format!("token endpoint: {}", e.without_url())))?;
        let status = resp.status();
        let body = crate::auth::fetch::read_limited(resp, MAX_ANSWER)
            .await
            .map_err(Failure::Unreachable)?;
        let answer: TokenAnswer = serde_json::from_slice(&body)
            .map_err(|_| Failure::Refused(format!("token endpoint: HTTP {status}, not a JSON token response")))?;
        if let Some(e) = &answer.error {
            return Err(Failure::Refused(format!(
                "token endpoint refused: {}",
                crate::refusal::printable(e, 64)
            )));
        }
        if !status.is_success() {
            return Err(Failure::Unreachable(format!("token endpoint: HTTP {status}")));
        }
        Ok(answer)
    }

    /// Exchanges the code and reads who signed in; the provider's answer too (its tokens).
    async fn identify(
        &self,
        all: &Providers,
        code: &str,
        pending: &Pending,
        now: i64,
    ) -> Result<(Identity, TokenAnswer), Failure> {
        let answer = self
            .exchange(
                all,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", &all.redirect_uri),
                    ("code_verifier", &pending.verifier),
                ],
            )
            .await?;
        let who = match &self.oidc {
            Some(o) => {
                let id_token = answer
                    .id_token
                    .as_deref()
                    .ok_or_else(|| Failure::Refused("no id_token in the token response".into()))?;
                o.identity(
                    &self.settings,
                    id_token,
                    answer.access_token.as_deref(),
                    &pending.nonce,
                    now,
                )
                .await
                .map_err(Failure::Refused)
            }
            None => {
                let token = Secret::new(
                    answer
                        .access_token
                        .clone()
                        .ok_or_else(|| Failure::Refused("no access_token in the token response".into()))?,
                );
                github::identity(&self.settings, &all.client, &token, &all.rules)
                    .await
                    .map_err(|e| match e {
                        github::Error::Unreachable(e) => Failure::Unreachable(e),
                        github::Error::Refused(e) => Failure::Refused(e),
                    })
            }
        }?;
        Ok((who, answer))
    }
}
