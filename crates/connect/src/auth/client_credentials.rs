//! OAuth client credentials (RFC 6749 §4.4; seed 002's token manager): a token fetched from the
//! token endpoint with the client's id and secret, kept in memory, fetched again before it
//! expires, and once more when the server refuses it.
//!
//! - The request: `grant_type=client_credentials`, `scope` when given, and `resource` (RFC 8707:
//!   the MCP URL, which MCP requires on token requests). The client authenticates with HTTP Basic
//!   (RFC 6749 §2.3.1, id and secret form-urlencoded first: what every server must support) or,
//!   with `--token-auth post`, with body parameters.
//! - Expiry: `expires_at = received + expires_in`, renewed when less than a fifth of the lifetime
//!   (at most a minute) is left, so a 5 s token is renewed at 1 s left and an hour's at a minute.
//! - Single flight: the token sits behind one async mutex held across the fetch, so the requests
//!   that find it stale all wait for one fetch and then use its token.
//! - Nothing here logs or returns the secret or a token; errors carry the endpoint's status,
//!   RFC 6749 error code and description.

use super::clock::{Clock, SystemClock, renewal_margin};
use super::{Auth, AuthError, SetupError, header_value};
use crate::secret::Secret;
use base64::Engine;
use http::{HeaderMap, HeaderValue, Method, header};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// The token endpoint's time to answer.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Most of a token endpoint's answer that is read.
const MAX_BODY: usize = 64 * 1024;
/// A token fetched because the previous one was refused, and refused too within this long, is
/// not fetched again: the client is not allowed, and fetching will not change that.
const REFUSAL_WINDOW: Duration = Duration::from_secs(60);

/// How the client authenticates to the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenAuth {
    /// `client_secret_basic`: HTTP Basic with the id and secret form-urlencoded.
    #[default]
    Basic,
    /// `client_secret_post`: `client_id` and `client_secret` in the form.
    Post,
}

impl TokenAuth {
    /// `--token-auth basic|post` (`client_secret_basic` and `client_secret_post` too).
    pub fn parse(s: &str) -> Result<TokenAuth, SetupError> {
        match s.trim() {
            "basic" | "client_secret_basic" => Ok(TokenAuth::Basic),
            "post" | "client_secret_post" => Ok(TokenAuth::Post),
            other => Err(SetupError::new(
                "--token-auth",
                format!("{other:?} is not basic or post"),
            )),
        }
    }
}

/// Where and how to get tokens.
#[derive(Debug, Clone)]
pub struct ClientCredentialsConfig {
    pub token_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// Space-separated scopes; none asks for the client's default.
    pub scope: Option<String>,
    /// RFC 8707 `resource`: the MCP URL in the usual case; `None` leaves it out (for
    /// authorization servers that refuse it).
    pub resource: Option<String>,
    pub token_auth: TokenAuth,
}

struct Token {
    header: HeaderValue,
    fetched_at: SystemTime,
    /// `None` when the endpoint gave no `expires_in`: kept until refused.
    lifetime: Option<Duration>,
    /// Fetched because the one before was refused.
    after_refusal: bool,
}

impl Token {
    fn usable(&self, now: SystemTime) -> bool {
        let Some(lifetime) = self.lifetime else {
            return true;
        };
        let age = now.duration_since(self.fetched_at).unwrap_or_default();
        lifetime.saturating_sub(age) > renewal_margin(lifetime)
    }
}

/// Tokens from an OAuth token endpoint.
pub struct ClientCredentials {
    config: ClientCredentialsConfig,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    token: tokio::sync::Mutex<Option<Token>>,
    fetches: AtomicU64,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("token_url", &self.config.token_url)
            .field("client_id", &self.config.client_id)
            .field("token_auth", &self.config.token_auth)
            .field("fetches", &self.fetches())
            .finish_non_exhaustive()
    }
}

impl ClientCredentials {
    pub fn new(config: ClientCredentialsConfig) -> Result<ClientCredentials, SetupError> {
        ClientCredentials::with_clock(config, Arc::new(SystemClock))
    }

