//! OpenTelemetry traces (`[telemetry]`, off unless an endpoint is set): a server span per `/mcp`
//! request with the pipeline's steps as events, a client span for the upstream call whose
//! context goes upstream as `traceparent`, exported over OTLP (HTTP protobuf or JSON, gRPC).
//!
//! What goes into a span is chosen in the pipeline, field by field: ids, names, decisions and
//! timings — never a credential, a session id, a header's value or a message's arguments.

pub mod context;
mod export;
pub mod otlp;
pub mod span;

use crate::config::ConfigError;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Uri};
use span::{Attributes, Event, Kind, SpanData, Status};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use export::Stats;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    HttpProtobuf,
    HttpJson,
    Grpc,
}

/// `[telemetry]`, validated.
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    /// Where spans go: the full URL for HTTP (`…/v1/traces` added to a bare host), the
    /// collector's address for gRPC.
    pub endpoint: Uri,
    pub protocol: Protocol,
    pub service_name: String,
    /// Share of new traces recorded, 0.0 to 1.0 (a caller's sampled flag decides for its own).
    pub sample_ratio: f64,
    /// Continue the caller's trace (its `traceparent`); off, every request starts its own.
    pub trust_traceparent: bool,
    /// Sent with every export: each header's name and the environment variable holding its
    /// value (read when the exporter starts).
    pub headers_env: Vec<(HeaderName, String)>,
    pub export_interval: Duration,
    pub timeout: Duration,
    pub max_queue: usize,
}

/// `[telemetry]` as written.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTelemetry {
    /// OTLP endpoint (`http://host:4318` for HTTP, `http://host:4317` for gRPC); set, traces are on.
    pub endpoint: Option<String>,
    /// `http/protobuf` (default), `http/json` or `grpc`.
    pub protocol: Option<String>,
    /// `service.name` of the spans (default `mcpgate`).
    pub service_name: Option<String>,
    /// Share of new traces recorded, 0.0–1.0 (default 1.0).
    pub sample_ratio: Option<f64>,
    /// Join the caller's trace from its `traceparent` (default true).
    pub trust_traceparent: Option<bool>,
    /// Headers sent to the collector, by the environment variable holding each value.
    #[serde(default)]
    pub headers_env: BTreeMap<String, String>,
    /// How often queued spans are sent, milliseconds (default 2000).
    pub export_interval_ms: Option<u64>,
    /// Time one export may take, milliseconds (default 10000).
    pub timeout_ms: Option<u64>,
    /// Spans waiting to be sent at most; more are dropped and counted (default 4096).
    pub max_queue: Option<usize>,
}

impl RawTelemetry {
    /// The validated section, or `None` when no endpoint is set.
    pub fn validate(self) -> Result<Option<TelemetryConfig>, ConfigError> {
        let err = |field: &'static str, problem: String| ConfigError { field, problem };
        let Some(endpoint) = self.endpoint.filter(|e| !e.trim().is_empty()) else {
            return Ok(None);
        };
        let protocol = match self.protocol.as_deref().unwrap_or("http/protobuf") {
            "http/protobuf" => Protocol::HttpProtobuf,
            "http/json" => Protocol::HttpJson,
            "grpc" => Protocol::Grpc,
            other => {
                return Err(err(
                    "telemetry.protocol",
                    format!("{other:?}: expected \"http/protobuf\", \"http/json\" or \"grpc\""),
                ));
            }
        };
        let uri: Uri = endpoint
            .parse()
            .map_err(|_| err("telemetry.endpoint", "not a URL".into()))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(err("telemetry.endpoint", "must be an http:// or https:// URL".into()));
        }
        if uri.authority().is_some_and(|a| a.as_str().contains('@')) || uri.query().is_some() {
            return Err(err(
                "telemetry.endpoint",
                "must carry neither credentials nor a query string; give credentials in telemetry.headers_env".into(),
            ));
        }
        let bare = matches!(uri.path(), "" | "/");
        let endpoint = match protocol {
            Protocol::Grpc if !bare => {
                return Err(err(
                    "telemetry.endpoint",
                    "for gRPC, give the collector's address without a path".into(),
                ));
            }
            Protocol::Grpc => join(&uri, export::grpc_path())?,
            _ if bare => join(&uri, "/v1/traces")?,
            _ => uri,
        };
        let sample_ratio = self.sample_ratio.unwrap_or(1.0);
        if !(0.0..=1.0).contains(&sample_ratio) {
            return Err(err("telemetry.sample_ratio", "must be between 0.0 and 1.0".into()));
        }
        let mut headers_env = Vec::new();
        for (name, var) in self.headers_env {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| err("telemetry.headers_env", format!("{name:?} is not a header name")))?;
            // The exporter's own framing is not the operator's to replace.
            if [
                "content-type",
                "content-length",
                "transfer-encoding",
                "te",
                "host",
                "connection",
                "upgrade",
            ]
            .contains(&name.as_str())
            {
                return Err(err(
                    "telemetry.headers_env",
                    format!("{name} is set by the exporter itself"),
                ));
            }
            headers_env.push((name, var));
        }
        let ms = |field: &'static str, v: Option<u64>, default: u64| match v.unwrap_or(default) {
            0 => Err(err(field, "must be at least 1".into())),
            n => Ok(Duration::from_millis(n)),
        };
        let service_name = self.service_name.unwrap_or_else(|| "mcpgate".into());
        if service_name.is_empty() || service_name.len() > 256 || service_name.chars().any(char::is_control) {
            return Err(err(
                "telemetry.service_name",
                "must be 1 to 256 printable characters".into(),
            ));
        }
        Ok(Some(TelemetryConfig {
            endpoint,
            protocol,
            service_name,
            sample_ratio,
            trust_traceparent: self.trust_traceparent.unwrap_or(true),
            headers_env,
            export_interval: ms("telemetry.export_interval_ms", self.export_interval_ms, 2000)?,
            timeout: ms("telemetry.timeout_ms", self.timeout_ms, 10_000)?,
            max_queue: self.max_queue.unwrap_or(4096).clamp(1, 1 << 20),
        }))
    }
}

