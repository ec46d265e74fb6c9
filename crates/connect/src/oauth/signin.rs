//! Signing the user in: the loopback listener, the authorization request (PKCE S256, `state`,
//! `resource`, scope), the browser, the callback judged (`state` first: another sign-in's answer
//! is refused and the wait goes on; then `iss`, then `error`, then the code), and the code
//! exchanged. Also the dynamic registration that comes first when there is no client yet.

use super::discovery::Discovered;
use super::loopback::{self, Callback, Listener, Page};
use super::pkce::{Code, State, Verifier};
use super::{Client, OAuth, Session, cache, net, register, token};
use crate::auth::AuthError;
use cache::Registration;
use http::HeaderValue;
use std::sync::atomic::Ordering;

impl OAuth {
    /// Signs the user in (a browser round trip) for `scope`, else the scope held, else the
    /// flag's, the challenge's or the metadata's.
    pub(super) async fn authorize(&self, s: &mut Session, scope: Option<String>) -> Result<HeaderValue, AuthError> {
        self.prepare(s).await?;
        let Some(d) = s.discovered.clone() else {
            return Err(AuthError::Other("OAuth discovery did not run".into()));
        };
        let registered_port = s
            .client
            .as_ref()
            .and_then(|c| reqwest::Url::parse(&c.redirect_uri).ok())
            .and_then(|u| u.port());
        let mut listener = Listener::bind(registered_port.unwrap_or(0))
            .await
            .map_err(AuthError::Other)?;
        let client = match &s.client {
            Some(c) => c.clone(),
            None => {
                let c = self.register(&d, listener.port()).await?;
                s.client = Some(c.clone());
                s.loaded = true;
                c
            }
        };
        let mut redirect = reqwest::Url::parse(&client.redirect_uri)
            .map_err(|e| AuthError::Other(format!("the registered redirect URI is not a URL ({e})")))?;
        redirect
            .set_port(Some(listener.port()))
            .map_err(|_| AuthError::Other("the registered redirect URI takes no port".into()))?;
        let redirect = redirect.to_string();
        let scope = scope
            .or_else(|| s.held_scope.clone())
            .or_else(|| self.settings.scope.clone())
            .or_else(|| s.challenge_scope.clone())
            .or_else(|| Some(d.scopes_supported.join(" ")))
            .filter(|x| !x.trim().is_empty());

        let verifier = Verifier::new();
        let state = State::new();
        let mut url = reqwest::Url::parse(&d.authorization_endpoint)
            .map_err(|e| AuthError::Other(format!("the authorization_endpoint is not a URL ({e})")))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &client.id)
                .append_pair("redirect_uri", &redirect)
                .append_pair("code_challenge", &verifier.challenge())
                .append_pair("code_challenge_method", "S256")
                .append_pair("state", state.as_str())
                .append_pair("resource", &self.settings.mcp_url);
            if let Some(scope) = &scope {
                q.append_pair("scope", scope);
            }
        }
        self.authorizations.fetch_add(1, Ordering::Relaxed);
        eprintln!("open this URL to sign in to {}: {url}", self.settings.mcp_url);
        if let Some(hook) = &self.settings.on_authorization_url {
            hook(url.to_string());
        } else if self.settings.open_browser && !loopback::open_browser(url.as_str()) {
            eprintln!("(no browser could be started: open the URL above yourself)");
        }

        let (code, callback) = self.wait(&mut listener, &state, &d).await?;
        let sent_at = self.now_ms();
        let http = self.http()?;
        match token::exchange(
            http,
            &d.token_endpoint,
            code,
            verifier,
            &redirect,
            &client.id,
            &self.settings.mcp_url,
        )
        .await
        {
            Ok(g) => {
                callback.answer(Page::SignedIn);
                let h = self.keep(s, &d, &client, g, None, scope, sent_at)?;
                tracing::info!(client_id = %client.id, "OAuth: signed in at {}", d.issuer);
                Ok(h)
            }
            Err(e) => {
                callback.answer(Page::Failed(e.to_string()));
                Err(AuthError::Token(format!(
                    "the sign-in's code was not exchanged for tokens: {e}"
                )))
            }
        }
    }

    /// Waits for this sign-in's callback: its code, and the callback to answer.
    async fn wait(&self, l: &mut Listener, state: &State, d: &Discovered) -> Result<(Code, Callback), AuthError> {
        let timeout = self.settings.callback_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut ignored: Vec<String> = Vec::new();
        loop {
            let cb = match tokio::time::timeout_at(deadline, l.next()).await {
                Ok(Some(cb)) => cb,
                Ok(None) => return Err(AuthError::Other("the sign-in's redirect listener stopped".into())),
                Err(_) => {
                    let mut msg = format!(
                        "the sign-in did not come back within {} s (open the printed URL, sign in, and let the browser return to 127.0.0.1:{})",
                        timeout.as_secs(),
                        l.port()
                    );
                    if !ignored.is_empty() {
                        msg.push_str(&format!(
                            "; {} callback(s) refused: {}",
                            ignored.len(),
                            ignored.join("; ")
                        ));
                    }
                    return Err(AuthError::Other(msg));
                }
            };
            match judge(&cb, state, d) {
                Verdict::Ignore(why) => {
                    tracing::warn!("OAuth: a callback was refused: {why}");
                    cb.answer(Page::Ignored(why.clone()));
                    ignored.push(why);
                }
                Verdict::Fail(why) => {
                    cb.answer(Page::Failed(why.clone()));
                    return Err(AuthError::Other(why));
                }
                Verdict::Code(code) => return Ok((code, cb)),
            }
        }
    }

    /// Registers a client (portless loopback redirect, else this listener's exact one).
    async fn register(&self, d: &Discovered, port: u16) -> Result<Client, AuthError> {
        let Some(endpoint) = &d.registration_endpoint else {
            return Err(AuthError::Other(format!(
                "{} offers no dynamic client registration (registration_endpoint): register a public client there with the redirect URI {} and pass its id with --client-id",
                d.issuer,
                register::PORTLESS_REDIRECT
            )));
        };
        let http = self.http()?;
        let name = &self.settings.client_name;
        let exact = format!("http://127.0.0.1:{port}/callback");
        let (id, redirect_uri) = match register::register(http, endpoint, name, register::PORTLESS_REDIRECT).await {
            Ok(id) => (id, register::PORTLESS_REDIRECT.to_string()),
            Err(register::RegisterError::Refused(why)) => {
                tracing::info!(
                    "OAuth: the authorization server refused a loopback redirect without a port ({why}); registering {exact}"
                );
                match register::register(http, endpoint, name, &exact).await {
                    Ok(id) => (id, exact),
                    Err(e) => return Err(AuthError::Other(format!("client registration failed: {}", e.message()))),
                }
            }
            Err(e) => return Err(AuthError::Other(format!("client registration failed: {}", e.message()))),
        };
        tracing::info!(client_id = %id, "OAuth: registered a client at {}", d.issuer);
        let reg = Registration::new(&d.issuer, &self.settings.mcp_url, id.clone(), redirect_uri.clone());
        if let Err(e) = self
            .store
            .save(&cache::registration_file(&d.issuer, &self.settings.mcp_url), &reg)
        {
            tracing::warn!("OAuth: {e}; the client is registered again next run");
        }
        Ok(Client {
            id,
            redirect_uri,
            registered: true,
        })
    }
}

