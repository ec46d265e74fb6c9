//! `proxy`: a bare reverse proxy on the same HTTP stack as mcpgate's HTTP path (hyper's server,
//! hyper's pooled client): every request goes to the upstream URL unchanged and the answer streams
//! back. No parsing, no authentication, no audit. Its CPU per request is what proxying alone
//! costs on this stack, the floor under any HTTP-to-HTTP gateway built on it (`bench/run floor`).
//! A failed upstream exchange closes the client's connection (the load generator counts it).

use anyhow::{Context, Result};
use http::header::HOST;
use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

type Upstream = Client<HttpConnector, Incoming>;

pub async fn run(listen: &str, upstream: &str) -> Result<()> {
    let uri: Uri = upstream.parse().context("--upstream is not a URL")?;
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Upstream = Client::builder(TokioExecutor::new()).build(connector);
    let listener = crate::upstream::listen_on(listen).await?;
    eprintln!("proxying http://{}/mcp to {uri}", listener.local_addr()?);
    crate::upstream::accept_each(listener, |stream| {
        let (client, uri) = (client.clone(), uri.clone());
        tokio::spawn(async move {
            let svc = service_fn(move |req| forward(client.clone(), uri.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    })
    .await
}

async fn forward(
    client: Upstream,
    uri: Uri,
    req: Request<Incoming>,
) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
    let (mut parts, body) = req.into_parts();
    parts.uri = uri;
    parts.headers.remove(HOST); // the client sets the upstream's
    client.request(Request::from_parts(parts, body)).await
}
