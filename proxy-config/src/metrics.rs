//! The catalogue of every metric the proxy exports: the one list its `/metrics` endpoint, the
//! alerts and the dashboard are built from.
//!
//! The proxy registers each metric under [`Metric::name`] with [`Metric::help`]; `infra`
//! writes PromQL only through these names, and a test of the proxy holds this list against the
//! real `/metrics` output both ways. A metric added to the proxy goes here first.

/// What kind of series a metric is, in the OpenMetrics sense.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    /// Only goes up; its sample is `<name>_total`.
    Counter,
    /// Goes up and down; its sample is `<name>`.
    Gauge,
    /// Observations in cumulative buckets: `<name>_bucket{le=…}`, `<name>_sum`, `<name>_count`.
    Histogram(Buckets),
}

/// Histogram buckets: the finite upper bounds (`+Inf` follows).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Buckets {
    /// `start`, `start × factor`, … (`count` upper bounds).
    Exponential {
        /// The first upper bound, in the metric's unit.
        start: f64,
        /// Each bound is the previous one times this.
        factor: f64,
        /// Number of finite upper bounds.
        count: u16,
    },
    /// Bounds as a specification lists them (the GenAI conventions' advice), smallest first.
    Explicit(&'static [f64]),
}

impl Buckets {
    /// The finite upper bounds, smallest first.
    pub fn bounds(&self) -> Vec<f64> {
        match *self {
            Self::Exponential {
                start,
                factor,
                count,
            } => (0..count)
                .map(|i| start * factor.powf(f64::from(i)))
                .collect(),
            Self::Explicit(bounds) => bounds.to_vec(),
        }
    }
}

/// One metric family the proxy exports.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Metric {
    /// The family name (as in `# TYPE`); counters' samples add `_total`.
    pub name: &'static str,
    /// Counter, gauge or histogram.
    pub kind: Kind,
    /// The help text (the exposition adds a final `.`).
    pub help: &'static str,
    /// Label names of every sample, in the order the proxy writes them (histograms add `le`).
    pub labels: &'static [&'static str],
}

impl Metric {
    /// The names of the samples this family exposes: what PromQL can select.
    pub fn sample_names(&self) -> Vec<String> {
        let name = self.name;
        match self.kind {
            Kind::Counter => vec![format!("{name}_total")],
            Kind::Gauge => vec![name.to_owned()],
            Kind::Histogram(_) => ["bucket", "sum", "count"]
                .iter()
                .map(|s| format!("{name}_{s}"))
                .collect(),
        }
    }

    /// `counter`, `gauge` or `histogram`, as in the exposition's `# TYPE` line.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram(_) => "histogram",
        }
    }
}

/// Latency buckets from 1 ms to about 2 min (LLM calls are slow, proxies fast).
pub const LATENCY_BUCKETS: Buckets = Buckets::Exponential {
    start: 0.001,
    factor: 2.0,
    count: 18,
};

/// Finished requests by model, upstream and status.
pub const REQUESTS: Metric = Metric {
    name: "ai_proxy_requests",
    kind: Kind::Counter,
    help: "Requests answered, by model, upstream and status",
    labels: &["model", "upstream", "status"],
};

/// Total request duration (until the last byte) by model.
pub const REQUEST_DURATION: Metric = Metric {
    name: "ai_proxy_request_duration_seconds",
    kind: Kind::Histogram(LATENCY_BUCKETS),
    help: "Request duration until the last byte, by model",
    labels: &["model"],
};

/// Time from sending to an upstream until its first byte, by upstream.
pub const UPSTREAM_FIRST_BYTE: Metric = Metric {
    name: "ai_proxy_upstream_first_byte_seconds",
    kind: Kind::Histogram(LATENCY_BUCKETS),
    help: "Time from sending to an upstream until its first byte, by upstream",
    labels: &["upstream"],
};

/// Tokens reported by upstreams, by model and kind.
pub const TOKENS: Metric = Metric {
    name: "ai_proxy_tokens",
    kind: Kind::Counter,
    help: "Tokens reported by upstreams, by client key, model and kind (prompt, completion)",
    labels: &["client", "model", "kind"],
};

/// Requests being served, streams included.
pub const IN_FLIGHT: Metric = Metric {
    name: "ai_proxy_in_flight_requests",
    kind: Kind::Gauge,
    help: "Requests being served, streams included",
    labels: &[],
};

