//! Prometheus metrics, served in the text exposition format at `endpoints.metrics`. Names,
//! help texts and buckets come from the catalogue in `ai_api_proxy_config::metrics`.

use std::sync::Arc;

use ai_api_proxy_config::metrics as catalogue;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
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

/// The catalogue's latency buckets (1 ms to about 2 min).
#[derive(Clone, Copy, Debug)]
pub struct Buckets;

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(catalogue::LATENCY_BUCKETS.bounds())
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
        let mut registry = Registry::default();
        let m = Self {
            requests: Family::default(),
            duration: Family::new_with_constructor(Buckets),
            upstream_ttfb: Family::new_with_constructor(Buckets),
            tokens: Family::default(),
            in_flight: Gauge::default(),
            rate_limited: Counter::default(),
            retries: Family::default(),
            breaker_state: Family::default(),
            stream_errors: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            catalogue::REQUESTS.name,
            catalogue::REQUESTS.help,
            m.requests.clone(),
        );
        registry.register(
            catalogue::REQUEST_DURATION.name,
            catalogue::REQUEST_DURATION.help,
            m.duration.clone(),
        );
        registry.register(
            catalogue::UPSTREAM_FIRST_BYTE.name,
            catalogue::UPSTREAM_FIRST_BYTE.help,
            m.upstream_ttfb.clone(),
        );
        registry.register(
            catalogue::TOKENS.name,
            catalogue::TOKENS.help,
            m.tokens.clone(),
        );
        registry.register(
            catalogue::IN_FLIGHT.name,
            catalogue::IN_FLIGHT.help,
            m.in_flight.clone(),
        );
        registry.register(
            catalogue::RATE_LIMITED.name,
            catalogue::RATE_LIMITED.help,
            m.rate_limited.clone(),
        );
        registry.register(
            catalogue::UPSTREAM_RETRIES.name,
            catalogue::UPSTREAM_RETRIES.help,
            m.retries.clone(),
        );
        registry.register(
            catalogue::CIRCUIT_BREAKER_STATE.name,
            catalogue::CIRCUIT_BREAKER_STATE.help,
            m.breaker_state.clone(),
        );
        registry.register(
            catalogue::STREAM_ERRORS.name,
            catalogue::STREAM_ERRORS.help,
            m.stream_errors.clone(),
        );
        // Every upstream's series exist from the start, so dashboards and alerts see zeros.
        for name in upstreams {
            let labels = UpstreamLabels {
                upstream: name.clone(),
            };
            m.breaker_state.get_or_create(&labels).set(0);
            m.retries.get_or_create(&labels).inc_by(0);
            for reason in ["reset", "idle_timeout", "total_timeout"] {
                m.stream_errors
                    .get_or_create(&StreamErrorLabels {
                        upstream: name.clone(),
                        reason,
                    })
                    .inc_by(0);
            }
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
