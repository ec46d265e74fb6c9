//! How a request gets its credentials: one [`Auth`] provider per method, stacked with [`Chain`].
//!
//! A provider is asked for the headers of each request *with the exact bytes about to be sent*
//! (an HMAC signature covers them; nothing may change them afterwards), and told when the server
//! refused what it gave (401: refresh a token, switch to the fallback key) so the caller can send
//! once more. Providers never log a secret and their errors never carry one.

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use std::sync::Arc;

pub mod bearer;
pub mod client_credentials;
pub mod clock;
pub mod headers;
pub mod hmac;
pub mod jwt;
pub mod keys;

pub use bearer::Bearer;
pub use client_credentials::{ClientCredentials, ClientCredentialsConfig, TokenAuth};
pub use clock::{Clock, ManualClock, SystemClock};
pub use headers::Headers;
pub use hmac::Hmac;
pub use jwt::{Audience, Jwt, JwtConfig, parse_claim, parse_ttl};
pub use keys::KeyPair;

/// Why a provider could not be set up (a flag or profile field is missing or malformed); `what`
/// names the flag or field. Never carries a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {why}")]
pub struct SetupError {
    pub what: String,
    pub why: String,
}

impl SetupError {
    pub fn new(what: impl Into<String>, why: impl Into<String>) -> SetupError {
        SetupError {
            what: what.into(),
            why: why.into(),
        }
    }
}

impl From<crate::secret::SecretError> for SetupError {
    fn from(e: crate::secret::SecretError) -> SetupError {
        use crate::secret::SecretError as E;
        let what = match &e {
            E::Inline { what } | E::Unset { what, .. } | E::BadName { what, .. } => what.clone(),
        };
        let full = e.to_string();
        let why = full
            .strip_prefix(&format!("{what}: "))
            .map(str::to_string)
            .unwrap_or(full);
        SetupError { what, why }
    }
}

/// Why credentials could not be had for a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Fetching a token failed (the token endpoint refused or did not answer); says why, without
    /// any secret.
    #[error("could not get a token: {0}")]
    Token(String),
    /// Every credential was refused (both keys, a token fetched afresh).
    #[error("{0}")]
    Exhausted(String),
    #[error("{0}")]
    Other(String),
}

/// Gives requests their credentials.
#[async_trait::async_trait]
pub trait Auth: Send + Sync + 'static {
    /// The headers to add to a request of `method` to `url` whose body is exactly `body` (empty
    /// for GET and DELETE).
    async fn headers(&self, method: &Method, url: &str, body: &[u8]) -> Result<HeaderMap, AuthError>;

    /// The server answered 401 to a request sent with `sent` (the headers
    /// [`headers`](Self::headers) gave it); `challenge` is its `WWW-Authenticate`. Returns true
    /// when other credentials are now ready and the request is worth sending once more (a token
    /// fetched afresh, the fallback key); false when there is nothing else to try. Many requests
    /// may be refused at once: a provider that already moved on since `sent` answers true
    /// without moving again.
    async fn unauthorized(&self, sent: &HeaderMap, challenge: Option<&str>) -> bool;

    /// The server answered 403 with `insufficient_scope` (`challenge`): true when credentials
    /// with more scope are now ready (OAuth step-up). Others have nothing to offer.
    async fn insufficient_scope(&self, _sent: &HeaderMap, _challenge: Option<&str>) -> bool {
        false
    }

    /// What this provider is, for log lines (never a secret).
    fn describe(&self) -> String;
}

/// Several providers on one request (headers, then a key, then a signature over the body): their
/// headers together, in order (a later one's header replaces an earlier one's of the same name).
/// A refusal is offered to each; the request is sent again when any has something new.
#[derive(Clone, Default)]
pub struct Chain(pub Vec<Arc<dyn Auth>>);

#[async_trait::async_trait]
impl Auth for Chain {
    async fn headers(&self, method: &Method, url: &str, body: &[u8]) -> Result<HeaderMap, AuthError> {
        let mut all = HeaderMap::new();
        for p in &self.0 {
            for (name, value) in p.headers(method, url, body).await? {
                if let Some(name) = name {
                    all.insert(name, value);
                }
            }
        }
        Ok(all)
    }

    async fn unauthorized(&self, sent: &HeaderMap, challenge: Option<&str>) -> bool {
        let mut again = false;
        for p in &self.0 {
            again |= p.unauthorized(sent, challenge).await;
        }
        again
    }

    async fn insufficient_scope(&self, sent: &HeaderMap, challenge: Option<&str>) -> bool {
        let mut again = false;
        for p in &self.0 {
            again |= p.insufficient_scope(sent, challenge).await;
        }
        again
    }

    fn describe(&self) -> String {
        if self.0.is_empty() {
            return "no credentials".into();
        }
        self.0.iter().map(|p| p.describe()).collect::<Vec<_>>().join(" + ")
    }
}

/// A header value from user input: CR, LF and NUL are refused by name (they would split or end
/// the header), then whatever else HTTP does not allow. `sensitive` keeps it out of HTTP/2 header
/// tables and marks it for redaction.
pub(crate) fn header_value(what: &str, value: &str, sensitive: bool) -> Result<HeaderValue, SetupError> {
    if value.contains(['\r', '\n', '\0']) {
        return Err(SetupError::new(what, "a header value cannot contain CR, LF or NUL"));
    }
    let mut v = HeaderValue::from_str(value)
        .map_err(|_| SetupError::new(what, "not a valid header value (visible ASCII, spaces and tabs only)"))?;
    v.set_sensitive(sensitive);
    Ok(v)
}

/// A header name from user input.
pub(crate) fn header_name(what: &str, name: &str) -> Result<HeaderName, SetupError> {
    HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| SetupError::new(what, format!("{:?} is not a valid header name", name.trim())))
}