/// Requests refused by the proxy's rate limit.
pub const RATE_LIMITED: Metric = Metric {
    name: "ai_proxy_rate_limited",
    kind: Kind::Counter,
    help: "Requests refused with 429 by the proxy's rate limit",
    labels: &[],
};

/// Retries (attempts after the first) by upstream.
pub const UPSTREAM_RETRIES: Metric = Metric {
    name: "ai_proxy_upstream_retries",
    kind: Kind::Counter,
    help: "Attempts after the first, by upstream",
    labels: &["upstream"],
};

/// Circuit breaker state by upstream; values in [`breaker`].
pub const CIRCUIT_BREAKER_STATE: Metric = Metric {
    name: "ai_proxy_circuit_breaker_state",
    kind: Kind::Gauge,
    help: "Circuit breaker state by upstream: 0 closed, 1 open, 2 half-open",
    labels: &["upstream"],
};

/// Streams cut after the first byte, by upstream and reason.
pub const STREAM_ERRORS: Metric = Metric {
    name: "ai_proxy_stream_errors",
    kind: Kind::Counter,
    help: "Responses cut after their first byte, by upstream and reason",
    labels: &["upstream", "reason"],
};

/// The `reason` values of [`STREAM_ERRORS`]: upstream reset, idle or total timeout, and the
/// drain deadline at shutdown.
pub const STREAM_ERROR_REASONS: [&str; 4] = ["reset", "idle_timeout", "total_timeout", "shutdown"];

/// Requests refused because their client already had `rate_limit.max_in_flight` in flight.
pub const CLIENT_IN_FLIGHT_LIMITED: Metric = Metric {
    name: "ai_proxy_client_in_flight_limited",
    kind: Kind::Counter,
    help: "Requests refused with 429 because their client had rate_limit.max_in_flight requests in flight",
    labels: &[],
};

/// Requests refused because `limits.body_budget_bytes` of request bodies were held.
pub const BODY_BUDGET_REJECTED: Metric = Metric {
    name: "ai_proxy_body_budget_rejected",
    kind: Kind::Counter,
    help: "Requests refused with 503 because limits.body_budget_bytes of request bodies were held",
    labels: &[],
};

/// Client connections open on the API port.
pub const OPEN_CONNECTIONS: Metric = Metric {
    name: "ai_proxy_open_connections",
    kind: Kind::Gauge,
    help: "Client connections open on the API port",
    labels: &[],
};

/// Connections refused because `limits.max_connections` were open.
pub const CONNECTIONS_REJECTED: Metric = Metric {
    name: "ai_proxy_connections_rejected",
    kind: Kind::Counter,
    help: "Connections refused because limits.max_connections were open",
    labels: &[],
};

/// Clients too slow sending a request head or body (408), by phase.
pub const CLIENT_TIMEOUTS: Metric = Metric {
    name: "ai_proxy_client_timeouts",
    kind: Kind::Counter,
    help: "Clients too slow sending headers or a body (408), by phase",
    labels: &["phase"],
};

/// The `phase` values of [`CLIENT_TIMEOUTS`].
pub const CLIENT_TIMEOUT_PHASES: [&str; 2] = ["header", "body"];

/// Upstream 401/403 answers: the proxy's upstream key is wrong or revoked.
pub const UPSTREAM_AUTH_FAILURES: Metric = Metric {
    name: "ai_proxy_upstream_auth_failures",
    kind: Kind::Counter,
    help: "Upstream 401/403 answers: the proxy's upstream key is wrong or revoked, by upstream",
    labels: &["upstream"],
};

/// Secret files (client keys, upstream keys) reloaded after a change.
pub const KEY_RELOADS: Metric = Metric {
    name: "ai_proxy_key_reloads",
    kind: Kind::Counter,
    help: "Secret files reloaded after a change, by file (client_keys, upstream:<name>)",
    labels: &["file"],
};

/// Changed secret files that could not be used; the previous keys stay in force.
pub const KEY_RELOAD_FAILURES: Metric = Metric {
    name: "ai_proxy_key_reload_failures",
    kind: Kind::Counter,
    help: "Changed secret files that could not be used (the previous keys stay in force), by file",
    labels: &["file"],
};

/// 1 while the shared limits store is unreachable.
pub const SHARED_LIMITS_DEGRADED: Metric = Metric {
    name: "ai_proxy_shared_limits_degraded",
    kind: Kind::Gauge,
    help: "1 while the shared limits store is unreachable and each replica enforces its share of every limit",
    labels: &[],
};

