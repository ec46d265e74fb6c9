//! The providers as a tower middleware, for HTTP clients that are tower services (hyper's
//! client, or anything built on `http::Request`): [`AuthLayer`] gives every request the
//! credentials of an [`Auth`] for its exact body, and sends it once more when the server refuses
//! them (401) and the provider has others — a token fetched afresh, the fallback key — or asks
//! for more scope (403 `insufficient_scope`) and the provider can step up. rmcp's client
//! transport takes [`crate::client::ConnectClient`] instead (feature `rmcp`).
//!
//! ```ignore
//! let client = tower::ServiceBuilder::new()
//!     .layer(AuthLayer::new(auth))
//!     .service(hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http());
//! ```

use crate::{Auth, AuthError};
use bytes::Bytes;
use http::header::WWW_AUTHENTICATE;
use http::{HeaderMap, Request, Response, StatusCode};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{Layer, Service, ServiceExt};

/// Adds an [`Auth`]'s credentials to every request of the service it wraps.
#[derive(Clone)]
pub struct AuthLayer {
    auth: Arc<dyn Auth>,
}

impl AuthLayer {
    pub fn new(auth: Arc<dyn Auth>) -> AuthLayer {
        AuthLayer { auth }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;
    fn layer(&self, inner: S) -> AuthService<S> {
        AuthService {
            inner,
            auth: self.auth.clone(),
        }
    }
}

/// See [`AuthLayer`].
#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    auth: Arc<dyn Auth>,
}

/// Why a request through [`AuthService`] failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthServiceError<E> {
    /// No credentials could be had (a token endpoint refused, both keys spent).
    #[error("credentials: {0}")]
    Auth(AuthError),
    /// The wrapped service failed.
    #[error("{0}")]
    Inner(E),
}

/// What a request is, kept to send it again (`http::request::Parts` is not `Clone`).
struct Head {
    method: http::Method,
    uri: http::Uri,
    version: http::Version,
    headers: HeaderMap,
}

impl Head {
    /// The request with `credentials` over the caller's own headers.
    fn request(&self, credentials: &HeaderMap, body: &Bytes) -> Request<Bytes> {
        let mut req = Request::new(body.clone());
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.version_mut() = self.version;
        let mut headers = self.headers.clone();
        for (name, value) in credentials {
            headers.insert(name.clone(), value.clone());
        }
        *req.headers_mut() = headers;
        req
    }
}

impl<S, B> Service<Request<Bytes>> for AuthService<S>
where
    S: Service<Request<Bytes>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    B: Send + 'static,
{
    type Response = Response<B>;
    type Error = AuthServiceError<S::Error>;
    type Future = Pin<Box<dyn Future<Output = Result<Response<B>, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(AuthServiceError::Inner)
    }

    fn call(&mut self, req: Request<Bytes>) -> Self::Future {
        // The service polled ready goes with this call; the clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let auth = self.auth.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let head = Head {
                method: parts.method,
                uri: parts.uri,
                version: parts.version,
                headers: parts.headers,
            };
            let url = head.uri.to_string();
            let mut asked_again = false;
            loop {
                let sent = auth
                    .headers(&head.method, &url, &body)
                    .await
                    .map_err(AuthServiceError::Auth)?;
                let resp = inner
                    .call(head.request(&sent, &body))
                    .await
                    .map_err(AuthServiceError::Inner)?;
                if asked_again {
                    return Ok(resp);
                }
                let challenge = resp
                    .headers()
                    .get(WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let again = match resp.status() {
                    StatusCode::UNAUTHORIZED => auth.unauthorized(&sent, challenge.as_deref()).await,
                    StatusCode::FORBIDDEN if challenge.as_deref().is_some_and(|c| c.contains("insufficient_scope")) => {
                        auth.insufficient_scope(&sent, challenge.as_deref()).await
                    }
                    _ => false,
                };
                if !again {
                    return Ok(resp);
                }
                asked_again = true;
                inner = inner.ready().await.map_err(AuthServiceError::Inner)?.clone();
            }
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::auth::keys::KeyPair;
    use crate::secret::Secret;
    use std::sync::Mutex;

    /// The key and body of each request a test server received.
    type Seen = Arc<Mutex<Vec<(Option<String>, Bytes)>>>;

    /// A server that knows only `good`, and records the keys and bodies it was sent.
    fn server(
        seen: Seen,
    ) -> impl Service<Request<Bytes>, Response = Response<String>, Error = std::convert::Infallible, Future: Send>
    + Clone
    + Send
    + 'static {
        tower::service_fn(move |req: Request<Bytes>| {
            let key = req.headers().get("x-api-key").map(|v| v.to_str().unwrap().to_string());
            seen.lock().unwrap().push((key.clone(), req.body().clone()));
            let status = if key.as_deref() == Some("good") {
                StatusCode::OK
            } else {
                StatusCode::UNAUTHORIZED
            };
            let mut r = Response::new(String::new());
            *r.status_mut() = status;
            std::future::ready(Ok(r))
        })
    }

    fn post(body: &'static str) -> Request<Bytes> {
        Request::post("http://127.0.0.1:1/mcp")
            .header("content-type", "application/json")
            .body(Bytes::from_static(body.as_bytes()))
            .unwrap()
    }

    /// Seed 002's rotation as a middleware: the primary refused, the request goes again with the
    /// fallback (same body, the caller's own headers kept); later requests use the fallback at
    /// once; both refused, the 401 comes back after one more try, not a loop.
    #[tokio::test]
    async fn a_refused_key_is_replaced_and_the_request_sent_once_more() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let keys: Arc<dyn Auth> =
            Arc::new(KeyPair::new(&Secret::new("old"), Some(&Secret::new("good")), None).unwrap());
        let mut svc = AuthLayer::new(keys).layer(server(seen.clone()));
        let r = svc.ready().await.unwrap().call(post(r#"{"id":1}"#)).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let r = svc.ready().await.unwrap().call(post(r#"{"id":2}"#)).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let sent: Vec<_> = seen.lock().unwrap().clone();
        assert_eq!(
            sent,
            vec![
                (Some("old".into()), Bytes::from_static(br#"{"id":1}"#)),
                (Some("good".into()), Bytes::from_static(br#"{"id":1}"#)),
                (Some("good".into()), Bytes::from_static(br#"{"id":2}"#)),
            ]
        );

        let seen = Arc::new(Mutex::new(Vec::new()));
        let spent: Arc<dyn Auth> = Arc::new(KeyPair::new(&Secret::new("a"), Some(&Secret::new("b")), None).unwrap());
        let mut svc = AuthLayer::new(spent).layer(server(seen.clone()));
        let r = svc.ready().await.unwrap().call(post("{}")).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            seen.lock().unwrap().len(),
            2,
            "the fallback once, then the refusal comes back"
        );
    }
}