fn join(base: &Uri, path: &str) -> Result<Uri, ConfigError> {
    let scheme = base.scheme_str().unwrap_or("http");
    let authority = base.authority().map(|a| a.as_str()).unwrap_or("");
    format!("{scheme}://{authority}{path}")
        .parse()
        .map_err(|_| ConfigError {
            field: "telemetry.endpoint",
            problem: "not a URL".into(),
        })
}

/// The tracer: decides which requests are recorded and hands finished spans to the exporter.
pub struct Telemetry {
    cfg: TelemetryConfig,
    exporter: export::Exporter,
}

impl Telemetry {
    /// Starts the exporter (on the current runtime), reading the collector headers' values
    /// through `env`.
    pub fn start(
        cfg: TelemetryConfig,
        env: &dyn Fn(&str) -> Option<String>,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Result<Arc<Telemetry>, String> {
        let mut headers = Vec::with_capacity(cfg.headers_env.len());
        for (name, var) in &cfg.headers_env {
            let value =
                env(var).ok_or_else(|| format!("telemetry.headers_env: environment variable {var} is not set"))?;
            // The value never appears in an error: it is a collector's credential.
            let mut value = HeaderValue::from_str(&value)
                .map_err(|_| format!("telemetry.headers_env: the value of {var} cannot be a header value"))?;
            value.set_sensitive(true);
            headers.push((name.clone(), value));
        }
        let origin = otlp::Origin {
            resource: vec![
                ("service.name", cfg.service_name.clone().into()),
                ("service.version", crate::server::VERSION.into()),
                ("telemetry.sdk.name", "mcpgate".into()),
                ("telemetry.sdk.language", "rust".into()),
                ("telemetry.sdk.version", crate::server::VERSION.into()),
            ],
            scope_name: "mcpgate",
            scope_version: crate::server::VERSION,
        };
        let exporter = export::Exporter::start(&cfg, headers, origin, metrics)?;
        let loopback = cfg.endpoint.host().is_some_and(|h| {
            h == "localhost"
                || h.trim_matches(['[', ']'])
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|a| a.is_loopback())
        });
        if !cfg.headers_env.is_empty() && cfg.endpoint.scheme_str() == Some("http") && !loopback {
            tracing::warn!("telemetry.headers_env sends credentials to the collector over plain http; use https");
        }
        tracing::info!(
            endpoint = %format!(
                "{}://{}{}",
                cfg.endpoint.scheme_str().unwrap_or("http"),
                cfg.endpoint.authority().map(|a| a.as_str()).unwrap_or(""),
                cfg.endpoint.path()
            ),
            protocol = ?cfg.protocol,
            sample_ratio = cfg.sample_ratio,
            "exporting traces over OTLP"
        );
        Ok(Arc::new(Telemetry { cfg, exporter }))
    }

    /// A server span for a request that arrived with `headers`, begun now (`unix_ms` from the
    /// gateway's clock).
    pub fn begin(&self, headers: &HeaderMap, unix_ms: i64) -> RequestSpan {
        let parent = self.cfg.trust_traceparent.then(|| context::extract(headers)).flatten();
        let mut span_id = [0u8; 8];
        random_id(&mut span_id);
        let (trace_id, parent_span_id, caller_sampled, state) = match parent {
            Some(p) => (p.trace_id, Some(p.span_id), p.sampled, p.state),
            None => {
                let mut trace_id = [0u8; 16];
                random_id(&mut trace_id);
                (trace_id, None, false, None)
            }
        };
        // The ratio decides on the trace id, whatever the caller says; a caller's sampled flag
        // adds its request, once it has authenticated (`authenticated`): a stranger can neither
        // hide a request from the traces nor make the gateway export at will.
        let sampled = self.sample(&trace_id);
        RequestSpan {
            trace_id,
            span_id,
            parent_span_id,
            state,
            sampled,
            caller_sampled,
            start_ns: u64::try_from(unix_ms).unwrap_or(0).saturating_mul(1_000_000),
            start: Instant::now(),
            events: Vec::new(),
            upstream: None,
        }
    }

