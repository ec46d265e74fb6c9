//! The providers under rmcp's Streamable HTTP client transport (feature `rmcp`):
//! `StreamableHttpClientTransport::with_client(ConnectClient::new(auth), config)`.
//!
//! Each call asks the [`Auth`] for its headers and hands them to rmcp's own reqwest client as
//! custom headers, so the transport's behaviour (SSE, sessions, limits, errors) is rmcp's
//! unchanged. The HMAC signature covers the body rmcp's reqwest client sends: it serialises the
//! message with `RequestBuilder::json`, which is `serde_json::to_vec` (reqwest 0.13), and so does
//! this file, over the same value; the two byte strings are equal. A 401 (and a 403
//! `insufficient_scope`) is offered to the provider and the call sent once more when it has new
//! credentials, re-signed.
//!
//! Failures to get credentials (a token endpoint down) come back as
//! `StreamableHttpError::Io` wrapping the [`AuthError`](crate::AuthError), since the transport's
//! error type has no place of its own for them.

use crate::auth::Auth;
use http::{HeaderMap, HeaderName, HeaderValue, Method, header::AUTHORIZATION};
use rmcp::model::ClientJsonRpcMessage;
use rmcp::transport::common::client_side_sse::BoxedSseResponse;
use rmcp::transport::streamable_http_client::{StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse};
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

type Error = StreamableHttpError<reqwest::Error>;
type Custom = HashMap<HeaderName, HeaderValue>;

/// rmcp's reqwest client with credentials from an [`Auth`].
#[derive(Clone)]
pub struct ConnectClient {
    pub http: reqwest::Client,
    pub auth: Arc<dyn Auth>,
}

impl std::fmt::Debug for ConnectClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectClient")
            .field("auth", &self.auth.describe())
            .finish_non_exhaustive()
    }
}

impl ConnectClient {
    /// A default reqwest client (rustls) with `auth`.
    pub fn new(auth: Arc<dyn Auth>) -> ConnectClient {
        ConnectClient {
            http: reqwest::Client::new(),
            auth,
        }
    }

    pub fn with_http(http: reqwest::Client, auth: Arc<dyn Auth>) -> ConnectClient {
        ConnectClient { http, auth }
    }

    /// Sends with credentials; on a refusal the provider may renew them, and then the call goes
    /// once more (never more: a loop of refusals would hammer the server).
    async fn send<T, F, Fut>(
        &self,
        method: Method,
        uri: &str,
        body: &[u8],
        auth_header: Option<String>,
        custom: Custom,
        call: F,
    ) -> Result<T, Error>
    where
        F: Fn(Option<String>, Custom) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let mut retried = false;
        loop {
            let added = self
                .auth
                .headers(&method, uri, body)
                .await
                .map_err(|e| StreamableHttpError::Io(std::io::Error::other(e)))?;
            let (bearer, headers) = combine(auth_header.clone(), custom.clone(), &added);
            let result = call(bearer, headers).await;
            if retried {
                return result;
            }
            let again = match &result {
                Ok(_) => false,
                Err(e) => match refusal(e) {
                    Some(Refusal::Unauthorized(challenge)) => self.auth.unauthorized(&added, challenge).await,
                    Some(Refusal::InsufficientScope(challenge)) => {
                        self.auth.insufficient_scope(&added, Some(challenge)).await
                    }
                    None => false,
                },
            };
            if !again {
                return result;
            }
            retried = true;
        }
    }
}

/// The transport's headers with the provider's over them. rmcp's own bearer (`auth_header`) is
/// dropped when the provider sets `Authorization`: two would be sent otherwise.
fn combine(auth_header: Option<String>, mut custom: Custom, added: &HeaderMap) -> (Option<String>, Custom) {
    let bearer = if added.contains_key(AUTHORIZATION) {
        None
    } else {
        auth_header
    };
    for (name, value) in added {
        custom.insert(name.clone(), value.clone());
    }
    (bearer, custom)
}

enum Refusal<'e> {
    Unauthorized(Option<&'e str>),
    InsufficientScope(&'e str),
}

/// Whether the server refused the credentials. rmcp 3.9 reports a 401 with a challenge as
/// `AuthRequired`, a POST's 401 without one as `UnexpectedServerResponse("HTTP 401 …")`, and a
/// GET's or DELETE's as reqwest's status error.
fn refusal(e: &Error) -> Option<Refusal<'_>> {
    match e {
        StreamableHttpError::AuthRequired(a) => Some(Refusal::Unauthorized(Some(&a.www_authenticate_header))),
        StreamableHttpError::InsufficientScope(s) => Some(Refusal::InsufficientScope(&s.www_authenticate_header)),
        StreamableHttpError::UnexpectedServerResponse(m) if m.starts_with("HTTP 401 ") => {
            Some(Refusal::Unauthorized(None))
        }
        StreamableHttpError::Client(c) if c.status() == Some(reqwest::StatusCode::UNAUTHORIZED) => {
            Some(Refusal::Unauthorized(None))
        }
        _ => None,
    }
}