    pub fn with_clock(config: ClientCredentialsConfig, clock: Arc<dyn Clock>) -> Result<ClientCredentials, SetupError> {
        let url = reqwest::Url::parse(&config.token_url)
            .map_err(|e| SetupError::new("--token-url", format!("not a URL ({e})")))?;
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&url) => {}
            "http" => {
                return Err(SetupError::new(
                    "--token-url",
                    "plain http to another machine would send the client secret and the tokens unencrypted: use https \
                     (http is accepted on this machine only: 127.0.0.1, ::1, localhost)",
                ));
            }
            other => return Err(SetupError::new("--token-url", format!("{other}: is not http or https"))),
        }
        if config.client_id.trim().is_empty() {
            return Err(SetupError::new("--client-id", "give the client's id"));
        }
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            // A redirected POST would carry the client's credentials somewhere else.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| SetupError::new("--token-url", format!("could not build an HTTP client ({e})")))?;
        Ok(ClientCredentials {
            config,
            http,
            clock,
            token: tokio::sync::Mutex::new(None),
            fetches: AtomicU64::new(0),
        })
    }

    /// How many requests went to the token endpoint.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    async fn fetch(&self) -> Result<Token, AuthError> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let c = &self.config;
        let mut req = self
            .http
            .post(&c.token_url)
            .header(header::ACCEPT, "application/json")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if c.token_auth == TokenAuth::Basic {
            let mut v = HeaderValue::from_str(&basic_authorization(&c.client_id, c.client_secret.expose()))
                .map_err(|_| AuthError::Token("the client id cannot be sent in a header".into()))?;
            v.set_sensitive(true);
            req = req.header(header::AUTHORIZATION, v);
        }
        let received_at = self.clock.now();
        let mut resp = req.body(form_body(c)).send().await.map_err(|e| {
            AuthError::Token(format!(
                "token endpoint {} did not answer: {}",
                c.token_url,
                chain(&e.without_url())
            ))
        })?;
        let status = resp.status();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| {
            AuthError::Token(format!(
                "token endpoint {}: reading its answer: {}",
                c.token_url,
                chain(&e)
            ))
        })? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(AuthError::Token(format!(
                    "token endpoint answered {status} with more than {MAX_BODY} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        let (access, expires_in) = read_token_response(status.as_u16(), &body, c.client_secret.expose())?;
        let mut header = header_value("access_token", &format!("Bearer {access}"), true).map_err(|_| {
            AuthError::Token("the token endpoint sent an access token that cannot go in a header".into())
        })?;
        header.set_sensitive(true);
        match expires_in {
            Some(s) => tracing::info!("fetched an access token (expires in {s} s)"),
            None => tracing::info!("fetched an access token (no expiry given; kept until refused)"),
        }
        Ok(Token {
            header,
            fetched_at: received_at,
            lifetime: expires_in.filter(|s| *s > 0).map(Duration::from_secs),
            after_refusal: false,
        })
    }
}

/// The token request's form (RFC 6749 §4.4.2, RFC 8707), with the client's credentials in it for
/// `client_secret_post`.
fn form_body(c: &ClientCredentialsConfig) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "client_credentials");
    if let Some(scope) = &c.scope {
        form.append_pair("scope", scope);
    }
    if let Some(resource) = &c.resource {
        form.append_pair("resource", resource);
    }
    if c.token_auth == TokenAuth::Post {
        form.append_pair("client_id", &c.client_id);
        form.append_pair("client_secret", c.client_secret.expose());
    }
    form.finish()
}

fn is_loopback(url: &reqwest::Url) -> bool {
    url.host_str().is_some_and(|h| {
        h.eq_ignore_ascii_case("localhost")
            || h.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    })
}