enum Verdict {
    /// Not this sign-in's callback (another `state`): answered 400, still waiting.
    Ignore(String),
    /// This sign-in's, and it failed.
    Fail(String),
    Code(Code),
}

fn judge(cb: &Callback, state: &State, d: &Discovered) -> Verdict {
    let got = match cb.param("state") {
        Err(e) => return Verdict::Ignore(e),
        Ok(None) => return Verdict::Ignore("the callback has no state".into()),
        Ok(Some(s)) => s,
    };
    if !state.matches(got) {
        return Verdict::Ignore("the callback's state is not this sign-in's (an old tab, or a forged link)".into());
    }
    // This sign-in's answer from here on. `iss` first: an error may come from a server posing as
    // the issuer too (RFC 9207 §2.4).
    match cb.param("iss") {
        Err(e) => return Verdict::Fail(e),
        Ok(Some(iss)) if iss != d.issuer => {
            return Verdict::Fail(format!(
                "the sign-in came back from issuer {}, not {}: refused (RFC 9207; a mix-up attack?)",
                net::clean(iss, &[]),
                d.issuer
            ));
        }
        Ok(None) if d.iss_parameter_supported => {
            return Verdict::Fail(format!(
                "the sign-in came back without iss, which {} says it always sends (RFC 9207): refused",
                d.issuer
            ));
        }
        Ok(_) => {}
    }
    match (cb.param("error"), cb.param("error_description")) {
        (Err(e), _) | (_, Err(e)) => return Verdict::Fail(e),
        (Ok(Some(err)), desc) => {
            let mut msg = format!("the authorization server refused the sign-in: {}", net::clean(err, &[]));
            if let Ok(Some(desc)) = desc {
                msg.push_str(&format!(": {}", net::clean(desc, &[])));
            }
            return Verdict::Fail(msg);
        }
        (Ok(None), _) => {}
    }
    match cb.param("code") {
        Ok(Some(code)) if !code.is_empty() => Verdict::Code(Code::new(code.to_string())),
        Ok(_) => Verdict::Fail("the sign-in came back without a code".into()),
        Err(e) => Verdict::Fail(e),
    }
}
