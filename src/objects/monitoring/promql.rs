//! PromQL written only through the metric catalogue: every series name in an alert or a panel
//! comes from `ai_api_proxy_config::metrics`, scoped to one environment's pods.

use ai_api_proxy_config::metrics::{Kind, Metric};

/// Series of kube-state-metrics (installed with kube-prometheus-stack) the alerts also read:
/// the only names not in the proxy's catalogue.
pub const KUBE_STATE_METRICS: &[&str] = &[
    "kube_deployment_status_replicas_available",
    "kube_deployment_status_replicas_unavailable",
];

/// Labels Prometheus adds to every scraped series (target labels of a PodMonitor).
pub const TARGET_LABELS: &[&str] = &[
    "namespace",
    "pod",
    "container",
    "job",
    "instance",
    "endpoint",
];

/// The label matchers that pick this environment's series.
#[derive(Clone, Debug)]
pub struct Scope {
    namespace: String,
}

impl Scope {
    /// The series of pods in `namespace`.
    pub fn new(namespace: &str) -> Self {
        Self {
            namespace: namespace.to_owned(),
        }
    }

    /// `{namespace="…"<, extra>}`.
    fn selector(&self, extra: &str) -> String {
        let sep = if extra.is_empty() { "" } else { "," };
        format!("{{namespace=\"{}\"{sep}{extra}}}", self.namespace)
    }

    /// A counter's per-second rate over `window`, e.g. `rate(ai_proxy_requests_total{…}[5m])`.
    pub fn rate(&self, m: &Metric, extra: &str, window: &str) -> String {
        debug_assert!(matches!(m.kind, Kind::Counter), "{}", m.name);
        format!("rate({}_total{}[{window}])", m.name, self.selector(extra))
    }

    /// `sum by (labels) (increase(…[window]))`: how much a counter grew over `window`.
    pub fn sum_increase(&self, m: &Metric, by: &[&str], window: &str) -> String {
        debug_assert!(matches!(m.kind, Kind::Counter), "{}", m.name);
        format!(
            "sum{}(increase({}_total{}[{window}]))",
            by_clause(by),
            m.name,
            self.selector("")
        )
    }

    /// `sum by (labels) (rate(…))`, or `sum(rate(…))` without labels.
    pub fn sum_rate(&self, m: &Metric, by: &[&str], extra: &str, window: &str) -> String {
        format!("sum{}({})", by_clause(by), self.rate(m, extra, window))
    }

    /// A gauge's current value, e.g. `ai_proxy_in_flight_requests{…}`.
    pub fn gauge(&self, m: &Metric, extra: &str) -> String {
        debug_assert!(matches!(m.kind, Kind::Gauge), "{}", m.name);
        format!("{}{}", m.name, self.selector(extra))
    }

    /// The `q` quantile of a histogram over `window`, per `by`.
    pub fn quantile(&self, q: f64, m: &Metric, by: &[&str], window: &str) -> String {
        debug_assert!(matches!(m.kind, Kind::Histogram(_)), "{}", m.name);
        let mut by = by.to_vec();
        by.push("le");
        format!(
            "histogram_quantile({q}, sum{}(rate({}_bucket{}[{window}])))",
            by_clause(&by),
            m.name,
            self.selector("")
        )
    }

    /// A kube-state-metrics series of the Deployment `name`.
    pub fn deployment(&self, series: &str, name: &str) -> String {
        debug_assert!(KUBE_STATE_METRICS.contains(&series), "{series}");
        format!(
            "{series}{}",
            self.selector(&format!("deployment=\"{name}\""))
        )
    }
}

fn by_clause(by: &[&str]) -> String {
    if by.is_empty() {
        String::new()
    } else {
        format!(" by ({}) ", by.join(", "))
    }
}