/// Times the shared limits store was found unreachable.
pub const SHARED_LIMITS_STORE_FAILURES: Metric = Metric {
    name: "ai_proxy_shared_limits_store_failures",
    kind: Kind::Counter,
    help: "Times the shared limits store was found unreachable (each starts a per-replica period)",
    labels: &[],
};

/// Round trips to the shared limits store.
pub const SHARED_LIMITS_EXCHANGES: Metric = Metric {
    name: "ai_proxy_shared_limits_exchanges",
    kind: Kind::Counter,
    help: "Round trips to the shared limits store (allowance top-ups, requests that waited, settlements)",
    labels: &[],
};

/// Requests refused by the client's policy, by reason.
pub const POLICY_REFUSALS: Metric = Metric {
    name: "ai_proxy_policy_refusals",
    kind: Kind::Counter,
    help: "Requests refused by the client's policy, by reason",
    labels: &["reason"],
};

/// Values of the `reason` label of [`POLICY_REFUSALS`].
pub const POLICY_REFUSAL_REASONS: [&str; 6] = [
    "model_not_allowed",
    "requests",
    "tokens",
    "too_large",
    "budget",
    "store_unavailable",
];

/// The GenAI semantic conventions' metrics (v1.41.0, the version the proxy's spans follow),
/// in their Prometheus form: dots become `_`, the unit `s` a `_seconds` suffix, `{token}`
/// nothing. Their labels are the conventions' attributes, likewise.
pub mod gen_ai {
    use super::{Buckets, Kind, Metric};

    /// The attributes every GenAI metric carries, as labels.
    const LABELS: &[&str] = &[
        "gen_ai_operation_name",
        "gen_ai_provider_name",
        "gen_ai_request_model",
    ];

    /// `gen_ai.server.time_to_first_token`: request received → first chunk of a streamed
    /// answer from the upstream.
    pub const TIME_TO_FIRST_TOKEN: Metric = Metric {
        name: "gen_ai_server_time_to_first_token_seconds",
        kind: Kind::Histogram(Buckets::Explicit(&[
            0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
            10.0,
        ])),
        help: "Time to the first chunk of a streamed answer (gen_ai.server.time_to_first_token), by operation, provider and requested model",
        labels: LABELS,
    };

    /// `gen_ai.server.time_per_output_token`: (last chunk − first chunk) / (output tokens − 1)
    /// of a streamed answer.
    pub const TIME_PER_OUTPUT_TOKEN: Metric = Metric {
        name: "gen_ai_server_time_per_output_token_seconds",
        kind: Kind::Histogram(Buckets::Explicit(&[
            0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5,
        ])),
        help: "Time per output token after the first of a streamed answer (gen_ai.server.time_per_output_token), by operation, provider and requested model",
        labels: LABELS,
    };

    /// `gen_ai.client.token.usage`: tokens of one answer, by `gen_ai_token_type`.
    pub const TOKEN_USAGE: Metric = Metric {
        name: "gen_ai_client_token_usage",
        kind: Kind::Histogram(Buckets::Exponential {
            start: 1.0,
            factor: 4.0,
            count: 14,
        }),
        help: "Tokens of one answer as the upstream reported them (gen_ai.client.token.usage), by operation, provider, requested model and token type",
        labels: &[
            "gen_ai_operation_name",
            "gen_ai_provider_name",
            "gen_ai_request_model",
            "gen_ai_token_type",
        ],
    };

    /// The `gen_ai_token_type` values of [`TOKEN_USAGE`].
    pub const TOKEN_TYPES: [&str; 2] = ["input", "output"];
}

/// Finished spans dropped because the export queue (`telemetry.max_queue_size`) was full.
pub const TRACE_SPANS_DROPPED: Metric = Metric {
    name: "ai_proxy_trace_spans_dropped",
    kind: Kind::Counter,
    help: "Finished spans dropped because the export queue (telemetry.max_queue_size) was full",
    labels: &[],
};

/// OTLP exports that failed (collector unreachable, refusing or too slow).
pub const TRACE_EXPORT_FAILURES: Metric = Metric {
    name: "ai_proxy_trace_export_failures",
    kind: Kind::Counter,
    help: "Batches of spans the collector did not take (unreachable, refused or too slow)",
    labels: &[],
};