    /// Hands a finished request's spans to the exporter (unless it was not sampled).
    pub fn end(&self, spans: Vec<SpanData>) {
        for s in spans {
            self.exporter.send(s);
        }
    }

    /// Sends every queued span, waiting at most `wait` (shutdown, tests).
    pub async fn flush(&self, wait: Duration) {
        self.exporter.flush(wait).await;
    }

    pub fn stats(&self) -> &Stats {
        self.exporter.stats()
    }

    /// The ratio sampler: a trace is recorded when its last 8 bytes, as a number, fall in the
    /// first `sample_ratio` of their range — the same answer at every replica for one trace.
    fn sample(&self, trace_id: &[u8; 16]) -> bool {
        let r = self.cfg.sample_ratio;
        if r >= 1.0 {
            return true;
        }
        let mut low = [0u8; 8];
        low.copy_from_slice(&trace_id[8..]);
        (u64::from_be_bytes(low) as f64) < r * (u64::MAX as f64)
    }
}

/// A fresh trace or span id: unique, not secret, so from a thread-local generator (ChaCha,
/// seeded by the operating system) rather than a system call per id; never all zero (invalid).
fn random_id(out: &mut [u8]) {
    let mut rng = rand::rng();
    loop {
        rand::RngCore::fill_bytes(&mut rng, out);
        if out.iter().any(|b| *b != 0) {
            return;
        }
    }
}

/// The upstream call inside a request: its own (client) span, whose id went upstream.
struct UpstreamCall {
    span_id: [u8; 8],
    start: Duration,
    end: Option<Duration>,
    failed: bool,
    attributes: Attributes,
}

/// One request's span while the pipeline runs.
pub struct RequestSpan {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    parent_span_id: Option<[u8; 8]>,
    state: Option<String>,
    /// Recorded: by the ratio, or (once authenticated) by the caller's flag.
    sampled: bool,
    /// The caller's `traceparent` asked for it to be recorded.
    caller_sampled: bool,
    start_ns: u64,
    start: Instant,
    events: Vec<Event>,
    upstream: Option<UpstreamCall>,
}

/// Most events one span keeps.
const MAX_EVENTS: usize = 32;

impl RequestSpan {
    pub fn trace_id(&self) -> String {
        hex::encode(self.trace_id)
    }

    pub fn sampled(&self) -> bool {
        self.sampled
    }

    /// The caller authenticated (a credential, not the anonymous role): its sampled flag now
    /// counts. Events before this point are kept only for requests the ratio picked.
    pub fn authenticated(&mut self) {
        self.sampled |= self.caller_sampled;
    }

    /// Records a pipeline step; `attributes` is only called when the span may be recorded.
    pub fn event(&mut self, name: &'static str, attributes: impl FnOnce() -> Attributes) {
        if (self.sampled || self.caller_sampled) && self.events.len() < MAX_EVENTS {
            let time_ns = self.now_ns();
            self.events.push(Event {
                time_ns,
                name,
                attributes: attributes(),
            });
        }
    }