/// An error with its causes ("connection refused" is in the source, not the top error).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let text = c.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cur = c.source();
    }
    s
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1).
fn basic_authorization(id: &str, secret: &str) -> String {
    let id: String = form_urlencoded::byte_serialize(id.as_bytes()).collect();
    let secret: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

/// The access token and `expires_in` of a token response, or why there is none (status, RFC 6749
/// error code and description; `secret` removed from anything the endpoint wrote).
fn read_token_response(status: u16, body: &[u8], secret: &str) -> Result<(String, Option<u64>), AuthError> {
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let text = |key: &str| {
        json.as_ref()
            .and_then(|j| j.get(key))
            .and_then(|v| v.as_str())
            .map(|s| clean(s, secret))
    };
    if !(200..300).contains(&status) {
        let mut msg = format!("token endpoint answered {status}");
        match (text("error"), text("error_description")) {
            (Some(code), Some(desc)) => msg.push_str(&format!(" {code}: {desc}")),
            (Some(code), None) => msg.push_str(&format!(" {code}")),
            _ if json.is_none() => msg.push_str(" (not JSON)"),
            _ => {}
        }
        if status == 401 || text("error").as_deref() == Some("invalid_client") {
            msg.push_str(" (check --client-id, --client-secret and --token-auth)");
        }
        return Err(AuthError::Token(msg));
    }
    let Some(json) = &json else {
        return Err(AuthError::Token(format!(
            "token endpoint answered {status} but not with JSON"
        )));
    };
    let Some(access) = json
        .get("access_token")
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
    else {
        return Err(AuthError::Token(
            "the token endpoint's answer has no access_token".into(),
        ));
    };
    if let Some(kind) = json.get("token_type").and_then(|v| v.as_str())
        && !kind.eq_ignore_ascii_case("bearer")
    {
        return Err(AuthError::Token(format!(
            "the token endpoint gave a {} token; only Bearer tokens are supported",
            clean(kind, secret)
        )));
    }
    // Some servers send the number as a string.
    let expires_in = match json.get("expires_in") {
        Some(serde_json::Value::Number(n)) => n.as_u64().or_else(|| n.as_f64().map(|f| f.max(0.0) as u64)),
        Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    };
    Ok((access.to_string(), expires_in))
}

/// Text from the endpoint, fit for a log line: no control characters, bounded, and never the
/// secret (an endpoint that echoes its input would put it there).
fn clean(s: &str, secret: &str) -> String {
    // Redacted before it is cut: a secret straddling the cut would leave its start behind.
    let mut s: String = s.chars().filter(|c| !c.is_control()).collect();
    if !secret.is_empty() {
        let encoded: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        for form in [secret, encoded.as_str()] {
            s = s.replace(form, "<redacted>");
        }
    }
    s.chars().take(300).collect()
}

fn bearer_of(sent: &HeaderMap) -> Option<&HeaderValue> {
    sent.get(header::AUTHORIZATION)
}

#[async_trait::async_trait]
impl Auth for ClientCredentials {
    async fn headers(&self, _: &Method, _: &str, _: &[u8]) -> Result<HeaderMap, AuthError> {
        let mut token = self.token.lock().await;
        // Checked again under the lock: whoever held it may have fetched a fresh one.
        let value = match &*token {
            Some(t) if t.usable(self.clock.now()) => t.header.clone(),
            _ => {
                let fresh = self.fetch().await?;
                let v = fresh.header.clone();
                *token = Some(fresh);
                v
            }
        };
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, value);
        Ok(h)
    }

    async fn unauthorized(&self, sent: &HeaderMap, _: Option<&str>) -> bool {
        let Some(sent) = bearer_of(sent) else {
            return false;
        };
        let mut token = self.token.lock().await;
        match &*token {
            // Dropped or replaced since this request left: the next one is fetched or ready.
            None => return true,
            Some(t) if t.header != sent => return true,
            Some(t) => {
                let age = self.clock.now().duration_since(t.fetched_at).unwrap_or_default();
                if t.after_refusal && age < REFUSAL_WINDOW {
                    tracing::error!(
                        client_id = %self.config.client_id,
                        "a token fetched afresh was refused too (401): the server does not accept this client's tokens"
                    );
                    return false;
                }
            }
        }
        *token = None;
        match self.fetch().await {
            Ok(mut fresh) => {
                tracing::info!("the token was refused (401); fetched a new one");
                fresh.after_refusal = true;
                *token = Some(fresh);
                true
            }
            Err(e) => {
                tracing::error!("{e}");
                false
            }
        }
    }

    fn describe(&self) -> String {
        format!(
            "client credentials (client {} at {})",
            self.config.client_id, self.config.token_url
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn basic_encodes_id_and_secret_first() {
        let h = basic_authorization("my client", "s:e/c+r%t");
        let raw = base64::engine::general_purpose::STANDARD
            .decode(h.strip_prefix("Basic ").unwrap())
            .unwrap();
        assert_eq!(String::from_utf8(raw).unwrap(), "my+client:s%3Ae%2Fc%2Br%25t");
    }

    #[test]
    fn token_responses() {
        let ok = br#"{"access_token":"at-1","token_type":"bearer","expires_in":5}"#;
        assert_eq!(read_token_response(200, ok, "sec").unwrap(), ("at-1".into(), Some(5)));
        let s = br#"{"access_token":"at-1","token_type":"Bearer","expires_in":"3600"}"#;
        assert_eq!(read_token_response(200, s, "sec").unwrap().1, Some(3600));
        let none = br#"{"access_token":"at-1","token_type":"Bearer"}"#;
        assert_eq!(read_token_response(200, none, "sec").unwrap().1, None);
        for bad in [
            &br#"{"token_type":"Bearer"}"#[..],
            b"<html>",
            br#"{"access_token":"a","token_type":"DPoP"}"#,
        ] {
            assert!(read_token_response(200, bad, "sec").is_err());
        }
        let e = read_token_response(
            401,
            br#"{"error":"invalid_client","error_description":"bad secret s3cret-value\n"}"#,
            "s3cret-value",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("401 invalid_client: bad secret <redacted>"), "{e}");
        assert!(!e.contains("s3cret-value"));
        let e = read_token_response(502, b"<html>", "x").unwrap_err().to_string();
        assert!(e.contains("502 (not JSON)"), "{e}");
    }

    #[test]
    fn margin_renews_a_five_second_token_at_one_second_left() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let t = Token {
            header: HeaderValue::from_static("Bearer x"),
            fetched_at: t0,
            lifetime: Some(Duration::from_secs(5)),
            after_refusal: false,
        };
        assert!(t.usable(t0 + Duration::from_millis(3900)));
        assert!(!t.usable(t0 + Duration::from_secs(4)));
        let forever = Token { lifetime: None, ..t };
        assert!(forever.usable(t0 + Duration::from_secs(1_000_000)));
    }

    #[test]
    fn setup() {
        let cfg = |url: &str| ClientCredentialsConfig {
            token_url: url.into(),
            client_id: "c".into(),
            client_secret: Secret::new("s"),
            scope: None,
            resource: None,
            token_auth: TokenAuth::Basic,
        };
        assert!(ClientCredentials::new(cfg("http://127.0.0.1:9/token")).is_ok());
        assert!(ClientCredentials::new(cfg("not a url")).is_err());
        assert!(ClientCredentials::new(cfg("ftp://x/token")).is_err());
        assert_eq!(TokenAuth::parse("post").unwrap(), TokenAuth::Post);
        assert!(TokenAuth::parse("jwt").is_err());
    }
}
