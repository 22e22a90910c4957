//! OpenTelemetry traces: where spans are exported (OTLP over HTTP), what fraction of requests
//! is traced, and how many finished spans may wait for the collector.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::report::Report;
use crate::url::{base_url_ok, upstream_endpoint};
use crate::{Duration, ProxyConfig};

/// Traces of requests and upstream attempts (GenAI semantic conventions), exported over OTLP.
/// Off unless `otlp` is set (or the standard `OTEL_EXPORTER_OTLP_ENDPOINT` /
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` variable is, in the proxy's environment).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Telemetry {
    /// The OpenTelemetry collector (or any OTLP receiver) spans are sent to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otlp: Option<Otlp>,
    /// Fraction of traces recorded, from 0 to 1, for requests that do not carry a sampling
    /// decision in their `traceparent` (those that do keep it).
    pub sampling_ratio: f64,
    /// Finished spans waiting for export, at most; beyond it (a collector down or slow) spans
    /// are dropped and counted (`ai_proxy_trace_spans_dropped_total`), never held.
    pub max_queue_size: u32,
}

/// An OTLP/HTTP (protobuf) receiver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Otlp {
    /// Base URL of the receiver, as `OTEL_EXPORTER_OTLP_ENDPOINT` takes it (spans go to
    /// `<endpoint>/v1/traces`), e.g. `http://otel-collector.observability.svc:4318`.
    pub endpoint: String,
    /// Longest one export may take (then its spans are given up).
    #[serde(default = "default_export_timeout")]
    pub timeout: Duration,
}

fn default_export_timeout() -> Duration {
    Duration::from_secs(10)
}

impl Default for Telemetry {
    fn default() -> Self {
        Self {
            otlp: None,
            sampling_ratio: 1.0,
            max_queue_size: 2048,
        }
    }
}

impl Telemetry {
    /// Nothing set: the configuration file leaves the section out.
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

impl Otlp {
    /// Scheme, host and port of the receiver (port defaulted from the scheme), for the
    /// NetworkPolicy egress to it.
    pub fn host_port(&self) -> Option<(String, u16)> {
        upstream_endpoint(&self.endpoint).map(|(_, host, port)| (host, port))
    }

    /// Where spans are posted: the endpoint with OTLP/HTTP's traces path appended.
    pub fn traces_url(&self) -> String {
        format!("{}/v1/traces", self.endpoint.trim_end_matches('/'))
    }
}

/// Largest `max_queue_size` accepted (a span is about 1 KiB: 64 MiB at most).
const MAX_QUEUE: u32 = 65_536;

/// Checks `telemetry`.
pub(crate) fn check(r: &mut Report, config: &ProxyConfig) {
    let t = &config.telemetry;
    r.check(
        (0.0..=1.0).contains(&t.sampling_ratio),
        "telemetry.sampling_ratio",
        || format!("must be between 0 and 1, got {}", t.sampling_ratio),
    );
    r.check(
        (1..=MAX_QUEUE).contains(&t.max_queue_size),
        "telemetry.max_queue_size",
        || {
            format!(
                "must be between 1 and {MAX_QUEUE}, got {}",
                t.max_queue_size
            )
        },
    );
    if let Some(otlp) = &t.otlp {
        r.check(
            base_url_ok(&otlp.endpoint) && !otlp.endpoint.contains("/v1/traces"),
            "telemetry.otlp.endpoint",
            || {
                format!(
                "expected the base URL of an OTLP/HTTP receiver, like \
                 `http://otel-collector.observability.svc:4318` (`/v1/traces` is appended), got `{}`",
                    otlp.endpoint
                )
            },
        );
        r.check(
            !otlp.timeout.get().is_zero(),
            "telemetry.otlp.timeout",
            || "must be longer than 0s".into(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(telemetry: Telemetry) -> Vec<String> {
        let config = ProxyConfig {
            telemetry,
            ..ProxyConfig::default()
        };
        let mut r = Report::default();
        check(&mut r, &config);
        r.finish()
            .err()
            .unwrap_or_default()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn otlp(endpoint: &str) -> Telemetry {
        Telemetry {
            otlp: Some(Otlp {
                endpoint: endpoint.into(),
                timeout: default_export_timeout(),
            }),
            ..Telemetry::default()
        }
    }

    #[test]
    fn off_by_default_and_left_out_of_the_file() {
        let config = ProxyConfig::default();
        assert!(config.telemetry.otlp.is_none());
        assert!(!config.to_json().contains("telemetry"));
        assert!(problems(Telemetry::default()).is_empty());
    }

    #[test]
    fn endpoint_is_a_base_url_and_traces_go_under_it() {
        let t = otlp("http://otel-collector.observability.svc:4318/");
        assert!(problems(t.clone()).is_empty());
        let o = t.otlp.unwrap();
        assert_eq!(
            o.traces_url(),
            "http://otel-collector.observability.svc:4318/v1/traces"
        );
        assert_eq!(
            o.host_port(),
            Some(("otel-collector.observability.svc".into(), 4318))
        );
        let p = problems(otlp("grpc://collector:4317"));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].starts_with("telemetry.otlp.endpoint: expected"),
            "{p:?}"
        );
        assert_eq!(problems(otlp("http://collector:4318/v1/traces")).len(), 1);
    }

    #[test]
    fn ratio_and_queue_are_bounded() {
        let p = problems(Telemetry {
            sampling_ratio: 1.5,
            max_queue_size: 0,
            ..Telemetry::default()
        });
        assert_eq!(
            p,
            [
                "telemetry.sampling_ratio: must be between 0 and 1, got 1.5",
                "telemetry.max_queue_size: must be between 1 and 65536, got 0",
            ]
        );
        assert_eq!(
            problems(Telemetry {
                sampling_ratio: f64::NAN,
                ..Telemetry::default()
            })
            .len(),
            1
        );
    }

    #[test]
    fn json_round_trip() {
        let text = r#"{"otlp":{"endpoint":"http://c:4318"},"sampling_ratio":0.25}"#;
        let t: Telemetry = serde_json::from_str(text).unwrap();
        assert_eq!(t.sampling_ratio, 0.25);
        assert_eq!(t.max_queue_size, 2048);
        assert_eq!(
            t.otlp.as_ref().map(|o| o.timeout),
            Some(default_export_timeout())
        );
        assert!(serde_json::from_str::<Telemetry>(r#"{"endpoint":"x"}"#).is_err());
    }
}
