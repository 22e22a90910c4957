//! Prometheus metrics, served in the text exposition format at `endpoints.metrics`.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of a finished request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Configured model name, or `-`.
    pub model: Arc<str>,
    /// Upstream that answered, or `-`.
    pub upstream: Arc<str>,
    /// HTTP status sent to the client.
    pub status: u16,
}

/// Labels naming a model.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelLabels {
    /// Configured model name, or `-`.
    pub model: Arc<str>,
}

/// Labels naming an upstream.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    /// Upstream name.
    pub upstream: Arc<str>,
}

/// Labels of token counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    /// Configured model name.
    pub model: Arc<str>,
    /// `prompt` or `completion`.
    pub kind: &'static str,
}

/// Labels of broken streams.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StreamErrorLabels {
    /// Upstream name.
    pub upstream: Arc<str>,
    /// `reset`, `idle_timeout` or `total_timeout`.
    pub reason: &'static str,
}

/// Labels naming a watched secret file (`client_keys`, or `upstream:<name>`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FileLabels {
    /// Which file.
    pub file: Arc<str>,
}

/// Labels naming where a client was too slow.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    /// `header` or `body`.
    pub phase: &'static str,
}

/// The `reason` label values of stream errors: why an answer was cut after its first byte
/// (upstream reset, idle or total timeout, the drain deadline at shutdown).
pub const STREAM_CUT_REASONS: [&str; 4] = ["reset", "idle_timeout", "total_timeout", "shutdown"];

/// Histogram buckets from 1 ms to about 2 min (LLM calls are slow, proxies fast).
#[derive(Clone, Copy, Debug)]
pub struct Buckets;

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(exponential_buckets(0.001, 2.0, 18))
    }
}

/// Every metric the proxy exports.
pub struct Metrics {
    registry: Registry,
    /// Finished requests by model, upstream and status.
    pub requests: Family<RequestLabels, Counter>,
    /// Total request duration (until the last byte) by model.
    pub duration: Family<ModelLabels, Histogram, Buckets>,
    /// Time from sending to the upstream until its first byte, by upstream.
    pub upstream_ttfb: Family<UpstreamLabels, Histogram, Buckets>,
    /// Tokens reported by upstreams, by model and kind.
    pub tokens: Family<TokenLabels, Counter>,
    /// Requests being served (streams included).
    pub in_flight: Gauge,
    /// Requests refused by the rate limit.
    pub rate_limited: Counter,
    /// Requests refused because their client had too many in flight.
    pub in_flight_limited: Counter,
    /// Requests refused because the request-body budget was spent.
    pub body_budget_rejected: Counter,
    /// Client connections open on the API port.
    pub open_connections: Gauge,
    /// Connections refused because `limits.max_connections` were open.
    pub connections_rejected: Counter,
    /// Clients too slow sending headers or a body, by phase.
    pub client_timeouts: Family<PhaseLabels, Counter>,
    /// Upstream 401/403 answers (the proxy's upstream key is wrong), by upstream.
    pub upstream_auth_failures: Family<UpstreamLabels, Counter>,
    /// Secret files reloaded after a change, by file.
    pub key_reloads: Family<FileLabels, Counter>,
    /// Changed secret files that could not be used (the old keys stay), by file.
    pub key_reload_failures: Family<FileLabels, Counter>,
    /// Retries (attempts after the first) by upstream.
    pub retries: Family<UpstreamLabels, Counter>,
    /// Circuit breaker state by upstream: 0 closed, 1 open, 2 half-open.
    pub breaker_state: Family<UpstreamLabels, Gauge>,
    /// Streams cut after the first byte, by upstream and reason.
    pub stream_errors: Family<StreamErrorLabels, Counter>,
}

