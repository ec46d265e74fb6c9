//! The span exporter: finished spans wait in a bounded queue (a full queue drops the span and
//! counts it — the request path never waits for the collector), one task sends them in batches
//! over OTLP/HTTP (protobuf or JSON) or OTLP/gRPC, and `close` sends what is left.

use super::otlp::{self, Origin};
use super::span::SpanData;
use super::{Protocol, TelemetryConfig};
use crate::metrics::Metrics;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::http::{self, HeaderName, HeaderValue, Uri, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls_platform_verifier::BuilderVerifierExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Spans per export request.
const MAX_BATCH: usize = 512;
/// Most of a collector's answer read (its partial-success message, an error's text).
const MAX_ANSWER: usize = 64 * 1024;
/// At most one warning about failed exports per this long.
const WARN_EVERY: Duration = Duration::from_secs(60);
/// The gRPC method of OTLP's trace service.
const GRPC_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

enum Msg {
    Span(Box<SpanData>),
    Flush(oneshot::Sender<()>),
}

/// The queue's sending end; the exporting task owns the other.
pub struct Exporter {
    tx: mpsc::Sender<Msg>,
    stats: Arc<Stats>,
    metrics: Arc<Metrics>,
}

/// Counters the task and the request path share (also read by tests).
#[derive(Default)]
pub struct Stats {
    pub exported: AtomicU64,
    pub dropped: AtomicU64,
    pub failed: AtomicU64,
}

impl Exporter {
    /// Spawns the exporting task on the current runtime.
    pub fn start(
        cfg: &TelemetryConfig,
        headers: Vec<(HeaderName, HeaderValue)>,
        origin: Origin,
        metrics: Arc<Metrics>,
    ) -> Result<Exporter, String> {
        let transport = Transport::new(cfg, headers)?;
        let (tx, rx) = mpsc::channel(cfg.max_queue.max(1));
        let stats = Arc::new(Stats::default());
        let counts = Counts {
            stats: stats.clone(),
            metrics: metrics.clone(),
        };
        tokio::spawn(run(rx, transport, origin, cfg.export_interval, counts));
        Ok(Exporter { tx, stats, metrics })
    }

    /// Queues a finished span; drops it (counted) when the queue is full.
    pub fn send(&self, span: SpanData) {
        if self.tx.try_send(Msg::Span(Box::new(span))).is_err() {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            self.metrics.trace_spans("dropped", 1);
        }
    }

    /// Sends what is queued and waits for that export (bounded by `wait`).
    pub async fn flush(&self, wait: Duration) {
        let (ack, done) = oneshot::channel();
        // One bound for both: a full queue and a slow collector must not hold a shutdown.
        let _ = tokio::time::timeout(wait, async {
            if self.tx.send(Msg::Flush(ack)).await.is_ok() {
                let _ = done.await;
            }
        })
        .await;
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }
}

/// Where the task counts what became of the spans: for tests, and on `/metrics`.
struct Counts {
    stats: Arc<Stats>,
    metrics: Arc<Metrics>,
}

async fn run(mut rx: mpsc::Receiver<Msg>, transport: Transport, origin: Origin, every: Duration, counts: Counts) {
    let mut batch: Vec<SpanData> = Vec::new();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut warned: Option<Instant> = None;
    loop {
        let flush_ack = tokio::select! {
            msg = rx.recv() => match msg {
                Some(Msg::Span(s)) => {
                    batch.push(*s);
                    if batch.len() < MAX_BATCH {
                        continue;
                    }
                    None
                }
                Some(Msg::Flush(ack)) => Some(ack),
                None => {
                    send(&transport, &origin, &mut batch, &counts, &mut warned).await;
                    return;
                }
            },
            _ = tick.tick() => None,
        };
        send(&transport, &origin, &mut batch, &counts, &mut warned).await;
        if let Some(ack) = flush_ack {
            let _ = ack.send(());
        }
    }
}

async fn send(
    transport: &Transport,
    origin: &Origin,
    batch: &mut Vec<SpanData>,
    counts: &Counts,
    warned: &mut Option<Instant>,
) {
    let stats = &counts.stats;
    if batch.is_empty() {
        return;
    }
    let spans = std::mem::take(batch);
    match transport.export(origin, &spans).await {
        Ok(()) => {
            stats.exported.fetch_add(spans.len() as u64, Ordering::Relaxed);
            counts.metrics.trace_spans("exported", spans.len() as u64);
        }
        Err(e) => {
            stats.failed.fetch_add(spans.len() as u64, Ordering::Relaxed);
            counts.metrics.trace_spans("failed", spans.len() as u64);
            if warned.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
                *warned = Some(Instant::now());
                tracing::warn!(
                    error = %e,
                    spans = spans.len(),
                    dropped_total = stats.dropped.load(Ordering::Relaxed),
                    failed_total = stats.failed.load(Ordering::Relaxed),
                    "could not export traces (the next such warning comes at most a minute later)"
                );
            }
        }
    }
}

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// One collector endpoint and how to speak to it. Its headers (a vendor's API key, often) are
/// sent and never logged.
struct Transport {
    client: Client<Connector, Full<Bytes>>,
    uri: Uri,
    protocol: Protocol,
    headers: Vec<(HeaderName, HeaderValue)>,
    timeout: Duration,
}

