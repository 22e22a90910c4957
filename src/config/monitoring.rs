//! Prometheus scraping, alerting and the Grafana dashboard: which of them an environment gets.

use std::collections::BTreeMap;

use ai_api_proxy_config::Duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How the proxy is watched. The PodMonitor and PrometheusRule need prometheus-operator's
/// CRDs in the cluster; the dashboard needs Grafana's dashboard sidecar.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Metrics {
    /// Add `prometheus.io/*` scrape annotations to the pods (for annotation-based discovery;
    /// not together with `pod_monitor`, or every pod is scraped twice).
    pub scrape_annotations: bool,
    /// Render a PodMonitor for the metrics endpoint (prometheus-operator).
    pub pod_monitor: bool,
    /// Render a PrometheusRule with the proxy's alerts (README: Alerts).
    pub alerts: bool,
    /// Render the Grafana dashboard as a ConfigMap labelled `grafana_dashboard: "1"`.
    pub dashboard: bool,
    /// Labels on the PodMonitor and PrometheusRule that Prometheus selects them by
    /// (kube-prometheus-stack: `release = "<its release name>"`).
    pub prometheus_labels: BTreeMap<String, String>,
    /// How often Prometheus scrapes each pod.
    pub scrape_interval: Duration,
    /// When alerts fire.
    pub thresholds: AlertThresholds,
    /// Where the runbook lives; each alert links to `<runbook_url>#<alert name in lowercase>`.
    pub runbook_url: Option<String>,
}

/// Alert thresholds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AlertThresholds {
    /// Percent of requests answered 5xx over 5 minutes that pages.
    pub server_error_percent: u32,
    /// 99th percentile of the upstreams' time to first byte that warns.
    pub first_byte_p99: Duration,
    /// Percent of requests refused by the rate limit over 5 minutes that warns.
    pub rate_limited_percent: u32,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            scrape_annotations: true,
            pod_monitor: false,
            alerts: false,
            dashboard: false,
            prometheus_labels: BTreeMap::new(),
            scrape_interval: Duration::from_secs(30),
            thresholds: AlertThresholds::default(),
            runbook_url: None,
        }
    }
}

impl Default for AlertThresholds {
    fn default() -> Self {
        Self {
            server_error_percent: 5,
            first_byte_p99: Duration::from_secs(30),
            rate_limited_percent: 20,
        }
    }
}
