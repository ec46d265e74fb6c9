//! `otlp-sink`: an OTLP/HTTP trace endpoint that reads every export and answers 200 with an
//! empty `ExportTraceServiceResponse` — the collector side of `bench/run apikey_traced`, so the
//! gateway's tracing cost is measured with its exports really sent and received. Prints the
//! exports and bytes it took on stderr when it stops.

use anyhow::Result;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
struct Taken {
    exports: AtomicU64,
    bytes: AtomicU64,
}

pub async fn run(listen: &str) -> Result<()> {
    let listener = crate::upstream::listen_on(listen).await?;
    eprintln!("OTLP sink on http://{}/v1/traces", listener.local_addr()?);
    let taken = Arc::new(Taken::default());
    let report = taken.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            tick.tick().await;
            eprintln!(
                "exports {} bytes {}",
                report.exports.load(Ordering::Relaxed),
                report.bytes.load(Ordering::Relaxed)
            );
        }
    });
    crate::upstream::accept_each(listener, |stream| {
        let taken = taken.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| take(taken.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    })
    .await
}

async fn take(taken: Arc<Taken>, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let ok = req.method() == http::Method::POST && req.uri().path() == "/v1/traces";
    let body = req.into_body().collect().await?.to_bytes();
    let mut resp = Response::new(Full::new(Bytes::new()));
    if ok {
        taken.exports.fetch_add(1, Ordering::Relaxed);
        taken.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/x-protobuf"),
        );
    } else {
        *resp.status_mut() = StatusCode::NOT_FOUND;
    }
    Ok(resp)
}
