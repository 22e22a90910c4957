//! Prometheus metrics, served in the text exposition format at `endpoints.metrics` on the
//! admin listener. Names, help texts, buckets and label values come from the catalogue in
//! `ai_api_proxy_config::metrics`.

use std::sync::Arc;

use ai_api_proxy_config::metrics as catalogue;

use super::gen_ai::GenAiMetrics;
use crate::limits::{LimitMetrics, ReasonLabels};
use crate::telemetry::TraceMetrics;
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
    /// Client key id (`anonymous` without authentication): ids are configured, so bounded.
    pub client: Arc<str>,
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
    /// One of `catalogue::STREAM_ERROR_REASONS`.
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
    /// One of `catalogue::CLIENT_TIMEOUT_PHASES`.
    pub phase: &'static str,
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
    /// The per-key policies' limiter: store health, round trips, refusals.
    pub limits: LimitMetrics,
    /// The GenAI conventions' histograms.
    pub gen_ai: GenAiMetrics,
    /// Span export: drops and failures.
    pub trace: TraceMetrics,
}

impl Metrics {
    /// Registers every metric; `upstreams` get their breaker gauge at 0 from the start.
    pub fn new<'a>(upstreams: impl IntoIterator<Item = &'a Arc<str>>) -> Self {
        let mut registry = Registry::default();
        let gen_ai = GenAiMetrics::new(&mut registry);
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
            in_flight_limited: Counter::default(),
            body_budget_rejected: Counter::default(),
            open_connections: Gauge::default(),
            connections_rejected: Counter::default(),
            client_timeouts: Family::default(),
            upstream_auth_failures: Family::default(),
            key_reloads: Family::default(),
            key_reload_failures: Family::default(),
            limits: LimitMetrics::default(),
            gen_ai,
            trace: TraceMetrics::default(),
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
        for (metric, family) in [
            (catalogue::CLIENT_IN_FLIGHT_LIMITED, &m.in_flight_limited),
            (catalogue::BODY_BUDGET_REJECTED, &m.body_budget_rejected),
            (catalogue::CONNECTIONS_REJECTED, &m.connections_rejected),
        ] {
            registry.register(metric.name, metric.help, family.clone());
        }
        registry.register(
            catalogue::OPEN_CONNECTIONS.name,
            catalogue::OPEN_CONNECTIONS.help,
            m.open_connections.clone(),
        );
        registry.register(
            catalogue::CLIENT_TIMEOUTS.name,
            catalogue::CLIENT_TIMEOUTS.help,
            m.client_timeouts.clone(),
        );
        registry.register(
            catalogue::UPSTREAM_AUTH_FAILURES.name,
            catalogue::UPSTREAM_AUTH_FAILURES.help,
            m.upstream_auth_failures.clone(),
        );
        registry.register(
            catalogue::KEY_RELOADS.name,
            catalogue::KEY_RELOADS.help,
            m.key_reloads.clone(),
        );
        registry.register(
            catalogue::KEY_RELOAD_FAILURES.name,
            catalogue::KEY_RELOAD_FAILURES.help,
            m.key_reload_failures.clone(),
        );
        for (metric, counter) in [
            (catalogue::TRACE_SPANS_DROPPED, &m.trace.dropped),
            (catalogue::TRACE_EXPORT_FAILURES, &m.trace.export_failures),
        ] {
            registry.register(metric.name, metric.help, counter.clone());
        }
        let l = &m.limits;
        for (metric, counter) in [
            (catalogue::SHARED_LIMITS_STORE_FAILURES, &l.store_failures),
            (catalogue::SHARED_LIMITS_EXCHANGES, &l.store_exchanges),
        ] {
            registry.register(metric.name, metric.help, counter.clone());
        }
        let degraded = catalogue::SHARED_LIMITS_DEGRADED;
        registry.register(degraded.name, degraded.help, l.degraded.clone());
        let refusals = catalogue::POLICY_REFUSALS;
        registry.register(refusals.name, refusals.help, l.refusals.clone());
        for reason in catalogue::POLICY_REFUSAL_REASONS {
            l.refusals.get_or_create(&ReasonLabels { reason }).inc_by(0);
        }
        for phase in catalogue::CLIENT_TIMEOUT_PHASES {
            m.client_timeouts
                .get_or_create(&PhaseLabels { phase })
                .inc_by(0);
        }
        // Every upstream's series exist from the start, so dashboards and alerts see zeros.
        for name in upstreams {
            let labels = UpstreamLabels {
                upstream: name.clone(),
            };
            m.breaker_state.get_or_create(&labels).set(0);
            m.retries.get_or_create(&labels).inc_by(0);
            m.upstream_auth_failures.get_or_create(&labels).inc_by(0);
            for reason in catalogue::STREAM_ERROR_REASONS {
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
