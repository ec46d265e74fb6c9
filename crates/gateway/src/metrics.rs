//! Prometheus metrics. Labels come from fixed sets (known MCP method names, outcome labels), never
//! from raw input, so a caller cannot blow up cardinality or smuggle a secret into a label.
//! Without the `metrics` feature (an embedding through mcpgate-layer) the same API counts nothing
//! and renders an empty page, and no Prometheus client is built.

#[cfg(feature = "metrics")]
mod prometheus {
    use prometheus_client::encoding::EncodeLabelSet;
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::gauge::Gauge;
    use prometheus_client::metrics::histogram::Histogram;
    use prometheus_client::registry::Registry;
    use std::time::Duration;

    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    pub struct CallLabels {
        pub method: &'static str,
        pub outcome: &'static str,
    }

    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    pub struct SpanLabels {
        pub outcome: &'static str,
    }

    pub struct Metrics {
        registry: Registry,
        pub spans: Family<SpanLabels, Counter>,
        pub requests: Family<CallLabels, Counter>,
        pub latency: Histogram,
        pub upstream_errors: Counter,
        pub upstream_restarts: Counter,
        pub sessions: Gauge,
    }

    impl Default for Metrics {
        fn default() -> Self {
            Self::new()
        }
    }

    impl Metrics {
        pub fn new() -> Self {
            let mut registry = Registry::with_prefix("mcpgate");
            let requests = Family::<CallLabels, Counter>::default();
            registry.register(
                "requests",
                "MCP messages handled, by method and outcome",
                requests.clone(),
            );
            let latency = Histogram::new([
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
            ]);
            registry.register(
                "request_duration_seconds",
                "Time to the first byte of the response",
                latency.clone(),
            );
            let upstream_errors = Counter::default();
            registry.register(
                "upstream_errors",
                "Upstream connection failures, timeouts and crashes",
                upstream_errors.clone(),
            );
            let upstream_restarts = Counter::default();
            registry.register(
                "upstream_restarts",
                "Restarts of stdio upstream processes",
                upstream_restarts.clone(),
            );
            let sessions = Gauge::default();
            registry.register("sessions", "Open MCP sessions", sessions.clone());
            let spans = Family::<SpanLabels, Counter>::default();
            registry.register(
                "trace_spans",
                "Trace spans exported, dropped (the export queue was full) or failed (the collector did not take them)",
                spans.clone(),
            );
            Metrics {
                registry,
                spans,
                requests,
                latency,
                upstream_errors,
                upstream_restarts,
                sessions,
            }
        }

        pub fn observe(&self, method: &'static str, outcome: &'static str, elapsed: Duration) {
            self.requests.get_or_create(&CallLabels { method, outcome }).inc();
            self.latency.observe(elapsed.as_secs_f64());
        }

        /// `n` trace spans came to `outcome` (`exported`, `dropped`, `failed`).
        pub fn trace_spans(&self, outcome: &'static str, n: u64) {
            self.spans.get_or_create(&SpanLabels { outcome }).inc_by(n);
        }

        pub fn render(&self) -> String {
            let mut out = String::new();
            // Encoding into a String cannot fail.
            let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
            out
        }
    }
}

#[cfg(feature = "metrics")]
pub use prometheus::{CallLabels, Metrics};

#[cfg(not(feature = "metrics"))]
mod counting_nothing {
    /// Counts nothing: `inc`/`dec` as the Prometheus types have them.
    #[derive(Debug, Default)]
    pub struct Counter;

    impl Counter {
        pub fn inc(&self) {}
    }

    #[derive(Debug, Default)]
    pub struct Gauge;

    impl Gauge {
        pub fn inc(&self) {}
        pub fn dec(&self) {}
    }

    #[derive(Debug, Default)]
    pub struct Metrics {
        pub upstream_errors: Counter,
        pub upstream_restarts: Counter,
        pub sessions: Gauge,
    }

    impl Metrics {
        pub fn new() -> Self {
            Metrics::default()
        }

        pub fn observe(&self, _method: &'static str, _outcome: &'static str, _elapsed: std::time::Duration) {}

        pub fn trace_spans(&self, _outcome: &'static str, _n: u64) {}

        pub fn render(&self) -> String {
            String::new()
        }
    }
}

#[cfg(not(feature = "metrics"))]
pub use counting_nothing::Metrics;

const METHODS: &[&str] = &[
    "initialize",
    "ping",
    "server/discover",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "notifications/initialized",
    "notifications/cancelled",
    "notifications/progress",
    "notifications/roots/list_changed",
];

/// The metric label for a method: itself when it is a known MCP method, otherwise "other".
pub fn method_label(method: &str) -> &'static str {
    METHODS.iter().find(|m| **m == method).copied().unwrap_or("other")
}