impl Metrics {
    /// Registers every metric; `upstreams` get their breaker gauge at 0 from the start.
    pub fn new<'a>(upstreams: impl IntoIterator<Item = &'a Arc<str>>) -> Self {
        let mut registry = Registry::with_prefix("ai_proxy");
        let m = Self {
            requests: Family::default(),
            duration: Family::new_with_constructor(Buckets),
            upstream_ttfb: Family::new_with_constructor(Buckets),
            tokens: Family::default(),
            in_flight: Gauge::default(),
            rate_limited: Counter::default(),
            in_flight_limited: Counter::default(),
            body_budget_rejected: Counter::default(),
            open_connections: Gauge::default(),
            connections_rejected: Counter::default(),
            client_timeouts: Family::default(),
            upstream_auth_failures: Family::default(),
            key_reloads: Family::default(),
            key_reload_failures: Family::default(),
            retries: Family::default(),
            breaker_state: Family::default(),
            stream_errors: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "requests",
            "Requests answered, by model, upstream and status",
            m.requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Request duration until the last byte, by model",
            m.duration.clone(),
        );
        registry.register(
            "upstream_first_byte_seconds",
            "Time from sending to an upstream until its first byte, by upstream",
            m.upstream_ttfb.clone(),
        );
        registry.register(
            "tokens",
            "Tokens reported by upstreams, by model and kind (prompt, completion)",
            m.tokens.clone(),
        );
        registry.register(
            "in_flight_requests",
            "Requests being served, streams included",
            m.in_flight.clone(),
        );
        registry.register(
            "rate_limited",
            "Requests refused with 429 by the proxy's rate limit",
            m.rate_limited.clone(),
        );
        registry.register(
            "client_in_flight_limited",
            "Requests refused with 429 because their client had rate_limit.max_in_flight requests in flight",
            m.in_flight_limited.clone(),
        );
        registry.register(
            "body_budget_rejected",
            "Requests refused with 503 because limits.body_budget_bytes of request bodies were held",
            m.body_budget_rejected.clone(),
        );
        registry.register(
            "open_connections",
            "Client connections open on the API port",
            m.open_connections.clone(),
        );
        registry.register(
            "connections_rejected",
            "Connections refused because limits.max_connections were open",
            m.connections_rejected.clone(),
        );
        registry.register(
            "client_timeouts",
            "Clients too slow sending headers or a body (408), by phase",
            m.client_timeouts.clone(),
        );
        registry.register(
            "upstream_auth_failures",
            "Upstream 401/403 answers: the proxy's upstream key is wrong or revoked, by upstream",
            m.upstream_auth_failures.clone(),
        );
        registry.register(
            "key_reloads",
            "Secret files reloaded after a change, by file",
            m.key_reloads.clone(),
        );
        registry.register(
            "key_reload_failures",
            "Changed secret files that could not be used (the previous keys stay in force), by file",
            m.key_reload_failures.clone(),
        );
        registry.register(
            "upstream_retries",
            "Attempts after the first, by upstream",
            m.retries.clone(),
        );
        registry.register(
            "circuit_breaker_state",
            "Circuit breaker state by upstream: 0 closed, 1 open, 2 half-open",
            m.breaker_state.clone(),
        );
        registry.register(
            "stream_errors",
            "Responses cut after their first byte, by upstream and reason",
            m.stream_errors.clone(),
        );
        // Every upstream's series exist from the start, so dashboards and alerts see zeros.
        for name in upstreams {
            let labels = UpstreamLabels {
                upstream: name.clone(),
            };
            m.breaker_state.get_or_create(&labels).set(0);
            m.retries.get_or_create(&labels).inc_by(0);
            m.upstream_auth_failures.get_or_create(&labels).inc_by(0);
            for reason in STREAM_CUT_REASONS {
                m.stream_errors
                    .get_or_create(&StreamErrorLabels {
                        upstream: name.clone(),
                        reason,
                    })
                    .inc_by(0);
            }
        }
        for phase in ["header", "body"] {
            m.client_timeouts
                .get_or_create(&PhaseLabels { phase })
                .inc_by(0);
        }
        Self { registry, ..m }
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8192);
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// Sets the breaker gauge of `upstream`.
    pub fn breaker(&self, upstream: &Arc<str>, code: i64) {
        self.breaker_state
            .get_or_create(&UpstreamLabels {
                upstream: upstream.clone(),
            })
            .set(code);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family() {
        let up: Arc<str> = Arc::from("main");
        let m = Metrics::new([&up]);
        m.requests
            .get_or_create(&RequestLabels {
                model: Arc::from("gpt"),
                upstream: up.clone(),
                status: 200,
            })
            .inc();
        let text = m.render();
        assert!(
            text.contains(r#"ai_proxy_requests_total{model="gpt",upstream="main",status="200"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"ai_proxy_circuit_breaker_state{upstream="main"} 0"#),
            "{text}"
        );
        assert!(
            text.contains("# TYPE ai_proxy_in_flight_requests gauge"),
            "{text}"
        );
    }
}