impl Transport {
    fn new(cfg: &TelemetryConfig, headers: Vec<(HeaderName, HeaderValue)>) -> Result<Transport, String> {
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(cfg.timeout));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|b| b.with_platform_verifier())
            .map_err(|e| format!("cannot set up TLS for the trace exporter: {e}"))?
            .with_no_client_auth();
        let builder = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http();
        let grpc = cfg.protocol == Protocol::Grpc;
        let connector = if grpc {
            builder.enable_http2().wrap_connector(tcp)
        } else {
            builder.enable_http1().wrap_connector(tcp)
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_timer(TokioTimer::new())
            .http2_only(grpc)
            .build(connector);
        Ok(Transport {
            client,
            uri: cfg.endpoint.clone(),
            protocol: cfg.protocol,
            headers,
            timeout: cfg.timeout,
        })
    }

    async fn export(&self, origin: &Origin, spans: &[SpanData]) -> Result<(), String> {
        let (content_type, body) = match self.protocol {
            Protocol::HttpProtobuf => ("application/x-protobuf", otlp::protobuf(origin, spans)),
            Protocol::HttpJson => ("application/json", otlp::json(origin, spans)),
            Protocol::Grpc => ("application/grpc", otlp::grpc_frame(&otlp::protobuf(origin, spans))),
        };
        let mut req = http::Request::new(Full::new(Bytes::from(body)));
        *req.method_mut() = http::Method::POST;
        *req.uri_mut() = self.uri.clone();
        let h = req.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        if self.protocol == Protocol::Grpc {
            h.insert(header::TE, HeaderValue::from_static("trailers"));
        }
        for (k, v) in &self.headers {
            h.insert(k.clone(), v.clone());
        }
        let exchange = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| format!("cannot reach the collector: {}", connect_error(&e)))?;
            let status = resp.status();
            let head_grpc = grpc_status(resp.headers());
            let collected = Limited::new(resp.into_body(), MAX_ANSWER)
                .collect()
                .await
                .map_err(|_| "the collector's answer was cut off or too long".to_string())?;
            if !status.is_success() {
                return Err(format!("the collector answered {status}"));
            }
            if self.protocol == Protocol::Grpc {
                let code = collected.trailers().and_then(grpc_status).or(head_grpc);
                match code {
                    Some(0) => {}
                    Some(c) => return Err(format!("the collector answered grpc-status {c}")),
                    None => return Err("the collector's gRPC answer had no grpc-status".into()),
                }
            }
            Ok(())
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| format!("the collector did not answer within {:?}", self.timeout))?
    }
}

fn grpc_status(headers: &http::HeaderMap) -> Option<u32> {
    headers.get("grpc-status")?.to_str().ok()?.parse().ok()
}

/// The kind of a connection failure, without the error's chain (which may quote the URL).
fn connect_error(e: &hyper_util::client::legacy::Error) -> &'static str {
    if e.is_connect() {
        "connection failed"
    } else {
        "the exchange failed"
    }
}

/// The path of OTLP's gRPC export method (the endpoint's, for gRPC).
pub(super) fn grpc_path() -> &'static str {
    GRPC_PATH
}
