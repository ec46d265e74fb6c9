//! The wrapped service as the pipeline's [`Forwarder`]: what the gateway's HTTP connector does
//! toward a remote server, done in process. The service gets the canonical bytes the pipeline
//! decided on, only the MCP headers of the client's request (never its credential, never its
//! query string), the delegation headers, and the caller as a [`Caller`] extension.

use crate::{BoxError, Caller};
use axum::body::Body;
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, Method, Request, Uri, header};
use axum::response::Response;
use bytes::Bytes;
use mcpgate_core::principal::Principal;
use mcpgate_gateway::Gateway;
use mcpgate_gateway::config::UpstreamConfig;
use mcpgate_gateway::refusal::Refusal;
use mcpgate_gateway::upstream::{
    Forward, Forwarder, LAST_EVENT_HEADER, PASS_BACK, PROTOCOL_HEADER, Plain, SESSION_HEADER,
};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

/// Client headers the wrapped service sees: the MCP ones, and `Host`/`Origin` (already checked by
/// the pipeline's first step) for services that check them again, as rmcp's does.
const PASS_ON: &[&str] = &["host", "origin", SESSION_HEADER, PROTOCOL_HEADER, LAST_EVENT_HEADER];

pub struct Inner<S> {
    service: S,
    timeout: Duration,
}

impl<S: Clone> Clone for Inner<S> {
    fn clone(&self) -> Self {
        Inner {
            service: self.service.clone(),
            timeout: self.timeout,
        }
    }
}

impl<S> Inner<S> {
    pub fn new(service: S, gw: &Gateway) -> Inner<S> {
        let timeout = match &gw.config.upstream {
            UpstreamConfig::Embedded(e) => e.request_timeout,
            UpstreamConfig::Http(h) => h.request_timeout,
            UpstreamConfig::Stdio(s) => s.request_timeout,
        };
        Inner { service, timeout }
    }
}

fn request(
    method: Method,
    client: &Parts,
    inject: &[(HeaderName, HeaderValue)],
    principal: Option<&Arc<Principal>>,
    body: Body,
) -> Request<Body> {
    let mut req = Request::new(body);
    *req.method_mut() = method;
    // The path only: a query string may carry a key (`?api_key=`, when that is allowed).
    *req.uri_mut() = client
        .uri
        .path()
        .parse::<Uri>()
        .unwrap_or_else(|_| Uri::from_static("/"));
    let headers = req.headers_mut();
    headers.insert(
        header::ACCEPT,
        HeaderValue::from_static("application/json, text/event-stream"),
    );
    for name in PASS_ON {
        if let Some(v) = client.headers.get(*name) {
            headers.insert(*name, v.clone());
        }
    }
    for (k, v) in inject {
        headers.insert(k.clone(), v.clone());
    }
    if let Some(p) = principal {
        req.extensions_mut().insert(Caller::new(p.clone()));
    }
    req
}

/// What a layer can wrap: a cloneable tower service that answers HTTP requests with a body of
/// bytes (an rmcp `StreamableHttpService`, an axum `Router`, a `service_fn`).
pub trait Wrappable: Clone + Send + Sync + 'static {
    fn call_boxed(&self, req: Request<Body>) -> Pin<Box<dyn Future<Output = Result<Response, BoxError>> + Send>>;
}

impl<S, RB> Wrappable for S
where
    S: tower::Service<Request<Body>, Response = http::Response<RB>> + Clone + Send + Sync + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    RB: http_body::Body<Data = Bytes> + Send + 'static,
    RB::Error: Into<BoxError>,
{
    fn call_boxed(&self, req: Request<Body>) -> Pin<Box<dyn Future<Output = Result<Response, BoxError>> + Send>> {
        let call = self.clone().oneshot(req);
        Box::pin(async move { call.await.map(|r| r.map(Body::new)).map_err(Into::into) })
    }
}

impl<S: Wrappable> Inner<S> {
    /// Calls the service; its answer's head must come within the timeout (a stream's body may
    /// stay open). Only the headers a remote upstream's would pass back are kept.
    async fn send(&self, req: Request<Body>) -> Result<Response, Refusal> {
        let resp = match tokio::time::timeout(self.timeout, self.service.call_boxed(req)).await {
            Err(_) => return Err(Refusal::UpstreamTimeout),
            Ok(Err(e)) => {
                return Err(Refusal::UpstreamUnavailable {
                    detail: format!("the wrapped service failed: {e}"),
                });
            }
            Ok(Ok(r)) => r,
        };
        let (head, body) = resp.into_parts();
        let mut out = Response::new(body);
        *out.status_mut() = head.status;
        for name in PASS_BACK {
            if let Some(v) = head.headers.get(*name) {
                out.headers_mut().insert(*name, v.clone());
            }
        }
        Ok(out)
    }
}

#[async_trait::async_trait]
impl<S: Wrappable> Forwarder for Inner<S> {
    async fn post(&self, f: Forward<'_>) -> Result<Response, Refusal> {
        let mut req = request(
            Method::POST,
            f.client,
            f.inject,
            f.principal,
            Body::from(f.body.clone()),
        );
        req.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        self.send(req).await
    }

    async fn get(&self, p: Plain<'_>) -> Result<Response, Refusal> {
        self.send(request(Method::GET, p.client, p.inject, p.principal, Body::empty()))
            .await
    }

    async fn delete(&self, p: Plain<'_>) -> Result<Response, Refusal> {
        self.send(request(Method::DELETE, p.client, p.inject, p.principal, Body::empty()))
            .await
    }
}