/// Values of [`CIRCUIT_BREAKER_STATE`].
pub mod breaker {
    /// Requests flow.
    pub const CLOSED: i64 = 0;
    /// Requests are refused without calling the upstream.
    pub const OPEN: i64 = 1;
    /// One probe request is let through.
    pub const HALF_OPEN: i64 = 2;
}

/// Every metric the proxy exports, in registration order.
pub const ALL: &[Metric] = &[
    REQUESTS,
    REQUEST_DURATION,
    UPSTREAM_FIRST_BYTE,
    TOKENS,
    IN_FLIGHT,
    RATE_LIMITED,
    UPSTREAM_RETRIES,
    CIRCUIT_BREAKER_STATE,
    STREAM_ERRORS,
    CLIENT_IN_FLIGHT_LIMITED,
    BODY_BUDGET_REJECTED,
    CONNECTIONS_REJECTED,
    OPEN_CONNECTIONS,
    CLIENT_TIMEOUTS,
    UPSTREAM_AUTH_FAILURES,
    KEY_RELOADS,
    KEY_RELOAD_FAILURES,
    SHARED_LIMITS_DEGRADED,
    SHARED_LIMITS_STORE_FAILURES,
    SHARED_LIMITS_EXCHANGES,
    POLICY_REFUSALS,
    gen_ai::TIME_TO_FIRST_TOKEN,
    gen_ai::TIME_PER_OUTPUT_TOKEN,
    gen_ai::TOKEN_USAGE,
    TRACE_SPANS_DROPPED,
    TRACE_EXPORT_FAILURES,
];

/// The family a sample name belongs to (`ai_proxy_requests_total` → [`REQUESTS`]).
pub fn by_sample_name(sample: &str) -> Option<&'static Metric> {
    ALL.iter()
        .find(|m| m.sample_names().iter().any(|s| s == sample))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_prefixed_and_valid() {
        let mut names: Vec<&str> = ALL.iter().map(|m| m.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
        for m in ALL {
            // The proxy's own, or the GenAI conventions' names (their Prometheus form).
            assert!(
                m.name.starts_with("ai_proxy_") || m.name.starts_with("gen_ai_"),
                "{}",
                m.name
            );
            assert!(
                m.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{}",
                m.name
            );
            assert!(
                !m.name.ends_with("_total"),
                "{}: the exposition adds it",
                m.name
            );
            assert!(!m.help.ends_with('.'), "{}: the exposition adds it", m.name);
            assert!(!m.labels.contains(&"le"), "{}", m.name);
        }
    }

    #[test]
    fn samples_resolve_to_their_family() {
        assert_eq!(by_sample_name("ai_proxy_requests_total"), Some(&REQUESTS));
        assert_eq!(
            by_sample_name("ai_proxy_request_duration_seconds_bucket"),
            Some(&REQUEST_DURATION)
        );
        assert_eq!(
            by_sample_name("ai_proxy_in_flight_requests"),
            Some(&IN_FLIGHT)
        );
        assert_eq!(by_sample_name("ai_proxy_requests"), None);
        assert_eq!(by_sample_name("ai_proxy_in_flight_requests_total"), None);
    }

    #[test]
    fn gen_ai_buckets_are_the_conventions_advice() {
        let tokens = gen_ai::TOKEN_USAGE;
        let Kind::Histogram(b) = tokens.kind else {
            panic!("{} is a histogram", tokens.name)
        };
        let b = b.bounds();
        assert_eq!((b[0], b[13]), (1.0, 67_108_864.0));
        for m in [gen_ai::TIME_TO_FIRST_TOKEN, gen_ai::TIME_PER_OUTPUT_TOKEN] {
            let Kind::Histogram(b) = m.kind else {
                panic!("{} is a histogram", m.name)
            };
            let b = b.bounds();
            assert!(b.windows(2).all(|w| w[0] < w[1]), "{}: {b:?}", m.name);
            assert!(m.name.ends_with("_seconds"), "{}", m.name);
        }
    }

    #[test]
    fn latency_buckets_span_a_millisecond_to_two_minutes() {
        let b = LATENCY_BUCKETS.bounds();
        assert_eq!(b.len(), 18);
        assert_eq!(b[0], 0.001);
        assert!((b[17] - 131.072).abs() < 1e-9, "{}", b[17]);
    }
}