    fn now_ns(&self) -> u64 {
        self.start_ns
            .saturating_add(u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    /// Begins the upstream call's span; the headers carry its context upstream (`traceparent`,
    /// and the caller's `tracestate` when it was well formed).
    pub fn upstream_headers(&mut self) -> Vec<(HeaderName, HeaderValue)> {
        let mut span_id = [0u8; 8];
        random_id(&mut span_id);
        self.upstream = Some(UpstreamCall {
            span_id,
            start: self.start.elapsed(),
            end: None,
            failed: false,
            attributes: Vec::new(),
        });
        let mut out = Vec::with_capacity(2);
        let parent = context::traceparent_bytes(&self.trace_id, &span_id, self.sampled);
        if let Ok(v) = HeaderValue::from_bytes(&parent) {
            out.push((HeaderName::from_static("traceparent"), v));
        }
        if let Some(v) = self.state.as_deref().and_then(|s| HeaderValue::from_str(s).ok()) {
            out.push((HeaderName::from_static("tracestate"), v));
        }
        out
    }

    /// Ends the upstream call's span with what came of it (`failed`: no usable answer).
    pub fn upstream_done(&mut self, failed: bool, attributes: impl FnOnce() -> Attributes) {
        let elapsed = self.start.elapsed();
        let sampled = self.sampled;
        if let Some(u) = &mut self.upstream {
            u.end = Some(elapsed);
            u.failed = failed;
            if sampled {
                u.attributes = attributes();
            }
        }
    }

    /// The finished spans (server, then the upstream call's), or none when not sampled.
    pub fn finish(self, name: String, attributes: Attributes, error: bool) -> Vec<SpanData> {
        if !self.sampled {
            return Vec::new();
        }
        let end_ns = self.now_ns();
        let at = |d: Duration| {
            self.start_ns
                .saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        };
        let mut out = Vec::with_capacity(2);
        if let Some(u) = &self.upstream {
            let failed = u.end.is_none() || u.failed;
            out.push(SpanData {
                trace_id: self.trace_id,
                span_id: u.span_id,
                parent_span_id: Some(self.span_id),
                trace_state: self.state.clone(),
                sampled: true,
                name: "upstream".into(),
                kind: Kind::Client,
                start_ns: at(u.start),
                end_ns: u.end.map(at).unwrap_or(end_ns),
                attributes: u.attributes.clone(),
                events: Vec::new(),
                status: if failed { Status::Error } else { Status::Unset },
            });
        }
        out.insert(
            0,
            SpanData {
                trace_id: self.trace_id,
                span_id: self.span_id,
                parent_span_id: self.parent_span_id,
                trace_state: self.state,
                sampled: true,
                name,
                kind: Kind::Server,
                start_ns: self.start_ns,
                end_ns,
                attributes,
                events: self.events,
                status: if error { Status::Error } else { Status::Unset },
            },
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics() -> Arc<crate::metrics::Metrics> {
        Arc::new(crate::metrics::Metrics::new())
    }

    fn raw(endpoint: &str) -> RawTelemetry {
        RawTelemetry {
            endpoint: Some(endpoint.into()),
            ..Default::default()
        }
    }

    #[test]
    fn endpoint_rules() {
        let c = raw("http://127.0.0.1:4318").validate().unwrap().unwrap();
        assert_eq!(c.endpoint.to_string(), "http://127.0.0.1:4318/v1/traces");
        let c = raw("https://otel.example/custom/path").validate().unwrap().unwrap();
        assert_eq!(c.endpoint.to_string(), "https://otel.example/custom/path");
        let mut g = raw("http://127.0.0.1:4317");
        g.protocol = Some("grpc".into());
        let c = g.validate().unwrap().unwrap();
        assert_eq!(c.endpoint.path(), export::grpc_path());
        for bad in ["ftp://x", "http://user:pw@host:4318", "not a url", "/v1/traces"] {
            assert!(raw(bad).validate().is_err(), "{bad}");
        }
        let mut g = raw("http://127.0.0.1:4317/v1/traces");
        g.protocol = Some("grpc".into());
        assert!(g.validate().is_err());
        let mut r = raw("http://h");
        r.sample_ratio = Some(1.5);
        assert!(r.validate().is_err());
        assert!(RawTelemetry::default().validate().unwrap().is_none());
    }

    #[test]
    fn header_values_come_from_the_environment_and_stay_out_of_errors() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _g = rt.enter();
        let mut r = raw("http://h");
        r.headers_env.insert("x-api-key".into(), "OTEL_KEY".into());
        let cfg = r.validate().unwrap().unwrap();
        let env = |k: &str| (k == "OTEL_KEY").then(|| "s3cret\nvalue".to_string());
        let e = Telemetry::start(cfg.clone(), &env, metrics()).err().unwrap();
        assert!(!e.contains("s3cret"), "{e}");
        assert!(Telemetry::start(cfg.clone(), &|_| None, metrics()).is_err());
        assert!(Telemetry::start(cfg, &|_| Some("v".into()), metrics()).is_ok());
        let mut r = raw("http://h");
        r.headers_env.insert("bad header".into(), "X".into());
        assert!(r.validate().is_err());
    }

    #[test]
    fn ratio_sampling_is_decided_by_the_trace_id() {
        let cfg = |ratio| TelemetryConfig {
            sample_ratio: ratio,
            ..raw("http://h").validate().unwrap().unwrap()
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _g = rt.enter();
        let half = Telemetry::start(cfg(0.5), &|_| None, metrics()).unwrap();
        let none = Telemetry::start(cfg(0.0), &|_| None, metrics()).unwrap();
        let all = Telemetry::start(cfg(1.0), &|_| None, metrics()).unwrap();
        let mut low = [0u8; 16];
        low[8] = 0x10;
        let mut high = [0u8; 16];
        high[8] = 0xf0;
        assert!(half.sample(&low) && !half.sample(&high));
        assert!(!none.sample(&low) && all.sample(&high));
    }
}