/// The bytes rmcp's reqwest client sends for `message` (see the module's note).
fn body_of(message: &ClientJsonRpcMessage) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(message).map_err(StreamableHttpError::Deserialize)
}

impl StreamableHttpClient for ConnectClient {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: Custom,
    ) -> Result<StreamableHttpPostResponse, Error> {
        let body = body_of(&message)?;
        self.send(
            Method::POST,
            &uri,
            &body,
            auth_header,
            custom_headers,
            |bearer, headers| {
                self.http
                    .post_message(uri.clone(), message.clone(), session_id.clone(), bearer, headers)
            },
        )
        .await
    }

    async fn post_message_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: Custom,
        max_sse_event_size: usize,
    ) -> Result<StreamableHttpPostResponse, Error> {
        let body = body_of(&message)?;
        self.send(
            Method::POST,
            &uri,
            &body,
            auth_header,
            custom_headers,
            |bearer, headers| {
                self.http.post_message_with_max_sse_event_size(
                    uri.clone(),
                    message.clone(),
                    session_id.clone(),
                    bearer,
                    headers,
                    max_sse_event_size,
                )
            },
        )
        .await
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: Custom,
    ) -> Result<(), Error> {
        self.send(
            Method::DELETE,
            &uri,
            b"",
            auth_header,
            custom_headers,
            |bearer, headers| {
                self.http
                    .delete_session(uri.clone(), session_id.clone(), bearer, headers)
            },
        )
        .await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: Custom,
    ) -> Result<BoxedSseResponse, Error> {
        self.send(
            Method::GET,
            &uri,
            b"",
            auth_header,
            custom_headers,
            |bearer, headers| {
                self.http
                    .get_stream(uri.clone(), session_id.clone(), last_event_id.clone(), bearer, headers)
            },
        )
        .await
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: Custom,
        max_sse_event_size: usize,
    ) -> Result<BoxedSseResponse, Error> {
        self.send(
            Method::GET,
            &uri,
            b"",
            auth_header,
            custom_headers,
            |bearer, headers| {
                self.http.get_stream_with_max_sse_event_size(
                    uri.clone(),
                    session_id.clone(),
                    last_event_id.clone(),
                    bearer,
                    headers,
                    max_sse_event_size,
                )
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use rmcp::transport::streamable_http_client::AuthRequiredError;
    use std::borrow::Cow;

    #[test]
    fn refusals_are_recognised() {
        let e: Error = StreamableHttpError::AuthRequired(AuthRequiredError::new("Bearer realm=\"x\"".into()));
        assert!(matches!(
            refusal(&e),
            Some(Refusal::Unauthorized(Some("Bearer realm=\"x\"")))
        ));
        let e: Error = StreamableHttpError::UnexpectedServerResponse(Cow::Borrowed("HTTP 401 Unauthorized: no"));
        assert!(matches!(refusal(&e), Some(Refusal::Unauthorized(None))));
        let e: Error = StreamableHttpError::UnexpectedServerResponse(Cow::Borrowed("HTTP 4010"));
        assert!(refusal(&e).is_none());
        assert!(refusal(&StreamableHttpError::SessionExpired).is_none());
    }

    #[test]
    fn provider_headers_win_and_replace_the_transport_bearer() {
        let mut added = HeaderMap::new();
        added.insert(AUTHORIZATION, HeaderValue::from_static("Bearer mine"));
        let mut custom = Custom::new();
        custom.insert(AUTHORIZATION, HeaderValue::from_static("Bearer theirs"));
        custom.insert(HeaderName::from_static("x-env"), HeaderValue::from_static("dev"));
        let (bearer, h) = combine(Some("theirs".into()), custom.clone(), &added);
        assert_eq!(bearer, None);
        assert_eq!(h[&AUTHORIZATION], "Bearer mine");
        assert_eq!(h[&HeaderName::from_static("x-env")], "dev");
        let (bearer, _) = combine(Some("theirs".into()), custom, &HeaderMap::new());
        assert_eq!(bearer.as_deref(), Some("theirs"));
    }

    #[test]
    fn the_signed_body_is_the_sent_body() {
        // What reqwest's `json` does, for the same value.
        let msg: ClientJsonRpcMessage = serde_json::from_value(serde_json::json!({
            "jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"b": 1, "a": "é"}}
        }))
        .unwrap();
        let req = reqwest::Client::new()
            .post("http://127.0.0.1:1/mcp")
            .json(&msg)
            .build()
            .unwrap();
        let sent = req.body().and_then(|b| b.as_bytes()).unwrap();
        assert_eq!(sent, body_of(&msg).unwrap().as_slice());
    }
}
